"""GPT-style Transformer language model (Vaswani et al. 2017, "Attention Is All You Need"; GPT-2's layout).

Token and learned position embeddings, pre-LayerNorm blocks of causal self-attention and a GELU MLP, a final
LayerNorm and a linear head. Attention runs through ``F.scaled_dot_product_attention`` with the query, key and
value projections fused into one matrix. Sampling keeps a KV cache per layer.

With ``dropout_samples`` K > 0, the model trained with dropout predicts, in evaluation, the average of the
probabilities of K forward passes each under its own dropout masks (Monte Carlo dropout, Gal and Ghahramani
2016: an ensemble of the thinned networks dropout trains, instead of the one pass with dropout off that
approximates it). Evaluation draws the masks from a generator seeded alike at every call, so the same weights
and words always score the same; sampling draws each next character from one fresh set of masks over the
whole prefix (no KV cache), which is drawing from the average over all masks exactly.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from makemore.models import SIZE_LIMITS
from makemore.models.base import LanguageModel, Tensor
from makemore.models.dropout import Dropout, drawable, dropout, forced_generator, keeps_torch_dropout, masks_from

MAX_DROPOUT_SAMPLES = SIZE_LIMITS["dropout_samples"][1]
MASK_SEED = 0  # evaluation's masks: the same at every call, whatever the training drew


@dataclass(frozen=True)
class Config:
    vocab_size: int
    block_size: int  # longest sequence: the longest word + the start token
    n_layer: int  # blocks
    n_head: int  # attention heads per block; n_embd must divide by it
    n_embd: int  # channels of the residual stream
    dropout: float  # on attention weights and residual branches; 0 for small data is usually best
    tie_weights: bool = False  # the head shares the token embedding's matrix (GPT-2; saves V x n_embd weights)
    dropout_samples: int = 0  # > 0: evaluation averages the predictions of this many dropout masks (module doc)


class CausalSelfAttention(nn.Module):
    def __init__(self, config: Config):
        super().__init__()
        self.n_head = config.n_head
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd)  # q, k, v for all heads in one matmul
        self.c_proj = nn.Linear(config.n_embd, config.n_embd)
        self.dropout = config.dropout
        self.resid_dropout = Dropout(config.dropout)

    def forward(self, x: Tensor, cache: tuple[Tensor, Tensor] | None = None, mask: Tensor | None = None,
                past: int = 0, bt: tuple[int, int] | None = None) -> Tensor:
        """``x`` (B, T, C), or (B * T, C) rows with ``bt`` = (B, T): the model keeps its activations as rows, so
        that no view wraps each matrix product, in either pass."""
        B, T = bt if bt is not None else x.shape[:2]
        C = x.size(-1)
        qkv = self.c_attn(x)
        if cache is not None:
            y = self.decode(qkv.view(B, T, 3 * C), cache, past)
        else:
            # q, k, v of every head, each (B, nh, T, hs): views of the projection's rows, split where the rows
            # keep them side by side, so that their gradients stack back into the rows' layout without a copy
            q, k, v = (t.transpose(1, 2) for t in qkv.view(B, T, 3, self.n_head, C // self.n_head).unbind(2))
            # causal, or the packed rows' mask (each word attends to its own earlier positions only)
            drop = self.dropout > 0 and (self.training or forced_generator() is not None)
            if drop and not keeps_torch_dropout(x):
                y = attention(q, k, v, mask, self.dropout).transpose(1, 2)
            else:
                y = F.scaled_dot_product_attention(
                    q, k, v, attn_mask=mask, is_causal=mask is None,
                    dropout_p=self.dropout if self.training else 0.0
                ).transpose(1, 2)
        return self.resid_dropout(self.c_proj(y.reshape(x.shape)))

    def decode(self, qkv: Tensor, cache: tuple[Tensor, Tensor], past: int) -> Tensor:
        """Attention of T new positions (after ``past`` cached ones) over the cache, which they are written into.

        ``cache`` is (keys, values), each (block_size, B, C): allocated once, filled in place, time-major so that
        writing a step's keys is one contiguous block and one query's attention runs over whole (B, C) slabs."""
        B, T, C3 = qkv.shape
        C, nh = C3 // 3, self.n_head
        hs = C // nh
        keys, values = cache
        q, k, v = qkv.split(C, dim=2)
        keys[past:past + T] = k.transpose(0, 1)
        values[past:past + T] = v.transpose(0, 1)
        P = past + T  # positions seen
        if T == 1 and qkv.device.type == "cpu" and qkv.dtype in (torch.float32, torch.float64):
            # one query per row against at most block_size keys, by products and sums over (B, nh, hs) slabs:
            # on a CPU a fraction of the attention kernel's time, which is made for long sequences (float32 and
            # float64 only: half precisions keep the kernel, which accumulates in float32)
            att = (q.view(B, nh, hs) * keys[:P].view(P, B, nh, hs)).sum(-1, keepdim=True)  # (P, B, nh, 1)
            att = att.mul_(hs ** -0.5).softmax(0)
            V = values.view(-1, B, nh, hs)
            y = att[0] * V[0]  # (B, nh, hs)
            for t in range(1, P):  # one pass over each position's values: half the time of one product and sum
                y.addcmul_(att[t], V[t])
            return y.view(B, 1, C)
        q = q.view(B, T, nh, hs).transpose(1, 2)  # (B, nh, T, hs)
        k = keys[:P].view(P, B, nh, hs).permute(1, 2, 0, 3)  # (B, nh, P, hs)
        v = values[:P].view(P, B, nh, hs).permute(1, 2, 0, 3)
        # query i sees keys 0 .. past + i; one query sees them all (is_causal would align its mask top-left: wrong)
        mask = None if T == 1 else torch.ones(T, P, dtype=torch.bool, device=qkv.device).tril(diagonal=past)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return y.transpose(1, 2).reshape(B, T, C)


def _masks(device: torch.device, seed: int | None):
    """Dropout masks on for the block: from the enclosing ``masks_from`` block's generator, or else from a new
    one seeded with ``seed``."""
    generator = forced_generator()
    if generator is None:
        generator = torch.Generator(device=device).manual_seed(seed)
    return masks_from(generator)


def attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, p: float) -> Tensor:
    """What ``F.scaled_dot_product_attention`` computes with ``dropout_p=p`` on a CPU (its math kernel: scores,
    mask, softmax, dropout of the weights, their product with the values), with ``dropout``'s mask, which
    costs a third of its."""
    att = (q @ k.transpose(-2, -1)).mul_(q.size(-1) ** -0.5)
    if mask is None:
        T = q.size(-2)
        mask = torch.ones(T, T, dtype=torch.bool, device=q.device).tril()
    att = att.masked_fill(~mask, float("-inf")).softmax(-1)
    return dropout(att, p, True) @ v


class MLP(nn.Module):
    def __init__(self, config: Config):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd)
        self.dropout = Dropout(config.dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, config: Config):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd)
        self.mlp = MLP(config)

    def forward(self, x: Tensor, cache: tuple[Tensor, Tensor] | None = None, mask: Tensor | None = None,
                past: int = 0, bt: tuple[int, int] | None = None) -> Tensor:
        x = x + self.attn(self.ln_1(x), cache, mask, past, bt)
        return x + self.mlp(self.ln_2(x))


class Model(LanguageModel):
    packs = True  # trains on rows that pack several words (``forward(..., pos=)``), no padding
    # large matrices: oneDNN's float32 matmuls pay here (they cost for the MLP's and the RNN's small ones)
    cpu_matmul_precision = "medium"

    @property
    def gelu_width(self) -> int:
        return self.config.n_embd

    def __init__(self, config: Config):
        super().__init__()
        if config.n_embd % config.n_head:
            raise ValueError(f"n_embd ({config.n_embd}) must be divisible by n_head ({config.n_head})")
        if not 0 <= config.dropout_samples <= MAX_DROPOUT_SAMPLES:
            raise ValueError(f"dropout_samples must be between 0 and {MAX_DROPOUT_SAMPLES} "
                             f"(got {config.dropout_samples})")
        if config.dropout_samples and not drawable(config.dropout):
            raise ValueError(f"dropout_samples averages the predictions of dropout masks, but dropout is "
                             f"{config.dropout:g}: train with dropout (e.g. --dropout 0.2)")
        self.config = config
        self._one_pass = False  # set inside one_pass()
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.block_size, config.n_embd)
        self.drop = Dropout(config.dropout)
        self.h = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if config.tie_weights:
            self.lm_head.weight = self.wte.weight  # one (V, C) matrix: embeds tokens in, scores them out
        self.apply(self._init_weights)
        # GPT-2: scale the residual projections by 1/sqrt(2 * n_layer) so the residual stream keeps its size
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def _forward(self, idx: Tensor, start: int, caches: list[tuple[Tensor, Tensor]] | None,
                 pos: Tensor | None = None) -> Tensor:
        B, T = idx.shape
        mask = None
        if pos is None:
            if start + T > self.config.block_size:
                raise ValueError(f"sequence of {start + T} tokens exceeds block_size {self.config.block_size}")
            pos = torch.arange(start, start + T, device=idx.device)
        else:
            # packed rows: slot j sees slots i with j - pos[j] <= i <= j (its own word's start token onward)
            j = torch.arange(T, device=idx.device)
            mask = (j[None, :, None] >= j[None, None, :]) & (j[None, None, :] >= (j - pos)[:, :, None])
            mask = mask.unsqueeze(1)  # (B, 1, T, T): the same for every head
        x = self.wte(idx) + self.wpe(pos)  # (B, T, C)
        # as rows (B * T, C): one view here instead of two around every matrix product
        x = self.drop(x.view(B * T, self.config.n_embd))
        for i, block in enumerate(self.h):
            x = block(x, None if caches is None else caches[i], mask, start, (B, T))
        return self.lm_head(self.ln_f(x))  # (B * T, V)

    @property
    def context_limit(self) -> int:
        return self.config.block_size  # one learned embedding per position

    def forward(self, idx: Tensor, targets: Tensor | None = None,
                pos: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """``pos`` (B, T): each slot's position within its word, for rows that pack several words (training).
        In evaluation with ``dropout_samples``, the logits are the log of the averaged probabilities."""
        if self.averages_masks():
            logits = self._averaged(idx, pos)
        else:
            logits = self._forward(idx, 0, None, pos)  # (B * T, V)
        return logits.view(*idx.shape, -1), self.loss(logits, targets)

    def averages_masks(self) -> bool:
        """Whether predictions now average dropout masks: in evaluation, with ``dropout_samples``."""
        return self.config.dropout_samples > 0 and not self.training and not self._one_pass

    @contextlib.contextmanager
    def one_pass(self):
        """Inside: evaluation is the one pass with dropout off, whatever ``dropout_samples`` says (the trainer's
        periodic losses: K passes would cost each evaluation K times the time)."""
        before, self._one_pass = self._one_pass, True
        try:
            yield
        finally:
            self._one_pass = before

    def _averaged(self, idx: Tensor, pos: Tensor | None) -> Tensor:
        """log of the mean, over ``dropout_samples`` sets of masks, of the predicted probabilities (B * T, V):
        float32 log-probabilities (their log-softmax is themselves). Masks from the enclosing ``masks_from``
        block's generator, or from one seeded with MASK_SEED."""
        k = self.config.dropout_samples
        total = None
        with _masks(idx.device, MASK_SEED):
            for _ in range(k):
                logp = self._forward(idx, 0, None, pos).float().log_softmax(-1)
                total = logp if total is None else torch.logaddexp(total, logp)
        return total - math.log(k)

    def init_state(self, batch_size: int, device: torch.device) -> tuple[int, list[tuple[Tensor, Tensor]]]:
        """(positions seen, each layer's (keys, values)): buffers of (block_size, B, n_embd), written in place
        (growing them by torch.cat each step copied the whole prefix every token: 35% of sampling time)."""
        c = self.config
        if self.averages_masks():  # the tokens so far: each step runs them all again under fresh masks
            return 0, torch.zeros(batch_size, 0, dtype=torch.long, device=device)
        dtype = self.wte.weight.dtype
        shape = (c.block_size, batch_size, c.n_embd)
        return 0, [(torch.empty(shape, dtype=dtype, device=device), torch.empty(shape, dtype=dtype, device=device))
                   for _ in self.h]

    def decode(self, idx: Tensor, state: tuple[int, list[tuple[Tensor, Tensor]]]) -> tuple[Tensor, tuple]:
        start, caches = state
        if isinstance(caches, Tensor):  # averaging masks: one fresh set over the whole prefix draws exactly
            prefix = torch.cat([caches, idx], 1)
            # the sampler supplies a generator seeded from its own; a direct caller gets one from torch's
            with _masks(idx.device, int(torch.randint(1 << 62, ())) if forced_generator() is None else None):
                logits = self._forward(prefix, 0, None)
            return logits.view(*prefix.shape, -1)[:, -1, :], (prefix.size(1), prefix)
        logits = self._forward(idx, start, caches)  # (B * T, V)
        return logits.view(*idx.shape, -1)[:, -1, :], (start + idx.size(1), caches)

    def keep_rows(self, state: tuple[int, list[tuple[Tensor, Tensor]]], rows: Tensor) -> tuple:
        """The caches of ``rows`` only, copying the positions filled so far (the batch is dimension 1)."""
        start, caches = state
        if isinstance(caches, Tensor):
            return start, caches.index_select(0, rows)
        kept = []
        for layer in caches:
            pair = []
            for buffer in layer:
                out = buffer.new_empty(buffer.size(0), len(rows), buffer.size(2))
                torch.index_select(buffer[:start], 1, rows, out=out[:start])
                pair.append(out)
            kept.append(tuple(pair))
        return start, kept
