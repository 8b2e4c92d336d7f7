"""The lectures' instruments: statistics against hand computations, the lectures' experiments replayed
(--init-scale, learning rates), the initial-loss warning, lr-find, diagnose, runs and compare, and the TUI screen."""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from makemore.cli import app
from makemore.diagnostics import (GELU_FLAT, HIST_BINS, Recorder, activation_stats, hidden_weights,
                                  initial_loss_event, project_2d, watch_points)
from makemore.events import (GRAD_BINS, GRAD_SPAN, Diagnostics, InitialLoss, LayerStats, Started, Step, WeightStats,
                             event_from_json)

runner = CliRunner()


def metrics(run: Path) -> list[dict]:
    from makemore.rundir import RunDir

    return list(RunDir(run).metrics())


# --- every statistic against a hand computation -------------------------------------------------------

def hand_model():
    """The MLP with vocabulary 3, context 1, 2-wide embeddings and 3 tanh units, every weight set by hand."""
    from makemore.models.mlp import Config, Model

    model = Model(Config(vocab_size=3, block_size=4, context=1, n_embd=2, n_embd2=3, batchnorm=False))
    with torch.no_grad():
        model.wte.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, -1.0], [2.0, 0.5]]))
        model.fc.weight.copy_(torch.tensor([[3.0, 0.0], [0.0, -4.0], [0.5, 0.5]]))
        model.fc.bias.copy_(torch.tensor([0.0, 5.0, 0.0]))  # unit 1 is saturated for every token: dead
        model.lm_head.weight.copy_(torch.tensor([[0.1, -0.2, 0.3], [0.0, 0.4, -0.5], [-0.3, 0.2, 0.1]]))
        model.lm_head.bias.zero_()
    return model


def hand_hist(values: list[float], lo: float, hi: float, bins: int = HIST_BINS) -> list[float]:
    counts = [0] * bins
    for v in values:
        v = min(max(v, lo), hi)
        counts[min(bins - 1, int((v - lo) / (hi - lo) * bins))] += 1
    return [c / len(values) for c in counts]


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values)


def test_every_statistic_equals_a_hand_computation():
    model = hand_model()
    idx = torch.tensor([[0, 1, 2, 1]])  # windows of one token: the start token, a, b, a
    targets = torch.tensor([[1, 2, 1, 0]])
    lr, wd, eps = 0.1, 0.5, 1e-8
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=lr, betas=(0.9, 0.99), eps=eps)
    rec = Recorder(model, "mlp", interval=1)
    with rec.watch():
        _, loss = model(idx, targets)
    loss.backward()
    rec.gradients()
    norm = torch.nn.utils.clip_grad_norm_(list(model.parameters()), 1e9)
    rec.before_update()
    old = {n: p.detach().clone() for n, p in model.named_parameters()}
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
    opt.step()
    event = rec.finish(step=0, lr=lr, grad_norm=norm)
    layers = {layer.name: layer for layer in event.layers}
    assert list(layers) == ["fc", "tanh", "lm_head"]

    # forward by hand, in plain Python
    E = [[0.0, 0.0], [1.0, -1.0], [2.0, 0.5]]
    W1, b1 = [[3.0, 0.0], [0.0, -4.0], [0.5, 0.5]], [0.0, 5.0, 0.0]
    W2 = [[0.1, -0.2, 0.3], [0.0, 0.4, -0.5], [-0.3, 0.2, 0.1]]
    tokens, ys = [0, 1, 2, 1], [1, 2, 1, 0]
    pre = [[sum(W1[j][k] * E[t][k] for k in range(2)) + b1[j] for j in range(3)] for t in tokens]
    h = [[math.tanh(v) for v in row] for row in pre]
    logits = [[sum(W2[i][j] * row[j] for j in range(3)) for i in range(3)] for row in h]
    flat_pre, flat_h, flat_logits = sum(pre, []), sum(h, []), sum(logits, [])
    for name, values, lo, hi in (("fc", flat_pre, -5, 5), ("tanh", flat_h, -1, 1), ("lm_head", flat_logits, -5, 5)):
        m, s = mean_std(values)
        assert layers[name].mean == pytest.approx(m, abs=1e-6) and layers[name].std == pytest.approx(s, abs=1e-6)
        assert layers[name].hist == pytest.approx(hand_hist(values, lo, hi), abs=1e-6)
        assert (layers[name].lo, layers[name].hi) == (lo, hi)
    saturated = [[abs(v) > 0.97 for v in row] for row in h]
    assert layers["tanh"].saturation == pytest.approx(sum(sum(r) for r in saturated) / 12)
    assert layers["tanh"].dead == sum(all(r[j] for r in saturated) for j in range(3)) == 1
    assert layers["fc"].saturation is None and layers["fc"].dead is None and layers["tanh"].units == 3

    # gradients by hand: softmax minus one-hot, back through lm_head and tanh
    probs = [[math.exp(v) / sum(math.exp(u) for u in row) for v in row] for row in logits]
    dlogits = [[(p - (i == y)) / 4 for i, p in enumerate(row)] for row, y in zip(probs, ys)]
    dW2 = [[sum(dlogits[n][i] * h[n][j] for n in range(4)) for j in range(3)] for i in range(3)]
    dh = [[sum(dlogits[n][i] * W2[i][j] for i in range(3)) for j in range(3)] for n in range(4)]
    dpre = [[dh[n][j] * (1 - h[n][j] ** 2) for j in range(3)] for n in range(4)]
    dW1 = [[sum(dpre[n][j] * E[tokens[n]][k] for n in range(4)) for k in range(2)] for j in range(3)]
    dE = [[sum(dpre[n][j] * W1[j][k] for n in range(4) for j in range(3) if tokens[n] == t) for k in range(2)]
          for t in range(3)]
    weights = {w.name: w for w in event.weights}
    assert list(weights) == ["wte.weight", "fc.weight", "lm_head.weight"]
    for name, data, grad in (("wte.weight", E, dE), ("fc.weight", W1, dW1), ("lm_head.weight", W2, dW2)):
        g, d = sum(grad, []), sum(data, [])
        g_mean, g_std = mean_std(g)
        w = weights[name]
        assert torch.allclose(grads[name], torch.tensor(grad), atol=1e-6)
        assert w.grad_mean == pytest.approx(g_mean, abs=1e-7) and w.grad_std == pytest.approx(g_std, rel=1e-5)
        assert w.data_std == pytest.approx(mean_std(d)[1], rel=1e-6)
        assert w.grad_to_data == pytest.approx(g_std / mean_std(d)[1], rel=1e-5)
        # AdamW's first step: decoupled decay, then lr * m_hat / (sqrt(v_hat) + eps) with m_hat = g, v_hat = g^2
        new = [x * (1 - lr * wd) - lr * gx / (abs(gx) + eps) for x, gx in zip(d, g)]
        update = [a - b for a, b in zip(new, d)]
        assert w.update_to_data == pytest.approx(math.log10(mean_std(update)[1] / mean_std(d)[1]), abs=1e-4)
        assert torch.allclose(old[name] + torch.tensor(update).view_as(old[name]),
                              dict(model.named_parameters())[name].detach(), atol=1e-6)
    # activation gradients, d loss / d output, from the same hand backward pass: fc's output is the
    # pre-activation (no batch norm), tanh's output is h, lm_head's output the logits
    for name, grad in (("fc", dpre), ("tanh", dh), ("lm_head", dlogits)):
        g = sum(grad, [])
        g_mean, g_std = mean_std(g)
        layer = layers[name]
        assert layer.grad_mean == pytest.approx(g_mean, abs=1e-8) and layer.grad_std == pytest.approx(g_std, rel=1e-5)
        assert layer.grad_range == pytest.approx((-GRAD_SPAN * g_std, GRAD_SPAN * g_std), rel=1e-5)
        assert layer.grad_hist == pytest.approx(hand_hist(g, *layer.grad_range, bins=GRAD_BINS), abs=1e-6)
    every = torch.cat([g.reshape(-1) for g in grads.values()]).tolist()  # biases too
    assert event.grad_norm == pytest.approx(math.sqrt(sum(v * v for v in every)), rel=1e-6)
    # two-wide embeddings are drawn as they are: the table after the update (checked by hand above)
    after = dict(model.named_parameters())["wte.weight"].detach().reshape(-1).tolist()
    assert sum(event.embedding, []) == pytest.approx(after) and event.embedding_variance == pytest.approx(1.0)
    assert event_from_json(json.loads(json.dumps(event.to_json()))) == event  # numbers and names only


SMALL = {"mlp": dict(n_embd=4, n_embd2=16, batchnorm=True), "wavenet": dict(n_embd=4, n_embd2=16, dropout=0.2),
         "bow": dict(n_embd=8, n_embd2=16), "transformer": dict(n_layer=2, n_head=2, n_embd=8, dropout=0.1),
         "rnn": dict(n_embd=4, n_embd2=8, n_layer=2), "gru": dict(n_embd=4, n_embd2=8),
         "lstm": dict(n_embd=4, n_embd2=8)}


