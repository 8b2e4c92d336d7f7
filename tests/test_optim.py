"""makemore.optim.AdamW against torch.optim.AdamW(fused=True): the same weights step by step, checkpoints that
load either way, and the start-up it exists to save."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from makemore import optim


def _model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.GELU(), torch.nn.LayerNorm(8), torch.nn.Linear(8, 3))


def _groups(model):
    params = list(model.parameters())
    return [{"params": [p for p in params if p.dim() >= 2], "weight_decay": 0.1},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]


def _train(model, opt, steps: int, start: int = 0) -> None:
    for step in range(start, start + steps):
        g = torch.Generator().manual_seed(step)
        x, y = torch.randn(16, 5, generator=g), torch.randint(0, 3, (16,), generator=g)
        for group in opt.param_groups:
            group["lr"] = 1e-2 * (1 + step) / (2 + step)  # the trainer sets the rate each step
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        opt.zero_grad(set_to_none=step % 2 == 0)  # both ways, as torch's optimizers do it


def test_the_weights_move_exactly_as_under_torchs_fused_adamw():
    ours, theirs = _model(), _model()
    _train(ours, optim.AdamW(_groups(ours), lr=1e-2, betas=(0.9, 0.99)), 12)
    _train(theirs, torch.optim.AdamW(_groups(theirs), lr=1e-2, betas=(0.9, 0.99), fused=True), 12)
    for a, b in zip(ours.parameters(), theirs.parameters()):
        assert torch.equal(a, b)
    assert not torch.equal(next(ours.parameters()), next(_model().parameters()))  # they did move


@pytest.mark.parametrize("first", ["ours", "torch"])
def test_a_checkpoint_of_either_continues_under_the_other(first):
    """Five steps under one optimizer, its state_dict loaded into the other, five more steps: the weights equal
    ten steps under one optimizer throughout, and the saved layout (group settings, step counts) is torch's."""
    make = {"ours": lambda m: optim.AdamW(_groups(m), lr=1e-2, betas=(0.9, 0.99)),
            "torch": lambda m: torch.optim.AdamW(_groups(m), lr=1e-2, betas=(0.9, 0.99), fused=True)}
    second = "torch" if first == "ours" else "ours"
    whole = _model()
    _train(whole, make[first](whole), 10)
    model = _model()
    opt = make[first](model)
    _train(model, opt, 5)
    saved = opt.state_dict()
    assert sorted(saved["state"]) == list(range(6))
    assert [g["params"] for g in saved["param_groups"]] == [[0, 1], [2, 3, 4, 5]]  # numbered across the groups
    assert all(float(s["step"]) == 5 for s in saved["state"].values())
    # as the run directory keeps it: the groups' settings in JSON metadata (tuples come back as lists)
    saved = {"state": saved["state"], "param_groups": json.loads(json.dumps(saved["param_groups"]))}
    resumed = make[second](model)
    resumed.load_state_dict(saved)
    again = resumed.state_dict()
    assert json.loads(json.dumps(again["param_groups"])) == saved["param_groups"]
    for i, entry in saved["state"].items():
        assert all(torch.equal(again["state"][i][k], value) for k, value in entry.items())
    _train(model, resumed, 5, start=5)
    for a, b in zip(model.parameters(), whole.parameters()):
        assert torch.equal(a, b)


def test_under_a_grad_scaler_a_step_with_an_infinite_gradient_is_skipped_as_by_torchs():
    """GradScaler as the trainer drives it (unscale, step, update), with an infinite gradient at one step: the
    same weights and step counts as torch's fused AdamW, the bad step skipped by both."""
    results = []
    for make in (lambda m: optim.AdamW(_groups(m), lr=1e-2, betas=(0.9, 0.99)),
                 lambda m: torch.optim.AdamW(_groups(m), lr=1e-2, betas=(0.9, 0.99), fused=True)):
        model = _model()
        opt, scaler = make(model), torch.amp.GradScaler("cpu", init_scale=2.0 ** 4)
        for step in range(6):
            g = torch.Generator().manual_seed(step)
            x, y = torch.randn(16, 5, generator=g), torch.randint(0, 3, (16,), generator=g)
            scaler.scale(torch.nn.functional.cross_entropy(model(x), y)).backward()
            if step == 2:
                next(model.parameters()).grad[0, 0] = float("inf")
            scaler.unscale_(opt)
            scaler.step(opt)
            scaler.update()
            opt.zero_grad()
        results.append(([p.detach().clone() for p in model.parameters()],
                        [float(s["step"]) for s in opt.state_dict()["state"].values()]))
    (ours, our_steps), (theirs, their_steps) = results
    assert our_steps == their_steps == [5.0] * 6
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs))


def test_a_checkpoint_that_does_not_fit_is_refused():
    model = _model()
    opt = optim.AdamW(_groups(model), lr=1e-2)
    _train(model, opt, 1)
    saved = opt.state_dict()
    with pytest.raises(ValueError, match="parameter groups"):
        optim.AdamW(_groups(model)[:1], lr=1e-2).load_state_dict(saved)
    other = torch.nn.Sequential(torch.nn.Linear(5, 9), torch.nn.GELU(), torch.nn.LayerNorm(9), torch.nn.Linear(9, 3))
    with pytest.raises(ValueError, match="shape"):
        optim.AdamW(_groups(other), lr=1e-2).load_state_dict(saved)


def test_the_trainers_optimizer_does_not_import_torch_dynamo():
    """What the module is for: torch.optim's constructor imports torch._dynamo (a second at every launch)."""
    code = ("import sys, torch\n"
            "from makemore.config import TrainConfig\n"
            "from makemore.models import FAMILIES, build_model, step_recipe\n"
            "from makemore.trainer import make_optimizer\n"
            "model = build_model('transformer', 27, 16, dict(FAMILIES['transformer'].hyper))\n"
            "opt = make_optimizer(model, TrainConfig(**step_recipe('transformer')), flat=True)\n"
            "model(torch.zeros(2, 16, dtype=torch.long))[0].sum().backward(); opt.step()\n"
            "print(type(opt).__module__, 'torch._dynamo' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["makemore.optim", "False"]
