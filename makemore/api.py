"""The Python API: what the command line does, from a notebook or a script, through the same objects.

    import makemore
    run = makemore.train("names", type="transformer", max_time=60, out="runs/x")  # the CLI's options as keywords
    model = makemore.load("runs/x")                                               # or run.model
    model.sample(10, temperature=0.8, prefix="ma")    # list of words (tags and log-probabilities on request)
    model.score(["emma", "xqzzy"])                    # nats per character, one float per word
    model.evaluate("other.txt")                       # dict with loss, bpc, words, skipped
    run = makemore.train("names", type="mlp", diagnostics=True, diag_interval=50, init_scale=5)
    run.latest_diagnostics().layers                   # the instruments' records (also run.diagnostics(), model.…)
    makemore.lr_find("names", type="mlp", steps=300)  # the learning-rate sweep: .lrs, .losses, .suggested
    text = makemore.train("play.txt", mode="text", tokenizer="tok.json").model   # or preset="gpt2-124m"
    text.continue_text("ROMEO:", 200)                 # 200 characters; text.evaluate(): loss, bpc, chars

Nothing here prints but ``train``'s progress (off with ``progress=False``) and notes on stderr, nor exits the
interpreter; bad input raises a ``MakemoreError``.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import sys
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from makemore.config import check_seed, fits
from makemore.errors import MakemoreError, refusal

# the model options ``train`` takes as keywords, with their types (the training options' are TrainConfig's)
_HYPER = {"n_layer": int, "n_head": int, "n_embd": int, "n_embd2": int, "context": int, "dropout": float,
          "dropout_samples": int, "batchnorm": bool, "smoothing": float, "tie_weights": bool}
_API_ONLY = ("data", "file", "run_dir", "progress", "tags", "logprobs", "which")  # keywords the command line has no option for


def _option(name: str) -> str:
    """A keyword as the command line's messages name it (``max_steps``: ``--max-steps``, ``n``: ``-n``)."""
    if name in _API_ONLY:
        return name
    return "-n" if name == "n" else "--" + name.replace("_", "-")


def _describe(hint: Any) -> str:
    """The annotated type in words, for the message that refuses a value of another."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = typing.get_args(hint)
        text = " or ".join(_describe(h) for h in args if h is not type(None) and not (h is str and Path in args))
        return text + " or None" if type(None) in args else text
    return {int: "an integer", float: "a number", bool: "True or False", str: "a string",
            Path: "a path (str or os.PathLike)"}.get(hint, str(hint))


def _accepts(hint: Any, kind: Any) -> bool:
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return any(_accepts(h, kind) for h in typing.get_args(hint))
    return hint is kind


def _plain(value: Any, hint: Any) -> Any:
    """A notebook's value as the plain Python one it stands for: a NumPy (or any ``numbers``) integer as an
    ``int`` and real as a ``float`` where the keyword takes one, and a path starting with ``~`` expanded, as the
    shell expands it on the command line (a run written to ``./~/runs`` instead of the home directory's)."""
    import numbers
    import os

    if isinstance(value, (bool, int, float, str)) or value is None:
        if isinstance(value, str) and value.startswith("~") and _accepts(hint, Path):
            return Path(value).expanduser()
        return value
    if isinstance(value, numbers.Integral) and (_accepts(hint, int) or _accepts(hint, float)):
        return int(value)
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral) and _accepts(hint, float):
        return float(value)
    if isinstance(value, os.PathLike) and _accepts(hint, Path) and os.fspath(value).startswith("~"):
        return Path(os.fspath(value)).expanduser()
    return value


def _refuse(name: str, value: Any, hint: Any) -> MakemoreError:
    return MakemoreError(f"{_option(name)} must be {_describe(hint)}, not {value!r}")


@functools.cache
def _hints(fn) -> dict[str, Any]:
    return typing.get_type_hints(fn)


@functools.cache
def _train_options() -> dict[str, Any]:
    """The keywords ``train`` takes in ``**options``, with their types: TrainConfig's fields and the model's."""
    from makemore.config import TrainConfig

    return {**{k: v for k, v in _hints(TrainConfig).items() if k not in ("seed", "device")}, **_HYPER}


