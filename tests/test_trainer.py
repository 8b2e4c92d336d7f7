"""The trainer's arithmetic: gradient accumulation and the learning-rate schedule, against computations made
here independently."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from makemore.training import Request, new_trainer

SMALL = {"transformer": {"n_layer": 1, "n_head": 2, "n_embd": 16, "dropout": 0.0},
         "mlp": {"n_embd2": 32}, "rnn": {"n_embd2": 32}}


def _train_recording(words: Path, out: Path, model_type: str, grad_accum: int, monkeypatch):
    """Three steps; returns the gradients handed to the optimizer at each step, the Step losses, the final
    weights and how many training forward passes (micro-batches) ran."""
    from makemore import device

    # the GELU kernel and the matmuls' precision given: the first step's timing would run forward passes of its own
    monkeypatch.setattr(device, "native_gelu_pays", lambda rows, width, passes: False)
    monkeypatch.setattr(device, "matmuls_in_onednn_pay", lambda key, passes: False)
    monkeypatch.setattr(device, "bfloat16_pays", lambda key, passes, use, run_seconds=None: False)
    trainer, _ = new_trainer(Request(data=str(words), model_type=model_type, out=out, hyper=SMALL[model_type],
                                     train={"max_steps": 3, "eval_interval": 3, "batch_size": 16,
                                            "learning_rate": 1e-2, "warmup_steps": 0, "grad_accum": grad_accum}))
    trainer.cfg.log_interval = 1
    grads, forwards = [], []
    trainer.optimizer.register_step_pre_hook(
        lambda opt, args, kwargs: grads.append([p.grad.clone() for g in opt.param_groups for p in g["params"]]))
    trainer.model.register_forward_pre_hook(lambda module, args: forwards.append(1) if module.training else None)
    losses = [e.loss for e in trainer.run() if e.kind == "step"]
    return grads, losses, {k: v.clone() for k, v in trainer.model.state_dict().items()}, len(forwards)


@pytest.mark.parametrize("model_type", list(SMALL))  # packed rows (Transformer) and padded batches
def test_grad_accum_gives_the_update_of_one_batch(small_words, tmp_path, model_type, monkeypatch):
    """--grad-accum 3: 16 words in micro-batches of 6, 6 and 4 words (of different lengths) give the gradient,
    the loss and the weights of one batch of 16, step after step (the README's promise)."""
    k = 3
    one = _train_recording(small_words, tmp_path / "one", model_type, 1, monkeypatch)
    split = _train_recording(small_words, tmp_path / "split", model_type, k, monkeypatch)
    assert one[3] == 3 and split[3] == 3 * k  # k micro-batches per step
    for step, (a, b) in enumerate(zip(one[0], split[0], strict=True)):
        for ga, gb in zip(a, b, strict=True):
            torch.testing.assert_close(gb, ga, rtol=1e-5, atol=1e-7, msg=f"gradient of step {step}")
    torch.testing.assert_close(split[1], one[1], rtol=1e-6, atol=1e-6)  # the batch's mean loss
    for name, weight in one[2].items():  # the weights after three AdamW steps
        torch.testing.assert_close(split[2][name], weight, rtol=1e-4, atol=1e-4, msg=name)


# --- the learning-rate schedule -----------------------------------------------------------------------

def _config(**overrides):
    from makemore.config import TrainConfig

    settings = dict(max_steps=16, batch_size=8, learning_rate=1.0, min_lr_ratio=0.1, warmup_steps=4,
                    weight_decay=0.0, grad_clip=0.0, eval_interval=100)
    return TrainConfig(**{**settings, **overrides})


# peak 1, floor 0.1: the cosine at a third, half and two thirds of the way
THIRD, HALF, TWO_THIRDS = 0.775, 0.55, 0.325  # 0.1 + 0.45 * (1 + cos(pi / 3)), cos(pi / 2), cos(2 pi / 3)


def test_schedule_warms_up_linearly_then_follows_a_cosine_to_its_floor():
    """4 warm-up steps, 16 steps: the cosine spans steps 4 to 16 (12 steps)."""
    from makemore.config import lr_at

    cfg = _config()
    hand = {0: 0.25, 1: 0.5, 2: 0.75, 3: 1.0,  # warm-up: (step + 1) / 4 of the peak
            4: 1.0, 8: THIRD, 10: HALF, 12: TWO_THIRDS,
            16: 0.1, 20: 0.1}  # the floor, and after the budget
    assert {step: lr_at(step, cfg) for step in hand} == pytest.approx(hand, abs=1e-12)
    assert lr_at(0, _config(warmup_steps=0)) == pytest.approx(1.0)  # no warm-up: the peak at once
    assert lr_at(10, _config(min_lr_ratio=0.0)) == pytest.approx(0.5)  # decays to zero


def test_schedule_on_a_time_budget_follows_the_seconds_trained():
    """--max-time 60 without a step limit: the cosine runs over the seconds, and the warm-up steps rise until
    they meet it."""
    from makemore.config import lr_at

    cfg = _config(max_steps=0, max_time=60.0)
    hand = {(2, 0.0): 0.75,  # still warming up: steps, not seconds
            (2, 40.0): TWO_THIRDS,  # ... until the rise meets the cosine: from there, the cosine
            (4, 0.0): 1.0, (100, 20.0): THIRD, (5000, 30.0): HALF, (7, 40.0): TWO_THIRDS,
            (9, 60.0): 0.1, (9, 75.0): 0.1}  # the floor, and past the budget
    assert {key: lr_at(*key[:1], cfg, key[1]) for key in hand} == pytest.approx(hand, abs=1e-12)


def test_schedule_with_both_budgets_follows_whichever_is_further_spent():
    """--max-steps 16 and --max-time 60: the step count and the clock each say how far the run is; the further
    one decides, so the rate reaches its floor when the first budget ends."""
    from makemore.config import lr_at

    cfg = _config(max_time=60.0)
    hand = {(8, 0.0): THIRD, (8, 30.0): HALF,  # a third by steps; half by time
            (12, 30.0): TWO_THIRDS,  # two thirds by steps, half by time
            (10, 40.0): TWO_THIRDS, (16, 1.0): 0.1, (5, 60.0): 0.1}
    assert {key: lr_at(*key[:1], cfg, key[1]) for key in hand} == pytest.approx(hand, abs=1e-12)


def _expected_lr(step: int, elapsed: float, cfg) -> float:
    """The schedule written out once more, for a run with steps, time or both as its budget."""
    warming = cfg.learning_rate * (step + 1) / cfg.warmup_steps if step < cfg.warmup_steps else math.inf
    fractions = [0.0]
    if cfg.max_steps:
        fractions.append((step - cfg.warmup_steps) / (cfg.max_steps - cfg.warmup_steps))
    if cfg.max_time:
        fractions.append(elapsed / cfg.max_time)
    done = min(1.0, max(fractions))  # whichever budget is further spent
    floor = cfg.learning_rate * cfg.min_lr_ratio
    return min(warming, floor + (cfg.learning_rate - floor) * (1 + math.cos(math.pi * done)) / 2)


def test_a_short_time_budget_s_rate_does_not_fall_at_the_end_of_the_warm_up():
    """--max-time 3 with 100 warm-up steps that take 1 s: the rate fell from the peak at step 99 to the cosine's
    value a third of the way through (0.775 of it here) at step 100; it now meets the cosine and follows it."""
    from makemore.config import lr_at

    cfg = _config(max_steps=0, max_time=3.0, warmup_steps=100)
    rates = [lr_at(step, cfg, step / 100) for step in range(200)]  # 10 ms a step
    assert max(abs(a - b) for a, b in zip(rates, rates[1:])) < 0.02  # no jump: at most a warm-up step's rise
    # the last warm-up step (0.99 s of 3: a third of the way) is already on the cosine, below the peak of 1
    assert rates[99] == pytest.approx(0.1 + 0.45 * (1 + math.cos(math.pi * 0.33)), abs=1e-12)
    assert rates[100] == pytest.approx(THIRD, abs=1e-12)  # step 100 at 1.00 s: a third of the way


@pytest.mark.parametrize("budget, ends", [
    ({"max_steps": 40}, "steps"),
    ({"max_time": 1.0}, "time"),
    ({"max_steps": 1_000_000, "max_time": 1.0}, "time"),  # the time runs out long before the steps
    ({"max_steps": 40, "max_time": 1_000.0}, "steps"),  # the steps run out long before the time
])
def test_trainer_follows_the_schedule_of_whichever_budget_ends_first(small_words, tmp_path, budget, ends):
    """The learning rate handed to the optimizer at every step, against the schedule at that step and at the
    seconds trained so far (read off the trainer as the step begins)."""
    trainer, _ = new_trainer(Request(data=str(small_words), model_type="bigram", out=tmp_path / "r",
                                     train={"batch_size": 4, "learning_rate": 0.1, "warmup_steps": 2,
                                            "eval_interval": 1_000_000, **budget}))
    seen = []
    trainer.optimizer.register_step_pre_hook(
        lambda opt, args, kwargs: seen.append((trainer.step, trainer.elapsed, opt.param_groups[0]["lr"])))
    finished = list(trainer.run())[-1]
    assert finished.reason == {"steps": "max_steps", "time": "max_time"}[ends]
    assert len(seen) == finished.step > 2 and [s for s, _, _ in seen] == list(range(finished.step))
    for step, elapsed, lr in seen:
        assert lr == pytest.approx(_expected_lr(step, elapsed, trainer.cfg), rel=1e-9), (step, elapsed)
    if ends == "time":  # the last steps approach the floor
        assert seen[-1][2] < trainer.cfg.learning_rate / 2


def test_step_rates_and_the_clock_count_training_alone(small_words, tmp_path, monkeypatch):
    """A fake clock on which a training step takes 1 s, an evaluation 100 s and a pause 50 s. Evaluations fall
    between the Step events (every 7 steps; a Step every 10), and the run pauses once: every Step must report 1
    step/s and an elapsed time equal to its step, whatever fell inside its window."""
    import makemore.trainer as trainer_module

    clock = [0.0]
    monkeypatch.setattr(trainer_module.time, "perf_counter", lambda: clock[0])
    trainer, _ = new_trainer(Request(data=str(small_words), model_type="bigram", out=tmp_path / "r",
                                     train={"max_steps": 30, "eval_interval": 7, "batch_size": 4,
                                            "warmup_steps": 0}))
    step, evaluate = trainer._train_step, trainer._evaluate

    def timed_step():
        clock[0] += 1.0
        return step()

    def timed_evaluate():
        clock[0] += 100.0
        yield from evaluate()

    class PauseOnce:  # paused once, before step 16; the wait is where the pause's time passes
        def is_set(self):
            return trainer.step != 15 or self.waited

        def wait(self):
            clock[0] += 50.0
            self.waited = True

        waited = False

    trainer._train_step, trainer._evaluate, trainer._resume = timed_step, timed_evaluate, PauseOnce()
    events = list(trainer.run())
    steps = [e for e in events if e.kind == "step"]
    assert [e.step for e in steps] == [10, 20, 30]
    assert len([e for e in events if e.kind == "eval"]) == 6  # steps 0, 7, 14, 21, 28 and the last
    assert trainer._resume.waited
    for e in steps:
        assert e.steps_per_s == pytest.approx(1.0) and e.elapsed == pytest.approx(e.step), e


def test_the_first_steps_timings_are_not_training_time(small_words, tmp_path, monkeypatch):
    """The first step times the arithmetic to choose it (--dtype/--matmul-precision auto); that time counted against
    --max-time, so a short budget trained a step or two. It is left out of the clock, as evaluation is."""
    import time

    from makemore.trainer import Trainer

    choose = Trainer._choose_matmul_precision

    def slow(self, chunk):  # a timing that takes a second, as on a busy machine
        time.sleep(1.0)
        return choose(self, chunk)

    monkeypatch.setattr(Trainer, "_choose_matmul_precision", slow)
    trainer, _ = new_trainer(Request(data=str(small_words), model_type="bigram", out=tmp_path / "run",
                                     train={"max_time": 0.5, "batch_size": 8, "eval_interval": 1_000_000}))
    trainer.cfg.log_interval = 1
    steps = [e for e in trainer.run() if e.kind == "step"]
    assert steps[0].elapsed < 0.5 and len(steps) > 2, [(e.step, e.elapsed) for e in steps]
    assert trainer.choosing_seconds >= 1.0
