"""The sampler keeps finished words in the batch and compacts it now and then; these tests hold it to what the
simpler sampler did, where finished words left the batch at every step (kept below as ``reference_draw``):
the same words for the same seed, for every family and every sampling option, and, independently of any
earlier code, the model's own next-character distribution."""

from __future__ import annotations

import copy
import math
import types
from collections import Counter

import pytest
import torch

from makemore.data import Vocab
from makemore.errors import MakemoreError
from makemore.models import FAMILIES, build_model
from makemore.models.base import LanguageModel
from makemore.sample import NoEnd, _filter_logits, generate, pick


def reference_draw(model, vocab, B, *, generator, temperature=1.0, top_k=None, top_p=None, prefix="",
                   min_len=1, max_len=None):
    """One batch of B words, each finished word leaving the batch (``keep_rows``) at the step it stopped.
    Returns (word, logprob) per row, None for a word still going at ``max_len`` or at the model's window (the
    longest word it was trained on), which ``draw`` drops and draws again."""
    block = model.config.block_size
    limit = block - 1 if max_len is None else min(max_len, block - 1)
    cut = True
    prefix_ids = vocab.encode(prefix)
    with torch.inference_mode():
        state = model.init_state(B, torch.device("cpu"))
        idx = torch.tensor([[0, *prefix_ids]]).expand(B, -1).contiguous()
        length = len(prefix_ids)
        tokens = torch.zeros(B, limit, dtype=torch.long)
        tokens[:, :length] = idx[:, 1:]
        logprob = torch.zeros(B, dtype=torch.float64)
        overlong = torch.zeros(B, dtype=torch.bool)
        alive = torch.arange(B)
        while True:
            logits, state = model.decode(idx, state)
            logits = logits.float()
            logp = logits.log_softmax(-1)
            if length < min_len:
                logits[:, 0] = float("-inf")
            if length >= limit and not cut:
                nxt = torch.zeros(len(alive), dtype=torch.long)
            elif temperature == 0:
                nxt = logits.argmax(-1)
            else:
                probs = _filter_logits(logits / temperature, top_k, top_p).softmax(-1)
                nxt = pick(probs, generator)
            logprob[alive] += logp.gather(1, nxt[:, None]).squeeze(1).double()
            if length >= limit:
                overlong[alive[nxt != 0]] = True
                break
            tokens[alive, length] = nxt
            keep = (nxt != 0).nonzero().squeeze(1)
            if len(keep) == 0:
                break
            if len(keep) < len(alive):
                alive, nxt = alive[keep], nxt[keep]
                state = model.keep_rows(state, keep)
            length += 1
            idx = nxt[:, None]
    return [None if o else (vocab.decode(r[: r.index(0)] if 0 in r else r), lp)
            for r, o, lp in zip(tokens.tolist(), overlong.tolist(), logprob.tolist())]


def peaked_model(name, vocab, block_size=10):
    torch.manual_seed(0)
    model = build_model(name, len(vocab), block_size, dict(FAMILIES[name].hyper))
    if model.trainable:
        with torch.no_grad():  # words of many lengths, so that the batch shrinks step by step
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.3)
    else:
        words = ["ab", "abc", "cab", "bcbca", "a", "cccabab", "bb"]
        from makemore.data import EncodedWords

        model.fit(*EncodedWords(words, vocab).batch(torch.arange(len(words))))
    return model.double().eval()  # float64: a row's logits do not depend on which other rows share its batch


OPTIONS = [
    {},
    {"prefix": "ab"},
    {"temperature": 0.7, "top_k": 3},
    {"top_p": 0.8, "min_len": 3},
    {"max_len": 4},  # words still going at 4 characters are cut (None) and drawn again by `draw`
    {"temperature": 0},
]


@pytest.mark.parametrize("name", list(FAMILIES))
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "plain")
def test_same_words_for_the_same_seed_as_the_reference_sampler(name, options):
    vocab = Vocab(list("abcde"))
    model = peaked_model(name, vocab)
    B = 120
    want = reference_draw(model, vocab, B, generator=torch.Generator().manual_seed(5), **options)
    if all(w is None for w in want):  # greedy, the one word still going at the window: refused, never cut
        assert options == {"temperature": 0}
        with pytest.raises(NoEnd, match="every sample is the same word, and it does not end within 9 characters"):
            generate(model, vocab, B, generator=torch.Generator().manual_seed(5), batch_size=B, **options)
        return
    # one batch of B, so that both draw the same random numbers; `draw` drops the cut words (None) from it
    got = generate(model, vocab, B, generator=torch.Generator().manual_seed(5), batch_size=B, **options)
    kept = [w for w in want if w is not None]
    assert len(got) >= len(kept) > 0
    got = got[: len(kept)]
    assert [g.word for g in got] == [w for w, _ in kept]
    for g, (_, lp) in zip(got, kept):
        assert math.isclose(g.logprob, lp, rel_tol=1e-9, abs_tol=1e-9)
    if not options:
        # the batch really shrank at several steps (the words still going at the window leave at the last)
        assert len({len(w) for w, _ in kept}) + (None in want) > 3


def recomputing(model):
    """The same weights decoding the straightforward way: no cache, no state, the whole prefix through the
    model's forward at every step (``LanguageModel``'s decode)."""
    slow = copy.deepcopy(model)
    for method in ("init_state", "decode", "keep_rows"):
        setattr(slow, method, types.MethodType(getattr(LanguageModel, method), slow))
    return slow