def _checked(options=None):
    """Refuse a call whose arguments do not fit the function's annotations (``options``: the types of what its
    ``**options`` may hold; None there means the recipe's default) before anything is read or written, with the
    command line's words; a seed must be one torch takes. What the library does with a wrong type is undefined:
    a TypeError deep inside, or worse, a run written with it."""

    def wrap(fn):
        signature = inspect.signature(fn)
        named = set(signature.parameters)

        @functools.wraps(fn)
        def call(*args, **kwargs):
            if options is None:
                unknown = sorted(set(kwargs) - named)
                if unknown:
                    raise MakemoreError(f"unknown option {unknown[0]!r}")
            try:
                bound = signature.bind(*args, **kwargs)
            except TypeError as e:
                raise MakemoreError(f"{fn.__name__}: {e}") from None
            hints = _hints(fn)
            for name, value in list(bound.arguments.items()):
                if signature.parameters[name].kind is inspect.Parameter.VAR_KEYWORD:
                    table = options()
                    for key, v in list(value.items()):
                        if key not in table:
                            raise MakemoreError(f"unknown option {key!r}")
                        v = value[key] = _plain(v, table[key])
                        if v is not None and not fits(v, table[key], finite=False):
                            raise _refuse(key, v, table[key])
                elif name in hints:
                    value = bound.arguments[name] = _plain(value, hints[name])
                    if not fits(value, hints[name], finite=False):
                        raise _refuse(name, value, hints[name])
            check_seed(bound.arguments.get("seed"))
            try:
                return fn(*bound.args, **bound.kwargs)
            except OSError as e:  # what the system refuses (a name too long, no permission): as the CLI says it
                line = refusal(e)
                if line is None:
                    raise
                raise MakemoreError(line) from None

        return call

    return wrap


def _restoring(fn):
    """``fn`` (``train``, ``lr_find``: the calls that set them) within ``_process_state``. Only those: a call that
    sets nothing must not put back what a run training in another thread set meanwhile."""

    @functools.wraps(fn)
    def call(*args, **kwargs):
        with _process_state():
            return fn(*args, **kwargs)

    return call


@contextlib.contextmanager
def _process_state():
    """What a run sets for the whole process, put back when the call returns: torch's global random generator
    (seeded with the run's seed) and the float32 matmul precision (``auto`` may choose TF32 or bfloat16 passes).
    Left set, a notebook's own ``torch.rand`` drew the same numbers after every call, and its matmuls ran at the
    run's precision. Where torch was not imported before the call, it is left as a fresh process has it: seeded
    at random, at the highest precision. (The denormal flush stays; see ``train``.)"""
    torch = sys.modules.get("torch")
    saved = None
    if torch is not None:
        saved = (torch.get_rng_state(), torch.get_float32_matmul_precision(),
                 torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None)
    try:
        yield
    finally:
        torch = sys.modules.get("torch")
        if torch is not None:
            if saved is None:
                torch.seed()  # every device's generator, at random
                torch.set_float32_matmul_precision("highest")
            else:
                rng, precision, cuda = saved
                torch.set_rng_state(rng)
                torch.set_float32_matmul_precision(precision)
                if cuda is not None:
                    torch.cuda.set_rng_state_all(cuda)
                elif torch.cuda.is_initialized():
                    torch.cuda.seed_all()


class _Records:
    """The diagnostics a run recorded (``diagnostics=True``), read from its metrics.jsonl."""

    run_dir: Path

    def diagnostics(self) -> list:
        """Every record, oldest first: ``makemore.events.Diagnostics`` (per layer ``LayerStats``, per weight
        matrix ``WeightStats``; their fields are documented there). Empty when the run recorded none."""
        from makemore.events import Diagnostics
        from makemore.rundir import RunDir

        return [e for e in RunDir.open(self.run_dir).events() if isinstance(e, Diagnostics)]  # (a run gone: said)

    def latest_diagnostics(self):
        """The last record (what ``makemore diagnose`` shows), or None."""
        from makemore.instruments import latest_diagnostics
        from makemore.rundir import RunDir

        return latest_diagnostics(RunDir.open(self.run_dir))


class Words(list):
    """What ``Model.sample`` returns: the words (or tuples) as a list, with what was drawn again to get them, as
    `makemore sample` says it: ``too_long`` (longer than ``max_len`` or than the longest training word),
    ``not_new`` (with ``new_only``: in the run's splits) and ``repeated`` (with ``unique``: drawn before)."""

    too_long: int = 0
    not_new: int = 0
    repeated: int = 0


