"""The diagnostics screen (key ``d`` on the run screen): the lectures' instruments, live.

Activation histograms per layer; saturation and dead units per layer with warnings (key ``a`` turns both panels
to the layers' activation gradients, d loss / d output, and back); the update-to-data ratio of
every weight matrix over the steps, with the lecture's -3 line and the AdamW band; the gradient norm and the
learning rate over the steps; the character embeddings on their first two principal components.

It reads the run's ``metrics.jsonl`` (which the TUI's own training writes too), so it works the same while
training here, following another process and replaying a finished run; scripted events (tests) can be given
instead. Nothing here touches the trainer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Footer, Static

from makemore.events import Diagnostics, Event, Started, Step
from makemore.instruments import HEALTHY_UPDATE
from makemore.tui.follow import MetricsTail
from makemore.tui.widgets.diagnostics import (ActivationHistograms, EmbeddingScatter, LayerTable, SeriesChart,
                                              update_ratio_hlines)

TUI_TRAIN_DEFAULTS = {"diagnostics": True}  # in the TUI the instruments are on unless the user says otherwise
MAX_RATIO_LINES = 8  # weight matrices drawn in the update-to-data chart (the largest ones)


def with_tui_defaults(train: dict) -> dict:
    """A training request's options with the TUI's defaults for those the user left unset (None)."""
    return {**train, **{k: v for k, v in TUI_TRAIN_DEFAULTS.items() if train.get(k) is None}}


class DiagnosticsHistory:
    """What the screen shows, accumulated from events (no Textual): the latest record and the series."""

    def __init__(self) -> None:
        self.vocab: list[str] = []
        self.latest: Diagnostics | None = None
        self.ratios: dict[str, list[tuple[int, float]]] = {}
        self.sizes: dict[str, int] = {}
        self.grad_norm: list[tuple[int, float]] = []
        self.lr: list[tuple[int, float]] = []
        self.version = 0

    def apply(self, event: Event) -> None:
        if isinstance(event, Started):
            self.vocab = list(event.vocab)
            if event.start_step == 0:  # a new run in the same file: start the series again
                self.__init__()
                self.vocab = list(event.vocab)
        elif isinstance(event, Step):
            self.lr.append((event.step, event.lr))
            if event.grad_norm is not None:
                self.grad_norm.append((event.step, event.grad_norm))
        elif isinstance(event, Diagnostics):
            self.latest = event
            for w in event.weights:
                self.sizes[w.name] = _numel(w.shape)
                if w.update_to_data is not None:
                    self.ratios.setdefault(w.name, []).append((event.step, w.update_to_data))
        else:
            return
        self.version += 1

    def ratio_series(self) -> dict[str, list[tuple[int, float]]]:
        names = sorted(self.ratios, key=lambda n: -self.sizes.get(n, 0))[:MAX_RATIO_LINES]
        return {n: list(self.ratios[n]) for n in names}


def _numel(shape: list[int]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


class DiagnosticsScreen(Screen):
    BINDINGS = [
        Binding("escape,d", "back", "back"),
        Binding("q", "quit_run", "quit"),
        Binding("a", "gradients", "activations/gradients"),
        Binding("g", "log_norm", "log grad norm"),
    ]
    def action_quit_run(self) -> None:
        """q quits from here as from the run screen below: a run training here is saved first."""
        below = self.app.run_screen()
        self.app.pop_screen()
        if below is not None:
            below.action_quit_run()
        else:
            self.app.exit()

    DEFAULT_CSS = """
    DiagnosticsScreen #diag-title { height: 1; background: $panel; padding: 0 1; }
    DiagnosticsScreen .diag-row { height: 1fr; }
    DiagnosticsScreen .diag-panel { border: round $primary-darken-1; border-title-style: bold;
                                    border-subtitle-color: $text-muted; }
    DiagnosticsScreen #hists { width: 1fr; }
    DiagnosticsScreen #layers { width: 1fr; }
    DiagnosticsScreen #ratios { width: 2fr; }
    DiagnosticsScreen #embedding { width: 1fr; }
    """

    def __init__(self, run_dir: Path | Callable[[], Path | None] | None = None, events: list[Event] | None = None,
                 poll_interval: float = 0.5):
        super().__init__()
        self._run_dir = run_dir
        self.tail: MetricsTail | None = None
        self.history = DiagnosticsHistory()
        for event in events or []:
            self.history.apply(event)
        self.poll_interval = poll_interval
        self.log_norm = False
        self._drawn = -1

    @property
    def run_dir(self) -> Path | None:
        value = self._run_dir() if callable(self._run_dir) else self._run_dir
        return Path(value) if value is not None else None

    def compose(self) -> ComposeResult:
        yield Static("diagnostics", id="diag-title")
        with Horizontal(classes="diag-row"):
            yield ActivationHistograms(id="hists", classes="diag-panel")
            yield LayerTable(id="layers", classes="diag-panel")
        with Horizontal(classes="diag-row"):
            yield SeriesChart("log10 update/data", id="ratios", classes="diag-panel")
            yield EmbeddingScatter(id="embedding", classes="diag-panel")
        with Horizontal(classes="diag-row"):
            yield SeriesChart("norm", id="grad-norm", classes="diag-panel")
            yield SeriesChart("lr", id="lr", classes="diag-panel")
        yield Footer()

    def on_mount(self) -> None:
        lo, hi = HEALTHY_UPDATE
        self.query_one("#ratios").border_title = "Update/data, log10, per weight matrix"
        self.query_one("#ratios").border_subtitle = f"red: -3 (lecture, SGD) · gray: AdamW band {lo:g} to {hi:g}"
        self.query_one("#grad-norm").border_title = "Gradient norm before clipping"
        self.query_one("#lr").border_title = "Learning rate"
        self.query_one("#embedding").border_title = "Embeddings (PCA)"
        self.call_after_refresh(self.refresh_view)  # once mounted: a replayed run shows at once, not at the first poll
        self.set_interval(self.poll_interval, self.refresh_view, name="diagnostics-poll")

    def refresh_view(self) -> None:
        if not self.app.is_running or not self.is_mounted:
            return
        run_dir = self.run_dir
        if self.tail is None and run_dir is not None:
            self.tail = MetricsTail(run_dir)
        if self.tail is not None:
            for event in self.tail.poll():
                self.history.apply(event)
        h = self.history
        if h.version == self._drawn:
            return
        self._drawn = h.version
        with self.app.batch_update():
            latest = h.latest
            where = f" · {run_dir}" if run_dir is not None else ""
            if latest is None:
                title = Text(f"diagnostics{where} · no record yet (train with --diagnostics; every "
                             f"--diag-interval steps)", style="bold")
            else:
                norm = f"{latest.grad_norm:.3g}" if latest.grad_norm is not None else "-"
                title = Text.assemble(("diagnostics", "bold"), f"{where} · last record at step {latest.step:,} · "
                                      f"lr {latest.lr:.2e} · grad norm {norm}")
            self.query_one("#diag-title", Static).update(title)
            self.query_one(ActivationHistograms).show(latest)
            self.query_one(LayerTable).show(latest)
            self.query_one("#ratios", SeriesChart).set_data(h.ratio_series(), update_ratio_hlines())
            self.query_one("#grad-norm", SeriesChart).set_data({"grad norm": list(h.grad_norm)},
                                                               log_y=self.log_norm)
            self.query_one("#lr", SeriesChart).set_data({"lr": list(h.lr)})
            embedding = self.query_one(EmbeddingScatter)
            embedding.set_data(latest.embedding if latest else [], h.vocab)
            if latest is not None and latest.embedding_variance is not None:
                embedding.border_subtitle = f"first two components: {latest.embedding_variance:.0%} of the variance"

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_gradients(self) -> None:
        """Both layer panels between the activations and their gradients (the widgets redraw themselves)."""
        for widget in (self.query_one(ActivationHistograms), self.query_one(LayerTable)):
            widget.gradients = not widget.gradients

    def action_log_norm(self) -> None:
        self.log_norm = not self.log_norm
        self._drawn = -1
        self.refresh_view()
