"""The model registry: every family by name, imported lazily so that listing them never imports torch.

A family is one file in this package that defines ``Config`` (a dataclass) and ``Model`` (a
``makemore.models.base.LanguageModel``). Its entry here says where it lives, what it is, which
hyperparameters it takes (with their defaults: the single source of them) and its default training recipe.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, field
from types import ModuleType, SimpleNamespace
from typing import Any

from makemore.errors import MakemoreError


@dataclass(frozen=True)
class TextRecipe:
    """How a family trains in text mode (one character stream), where it differs from its word-list recipe."""

    block_size: int  # characters predicted per training window (the Transformer's context)
    hyper: dict[str, Any] = field(default_factory=dict)  # hyperparameters that differ from the family's defaults
    recipe: dict[str, Any] = field(default_factory=dict)  # training settings over BASE_TEXT_RECIPE
    budgets: tuple[tuple[float, dict[str, Any]], ...] = ()  # as Family.budgets; may also set block_size


@dataclass(frozen=True)
class Family:
    name: str
    module: str  # dotted path of the file that defines Config and Model; "path:Class" names another Model class
    summary: str  # one line for --help and `makemore info`
    hyper: dict[str, Any]  # the hyperparameters this family takes, with their defaults
    recipe: dict[str, Any] = field(default_factory=dict)  # training defaults (steps, lr, batch size, ...)
    fitted: bool = False  # fitted in one pass (counts), so the optimization recipe does not apply
    # longer time budgets: ((seconds, settings), ...). Given --max-time of at least that many seconds (and no
    # --max-steps), these model and training settings replace the defaults the user did not set: a bigger,
    # more regularised model pays off only when there is time to train it.
    budgets: tuple[tuple[float, dict[str, Any]], ...] = ()
    # a machine too slow for a budget tier's model: (steps, settings). Where fewer than ``steps`` of the tier's
    # steps fit in the budget (its forward and backward passes timed before the run starts), these settings
    # replace the tier's, unless the user set any model setting; word lists only
    lean: tuple[int, dict[str, Any]] | None = None
    text: TextRecipe | None = None  # text mode; None: the word-list recipe with a block of 64

    def for_budget(self, seconds: float | None, mode: str = "words") -> dict[str, Any]:
        """The settings of the longest budget tier that ``seconds`` reaches (none below the first tier)."""
        chosen: dict[str, Any] = {}
        budgets = self.budgets if mode == "words" else self.text.budgets if self.text else ()
        for threshold, settings in sorted(budgets, key=lambda b: b[0]):
            if seconds is not None and seconds >= threshold:
                chosen = settings
        return dict(chosen)

    def load(self) -> ModuleType | SimpleNamespace:
        """What defines the family: ``.Config`` and ``.Model``."""
        path, _, model = self.module.partition(":")
        module = importlib.import_module(path)
        return SimpleNamespace(Config=module.Config, Model=getattr(module, model)) if model else module


# Training defaults shared by every family unless its recipe says otherwise.
BASE_RECIPE: dict[str, Any] = {
    "max_steps": 10_000,
    "batch_size": 64,
    "learning_rate": 1e-3,
    "min_lr_ratio": 0.1,  # cosine decays to this fraction of the peak learning rate
    "warmup_steps": 100,
    "weight_decay": 0.01,
    "grad_clip": 1.0,
    "eval_interval": 500,
}

# Text mode: shared training defaults (a character stream is one long sequence; no epochs to cap)
BASE_TEXT_RECIPE: dict[str, Any] = {
    "max_steps": 3_000,
    "batch_size": 64,
    "learning_rate": 3e-3,
    "min_lr_ratio": 0.1,
    "warmup_steps": 100,
    "weight_decay": 0.01,
    "grad_clip": 1.0,
    "eval_interval": 250,
}

FAMILIES: dict[str, Family] = {}


def register(family: Family) -> None:
    FAMILIES[family.name] = family


register(
    Family(
        name="transformer",
        module="makemore.models.transformer",
        summary="GPT-style Transformer: causal self-attention, pre-LayerNorm blocks (Vaswani et al. 2017; GPT-2)",
        # one block of 96 channels: on names.txt the loss of a run of a few thousand steps follows the names seen
        # far more than the depth (benchmarks/README.md: 1, 2 and 4 blocks of 64 channels all passed 2.05 after
        # 1,300 steps), and one block costs a third of four, so it passes each level about three times sooner
        # and ends where four blocks of 64 ended; evaluations every 200 steps show when each level is passed
        hyper={"n_layer": 1, "n_head": 4, "n_embd": 96, "dropout": 0.0, "tie_weights": False, "dropout_samples": 0},
        # done in about half a minute on a 2-core CPU, with the moving average of the weights ahead of the live
        # ones at every evaluation; a smaller list gets at most 20 passes (benchmarks/README.md has the search)
        recipe={"max_steps": 4_000, "batch_size": 128, "learning_rate": 6e-3, "warmup_steps": 100,
                "weight_decay": 0.1, "eval_interval": 200, "max_epochs": 20, "ema": 0.998},
        # given minutes, a deeper, wider model with dropout and a slower average keeps improving where the small
        # one stops; it predicts the average of 64 dropout masks' predictions, 0.02 below its one pass with
        # dropout off on the held-out splits, and weight decay 0.3 suits that average (benchmarks/README.md)
        budgets=((300, {"n_layer": 4, "n_embd": 128, "dropout": 0.25, "dropout_samples": 64,
                        "learning_rate": 2e-3, "weight_decay": 0.3, "ema": 0.999, "eval_interval": 500}),),
        # ... and on a machine that fits fewer of its steps in the budget than it needs (its step timed as the run
        # starts), half its depth and a lighter dropout: more steps of a smaller model (benchmarks/README.md)
        lean=(11_000, {"n_layer": 2, "dropout": 0.1}),
        # Tiny Shakespeare on a CPU: one block of 4 heads x 128 channels over 64 positions, AdamW at 8e-3 with a
        # cosine over 1,200 steps of 32 x 64 characters. Over a short run the loss follows the characters seen far
        # more than the depth (benchmarks/README.md: 1, 2, 3 and 4 blocks passed 1.88 after 525-550 steps alike),
        # and one block costs a quarter of four: it ends where four blocks at 3e-3 ended (1.71 against 1.72 on the
        # whole val split) in a quarter of their time. Evaluations every 50 steps show when each level is passed.
        # Given minutes, four blocks at 3e-3 with the schedule spread over the budget (1.54 in ten minutes; a
        # larger model, 6x6x192, made only 894 steps in ten minutes), with evaluations every 500 steps.
        text=TextRecipe(
            block_size=64,
            hyper={"n_layer": 1, "n_head": 4, "n_embd": 128, "dropout": 0.0},
            recipe={"max_steps": 1_200, "batch_size": 32, "learning_rate": 8e-3, "warmup_steps": 50,
                    "weight_decay": 0.1, "eval_interval": 50, "ema": 0.0},
            budgets=((300, {"n_layer": 4, "learning_rate": 3e-3, "eval_interval": 500}),),
        ),
    )
)


register(
    Family(
        name="ngram",
        module="makemore.models.ngram",
        summary="count n-gram with additive smoothing, fitted in one pass (lecture 1); --context 1 = bigram",
        hyper={"context": 1, "smoothing": 0.1},  # 0.1 beats the lectures' 1.0 on held-out words past the bigram
        fitted=True,
        # a trigram: 66^3 counts for Tiny Shakespeare's 65 characters; context 3 would take 19M
        text=TextRecipe(block_size=64, hyper={"context": 2}),
    )
)

register(
    Family(
        name="bigram",
        module="makemore.models.bigram",
        summary="neural bigram: a trained V x V table of logits (lecture 1)",
        hyper={},
        recipe={"max_steps": 500, "batch_size": 256, "learning_rate": 0.1, "warmup_steps": 20,
                "weight_decay": 0.0, "eval_interval": 250},
        text=TextRecipe(block_size=64, recipe={"max_steps": 1_000, "batch_size": 64, "learning_rate": 0.1,
                                               "warmup_steps": 20, "weight_decay": 0.0}),
    )
)

register(
    Family(
        name="mlp",
        module="makemore.models.mlp",
        summary="MLP over a window of characters (Bengio et al. 2003; lectures 2-3); --batchnorm adds batch norm",
        # wider than the lectures' 10 x 200: with whole words per batch the extra width costs little time and
        # buys ~0.03 nats; weight decay 0.1 keeps it from overfitting. The same recipe serves --batchnorm.
        hyper={"context": 3, "n_embd": 16, "n_embd2": 300, "batchnorm": False},
        recipe={"max_steps": 3_000, "batch_size": 256, "learning_rate": 1e-2, "warmup_steps": 100,
                "weight_decay": 0.1, "eval_interval": 500},
        # 8 characters of context (3 is a name's syllable, not a word of text); 32 predictions per window
        text=TextRecipe(block_size=32, hyper={"context": 8, "n_embd": 16, "n_embd2": 256},
                        recipe={"learning_rate": 3e-3, "weight_decay": 0.01}),
    )
)

register(
    Family(
        name="wavenet",
        module="makemore.models.wavenet",
        summary="hierarchical WaveNet-style MLP: context 8 fused in pairs with batch norm (lecture 5)",
        # the lecture's sizes; without dropout it overfits our split (no name shared with training) at ~2.01
        hyper={"context": 8, "n_embd": 24, "n_embd2": 128, "dropout": 0.1},
        recipe={"max_steps": 5_000, "batch_size": 256, "learning_rate": 1e-2, "warmup_steps": 100,
                "weight_decay": 0.1, "eval_interval": 500},
        text=TextRecipe(block_size=32, hyper={"context": 16, "dropout": 0.0},
                        recipe={"learning_rate": 3e-3, "weight_decay": 0.01}),
    )
)

_RECURRENT_RECIPE = {"max_steps": 3_000, "batch_size": 128, "learning_rate": 1e-2, "warmup_steps": 100,
                     "weight_decay": 0.01, "eval_interval": 500}
for _name, _summary in [("rnn", "vanilla recurrent network (Elman 1990) over the whole word"),
                        ("gru", "gated recurrent unit network (Cho et al. 2014) over the whole word"),
                        ("lstm", "long short-term memory network (Hochreiter & Schmidhuber 1997) over the word")]:
    register(
        Family(
            name=_name,
            module=f"makemore.models.rnn:{_name.upper()}",
            summary=_summary,
            hyper={"n_embd": 32, "n_embd2": 128, "n_layer": 1},
            recipe=dict(_RECURRENT_RECIPE),
            # truncated backpropagation through time: each window starts from a zero state
            text=TextRecipe(block_size=64, hyper={"n_embd": 64, "n_embd2": 256},
                            recipe={"batch_size": 32, "learning_rate": 3e-3}),
        )
    )

register(
    Family(
        name="bow",
        module="makemore.models.bow",
        summary="causal bag-of-words: each position adds the mean of the ones before it, then an MLP",
        hyper={"n_embd": 64, "n_embd2": 64},  # the reference's sizes
        recipe={"max_steps": 3_000, "batch_size": 128, "learning_rate": 1e-2, "warmup_steps": 100,
                "weight_decay": 0.01, "eval_interval": 500},
        text=TextRecipe(block_size=64, hyper={"n_embd": 128, "n_embd2": 256}, recipe={"batch_size": 32}),
    )
)


def family_name(name: str) -> str:
    """The registered name of a family as a user may type it: any case (``MLP``); a misspelling is refused with
    the closest name (``transfomer``: did you mean transformer?)."""
    import difflib

    key = name.strip().lower()
    if key in FAMILIES:
        return key
    close = difflib.get_close_matches(key, FAMILIES, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]}? " if close else ""
    raise MakemoreError(f"unknown model type {name!r}; {hint}choose one of: {', '.join(FAMILIES)}")


def get_family(name: str) -> Family:
    return FAMILIES[family_name(name)]


def recipe_for(name: str, mode: str = "words") -> dict[str, Any]:
    family = get_family(name)
    if mode == "text":
        return {**BASE_TEXT_RECIPE, **(family.text.recipe if family.text else {})}
    return {**BASE_RECIPE, **family.recipe}


def recipe_text(recipe: dict[str, Any]) -> str:
    """``steps=4000 (at most 20 epochs) batch=128 lr=0.006 ema=0.998``: a recipe as `train --help` and `info`
    show it."""
    cap = f" (at most {recipe['max_epochs']} epochs)" if "max_epochs" in recipe else ""
    ema = f" ema={recipe['ema']:g}" if recipe.get("ema") else ""
    return f"steps={recipe['max_steps']}{cap} batch={recipe['batch_size']} lr={recipe['learning_rate']:g}{ema}"


def text_defaults(name: str) -> tuple[int, dict[str, Any]]:
    """(block size, hyperparameters) of a family in text mode: its defaults with the text recipe's changes."""
    family = get_family(name)
    text = family.text or TextRecipe(block_size=64)
    return text.block_size, {**family.hyper, **text.hyper}


