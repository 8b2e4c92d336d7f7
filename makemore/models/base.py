"""The interface every model family implements, and what they get for free from it.

Every family reads the same thing: ``idx`` of shape (B, T), a batch of token sequences whose first token is
the start/stop token 0, and returns ``(logits, loss)`` where ``logits[:, t]`` scores the token that follows
``idx[:, :t + 1]``. Fixed-window families (mlp, wavenet, ngram) build their windows from ``idx`` themselves,
left-padding with the start token as the lectures do, so data, trainer, sampler and TUI treat all families alike.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

Tensor = torch.Tensor


class LanguageModel(nn.Module):
    config: Any
    trainable: bool = True  # False for count models, which are fitted in one pass by ``fit``

    def forward(self, idx: Tensor, targets: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        raise NotImplementedError

    @staticmethod
    def loss(logits: Tensor, targets: Tensor | None) -> Tensor | None:
        if targets is None:
            return None
        # padding positions carry target -1 and do not count
        return F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1)

    def fit(self, idx: Tensor, targets: Tensor) -> None:
        """Fit in one pass (count models only)."""
        raise NotImplementedError(f"{type(self).__name__} is trained by gradient steps")

    # --- incremental decoding -------------------------------------------------------------------
    # The default keeps the whole prefix and recomputes it: correct for every family. Families with a
    # cheaper state (a KV cache, a recurrent hidden state, a fixed window) override both methods.

    def init_state(self, batch_size: int, device: torch.device) -> Any:
        return torch.zeros(batch_size, 0, dtype=torch.long, device=device)

    def decode(self, idx: Tensor, state: Any) -> tuple[Tensor, Any]:
        """Feed new tokens ``idx`` (B, t) after those already seen; return next-token logits (B, V) and the state."""
        seq = torch.cat([state, idx], dim=1)
        logits, _ = self(seq)
        return logits[:, -1, :], seq

    # --- what the TUI shows -----------------------------------------------------------------------

    @torch.inference_mode()
    def bigram_table(self) -> Tensor:
        """P(next | previous) as a (V, V) table; row 0 is the distribution after the start token alone.

        For a model with a longer context, row c is its next-token distribution after ``<start> c``.
        """
        was_training = self.training
        self.eval()
        try:
            V = self.config.vocab_size
            device = next(iter(self.buffers()), next(iter(self.parameters()), None))
            device = device.device if device is not None else torch.device("cpu")
            idx = torch.zeros(V, 2, dtype=torch.long, device=device)
            idx[:, 1] = torch.arange(V, device=device)
            logits, _ = self(idx)
            probs = logits.float().softmax(dim=-1)  # (V, 2, V)
            table = probs[:, 1, :].clone()
            table[0] = probs[0, 0]  # the row of the start token: after <start> alone
            return table.cpu()
        finally:
            self.train(was_training)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
