"""Build a model from a run's configuration, and load a run back from its directory (weights + JSON only)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from makemore import checkpoint as ckpt
from makemore.data import Vocab
from makemore.errors import MakemoreError
from makemore.models import get_family


MAX_BLOCK_SIZE = 1 << 16  # a sanity bound on what a config.json may ask us to allocate
MAX_HYPER_INT = 1 << 16


def model_hyper(model_type: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """The family's hyperparameters with the user's overrides; an option the family does not take is refused."""
    family = get_family(model_type)
    for name, value in overrides.items():
        if value is None:
            continue
        if name not in family.hyper:
            takes = ", ".join("--" + k.replace("_", "-") for k in family.hyper) or "no model options"
            raise MakemoreError(
                f"--{name.replace('_', '-')} does not apply to --type {model_type} (it takes: {takes})"
            )
    return {**family.hyper, **{k: v for k, v in overrides.items() if v is not None}}


def build_model(model_type: str, vocab_size: int, block_size: int, hyper: dict[str, Any]):
    module = get_family(model_type).load()
    fields = {f.name for f in dataclasses.fields(module.Config)}
    unknown = set(hyper) - fields
    if unknown:
        raise MakemoreError(f"unknown hyperparameters for {model_type}: {', '.join(sorted(unknown))}")
    try:
        config = module.Config(vocab_size=vocab_size, block_size=block_size, **hyper)
        return module.Model(config)
    except (TypeError, ValueError) as e:
        raise MakemoreError(f"bad {model_type} configuration: {e}") from None


@dataclass
class LoadedRun:
    run_dir: Path
    config: dict[str, Any]
    vocab: Vocab
    model: Any  # LanguageModel
    step: int
    split: dict[str, list[str]] | None

    @property
    def model_type(self) -> str:
        return self.config["model"]["type"]

    def known_words(self) -> tuple[set[str], set[str]]:
        """(training words, held-out words) for tagging samples; empty if the split is not stored."""
        if not self.split:
            return set(), set()
        return set(self.split.get("train", [])), set(self.split.get("val", [])) | set(self.split.get("test", []))


def _expect(obj: Any, key: str, kind: type | tuple[type, ...], where: Path) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise MakemoreError(f"{where}: missing field {key!r}")
    value = obj[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise MakemoreError(f"{where}: field {key!r} has the wrong type ({type(value).__name__})")
    return value


def read_config(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / ckpt.CONFIG
    config = ckpt.read_json(path)
    version = _expect(config, "format", int, path)
    if version > ckpt.FORMAT_VERSION:
        raise MakemoreError(f"{path}: written by a newer makemore (format {version}); upgrade makemore")
    model = _expect(config, "model", dict, path)
    _expect(model, "type", str, path)
    _expect(model, "block_size", int, path)
    _expect(model, "hyper", dict, path)
    chars = _expect(config, "vocab", list, path)
    if not all(isinstance(c, str) for c in chars):
        raise MakemoreError(f"{path}: vocab must be a list of characters")
    try:
        family = get_family(model["type"])  # unknown type: a clear error
    except MakemoreError as e:
        raise MakemoreError(f"{path}: {e}") from None
    if not 2 <= model["block_size"] <= MAX_BLOCK_SIZE:
        raise MakemoreError(f"{path}: block_size {model['block_size']} is out of range (2 to {MAX_BLOCK_SIZE})")
    for name, value in model["hyper"].items():
        default = family.hyper.get(name)
        if name not in family.hyper:
            raise MakemoreError(f"{path}: {model['type']} takes no hyperparameter {name!r}")
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, int):
            ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_HYPER_INT
        elif isinstance(default, float):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        else:
            ok = value is None or isinstance(value, (str, int, float, bool))
        if not ok:
            raise MakemoreError(f"{path}: hyperparameter {name!r} has a bad value ({value!r})")
    return config


def load_run(run_dir: Path, which: str = "best", device: str = "cpu") -> LoadedRun:
    """Load a run's model (``which``: "best" or "last") onto ``device``, in eval mode."""
    run_dir = ckpt.check_run_dir(Path(run_dir))
    config = read_config(run_dir)
    try:
        vocab = Vocab(config["vocab"])
    except MakemoreError as e:
        raise MakemoreError(f"{run_dir / ckpt.CONFIG}: {e}") from None
    m = config["model"]
    model = build_model(m["type"], len(vocab), m["block_size"], m["hyper"])
    path = run_dir / (ckpt.BEST if which == "best" else ckpt.LAST)
    if which == "best" and not path.exists() and (run_dir / ckpt.LAST).exists():
        path = run_dir / ckpt.LAST
    tensors, meta = ckpt.load_tensors(path)
    load_state(model, tensors, path)
    split_path = run_dir / ckpt.SPLIT
    split = ckpt.read_json(split_path) if split_path.exists() else None
    model.to(device).eval()
    step = meta.get("step", 0)
    return LoadedRun(run_dir, config, vocab, model, step if isinstance(step, int) else 0, split)


def load_state(model, tensors: dict, path: Path) -> None:
    """Load weights strictly: every tensor present, of the right shape, nothing extra."""
    expected = model.state_dict()
    missing = expected.keys() - tensors.keys()
    unexpected = tensors.keys() - expected.keys()
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(sorted(missing)[:3])}")
        if unexpected:
            parts.append(f"unexpected {', '.join(sorted(unexpected)[:3])}")
        raise MakemoreError(f"{path}: tensors do not match the model in config.json ({'; '.join(parts)})")
    for name, value in tensors.items():
        if value.shape != expected[name].shape:
            raise MakemoreError(
                f"{path}: tensor {name} has shape {tuple(value.shape)}, config.json implies {tuple(expected[name].shape)}"
            )
    model.load_state_dict(tensors, strict=True)
