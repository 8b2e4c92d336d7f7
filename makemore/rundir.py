"""The run directory: one object owns its files, its configuration, its lock, and the listing of runs.

    RUN/config.json             RunConfig: the model, the training configuration, the vocabulary, the dataset
                                (path, sha256) and the split sizes
    RUN/split.json              the words of each split, so eval and sample agree with training later
    RUN/model.safetensors       weights with the best validation loss
    RUN/last.safetensors        weights at the last save, and
    RUN/last.state.safetensors  the same weights, optimizer moments and RNG states in one file: --resume reads
                                only this (metadata: step, best loss, param groups)
    RUN/metrics.jsonl           one event per line (see makemore.events)
    RUN/samples.txt             samples drawn at each evaluation

Every file is written to a temporary file, fsynced and renamed into place (makemore.checkpoint), so a kill never
leaves half a file; a new run's config.json and split.json appear together or not at all. Nothing is unpickled.
An n-gram's count table, mostly zeros, is stored as its non-zero cells (counts#index and counts#values).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import math
import os
import shutil
import stat
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from makemore import checkpoint as ckpt
from makemore.config import TrainConfig, check_fields
from makemore.errors import MakemoreError
from makemore.files import check_name, check_own, check_parent, control_in, is_regular, lone_surrogate, open_own, \
    open_regular

FORMAT_VERSION = ckpt.FORMAT_VERSION
CONFIG = "config.json"
SPLIT = "split.json"
BEST = "model.safetensors"
LAST = "last.safetensors"
LAST_STATE = "last.state.safetensors"
METRICS = "metrics.jsonl"
SAMPLES = "samples.txt"
LOCK = ".lock"
RUNS = Path("runs")  # where runs go unless -o says otherwise, and where "the latest run" is looked for

MAX_BLOCK_SIZE = 1 << 16  # a sanity bound on what a config.json may ask us to allocate
MAX_HYPER_INT = 1 << 16
MAX_METRICS_LINE = 64 << 20  # one event; the largest, diagnostics with a 50k-token embedding scatter, is ~2 MB
# the whole file: GPT-2's recipe with diagnostics every 100 steps writes ~0.4 GB, twenty times less; a run past it
# (diagnostics every few steps for days) is refused by every reader of its record, resume among them
MAX_METRICS_BYTES = 8 << 30
MAX_PRESET_NAME = 64  # characters of config.json's preset: a name, as presets.PRESETS has them
MAX_JSON_BYTES = 1 << 30  # config.json and split.json: a split of a few million words fits well inside
SPLITS = ("train", "val", "test")


# --- the typed configuration ---------------------------------------------------------------------------

@dataclass
class ModelSpec:
    type: str
    block_size: int  # the longest sequence the model handles (longest word + 1)
    hyper: dict[str, Any]  # the family's hyperparameters (makemore.models: their defaults)
    num_params: int | None = None


@dataclass
class RunConfig:
    """Everything that defines a run; config.json is this, written by ``save`` and read back by ``load``."""

    model: ModelSpec
    train: TrainConfig
    vocab: list[str]  # the characters, sorted (index 0, the start/stop token, is not listed)
    dataset: dict[str, Any] = field(default_factory=dict)  # name, path, sha256, lines, words, what was dropped
    split: dict[str, Any] = field(default_factory=dict)  # seed and the size of each split
    format: int = FORMAT_VERSION
    makemore: str = ""  # the version that wrote it
    mode: str = "words"  # "text": the data is one character stream (makemore.text); split holds its boundary
    preset: str | None = None  # the named recipe (--preset) that filled in what the options did not set

    def to_json(self) -> dict[str, Any]:
        return {"format": self.format, "makemore": self.makemore, "mode": self.mode,
                **({"preset": self.preset} if self.preset is not None else {}),
                "model": dataclasses.asdict(self.model),
                "train": dataclasses.asdict(self.train), "vocab": self.vocab, "dataset": self.dataset,
                "split": self.split}

    @classmethod
    def from_json(cls, obj: Any, where: str) -> RunConfig:
        """Validate a parsed config.json; a bad one is one error naming the file and the field."""
        from makemore.models import check_hyper, get_family

        if not isinstance(obj, dict):
            raise MakemoreError(f"{where}: expected a JSON object")
        version = _expect(obj, "format", int, where)
        if version > FORMAT_VERSION:
            raise MakemoreError(f"{where}: written by a newer makemore (format {version}); upgrade makemore")
        model = _expect(obj, "model", dict, where)
        spec = ModelSpec(**check_fields(ModelSpec, model, where, "model"))
        if not isinstance(spec.hyper, dict):
            raise MakemoreError(f"{where}: field model.hyper must be an object")
        try:
            family = get_family(spec.type)
        except MakemoreError as e:
            raise MakemoreError(f"{where}: {e}") from None
        if not 1 <= spec.block_size <= MAX_BLOCK_SIZE:  # 1: a text model of one character's context
            raise MakemoreError(f"{where}: model.block_size {spec.block_size} is out of range (1 to {MAX_BLOCK_SIZE})")
        for name, value in spec.hyper.items():
            if name not in family.hyper:
                raise MakemoreError(f"{where}: {spec.type} takes no hyperparameter {name!r}")
            if not _hyper_fits(value, family.hyper[name]):
                raise MakemoreError(f"{where}: hyperparameter model.hyper.{name} has a bad value ({value!r})")
        try:  # sizes no model can have, as the options are refused
            check_hyper(spec.type, {**family.hyper, **spec.hyper})
        except MakemoreError as e:
            raise MakemoreError(f"{where}: model.hyper: {e}") from None
        chars = _expect(obj, "vocab", list, where)
        if not all(isinstance(c, str) for c in chars):
            raise MakemoreError(f"{where}: field vocab must be a list of characters")
        train = TrainConfig.from_json(_expect(obj, "train", dict, where), where)
        dataset = obj.get("dataset", {})
        split = obj.get("split", {})
        for name, value in (("dataset", dataset), ("split", split)):
            if not isinstance(value, dict):
                raise MakemoreError(f"{where}: field {name} must be an object")
        if "tokenizer" in dataset:
            _check_tokenizer_entry(dataset["tokenizer"], where)
        for key in ("boundary", "train", "val", "test"):  # counts and a place in a text: shown by info, used
            value = split.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise MakemoreError(f"{where}: field split.{key} must be a count, not {json.dumps(value)[:40]}")
        makemore = obj.get("makemore", "")
        mode = obj.get("mode", "words")
        if mode not in ("words", "text"):
            raise MakemoreError(f"{where}: field mode must be \"words\" or \"text\", not {mode!r}")
        preset = obj.get("preset")  # a record of the recipe's name, shown as it is (a later makemore's too)
        if preset is not None and (not isinstance(preset, str) or not 0 < len(preset) <= MAX_PRESET_NAME):
            raise MakemoreError(f"{where}: field preset must be a preset's name, not {json.dumps(preset)[:40]}")
        return cls(model=spec, train=train, vocab=list(chars), dataset=dataset, split=split, format=version,
                   makemore=makemore if isinstance(makemore, str) else "", mode=mode, preset=preset)

    @classmethod
    def load(cls, path: Path) -> RunConfig:
        return cls.from_json(_read_json(Path(path)), str(path))

    def save(self, path: Path) -> None:
        ckpt.write_json(Path(path), self.to_json())


def _expect(obj: Any, key: str, kind: type, where: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise MakemoreError(f"{where}: missing field {key!r}")
    value = obj[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise MakemoreError(f"{where}: field {key!r} has the wrong type ({type(value).__name__})")
    return value


def _hyper_fits(value: Any, default: Any) -> bool:
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_HYPER_INT
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return value is None or isinstance(value, (str, int, float, bool))


MAX_ELAPSED = 1e10  # seconds of training (three centuries): a larger reading is an edit, not a clock
_LOSSES = ("loss", "train_loss", "val_loss", "test_loss", "best_val_loss")


def _plausible(obj: dict[str, Any]) -> bool:
    """Whether a metrics line has the shape every reader relies on: an event's name, a step count, a loss that is
    a number (or null). Anything else is counted as damaged (an edit), not read as the run's progress; a field
    that only one line shows (a finished run's time) is shown as unknown instead (``_number``)."""
    step = obj.get("step", 0)
    return (isinstance(obj.get("event"), str) and isinstance(step, int) and not isinstance(step, bool) and step >= 0
            and all(obj.get(k) is None or (isinstance(obj[k], (int, float)) and not isinstance(obj[k], bool))
                    for k in _LOSSES))


def metrics_line(line: bytes) -> dict[str, Any] | None:
    """One line of metrics.jsonl as the object it holds, or None where it is damaged: not JSON (a blank line
    included), not UTF-8, nested too deep (``MAX_METRICS_DEPTH``), not of a run's shape (``_plausible``), or
    holding an escape sequence (``escapes_terminal``), or longer than any event (``MAX_METRICS_LINE``). Every
    reader counts damaged lines by this one rule (`info`, `runs`, the TUI)."""
    if len(line) - line.endswith(b"\n") > MAX_METRICS_LINE:
        return None
    try:  # (a value nested deep enough may pass the parser and not the look for escapes, which recurses too)
        obj = json.loads(line)
        if line.count(b"[") + line.count(b"{") > MAX_METRICS_DEPTH and _depth(obj) > MAX_METRICS_DEPTH:
            return None  # by this rule, not by how deep the interpreter lets the parser go
        return obj if isinstance(obj, dict) and _plausible(obj) and not escapes_terminal(line, obj) \
            and not lone_surrogate(line, obj) else None
    except (ValueError, RecursionError):
        return None


MAX_METRICS_DEPTH = 32  # an event nests a few levels (a diagnostics record, four)


def _depth(obj: Any) -> int:
    """How deep lists and dicts nest in ``obj`` (a scalar: 0), without recursion."""
    deepest, stack = 0, [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (list, dict)):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in (value.values() if isinstance(value, dict) else value))
    return deepest


