"""What the trainer tells the world. Small frozen records, no torch: the console, ``metrics.jsonl``,
TensorBoard and the TUI are all sinks that receive the same events, and a follower rebuilds them from JSON.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

GRAD_SPAN = 4.0  # activation-gradient histograms span ±GRAD_SPAN standard deviations of the layer's gradient
GRAD_BINS = 21  # ... in this many equal bins: an odd count, so that zero sits in the middle of the centre bin


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
    unit: str = ""  # what num_words counts: "word", "character" or "token" (older runs' metrics: "", see ``item``)
    best_step: int = -1  # the step of the best checkpoint kept from before the start (-1: none)
    processes: int = 1  # the processes that train it (torchrun's world size), each on its share of the batch

    @property
    def item(self) -> str:
        """What ``num_words`` counts: ``unit``, or for a run written before it, what its mode and vocabulary say
        (a token's symbol may be longer than one character)."""
        if self.unit:
            return self.unit
        if self.mode != "text":
            return "word"
        return "token" if any(len(v) > 1 for v in self.vocab[1:]) else "character"


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
    grad_norm: float | None = None  # global gradient norm before clipping, at this step (None: not finite)


@dataclass(frozen=True)
class Eval(Event):
    kind: ClassVar[str] = "eval"
    step: int
    train_loss: float  # on a fixed subset of the training words
    val_loss: float
    best_val_loss: float
    best_step: int
    val_bpc: float | None = None  # text runs: the val loss as bits per character of the text (None: word lists)
    best_val_bpc: float | None = None  # text runs: the best val loss as bits per character


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


MAX_TABLE_VOCAB = 256  # above this no Bigrams event is sent (the table would be V x V: a token vocabulary's)


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
    test_loss_one_pass: float | None = None  # a model averaging dropout masks: its test loss from one pass
    test_on_latest: bool = False  # the test loss is the latest weights': the best checkpoint held only the initial


@dataclass(frozen=True)
class Failed(Event):
    kind: ClassVar[str] = "failed"
    step: int
    message: str


@dataclass(frozen=True)
class InitialLoss(Event):
    """The loss before the first step beside ln(V): far above it, the initialisation is confidently wrong."""

    kind: ClassVar[str] = "initial_loss"
    loss: float  # on the fixed training subset, at step 0
    uniform: float  # ln(vocab size): the loss of a model that finds every token equally likely
    far_above: bool  # loss > 1.1 x uniform (makemore.diagnostics.INIT_WARN_RATIO)


@dataclass(frozen=True)
class Arithmetic(Event):
    """How this process's training steps compute, as its first step chose by timing them (``--dtype auto``,
    ``--matmul-precision auto``, the GELU kernel) or as the run's state or options gave it."""

    kind: ClassVar[str] = "arithmetic"
    step: int  # the first step of this process
    dtype: str  # float32, or the autocast dtype: bfloat16, float16
    matmul_precision: str  # torch's float32 matmul precision: highest (MKL), medium (oneDNN), high (TF32)
    native_gelu: bool  # torch's GELU kernel instead of oneDNN's
    dtype_chosen: bool = False  # --dtype auto chose the dtype (now, or when the run began)


@dataclass(frozen=True)
class LayerStats:
    """One layer's activations at a record step (see makemore.diagnostics for what each kind measures)."""

    name: str  # module path, or the nonlinearity's label (e.g. "h.0.mlp.gelu")
    kind: str  # linear | norm | attention | recurrent | tanh | gelu | relu
    units: int  # width of the last dimension
    mean: float
    std: float
    saturation: float | None  # share of values in the flat region (|tanh| > 0.97, GELU x < -3, ReLU x <= 0)
    dead: int | None  # units in the flat region for every example of the batch
    hist: list[float]  # share of values in each of equal bins over [lo, hi] (outside: first or last bin)
    lo: float
    hi: float
    # The activation gradient: d loss / d (this layer's output), where the loss is the step's (the mean over the
    # global batch's targets), over the values the activation statistics describe (for a nonlinearity, its
    # output; for ``attention``, the heads' output). None (and no bins) where no gradient reached the layer, and
    # in records written before these fields existed.
    grad_mean: float | None = None
    grad_std: float | None = None
    # share of the gradient's values in each of GRAD_BINS equal bins over [-GRAD_SPAN * grad_std,
    # +GRAD_SPAN * grad_std] (outside: first or last bin; zero is the centre bin's middle). Bins scaled by the
    # layer's own std show the distribution's shape (a spike at zero, heavy tails); compare the layers' scales by
    # grad_std, as the lecture's overlaid histograms do.
    grad_hist: list[float] = field(default_factory=list)

    @property
    def grad_range(self) -> tuple[float, float] | None:
        """The span of ``grad_hist``'s bins, or None without a gradient."""
        if self.grad_std is None or not self.grad_hist:
            return None
        return -GRAD_SPAN * self.grad_std, GRAD_SPAN * self.grad_std


@dataclass(frozen=True)
class WeightStats:
    """One weight matrix (any parameter of two or more dimensions) at a record step."""

    name: str
    shape: list[int]
    data_std: float  # std of the weights before the update
    grad_mean: float
    grad_std: float
    grad_to_data: float | None  # std(grad) / std(weight)
    update_to_data: float | None  # log10(std(AdamW's actual update) / std(weight)); None when nothing moved


@dataclass(frozen=True)
class Diagnostics(Event):
    """The lectures' instruments at one training step (written every --diag-interval steps)."""

    kind: ClassVar[str] = "diagnostics"
    step: int  # optimizer steps done before the recorded step: 0 records the initialisation
    lr: float  # learning rate of the recorded step
    grad_norm: float | None  # global gradient norm before clipping
    layers: list[LayerStats]
    weights: list[WeightStats]
    embedding: list[list[float]]  # (V, 2): each token's embedding on its first two principal components
    embedding_variance: float | None = None  # share of the embeddings' variance those two components explain


EVENT_TYPES: dict[str, type[Event]] = {
    cls.kind: cls for cls in (Started, Step, Eval, Samples, Bigrams, Saved, Finished, Failed, InitialLoss,
                              Diagnostics, Arithmetic)
}


def event_from_json(obj: dict[str, Any]) -> Event | None:
    """Rebuild an event from one line of metrics.jsonl; None for anything unknown or malformed."""
    cls = EVENT_TYPES.get(obj.get("event")) if isinstance(obj, dict) else None
    if cls is None:
        return None
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {k: v for k, v in obj.items() if k in names}
    if not _typed(cls, kwargs):
        return None
    try:
        if cls is Samples and isinstance(kwargs.get("samples"), list):
            kwargs["samples"] = [Sample(**s) for s in kwargs["samples"] if isinstance(s, dict)]
        if cls is Diagnostics:
            for key, item in (("layers", LayerStats), ("weights", WeightStats)):
                if not isinstance(kwargs.get(key), list):
                    return None
                rows = [_known(item, row) for row in kwargs[key] if isinstance(row, dict)]
                if not all(_typed(item, row) for row in rows):
                    return None
                kwargs[key] = [item(**row) for row in rows]
            if any(len(point) != 2 for point in kwargs.get("embedding") or []):
                return None
        if cls is Samples and not isinstance(kwargs.get("text"), (str, type(None))):
            return None
        return cls(**kwargs)
    except TypeError:
        return None


def _typed(cls: type, values: dict[str, Any]) -> bool:
    """Whether each of ``values`` has the type its field of ``cls`` declares: metrics.jsonl is a file anyone can
    edit, and a string where a number belongs would fail later, far from the line that held it."""
    hints = _hints(cls)
    return all(_fits(v, hints[k]) for k, v in values.items() if k in hints)


_HINTS: dict[type, dict[str, str]] = {}


def _hints(cls: type) -> dict[str, str]:
    if cls not in _HINTS:
        _HINTS[cls] = {f.name: str(f.type) for f in dataclasses.fields(cls)}
    return _HINTS[cls]


def _fits(value: Any, hint: str) -> bool:
    """``value`` against an annotation as written: int, float, str, bool, list[...], X | None; others pass."""
    hint = hint.strip()
    if hint.endswith("| None"):
        return value is None or _fits(value, hint[: -len("| None")])
    if hint == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if hint == "float":  # NaN and infinities included: a diverged run logs them
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint in ("str", "bool"):
        return isinstance(value, str if hint == "str" else bool)
    if hint.startswith("list[") and hint.endswith("]"):
        inner = hint[len("list["):-1]
        return isinstance(value, list) and (inner[:1].isupper() or all(_fits(v, inner) for v in value))
    return True


def _known(cls: type, row: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in row.items() if k in names}


