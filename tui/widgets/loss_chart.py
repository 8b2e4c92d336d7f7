"""Training and validation loss against step, drawn with plotext through textual-plotext.

The widget owns what it shows (``steps``, ``evals``, ``log_scale``, ``smoothing``, ``waiting``) as reactive
attributes and replots when one changes, at most once per ``min_interval`` seconds. Train is a thin braille
line, val a row of ◆ at each evaluation, so the two read apart without colour; the title says which is which.
"""

from __future__ import annotations

import math
import time

from rich.text import Text
from textual.reactive import reactive
from textual_plotext import PlotextPlot

from makemore.events import Eval
from makemore.tui.widgets.log_axis import linear_ticks, log_ticks, logged

VAL_MARKER = "◆"


def downsample(points: list[tuple[int, float]], limit: int) -> list[tuple[int, float]]:
    """At most ``limit`` points: the mean of equal-sized runs of consecutive points (keeps the last point)."""
    if len(points) <= limit or limit < 2:
        return points
    size = math.ceil(len(points) / limit)
    out = []
    for i in range(0, len(points), size):
        chunk = points[i : i + size]
        out.append((chunk[-1][0], sum(y for _, y in chunk) / len(chunk)))
    return out


def ema(values: list[float], beta: float = 0.9) -> list[float]:
    """Exponential moving average with bias correction, so the first points are not pulled towards zero."""
    out, avg = [], 0.0
    for i, v in enumerate(values, 1):
        avg = beta * avg + (1 - beta) * v
        out.append(avg / (1 - beta**i))
    return out


def nice_ticks(hi: float, count: int = 5) -> list[int]:
    """Round step values from 0 to about ``hi``: 0, 2k, 4k, ... rather than plotext's 0.0, 172.5, ..."""
    if hi <= 0:
        return [0]
    raw = hi / count
    magnitude = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    step = next((m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw), 10 * magnitude)
    step = max(1, int(step))
    return list(range(0, int(hi) + 1, step))


def plot_rows(widget) -> int:
    """The rows of a chart's y axis: its height less the frame above and below, the x tick labels and the x
    label."""
    return max(1, widget.size.height - 4)


def step_label(x: int) -> str:
    if x >= 1_000_000:
        return f"{x / 1e6:g}M"
    return f"{x / 1000:g}k" if x >= 1000 else str(x)


class ThrottledPlot(PlotextPlot):
    """A plot that redraws when its data changes, at most once per ``min_interval`` seconds while data streams
    in (a change soon after the last replot waits for the rest of the interval). Subclasses draw in ``draw``
    and give their titles in ``_titles``."""

    def __init__(self, min_interval: float = 1.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.min_interval = min_interval  # seconds between two replots while data streams in
        self._plotted_at = -math.inf
        self._pending = None

    def on_mount(self) -> None:
        super().on_mount()
        self._titles()
        self.replot()

    def _schedule(self, now: bool = False) -> None:
        wait = self._plotted_at + self.min_interval - time.monotonic()
        if now or wait <= 0:
            self.replot()
        elif self._pending is None:
            self._pending = self.set_timer(wait, self.replot)

    def replot(self) -> None:
        self._pending = None
        self._plotted_at = time.monotonic()
        self.plt.clear_figure()
        self.draw(self.plt)
        self.refresh()

    def draw(self, plt) -> None:
        raise NotImplementedError

    def _titles(self) -> None:
        raise NotImplementedError


class LossChart(ThrottledPlot):
    steps: reactive[list[tuple[int, float]]] = reactive(list, repaint=False, init=False)
    evals: reactive[list[Eval]] = reactive(list, repaint=False, init=False)
    log_scale = reactive(False, repaint=False, init=False)
    smoothing = reactive(False, repaint=False, init=False)
    waiting = reactive("waiting for the first step", repaint=False, init=False)  # shown while there is no data
    unit = "char"  # what the loss is per: "char", or "token" for a tokenizer's run (set once the run has started)

    # every change asks for a replot; the first points draw at once
    def watch_steps(self) -> None:
        self._schedule(now=len(self.steps) < 2)

    def watch_evals(self) -> None:
        self._schedule(now=len(self.steps) < 2)

    def watch_log_scale(self) -> None:
        self._titles()
        self.replot()

    def watch_smoothing(self) -> None:
        self._titles()
        self.replot()

    def watch_waiting(self) -> None:
        self.refresh()

    @property
    def has_data(self) -> bool:
        return bool(self.steps or self.evals)

    @property
    def mode(self) -> str:
        return " · ".join(m for m, on in (("log", self.log_scale), ("smoothed", self.smoothing)) if on) or "linear"

    def _titles(self) -> None:
        self.border_title = f"Loss · ── train (cyan) · {VAL_MARKER} val (orange)"
        self.border_subtitle = f"l: log scale · m: smoothing · now {self.mode}"

    def render(self):
        if not self.has_data:
            return Text(self.waiting, style="italic", justify="center")
        return super().render()

    def draw(self, plt) -> None:
        width = max(self.size.width, 40)
        train = downsample(self.steps, 2 * width)
        scale = logged if self.log_scale else list  # see log_axis: the log is taken here, not by plotext
        shown: list[float] = []
        if train:
            ys = [y for _, y in train]
            if self.smoothing:
                ys = ema(ys)
            shown += ys
            plt.plot([x for x, _ in train], scale(ys), color="cyan", marker="braille")
        if self.evals:
            shown += [e.val_loss for e in self.evals]
            plt.scatter([e.step for e in self.evals], scale([e.val_loss for e in self.evals]), color="orange",
                        marker=VAL_MARKER)
        last = max([x for x, _ in train[-1:]] + [e.step for e in self.evals[-1:]] + [0])
        ticks = nice_ticks(last)
        plt.xticks(ticks, [step_label(t) for t in ticks])
        plt.xlabel("step")
        plt.ylabel(f"loss (nats/{self.unit})")
        (log_ticks if self.log_scale else linear_ticks)(plt, shown, plot_rows(self))