def escapes_terminal(line: bytes, obj: dict[str, Any]) -> bool:
    """Whether a metrics line (``obj`` parsed from ``line``) holds a control character that a reader could print
    to a terminal: a damaged line. A started event's vocabulary is left out: a token run's holds the single bytes
    (control characters among them), which the TUI labels escaped (``instruments.token_labels``). (A C0 control
    character comes only as a \\u escape, JSON refuses it raw; DEL and the C1 ones may come raw, in UTF-8 as 7F and
    C2 80-9F: only lines with one of these bytes are looked through.)"""
    return (b"\\u" in line or b"\x7f" in line or b"\xc2" in line) and \
        control_in({k: v for k, v in obj.items() if k != "vocab"}) is not None


def _number(value: Any, most: float = math.inf) -> float | None:
    """A finite number (at most ``most`` in magnitude) from metrics.jsonl, or None for anything else (the file is
    the user's to edit)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and abs(value) <= most
    return value if ok else None


def check_checkpoint_size(path: Path, spec: ModelSpec, vocab_size: int) -> None:
    """Refuse a config.json whose model the checkpoint ``path`` cannot hold, before building it: a small edited
    config could otherwise describe a model of terabytes. A missing checkpoint is left to its reader."""
    from makemore.models import rough_bytes, weight_bytes

    if not path.exists():
        return
    have = ckpt.tensor_bytes(path)
    if rough_bytes(vocab_size, spec.block_size, spec.hyper) <= 2 * have:
        return  # no model these settings describe can outgrow it (the shapes are compared as it loads)
    params, nbytes = weight_bytes(spec.type, vocab_size, spec.block_size, spec.hyper)
    if nbytes > 2 * have:  # float32 weights saved as bfloat16 would take half
        raise MakemoreError(f"{path}: {have:,} bytes of tensors, too few for the {params:,}-parameter {spec.type} that "
                            f"{CONFIG} describes")


def best_is_initial(best_step: int, step: int, eval_interval: int, reason: str | None) -> bool:
    """Whether a run's best checkpoint holds only its initial weights while it has trained since: its best at step
    0 and no evaluation after it (stopped, or killed after a save asked for, before ``eval_interval``; the end of a
    step or time budget is evaluated). A run whose evaluations since were all worse keeps them: validation chose."""
    return best_step == 0 and 0 < step < eval_interval and reason not in ("max_steps", "max_time")


def _step_of(path: Path) -> int:
    """The step a checkpoint's metadata names (-1 where it names none); its header alone is read."""
    step = ckpt.load_metadata(path).get("step")
    return step if isinstance(step, int) and not isinstance(step, bool) else -1


