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

Nothing here prints unless asked (``progress``) or exits the interpreter; bad input raises a ``MakemoreError``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from makemore.errors import MakemoreError

_HYPER = ("n_layer", "n_head", "n_embd", "n_embd2", "context", "dropout", "dropout_samples", "batchnorm", "smoothing")


class _Records:
    """The diagnostics a run recorded (``diagnostics=True``), read from its metrics.jsonl."""

    run_dir: Path

    def diagnostics(self) -> list:
        """Every record, oldest first: ``makemore.events.Diagnostics`` (per layer ``LayerStats``, per weight
        matrix ``WeightStats``; their fields are documented there). Empty when the run recorded none."""
        from makemore.events import Diagnostics
        from makemore.rundir import RunDir

        return [e for e in RunDir(self.run_dir).events() if isinstance(e, Diagnostics)]

    def latest_diagnostics(self):
        """The last record (what ``makemore diagnose`` shows), or None."""
        from makemore.instruments import latest_diagnostics
        from makemore.rundir import RunDir

        return latest_diagnostics(RunDir(self.run_dir))


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

    def sample(self, n: int = 20, *, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
               prefix: str = "", min_len: int = 0, max_len: int | None = None, new_only: bool = False,
               unique: bool = False, seed: int = 0, tags: bool = False, logprobs: bool = False) -> list:
        """``n`` words as strings; with ``tags`` or ``logprobs``, tuples (word, tag?, logprob?) instead."""
        from makemore.sample import sample_words

        if self._loaded.mode == "text":
            raise MakemoreError(f"{self.run_dir}: a text run; use .continue_text(prompt, length)")
        drawn = sample_words(self._loaded, n, temperature=temperature, top_k=top_k, top_p=top_p, prefix=prefix,
                             min_len=min_len, max_len=max_len, new_only=new_only, unique=unique, seed=seed,
                             scores=logprobs).samples
        if not (tags or logprobs):
            return [d.word for d in drawn]
        return [(d.word, *((d.tag,) if tags else ()), *((d.logprob,) if logprobs else ())) for d in drawn]

    def continue_text(self, prompt: str = "\n", length: int = 500, *, temperature: float = 1.0,
                      top_k: int | None = None, top_p: float | None = None, seed: int = 0) -> str:
        """A text run's continuation of ``prompt`` by ``length`` characters (the prompt not included); a token
        run draws tokens until their decoded text is ``length`` characters long, as `makemore sample` does."""
        import torch

        from makemore.text import continuation

        if self._loaded.mode != "text":
            raise MakemoreError(f"{self.run_dir}: a word-list run; use .sample(n)")
        return "".join(continuation(self._loaded.model, self._loaded.vocab, prompt, length,
                                    temperature=temperature, top_k=top_k, top_p=top_p,
                                    generator=torch.Generator().manual_seed(seed)))

    def score(self, words: list[str] | str) -> list[float]:
        """Each word's mean negative log-likelihood in nats per character (its stop token included)."""
        from makemore.evaluation import score_words

        return score_words(self._loaded, [words] if isinstance(words, str) else list(words))

    def evaluate(self, file: str | Path | None = None, *, split: str | None = None,
                 skip_unknown: bool = False) -> dict[str, Any]:
        """Loss on a word list ``file`` (or on the run's ``split``, default test): loss (nats/char), bpc, words,
        and for a file the words skipped by reason; a word with a character outside the vocabulary refuses the
        file unless ``skip_unknown``.

        A text run: on a text ``file`` or its ``split`` (default val): loss (nats per character, or per token
        for a token run: ``loss_unit``), bpc (bits per character of the text, as `makemore eval`), chars
        (and tokens), perplexity."""
        from makemore.evaluation import evaluate_on, evaluate_text

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


