"""Where training runs: the device a name means, the float32 matmul precision a device gets, denormals, and
which GELU kernel a CPU step takes.

All are decided by what this machine can do (not by its model name): the first three once per process, before a
trainer is built; the GELU kernel at a run's first step, by timing at its model's shape.
"""

from __future__ import annotations

import contextlib
import functools
import math
import statistics
import threading
import time
from collections.abc import Callable, Iterator

import torch

from makemore.config import MATMUL_PRECISIONS
from makemore.errors import MakemoreError

__all__ = ["MATMUL_PRECISIONS", "bfloat16_pays", "flush_denormals", "matmuls_in_onednn_pay", "native_gelu_pays",
           "onednn_off", "resolve_device", "set_matmul_precision"]


def flush_denormals() -> None:
    """Have this thread's CPU arithmetic read and write denormal floats (magnitudes below 2^-126 in float32) as
    zero, and the threads it starts from now on: torch's pool of intra-op threads, started by a thread's first
    parallel operation, takes the setting then, so this is called before any work. CPUs handle denormals tens
    of times slower than normal numbers, and a model's values can drift into them as it trains (a text model at
    its peak learning rate from the first step did, and its steps grew slower as it went: benchmarks/README.md).
    The numbers it zeroes lie below 1.2e-38; a run's results may differ from one made without it, as any change
    of rounding makes them differ. A no-op where the CPU has no such mode."""
    torch.set_flush_denormal(True)


def resolve_device(name: str) -> str:
    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise MakemoreError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise MakemoreError(f"device {name!r}: CUDA is not available on this machine")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise MakemoreError(f"device {name!r}: only {torch.cuda.device_count()} CUDA device(s)")
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise MakemoreError(f"device {name!r}: MPS is not available on this machine")
    elif device.type != "cpu":
        raise MakemoreError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps")
    return str(device)


@functools.cache
def cpu_bfloat16() -> bool:
    """Whether this CPU computes in bfloat16 (oneDNN's kernels for it need AVX-512 or newer): without it (an AVX2
    CPU) bfloat16 autocast is emulated, much slower than float32, and oneDNN's LSTM cannot be built under it."""
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    return bool(check()) if check is not None else True


def set_matmul_precision(device: torch.device, precision: str = "auto", cpu_choice: str = "highest") -> str:
    """Set torch's float32 matmul precision for this process and return the one set.

    ``auto``: on CUDA ``high`` (TF32 tensor cores, the usual trade); on a CPU ``cpu_choice`` (the model family's
    ``cpu_matmul_precision``) if it keeps float32 results, else ``highest``. ``medium`` hands float32 matmuls
    to oneDNN instead of the BLAS library and allows it bfloat16 arithmetic, which it may take on CPUs with
    bfloat16 matrix units; so before taking it, ``auto`` multiplies, at a small and a large size, numbers that
    bfloat16 would round (1 + 2^-12), and keeps ``medium`` only if every product is exact. Whether it is also
    faster depends on the CPU and on the model's shapes (oneDNN is faster for large matrices on some CPUs, slower
    at every size on others, and much slower for many small batched ones on some): a trainer decides that on its
    own first step (``matmuls_in_onednn_pay``), where ``auto`` set ``medium`` here.
    """
    if precision != "auto":
        torch.set_float32_matmul_precision(precision)
        return precision
    if device.type == "cuda":
        torch.set_float32_matmul_precision("high")
        return "high"
    chosen = cpu_choice if cpu_choice == "highest" or _stays_float32(str(device), cpu_choice) else "highest"
    torch.set_float32_matmul_precision(chosen)
    return chosen


@functools.cache
def _stays_float32(device: str, precision: str) -> bool:
    """Whether float32 matmuls under ``precision`` give float32 results on ``device`` (checked once)."""
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision(precision)
    try:
        for m, k, n in ((256, 64, 256), (2048, 256, 512)):
            a = torch.full((m, k), 1 + 2**-12, device=device)
            b = torch.ones(k, n, device=device)
            exact = k * (1 + 2**-12)  # representable in float32; in bfloat16 the factor rounds to 1
            if not (bool(((a @ b) == exact).all()) and bool((torch.nn.functional.linear(a, b.T) == exact).all())):
                return False
        return True
    finally:
        torch.set_float32_matmul_precision(before)


PAYS_BY = 0.9  # take oneDNN's matmuls only if the run's passes need at most this share of MKL's time
_precision_choices: dict[tuple, bool] = {}  # this process's choice for each model and micro-batch shape