def _best_bpc(best: dict | None, tokens: bool) -> float | None:
    """Bits per character of the best evaluation: as the run recorded it (text runs: a token run's needs the
    text's length), else a word list's nats per character over ln 2."""
    if best is None:
        return None
    if best.get("val_bpc") is not None or tokens:
        return _number(best.get("val_bpc"))
    return _number(best["val_loss"] / math.log(2))


def token_vocab_size(dataset: dict) -> int | None:
    """A token run's vocabulary size, as its config.json records the tokenizer (None: a character or word run)."""
    size = (tokenizer_entry(dataset) or {}).get("vocab_size")
    return size if isinstance(size, int) and not isinstance(size, bool) and size > 0 else None


def _check_tokenizer_entry(entry: Any, where: Path) -> None:
    """A token run's record of its tokenizer: a vocabulary size a tokenizer can have, and the model's rows padded
    from it as training pads them (``info`` shows both; an edit would show sizes no model has)."""
    from makemore.presets import padded_vocab
    from makemore.tokenizer import MAX_VOCAB

    size = entry.get("vocab_size") if isinstance(entry, dict) else None
    if not (isinstance(size, int) and not isinstance(size, bool) and 257 <= size <= MAX_VOCAB) \
            or entry.get("padded") != padded_vocab(size):
        raise MakemoreError(f"{where}: field dataset.tokenizer must give vocab_size (257 to {MAX_VOCAB:,}) and "
                            f"padded (vocab_size rounded up to a multiple of 64) as training wrote them")


def tokenizer_entry(dataset: dict) -> dict | None:
    """A run's tokenizer as its config.json's ``dataset`` records it (None: a character or word run)."""
    entry = (dataset or {}).get("tokenizer")
    return entry if isinstance(entry, dict) else None


def _read_json(path: Path) -> Any:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise MakemoreError(f"{path}: missing") from None
    except OSError as e:
        raise MakemoreError(f"{path}: cannot read ({e.strerror or e})") from None
    if size > MAX_JSON_BYTES:
        raise MakemoreError(f"{path}: {size:,} bytes, more than the {MAX_JSON_BYTES:,} a run file may hold")
    obj = ckpt.read_json(path, MAX_JSON_BYTES)
    if control := control_in(obj):  # printed back to the terminal by info, runs, sample: no escape sequence
        raise MakemoreError(f"{path}: holds control character U+{ord(control):04X}, which makemore never writes "
                            f"(an edit?)")
    return obj


# --- the training state that --resume continues from ------------------------------------------------

@dataclass
class TrainingState:
    """What the trainer hands over to be saved, and gets back to continue exactly."""

    weights: dict  # the model's state dict
    optimizer: dict | None  # the optimizer's state dict (tensors and param groups)
    rng: dict  # name -> RNG state tensor ("torch", "batches", "samples", "cuda")
    ema: list  # the moving average's flat tensors (empty without --ema)
    meta: dict  # step, best_val_loss, best_step, elapsed, ...


# --- the directory ----------------------------------------------------------------------------------