class Model(_Records):
    """A trained run's model (its best checkpoint), ready to sample, score and evaluate."""

    def __init__(self, loaded):
        self._loaded = loaded  # makemore.rundir.LoadedRun

    def __repr__(self) -> str:
        return f"makemore.Model({self.type}, {self.num_params:,} parameters, {str(self.run_dir)!r})"

    @property
    def run_dir(self) -> Path:
        return self._loaded.run_dir

    @property
    def type(self) -> str:
        return self._loaded.model_type

    @property
    def num_params(self) -> int:
        return self._loaded.model.num_params()

    @property
    def module(self):
        """The torch module itself."""
        return self._loaded.model

    @_checked()
    def sample(self, n: int = 20, *, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
               prefix: str = "", min_len: int = 0, max_len: int | None = None, new_only: bool = False,
               unique: bool = False, allow_empty: bool = False, seed: int = 0, tags: bool = False,
               logprobs: bool = False) -> Words:
        """``n`` words as strings; with ``tags`` or ``logprobs``, tuples (word, tag?, logprob?) instead. The list
        (``Words``) also counts the samples drawn again to get them."""
        from makemore.sample import sample_words

        if self._loaded.mode == "text":
            raise MakemoreError(f"{self.run_dir}: a text run; use .continue_text(prompt, length)")
        sampled = sample_words(self._loaded, n, temperature=temperature, top_k=top_k, top_p=top_p, prefix=prefix,
                               min_len=min_len, max_len=max_len, new_only=new_only, unique=unique,
                               allow_empty=allow_empty, seed=seed, scores=logprobs)
        drawn = sampled.samples
        words = Words(d.word if not (tags or logprobs) else
                      (d.word, *((d.tag,) if tags else ()), *((d.logprob,) if logprobs else ())) for d in drawn)
        words.too_long, words.not_new, words.repeated = sampled.too_long, sampled.not_new, sampled.repeated
        return words

    @_checked()
    def continue_text(self, prompt: str | None = None, length: int = 500, *, temperature: float = 1.0,
                      top_k: int | None = None, top_p: float | None = None, seed: int = 0) -> str:
        """A text run's continuation of ``prompt`` (default: a newline, as `makemore sample`) by ``length``
        characters (the prompt not included); a token run draws tokens until their decoded text is ``length``
        characters long, as `makemore sample` does."""
        import torch

        from makemore.config import check_text_length
        from makemore.text import continuation, default_prompt

        if self._loaded.mode != "text":
            raise MakemoreError(f"{self.run_dir}: a word-list run; use .sample(n)")
        check_text_length(length)  # as `makemore sample --length`
        if prompt is None:
            prompt = default_prompt(self._loaded.vocab)
        return "".join(continuation(self._loaded.model, self._loaded.vocab, prompt, length,
                                    temperature=temperature, top_k=top_k, top_p=top_p,
                                    generator=torch.Generator().manual_seed(seed)))

    @_checked()
    def score(self, words: list[str] | str) -> list[float]:
        """Each word's mean negative log-likelihood in nats per character (its stop token included)."""
        from makemore.evaluation import score_words

        if self._loaded.mode == "text":  # `makemore score`'s refusal: a text has no words to score one by one
            raise MakemoreError(f"{self.run_dir}: a text run; score scores words of a word list "
                                f"(for a text, use `makemore eval {self.run_dir} FILE`)")
        if isinstance(words, str):
            words = [words]
        elif isinstance(words, (bytes, bytearray)) or not isinstance(words, Iterable):
            raise MakemoreError(f"score takes a word or a list of words, not {words!r}")
        words = list(words)
        bad = [w for w in words if not isinstance(w, str)]
        if bad:
            raise MakemoreError(f"score takes words as strings, not {bad[0]!r}")
        return score_words(self._loaded, words)

    @_checked()
    def evaluate(self, file: str | Path | None = None, *, split: str | None = None,
                 skip_unknown: bool = False) -> dict[str, Any]:
        """Loss on a word list ``file`` (or on the run's ``split``, default test): loss (nats/char), bpc, words,
        and for a file the words skipped by reason; a word with a character outside the vocabulary refuses the
        file unless ``skip_unknown``.

        A text run: on a text ``file`` or its ``split`` (default val): loss (nats per character, or per token
        for a token run: ``loss_unit``), bpc (bits per character of the text, as `makemore eval`), chars
        (and tokens), perplexity; ``skip_unknown`` is refused there (a text is one stream, with no words to skip)."""
        from makemore.config import check_eval_target
        from makemore.data import resolve_dataset
        from makemore.evaluation import evaluate_on, evaluate_text

        if self._loaded.mode == "text" and skip_unknown:
            raise MakemoreError(f"--skip-unknown applies to word lists; {self.run_dir} is a text run, one "
                                f"stream with no words to skip")
        check_eval_target(file, split, skip_unknown)
        if file is not None:
            file = resolve_dataset(file)[1]  # a path, or a built-in dataset's name, as `train` takes them
        if self._loaded.mode == "text":
            return evaluate_text(self._loaded, file=file, split=split or "val")
        return evaluate_on(self._loaded, file=file, split=split or "test", skip_unknown=skip_unknown)


