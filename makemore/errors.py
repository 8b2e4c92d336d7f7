"""The one error type for bad input; the CLI prints its message on one line and exits with code 2."""

import errno

# what the system refuses (permissions, a full disk, a name too long), wherever it comes from: bad input too
# (a closed pipe is not among them: click ends such a command quietly)
REFUSED_BY_THE_SYSTEM = {errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.ENAMETOOLONG}


class MakemoreError(Exception):
    """A problem with what the user gave us (a file, an option, a run directory), not a bug."""


class AlreadySaid(MakemoreError):
    """A refusal another process says (under torchrun, rank 0 for all the ranks, which refuse alike): exit code 2
    without a second copy of the message."""


class OnlyRecorded(MakemoreError):
    """``--resume`` given only to record where a finished run's data is now (what ``eval`` advises for a moved
    file): recorded, with nothing to train. The command line says so and exits 0; the API raises it, a
    MakemoreError, as it does for any finished run it is asked to continue."""


def refusal(e: OSError) -> str | None:
    """The one line that says an error the system raised for bad input (``REFUSED_BY_THE_SYSTEM``), else None."""
    if e.errno not in REFUSED_BY_THE_SYSTEM:
        return None
    from makemore.files import printable

    where = f"{printable(e.filename)}: " if isinstance(e.filename, str) and e.filename else "writing the output: "
    return f"{where}{e.strerror or e}"
