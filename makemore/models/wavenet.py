"""Hierarchical "WaveNet" language model of lecture 5 (after van den Oord et al. 2016, "WaveNet").

Instead of squashing the whole window into one hidden layer as the MLP does, the window of ``context``
characters (8 in the lecture, left-padded with the start token) is fused two at a time, in a tree: neighbouring
pairs are concatenated (flatten-consecutive), passed through linear -> batch norm -> tanh, and the results are
paired again, log2(context) levels in all, until one vector is left for the output layer. Batch norm normalises
over every pair of every window in the batch and uses running statistics at evaluation and sampling. Dropout
after each level (not in the lecture) is what lets it train long enough to pass the lecture's 1.99 on a test
split that shares no name with training.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from makemore.models.base import Tensor, WindowModel
from makemore.models.dropout import Dropout


@dataclass(frozen=True)
class Config:
    vocab_size: int
    block_size: int  # unused: the model sees a fixed window; kept so every family is built alike
    context: int  # characters the model sees: a power of two, one tree level per doubling (8: three levels)
    n_embd: int  # embedding width per character; 24 in the lecture
    n_embd2: int  # width of every fused level; 128 in the lecture
    dropout: float  # after every level; the tree overfits names.txt long before its loss stops falling


class FuseConsecutive(nn.Module):
    """(N, L, C) -> (N, L/2, H): concatenate neighbouring pairs, then linear -> batch norm -> tanh (-> dropout)."""

    def __init__(self, n_in: int, n_out: int, dropout: float):
        super().__init__()
        self.fc = nn.Linear(2 * n_in, n_out, bias=False)  # the batch norm's shift is the bias
        self.bn = nn.BatchNorm1d(n_out)
        self.dropout = Dropout(dropout)
        nn.init.kaiming_normal_(self.fc.weight, nonlinearity="tanh")

    def forward(self, x: Tensor) -> Tensor:
        N, L, C = x.shape
        x = self.fc(x.reshape(N, L // 2, 2 * C))  # (N, L/2, H): the lecture's FlattenConsecutive(2) + Linear
        # statistics over windows and positions in the window together, as the lecture's BatchNorm1d over (0, 1)
        x = self.bn(x.reshape(-1, x.size(-1))).view_as(x)
        return self.dropout(torch.tanh(x))


class Model(WindowModel):
    # its fused layers are large enough for oneDNN's float32 matmuls to pay
    cpu_matmul_precision = "medium"

    def __init__(self, config: Config):
        super().__init__()
        levels = config.context.bit_length() - 1
        if config.context < 2 or config.context != 1 << levels:
            raise ValueError(f"context must be a power of two, at least 2 (got {config.context})")
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        widths = [config.n_embd] + [config.n_embd2] * levels
        self.levels = nn.Sequential(*(FuseConsecutive(a, b, config.dropout) for a, b in zip(widths, widths[1:])))
        self.lm_head = nn.Linear(config.n_embd2, config.vocab_size)
        with torch.no_grad():
            self.lm_head.weight.mul_(0.1)  # less confident at first: initial loss ~ ln(V)
            self.lm_head.bias.zero_()

    def window_logits(self, windows: Tensor) -> Tensor:
        x = self.wte(windows)  # (N, context, n_embd)
        x = self.levels(x)  # (N, 1, n_embd2)
        return self.lm_head(x.squeeze(1))  # (N, V)
