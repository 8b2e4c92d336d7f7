"""Every GPU figure the performance issue asks for, in one or two runs of a few minutes each: prepared to be run
once on a machine with a CUDA GPU, with its output kept for the README.

It runs the other benchmarks, one after the other, with ``--device cuda``, bfloat16 and ``torch.compile``:

1. ``accel.py``: the default Transformer's training step on names.txt under eager float32 (TF32 matmuls, the
   ``auto`` precision on CUDA), torch.compile, bfloat16 autocast, and float16 with the gradient scaler: steps/s,
   tokens/s, MFU against the GPU's float32 and bfloat16 matmul peaks measured in the same run.
2. ``time_to_loss.py``: ``makemore train names.txt`` on the GPU (bfloat16, compiled) for two minutes: the wall
   time to each held-out loss (2.10 ... 1.92), the figure-1 thresholds among them.
3. ``shakespeare.py --only makemore``: the default text recipe on the GPU (bfloat16, compiled): wall time to each
   validation loss, to set beside nanoGPT's A100 figure (1.4697 in about 3 minutes).
4. ``text_speed.py``: the text recipe's step: characters/s and MFU.
5. and 6. Sampling: a 300-step run trained on the GPU, then 1,000 names from it, in process, on the GPU and on
   the CPU.
7. A Transformer averaging dropout masks (``--dropout-samples``) on the GPU: its masks drawn by a CUDA
   generator in evaluation and sampling; a score must not change from one call to the next.

Every step trains through pinned host memory (batches move with non-blocking copies on CUDA). Each step has its
own time limit (12.5 minutes in all at worst, 6 for steps 1-2), so one that hangs cannot take the others'
time; the summary says which passed. Where one command may run at most 10 minutes, run steps 1-2 and 3-6 apart.

    python benchmarks/gpu.py --out gpu-results --steps 1,2   # on a GPU machine (not yet run on one)
    python benchmarks/gpu.py --out gpu-results --steps 3,4,5,6,7
    python benchmarks/gpu.py --dry-run --out /tmp/g   # the same steps, tiny and on the CPU: checks the plumbing
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, names_path, table  # noqa: E402

HERE = Path(__file__).resolve().parent


def steps(device: str, dry: bool, work: Path) -> list[tuple[str, list[str], float]]:
    """(name, command, time limit in seconds) of each step."""
    py = [sys.executable]
    fast = ["--set", 'dtype="bfloat16"'] + ([] if dry else ["--set", "compile=true"])
    makemore = [*py, "-m", "makemore"]
    run = work / "sample-run"
    return [
        ("training step, every mode", [*py, str(HERE / "accel.py"), "--no-ddp", *(["--quick", "--no-compile"]
                                                                                   if dry else [])], 180),
        ("names: time to loss", [*py, str(HERE / "time_to_loss.py"), "--device", device, "--minutes",
                                 "0.03" if dry else "2", "--every", "1" if dry else "2", *fast], 180),
        ("text: Tiny Shakespeare", [*py, str(HERE / "shakespeare.py"), "--only", "makemore", "--device", device,
                                    *(["--quick"] if dry else []), *fast], 180),
        ("text: step speed", [*py, str(HERE / "text_speed.py"), "--device", device,
                              *(["--rounds", "1", "--steps", "2"] if dry else [])], 90),
        ("sampling: a run to sample", [*makemore, "train", str(names_path(None)), "--device", device,
                                       "--max-steps", "20" if dry else "300", "-o", str(run), "-q"], 60),
        ("sampling: 1,000 names", [*py, "-c", SAMPLING, str(run), device], 60),
        ("averaging dropout masks", [*py, "-c", MASKS, str(names_path(None)), str(work / "masks-run"), device,
                                     "20" if dry else "200", "16" if dry else "64"], 90),
    ]


# a Transformer that averages dropout masks, trained, evaluated twice (the same figure) and sampled on the device
MASKS = """
import math, sys
import makemore
data, out, device, steps, width = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
run = makemore.train(data, out=out, device=device, n_layer=2, n_embd=width, dropout=0.2, dropout_samples=8,
                     max_steps=steps, progress=False)
model = makemore.load(out, device=device)
first, second = model.evaluate()["loss"], model.evaluate()["loss"]
assert first == second and math.isfinite(first), (first, second)
words = model.sample(200, seed=1, logprobs=True)
assert len(words) == 200 and all(math.isfinite(lp) for _, lp in words)
print(f"{device}: test {first:.4f} (averaging 8 masks; the run reported {run.test_loss:.4f}); 200 names sampled")
"""


# names/s for 1,000 names, in process, on the device and on the CPU: median of 5 after one warm-up each
SAMPLING = """
import statistics, sys, time
import makemore
run, device = sys.argv[1], sys.argv[2]
for where in dict.fromkeys((device, "cpu")):
    model = makemore.load(run, device=where)
    model.sample(1000, seed=99)
    took = []
    for seed in range(5):
        if where.startswith("cuda"):
            import torch; torch.cuda.synchronize()
        t0 = time.perf_counter()
        words = model.sample(1000, seed=seed)
        took.append(time.perf_counter() - t0)
    assert len(words) == 1000
    low, high = min(took) * 1e3, max(took) * 1e3
    print(f"{where}: {1000 / statistics.median(took):,.0f} names/s (median of 5; {low:.0f}-{high:.0f} ms)")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for each step's full output")
    parser.add_argument("--dry-run", action="store_true", help="tiny steps on the CPU: checks that all runs")
    parser.add_argument("--steps", default="1,2,3,4,5,6,7", help="which steps, by number (sampling needs 5 "
                                                                  "before 6)")
    args = parser.parse_args()

    import torch

    device = "cpu" if args.dry_run else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        sys.exit("no CUDA device here (use --dry-run to check the steps on the CPU)")
    args.out.mkdir(parents=True, exist_ok=True)
    machine = torch.cuda.get_device_name() if device == "cuda" else "CPU (dry run)"
    print(f"{machine} · torch {torch.__version__} · {time.strftime('%Y-%m-%d %H:%M')}", flush=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "160"}
    rows = []
    with tempfile.TemporaryDirectory(prefix="makemore-gpu-") as work:
        wanted = {int(n) for n in args.steps.split(",")}
        for i, (name, cmd, limit) in enumerate(steps(device, args.dry_run, Path(work)), 1):
            if i not in wanted:
                continue
            log = args.out / f"{i}-{''.join(c if c.isalnum() else '-' for c in name).strip('-')}.txt"
            print(f"\n== {i}. {name}: {shlex.join(cmd)}", flush=True)
            start = time.perf_counter()
            try:
                done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=limit)
                status = "ok" if done.returncode == 0 else f"exit {done.returncode}"
                output = done.stdout + done.stderr
            except subprocess.TimeoutExpired as e:
                status = f"stopped at {limit:.0f} s"
                output = "".join(x.decode() if isinstance(x, bytes) else (x or "") for x in (e.stdout, e.stderr))
            seconds = time.perf_counter() - start
            log.write_text(f"$ {shlex.join(cmd)}\n{output}")
            print("\n".join(output.rstrip().splitlines()[-25:]), flush=True)
            rows.append([str(i), name, status, f"{seconds:.0f} s", log.name])
    print("\n" + table(rows, ["", "step", "result", "wall", "output"]))
    if any(row[2] != "ok" for row in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
