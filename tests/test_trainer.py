"""The trainer's arithmetic: gradient accumulation and the learning-rate schedule, against computations made
here independently."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from makemore.training import Request, new_trainer

SMALL = {"transformer": {"n_layer": 1, "n_head": 2, "n_embd": 16, "dropout": 0.0},
         "mlp": {"n_embd2": 32}, "rnn": {"n_embd2": 32}}


def _train_recording(words: Path, out: Path, model_type: str, grad_accum: int):
    """Three steps; returns the gradients handed to the optimizer at each step, the Step losses, the final
    weights and how many training forward passes (micro-batches) ran."""
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
def test_grad_accum_gives_the_update_of_one_batch(small_words, tmp_path, model_type):
    """--grad-accum 3: 16 words in micro-batches of 6, 6 and 4 words (of different lengths) give the gradient,
    the loss and the weights of one batch of 16, step after step (the README's promise)."""
    k = 3
    one = _train_recording(small_words, tmp_path / "one", model_type, 1)
    split = _train_recording(small_words, tmp_path / "split", model_type, k)
    assert one[3] == 3 and split[3] == 3 * k  # k micro-batches per step
    for step, (a, b) in enumerate(zip(one[0], split[0], strict=True)):
        for ga, gb in zip(a, b, strict=True):
            torch.testing.assert_close(gb, ga, rtol=1e-5, atol=1e-7, msg=f"gradient of step {step}")
    torch.testing.assert_close(split[1], one[1], rtol=1e-6, atol=1e-6)  # the batch's mean loss
    for name, weight in one[2].items():  # the weights after three AdamW steps
        torch.testing.assert_close(split[2][name], weight, rtol=1e-4, atol=1e-4, msg=name)
