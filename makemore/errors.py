"""The one error type for bad input; the CLI prints its message on one line and exits with code 2."""


class MakemoreError(Exception):
    """A problem with what the user gave us (a file, an option, a run directory), not a bug."""
