"""Helpers shared by the benchmarks: the benchmark word list, timing, a matmul peak and FLOP counting."""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
NAMES = REPO.parent / "shared" / "data" / "names.txt"


def compile_package() -> None:
    """Write makemore's bytecode, as installing a package does, so that the command lines timed here start as a
    user's do (where PYTHONDONTWRITEBYTECODE is set, every run would otherwise compile the source again)."""
    import compileall

    for folder in ("makemore", "tui"):
        compileall.compile_dir(REPO / folder, quiet=1)


def names_path(given: str | None) -> Path:
    path = Path(given) if given else NAMES
    if not path.exists():
        sys.exit(f"word list not found: {path} (pass --data PATH)")
    return path


def sync(device) -> None:
    import torch

    if str(device).startswith("cuda"):
        torch.cuda.synchronize(device)  # timing needs the queued kernels finished; nowhere else syncs


def median_time(fn: Callable[[], object], *, warmup: int, reps: int, inner: int = 1, device="cpu") -> float:
    """Median seconds per call over ``reps`` timings of ``inner`` calls each, after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        sync(device)
        times.append((time.perf_counter() - t0) / inner)
    return statistics.median(times)


def matmul_peak(device="cpu", dtype=None, sizes=(512, 1024, 2048), reps: int = 5, precision=None) -> float:
    """Best FLOP/s of a square matmul (2·n³ FLOPs) over a few sizes, measured now, on this device.

    ``precision``: torch's float32 matmul precision to measure under (default: the current one); on a CPU
    "medium" may take oneDNN's kernels instead of MKL's, whose peak differs (see makemore.device.set_matmul_precision)."""
    import torch

    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision(precision or before)
    dtype = dtype or torch.float32
    best = 0.0
    try:
        for n in sizes:
            a = torch.randn(n, n, device=device, dtype=dtype)
            b = torch.randn(n, n, device=device, dtype=dtype)
            inner = max(1, int(2e9 // (2 * n**3)))  # about 2 GFLOP per timing
            seconds = median_time(lambda: a @ b, warmup=2, reps=reps, inner=inner, device=device)
            best = max(best, 2 * n**3 / seconds)
    finally:
        torch.set_float32_matmul_precision(before)
    return best


def matmul_peak_apart(threads: int | None = None, precision: str | None = None) -> float:
    """``matmul_peak`` on the CPU (under ``precision``), measured in a child process on ``threads`` threads
    (default: torch's), so that the large matmuls leave this process as it was: measured in-process just before
    a run, they moved what the first step's dtype timing saw (the ten-minute model's bfloat16/float32 ratio
    0.75-0.88, float32 taken in half the processes, against 0.60-0.68 with the peak measured apart and 0.56-0.75
    with none; benchmarks/README.md)."""
    import subprocess

    code = ("import sys, torch; sys.path.insert(0, sys.argv[1]); from common import matmul_peak; "
            "n = int(sys.argv[2]); n and torch.set_num_threads(n); "
            "print(matmul_peak('cpu', precision=sys.argv[3] or None))")
    args = [str(Path(__file__).resolve().parent), str(threads or 0), precision or ""]
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
    return float(out.stdout.split()[-1])


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of the matrix products (mm, addmm, bmm, attention) that ``fn`` runs, forward and backward.

    torch.utils.flop_counter counts 2·m·n·k per product; elementwise work (GELU, LayerNorm, softmax, AdamW) is
    not counted, so this is the model-FLOPs convention of MFU: useful arithmetic, not everything executed.
    """
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def cpu_name() -> str:
    """The CPU's model name, as the kernel reports it, and the vector instructions torch's kernels use (every
    benchmark names its machine). Where the instructions are limited (``ATEN_CPU_CAPABILITY``,
    ``MKL_ENABLE_INSTRUCTIONS``, ``ONEDNN_MAX_CPU_ISA``: a way to see, on one machine, how a CPU without its wider
    vectors fares), the limits are named too."""
    import os
    import platform

    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    limits = [f"{key}={os.environ[key]}" for key in ("ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS",
                                                      "ONEDNN_MAX_CPU_ISA") if os.environ.get(key)]
    isa = f"{torch.backends.cpu.get_cpu_capability()} kernels" + (f", limited: {' '.join(limits)}" if limits else "")
    return f"{name} ({isa})"
