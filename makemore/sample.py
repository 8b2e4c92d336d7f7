"""Batched sampling from any family through its incremental decoder (KV cache, hidden state or window)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from makemore.data import Vocab
from makemore.errors import MakemoreError


@dataclass(frozen=True)
class Generated:
    word: str  # the prefix included
    logprob: float  # log-probability of the generated characters and the stop token under the sampling model


def _filter_logits(logits: torch.Tensor, top_k: int | None, top_p: float | None) -> torch.Tensor:
    if top_k is not None and top_k > 0 and top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and 0 < top_p < 1:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        cumulative = sorted_logits.softmax(-1).cumsum(-1)
        drop = cumulative - sorted_logits.softmax(-1) > top_p  # keep the smallest set reaching top_p
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    return logits


@torch.inference_mode()
def generate(
    model,
    vocab: Vocab,
    n: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    prefix: str = "",
    min_len: int = 0,
    max_len: int | None = None,
    generator: torch.Generator | None = None,
    batch_size: int = 1024,
    device=None,
) -> list[Generated]:
    """Draw ``n`` words. ``temperature`` 0 is greedy. ``min_len``/``max_len`` count characters incl. the prefix."""
    if temperature < 0:
        raise MakemoreError("--temperature must be >= 0")
    unknown = vocab.unknown(prefix)
    if unknown:
        raise MakemoreError(f"--prefix {prefix!r}: character {sorted(unknown)[0]!r} is not in the model's vocabulary")
    device = device or next(model.parameters(), torch.zeros(())).device
    block = model.config.block_size
    limit = block - 1 if max_len is None else min(max_len, block - 1)
    if len(prefix) > limit:
        raise MakemoreError(f"--prefix is {len(prefix)} characters; this model generates at most {block - 1}")
    was_training = model.training
    model.eval()
    out: list[Generated] = []
    prefix_ids = vocab.encode(prefix)
    try:
        while len(out) < n:
            B = min(batch_size, n - len(out), max(1, (1 << 24) // len(vocab)))  # bound (B, V) logits memory
            out.extend(_generate_batch(model, vocab, B, prefix_ids, temperature, top_k, top_p, min_len, limit,
                                       generator, device))
    finally:
        model.train(was_training)
    return out


def _generate_batch(model, vocab, B, prefix_ids, temperature, top_k, top_p, min_len, limit, generator, device):
    """Sample B words in lockstep; a word that has stopped leaves the batch, so the last steps run on the few
    long words only instead of the whole batch."""
    state = model.init_state(B, device)
    idx = torch.tensor([[0, *prefix_ids]], dtype=torch.long, device=device).expand(B, -1).contiguous()
    length = len(prefix_ids)
    tokens = torch.zeros(B, limit, dtype=torch.long)
    tokens[:, :length] = idx[:, 1:].cpu()
    logprob = torch.zeros(B, dtype=torch.float64)
    alive = torch.arange(B)  # rows of this batch still generating
    while True:
        logits, state = model.decode(idx, state)  # (len(alive), V)
        logits = logits.float().cpu()
        if length < min_len:
            logits[:, 0] = float("-inf")  # no stop before min_len characters
        if length >= limit:
            nxt = torch.zeros(len(alive), dtype=torch.long)  # the window is full: stop here
        elif temperature == 0:
            nxt = logits.argmax(-1)
        else:
            probs = _filter_logits(logits / temperature, top_k, top_p).softmax(-1)
            nxt = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        logprob[alive] += logits.log_softmax(-1).gather(1, nxt[:, None]).squeeze(1).double()
        if length >= limit:
            break
        tokens[alive, length] = nxt  # a 0 here ends the word
        keep = (nxt != 0).nonzero().squeeze(1)
        if len(keep) == 0:
            break
        if len(keep) < len(alive):
            alive, nxt = alive[keep], nxt[keep]
            state = model.keep_rows(state, keep.to(device))
        length += 1
        idx = nxt[:, None].to(device)
    words = []
    for row in tokens.tolist():
        words.append(vocab.decode(row[: row.index(0)] if 0 in row else row))
    return [Generated(w, float(lp)) for w, lp in zip(words, logprob.tolist())]


def tag(word: str, train: set[str], held_out: set[str]) -> str:
    return "train" if word in train else "test" if word in held_out else "new"


@dataclass(frozen=True)
class Drawn:
    word: str
    tag: str  # "new", "train" or "test" (val or test): where the word occurs in the run's split
    logprob: float


def draw(loaded, n: int, *, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
         prefix: str = "", min_len: int = 0, max_len: int | None = None, new_only: bool = False,
         unique: bool = False, seed: int = 0) -> list[Drawn]:
    """``n`` words from a loaded run (``makemore.rundir.LoadedRun``), each tagged by the run's split; with
    ``new_only`` only words in neither split, with ``unique`` no word twice. What `makemore sample` and the
    Python API's ``Model.sample`` both call."""
    if n < 1:
        raise MakemoreError("-n must be at least 1")
    if top_p is not None and not 0 < top_p <= 1:
        raise MakemoreError("--top-p must be in (0, 1]")
    train_words, held_out = loaded.known_words()
    generator = torch.Generator().manual_seed(seed)
    results: list[Drawn] = []
    seen: set[str] = set()
    attempts = 0
    while len(results) < n:
        want = n - len(results)
        batch = generate(loaded.model, loaded.vocab, want if not (new_only or unique) else max(2 * want, 32),
                         temperature=temperature, top_k=top_k, top_p=top_p, prefix=prefix, min_len=min_len,
                         max_len=max_len, generator=generator)
        attempts += len(batch)
        for g in batch:
            t = tag(g.word, train_words, held_out)
            if (new_only and t != "new") or (unique and g.word in seen):
                continue
            seen.add(g.word)
            results.append(Drawn(g.word, t, g.logprob))
            if len(results) == n:
                break
        if attempts > 100 * n and len(results) < n:
            raise MakemoreError(f"found only {len(results)} words meeting --new-only/--unique in {attempts} "
                                f"samples; try a higher --temperature")
    return results
