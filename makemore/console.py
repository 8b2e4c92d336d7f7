"""The commands' consoles: rich on a terminal, whole unpadded lines in a pipe or a log; the colour of each sample
tag. Apart from the event sinks, so that a command that only prints (``sample``, ``info``) need not import them."""

from __future__ import annotations

import re
import sys

TAG_STYLE = {"new": "green", "train": "dim", "test": "yellow", "empty": "dim italic"}  # one colour per tag

UNWRAPPED_WIDTH = 1 << 16  # off a terminal: wide enough that no line of ours is ever wrapped


class _Unpadded:
    """sys.stdout or sys.stderr as they are at each write (a test runner swaps them), without the spaces that
    pad a table's lines to its width."""

    _TRAILING = re.compile(r" +(?=\n)")

    def __init__(self, stderr: bool):
        self.stderr = stderr

    @property
    def stream(self):
        return sys.stderr if self.stderr else sys.stdout

    def write(self, text: str) -> int:
        return self.stream.write(self._TRAILING.sub("", text))

    def __getattr__(self, name):
        return getattr(self.stream, name)


def make_console(stderr: bool = False, outlive_reader: bool = False, markup: bool = True):
    """A rich console for the commands' output. On a terminal, rich as usual. Piped or redirected
    (``| tee log``), a line is never wrapped, whatever its length or $COLUMNS, and never padded with spaces:
    a log keeps each line whole.

    When the reader of a pipe goes away (``| head``), rich ends the command (exit code 1); with
    ``outlive_reader`` (training's progress) the console falls silent instead and the command goes on: a run
    piped into ``head`` trains to its end and saves, as it would unwatched. Without ``markup``, what is printed is
    printed as it is: a path or a word may hold brackets (``runs/exp [a]``, ``[/x]``) that rich would take for
    its tags."""
    from rich.console import Console

    class Outliving(Console):
        def on_broken_pipe(self) -> None:
            import os

            self.quiet = True  # nothing more to say: no one reads it
            try:  # later writes (Python's own flush at exit too) go to the null device
                null = os.open(os.devnull, os.O_WRONLY)
                os.dup2(null, (sys.stderr if stderr else sys.stdout).fileno())
                os.close(null)
            except (OSError, ValueError, AttributeError):  # not a real file (a test's capture)
                pass

    cls = Outliving if outlive_reader else Console
    console = cls(stderr=stderr, highlight=False, markup=markup)
    if not console.is_terminal:
        console = cls(file=_Unpadded(stderr), highlight=False, soft_wrap=True, width=UNWRAPPED_WIDTH, markup=markup)
    return console


def plural(count: int, noun: str, plural_noun: str | None = None) -> str:
    """``1 duplicate``, ``2 duplicates``, ``1 empty line``: a count with its noun in the right number."""
    return f"{count:,} {noun if count == 1 else plural_noun or noun + 's'}"
