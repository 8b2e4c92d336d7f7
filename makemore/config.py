"""The training configuration and the learning-rate schedule: plain data and pure functions, no torch.

The CLI validates options against these before it imports torch, so a refused option costs nothing.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import sys
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from makemore.errors import MakemoreError

MATMUL_PRECISIONS = ("auto", "highest", "high", "medium")
DTYPES = ("auto", "float32", "bfloat16", "float16")


MAX_STEPS = 1_000_000_000  # months of steps on any machine: a larger count is a typo that would never end


@dataclass
class TrainConfig:
    max_steps: int  # 0: no step limit (with max_time: the time budget alone decides)
    batch_size: int
    learning_rate: float
    min_lr_ratio: float  # cosine decays to learning_rate * min_lr_ratio
    warmup_steps: int
    weight_decay: float  # AdamW, on matrices only (not biases, norms)
    grad_clip: float  # max gradient norm; 0 disables
    eval_interval: int  # steps between evaluations (and checkpoints)
    max_time: float | None = None  # seconds of training; the schedule then follows elapsed time too
    beta2: float = 0.99  # AdamW's second-moment decay (GPT-2's recipe: 0.95)
    seed: int = 42
    device: str = "cpu"
    # autocast dtype: float32 (off), bfloat16, float16 (CUDA, with a grad scaler); auto: on a CPU, bfloat16 where
    # the first step times it faster (makemore.device.bfloat16_pays), else float32
    dtype: str = "auto"
    grad_accum: int = 1  # micro-batches per optimizer step (the batch is split among them)
    compile: bool = False
    matmul_precision: str = "auto"  # torch's float32 matmul precision: auto, highest, high, medium
    pack: bool = True  # families that can (the Transformer) train on rows packing several words: no padding
    ema: float = 0.0  # decay of a moving average of the weights, which evaluation, samples and checkpoints use; 0: off
    log_interval: int = 10  # steps between Step events (the loss is read from the device only then)
    eval_words: int = 1000  # fixed subset of training words on which the train loss is evaluated
    num_samples: int = 12  # samples drawn at each evaluation
    temperature: float = 1.0  # of those samples
    init_scale: float = 1.0  # multiplies the hidden weights at initialisation (makemore.diagnostics.hidden_weights)
    diagnostics: bool = False  # record activation, gradient and update statistics (makemore.diagnostics)
    diag_interval: int = 100  # steps between those records

    def check(self, stored: bool = False) -> TrainConfig:
        """Refuse settings no run can use, naming the option; returns self. ``stored``: a run's config.json being
        read (to show, sample or evaluate it), which the bounds added since runs were first written (samples at
        each evaluation, their temperature) do not refuse: a run trains with them only through ``--resume``,
        which checks them all."""
        checks = [
            (self.max_steps >= 1 or (self.max_steps == 0 and self.max_time is not None),
             "--max-steps must be at least 1"),
            (self.max_steps <= MAX_STEPS, f"--max-steps must be at most {MAX_STEPS:,}, not {self.max_steps:,}"),
            (self.warmup_steps <= MAX_STEPS, f"--warmup-steps must be at most {MAX_STEPS:,}"),
            (self.batch_size >= 1, "--batch-size must be at least 1"),
            (self.learning_rate > 0, "--learning-rate must be positive"),
            (self.warmup_steps >= 0, "--warmup-steps must be at least 0"),
            (self.weight_decay >= 0, "--weight-decay must be at least 0"),
            (0 <= self.beta2 < 1, "beta2 must be at least 0 and below 1"),
            (self.grad_clip >= 0, "--grad-clip must be at least 0 (0: off)"),
            (self.eval_interval >= 1, "--eval-interval must be at least 1"),
            (0 <= self.min_lr_ratio <= 1, "min_lr_ratio must be between 0 and 1 (of the peak learning rate)"),
            (self.log_interval >= 1, "log_interval must be at least 1"),
            (self.eval_words >= 1, "eval_words must be at least 1"),
            (0 <= self.num_samples and (stored or self.num_samples <= MAX_EVAL_SAMPLES),
             f"num_samples must be between 0 and {MAX_EVAL_SAMPLES:,}"),
            (self.temperature >= 0 and (stored or self.temperature == 0 or
                                        MIN_TEMPERATURE <= self.temperature <= MAX_TEMPERATURE),
             f"temperature (of the samples at each evaluation) must be 0 (greedy) or between {MIN_TEMPERATURE:g} "
             f"and {MAX_TEMPERATURE:,g}"),
            (self.max_time is None or self.max_time > 0, "--max-time must be positive"),
            (0 <= self.ema < 1, "--ema must be at least 0 (off) and below 1"),
            (math.isfinite(self.init_scale) and self.init_scale > 0, "--init-scale must be a positive number"),
            (self.diag_interval >= 1, "--diag-interval must be at least 1"),
            (1 <= self.grad_accum <= self.batch_size,
             f"--grad-accum must be between 1 and the batch size ({self.batch_size}), not {self.grad_accum}"),
            (self.dtype in DTYPES, "--dtype must be " + ", ".join(DTYPES)),
            (self.matmul_precision in MATMUL_PRECISIONS, "--matmul-precision must be " + ", ".join(MATMUL_PRECISIONS)),
            (self.dtype != "float16" or self.device.startswith("cuda"),
             "--dtype float16 needs a CUDA device (it trains with a gradient scaler there); use bfloat16 on the CPU"),
        ]
        for name in ("learning_rate", "min_lr_ratio", "weight_decay", "grad_clip", "max_time", "beta2", "ema",
                     "temperature", "init_scale"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):  # config.json could not hold it (JSON has no inf)
                raise MakemoreError(f"--{name.replace('_', '-')} must be a finite number, not {value}")
        check_seed(self.seed)
        for ok, message in checks:
            if not ok:
                raise MakemoreError(message)
        return self

    @classmethod
    def from_json(cls, obj: Any, where: str) -> TrainConfig:
        """From a stored configuration: every field of the right type, nothing unknown (``where`` names the file)."""
        if not isinstance(obj, dict):
            raise MakemoreError(f"{where}: field 'train' must be an object")
        config = cls(**check_fields(cls, obj, where, "train"))
        try:
            return config.check(stored=True)
        except MakemoreError as e:
            raise MakemoreError(f"{where}: train: {e}") from None


def check_fields(cls, obj: dict[str, Any], where: str, prefix: str) -> dict[str, Any]:
    """``obj``'s values checked against the annotations of dataclass ``cls`` (int, float, bool, str, optional)."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(obj) - fields.keys())
    if unknown:
        raise MakemoreError(f"{where}: unknown field {prefix}.{unknown[0]}")
    for name, f in fields.items():
        if name not in obj:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise MakemoreError(f"{where}: missing field {prefix}.{name}")
            continue
        if not fits(obj[name], hints[name]):
            raise MakemoreError(f"{where}: field {prefix}.{name} has a bad value ({obj[name]!r})")
    return dict(obj)


