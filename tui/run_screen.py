"""The main screen: one run, trained here, followed from another process's metrics.jsonl, or replayed.

Data flows one way. Events reach a ``RunState`` (from the training thread, or from the metrics follower on
the UI thread); a timer takes a snapshot a few times a second and hands each widget what it shows. The
training thread never touches a widget.
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Static
from textual.worker import Worker, WorkerState, get_current_worker

from makemore.events import Event
from makemore.tui.follow import MetricsTail
from makemore.tui.state import RunInfo, RunState, Snapshot, read_run_info
from makemore.tui.widgets.bigram_table import BigramTable
from makemore.tui.widgets.loss_chart import LossChart
from makemore.tui.widgets.samples import SamplesPanel
from makemore.tui.widgets.stats import StatsPanel

STEERING = {"pause", "sample", "save", "temperature"}
STALLED_AFTER = 30.0  # seconds without a new line before a followed run is called stalled


class RunScreen(Screen):
    BINDINGS = [
        Binding("p", "pause", "pause/resume"),
        Binding("s", "sample", "sample"),
        Binding("c", "save", "save"),
        Binding("plus,equals_sign", "temperature(0.1)", "T+", key_display="+"),
        Binding("minus", "temperature(-0.1)", "T-", key_display="-"),
        Binding("l", "log_scale", "log scale"),
        Binding("m", "smoothing", "smoothing"),
        Binding("q", "quit_run", "quit"),
    ]

    def __init__(self, *, request=None, trainer=None, follow: Path | None = None,
                 events: list[Event] | None = None, poll_interval: float = 0.25, chart_interval: float = 1.0):
        super().__init__()
        self.request = request  # a makemore.training.Request: build the trainer in the worker
        self.trainer = trainer
        self.mode = "train" if (request is not None or trainer is not None) else "follow" if follow else "replay"
        self.run_dir = Path(follow) if follow else (Path(trainer.run_dir) if trainer is not None else None)
        self.tail = MetricsTail(self.run_dir) if self.mode == "follow" else None
        self.state = RunState()
        for event in events or []:
            self.state.apply(event)
        self.poll_interval = poll_interval
        self.chart_interval = chart_interval
        self.temperature = 1.0
        self.info: RunInfo | None = None
        self.worker: Worker | None = None
        self.stopping = False
        self.quitting = False
        self.note = ""
        self._drawn: dict[str, object] = {}
        self._chart_time = 0.0

    # --- layout -------------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Horizontal(id="topbar"):
            yield Static("makemore", id="title")
            yield Static("", id="status")
        with Horizontal(id="body"):
            with Vertical(id="left"):
                yield Static("", id="error")
                yield LossChart(id="loss")
                yield SamplesPanel(id="samples")
                yield StatsPanel(id="stats")
            yield BigramTable(id="bigrams")
        yield Footer()

    def on_mount(self) -> None:
        self.chart = self.query_one(LossChart)
        self.samples = self.query_one(SamplesPanel)
        self.stats = self.query_one(StatsPanel)
        self.table = self.query_one(BigramTable)
        self.chart.border_title = "Loss"
        self.stats.border_title = "Run"
        self.table.grid.focus()
        if self.mode == "train":
            if self.trainer is not None:
                self.temperature = self.trainer.cfg.temperature
            self.worker = self._train()
        self.refresh_view(force=True)
        self.set_interval(self.poll_interval, self.refresh_view, name="poll")

    # --- training (a thread worker) ---------------------------------------------------------------

    @work(thread=True, exclusive=True, group="train", exit_on_error=False, name="train")
    def _train(self) -> None:
        from makemore.sinks import JsonlSink
        from makemore.training import drive

        worker = get_current_worker()
        if self.trainer is None:
            from makemore.training import new_trainer

            self.trainer, _ = new_trainer(self.request)
            self.run_dir = Path(self.trainer.run_dir)
            self.temperature = self.trainer.cfg.temperature
        trainer = self.trainer
        if worker.is_cancelled:
            return
        def stop_if_cancelled(event) -> None:  # the app is closing: stop after this step and save
            if worker.is_cancelled:
                trainer.request_stop()

        with trainer.rundir.lock():
            drive(trainer, [JsonlSink(trainer.run_dir), self.state, stop_if_cancelled])

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker is not self.worker:
            return
        if event.state == WorkerState.ERROR:
            error = event.worker.error
            self.state.fail(f"{type(error).__name__}: {error}" if not str(error).startswith("training") else str(error))
            self.notify(str(error), title="training failed", severity="error", timeout=10)
        if event.state in (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED):
            self.refresh_view(force=True)
            self.refresh_bindings()
            if self.quitting:
                self.app.exit()

    @property
    def training(self) -> bool:
        return self.worker is not None and self.worker.state in (WorkerState.PENDING, WorkerState.RUNNING)

    # --- keys ---------------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in STEERING:
            if self.mode != "train":
                return False  # following or replaying: nothing to steer, so the keys are not shown
            return True if self.training and self.trainer is not None and not self.stopping else None
        return True

    def action_pause(self) -> None:
        t = self.trainer
        if t is None or not self.training:
            return
        if t.paused:
            t.resume()
        else:
            t.pause()
        self.state.set_paused(t.paused)
        self.refresh_view(force=True)

    def action_sample(self) -> None:
        if self.trainer is not None and self.training:
            self.trainer.request_samples(self.temperature)
            self.note = "sampling after resume" if self.trainer.paused else ""

    def action_save(self) -> None:
        if self.trainer is not None and self.training:
            self.trainer.request_save()
            self.notify("saving after resume" if self.trainer.paused else "saving a checkpoint",
                        timeout=3)

    def action_temperature(self, delta: float) -> None:
        self.temperature = round(min(3.0, max(0.1, self.temperature + delta)), 2)
        self.action_sample()
        self.refresh_view(force=True)

    def action_log_scale(self) -> None:
        self.chart.toggle_log_scale()
        self._chart_titles()

    def action_smoothing(self) -> None:
        self.chart.toggle_smoothing()
        self._chart_titles()

    def action_quit_run(self) -> None:
        """Quit; while training, stop after the current step, save, then quit (a second q quits at once)."""
        if self.training and self.trainer is not None and not self.quitting:
            self.quitting = self.stopping = True
            self.trainer.request_stop()
            self.notify("stopping: saving a checkpoint, then quitting (q again quits now)", timeout=10)
            self.refresh_view(force=True)
            self.refresh_bindings()
            return
        self.app.exit()

    def stop_training(self) -> None:
        """Called when the app closes: unblock a paused trainer so its thread ends."""
        if self.trainer is not None:
            self.trainer.request_stop()

    # --- drawing ------------------------------------------------------------------------------------

    def refresh_view(self, force: bool = False) -> None:
        if not self.app.is_running or not self.is_mounted:
            return  # timers can fire while the app shuts down
        if self.tail is not None:
            for event in self.tail.poll():
                self.state.apply(event)
        version = self.state.version
        if not force and version == self._drawn.get("version") and self.mode != "follow":
            return
        snap = self.state.snapshot()
        self._drawn["version"] = version
        with self.app.batch_update():
            self._draw_header(snap)
            if snap.started is not None and self.info is None:
                run_dir = self.run_dir or Path(snap.started.run_dir)
                self.info = read_run_info(run_dir, snap.started.vocab)
                self.table.configure(snap.started.vocab, self.info.counts, self.info.row_totals,
                                     self.info.exact_bigram)
            now = time.monotonic()
            chart_key = (len(snap.steps), len(snap.evals))
            if chart_key != self._drawn.get("chart") and (force or now - self._chart_time >= self.chart_interval
                                                          or snap.finished or not self._drawn.get("chart")):
                self._drawn["chart"] = chart_key
                self._chart_time = now
                self.chart.set_data(snap.steps, snap.evals)
                self._chart_titles()
            note = self.note if self.trainer is not None and self.trainer.paused else ""
            self.samples.show(snap.samples, self.temperature if self.mode == "train" else
                              (snap.samples.temperature if snap.samples else 1.0), note)
            if snap.bigrams is not None and snap.bigrams is not self._drawn.get("bigrams"):
                self._drawn["bigrams"] = snap.bigrams
                self.table.set_probs(snap.bigrams.probs)
            self.stats.show(snap)
            error = self.query_one("#error", Static)
            if snap.failed:
                error.update(Text(f"training failed: {snap.failed}", style="bold"))
            error.set_class(bool(snap.failed), "-shown")
        if snap.finished and self._drawn.get("finished") is None:
            self._drawn["finished"] = snap.finished
            self.refresh_bindings()

    def _chart_titles(self) -> None:
        self.chart.border_title = "Loss · train (cyan) and val (orange)"
        self.chart.border_subtitle = f"l: log scale · m: smoothing · now {self.chart.mode}"

    def _draw_header(self, snap: Snapshot) -> None:
        st = snap.started
        title = self.query_one("#title", Static)
        if st is None:
            where = self.run_dir or (self.request.data if self.request is not None else "")
            title.update(f"makemore · {where} · preparing (loading torch and the data)"
                         if self.mode == "train" else f"makemore · {where} · waiting for the first event")
        else:
            title.update(Text.assemble(("makemore", "bold"), f" · {st.dataset} ({st.num_words:,} words) · ",
                                       (st.model_type, "bold"), f" {st.num_params:,} params · {st.device} · "
                                       f"{self.run_dir or st.run_dir}"))
        self.query_one("#status", Static).update(self._status(snap))

    def _status(self, snap: Snapshot) -> Text:
        if snap.failed:
            return Text("✖ failed", style="bold red")
        if snap.finished:
            return Text("✔ finished", style="bold green")
        if self.mode == "train":
            if self.stopping:
                return Text("■ stopping", style="bold yellow")
            if self.worker is not None and self.worker.state == WorkerState.CANCELLED:
                return Text("■ stopped", style="bold yellow")
            if snap.paused:
                return Text("❚❚ paused", style="bold yellow")
            return Text("● training" if snap.started else "○ preparing", style="bold green")
        if self.mode == "replay":
            return Text("○ replay", style="bold")
        if snap.version and time.monotonic() - snap.last_event_time > STALLED_AFTER:
            return Text("◌ stalled", style="bold yellow")
        return Text("● following", style="bold cyan")
