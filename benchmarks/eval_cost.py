"""What an evaluation costs against a training step, for the default names recipe: how often to evaluate.

An evaluation during training scores the training subset and the val split under the weights' average, draws
the samples shown, computes the P(next) table and writes the best checkpoint when it improved. Evaluating more
often shows a threshold sooner (the first printed loss at or below it comes at a multiple of the interval) and
costs more evaluations over the run. This prints both, medians after warm-up, in one process:

    python benchmarks/eval_cost.py                # the default recipe on names.txt
    python benchmarks/eval_cost.py --reps 9
    python benchmarks/eval_cost.py --after 0        # at the first evaluation, of the untrained model

The table gives, for each interval, the evaluations over the recipe's steps and the seconds they add, and the
steps an evaluation is worth.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import cpu_name, matmul_peak, median_time, names_path, table  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="word list (default: ../shared/data/names.txt beside the repository)")
    parser.add_argument("--reps", type=int, default=7, help="timed evaluations (default 7)")
    parser.add_argument("--after", type=int, default=200,
                        help="steps trained before the timing (default 200): an untrained model's evaluation is "
                             "not the run's (its samples run long)")
    args = parser.parse_args()
    data = names_path(args.data)

    import torch

    from makemore.models import recipe_for
    from makemore.training import Request, new_trainer

    with tempfile.TemporaryDirectory() as tmp:
        trainer, _ = new_trainer(Request(data=str(data), model_type="transformer", out=Path(tmp) / "run", hyper={},
                                         train={}, seed=42, device="cpu"))
        for _ in range(args.after):
            trainer._train_step()
            trainer.step += 1
        evaluation = median_time(lambda: list(trainer._evaluate()), warmup=2, reps=args.reps)
        trainer.model.train()
        step = median_time(trainer._train_step, warmup=20, reps=args.reps * 10)  # (the first chooses kernels)
    recipe = recipe_for("transformer")
    total = recipe["max_steps"]
    rows = []
    for interval in (50, 100, 200, 400):
        count = total // interval + 1
        rows.append([f"every {interval}", f"{count}", f"{count * evaluation:.1f} s",
                     f"{count * evaluation / (total * step + count * evaluation):.1%}"])
    print(f"{cpu_name()} · float32 matmul peak {matmul_peak() / 1e9:.0f} GFLOP/s · torch {torch.__version__}")
    print(f"after {args.after:,} steps: an evaluation {evaluation * 1e3:.0f} ms, a step {step * 1e3:.1f} ms: one evaluation is worth "
          f"{evaluation / step:.0f} steps (the recipe evaluates every {recipe['eval_interval']})")
    print(table(rows, ["interval", f"evaluations in {total:,} steps", "their time", "of the run"]))


if __name__ == "__main__":
    main()
