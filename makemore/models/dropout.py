"""Dropout whose mask costs a quarter of torch's on a CPU (forward and backward; drawing it, a tenth).

On a CPU, ``F.dropout`` draws its mask with ``bernoulli_``: one call of the generator per element, about 10 ns
each here, so that on the four-block Transformer of the long-budget recipe the masks took a quarter of a
training step. This draws 64 random bits per call of the same generator (``random_`` over the whole int64
range) and reads them as four 16-bit numbers, each compared with the drop probability rounded to 1/65,536.
The mask comes from torch's default generator, so ``torch.manual_seed`` and a saved RNG state reproduce it as
they reproduce torch's.

On other devices, and inside ``torch.compile`` (whose fused kernels draw their own masks), it is
``F.dropout``.

Inside ``masks_from(generator)`` dropout is on in evaluation too, on every device, with its masks drawn from
that generator: how a model that predicts by averaging over dropout masks (Monte Carlo dropout, Gal and
Ghahramani 2016) evaluates and samples without touching the training's random numbers.
"""

from __future__ import annotations

import contextlib
import math
import threading

import torch
import torch.nn as nn
import torch.nn.functional as F

LEVELS = 1 << 16  # a 16-bit number per element
CPU_MASK = True  # False: torch's own dropout everywhere (benchmarks/dropout.py compares the two)
_forced = threading.local()  # .generator: set inside masks_from


def keep_mask(shape: torch.Size | tuple[int, ...], p: float, dtype: torch.dtype, device=None,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """A tensor of ``shape`` (on the CPU unless ``device``): 0 where an element is dropped (probability ``p``,
    rounded to a multiple of 1/65,536), else 1 / (1 - that probability), so that the kept elements' expected sum
    is unchanged. Drawn from ``generator`` (on that device), or torch's default one."""
    n = math.prod(shape)
    dropped = round(p * LEVELS)  # how many of the 65,536 levels drop
    words = torch.empty((n + 3) // 4, dtype=torch.int64, device=device).random_(-(1 << 63), None,
                                                                                 generator=generator)
    levels = words.view(torch.int16)[:n].view(shape)  # uniform over -32,768 .. 32,767
    mask = (levels >= dropped - LEVELS // 2) * (LEVELS / (LEVELS - dropped))  # float32: a third of torch.where's time
    return mask if dtype == mask.dtype else mask.to(dtype)


def drawable(p: float) -> bool:
    """Whether ``keep_mask`` can draw dropout of probability ``p``: not within 1/131,072 of 0 or 1."""
    return 0 < round(p * LEVELS) < LEVELS


@contextlib.contextmanager
def masks_from(generator: torch.Generator):
    """Dropout on inside the block, in evaluation too and on every device, with every mask drawn by
    ``keep_mask`` from ``generator`` (on the device of the tensors dropped), in this thread."""
    before = getattr(_forced, "generator", None)
    _forced.generator = generator
    try:
        yield
    finally:
        _forced.generator = before


def forced_generator() -> torch.Generator | None:
    """The generator of the ``masks_from`` block this thread is in, if any."""
    return getattr(_forced, "generator", None)


def keeps_torch_dropout(x: torch.Tensor) -> bool:
    """Whether dropout on ``x`` is torch's own: off a CPU, and inside ``torch.compile``; never inside
    ``masks_from``."""
    if forced_generator() is not None:
        return False
    return not CPU_MASK or x.device.type != "cpu" or torch.compiler.is_compiling()


def dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """``F.dropout(x, p, training)``, with the CPU mask drawn by ``keep_mask``; inside ``masks_from``, dropout
    whatever ``training`` says, with that block's generator."""
    if p == 0.0:
        return x
    forced = forced_generator()
    if forced is not None and drawable(p):
        return x * keep_mask(x.shape, p, x.dtype, x.device, forced)
    if not training:
        return x
    if not drawable(p) or keeps_torch_dropout(x):  # p within 1/131,072 of 0 or 1: torch's
        return F.dropout(x, p, training)
    return x * keep_mask(x.shape, p, x.dtype)


class Dropout(nn.Module):
    """``nn.Dropout`` with ``dropout``'s mask."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"