def train(data: str | Path | None = None, *, type: str | None = None, out: str | Path | None = None,
          resume: str | Path | None = None, seed: int = 42, device: str = "auto", max_len: int = 64,
          progress: bool = True, mode: str | None = None, block_size: int | None = None,
          tokenizer: str | Path | None = None, preset: str | None = None, **options: Any) -> Run:
    """Train as `makemore train` does; ``options`` are its options as keywords (``max_steps=1000``,
    ``learning_rate=3e-3``, ``n_embd=128``, ...); ``type`` defaults to the Transformer. ``resume`` continues a
    run: ``max_steps``/``max_time``/``device`` may extend or move it, anything else given must match the run.
    ``progress``: show progress on the console (a terminal or a notebook). ``tokenizer``: a text on tokens
    (``mode="text"``); ``preset``: a named model and recipe (``"gpt2-124m"``), which the options given override.
    The instruments take the command line's names: ``diagnostics=True``, ``diag_interval=N``, ``init_scale=X``.

    The calling thread flushes denormal floats to zero from then on (``makemore.device.flush_denormals``), as the
    command line does: torch's intra-op threads take the setting when they start, so in a process that has run
    torch before, only the calling thread's share of the work flushes."""
    import dataclasses

    from makemore.config import TrainConfig
    from makemore.rundir import RunDir
    from makemore.training import Request, check_request, drive, new_trainer, resume_trainer

    train_names = {f.name for f in dataclasses.fields(TrainConfig)} - {"seed", "device"}
    unknown = sorted(set(options) - set(_HYPER) - train_names)
    if unknown:
        raise MakemoreError(f"unknown option {unknown[0]!r}")
    hyper = {k: v for k, v in options.items() if k in _HYPER}
    train_opts = {k: v for k, v in options.items() if k in train_names}
    if resume is not None and (tokenizer is not None or preset is not None):
        raise MakemoreError(f"resume continues a run as it was configured; drop "
                            f"{'tokenizer' if tokenizer is not None else 'preset'}")
    if resume is not None:
        from makemore.training import check_resume

        run = RunDir.open(resume)
        given = {"data": str(data) if data is not None else None, "model_type": type,
                 "device": device if device != "auto" else None, **hyper, **train_opts}
        trainer = resume_trainer(run, check_resume(run, {k: v for k, v in given.items() if v is not None}))
    else:
        if data is None:
            raise MakemoreError("name a word list to train on (a file, or a built-in dataset such as 'names')")
        from makemore.presets import with_preset

        model_type, hyper, train_opts, block_size = with_preset(
            preset, model_type=type or "transformer", type_given=type is not None, hyper=hyper, train=train_opts,
            block_size=block_size, device=device)
        request = Request(data=str(data), model_type=model_type, out=Path(out) if out is not None else None,
                          hyper=hyper, train=train_opts, seed=seed, device=device, max_len=max_len, mode=mode,
                          block_size=block_size, tokenizer=Path(tokenizer) if tokenizer is not None else None)
        trainer, _ = new_trainer(request, checked=check_request(request))
    sinks = []
    if progress:
        from rich.console import Console

        from makemore.sinks import ConsoleSink

        sinks.append(ConsoleSink(console=Console(stderr=True)))
    from makemore.sinks import JsonlSink

    with trainer.rundir.lock():
        last = drive(trainer, [JsonlSink(trainer.run_dir), *sinks])
    return Run(run_dir=trainer.run_dir, step=trainer.step, reason=getattr(last, "reason", "stopped"),
               best_val_loss=getattr(last, "best_val_loss", None), test_loss=getattr(last, "test_loss", None),
               elapsed=trainer.elapsed)


def load(run_dir: str | Path | None = None, *, device: str = "cpu", which: str = "best") -> Model:
    """A trained run's model (the latest run in ./runs when none is named); ``which``: "best" or "last"."""
    from makemore.device import resolve_device
    from makemore.rundir import resolve_run

    if which not in ("best", "last"):
        raise MakemoreError(f"which must be 'best' or 'last', not {which!r}")
    return Model(resolve_run(run_dir).load_model(which=which, device=resolve_device(device)))


def lr_find(data: str | Path, *, type: str = "transformer", steps: int = 1000, min: float = 1e-5,
            max: float = 10.0, batch_size: int | None = None, seed: int = 42, device: str = "auto"):
    """The learning-rate sweep of `makemore lr-find` (the same options): from a fresh model with the family's
    recipe, one step per learning rate on an exponential grid from ``min`` to ``max``, stopped once the loss
    explodes. Returns a ``makemore.instruments.Sweep``: ``lrs`` and ``losses`` (the steps run), ``suggested``
    (the bottom of the valley), ``smoothed``, ``exploded_at``, ``rule`` and the family's ``recipe_lr``."""
    from makemore.instruments import lr_sweep

    return lr_sweep(str(data), model_type=type, steps=steps, lr_min=min, lr_max=max, seed=seed, device=device,
                    batch_size=batch_size)
