"""Neural bigram language model: a trained V x V table of logits (lecture 1 of makemore, second half).

The row of the current token holds the logits of the next one. It is the counted bigram learned by gradient
descent instead: trained to convergence, softmax of each row approaches the normalised counts, and weight decay
towards zero logits plays the part of additive smoothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from makemore.models.base import LanguageModel, Tensor


@dataclass(frozen=True)
class Config:
    vocab_size: int
    block_size: int  # unused: the model looks at one token; kept so every family is built alike


class Model(LanguageModel):
    def __init__(self, config: Config):
        super().__init__()
        self.config = config
        # zeros: every next token equally likely at the start, so the initial loss is exactly ln(V)
        self.logits = nn.Parameter(torch.zeros(config.vocab_size, config.vocab_size))

    def forward(self, idx: Tensor, targets: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        logits = self.logits[idx]  # (B, T, V)
        return logits, self.loss(logits, targets)

    def init_state(self, batch_size: int, device: torch.device) -> None:
        return None  # only the last token matters

    def decode(self, idx: Tensor, state: None) -> tuple[Tensor, None]:
        return self.logits[idx[:, -1]], None  # (B, V)

    @torch.no_grad()
    def bigram_table(self) -> Tensor:
        return self.logits.float().softmax(dim=-1).cpu()
