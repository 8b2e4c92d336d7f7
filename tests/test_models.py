"""Every model family behind the one interface: parametrized over the registry, so a new family is covered at once.

Plus the checks particular to a family: the n-gram against counts made here by hand, the neural bigram against
the counted one, batch norm in eval and train mode, the bag-of-words against the reference's masked softmax,
the recurrent models' carried state.
"""

from __future__ import annotations

import math
from collections import Counter

import pytest
import torch
import torch.nn.functional as F

from makemore import checkpoint as ckpt
from makemore import rundir
from makemore.data import EncodedWords, Vocab, read_words
from makemore.errors import MakemoreError
from makemore.models import FAMILIES, get_family
from makemore.models.base import LanguageModel, context_windows, real_positions
from makemore.models import build_model, load_weights, model_hyper
from makemore.sample import generate

WORDS = ["emma", "olivia", "ava", "isabella", "sophia", "mia", "amelia", "harper", "evelyn", "abigail",
         "emily", "ella", "elizabeth", "camila", "luna", "sofia", "avery", "mila", "aria", "scarlett",
         "penelope", "layla", "chloe", "victoria", "madison", "eleanor", "grace", "nora", "riley", "zoey"]
VOCAB = Vocab.from_words(WORDS)
V = len(VOCAB)
DATA = EncodedWords(WORDS, VOCAB)
BLOCK = max(map(len, WORDS)) + 1
TYPES = list(FAMILIES)
# without dropout, so that train mode is deterministic and differs from eval mode through batch norm alone
BATCHNORM = [("mlp", {"batchnorm": True}), ("wavenet", {"dropout": 0.0})]


# smaller than the defaults where that keeps the tests fast; any other family is tested at its defaults
SMALL = {"transformer": {"n_layer": 2, "n_embd": 32}, "wavenet": {"n_embd": 16, "n_embd2": 48},
         "rnn": {"n_embd2": 48}, "gru": {"n_embd2": 48}, "lstm": {"n_embd2": 48}}


def make(model_type: str, seed: int = 0, **hyper) -> LanguageModel:
    torch.manual_seed(seed)
    return build_model(model_type, V, BLOCK, {**get_family(model_type).hyper, **SMALL.get(model_type, {}), **hyper})


def batch(words: list[str] = WORDS) -> tuple[torch.Tensor, torch.Tensor]:
    data = EncodedWords(words, VOCAB)
    return data.batch(torch.arange(len(words)))