def matmuls_in_onednn_pay(key: tuple, passes: Callable[[], None]) -> bool:
    """Whether a run trains faster on this CPU with its float32 matmuls in oneDNN (precision ``medium``) than in
    the BLAS library (``highest``): ``passes`` (the run's own forward and backward on a micro-batch) timed under
    each, alternated over ``ROUNDS`` rounds (fewer, at least ``MIN_ROUNDS``, after ``PROBE_SECONDS``), the median
    of the rounds' ratios against ``PAYS_BY``. Decided once per process and ``key`` (the model and the
    micro-batch's shape). The process's precision is as it was before, whatever the answer.

    Timed rather than assumed because no rule held: on one CPU oneDNN's matmuls made the default names recipe's
    step 18% shorter, on another (AMD EPYC, AVX-512) three times longer, where the attention's many small batched
    matmuls each become a oneDNN call."""
    if key not in _precision_choices:
        before = torch.get_float32_matmul_precision()
        try:
            ratio = _median_ratio(passes, lambda medium: torch.set_float32_matmul_precision(
                "medium" if medium else "highest"), PAYS_BY)
        finally:
            torch.set_float32_matmul_precision(before)
        _precision_choices[key] = ratio <= PAYS_BY
    return _precision_choices[key]


# train under bfloat16 autocast only if the run's passes need at most this share of float32's time: a bfloat16 step
# learns as much as a float32 one (the recipes near the line, two seeds each: benchmarks/README.md), so a choice
# near the line costs about its distance from 1; 0.9 leaves a tenth for the timing's noise
BFLOAT16_PAYS_BY = 0.9
_dtype_choices: dict[tuple, bool] = {}  # this process's choice for each model and micro-batch shape


def bfloat16_pays(key: tuple, passes: Callable[[], None], use: Callable[[bool], None],
                  run_seconds: Callable[[float], float] | None = None) -> bool:
    """Whether a run trains faster on this CPU under bfloat16 autocast than in float32: ``passes`` (the run's own
    forward and backward on a micro-batch, under bfloat16 autocast after ``use(True)``, in float32 after
    ``use(False)``) timed each way, alternated, the median of the rounds' ratios against ``BFLOAT16_PAYS_BY``;
    a median near the line is timed on (``NEAR_MARGIN``), for at most ``NEAR_SHARE`` of the run's time where
    ``run_seconds`` estimates it from one float32 pass's seconds. Decided once per process and ``key``;
    ``use(False)`` afterwards, whatever the answer.

    Timed because it depends on the CPU and the model: on a CPU with bfloat16 matrix instructions (AMD EPYC,
    AVX-512 BF16) the ten-minute names Transformer's step took 0.69 of float32's time, and the default names
    recipe's 1.7 (its matrices are small); without them bfloat16 is slower at every size."""
    if key not in _dtype_choices:
        try:
            ratio = _median_ratio(passes, use, BFLOAT16_PAYS_BY, near_seconds=NEAR_SECONDS, run_seconds=run_seconds)
        finally:
            use(False)
        _dtype_choices[key] = ratio <= BFLOAT16_PAYS_BY
    return _dtype_choices[key]


NATIVE_GELU_PAYS_BY = 0.99  # take torch's GELU kernel only if the run's passes need at most this share of oneDNN's time
SMALL_MLP_SECONDS = 1.5e-3  # an MLP pass (forward and backward) longer than this keeps oneDNN without timing
ROUNDS = 15  # alternations of the run's passes timed, about 2 ms a side each
PROBE_SECONDS = 0.5  # ... or fewer (at least MIN_ROUNDS) when a larger model's passes would take longer
MIN_ROUNDS = 7  # one round of a mid-sized model's passes moves with the machine; seven's median holds
CLEAR_ROUNDS, CLEAR_MARGIN = 3, 1.15  # a timing this clear after this many rounds needs no more
# first rounds whose switched side is this many times slower than it may be: the switch is not taken, no more
# rounds (oneDNN's matmuls at 3.1x, bfloat16 at 1.7x for the default names Transformer on an AMD EPYC); two, so
# that one pass slowed by the machine does not decide; a switch is never taken so soon
FAR_ROUNDS, FAR_MARGIN = 2, 2.0
# a dtype timing whose median lies within this factor of the line after those rounds is timed on, up to
# NEAR_SECONDS or NEAR_ROUNDS: seven rounds' median moves from one process to the next (the ten-minute names
# Transformer's, single passes of 20-30 ms: 0.56-0.84 over ten processes, of 25 rounds 0.57-0.75); the band is
# narrow, as near the line either answer costs little (BFLOAT16_PAYS_BY)
NEAR_MARGIN, NEAR_SECONDS, NEAR_ROUNDS = 1.05, 1.5, 45
# ... and for at most this share of the run's time: near the line a wrong answer costs less than a tenth of each
# step, and a short run's timing would cost more than that (the names GRU's 3,000 steps: 1.4 s of about 15)
NEAR_SHARE = 0.02
LONG_PASS_SECONDS = 0.25  # passes at least this long (a large model's, seconds each) are timed for one round only
SIZE_PASSES = 3  # passes timed to see an MLP's size (with 1, one process in six at 240 rows of 64 took oneDNN)
_gelu_choices: dict[tuple[int, int], bool] = {}  # this process's choice for each MLP shape (rows, width)


