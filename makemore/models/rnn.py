"""Recurrent language models over the whole word: vanilla RNN, GRU and LSTM (the reference's ``rnn``/``gru``).

- rnn:  Elman 1990, h_t = tanh(W [x_t, h_{t-1}])
- gru:  Cho et al. 2014, update and reset gates
- lstm: Hochreiter & Schmidhuber 1997, input/forget/output gates and a cell state

Each character is embedded and fed to the recurrence, starting from the start token with a zero state; the
hidden state at each position gives the next character's logits. Sampling carries the hidden state (and the
LSTM's cell state) from one token to the next, so no prefix is ever recomputed.

The cells are torch.nn.RNN / GRU / LSTM rather than hand-written: the loop over time then runs inside one
ATen call per layer instead of a Python loop of small ops, which is about twice as fast on a CPU, and the gate
equations are the standard, well-tested ones (torch's GRU applies the reset gate after the recurrent matmul).

Under bfloat16 autocast on a CPU whose oneDNN has no bfloat16 (an AVX2 CPU), oneDNN's LSTM cannot be built
("could not create a primitive descriptor"): there the LSTM itself runs in float32, the rest under autocast.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

from makemore import device as _device
from makemore.models.base import LanguageModel, Tensor, select_rows

CELLS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


@dataclass(frozen=True)
class Config:
    vocab_size: int
    block_size: int  # unused: the recurrence handles any length
    n_embd: int  # embedding width per character
    n_embd2: int  # hidden state width
    n_layer: int  # stacked recurrent layers


class Model(LanguageModel):
    """The recurrent language model; ``cell`` is fixed by the subclass (the model type) below."""

    cell = "rnn"

    def __init__(self, config: Config):
        super().__init__()
        if config.n_layer < 1:
            raise ValueError(f"n_layer must be at least 1 (got {config.n_layer})")
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.rnn = CELLS[self.cell](config.n_embd, config.n_embd2, num_layers=config.n_layer, batch_first=True)
        self.lm_head = nn.Linear(config.n_embd2, config.vocab_size)
        nn.init.normal_(self.lm_head.weight, std=0.01)  # small logits at first: initial loss ~ ln(V)
        nn.init.zeros_(self.lm_head.bias)
        if self.cell == "lstm":
            # forget-gate bias 1 (Jozefowicz et al. 2015): remember by default early in training
            for name, p in self.rnn.named_parameters():
                if name.startswith("bias_hh"):
                    with torch.no_grad():
                        p[config.n_embd2 : 2 * config.n_embd2].fill_(1.0)  # gates are ordered i, f, g, o

    def forward(self, idx: Tensor, targets: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        x = self.wte(idx)  # (B, T, n_embd)
        h, _ = self.recur(x, None)  # (B, T, n_embd2); padding comes after each word, so it never affects it
        logits = self.lm_head(h)  # (B, T, V)
        return logits, self.loss(logits, targets)

    def recur(self, x: Tensor, state: Any) -> tuple[Tensor, Any]:
        """The recurrence over ``x`` from ``state``; an LSTM under CPU bfloat16 autocast where oneDNN has no
        bfloat16 in float32 (see the module's docstring)."""
        if (self.cell == "lstm" and x.device.type == "cpu" and torch.is_autocast_enabled("cpu")
                and torch.get_autocast_dtype("cpu") == torch.bfloat16 and not _device.cpu_bfloat16()):
            with torch.autocast("cpu", enabled=False):
                return self.rnn(x.float(), state)
        return self.rnn(x, state)

    def init_state(self, batch_size: int, device: torch.device) -> Any:
        return None  # torch's recurrent modules start from zeros

    def decode(self, idx: Tensor, state: Any) -> tuple[Tensor, Any]:
        h, state = self.recur(self.wte(idx), state)  # state: h (n_layer, B, n_embd2), or (h, c) for the LSTM
        return self.lm_head(h[:, -1]), state

    def keep_rows(self, state: Any, rows: Tensor) -> Any:
        return select_rows(state, rows, dim=1)  # the batch is dimension 1 of h (and c)


class RNN(Model):
    cell = "rnn"


class GRU(Model):
    cell = "gru"
    # its gate matrices are large enough for oneDNN's float32 matmuls to pay (the plain RNN's are not)
    cpu_matmul_precision = "medium"


class LSTM(Model):
    cell = "lstm"
