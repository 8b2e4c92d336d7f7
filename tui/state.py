"""What the screen shows, rebuilt from events. No Textual here: the training thread (or the metrics follower)
applies events under a lock, and the UI takes a snapshot a few times a second and redraws what changed.

Polling a shared object decouples the training rate from the UI rate: a ``call_from_thread`` per step costs a
blocking round trip through the event loop, while ``apply`` is a few list appends.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

from makemore.events import Bigrams, Eval, Event, Failed, Finished, Samples, Saved, Started, Step


@dataclass
class Snapshot:
    """A consistent copy of the run's state at one moment (lists are copies; events are frozen)."""

    version: int = 0
    started: Started | None = None
    steps: list[tuple[int, float]] = field(default_factory=list)  # (step, mean training loss)
    evals: list[Eval] = field(default_factory=list)
    last_step: Step | None = None
    samples: Samples | None = None
    bigrams: Bigrams | None = None
    saved: Saved | None = None
    finished: Finished | None = None
    failed: str | None = None  # a Failed event's message, or a training exception
    paused: bool = False
    last_event_time: float = 0.0  # time.monotonic() when the last event arrived

    @property
    def step(self) -> int:
        candidates = [self.started.start_step if self.started else 0]
        if self.last_step:
            candidates.append(self.last_step.step)
        if self.evals:
            candidates.append(self.evals[-1].step)
        if self.finished:
            candidates.append(self.finished.step)
        return max(candidates)


class RunState:
    """Thread-safe accumulator of events; ``version`` changes whenever something visible did."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._snap = Snapshot()

    def apply(self, event: Event) -> None:
        with self._lock:
            s = self._snap
            if isinstance(event, Step):
                s.steps.append((event.step, event.loss))
                s.last_step = event
            elif isinstance(event, Eval):
                s.evals.append(event)
            elif isinstance(event, Samples):
                s.samples = event
            elif isinstance(event, Bigrams):
                s.bigrams = event
            elif isinstance(event, Saved):
                s.saved = event
            elif isinstance(event, Started):
                s.started = event
                if event.start_step == 0:  # a fresh run in the same file starts the curve again
                    s.steps.clear()
                    s.evals.clear()
            elif isinstance(event, Finished):
                s.finished = event
            elif isinstance(event, Failed):
                s.failed = event.message
            s.version += 1
            s.last_event_time = time.monotonic()

    __call__ = apply  # a sink like any other: the driver hands it every event

    def fail(self, message: str) -> None:
        with self._lock:
            self._snap.failed = message
            self._snap.version += 1

    def set_paused(self, paused: bool) -> None:
        with self._lock:
            self._snap.paused = paused
            self._snap.version += 1

    @property
    def version(self) -> int:
        return self._snap.version  # an int read is atomic; used to skip redraws cheaply

    def snapshot(self) -> Snapshot:
        with self._lock:
            s = self._snap
            return replace(s, steps=list(s.steps), evals=list(s.evals))


# --- facts about the run that are not in the events -------------------------------------------------

@dataclass(frozen=True)
class RunInfo:
    """Read once from the run directory: what the bigram table means, and the training data's pair counts."""

    exact_bigram: bool  # True when the model sees one character of context, so the table is P(next | prev)
    counts: dict[tuple[int, int], int]  # (prev index, next index) -> count in the training words
    row_totals: dict[int, int]


def read_run_info(run_dir: Path, vocab: list[str]) -> RunInfo:
    """``vocab`` is index -> character with index 0 the start/stop token (as in the Started event)."""
    from makemore.errors import MakemoreError
    from makemore.rundir import RunDir

    run = RunDir(run_dir)
    exact = False
    words: list[str] = []
    try:
        model = run.config.model
        exact = model.type == "bigram" or (model.type == "ngram" and model.hyper.get("context") == 1)
    except MakemoreError:
        pass  # a run still starting, or a damaged one: the table is read as the general case
    try:
        words = (run.split() or {}).get("train", [])
    except MakemoreError:
        pass  # no counts to show
    counts: Counter = Counter()
    stoi = {c: i for i, c in enumerate(vocab) if i > 0}
    for word in words:
        ids = [0, *(stoi.get(c, -1) for c in word), 0]
        counts.update(zip(ids, ids[1:]))
    totals: Counter = Counter()
    for (a, _), n in counts.items():
        totals[a] += n
    return RunInfo(exact_bigram=exact, counts=dict(counts), row_totals=dict(totals))
