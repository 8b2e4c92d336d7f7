"""Causal bag-of-words language model (the reference makemore's ``bow``).

Token and position embeddings are summed; each position then adds the plain average of every vector up to and
including itself (attention with all weights equal, the step before self-attention in lecture 6), followed by a
tanh MLP, both as residual branches. The average is a running sum divided by the count, which equals the
reference's masked softmax over zeros without building a T x T matrix, and lets sampling carry just the sum.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from makemore.models.base import LanguageModel, Tensor


@dataclass(frozen=True)
class Config:
    vocab_size: int
    block_size: int  # longest sequence: positions have their own embedding
    n_embd: int  # width of the embeddings and of the residual stream
    n_embd2: int  # hidden width of the MLP


class Model(LanguageModel):
    def __init__(self, config: Config):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.block_size, config.n_embd)
        self.c_fc = nn.Linear(config.n_embd, config.n_embd2)
        self.c_proj = nn.Linear(config.n_embd2, config.n_embd)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size)
        nn.init.normal_(self.lm_head.weight, std=0.01)  # small logits at first: initial loss ~ ln(V)
        nn.init.zeros_(self.lm_head.bias)

    def _forward(self, idx: Tensor, start: int, past: Tensor | None) -> tuple[Tensor, Tensor]:
        """Positions ``start`` .. ``start + T - 1``; ``past`` is the sum of the vectors before them (B, C)."""
        B, T = idx.shape
        if start + T > self.config.block_size:
            raise ValueError(f"sequence of {start + T} tokens exceeds block_size {self.config.block_size}")
        pos = torch.arange(start, start + T, device=idx.device)
        x = self.wte(idx) + self.wpe(pos)  # (B, T, C)
        running = x.cumsum(dim=1) if past is None else past[:, None, :] + x.cumsum(dim=1)  # (B, T, C)
        x = x + running / (pos + 1)[:, None].to(x.dtype)  # the mean of positions 0 .. t
        x = x + self.c_proj(torch.tanh(self.c_fc(x)))  # (B, T, C)
        return self.lm_head(x), running[:, -1]  # (B, T, V), (B, C)

    @property
    def context_limit(self) -> int:
        return self.config.block_size  # one learned embedding per position

    def forward(self, idx: Tensor, targets: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        logits, _ = self._forward(idx, 0, None)
        return logits, self.loss(logits, targets)

    # sampling carries the running sum and the position: the mean of the prefix needs nothing else
    def init_state(self, batch_size: int, device: torch.device) -> tuple[int, Tensor | None]:
        return 0, None

    def decode(self, idx: Tensor, state: tuple[int, Tensor | None]) -> tuple[Tensor, tuple[int, Tensor]]:
        start, past = state
        logits, running = self._forward(idx, start, past)
        return logits[:, -1], (start + idx.size(1), running)
