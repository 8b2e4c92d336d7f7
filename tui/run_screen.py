"""The main screen: one run, trained here, followed from another process's metrics.jsonl, or replayed.

Data flows one way. Events reach a ``RunState`` (a sink of the training thread, or fed by the metrics
follower on the UI thread); a timer looks at the state's version and, when it changed, hands each widget its
part as reactive attributes. Each widget redraws itself when its part changed. The training thread never
touches a widget.

Layout by terminal size (the classes are set on resize, the layout itself lives in app.tcss):
- from 120x32: the loss chart, samples and run figures on the left, the table on the right;
- from 160x45 (``-wide``): a wider chart over samples and figures side by side, the table with wider cells;
- below 120x32 (``-compact``): one panel at a time under tabs (1 loss, 2 samples, 3 table, 4 run), with the
  step, loss and val always in the top bar.

A finished or replayed run is a playground: ``s`` samples from the best checkpoint, ``+``/``-`` change the
temperature, ``/`` types a prefix, ``w`` a word to score. A paused run does the same with its live model, at
once, and resumes exactly as if nothing had happened (``Trainer.idle``).
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
import time
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container
from textual.screen import Screen
from textual.widgets import Input, Static, Tab, Tabs
from textual.worker import Worker, WorkerState, get_current_worker

from makemore.config import TrainConfig
from makemore.console import plural
from makemore.errors import MakemoreError
from makemore.events import MAX_TABLE_VOCAB, Event
from makemore.tui import backend
from makemore.tui.follow import MetricsTail, skipped_note
from makemore.tui.playground import Playground
from makemore.tui.state import STALLED_AFTER, RunInfo, RunState, Snapshot, read_run_info
from makemore.tui.widgets.bigram_table import BigramTable
from makemore.tui.widgets.footer import FittingFooter
from makemore.tui.widgets.loss_chart import LossChart
from makemore.tui.widgets.samples import SamplesPanel
from makemore.tui.widgets.stats import StatsPanel, fmt_bpc, fmt_loss, text_bpc
from makemore.tui.widgets.topbar import TopBar

COMPACT_BELOW = (120, 32)  # width, height under which the panels become tabs
WIDE_FROM = (160, 45)


def is_compact(width: int, height: int) -> bool:
    """Whether a screen of this size shows its panels one at a time under tabs (the run and diagnostics screens)."""
    return width < COMPACT_BELOW[0] or height < COMPACT_BELOW[1]
TABS = ("loss", "samples", "bigrams", "stats")
WIDE_SAMPLES = 24  # samples per evaluation when training here on a large terminal
POLL = {"train": 0.25, "follow": 1.0, "replay": 1.0}  # seconds between looks at the state (or the file)


def is_token_run(started) -> bool:
    """Whether a run's vocabulary is a tokenizer's (``Started.item``)."""
    return started.item == "token"


def no_table_note(started) -> str:
    """Why a run has no P(next | previous) table: its vocabulary is too large to draw. A tokenizer's tokens (a
    token run), or the thousands of characters of a word list or text in a script such as Chinese or Japanese
    (a character run: the symbols are the characters and the start/stop token)."""
    V = len(started.vocab)
    if V <= MAX_TABLE_VOCAB:
        return ""
    if is_token_run(started):
        V = sum(v != "<pad>" for v in started.vocab)  # the tokenizer's tokens, not the rows that pad them
        return (f"No P(next | previous) table for this run: its {V:,} tokens would make a {V:,} x {V:,} grid "
                f"(drawn up to {MAX_TABLE_VOCAB} symbols). The Run panel gives the val loss in bits per character "
                f"and the Samples panel the decoded text.")
    head = (f"No P(next | previous) table for this run: its {V - 1:,} distinct characters (with the start/stop "
            f"token, {V:,} symbols) would make a {V:,} x {V:,} grid (drawn up to {MAX_TABLE_VOCAB} symbols).")
    if started.mode == "text":
        return head + (" The Run panel gives the val loss in bits per character and the Samples panel the "
                       "text the model writes.")
    return head + " The Samples panel shows the words the model draws, each tagged new, train or test."


class RunScreen(Screen):
    BINDINGS = [
        # the keys a person needs first come first: a narrow footer cuts the end of this list
        Binding("q", "quit_run", "quit"),
        Binding("escape", "back", "runs"),
        Binding("escape", "leave_input", "leave the box"),  # in its place while a box has the keys
        Binding("p", "pause", "pause"),
        Binding("p", "resume", "resume"),  # the same key, shown in its place while paused
        Binding("s", "sample", "sample"),
        Binding("c", "save", "save"),
        Binding("1", "tab('loss')", "panels", key_display="1-4"),
        Binding("2", "tab('samples')", show=False),
        Binding("3", "tab('bigrams')", show=False),
        Binding("4", "tab('stats')", show=False),
        Binding("plus,equals_sign", "temperature(0.1)", "T+", key_display="+"),
        Binding("minus", "temperature(-0.1)", "T-", key_display="-"),
        Binding("slash", "focus_input('prefix')", "prefix", key_display="/"),
        Binding("w", "focus_input('word')", "score"),
        Binding("l", "log_scale", "log"),
        Binding("m", "smoothing", "smooth"),
        Binding("x", "screenshot", "screenshot"),
        Binding("d", "diagnostics", "diagnostics"),
    ]
    # the labels a footer too narrow for the keys uses (at 80 columns); if the keys still do not fit, the last
    # ones are left out of it (they still act)
    FOOTER_SHORT = {"screenshot": "shot", "diagnostics": "diag"}

    def __init__(self, *, request=None, trainer=None, follow: Path | None = None,
                 events: list[Event] | None = None, poll_interval: float | None = None, chart_interval: float = 1.0):
        super().__init__()
        self.request = request  # a makemore.training.Request: build the trainer in the worker
        self.trainer = trainer
        self.mode = "train" if (request is not None or trainer is not None) else "follow" if follow else "replay"
        self.run_dir = Path(follow) if follow else (Path(trainer.run_dir) if trainer is not None else None)
        self.tail = MetricsTail(self.run_dir) if self.mode == "follow" else None
        self.state = RunState()
        self.sinks: list = [self.state]  # training here: the metrics file too (see _train)
        for event in events or []:
            self.state.apply(event)
        self.poll_interval = poll_interval if poll_interval is not None else POLL[self.mode]
        self.chart_interval = chart_interval
        self.temperature = 1.0
        self.info: RunInfo | None = None
        self.worker: Worker | None = None
        self.stopping = False
        self.after_stop = None  # "quit" or "back" once training has stopped
        self.trained_out = threading.Event()  # set once a training here has ended, its files closed
        self.training_alive = False  # a training thread is running here (it may outlive the screen, after q)
        self.snap = Snapshot()
        self._seen = -1  # the state's version last handed to the widgets
        self._playground: tuple[float, Playground] | None = None  # (checkpoint mtime, loaded run)
        self.layout_class = ""
        self._keys: tuple | None = None  # what the keys could do when the footer was last refreshed

    # --- layout -------------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield TopBar(id="topbar")
        yield Tabs(*(Tab(f"{i} {name}", id=f"tab-{key}") for i, (key, name) in
                     enumerate(zip(TABS, ("Loss", "Samples", "P(next)", "Run")), 1)), id="tabs")
        yield Static("", id="error")
        with Container(id="body"):
            yield LossChart(min_interval=self.chart_interval, id="loss")
            yield BigramTable(id="bigrams")
            yield SamplesPanel(id="samples")
            yield StatsPanel(id="stats")
        # ctrl+p still opens the command palette; the room goes to keys, which never end mid-word (FittingFooter)
        yield FittingFooter(compact=True, show_command_palette=False)

    _paused_generator = None  # (step, generator): the playground's draws while paused at that step
    _applied_prefix = ""  # the prefix of the last samples drawn here (a refused one is not applied)
    _refused = False  # the score line shows a refusal (cleared by the next draw)
    _problem: str | None = None  # why the followed metrics.jsonl cannot be read, as last said

    def on_mount(self) -> None:
        self.app.shown_run = self  # what `makemore tui` names when it ends
        self.topbar = self.query_one(TopBar)
        self.chart = self.query_one(LossChart)
        self.samples = self.query_one(SamplesPanel)
        self.stats = self.query_one(StatsPanel)
        self.table = self.query_one(BigramTable)
        self.stats.border_title = "Run"
        if self.mode == "follow" and self.run_dir is not None:
            self.stats.where = str(self.run_dir)
        self.add_class("-tab-loss")
        self._fit_layout()
        self.table.focus()
        if self.mode == "train":
            if self.trainer is not None:
                self.temperature = self.trainer.cfg.temperature
            self.worker = self._train()
        self.samples.temperature = self.temperature
        self.call_later(self.poll)  # once mounted: replayed events show at once
        self.set_interval(self.poll_interval, self.poll, name="poll")

    def on_resize(self) -> None:
        self._fit_layout()

    def _fit_layout(self) -> None:
        width, height = self.app.size
        compact = is_compact(width, height)
        wide = not compact and width >= WIDE_FROM[0] and height >= WIDE_FROM[1]
        self.set_class(compact, "-compact")
        self.set_class(wide, "-wide")
        self.layout_class = "compact" if compact else "wide" if wide else "medium"
        self.refresh_bindings()

    @on(Tabs.TabActivated, "#tabs")
    def _tab_activated(self, event: Tabs.TabActivated) -> None:
        self._show_tab((event.tab.id or "tab-loss").removeprefix("tab-"))

    def _show_tab(self, key: str) -> None:
        for name in TABS:
            self.set_class(name == key, f"-tab-{name}")
        if key == "bigrams":
            self.table.focus()
        self._keys_changed()

    @property
    def active_tab(self) -> str:
        return next((name for name in TABS if self.has_class(f"-tab-{name}")), "loss")

    def action_tab(self, name: str) -> None:
        self._show_tab(name)  # at once, so that a widget on that tab can take the focus now
        self.query_one("#tabs", Tabs).active = f"tab-{name}"

    # --- training (a thread worker) ---------------------------------------------------------------

    @work(thread=True, exclusive=True, group="train", exit_on_error=False, name="train")
    def _train(self) -> None:
        self.trained_out.clear()
        self.training_alive = True
        try:
            self._training(get_current_worker())
        finally:  # ended, whichever way (cancelled, refused, failed): nothing of it is left to save
            self.training_alive = False
            self.trained_out.set()

    def _training(self, worker) -> None:
        if self.trainer is None:
            self.trainer, notes = backend.new_trainer(self.request)
            for note in notes if not worker.is_cancelled else ():  # (notify is thread-safe)
                self.notify(note, title="note", timeout=12, markup=False)
            self.run_dir = Path(self.trainer.run_dir)
            self.temperature = self.trainer.cfg.temperature
        trainer = self.trainer
        if self.layout_class == "wide":  # a large panel shows more samples (their own generator: no effect on the loss)
            trainer.cfg.num_samples = max(trainer.cfg.num_samples, WIDE_SAMPLES)
        if worker.is_cancelled:
            return
        def stop_if_cancelled(event) -> None:  # the app is closing: stop after this step and save
            if worker.is_cancelled:
                trainer.request_stop()

        with backend.run_lock(trainer.run_dir):
            # the list is kept: a checkpoint saved while paused (c) goes to the same sinks
            self.sinks = [backend.jsonl_sink(trainer.run_dir), self.state, stop_if_cancelled]
            try:
                backend.drive(trainer, self.sinks)
            finally:
                self.sinks = [self.state]

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker is not self.worker:
            return
        if event.state == WorkerState.ERROR:
            error = event.worker.error
            if isinstance(error, (backend.diverged_type(), MakemoreError)):
                message = str(error)  # says itself what went wrong
            else:
                message = f"{type(error).__name__}: {error}"
            self.state.fail(message)
            self.notify(message, title="training failed", severity="error", timeout=10, markup=False)
        if event.state in (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED):
            self.stopping = False
            self.poll()
            self.refresh_bindings()
            if self.after_stop == "quit":
                self.app.exit()
            elif self.after_stop == "back":
                self._back()

    @property
    def training(self) -> bool:
        return self.worker is not None and self.worker.state in (WorkerState.PENDING, WorkerState.RUNNING)

    @property
    def paused(self) -> bool:
        return self.training and self.trainer is not None and self.trainer.paused

    @property
    def playable(self) -> bool:
        """A model to sample from and score with: a paused trainer, or a checkpoint in the run directory."""
        if self.paused:
            return True
        if self.training:
            return False
        run_dir = self.current_run_dir
        return run_dir is not None and (run_dir / backend.BEST).exists()

    @property
    def can_sample(self) -> bool:
        """``s`` acts: the trainer draws at its next step, or a model is at hand to draw from."""
        return (self.training and not self.stopping and self.trainer is not None) or self.playable

    @property
    def current_run_dir(self) -> Path | None:
        if self.run_dir is not None:
            return self.run_dir
        st = self.snap.started
        return Path(st.run_dir) if st is not None and backend.is_run_dir(Path(st.run_dir)) else None

    # --- keys ---------------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Keys that cannot act now are hidden from the footer (and do nothing)."""
        if isinstance(self.focused, Input):  # the box takes the keys (typed into it): only Esc leaves it
            return action == "leave_input"
        if action == "leave_input":
            return False
        compact = self.has_class("-compact")
        if action in ("pause", "resume"):
            return (self.training and not self.stopping and self.trainer is not None
                    and self.trainer.paused == (action == "resume"))
        if action == "save":
            return self.training and not self.stopping and self.trainer is not None
        # with the panels as tabs, a key that acts on one panel shows only on its tab (the footer is short)
        if action == "sample":
            return self.can_sample
        if action == "temperature":
            return self.check_action("sample", ()) and (not compact or self.active_tab == "samples")
        if action == "focus_input":
            if parameters == ("word",) and self.samples.text_mode:
                return False  # a text run has no words to score
            return self.playable and (not compact or self.active_tab == "samples")
        if action in ("log_scale", "smoothing"):
            return not compact or self.active_tab == "loss"
        if action == "tab":
            return compact
        return True

    def action_resume(self) -> None:
        self.action_pause()

    def action_pause(self) -> None:
        """p: pause the training run, or resume it if paused."""
        t = self.trainer
        if t is None or not self.training:
            return
        if t.paused:
            t.resume()
        else:
            t.pause()
        self.state.set_paused(t.paused, t.step)
        self.samples.playable = self.playable
        self.poll()
        self.refresh_bindings()

    def action_sample(self) -> None:
        if self.paused or not self.training:
            self._ask("sample", self.query_one("#prefix", Input).value)
        elif self.trainer is not None:
            self.trainer.request_samples(self.temperature)
            self.samples.note = "sampling"

    def action_save(self) -> None:
        if self.trainer is None or not self.training:
            return
        if self.trainer.paused:
            self._play("save", "")
        else:
            self.trainer.request_save()
            self.notify("saving a checkpoint", timeout=3, markup=False)

    def action_temperature(self, delta: float) -> None:
        self.temperature = round(min(3.0, max(0.1, self.temperature + delta)), 2)
        self.samples.temperature = self.temperature
        self.action_sample()

    def action_focus_input(self, which: str) -> None:
        if self.has_class("-compact"):
            self.action_tab("samples")
        self.call_after_refresh(self.query_one(f"#{which}", Input).focus)  # once shown

    # Enter applies the box and leaves it, so that the keys act again (typing on added to the box before)
    @on(Input.Submitted, "#prefix")
    def _prefix_submitted(self, event: Input.Submitted) -> None:
        self._ask("sample", event.value)
        self.table.focus()

    @on(Input.Submitted, "#word")
    def _word_submitted(self, event: Input.Submitted) -> None:
        self._ask("score", event.value.strip())
        self.table.focus()

    def action_log_scale(self) -> None:
        self.chart.log_scale = not self.chart.log_scale

    def action_smoothing(self) -> None:
        self.chart.smoothing = not self.chart.smoothing

    def action_screenshot(self) -> None:
        """An SVG of the screen into the run directory (or the working directory when there is none)."""
        folder = self.current_run_dir or Path(".")
        stem = f"screenshot-{time.strftime('%Y%m%d-%H%M%S')}"
        svg = self.app.export_screenshot()
        try:
            for n in itertools.count(1):  # two in the same second: -2, -3, ... (mode "x" never overwrites)
                path = folder / (f"{stem}.svg" if n == 1 else f"{stem}-{n}.svg")
                try:
                    with open(path, "x", encoding="utf-8") as f:
                        f.write(svg)
                    break
                except FileExistsError:
                    continue
        except OSError as e:
            self.notify(f"{folder}: cannot write a screenshot ({e.strerror or e})", severity="error", markup=False)
            return
        self.notify(f"screenshot saved: {path}", timeout=6, markup=False)

    def on_descendant_focus(self) -> None:
        self.refresh_bindings()  # into a box or out of it: the footer shows the keys that act

    def on_descendant_blur(self) -> None:
        self.refresh_bindings()

    def action_leave_input(self) -> None:
        """Esc: leave the box without applying it. The prefix box goes back to the prefix last applied, the one
        the panel's title shows and the next `s` uses."""
        if isinstance(self.focused, Input) and self.focused.id == "prefix":
            self.focused.value = self._applied_prefix
        self.table.focus()

    def action_back(self) -> None:
        """Esc: leave an input; otherwise back to the start screen (training here stops and saves first)."""
        if isinstance(self.focused, Input):
            self.action_leave_input()
            return
        if self.training and self.trainer is not None:
            self.after_stop = "back"
            self._stop("stopping: saving a checkpoint, then back to the runs")
            return
        self._back()

    def _back(self) -> None:
        from makemore.tui.start_screen import StartScreen

        if len(self.app.screen_stack) > 2:  # opened from the start screen
            self.app.pop_screen()
        else:
            # a run from elsewhere (`makemore tui path/to/run`): its neighbours are listed beside runs/'s
            beside = self.run_dir.parent if self.run_dir is not None else None
            self.app.switch_screen(StartScreen(self.app.runs_root, beside=beside))

    def action_diagnostics(self) -> None:
        from makemore.tui.diagnostics_screen import DiagnosticsScreen

        replay = self.app.source.get("events") if self.mode == "replay" else None
        self.app.push_screen(DiagnosticsScreen(lambda: self.run_dir, events=replay, diag_interval=self._diag_interval))

    def _diag_interval(self) -> int | None:
        """Steps between the diagnostics records of a run training here with them on (the TUI's default); else None."""
        if not self.training:
            return None
        if self.trainer is not None:
            return self.trainer.cfg.diag_interval if self.trainer.cfg.diagnostics else None
        train = self.request.train if self.request is not None else {}  # still preparing: as the request says
        return (train.get("diag_interval") or TrainConfig.diag_interval) if train.get("diagnostics") else None

    def action_quit_run(self) -> None:
        """Quit; while training, stop after the current step, save, then quit (a second q quits at once)."""
        if self.training and self.trainer is not None and self.after_stop != "quit":
            self.after_stop = "quit"
            self._stop("stopping: saving a checkpoint, then quitting (q again quits now)")
            return
        self.app.exit()

    def _stop(self, message: str) -> None:
        self.stopping = True
        self.trainer.request_stop()
        self.notify(message, timeout=10, markup=False)
        self.poll()
        self.refresh_bindings()

    def stop_training(self) -> None:
        """Called when the app closes: unblock a paused trainer so its thread ends."""
        if self.trainer is not None:
            self.trainer.request_stop()

    # --- the playground (a thread worker: loading torch and a model, sampling, scoring) -------------

    def _ask(self, job: str, text: str) -> None:
        """Say at once that the key was heard (loading torch and a checkpoint takes seconds), then ``_play``."""
        loading = self._needs_loading()
        if job == "sample":
            self.samples.note = "loading the model to sample" if loading else "sampling"
        else:
            self.samples.score = Text("loading the model to score" if loading else "scoring", style="italic dim")
        self._play(job, text)

    def _needs_loading(self) -> bool:
        """Whether the playground loads a checkpoint first: none loaded yet, or a newer best one saved since."""
        if self.paused:  # the live model
            return False
        if self._playground is None:
            return True
        run_dir = self.current_run_dir
        try:
            return run_dir is not None and (run_dir / backend.BEST).stat().st_mtime != self._playground[0]
        except OSError:
            return False

    @work(thread=True, exclusive=True, group="play", exit_on_error=False, name="play")
    def _play(self, job: str, text: str) -> None:
        try:
            if job == "save":
                saved = Playground.from_trainer(self.trainer).save()
                for s in self.sinks:
                    s(saved)
                self.app.call_from_thread(self.notify, f"saved {saved.path} at step {saved.step:,}", timeout=4)
                return
            play = self._get_playground()
            if job == "sample":
                capacity = self.app.call_from_thread(self._sample_capacity)
                drawn = play.sample(capacity, self.temperature, text)
                self._applied_prefix = text
                # as many as the panel shows, no more: how many columns fit depends on the longest word drawn
                self.state.apply(self.app.call_from_thread(self.samples.fit, drawn))
                if self._refused:  # an earlier refusal no longer holds: these samples were drawn
                    self._refused = False
                    self.app.call_from_thread(setattr, self.samples, "score", "")
            else:
                score = play.score(text)
                line = Text.assemble((score.word, "bold"), f"  {score.nll:.3f} nats/char",
                                     f" (perplexity {score.perplexity:.1f}) · ", (score.tag, "dim"),
                                     f" · {play.source or 'live model'}")
                self.app.call_from_thread(setattr, self.samples, "score", line)
        except Exception as e:  # (a refusal, or what loading or sampling failed on): said, not swallowed
            self._refused = True
            said = str(e) if isinstance(e, MakemoreError) else f"{type(e).__name__}: {e}"
            self.app.call_from_thread(setattr, self.samples, "note", "")  # what was asked is answered, below
            self.app.call_from_thread(setattr, self.samples, "score", Text(said, style="red"))

    def _get_playground(self) -> Playground:
        if self.paused:  # the live model, at its current step; one generator across the draws of a pause
            play = Playground.from_trainer(self.trainer)
            if self._paused_generator is None or self._paused_generator[0] != self.trainer.step:
                self._paused_generator = (self.trainer.step, play.generator)
            play.generator = self._paused_generator[1]  # each press of s draws new words, as from a checkpoint
            return play
        run_dir = self.current_run_dir
        if run_dir is None:
            raise MakemoreError("no run directory to load a model from")
        best = run_dir / backend.BEST
        try:
            mtime = best.stat().st_mtime
        except OSError:
            raise MakemoreError(f"{best}: no checkpoint yet") from None
        if self._playground is None or self._playground[0] != mtime:  # a newer best checkpoint: reload
            self._playground = (mtime, Playground.from_run(run_dir))
        return self._playground[1]

    def _sample_capacity(self) -> int:
        """As many samples as the panel can show (at least 12): words of up to 10 cells, the most columns there
        can be. Those that do not fit once drawn are left out (``SamplesPanel.fit``)."""
        from makemore.tui.widgets.samples import columns_for

        words = self.query_one("#sample-words", Static)
        cols = columns_for(words.size.width, [])
        rows = max(1, words.size.height - 1)
        return max(self.samples.at_least, min(200, cols * rows))

    # --- drawing ------------------------------------------------------------------------------------

    def poll(self) -> None:
        if not self.app.is_running or not self.is_mounted:
            return  # timers can fire while the app shuts down
        if self.paused and self.snap.paused_at != self.trainer.step:  # it pauses once the step under way is done
            self.state.set_paused(True, self.trainer.step)
        if self.tail is not None:
            for event in self.tail.poll():
                self.state.apply(event)
            if self.tail.written is not None:  # a stall is judged by when the file changed, not when it was read
                self.state.written(self.tail.written)
            skipped_note(self, self.tail)
            if self.tail.problem != self._problem:  # said once, and on the chart until the file can be read
                self._problem = self.tail.problem
                if self._problem:
                    self.notify(self._problem, title="cannot read the run's events", severity="error", timeout=10,
                                markup=False)
                self.chart.waiting = self._waiting(self.snap)
                self.topbar.title = self._title(self.snap)
            if self.tail.behind:  # a long backlog: read on at once rather than a chunk per interval
                self.set_timer(0.01, self.poll)
        version = self.state.version
        if version != self._seen:
            self._seen = version
            self.snap = self.state.snapshot()
            self._hand_down(self.snap)
        self.topbar.status = self._status(self.snap)  # changes with time too (stalled)
        if self.stats.figures is not None and self.stats.figures.stalled != self._stalled(self.snap):
            self.stats.figures = dataclasses.replace(self.stats.figures, stalled=self._stalled(self.snap))
        self._keys_changed()

    def _hand_down(self, snap: Snapshot) -> None:
        """Give each widget its part of the snapshot; a widget whose part did not change does not redraw."""
        if snap.started is not None and self.info is None:
            run_dir = self.current_run_dir or Path(snap.started.run_dir)
            self.info = read_run_info(run_dir, snap.started.vocab, text=snap.started.mode == "text")
            self.table.vocab = tuple(snap.started.vocab)
            self.table.info = self.info
            self.table.note = no_table_note(snap.started)
            self.chart.unit = "token" if is_token_run(snap.started) else "char"
            self.samples.text_mode = snap.started.mode == "text"
        with self.app.batch_update():
            self.topbar.title = self._title(snap)
            self.topbar.summary = self._summary(snap)
            self.chart.waiting = self._waiting(snap)
            self.chart.steps = snap.steps
            self.chart.evals = snap.evals
            if snap.samples is not self.samples.samples:
                self.samples.note = ""  # the samples asked for have come
            self.samples.samples = snap.samples
            if self.mode != "train" and snap.samples is not None and not hasattr(snap.samples, "source"):
                self.samples.temperature = self.temperature = snap.samples.temperature
            self.samples.playable = self.playable
            self.table.bigrams = snap.bigrams
            self.stats.figures = dataclasses.replace(snap.figures(), stalled=self._stalled(snap))
            error = self.query_one("#error", Static)
            if snap.failed:
                error.update(Text(f"training failed: {snap.failed}", style="bold"))
            error.set_class(bool(snap.failed), "-shown")

    def _keys_changed(self) -> None:
        """Refresh the footer when what the keys can do has changed (not on every event: it recomposes)."""
        now = (self.training, self.trainer is not None, self.paused, self.stopping, self.playable, self.layout_class,
               self.active_tab)
        if now != self._keys:
            self._keys = now
            self.samples.can_sample = self.can_sample  # the panel's subtitle offers the keys the footer shows
            self.refresh_bindings()

    def _waiting(self, snap: Snapshot) -> str:
        if self._problem:  # looked at again each poll: a file put in its place is read
            return f"cannot read the run's events: {self._problem}"
        if snap.started is None:
            if self.mode == "follow" and not backend.is_run_dir(self.run_dir):
                if self.run_dir is not None and not Path(self.run_dir).exists():  # a typo waits too: say so
                    return (f"waiting for {self.run_dir} to start: no such directory yet "
                            f"(`makemore train DATA -o {self.run_dir}` makes it; q quits)")
                return f"waiting for {self.run_dir} to start"
            return "preparing: loading torch and the data" if self.mode == "train" else "waiting for the first event"
        return "waiting for the first step"

    def _title(self, snap: Snapshot) -> Text | str:
        st = snap.started
        if st is None:
            where = self.run_dir or (self.request.data if self.request is not None else "")
            if self.mode == "follow" and not backend.is_run_dir(self.run_dir):
                return f"makemore · waiting for {where} to start"
            if self._problem:
                return f"makemore · {where} · cannot read its events"
            return (f"makemore · {where} · preparing (loading torch and the data)" if self.mode == "train"
                    else f"makemore · {where} · waiting for the first event")
        return Text.assemble(("makemore", "bold"), f" · {st.dataset} ({plural(st.num_words, st.item)}) · ",
                             (st.model_type, "bold"), f" {st.num_params:,} params · {st.device} · "
                             f"{self.run_dir or st.run_dir}")

    @staticmethod
    def _summary(snap: Snapshot) -> str:
        if snap.started is None:
            return ""
        total = f"/{snap.started.max_steps:,}" if snap.started.max_steps else ""
        val = f" val {fmt_loss(snap.evals[-1].val_loss)}" if snap.evals else ""
        bpc, _ = text_bpc(snap.started, snap.evals[-1] if snap.evals else None)
        if bpc is not None:
            val += f" ({fmt_bpc(bpc)} bits/char)"
        loss = f" loss {fmt_loss(snap.last_step.loss)}" if snap.last_step else ""
        return f"step {snap.step:,}{total}{loss}{val}"

    def _stalled(self, snap: Snapshot) -> bool:
        """A followed run that has not ended and whose metrics.jsonl has not been written for ``STALLED_AFTER``
        seconds."""
        return (self.mode == "follow" and bool(snap.version) and not (snap.finished or snap.failed)
                and time.time() - snap.last_event_time > STALLED_AFTER)

    def _status(self, snap: Snapshot) -> Text:
        if snap.failed:
            return Text("✖ failed", style="bold red")
        if snap.stopped:
            return Text("■ stopped", style="bold yellow")
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
        if self._problem:
            return Text("✖ unreadable", style="bold red")
        if self._stalled(snap):
            return Text("◌ stalled", style="bold yellow")
        if snap.started is None:
            return Text("○ waiting", style="bold cyan")
        return Text("● following", style="bold cyan")