@dataclass
class Run(_Records):
    """A finished ``train`` call: where it wrote, how it ended, its model and its diagnostics."""

    run_dir: Path
    step: int
    reason: str  # "max_steps", "max_time", "stopped", "fitted"
    best_val_loss: float | None
    test_loss: float | None
    elapsed: float
    _model: Model | None = None

    @property
    def model(self) -> Model:
        if self._model is None:
            self._model = load(self.run_dir)
        return self._model


@_checked(options=_train_options)
@_restoring
def train(data: str | Path | None = None, *, type: str | None = None, out: str | Path | None = None,
          resume: str | Path | None = None, seed: int = 42, device: str = "auto", max_len: int = 64,
          progress: bool = True, mode: str | None = None, block_size: int | None = None,
          tokenizer: str | Path | None = None, preset: str | None = None, tensorboard: bool = False,
          **options: Any) -> Run:
    """Train as `makemore train` does; ``options`` are its options as keywords (``max_steps=1000``,
    ``learning_rate=3e-3``, ``n_embd=128``, ...); ``type`` defaults to the Transformer. ``resume`` continues a
    run: ``max_steps``/``max_time``/``device`` may extend or move it, anything else given must match the run (a
    ``seed`` or ``max_len`` left at its default is not compared), and ``out``, if given, must name it.
    ``progress``: show progress on the console (a terminal or a notebook). ``tokenizer``: a text on tokens
    (``mode="text"``); ``preset``: a named model and recipe (``"gpt2-124m"``), which the options given override.
    The instruments take the command line's names: ``diagnostics=True``, ``diag_interval=N``, ``init_scale=X``;
    ``tensorboard=True`` also writes TensorBoard logs to RUN/tensorboard.
    Ctrl-C stops after the current step and saves the run (``resume`` continues it), then raises
    ``KeyboardInterrupt``, as an interrupted call does: a script's loop of calls ends there.

    The calling thread flushes denormal floats to zero from then on (``makemore.device.flush_denormals``), as the
    command line does: torch's intra-op threads take the setting when they start, so in a process that has run
    torch before, only the calling thread's share of the work flushes."""
    import dataclasses

    from makemore.config import TrainConfig
    from makemore.rundir import RunDir
    from makemore.training import (Request, check_with_preset, data_notes, drive, new_trainer, resume_trainer,
                                   unused_note, late_notes)

    from makemore.models import family_name

    if type is not None:
        type = family_name(type)  # any case, as the command line takes it (and stores it as the family's name)
    train_names = {f.name for f in dataclasses.fields(TrainConfig)} - {"seed", "device"}  # unknown ones: _checked
    hyper = {k: v for k, v in options.items() if k in _HYPER}
    train_opts = {k: v for k, v in options.items() if k in train_names}
    if tensorboard:
        from makemore.sinks import check_tensorboard

        check_tensorboard()
    if resume is not None and preset is not None:
        raise MakemoreError("resume continues a run with the settings it was given, the preset's among them if it "
                            "had one; drop preset")
    if resume is not None and tokenizer is not None:  # the original call repeated: the same tokenizer passes
        from makemore.training import check_resume_tokenizer

        check_resume_tokenizer(Path(resume), Path(tokenizer), option="tokenizer")
    with contextlib.ExitStack() as stack:
        if resume is not None:
            from makemore.training import check_resume

            run = RunDir.open(resume)
            if out is not None and Path(out).resolve() != run.path.resolve():
                raise MakemoreError(f"out does not apply with resume (the run continues in {run.path})")
            defaults = {k: p.default for k, p in inspect.signature(train).parameters.items()}
            fixed = {"seed": seed, "max_len": max_len, "mode": mode, "block_size": block_size}  # the run's own
            given = {"data": str(data) if data is not None else None, "model_type": type,
                     "device": device if device != "auto" else None, **hyper, **train_opts,
                     **{k: v for k, v in fixed.items() if v != defaults[k]}}
            overrides = check_resume(run, {k: v for k, v in given.items() if v is not None})
            # locked before anything is read or written: a run another process trains is refused, its config.json
            # untouched (resume_trainer saves a longer run's new length into it)
            stack.enter_context(run.lock())
            run.remove_stale_temporaries()  # left by a writer that was killed mid-save
            trainer = resume_trainer(run, overrides)
        else:
            if data is None:
                raise MakemoreError("name a word list to train on (a file, or a built-in dataset such as 'names')")
            if out is not None:  # before torch and the data are read, as the command line checks -o
                from makemore.rundir import check_out

                check_out(Path(out), "out=")
            request = Request(data=str(data), model_type=type or "transformer",
                              out=Path(out) if out is not None else None, hyper=hyper, train=train_opts, seed=seed,
                              device=device, max_len=max_len, mode=mode, block_size=block_size,
                              tokenizer=Path(tokenizer) if tokenizer is not None else None, preset=preset)
            request, checked = check_with_preset(request, type_given=type is not None)
            model_type, train_opts = request.model_type, request.train
            trainer, prepared = new_trainer(request, checked=checked)
            stack.enter_context(trainer.rundir.lock())
            for note in data_notes(prepared, model_type, checked[1].batch_size):
                print(f"note: {note}", file=sys.stderr)
            if note := unused_note(model_type, train_opts):
                print(note, file=sys.stderr)
            for note in late_notes(model_type, trainer):
                print(f"note: {note}", file=sys.stderr)
        sinks = []
        if progress:
            from rich.console import Console

            from makemore.sinks import ConsoleSink

            sinks.append(ConsoleSink(console=Console(stderr=True)))
        if tensorboard:
            from makemore.sinks import TensorBoardSink

            sinks.append(TensorBoardSink(trainer.run_dir))
        from makemore.sinks import JsonlSink

        import threading

        # Ctrl-C (a notebook's interrupt) stops after the current step and saves, as on the command line; signal
        # handlers belong to the main thread, so a call from another thread is stopped by its own means
        last = drive(trainer, [JsonlSink(trainer.run_dir), *sinks],
                     handle_sigint=threading.current_thread() is threading.main_thread())
    if trainer.interrupted:  # saved; the interrupt goes on to the caller, so that a loop of calls ends with it
        raise KeyboardInterrupt(f"stopped at step {trainer.step:,} and saved in {trainer.run_dir}; "
                                f"makemore.train(resume={str(trainer.run_dir)!r}) continues it")
    return Run(run_dir=trainer.run_dir, step=trainer.step, reason=getattr(last, "reason", "stopped"),
               best_val_loss=getattr(last, "best_val_loss", None), test_loss=getattr(last, "test_loss", None),
               elapsed=trainer.elapsed)


