"""What the screen shows, rebuilt from events. No Textual here: the training thread (or the metrics follower)
applies events under a lock, and the UI takes a snapshot when ``version`` has changed and hands each widget
its part; widgets redraw only when their part changed.

Polling a shared object decouples the training rate from the UI rate: a ``call_from_thread`` per step costs a
blocking round trip through the event loop, while ``apply`` is a few list appends. ``RunState`` is a sink
(``state(event)``), like the console and the metrics file.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

from makemore.events import Arithmetic, Bigrams, Eval, Event, Failed, Finished, Samples, Saved, Started, Step

# seconds since metrics.jsonl was last written before a followed run that has not ended is called stalled
STALLED_AFTER = 30.0


@dataclass(frozen=True)
class Figures:
    """The numbers of the Run panel and the top bar: small, compared cheaply to decide whether to redraw."""

    started: Started | None
    step: int
    last_step: Step | None
    last_eval: Eval | None
    saved: Saved | None
    finished: Finished | None
    failed: str | None
    stalled: bool = False  # a followed run that has written nothing for a while: its rate and ETA are stale
    paused: bool = False  # training here, paused: no time remains to count down
    dtype: str = "float32"  # what the training steps compute in (an Arithmetic event's), shown beside the device


@dataclass(eq=False)
class Snapshot:
    """A consistent copy of the run's state at one moment (lists are copies; events are frozen)."""

    version: int = 0
    started: Started | None = None
    steps: list[tuple[int, float]] = field(default_factory=list)  # (step, mean training loss)
    step_times: list[float] = field(default_factory=list)  # seconds of training at each of ``steps``
    evals: list[Eval] = field(default_factory=list)
    last_step: Step | None = None
    samples: Samples | None = None
    bigrams: Bigrams | None = None
    saved: Saved | None = None
    finished: Finished | None = None
    failed: str | None = None  # a Failed event's message, or a training exception
    failed_at: int | None = None  # the step a Failed event names (steps are logged every few: it may be past the last)
    paused: bool = False
    paused_at: int | None = None  # the step the trainer paused at (steps are logged every few: it may be past the last)
    dtype: str = "float32"  # the training steps' dtype, as the first step's Arithmetic event told it
    # when the run last wrote, as time.time(): the modification time of a followed run's metrics.jsonl (a run
    # abandoned hours ago is stalled at once, not 30 s after it is opened), else when the last event arrived
    last_event_time: float = 0.0

    @property
    def step(self) -> int:
        candidates = [self.started.start_step if self.started else 0]
        if self.last_step:
            candidates.append(self.last_step.step)
        if self.evals:
            candidates.append(self.evals[-1].step)
        if self.finished:
            candidates.append(self.finished.step)
        if self.failed_at is not None:
            candidates.append(self.failed_at)
        if self.paused_at is not None:  # kept once resumed: the step shown does not go back to the last one logged
            candidates.append(self.paused_at)
        return max(candidates)

    @property
    def stopped(self) -> bool:
        """Ended by a stop request (q, Ctrl-C) rather than by reaching its budget."""
        return self.finished is not None and self.finished.reason == "stopped"

    def figures(self) -> Figures:
        return Figures(self.started, self.step, self.last_step, self.evals[-1] if self.evals else None, self.saved,
                       self.finished, self.failed, paused=self.paused, dtype=self.dtype)


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
                s.step_times.append(event.elapsed)
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
                s.finished = None  # a resumed run goes on
                s.failed = s.failed_at = None
                s.paused_at = None
                if event.start_step == 0:  # a fresh run in the same file starts the curve again
                    s.steps.clear()
                    s.step_times.clear()
                    s.evals.clear()
            elif isinstance(event, Finished):
                s.finished = event
            elif isinstance(event, Failed):
                s.failed = event.message
                s.failed_at = event.step
            elif isinstance(event, Arithmetic):
                s.dtype = event.dtype
            s.version += 1
            s.last_event_time = time.time()

    __call__ = apply  # a sink, like the console and the metrics file

    def written(self, at: float) -> None:
        """The followed file was last written at ``at`` (on time.time()'s clock: ``MetricsTail.written``): the
        events read from it arrived then, not when they were read."""
        with self._lock:
            if self._snap.last_event_time != at:
                self._snap.last_event_time = at
                self._snap.version += 1

    def fail(self, message: str) -> None:
        with self._lock:
            self._snap.failed = message
            self._snap.version += 1

    def set_paused(self, paused: bool, step: int | None = None) -> None:
        """Paused or not; ``step``: the step the trainer stands at."""
        with self._lock:
            self._snap.paused = paused
            if step is not None:
                self._snap.paused_at = step
            self._snap.version += 1

    @property
    def version(self) -> int:
        return self._snap.version  # an int read is atomic; used to skip snapshots cheaply

    def snapshot(self) -> Snapshot:
        with self._lock:
            s = self._snap
            return replace(s, steps=list(s.steps), step_times=list(s.step_times), evals=list(s.evals))


