"""Follow a run that another process is writing: read RUN/metrics.jsonl incrementally.

The file is only ever appended to, one JSON object per line, flushed per line. A poll reads from the last
offset to the end; bytes after the last newline are a line still being written and wait for the next poll.
A file that shrank, or whose first bytes changed (another file at the path: a new run in the same directory), is
read again from the top; a copy of the same run put in its place (rsync renames a new file over the old) goes on
from where it was. A path that is there but is no file (a directory, a FIFO) is only looked at, never opened: the
reason is kept in ``problem``, in the words `makemore info` uses, and the next poll looks again.

When the file was last written (``written``, for a stall) is its modification time the first time it is seen,
then the local clock's time at each poll that finds it changed: a file system whose clock differs from this
machine's (a network mount) does not make a live run look stalled.
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

from makemore.console import plural
from makemore.errors import MakemoreError
from makemore.files import not_a_file, open_regular
from makemore.rundir import MAX_METRICS_LINE, METRICS, metrics_line
from makemore.events import Event, event_from_json

WHAT = "the run's metrics, one JSON object per line"
HEAD = 256  # bytes that tell one run's file from another's: its started event's first, with the run's path


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
        self.written: float | None = None  # when the file was last written, on time.time()'s clock (module doc)
        self._seen: tuple | None = None  # (device, inode, size, modification time) at the last poll
        self._head = b""  # the file's first bytes, as read: another file at the path begins otherwise

    def untold(self) -> int:
        """The lines skipped as damaged since the last call: for the screen to say so once."""
        n, self._told = self.bad_lines - self._told, self.bad_lines
        return n

    def poll(self) -> list[Event]:
        self.behind = False  # (until a read leaves bytes unread)
        try:
            st = self.path.stat()
        except FileNotFoundError:  # not there yet
            self.problem = None
            return []
        except OSError as e:  # not reachable for now
            self.problem = f"{self.path}: cannot read ({e.strerror or e})"
            return []
        if not stat.S_ISREG(st.st_mode):  # a FIFO would wait for a writer, a directory has no bytes to read:
            self.problem = not_a_file(self.path, st.st_mode, WHAT)  # said as `makemore info` says it, unopened
            return []
        if self._seen == (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns) and self.offset == st.st_size:
            self.problem = None  # nothing new: not even opened
            return []
        try:  # (opened without blocking, and what was opened checked again: the path may have changed meanwhile)
            f = open_regular(self.path, WHAT)
        except MakemoreError as e:
            self.problem = str(e) if self.path.exists() else None  # (gone meanwhile: not there yet, again)
            return []
        with f:
            st = os.fstat(f.fileno())
            self.problem = None
            seen = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
            if self._seen is None:
                self.written = min(st.st_mtime, time.time())
            elif seen != self._seen:
                self.written = time.time()
            try:
                # (a file's identity alone says nothing: rsync renames a new copy over the old, a deleted file's
                # inode is given to the next; its first bytes say whose run it is)
                if self.offset and (st.st_size < self.offset or f.read(len(self._head)) != self._head):
                    self.offset, self.partial, self.overlong = 0, b"", False  # truncated, or another file: the top
                self._seen = seen
                size = st.st_size
                if size == self.offset:
                    return []
                f.seek(self.offset)
                chunk = f.read(min(size - self.offset, self.max_bytes))
            except OSError as e:  # unreadable for now: the next poll tries again
                self.problem = f"{self.path}: cannot read ({e.strerror or e})"
                return []
        if self.offset == 0:
            self._head = chunk[:HEAD]
        self.offset += len(chunk)
        self.behind = self.offset < size
        data = self.partial + chunk
        *lines, self.partial = data.split(b"\n")
        events = []
        for line in lines:
            if self.overlong:  # the end of an overlong line
                self.overlong = False
                continue
            obj = metrics_line(line)
            # damaged as `makemore info` counts it (one rule); a line of a plausible shape that is no event this
            # version knows (one from a newer makemore, or missing a field) is passed over without a count
            if obj is None:
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
        screen.notify(f"{tail.path}: skipped {plural(n, 'damaged line')}", severity="warning", timeout=10,
                      markup=False)  # a path's brackets are not markup
