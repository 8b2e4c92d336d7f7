"""The one error type for bad input; the CLI prints its message on one line and exits with code 2."""


class MakemoreError(Exception):
    """A problem with what the user gave us (a file, an option, a run directory), not a bug."""


class AlreadySaid(MakemoreError):
    """A refusal another process says (under torchrun, rank 0 for all the ranks, which refuse alike): exit code 2
    without a second copy of the message."""
