"""A log-scaled y axis drawn by the charts themselves: the values' log10 on a linear axis, the ticks labelled with
the values. (plotext's own ``yscale("log")`` takes the log of the stored data again at every build, and a chart is
built at every render: after a resize or a tab switch it drew nothing, then failed on a negative logarithm.)"""

from __future__ import annotations

import math


def logged(ys: list[float]) -> list[float]:
    """log10 of each value; a value that is not positive (no logarithm) is left out as NaN, which plots nothing."""
    return [math.log10(y) if y > 0 else math.nan for y in ys]


def log_ticks(plt, values: list[float]) -> None:
    """Ticks for a log axis over ``values``: 1, 2, 5 x 10^k where at least three fall in their range, else five
    evenly spaced in log space, each labelled with its value."""
    positive = [v for v in values if v > 0 and math.isfinite(v)]
    if not positive:
        return
    lo, hi = min(positive), max(positive)
    ticks = [m * 10 ** k for k in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
             for m in (1, 2, 5) if lo <= m * 10 ** k <= hi]
    if len(ticks) < 3:
        a, b = math.log10(lo), math.log10(hi)
        ticks = [10 ** (a + (b - a) * i / 4) for i in range(5)] if b > a else [lo]
    plt.yticks([math.log10(t) for t in ticks], [f"{t:.3g}" for t in ticks])
