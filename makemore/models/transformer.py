"""GPT-style Transformer language model (Vaswani et al. 2017, "Attention Is All You Need"; GPT-2's layout).

Token and learned position embeddings, pre-LayerNorm blocks of causal self-attention and a GELU MLP, a final
LayerNorm and a linear head. Attention runs through ``F.scaled_dot_product_attention`` with the query, key and
value projections fused into one matrix. Sampling keeps a KV cache per layer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from makemore.models.base import LanguageModel, Tensor


@dataclass(frozen=True)
class Config:
    vocab_size: int
    block_size: int  # longest sequence: the longest word + the start token
    n_layer: int  # blocks
    n_head: int  # attention heads per block; n_embd must divide by it
    n_embd: int  # channels of the residual stream
    dropout: float  # on attention weights and residual branches; 0 for small data is usually best
    tie_weights: bool = False  # the head shares the token embedding's matrix (GPT-2; saves V x n_embd weights)


class CausalSelfAttention(nn.Module):
    def __init__(self, config: Config):
        super().__init__()
        self.n_head = config.n_head
        self.block_size = config.block_size  # the KV cache's capacity
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd)  # q, k, v for all heads in one matmul
        self.c_proj = nn.Linear(config.n_embd, config.n_embd)
        self.dropout = config.dropout
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x: Tensor, cache: list | None = None, mask: Tensor | None = None) -> Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        if cache is None:
            # causal, or the packed rows' mask (each word attends to its own earlier positions only)
            y = F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, is_causal=mask is None, dropout_p=self.dropout if self.training else 0.0
            )
        else:
            # cache = [keys, values, length]: buffers of block_size positions allocated once, filled in place
            # (growing them by torch.cat each step copied the whole prefix every token: 35% of sampling time)
            if not cache:
                shape = (B, self.n_head, self.block_size, C // self.n_head)
                cache.extend([k.new_empty(shape), v.new_empty(shape), 0])
            past = cache[2]
            cache[0][:, :, past:past + T] = k
            cache[1][:, :, past:past + T] = v
            cache[2] = past + T
            k, v = cache[0][:, :, :past + T], cache[1][:, :, :past + T]  # (B, nh, past + T, hs)
            if T == 1 and x.device.type == "cpu" and q.dtype in (torch.float32, torch.float64):
                # one query per row against at most block_size keys: products and sums over the head's channels
                # take a tenth less of sampling's time on a CPU than the attention kernel, made for long sequences
                # (in float32 or float64; half precisions keep the kernel, which accumulates in float32)
                att = (q * k).sum(-1, keepdim=True).mul_(q.size(-1) ** -0.5).softmax(2)  # (B, nh, past + 1, 1)
                y = (att * v).sum(2, keepdim=True)  # (B, nh, 1, hs)
            elif T == 1:
                # one new query sees every cached key; is_causal would align the mask top-left (wrong here)
                y = F.scaled_dot_product_attention(q, k, v)
            else:
                # T new queries after `past` cached keys: query i sees keys 0 .. past + i
                mask = torch.ones(T, past + T, dtype=torch.bool, device=x.device).tril(diagonal=past)
                y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, config: Config):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, config: Config):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd)
        self.mlp = MLP(config)

    def forward(self, x: Tensor, cache: list[Tensor] | None = None, mask: Tensor | None = None) -> Tensor:
        x = x + self.attn(self.ln_1(x), cache, mask)
        return x + self.mlp(self.ln_2(x))


class Model(LanguageModel):
    packs = True  # trains on rows that pack several words (``forward(..., pos=)``), no padding
    # large matrices: oneDNN's float32 matmuls pay here (they cost for the MLP's and the RNN's small ones)
    cpu_matmul_precision = "medium"

    def __init__(self, config: Config):
        super().__init__()
        if config.n_embd % config.n_head:
            raise ValueError(f"n_embd ({config.n_embd}) must be divisible by n_head ({config.n_head})")
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.block_size, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
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

    def _forward(self, idx: Tensor, start: int, caches: list[list[Tensor]] | None,
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
        x = self.drop(self.wte(idx) + self.wpe(pos))  # (B, T, C)
        for i, block in enumerate(self.h):
            x = block(x, None if caches is None else caches[i], mask)
        return self.lm_head(self.ln_f(x))  # (B, T, V)

    @property
    def context_limit(self) -> int:
        return self.config.block_size  # one learned embedding per position

    def forward(self, idx: Tensor, targets: Tensor | None = None,
                pos: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """``pos`` (B, T): each slot's position within its word, for rows that pack several words (training)."""
        logits = self._forward(idx, 0, None, pos)
        return logits, self.loss(logits, targets)

    def init_state(self, batch_size: int, device: torch.device) -> tuple[int, list[list[Tensor]]]:
        return 0, [[] for _ in self.h]

    def decode(self, idx: Tensor, state: tuple[int, list[list[Tensor]]]) -> tuple[Tensor, tuple]:
        start, caches = state
        logits = self._forward(idx, start, caches)
        return logits[:, -1, :], (start + idx.size(1), caches)
