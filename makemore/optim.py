"""AdamW as ``torch.optim.AdamW(fused=True)`` computes it, without what constructing a ``torch.optim`` optimizer
costs: its constructor imports ``torch._dynamo``, about a second at every launch on a 2-core CPU
(benchmarks/README.md), whether or not anything is compiled.

The update is the same fused kernel (``torch._fused_adamw_``) with the same arguments, so the weights move
exactly as under ``torch.optim.AdamW(fused=True)``, and ``state_dict()`` has the same layout, so a checkpoint
written by either loads into the other (tests/test_optim.py checks both). What the trainer and lr-find need
of an optimizer is all there is: ``param_groups`` (the learning rate is set there each step), ``step()``,
``zero_grad()``, ``state_dict()``, ``load_state_dict()`` and ``register_step_pre_hook()``;
``torch.amp.GradScaler`` drives it as it drives torch's fused AdamW.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

import torch

GROUP_DEFAULTS = {"amsgrad": False, "maximize": False, "foreach": None, "capturable": False,
                  "differentiable": False, "fused": True, "decoupled_weight_decay": True}


def supported(params: list[torch.Tensor]) -> bool:
    """Whether this optimizer takes these tensors: floating-point, on one CPU or CUDA device (torch >= 2.4)."""
    return hasattr(torch, "_fused_adamw_") and len({p.device for p in params}) <= 1 and all(
        p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params)


class AdamW:
    # as torch's fused AdamW: GradScaler hands ``grad_scale`` and ``found_inf`` to ``step`` as attributes and the
    # kernel skips the update where a gradient was not finite, without reading the flag back to the host
    _step_supports_amp_scaling = True

    def __init__(self, groups: list[dict[str, Any]], *, lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8):
        self.defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": 0.0, **GROUP_DEFAULTS}
        self.param_groups: list[dict[str, Any]] = []
        for group in groups:
            params = list(group["params"])
            if not supported(params):
                raise ValueError("the fused AdamW kernel does not run on these tensors")
            self.param_groups.append({**self.defaults, **{k: v for k, v in group.items() if k != "params"},
                                      "params": params})
        self.state: dict[torch.Tensor, dict[str, torch.Tensor]] = {}
        self._pre_hooks: OrderedDict[int, Any] = OrderedDict()  # weakly referenced by the handles

    def register_step_pre_hook(self, hook) -> torch.utils.hooks.RemovableHandle:
        """``hook(optimizer, args, kwargs)`` before each step, as torch's optimizers call it."""
        handle = torch.utils.hooks.RemovableHandle(self._pre_hooks)
        self._pre_hooks[handle.id] = hook
        return handle

    def _state(self, p: torch.Tensor) -> dict[str, torch.Tensor]:
        state = self.state.get(p)
        if state is None:  # as torch's fused AdamW: the step count is a float32 tensor beside the parameter
            state = self.state[p] = {"step": torch.zeros((), dtype=torch.float32, device=p.device),
                                     "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                                     "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format)}
        return state

    @torch.no_grad()
    def step(self) -> None:
        for hook in list(self._pre_hooks.values()):
            hook(self, (), {})
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            states = [self._state(p) for p in params]
            steps = [s["step"] for s in states]
            device = params[0].device
            grad_scale, found_inf = getattr(self, "grad_scale", None), getattr(self, "found_inf", None)
            if grad_scale is not None:
                grad_scale = grad_scale.to(device, non_blocking=True)
            if found_inf is not None:
                found_inf = found_inf.to(device, non_blocking=True)
            torch._foreach_add_(steps, 1)
            beta1, beta2 = group["betas"]
            torch._fused_adamw_(params, [p.grad for p in params], [s["exp_avg"] for s in states],
                                [s["exp_avg_sq"] for s in states], [], steps, lr=group["lr"], beta1=beta1,
                                beta2=beta2, weight_decay=group["weight_decay"], eps=group["eps"],
                                amsgrad=False, maximize=False, grad_scale=grad_scale, found_inf=found_inf)
            if found_inf is not None:  # a skipped step does not count
                torch._foreach_sub_(steps, [found_inf] * len(steps))

    def zero_grad(self, set_to_none: bool = True) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:  # as torch's optimizers: a gradient that is a view cannot be detached in place
                    if p.grad.grad_fn is not None:
                        p.grad.detach_()
                    else:
                        p.grad.requires_grad_(False)
                    p.grad.zero_()

    def state_dict(self) -> dict[str, Any]:
        """``torch.optim.Optimizer.state_dict``'s layout: parameters numbered in order across the groups."""
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            ids = []
            for p in group["params"]:
                ids.append(index.setdefault(id(p), len(index)))
            groups.append({**{k: v for k, v in group.items() if k != "params"}, "params": ids})
        state = {index[id(p)]: dict(s) for p, s in self.state.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """As ``torch.optim.Optimizer.load_state_dict``: the saved groups' settings, and each parameter's moments
        cast to its dtype and device; groups and sizes must match (ValueError otherwise)."""
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{len(saved_groups)} parameter groups saved, the optimizer has {len(self.param_groups)}")
        by_id: dict[int, torch.Tensor] = {}
        for group, saved in zip(self.param_groups, saved_groups):
            _check_settings(saved, group)
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(f"a saved group holds {len(saved['params'])} parameters, the optimizer's "
                                 f"{len(group['params'])}")
            by_id.update(zip(saved["params"], group["params"]))
        state: dict[torch.Tensor, dict[str, torch.Tensor]] = {}
        for pid, entry in state_dict["state"].items():
            p = by_id[int(pid)]
            moments = {}
            for key in ("exp_avg", "exp_avg_sq"):
                value = entry[key]
                if value.shape != p.shape:
                    raise ValueError(f"saved {key} has shape {tuple(value.shape)}, the parameter {tuple(p.shape)}")
                moments[key] = value.to(dtype=p.dtype, device=p.device).clone()
            step = torch.as_tensor(entry["step"], dtype=torch.float32).to(p.device).clone()
            if step.numel() != 1 or not bool(torch.isfinite(step).all()) or float(step) < 0:
                raise ValueError(f"saved step {entry['step']!r} is not a count of steps")
            state[p] = {"step": step.reshape(()), **moments}
        self.state = state
        for group, saved in zip(self.param_groups, saved_groups):
            group.update({k: (tuple(v) if k == "betas" else v) for k, v in saved.items() if k != "params"})


def _check_settings(saved: dict[str, Any], group: dict[str, Any]) -> None:
    """A saved group's settings, each of the type the optimizer's own has: finite non-negative numbers, betas two
    numbers in [0, 1), flags as flags; anything else is a ValueError naming it (the file is the user's to edit)."""
    def number(v) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0

    for key, value in saved.items():
        if key == "params":
            ok = isinstance(value, list) and all(isinstance(i, int) and not isinstance(i, bool) for i in value)
        elif key == "betas":
            ok = isinstance(value, (list, tuple)) and len(value) == 2 and all(number(b) and b < 1 for b in value)
        elif key not in group:
            raise ValueError(f"unknown optimizer setting {key!r}")
        elif isinstance(group[key], bool) or group[key] is None:
            ok = value is None or isinstance(value, bool)
        elif isinstance(group[key], (int, float)):
            ok = number(value)
        else:
            ok = True
        if not ok:
            raise ValueError(f"optimizer setting {key!r} has a bad value ({value!r})")
