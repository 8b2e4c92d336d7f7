"""`makemore tui RUN RUN...`: several runs' loss curves overlaid, with a legend and a table of the runs.

Each run is read as a followed single run is: a ``MetricsTail`` reads only the bytes appended to its
metrics.jsonl since the last look (a long backlog a bounded chunk at a time) into the run's ``RunState``. A
finished run is replayed at once; a run still being written keeps growing. A timer looks at the states once a
second and hands the chart, the legend and the table their parts; each redraws only when its part changed.

The table starts from each run's summary (``RunDir.summary``, what `makemore runs` prints), read in a thread
worker once the run's backlog has been read and again when the run finishes (or starts again); in between, the steps and best val of a run still
being written move on with what its tail reads.
"""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer
from textual.worker import Worker, WorkerState

from makemore.events import Finished, Started
from makemore.rundir import run_names
from makemore.tui.follow import MetricsTail, skipped_note
from makemore.tui.overlay import RunCurve, RunRow, looks, run_curve, run_row
from makemore.tui.state import RunState, Snapshot
from makemore.tui.widgets.overlay_chart import OverlayChart
from makemore.tui.widgets.run_legend import RunLegend, RunsTable
from makemore.tui.widgets.topbar import TopBar

POLL = 1.0  # seconds between looks at the runs' files, as when following one run


class CompareScreen(Screen):
    BINDINGS = [
        Binding("q", "quit", "quit"),
        Binding("t", "train", "train curves"),
        Binding("w", "time_axis", "steps/time"),
        Binding("l", "log_scale", "log"),
    ]

    def __init__(self, runs: list[Path], *, poll_interval: float | None = None, chart_interval: float = 1.0):
        super().__init__()
        self.paths = [Path(p) for p in runs]
        self.names = run_names(self.paths)
        self.looks = looks(len(self.paths))
        self.tails = [MetricsTail(p) for p in self.paths]
        self.states = [RunState() for _ in self.paths]
        self.snaps = [Snapshot() for _ in self.paths]
        self.curves: list[RunCurve] = [run_curve(n, k, s) for n, k, s in zip(self.names, self.looks, self.snaps)]
        self.summaries: list[dict | None] = [None] * len(self.paths)
        self.errors: list[str | None] = [None] * len(self.paths)
        self._seen = [-1] * len(self.paths)  # each state's version last handed to the widgets
        self._stale = [True] * len(self.paths)  # the summary is to be read (again) once the tail has caught up
        self.poll_interval = POLL if poll_interval is None else poll_interval
        self.chart_interval = chart_interval

    def compose(self) -> ComposeResult:
        yield TopBar(id="topbar")
        yield OverlayChart(min_interval=self.chart_interval, id="overlay")
        with VerticalScroll(id="overlay-below"):
            yield RunLegend(id="legend")
            yield RunsTable(id="overlay-runs")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.topbar = self.query_one(TopBar)
        self.chart = self.query_one(OverlayChart)
        self.legend = self.query_one(RunLegend)
        self.table = self.query_one(RunsTable)
        self.table.border_title = "Runs"
        self.topbar.title = Text.assemble(("makemore", "bold"), f" · {len(self.paths)} runs overlaid · ",
                                          ", ".join(self.names))
        self.call_later(self.poll)  # once mounted: finished runs show at once
        self.set_interval(self.poll_interval, self.poll, name="poll")

    # --- reading ------------------------------------------------------------------------------------

    def poll(self) -> None:
        if not self.app.is_running or not self.is_mounted:
            return  # timers can fire while the app shuts down
        behind = False
        for i, (tail, state) in enumerate(zip(self.tails, self.states)):
            for event in tail.poll():
                state.apply(event)
                if isinstance(event, (Finished, Started)):  # the run's results changed: its summary too
                    self._stale[i] = True
            if tail.written is not None:  # a stall is judged by when the file changed, not when it was read
                state.written(tail.written)
            skipped_note(self, tail)
            behind = behind or tail.behind
        if behind:  # a long backlog: read on at once rather than a chunk per interval
            self.set_timer(0.01, self.poll)
        # the summary of a run whose backlog has been read (so once for a finished run), and again at its end
        ready = [i for i, tail in enumerate(self.tails) if self._stale[i] and not tail.behind]
        if ready:
            for i in ready:
                self._stale[i] = False
            self._read_summaries(ready)
        changed = False
        for i, state in enumerate(self.states):
            version = state.version
            if version != self._seen[i]:
                self._seen[i] = version
                self.snaps[i] = state.snapshot()
                self.curves[i] = run_curve(self.names[i], self.looks[i], self.snaps[i])
                changed = True
        with self.app.batch_update():
            if changed:
                self.chart.curves = tuple(self.curves)
            self._rows_changed()  # a status changes with time too (stalled)

    def _rows_changed(self) -> None:
        rows = self.rows()
        self.legend.rows = rows
        self.table.rows = rows
        self.topbar.status = self._status(rows)

    def rows(self) -> tuple[RunRow, ...]:
        return tuple(run_row(name, look, summary, snap, error=error) for name, look, summary, snap, error in
                     zip(self.names, self.looks, self.summaries, self.snaps, self.errors))

    @work(thread=True, group="summaries", exit_on_error=False)
    def _read_summaries(self, indices: list[int]) -> list[tuple[int, dict | None, str | None]]:
        """Each run's summary (one pass over its metrics.jsonl): away from the UI thread, since a long run's
        file takes a while; what cannot be read is kept with its reason and shown in the table."""
        from makemore.instruments import summaries
        from makemore.rundir import RunDir

        rows, bad = summaries([RunDir(self.paths[i]) for i in indices])
        by_path = {r["run"]: r for r in rows}
        errors = {str(p): e for p, e in bad}
        return [(i, by_path.get(str(self.paths[i])), errors.get(str(self.paths[i]))) for i in indices]

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "summaries":
            return
        if event.state == WorkerState.SUCCESS:
            for i, summary, error in event.worker.result:
                self.summaries[i], self.errors[i] = summary, error
            self._rows_changed()
        elif event.state == WorkerState.ERROR:
            self.notify(f"cannot read the runs' summaries: {event.worker.error}", severity="error", timeout=10,
                        markup=False)

    @staticmethod
    def _status(rows: tuple[RunRow, ...]) -> Text:
        live = sum(r.status in ("following", "waiting") for r in rows)
        if live:
            return Text(f"● following {live} of {len(rows)}", style="bold cyan")
        failed = sum(r.status == "failed" for r in rows)  # ended too: "3 of 4 ended" had a user wait for one
        failed_too = f", {failed} failed" if failed else ""
        unsure = sum(r.status in ("unreadable", "stalled") for r in rows)
        if unsure:
            what = " · ".join(f"{n} {word}" for n, word in ((sum(r.status == "stalled" for r in rows), "stalled"),
                                                            (sum(r.status == "unreadable" for r in rows),
                                                             "unreadable")) if n)
            return Text(f"◌ {len(rows) - unsure} of {len(rows)} ended{failed_too} · {what}", style="bold yellow")
        if failed:
            return Text(f"✔ all ended{failed_too}", style="bold yellow")
        return Text("✔ all ended", style="bold green")

    # --- keys ---------------------------------------------------------------------------------------

    def action_quit(self) -> None:
        self.app.exit()

    def action_train(self) -> None:
        self.chart.show_train = not self.chart.show_train

    def action_time_axis(self) -> None:
        self.chart.x_axis = "time" if self.chart.x_axis == "step" else "step"

    def action_log_scale(self) -> None:
        self.chart.log_scale = not self.chart.log_scale