# --- facts about the run that are not in the events -------------------------------------------------

@dataclass(frozen=True)
class RunInfo:
    """Read once from the run directory: what the table's rows mean, and counts in the training words that
    match each row's probability.

    Row c of the table is the model's P(next | ⟨start⟩ c). For a model that sees one character (a bigram, or a
    window of one) that is P(next | c) wherever c occurs, and the matching count is of the pair anywhere in a
    word. For a model that sees more, it is the distribution of a word's second character given its first,
    and the matching count is of the words that start with c and continue with next. A text run (``text``)
    has no start: its row c is P(next | c) averaged over the val text, row 0 over every position, and there are
    no words to count in.
    """

    exact_bigram: bool  # the model sees one character of context: the table is P(next | prev) anywhere
    counts: dict[tuple[int, int], int]  # (prev, next) -> the pair anywhere in a training word (start/stop incl.)
    row_totals: dict[int, int]
    start_counts: dict[tuple[int, int], int] = field(default_factory=dict)  # (first, second) -> words; 0 = stop
    start_totals: dict[int, int] = field(default_factory=dict)  # first character -> words
    have_words: bool = True
    text: bool = False  # a text run: one stream of characters, no words to count in

    def matching(self, row: int, col: int) -> tuple[int, int]:
        """(count, total) in the training words that estimate the table's cell (row, col)."""
        if self.exact_bigram or row == 0:
            return self.counts.get((row, col), 0), self.row_totals.get(row, 0)
        return self.start_counts.get((row, col), 0), self.start_totals.get(row, 0)


def count_pairs(words: list[str], vocab: list[str]) -> tuple[Counter, Counter, Counter, Counter]:
    stoi = {c: i for i, c in enumerate(vocab) if i > 0}
    counts: Counter = Counter()
    starts: Counter = Counter()
    for word in words:
        ids = [0, *(stoi.get(c, -1) for c in word), 0]
        counts.update(zip(ids, ids[1:]))
        if len(ids) >= 3:
            starts[(ids[1], ids[2])] += 1
    totals: Counter = Counter()
    for (a, _), n in counts.items():
        totals[a] += n
    start_totals: Counter = Counter()
    for (a, _), n in starts.items():
        start_totals[a] += n
    return counts, totals, starts, start_totals


def read_run_info(run_dir: Path, vocab: list[str], text: bool = False) -> RunInfo:
    """``vocab`` is index -> character with index 0 the start/stop token (as in the Started event); ``text``: a
    text run, which has no training words."""
    from makemore.errors import MakemoreError
    from makemore.tui import backend

    exact = False
    try:
        model_type, hyper = backend.model_of(run_dir)
        exact = model_type == "bigram" or hyper.get("context") == 1
    except (MakemoreError, OSError):
        pass
    words = [] if text else backend.training_words(run_dir)
    counts, totals, starts, start_totals = count_pairs(words, vocab)
    return RunInfo(exact_bigram=exact, counts=dict(counts), row_totals=dict(totals), start_counts=dict(starts),
                   start_totals=dict(start_totals), have_words=bool(words), text=text)