class RunDir:
    """One run's directory. Everything that reads or writes a run's files goes through here."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self._config: RunConfig | None = None
        self.damaged = 0  # lines of metrics.jsonl the last read of it skipped (``metrics``)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __str__(self) -> str:
        return str(self.path)

    def file(self, name: str) -> Path:
        return self.path / name

    # opening, creating, listing

    @classmethod
    def open(cls, path: Path | str) -> RunDir:
        """An existing run directory; anything else (a pickle, a file, a directory without config.json) is refused."""
        path = Path(path)
        if not path.exists():
            raise MakemoreError(f"{path}: no such run directory")
        if not path.is_dir():
            head = b""
            if is_regular(path):  # (a FIFO would wait for a writer; a device says nothing of use)
                try:
                    with open(path, "rb") as f:
                        head = f.read(4)  # enough to recognise a pickle; the file is never unpickled
                except OSError:
                    pass
            if path.suffix in ckpt.PICKLE_SUFFIXES or ckpt.looks_like_pickle(head):
                raise MakemoreError(f"{path}: a pickle/torch.save file, which can run code when loaded; makemore "
                                    f"never unpickles and loads only run directories written by `makemore train`")
            raise MakemoreError(f"{path}: not a directory (expected a run directory written by `makemore train`)")
        if not cls.is_run(path):
            if (path / CONFIG).exists() or (path / CONFIG).is_symlink():
                raise MakemoreError(f"{path / CONFIG}: not a regular file; this is not a run `makemore train` wrote")
            raise MakemoreError(f"{path}: not a makemore run (no {CONFIG})")
        return cls(path)

    @staticmethod
    def is_run(path: Path) -> bool:
        return is_regular(Path(path) / CONFIG)

    @staticmethod
    def looks_like_run(path: Path) -> bool:
        """A config.json beside a file only a run has (a folder of another kind may have its own config.json)."""
        path = Path(path)
        return RunDir.is_run(path) and any((path / name).exists() for name in (METRICS, SPLIT, BEST, LAST, LAST_STATE))

    @classmethod
    def create(cls, out: Path | None, default_name: str, config: RunConfig,
               split: dict[str, list[str]] | None, files: dict[str, bytes] | None = None) -> RunDir:
        """A new run directory holding ``config`` and ``split``: ``out`` (absent or empty), or
        ``runs/<default_name>`` (then -2, -3, ...). Both files are written into a hidden staging directory that is
        renamed into place, so a kill never leaves a half-made run that blocks ``-o`` and ``--resume``."""
        made = None
        if out is not None:
            out = Path(out)
            check_out(out)
            if out.is_symlink():  # a link to an empty directory: the run is made there (a rename cannot replace
                out = out.resolve()  # the link itself)
        parents = [p for p in reversed((out or RUNS / default_name).parents) if not p.exists()]

        def undo() -> None:  # a run that could not be made leaves no folder of its making
            for p in ([made] if made is not None else []) + parents[::-1]:  # the deepest first
                _remove_empty(p)

        if out is None:
            out = made = _unique_dir(RUNS / default_name)
        try:
            staging = _staging_dir(out)
        except MakemoreError:
            undo()
            raise
        try:
            if split is not None:  # a text run has none: its split is a boundary in config.json
                ckpt.write_json(staging / SPLIT, split)
            for name, data in (files or {}).items():  # e.g. a token run's tokenizer.json
                ckpt.write_atomic(staging / name, data)
            config.save(staging / CONFIG)
        except MakemoreError as e:  # a full disk: nothing is left behind, and the message names the run's file
            shutil.rmtree(staging, ignore_errors=True)
            undo()
            raise MakemoreError(str(e).replace(str(staging), str(out))) from None
        try:
            out = _publish(staging, out, RUNS / default_name if made is not None else None)
        except MakemoreError:
            undo()
            raise
        run = cls(out)
        run._config = config
        return run

    def lock(self) -> RunLock:
        """Held while a process trains into this run (a second one is refused)."""
        return RunLock(self.path)

    def remove_stale_temporaries(self) -> None:
        """Delete temporary files a killed writer left behind (call with the lock held)."""
        for tmp in self.path.glob(".*.tmp"):
            try:
                tmp.unlink()
            except OSError:
                pass

    def last_change(self) -> float:
        """When the run last wrote anything that marks progress: the rule for "the latest run"."""
        times = []
        for name in (METRICS, BEST, CONFIG):
            try:
                times.append((self.path / name).stat().st_mtime)
            except OSError:
                pass
        return max(times, default=0.0)

    # configuration and split

    @property
    def config(self) -> RunConfig:
        if self._config is None:
            self._config = RunConfig.load(self.path / CONFIG)
        return self._config

    def vocab(self):
        from makemore.data import Vocab

        if tokenizer_entry(self.config.dataset) is not None:  # a token run: RUN/tokenizer.json, which its errors name
            from makemore.tokentext import run_vocab  # only then: character runs sample without it

            return run_vocab(self)
        try:
            return Vocab(self.config.vocab, text=self.config.mode == "text")
        except MakemoreError as e:
            raise MakemoreError(f"{self.path / CONFIG}: {e}") from None

    def split(self, required: bool = False) -> dict[str, list[str]] | None:
        """The words of each split (None if split.json is absent and not ``required``)."""
        path = self.path / SPLIT
        if not path.exists() and not required:
            return None
        split = _read_json(path)
        if not isinstance(split, dict) or not all(
                isinstance(split.get(k), list) and all(isinstance(w, str) for w in split[k]) for k in SPLITS):
            raise MakemoreError(f"{path}: expected lists of words under train, val and test")
        if self.config.mode != "words":
            return {k: split[k] for k in SPLITS}
        if not split["train"]:
            raise MakemoreError(f"{path}: no training words")
        longest = self.config.model.block_size - 1  # a word run's window: its longest word and the stop token
        for k in SPLITS:
            over = next((w for w in split[k] if len(w) > longest), None)
            if over is not None:
                raise MakemoreError(f"{path}: {k} holds a word of {len(over):,} characters, longer than the "
                                    f"{longest} this run's model reads ({CONFIG}'s block_size)")
        known = set(self.config.vocab)
        for k in SPLITS:  # a character the model has no row for: said here, by the file, not by what encodes it
            unknown = set("".join(split[k])) - known
            if unknown:
                raise MakemoreError(f"{path}: {k} holds the character {min(unknown)!r}, which is not in {CONFIG}'s "
                                    f"vocab")
        return {k: split[k] for k in SPLITS}

    # weights and training state

    def save_best(self, weights: dict, meta: dict) -> Path:
        ckpt.save_tensors(self.path / BEST, weights, meta)
        return self.path / BEST

    def best_weights(self, device: str = "cpu") -> dict | None:
        """The best checkpoint's tensors (None before the first evaluation saved one)."""
        path = self.path / BEST
        return ckpt.load_tensors(path, device)[0] if path.exists() else None

    def has_state(self) -> bool:
        return (self.path / LAST_STATE).exists()

    def save_state(self, state: TrainingState) -> Path:
        """The training state (its own copy of the weights, so that file alone is a consistent checkpoint),
        then the last weights on their own for sampling; a kill between the two writes loses nothing."""
        tensors: dict = {f"rng.{name}": value for name, value in state.rng.items()}
        groups = []
        if state.optimizer is not None:
            import torch

            for pid, entry in state.optimizer["state"].items():
                for key, value in entry.items():
                    tensors[f"opt.{pid}.{key}"] = value if torch.is_tensor(value) else torch.tensor(value)
            groups = state.optimizer["param_groups"]
        tensors.update({f"model.{k}": v for k, v in state.weights.items()})
        tensors.update({f"ema.{i}": t for i, t in enumerate(state.ema)})
        ckpt.save_tensors(self.path / LAST_STATE, tensors, {**state.meta, "param_groups": groups})
        ckpt.save_tensors(self.path / LAST, state.weights, {k: state.meta[k] for k in state.meta if k != "train"})
        return self.path / LAST

    def load_state(self) -> TrainingState:
        path = self.path / LAST_STATE
        tensors, meta = ckpt.load_tensors(path)
        for key in ("step", "param_groups"):
            if key not in meta:
                raise MakemoreError(f"{path}: checkpoint metadata lacks {key!r}")
        weights = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
        rng = {k[len("rng."):]: v for k, v in tensors.items() if k.startswith("rng.")}
        opt: dict = {"state": {}, "param_groups": meta.pop("param_groups")}
        ema: dict[int, Any] = {}
        try:
            for key, value in tensors.items():
                if key.startswith("opt."):
                    _, pid, name = key.split(".", 2)
                    opt["state"].setdefault(int(pid), {})[name] = value
                elif key.startswith("ema."):
                    ema[int(key[len("ema."):])] = value
        except ValueError:
            raise MakemoreError(f"{path}: malformed tensor name {key!r}") from None
        return TrainingState(weights=weights, optimizer=opt, rng=rng, ema=[ema[i] for i in sorted(ema)], meta=meta)

    def load_model(self, which: str = "best", device: str = "cpu") -> LoadedRun:
        """The run's model (``which``: "best" or "last"; "best" falls back to last where the best is missing, or
        holds the initial weights of a run stopped before any evaluation after them) on ``device``, in eval mode."""
        from makemore.models import build_model, load_weights

        config = self.config
        vocab = self.vocab()
        m = config.model
        path = self.path / (BEST if which == "best" else LAST)
        last = self.path / LAST
        fell_back = which == "best" and not path.exists() and last.exists()
        if fell_back:  # every evaluation saves the best before the last: the best was lost since
            path = last
        untrained = which == "best" and not fell_back and last.exists() and _step_of(path) == 0 \
            and best_is_initial(0, _step_of(last), config.train.eval_interval, self.end_reason())
        if untrained:
            path = last
        check_checkpoint_size(path, m, len(vocab))
        model = build_model(m.type, len(vocab), m.block_size, m.hyper)
        tensors, meta = ckpt.load_tensors(path)
        load_weights(model, tensors, path)
        model.to(device).eval()
        step = meta.get("step", 0)
        if fell_back:
            print(f"note: {self.path / BEST} is missing; using {path.name} (step {step}), the latest weights",
                  file=sys.stderr)
        if untrained:
            print(f"note: {self.path / BEST} holds the initial weights (step 0, before any training); using "
                  f"{path.name} (step {step}), the latest", file=sys.stderr)
        # a word run's split tags every sample and score: without it every word would pass for new
        split = self.split(required=config.mode == "words")
        return LoadedRun(self, config, vocab, model, step if isinstance(step, int) else 0, split)

    # metrics.jsonl

    def metrics(self) -> Iterator[dict[str, Any]]:
        """Every complete line of metrics.jsonl as a dict, streamed (a torn last line is skipped); the complete
        lines that are not one (a line torn by a killed writer, an edit) are skipped and counted in ``damaged``."""
        path = self.path / METRICS
        self.damaged = 0
        if not path.exists() and not path.is_symlink():
            return
        with open_regular(path, "the run's metrics, one JSON object per line") as f:
            size = os.fstat(f.fileno()).st_size
            if size > MAX_METRICS_BYTES:
                raise MakemoreError(f"{path}: {size:,} bytes, more than the {MAX_METRICS_BYTES >> 30} GiB makemore "
                                    f"reads of a run's record")
            while True:
                try:
                    line = f.readline(MAX_METRICS_LINE + 1)
                except OSError as e:
                    raise MakemoreError(f"{path}: cannot read ({e.strerror or e})") from None
                if len(line) > MAX_METRICS_LINE:  # no event is this long: skip to the line's end
                    while line and not line.endswith(b"\n"):
                        line = f.readline(MAX_METRICS_LINE + 1)
                    self.damaged += 1
                    continue
                if not line.endswith(b"\n"):
                    break  # the end, or a line torn by a live or killed writer
                obj = metrics_line(line)
                if obj is None:
                    self.damaged += 1
                else:
                    yield obj

    def events(self) -> Iterator:
        """metrics.jsonl as events (lines that are not a known event are skipped)."""
        from makemore.events import event_from_json

        for obj in self.metrics():
            event = event_from_json(obj)
            if event is not None:
                yield event

    def _last_end(self) -> dict | None:
        """The last started, finished or failed event of metrics.jsonl (None: none)."""
        last = None
        for obj in self.metrics():
            if obj.get("event") in ("started", "finished", "failed"):
                last = obj
        return last

    def status(self) -> str:
        """"finished", "stopped" (with q or Ctrl-C), "failed", "running or killed" (no end recorded since the
        last start), or "new"."""
        last = self._last_end()
        if last is None:
            return "new"
        if last["event"] == "finished":
            return "stopped" if last.get("reason") == "stopped" else "finished"
        return "failed" if last["event"] == "failed" else "running or killed"

    def end_reason(self) -> str | None:
        """Why training ended after the last start (max_steps, max_time, stopped, ...); None where it has not."""
        last = self._last_end()
        return str(last.get("reason")) if last is not None and last["event"] == "finished" else None

    def finished(self) -> bool:
        """Whether metrics.jsonl records the end of training after the last start (a resumed run starts again)."""
        return self.status() in ("finished", "stopped")

    def summary(self) -> dict[str, Any]:
        """What `makemore info`, the run list and the start screen show; reads metrics.jsonl in one pass. A run
        whose folder's name could not be printed (found by listing a folder) is refused, by that name escaped."""
        check_name(self.path)
        config = self.config
        if token_vocab_size(config.dataset) is None:  # a vocabulary every other command refuses is not shown
            self.vocab()
        finished = failed = arithmetic = None
        processes = 1  # the latest process's torchrun world size
        evals: list[dict] = []
        steps = 0
        for m in self.metrics():
            kind = m.get("event")
            if kind in ("step", "eval", "finished", "failed") and isinstance(m.get("step"), int):
                steps = max(steps, m["step"])
            if kind == "eval" and _number(m.get("val_loss")) is not None and isinstance(m.get("step"), int):
                evals.append(m)
            elif kind == "finished":
                finished = m
            elif kind == "failed":  # diverged: the run stopped there, its last good checkpoint kept
                failed = m
            elif kind == "arithmetic" and isinstance(m.get("dtype"), str):  # what each process's steps computed in
                arithmetic = m  # kept across a resume, which continues as its run's state says, step or not
            elif kind == "started":
                finished = failed = None
                count = m.get("processes")
                processes = count if isinstance(count, int) and not isinstance(count, bool) and count > 0 else 1
                if not m.get("start_step"):  # from step 0 (no state: killed before its first save), chosen anew
                    arithmetic = None
                # a resume goes on from its checkpoint's step: what a killed process logged after it is undone
                start = m.get("start_step") if isinstance(m.get("start_step"), int) else 0
                steps = min(steps, start)
                # (and the evaluation of a best checkpoint kept across a start from step 0, see ``_keep_best``)
                evals = [e for e in evals if e["step"] <= start or e["step"] == m.get("best_step")]
        best = min(evals, key=lambda e: e["val_loss"], default=None)
        return {
            "run": str(self.path),
            "type": config.model.type,
            "params": config.model.num_params,
            "hyper": config.model.hyper,
            "block_size": config.model.block_size,
            "train": dataclasses.asdict(config.train),
            "dataset": config.dataset,
            "split": config.split,
            "vocab": "".join(config.vocab),
            "vocab_size": token_vocab_size(config.dataset) or len(config.vocab) + 1,
            "steps": steps,
            "mode": config.mode,
            "preset": config.preset,
            "processes": processes,
            "best_val_loss": best["val_loss"] if best else None,
            # nats per character, or per token for a token run; bits per character compare across both
            "loss_unit": "nats/token" if token_vocab_size(config.dataset) else "nats/char",
            "best_val_bpc": _best_bpc(best, tokens=token_vocab_size(config.dataset) is not None),
            "best_step": best.get("step") if best else None,
            "test_loss": _number(finished.get("test_loss")) if finished else None,
            # the test loss is the latest weights' (the best checkpoint holds only the initial ones)
            "test_on_latest": finished.get("test_on_latest") is True if finished else False,
            "finished": str(finished.get("reason")) if finished else None,
            "failed": str(failed.get("message")) if failed else None,
            "elapsed": _number(finished.get("elapsed"), MAX_ELAPSED) if finished else None,
            "damaged_lines": self.damaged,  # of metrics.jsonl, skipped
            # the latest process's dtype and float32 matmul precision (as --dtype/--matmul-precision auto chose)
            "arithmetic": {k: arithmetic.get(k) for k in ("dtype", "matmul_precision", "native_gelu", "dtype_chosen")}
            if arithmetic else None,
        }


