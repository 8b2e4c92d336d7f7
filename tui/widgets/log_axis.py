"""The charts' y axis where plotext's own would not do.

A log scale is drawn by the charts themselves: the values' log10 on a linear axis, the ticks labelled with the
values. (plotext's own ``yscale("log")`` takes the log of the stored data again at every build, and a chart is
built at every render: after a resize or a tab switch it drew nothing, then failed on a negative logarithm.)
Either scale keeps its ticks to what the chart's rows hold, labelled in a few characters: a diverged run's loss
(1e+25) labelled by plotext took 27 columns a label, and its log axis dozens of ticks, one per row at most, each
row labelled with whichever tick fell there."""

from __future__ import annotations

import math

WIDE_FROM = 1e4  # a loss from which plotext's labels (every digit, then ".0") crowd the chart: ours are used


def logged(ys: list[float]) -> list[float]:
    """log10 of each value; a value that is not positive (no logarithm) is left out as NaN, which plots nothing."""
    return [math.log10(y) if y > 0 else math.nan for y in ys]


def most_ticks(rows: int) -> int:
    """How many labelled ticks an axis of ``rows`` rows holds: one every other row, at least two."""
    return max(2, rows // 2)


def label(value: float) -> str:
    return f"{value:.3g}"


def log_ticks(plt, values: list[float], rows: int = 1000) -> None:
    """Ticks for a log axis over ``values``: 1, 2, 5 x 10^k where at least three fall in their range, else five
    evenly spaced in log space, each labelled with its value. More than the ``rows`` of the axis hold: the powers
    of ten alone, every n-th of them if still too many."""
    positive = [v for v in values if v > 0 and math.isfinite(v)]
    if not positive:
        return
    lo, hi = min(positive), max(positive)
    marks = [(m, k) for k in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
             for m in (1, 2, 5) if lo <= m * 10 ** k <= hi]
    most = most_ticks(rows)
    if len(marks) > most:
        powers = [(m, k) for m, k in marks if m == 1]
        marks = powers[::math.ceil(len(powers) / most)]
    ticks = [m * 10 ** k for m, k in marks]
    if len(ticks) < 3:
        a, b = math.log10(lo), math.log10(hi)
        n = min(5, most)
        ticks = [10 ** (a + (b - a) * i / (n - 1)) for i in range(n)] if b > a else [lo]
    plt.yticks([math.log10(t) for t in ticks], [label(t) for t in ticks])


def linear_ticks(plt, values: list[float], rows: int = 1000) -> None:
    """Round ticks labelled in a few characters (2e+24) for a linear axis over values as large as a diverged
    run's loss; below ``WIDE_FROM`` plotext's own ticks are kept."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite or max(abs(v) for v in finite) < WIDE_FROM:
        return
    lo, hi = min(finite), max(finite)
    if hi <= lo:
        plt.yticks([lo], [label(lo)])
        return
    raw = (hi - lo) / min(5, most_ticks(rows))
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    ticks = [i * step for i in range(math.ceil(lo / step), math.floor(hi / step) + 1)]
    if not ticks or ticks[0] - lo > 2 * (hi - lo) / rows:  # the lowest value too, on a row of its own
        ticks.insert(0, lo)
    plt.yticks(ticks, [label(t) for t in ticks])


def round_ticks(plt, values: list[float], rows: int) -> None:
    """Round ticks for a linear axis over ``values`` (-3.5, -3, -2.5 rather than plotext's -3.49, -3.08, -2.67):
    the finest step of 1, 2, 2.5 or 5 x 10^k that puts at most one tick on every other row (three at least, six
    at most); plotext's own where fewer than two fall in the range."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite or max(finite) <= min(finite):
        return
    lo, hi = min(finite), max(finite)
    most = max(3, min(6, rows // 2 + 1))
    k = math.floor(math.log10((hi - lo) / most)) - 1
    for step in (m * 10.0 ** e for e in (k, k + 1, k + 2) for m in (1, 2, 2.5, 5)):
        first, last = math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9)
        if last - first + 1 <= most:
            if last > first:
                ticks = [round(i * step, 12) for i in range(first, last + 1)]
                plt.yticks(ticks, [label(t) for t in ticks])
            return
