"""The CPU dropout (makemore.models.dropout): torch's dropout in distribution, with a cheaper mask."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from makemore.models.dropout import Dropout, dropout, keep_mask
from makemore.models.transformer import Config, Model, attention


@pytest.mark.parametrize("p", [0.1, 0.25, 0.5, 0.9])
def test_the_mask_drops_at_the_rate_asked_and_keeps_the_expected_sum(p):
    torch.manual_seed(0)
    n = 1 << 20
    mask = keep_mask((n,), p, torch.float32)
    dropped = (mask == 0).double().mean().item()
    # four standard errors of a fraction of n draws, plus the rounding of p to 1/65,536
    assert abs(dropped - p) < 4 * (p * (1 - p) / n) ** 0.5 + 2 ** -16
    kept = mask[mask != 0]
    assert torch.equal(kept, torch.full_like(kept, kept[0].item()))
    assert kept[0].item() == pytest.approx(1 / (1 - p), rel=1e-4)
    assert mask.double().mean().item() == pytest.approx(1.0, abs=0.01)


def test_every_part_of_a_random_word_is_uniform():
    """Each 64-bit draw gives four elements their numbers: each of the four must drop at the same rate (a
    draw over a signed range that leaves the top bit 0 would keep every fourth element)."""
    torch.manual_seed(1)
    mask = keep_mask((1 << 20,), 0.5, torch.float32).view(-1, 4)
    for lane in (mask == 0).double().mean(0).tolist():
        assert lane == pytest.approx(0.5, abs=0.005)
    neighbours = (mask.reshape(-1) == 0).double()
    assert abs(torch.corrcoef(torch.stack([neighbours[:-1], neighbours[1:]]))[0, 1].item()) < 0.01


def test_the_seed_reproduces_the_mask():
    torch.manual_seed(7)
    a = keep_mask((64, 33), 0.3, torch.float32)
    torch.manual_seed(7)
    b = keep_mask((64, 33), 0.3, torch.float32)
    torch.manual_seed(8)
    c = keep_mask((64, 33), 0.3, torch.float32)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == (64, 33)


def test_dropout_is_the_identity_in_evaluation_and_at_zero():
    x = torch.randn(5, 7)
    assert dropout(x, 0.3, training=False) is x
    assert dropout(x, 0.0, training=True) is x
    module = Dropout(0.3).eval()
    assert module(x) is x
    with pytest.raises(ValueError):
        Dropout(1.5)


def test_dropout_scales_what_it_keeps_and_its_gradient_is_the_mask():
    torch.manual_seed(3)
    x = torch.randn(300, 40, requires_grad=True)
    y = dropout(x, 0.25, training=True)
    kept = y != 0
    assert 0.2 < 1 - kept.double().mean().item() < 0.3
    torch.testing.assert_close(y[kept], x.detach()[kept] / 0.75)
    y.sum().backward()
    torch.testing.assert_close(x.grad, kept.float() / 0.75)


def test_dropout_keeps_the_dtype():
    torch.manual_seed(4)
    x = torch.randn(16, 16, dtype=torch.bfloat16)
    assert dropout(x, 0.5, training=True).dtype == torch.bfloat16
    # p = 1 drops everything, as torch's does; p too close to 0 or 1 for 16 bits is torch's dropout
    assert torch.equal(dropout(torch.ones(3, 3), 1.0, training=True), torch.zeros(3, 3))
    assert torch.equal(dropout(torch.ones(3, 3), 1 - 1e-7, training=True), torch.zeros(3, 3))
    torch.testing.assert_close(dropout(torch.ones(3, 3), 1e-7, training=True), torch.ones(3, 3))


def qkv(B=3, nh=2, T=6, hs=4):
    torch.manual_seed(5)
    return (torch.randn(B, nh, T, hs) for _ in range(3))


def test_attention_without_dropout_equals_torchs_kernel():
    q, k, v = qkv()
    torch.testing.assert_close(attention(q, k, v, None, 0.0), F.scaled_dot_product_attention(q, k, v, is_causal=True))
    # a packed row's mask: two words, of 2 and 4 positions
    pos = torch.tensor([0, 1, 0, 1, 2, 3])
    j = torch.arange(6)
    mask = ((j[:, None] >= j[None, :]) & (j[None, :] >= (j - pos)[:, None]))[None, None]
    torch.testing.assert_close(attention(q, k, v, mask, 0.0), F.scaled_dot_product_attention(q, k, v, attn_mask=mask))


def test_attention_with_dropout_drops_attention_weights_and_is_right_on_average():
    q, k, v = qkv(B=1)
    exact = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.manual_seed(6)
    draws = torch.stack([attention(q, k, v, None, 0.5) for _ in range(4000)])
    assert not torch.allclose(draws[0], exact)
    torch.testing.assert_close(draws.mean(0), exact, atol=0.05, rtol=0)
    # the first position attends to itself alone: kept, its value doubled; dropped, nothing
    first = draws[:, 0, :, 0]  # (draws, heads, hs)
    values = v[0, :, 0]  # (heads, hs)
    for head in range(first.size(1)):
        kept = torch.isclose(first[:, head], 2 * values[head]).all(-1)
        dropped = (first[:, head] == 0).all(-1)
        assert (kept | dropped).all() and 0.45 < kept.double().mean().item() < 0.55


def test_a_transformer_with_dropout_draws_new_masks_in_training_and_none_in_evaluation():
    torch.manual_seed(0)
    model = Model(Config(vocab_size=7, block_size=8, n_layer=2, n_head=2, n_embd=16, dropout=0.3))
    idx = torch.randint(0, 7, (4, 8))
    model.train()
    a, _ = model(idx)
    b, _ = model(idx)
    assert not torch.allclose(a, b)
    model.eval()
    c, _ = model(idx)
    d, _ = model(idx)
    assert torch.equal(c, d)
