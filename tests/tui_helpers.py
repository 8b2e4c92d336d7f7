"""Helpers the TUI tests share: waiting on a condition through Pilot, and reading what the screen shows."""

from __future__ import annotations

import time


async def wait_for(pilot, condition, timeout: float = 20.0, what: str = "condition") -> None:
    """Let the app run until ``condition()`` holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


def screen_lines(app) -> list[str]:
    """The current screen as rendered, one string per row."""
    return [strip.text for strip in app.screen._compositor.render_strips()]


def screen_text(app) -> str:
    return "\n".join(screen_lines(app))


def text_of(app, selector: str) -> str:
    """The plain text a Static shows (whatever rich renderable it holds)."""
    from rich.console import Console

    console = Console(width=200, record=True, file=open("/dev/null", "w"))
    console.print(app.screen.query_one(selector).content)
    return console.export_text()
