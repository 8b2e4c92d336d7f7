"""The default text recipe's training speed: characters per second and model-FLOPs utilisation.

Builds the trainer `makemore train tinyshakespeare.txt --mode text` builds (the Transformer's text recipe: one
block of 4 heads and 128 channels, block 64, batch 32), times its training step (median after warm-up, in
rounds), counts the FLOPs of the matrix products of one step (forward and backward, attention included) with
torch.utils.flop_counter, and measures the float32 matmul peak in the same run, under the precision the trainer
took (``--matmul-precision auto``). Characters per second are predicted characters: batch x block per step.

    python benchmarks/text_speed.py                      # Tiny Shakespeare from ../shared/data/
    python benchmarks/text_speed.py --type gru            # another family's text recipe
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
    args = parser.parse_args()
    if not args.data.exists():
        sys.exit(f"text not found: {args.data} (pass --data PATH)")

    import torch

    from makemore.training import Request, new_trainer

    out = Path(tempfile.mkdtemp(prefix="makemore-text-speed-")) / "run"
    trainer, _ = new_trainer(Request(data=str(args.data), model_type=args.type, out=out, mode="text",
                                     device=args.device))
    cfg = trainer.cfg
    block = trainer.data.block
    seconds = median_time(trainer._train_step, warmup=10, reps=args.rounds, inner=args.steps, device=args.device)
    flops = count_flops(trainer._train_step)  # every step's windows have the same shape
    precision = trainer.matmul_precision
    peak = matmul_peak(args.device, precision=precision)
    chars = cfg.batch_size * block
    rows = [
        ["model", f"{args.type}, {trainer.model.num_params():,} parameters, {trainer.model.config}"],
        ["batch", f"{cfg.batch_size} windows x {block} characters = {chars:,} predictions a step"],
        ["training step (median)", f"{seconds * 1e3:.1f} ms ({args.rounds} rounds of {args.steps} steps)"],
        ["characters / s", f"{chars / seconds:,.0f}"],
        ["model FLOPs / step", f"{flops / 1e9:.2f} GFLOP (matrix products, forward and backward)"],
        ["achieved", f"{flops / seconds / 1e9:.0f} GFLOP/s"],
        [f"matmul peak ({precision})", f"{peak / 1e9:.0f} GFLOP/s, {torch.get_num_threads()} threads"],
        ["MFU", f"{flops / seconds / peak:.1%}"],
    ]
    print(f"{cpu_name()} · torch {torch.__version__} · {args.data.name}")
    print(table(rows, ["measurement", "value"]))


if __name__ == "__main__":
    main()
