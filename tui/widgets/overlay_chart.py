"""Several runs' loss curves on one chart, each run in its own colour (see makemore.tui.overlay).

A run's val loss is a line through its evaluations with the run's marker on each; its train loss is a thin
line in a dimmer shade of the same colour, drawn first so the val curves stay on top (``show_train`` hides
them), and the markers last, over every run's lines. The x axis is the step or the seconds of training
(``x_axis``). Like the single run's chart, the widget owns what it shows as reactive attributes, replots at most
once per ``min_interval`` seconds while data streams in, and downsamples long curves (train to two points per
column, val to one).

On the linear scale the y axis stops at ``CEILING`` times the highest loss a run started at: a run that diverged
(a learning rate too large, 1e+31) would otherwise flatten every other run's curve into the bottom row. What goes
higher is drawn along the top, and the title names the runs it belongs to; the log scale (``l``) shows all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rich.text import Text
from textual.reactive import reactive

from makemore.tui.overlay import RunCurve, loss_axis
from makemore.tui.widgets.cells import middle
from makemore.tui.widgets.log_axis import linear_ticks, log_ticks, logged
from makemore.tui.widgets.loss_chart import ThrottledPlot, downsample, nice_ticks, plot_rows, step_label
from makemore.tui.widgets.stats import fmt_time

CEILING = 1.25  # the linear y axis's top, in multiples of the highest loss a run started at
TIME_STEPS = (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200,
              86400)


def time_ticks(hi: float, count: int = 5) -> list[float]:
    """Round numbers of seconds from 0 to about ``hi`` (0.5 s, 10 s, 30 s, 1 min, 5 min, ... apart)."""
    if hi <= 0:
        return [0]
    step = next((s for s in TIME_STEPS if s >= hi / count), TIME_STEPS[-1] * math.ceil(hi / count / TIME_STEPS[-1]))
    return [round(i * step, 1) for i in range(int(hi / step + 1e-9) + 1)]


def time_labels(ticks: list[float]) -> list[str]:
    """Seconds (0.5s, 30s) when the axis ends under a minute, else m:ss (2:30) or h:mm:ss."""
    if ticks[-1] < 60:
        return [f"{t:g}s" for t in ticks]
    return [fmt_time(t) for t in ticks]


def start_loss(curve: RunCurve) -> float | None:
    """The loss a run started at: its earliest point, train or val (an evaluation at step 0 before its first
    progress record, which may already have diverged), if finite."""
    first = min((p for p in curve.train[:1] + curve.val[:1]), key=lambda p: p[0], default=None)
    return first[2] if first is not None and math.isfinite(first[2]) else None


def ceiling(curves) -> float | None:
    """The top of the linear y axis: ``CEILING`` times the highest loss any run started at (None: no start)."""
    starts = [s for s in map(start_loss, curves) if s is not None and s > 0]
    return CEILING * max(starts) if starts else None


@dataclass(frozen=True)
class Series:
    """One line as drawn: whose, which loss, the points, its colour, and the marker on its points (val only)."""

    run: str
    kind: str  # "train" or "val"
    xs: list[float]
    ys: list[float]
    colour: tuple[int, int, int]
    marker: str | None


class OverlayChart(ThrottledPlot):
    curves: reactive[tuple[RunCurve, ...]] = reactive(tuple, repaint=False, init=False)
    x_axis = reactive("step", repaint=False, init=False)  # "step" or "time"
    show_train = reactive(True, repaint=False, init=False)
    log_scale = reactive(False, repaint=False, init=False)
    above: tuple[str, ...] = ()  # the runs drawn along the top of the last linear chart (higher than its top)
    top: float | None = None  # that chart's top

    def watch_curves(self) -> None:
        self._schedule()

    def watch_x_axis(self) -> None:
        self._titles()
        self.replot()

    def watch_show_train(self) -> None:
        self._titles()
        self.replot()

    def watch_log_scale(self) -> None:
        self._titles()
        self.replot()

    def _titles(self) -> None:
        train = "train dim" if self.show_train else "train hidden"
        self.border_title = f"Loss · val: bright line, a marker per evaluation · {train}"
        if self.above and not self.log_scale:
            looks = {c.name: c.look for c in self.curves}
            runs = (f"{looks[self.above[0]].marker} {middle(self.above[0], 24)} goes" if len(self.above) == 1 else
                    f"{len(self.above)} runs ({' '.join(looks[n].marker for n in self.above)}) go")
            self.border_title = f"Loss · {runs} above {self.top:.3g}, drawn at the top · l: log scale shows all"
        axis = "step" if self.x_axis == "step" else "time"
        scale = "log" if self.log_scale else "linear"
        self.border_subtitle = f"t: train · w: x axis · l: log scale · now x = {axis}, {scale}"

    def render(self):
        if all(c.empty for c in self.curves):
            return Text("waiting for the first step", style="italic", justify="center")
        return super().render()

    def series(self, width: int | None = None) -> list[Series]:
        """What a replot draws, in drawing order: every shown train curve, then every val curve."""
        width = max(self.size.width if width is None else width, 40)
        at = 0 if self.x_axis == "step" else 1  # which coordinate of a point is x
        out = []
        if self.show_train:
            for c in self.curves:
                points = downsample([(p[at], p[2]) for p in c.train], 2 * width)
                if points:
                    out.append(Series(c.name, "train", [x for x, _ in points], [y for _, y in points], c.look.dim,
                                      None))
        for c in self.curves:
            points = downsample([(p[at], p[2]) for p in c.val], width)  # one marker per column at most
            if points:
                out.append(Series(c.name, "val", [x for x, _ in points], [y for _, y in points], c.look.colour,
                                  c.look.marker))
        return out

    def clipped(self, drawn: list[Series]) -> list[Series]:
        """``drawn`` with every loss above the linear axis's top (``ceiling``) drawn at the top; ``above`` and
        ``top`` say whose and where, for the title."""
        top = ceiling(self.curves)
        high = [s for s in drawn if top is not None and any(y > top for y in s.ys)]
        self.above = tuple(dict.fromkeys(s.run for s in high))
        self.top = top if high else None
        if not high:
            return drawn
        return [Series(s.run, s.kind, s.xs, [min(y, top) for y in s.ys], s.colour, s.marker) if s in high else s
                for s in drawn]

    def draw(self, plt) -> None:
        drawn = self.series()
        if self.log_scale:
            self.above, self.top = (), None
        else:
            drawn = self.clipped(drawn)
        self._titles()
        scale = logged if self.log_scale else list  # see log_axis: the log is taken here, not by plotext
        for s in drawn:
            if len(s.xs) > 1:
                plt.plot(s.xs, scale(s.ys), color=s.colour, marker="braille")
            elif s.marker is None:  # one point (a run that diverged at its first record): a dot, not nothing,
                plt.scatter(s.xs, scale(s.ys), color=s.colour, marker="braille")  # as the ticks count it
        # every marker over every line: a later run's line never hides an earlier run's evaluation; where two
        # runs' markers share a cell, the run with fewer evaluations is drawn last (a run evaluated twice, at the
        # steps another is evaluated at, showed none of its markers)
        marked = sorted((s for s in drawn if s.marker is not None), key=lambda s: -len(s.xs))
        for s in marked:
            plt.scatter(s.xs, scale(s.ys), color=s.colour, marker=s.marker)
        last = max((x for s in drawn for x in s.xs[-1:]), default=0)
        if self.x_axis == "step":
            ticks = nice_ticks(last)
            plt.xticks(ticks, [step_label(t) for t in ticks])
            plt.xlabel("step")
        else:
            ticks = time_ticks(last)
            plt.xticks(ticks, time_labels(ticks))
            plt.xlabel("training time")
        plt.ylabel(loss_axis([c.per_token for c in self.curves]))
        (log_ticks if self.log_scale else linear_ticks)(plt, [y for s in drawn for y in s.ys], plot_rows(self))