def fits(value: Any, hint: Any, *, finite: bool = True) -> bool:
    """Whether ``value`` has the annotated type ``hint``: a bool is no number, an int is a float (finite unless
    ``finite`` is False), a path a str or PathLike; hints of other kinds pass."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return any(fits(value, h, finite=finite) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and (not finite or math.isfinite(value))
    if hint is str:
        return isinstance(value, str)
    if hint is Path:
        return isinstance(value, (str, os.PathLike))
    return True


def progress(step: int, cfg: TrainConfig, elapsed: float | None = None) -> float:
    """How far through its budget a run is, in [0, 1] after warm-up: by steps, by time, whichever is further."""
    by_steps = (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps) if cfg.max_steps else 0.0
    if cfg.max_time:
        by_time = (elapsed or 0.0) / cfg.max_time
        by_steps = max(by_steps, by_time) if cfg.max_steps else by_time
    return min(max(by_steps, 0.0), 1.0)


def lr_at(step: int, cfg: TrainConfig, elapsed: float | None = None) -> float:
    """Linear warm-up, then cosine decay to ``min_lr_ratio`` of the peak over the step or time budget
    (``elapsed``: seconds trained, for a run with ``max_time``). A pure function of its arguments.

    The warm-up counts steps; a time budget's cosine counts the seconds from the start, warm-up included, so the
    warm-up rises until it meets the cosine and follows it from there: without the meeting, a short budget's rate
    fell at once from the peak to the cosine's value at the end of the warm-up (6e-3 to 2.45e-3 in 3 s)."""
    p = progress(step, cfg, elapsed)
    min_lr = cfg.learning_rate * cfg.min_lr_ratio
    cosine = min_lr + 0.5 * (cfg.learning_rate - min_lr) * (1 + math.cos(math.pi * p))
    if step < cfg.warmup_steps:
        return min(cfg.learning_rate * (step + 1) / cfg.warmup_steps, cosine)
    return cosine


# --- sampling options --------------------------------------------------------------------------------