@pytest.mark.parametrize("model_type", list(SMALL))
def test_activation_gradients_equal_autograd_in_every_family(model_type, monkeypatch):
    """d loss / d output of every watched layer against torch.autograd.grad of the loss with respect to that
    output, taken independently: module outputs by plain hooks, and the nonlinearities the models apply as
    functions by wrapping torch.tanh and F.gelu themselves (so the value is the nonlinearity's own output)."""
    import torch.nn.functional as F

    from makemore.models import FAMILIES, build_model

    torch.manual_seed(0)
    model = build_model(model_type, 7, 8, {**FAMILIES[model_type].hyper, **SMALL[model_type]})
    model.train()
    applied = []  # outputs of torch.tanh / F.gelu in the training graph, in the order the forward pass meets them

    def wrap(fn):
        def wrapped(*args, **kwargs):
            out = fn(*args, **kwargs)
            if out.requires_grad:  # not the Recorder's own no-grad recomputation from the pre-activation
                applied.append(out)
            return out
        return wrapped

    monkeypatch.setattr(torch, "tanh", wrap(torch.tanh))
    monkeypatch.setattr(F, "gelu", wrap(F.gelu))
    points = watch_points(model, model_type)
    seen: dict[str, torch.Tensor] = {}
    handles = []
    for p in points:
        if p.kind in ("tanh", "gelu") and not p.applied:
            continue

        def grab(module, args, output, p=p):
            value = args[0] if p.source == "input" else output
            seen.setdefault(p.name, value[0] if isinstance(value, tuple) else value)

        handles.append(p.module.register_forward_hook(grab))
    rec = Recorder(model, model_type, interval=1)
    idx = torch.randint(1, 7, (5, 8))
    targets = torch.cat([idx[:, 1:], torch.zeros(5, 1, dtype=torch.long)], dim=1)
    targets[0, 5:] = -1  # padding: no loss there, a zero gradient
    with rec.watch():
        _, loss = model(idx, targets)
    for h in handles:
        h.remove()
    nonlinear = iter(applied)
    values = {p.name: next(nonlinear) if p.kind in ("tanh", "gelu") and not p.applied else seen[p.name]
              for p in points}
    assert next(nonlinear, None) is None  # as many nonlinearities applied as watched
    want = dict(zip(values, torch.autograd.grad(loss, list(values.values()), retain_graph=True)))
    loss.backward()
    rec.gradients()
    rec.before_update()
    event = rec.finish(step=0, lr=0.0, grad_norm=None)
    assert [layer.name for layer in event.layers] == list(values)
    for layer in event.layers:
        g = want[layer.name].double().reshape(-1)
        assert layer.grad_mean == pytest.approx(g.mean().item(), rel=1e-4, abs=1e-9), layer.name
        assert layer.grad_std == pytest.approx(g.std().item(), rel=1e-4), layer.name
        # float32 binning may put a value within rounding of an edge one bin over: one count at most, each way
        expected = hand_hist(g.tolist(), *layer.grad_range, bins=GRAD_BINS)
        assert layer.grad_hist == pytest.approx(expected, abs=1.01 / g.numel()), layer.name
    assert event_from_json(json.loads(json.dumps(event.to_json()))) == event


def test_gelu_and_relu_flat_regions_and_dead_units():
    x = torch.tensor([[-4.0, 1.0], [-3.5, -1.0], [-5.0, 0.5]])  # unit 0 always below -3: dead for GELU
    gelu = activation_stats(x, "gelu", applied=False).tolist()
    values = [v * 0.5 * (1 + math.erf(v / math.sqrt(2))) for v in x.reshape(-1).tolist()]
    assert gelu[0] == pytest.approx(statistics.fmean(values), abs=1e-6)
    assert gelu[2] == pytest.approx(sum(v < GELU_FLAT for v in x.reshape(-1).tolist()) / 6) and gelu[3] == 1
    relu = activation_stats(x, "relu", applied=False).tolist()
    assert relu[2] == pytest.approx(4 / 6) and relu[3] == 1  # unit 1 is positive twice: alive
    linear = activation_stats(x, "linear").tolist()
    assert math.isnan(linear[2]) and math.isnan(linear[3])


def test_projection_matches_the_covariance_eigenvectors():
    torch.manual_seed(0)
    m = torch.randn(27, 8) * torch.linspace(3, 0.1, 8)
    coords, variance = project_2d(m)
    centred = m - m.mean(0)
    evals, evecs = torch.linalg.eigh(centred.T @ centred)  # ascending
    expected = centred @ evecs[:, [-1, -2]]
    for i in range(2):  # the same axis, up to sign; the sign puts the largest coordinate on the positive side
        assert torch.allclose(coords[:, i].abs(), expected[:, i].abs(), atol=1e-4)
        assert coords[coords[:, i].abs().argmax(), i] > 0
    assert float(variance) == pytest.approx(float(evals[-2:].sum() / evals.sum()), rel=1e-4)


def test_watch_points_and_hidden_weights_per_family():
    from makemore.models import FAMILIES
    from makemore.models import build_model

    kinds = {}
    for name, family in FAMILIES.items():
        if family.fitted:
            continue
        model = build_model(name, 5, 8, family.hyper)
        kinds[name] = {p.kind for p in watch_points(model, name)}
        hidden = [n for n, _ in hidden_weights(model)]
        assert not any(n.startswith(("wte", "wpe", "lm_head")) for n in hidden)
        assert bool(hidden) == (name != "bigram")
    assert kinds["mlp"] == {"linear", "tanh"} and kinds["wavenet"] == {"linear", "norm", "tanh"}
    assert kinds["transformer"] == {"linear", "norm", "attention", "gelu"}
    assert kinds["rnn"] == {"linear", "tanh"} and kinds["gru"] == kinds["lstm"] == {"linear", "recurrent"}
    assert kinds["bow"] == {"linear", "tanh"} and kinds["bigram"] == set()


# --- through the trainer ------------------------------------------------------------------------------

def trainer_for(words: Path, out: Path, model_type: str = "mlp", hyper: dict | None = None, **train):
    from makemore.training import Request, new_trainer

    recipe = dict(max_steps=1, eval_interval=1000, batch_size=32, diagnostics=True, diag_interval=10)
    recipe.update(train)
    trainer, _ = new_trainer(Request(data=str(words), model_type=model_type, out=out, hyper=hyper or {},
                                     train=recipe, device="cpu"))
    return trainer


def records(trainer) -> list[Diagnostics]:
    return [e for e in trainer.run() if isinstance(e, Diagnostics)]


def test_init_scale_saturates_the_mlp(names_path, tmp_path):
    default = records(trainer_for(names_path, tmp_path / "a"))[0]
    scaled = records(trainer_for(names_path, tmp_path / "b", init_scale=5.0))[0]
    tanh = lambda d: next(layer for layer in d.layers if layer.kind == "tanh")  # noqa: E731
    assert default.step == scaled.step == 0  # the first record is the initialisation
    assert tanh(scaled).saturation > 0.60 and tanh(default).saturation < 0.35
    assert tanh(scaled).hist[0] + tanh(scaled).hist[-1] > tanh(default).hist[0] + tanh(default).hist[-1]
    config = json.loads((tmp_path / "b" / "config.json").read_text())
    assert config["train"]["init_scale"] == 5.0  # --resume before the first checkpoint starts the same way


def test_init_scale_is_refused_where_there_is_nothing_to_scale(small_words, tmp_path):
    r = runner.invoke(app, ["train", str(small_words), "--type", "bigram", "--init-scale", "2", "-o",
                            str(tmp_path / "r")])
    assert r.exit_code == 2 and "no hidden weights" in r.output and not (tmp_path / "r").exists()
    r = runner.invoke(app, ["train", str(small_words), "--type", "mlp", "--init-scale", "-1"])
    assert r.exit_code == 2 and "--init-scale must be a positive number" in r.output


def test_update_to_data_rises_with_the_learning_rate(small_words, tmp_path):
    medians = {}
    for lr in (1e-5, 1e-4, 1e-3, 1e-2):
        trainer = trainer_for(small_words, tmp_path / f"lr{lr:g}", max_steps=11, learning_rate=lr, warmup_steps=1,
                              min_lr_ratio=1.0)
        last = records(trainer)[-1]
        assert last.step == 10 and last.lr == pytest.approx(lr)
        medians[lr] = statistics.median(w.update_to_data for w in last.weights)
    assert medians[1e-5] < -3.5
    assert medians[1e-4] < medians[1e-3] < medians[1e-2]


def test_no_hooks_outside_record_steps_and_none_when_off(small_words, tmp_path):
    trainer = trainer_for(small_words, tmp_path / "on", max_steps=12, diag_interval=5)
    events = list(trainer.run())
    assert [e.step for e in events if isinstance(e, Diagnostics)] == [0, 5, 10, 11]  # and the last step
    assert not any(m._forward_hooks for m in trainer.model.modules())  # removed after each record
    steps = [e for e in events if isinstance(e, Step)]
    assert steps and all(s.grad_norm is not None and s.grad_norm > 0 for s in steps)
    off = trainer_for(small_words, tmp_path / "off", max_steps=3, diagnostics=False)
    assert off.recorder is None and not records(off)


