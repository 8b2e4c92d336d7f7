"""Training throughput of the default Transformer under each execution mode: eager float32, torch.compile,
bfloat16 autocast, and DDP over two processes (gloo) on the CPU; the same on CUDA when a GPU is present, with
tokens/s and model-FLOPs utilisation against a matmul peak measured in the same run.

On a two-core CPU DDP x2 is not expected to be faster (two processes share the cores and add an all-reduce per
step); it is reported as it is. The DDP figure comes from a torchrun job started by this script, which runs the
real `makemore train` for a fixed number of steps and reads its steps/s from metrics.jsonl.

    python benchmarks/accel.py            # the full set, a few minutes (compile takes ~20-60 s to warm up)
    python benchmarks/accel.py --quick    # fewer steps
    python benchmarks/accel.py --no-compile --no-ddp
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import count_flops, matmul_peak, median_time, names_path, table  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="word list (default: ../shared/data/names.txt beside the repository)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the Transformer recipe's")
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--no-ddp", action="store_true")
    args = parser.parse_args()

    import torch

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
    splits = prepared.encoded()
    block_size = max(len(w) for w in prepared.words.words) + 1
    targets_per_word = statistics.fmean(len(w) + 1 for w in prepared.train)
    recipe = step_recipe("transformer")
    batch = args.batch_size or recipe["batch_size"]
    reps = dict(warmup=5, reps=3, inner=10) if args.quick else dict(warmup=20, reps=7, inner=20)
    tmp = Path(tempfile.mkdtemp(prefix="makemore-accel-"))

    def trainer(device: str, **train):
        torch.manual_seed(0)
        model = build_model("transformer", len(prepared.vocab), block_size, FAMILIES["transformer"].hyper)
        cfg = TrainConfig(**{**recipe, "batch_size": batch, **train}, device=device)
        return build_trainer(model, prepared.vocab, splits, cfg, RunDir(tmp), "transformer", path.stem)

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rows = []
    for device in devices:
        probe = trainer(device, dtype="float32")
        probe._train_step()  # the first step chooses the float32 matmul precision (timed on a CPU)
        precision = probe.matmul_precision
        peak = matmul_peak(device, precision=precision)
        peak_bf16 = matmul_peak(device, torch.bfloat16) if device == "cuda" else None
        flops = count_flops(trainer(device, dtype="float32")._train_step)  # every mode's matrix products alike
        modes = [("eager float32", {"dtype": "float32"}), ("bfloat16 autocast", {"dtype": "bfloat16"})]
        if not args.no_compile:
            modes.insert(1, ("torch.compile", {"compile": True, "dtype": "float32"}))
        if device == "cuda":
            modes.append(("float16 autocast + grad scaler", {"dtype": "float16"}))
        for label, train in modes:
            t = trainer(device, **train)
            if train.get("compile"):
                for _ in range(3):
                    t._train_step()  # the first calls compile (tens of seconds on a CPU)
            seconds = median_time(t._train_step, device=device, **reps)
            tokens = batch * targets_per_word
            low = train.get("dtype") in ("bfloat16", "float16") and peak_bf16
            mfu = flops / seconds / (peak_bf16 if low else peak)
            memory = ""
            if device == "cuda":
                memory = f", peak memory {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB"
                torch.cuda.reset_peak_memory_stats()
            rows.append([device, label, f"{1 / seconds:,.1f}", f"{tokens / seconds:,.0f}", f"{mfu:.1%}",
                         f"{seconds * 1e3:.2f} ms/step{memory}"])
        rows.append([device, "matmul peak", "-", "-", "-", f"float32 ({precision}) {peak / 1e9:,.0f} GFLOP/s"
                     + (f", bfloat16 {peak_bf16 / 1e9:,.0f} GFLOP/s" if peak_bf16 else "")])
        if not args.no_ddp and (device == "cpu" or torch.cuda.device_count() >= 2):
            steps_per_s = ddp_steps_per_s(path, device, batch, steps=100 if args.quick else 400, tmp=tmp)
            rows.append([device, "DDP x2 (torchrun, real makemore train)", f"{steps_per_s:,.1f}",
                         f"{steps_per_s * batch * targets_per_word:,.0f}", "-", f"global batch {batch}"])
    print(table(rows, ["device", "mode", "steps/s", "tokens/s", "MFU", "detail"]))


def ddp_steps_per_s(path: Path, device: str, batch: int, steps: int, tmp: Path) -> float:
    out = tmp / f"ddp-{device}"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "makemore",
           "train", str(path), "-o", str(out), "--max-steps", str(steps), "--eval-interval", str(steps),
           "--batch-size", str(batch), "--device", device, "--quiet"]
    subprocess.run(cmd, check=True, capture_output=True, env={**os.environ})
    events = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    rates = [e["steps_per_s"] for e in events if e["event"] == "step"]
    return statistics.median(rates[len(rates) // 4:])  # past the first windows (start-up)


if __name__ == "__main__":
    os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")
    main()