def step_recipe(name: str, mode: str = "words") -> dict[str, Any]:
    """The recipe as the trainer's configuration takes it: without ``max_epochs``, a cap on passes over the
    word list that ``training.fit_to_data`` applies once the data is known."""
    return {k: v for k, v in recipe_for(name, mode).items() if k != "max_epochs"}


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
    hyper = {**family.hyper, **{k: v for k, v in overrides.items() if v is not None}}
    check_hyper(model_type, hyper)
    return hyper


NGRAM_MAX_TABLE = 50_000_000  # entries of an n-gram's count table (V ** (context + 1)); beyond it it is refused


def ngram_table_error(context: int, vocab_size: int) -> str | None:
    """Why an n-gram of ``context`` over ``vocab_size`` symbols cannot be built (its count table is too large),
    or None; said before torch is imported."""
    need = vocab_size ** (context + 1)
    if need <= NGRAM_MAX_TABLE:
        return None
    fits = max((c for c in range(1, context) if vocab_size ** (c + 1) <= NGRAM_MAX_TABLE), default=0)
    way = f"--context {fits} fits" if fits else \
        f"not even a bigram fits: a vocabulary of at most {math.isqrt(NGRAM_MAX_TABLE):,} symbols, or another --type"
    return (f"a context of {context} over {vocab_size} symbols needs a table of {vocab_size}^{context + 1}"
            + (f" = {need:,}" if need < 10**15 else "") + f" counts (at most {NGRAM_MAX_TABLE:,}); {way}")

