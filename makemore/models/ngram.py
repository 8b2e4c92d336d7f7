"""Count-based n-gram language model with additive (Laplace) smoothing, as in lecture 1 of makemore.

P(next | the previous ``context`` tokens) = (count + smoothing) / (row total + V * smoothing), counted in one
pass over the training words: ``context`` 1 is the lectures' bigram table, 2 a trigram, and so on. Windows are
left-padded with the start token, so the first character of a word is predicted from "..." alone. No gradient
steps: the trainer calls ``fit`` once. The counts are a buffer, so they travel in the checkpoint (as their
non-zero cells: see ``makemore.checkpoint.pack_sparse``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from makemore.models.base import Tensor, WindowModel, context_windows, real_positions

from makemore.models import ngram_table_error


@dataclass(frozen=True)
class Config:
    vocab_size: int
    block_size: int  # unused: the model sees a fixed window; kept so every family is built alike
    context: int  # tokens of history: 1 = bigram, 2 = trigram, ...
    smoothing: float  # pseudo-count added to every cell: no probability is ever 0, so no test loss is infinite


class Model(WindowModel):
    trainable = False

    def __init__(self, config: Config):
        super().__init__()
        if config.context < 1:
            raise ValueError(f"context must be at least 1 (got {config.context})")
        if not config.smoothing > 0:
            raise ValueError(f"smoothing must be positive (got {config.smoothing}); unseen contexts need it")
        rows = config.vocab_size ** config.context
        if error := ngram_table_error(config.context, config.vocab_size):
            raise ValueError(error)
        self.config = config
        # row = the window read as a base-V number (oldest token most significant), column = the next token
        self.register_buffer("counts", torch.zeros(rows, config.vocab_size, dtype=torch.int64))
        self.register_buffer("place", config.vocab_size ** torch.arange(config.context - 1, -1, -1),
                             persistent=False)

    def _rows(self, windows: Tensor) -> Tensor:
        return (windows * self.place).sum(-1)  # (N, context) -> (N,)

    @torch.no_grad()
    def fit(self, idx: Tensor, targets: Tensor) -> None:
        """Count every (window, next token) pair of the training words in one pass; a long text comes in
        chunks, whose counts add up."""
        real = real_positions(idx) & (targets != -1)
        rows = self._rows(context_windows(idx, self.config.context)[real])  # (N,)
        V = self.config.vocab_size
        cells = torch.bincount(rows * V + targets[real], minlength=self.counts.numel())
        self.counts += cells.view_as(self.counts)

    def probs(self, rows: Tensor | None = None) -> Tensor:
        """Normalised smoothed counts, in float64: all rows (V ** context, V), or the given ones (N, V)."""
        counts = self.counts if rows is None else self.counts[rows]
        smoothed = counts.double() + self.config.smoothing
        return smoothed / smoothed.sum(-1, keepdim=True)

    def window_logits(self, windows: Tensor) -> Tensor:
        return self.probs(self._rows(windows.to(self.counts.device))).log().float()  # (N, V)

    def bigram_table(self) -> Tensor:
        """Rows read straight off the count table: row c is the window "...c", row 0 the window "..."."""
        rows = torch.arange(self.config.vocab_size, device=self.counts.device)  # window (0, ..., 0, c)
        return self.probs(rows).float().cpu()

    def num_params(self) -> int:
        return self.counts.numel()  # the count table is what the model learned
