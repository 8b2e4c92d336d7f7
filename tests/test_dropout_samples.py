"""A Transformer that predicts the average of K dropout masks' predictions (``dropout_samples``, Monte Carlo
dropout): what evaluation computes, what sampling draws from, what the trainer reports, and what is refused."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from typer.testing import CliRunner

from makemore.cli import app
from makemore.data import EncodedWords, Vocab
from makemore.models.dropout import masks_from
from makemore.models.transformer import MASK_SEED, Config, Model
from makemore.sample import draw

runner = CliRunner()


def _model(samples: int = 8, dropout: float = 0.5, seed: int = 0) -> Model:
    """A small Transformer whose one pass and mask average differ clearly: large weights, much dropout."""
    torch.manual_seed(seed)
    model = Model(Config(vocab_size=6, block_size=6, n_layer=2, n_head=2, n_embd=16, dropout=dropout,
                         dropout_samples=samples))
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.mul_(8.0)
    return model.eval()


def _average_by_hand(model: Model, x: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """log of the mean of k sets of masks' probabilities, each pass with dropout forced on from ``generator``."""
    probs = torch.zeros(*x.shape, model.config.vocab_size, dtype=torch.float64)
    with torch.inference_mode(), masks_from(generator):
        for _ in range(k):
            probs += model._forward(x, 0, None).view(*x.shape, -1).double().softmax(-1)
    return (probs / k).log()


def test_evaluation_is_the_log_of_the_average_of_k_masks_probabilities():
    model = _model(samples=8)
    x = torch.randint(1, 6, (5, 5))
    with torch.inference_mode():
        logits, _ = model(x)
    expected = _average_by_hand(model, x, 8, torch.Generator().manual_seed(MASK_SEED))
    torch.testing.assert_close(logits.double(), expected, atol=1e-5, rtol=1e-5)
    # they are log-probabilities: the loss of the averaged model is their NLL
    targets = torch.randint(0, 6, (5, 5))
    with torch.inference_mode():
        _, loss = model(x, targets)
    nll = -expected.gather(-1, targets.unsqueeze(-1)).mean()
    assert loss.item() == pytest.approx(nll.item(), rel=1e-5)


def test_evaluation_is_deterministic_and_leaves_the_training_random_numbers_alone():
    model = _model()
    x = torch.randint(1, 6, (4, 5))
    torch.manual_seed(123)
    state = torch.get_rng_state()
    with torch.inference_mode():
        a, _ = model(x)
        b, _ = model(x)
    assert torch.equal(a, b)
    assert torch.equal(torch.get_rng_state(), state)


def test_one_pass_and_training_are_the_model_without_averaging():
    averaging = _model(samples=8)
    plain = Model(dataclasses.replace(averaging.config, dropout_samples=0)).eval()
    plain.load_state_dict(averaging.state_dict())
    x = torch.randint(1, 6, (4, 5))
    with torch.inference_mode():
        averaged, _ = averaging(x)
        with averaging.one_pass():
            once, _ = averaging(x)
        assert averaging.averages_masks()  # restored after the block
        reference, _ = plain(x)
    assert torch.equal(once, reference)
    assert (averaged - reference.log_softmax(-1)).abs().max() > 0.05  # the two predictions differ here
    averaging.train(), plain.train()
    torch.manual_seed(5)
    with torch.no_grad():
        trained_a, _ = averaging(x)
    torch.manual_seed(5)
    with torch.no_grad():
        trained_b, _ = plain(x)
    assert torch.equal(trained_a, trained_b)  # training draws its masks as before


def test_sampling_draws_from_the_averaged_predictions():
    """The first character of 20,000 samples follows the average over masks (estimated with 4,000 of them),
    not the one pass with dropout off, which differs from it by far more than the sampling noise here."""
    model = _model(samples=4, seed=1)
    vocab = Vocab(list("abcde"))
    start = torch.zeros(1, 1, dtype=torch.long)
    averaged = _average_by_hand(model, start, 4000, torch.Generator().manual_seed(9)).exp()[0, 0]
    with torch.inference_mode(), model.one_pass():
        once = model(start)[0].double().softmax(-1)[0, 0]
    # (words still going at the window end there: the first step's draw, not the lengths kept, is tested here)
    drawn = draw(model, vocab, 20_000, allow_empty=True, generator=torch.Generator().manual_seed(0),
                 stop_at_window=True).words
    first = torch.tensor([vocab.encode(g.word[:1])[0] if g.word else 0 for g in drawn])
    freq = torch.bincount(first, minlength=6).double() / len(first)
    noise = 4 * (averaged * (1 - averaged) / len(first)).sqrt() + 0.004  # + the 4,000-mask estimate's error
    assert ((freq - averaged).abs() <= noise).all(), (freq, averaged)
    assert (freq - once).abs().max() > 0.03, (freq, once)


