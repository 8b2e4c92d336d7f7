"""Batched sampling for every family: each word's log-probability equals what a full forward pass gives it,
which holds only if every row kept its own decoding state while finished words left the batch."""

from __future__ import annotations

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
        with torch.no_grad():  # peaked distributions, so that a row given another row's state would show
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.3)
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
