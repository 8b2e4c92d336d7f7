"""Wall time to a given test loss with the default recipe, and the test loss after a fixed time.

Trains the default family (the Transformer) on ../shared/data/names.txt exactly as
``makemore train names.txt --max-time SECONDS`` does: the time budget ends training, the learning-rate schedule
spans it, and a long budget picks the family's settings for that budget. It evaluates the test split every few
seconds of training, in one pass as the trainer's own periodic losses are (a model that averages dropout masks is
scored that way at the end too). It is a benchmark, so it looks at the test split as it goes; the trainer still
selects its checkpoint on the validation split. Evaluation time is not training time (the trainer's clock
excludes it).

    python benchmarks/time_to_loss.py                 # 10 minutes
    python benchmarks/time_to_loss.py --minutes 1     # a short run
    python benchmarks/time_to_loss.py --schedule steps   # the recipe's own step schedule, capped at the budget
    python benchmarks/time_to_loss.py --reference path/to/makemore.py   # Karpathy's script instead, at its defaults
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import cpu_name, matmul_peak_apart, names_path, table  # noqa: E402

THRESHOLDS = (2.10, 2.05, 2.00, 1.95, 1.92)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="word list (default: ../shared/data/names.txt beside the repository)")
    parser.add_argument("--minutes", type=float, default=10.0, help="training time budget (default 10)")
    parser.add_argument("--type", default="transformer", help="model family (default: transformer)")
    parser.add_argument("--every", type=float, default=5.0, help="seconds of training between test evaluations")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a model or training setting of the recipe, e.g. --set n_embd=128 "
                             "--set dropout=0.2 --set batch_size=128 (repeatable)")
    parser.add_argument("--schedule", choices=("time", "steps"), default="time",
                        help="time: the learning-rate schedule spans the budget; steps: the recipe's own step "
                             "count (training ends there or at the budget, whichever comes first)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--reference", metavar="PATH",
                        help="time Karpathy's makemore.py instead, at its defaults, for --reference-steps steps")
    parser.add_argument("--reference-steps", type=int, default=10_000)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    if args.reference:
        return reference(args.reference, names_path(args.data), args.reference_steps)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from makemore.evaluation import evaluate
    from makemore.training import Request, lean_note, new_trainer
    from makemore.models import recipe_for

    budget = args.minutes * 60
    recipe = recipe_for(args.type)
    out = Path(tempfile.mkdtemp(prefix="makemore-ttl-")) / "run"
    # time: what `makemore train DATA --max-time SECONDS` does (the budget decides, and picks the family's
    # settings for it); steps: the recipe's own step count, capped at the budget
    train = {"max_time": budget, "max_steps": recipe["max_steps"]} if args.schedule == "steps" else {"max_time": budget}
    from makemore.models import get_family

    hyper = {}
    for item in args.set:
        key, _, value = item.partition("=")
        try:
            parsed = json.loads(value)  # numbers, true/false
        except json.JSONDecodeError:
            parsed = value  # a word: dtype=bfloat16
        (hyper if key in get_family(args.type).hyper else train)[key] = parsed
    request = Request(data=str(names_path(args.data)), model_type=args.type, out=out, device=args.device,
                      train=train, hyper=hyper)
    if not args.device.startswith("cuda"):  # the machine, as every figure names it (a GPU run: the GPU benchmark)
        peak = matmul_peak_apart(args.threads)  # apart: the run's first step times its dtype in this process
        print(f"{cpu_name()} · {os.cpu_count()} cores · torch {torch.__version__} · float32 matmul peak "
              f"{peak / 1e9:.0f} GFLOP/s (measured now) · {time.strftime('%Y-%m-%d %H:%M')}", flush=True)
    trainer, _ = new_trainer(request)
    note = lean_note(trainer)  # the timing chose the family's lean settings, as `makemore train` says
    if note:
        print(f"note: {note}", flush=True)
    print(f"{args.type}: {trainer.model.num_params():,} parameters; model {trainer.model.config}; "
          f"training {asdict(trainer.cfg)}; budget {budget:.0f} s; {torch.get_num_threads()} threads", flush=True)
    curve: list[tuple[float, int, float]] = []  # (seconds of training, step, test loss)
    next_eval = 0.0
    finished = None
    val = float("nan")
    for event in trainer.run():
        if event.kind == "eval":
            val = event.val_loss
        if event.kind == "step" and event.elapsed >= next_eval:
            # the weights evaluation and checkpoints use (the moving average, if on); one pass, as the trainer's
            # own periodic losses (a model averaging dropout masks is scored with them at the end)
            with trainer.averaged(), trainer.one_pass():
                loss = evaluate(trainer.model, trainer.test_words, device=trainer.device)
            curve.append((event.elapsed, event.step, loss))
            next_eval = event.elapsed + args.every
            print(f"  {event.elapsed:7.1f} s  step {event.step:6d}  test {loss:.4f}  (last val {val:.4f})  "
                  f"lr {event.lr:.2e}", flush=True)
        elif event.kind == "finished":
            finished = event
    with trainer.averaged(), trainer.one_pass():
        final = evaluate(trainer.model, trainer.test_words, device=trainer.device)
    curve.append((finished.elapsed, finished.step, final))

    rows = threshold_rows(curve)
    rows.append(["dtype, float32 matmul precision (as the first step chose)", trainer.cfg.dtype,
                 trainer.matmul_precision])
    rows.append([f"test loss at the end ({finished.elapsed:.0f} s, {finished.reason})", f"{final:.4f}",
                 f"step {finished.step:,}"])
    if finished.test_loss_one_pass is not None:
        rows.append(["test loss, best-val checkpoint, one pass", f"{finished.test_loss_one_pass:.4f}",
                     f"best val {finished.best_val_loss:.4f} (one pass)"])
        k = trainer.model.config.dropout_samples
        rows.append([f"test loss, best-val checkpoint, averaging {k} dropout masks", f"{finished.test_loss:.4f}",
                     "what the run reports"])
    elif finished.test_loss is not None:
        rows.append(["test loss, best-val checkpoint", f"{finished.test_loss:.4f}",
                     f"best val {finished.best_val_loss:.4f}"])
    print(table(rows, ["what", "value", "where"]))


def threshold_rows(curve: list[tuple[float, int, float]]) -> list[list[str]]:
    rows = []
    for threshold in THRESHOLDS:
        hit = next(((t, s) for t, s, loss in curve if loss <= threshold), None)
        rows.append([f"test loss <= {threshold:.2f}", f"{hit[0]:.1f} s" if hit else "not reached",
                     f"step {hit[1]:,}" if hit else "-"])
    return rows


def reference(path: str, data: Path, steps: int) -> None:
    """Karpathy's makemore.py, unmodified, at its defaults: the wall time of each of its test evaluations.

    It evaluates every 500 steps on its whole test split (1,000 words; its split is its own, not ours) and prints
    ``step N train loss: A test loss: B``. The clock starts at its first logged step (start-up excluded); its
    evaluations and printed samples, a few tens of milliseconds each, stay inside the clock."""
    import re

    out = Path(tempfile.mkdtemp(prefix="makemore-ttl-ref-"))
    cmd = [sys.executable, "-u", str(Path(path).resolve()), "-i", str(data), "-o", str(out / "run"),
           "--max-steps", str(steps)]
    print(" ".join(cmd), flush=True)
    curve, start = [], None
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=out) as proc:
        for line in proc.stdout:
            now = time.perf_counter()
            if start is None and line.startswith("step 0 |"):
                start = now
            if m := re.match(r"step (\d+) train loss: (\S+) test loss: (\S+)", line):
                curve.append((now - start, int(m[1]), float(m[3])))
                print(f"  {now - start:7.1f} s  step {int(m[1]):6d}  test {float(m[3]):.4f}", flush=True)
    if proc.returncode or not curve:
        sys.exit(f"{path}: exited with {proc.returncode} after {len(curve)} evaluations")
    rows = threshold_rows(curve)
    t, step, loss = curve[-1]
    rows.append([f"test loss at its last evaluation ({t:.0f} s)", f"{loss:.4f}", f"step {step:,}"])
    rows.append(["lowest test loss", f"{min(c[2] for c in curve):.4f}", ""])
    print(table(rows, ["what", "value", "where"]))


if __name__ == "__main__":
    main()