# the whole numbers a model takes, and their bounds (beyond these, memory runs out before a step is taken)
SIZE_LIMITS = {"n_layer": (1, 256), "n_head": (1, 1024), "n_embd": (1, 16384), "n_embd2": (1, 65536),
               "context": (1, 1024), "dropout_samples": (0, 1024)}


def check_hyper(model_type: str, hyper: dict[str, Any]) -> None:
    """Refuse a model that cannot be built or trained, before any data is read, any run directory made or torch
    imported: sizes out of range, a dropout not below 1, a Transformer width its heads do not divide, a WaveNet
    context that is not a power of two (the models check the same when built from Python)."""
    def option(name: str) -> str:
        return "--" + name.replace("_", "-")

    for name, (low, high) in SIZE_LIMITS.items():
        value = hyper.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise MakemoreError(f"{option(name)} must be a whole number, not {value!r}")
        if not low <= value <= high:
            raise MakemoreError(f"{option(name)} must be between {low} and {high:,}, not {value}")
    for name, default in get_family(model_type).hyper.items():  # a switch is true or false, not a word for either
        value = hyper.get(name)
        if isinstance(default, bool) and value is not None and not isinstance(value, bool):
            raise MakemoreError(f"{option(name)} must be true or false, not {value!r}")
    for name in ("dropout", "smoothing"):
        value = hyper.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not math.isfinite(value)):
            raise MakemoreError(f"{option(name)} must be a finite number, not {value!r}")
    dropout = hyper.get("dropout")
    if dropout is not None and not 0 <= dropout < 1:
        raise MakemoreError(f"--dropout must be at least 0 and below 1, not {dropout:g}")
    if hyper.get("dropout_samples") and not dropout:
        raise MakemoreError("--dropout-samples averages the predictions of dropout masks, but --dropout is 0: "
                            "train with dropout (e.g. --dropout 0.2)")
    smoothing = hyper.get("smoothing")
    if smoothing is not None and not smoothing > 0:
        raise MakemoreError(f"--smoothing must be positive, not {smoothing:g} (unseen contexts need it)")
    if model_type == "transformer" and hyper["n_embd"] % hyper["n_head"]:
        raise MakemoreError(f"--n-embd {hyper['n_embd']} must be divisible by --n-head {hyper['n_head']}")
    if model_type == "ngram" and 2 ** (hyper["context"] + 1) > NGRAM_MAX_TABLE:
        # even two symbols (the start/stop token and one character) would need more counts: refused before the data
        raise MakemoreError(f"--context {hyper['context']} is too long for an n-gram: its table would hold at least "
                            f"2^{hyper['context'] + 1} counts (at most {NGRAM_MAX_TABLE:,}); use a shorter context")
    if model_type == "wavenet" and (hyper["context"] < 2 or hyper["context"] & (hyper["context"] - 1)):
        raise MakemoreError(f"--context must be a power of two, at least 2, for --type wavenet "
                            f"(not {hyper['context']})")


