"""The line at the top: what runs (dataset, family, size, device, run directory), the key figures when the
panels are tabs, and the run's status."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.reactive import reactive
from textual.widgets import Static


class TopBar(Horizontal):
    title: reactive[Text | str] = reactive("makemore", init=False)
    summary: reactive[str] = reactive("", init=False)  # step, loss, val: shown when the panels are tabs
    status: reactive[Text | str] = reactive("", init=False)

    def compose(self) -> ComposeResult:
        yield Static(self.title, id="title")
        yield Static(self.summary, id="summary")
        yield Static(self.status, id="status")

    def watch_title(self, title) -> None:
        self.query_one("#title", Static).update(title)

    def watch_summary(self, summary: str) -> None:
        self.query_one("#summary", Static).update(summary)

    def watch_status(self, status) -> None:
        self.query_one("#status", Static).update(status)