def native_gelu_pays(rows: int, width: int, passes: Callable[[], None]) -> bool:
    """Whether a run whose GELU MLPs (``width`` -> 4·``width`` -> ``width``, as the Transformer's) see ``rows``
    rows trains faster on this CPU with oneDNN switched off, that is with torch's own GELU kernel instead of
    oneDNN's; at float32 matmul precision ``highest`` (MKL's matmuls, on x86) the GELU is the only oneDNN kernel
    a Transformer's step calls. oneDNN's GELU costs more per call, which shows on small batches between the
    matmuls (256 rows of 64, a 4×4×64 model at batch 32: the forward and backward passes 2–8% shorter without
    it); on large ones its kernel is the faster (2,048 rows of 128: the MLP alone 0–18% slower without it).

    Decided once per process and MLP shape. An MLP whose isolated pass (forward and backward) takes longer than
    ``SMALL_MLP_SECONDS`` keeps oneDNN untimed. For a smaller one, ``passes`` (the run's own forward and backward
    on a micro-batch) is timed both ways, alternated over ``ROUNDS`` rounds, and the median of the rounds'
    ratios decides (about 0.3 s for the 4×4×64 model; rounds stop after ``PROBE_SECONDS`` once ``MIN_ROUNDS``
    are done). Timed alone, the MLP's ratio ranged 0.89–1.04 over eight processes, around the few per cent that
    decide, and a process that kept oneDNN took a 3–4% longer step; the run's own passes ranged 0.92–0.98.
    """
    key = (rows, width)
    if key not in _gelu_choices:
        with _ONEDNN_LOCK:  # no onednn_off may save the switch while this turns it
            _gelu_choices[key] = _mlp_is_small(rows, width) and _faster_without_onednn(passes)
    return _gelu_choices[key]


