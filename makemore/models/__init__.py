"""The model registry: every family by name, imported lazily so that listing them never imports torch.

A family is one file in this package that defines ``Config`` (a dataclass) and ``Model`` (a
``makemore.models.base.LanguageModel``). Its entry here says where it lives, what it is, which
hyperparameters it takes (with their defaults: the single source of them) and its default training recipe.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from makemore.errors import MakemoreError


@dataclass(frozen=True)
class Family:
    name: str
    module: str  # dotted path of the file that defines Config and Model
    summary: str  # one line for --help and `makemore info`
    hyper: dict[str, Any]  # the hyperparameters this family takes, with their defaults
    recipe: dict[str, Any] = field(default_factory=dict)  # training defaults (steps, lr, batch size, ...)

    def load(self) -> ModuleType:
        return importlib.import_module(self.module)


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

FAMILIES: dict[str, Family] = {}


def register(family: Family) -> None:
    FAMILIES[family.name] = family


register(
    Family(
        name="transformer",
        module="makemore.models.transformer",
        summary="GPT-style Transformer: causal self-attention, pre-LayerNorm blocks (Vaswani et al. 2017; GPT-2)",
        hyper={"n_layer": 4, "n_head": 4, "n_embd": 64, "dropout": 0.0},
        recipe={"max_steps": 8_000, "batch_size": 64, "learning_rate": 2e-3, "warmup_steps": 200,
                "weight_decay": 0.1},
    )
)


def get_family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise MakemoreError(f"unknown model type {name!r}; choose one of: {', '.join(FAMILIES)}") from None


def recipe_for(name: str) -> dict[str, Any]:
    return {**BASE_RECIPE, **get_family(name).recipe}
