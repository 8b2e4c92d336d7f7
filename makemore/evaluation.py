"""Loss of a model on a list of words: mean negative log-likelihood per character (the stop token counts)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from makemore.data import EncodedWords


@torch.inference_mode()
def evaluate(model, words: EncodedWords, batch_size: int = 512, device=None) -> float:
    """Mean NLL in nats per character over every word (NaN for an empty list)."""
    if len(words) == 0:
        return math.nan
    was_training = model.training
    model.eval()
    total = torch.zeros((), dtype=torch.float64)
    count = 0
    try:
        for x, y in words.iter_batches(batch_size, device):
            logits, _ = model(x)
            nll = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1),
                                  ignore_index=-1, reduction="sum")
            total += nll.double().cpu()
            count += int((y != -1).sum())
    finally:
        model.train(was_training)
    return float(total) / count


@torch.inference_mode()
def word_nll(model, words: EncodedWords, device=None) -> list[float]:
    """Each word's mean NLL per character (its characters and the stop token)."""
    model.eval()
    out: list[float] = []
    for x, y in words.iter_batches(512, device):
        logits, _ = model(x)
        nll = F.cross_entropy(logits.float().transpose(1, 2), y, ignore_index=-1, reduction="none")  # (B, T)
        n = (y != -1).sum(1)
        out.extend((nll.sum(1) / n).tolist())
    return out


def bits(nats: float) -> float:
    return nats / math.log(2)
