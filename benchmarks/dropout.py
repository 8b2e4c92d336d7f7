"""A training step with dropout: makemore's CPU mask against torch's, side by side in one run.

The model is the Transformer of the long-budget recipe on names.txt (``makemore train names.txt --max-time 600``:
4 blocks of 4 heads x 128 channels, dropout 0.25, batch 128) unless told otherwise. Rounds alternate between the
two masks (``makemore.models.dropout.CPU_MASK``) on the same trainer, so the machine's drift falls on both; each
round times ``--steps`` steps after a warm-up. Prints the median step time of each, their ratio and its range
over the rounds, and the share of the step that torch's masks took in a profile.

    python benchmarks/dropout.py
    python benchmarks/dropout.py --set n_layer=1 --set n_embd=96 --set dropout=0.1 --rounds 9
    python benchmarks/dropout.py --set tie_weights=true    # values are JSON, as time_to_loss.py's
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import cpu_name, matmul_peak_apart, names_path, table  # noqa: E402

LONG_BUDGET = 600  # seconds: the recipe whose model this times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="word list (default: ../shared/data/names.txt beside the repository)")
    parser.add_argument("--rounds", type=int, default=7, help="rounds of each mask, alternated (default 7)")
    parser.add_argument("--steps", type=int, default=40, help="timed steps per round (default 40)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a model or training setting of the recipe, e.g. --set dropout=0.1")
    args = parser.parse_args()

    import torch

    from makemore.device import flush_denormals

    flush_denormals()  # as makemore's commands do

    from makemore.models import dropout as dropout_module
    from makemore.models import get_family
    from makemore.training import Request, new_trainer

    # what `makemore train names.txt --max-time 600` builds: the budget picks the long-budget settings
    hyper, family = {}, get_family("transformer")
    train: dict = {"max_time": LONG_BUDGET}
    for item in args.set:
        key, _, value = item.partition("=")
        (hyper if key in family.hyper else train)[key] = json.loads(value)
    out = Path(tempfile.mkdtemp(prefix="makemore-dropout-")) / "run"
    trainer, _ = new_trainer(Request(data=str(names_path(args.data)), model_type="transformer", out=out,
                                     train=train, hyper=hyper))
    cfg = trainer.cfg
    peak = matmul_peak_apart()  # apart: the first step times its dtype in this process
    print(f"{cpu_name()}; float32 matmul peak {peak / 1e9:.0f} GFLOP/s; {torch.get_num_threads()} threads")
    print(f"model {trainer.model.config}; batch {cfg.batch_size}")

    def timed(ours: bool) -> float:
        dropout_module.CPU_MASK = ours
        for _ in range(5):
            trainer._train_step()
        t0 = time.perf_counter()
        for _ in range(args.steps):
            trainer._train_step()
        return (time.perf_counter() - t0) / args.steps

    for ours in (True, False):  # warm-up of both
        timed(ours)
    times: dict[bool, list[float]] = {True: [], False: []}
    for r in range(args.rounds):
        for ours in ((True, False) if r % 2 == 0 else (False, True)):
            times[ours].append(timed(ours))

    from torch.profiler import ProfilerActivity, profile

    dropout_module.CPU_MASK = False
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(10):
            trainer._train_step()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    masks = sum(e.self_cpu_time_total for e in events if e.key == "aten::bernoulli_")
    dropout_module.CPU_MASK = True

    ratios = [b / a for a, b in zip(times[True], times[False])]
    theirs, ours = statistics.median(times[False]), statistics.median(times[True])
    print(table([["torch's masks (F.dropout)", f"{theirs * 1e3:.2f}", "1.00"],
                 ["makemore's CPU masks", f"{ours * 1e3:.2f}", f"{theirs / ours:.2f}"]],
                ["dropout", "ms a step", "speed-up"]))
    print(f"ratio per round pair: {statistics.median(ratios):.2f}x ({min(ratios):.2f}x to {max(ratios):.2f}x) over "
          f"{args.rounds} rounds of {args.steps} steps; torch's masks (aten::bernoulli_) took "
          f"{100 * masks / total:.0f}% of its step's self time")


if __name__ == "__main__":
    main()