def test_resume_keeps_recording(small_words, tmp_path):
    run = tmp_path / "run"
    r = runner.invoke(app, ["train", str(small_words), "--type", "mlp", "--max-steps", "10", "--eval-interval", "10",
                            "--diagnostics", "--diag-interval", "4", "-o", str(run), "-q"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["train", "--resume", str(run), "--max-steps", "20", "-q"])
    assert r.exit_code == 0, r.output
    steps = [m["step"] for m in metrics(run) if m["event"] == "diagnostics"]
    assert steps == [0, 4, 8, 9, 12, 16, 19]  # each run's last step too


def test_initial_loss_warning_fires_for_confidently_wrong_logits(small_words, tmp_path):
    for model_type in ("mlp", "transformer"):
        # (no moving average: it copies the weights when the trainer is built, before the scaling below)
        default = trainer_for(small_words, tmp_path / f"{model_type}-a", model_type, diagnostics=False, ema=0.0)
        scaled = trainer_for(small_words, tmp_path / f"{model_type}-b", model_type, diagnostics=False, ema=0.0)
        with torch.no_grad():
            scaled.model.lm_head.weight.mul_(10)  # no bias at init: the logits are exactly 10x
        for trainer, far in ((default, False), (scaled, True)):
            first = next(e for e in trainer.run() if isinstance(e, InitialLoss))
            assert first.uniform == pytest.approx(math.log(len(trainer.vocab)))
            assert first.far_above is far, (model_type, first)
    assert initial_loss_event(3.3, 27).far_above is False and initial_loss_event(27.0, 27).far_above is True


def test_the_console_prints_the_initial_loss_and_the_warning(small_words, tmp_path):
    from rich.console import Console

    from makemore.sinks import ConsoleSink

    console = Console(record=True, width=200, file=open("/dev/null", "w"))
    sink = ConsoleSink(console=console)
    sink(initial_loss_event(3.31, 27))
    sink(initial_loss_event(27.0, 27))
    text = console.export_text()
    assert "initial loss 3.3100 (ln(vocab size) = 3.2958)" in text
    assert "warning: initial loss 27.0000 is far above" in text


def test_ngram_has_nothing_to_diagnose_and_says_which_options_it_does_not_use(small_words, tmp_path):
    r = runner.invoke(app, ["train", str(small_words), "--type", "ngram", "--diagnostics", "-o", str(tmp_path / "r")])
    assert r.exit_code == 0
    assert "ngram is counted in one pass, not trained: --diagnostics has no effect" in r.stderr
    r = runner.invoke(app, ["train", str(small_words), "--type", "ngram", "--lr", "0.1", "--ema", "0.9",
                            "--max-time", "5", "-o", str(tmp_path / "r2")])
    assert r.exit_code == 0
    assert "not trained: --max-time, --learning-rate, --ema have no effect" in r.stderr
    r = runner.invoke(app, ["train", "--resume", str(tmp_path / "r2")])  # counted already: nothing to continue
    assert r.exit_code == 2 and "ngram is counted in one pass, and this run was" in r.stderr, r.output
    assert not [m for m in metrics(tmp_path / "r") if m["event"] == "diagnostics"]
    latin = tmp_path / "latin.txt"
    latin.write_bytes(b"caf\xe9\nna\xefve\n")
    r = runner.invoke(app, ["train", str(latin), "--type", "ngram", "--max-steps", "5", "-o", str(tmp_path / "r3")])
    assert r.exit_code == 2 and "not UTF-8" in r.stderr
    assert "no effect" not in r.stderr  # a refused run is not told which options it would have ignored


def test_the_api_says_which_options_the_ngram_does_not_use(small_words, tmp_path, capsys):
    import makemore

    makemore.train(small_words, type="ngram", out=tmp_path / "api", learning_rate=0.1, progress=False)
    assert "ngram is counted in one pass, not trained: --learning-rate has no effect" in capsys.readouterr().err
    makemore.train(small_words, type="ngram", out=tmp_path / "plain", progress=False)
    assert "no effect" not in capsys.readouterr().err


def test_a_diagnostics_interval_without_diagnostics_is_said_to_do_nothing(small_words, tmp_path, capsys):
    """--diag-interval alone recorded nothing, and nothing said so."""
    import makemore

    said = "--diag-interval has no effect without --diagnostics, which records the instruments"
    r = runner.invoke(app, ["train", str(small_words), "--type", "bigram", "--max-steps", "2", "--diag-interval",
                            "1", "-o", str(tmp_path / "r")])
    assert r.exit_code == 0 and said in r.stderr, r.output
    makemore.train(small_words, type="bigram", max_steps=2, diag_interval=1, out=tmp_path / "api", progress=False)
    assert said in capsys.readouterr().err
    r = runner.invoke(app, ["train", str(small_words), "--type", "bigram", "--max-steps", "2", "--diag-interval",
                            "1", "--diagnostics", "-o", str(tmp_path / "on")])
    assert r.exit_code == 0 and "no effect" not in r.stderr, r.output
    # a resume too (it said nothing, and stored the interval): unless the run records diagnostics
    for run, says in (("r", True), ("on", False)):
        r = runner.invoke(app, ["train", "--resume", str(tmp_path / run), "--max-steps", "3", "--diag-interval", "2"])
        assert r.exit_code == 0 and (said in r.stderr) == says, r.output


def test_a_warm_up_longer_than_the_run_is_said_with_the_rate_it_reaches(small_words, tmp_path, capsys):
    """--warmup-steps 500 in a run of 20 steps: the rate rises to 20/500 of its peak, and the command line and the
    API say so; a warm-up within the run says nothing."""
    import makemore

    r = runner.invoke(app, ["train", str(small_words), "--type", "bigram", "--max-steps", "20", "--warmup-steps",
                            "500", "--lr", "0.1", "-o", str(tmp_path / "r")])
    assert r.exit_code == 0, r.output
    assert "note: --warmup-steps 500 is longer than the run's 20 steps: the learning rate rises to 4.00e-03, 4% of " \
        "its peak 1.00e-01" in r.stderr
    last = [m for m in metrics(tmp_path / "r") if m["event"] == "step"][-1]
    assert last["lr"] == pytest.approx(0.1 * 20 / 500)  # what the note said is what the run did
    makemore.train(small_words, type="bigram", max_steps=20, warmup_steps=500, learning_rate=0.1,
                   out=tmp_path / "api", progress=False)
    assert "note: --warmup-steps 500 is longer than the run's 20 steps" in capsys.readouterr().err
    r = runner.invoke(app, ["train", str(small_words), "--type", "bigram", "--max-steps", "20", "--warmup-steps",
                            "20", "-o", str(tmp_path / "within")])
    assert r.exit_code == 0 and "--warmup-steps" not in r.stderr
    r = runner.invoke(app, ["train", str(small_words), "--type", "ngram", "--max-steps", "20", "--warmup-steps",
                            "50", "-o", str(tmp_path / "counted")])  # no learning rate at all: one note, not two
    assert r.exit_code == 0 and "--warmup-steps have no effect" in r.stderr and "longer than the run" not in r.stderr


# --- lr-find ----------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_lr_find_on_the_mlp_lands_near_the_recipe(names_path):
    from makemore.instruments import lr_sweep
    from makemore.models import recipe_for

    sweep = lr_sweep(str(names_path), model_type="mlp", steps=300, lr_min=1e-5, lr_max=10, seed=42, device="cpu",
                     batch_size=64)
    recipe = recipe_for("mlp")["learning_rate"]
    assert recipe / 10 <= sweep.suggested <= recipe * 10
    assert sweep.exploded_at is not None and len(sweep.losses) < 300  # lr 10 blows an MLP up
    assert min(sweep.losses) < sweep.losses[0] - 0.5


def test_lr_find_on_a_text_sweeps_its_windows_in_its_unit(tmp_path):
    """On a text the sweep steps through windows with the family's text recipe, as training would; its losses are
    nats per character, and per token with a tokenizer."""
    from makemore.tokenizer import Tokenizer

    text = tmp_path / "play.txt"
    text.write_text("".join(f"ROMEO: line {i} of the play, with words; and more words!\n" for i in range(300)))
    r = runner.invoke(app, ["lr-find", str(text), "--mode", "text", "--block-size", "16", "--steps", "60",
                            "--min", "1e-4", "--max", "1", "--json"])
    assert r.exit_code == 0, r.output
    result = json.loads(r.stdout)
    distinct = len(set(text.read_text()))
    from makemore.models import step_recipe

    text_lr, words_lr = (step_recipe("transformer", mode)["learning_rate"] for mode in ("text", "words"))
    assert text_lr != words_lr and result["recipe_lr"] == text_lr  # the text recipe's, not the word lists'
    assert result["loss_unit"] == "nats/char"
    assert abs(result["losses"][0] - math.log(distinct + 1)) < 0.3  # a fresh model: about uniform
    assert min(result["losses"]) < result["losses"][0] - 1.0  # it learns the play as the rate rises
    r = runner.invoke(app, ["lr-find", str(text), "--mode", "text", "--block-size", "16", "--steps", "5"])
    assert r.exit_code == 0 and "loss (nats/char)" in r.output

    Tokenizer.train(text.read_text(), 300).save(tmp_path / "tok.json")
    from makemore import lr_find

    sweep = lr_find(text, mode="text", tokenizer=tmp_path / "tok.json", block_size=8, steps=10, max=0.1)
    assert sweep.loss_unit == "nats/token" and len(sweep.losses) == 10 and all(map(math.isfinite, sweep.losses))


def test_lr_find_cli_json_and_refusals(small_words):
    r = runner.invoke(app, ["lr-find", str(small_words), "--type", "bigram", "--steps", "40", "--min", "1e-3",
                            "--max", "1000", "--json"])
    assert r.exit_code == 0, r.output
    result = json.loads(r.stdout)
    assert result["rule"].startswith("the valley") and result["lrs"][0] == pytest.approx(1e-3)
    assert result["suggested_lr"] in result["lrs"]
    assert result["valley_beyond"] is None  # 1e-3 to 1000 holds the bigram's valley
    # a sweep that stops short of the valley says which way it lies; an explosion says what the loss did
    r = runner.invoke(app, ["lr-find", str(small_words), "--type", "bigram", "--steps", "30", "--max", "1e-3"])
    assert r.exit_code == 0 and "still falling at --max 0.001: the valley lies beyond it" in " ".join(r.stdout.split())
    r = runner.invoke(app, ["lr-find", str(small_words), "--type", "bigram", "--steps", "20", "--max", "1e6",
                            "--json"])
    result = json.loads(r.stdout)
    n = result["steps_run"]
    assert n < 20 and result["exploded_at"] == pytest.approx(10 ** (-5 + 11 * n / 19))
    r = runner.invoke(app, ["lr-find", str(small_words), "--type", "bigram", "--steps", "20", "--max", "1e6"])
    said = " ".join(r.stdout.split())
    loss = result["losses"]  # the loss that stopped it is what the message names, not a rule it did not meet
    assert f"stopped early: at learning rate {result['exploded_at']:.3g} the loss " in said
    assert f"after {n} of 20 steps" in said
    assert ("became nan" in said or "became inf" in said) or f"its lowest ({min(loss):.4g})" in said
    r = runner.invoke(app, ["lr-find", str(small_words), "--type", "ngram"])
    assert r.exit_code == 2 and "no learning rate to find" in r.output
    # what the word list lost is said, as train says it, and train's notes about the data too
    longer = small_words.parent / "longer.txt"
    longer.write_text(small_words.read_text() + "x" * 100 + "\n" + small_words.read_text().splitlines()[0] + "\n")
    r = runner.invoke(app, ["lr-find", str(longer), "--type", "bigram", "--steps", "5"])
    words = len(set(small_words.read_text().split()))
    assert r.exit_code == 0 and f"{longer}: {words:,} words (dropped 1 duplicate, 1 word longer than --max-len 64)" \
        in r.stderr, r.stderr
    one = small_words.parent / "one.txt"
    one.write_text("hello\n")
    r = runner.invoke(app, ["lr-find", str(one), "--type", "bigram", "--steps", "5"])
    assert r.exit_code == 0 and "note: --batch-size 256 is more than the 1 training word:" in r.stderr, r.stderr
    r = runner.invoke(app, ["lr-find", str(small_words), "--min", "1", "--max", "0.1"])
    assert r.exit_code == 2 and "--min" in r.output
    # a span whose ratio overflowed: the grid's second rate was infinite, and the plot ended in a traceback
    for lo, hi in (("1e-300", "1e300"), ("1e-13", "1"), ("1", "1e7")):
        r = runner.invoke(app, ["lr-find", str(small_words), "--type", "bigram", "--steps", "5", "--min", lo,
                                "--max", hi])
        assert r.exit_code == 2 and f"--min ({float(lo):g}) and --max ({float(hi):g}) must lie between 1e-12 and " \
                                    f"1e+06" in r.stderr, (lo, hi, r.output)
    r = runner.invoke(app, ["lr-find", str(small_words), "--type", "bigram", "--steps", "5", "--min", "1e-12",
                            "--max", "1e6", "--json"])
    assert r.exit_code == 0, r.output
    lrs = json.loads(r.stdout)["lrs"]
    assert lrs[0] == pytest.approx(1e-12) and all(math.isfinite(x) for x in lrs)


def test_suggestion_is_the_bottom_of_the_centred_valley():
    from makemore.instruments import suggest_lr

    lrs = [10 ** (-5 + 5 * i / 199) for i in range(200)]
    losses = [3 - 2 * math.exp(-((math.log10(lr) + 2) ** 2)) + 0.05 * (-1) ** i for i, lr in enumerate(lrs)]
    suggested, smoothed = suggest_lr(lrs, losses)
    assert abs(math.log10(suggested) + 2) < 0.1 and len(smoothed) == len(losses)


# --- diagnose, runs, compare ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def three_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    words = root / "words.txt"
    words.write_text("\n".join(["anna", "bob", "carla", "dave", "emma", "fred", "gina", "hank", "ivy", "jon",
                                "kate", "liam", "mona", "nick", "olga", "paul", "quin", "rosa", "sam", "tina"]) + "\n")
    settings = [("a", ["--type", "bigram", "--max-steps", "30", "--learning-rate", "0.3"]),
                ("b", ["--type", "bigram", "--max-steps", "10", "--learning-rate", "0.01"]),
                ("c", ["--type", "mlp", "--max-steps", "20", "--diagnostics", "--diag-interval", "5",
                       "--n-embd", "4", "--n-embd2", "16"])]
    for name, options in settings:
        r = runner.invoke(app, ["train", str(words), *options, "--eval-interval", "10", "-q", "-o",
                                str(root / "runs" / name)])
        assert r.exit_code == 0, r.output
    return root / "runs"


def test_runs_lists_and_sorts(three_runs):
    r = runner.invoke(app, ["runs", str(three_runs), "--json", "--sort", "val"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)["runs"]
    assert {Path(x["run"]).name: (x["type"], x["steps"]) for x in rows} == {"a": ("bigram", 30), "b": ("bigram", 10),
                                                                          "c": ("mlp", 20)}
    vals = [x["best_val_loss"] for x in rows]
    assert vals == sorted(vals)
    for x in rows:  # the numbers are the runs' own
        finished = [m for m in metrics(Path(x["run"])) if m["event"] == "finished"][-1]
        assert x["test_loss"] == finished["test_loss"] and x["elapsed"] == finished["elapsed"]
    r = runner.invoke(app, ["runs", str(three_runs), "--sort", "steps"], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    names = [line.split()[0] for line in r.output.splitlines()[1:4]]  # under the header, one run a line
    assert names == ["b", "c", "a"]
    assert "3 runs in " in r.output and "sorted by steps" in r.output
    r = runner.invoke(app, ["runs", str(three_runs / "a")], env={"COLUMNS": "200"})  # one run named: listed alone
    assert r.exit_code == 0 and r.output.splitlines()[1].split()[:2] == ["a", "bigram"] and "1 run in " in r.output
    r = runner.invoke(app, ["runs", str(three_runs / "a" / "config.json")])
    assert r.exit_code == 2 and "a file, not a directory of runs" in r.output
    r = runner.invoke(app, ["compare", str(three_runs / "a"), str(three_runs / "a")])
    assert r.exit_code == 2 and "the same run as" in r.output
    r = runner.invoke(app, ["runs", str(three_runs), "--sort", "colour"])
    assert r.exit_code == 2 and "--sort" in r.output


def test_runs_lists_a_run_named_with_a_leading_dot_but_not_a_staging_directory(three_runs, tmp_path):
    """`train -o runs/.scratch` made a run that `runs` and the latest-run lookup passed over in silence; a new
    run's staging directory (.NAME.XXXX.tmp, config.json already in it) stays unlisted."""
    import shutil

    root = tmp_path / "runs"
    shutil.copytree(three_runs / "a", root / ".scratch")
    shutil.copytree(three_runs / "b", root / ".b.k2j4.tmp")
    r = runner.invoke(app, ["runs", str(root), "--json"])
    assert r.exit_code == 0 and [Path(x["run"]).name for x in json.loads(r.output)["runs"]] == [".scratch"], r.output
    from makemore.rundir import latest_run

    assert latest_run(root).path.name == ".scratch"


def test_runs_marks_a_token_runs_losses_as_per_token(three_runs, tmp_path):
    """A token run's losses are nats per token: the table marks them and highlights the best of each unit."""
    import shutil

    root = tmp_path / "runs"
    for name in "ab":
        shutil.copytree(three_runs / name, root / name)
    config = json.loads((root / "a" / "config.json").read_text())
    config["dataset"]["tokenizer"] = {"file": "tokenizer.json", "sha256": "0" * 64, "vocab_size": 300, "padded": 320}
    (root / "a" / "config.json").write_text(json.dumps(config))
    r = runner.invoke(app, ["runs", str(root), "--json", "--sort", "val"])
    rows = json.loads(r.output)["runs"]
    assert r.exit_code == 0 and [(Path(x["run"]).name, x["loss_unit"]) for x in rows] == \
        [("b", "nats/char"), ("a", "nats/token")], r.output  # by bits per character: a's unknown, so last
    assert rows[1]["best_val_loss"] <= rows[0]["best_val_loss"]  # so by value (then name) alone, a came first
    # a token run that recorded its bits per character sorts among the others by them (b's: its loss / ln 2)
    b_bpc = rows[0]["best_val_bpc"]
    plain = (root / "a" / "metrics.jsonl").read_text().splitlines()
    for bpc, order in ((b_bpc - 0.01, ["a", "b"]), (b_bpc + 0.01, ["b", "a"])):
        lines = [json.dumps({**e, "val_bpc": bpc}) if e.get("event") == "eval" else json.dumps(e)
                 for e in map(json.loads, plain)]
        (root / "a" / "metrics.jsonl").write_text("\n".join(lines) + "\n")
        r = runner.invoke(app, ["runs", str(root), "--json", "--sort", "val"])
        assert [Path(x["run"]).name for x in json.loads(r.output)["runs"]] == order, r.output
    shown = runner.invoke(app, ["runs", str(root), "--sort", "val"], env={"COLUMNS": "200"})
    assert "sorted by val (bits per character)" in shown.output
    (root / "a" / "metrics.jsonl").write_text("\n".join(plain) + "\n")
    r = runner.invoke(app, ["runs", str(root)], env={"COLUMNS": "80"})
    assert r.exit_code == 0, r.output
    rows = {line.split()[0]: line.split() for line in r.output.splitlines()[1:3]}
    assert rows["a"][5].endswith("*") and rows["a"][6].endswith("*"), rows  # best val and test, per token
    assert not rows["b"][5].endswith("*") and "* nats per token, not per character" in r.output
    r = runner.invoke(app, ["runs", str(three_runs)], env={"COLUMNS": "80"})
    assert "*" not in r.output and "per token" not in r.output  # no token run: no mark
    r = runner.invoke(app, ["compare", str(root / "a"), str(root / "b"), "--json"])
    result = json.loads(r.output)
    assert {"data.tokenizer", "vocab size", "loss unit"} <= set(result["differ"]), result["differ"]
    assert result["values"]["data.tokenizer"] == ["0" * 12, None] and result["values"]["vocab size"][0] == 300


def test_compare_highlights_what_differs(three_runs):
    r = runner.invoke(app, ["compare", *(str(three_runs / n) for n in "abc"), "--json"])
    assert r.exit_code == 0, r.output
    result = json.loads(r.output)
    differ = set(result["differ"])
    assert {"type", "train.learning_rate", "train.max_steps", "best val", "train.diagnostics"} <= differ
    assert "train.seed" not in differ and "data.sha256" not in differ
    assert result["values"]["train.max_steps"] == [30, 10, 20]
    assert result["values"]["model.block_size"] == [6] * 3  # the longest word and its start token
    assert "model.block_size" not in differ and result["values"]["data.tokenizer"] == [None] * 3
    assert result["values"]["loss unit"] == ["nats/char"] * 3  # word lists: bits per character = nats / ln 2
    assert result["values"]["best val (bits/char)"] == [v / math.log(2) for v in result["values"]["best val"]]
    # the bigrams come first, yet the mlp's own settings join the model's rows, above the results
    keys = list(result["values"])
    assert max(keys.index(k) for k in keys if k.startswith("model.")) < keys.index("train.max_steps")
    assert max(keys.index(k) for k in keys if k.startswith(("model.", "train.", "data."))) < keys.index("steps")
    r = runner.invoke(app, ["compare", str(three_runs / "a"), str(three_runs / "b")], env={"COLUMNS": "200"})
    assert r.exit_code == 0 and "train.learning_rate" in r.output and "rows differ" in r.output
    sha = json.loads((three_runs / "a" / "config.json").read_text())["dataset"]["sha256"]
    assert f" {sha[:7]}… " in r.stdout and sha not in r.stdout  # a hash shown short, as git shows one
    r = runner.invoke(app, ["compare", str(three_runs / "a")])
    assert r.exit_code == 2


def test_compare_shows_two_different_numbers_of_a_differing_row_apart(three_runs, tmp_path):
    """Learning rates of 0.01 and 0.00996 both showed as 0.0100, in a row highlighted as differing."""
    import shutil

    for name, lr in (("x", 0.01), ("y", 0.00996), ("z", 0.01)):
        shutil.copytree(three_runs / "a", tmp_path / name)
        config = json.loads((tmp_path / name / "config.json").read_text())
        config["train"]["learning_rate"] = lr
        (tmp_path / name / "config.json").write_text(json.dumps(config))
    r = runner.invoke(app, ["compare", *(str(tmp_path / n) for n in "xyz")], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    row = next(line.split() for line in r.stdout.splitlines() if line.split()[:1] == ["train.learning_rate"])
    assert row[1:] == ["0.01", "0.00996", "0.01"], row
    seed = next(line.split() for line in r.stdout.splitlines() if line.split()[:1] == ["train.weight_decay"])
    assert len(set(seed[1:])) == 1 and seed[1].endswith(".0000")  # rows alike keep their four decimals


def test_compare_tells_same_named_runs_apart(three_runs, tmp_path):
    """Two runs named mlp in two folders were both headed `mlp`."""
    import shutil

    for folder in ("x", "y"):
        shutil.copytree(three_runs / "c", tmp_path / folder / "mlp")
    runs = [str(tmp_path / "x" / "mlp"), str(tmp_path / "y" / "mlp"), *(str(three_runs / n) for n in "ab")]
    r = runner.invoke(app, ["compare", *runs])
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[0].split() == [*runs[:2], "a", "b"], r.stdout


def test_compare_on_a_narrow_terminal_prints_the_runs_in_groups_that_fit(three_runs, monkeypatch):
    """At 60 columns compare folded its rows' names (and with more runs, their numbers) onto two lines: the runs
    now come in groups of columns, each table as wide as the terminal at most, every value on one line."""
    import io

    from rich.console import Console

    from makemore import instruments

    runs = [three_runs / n for n in "abc"]
    values = json.loads(runner.invoke(app, ["compare", *map(str, runs), "--json"]).stdout)["values"]
    for width, tables in ((60, 2), (200, 1)):
        screen = io.StringIO()
        monkeypatch.setattr(instruments, "out", Console(file=screen, force_terminal=True, width=width,
                                                        color_system=None, highlight=False))
        instruments.compare_command(runs, as_json=False)
        lines = screen.getvalue().splitlines()
        assert max(map(len, lines)) <= width, screen.getvalue()
        heads = [line.split() for line in lines if line.split() and set(line.split()) <= set("abc")]
        assert len(heads) == tables and sum(heads, []) == ["a", "b", "c"], screen.getvalue()
        rows = [line.split() for line in lines if line.startswith(" train.max_steps ")]
        assert sum((r[1:] for r in rows), []) == [f"{v:,}" for v in values["train.max_steps"]]
        times = sum((line.split()[1:] for line in lines if line.startswith(" time ")), [])
        # as runs and info show it, m:ss to the nearest second (these runs are short)
        assert times == [f"{round(v) // 60}:{round(v) % 60:02d}" for v in values["time (s)"]]
        key = "train.matmul_precision_used"
        assert sum(line.startswith(f" {key} ") for line in lines) == tables  # whole, never folded


def test_diagnose_tables_and_embedding(three_runs):
    r = runner.invoke(app, ["diagnose", str(three_runs / "c"), "--json"])
    assert r.exit_code == 0, r.output
    result = json.loads(r.output)
    last = [m for m in metrics(three_runs / "c") if m["event"] == "diagnostics"][-1]
    assert result["diagnostics"] == last and last["step"] == 19  # the run's last step (20 steps)
    assert len(result["embedding"]) == len(result["labels"]) and result["labels"][0] == "."
    r = runner.invoke(app, ["diagnose", str(three_runs / "c")], env={"COLUMNS": "200"})
    assert r.exit_code == 0 and "tanh" in r.output and "fc.weight" in r.output and "embeddings" in r.output
    assert "grad mean" in r.output and "grad std" in r.output
    for layer in last["layers"]:  # each layer's row carries its activation gradient's mean and std
        row = next(line for line in r.output.splitlines() if line.split()[:2] == [layer["name"], layer["kind"]])
        assert row.split()[7:9] == [f"{layer['grad_mean']:+.2e}", f"{layer['grad_std']:.2e}"]
    # a run without records still shows its embedding (from the checkpoint) and says how to get records
    r = runner.invoke(app, ["diagnose", str(three_runs / "a")], env={"COLUMNS": "200"})
    assert r.exit_code == 0 and "no diagnostics recorded" in r.output and "best checkpoint" in r.output


def test_diagnose_says_a_bigram_has_no_hidden_layer(small_words, tmp_path):
    """A bigram's record has no layers: `diagnose` printed a bare table header (the TUI, empty panels)."""
    from makemore.instruments import NO_LAYERS
    from makemore.sinks import JsonlSink

    trainer = trainer_for(small_words, tmp_path / "bigram", "bigram", max_steps=3)
    sink = JsonlSink(trainer.run_dir)
    for event in trainer.run():
        sink(event)
    sink.close()
    r = runner.invoke(app, ["diagnose", str(tmp_path / "bigram")], env={"COLUMNS": "200"})
    assert r.exit_code == 0 and NO_LAYERS in r.output, r.output
    assert "saturated" not in r.output and "logits" in r.output  # no layer table; the weights' table stays


def test_a_damaged_last_record_leaves_the_one_before_it_and_is_counted(three_runs, tmp_path):
    """diagnose kept the last diagnostics line before reading it: an edited last record (valid JSON, a field of
    the wrong type) made every record vanish ("no diagnostics recorded"), uncounted. compare said nothing of the
    lines it skipped."""
    import shutil

    run = tmp_path / "c"
    shutil.copytree(three_runs / "c", run)
    lines = (run / "metrics.jsonl").read_text().splitlines()
    at = max(i for i, line in enumerate(lines) if json.loads(line)["event"] == "diagnostics")
    last = json.loads(lines[at])
    steps = [json.loads(line)["step"] for line in lines if json.loads(line)["event"] == "diagnostics"]
    lines[at] = json.dumps({**last, "layers": "oops"})
    (run / "metrics.jsonl").write_text("\n".join(lines + ["not json"]) + "\n")
    r = runner.invoke(app, ["diagnose", str(run), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["diagnostics"]["step"] == steps[-2]
    assert "skipped 2 damaged lines of its metrics.jsonl" in r.stderr, r.stderr
    r = runner.invoke(app, ["compare", str(three_runs / "a"), str(run)])
    # (compare reads no diagnostics record: the line that is not JSON is the one it skips)
    assert r.exit_code == 0 and f"{run}: skipped 1 damaged line of its metrics.jsonl" in r.stderr, r.stderr
    assert "three_runs" not in r.stderr and "/a: skipped" not in r.stderr


def test_instruments_commands_refuse_without_importing_torch(tmp_path):
    import subprocess
    import sys

    code = ("import sys; from makemore.cli import app\n"
            "for argv in (['runs', 'nowhere'], ['lr-find', 'x', '--min', '2', '--max', '1'], ['diagnose', '--help'],\n"
            "             ['train', 'names', '--diag-interval', '0'], ['train', 'names', '--init-scale', '-1'],\n"
            "             ['train', 'names', '-b', '99999999', '-q'], ['lr-find', 'names', '-b', '99999999']):\n"
            "    sys.argv = ['makemore', *argv]\n"
            "    try:\n        app()\n    except SystemExit:\n        pass\n"
            "assert 'torch' not in sys.modules, 'heavy import'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "nowhere: no such directory" in result.stderr and "--min (2) must be positive" in result.stderr
    assert "--diag-interval must be at least 1" in result.stderr and "--init-scale must be a positive" in result.stderr
    # a word list's logits too large for memory, refused before torch, with the options each command takes
    assert "logits of one step; lower --batch-size, raise --grad-accum or lower --max-len\n" in result.stderr
    assert "logits of one step; lower --batch-size\n" in result.stderr


# --- the TUI screen ---------------------------------------------------------------------------------------

def scripted_diagnostics() -> list:
    vocab = [".", *"abcdefghijklmnopqrstuvwxyz"]
    events = [Started(run_dir="runs/names-mlp", model_type="mlp", num_params=23_259, device="cpu", dataset="names",
                      num_words=25_626, vocab=vocab, max_steps=600, batch_size=256)]
    for s in range(10, 610, 10):
        lr = 1e-2 * min(1, s / 100) * (0.55 + 0.45 * math.cos(math.pi * max(0, s - 100) / 500))
        events.append(Step(step=s, loss=2.2 + math.exp(-s / 100), lr=lr, steps_per_s=50.0, tokens_per_s=9e4,
                           elapsed=s / 50, grad_norm=0.3 + 2 * math.exp(-s / 60)))
        if s % 100 == 0:
            sat = 0.4 * math.exp(-s / 300)
            hist = [math.exp(-((i - 9.5) / 4) ** 2) + (sat * 3 if i in (0, 19) else 0) for i in range(HIST_BINS)]
            hist = [h / sum(hist) for h in hist]
            grad_hist = [math.exp(-(((i - 10) / 2.6) ** 2) / 2) for i in range(GRAD_BINS)]  # about ±4 std
            grad_hist = [h / sum(grad_hist) for h in grad_hist]
            layers = [LayerStats("fc", "linear", 300, 0.01, 1.8, None, None, hist, -5.0, 5.0, 1e-7, 2e-4, grad_hist),
                      LayerStats("tanh", "tanh", 300, 0.0, 0.7, sat, int(s < 300), hist, -1.0, 1.0, -2e-7, 4e-4,
                                 grad_hist),
                      LayerStats("lm_head", "linear", 27, -0.4, 1.9, None, None, hist, -5.0, 5.0)]  # no gradient
            weights = [WeightStats(n, shape, std, 0.0, 1e-3, 1e-3 / std, -3.2 + k * 0.6 - s / 2000)
                       for k, (n, shape, std) in enumerate((("wte.weight", [27, 16], 0.9), ("fc.weight", [300, 48], 0.25),
                                                            ("lm_head.weight", [27, 300], 0.05)))]
            embedding = [[math.cos(i * 0.7) * (1 + i / 27), math.sin(i * 1.3) * (1 + i / 27)] for i in range(27)]
            events.append(Diagnostics(step=s, lr=lr, grad_norm=0.3, layers=layers, weights=weights,
                                      embedding=embedding, embedding_variance=0.42))
    return events


def edited_diagnostics(edit) -> list:
    """``scripted_diagnostics`` with each Diagnostics record passed through ``edit``."""
    return [edit(e) if isinstance(e, Diagnostics) else e for e in scripted_diagnostics()]


async def open_diagnostics(pilot) -> None:
    """From the run screen, once the replay has settled: the diagnostics screen, drawn."""
    await pilot.pause(0.2)
    await pilot.press("d")
    await pilot.pause(0.3)


def test_rebin_matches_a_histogram_taken_on_the_new_axis():
    from makemore.tui.widgets.diagnostics import rebin

    torch.manual_seed(0)
    x = torch.rand(200_000) * 6 - 3  # uniform within every bin, as rebin assumes
    own = (torch.histc(x.clamp(-4, 4), bins=21, min=-4, max=4) / x.numel()).tolist()
    for lo, hi in ((-4, 4), (-2, 2), (-10, 10), (-1.3, 2.9)):
        want = (torch.histc(x.clamp(lo, hi), bins=21, min=lo, max=hi) / x.numel()).tolist()
        got = rebin(own, -4, 4, lo, hi, 21)
        assert got == pytest.approx(want, abs=4e-3) and sum(got) == pytest.approx(1.0)


async def test_the_screen_shows_replayed_records_and_goes_back():
    from makemore.tui.app import create_app
    from makemore.tui.diagnostics_screen import DiagnosticsScreen
    from makemore.tui.widgets.diagnostics import (ActivationHistograms, EmbeddingScatter, LegendedChart,
                                                  SeriesChart, histogram_line, rebin)

    app = create_app(events=scripted_diagnostics())
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.2)
        await pilot.press("d")
        await pilot.pause(0.3)
        screen = app.screen
        assert isinstance(screen, DiagnosticsScreen)
        assert screen.query_one(ActivationHistograms).diagnostics.step == 600
        ratios = screen.query_one("#ratios", LegendedChart).series
        assert set(ratios) == {"wte.weight", "fc.weight", "lm_head.weight"} and len(ratios["fc.weight"]) == 6
        assert len(screen.query_one("#grad-norm", SeriesChart).series["grad norm"]) == 60
        assert len(screen.query_one(EmbeddingScatter).coords) == 27
        svg = app.export_screenshot().replace("&#160;", " ")
        assert "Saturation and dead units" in svg and "1 layer to look at" not in svg  # at 600: 5%, no dead
        assert "a: their gradients" in svg and "÷ median" not in svg
        latest = screen.query_one(ActivationHistograms).diagnostics
        fc, tanh = latest.layers[:2]
        act_line = histogram_line(tanh.hist)
        # the gradient view: one axis for all, ±4 x the median std (tanh's 4e-4: fc's twice narrower)
        grad_line = histogram_line(tanh.grad_hist)
        fc_line = histogram_line(rebin(fc.grad_hist, *fc.grad_range, -GRAD_SPAN * 4e-4, GRAD_SPAN * 4e-4, GRAD_BINS))
        assert act_line in svg and grad_line not in svg and fc_line not in svg
        await pilot.press("a")  # both layer panels to the activation gradients, and back
        await pilot.pause(0.1)
        svg = app.export_screenshot().replace("&#160;", " ")
        assert "Activation gradients, d loss / d output" in svg and "Saturation and dead units" not in svg
        assert "σ 2.00e-04" in svg and "σ 4.00e-04" in svg and "no gradient" in svg  # fc, tanh; lm_head has none
        assert "0.50" in svg and "1.00" in svg  # grad std against the median (of two: the larger), fc and tanh
        assert grad_line in svg and fc_line in svg and act_line not in svg
        assert fc_line.strip() and len(fc_line.strip()) < len(grad_line.strip())  # a narrower spike
        await pilot.press("a")
        await pilot.pause(0.1)
        svg = app.export_screenshot().replace("&#160;", " ")
        assert act_line in svg and "Saturation and dead units" in svg and "÷ median" not in svg
        await pilot.press("escape")
        await pilot.pause(0.1)
        assert not isinstance(app.screen, DiagnosticsScreen)


def many_layers(events: list, blocks: int) -> list:
    """The scripted record with a Transformer's layer count: eight rows a block."""
    out = []
    for e in events:
        if isinstance(e, Diagnostics):
            one = e.layers[1]
            e = dataclasses.replace(e, layers=[dataclasses.replace(one, name=f"h.{b}.{k}")
                                               for b in range(blocks) for k in range(8)])
        out.append(e)
    return out


async def test_at_80x24_the_screen_shows_one_view_at_a_time_and_its_panels_scroll():
    """Below 120x32 the three rows of panels become four views under tabs (keys 1-4), each panel the whole
    width: at 80x24 the layer table keeps every column. A model with more layers than a panel has rows scrolls
    (before, the rows below the panel's edge were cut off with no sign)."""
    from makemore.tui.app import create_app
    from makemore.tui.diagnostics_screen import DiagnosticsScreen
    from makemore.tui.widgets.diagnostics import LayerTable

    app = create_app(events=many_layers(scripted_diagnostics(), blocks=4))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.2)
        await pilot.press("d")
        await pilot.pause(0.3)
        screen = app.screen
        assert isinstance(screen, DiagnosticsScreen) and screen.has_class("-compact")
        shown = lambda: {w.id for w in screen.query(".diag-panel") if w.display and w.parent.display}
        assert shown() == {"hists", "layers"}
        table = screen.query_one(LayerTable)
        assert table.outer_size.width == 80 and table.max_scroll_y > 0  # 32 layers: more than its rows
        svg = app.export_screenshot().replace("&#160;", " ")
        assert "sat" in svg and "dead" in svg and "h.0.0" in svg and "h.3.7" not in svg
        table.scroll_end(animate=False)
        await pilot.pause(0.1)
        assert "h.3.7" in app.export_screenshot().replace("&#160;", " ")
        for key, panels in (("2", {"ratios"}), ("3", {"embedding"}), ("4", {"grad-norm", "lr"}),
                            ("1", {"hists", "layers"})):
            await pilot.press(key)
            await pilot.pause(0.1)
            assert shown() == panels, key
            assert all(screen.query_one(f"#{p}").outer_size.width == 80 for p in panels)
        assert screen.check_action("gradients", ()) and not screen.check_action("log_norm", ())
        await pilot.press("4")
        assert screen.check_action("log_norm", ()) and not screen.check_action("gradients", ())
        await pilot.press("d")
        await pilot.pause(0.1)
        assert not isinstance(app.screen, DiagnosticsScreen)
    app = create_app(events=scripted_diagnostics())
    async with app.run_test(size=(120, 40)) as pilot:  # wide enough: the rows as they were, no tabs
        await pilot.pause(0.2)
        await pilot.press("d")
        await pilot.pause(0.3)
        assert not app.screen.has_class("-compact") and not app.screen.check_action("view", ("layers",))
        assert all(w.display for w in app.screen.query(".diag-panel"))


async def test_training_in_the_tui_records_diagnostics_by_default(small_words, tmp_path):
    import time

    from makemore.training import Request
    from makemore.tui.app import create_app
    from makemore.tui.diagnostics_screen import DiagnosticsScreen

    request = Request(data=str(small_words), model_type="mlp", out=tmp_path / "run",
                      hyper=dict(n_embd=4, n_embd2=16), train=dict(max_steps=30, eval_interval=30, batch_size=8),
                      device="cpu")
    app = create_app(request=request)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.run_screen()
        deadline = time.monotonic() + 60
        while screen.state.snapshot().finished is None:
            assert time.monotonic() < deadline, "training did not finish"
            await pilot.pause(0.1)
        await pilot.press("d")
        diag = app.screen
        assert isinstance(diag, DiagnosticsScreen)
        while diag.history.latest is None:
            assert time.monotonic() < deadline, "no diagnostics on the screen"
            await pilot.pause(0.1)
        # the default interval of 100 records step 0, and the last step of the 30
        assert diag.history.latest.step == 29 and diag.run_dir == tmp_path / "run"


def test_diagnostics_screen_snapshot(snap_compare):
    from makemore.tui.app import create_app

    async def open_screen(pilot):
        await pilot.pause(0.3)
        await pilot.press("d")
        await pilot.pause(0.8)

    assert snap_compare(create_app(events=scripted_diagnostics()), terminal_size=(120, 40), run_before=open_screen)


# --- under torchrun ---------------------------------------------------------------------------------------

def test_ddp_rank_zero_records_the_global_gradients(names_path, tmp_path):
    import os
    import subprocess
    import sys

    words = tmp_path / "words.txt"
    words.write_text("".join(names_path.read_text().splitlines(keepends=True)[:2000]))
    options = ["--type", "mlp", "--max-steps", "12", "--batch-size", "9", "--eval-interval", "100", "--diagnostics",
               "--diag-interval", "5", "-q",
               # the same arithmetic in all three, whatever the first steps' timings find on a loaded machine
               "--dtype", "float32", "--matmul-precision", "highest"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MAKEMORE_DIST_TIMEOUT": "60"}
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m",
                          "makemore", "train", str(words), "-o", "ddp", *options], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert ddp.returncode == 0, ddp.stdout + ddp.stderr
    r = runner.invoke(app, ["train", str(words), "-o", str(tmp_path / "one"), *options])
    assert r.exit_code == 0, r.output
    # one process in two micro-batches: its first is rank 0's share (words 0-4 of 9)
    r = runner.invoke(app, ["train", str(words), "-o", str(tmp_path / "accum"), "--grad-accum", "2", *options])
    assert r.exit_code == 0, r.output
    got = {name: [m for m in metrics(tmp_path / name) if m["event"] == "diagnostics"]
           for name in ("ddp", "one", "accum")}
    assert [m["step"] for m in got["ddp"]] == [m["step"] for m in got["one"]] == [0, 5, 10, 11]  # rank 0 alone
    # the same global batch: after the all-reduce rank 0 sees the one-process gradient (summation order aside)
    for a, b in zip(got["ddp"][0]["weights"], got["one"][0]["weights"]):
        assert a["grad_std"] == pytest.approx(b["grad_std"], rel=1e-4)
    assert got["ddp"][0]["grad_norm"] == pytest.approx(got["one"][0]["grad_norm"], rel=1e-4)
    # activation gradients are those of the global batch's loss, whatever ran the step: rank 0's (its backward
    # scaled by the world size) equal those of the same words as the first of two micro-batches
    for a, b in zip(got["ddp"][0]["layers"], got["accum"][0]["layers"]):
        assert a["name"] == b["name"] and a["std"] == pytest.approx(b["std"], rel=1e-5)
        assert a["grad_std"] == pytest.approx(b["grad_std"], rel=1e-4)
        assert a["grad_mean"] == pytest.approx(b["grad_mean"], rel=1e-3, abs=1e-9)
        assert a["grad_hist"] == pytest.approx(b["grad_hist"], abs=1e-6)


@pytest.mark.slow
def test_compile_records_every_statistic_on_an_eager_step(small_words, tmp_path):
    trainer = trainer_for(small_words, tmp_path / "run", max_steps=7, diag_interval=3, compile=True)
    plain = trainer_for(small_words, tmp_path / "plain", max_steps=7, diag_interval=3)
    got = records(trainer)
    want = records(plain)
    assert trainer.forward is not trainer.ddp and [d.step for d in got] == [0, 3, 6]
    assert [layer.name for layer in got[0].layers] == [layer.name for layer in want[0].layers] == ["fc", "tanh",
                                                                                                  "lm_head"]
    assert got[0].layers[1].saturation == pytest.approx(want[0].layers[1].saturation, abs=1e-6)
    for a, b in zip(got[0].layers, want[0].layers):  # activation gradients too, from the eager record step
        assert a.grad_std is not None and a.grad_std == pytest.approx(b.grad_std, rel=1e-5)
    assert not any(m._forward_hooks for m in trainer.model.modules())


# --- the Python API ---------------------------------------------------------------------------------------

def test_the_api_records_diagnostics_and_reads_them_back(small_words, tmp_path):
    import makemore

    tiny = dict(type="mlp", max_steps=12, eval_interval=100, batch_size=16, n_embd=4, n_embd2=16, progress=False)
    run = makemore.train(small_words, out=tmp_path / "scaled", diagnostics=True, diag_interval=5, init_scale=2.0,
                         **tiny)
    records = run.diagnostics()
    assert [d.step for d in records] == [0, 5, 10, 11] and all(isinstance(d, Diagnostics) for d in records)
    written = [m for m in metrics(run.run_dir) if m["event"] == "diagnostics"]
    assert [d.to_json() for d in records] == written  # what metrics.jsonl holds, as events
    assert run.latest_diagnostics() == records[-1] and records[-1].layers[1].grad_std is not None
    loaded = makemore.load(run.run_dir)
    assert loaded.diagnostics() == records and loaded.latest_diagnostics() == records[-1]
    # init_scale reached the trainer: at step 0 the hidden weights are twice those of the same seed unscaled
    plain = makemore.train(small_words, out=tmp_path / "plain", diagnostics=True, diag_interval=5, **tiny)
    weight = lambda d: next(w for w in d.weights if w.name == "fc.weight")  # noqa: E731
    assert weight(records[0]).data_std == pytest.approx(2 * weight(plain.diagnostics()[0]).data_std, rel=1e-6)
    assert json.loads((run.run_dir / "config.json").read_text())["train"]["diag_interval"] == 5
    off = makemore.train(small_words, out=tmp_path / "off", **tiny)
    assert off.diagnostics() == [] and off.latest_diagnostics() is None


def test_the_api_lr_find_returns_what_the_cli_prints(small_words, capsys):
    import makemore

    options = dict(type="bigram", steps=40, min=1e-3, max=1000.0, device="cpu")
    sweep = makemore.lr_find(small_words, **options)
    assert capsys.readouterr() == ("", "")  # the library prints nothing
    r = runner.invoke(app, ["lr-find", str(small_words), "--type", "bigram", "--steps", "40", "--min", "1e-3",
                            "--max", "1000", "--device", "cpu", "--json"])
    assert r.exit_code == 0, r.output
    cli = json.loads(r.stdout)
    # (the same sweep: equal up to the order of threaded float sums)
    assert sweep.lrs == pytest.approx(cli["lrs"]) and sweep.losses == pytest.approx(cli["losses"], rel=1e-4)
    assert sweep.suggested == pytest.approx(cli["suggested_lr"]) and sweep.suggested in sweep.lrs
    assert sweep.exploded_at == cli["exploded_at"] and sweep.recipe_lr == cli["recipe_lr"]
    with pytest.raises(makemore.MakemoreError, match="--min"):
        makemore.lr_find(small_words, type="bigram", min=1.0, max=0.1)


def test_histograms_of_large_layers_are_sampled_and_close_to_the_whole():
    """Above HIST_SAMPLE values the histogram is taken on a fixed sample: its shares stay within three standard
    errors of the whole tensor's, the positions do not change between records, and small layers are exact."""
    from makemore import diagnostics as dg

    gen = torch.Generator().manual_seed(0)
    big = torch.cat([torch.randn(300_000, generator=gen) * 0.3, torch.rand(100_000, generator=gen) * 2 - 1])
    whole = torch.histc(big.clamp(-1, 1), bins=20, min=-1, max=1) / big.numel()
    sampled = dg.histogram(big, 20, -1.0, 1.0)
    bound = 3 * (whole * (1 - whole) / dg.HIST_SAMPLE).sqrt() + 1e-3
    assert torch.all((sampled - whole).abs() <= bound), (sampled - whole).abs().max()
    assert torch.equal(sampled, dg.histogram(big, 20, -1.0, 1.0))  # the same positions every time
    small = big[: dg.HIST_SAMPLE]
    exact = torch.histc(small.clamp(-1, 1), bins=20, min=-1, max=1) / small.numel()
    assert torch.equal(dg.histogram(small, 20, -1.0, 1.0), exact)


def test_runs_before_the_first_run_says_there_are_none(tmp_path, monkeypatch):
    """`makemore runs` where no run was made yet (no runs/ directory): no runs, as in an empty directory; a
    directory the user names must exist."""
    monkeypatch.chdir(tmp_path)
    r = runner.invoke(app, ["runs"])
    assert r.exit_code == 0 and "no runs in runs/; train one first" in r.stderr, r.output
    r = runner.invoke(app, ["runs", "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout) == {"runs": [], "unreadable": []}
    r = runner.invoke(app, ["runs", "elsewhere"])
    assert r.exit_code == 2 and "elsewhere: no such directory" in r.stderr


def test_labels_on_the_same_cells_are_joined_not_hidden():
    from makemore.tui.widgets.diagnostics import joined_labels

    # a and b on one point, c one cell-width right of them (touching), d far away, e on d's row but apart
    xs, ys = [0.0, 0.0, 1 / 39, 1.0, 0.5], [0.0, 0.0, 0.0, 1.0, 1.0]
    placed = joined_labels(xs, ys, ["a", "b", "c", "d", "e"], cols=40, rows=10)
    assert sorted(text for *_, text in placed) == ["abc", "d", "e"]
    assert (0.0, 0.0, "abc") in placed  # at the first one's place
    # on a plot wide enough to part them, every label keeps its own place
    assert len(joined_labels([0.0, 0.5, 1.0], [0.0, 0.0, 0.0], ["x", "y", "z"], cols=40, rows=10)) == 3
    assert joined_labels([2.0], [3.0], ["q"], cols=40, rows=10) == [(2.0, 3.0, "q")]  # one point: no range


def test_diagnose_joins_labels_on_the_same_cells_of_its_plot():
    """`diagnose` drew every label over the ones before it: a space's label and an 'e' a hair apart showed as
    one `' '`, the 'e' gone; a label at the right edge was cut. The command's plot joins them as the TUI's does,
    on the grid of cells its points were drawn on."""
    from makemore.instruments import embedding_plot

    labels = ["' '", "e", *"abcdfghjkl", "'\\n'"]
    coords = [[-0.0209, 0.1011], [-0.0195, 0.0916], *([i / 10 - 0.4, (i % 4) / 10 - 0.15] for i in range(10)),
              [0.6, -0.2]]
    plot = embedding_plot(coords, labels, "title")
    drawn = "".join(plot.splitlines()[1:])
    assert "' 'e" in drawn, plot  # joined, at the first one's place
    assert "'\\n'" in drawn  # whole: moved left from the right edge
    assert all(c in drawn for c in "abcdfghjkl")


async def test_the_embedding_scatter_shows_every_character_even_when_they_coincide():
    from textual.app import App

    from makemore.tui.widgets.diagnostics import EmbeddingScatter

    vocab = list(".abcdefghijklmnopqrstuvwxyz")
    # two clusters: the vowels all at one point, the consonants spread along a line
    coords = [[1.0, 1.0] if c in "aeiou" else [i / 27, -1.0 + (i % 3) * 0.01] for i, c in enumerate(vocab)]

    class One(App):
        def compose(self):
            yield EmbeddingScatter()

    app = One()
    async with app.run_test(size=(80, 24)) as pilot:
        scatter = app.query_one(EmbeddingScatter)
        scatter.set_data(coords, vocab)
        await pilot.pause(0.1)
        shown = "".join(str(line.text) for line in scatter.render_lines(scatter.region.reset_offset))
        assert "aeiou" in shown
        assert all(c in shown for c in "bcdfghjklmnpqrstvwxyz")
        # a damaged record's infinity or a diverged run's NaN: the rest drawn, the count said (plotext raised)
        scatter.set_data([[math.inf, 0.0], [math.nan, 1.0], *coords[2:]], vocab)
        await pilot.pause(0.1)
        shown = "".join(str(line.text) for line in scatter.render_lines(scatter.region.reset_offset))
        assert "2 points not finite, left out" in shown and all(c in shown for c in "bcdfghjklmnpqrstvwxyz")


def test_a_run_diverging_under_diagnostics_ends_as_diverged_and_its_plot_leaves_out_what_is_not_finite(
        small_words, tmp_path):
    """A run with --diagnostics whose weights blew up crashed with a traceback (exit 1) in the embedding's SVD
    and was left unmarked ("no" in `runs`, not "failed"); a record whose embedding held an infinity crashed
    `diagnose` in the plot. The projection of a matrix that is not finite is NaN, the run ends as any diverged
    run does, and the plot draws the points it can and says how many it left out."""
    import torch

    from makemore.diagnostics import project_2d
    from makemore.instruments import embedding_plot

    torch.manual_seed(0)
    m = torch.randn(27, 8)
    coords, variance = project_2d(m)
    huge_coords, huge_variance = project_2d(m * 1e36)  # finite, near float32's limit: the same picture
    torch.testing.assert_close(huge_coords / 1e36, coords, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(huge_variance, variance, rtol=1e-4, atol=1e-5)
    bad = m.clone()
    bad[3, 2] = math.inf
    bad_coords, bad_variance = project_2d(bad)
    assert bad_coords.shape == (27, 2) and bad_coords.isnan().all() and bad_variance.isnan()

    run = tmp_path / "diverged"
    r = runner.invoke(app, ["train", str(small_words), "--type", "mlp", "--lr", "1e4", "--grad-clip", "0",
                            "--max-steps", "30", "--diagnostics", "--diag-interval", "1", "-o", str(run), "-q"])
    assert r.exit_code == 2 and "training diverged" in r.stderr, r.output
    assert "Traceback" not in r.output
    listed = json.loads(runner.invoke(app, ["runs", str(tmp_path), "--json"]).stdout)["runs"]
    assert len(listed) == 1 and listed[0]["failed"].startswith("training diverged"), listed

    coords = [[0.0, 0.0], [1.0, 1.0], [math.inf, 0.0], [1e308, -1e308], [math.nan, 2.0]]
    plot = embedding_plot(coords, ["a", "b", "c", "d", "e"], "title")
    assert plot.splitlines()[0] == "title · 3 points not finite, left out", plot
    drawn = "".join(plot.splitlines()[1:])
    assert "a" in drawn and "b" in drawn and not any(c in drawn for c in "cde")
    assert embedding_plot(coords[2:], ["c", "d", "e"], "title") == "title · 3 points not finite, left out"


def test_joined_labels_keep_to_the_plot_and_skip_what_cannot_be_drawn():
    from makemore.tui.widgets.diagnostics import joined_labels

    # a row of 30 labels on a 10-column plot: one text, cut to the row, starting at the left edge (not left of it)
    placed = joined_labels([i / 29 for i in range(30)], [0.0] * 30, [chr(97 + i % 26) for i in range(30)],
                           cols=10, rows=5)
    assert placed == [(0.0, 0.0, "abcdefghi…")]
    # left to right within a row whatever the order given; a joined text never covers the next group
    placed = joined_labels([1.0, 0.0, 0.03, 0.5], [0.0, 0.0, 0.0, 0.0], ["z", "a", "b", "m"], cols=40, rows=5)
    assert [text for *_, text in placed] == ["ab", "m", "z"]
    assert joined_labels([float("nan"), 0.0, 1.0], [0.0, float("inf"), 1.0], ["a", "b", "c"], 40, 5) == \
        [(1.0, 1.0, "c")]
    assert joined_labels([], [], [], 40, 5) == []


async def test_the_charts_start_at_step_0_keep_their_legend_below_and_a_bigram_says_it_has_no_layers():
    """Three faults of the screen: plotext's legend lay over the first steps of the update/data lines; a
    series starting after step 0 (the learning rate's, a bigram's one ratio) put the tick "0" left of the axis;
    a model with no hidden layer showed empty panels."""
    import re

    from makemore.tui.app import create_app
    from makemore.tui.widgets.diagnostics import NO_LAYERS, LegendedChart
    from tui_helpers import screen_lines

    app = create_app(events=edited_diagnostics(lambda e: dataclasses.replace(e, layers=[])))
    async with app.run_test(size=(120, 40)) as pilot:
        await open_diagnostics(pilot)
        lines = screen_lines(app)
        assert sum(line.count(NO_LAYERS[:25]) for line in lines) == 2, "\n".join(lines)  # both layer panels say it
        panel = app.screen.query_one("#ratios", LegendedChart)
        assert sorted(name for name, _ in panel.legend.entries) == ["fc", "lm_head", "wte"]
        legend_x = panel.legend.content_region.x  # the names beside the plot, not over it
        assert legend_x >= panel.chart.region.right and all(
            any(line[legend_x:].startswith(f"━ {name}") for line in lines) for name in ("wte", "fc", "lm_head"))
        assert not any("wte.weight" in line for line in lines), "\n".join(lines)
        # under each chart's axis corner "└┬", the tick label 0 ends in the tick's column
        corners = [(i, m.start() + 1) for i, line in enumerate(lines) for m in re.finditer("└┬", line)]
        assert len(corners) == 4, "\n".join(lines)  # update/data, embeddings, gradient norm, learning rate
        for row, col in corners:
            if lines[row + 1][col] != "0":  # the embedding scatter's x axis is not steps
                assert lines[row + 1][col - 2:col + 3].strip() not in ("0",), (row, lines[row + 1])
        steps = [(row, col) for row, col in corners if "step" in lines[row + 2]]
        assert len(steps) == 3 and all(lines[row + 1][col] == "0" for row, col in steps), \
            "\n".join(lines[r + 1] for r, _ in steps)


async def test_the_update_data_legend_names_a_transformers_eight_lines():
    """The legend sat in the panel's bottom border, which held four of a 2-layer Transformer's eight names at
    120x40. It is a column beside the chart: all eight at 120x40; where rows run out, the rest are counted."""
    from makemore.tui.app import create_app
    from makemore.tui.widgets.diagnostics import LegendedChart
    from tui_helpers import screen_lines

    names = [f"h.{b}.{w}" for b in (0, 1) for w in ("mlp.c_fc", "mlp.c_proj", "attn.c_attn", "attn.c_proj")]

    def eight(e):
        one = e.weights[1]
        return dataclasses.replace(e, weights=[dataclasses.replace(one, name=f"{n}.weight", shape=[64 * (9 - k), 64],
                                                                   update_to_data=-3 + k / 10)
                                               for k, n in enumerate(names)])

    app = create_app(events=edited_diagnostics(eight))
    async with app.run_test(size=(120, 40)) as pilot:
        await open_diagnostics(pilot)
        lines = screen_lines(app)
        panel = app.screen.query_one("#ratios", LegendedChart)
        x = panel.legend.content_region.x
        assert [line[x:].split("│")[0].strip() for line in lines if line[x:].startswith("━ ")] == \
            [f"━ {n}" for n in names], "\n".join(lines)
        assert any(line.startswith("│-3├") for line in lines), "\n".join(lines)  # a round tick on the -3 line
        await pilot.resize_terminal(80, 13)  # the compact view: fewer rows than names
        await pilot.pause(0.2)
        await pilot.press("2")
        await pilot.pause(0.3)
        lines = screen_lines(app)
        x = panel.legend.content_region.x
        shown = [line[x:].split("│")[0].strip() for line in lines if line[x:].startswith(("━ ", "+"))]
        rows = panel.legend.region.height
        assert 2 <= rows < len(names) and len(shown) == rows, "\n".join(lines)
        assert shown[:-1] == [f"━ {n}" for n in names[:rows - 1]] and shown[-1] == f"+{len(names) - rows + 1} more"


def test_round_ticks_fall_on_round_values_one_every_other_row():
    from makemore.tui.widgets.log_axis import round_ticks

    class Plot:
        ticks = None

        def yticks(self, ticks, labels):
            self.ticks = list(zip(ticks, labels))

    def ticks(values, rows):
        plt = Plot()
        round_ticks(plt, values, rows)
        return plt.ticks

    assert ticks([-3.99, -1.0, -3.5], 7) == [(-3, "-3"), (-2, "-2"), (-1, "-1")]  # plotext: -3.99, -3.49, ...
    assert ticks([-3.5, -1.0], 15) == [(-3.5, "-3.5"), (-3, "-3"), (-2.5, "-2.5"), (-2, "-2"), (-1.5, "-1.5"),
                                       (-1, "-1")]
    assert [t for t, _ in ticks([1e-4, 0.0101], 7)] == [0.0025, 0.005, 0.0075, 0.01]
    assert ticks([2.0, 2.0], 7) is None and ticks([float("nan")], 7) is None  # plotext's own
    assert ticks([0.31, 0.49], 7) is not None and all(0.31 <= t <= 0.49 for t, _ in ticks([0.31, 0.49], 7))


async def test_the_layer_tables_fit_a_transformers_names_at_120_columns():
    """Two spaces between columns cut the gradient table's headers ("grad me…", "÷ medi…") and the layer names
    ("h.0.attn.c_at…") at 120x40, with columns left blank at the right; one space fits them."""
    from makemore.tui.app import create_app
    from tui_helpers import screen_lines

    names = [("h.0.attn.c_attn", "linear"), ("h.0.attn", "attention"), ("h.0.attn.c_proj", "linear"),
             ("h.0.mlp.c_proj", "linear")]
    app = create_app(events=edited_diagnostics(lambda e: dataclasses.replace(
        e, layers=[dataclasses.replace(e.layers[1], name=n, kind=k) for n, k in names])))
    async with app.run_test(size=(120, 40)) as pilot:
        await open_diagnostics(pilot)
        await pilot.press("a")
        await pilot.pause(0.2)
        text = "\n".join(screen_lines(app))
        assert "grad mean" in text and "÷ median" in text and "…" not in text.split("Activation gradients per")[1]
        assert all(name in text for name, _ in names), text
