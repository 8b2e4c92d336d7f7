"""From what the user asked for to a ready Trainer (data, vocabulary, split, run directory, model), and the one
loop that drives a trainer into its sinks.

The CLI, the TUI and the Python API all start, resume and drive runs through here. Checking a request imports no
torch, so a refused option costs nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from makemore import __version__
from makemore.config import TrainConfig, check_device
from makemore.console import plural
from makemore.data import DEFAULT_MAX_LEN, EncodedWords, Vocab, WordList, read_words, resolve_dataset, split_words
from makemore.files import no_such_file
from makemore.errors import MakemoreError, OnlyRecorded
from makemore.models import build_model, get_family, model_hyper, recipe_for, step_recipe, text_defaults
from makemore.rundir import BEST, CONFIG, LAST, LAST_STATE, SPLIT, ModelSpec, RunConfig, RunDir, \
    check_checkpoint_size, holds_runs


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
    mode: str | None = None  # "words" (one item per line) or "text" (one stream); None: by the dataset
    block_size: int | None = None  # text mode: characters of context per window (None: the family's recipe)
    tokenizer: Path | None = None  # text mode on tokens: a tokenizer.json (makemore tokenizer train)
    preset: str | None = None  # the preset that filled in what was not given (``makemore.presets``)


def resolve_mode(req: Request) -> str:
    """``req.mode``, or text for a built-in text corpus (``shakespeare``), a tokenizer or token shards, and words
    for everything else."""
    from makemore.shards import is_shard_dir
    from makemore.text import BUILTIN_TEXT

    tokens = req.tokenizer is not None or (req.data is not None and is_shard_dir(req.data))
    if req.mode is not None:
        if req.mode not in ("words", "text"):
            raise MakemoreError(f"--mode must be words or text, not {req.mode!r}")
        if tokens and req.mode != "text":
            raise MakemoreError("tokens (--tokenizer, or token shards) are text mode; drop --mode words")
        return req.mode
    if tokens:
        return "text"
    return "text" if req.data in BUILTIN_TEXT and not Path(req.data).exists() else "words"


@dataclass
class Prepared:
    name: str
    path: Path
    words: WordList
    vocab: Vocab
    train: list[str]
    val: list[str]
    test: list[str]

    mode = "words"
    hint: str | None = None  # a note for the user: the file looks like running text

    def encoded(self) -> dict[str, EncodedWords]:
        return {"train": EncodedWords(self.train, self.vocab), "val": EncodedWords(self.val, self.vocab),
                "test": EncodedWords(self.test, self.vocab)}

    def batches(self, model, block_size: int, cfg):
        return self.encoded()

    @property
    def num_train(self) -> int:
        return len(self.train)

    def dataset_config(self, max_len: int) -> dict[str, Any]:
        w = self.words
        return {"name": self.name, "path": str(self.path.resolve()), "sha256": w.sha256, "lines": w.lines,
                "words": len(w.words), "duplicates_dropped": w.duplicates, "empty_dropped": w.empty,
                "too_long_dropped": w.too_long, "max_len": max_len}

    def split_config(self, seed: int) -> dict[str, Any]:
        return {"seed": seed, "train": len(self.train), "val": len(self.val), "test": len(self.test)}

    def split_file(self) -> dict[str, list[str]] | None:
        return {"train": self.train, "val": self.val, "test": self.test}


def words_read(prepared: Prepared, max_len: int) -> str:
    """What reading a word list kept and dropped, said before training on it (and before an lr-find sweep)."""
    w = prepared.words
    dropped = [plural(w.duplicates, "duplicate")] + ([plural(w.empty, "empty line")] if w.empty else []) \
        + ([f"{plural(w.too_long, 'word')} longer than --max-len {max_len}"] if w.too_long else [])
    marks = f"; removed {plural(w.marks, 'byte-order mark')} starting a line" if w.marks else ""
    return f"{prepared.path}: {plural(len(w.words), 'word')} (dropped {', '.join(dropped)}{marks})"


def data_notes(prepared: Prepared | Any, model_type: str, batch_size: int) -> list[str]:
    """What a user should hear about a word list before training on it, each a line said after "note: ", by the
    command line, the Python API and the TUI alike: the file looks like running text; the batch is larger than
    the training words. (A text or token stream has none.)"""
    if prepared.mode != "words":
        return []
    notes = [prepared.hint] if prepared.hint else []
    batch = batch_note(prepared, model_type, batch_size)
    return notes + ([batch] if batch else [])


def batch_note(prepared: Prepared | Any, model_type: str, batch_size: int) -> str | None:
    """A batch larger than a word list's training words, said (after "note: "), not refused."""
    if prepared.mode != "words" or get_family(model_type).fitted or batch_size <= len(prepared.train):
        return None
    return (f"--batch-size {batch_size:,} is more than the {plural(len(prepared.train), 'training word')}: each "
            f"batch draws words at random, some many times over, and a step costs {batch_size:,} words' work")


def check_prepared(model_type: str, hyper: dict[str, Any], prepared) -> None:
    """What the data refuses of the model, before torch is imported where the data did not import it: an
    n-gram's table over this vocabulary too large to hold."""
    from makemore.models import ngram_table_error

    if model_type == "ngram" and (error := ngram_table_error(hyper["context"], len(prepared.vocab))):
        raise MakemoreError(f"bad ngram configuration: {error}")