def test_a_sampled_words_logprob_is_the_averaged_models():
    model = _model(samples=4, seed=2)
    vocab = Vocab(list("abcde"))
    for seed in range(3):
        (word,) = draw(model, vocab, 1, generator=torch.Generator().manual_seed(seed)).words
        # scored as evaluation scores it: the average over the masks, on a packed row (the model's window)
        x, y, pos = EncodedWords([word.word], vocab).packed_batch(torch.arange(1), model.config.block_size)
        with torch.inference_mode():
            logp = model(x, pos=pos)[0].double().log_softmax(-1)
        expected = (logp.gather(-1, y.clamp(min=0).unsqueeze(-1)).squeeze(-1) * (y != -1)).sum().item()
        assert word.logprob == pytest.approx(expected, abs=1e-4)


def test_sampling_is_reproducible_from_its_seed():
    model = _model(samples=4, seed=3)
    vocab = Vocab(list("abcde"))

    def words(seed):
        return [g.word for g in draw(model, vocab, 50, generator=torch.Generator().manual_seed(seed)).words]

    assert words(1) == words(1)
    assert words(1) != words(2)


def test_settings_that_cannot_average_are_refused():
    with pytest.raises(ValueError, match="train with dropout"):
        Model(Config(vocab_size=6, block_size=6, n_layer=1, n_head=1, n_embd=8, dropout=0.0, dropout_samples=4))
    with pytest.raises(ValueError, match="between 0 and 1024"):
        Model(Config(vocab_size=6, block_size=6, n_layer=1, n_head=1, n_embd=8, dropout=0.2, dropout_samples=2000))


@pytest.mark.parametrize("args, message", [
    (["--dropout-samples", "4"], "train with dropout"),
    (["--dropout", "0.1", "--dropout-samples", "4", "--mode", "text"], "applies to word lists"),
    (["--type", "mlp", "--dropout-samples", "4"], "does not apply to --type mlp"),
])
def test_the_command_line_refuses_them_in_one_line(small_words, tmp_path, args, message):
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", str(small_words), "--max-steps", "2", "-o", str(out), *args])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not out.exists()


def test_the_trainer_chooses_by_one_pass_and_reports_the_averaged_test_loss(small_words, tmp_path):
    from makemore.evaluation import evaluate
    from makemore.rundir import RunDir
    from makemore.training import Request, new_trainer

    out = tmp_path / "run"
    trainer, _ = new_trainer(Request(
        data=str(small_words), model_type="transformer", out=out,
        hyper={"n_layer": 1, "n_head": 2, "n_embd": 16, "dropout": 0.3, "dropout_samples": 3},
        train={"max_steps": 20, "eval_interval": 10, "batch_size": 8, "learning_rate": 1e-2, "warmup_steps": 0,
               "ema": 0.0}))
    events = list(trainer.run())
    evals = [e for e in events if e.kind == "eval"]
    finished = events[-1]
    assert finished.kind == "finished" and finished.test_loss_one_pass is not None
    loaded = RunDir(out).load_model("best")
    test = EncodedWords(loaded.split["test"], loaded.vocab)
    val = EncodedWords(loaded.split["val"], loaded.vocab)
    assert finished.test_loss == pytest.approx(evaluate(loaded.model, test), rel=1e-6)
    with loaded.model.one_pass():
        assert finished.test_loss_one_pass == pytest.approx(evaluate(loaded.model, test), rel=1e-6)
        best_val = min(e.val_loss for e in evals)
        assert evaluate(loaded.model, val) == pytest.approx(best_val, rel=1e-6)
    assert finished.test_loss != pytest.approx(finished.test_loss_one_pass, rel=1e-6)
    assert math.isfinite(finished.test_loss)


def test_without_scores_the_same_words_come_unscored():
    model = _model(samples=4, seed=4)
    vocab = Vocab(list("abcde"))
    scored = draw(model, vocab, 30, generator=torch.Generator().manual_seed(6)).words
    plain = draw(model, vocab, 30, generator=torch.Generator().manual_seed(6), scores=False).words
    assert [g.word for g in plain] == [g.word for g in scored]
    assert all(math.isnan(g.logprob) for g in plain) and all(math.isfinite(g.logprob) for g in scored)


def test_dropout_turned_off_under_a_time_budget_drops_the_budgets_mask_averaging():
    """`--max-time 300 --dropout 0` was refused for --dropout-samples, an option the user never gave: the budget's
    model averages 64 masks of its dropout, which the user's --dropout 0 turns off. A --dropout-samples given with
    it is still refused."""
    from makemore.errors import MakemoreError
    from makemore.training import Request, check_request

    def hyper(**given):
        request = Request(data="names", model_type="transformer", hyper=given, train={"max_time": 300}, seed=42,
                          device="cpu")
        return check_request(request)[0]

    assert hyper()["dropout_samples"] > 0 and hyper()["dropout"] > 0  # the budget's model, as it is
    assert (hyper(dropout=0)["dropout"], hyper(dropout=0)["dropout_samples"]) == (0, 0)
    with pytest.raises(MakemoreError, match="--dropout-samples averages the predictions of dropout masks"):
        hyper(dropout=0, dropout_samples=8)
