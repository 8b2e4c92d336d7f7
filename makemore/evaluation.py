"""Loss of a model on a list of words: mean negative log-likelihood per character (the stop token counts)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from makemore.data import EncodedWords

MAX_LOGITS = 1 << 24  # logits per evaluation batch (64 MiB in float32): bounds memory for huge vocabularies


def _batch_size(model, words: EncodedWords, batch_size: int) -> int:
    """``batch_size`` words, fewer when (words x positions x vocabulary) logits would exceed MAX_LOGITS."""
    per_word = words.tokens.size(1) * model.config.vocab_size
    return max(1, min(batch_size, MAX_LOGITS // per_word))


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
        for x, y in words.iter_batches(_batch_size(model, words, batch_size), device):
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
    for x, y in words.iter_batches(_batch_size(model, words, 512), device):
        logits, _ = model(x)
        nll = F.cross_entropy(logits.float().transpose(1, 2), y, ignore_index=-1, reduction="none")  # (B, T)
        n = (y != -1).sum(1)
        out.extend((nll.sum(1) / n).tolist())
    return out


def bits(nats: float) -> float:
    return nats / math.log(2)
