"""Per step at the reference's settings, whole process against whole process.

Each tool's own command line at Karpathy's makemore.py's defaults (4 layers, 4 heads, 64 channels, batch 32,
AdamW at 5e-4, weight decay 0.01, no gradient clipping, no weights' average) on names.txt, run twice per round:
for LONG steps and for SHORT steps. What still differs is each tool's own way: makemore packs the 32 words into
rows of 16 slots (about 16 rows) where the reference pads one row per word, and warms its learning rate up over
a tenth of the steps (at most 100) and decays it where the reference keeps it constant. The
difference of the two wall times, divided by LONG − SHORT, is the cost of a step as a user pays it — data
loading, the optimizer, logging and whatever each loop does between steps included; start-up (imports, data
preparation, the first evaluation) cancels out. Rounds alternate the tools, so that a machine whose speed drifts
affects both alike; the table gives the median per-step time of each and the median of the per-round ratios.

    python benchmarks/whole_process.py --reference ../shared/reference/makemore.py        # 5 rounds, 450 − 50 steps
    python benchmarks/whole_process.py --reference ../shared/reference/makemore.py --rounds 1 --long 100 --short 20
    python benchmarks/whole_process.py --reference ../shared/reference/makemore.py --compile   # also --compile

With ``--compile`` each round also runs ``makemore train --compile``: its step, and what compiling adds to the
start (its SHORT run's wall time minus the eager one's), with the steps after which the faster step pays it back.

Between SHORT and LONG neither tool evaluates (the reference every 500 steps, makemore told `--eval-interval`
above LONG); the reference prints 10 samples every 200 steps, as its users see it do.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import compile_package, cpu_name, matmul_peak, names_path, table  # noqa: E402


def wall(cmd: list[str], cwd: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, cwd=cwd)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", required=True, help="path to Karpathy's makemore.py")
    parser.add_argument("--data", help="word list (default: ../shared/data/names.txt beside the repository)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--long", type=int, default=450)
    parser.add_argument("--short", type=int, default=50)
    parser.add_argument("--compile", action="store_true", help="also makemore train --compile")
    args = parser.parse_args()
    compile_package()
    data = names_path(args.data).resolve()
    reference = Path(args.reference).resolve()
    exe = shutil.which("makemore")
    ours = [exe] if exe else [sys.executable, "-m", "makemore"]
    tmp = Path(tempfile.mkdtemp(prefix="whole-process-"))

    def reference_cmd(steps: int) -> list[str]:
        out = tmp / f"ref-{steps}"
        shutil.rmtree(out, ignore_errors=True)
        return [sys.executable, str(reference), "-i", str(data), "-o", str(out), "--max-steps", str(steps)]

    def makemore_cmd(steps: int, compiled: bool = False) -> list[str]:
        out = tmp / f"mm-{steps}"
        shutil.rmtree(out, ignore_errors=True)
        return [*ours, "train", str(data), "--type", "transformer", "--n-layer", "4", "--n-head", "4",
                "--n-embd", "64", "--batch-size", "32", "--lr", "5e-4", "--weight-decay", "0.01", "--ema", "0",
                "--grad-clip", "0", "--max-steps", str(steps), "--eval-interval", str(args.long + 1), "-o", str(out),
                "-q", *(["--compile"] if compiled else [])]

    span = args.long - args.short
    tools = ["reference makemore.py", "makemore train"] + (["makemore train --compile"] if args.compile else [])
    per_step: dict[str, list[float]] = {t: [] for t in tools}
    extra_start: list[float] = []  # what compiling adds to the start: wall(SHORT, compiled) - wall(SHORT, eager)
    eager_short = 0.0
    for r in range(args.rounds):
        for tool in tools:
            if tool == tools[0]:
                long, short = wall(reference_cmd(args.long), tmp), wall(reference_cmd(args.short), tmp)
            else:
                compiled = tool.endswith("--compile")
                long, short = (wall(makemore_cmd(args.long, compiled), tmp),
                               wall(makemore_cmd(args.short, compiled), tmp))
                if compiled:
                    extra_start.append(short - eager_short)
                else:
                    eager_short = short
            per_step[tool].append((long - short) / span)
        print(f"round {r + 1}: " + ", ".join(f"{t} {per_step[t][-1] * 1e3:.1f} ms/step" for t in tools), flush=True)
    shutil.rmtree(tmp, ignore_errors=True)
    peak = matmul_peak()
    ref = per_step[tools[0]]
    rows = []
    for tool in tools:
        rows.append([tool, f"{statistics.median(per_step[tool]) * 1e3:.1f} ms",
                     ", ".join(f"{t * 1e3:.1f}" for t in per_step[tool])])
        if tool != tools[0]:
            ratios = sorted(a / b for a, b in zip(ref, per_step[tool]))
            rows.append(["  ratio, round by round", f"{statistics.median(ratios):.2f}x",
                         f"range {ratios[0]:.2f}x to {ratios[-1]:.2f}x"])
    if args.compile:
        saved = statistics.median(per_step["makemore train"]) - statistics.median(per_step[tools[2]])
        extra = statistics.median(extra_start)
        pays = f"pays back after {extra / saved:,.0f} steps" if saved > 0 else "never pays back"
        rows.append(["compiling adds to the start", f"{extra:.1f} s", pays])
    print(f"{cpu_name()}, float32 matmul peak {peak / 1e9:.0f} GFLOP/s; (wall({args.long} steps) − "
          f"wall({args.short} steps)) / {span}, {args.rounds} rounds")
    print(table(rows, ["tool", "per step (median)", "rounds"]))


if __name__ == "__main__":
    main()
