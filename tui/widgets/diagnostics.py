"""The diagnostics screen's widgets: activation histograms, the saturation table, and the charts of the
update-to-data ratios, the gradient norm, the learning rate and the embedding scatter (textual-plotext).

Each widget is handed plain data (events, lists of points) and redraws only when that data changed. The
histograms and the layer table own ``gradients``: when set, they show the layers' activation gradients
(d loss / d output) instead of the activations, and say so in their titles; they scroll when a model has more
layers than they have rows (a Transformer records eight a block): with the wheel, or the arrow keys once
focused (Tab)."""

from __future__ import annotations

import math

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.reactive import reactive
from textual.widgets import Static
from textual_plotext import PlotextPlot

from makemore.console import plural
from makemore.events import GRAD_SPAN, Diagnostics, LayerStats
from makemore.instruments import HEALTHY_UPDATE, MAX_LABELS, NO_LAYERS, drawable, joined_labels, layer_warning
from makemore.tui.widgets.log_axis import log_ticks, logged, round_ticks
from makemore.tui.widgets.loss_chart import downsample, nice_ticks, plot_rows, step_label

BLOCKS = " ▁▂▃▄▅▆▇█"


def histogram_line(hist: list[float]) -> str:
    """One character per bin, its height relative to the layer's fullest bin."""
    top = max(hist, default=0.0)
    if top <= 0:
        return " " * len(hist)
    return "".join(BLOCKS[min(len(BLOCKS) - 1, math.ceil(h / top * (len(BLOCKS) - 1)))] for h in hist)


def _range(layer: LayerStats) -> str:
    return f"{layer.lo:g}…{layer.hi:g}"


def _grad_label(layer: LayerStats) -> str:
    return "no gradient" if layer.grad_std is None else f"σ {layer.grad_std:.2e}"


def rebin(hist: list[float], lo: float, hi: float, new_lo: float, new_hi: float, bins: int) -> list[float]:
    """A histogram over [lo, hi] redrawn over ``bins`` equal bins of [new_lo, new_hi], each bin's share spread
    evenly over its width; what falls outside the new range goes to its first or last bin (as recorded)."""
    out = [0.0] * bins
    width, new_width = (hi - lo) / len(hist), (new_hi - new_lo) / bins
    for i, share in enumerate(hist):
        if share <= 0:
            continue
        a, b = lo + i * width, lo + (i + 1) * width
        for j in range(bins):
            ja = -math.inf if j == 0 else new_lo + j * new_width
            jb = math.inf if j == bins - 1 else new_lo + (j + 1) * new_width
            overlap = min(b, jb) - max(a, ja)
            if overlap > 0:
                out[j] += share * overlap / (b - a)
    return out


