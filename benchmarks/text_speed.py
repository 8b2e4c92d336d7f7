"""The default text recipe's training speed: characters per second and model-FLOPs utilisation.

Builds the trainer `makemore train tinyshakespeare.txt --mode text` builds (the Transformer's text recipe: one
block of 4 heads and 128 channels, block 64, batch 32), times its training step (median after warm-up, in
rounds), counts the FLOPs of the matrix products of one step (forward and backward, attention included) with
torch.utils.flop_counter, and measures the matmul peak in the same run, in the dtype the trainer's first step
took (``--dtype auto``: float32, or bfloat16 autocast where it timed faster) and under the float32 matmul
precision it took (``--matmul-precision auto``): the MFU is against that peak. Characters per second are
predicted characters: batch x block per step.

    python benchmarks/text_speed.py                      # Tiny Shakespeare from ../shared/data/
    python benchmarks/text_speed.py --type gru            # another family's text recipe
    python benchmarks/text_speed.py --dtype float32       # the dtype given, not chosen
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, count_flops, cpu_name, matmul_peak, median_time, table  # noqa: E402

TINY = REPO.parent / "shared" / "data" / "tinyshakespeare.txt"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=TINY)
    parser.add_argument("--type", default="transformer")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20, help="steps per timed round")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="auto", help="as makemore train's --dtype (default: auto)")
    args = parser.parse_args()
    if not args.data.exists():
        sys.exit(f"text not found: {args.data} (pass --data PATH)")

    import torch

    from makemore.training import Request, new_trainer

    out = Path(tempfile.mkdtemp(prefix="makemore-text-speed-")) / "run"
    trainer, _ = new_trainer(Request(data=str(args.data), model_type=args.type, out=out, mode="text",
                                     device=args.device, train={"dtype": args.dtype}))
    cfg = trainer.cfg
    block = trainer.data.block
    seconds = median_time(trainer._train_step, warmup=10, reps=args.rounds, inner=args.steps, device=args.device)
    flops = count_flops(trainer._train_step)  # every step's windows have the same shape
    precision, dtype = trainer.matmul_precision, cfg.dtype  # as the first step chose them
    float32_peak = matmul_peak(args.device, precision=precision)
    peak = float32_peak if dtype == "float32" else matmul_peak(args.device, dtype=getattr(torch, dtype))
    chars = cfg.batch_size * block
    rows = [
        ["model", f"{args.type}, {trainer.model.num_params():,} parameters, {trainer.model.config}"],
        ["batch", f"{cfg.batch_size} windows x {block} characters = {chars:,} predictions a step"],
        ["training step (median)", f"{seconds * 1e3:.1f} ms ({args.rounds} rounds of {args.steps} steps)"],
        ["characters / s", f"{chars / seconds:,.0f}"],
        ["model FLOPs / step", f"{flops / 1e9:.2f} GFLOP (matrix products, forward and backward)"],
        ["achieved", f"{flops / seconds / 1e9:.0f} GFLOP/s"],
        ["dtype", dtype + (" (--dtype auto: the first step timed it faster)" if args.dtype == "auto" else "")],
        [f"matmul peak (float32, {precision})", f"{float32_peak / 1e9:.0f} GFLOP/s, {torch.get_num_threads()} threads"],
    ]
    if dtype != "float32":
        rows.append([f"matmul peak ({dtype})", f"{peak / 1e9:.0f} GFLOP/s"])
    rows.append([f"MFU (against the {dtype} peak)", f"{flops / seconds / peak:.1%}"])
    print(f"{cpu_name()} · torch {torch.__version__} · {args.data.name}")
    print(table(rows, ["measurement", "value"]))


if __name__ == "__main__":
    main()