@_checked()
def load(run_dir: str | Path | None = None, *, device: str = "cpu", which: str = "best") -> Model:
    """A trained run's model (the latest run in ./runs when none is named); ``which``: "best" or "last" (a run
    stopped before any evaluation after step 0 has only its initial weights for a best: its last, with a note)."""
    from makemore.config import check_device
    from makemore.rundir import resolve_run

    if which not in ("best", "last"):
        raise MakemoreError(f"which must be 'best' or 'last', not {which!r}")
    check_device(device)
    run = resolve_run(run_dir)  # a bad device or a missing run is refused before torch, which makemore.device imports
    from makemore.device import resolve_device

    return Model(run.load_model(which=which, device=resolve_device(device)))


@_checked()
@_restoring
def lr_find(data: str | Path, *, type: str = "transformer", steps: int = 1000, min: float = 1e-5,
            max: float = 10.0, batch_size: int | None = None, seed: int = 42, device: str = "auto",
            mode: str | None = None, block_size: int | None = None, tokenizer: str | Path | None = None):
    """The learning-rate sweep of `makemore lr-find` (the same options): from a fresh model with the family's
    recipe, one step per learning rate on an exponential grid from ``min`` to ``max``, stopped once the loss
    explodes. Returns a ``makemore.instruments.Sweep``: ``lrs`` and ``losses`` (the steps run), ``suggested``
    (the bottom of the valley), ``smoothed``, ``exploded_at``, ``rule``, the family's ``recipe_lr`` and the
    ``loss_unit``. On a text with ``mode="text"`` (and ``block_size``, ``tokenizer``), as ``train`` takes them."""
    from makemore.instruments import lr_sweep

    return lr_sweep(str(data), model_type=type, steps=steps, lr_min=min, lr_max=max, seed=seed, device=device,
                    batch_size=batch_size, mode=mode, block_size=block_size, tokenizer=tokenizer)