def unused_note(model_type: str, train: dict[str, Any]) -> str | None:
    """Training options given to a family fitted by counting, which has no use for them, or --diag-interval
    without --diagnostics: said, not refused (a script may loop over families), once nothing else is refused."""
    unused = [k for k, v in train.items() if v is not None and v is not False]
    if not get_family(model_type).fitted:
        if train.get("diag_interval") is not None and not train.get("diagnostics"):
            return "--diag-interval has no effect without --diagnostics, which records the instruments"
        return None
    if not unused:
        return None
    options = ", ".join("--" + k.replace("_", "-") for k in unused)
    verb = "has" if len(unused) == 1 else "have"
    return f"{model_type} is counted in one pass, not trained: {options} {verb} no effect"


def warmup_note(model_type: str, cfg: TrainConfig) -> str | None:
    """A warm-up longer than the run (given so): the learning rate never reaches its peak. Said (after "note: "),
    not refused; not for a family fitted by counting (``unused_note`` says it has no learning rate)."""
    from makemore.config import lr_at

    if get_family(model_type).fitted or not cfg.max_steps or cfg.max_time is not None \
            or cfg.warmup_steps <= cfg.max_steps:
        return None
    top = lr_at(cfg.max_steps - 1, cfg)
    return (f"--warmup-steps {cfg.warmup_steps:,} is longer than the run's {plural(cfg.max_steps, 'step')}: the "
            f"learning rate rises to {top:.2e}, {top / cfg.learning_rate:.0%} of its peak {cfg.learning_rate:.2e}")


def bfloat16_note(trainer) -> str | None:
    """bfloat16 asked of a CPU without bfloat16 instructions, where autocast is emulated: said (after "note: "),
    not refused (the run trains; ``--dtype auto`` would have timed both and taken float32)."""
    from makemore.device import cpu_bfloat16

    if trainer.cfg.dtype != "bfloat16" or trainer.device.type != "cpu" or not trainer.model.trainable \
            or cpu_bfloat16():
        return None
    return ("--dtype bfloat16 on a CPU without bfloat16 instructions (AVX-512 BF16 or AMX): autocast is emulated "
            "here, much slower than float32 (--dtype auto, the default, times both and takes the faster)")


def lean_note(trainer) -> str | None:
    """A budget tier made leaner for this machine (``lean_for_machine``): said (after "note: "), with the option
    that keeps the tier."""
    lean = trainer.lean
    if lean is None:
        return None
    lean_opts = " ".join(f"--{k.replace('_', '-')} {v:g}" for k, v in lean.settings.items())
    tier_opts = " ".join(f"--{k.replace('_', '-')} {lean.tier[k]:g}" for k in lean.settings)
    return (f"the --max-time {trainer.cfg.max_time:g} model makes about {lean.steps:,} steps on this machine (its "
            f"step timed), fewer than the {lean.needed:,} it is made for: it trains with {lean_opts} instead "
            f"({tier_opts} keeps it)")


def late_notes(model_type: str, trainer) -> list[str]:
    """What a user should hear once the trainer is built, each a line said after "note: ": a warm-up longer than
    the run (``warmup_note``), bfloat16 on a CPU that emulates it (``bfloat16_note``), a budget tier made leaner
    for a slow machine (``lean_note``)."""
    return [n for n in (warmup_note(model_type, trainer.cfg), bfloat16_note(trainer), lean_note(trainer)) if n]


MAX_LEN_LIMIT = 1024  # the context follows the longest word; beyond this attention and logits outgrow memory
LOGITS_BUDGET = 4 << 30  # bytes the logits of one training micro-batch may take (with softmax and gradient)


def prepare_data(data: str, seed: int, max_len: int = DEFAULT_MAX_LEN, mode: str = "words",
                 tokenizer: Path | None = None):
    """A word list split three ways (``Prepared``), or in text mode one stream (``makemore.text.PreparedText``;
    on tokens ``makemore.tokentext.PreparedTokens``, or token shards ``PreparedShards``)."""
    from makemore.shards import is_shard_dir

    if is_shard_dir(data):  # (with --tokenizer refused by check_request)
        from makemore.tokentext import prepare_shards

        return prepare_shards(data, seed)
    if tokenizer is not None:
        from makemore.tokentext import prepare_tokens

        return prepare_tokens(data, tokenizer)
    if mode == "text":
        from makemore.text import prepare_text

        return prepare_text(data)
    if not 1 <= max_len <= MAX_LEN_LIMIT:
        raise MakemoreError(f"--max-len must be between 1 and {MAX_LEN_LIMIT} characters, not {max_len}")
    name, path = resolve_dataset(data)
    try:
        words = read_words(path, max_len)
    except MakemoreError as e:
        if "every word is longer than --max-len" in str(e):
            raise MakemoreError(f"{e}; if it is running text, train on it as one stream with --mode text") from None
        raise
    unique = len(words.words) + words.too_long
    if words.too_long * 2 > unique:  # most of the file would be skipped: prose, not a list
        raise MakemoreError(f"{path}: {words.too_long:,} of {unique:,} distinct words (lines) are longer than "
                            f"--max-len {max_len}; "
                            f"if this is running text, train on it as one stream with --mode text "
                            f"(or raise --max-len to keep them as words)")
    train, val, test = split_words(words.words, seed)
    prepared = Prepared(name, path, words, Vocab.from_words(words.words), train, val, test)
    spaced = sum(w.count(" ") >= 3 for w in words.words)
    if spaced * 2 > len(words.words):
        prepared.hint = (f"{spaced:,} of {len(words.words):,} lines hold several spaces; if this is running text, "
                         f"--mode text trains on the file as one stream")
    return prepared


