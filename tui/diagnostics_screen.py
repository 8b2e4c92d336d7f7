"""The diagnostics screen (key ``d`` on the run screen): the lectures' instruments, live.

Activation histograms per layer; saturation and dead units per layer with warnings (key ``a`` turns both panels
to the layers' activation gradients, d loss / d output, and back); the update-to-data ratio of
every weight matrix over the steps, with the lecture's -3 line and the AdamW band; the gradient norm and the
learning rate over the steps; the character embeddings on their first two principal components.

Below 120x32, as on the run screen, one view at a time under tabs (keys 1-4): the layers, the update-to-data
ratios, the embeddings, the gradient norm and learning rate; each panel takes the whole width.

It reads the run's ``metrics.jsonl`` (which the TUI's own training writes too), so it works the same while
training here, following another process and replaying a finished run; scripted events (tests) can be given
instead. Nothing here touches the trainer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, Horizontal
from textual.screen import Screen
from textual.widgets import Footer, Static, Tab, Tabs

from makemore.console import plural
from makemore.events import Diagnostics, Event, Started, Step
from makemore.instruments import HEALTHY_UPDATE, token_labels
from makemore.tui.follow import MetricsTail
from makemore.tui.widgets.diagnostics import (ActivationHistograms, EmbeddingScatter, LayerTable, LegendedChart,
                                              SeriesChart, update_ratio_hlines)

from makemore.tui.run_screen import is_compact

TUI_TRAIN_DEFAULTS = {"diagnostics": True}  # in the TUI the instruments are on unless the user says otherwise
MAX_RATIO_LINES = 8  # weight matrices drawn in the update-to-data chart (the largest ones)
VIEWS = {"layers": "Layers", "updates": "Update/data", "embedding": "Embeddings", "norms": "Norm · lr"}  # compact


def with_tui_defaults(train: dict) -> dict:
    """A training request's options with the TUI's defaults for those the user left unset (None)."""
    return {**train, **{k: v for k, v in TUI_TRAIN_DEFAULTS.items() if train.get(k) is None}}


class DiagnosticsHistory:
    """What the screen shows, accumulated from events (no Textual): the latest record and the series."""

    def __init__(self) -> None:
        self.labels: list[str] = []  # the embedding's points, labelled
        self.item = ""  # what the run's symbols are: "word" (a word list's characters), "character", "token"
        self.model_type = ""
        self.latest: Diagnostics | None = None
        self.ratios: dict[str, list[tuple[int, float]]] = {}
        self.sizes: dict[str, int] = {}
        self.grad_norm: list[tuple[int, float]] = []
        self.lr: list[tuple[int, float]] = []
        self.version = 0

    def apply(self, event: Event) -> None:
        if isinstance(event, Started):
            if event.start_step == 0:  # a new run in the same file: start the series again
                self.__init__()
            # the embedding's rows, labelled (see ``diagnostics.embedding_rows``): a word list's start and stop
            # and characters; a character text's characters (its index 0 never occurs); a token run's tokens
            self.item = event.item
            self.labels = token_labels(list(event.vocab)[1:] if self.item == "character" else list(event.vocab),
                                       start=self.item == "word")
            self.model_type = event.model_type
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
        Binding("1", "view('layers')", "panels", key_display="1-4"),
        Binding("2", "view('updates')", show=False),
        Binding("3", "view('embedding')", show=False),
        Binding("4", "view('norms')", show=False),
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
    DiagnosticsScreen #diag-title { height: 1; background: $panel; padding: 0 1; text-wrap: nowrap;
                                    text-overflow: ellipsis; }
    DiagnosticsScreen .diag-row { height: 1fr; }
    DiagnosticsScreen .diag-panel { border: round $primary-darken-1; border-title-style: bold;
                                    border-subtitle-color: $text-muted; }
    DiagnosticsScreen #hists { width: 1fr; }
    DiagnosticsScreen #layers { width: 1fr; }
    DiagnosticsScreen #ratios { width: 2fr; }
    DiagnosticsScreen #embedding { width: 1fr; }
    DiagnosticsScreen #diag-tabs { display: none; height: 2; }
    DiagnosticsScreen #diag-body { height: 1fr; }
    DiagnosticsScreen.-compact #diag-tabs { display: block; }
    DiagnosticsScreen.-compact .diag-row { display: none; layout: vertical; }
    DiagnosticsScreen.-compact .diag-panel, DiagnosticsScreen.-compact #ratios { width: 1fr; height: 1fr; }
    DiagnosticsScreen.-compact.-view-layers #row-layers { display: block; }
    DiagnosticsScreen.-compact.-view-updates #row-updates { display: block; }
    DiagnosticsScreen.-compact.-view-updates #embedding { display: none; }
    DiagnosticsScreen.-compact.-view-embedding #row-updates { display: block; }
    DiagnosticsScreen.-compact.-view-embedding #ratios { display: none; }
    DiagnosticsScreen.-compact.-view-norms #row-norms { display: block; }
    """

    def __init__(self, run_dir: Path | Callable[[], Path | None] | None = None, events: list[Event] | None = None,
                 poll_interval: float = 0.5, diag_interval: Callable[[], int | None] | None = None):
        """``diag_interval``: the steps between records of a run this TUI trains with its instruments on (None
        when it does not), so that the title says when the first record comes rather than how to turn them on."""
        super().__init__()
        self._run_dir = run_dir
        self._diag_interval = diag_interval
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
        yield Tabs(*(Tab(f"{i} {name}", id=f"view-{key}") for i, (key, name) in enumerate(VIEWS.items(), 1)),
                   id="diag-tabs")
        with Container(id="diag-body"):
            with Horizontal(classes="diag-row", id="row-layers"):
                yield ActivationHistograms(id="hists", classes="diag-panel")
                yield LayerTable(id="layers", classes="diag-panel")
            with Horizontal(classes="diag-row", id="row-updates"):
                yield LegendedChart("log10 update/data", id="ratios", classes="diag-panel")
                yield EmbeddingScatter(id="embedding", classes="diag-panel")
            with Horizontal(classes="diag-row", id="row-norms"):
                yield SeriesChart("norm", id="grad-norm", classes="diag-panel")
                yield SeriesChart("lr", id="lr", classes="diag-panel")
        yield Footer()

    # --- layout: below COMPACT_BELOW, one view at a time under tabs ------------------------------------

    def on_resize(self) -> None:
        self.set_class(is_compact(*self.app.size), "-compact")
        self.refresh_bindings()

    @on(Tabs.TabActivated, "#diag-tabs")
    def _view_activated(self, event: Tabs.TabActivated) -> None:
        self._show_view((event.tab.id or "view-layers").removeprefix("view-"))

    def _show_view(self, key: str) -> None:
        for name in VIEWS:
            self.set_class(name == key, f"-view-{name}")
        self.refresh_bindings()

    @property
    def active_view(self) -> str:
        return next((name for name in VIEWS if self.has_class(f"-view-{name}")), "layers")

    def action_view(self, name: str) -> None:
        self._show_view(name)
        self.query_one("#diag-tabs", Tabs).active = f"view-{name}"

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """As on the run screen: with the views as tabs, a key shows only where it acts."""
        compact = self.has_class("-compact")
        if action == "view":
            return compact
        if action == "gradients":
            return not compact or self.active_view == "layers"
        if action == "log_norm":
            return not compact or self.active_view == "norms"
        return True

    def on_mount(self) -> None:
        self._show_view("layers")
        self.on_resize()
        lo, hi = HEALTHY_UPDATE
        self.query_one("#ratios").border_title = f"Update/data, log10 · red: -3, SGD's · gray: AdamW {lo:g} to {hi:g}"
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
                title = Text(f"diagnostics{where} · {self._no_record()}", style="bold")
            else:
                norm = f"{latest.grad_norm:.3g}" if latest.grad_norm is not None else "-"
                title = Text.assemble(("diagnostics", "bold"), f"{where} · step {latest.step:,} · "
                                      f"lr {latest.lr:.2e} · grad norm {norm}")
            self.query_one("#diag-title", Static).update(title)
            self.query_one(ActivationHistograms).show(latest)
            self.query_one(LayerTable).show(latest)
            self.query_one("#ratios", LegendedChart).set_data(h.ratio_series(), update_ratio_hlines())
            self.query_one("#grad-norm", SeriesChart).set_data({"grad norm": list(h.grad_norm)},
                                                               log_y=self.log_norm)
            self.query_one("#lr", SeriesChart).set_data({"lr": list(h.lr)})
            embedding = self.query_one(EmbeddingScatter)
            coords = latest.embedding if latest else []
            if len(coords) == len(h.labels) + 1 and h.item == "character":
                coords = coords[1:]  # recorded before a character text's unused index 0 was left out
            embedding.set_data(coords, h.labels)
            if latest is not None and latest.embedding_variance is not None:
                embedding.border_subtitle = f"PC1 and PC2: {latest.embedding_variance:.0%} of the variance"

    def _no_record(self) -> str:
        """Why there is no record yet, as `makemore diagnose` says it where it can."""
        from makemore.models import FAMILIES

        family = FAMILIES.get(self.history.model_type)
        if family is not None and family.fitted:
            return f"{family.name} is fitted in one pass (counted): nothing to diagnose"
        every = self._diag_interval() if self._diag_interval is not None else None
        if every:
            return f"no record yet: the first comes at the first diagnostics interval (every {plural(every, 'step')})"
        return "no record yet (train with --diagnostics; every --diag-interval steps)"

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
