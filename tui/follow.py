"""Follow a run that another process is writing: read RUN/metrics.jsonl incrementally.

The file is only ever appended to, one JSON object per line, flushed per line. A poll reads from the last
offset to the end; bytes after the last newline are a line still being written and wait for the next poll.
A file that shrank was replaced (a new run in the same directory), so reading starts again from the top. A path
that is there but cannot be read as a file (a directory, a FIFO, no permission) is never opened to wait on: the
reason is kept in ``problem``, in the words `makemore info` uses, and the next poll looks again.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

from makemore.console import plural
from makemore.errors import MakemoreError
from makemore.files import open_regular
from makemore.rundir import MAX_METRICS_LINE, METRICS, _plausible, escapes_terminal
from makemore.events import Event, event_from_json


class MetricsTail:
    def __init__(self, run_dir: Path, max_bytes: int = 4 << 20):
        self.path = Path(run_dir) / METRICS
        self.offset = 0
        self.partial = b""
        self.max_bytes = max_bytes  # per poll, so that a long backlog never blocks the UI for long
        self.bad_lines = 0
        self._told = 0  # of the bad lines, those ``untold`` has handed out
        self.overlong = False  # inside a line longer than any event, dropped as it comes
        self.behind = False  # the last poll left bytes unread (a backlog larger than max_bytes)
        self.problem: str | None = None  # why the file, which is there, cannot be read (None: it can, or is not there)
        self.written: float | None = None  # the file's modification time at the last poll (time.time()'s clock)

    def untold(self) -> int:
        """The lines skipped as damaged since the last call: for the screen to say so once."""
        n, self._told = self.bad_lines - self._told, self.bad_lines
        return n

    def poll(self) -> list[Event]:
        try:
            st = self.path.stat()
        except FileNotFoundError:  # not there yet
            self.problem = None
            return []
        except OSError as e:  # not reachable for now
            self.problem = f"{self.path}: cannot read ({e.strerror or e})"
            return []
        if not stat.S_ISREG(st.st_mode):  # a FIFO would wait for a writer, a directory has no bytes to read
            try:  # opened without blocking, only to be told why, as `makemore info` tells it
                open_regular(self.path, "the run's metrics, one JSON object per line").close()
            except MakemoreError as e:
                self.problem = str(e)
            return []
        self.problem = None
        size, self.written = st.st_size, st.st_mtime
        if size < self.offset:  # truncated or replaced: start over
            self.offset, self.partial, self.overlong = 0, b"", False
        if size == self.offset:
            self.behind = False
            return []
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                chunk = f.read(min(size - self.offset, self.max_bytes))
        except OSError as e:  # unreadable for now (permissions, replaced meanwhile): the next poll tries again
            self.problem = f"{self.path}: cannot read ({e.strerror or e})"
            return []
        self.offset += len(chunk)
        self.behind = self.offset < size
        data = self.partial + chunk
        *lines, self.partial = data.split(b"\n")
        events = []
        for line in lines:
            if self.overlong:  # the end of an overlong line
                self.overlong = False
                continue
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except (ValueError, RecursionError):  # not JSON, not UTF-8, nested too deep
                obj = None
            # damaged as `makemore info` counts it (RunDir.metrics); a line of a plausible shape that is no event
            # this version knows (one from a newer makemore, or missing a field) is passed over without a count
            if not (isinstance(obj, dict) and _plausible(obj) and not escapes_terminal(line, obj)):
                self.bad_lines += 1
            elif (event := event_from_json(obj)) is not None:
                events.append(event)
        if len(self.partial) > MAX_METRICS_LINE:  # no event is this long: counted once, dropped as it comes
            self.bad_lines += not self.overlong
            self.partial, self.overlong = b"", True
        return events


def skipped_note(screen, tail: MetricsTail) -> None:
    """A notification on ``screen`` of the lines of ``tail``'s file newly skipped as damaged, as `makemore info`
    counts them."""
    if n := tail.untold():
        screen.notify(f"{tail.path}: skipped {plural(n, 'damaged line')}", severity="warning", timeout=10)