def shared_gradient_scale(diagnostics: Diagnostics) -> float | None:
    """The median of the layers' activation-gradient stds: the gradient view draws every layer over ±GRAD_SPAN
    of it, so a layer whose gradients shrink shows as a spike and one whose gradients grow piles up at the edges."""
    stds = sorted(layer.grad_std for layer in diagnostics.layers if layer.grad_std)
    return stds[len(stds) // 2] if stds else None


class _RecordView(VerticalScroll):
    """A panel that draws the latest diagnostics record, of the activations or (``gradients``, key ``a``) of
    their gradients, one row a layer, scrolled when they do not fit; subclasses give ``_title`` and ``_draw``."""

    gradients = reactive(False, init=False)
    EMPTY = ""  # shown until the first record

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.body = Static(self.EMPTY)
        self.diagnostics: Diagnostics | None = None

    def compose(self) -> ComposeResult:
        yield self.body

    def update(self, content) -> None:
        self.body.update(content)

    def on_mount(self) -> None:
        self._title()

    def show(self, diagnostics: Diagnostics | None) -> None:
        if diagnostics is self.diagnostics:
            return
        self.diagnostics = diagnostics
        self._draw()

    def watch_gradients(self) -> None:
        self._title()
        self._draw()

    def _title(self) -> None:
        raise NotImplementedError

    def _draw(self) -> None:
        raise NotImplementedError


class ActivationHistograms(_RecordView):
    """Per layer: the histogram of its values at the last record (the lecture's plt.hist of each tanh), or with
    ``gradients`` of its activation gradient (the lecture's second picture: alike across layers when healthy)."""

    DEFAULT_CSS = """
    ActivationHistograms { height: 1fr; padding: 0 1; overflow-y: auto; }
    """
    EMPTY = "no diagnostics yet"

    def _title(self) -> None:
        if self.gradients:
            self.border_title = "Activation gradients, d loss / d output (last record)"
            self.border_subtitle = f"one axis for all: ±{GRAD_SPAN:g} × the median σ · a: activations"
        else:
            self.border_title = "Activation histograms (last record)"
            self.border_subtitle = "a: their gradients"

    def _draw(self) -> None:
        diagnostics = self.diagnostics
        if diagnostics is None:
            self.update("no diagnostics yet")
            return
        if not diagnostics.layers:
            self.update(Text(NO_LAYERS, style="dim"))
            return
        t = Table.grid(padding=(0, 1))
        t.add_column(no_wrap=True, style="bold")
        t.add_column(no_wrap=True)
        t.add_column(no_wrap=True, style="dim")
        shared = shared_gradient_scale(diagnostics)
        for layer in diagnostics.layers:
            if self.gradients:
                line = ""
                if shared is not None and layer.grad_range is not None:
                    hist = rebin(layer.grad_hist, *layer.grad_range, -GRAD_SPAN * shared, GRAD_SPAN * shared,
                                 len(layer.grad_hist))
                    line = histogram_line(hist)
                t.add_row(layer.name, Text(line, style="magenta"), _grad_label(layer))
            else:
                style = "yellow" if layer_warning(layer) else "cyan"
                t.add_row(layer.name, Text(histogram_line(layer.hist), style=style), _range(layer))
        self.update(t)


class LayerTable(_RecordView):
    """Mean, std, saturation and dead units per layer, with the lecture's warnings; with ``gradients``, the
    mean and std of each layer's activation gradient."""

    DEFAULT_CSS = """
    LayerTable { height: 1fr; padding: 0 1; overflow-y: auto; }
    """

    def _title(self) -> None:
        if self.gradients:
            self.border_title = "Activation gradients per layer"
            self.border_subtitle = "healthy: alike across layers"
        else:
            self.border_title = "Saturation and dead units"
            self.border_subtitle = "tanh: |t| > 0.97 · gelu: x < -3 · dead: every example"

    def _draw(self) -> None:
        diagnostics = self.diagnostics
        if diagnostics is None:
            self.update("")
            return
        if not diagnostics.layers:
            self.update(Text(NO_LAYERS, style="dim"))
            return
        if self.gradients:
            self.update(gradient_table(diagnostics))
            return
        t = Table(box=None, pad_edge=False, padding=(0, 1), collapse_padding=True)  # one space between columns
        for col in ("layer", "kind", "mean", "std", "sat", "dead", ""):
            t.add_column(col, justify="left" if col in ("layer", "kind", "") else "right", no_wrap=True)
        warnings = 0
        for layer in diagnostics.layers:
            warn = layer_warning(layer)
            warnings += bool(warn)
            t.add_row(layer.name, layer.kind, f"{layer.mean:+.2f}", f"{layer.std:.2f}",
                      "-" if layer.saturation is None else f"{layer.saturation:.0%}",
                      "-" if layer.dead is None else str(layer.dead),
                      Text(warn, style="bold yellow") if warn else "")
        summary = Text(f"{plural(warnings, 'layer')} to look at" if warnings else "no saturated or dead layers",
                       style="bold yellow" if warnings else "green")
        self.update(Group(summary, t))


def gradient_table(diagnostics: Diagnostics) -> Group:
    """Per layer: the mean and std of d loss / d output, and the std against the layers' median."""
    t = Table(box=None, pad_edge=False, padding=(0, 1), collapse_padding=True)  # one space between columns
    for col in ("layer", "kind", "grad mean", "grad std", "÷ median"):
        t.add_column(col, justify="left" if col in ("layer", "kind") else "right", no_wrap=True)
    shared = shared_gradient_scale(diagnostics)
    for layer in diagnostics.layers:
        if layer.grad_std is None:
            t.add_row(layer.name, layer.kind, "-", "-", "-")
            continue
        t.add_row(layer.name, layer.kind, f"{layer.grad_mean:+.1e}" if layer.grad_mean is not None else "-",
                  f"{layer.grad_std:.2e}", f"{layer.grad_std / shared:.2f}" if shared else "-")
    return Group(Text(f"d loss / d output at step {diagnostics.step:,}", style="bold"), t)


SERIES_COLORS = (51, 201, 46, 226, 208, 39, 196, 141, 118, 213, 229, 33)  # 256-colour codes, plotext's and Rich's


class SeriesChart(PlotextPlot):
    """Lines against the step, with optional horizontal reference lines."""

    DEFAULT_CSS = """
    SeriesChart { height: 1fr; width: 1fr; }
    """

    def __init__(self, ylabel: str = "", **kwargs) -> None:
        super().__init__(**kwargs)
        self.ylabel = ylabel
        self.series: dict[str, list[tuple[int, float]]] = {}
        self.hlines: list[tuple[float, str]] = []
        self.log_y = False
        self.legend: list[tuple[str, int]] = []  # (name, colour) of each line drawn, when there is more than one
        self._key: object = None

    def on_mount(self) -> None:
        super().on_mount()
        self.replot()

    def on_resize(self) -> None:
        self.replot()  # the ticks and the points kept depend on the size

    def set_data(self, series: dict[str, list[tuple[int, float]]], hlines: list[tuple[float, str]] | None = None,
                 log_y: bool = False) -> None:
        key = (tuple((k, len(v), v[-1] if v else None) for k, v in series.items()), tuple(hlines or ()), log_y)
        if key == self._key:
            return
        self._key = key
        self.series, self.hlines, self.log_y = series, list(hlines or []), log_y
        self.replot()

    def replot(self) -> None:
        plt = self.plt
        plt.clear_figure()
        width = max(self.size.width, 40)
        last = 0
        drawn = False
        log = self.log_y
        shown: list[float] = []
        legend: list[tuple[str, int]] = []
        for i, (name, points) in enumerate(self.series.items()):
            points = downsample([(x, y) for x, y in points if y is not None and math.isfinite(y)
                                 and (y > 0 or not log)], 2 * width)
            if not points:
                continue
            shown += [y for _, y in points]
            ys = [y for _, y in points]
            color = SERIES_COLORS[i % len(SERIES_COLORS)]
            plt.plot([x for x, _ in points], logged(ys) if log else ys, marker="braille", color=color)
            legend.append((name.removesuffix(".weight"), color))
            last = max(last, points[-1][0])
            drawn = True
        self.legend = legend if len(self.series) > 1 else []
        for y, color in self.hlines:
            if not log or y > 0:
                plt.hline(math.log10(y) if log else y, color)
        if not drawn:
            plt.plot([0], [0], marker=" ")
        ticks = nice_ticks(last)
        plt.xlim(0, max(last, 1))  # from step 0, where the ticks start (a series may begin later)
        plt.xticks(ticks, [step_label(t) for t in ticks])
        plt.xlabel("step")
        if self.ylabel:
            plt.ylabel(self.ylabel)
        if log and drawn:  # see log_axis: the log is taken here, not by plotext
            log_ticks(plt, shown)
        elif drawn:
            round_ticks(plt, shown + [y for y, _ in self.hlines], plot_rows(self))
        self.refresh()


class SeriesLegend(Static):
    """The lines' names, one a row in their colours, beside the chart: plotext draws its legend over the plot's
    first steps, and a row under it holds four of a Transformer's eight names. Rows it has no room for are
    counted."""

    DEFAULT_CSS = """
    SeriesLegend { width: auto; max-width: 24; height: 1fr; padding: 0 1; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.entries: list[tuple[str, int]] = []

    def show(self, entries: list[tuple[str, int]]) -> None:
        self.entries = list(entries)
        self.display = bool(self.entries)
        self.refresh(layout=True)

    def render(self) -> Text:
        rows = max(self.size.height, 1)
        entries = self.entries
        if len(entries) > rows:
            entries, more = entries[:rows - 1], len(entries) - (rows - 1)
        else:
            more = 0
        lines = [Text(f"━ {name}", style=f"color({color})", no_wrap=True, overflow="ellipsis")
                 for name, color in entries]
        if more:
            lines.append(Text(f"+{more} more", style="dim"))
        return Text("\n").join(lines)


class LegendedChart(Horizontal):
    """A SeriesChart with its legend beside it, as one panel."""

    DEFAULT_CSS = """
    LegendedChart { height: 1fr; width: 1fr; }
    """

    def __init__(self, ylabel: str = "", **kwargs) -> None:
        super().__init__(**kwargs)
        self.chart = SeriesChart(ylabel)
        self.legend = SeriesLegend()

    def compose(self) -> ComposeResult:
        yield self.chart
        yield self.legend

    def on_mount(self) -> None:
        self.legend.show(self.chart.legend)

    def set_data(self, series: dict[str, list[tuple[int, float]]], hlines: list[tuple[float, str]] | None = None,
                 log_y: bool = False) -> None:
        self.chart.set_data(series, hlines, log_y)
        if self.legend.is_mounted:
            self.legend.show(self.chart.legend)

    @property
    def series(self) -> dict[str, list[tuple[int, float]]]:
        return self.chart.series


AXES_WIDTH, AXES_HEIGHT = 8, 3  # the y tick labels and the frame's columns; the frame's and x ticks' rows


class EmbeddingScatter(PlotextPlot):
    """Each token at its embedding's first two principal components, labelled with its character."""

    DEFAULT_CSS = """
    EmbeddingScatter { height: 1fr; width: 1fr; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.coords: list[list[float]] = []
        self.labels: list[str] = []

    def on_mount(self) -> None:
        super().on_mount()
        self.replot()

    def set_data(self, coords: list[list[float]], labels: list[str]) -> None:
        """``labels``: one for each point (``instruments.token_labels``); a point past them is unlabelled."""
        labels = labels[:len(coords)]
        if coords == self.coords and labels == self.labels:
            return
        self.coords, self.labels = coords, labels
        self.replot()

    def replot(self) -> None:
        plt = self.plt
        plt.clear_figure()
        if not self.coords:
            plt.plot([0], [0], marker=" ")
            self.refresh()
            return
        labelled = len(self.labels) <= MAX_LABELS
        xs, ys, labels, left_out = drawable(self.coords, self.labels)  # (a diverged run's NaN: not drawn)
        plt.title(f"{plural(left_out, 'point')} not finite, left out" if left_out else "")
        if not xs:
            plt.plot([0], [0], marker=" ")
            self.refresh()
            return
        plt.scatter(xs, ys, marker=" " if labelled else "·")
        # the plot's area inside plotext's frame and tick labels, or a little less: a coarser grid joins more,
        # never less, than the plot's own
        cols, rows = max(1, self.size.width - AXES_WIDTH), max(1, self.size.height - AXES_HEIGHT)
        for x, y, label in joined_labels(xs, ys, labels, cols, rows) if labelled else []:
            plt.text(label, x, y, color="cyan", alignment="left")  # from x, as joined_labels places it
        self.refresh()

    def on_resize(self) -> None:
        self.replot()  # which labels share a cell depends on the size


def update_ratio_hlines() -> list[tuple[float, str]]:
    """The lecture's -3 (SGD) and the edges of the AdamW band the README documents."""
    lo, hi = HEALTHY_UPDATE
    return [(-3.0, "red"), (lo, "gray"), (hi, "gray")]