def train(model: LanguageModel, steps: int = 30, lr: float = 1e-2) -> list[float]:
    """A short run on the whole word list; returns the losses (a fit for count models)."""
    x, y = batch()
    if not model.trainable:
        before = model(x, y)[1].item()
        model.fit(x, y)
        return [before, model(x, y)[1].item()]
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    losses = []
    for _ in range(steps):
        _, loss = model(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


# --- the interface, for every family ------------------------------------------------------------------

@pytest.mark.parametrize("model_type", TYPES)
def test_shapes(model_type):
    model = make(model_type)
    x, y = batch()
    logits, loss = model(x, y)
    assert logits.shape == (len(WORDS), x.size(1), V)
    assert loss.shape == () and math.isfinite(loss.item())
    assert model(x)[1] is None


@pytest.mark.parametrize("model_type", TYPES)
def test_initial_loss_is_near_uniform(model_type):
    x, y = batch()
    _, loss = make(model_type)(x, y)
    assert abs(loss.item() - math.log(V)) < 0.05, "an untrained model should be about uniform over the vocabulary"


@pytest.mark.parametrize("model_type", TYPES)
def test_loss_falls(model_type):
    losses = train(make(model_type))
    assert losses[-1] < losses[0] - 0.25


@pytest.mark.parametrize("model_type", TYPES)
def test_seeded_sampling_is_deterministic(model_type):
    model = make(model_type)
    train(model, steps=5)

    def draw(seed):
        return [g.word for g in generate(model, VOCAB, 10, generator=torch.Generator().manual_seed(seed))]

    assert draw(1) == draw(1)
    assert draw(1) != draw(2)
    assert len(generate(model, VOCAB, 1, generator=torch.Generator().manual_seed(0))) == 1  # one-sample batch


@pytest.mark.parametrize("model_type", TYPES)
def test_incremental_decode_matches_full_forward(model_type):
    model = make(model_type)
    train(model, steps=5)
    model.eval()
    x, y = batch()
    with torch.no_grad():
        full, _ = model(x)
        real = y != -1  # positions whose next token is scored
        # the first call takes several tokens at once (the start token and a prefix), as sampling does
        logits, state = model.decode(x[:, :3], model.init_state(len(WORDS), x.device))
        torch.testing.assert_close(logits[real[:, 2]], full[:, 2][real[:, 2]], rtol=1e-5, atol=1e-5)
        for t in range(3, x.size(1)):
            logits, state = model.decode(x[:, t : t + 1], state)
            torch.testing.assert_close(logits[real[:, t]], full[:, t][real[:, t]], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("model_type", TYPES)
def test_checkpoint_round_trip(model_type, tmp_path):
    model = make(model_type)
    train(model, steps=5)
    path = tmp_path / rundir.BEST
    ckpt.save_tensors(path, model.state_dict(), {"type": model_type})
    tensors, meta = ckpt.load_tensors(path)
    loaded = make(model_type, seed=1)
    load_weights(loaded, tensors, path)
    assert meta["type"] == model_type
    x, _ = batch()
    model.eval(), loaded.eval()
    with torch.no_grad():
        assert torch.equal(model(x)[0], loaded(x)[0])


@pytest.mark.parametrize("model_type", TYPES)
def test_bigram_table_is_a_distribution_per_row(model_type):
    model = make(model_type)
    train(model, steps=5)
    table = model.bigram_table()
    assert table.shape == (V, V)
    assert (table >= 0).all()
    torch.testing.assert_close(table.sum(1), torch.ones(V), rtol=0, atol=1e-5)
    # the definition, one forward pass per row: row c is the next-character distribution after <start> c,
    # row 0 the one after <start> alone
    model.eval()
    with torch.no_grad():
        expected = [model(torch.tensor([[0]]))[0][0, 0].softmax(-1)]
        expected += [model(torch.tensor([[0, c]]))[0][0, 1].softmax(-1) for c in range(1, V)]
    torch.testing.assert_close(table, torch.stack(expected), rtol=1e-5, atol=1e-6)


# --- fixed windows ----------------------------------------------------------------------------------

def test_windows_are_left_padded_with_the_start_token():
    x, _ = batch(["emma"])
    windows = context_windows(x, 3)[0]  # (T, 3)
    shown = ["".join(VOCAB.itos[i] for i in w) for w in windows.tolist()]
    assert shown == ["...", "..e", ".em", "emm", "mma"]  # the lectures' examples for "emma"


def test_real_positions_exclude_padding():
    x, y = batch(["ava", "mia", "isabella"])
    assert torch.equal(real_positions(x), y != -1)


@pytest.mark.parametrize("model_type, context", [("ngram", 0), ("mlp", 0), ("wavenet", 6)])
def test_window_models_refuse_a_bad_context(model_type, context):
    with pytest.raises(MakemoreError, match="context"):
        build_model(model_type, V, BLOCK, {**get_family(model_type).hyper, "context": context})


# --- batch norm ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("model_type, hyper", BATCHNORM)
def test_batchnorm_eval_uses_running_statistics(model_type, hyper):
    model = make(model_type, **hyper)
    train(model, steps=10)
    b, c = ["olivia", "isabella", "mia"], ["olivia", "zoey", "grace", "nora"]
    n = len("olivia") + 1
    model.eval()
    with torch.no_grad():
        in_b, in_c = model(batch(b)[0])[0][0, :n], model(batch(c)[0])[0][0, :n]
        alone = model(batch(["olivia"])[0])[0][0, :n]
    torch.testing.assert_close(in_b, in_c, rtol=1e-5, atol=1e-5)  # the same word, whatever its batch
    torch.testing.assert_close(alone, in_c, rtol=1e-5, atol=1e-5)  # one-sample batches too
    model.train()
    with torch.no_grad():
        train_b, train_c = model(batch(b)[0])[0][0, :n], model(batch(c)[0])[0][0, :n]
    assert not torch.allclose(train_b, in_b, atol=1e-3), "train mode normalises with batch statistics"
    assert not torch.allclose(train_b, train_c, atol=1e-3), "...which depend on the rest of the batch"


@pytest.mark.parametrize("model_type, hyper", BATCHNORM)
def test_batchnorm_statistics_ignore_padding(model_type, hyper):
    model = make(model_type, **hyper)
    model.train()
    x, y = batch(["ava", "olivia", "mia"])
    padded = F.pad(x, (0, 6))  # six more padding positions after every word
    with torch.no_grad():
        short, long = model(x)[0], model(padded)[0]
    real = y != -1
    torch.testing.assert_close(short[real], long[:, : x.size(1)][real], rtol=1e-5, atol=1e-5)


# --- n-gram -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("context", [1, 2])
def test_ngram_probabilities_are_the_normalised_smoothed_counts(context):
    smoothing = 0.5
    model = make("ngram", context=context, smoothing=smoothing)
    x, y = batch()
    model.fit(x, y)
    counts = Counter()  # counted by hand: (window, next) over ".." + word + "."
    for word in WORDS:
        ids = [0] * context + VOCAB.encode(word) + [0]
        for i in range(context, len(ids)):
            counts[tuple(ids[i - context : i]), ids[i]] += 1
    windows = torch.cartesian_prod(*[torch.arange(V)] * context).view(-1, context)  # every window, in order
    expected = torch.zeros(len(windows), V, dtype=torch.float64)
    for r, w in enumerate(windows.tolist()):
        row = [counts[tuple(w), j] + smoothing for j in range(V)]
        expected[r] = torch.tensor(row, dtype=torch.float64) / sum(row)
    torch.testing.assert_close(model.probs(), expected, rtol=1e-15, atol=0)
    # the forward pass scores with exactly these probabilities
    logits, _ = model(x)
    real = real_positions(x)
    rows = (context_windows(x, context) * V ** torch.arange(context - 1, -1, -1)).sum(-1)
    torch.testing.assert_close(logits[real].softmax(-1).double(), expected[rows[real]], rtol=1e-5, atol=1e-7)
    assert model.num_params() == V ** (context + 1)


def test_ngram_samples_from_its_table():
    model = make("ngram", context=1, smoothing=1e-6)  # almost no smoothing: only bigrams seen in training
    model.fit(*batch())
    seen = {(a, b) for w in WORDS for a, b in zip("." + w, w + ".")}
    for g in generate(model, VOCAB, 50, generator=torch.Generator().manual_seed(0)):
        ended = len(g.word) < BLOCK - 1  # else sampling stopped it at the longest length
        assert all(pair in seen for pair in zip("." + g.word, g.word + ("." if ended else "")))


def test_ngram_refuses_zero_smoothing_and_a_huge_table():
    with pytest.raises(MakemoreError, match="smoothing"):
        build_model("ngram", V, BLOCK, {"context": 1, "smoothing": 0.0})
    with pytest.raises(MakemoreError, match="context"):
        build_model("ngram", V, BLOCK, {"context": 8, "smoothing": 1.0})


def test_neural_bigram_learns_the_counted_table(names_path):
    words = read_words(names_path).words[:3000]
    vocab = Vocab.from_words(words)
    x, y = EncodedWords(words, vocab).batch(torch.arange(len(words)))
    torch.manual_seed(0)
    counted = build_model("ngram", len(vocab), 20, {"context": 1, "smoothing": 0.1})
    counted.fit(x, y)
    neural = build_model("bigram", len(vocab), 20, {})
    opt = torch.optim.Adam(neural.parameters(), lr=0.3)
    # how far each row is from the counted one (total variation), weighted by how often the row is used
    weight = counted.counts.sum(1).double() / counted.counts.sum()

    def distance():
        return float((weight * 0.5 * (neural.bigram_table().double() - counted.bigram_table().double())
                      .abs().sum(1)).sum())

    start = distance()
    for _ in range(100):  # full-batch steps
        _, loss = neural(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert start > 0.3
    assert distance() < 0.02


# --- recurrent models ------------------------------------------------------------------------------

@pytest.mark.parametrize("model_type", ["rnn", "gru", "lstm"])
def test_recurrent_decode_carries_the_hidden_state(model_type):
    model = make(model_type).eval()
    state = model.init_state(2, torch.device("cpu"))
    for _ in range(3):
        _, state = model.decode(torch.tensor([[0], [1]]), state)
    h = state[0] if model_type == "lstm" else state
    assert h.shape == (model.config.n_layer, 2, model.config.n_embd2)  # a state of fixed size, not the prefix


def test_recurrent_cells_are_the_named_ones():
    assert make("rnn").rnn.mode == "RNN_TANH"
    assert make("gru").rnn.mode == "GRU"
    assert make("lstm").rnn.mode == "LSTM"


# --- bag of words ----------------------------------------------------------------------------------

def test_bow_equals_the_reference_masked_softmax():
    model = make("bow")
    train(model, steps=5)
    x, _ = batch()
    B, T = x.shape
    with torch.no_grad():
        h = model.wte(x) + model.wpe(torch.arange(T))
        att = torch.zeros(B, T, T).masked_fill(torch.tril(torch.ones(T, T)) == 0, float("-inf")).softmax(-1)
        h = h + att @ h
        h = h + model.c_proj(torch.tanh(model.c_fc(h)))
        torch.testing.assert_close(model(x)[0], model.lm_head(h), rtol=1e-5, atol=1e-5)


# --- options ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("model_type, option", [("bigram", "n_embd"), ("ngram", "n_layer"), ("mlp", "n_head"),
                                                ("lstm", "context"), ("bow", "batchnorm")])
def test_options_a_family_does_not_take_are_refused(model_type, option):
    with pytest.raises(MakemoreError, match="does not apply"):
        model_hyper(model_type, {option: 2})


def test_an_ngram_too_large_for_its_vocabulary_is_refused_with_the_power_it_needs():
    from makemore.models import build_model

    with pytest.raises(MakemoreError, match=r"over 27 symbols needs a table of 27\^7 = 10,460,353,203 counts"):
        build_model("ngram", 27, 16, {"context": 6, "smoothing": 0.1})
    with pytest.raises(MakemoreError, match=r"over 27 symbols needs a table of 27\^21 counts \(at most"):
        build_model("ngram", 27, 16, {"context": 20, "smoothing": 0.1})  # no 30-digit number
    # the way out is named: the longest context that fits (27^5 = 14,348,907 counts; 27^6 would not), or none
    with pytest.raises(MakemoreError, match=r"; --context 4 fits$"):
        build_model("ngram", 27, 16, {"context": 6, "smoothing": 0.1})
    with pytest.raises(MakemoreError, match=r"not even a bigram fits: a vocabulary of at most 7,071 symbols"):
        build_model("ngram", 50_304, 16, {"context": 1, "smoothing": 0.1})  # GPT-2's tokens