@pytest.mark.parametrize("name", ["transformer", "gru", "mlp", "bow"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("options", [{}, {"prefix": "ab"}, {"temperature": 0.8, "top_k": 4}],
                         ids=["plain", "prefix", "top-k"])
def test_fast_sampler_draws_the_names_of_the_straightforward_one(name, dtype, options):
    """``generate`` (KV cache or hidden state, finished words kept in the batch, compactions) against the
    straightforward sampler: every word recomputed from its whole prefix, finished words leaving at once.
    The same seed gives the same names, and each name the same log-probability."""
    vocab = Vocab(list("abcde"))
    model = peaked_model(name, vocab).to(dtype)
    B = 200
    want = reference_draw(recomputing(model), vocab, B, generator=torch.Generator().manual_seed(7), **options)
    got = generate(model, vocab, B, generator=torch.Generator().manual_seed(7), batch_size=B, **options)
    want = [w for w in want if w is not None]  # (still going at the window: drawn again, after the first batch)
    got = got[: len(want)]
    assert [g.word for g in got] == [w for w, _ in want]
    assert len({len(w) for w, _ in want}) > 3  # words of many lengths: the batch was compacted on the way
    tol = 1e-9 if dtype == torch.float64 else 1e-4
    for g, (_, lp) in zip(got, want):
        assert math.isclose(g.logprob, lp, rel_tol=tol, abs_tol=tol)


@pytest.mark.parametrize("name", ["transformer", "gru", "mlp"])
def test_seeded_sampling_is_deterministic(name):
    vocab = Vocab(list("abcde"))
    model = peaked_model(name, vocab).float()
    a = generate(model, vocab, 120, generator=torch.Generator().manual_seed(11), batch_size=50)
    b = generate(model, vocab, 120, generator=torch.Generator().manual_seed(11), batch_size=50)
    c = generate(model, vocab, 120, generator=torch.Generator().manual_seed(12), batch_size=50)
    assert a == b
    assert [g.word for g in a] != [g.word for g in c]


def test_next_character_frequencies_follow_the_model():
    """For every context seen at least 400 times among 20,000 sampled words, the share of each next character
    (the stop token included) is within 5 standard errors, sqrt(p(1 - p) / count), of the model's softmax after
    that context: about 60 comparisons, each failing by chance with probability 6e-7."""
    vocab = Vocab(list("abc"))
    torch.manual_seed(1)
    model = build_model("transformer", len(vocab), 8, {"n_layer": 2, "n_head": 2, "n_embd": 16, "dropout": 0.0})
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    model.eval()
    N = 20_000
    # (the words still going at the window end there: each step's draw, not the lengths kept, is tested here)
    words = [g.word for g in generate(model, vocab, N, generator=torch.Generator().manual_seed(0),
                                      allow_empty=True, batch_size=4096, stop_at_window=True)]
    counts: dict[str, Counter] = {}
    for w in words:
        for t in range(len(w) + 1):
            counts.setdefault(w[:t], Counter())[w[t] if t < len(w) else ""] += 1
    contexts = [c for c, k in counts.items() if sum(k.values()) >= 400 and len(c) < 7]
    assert len(contexts) >= 8 and max(map(len, contexts)) >= 2  # beyond the first steps, after compactions
    compared = 0
    for context in contexts:
        idx = torch.tensor([[0, *vocab.encode(context)]])
        with torch.no_grad():
            probs = model(idx)[0][0, -1].softmax(-1).tolist()
        total = sum(counts[context].values())
        for token, p in enumerate(probs):
            char = "" if token == 0 else vocab.chars[token - 1]
            observed = counts[context][char] / total
            assert abs(observed - p) <= 5 * math.sqrt(p * (1 - p) / total) + 1e-9, (context, char, observed, p)
            compared += 1
    assert compared >= 30


def test_pick_follows_each_rows_distribution_and_never_draws_a_zero():
    """``pick`` against the probabilities it is given, with zeros first, inside and last in a row: each share
    within 5 standard errors over 100,000 draws per row, and no zero-probability index ever drawn."""
    probs = torch.tensor([[0.0, 0.5, 0.0, 0.2, 0.3, 0.0], [0.1, 0.0, 0.0, 0.0, 0.0, 0.9],
                          [0.0, 0.2, 0.2, 0.0, 0.4, 0.0]])  # the last sums to 0.8: shares are of its total
    N = 100_000
    drawn = pick(probs.repeat_interleave(N, 0), torch.Generator().manual_seed(0)).view(3, N)
    for row, p in zip(drawn, probs):
        p = p / p.sum()
        share = torch.bincount(row, minlength=6).double() / N
        assert (share[p == 0] == 0).all()
        assert ((share - p.double()).abs() <= 5 * (p * (1 - p) / N).sqrt() + 1e-12).all(), (share, p)
    for bad in (float("nan"), float("inf")):  # a row that is not a distribution is refused, not indexed past
        with pytest.raises(MakemoreError, match="not finite"):
            pick(torch.tensor([[0.5, bad, 0.5]]))


def test_cpu_threads_are_restored():
    from makemore.sample import cpu_threads

    ambient = torch.get_num_threads()
    torch.set_num_threads(2)  # whatever the process was started with, so that one thread is a change
    try:
        with cpu_threads(1):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with pytest.raises(RuntimeError), cpu_threads(1):
            raise RuntimeError("stop")
        assert torch.get_num_threads() == 2
        with cpu_threads(None):
            assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(ambient)
