"""The overlay chart's legend and the table of runs under it (see makemore.tui.overlay.RunRow).

The legend names each run in its colour, with its marker: directory, type, parameters, best val. The table
lists the runs with type, parameters, steps, time, best val (the lowest in bold), test loss and status; under it,
why each unreadable run cannot be read. Both own ``rows`` and redraw when it changes.
"""

from __future__ import annotations

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from makemore.tui.overlay import RunRow
from makemore.tui.widgets.cells import middle
from makemore.tui.widgets.stats import fmt_loss, fmt_time

STATUS_STYLE = {"following": "bold cyan", "finished": "bold green", "stopped": "bold yellow",
                "stalled": "bold yellow", "failed": "bold red", "unreadable": "bold red", "waiting": "italic"}


def swatch(row: RunRow) -> Text:
    return Text(f"━{row.look.marker}━", style=row.look.style)


def mark(row: RunRow) -> str:
    """"*" after a token run's losses, which are nats per token where the others' are per character."""
    return "*" if row.per_token else ""


def legend_line(row: RunRow) -> Text:
    best = f"best val {fmt_loss(row.best_val)}{mark(row) if row.best_val is not None else ''}" + (
        f" @ {row.best_step:,}" if row.best_step is not None else "")
    params = f"{row.params:,} params" if row.params else "- params"
    return Text.assemble(swatch(row), " ", (row.name, f"bold {row.look.style}"),
                         f" · {row.type or '-'} · {params} · {best}")


class CutName:
    """A run's marker and name in a table cell, cut in the middle where the column is narrower than the name: the
    end of a name is what tells runs apart more often than its start (names-mlp-lr0.01, names-mlp-lr0.003)."""

    def __init__(self, marker: Text, name: str) -> None:
        self.marker, self.name = marker, name

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        whole = self.marker.cell_len + 1 + cell_len(self.name)
        return Measurement(min(whole, self.marker.cell_len + 1 + 7), whole)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        room = options.max_width - self.marker.cell_len - 1
        yield Text.assemble(self.marker, " ", middle(self.name, room), no_wrap=True)


class RunLegend(Static):
    rows: reactive[tuple[RunRow, ...]] = reactive(tuple, init=False)

    def watch_rows(self, rows: tuple[RunRow, ...]) -> None:
        self.update(Text("\n").join(legend_line(r) for r in rows))


def runs_table(rows: tuple[RunRow, ...]) -> Table | Group:
    # the lowest of each kind: a loss per token is not comparable with one per character
    best = {kind: min((r.best_val for r in rows if r.best_val is not None and r.per_token == kind), default=None)
            for kind in (False, True)}
    # one space between columns; a long run name is cut in its middle on its row, beside its marker (the only
    # column that gives up room: the figures never cut short)
    t = Table(box=None, expand=True, pad_edge=False, collapse_padding=True)
    t.add_column("run", no_wrap=True, ratio=1, min_width=8)
    for col, right in (("type", False), ("params", True), ("steps", True), ("time", True),
                       ("best val", True), ("test", True), ("status", False)):
        t.add_column(col, justify="right" if right else "left", no_wrap=True)
    for r in rows:
        val = fmt_loss(r.best_val) + (mark(r) if r.best_val is not None else "")
        status = Text(r.status, style=STATUS_STYLE.get(r.status, ""))
        t.add_row(CutName(Text(r.look.marker, style=r.look.style), r.name), r.type or "-", f"{r.params:,}" if r.params else "-",
                  f"{r.steps:,}", fmt_time(r.seconds),
                  Text(val, style="bold green") if r.best_val is not None and r.best_val == best[r.per_token] else val,
                  fmt_loss(r.test) + (mark(r) if r.test is not None else ""), status)
    # why a run is unreadable, each on lines of its own under the table (wrapped): in the status column, a long
    # path squeezed every figure out of the table
    errors = [Text.assemble((r.look.marker, r.look.style), " ", (r.name, "bold"), f": {r.error}", style="dim")
              for r in rows if r.error]
    return Group(t, *errors) if errors else t


class RunsTable(Static):
    rows: reactive[tuple[RunRow, ...]] = reactive(tuple, init=False)

    def watch_rows(self, rows: tuple[RunRow, ...]) -> None:
        self.update(runs_table(rows))
