"""The Transformer against hand-written references: masked-softmax attention, KV-cache decoding."""

from __future__ import annotations

import math

import pytest
import torch

from makemore.models.transformer import CausalSelfAttention, Config, Model
from makemore.sample import generate
from makemore.data import Vocab


def make(vocab_size=27, block_size=12, n_layer=2, n_head=4, n_embd=32, seed=0) -> Model:
    torch.manual_seed(seed)
    return Model(Config(vocab_size=vocab_size, block_size=block_size, n_layer=n_layer, n_head=n_head,
                        n_embd=n_embd, dropout=0.0)).eval()


def test_attention_equals_masked_softmax_reference():
    torch.manual_seed(0)
    cfg = Config(vocab_size=5, block_size=8, n_layer=1, n_head=2, n_embd=8, dropout=0.0)
    attn = CausalSelfAttention(cfg).eval()
    x = torch.randn(3, 6, 8)
    B, T, C = x.shape
    q, k, v = attn.c_attn(x).split(C, dim=2)
    heads = lambda t: t.view(B, T, 2, C // 2).transpose(1, 2)
    q, k, v = heads(q), heads(k), heads(v)
    att = (q @ k.transpose(-2, -1)) / math.sqrt(C // 2)
    att = att.masked_fill(torch.tril(torch.ones(T, T)) == 0, float("-inf")).softmax(-1)
    expected = attn.c_proj((att @ v).transpose(1, 2).reshape(B, T, C))
    torch.testing.assert_close(attn(x), expected, atol=1e-6, rtol=1e-5)


def test_causality_future_tokens_do_not_change_past_logits():
    model = make()
    idx = torch.randint(0, 27, (2, 10))
    changed = idx.clone()
    changed[:, 6:] = (changed[:, 6:] + 1) % 27
    a, _ = model(idx)
    b, _ = model(changed)
    torch.testing.assert_close(a[:, :6], b[:, :6])
    assert not torch.allclose(a[:, 6:], b[:, 6:])


def test_kv_cache_decoding_equals_full_recomputation():
    model = make()
    idx = torch.randint(1, 27, (4, 11))
    idx[:, 0] = 0
    full, _ = model(idx)
    state = model.init_state(4, torch.device("cpu"))
    # a 3-token prefix at once (several queries over the cache), then one token at a time
    logits, state = model.decode(idx[:, :3], state)
    torch.testing.assert_close(logits, full[:, 2], atol=1e-5, rtol=1e-4)
    for t in range(3, 11):
        logits, state = model.decode(idx[:, t:t + 1], state)
        torch.testing.assert_close(logits, full[:, t], atol=1e-5, rtol=1e-4)


def test_cached_sampling_equals_sampling_by_recomputation():
    from makemore.models.base import LanguageModel

    model = make()
    vocab = Vocab(list("abcdefghijklmnopqrstuvwxyz"))
    cached = generate(model, vocab, 50, generator=torch.Generator().manual_seed(3), prefix="a")

    class Recompute(Model):  # the base class's decode: the whole prefix again at every step
        init_state = LanguageModel.init_state
        decode = LanguageModel.decode

    slow = Recompute(model.config).eval()
    slow.load_state_dict(model.state_dict())
    recomputed = generate(slow, vocab, 50, generator=torch.Generator().manual_seed(3), prefix="a")
    assert [g.word for g in cached] == [g.word for g in recomputed]
    for a, b in zip(cached, recomputed):
        assert math.isclose(a.logprob, b.logprob, rel_tol=1e-4, abs_tol=1e-4)
    assert all(g.word.startswith("a") for g in cached)


def test_packed_rows_give_the_loss_and_gradients_of_padded_rows():
    """Several words to a row, each attending only to itself from position 0: the same loss, the same gradient."""
    from makemore.data import EncodedWords

    torch.manual_seed(0)
    words = ["".join(chr(97 + int(c)) for c in torch.randint(0, 26, (int(n),))) for n in torch.randint(1, 12, (40,))]
    vocab = Vocab.from_words(words)
    enc = EncodedWords(words, vocab)
    model = make(vocab_size=len(vocab), block_size=12).train()
    index = torch.randint(0, len(words), (24,))
    grads = []
    for packed in (False, True):
        model.zero_grad()
        if packed:
            x, y, pos = enc.packed_batch(index, row_len=12)
            assert x.numel() < enc.batch(index)[0].numel()  # fewer slots than padding each word to the longest
            _, loss = model(x, y, pos=pos)
        else:
            x, y = enc.batch(index)
            _, loss = model(x, y)
        loss.backward()
        grads.append((loss.detach(), [p.grad.clone() for p in model.parameters()]))
    torch.testing.assert_close(grads[0][0], grads[1][0], atol=1e-6, rtol=1e-6)
    for a, b in zip(grads[0][1], grads[1][1]):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def test_evaluation_scores_packed_rows_as_padded_ones_and_averaged_masks_on_packed_rows_too(monkeypatch):
    """evaluate() scores a packing model on packed rows (about half the positions of one padded row per word):
    the loss of the padded rows, to float rounding. A model averaging dropout masks is scored on packed rows
    too: the same ensemble (each position's masks drawn alike wherever it sits), so its loss is the padded rows'
    to within the noise of the masks drawn, and the same at every call."""
    import dataclasses

    from makemore.data import EncodedWords
    from makemore.evaluation import evaluate, mean_nll

    torch.manual_seed(0)
    words = ["".join(chr(97 + int(c)) for c in torch.randint(0, 26, (int(n),))) for n in torch.randint(1, 12, (700,))]
    vocab = Vocab.from_words(words)
    enc = EncodedWords(words, vocab)
    packed_calls = []
    monkeypatch.setattr(EncodedWords, "packed_batch", lambda self, *a, _f=EncodedWords.packed_batch, **k:
                        packed_calls.append(len(a[0])) or _f(self, *a, **k))
    model = make(vocab_size=len(vocab), block_size=12).train()
    padded = mean_nll(model, enc.iter_batches(512))
    assert evaluate(model, enc) == pytest.approx(padded, rel=1e-6, abs=0)
    assert packed_calls == [512, 188] and model.training  # every word, 512 at a time; the mode given back
    packed_calls.clear()
    averaging = Model(dataclasses.replace(model.config, dropout=0.5, dropout_samples=48))
    averaging.load_state_dict(model.state_dict())
    averaging.train()
    torch.manual_seed(1)
    packed_loss = evaluate(averaging, enc)
    assert packed_calls == [512, 188] and averaging.training
    assert evaluate(averaging, enc) == packed_loss  # the masks are seeded alike at every call
    padded_loss = mean_nll(averaging, enc.iter_batches(512))
    with averaging.one_pass():  # the trainer's periodic losses: one pass, dropout off, packed
        assert evaluate(averaging, enc) == pytest.approx(padded, rel=1e-6, abs=0)
    # other masks (drawn over other shapes), the same ensemble: the two averages agree to the masks' noise,
    # far closer than either is to the one pass with dropout off
    assert packed_loss != padded_loss
    assert abs(packed_loss - padded_loss) < 0.1 * abs(padded_loss - padded)
    packed_calls.clear()
    short = make(vocab_size=len(vocab), block_size=8)  # words that do not fit its rows: padded rows, as before
    with pytest.raises(ValueError, match="exceeds block_size"):
        evaluate(short, enc)
    assert packed_calls == []


def test_word_scores_on_packed_rows_are_the_padded_rows_scores():
    """word_nll() scores a packing model's words on packed rows: each word's own loss, the padded rows' to float
    rounding, in the order given; their mean weighted by length is evaluate()'s loss. So does word_logprobs()
    with a prefix left unscored."""
    from makemore.data import EncodedWords
    from makemore.evaluation import evaluate, word_logprobs, word_nll

    torch.manual_seed(0)
    words = ["".join(chr(97 + int(c)) for c in torch.randint(0, 26, (int(n),))) for n in torch.randint(1, 12, (600,))]
    vocab = Vocab.from_words(words)
    enc = EncodedWords(words, vocab)
    model = make(vocab_size=len(vocab), block_size=12)
    packed = word_nll(model, enc)
    model.packs = False  # the same weights scored one padded row per word
    padded = word_nll(model, enc)
    assert len(packed) == len(words)
    assert packed == pytest.approx(padded, rel=1e-5, abs=1e-6)
    sizes = [len(w) + 1 for w in words]
    assert sum(n * s for n, s in zip(packed, sizes)) / sum(sizes) == pytest.approx(evaluate(model, enc), rel=1e-6)
    # a prefix's targets not counted (a sampled word's score after --prefix), packed as padded
    padded_after = word_logprobs(model, enc, skip=2)
    del model.packs
    packed_after = word_logprobs(model, enc, skip=2)
    assert packed_after.tolist() == pytest.approx(padded_after.tolist(), rel=1e-5, abs=1e-5)
    whole = word_logprobs(model, enc)
    assert all(a > w for a, w, n in zip(packed_after, whole, sizes) if n > 2)  # fewer targets, less improbable
    assert all(a == 0 for a, n in zip(packed_after, sizes) if n <= 2)  # nothing left to score


def test_initial_loss_is_close_to_uniform():
    model = make(n_layer=4, n_embd=64).train()
    idx = torch.randint(0, 27, (64, 12))
    _, loss = model(idx, torch.randint(0, 27, (64, 12)))
    assert abs(loss.item() - math.log(27)) < 0.05


def test_residual_projections_are_scaled():
    model = make(n_layer=4, n_embd=64)
    std = model.h[0].attn.c_proj.weight.std().item()
    assert abs(std - 0.02 / math.sqrt(8)) < 0.002
    assert abs(model.h[0].mlp.c_fc.weight.std().item() - 0.02) < 0.002
