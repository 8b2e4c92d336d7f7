"""What --diagnostics costs: training steps with the instruments at their default interval against without them,
for the default Transformer and the MLP (their default recipes), in interleaved rounds.

Each round times ``--steps`` training steps without diagnostics, then the same number with them (the order
alternates between rounds), each trainer continuing where it left off, so every timed stretch of 300 steps holds
three record steps at the default interval of 100. The steps are driven as ``Trainer.run`` drives them (the record
flags set per step) and each record is written to metrics.jsonl as the JSONL sink writes it; evaluation and
checkpoints are left out (they cost the same either way). The overhead is the median over rounds of each round's
time ratio, with the range of the ratios. On a small CPU the stretches' noise is as large as the cost, so the
script also times record steps against plain steps of the same trainer, one of each in turn (``--pairs``), and
gives the extra time of a record (writing it to metrics.jsonl included) and what it adds at the interval:
extra / (interval × plain step).

    python benchmarks/diagnostics.py                         # 7 rounds of 300 steps per family
    python benchmarks/diagnostics.py --types mlp --rounds 3  # fewer
    python benchmarks/diagnostics.py --quick                 # a smoke test: tiny rounds, not a measurement
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import names_path, sync, table  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="word list (default: ../shared/data/names.txt beside the repository)")
    parser.add_argument("--types", default="transformer,mlp")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=300, help="steps per timed stretch")
    parser.add_argument("--interval", type=int, default=None, help="default: the CLI's --diag-interval default")
    parser.add_argument("--pairs", type=int, default=30, help="record and plain steps timed in turn")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true", help="2 rounds of 20 steps, interval 10 (checks it runs)")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.steps, args.interval = 2, 20, 10

    import torch

    from makemore.device import flush_denormals

    flush_denormals()  # as makemore's commands do, before any torch work starts torch's threads

    from makemore.config import TrainConfig
    from makemore.diagnostics import DEFAULT_INTERVAL
    from makemore.models import FAMILIES, build_model, step_recipe
    from makemore.rundir import RunDir
    from makemore.sinks import JsonlSink
    from makemore.trainer import Trainer
    from makemore.training import build_trainer, prepare_data

    interval = args.interval or DEFAULT_INTERVAL
    path = names_path(args.data)
    prepared = prepare_data(str(path), seed=42)
    splits = prepared.encoded()
    block_size = max(len(w) for w in prepared.words.words) + 1
    print(f"{path.name}: {len(prepared.train):,} training words · device {args.device} · "
          f"{torch.get_num_threads()} threads · diagnostics every {interval} steps")

    def trainer(model_type: str, diagnostics: bool, out: Path) -> Trainer:
        torch.manual_seed(0)
        model = build_model(model_type, len(prepared.vocab), block_size, FAMILIES[model_type].hyper)
        cfg = TrainConfig(**step_recipe(model_type), device=args.device, diagnostics=diagnostics,
                          diag_interval=interval)
        cfg.max_steps = 10**9  # the schedule stays in its plateau; nothing ends
        out.mkdir(parents=True, exist_ok=True)
        return build_trainer(model, prepared.vocab, splits, cfg, RunDir(out), model_type, path.stem)

    def stretch(t: Trainer, sink: JsonlSink, steps: int) -> float:
        """Seconds for ``steps`` steps, driven as Trainer.run drives them."""
        sync(args.device)
        t0 = time.perf_counter()
        for _ in range(steps):
            t._record_step = t.recorder is not None and t.recorder.due(t.step)
            t._measure_norm = (t.step + 1) % t.cfg.log_interval == 0
            t._train_step()
            t.step += 1
            for event in t.diagnostics:
                sink(event)
            t.diagnostics = []
        sync(args.device)
        return time.perf_counter() - t0

    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="makemore-diag-bench-"))
    for model_type in [s.strip() for s in args.types.split(",") if s.strip()]:
        off = trainer(model_type, False, tmp / f"{model_type}-off")
        on = trainer(model_type, True, tmp / f"{model_type}-on")
        sinks = {id(off): JsonlSink(off.run_dir), id(on): JsonlSink(on.run_dir)}
        for t in (off, on):  # warm-up, including one record step; the timed rounds start again at step 0
            stretch(t, sinks[id(t)], min(args.steps, 20))
            t.step = 0
        ratios, times_off, times_on = [], [], []
        for r in range(args.rounds):
            pair = (off, on) if r % 2 == 0 else (on, off)
            seconds = {id(t): stretch(t, sinks[id(t)], args.steps) for t in pair}
            times_off.append(seconds[id(off)] / args.steps)
            times_on.append(seconds[id(on)] / args.steps)
            ratios.append(seconds[id(on)] / seconds[id(off)])
        plain, record = [], []
        for _ in range(args.pairs):
            for recorded, times in ((False, plain), (True, record)):
                sync(args.device)
                t0 = time.perf_counter()
                on._record_step, on._measure_norm = recorded, False
                on._train_step()
                on.step += 1
                for event in on.diagnostics:
                    sinks[id(on)](event)
                on.diagnostics = []
                sync(args.device)
                times.append(time.perf_counter() - t0)
        extra = statistics.median(record) - statistics.median(plain)
        records = sum(1 for line in (Path(on.run_dir) / "metrics.jsonl").open() if '"diagnostics"' in line)
        for s in sinks.values():
            s.close()
        rows.append([model_type, f"{statistics.median(times_off) * 1e3:.2f}", f"{statistics.median(times_on) * 1e3:.2f}",
                     f"{(statistics.median(ratios) - 1) * 100:+.1f}%",
                     f"{(min(ratios) - 1) * 100:+.1f}% to {(max(ratios) - 1) * 100:+.1f}%", str(records),
                     f"{extra * 1e3:.1f} ms", f"{extra / (interval * statistics.median(plain)) * 100:+.1f}%"])
    print(table(rows, ["type", "ms/step off", "ms/step on", "overhead (median)", "range over rounds", "records",
                       "a record's extra", f"= at every {interval}"]))


if __name__ == "__main__":
    main()
