"""Batched sampling from any family through its incremental decoder (KV cache, hidden state or window)."""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import torch

from makemore.config import check_lengths, check_sampling
from makemore.console import plural
from makemore.data import Vocab, check_prefix
from makemore.errors import MakemoreError
from makemore.models.dropout import masks_from


@dataclass(frozen=True)
class Generated:
    word: str  # the prefix included
    # the model's log-probability of the generated characters and the stop token (NaN from a model averaging
    # dropout masks when not asked for: scoring them costs it its K passes)
    logprob: float


@dataclass(frozen=True)
class Drawn:
    words: list[Generated]
    too_long: int  # samples that had not ended within max_len or the window: never cut short, drawn again instead


class NoEnd(MakemoreError):
    """The samples hardly ever end a word within the length allowed (``draw`` gave up drawing them again)."""


COMPACT = 0.5  # the batch is compacted once at most this share of its rows is still generating


@contextlib.contextmanager
def cpu_threads(n: int | None):
    """torch's CPU threads set to ``n`` inside the block, restored after it; None leaves them as they are."""
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _filter_logits(logits: torch.Tensor, top_k: int | None, top_p: float | None) -> torch.Tensor:
    if top_k is not None and 0 < top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and 0 < top_p < 1:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        cumulative = sorted_logits.softmax(-1).cumsum(-1)
        # keep the smallest set reaching top_p: drop a character once the mass before it reaches top_p
        drop = cumulative - sorted_logits.softmax(-1) >= top_p
        drop[:, 0] = False  # the likeliest always stays: a top_p below float32's range dropped every character
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    return logits


