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


def context_windows(idx: Tensor, context: int) -> Tensor:
    """(B, T) -> (B, T, context): at each position the last ``context`` tokens up to and including it.

    Positions before the word are filled with the start token 0, as the lectures build their examples: for
    "emma" with context 3 the first window is "...", then "..e", ".em", "emm", "mma".
    """
    padded = F.pad(idx, (context - 1, 0), value=0)  # (B, context - 1 + T)
    return padded.unfold(1, context, 1)  # (B, T, context)


def real_positions(idx: Tensor) -> Tensor:
    """(B, T) bool: the start token and the word's characters; False on the padding after a word ends.

    A sequence is ``0 w_1 ... w_n 0 0 ...``: position t is real while ``idx[:, 1 : t + 1]`` holds no 0.
    """
    inside = (idx[:, 1:] != 0).cumprod(dim=1).bool()  # (B, T - 1)
    return torch.cat([torch.ones_like(idx[:, :1], dtype=torch.bool), inside], dim=1)


class LanguageModel(nn.Module):
    config: Any
    trainable: bool = True  # False for count models, which are fitted in one pass by ``fit``
    packs: bool = False  # True: trains on rows packing several words, ``forward(idx, targets, pos=positions)``
    # the float32 matmul precision that trains the family fastest on a CPU, taken only where it stays exact
    # float32 (see trainer.set_matmul_precision); "medium" (oneDNN) pays for large matrices, costs for small ones
    cpu_matmul_precision: str = "highest"
    # the input width of the family's GELU MLPs (they widen it four times), by which a CPU's trainer times
    # which GELU kernel to take (see makemore.device.native_gelu_pays); None: no GELU
    gelu_width: int | None = None

    @property
    def context_limit(self) -> int | None:
        """The most tokens one forward pass may see (learned positions), or None for any number."""
        return None

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

    def keep_rows(self, state: Any, rows: Tensor) -> Any:
        """The decoding state of the sequences at ``rows`` only (words that have stopped leave the batch).

        The default indexes dimension 0 of every tensor in the state (lists and tuples are walked)."""
        return select_rows(state, rows, dim=0)

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


class WindowModel(LanguageModel):
    """A model whose prediction depends only on the last ``config.context`` tokens (ngram, mlp, wavenet).

    Subclasses implement ``window_logits``. The forward pass scores only the real positions of each word
    (padding gets zero logits, which the loss ignores): it saves the work on padding, and batch statistics
    (batch norm) come from real positions only. Sampling carries the window itself as the state.
    """

    def window_logits(self, windows: Tensor) -> Tensor:
        """(N, context) token windows -> (N, V) logits for the token that follows each window."""
        raise NotImplementedError

    def forward(self, idx: Tensor, targets: Tensor | None = None,
                window_logits=None) -> tuple[Tensor, Tensor | None]:
        """``window_logits``: what computes them instead of the module's own (its compiled version, training)."""
        real = real_positions(idx)  # (B, T)
        windows = context_windows(idx, self.config.context)[real]  # (N, context)
        out = (window_logits or self.window_logits)(windows)  # (N, V)
        logits = out.new_zeros(*idx.shape, out.size(-1))  # (B, T, V)
        logits[real] = out
        return logits, self.loss(logits, targets)

    def init_state(self, batch_size: int, device: torch.device) -> Tensor:
        return torch.zeros(batch_size, self.config.context, dtype=torch.long, device=device)  # "..." in the lectures

    def decode(self, idx: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        window = torch.cat([state, idx], dim=1)[:, -self.config.context:]  # (B, context)
        return self.window_logits(window), window


def select_rows(state: Any, rows: Tensor, dim: int = 0) -> Any:
    """``state`` with every tensor indexed by ``rows`` along ``dim``; other values are kept as they are."""
    if torch.is_tensor(state):
        return state.index_select(dim, rows)
    if isinstance(state, (list, tuple)):
        return type(state)(select_rows(s, rows, dim) for s in state)
    return state