def build_model(model_type: str, vocab_size: int, block_size: int, hyper: dict[str, Any], *, copies: int = 1):
    """A fresh model of the family (imports torch and the family's module), once a shell of it on the meta device
    (no memory) says that ``copies`` times its weights fit in this machine's memory: 1 to load one, 4 to train it
    (weights, gradients and AdamW's two moments)."""
    module, config = _config(model_type, vocab_size, block_size, hyper)
    memory = physical_memory()
    if memory and rough_bytes(vocab_size, block_size, hyper) * copies > memory // 4:
        params, nbytes = _weight_bytes(module, config)
    else:
        params = nbytes = 0  # far from the limit: the shell, whose first use imports torch._dynamo, is not built
    if memory and nbytes * copies > memory:
        need = "its weights" if copies == 1 else "its weights, gradients and optimizer state"
        raise MakemoreError(f"a {model_type} of {params:,} parameters needs {nbytes * copies / 2**30:,.1f} GiB for "
                            f"{need}; this machine has {memory / 2**30:,.1f} GiB of memory")
    try:
        return module.Model(config)
    except (TypeError, ValueError) as e:
        raise MakemoreError(f"bad {model_type} configuration: {e}") from None


def rough_bytes(vocab_size: int, block_size: int, hyper: dict[str, Any]) -> int:
    """An upper bound, within a small factor, of the float32 bytes of any family's weights at these settings, from
    the numbers alone: 16 x layers x context x the largest width squared (every family's matrices are at most
    that), or the count table of an n-gram. It decides whether the exact figure, from a shell of the model on the
    meta device, is worth its cost."""
    ints = [v for v in hyper.values() if isinstance(v, int) and not isinstance(v, bool)]
    width = max([vocab_size, block_size, *ints])
    layers, context = max(1, hyper.get("n_layer", 1)), max(1, hyper.get("context", 1))
    return 4 * max(16 * layers * context * width * width, 2 * vocab_size ** (context + 1))


