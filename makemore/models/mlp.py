"""MLP language model after Bengio et al. 2003, "A Neural Probabilistic Language Model" (lectures 2 and 3).

The last ``context`` tokens (left-padded with the start token, "..." before the first character) are embedded,
concatenated and passed through one tanh hidden layer; a linear layer gives the next token's logits. The
initialisation follows lecture 3: Kaiming-style gains so tanh starts unsaturated, and a near-zero output layer so
the first loss is ln(V) rather than confidently wrong. ``batchnorm`` inserts batch normalisation (Ioffe & Szegedy
2015) before the tanh; at evaluation and sampling it uses its running statistics, so one word alone samples fine.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from makemore.models.base import Tensor, WindowModel


@dataclass(frozen=True)
class Config:
    vocab_size: int
    block_size: int  # unused: the model sees a fixed window; kept so every family is built alike
    context: int  # characters the model sees; 3 in the lectures
    n_embd: int  # embedding width per character; 10 in the lectures
    n_embd2: int  # hidden tanh units; 200 in the lectures
    batchnorm: bool  # normalise the hidden pre-activations; the bias then belongs to the batch norm


class Model(WindowModel):
    def __init__(self, config: Config):
        super().__init__()
        if config.context < 1:
            raise ValueError(f"context must be at least 1 (got {config.context})")
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)  # N(0, 1) rows, as the lectures' C
        self.fc = nn.Linear(config.context * config.n_embd, config.n_embd2, bias=not config.batchnorm)
        self.bn = nn.BatchNorm1d(config.n_embd2) if config.batchnorm else nn.Identity()
        self.lm_head = nn.Linear(config.n_embd2, config.vocab_size)
        # std = (5/3) / sqrt(fan_in): the gain that keeps tanh's outputs near unit scale (Kaiming, lecture 3)
        nn.init.kaiming_normal_(self.fc.weight, nonlinearity="tanh")
        if self.fc.bias is not None:
            nn.init.zeros_(self.fc.bias)
        # small logits at first: every token about equally likely, initial loss ~ ln(V)
        nn.init.normal_(self.lm_head.weight, std=0.01)
        nn.init.zeros_(self.lm_head.bias)

    def window_logits(self, windows: Tensor) -> Tensor:
        x = self.wte(windows).flatten(1)  # (N, context * n_embd)
        h = torch.tanh(self.bn(self.fc(x)))  # (N, n_embd2)
        return self.lm_head(h)  # (N, V)
