"""Follow a run that another process is writing: read RUN/metrics.jsonl incrementally.

The file is only ever appended to, one JSON object per line, flushed per line. A poll reads from the last
offset to the end; bytes after the last newline are a line still being written and wait for the next poll.
A file that shrank was replaced (a new run in the same directory), so reading starts again from the top.
"""

from __future__ import annotations

import json
from pathlib import Path

from makemore.rundir import MAX_METRICS_LINE, METRICS, escapes_terminal
from makemore.console import plural
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

    def untold(self) -> int:
        """The lines skipped as damaged since the last call: for the screen to say so once."""
        n, self._told = self.bad_lines - self._told, self.bad_lines
        return n

    def poll(self) -> list[Event]:
        try:
            size = self.path.stat().st_size
        except OSError:  # not there yet, or not reachable for now
            return []
        if size < self.offset:  # truncated or replaced: start over
            self.offset, self.partial, self.overlong = 0, b"", False
        if size == self.offset:
            self.behind = False
            return []
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                chunk = f.read(min(size - self.offset, self.max_bytes))
        except OSError:  # unreadable for now (permissions, replaced by a directory): the next poll tries again
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
                event = None if escapes_terminal(line, obj) else event_from_json(obj)
            except (ValueError, RecursionError):  # not JSON, not UTF-8, nested too deep
                event = None
            if event is None:
                self.bad_lines += 1
            else:
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