@dataclass
class LoadedRun:
    run: RunDir
    config: RunConfig
    vocab: Any  # makemore.data.Vocab
    model: Any  # makemore.models.base.LanguageModel
    step: int
    split: dict[str, list[str]] | None

    @property
    def run_dir(self) -> Path:
        return self.run.path

    @property
    def model_type(self) -> str:
        return self.config.model.type

    @property
    def mode(self) -> str:
        return self.config.mode

    def known_words(self) -> tuple[set[str], set[str]]:
        """(training words, held-out words) for tagging samples; empty for a text run, which has no word split."""
        if not self.split:
            return set(), set()
        return set(self.split["train"]), set(self.split["val"]) | set(self.split["test"])


# --- runs: listing and "the latest" ---------------------------------------------------------------------

def list_runs(root: Path = RUNS) -> list[RunDir]:
    """The run directories directly under ``root``, most recently changed first."""
    root = Path(root)
    if not root.is_dir():
        return []
    runs = [RunDir(p) for p in root.iterdir() if not staging(p) and RunDir.is_run(p)]
    return sorted(runs, key=RunDir.last_change, reverse=True)


def holds_runs(path: Path) -> bool:
    """A folder (not itself a run) with a run directly in it: what `makemore runs` lists, as `runs/` is."""
    path = Path(path)
    try:
        return path.is_dir() and not RunDir.is_run(path) and \
            any(not staging(p) and RunDir.is_run(p) for p in path.iterdir())
    except OSError:  # unreadable: not a folder of runs as far as can be told (the command says what it can)
        return False


