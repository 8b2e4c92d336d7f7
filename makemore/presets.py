"""Named recipes: a model and its training settings as a paper or lecture gave them (``--preset NAME``).

A preset fills in only what the user did not set: any explicit option overrides it. ``gpt2-124m`` is GPT-2
small as the GPT-2 lecture reproduces it (Radford et al. 2019; the GPT-3 paper's optimizer settings).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from makemore.errors import MakemoreError

VOCAB_MULTIPLE = 64  # embedding and head rows are padded to this: GPT-2's 50,257 -> 50,304 (faster kernels)


def padded_vocab(vocab_size: int, multiple: int = VOCAB_MULTIPLE) -> int:
    return math.ceil(vocab_size / multiple) * multiple


@dataclass(frozen=True)
class Preset:
    name: str
    summary: str
    model_type: str
    hyper: dict[str, Any]
    block_size: int
    train: dict[str, Any]
    head_size: int | None = None  # with --n-embd given and --n-head not: n_head = n_embd // head_size
    cuda: dict[str, Any] = field(default_factory=dict)  # training settings that apply on CUDA only

    def apply(self, hyper: dict[str, Any], train: dict[str, Any], block_size: int | None,
              device: str) -> tuple[dict[str, Any], dict[str, Any], int]:
        """(hyper, train, block_size) with the preset's values where the user's are None."""
        hyper = dict(hyper)
        if hyper.get("n_embd") is not None and hyper.get("n_head") is None and self.head_size:
            if hyper["n_embd"] % self.head_size:
                raise MakemoreError(f"--n-embd {hyper['n_embd']}: the {self.name} preset keeps heads of "
                                    f"{self.head_size} channels; give --n-head too")
            hyper["n_head"] = max(1, hyper["n_embd"] // self.head_size)
        for k, v in self.hyper.items():
            if hyper.get(k) is None:
                hyper[k] = v
        recipe = {**self.train, **(self.cuda if device.startswith("cuda") else {})}
        if train.get("max_steps") is not None and "max_steps" in recipe:
            # a shorter (or longer) run keeps the recipe's proportions: warm-up and evaluations scale with it
            scale = train["max_steps"] / recipe["max_steps"]
            recipe["warmup_steps"] = max(1, round(recipe["warmup_steps"] * scale))
            recipe["eval_interval"] = max(1, min(recipe["eval_interval"], train["max_steps"]))
        if train.get("batch_size") is not None and train.get("grad_accum") is None and "grad_accum" in recipe:
            # a batch of its own keeps the recipe's micro-batch (sequences a forward pass holds), as far as it goes
            micro = max(1, recipe["batch_size"] // recipe["grad_accum"])
            recipe["grad_accum"] = max(1, train["batch_size"] // micro)
        train = {**train, **{k: v for k, v in recipe.items() if train.get(k) is None}}
        return hyper, train, block_size if block_size is not None else self.block_size


PRESETS = {
    "gpt2-124m": Preset(
        name="gpt2-124m",
        summary="GPT-2 small (124M): 12 layers, 12 heads, 768 channels, 1,024 tokens, the GPT-2 lecture's recipe",
        model_type="transformer",
        hyper={"n_layer": 12, "n_head": 12, "n_embd": 768, "dropout": 0.0, "tie_weights": True},
        block_size=1024,
        head_size=64,
        train={
            # 2**19 = 524,288 tokens per step: 512 sequences of 1,024, in 32 micro-batches of 16 on one GPU
            # (under torchrun the ranks share each step's sequences; give --grad-accum to fit memory)
            "batch_size": 512, "grad_accum": 32,
            "learning_rate": 6e-4, "min_lr_ratio": 0.1,  # cosine to 10%
            "warmup_steps": 715, "max_steps": 19_073,  # 375M warm-up tokens; 10B tokens in all
            "weight_decay": 0.1, "beta2": 0.95, "grad_clip": 1.0,
            "eval_interval": 250, "ema": 0.0,
        },
        cuda={"dtype": "bfloat16", "compile": True},
    ),
}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise MakemoreError(f"--preset {name}: unknown (presets: {', '.join(PRESETS)})") from None


def with_preset(name: str | None, *, model_type: str, type_given: bool, hyper: dict[str, Any],
                train: dict[str, Any], block_size: int | None,
                device: str | None) -> tuple[str, dict[str, Any], dict[str, Any], int | None]:
    """(model type, hyper, train, block size) with preset ``name`` filling in what the user left None; no preset:
    as given. The command line and the Python API apply a preset here (through ``training.check_with_preset``).
    ``device``: resolved ("cuda:0", "cpu": some settings apply on CUDA only), or None for the settings of any
    device (without torch)."""
    if name is None:
        return model_type, hyper, train, block_size
    chosen = get_preset(name)
    if type_given and model_type != chosen.model_type:
        raise MakemoreError(f"--preset {name} is a {chosen.model_type}; drop --type {model_type}")
    hyper, train, block_size = chosen.apply(hyper, train, block_size, device or "cpu")
    return chosen.model_type, hyper, train, block_size
