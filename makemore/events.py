"""What the trainer tells the world. Small frozen records, no torch: the console, ``metrics.jsonl``,
TensorBoard and the TUI are all sinks that receive the same events, and a follower rebuilds them from JSON.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True)
class Event:
    kind: ClassVar[str] = "event"

    def to_json(self) -> dict[str, Any]:
        return {"event": self.kind, **dataclasses.asdict(self)}


@dataclass(frozen=True)
class Started(Event):
    kind: ClassVar[str] = "started"
    run_dir: str
    model_type: str
    num_params: int
    device: str
    dataset: str  # the dataset's name (a built-in name or the file's stem)
    num_words: int  # training words
    vocab: list[str]  # index -> character; index 0 is the start/stop token, shown as vocab[0]
    max_steps: int
    batch_size: int
    start_step: int = 0  # > 0 when resuming
    time: float = 0.0  # wall-clock time.time() at the start
    max_time: float | None = None  # seconds of training allowed; with max_steps 0 the only limit
    mode: str = "words"  # "text": one character stream (num_words then counts its training characters)


@dataclass(frozen=True)
class Step(Event):
    kind: ClassVar[str] = "step"
    step: int  # optimizer steps done
    loss: float  # mean training loss over the steps since the last Step event
    lr: float
    steps_per_s: float
    tokens_per_s: float
    elapsed: float  # seconds of training (pauses excluded)
    device_memory: int | None = None  # peak bytes allocated on a CUDA device; None on the CPU


@dataclass(frozen=True)
class Eval(Event):
    kind: ClassVar[str] = "eval"
    step: int
    train_loss: float  # on a fixed subset of the training words
    val_loss: float
    best_val_loss: float
    best_step: int
    val_bpc: float | None = None  # token runs: the val loss as bits per character of the text (None otherwise)


@dataclass(frozen=True)
class Sample:
    word: str
    tag: str  # "train", "test" (incl. val), "new", or "empty" (an empty word, never new)


@dataclass(frozen=True)
class Samples(Event):
    kind: ClassVar[str] = "samples"
    step: int
    temperature: float
    samples: list[Sample]  # words mode; empty in text mode
    text: str | None = None  # text mode: one continuation of several lines (then ``samples`` is empty)

    @property
    def novelty(self) -> float:
        return novelty(s.tag for s in self.samples)


def novelty(tags) -> float:
    """The share of new words among the samples that are not empty (in neither the training nor the held-out
    words); 0 when every sample is empty."""
    words = [t for t in tags if t != "empty"]
    return sum(t == "new" for t in words) / max(1, len(words))


@dataclass(frozen=True)
class Bigrams(Event):
    kind: ClassVar[str] = "bigrams"
    step: int
    probs: list[list[float]]  # (V, V): row = previous token (0 = start), column = next token (0 = stop)


@dataclass(frozen=True)
class Saved(Event):
    kind: ClassVar[str] = "saved"
    step: int
    path: str
    reason: str  # "best", "last", "request", "interrupt"


@dataclass(frozen=True)
class Finished(Event):
    kind: ClassVar[str] = "finished"
    step: int
    reason: str  # "max_steps", "max_time", "stopped", "fitted"
    best_val_loss: float
    test_loss: float | None
    elapsed: float


@dataclass(frozen=True)
class Failed(Event):
    kind: ClassVar[str] = "failed"
    step: int
    message: str


EVENT_TYPES: dict[str, type[Event]] = {
    cls.kind: cls for cls in (Started, Step, Eval, Samples, Bigrams, Saved, Finished, Failed)
}


def event_from_json(obj: dict[str, Any]) -> Event | None:
    """Rebuild an event from one line of metrics.jsonl; None for anything unknown or malformed."""
    cls = EVENT_TYPES.get(obj.get("event")) if isinstance(obj, dict) else None
    if cls is None:
        return None
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {k: v for k, v in obj.items() if k in names}
    try:
        if cls is Samples and isinstance(kwargs.get("samples"), list):
            kwargs["samples"] = [Sample(**s) for s in kwargs["samples"] if isinstance(s, dict)]
        if cls is Samples and not isinstance(kwargs.get("text"), (str, type(None))):
            return None
        return cls(**kwargs)
    except TypeError:
        return None


