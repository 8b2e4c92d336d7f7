"""Tiny Shakespeare in text mode: makemore's default text recipe against nanoGPT's CPU recipe, side by side.

Both train on ../shared/data/tinyshakespeare.txt (1,115,394 characters) with the same split: the first 90%
trains, the last 10% validates. nanoGPT runs from a scratch copy of ../shared/reference/nanogpt/ exactly as its
README's CPU recipe says; makemore runs as `makemore train tinyshakespeare.txt --mode text` does. One after the
other, never at once. Each side's wall clock starts when it is launched (imports, data preparation, evaluations
and checkpoints included); makemore's training clock (evaluations excluded) is reported beside it.

    python benchmarks/shakespeare.py                       # both, one table of val loss against wall time
    python benchmarks/shakespeare.py --only makemore --max-time 600    # the ten-minute tier alone
    python benchmarks/shakespeare.py --progression         # bigram, mlp, wavenet, gru, lstm, transformer
    python benchmarks/shakespeare.py --quick               # a few steps of each: checks that it all runs
    python benchmarks/shakespeare.py --only makemore --set n_embd=192 --set learning_rate=3e-3 --block-size 128
                                                           # another recipe (repeatable --set KEY=VALUE)

nanoGPT needs numpy and requests (its prepare.py imports requests even when the file is there); the script says
so if they are missing: `pip install numpy requests`.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, compile_package, cpu_name, matmul_peak_apart, table  # noqa: E402

TINY = REPO.parent / "shared" / "data" / "tinyshakespeare.txt"
NANOGPT = REPO.parent / "shared" / "reference" / "nanogpt"
# nanoGPT's README, CPU: "python train.py config/train_shakespeare_char.py --device=cpu --compile=False
# --eval_iters=20 --log_interval=1 --block_size=64 --batch_size=12 --n_layer=4 --n_head=4 --n_embd=128
# --max_iters=2000 --lr_decay_iters=2000 --dropout=0.0"
NANOGPT_CPU = ["--device=cpu", "--compile=False", "--eval_iters=20", "--log_interval=1", "--block_size=64",
               "--batch_size=12", "--n_layer=4", "--n_head=4", "--n_embd=128", "--max_iters=2000",
               "--lr_decay_iters=2000", "--dropout=0.0"]
NANOGPT_QUICK = ["--max_iters=20", "--lr_decay_iters=20", "--eval_interval=10", "--eval_iters=2"]
THRESHOLDS = (2.5, 2.2, 2.0, 1.88, 1.75, 1.65, 1.55, 1.50)
PROGRESSION = ("bigram", "mlp", "wavenet", "gru", "lstm", "transformer")
_EVAL_LINE = re.compile(r"^step (\d+): train loss ([\d.]+), val loss ([\d.]+)")


def run_nanogpt(data: Path, quick: bool) -> list[tuple[float, int, float]]:
    """(wall seconds since launch, iteration, val loss) at each of nanoGPT's evaluations."""
    missing = [m for m in ("numpy", "requests") if _missing(m)]
    if missing:
        sys.exit(f"nanoGPT needs {' and '.join(missing)}: pip install {' '.join(missing)}")
    scratch = Path(tempfile.mkdtemp(prefix="nanogpt-"))
    work = scratch / "nanogpt"
    shutil.copytree(NANOGPT, work)
    shutil.copyfile(data, work / "data" / "shakespeare_char" / "input.txt")  # prepare.py then downloads nothing
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "prepare.py"], cwd=work / "data" / "shakespeare_char", check=True,
                   capture_output=True)
    args = [sys.executable, "-u", "train.py", "config/train_shakespeare_char.py", *NANOGPT_CPU,
            *(NANOGPT_QUICK if quick else [])]
    print("nanoGPT:", " ".join(args[2:]), flush=True)
    curve = []
    with subprocess.Popen(args, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        for line in proc.stdout:
            m = _EVAL_LINE.match(line)
            if m:
                curve.append((time.perf_counter() - t0, int(m.group(1)), float(m.group(3))))
                print(f"  nanoGPT {curve[-1][0]:7.1f} s  iter {m.group(1):>5}  val {m.group(3)}", flush=True)
        if proc.wait() != 0:
            sys.exit(f"nanoGPT failed (exit {proc.returncode}); its output is above")
    shutil.rmtree(scratch, ignore_errors=True)
    return curve


def _missing(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is None


def run_makemore(data: Path, model_type: str, train: dict, hyper: dict, block_size: int | None,
                 device: str) -> tuple[list[tuple[float, float, int, float]], dict]:
    """(wall seconds since launch, training seconds, step, val loss) at each evaluation, and a summary with the
    best checkpoint's loss on the whole val split."""
    t0 = time.perf_counter()
    from makemore.events import Eval
    from makemore.models import load_weights
    from makemore.rundir import BEST
    from makemore.training import Request, new_trainer

    out = Path(tempfile.mkdtemp(prefix="makemore-shk-")) / "run"
    trainer, _ = new_trainer(Request(data=str(data), model_type=model_type, out=out, mode="text",
                                     block_size=block_size, hyper=hyper, train=train, device=device))
    cfg = trainer.cfg
    print(f"makemore {model_type}: {trainer.model.num_params():,} parameters, block {trainer.data.block}, "
          f"{trainer.model.config}, batch {cfg.batch_size}, lr {cfg.learning_rate:g}, steps {cfg.max_steps or '-'}"
          f", max_time {cfg.max_time}", flush=True)
    curve = []
    for event in trainer.run():
        if isinstance(event, Eval):
            curve.append((time.perf_counter() - t0, trainer.elapsed, event.step, event.val_loss))
            print(f"  makemore {curve[-1][0]:7.1f} s (training {trainer.elapsed:6.1f} s)  step {event.step:>5}  "
                  f"val {event.val_loss:.4f}", flush=True)
    wall = time.perf_counter() - t0
    load_weights(trainer.model, trainer.rundir.best_weights(), out / BEST)
    full_val = trainer.data.evaluate(trainer.model, "val", trainer.device, max_tokens=None)
    summary = {"type": model_type, "params": trainer.model.num_params(), "steps": trainer.step,
               "batch": cfg.batch_size, "block": trainer.data.block, "wall": wall, "train_s": trainer.elapsed,
               "full_val": full_val, "dtype": cfg.dtype, "precision": trainer.matmul_precision}
    shutil.rmtree(out.parent, ignore_errors=True)
    return curve, summary


def first_below(curve, threshold: float, wall_index: int = 0, loss_index: int = -1) -> str:
    hit = next((c for c in curve if c[loss_index] <= threshold), None)
    return f"{hit[wall_index]:.0f} s" if hit else "-"


def overrides(args, model_type: str) -> tuple[dict, dict]:
    """--set KEY=VALUE: model settings of the family, or training settings."""
    import json

    from makemore.models import get_family

    hyper, train = {}, {}
    for item in args.set:
        key, _, value = item.partition("=")
        (hyper if key in get_family(model_type).hyper else train)[key] = json.loads(value)
    return hyper, train


def side_by_side(args) -> None:
    quick_train = {"max_steps": 20, "eval_interval": 10}
    train = dict(quick_train) if args.quick else {}
    if args.max_time:
        train["max_time"] = args.max_time
    hyper = {"n_layer": 1, "n_embd": 32} if args.quick else {}
    extra_hyper, extra_train = overrides(args, "transformer")
    hyper.update(extra_hyper)
    train.update(extra_train)
    nano = run_nanogpt(args.data, args.quick) if args.only in (None, "nanogpt") else []
    ours, summary = run_makemore(args.data, "transformer", train, hyper, args.block_size, args.device) \
        if args.only in (None, "makemore") else ([], None)
    print()
    rows = []
    for wall, step, val in nano:
        rows.append(["nanoGPT CPU recipe", f"{wall:.1f}", "", str(step), f"{val:.4f}"])
    for wall, train_s, step, val in ours:
        rows.append(["makemore text default" + (f" --max-time {args.max_time:g}" if args.max_time else ""),
                     f"{wall:.1f}", f"{train_s:.1f}", str(step), f"{val:.4f}"])
    print(table(rows, ["run", "wall s", "training s", "step", "val loss"]))
    print()
    rows = []
    if nano:
        rows.append(["nanoGPT CPU recipe", *(first_below(nano, t) for t in THRESHOLDS), f"{nano[-1][2]:.4f}"])
    if ours:
        rows.append(["makemore", *(first_below(ours, t) for t in THRESHOLDS), f"{ours[-1][3]:.4f}"])
    print("wall time to val loss (first evaluation at or below it):")
    print(table(rows, ["run", *(f"≤ {t:.2f}" for t in THRESHOLDS), "last val"]))
    if nano and ours:
        quarter = nano[-1][0] / 4
        reached = [v for w, _, _, v in ours if w <= quarter]
        print(f"\nnanoGPT took {nano[-1][0]:.0f} s to its last evaluation (val {nano[-1][2]:.4f}); a quarter of that "
              f"is {quarter:.0f} s, by which makemore's best val was "
              f"{min(reached):.4f}" if reached else "\n(makemore had not evaluated within a quarter of nanoGPT's time)")
    if summary:
        print(f"makemore's best checkpoint on the whole val split: {summary['full_val']:.4f} nats/char "
              f"({summary['full_val'] / math.log(2):.3f} bits/char); {summary['steps']} steps in "
              f"{summary['wall']:.0f} s wall, {summary['train_s']:.0f} s training; {summary['dtype']}, float32 "
              f"matmul precision {summary['precision']} (as its first step chose, or as given)")


def progression(args) -> None:
    rows = []
    for name in args.types.split(","):
        train = {"max_steps": 10, "eval_interval": 5} if args.quick else {}
        hyper = {}
        if args.quick and name in ("transformer",):
            hyper = {"n_layer": 1, "n_embd": 32}
        _, s = run_makemore(args.data, name, train, hyper, None, args.device)
        rows.append([name, f"{s['params']:,}", f"{s['steps']:,} × {s['batch']}", str(s["block"]),
                     f"{s['wall']:.0f} s", f"{s['full_val']:.4f}", f"{s['full_val'] / math.log(2):.3f}", s["dtype"]])
    print()
    print("the lecture's progression on Tiny Shakespeare, each family's text recipe (val = best checkpoint, "
          "whole val split):")
    print(table(rows, ["type", "params", "steps × batch", "block", "wall", "val nats/char", "bits/char", "dtype"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=TINY, help="Tiny Shakespeare (default: ../shared/data/)")
    parser.add_argument("--only", choices=("makemore", "nanogpt"), help="run one side only")
    parser.add_argument("--max-time", type=float, help="makemore's time budget in seconds (its budget tier)")
    parser.add_argument("--progression", action="store_true", help="every family's text recipe instead")
    parser.add_argument("--types", default=",".join(PROGRESSION), help="families for --progression")
    parser.add_argument("--quick", action="store_true", help="a few steps of tiny models: checks the plumbing")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a setting of makemore's Transformer text recipe (repeatable), "
                             "e.g. --set n_embd=192 --set learning_rate=3e-3 --set batch_size=64")
    parser.add_argument("--block-size", type=int, help="makemore's block size (default: its text recipe's)")
    parser.add_argument("--threads", type=int, help="torch threads for makemore (default: torch's)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    compile_package()
    if not args.data.exists():
        sys.exit(f"{args.data}: not found (pass --data PATH to Tiny Shakespeare)")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    (progression if args.progression else side_by_side)(args)
    if not args.device.startswith("cuda"):  # the machine, as every figure names it; afterwards, so that makemore's
        # wall time still counts importing torch (and in a child process: this one's state stays as it was)
        import torch

        peak = matmul_peak_apart(args.threads)
        print(f"{cpu_name()} · {os.cpu_count()} cores · torch {torch.__version__} · float32 matmul peak "
              f"{peak / 1e9:.0f} GFLOP/s (measured after the runs) · {time.strftime('%Y-%m-%d %H:%M')}")


if __name__ == "__main__":
    main()