def pick(probs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One index per row of ``probs`` (B, V) on the CPU, drawn from that row's distribution: the first index
    whose cumulative probability exceeds a uniform draw times the row's total (inverse transform sampling).

    One random number per row, where ``torch.multinomial`` draws one per entry (B x V exponentials): a tenth
    of the sampler's time at 1,000 names. The sums run in float64, where a uniform draw below 1 times the total
    rounds below the total, so an index of probability 0 (a filtered or forbidden character) is never drawn."""
    cdf = probs.double().cumsum(-1)
    total = cdf[:, -1:]
    if not bool(((total > 0) & total.isfinite()).all()):  # NaN or overflow: the index found would be past the end
        raise MakemoreError("the model's next-character probabilities are not finite numbers (its weights may "
                            "hold NaN or infinity)")
    u = torch.rand(probs.size(0), 1, generator=generator, dtype=torch.float64) * total
    return torch.searchsorted(cdf, u, right=True).squeeze(1)


@torch.inference_mode()
def generate(model, vocab: Vocab, n: int, **options) -> list[Generated]:
    """Draw ``n`` words (see ``draw``)."""
    return draw(model, vocab, n, **options).words


@torch.inference_mode()
def draw(
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
    allow_empty: bool = False,
    generator: torch.Generator | None = None,
    batch_size: int = 1024,
    device=None,
    scores: bool = True,
    stop_at_window: bool = False,
) -> Drawn:
    """Draw ``n`` words. ``temperature`` 0 is greedy. ``min_len``/``max_len`` count characters incl. the prefix.

    A word is never empty unless ``allow_empty`` (the stop token cannot come first), and never cut short: a
    sample still going at ``max_len`` characters, or at the model's window (the longest word it was trained on,
    where a model without positions, an n-gram or an RNN, may well go on), is dropped, counted, and drawn again,
    so the words that come back follow the model's distribution restricted to the lengths asked for. With
    ``stop_at_window`` a word still going at the window ends there instead (what the trainer's previews fall
    back to; see ``batches``). Without ``scores``, a model that averages dropout masks leaves each word's
    log-probability NaN (every other model computes it as it draws).
    """
    check_sampling(temperature=temperature, top_k=top_k, top_p=top_p)
    check_prefix(prefix, vocab)
    device = device or next(model.parameters(), torch.zeros(())).device
    block = model.config.block_size
    limit = check_lengths(block, prefix, min_len, max_len)
    min_len = max(min_len, 0 if allow_empty else 1)
    max_len_binds = limit < block - 1  # before the model's own window does
    cut = not stop_at_window or max_len_binds  # a word still going at the limit is drawn again
    within = f"--max-len {max_len}" if max_len_binds else \
        f"{limit} characters (the longest word this model was trained on)"
    was_training = model.training
    model.eval()
    out: list[Generated] = []
    too_long = 0
    prefix_ids = vocab.encode(prefix)
    averaging = getattr(model, "averages_masks", lambda: False)()
    mask_generator = None
    if averaging:  # each step's dropout masks, from a generator seeded by this draw's (see the Transformer)
        seed = int(torch.randint(1 << 62, (), generator=generator))
        mask_generator = torch.Generator(device=device).manual_seed(seed)
    greedy = temperature == 0 or top_k == 1  # the likeliest character at each step: one word, drawn again
    try:
        while len(out) < n:
            if too_long > 100 * n + 1000:
                loosen = "loosen --top-k or --top-p" if top_k is not None or top_p is not None else None
                remedy = f"raise --max-len or {loosen or '--temperature'}" if max_len_binds else \
                    loosen or "try another --temperature"
                raise NoEnd(f"{too_long:,} samples did not end within {within}, and {len(out):,} did; {remedy}")
            wanted = n - len(out)
            if too_long:  # expect to drop as many as so far
                wanted = min(wanted * (too_long + len(out)) // max(len(out), 1) + 1, 64 * wanted)
            B = min(batch_size, wanted, max(1, (1 << 24) // len(vocab)))  # bound (B, V) logits memory
            with masks_from(mask_generator) if averaging else contextlib.nullcontext():
                batch = _generate_batch(model, vocab, B, prefix_ids, temperature, top_k, top_p, min_len, limit,
                                        cut, generator, device)
            ended = [g for g in batch if g is not None]
            if not ended and greedy and not averaging:  # every sample is the one word, which does not end
                rule = "--temperature 0" if temperature == 0 else "--top-k 1"
                raise NoEnd(f"under {rule} every sample is the same word, and it does not end within {within}; "
                            + ("raise --max-len, or " if max_len_binds else "") + f"sample without {rule}")
            if averaging:
                ended = _scored(model, vocab, ended, len(prefix), device) if scores else \
                    [Generated(g.word, math.nan) for g in ended]
            too_long += len(batch) - len(ended)
            out.extend(ended[: n - len(out)])
    finally:
        model.train(was_training)
    return Drawn(out, too_long)


def _scored(model, vocab: Vocab, words: list[Generated], skip: int, device) -> list[Generated]:
    """``words`` with their log-probabilities from the model's forward pass, the first ``skip`` characters (the
    prefix) not counted: a model that averages dropout masks draws each character from one fresh set of masks,
    which draws from the average over all of them, and scores the words with its average, as evaluation does."""
    from makemore.data import EncodedWords
    from makemore.evaluation import word_logprobs

    if not words:
        return words
    lp = word_logprobs(model, EncodedWords([g.word for g in words], vocab), skip=skip, device=device)
    return [Generated(g.word, v) for g, v in zip(words, lp.tolist())]


def _generate_batch(model, vocab, B, prefix_ids, temperature, top_k, top_p, min_len, limit, cut, generator,
                    device):
    """Sample B words in lockstep. With ``cut``, a word still going after ``limit`` characters comes back as
    None; otherwise ``limit`` is the model's window, where the stop token is forced.

    A word that has stopped stays in the model's batch (fed the stop token, its outputs unused) until half the
    batch has stopped; then the batch is compacted (``keep_rows``). Compacting at every step copied every
    layer's KV cache once per step; compacting at halves copies it a few times per batch, and at most half the
    rows the model runs are finished ones. Random numbers are drawn for the running words only, in the same
    order as when finished words left the batch at once."""
    state = model.init_state(B, device)
    idx = torch.tensor([[0, *prefix_ids]], dtype=torch.long, device=device).expand(B, -1).contiguous()
    length = len(prefix_ids)
    tokens = torch.zeros(B, limit, dtype=torch.long)
    tokens[:, :length] = idx[:, 1:].cpu()
    logprob = torch.zeros(B, dtype=torch.float64)
    overlong = torch.zeros(B, dtype=torch.bool)
    rows = torch.arange(B)  # the word each row of the model's batch generates
    running = None  # positions in the batch of the words still generating; None: all of them
    while True:
        logits, state = model.decode(idx, state)  # (len(rows), V)
        logits = logits.float().cpu()
        if running is not None:
            logits = logits.index_select(0, running)
        which = rows if running is None else rows.index_select(0, running)  # the words drawn for now
        logp = logits.log_softmax(-1)  # the model's own probabilities, whatever the sampling rules
        if length < min_len:
            logits[:, 0] = float("-inf")  # no stop before min_len characters
        if length >= limit and not cut:
            nxt = torch.zeros(len(which), dtype=torch.long)  # the window is full: stop here
        elif temperature == 0:
            nxt = logits.argmax(-1)
        else:
            if temperature != 1:
                logits = logits / temperature
            nxt = pick(_filter_logits(logits, top_k, top_p).softmax(-1), generator)
        logprob[which] += logp.gather(1, nxt[:, None]).squeeze(1).double()
        if length >= limit:
            overlong[which[nxt != 0]] = True  # would have gone on past max_len
            break
        tokens[which, length] = nxt  # a 0 here ends the word
        still = (nxt != 0).nonzero().squeeze(1)  # of the running words, those going on
        if len(still) == 0:
            break
        if len(still) < len(nxt):
            nxt = nxt.index_select(0, still)
            running = still if running is None else running.index_select(0, still)
            if len(running) <= COMPACT * len(rows):  # enough of the batch has stopped: compact it
                state = model.keep_rows(state, running.to(device))
                rows = rows.index_select(0, running)
                running = None
        if running is not None:  # the finished rows are fed the stop token
            nxt = torch.zeros(len(rows), dtype=torch.long).index_copy_(0, running, nxt)
        length += 1
        idx = nxt[:, None].to(device)
    chars = ["", *vocab.chars]  # what vocab.decode does, in one table look-up per character
    words = []
    for row, dropped, lp in zip(tokens.tolist(), overlong.tolist(), logprob.tolist()):
        words.append(None if dropped else Generated("".join(map(chars.__getitem__, row)), lp))
    return words


def tag(word: str, train: set[str], held_out: set[str]) -> str:
    """new, train (in the training words), test (in the held-out words), or empty (never new)."""
    return "empty" if not word else "train" if word in train else "test" if word in held_out else "new"


@dataclass(frozen=True)
class Tagged:
    word: str
    tag: str  # "new", "train", "test" (val or test) or "empty": where the word occurs in the run's split
    logprob: float


@dataclass(frozen=True)
class Sampled:
    samples: list[Tagged]
    too_long: int  # samples longer than max_len (or the model's window), drawn again
    not_new: int = 0  # with new_only: samples found in the run's splits, drawn again
    repeated: int = 0  # with unique: samples already drawn, drawn again


def sample_words(loaded, n: int, *, temperature: float = 1.0, top_k: int | None = None,
                 top_p: float | None = None, prefix: str = "", min_len: int = 0, max_len: int | None = None,
                 new_only: bool = False, unique: bool = False, allow_empty: bool = False, seed: int = 0,
                 scores: bool = True) -> Sampled:
    """``n`` words from a loaded run (``makemore.rundir.LoadedRun``), each tagged by the run's split; with
    ``new_only`` only words in neither split, with ``unique`` no word twice; ``scores`` as ``draw``'s. What
    `makemore sample` and the Python API's ``Model.sample`` both call."""
    check_sampling(n=n, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed)
    check_lengths(loaded.config.model.block_size, prefix, min_len, max_len)
    train_words, held_out = loaded.known_words()
    generator = torch.Generator().manual_seed(seed)
    results: list[Tagged] = []
    seen: set[str] = set()
    attempts = too_long = not_new = repeated = 0
    while len(results) < n:
        want = n - len(results)
        drawn = draw(loaded.model, loaded.vocab, want if not (new_only or unique) else max(2 * want, 32),
                     temperature=temperature, top_k=top_k, top_p=top_p, prefix=prefix, min_len=min_len,
                     max_len=max_len, allow_empty=allow_empty, generator=generator, scores=scores)
        attempts += len(drawn.words)
        too_long += drawn.too_long
        for g in drawn.words:
            t = tag(g.word, train_words, held_out)
            if new_only and t != "new":
                not_new += 1
                continue
            if unique and g.word in seen:
                repeated += 1
                continue
            seen.add(g.word)
            results.append(Tagged(g.word, t, g.logprob))
            if len(results) == n:
                break
        if attempts > min(100 * n, 1_000_000 + 10 * n) and len(results) < n:
            asked = " and ".join(o for o, on in (("--new-only", new_only), ("--unique", unique)) if on)
            limits = [o for o, on in (("--prefix", prefix), ("--min-len", min_len), ("--max-len", max_len is not None),
                                      ("--top-k", top_k is not None), ("--top-p", top_p is not None)) if on]
            raise MakemoreError(f"found only {plural(len(results), 'word')} meeting {asked} in {attempts:,} samples; "
                                f"try a higher --temperature" + (f" or loosen {', '.join(limits)}" if limits else ""))
    return Sampled(results, too_long, not_new, repeated)
