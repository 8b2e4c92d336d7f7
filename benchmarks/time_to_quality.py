"""Time to quality, as a user feels it: wall time from launching each tool's command until it first prints a
held-out loss at or below each threshold, start-up and evaluation included.

    python benchmarks/time_to_quality.py --reference ../shared/reference/makemore.py [--rounds 2]

Karpathy's ``makemore.py`` runs at its defaults (``-i names.txt -o OUT --type transformer``; it prints ``step N
train loss: A test loss: B`` every 500 steps on its test split) and ``makemore train names.txt`` at its defaults
(it prints ``step N: train A val B`` at each evaluation; its val split, like the reference's test split, holds
1,000 names never trained on). The two run one after the other, alternating which goes first, never side by
side (two cores). Each run stops at the lowest threshold or at ``--timeout`` seconds. The table gives each
threshold's times, their ratio per round, the median ratio and its range; the CPU and its float32 matmul peak,
measured in the same run, head it.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import compile_package, cpu_name, names_path, table  # noqa: E402

OURS = re.compile(r"step (\d+): train \S+ val (\S+)")
THEIRS = re.compile(r"step (\d+) train loss: \S+ test loss: (\S+)")


def run(cmd: list[str], pattern: re.Pattern, lowest: float, timeout: float, cwd: Path) -> list[tuple[float, float]]:
    """(seconds since launch, loss) of every held-out loss the command prints, until ``lowest`` or ``timeout``."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    start = time.perf_counter()
    curve: list[tuple[float, float]] = []
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=cwd, env=env)
    try:
        for line in proc.stdout:
            now = time.perf_counter() - start
            if m := pattern.search(line):
                curve.append((now, float(m[2])))
                print(f"    {now:7.1f} s  step {int(m[1]):6,}  {float(m[2]):.4f}", flush=True)
                if float(m[2]) <= lowest:
                    break
            if now > timeout:
                break
    finally:
        proc.kill()
        proc.wait()
    return curve


def first_at(curve: list[tuple[float, float]], threshold: float) -> float | None:
    return next((t for t, loss in curve if loss <= threshold), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", required=True, help="path to Karpathy's makemore.py")
    parser.add_argument("--data", help="word list (default: ../shared/data/names.txt beside the repository)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--thresholds", default="2.05,2.00")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds before a run is given up")
    parser.add_argument("--ours", default="", help="extra options for `makemore train` (to try a recipe)")
    args = parser.parse_args()
    compile_package()
    thresholds = sorted((float(x) for x in args.thresholds.split(",")), reverse=True)
    data = names_path(args.data)

    import torch

    from common import matmul_peak

    peak = matmul_peak("cpu")
    print(f"{cpu_name()} · {os.cpu_count()} cores · torch {torch.__version__} · float32 matmul peak "
          f"{peak / 1e9:.0f} GFLOP/s (measured now) · {time.strftime('%Y-%m-%d')}", flush=True)
    del torch

    results: dict[str, list[list[float | None]]] = {"reference": [], "makemore": []}
    for r in range(args.rounds):
        order = ["reference", "makemore"] if r % 2 == 0 else ["makemore", "reference"]
        for who in order:
            tmp = Path(tempfile.mkdtemp(prefix="makemore-ttq-"))
            if who == "reference":
                cmd = [sys.executable, str(Path(args.reference).resolve()), "-i", str(data), "-o", str(tmp / "out"),
                       "--type", "transformer"]
                pattern = THEIRS
            else:
                cmd = [sys.executable, "-m", "makemore", "train", str(data), "-o", str(tmp / "out"),
                       *args.ours.split()]
                pattern = OURS
            print(f"round {r + 1}: {who}: {' '.join(cmd)}", flush=True)
            curve = run(cmd, pattern, thresholds[-1], args.timeout, tmp)
            results[who].append([first_at(curve, t) for t in thresholds])

    rows = []
    for i, t in enumerate(thresholds):
        ref = [x[i] for x in results["reference"]]
        ours = [x[i] for x in results["makemore"]]
        ratios = [a / b for a, b in zip(ref, ours) if a is not None and b is not None]
        fmt = (lambda xs: ", ".join(f"{x:.0f} s" if x is not None else "-" for x in xs))
        rows.append([f"held-out loss ≤ {t:.2f}", fmt(ref), fmt(ours),
                     f"{statistics.median(ratios):.2f}x" if ratios else "-",
                     f"{min(ratios):.2f}-{max(ratios):.2f}x" if ratios else "-"])
    print(table(rows, ["launch to", "reference (per round)", "makemore (per round)", "median ratio", "range"]))


if __name__ == "__main__":
    main()
