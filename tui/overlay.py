"""Several runs side by side (`makemore tui RUN RUN...`): what the overlay screen shows, without Textual.

Each run is followed as a single run is (its own ``MetricsTail`` feeding its own ``RunState``). ``run_curve``
turns a run's snapshot into the points the chart draws; ``run_row`` joins the run's summary (``RunDir.summary``,
what `makemore runs` and `makemore compare` print) with what has been read from its metrics since, for the
legend and the table under the chart.
"""

from __future__ import annotations

import bisect
import math
import time
from dataclasses import dataclass
from typing import Any

from makemore.tui.state import STALLED_AFTER, Snapshot

# Okabe and Ito's palette, told apart with the common colour vision deficiencies; each run also has its own
# marker on its val points, so the runs read apart without colour too (ten: past them, the colour tells apart)
PALETTE: tuple[tuple[int, int, int], ...] = ((230, 159, 0), (86, 180, 233), (0, 158, 115), (240, 228, 66),
                                             (204, 121, 167), (213, 94, 0), (0, 114, 178))
MARKERS = ("◆", "●", "▲", "■", "✚", "★", "▼", "✖", "◀", "▶")
TRAIN_DIM = 0.45  # a run's train curve is its colour at this share of its brightness: the val curve leads


@dataclass(frozen=True)
class Look:
    """How one run is drawn: its colour (RGB, the same in the chart, the legend and the table) and marker."""

    colour: tuple[int, int, int]
    marker: str

    @property
    def style(self) -> str:
        return "rgb({},{},{})".format(*self.colour)

    @property
    def dim(self) -> tuple[int, int, int]:
        r, g, b = self.colour
        return round(r * TRAIN_DIM), round(g * TRAIN_DIM), round(b * TRAIN_DIM)


def looks(count: int) -> list[Look]:
    """One look per run: a marker of its own for each of the first ten runs, the colours repeating after seven;
    no two of the first seventy share both."""
    return [Look(PALETTE[i % len(PALETTE)], MARKERS[i % len(MARKERS)]) for i in range(count)]


def eval_seconds(steps: list[int], times: list[float], step: int) -> float:
    """Seconds of training at ``step``, interpolated between the progress records around it (evaluations carry
    no time of their own). Before the first record the time grows in proportion from 0 at step 0."""
    if not steps:
        return 0.0
    i = bisect.bisect_left(steps, step)
    if i < len(steps) and steps[i] == step:
        return times[i]
    if i == 0:
        return times[0] * step / steps[0] if steps[0] > 0 else times[0]
    if i == len(steps):
        return times[-1]
    s0, s1, t0, t1 = steps[i - 1], steps[i], times[i - 1], times[i]
    return t0 + (t1 - t0) * (step - s0) / (s1 - s0)


@dataclass(frozen=True)
class RunCurve:
    """One run's points: ``train`` is (step, seconds, mean training loss) per progress record, ``val`` is
    (step, seconds, val loss) per evaluation."""

    name: str
    look: Look
    train: tuple[tuple[int, float, float], ...]
    val: tuple[tuple[int, float, float], ...]
    per_token: bool = False  # a token run's losses: nats per token, where the others' are per character

    @property
    def empty(self) -> bool:
        return not self.train and not self.val


def run_curve(name: str, look: Look, snap: Snapshot) -> RunCurve:
    steps = [s for s, _ in snap.steps]
    times = list(snap.step_times)
    if len(times) != len(steps):  # a snapshot built without times (never from a RunState): no time axis
        times = [0.0] * len(steps)
    train = tuple((s, t, loss) for (s, loss), t in zip(snap.steps, times))
    val = tuple((e.step, eval_seconds(steps, times, e.step), e.val_loss) for e in snap.evals)
    return RunCurve(name, look, train, val, per_token=snap.started is not None and snap.started.item == "token")


# --- the legend and the table ----------------------------------------------------------------------------

@dataclass(frozen=True)
class RunRow:
    name: str
    look: Look
    type: str | None
    params: int | None
    steps: int
    seconds: float | None  # seconds of training: the finished run's, else the last progress record's
    best_val: float | None
    best_step: int | None
    test: float | None
    status: str  # waiting | following | stalled | finished | stopped | failed | unreadable
    error: str | None = None  # why the run's summary could not be read
    per_token: bool = False  # its losses are nats per token (a token run), marked "*" beside the others'


def run_status(snap: Snapshot, now: float | None = None) -> str:
    if snap.failed:
        return "failed"
    if snap.finished is not None:
        return "stopped" if snap.stopped else "finished"
    now = time.time() if now is None else now  # (last_event_time: when the file was last written; 0: not yet)
    quiet = bool(snap.last_event_time) and now - snap.last_event_time > STALLED_AFTER
    if snap.started is None:  # a file with no start in it, unwritten for as long: stalled too, as the run view says
        return "stalled" if quiet else "waiting"
    return "stalled" if quiet else "following"


def run_row(name: str, look: Look, summary: dict[str, Any] | None, snap: Snapshot, *, error: str | None = None,
            now: float | None = None) -> RunRow:
    """What the run's summary says, completed by what has been read since: the steps and best val of a run
    still being written move on with its metrics; type and size come from its configuration."""
    s = summary or {}
    st = snap.started
    best_val, best_step = s.get("best_val_loss"), s.get("best_step")
    for e in snap.evals:
        if math.isfinite(e.val_loss) and (best_val is None or e.val_loss < best_val):
            best_val, best_step = e.val_loss, e.step
    seconds = s.get("elapsed")
    if snap.finished is not None:
        seconds = snap.finished.elapsed
    elif seconds is None and snap.last_step is not None:
        seconds = snap.last_step.elapsed
    test = snap.finished.test_loss if snap.finished is not None else s.get("test_loss")
    return RunRow(name=name, look=look, type=s.get("type") or (st.model_type if st else None),
                  params=s.get("params") or (st.num_params if st else None),
                  steps=max(s.get("steps") or 0, snap.step), seconds=seconds,
                  best_val=best_val, best_step=best_step, test=test,
                  status="unreadable" if error else run_status(snap, now), error=error,
                  per_token=s.get("loss_unit") == "nats/token" or (st is not None and st.item == "token"))


def loss_axis(per_token: list[bool]) -> str:
    """The loss axis's label for runs whose losses are per character, per token (``per_token``), or both."""
    if per_token and all(per_token):
        return "loss (nats/token)"
    return "loss (nats/char; * nats/token)" if any(per_token) else "loss (nats/char)"