def weight_bytes(model_type: str, vocab_size: int, block_size: int, hyper: dict[str, Any]) -> tuple[int, int]:
    """(parameters, bytes of its state dict) of the model these settings describe, built on the meta device."""
    return _weight_bytes(*_config(model_type, vocab_size, block_size, hyper))


def _config(model_type: str, vocab_size: int, block_size: int, hyper: dict[str, Any]):
    import dataclasses

    module = get_family(model_type).load()
    fields = {f.name for f in dataclasses.fields(module.Config)}
    unknown = set(hyper) - fields
    if unknown:
        raise MakemoreError(f"unknown hyperparameters for {model_type}: {', '.join(sorted(unknown))}")
    try:
        return module, module.Config(vocab_size=vocab_size, block_size=block_size, **hyper)
    except (TypeError, ValueError) as e:
        raise MakemoreError(f"bad {model_type} configuration: {e}") from None


def _weight_bytes(module, config) -> tuple[int, int]:
    import torch

    try:
        with torch.device("meta"):
            shell = module.Model(config)
    except (TypeError, ValueError) as e:
        raise MakemoreError(f"bad {type(config).__module__.rsplit('.', 1)[-1]} configuration: {e}") from None
    params = sum(p.numel() for p in shell.parameters())
    return params, sum(t.numel() * t.element_size() for t in shell.state_dict().values())


def physical_memory() -> int | None:
    """Bytes of memory this machine has (None where the system does not say)."""
    import os

    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def load_weights(model, tensors: dict, path) -> None:
    """Load weights strictly: every tensor present, of the right shape, nothing extra (``path`` names the file)."""
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
    import torch

    # a checkpoint is saved only from finite weights: anything else was damaged since (sampling would blame
    # the temperature, evaluation print nan)
    bad = next((n for n, v in tensors.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())), None)
    if bad is not None:
        raise MakemoreError(f"{path}: tensor {bad} holds values that are not finite (NaN or infinity); the file is "
                            f"damaged")
    model.load_state_dict(tensors, strict=True)
