"""`makemore tui` training in a real terminal (a pseudo-terminal here) ends as `makemore train` does when the
process is told to: SIGTERM stops the run after its step, saves it and restores the terminal, exit code 143; a
closed terminal (SIGHUP) stops and saves it too. Before, both killed the process on the spot: no checkpoint
past step 0, no end in metrics.jsonl, and the terminal left on the alternate screen with its cursor hidden."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "darwin", reason="needs a Linux pty")

WORDS = ["emma", "olivia", "ava", "isabella", "sophia", "mia", "amelia", "harper", "evelyn", "abigail", "emily",
         "ella", "luna", "sofia", "avery", "mila", "aria", "chloe", "grace", "nora"] * 10


def _start(tmp_path: Path, run: Path) -> tuple[int, int, list[bytes]]:
    """The TUI training on a pty; (pid, the terminal's master end, what it drew so far)."""
    import pty

    data = tmp_path / "words.txt"
    data.write_text("\n".join(f"{w}{i}" for i, w in enumerate(WORDS)) + "\n")
    pid, master = pty.fork()
    if pid == 0:  # the child: a session of its own, the pty its controlling terminal
        signal.signal(signal.SIGHUP, signal.SIG_DFL)  # as a terminal's session has it, even if pytest runs under nohup
        os.environ.update(TERM="xterm-256color", COLUMNS="100", LINES="30")
        os.execv(sys.executable, [sys.executable, "-m", "makemore", "tui", str(data), "--type", "transformer",
                                  "--n-layer", "1", "--n-embd", "16", "--n-head", "2", "--max-steps", "100000",
                                  "-o", str(run)])
    drawn: list[bytes] = []

    def drain() -> None:  # a terminal that is not read fills up, and the screen would wait on it
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                return
            if not chunk:
                return
            drawn.append(chunk)

    threading.Thread(target=drain, daemon=True).start()
    deadline = time.monotonic() + 90
    metrics = run / "metrics.jsonl"
    while time.monotonic() < deadline:  # training: its first checkpoint written and steps logged past it
        if metrics.is_file() and '"event": "step"' in metrics.read_text():
            return pid, master, drawn
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)
    pytest.fail("the TUI did not start training")


def _wait(pid: int, seconds: float = 60) -> int:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail("the TUI did not end")


def _ended_stopped(run: Path) -> None:
    events = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert events[-1]["event"] == "finished" and events[-1]["reason"] == "stopped", events[-1]
    saved = [e for e in events if e["event"] == "saved"]
    assert saved and saved[-1]["step"] == events[-1]["step"] > 0
    assert (run / "last.state.safetensors").is_file()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP-terminal-there"])
def test_sigterm_stops_saves_and_restores_the_terminal(tmp_path, signum):
    """(SIGHUP sent while the terminal is still there, `kill -HUP`, ends the screen as SIGTERM does.)"""
    run = tmp_path / "run"
    pid, master, drawn = _start(tmp_path, run)
    os.kill(pid, signum)
    assert _wait(pid) == 128 + signum
    _ended_stopped(run)
    time.sleep(0.3)
    screen = b"".join(drawn)
    assert b"\x1b[?1049l" in screen[screen.rindex(b"\x1b[?1049h"):]  # the alternate screen left at the end
    os.close(master)


def test_a_closed_terminal_stops_and_saves_the_run(tmp_path):
    run = tmp_path / "run"
    pid, master, _ = _start(tmp_path, run)
    os.close(master)  # the terminal goes away: the session's processes get SIGHUP
    assert _wait(pid) == 128 + signal.SIGHUP
    _ended_stopped(run)