def staging(path: Path) -> bool:
    """A new run's staging directory (``.NAME.XXXX.tmp``, see ``_staging_dir``): never listed as a run. A run the
    user named with a leading dot (``-o runs/.scratch``) is listed as any other."""
    return path.name.startswith(".") and path.name.endswith(".tmp")


def latest_run(root: Path = RUNS) -> RunDir:
    runs = list_runs(root)
    if not runs:
        raise MakemoreError(f"no runs in {root}/; train one first (makemore train names) or name a run directory")
    check_name(runs[0].path)  # printed by the command that reads it: no escape sequence, no newline
    return runs[0]


def resolve_run(run: Path | str | None, root: Path = RUNS) -> RunDir:
    """The run a command reads: ``run``, or the latest in ``root``. A name that is no run directory but a word
    list's (``makemore sample names``) is refused with the runs trained on that word list."""
    if run is None:
        return latest_run(root)
    path = Path(run)
    if path.is_dir():
        return RunDir.open(path)
    trained = runs_trained_on(str(run), root)
    listed = ", ".join(str(r.path) for r in trained[:5])
    if path.exists():  # a file: say what it is, and which runs were trained on it if it is a word list
        try:
            return RunDir.open(path)
        except MakemoreError as e:
            raise MakemoreError(f"{e}; runs trained on {run}: {listed}" if trained else str(e)) from None
    if trained:
        raise MakemoreError(f"{run}: no such run directory; runs trained on {run}: {listed}")
    from makemore.data import builtin_datasets

    if str(run) in builtin_datasets():
        raise MakemoreError(f"{run}: no such run directory; {run} is a built-in word list with no run in {root}/ "
                            f"yet: makemore train {run}")
    raise MakemoreError(f"{run}: no such run directory")