MIN_TEMPERATURE, MAX_TEMPERATURE = 1e-3, 1e3  # a sampler's, besides 0 (greedy)
MAX_EVAL_SAMPLES = 1_000  # drawn at each evaluation (shown, and written to samples.txt)
MAX_SAMPLES = 1_000_000  # words or continuations per command: all are held until printed
MAX_LENGTH = 1_000_000  # characters of one continuation of a text run's prompt


MAX_SEED = (1 << 63) - 1  # the trainer seeds a second generator with seed + 1; numpy's takes no negative seed


def check_seed(seed: int | None) -> None:
    """A seed every generator a run seeds from it takes."""
    if seed is not None and not 0 <= seed <= MAX_SEED:
        raise MakemoreError(f"--seed must be between 0 and {MAX_SEED:,}, not {seed}")


def check_sampling(*, n: int | None = None, temperature: float = 1.0, top_k: int | None = None,
                   top_p: float | None = None, seed: int | None = None) -> None:
    """The options every sampler takes, refused before any model is loaded (word lists and texts alike)."""
    if n is not None and not 1 <= n <= MAX_SAMPLES:
        raise MakemoreError(f"-n must be between 1 and {MAX_SAMPLES:,}, not {n:,}")
    if not math.isfinite(temperature):
        raise MakemoreError(f"--temperature must be a finite number, not {temperature}")
    if temperature != 0 and not MIN_TEMPERATURE <= temperature <= MAX_TEMPERATURE:
        # below, the draws are greedy's; above, uniform (and float32 overflows at the extremes)
        raise MakemoreError(f"--temperature must be 0 (greedy) or between {MIN_TEMPERATURE:g} and "
                            f"{MAX_TEMPERATURE:,g}, not {temperature!r}")
    check_seed(seed)
    if top_k is not None and top_k < 1:
        raise MakemoreError(f"--top-k must be at least 1, not {top_k}")
    if top_p is not None and not 0 < top_p <= 1:
        raise MakemoreError(f"--top-p must be in (0, 1], not {top_p:g}")


DEVICE_NAME = re.compile(r"auto|cpu(:0)?|mps(:0)?|cuda(:\d+)?")


def check_device(name: str) -> None:
    """A ``--device`` refused before torch where it cannot work: not a device's name, CUDA with a CPU build of torch
    (its version says so: ``2.13.0+cpu``), or Apple's MPS off macOS. The rest is for torch to say
    (``makemore.device.resolve_device``)."""
    if not DEVICE_NAME.fullmatch(name):
        raise MakemoreError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps")
    if name.startswith("cuda"):
        from importlib import metadata

        try:
            build = metadata.version("torch")
        except metadata.PackageNotFoundError:  # torch from elsewhere (a source tree): torch will say
            return
        if build.endswith("+cpu"):
            raise MakemoreError(f"device {name!r}: CUDA is not available on this machine (torch {build} is a "
                                f"CPU build)")
    if name.startswith("mps") and sys.platform != "darwin":
        raise MakemoreError(f"device {name!r}: MPS is not available on this machine (Apple's GPUs, on macOS)")


def check_text_length(length: int) -> None:
    """A text run's ``--length``: characters of one continuation."""
    if not 0 <= length <= MAX_LENGTH:
        raise MakemoreError(f"--length must be between 0 and {MAX_LENGTH:,} characters, not {length:,}")


def check_lengths(block_size: int, prefix: str = "", min_len: int = 0, max_len: int | None = None) -> int:
    """The longest word that may be drawn; an impossible request is refused here, before anything is drawn."""
    longest = block_size - 1  # the model's window: it never saw a longer word
    if min_len < 0:
        raise MakemoreError("--min-len must be at least 0")
    if max_len is not None and max_len < 1:
        raise MakemoreError("--max-len must be at least 1")
    if min_len > longest:
        raise MakemoreError(f"--min-len {min_len}: this model's words have at most {longest} characters")
    if max_len is not None and min_len > max_len:
        raise MakemoreError(f"--min-len {min_len} is more than --max-len {max_len}")
    limit = longest if max_len is None else min(max_len, longest)
    if len(prefix) > limit:
        raise MakemoreError(f"--prefix is {len(prefix)} characters; " + (
            f"--max-len is {max_len}" if limit < longest else f"this model generates at most {longest}"))
    return limit


def check_eval_target(file, split: str | None, skip_unknown: bool) -> None:
    """What `eval` and ``Model.evaluate`` score: a file, whole, or one of the run's own splits."""
    if file is not None and split is not None:
        raise MakemoreError(f"--split names one of the run's own parts; {file} is scored whole (drop one of them)")
    if file is None and skip_unknown:
        raise MakemoreError("--skip-unknown applies to the words of a FILE; the run's own splits hold no unknown "
                            "characters")
