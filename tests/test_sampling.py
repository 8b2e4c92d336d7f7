"""Batched sampling for every family: each word's log-probability equals what a full forward pass gives it,
which holds only if every row kept its own decoding state while finished words left the batch."""

from __future__ import annotations

import types

import pytest
import torch

from makemore.data import EncodedWords, Vocab
from makemore.evaluation import word_nll
from makemore.models import FAMILIES
from makemore.models import build_model
from makemore.sample import generate


@pytest.mark.parametrize("name", list(FAMILIES))
def test_sampled_logprob_matches_full_forward(name, small_words):
    words = small_words.read_text().split()
    vocab = Vocab.from_words(words)
    torch.manual_seed(0)
    model = build_model(name, len(vocab), 12, dict(FAMILIES[name].hyper))
    encoded = EncodedWords(words, vocab)
    if model.trainable:
        # peaked distributions, so that a row given another row's state would show (the one-block Transformer's
        # at 0.3 are so peaked that every word runs to the window: 0.2 keeps words of several lengths)
        scale = 0.2 if name == "transformer" else 0.3
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * scale)
    else:
        model.fit(*encoded.batch(torch.arange(len(words))))
    model.eval()
    samples = generate(model, vocab, 64, generator=torch.Generator().manual_seed(1), batch_size=64)
    assert len({len(s.word) for s in samples}) > 1  # words stopped at different steps
    nll = word_nll(model, EncodedWords([s.word for s in samples], vocab))
    for s, per_char in zip(samples, nll):
        assert s.logprob == pytest.approx(-per_char * (len(s.word) + 1), rel=1e-4, abs=1e-4), s.word


def test_prefix_min_len_and_greedy():
    vocab = Vocab(list("abc"))
    torch.manual_seed(0)
    model = build_model("transformer", len(vocab), 9, {"n_layer": 1, "n_head": 1, "n_embd": 8, "dropout": 0.0})
    model.eval()
    a = generate(model, vocab, 5, temperature=0, prefix="ab")
    assert len({s.word for s in a}) == 1 and a[0].word.startswith("ab")  # greedy: one answer
    long = generate(model, vocab, 20, min_len=5, generator=torch.Generator().manual_seed(0))
    assert all(len(s.word) >= 5 for s in long)
    short = generate(model, vocab, 20, max_len=2, generator=torch.Generator().manual_seed(0))
    assert all(len(s.word) <= 2 for s in short)


# --- top-k and top-p (nucleus) filtering --------------------------------------------------------------

def reference_filter(probs: list[float], top_k: int | None, top_p: float | None) -> list[float]:
    """The distribution sampling should draw from, in plain Python: the k likeliest characters, then the
    smallest set of the likeliest whose mass reaches p, renormalised at each stage."""
    order = sorted(range(len(probs)), key=lambda i: -probs[i])
    kept = order[:top_k] if top_k else order
    mass = sum(probs[i] for i in kept)
    probs = [probs[i] / mass if i in kept else 0.0 for i in range(len(probs))]
    if top_p is not None:
        nucleus, total = [], 0.0
        for i in kept:
            if total >= top_p:
                break
            nucleus.append(i)
            total += probs[i]
        probs = [probs[i] / total if i in nucleus else 0.0 for i in range(len(probs))]
    return probs


@pytest.mark.parametrize("top_k, top_p", [(1, None), (5, None), (26, None), (None, 0.3), (None, 0.9),
                                          (None, 0.999), (8, 0.7)])
def test_filtering_keeps_the_likeliest_renormalised(top_k, top_p):
    from makemore.sample import _filter_logits

    logits = torch.randn(64, 27, generator=torch.Generator().manual_seed(0)) * 2
    got = _filter_logits(logits, top_k, top_p).softmax(-1)
    expected = [reference_filter(row, top_k, top_p) for row in logits.double().softmax(-1).tolist()]
    torch.testing.assert_close(got.double(), torch.tensor(expected, dtype=torch.float64), rtol=1e-5, atol=1e-6)
    if top_k and top_p is None:
        assert ((got > 0).sum(-1) == top_k).all()


def test_nucleus_is_the_smallest_set_reaching_p():
    """Four equally likely characters: half the mass is reached with two, so top-p 0.5 keeps two, not three."""
    from makemore.sample import _filter_logits

    kept = (_filter_logits(torch.zeros(1, 4), None, 0.5).softmax(-1) > 0).sum().item()
    assert kept == 2
    assert (_filter_logits(torch.zeros(1, 4), None, 0.51).softmax(-1) > 0).sum().item() == 3