def runs_trained_on(dataset: str, root: Path = RUNS) -> list[RunDir]:
    """The runs in ``root`` trained on ``dataset``, most recent first: on that very file if it is one, else on a
    word list of that name (``names``, ``names.txt``)."""
    file = Path(dataset).resolve() if Path(dataset).is_file() else None
    found = []
    for run in list_runs(root):
        try:
            check_name(run.path)  # named in a message: a name that could not be printed is no answer either
            used = run.config.dataset
        except MakemoreError:
            continue  # a damaged run is no answer here; the command that opens it says what is wrong
        if used.get("path") == str(file) if file else used.get("name") in (dataset, Path(dataset).stem):
            found.append(run)
    return found


def _unique_dir(base: Path) -> Path:
    """``base``, or ``base-2``, ``base-3``, ... : the first that does not exist, created (empty) atomically, or
    the first that is an empty folder (one a run killed while it was being made left reserved); the staging
    directory is then renamed onto it. Two processes that take the same empty folder both stage their files, and
    the second to publish moves on to the next name (``_publish``)."""
    try:
        base.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:  # a file, or a link to nothing, named like the folder of runs
        raise MakemoreError(f"{base.parent}: not a directory, where the runs go; move it, or choose a directory "
                            f"with -o") from None
    except OSError as e:
        raise MakemoreError(f"{base.parent}: cannot create the directory of runs here ({e.strerror or e}); "
                            f"choose a directory with -o") from None
    for i in range(1, 10_000):
        candidate = base if i == 1 else base.with_name(f"{base.name}-{i}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            if _empty_folder(candidate):
                return candidate
            continue
        except OSError as e:  # a name too long, no permission, a full disk
            raise MakemoreError(f"{candidate}: cannot create a run directory ({e.strerror or e}); choose one "
                                f"with -o") from None
    raise MakemoreError(f"{base}: too many runs with this name")


def _staging_dir(out: Path) -> Path:
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        # (the name's first 40 characters: a run's name may take all of the 255 bytes a name can have)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name[:40]}.", suffix=".tmp", dir=out.parent))
        os.chmod(tmp, 0o777 & ~ckpt.umask())
    except OSError as e:
        raise MakemoreError(f"{out.parent}: cannot create a run directory here ({e.strerror or e})") from None
    return tmp


def check_out(out: Path, option: str = "-o") -> None:
    """Refuse ``-o OUT`` for a new run when OUT is a file or a directory that is not empty (a run is never
    overwritten). ``option``: how the caller names it (the Python API's ``out=``)."""
    check_name(out)
    try:
        taken = out.exists() and (not out.is_dir() or any(out.iterdir()))
    except OSError as e:
        raise MakemoreError(f"{out}: cannot read ({e.strerror or e})") from None
    if out.is_symlink() and not out.exists():
        raise MakemoreError(f"{out}: a link to nothing; choose another directory with {option}")
    if taken and not out.is_dir():
        raise MakemoreError(f"{out}: is a file, not a run directory; choose another directory with {option}")
    if taken:
        raise _exists(out, option)
    try:
        here = Path.cwd().resolve()
        holds_cwd = out.exists() and (here == out.resolve() or out.resolve() in here.parents)
    except OSError:  # the current directory is gone
        holds_cwd = False
    if holds_cwd:  # a new run is renamed into place: that would take the directory from under this shell
        raise MakemoreError(f"{out}: the current directory, which a new run cannot be made in (it is renamed "
                            f"into place); choose another directory with {option}, e.g. {out / 'run'}")
    check_parent(out, f"choose another directory with {option}")


def _exists(out: Path, option: str = "-o") -> MakemoreError:
    """The refusal of a taken ``-o OUT``: a run is offered --resume; another directory is named for what it is."""
    if RunDir.is_run(out):
        resume = f"`makemore train --resume {out}`" if option == "-o" else f"makemore.train(resume={str(out)!r})"
        return MakemoreError(f"{out}: already exists; continue it with {resume} or choose another directory with "
                             f"{option}")
    return MakemoreError(f"{out}: a directory that is not empty and holds no makemore run; choose another "
                         f"directory with {option}")


def _remove_empty(path: Path) -> None:
    """Remove the folder reserved for a run that failed, unless another run has been published into it."""
    try:
        path.rmdir()
    except OSError:
        pass


def _empty_folder(path: Path) -> bool:
    try:
        if path.is_symlink() or not path.is_dir():
            return False
        with os.scandir(path) as entries:
            return next(entries, None) is None
    except OSError:
        return False


def _keep_mode(out: Path, staging: Path) -> None:
    """An empty directory the run takes the place of keeps its permissions and its group (a shared folder's
    setgid bit, say) in the run that replaces it."""
    try:
        st = out.stat()
    except OSError:
        return
    with contextlib.suppress(OSError):
        os.chown(staging, -1, st.st_gid)
    with contextlib.suppress(OSError):
        os.chmod(staging, stat.S_IMODE(st.st_mode))


def _publish(staging: Path, out: Path, base: Path | None = None) -> Path:
    """Rename a fully written staging directory to ``out`` (absent or empty) in one step; the run's path. With
    ``base`` (a run named by default), a name another process took meanwhile moves the run to the next free one."""
    while True:
        try:
            _keep_mode(out, staging)
            os.rename(staging, out)
            break
        except OSError as e:
            taken = e.errno in (errno.EEXIST, errno.ENOTEMPTY)
            if taken and base is not None:
                try:
                    out = _unique_dir(base)
                except MakemoreError:
                    shutil.rmtree(staging, ignore_errors=True)
                    raise
                continue
            shutil.rmtree(staging, ignore_errors=True)
            if taken:
                raise _exists(out) from None
            raise MakemoreError(f"{out}: cannot create the run directory ({e.strerror or e})") from None
    ckpt.fsync_dir(out.parent)
    return out


class RunLock:
    """An exclusive lock on a run directory, held while a process trains into it."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK
        self.fd: int | None = None

    def __enter__(self) -> RunLock:
        import fcntl

        for own in (METRICS, SAMPLES):  # what the run will append to, refused before anything is written
            check_own(self.path.parent / own)
        self.fd = open_own(self.path, os.O_RDWR, cannot=f"{self.path.parent}: cannot write to the run directory")
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            self.fd = None
            raise MakemoreError(f"{self.path.parent}: another makemore process is training into this run") from None
        os.ftruncate(self.fd, 0)
        os.write(self.fd, f"{os.getpid()}\n".encode())
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def run_names(paths: list[Path]) -> list[str]:
    """Each run's directory name; runs whose directories share a name are called by their paths as given."""
    names = [Path(p).name or str(p) for p in paths]
    return [str(p) if names.count(n) > 1 else n for p, n in zip(paths, names)]
