"""Where the Transformer's training step spends its time, at the reference's batch of 32 words by default.

Two views, both medians over many steps on the same stream of batches:

1. The step's phases, timed one after the other in the order the trainer runs them (packing the batch, forward,
   backward, gradient clipping, the fused AdamW update, zeroing the flat gradients, the weights' average), beside
   the trainer's own step (``Trainer._train_step``) as a check that the phases add up to it.
2. What each kind of non-matmul kernel costs, forward and backward: the step is timed with GELU, attention or
   LayerNorm replaced by the identity, interleaved with the real step, and the difference is reported.

    python benchmarks/step_breakdown.py                 # batch 32, the reference's model (4 layers, 64 channels)
    python benchmarks/step_breakdown.py --batch-size 128
    python benchmarks/step_breakdown.py --default-model  # the default recipe's model (one block of 96 channels)
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import count_flops, matmul_peak, median_time, names_path, table  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="word list (default: ../shared/data/names.txt beside the repository)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=400, help="timed steps per view (default 400)")
    parser.add_argument("--default-model", action="store_true",
                        help="the default recipe's model instead of the reference's 4 layers of 64 channels")
    args = parser.parse_args()

    import torch
    import torch.nn.functional as F

    from makemore.device import flush_denormals

    flush_denormals()  # as makemore's commands do, before any torch work starts torch's threads

    from makemore.training import prepare_data
    from makemore.models import FAMILIES, step_recipe
    from makemore.models import build_model
    from makemore.config import TrainConfig
    from makemore.rundir import RunDir
    from makemore.training import build_trainer

    path = names_path(args.data)
    prepared = prepare_data(str(path), seed=42)
    block_size = max(len(w) for w in prepared.words.words) + 1
    torch.manual_seed(0)
    hyper = dict(FAMILIES["transformer"].hyper)
    if not args.default_model:
        hyper.update(n_layer=4, n_head=4, n_embd=64)  # Karpathy's makemore.py's Transformer
    model = build_model("transformer", len(prepared.vocab), block_size, hyper)
    cfg = TrainConfig(**{**step_recipe("transformer"), "batch_size": args.batch_size})
    trainer = build_trainer(model, prepared.vocab, prepared.encoded(), cfg, RunDir(tempfile.mkdtemp()),
                            "transformer", path.stem)
    words, row_len = trainer.train_words, model.config.block_size
    gen = torch.Generator().manual_seed(0)
    batches = [words.packed_batch(torch.randint(len(words), (args.batch_size,), generator=gen), row_len)
               for _ in range(64)]
    for _ in range(30):
        trainer._train_step()

    # 1. phases, in the trainer's order
    phases: dict[str, list[float]] = {k: [] for k in
                                      ("pack the batch", "forward", "backward", "clip", "AdamW", "zero", "average")}
    whole = []
    for i in range(args.steps):
        index = torch.randint(len(words), (args.batch_size,), generator=gen)
        marks = [time.perf_counter()]
        x, y, pos = words.packed_batch(index, row_len)
        marks.append(time.perf_counter())
        _, loss = model(x, y, pos=pos)
        marks.append(time.perf_counter())
        loss.backward()
        marks.append(time.perf_counter())
        torch.nn.utils.clip_grad_norm_(trainer.trained, cfg.grad_clip)
        marks.append(time.perf_counter())
        trainer.optimizer.step()
        marks.append(time.perf_counter())
        for p in trainer.trained:
            p.grad.zero_()
        marks.append(time.perf_counter())
        with torch.no_grad():
            torch._foreach_lerp_(trainer.ema, [p.detach() for p in trainer.trained], 1 - cfg.ema)
        marks.append(time.perf_counter())
        for name, a, b in zip(phases, marks, marks[1:]):
            phases[name].append(b - a)
        if i % 4 == 0:  # the real step, interleaved
            whole.append(median_time(trainer._train_step, warmup=0, reps=1))
    step = statistics.median(whole)
    rows = [["trainer step (Trainer._train_step)", f"{step * 1e3:.3f} ms", "100%"]]
    total = 0.0
    for name, times in phases.items():
        t = statistics.median(times)
        total += t
        rows.append([f"  {name}", f"{t * 1e3:.3f} ms", f"{t / step:.0%}"])
    rows.append(["  sum of the phases", f"{total * 1e3:.3f} ms", f"{total / step:.0%}"])

    # 2. kernels replaced by the identity, interleaved with the real forward and backward
    it = itertools.count()

    def fwd_bwd():
        x, y, pos = batches[next(it) % len(batches)]
        model(x, y, pos=pos)[1].backward()

    peak = matmul_peak(precision=trainer.matmul_precision)
    flops = count_flops(fwd_bwd)
    identity = {"GELU": ("gelu", lambda a, **_: a),
                "attention (SDPA)": ("scaled_dot_product_attention", lambda q, k, v, **_: v),
                "LayerNorm": ("layer_norm", lambda a, *_, **__: a)}
    times: dict[str, list[float]] = {"real": [], **{k: [] for k in identity}}
    inner = max(1, args.steps // 40)
    for _ in range(7):
        times["real"].append(median_time(fwd_bwd, warmup=3, reps=5, inner=inner))
        for label, (attr, fake) in identity.items():
            real = getattr(F, attr)
            setattr(F, attr, fake)
            try:
                times[label].append(median_time(fwd_bwd, warmup=3, reps=5, inner=inner))
            finally:
                setattr(F, attr, real)
    real = statistics.median(times["real"])
    rows.append(["forward + backward", f"{real * 1e3:.3f} ms",
                 f"{flops / 1e9:.2f} GFLOP of matmuls: {flops / peak * 1e3:.2f} ms at the peak"])
    for label in identity:
        cost = real - statistics.median(times[label])
        rows.append([f"  {label}, forward and backward", f"{cost * 1e3:.3f} ms", f"{cost / real:.0%}"])
    print(f"Transformer {model.num_params():,} parameters, batch {args.batch_size} words "
          f"(~{statistics.fmean(b[0].size(0) for b in batches):.1f} packed rows of {row_len}), "
          f"{torch.get_num_threads()} threads, float32 matmul precision {trainer.matmul_precision}, "
          f"matmul peak {peak / 1e9:.0f} GFLOP/s")
    print(table(rows, ["what", "median", "share"]))


if __name__ == "__main__":
    main()