MAX_BLOCK_SIZE = MAX_LEN_LIMIT * 8  # text mode's context, in tokens


def check_request(req: Request) -> tuple[dict[str, Any], TrainConfig]:
    """The model's hyperparameters and the training configuration the request implies, checked before importing
    torch; of the data, a text (``--mode text`` without a tokenizer) is read through, to refuse what reading it
    would, or a text too short for the block (the scan is kept for reading it). The device
    stays as named ("auto", "cuda:1"); ``new_trainer`` resolves it."""
    from makemore.shards import is_shard_dir

    family = get_family(req.model_type)
    shards = req.data is not None and is_shard_dir(req.data)
    path = resolve_dataset(req.data)[1] if req.data is not None and not shards else None
    if path is not None and not path.exists():  # said first, before what the file's kind would refuse
        raise MakemoreError(no_such_file(path))
    mode = resolve_mode(req)
    user_train = {k: v for k, v in req.train.items() if v is not None}
    user_hyper = {k: v for k, v in req.hyper.items() if v is not None}
    check_device(req.device)
    if not 1 <= req.max_len <= MAX_LEN_LIMIT:
        raise MakemoreError(f"--max-len must be between 1 and {MAX_LEN_LIMIT} characters, not {req.max_len}")
    if user_train.get("max_steps") is not None and user_train["max_steps"] < 1:
        raise MakemoreError("--max-steps must be at least 1")
    if "context" in family.hyper and shards:  # the window models
        raise MakemoreError(f"{req.data}: token shards train models that read a whole window (transformer, "
                            f"bow, rnn, gru, lstm, bigram), not fixed-context ones")
    if req.block_size is not None and mode != "text" and req.preset is not None:
        raise MakemoreError(f"--preset {req.preset} is a recipe for text or token shards; {req.data} reads as a "
                            f"word list (give --tokenizer, token shards or --mode text)")
    if req.block_size is not None and mode != "text":
        raise MakemoreError("--block-size applies to --mode text (a word list's context is its longest word)")
    if req.max_len != DEFAULT_MAX_LEN and mode == "text":  # (the default, given or not, changes nothing)
        raise MakemoreError(f"--max-len applies to word lists; {req.data} trains as one text (its context is "
                            f"--block-size)")
    if req.block_size is not None and not 1 <= req.block_size <= MAX_BLOCK_SIZE:
        raise MakemoreError(f"--block-size must be between 1 and {MAX_BLOCK_SIZE}, not {req.block_size}")
    # --max-time alone: the time budget decides when to stop and picks the family's settings for that budget
    timed = user_train.get("max_time") is not None and user_train.get("max_steps") is None
    tier = family.for_budget(user_train["max_time"], mode) if timed else {}
    tier.pop("block_size", None)  # see text_block_size
    if tier.get("dropout_samples") and user_hyper.get("dropout") == 0 and "dropout_samples" not in user_hyper:
        tier["dropout_samples"] = 0  # the budget averages the masks of a dropout the user turned off: none
    defaults = text_defaults(req.model_type)[1] if mode == "text" else {}
    hyper = model_hyper(req.model_type, {**defaults, **{k: v for k, v in tier.items() if k in family.hyper},
                                         **user_hyper})
    if mode == "text" and hyper.get("dropout_samples"):
        raise MakemoreError("--dropout-samples applies to word lists, not to --mode text")
    recipe = {**step_recipe(req.model_type, mode), **{k: v for k, v in tier.items() if k not in family.hyper},
              **user_train}
    if timed:
        recipe["max_steps"] = 0  # no step limit
    elif "max_steps" in user_train and "warmup_steps" not in user_train and "warmup_steps" in recipe:
        # a short run given in steps leaves its warm-up, as one cut short by the word list's size does (fit_to_data)
        recipe["warmup_steps"] = min(recipe["warmup_steps"], max(1, recipe["max_steps"] // 10))
    unknown = sorted(set(recipe) - {f.name for f in dataclasses.fields(TrainConfig)})
    if unknown:
        raise MakemoreError(f"unknown training option --{unknown[0].replace('_', '-')}")
    cfg = TrainConfig(**recipe, seed=req.seed, device=req.device).check()
    if req.tokenizer is not None and shards:
        raise MakemoreError(f"{req.data}: token shards carry their tokenizer; drop --tokenizer")
    if path is not None:
        if path.is_dir():
            if RunDir.is_run(path):
                raise MakemoreError(f"{path}: is a run directory, not data; continue it with `makemore train --resume "
                                    f"{path}`")
            if holds_runs(path):
                raise MakemoreError(f"{path}: is a folder of runs, not data; `makemore runs {path}` lists them and "
                                    f"`makemore tui {path}` opens them")
            raise MakemoreError(f"{path}: is a directory, not a file; a directory of text files trains as token "
                                f"shards: `makemore prepare {path} --tokenizer TOK.json -o SHARDS`, then "
                                f"`makemore train SHARDS`")
        if mode == "text" and req.tokenizer is None:
            from makemore.text import check_text

            # read through once here (and not again to encode it): a bad byte or a text too short for one window
            # (the block, its target and a window model's context in front) is refused before torch
            check_text(path, text_block_size(req) + hyper.get("context", 1))
    if req.tokenizer is not None:
        from makemore.tokenizer import Tokenizer

        Tokenizer.load(req.tokenizer)  # read again with the text; refused here, before torch
    if cfg.init_scale != 1.0:  # (builds a tiny copy of the model: torch only for a run that asks for it)
        from makemore.diagnostics import check_init_scale

        check_init_scale(req.model_type, hyper)
    return hyper, cfg


def check_resume_tokenizer(resume: Path, tokenizer: Path, option: str = "--tokenizer") -> None:
    """A resumed run's original command repeated with its tokenizer passes (the same file, by its sha256); any
    other tokenizer is refused: a run continues as it was configured."""
    from makemore.rundir import tokenizer_entry
    from makemore.tokenizer import Tokenizer

    entry = tokenizer_entry(RunDir.open(resume).config.dataset)
    if entry is None or Tokenizer.load(tokenizer).sha256 != entry.get("sha256"):
        raise MakemoreError(f"{option} {tokenizer}: not the tokenizer {resume} trained with; resuming continues a "
                            f"run as it was configured (drop {option})")


def check_with_preset(req: Request, type_given: bool) -> tuple[Request, tuple[dict[str, Any], TrainConfig]]:
    """``req`` with its preset applied (``req.preset``; the user's values win), and ``check_request``'s result: the
    preset's settings for any device are checked first, before torch; then, where the device resolves to CUDA
    (torch is asked), the request with the preset's CUDA-only settings is checked again."""
    if req.preset is None:
        return req, check_request(req)
    from makemore.presets import with_preset

    def applied(device: str | None) -> Request:
        model_type, hyper, train, block_size = with_preset(
            req.preset, model_type=req.model_type, type_given=type_given, hyper=req.hyper, train=req.train,
            block_size=req.block_size, device=device)
        return dataclasses.replace(req, model_type=model_type, hyper=hyper, train=train, block_size=block_size)

    first = applied(None)
    checked = check_request(first)
    from makemore.device import resolve_device

    device = resolve_device(req.device)
    if not device.startswith("cuda"):
        return first, checked
    final = applied(device)
    return final, check_request(final)


def text_block_size(req: Request) -> int:
    """Text mode: ``--block-size`` (its range checked by ``check_request``), or the family's text recipe (its
    time-budget tier's, given --max-time)."""
    if req.block_size is not None:
        return req.block_size
    train = {k: v for k, v in req.train.items() if v is not None}
    timed = train.get("max_time") is not None and train.get("max_steps") is None
    tier = get_family(req.model_type).for_budget(train["max_time"], "text") if timed else {}
    return tier.get("block_size", text_defaults(req.model_type)[0])


def fit_to_data(cfg: TrainConfig, req: Request, num_train: int) -> None:
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
        cfg.eval_interval = min(cfg.eval_interval, auto_eval_interval(steps))
    if req.train.get("warmup_steps") is None:
        cfg.warmup_steps = min(cfg.warmup_steps, max(1, steps // 10))


def auto_eval_interval(steps: int) -> int:
    """Four or five evaluations over ``steps``, the last at the end, with none just before it (646 steps: every
    130, where every 129 would evaluate at 645 and again at 646)."""
    interval = math.ceil(steps / 5)
    if 0 < steps % interval < interval / 2:
        interval = math.ceil(steps / 4)
    return interval


def new_trainer(req: Request, prepared: Prepared | None = None, dist=None,
                checked: tuple[dict[str, Any], TrainConfig] | None = None):
    """Everything checked before anything is written; then the run directory with its config and split.

    ``checked``: what ``check_request(req)`` returned, if the caller already called it. ``dist`` (a
    ``makemore.distributed.Context``) places this process in a torchrun job: only rank 0 writes.
    """
    import torch

    from makemore.device import flush_denormals, resolve_device

    hyper, cfg = checked or check_request(req)
    flush_denormals()  # this thread trains (the TUI's training thread, a script's main thread)
    cfg.device = resolve_device(cfg.device)
    cfg.check()  # again, now that "auto" names a device (float16 needs CUDA)
    mode = resolve_mode(req)
    prepared = prepared or prepare_data(req.data, req.seed, req.max_len, mode, req.tokenizer)
    if mode == "text":
        block_size = text_block_size(req)
    else:
        fit_to_data(cfg, req, prepared.num_train)
        block_size = max(len(w) for w in prepared.words.words) + 1
    _check_logits_memory(cfg, block_size, len(prepared.vocab), text=mode == "text")
    check_prepared(req.model_type, hyper, prepared)
    torch.manual_seed(req.seed)
    model = build_model(req.model_type, len(prepared.vocab), block_size, hyper, copies=4)
    batches = prepared.batches(model, block_size, cfg)  # refuses a text too short for one window
    lean = lean_for_machine(req, mode, cfg, model, batches, prepared.vocab, dist)
    if lean is not None:  # the same seed, the leaner settings: the model the user would get by giving them
        # (a word list's batches do not depend on the model: they stay)
        hyper = model_hyper(req.model_type, {**hyper, **lean.settings})
        torch.manual_seed(req.seed)
        model = build_model(req.model_type, len(prepared.vocab), block_size, hyper, copies=4)
    if dist is not None and not dist.is_main:  # same data, same model; rank 0 alone owns the run directory
        run = RunDir(req.out or "runs")
    else:
        config = RunConfig(
            model=ModelSpec(type=req.model_type, block_size=block_size, hyper=hyper, num_params=model.num_params()),
            train=dataclasses.replace(cfg),  # as configured: the trainer's copy takes what "auto" chooses
            vocab=prepared.vocab.chars,
            dataset=prepared.dataset_config(req.max_len),
            split=prepared.split_config(req.seed),
            makemore=__version__,
            mode=mode,
            preset=req.preset,
        )
        # a word list's split.json; a text's split is its boundary, in config.json (the text is not copied)
        run = RunDir.create(req.out, f"{prepared.name}-{req.model_type}", config, prepared.split_file(),
                            getattr(prepared, "run_files", dict)())  # a token run's tokenizer.json
    trainer = build_trainer(model, prepared.vocab, batches, cfg, run, req.model_type, prepared.name, dist)
    trainer.lean = lean  # said by lean_note
    return trainer, prepared


@dataclass
class Lean:
    """A budget tier made leaner for this machine (``lean_for_machine``)."""

    steps: int  # the tier model's steps that fit in the budget here, as timed
    needed: int  # the steps the tier is for (``Family.lean``)
    settings: dict[str, Any]  # what replaced the tier's settings
    tier: dict[str, Any]  # the tier's values of those settings


LEAN_PASSES = 5  # the tier model's passes timed (in each dtype it may take), after one not timed ...
LEAN_SECONDS = 2.0  # ... or fewer (at least 2 rounds) once they took this long
STEP_OVER_PASSES = 1.15  # a step's time over its passes' (the optimizer, the moving average): as measured


def lean_for_machine(req: Request, mode: str, cfg: TrainConfig, model, batches, vocab: Vocab,
                     dist=None) -> Lean | None:
    """Where ``--max-time`` picked a budget tier (``Family.for_budget``) whose family is made leaner on a machine
    too slow for it (``Family.lean``): how many of the tier model's steps fit in the budget, from its forward and
    backward passes on one batch timed here (``seconds_per_step``), and if fewer than the tier is for, its lean
    settings. None where the tier stays: no tier, steps given, any model setting given (the model is the user's
    to shape), a torchrun job (its ranks must agree, and train faster together), or enough steps."""
    family = get_family(req.model_type)
    tier = family.for_budget(cfg.max_time, mode)  # {}: no --max-time, or one below every tier
    if family.lean is None or mode != "words" or not tier or cfg.max_steps \
            or (dist is not None and dist.world_size > 1):
        return None
    if any(v is not None for v in req.hyper.values()):
        return None  # a model of the user's own making: the tier as given
    needed, settings = family.lean
    if isinstance(batches, dict):  # a word list's splits, as the trainer takes them
        from makemore.batches import WordBatches

        batches = WordBatches(batches, vocab)
    steps = round(cfg.max_time / (seconds_per_step(model, batches, cfg) * STEP_OVER_PASSES))
    if steps >= needed:
        return None
    return Lean(steps=steps, needed=needed, settings=settings, tier={k: tier.get(k) for k in settings})


def seconds_per_step(model, batches, cfg: TrainConfig) -> float:
    """The median time of ``model``'s forward and backward passes on a batch of ``cfg.batch_size`` (its first
    micro-batch, times ``grad_accum``) on ``cfg.device``, in the dtype the run trains in (``training_dtypes``).
    Leaves no trace: the gradients are dropped and torch's random numbers (dropout) are as they were."""
    import statistics
    import time

    import torch

    device = torch.device(cfg.device)
    model.to(device)
    index = batches.draw(cfg.batch_size, torch.Generator().manual_seed(0)).chunk(max(1, cfg.grad_accum))[0]
    x, y, extra = batches.micro_batch(index, model, cfg.pack, device)
    dtypes = training_dtypes(cfg, model)

    def synchronize() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def passes(dtype: str) -> float:
        autocast = contextlib.nullcontext() if dtype == "float32" else \
            torch.autocast(device.type, dtype=getattr(torch, dtype))
        synchronize()
        start = time.perf_counter()
        with autocast:
            _, loss = model(x, y, **extra)
        loss.backward()
        synchronize()
        return time.perf_counter() - start

    times: dict[str, list[float]] = {d: [] for d in dtypes}
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        try:
            for i in range(1 + LEAN_PASSES):  # each dtype in turn, round by round
                for dtype in dtypes:
                    seconds = passes(dtype)
                    if i:
                        times[dtype].append(seconds)
                if i >= 2 and sum(map(sum, times.values())) > LEAN_SECONDS:
                    break
        finally:
            model.zero_grad(set_to_none=True)
    medians = {d: statistics.median(t) for d, t in times.items()}
    seconds = medians[dtypes[0]]
    if len(dtypes) == 2:  # --dtype auto on a CPU with bfloat16 instructions: the trainer's choice, as it makes it
        from makemore.device import BFLOAT16_PAYS_BY

        if medians["bfloat16"] <= BFLOAT16_PAYS_BY * seconds:
            seconds = medians["bfloat16"]
    return seconds * max(1, cfg.grad_accum)


def training_dtypes(cfg: TrainConfig, model) -> tuple[str, ...]:
    """The dtypes a run may train ``model`` in, as the trainer decides: the one given; under ``--dtype auto``
    float32, and on a CPU with bfloat16 instructions bfloat16 autocast too, where the first step times both (on
    one that emulates bfloat16 float32 always wins; under ``--compile`` and on a GPU auto means float32)."""
    import torch

    from makemore.device import cpu_bfloat16
    from makemore.trainer import dtype_timed

    if cfg.dtype != "auto":
        return (cfg.dtype,)
    if dtype_timed(cfg, torch.device(cfg.device).type, model) and cpu_bfloat16():
        return ("float32", "bfloat16")
    return ("float32",)


def build_trainer(model, vocab, splits, cfg: TrainConfig, run: RunDir, model_type: str, dataset: str, dist=None):
    """A Trainer for ``model`` (the float32 matmul precision for its device chosen first)."""
    import torch

    from makemore.device import set_matmul_precision
    from makemore.trainer import Trainer

    precision = set_matmul_precision(torch.device(cfg.device), cfg.matmul_precision, model.cpu_matmul_precision)
    return Trainer(model.to(cfg.device), vocab, splits, cfg, run, model_type=model_type, dataset=dataset,
                   matmul_precision=precision, **({"dist": dist} if dist is not None else {}))


# what --resume may change (besides --device): the length, the instruments, and --compile (speed only: the
# training forward is compiled, the weights and their checkpoints are the plain module's); the rest is the run's
RESUMABLE = ("max_steps", "max_time", "diagnostics", "diag_interval", "compile")


def resume_trainer(run_dir: Path | RunDir, overrides: dict[str, Any] | None = None, dist=None):
    """Continue a run from its last checkpoint; ``overrides`` may extend max_steps or max_time, or move it to
    another device.

    Under torchrun (``dist``) every rank reads the run directory (shared storage across nodes), none writes here.
    """
    import torch

    from makemore.device import flush_denormals, resolve_device

    flush_denormals()
    run = run_dir if isinstance(run_dir, RunDir) else RunDir.open(run_dir)
    # the last weights and their training state are saved together (a run stopped before its first periodic
    # checkpoint has neither, and starts again at step 0): the weights alone mean the state was lost since
    if not run.has_state() and (run.path / LAST).exists():
        raise MakemoreError(f"{run.path / LAST_STATE}: missing, though {run.path / LAST} is there: the optimizer's "
                            f"state is lost and the run cannot continue where it stopped; train a new run with -o")
    config = run.config
    vocab = run.vocab()
    text = config.mode == "text"
    split = None if text else run.split(required=True)
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    cfg = dataclasses.replace(config.train, **{k: overrides[k] for k in RESUMABLE if k in overrides})
    if moved := overrides.get("data_path"):  # the run's file, at the path it was moved to (same sha256)
        was, config.dataset = config.dataset.get("path"), {**config.dataset, "path": moved}
        if dist is None or dist.is_main:  # recorded at once: `eval` and `sample` read it there, finished or not
            config.save(run.file(CONFIG))
            print(f"note: {run.path} reads its data from {moved} from now on (moved from {was}; the same sha256)",
                  file=sys.stderr)
    torch.manual_seed(cfg.seed)  # with no checkpoint yet the run starts over exactly as it first began
    m = config.model
    check_checkpoint_size(run.path / LAST_STATE, m, len(vocab))
    model = build_model(m.type, len(vocab), m.block_size, m.hyper, copies=4)
    device = overrides.get("device") or cfg.device
    if device.startswith("cuda") and not torch.cuda.is_available():
        device = "cpu"  # a run trained on a GPU continues on the CPU
    cfg.device = resolve_device(device)
    if cfg.dtype == "float16" and not cfg.device.startswith("cuda"):  # its gradient scaler is CUDA's
        cfg.dtype = "float32"
        if dist is None or dist.is_main:
            print(f"note: {run.path} trained in float16, which needs CUDA; it continues in float32 on "
                  f"{cfg.device}", file=sys.stderr)
    try:  # as a new run's options are checked: config.json may have been edited since
        cfg.check()
        _check_logits_memory(cfg, m.block_size, len(vocab))
    except MakemoreError as e:
        raise MakemoreError(f"{run.path / CONFIG}: {e}") from None
    if text:
        from makemore.tokentext import tokenizer_entry

        if tokenizer_entry(config.dataset) is not None:
            from makemore.tokentext import batches_for_run
        else:
            from makemore.text import batches_for_run

        splits = batches_for_run(run, model)  # the same file (sha256 checked), the same boundary
    else:
        try:
            splits = {k: EncodedWords(split[k], vocab) for k in ("train", "val", "test")}
        except MakemoreError as e:  # split.json and config.json's vocabulary disagree: one was edited
            raise MakemoreError(f"{run.path / SPLIT}: {e} (the vocabulary of {run.path / CONFIG})") from None
    trainer = build_trainer(model, vocab, splits, cfg, run, m.type, str(config.dataset.get("name", run.path.name)), dist)
    finished = run.finished()
    if (model.trainable and cfg.max_time is not None and finished and not run.has_state()
            and run.end_reason() == "max_time" and config.train.max_time is not None
            and cfg.max_time <= config.train.max_time):
        # ended by its time before its first checkpoint: from step 0 again, the same time would end it alike
        raise MakemoreError(f"{run.path}: its --max-time of {config.train.max_time:g} s ended it before its first "
                            f"checkpoint, and would again; pass a larger --max-time to continue")
    if run.has_state():
        trainer.restore()
        if hasattr(splits, "seek"):  # token shards: go on with the batch after the last one trained on
            splits.seek(trainer.step, cfg.batch_size)
    else:  # killed before its first checkpoint; it starts from step 0 with the stored configuration and split
        _keep_best(run, trainer, dist is None or dist.is_main)
    # a finished run has nothing left at its length; one killed after its last save at its length goes on to
    # finish (writes its final results), and one past a step count given now is refused as a finished one is
    # (not past a time: a run's last save falls a moment after its --max-time, and it finishes from there)
    # a finished run given only the new place of its data (as `eval` advises): recorded above, nothing to train
    recorded = moved and not any(k in overrides for k in ("max_steps", "max_time"))
    refused = OnlyRecorded if recorded else MakemoreError
    if finished and not model.trainable:
        raise refused(f"{run.path}: {m.type} is counted in one pass, and this run was; there is nothing "
                      f"to continue (train a new run to count again)")
    if cfg.max_steps and (trainer.step >= cfg.max_steps if finished else trainer.step > cfg.max_steps):
        raise refused(f"{run.path}: already trained {trainer.step:,} of {plural(cfg.max_steps, 'step')}"
                      + (" (where its data is now is recorded)" if moved else "")
                      + "; pass a larger --max-steps to continue")
    if cfg.max_time is not None and finished and trainer.elapsed >= cfg.max_time:
        raise refused(f"{run.path}: already trained {trainer.elapsed:.1f} s, past its --max-time of "
                      f"{cfg.max_time:g} s, which ends it whatever --max-steps says; pass a larger "
                      f"--max-time to continue")
    changed = {k: getattr(cfg, k) for k in RESUMABLE if getattr(cfg, k) != getattr(config.train, k)}
    if (changed or moved) and (dist is None or dist.is_main):
        # the run is now configured so: a later --resume, `info` and `compare` see the length it was given (and
        # where its data is now)
        config.train = dataclasses.replace(config.train, **changed)
        config.save(run.file(CONFIG))
    return trainer


def _keep_best(run: RunDir, trainer, say: bool) -> None:
    """A run that starts over at step 0 with a best checkpoint already saved (killed between writing it and the
    last checkpoint at the same evaluation) keeps that checkpoint until a better one: it was replaced by the
    first evaluation's, whatever its loss."""
    from makemore.checkpoint import load_metadata

    if not (run.path / BEST).exists():
        return
    meta = load_metadata(run.path / BEST)
    best, step = meta.get("best_val_loss"), meta.get("best_step", meta.get("step"))
    if type(best) not in (int, float) or not math.isfinite(best) or type(step) is not int or step < 0:
        return
    trainer.best_val, trainer.best_step = best, step
    if say:
        print(f"note: {run.path} has no last checkpoint (it stopped before writing its first): it trains again from "
              f"step 0; {BEST} (step {step:,}, val {best:.4f}) stays until a better one", file=sys.stderr)


def _shown(value: Any) -> str:
    """An option's value as it is typed: 2 for 2.0, 1e-05 for 0.00001 (to the digits two values may differ in)."""
    return f"{value:.12g}" if isinstance(value, float) else str(value)


def check_resume(run: RunDir, given: dict[str, Any]) -> dict[str, Any]:
    """``--resume`` with the original command repeated: every option given must equal the run's stored value,
    except those that may change (``RESUMABLE`` and the device). Returns the overrides to apply.

    ``given`` holds only what the user typed: data, model_type, seed, max_len, hyper options and training options.
    """
    config = run.config
    stored: dict[str, Any] = {"model_type": config.model.type, "seed": config.train.seed, "mode": config.mode,
                              **({"block_size": config.model.block_size} if config.mode == "text" else {}),
                              "max_len": config.dataset.get("max_len", DEFAULT_MAX_LEN),
                              **config.model.hyper, **dataclasses.asdict(config.train)}
    overrides: dict[str, Any] = {}
    for name, value in given.items():
        option = "--type" if name == "model_type" else "--" + name.replace("_", "-")
        if name in RESUMABLE or name == "device":
            if name == "device":
                check_device(value)
            overrides[name] = value
        elif name == "data":
            if moved := _check_same_data(run, config, value):
                overrides["data_path"] = moved  # the run's own file, moved: read from where it is now
        elif name == "block_size" and config.mode != "text":  # (the family may take one; a word list does not)
            raise MakemoreError(f"--block-size applies to --mode text; {run.path} learned a word list (its context "
                                f"is its longest word)")
        elif name not in stored:
            raise MakemoreError(f"{option} does not apply to this run ({config.model.type})")
        elif not _same(value, stored[name]):
            chose = _auto_chose(run, name) if stored[name] == "auto" else None
            if chose is not None and value == chose:
                continue  # what --dtype/--matmul-precision auto chose for this run: the run as it is
            if isinstance(value, bool):  # a flag: given, where the run was made without it (or the other way)
                raise MakemoreError(f"{option if value else '--no-' + option[2:]}: the run was made "
                                    f"{'without' if value else 'with'} {option} ({run.path / 'config.json'}); "
                                    f"--resume continues a run as it was configured")
            raise MakemoreError(f"{option} {_shown(value)} differs from the run's {_shown(stored[name])}"
                                + (f", which chose {chose}" if chose else "") + f" ({run.path / 'config.json'}); "
                                f"--resume continues a run as it was configured")
    changed = {k: overrides[k] for k in RESUMABLE if k in overrides}
    try:  # a new length out of range is the option's fault, said before torch; not the run's config.json
        dataclasses.replace(config.train, **changed).check()
    except MakemoreError as e:
        try:
            config.train.check()
        except MakemoreError:
            pass  # the file's own fault: resume_trainer names it
        else:
            raise e from None
    return overrides


def _auto_chose(run: RunDir, name: str) -> str | None:
    """What ``auto`` chose for a run's ``dtype`` or ``matmul_precision`` at its first step (metrics.jsonl's
    arithmetic event; JSON only), or None: not chosen yet, or not one of these."""
    if name not in ("dtype", "matmul_precision"):
        return None
    used = run.summary().get("arithmetic") or {}
    return used.get(name) if isinstance(used.get(name), str) else None


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(a, b, rel_tol=1e-12)
    return a == b


def _check_same_data(run: RunDir, config: RunConfig, data: str) -> str | None:
    """Refuse ``--resume`` with data that is not the run's; where ``data`` is the run's file elsewhere (moved, or
    a project copied), byte for byte (its sha256), the path it is at now, which the run reads from then on."""
    name, path = resolve_dataset(data)
    stored_path = config.dataset.get("path")
    if stored_path is not None and Path(stored_path) == path.resolve():
        return None
    if stored_path is None and name == config.dataset.get("name"):
        return None
    stored_sha = config.dataset.get("sha256")
    if isinstance(stored_path, str) and isinstance(stored_sha, str) and path.is_file() \
            and _sha256(path) == stored_sha:
        return str(path.resolve())
    from makemore.files import is_regular

    stored_index = config.dataset.get("index_sha256")  # token shards: their index names every shard's tokens
    if config.dataset.get("kind") == "shards" and isinstance(stored_index, str) and is_regular(path / "index.json") \
            and _sha256(path / "index.json") == stored_index:
        return str(path.resolve())
    raise MakemoreError(f"{data} is not the data this run was trained on ({stored_path or config.dataset.get('name')}); "
                        f"--resume continues a run on its own data")


def _sha256(path: Path) -> str:
    import hashlib

    from makemore.files import open_regular

    digest = hashlib.sha256()
    with open_regular(path) as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _terminal(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False


def _terminals() -> list[int]:
    """Which of standard output and error are a terminal (asked while it is there: a hung-up one says no)."""
    return [fd for fd in (1, 2) if _terminal(fd)]


def _silence(fds: list[int]) -> None:
    """Point ``fds`` (a terminal that hung up) at /dev/null, so that what the run still says goes nowhere."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        return
    for fd in fds:
        try:
            os.dup2(null, fd)
        except OSError:
            pass
    os.close(null)


def drive(trainer, sinks, *, handle_sigint: bool = False, handle_term: bool = False):
    """Run ``trainer`` to its end, handing every event to every sink, then close the sinks. The one training loop
    of the CLI, the TUI and the Python API. Returns the last event.

    ``handle_sigint`` (main thread only): the first Ctrl-C asks the trainer to stop after the current step (it
    then saves, without evaluating there: see ``Trainer._run``); a second one aborts. ``handle_term`` (the command
    line's, outside torchrun, whose agent ends its workers with SIGTERM when one of them fails): SIGTERM (what
    `timeout`, `kill`, `docker stop` and batch schedulers send) and SIGHUP (a closed terminal; its output then
    goes nowhere) stop the run alike.
    A signal the process ignores (SIGHUP under `nohup`) stays ignored. Whether the run was stopped that way is
    ``trainer.interrupted``; a signal after the last step stops nothing, and the run ends as it would have.
    """
    import signal

    names = (["SIGINT"] if handle_sigint else []) + \
        (["SIGTERM", "SIGHUP"] if handle_term and handle_sigint and not trainer.dist.enabled else [])
    caught = [s for s in names if hasattr(signal, s) and signal.getsignal(getattr(signal, s)) is not signal.SIG_IGN]
    previous = {}
    terminals = _terminals() if "SIGHUP" in caught else []

    def on_signal(signum, frame):
        if signum == getattr(signal, "SIGHUP", None):  # a terminal that is gone (it no longer says it is one):
            _silence([fd for fd in terminals if not _terminal(fd)])  # what follows is said nowhere, not failed
        if trainer.stop_requested:
            raise KeyboardInterrupt
        if not trainer.done_training:
            trainer.interrupted, trainer.stop_signal = True, signum
        again = "Ctrl-C again" if signum == signal.SIGINT else f"{signal.Signals(signum).name} again"
        for sink in sinks:
            notice = getattr(sink, "notice", None)
            if notice:
                notice(f"stopping after this step and saving ({again} to abort)" if not trainer.done_training
                       else f"finishing: the run's last evaluation and save ({again} to abort)")
        trainer.request_stop()

    for name in caught:
        previous[name] = signal.signal(getattr(signal, name), on_signal)
    last = None
    try:
        for event in trainer.run():
            last = event
            for sink in sinks:
                sink(event)
    finally:
        for name, handler in previous.items():
            signal.signal(getattr(signal, name), handler)
        for sink in sinks:
            close = getattr(sink, "close", None)
            if close:
                close()
    return last


def _check_logits_memory(cfg: TrainConfig, block_size: int, vocab_size: int, *, text: bool = False,
                         ways: tuple[str, ...] | None = None) -> None:
    """Refuse a run whose logits alone would exhaust memory (a huge vocabulary times long words). ``ways``: the
    options that would lower it, as the command takes them (by default `train`'s, for a word list or a text)."""
    micro_batch = -(-cfg.batch_size // max(1, cfg.grad_accum))
    need = micro_batch * block_size * vocab_size * 4 * 3  # float32 logits, their softmax and their gradient
    if need > LOGITS_BUDGET:
        ways = ways or ("lower --batch-size", "raise --grad-accum", "lower --block-size" if text else "lower --max-len")
        advice = " or ".join(filter(None, (", ".join(ways[:-1]), ways[-1])))
        raise MakemoreError(f"{vocab_size:,} symbols x {block_size} positions x batch {micro_batch} needs about "
                            f"{need / 2**30:.0f} GiB for the logits of one step; {advice}")