def _mlp_is_small(rows: int, width: int) -> bool:
    """Whether a GELU MLP's pass on ``rows`` rows (forward and backward, oneDNN as it is) is short enough that
    what torch's GELU kernel saves per call could matter: the fastest of ``SIZE_PASSES`` after a first."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(rows, width, generator=gen, requires_grad=True)
    w1 = (torch.randn(4 * width, width, generator=gen) / width**0.5).requires_grad_()
    w2 = (torch.randn(width, 4 * width, generator=gen) / (4 * width) ** 0.5).requires_grad_()
    b1, b2 = torch.zeros(4 * width, requires_grad=True), torch.zeros(width, requires_grad=True)
    grad = torch.randn(rows, width, generator=gen)

    F = torch.nn.functional

    def work() -> None:  # a scalar's backward, as in training (an explicit gradient would import sympy)
        (F.linear(F.gelu(F.linear(x, w1, b1)), w2, b2) * grad).sum().backward()

    return _fastest(work, SIZE_PASSES) <= SMALL_MLP_SECONDS


def _timed(work: Callable[[], None]) -> float:
    t0 = time.perf_counter()
    work()
    return time.perf_counter() - t0


def _fastest(work: Callable[[], None], passes: int) -> float:
    """The shortest of ``passes`` timed calls of ``work``, after a first that allocates and initialises."""
    work()
    once = math.inf
    for _ in range(passes):  # the fastest of a few: one pass slowed by the machine would mislead
        t0 = time.perf_counter()
        work()
        once = min(once, time.perf_counter() - t0)
    return once


def _faster_without_onednn(work: Callable[[], None]) -> bool:
    """Whether ``work`` takes at most ``NATIVE_GELU_PAYS_BY`` of its time with oneDNN on when oneDNN is off."""
    before = torch.backends.mkldnn.enabled

    def switch(off: bool) -> None:
        torch.backends.mkldnn.enabled = not off

    try:
        return _median_ratio(work, switch, NATIVE_GELU_PAYS_BY) <= NATIVE_GELU_PAYS_BY
    finally:
        torch.backends.mkldnn.enabled = before


def _median_ratio(work: Callable[[], None], switch: Callable[[bool], None], threshold: float,
                  near_seconds: float = 0.0, run_seconds: Callable[[float], float] | None = None) -> float:
    """The median over rounds of ``work``'s time after ``switch(True)`` over its time after ``switch(False)``:
    each round times both, about 2 ms a side, the first pass after a switch untimed (it is slower); rounds stop
    after ``ROUNDS``, or after ``PROBE_SECONDS`` once ``MIN_ROUNDS`` are done (one, for passes of
    ``LONG_PASS_SECONDS`` or more). With ``near_seconds``, a median still within ``NEAR_MARGIN`` of ``threshold``
    (a short pass's) is timed on, up to ``near_seconds`` (at most ``NEAR_SHARE`` of ``run_seconds`` of the pass's
    time, where given; never less than the usual rounds) or ``NEAR_ROUNDS``. The caller restores what ``switch``
    changes. Clear-cut timings stop sooner: after ``CLEAR_ROUNDS`` rounds whose ratios all lie beyond
    ``threshold`` by ``CLEAR_MARGIN``, on the same side; after ``FAR_ROUNDS``, if all are above ``threshold`` by
    ``FAR_MARGIN`` (the switch far slower: not taken)."""
    ratios = []
    first = _timed(work)  # allocates and initialises: a pass this long alone is long in any case
    once = first if first >= LONG_PASS_SECONDS else min(_timed(work) for _ in range(2))
    reps = max(1, min(50, int(2e-3 / max(once, 1e-6))))
    long_pass = once >= LONG_PASS_SECONDS  # the time a round costs decides: one round, never timed on
    fewest, near_seconds = (1, 0.0) if long_pass else (MIN_ROUNDS, near_seconds)
    if near_seconds and run_seconds is not None:  # a share shorter than the usual timing: timed as usual
        near_seconds = min(near_seconds, NEAR_SHARE * run_seconds(once))
        near_seconds = near_seconds if near_seconds > PROBE_SECONDS else 0.0
    start = time.perf_counter()
    for i in range(max(ROUNDS, NEAR_ROUNDS if near_seconds else 0)):
        if i >= fewest:
            near = near_seconds > 0 and threshold / NEAR_MARGIN < statistics.median(ratios) < threshold * NEAR_MARGIN
            if i >= (NEAR_ROUNDS if near else ROUNDS) \
                    or time.perf_counter() - start > (near_seconds if near else PROBE_SECONDS):
                break
        took = {}
        for flag in (False, True):
            switch(flag)
            work()
            t0 = time.perf_counter()
            for _ in range(reps):
                work()
            took[flag] = time.perf_counter() - t0
        ratios.append(took[True] / took[False])
        if len(ratios) == FAR_ROUNDS and min(ratios) > threshold * FAR_MARGIN:
            break
        if len(ratios) >= CLEAR_ROUNDS and (min(ratios) > threshold * CLEAR_MARGIN
                                            or max(ratios) < threshold / CLEAR_MARGIN):
            break
    return statistics.median(ratios)


_ONEDNN_LOCK = threading.Lock()
_onednn_off = {"depth": 0, "before": True}  # how many are inside onednn_off, and the switch before the first


@contextlib.contextmanager
def onednn_off() -> Iterator[None]:
    """Within: torch dispatches no work to oneDNN (its own kernels instead). The switch is the process's, not the
    thread's: while one thread is inside, torch work in another runs without oneDNN too (the same results up to
    rounding). Threads may overlap: the first in turns it off, the last out restores it."""
    with _ONEDNN_LOCK:
        if _onednn_off["depth"] == 0:
            _onednn_off["before"] = torch.backends.mkldnn.enabled
            torch.backends.mkldnn.enabled = False
        _onednn_off["depth"] += 1
    try:
        yield
    finally:
        with _ONEDNN_LOCK:
            _onednn_off["depth"] -= 1
            if _onednn_off["depth"] == 0:
                torch.backends.mkldnn.enabled = _onednn_off["before"]
