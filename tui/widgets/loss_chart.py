"""Training and validation loss against step, drawn with plotext through textual-plotext."""

from __future__ import annotations

import math

from textual_plotext import PlotextPlot

from makemore.events import Eval


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


def step_label(x: int) -> str:
    if x >= 1_000_000:
        return f"{x / 1e6:g}M"
    return f"{x / 1000:g}k" if x >= 1000 else str(x)


class LossChart(PlotextPlot):
    DEFAULT_CSS = """
    LossChart { height: 1fr; width: 1fr; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.steps: list[tuple[int, float]] = []
        self.evals: list[Eval] = []
        self.log_scale = False
        self.smoothing = False

    def on_mount(self) -> None:
        super().on_mount()
        self.replot()

    def set_data(self, steps: list[tuple[int, float]], evals: list[Eval]) -> None:
        self.steps, self.evals = steps, evals
        self.replot()

    def toggle_log_scale(self) -> None:
        self.log_scale = not self.log_scale
        self.replot()

    def toggle_smoothing(self) -> None:
        self.smoothing = not self.smoothing
        self.replot()

    @property
    def mode(self) -> str:
        return " · ".join(m for m, on in (("log", self.log_scale), ("smoothed", self.smoothing)) if on) or "linear"

    def replot(self) -> None:
        plt = self.plt
        plt.clear_figure()
        width = max(self.size.width, 40)
        train = downsample(self.steps, 2 * width)
        if train:
            ys = [y for _, y in train]
            if self.smoothing:
                ys = ema(ys)
            plt.plot([x for x, _ in train], ys, color="cyan", marker="braille")
        if self.evals:
            plt.plot([e.step for e in self.evals], [e.val_loss for e in self.evals], color="orange",
                     marker="braille")
        if not train and not self.evals:
            plt.plot([0], [0], marker=" ")  # keeps the axes without inventing data
        last = max([x for x, _ in train[-1:]] + [e.step for e in self.evals[-1:]] + [0])
        ticks = nice_ticks(last)
        plt.xticks(ticks, [step_label(t) for t in ticks])
        plt.xlabel("step")
        plt.ylabel("loss (nats/char)")
        if self.log_scale:
            plt.yscale("log")
        self.refresh()
