"""From what the user asked for to a ready Trainer: data, vocabulary, split, run directory, model.

Shared by the CLI and the TUI so that both start and resume runs the same way.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from makemore import __version__
from makemore import checkpoint as ckpt
from makemore.data import DEFAULT_MAX_LEN, EncodedWords, Vocab, WordList, read_words, resolve_dataset, split_words
from makemore.errors import MakemoreError
from makemore.models import get_family, recipe_for, step_recipe
from makemore.run import build_model, model_hyper, read_config


@dataclass
class Request:
    """A new training run as the user described it; None means "the family's default"."""

    data: str
    model_type: str = "transformer"
    out: Path | None = None
    hyper: dict[str, Any] = dataclasses.field(default_factory=dict)  # n_layer, n_embd, context, ...
    train: dict[str, Any] = dataclasses.field(default_factory=dict)  # max_steps, batch_size, ...
    seed: int = 42
    device: str = "auto"
    max_len: int = DEFAULT_MAX_LEN


def resolve_device(name: str) -> str:
    import torch

    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise MakemoreError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise MakemoreError(f"device {name!r}: CUDA is not available on this machine")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise MakemoreError(f"device {name!r}: only {torch.cuda.device_count()} CUDA device(s)")
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise MakemoreError(f"device {name!r}: MPS is not available on this machine")
    elif device.type != "cpu":
        raise MakemoreError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps")
    return str(device)


@dataclass
class Prepared:
    name: str
    path: Path
    words: WordList
    vocab: Vocab
    train: list[str]
    val: list[str]
    test: list[str]

    def encoded(self) -> dict[str, EncodedWords]:
        return {"train": EncodedWords(self.train, self.vocab), "val": EncodedWords(self.val, self.vocab),
                "test": EncodedWords(self.test, self.vocab)}


MAX_LEN_LIMIT = 1024  # the context follows the longest word; beyond this attention and logits outgrow memory
LOGITS_BUDGET = 4 << 30  # bytes the logits of one training micro-batch may take (with softmax and gradient)


def prepare_data(data: str, seed: int, max_len: int = DEFAULT_MAX_LEN) -> Prepared:
    if not 1 <= max_len <= MAX_LEN_LIMIT:
        raise MakemoreError(f"--max-len must be between 1 and {MAX_LEN_LIMIT} characters, not {max_len}")
    name, path = resolve_dataset(data)
    words = read_words(path, max_len)
    train, val, test = split_words(words.words, seed)
    return Prepared(name, path, words, Vocab.from_words(words.words), train, val, test)


def check_request(req: Request):
    """Validate the options (model type, hyperparameters, device, training) before touching any data."""
    from makemore.trainer import TrainConfig

    family = get_family(req.model_type)
    user_train = {k: v for k, v in req.train.items() if v is not None}
    user_hyper = {k: v for k, v in req.hyper.items() if v is not None}
    if user_train.get("max_steps") is not None and user_train["max_steps"] < 1:
        raise MakemoreError("--max-steps must be at least 1")
    # --max-time alone: the time budget decides when to stop and picks the family's settings for that budget
    timed = user_train.get("max_time") is not None and user_train.get("max_steps") is None
    tier = family.for_budget(user_train["max_time"]) if timed else {}
    hyper = model_hyper(req.model_type, {**{k: v for k, v in tier.items() if k in family.hyper}, **user_hyper})
    recipe = {**step_recipe(req.model_type), **{k: v for k, v in tier.items() if k not in family.hyper},
              **user_train}
    if timed:
        recipe["max_steps"] = 0  # no step limit
    cfg = TrainConfig(**recipe, seed=req.seed, device=resolve_device(req.device))
    _check_train_config(cfg)
    return hyper, cfg


def fit_to_data(cfg, req: Request, num_train: int) -> None:
    """Shorten the recipe for a small word list: at most the family's ``max_epochs`` passes over the training
    words (a recipe tuned on 30k names would otherwise overfit 5k names many times over). Only what the user
    did not set is changed."""
    max_epochs = recipe_for(req.model_type).get("max_epochs")
    if max_epochs is None or req.train.get("max_steps") is not None or not cfg.max_steps:
        return  # the user chose the length (steps, or a time budget)
    steps = max(1, math.ceil(max_epochs * num_train / cfg.batch_size))
    if steps >= cfg.max_steps:
        return
    cfg.max_steps = steps
    if req.train.get("eval_interval") is None:
        cfg.eval_interval = max(1, min(cfg.eval_interval, steps // 5))
    if req.train.get("warmup_steps") is None:
        cfg.warmup_steps = min(cfg.warmup_steps, max(1, steps // 10))


def new_trainer(req: Request, prepared: Prepared | None = None, dist=None):
    """Everything checked before anything is written; then the run directory, config and split.

    ``dist`` (a ``makemore.distributed.Context``) places this process in a torchrun job: only rank 0 writes.
    """
    import torch

    from makemore.trainer import Trainer

    hyper, cfg = check_request(req)
    device = cfg.device
    prepared = prepared or prepare_data(req.data, req.seed, req.max_len)
    fit_to_data(cfg, req, len(prepared.train))
    block_size = max(len(w) for w in prepared.words.words) + 1
    _check_logits_memory(cfg, block_size, len(prepared.vocab))
    torch.manual_seed(req.seed)
    model = build_model(req.model_type, len(prepared.vocab), block_size, hyper)
    if dist is not None and not dist.is_main:  # same data, same model; rank 0 alone owns the run directory
        return Trainer(model.to(device), prepared.vocab, prepared.encoded(), cfg, Path(req.out or "runs"),
                       model_type=req.model_type, dataset=prepared.name, dist=dist), prepared
    if req.out is not None:
        out = Path(req.out)
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise MakemoreError(f"{out}: already exists; continue it with `makemore train --resume {out}` "
                                f"or choose another directory with -o")
    else:
        out = ckpt.new_run_dir(Path("runs") / f"{prepared.name}-{req.model_type}")
    config = {
        "format": ckpt.FORMAT_VERSION,
        "makemore": __version__,
        "model": {"type": req.model_type, "block_size": block_size, "hyper": hyper,
                  "num_params": model.num_params()},
        "train": dataclasses.asdict(cfg),
        "vocab": prepared.vocab.chars,
        "dataset": {"name": prepared.name, "path": str(prepared.path.resolve()), "sha256": prepared.words.sha256,
                    "lines": prepared.words.lines, "words": len(prepared.words.words),
                    "duplicates_dropped": prepared.words.duplicates, "empty_dropped": prepared.words.empty,
                    "too_long_dropped": prepared.words.too_long, "max_len": req.max_len},
        "split": {"seed": req.seed, "train": len(prepared.train), "val": len(prepared.val),
                  "test": len(prepared.test)},
    }
    # config.json and split.json appear together or not at all: written into a hidden staging directory that
    # is then renamed into place, so a kill here never leaves a half-made run that blocks `-o` and `--resume`
    staging = ckpt.staging_dir(out)
    ckpt.write_json(staging / ckpt.SPLIT, {"train": prepared.train, "val": prepared.val, "test": prepared.test})
    ckpt.write_json(staging / ckpt.CONFIG, config)
    ckpt.publish_run_dir(staging, out)
    model.to(device)
    return Trainer(model, prepared.vocab, prepared.encoded(), cfg, out, model_type=req.model_type,
                   dataset=prepared.name, **({"dist": dist} if dist is not None else {})), prepared


def resume_trainer(run_dir: Path, overrides: dict[str, Any] | None = None, dist=None):
    """Continue a run from its last checkpoint; ``overrides`` may extend max_steps or max_time.

    Under torchrun (``dist``) every rank reads the run directory (shared storage across nodes), none writes here.
    """
    from makemore.trainer import TrainConfig, Trainer

    import torch

    run_dir = ckpt.check_run_dir(Path(run_dir))
    config = read_config(run_dir)
    try:
        vocab = Vocab(config["vocab"])
    except MakemoreError as e:
        raise MakemoreError(f"{run_dir / ckpt.CONFIG}: {e}") from None
    split = ckpt.read_json(run_dir / ckpt.SPLIT)
    if not isinstance(split, dict) or not all(isinstance(split.get(k), list) for k in ("train", "val", "test")):
        raise MakemoreError(f"{run_dir / ckpt.SPLIT}: expected lists of words under train, val and test")
    m = config["model"]
    try:
        train = {**config["train"], **{k: v for k, v in (overrides or {}).items() if v is not None}}
        cfg = TrainConfig(**train)
    except (KeyError, TypeError) as e:
        raise MakemoreError(f"{run_dir / ckpt.CONFIG}: bad training settings ({e})") from None
    torch.manual_seed(cfg.seed)  # with no checkpoint yet the run starts over exactly as it first began
    model = build_model(m["type"], len(vocab), m["block_size"], m["hyper"])
    device = (overrides or {}).get("device") or cfg.device
    if device.startswith("cuda") and not _cuda():
        device = "cpu"  # a run trained on a GPU continues on the CPU
    cfg.device = resolve_device(device)
    _check_train_config(cfg)
    splits = {k: EncodedWords(split[k], vocab) for k in ("train", "val", "test")}
    trainer = Trainer(model.to(cfg.device), vocab, splits, cfg, run_dir, model_type=m["type"],
                      dataset=str((config.get("dataset") or {}).get("name", run_dir.name)),
                      **({"dist": dist} if dist is not None else {}))
    if (run_dir / ckpt.LAST_STATE).exists() or (run_dir / ckpt.LAST).exists():
        trainer.restore()
    # else: killed before its first checkpoint; it starts from step 0 with the stored configuration and split
    if _finished(run_dir):  # else: killed after its last save; it goes on to finish
        if cfg.max_steps and trainer.step >= cfg.max_steps:
            raise MakemoreError(f"{run_dir}: already trained {trainer.step} of {cfg.max_steps} steps; "
                                f"pass a larger --max-steps to continue")
        if not cfg.max_steps and trainer.elapsed >= cfg.max_time:
            raise MakemoreError(f"{run_dir}: already trained for its {cfg.max_time:g} s; "
                                f"pass a larger --max-time to continue")
    return trainer


def _finished(run_dir: Path) -> bool:
    """Whether metrics.jsonl records the end of training (after the last start: a resumed run starts again)."""
    ends = [m["event"] for m in ckpt.read_metrics(run_dir) if m.get("event") in ("finished", "started")]
    return bool(ends) and ends[-1] == "finished"


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _check_logits_memory(cfg, block_size: int, vocab_size: int) -> None:
    """Refuse a run whose logits alone would exhaust memory (a huge vocabulary times long words)."""
    micro_batch = -(-cfg.batch_size // max(1, cfg.grad_accum))
    need = micro_batch * block_size * vocab_size * 4 * 3  # float32 logits, their softmax and their gradient
    if need > LOGITS_BUDGET:
        raise MakemoreError(
            f"{vocab_size:,} symbols x {block_size} positions x batch {micro_batch} needs about "
            f"{need / 2**30:.0f} GiB for the logits of one step; lower --batch-size, raise --grad-accum, "
            f"or lower --max-len"
        )


def _check_train_config(cfg) -> None:
    from makemore.trainer import MATMUL_PRECISIONS

    checks = [
        (cfg.max_steps >= 1 or (cfg.max_steps == 0 and cfg.max_time is not None), "--max-steps must be at least 1"),
        (cfg.batch_size >= 1, "--batch-size must be at least 1"),
        (cfg.learning_rate > 0, "--learning-rate must be positive"),
        (cfg.eval_interval >= 1, "--eval-interval must be at least 1"),
        (cfg.max_time is None or cfg.max_time > 0, "--max-time must be positive"),
        (0 <= cfg.ema < 1, "--ema must be at least 0 (off) and below 1"),
        (cfg.grad_accum >= 1 and cfg.grad_accum <= cfg.batch_size, "--grad-accum must be between 1 and the batch size"),
        (cfg.dtype in ("float32", "bfloat16", "float16"), "--dtype must be float32, bfloat16 or float16"),
        (cfg.matmul_precision in MATMUL_PRECISIONS, "--matmul-precision must be " + ", ".join(MATMUL_PRECISIONS)),
        (cfg.dtype != "float16" or cfg.device.startswith("cuda"),
         "--dtype float16 needs a CUDA device (it trains with a gradient scaler there); use bfloat16 on the CPU"),
    ]
    for ok, message in checks:
        if not ok:
            raise MakemoreError(message)