def test_a_top_p_below_float32s_range_keeps_the_likeliest_character():
    """--top-p 1e-40 dropped every character (the mass before the first is 0, which float32 holds as not below
    1e-40), and sampling blamed the model's weights for probabilities that were not finite."""
    from makemore.sample import _filter_logits

    logits = torch.tensor([[0.5, 2.0, -1.0, 1.0]])
    for p in (1e-40, 1e-300, 1e-3):
        probs = _filter_logits(logits, None, p).softmax(-1)
        assert probs.tolist() == [[0.0, 1.0, 0.0, 0.0]], (p, probs)


def test_sampling_uses_the_filter():
    """Through generate: top-k 1 and a tiny top-p draw the greedy word at any temperature."""
    vocab = Vocab(list("abcde"))
    torch.manual_seed(0)
    model = build_model("transformer", len(vocab), 9, {"n_layer": 1, "n_head": 1, "n_embd": 8, "dropout": 0.0})
    with torch.no_grad():  # peaked distributions, so that the greedy word is not the empty one every time
        for p in model.parameters():
            p.add_(torch.randn_like(p))
    greedy = generate(model, vocab, 1, temperature=0)[0].word
    draw = lambda **kw: {g.word for g in generate(model, vocab, 20, temperature=1.5,
                                                  generator=torch.Generator().manual_seed(0), **kw)}
    assert draw(top_k=1) == {greedy} == draw(top_p=1e-6)
    assert len(draw()) > 1  # unfiltered, the same draws differ


class _NeverEndsAfterOne(torch.nn.Module):
    """A decoder over {stop, a, b} that may end a word after its first character and never after more: every
    word it begins beyond one character runs to the window, as an n-gram's or an RNN's may (no positions)."""

    def __init__(self, block_size: int = 6):
        super().__init__()
        self.config = types.SimpleNamespace(block_size=block_size, vocab_size=3)
        self.weight = torch.nn.Parameter(torch.zeros(()))

    def init_state(self, B, device):
        return 0  # tokens fed so far

    def decode(self, idx, state):
        logits = torch.zeros(idx.size(0), 3)
        if state + idx.size(1) != 2:  # the start token and one character fed: only then may it stop
            logits[:, 0] = float("-inf")
        return logits, state + idx.size(1)

    def keep_rows(self, state, rows):
        return state


def test_a_word_still_going_at_the_models_window_is_drawn_again_and_counted_never_cut_short():
    """`sample` forced a stop on every word still going when the model's window (the longest training word) was
    full: an n-gram on names.txt gave 8% of its words exactly 15 characters long, truncated, tagged new and
    counted nowhere. They are drawn again and counted, as words longer than --max-len are."""
    from makemore.sample import NoEnd, draw

    vocab = Vocab(list("ab"))
    model = _NeverEndsAfterOne(block_size=6)
    drawn = draw(model, vocab, 200, generator=torch.Generator().manual_seed(0))
    assert len(drawn.words) == 200 and {len(g.word) for g in drawn.words} == {1}
    assert drawn.too_long > 50  # half of the words go on after their first character
    stopped = draw(model, vocab, 200, generator=torch.Generator().manual_seed(0), stop_at_window=True)
    assert {len(g.word) for g in stopped.words} == {1, 5} and stopped.too_long == 0  # the previews' fallback
    with pytest.raises(NoEnd, match="did not end within 5 characters .the longest word"):
        draw(model, vocab, 20, min_len=2, generator=torch.Generator().manual_seed(0))
    # a training run's preview never stops the run: from a model whose words hardly ever end, the words still
    # going end at the window
    from makemore.batches import WordBatches

    words = {name: EncodedWords(["ab", "ba", "aab"], vocab) for name in ("train", "val", "test")}
    preview = WordBatches(words, vocab).samples(model, 7, 1.0, torch.Generator().manual_seed(0), "cpu", n=12)
    assert len(preview.samples) == 12 and {len(s.word) for s in preview.samples} <= {1, 5}
    model.decode = lambda idx, state: (torch.tensor([[float("-inf"), 0.0, 0.0]]).repeat(idx.size(0), 1), state)
    preview = WordBatches(words, vocab).samples(model, 7, 1.0, torch.Generator().manual_seed(0), "cpu", n=12)
    assert [len(s.word) for s in preview.samples] == [5] * 12
