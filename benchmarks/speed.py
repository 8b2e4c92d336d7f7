"""How fast makemore is, measured in one run and printed as one table.

For every trainable family in the registry: ms per optimizer step and tokens per second at the reference's
settings (batch 32 of names, AdamW 5e-4, the family's default model) and at the family's default recipe, with
model-FLOPs utilisation against a float32 matmul peak measured in the same run. Then sampling throughput with
and without the incremental decoder (KV cache, recurrent state), CLI start-up, and data preparation for the
30k-line benchmark list and a synthetic 1M-line list.

FLOPs are counted by torch.utils.flop_counter on real training steps (forward and backward of every matrix
product, attention included, at the batch's padded length); elementwise work and the optimizer are not counted.
Tokens are target characters plus the stop token (padding excluded). Times are medians after warm-up.

    python benchmarks/speed.py                       # full run, a few minutes
    python benchmarks/speed.py --quick               # a short run to check it works
    python benchmarks/speed.py --reference /path/to/makemore.py   # also time Karpathy's makemore.py side by side
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import count_flops, matmul_peak, matmul_peak_apart, median_time, names_path, table  # noqa: E402

REFERENCE_SETTINGS = {"batch_size": 32, "learning_rate": 5e-4, "weight_decay": 0.01, "grad_accum": 1}
REFERENCE_MODEL = {"transformer": {"n_layer": 4, "n_head": 4, "n_embd": 64, "dropout": 0.0}}  # makemore.py's


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="word list (default: ../shared/data/names.txt beside the repository)")
    parser.add_argument("--quick", action="store_true", help="few repetitions and a 100k-line file: a smoke run")
    parser.add_argument("--reference", help="path to Karpathy's makemore.py: time its Transformer step too")
    parser.add_argument("--rounds", type=int, default=7, help="alternated rounds against the reference (default 7)")
    parser.add_argument("--families", help="comma-separated families (default: every trainable one)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    import torch

    from makemore.device import flush_denormals

    flush_denormals()  # as makemore's commands do, before any torch work starts torch's threads

    if args.threads:
        torch.set_num_threads(args.threads)
    reps = dict(warmup=3, reps=3, inner=5) if args.quick else dict(warmup=20, reps=7, inner=20)
    path = names_path(args.data)
    rows: list[list[str]] = []

    # a family's trainer picks its float32 matmul precision (on a CPU "medium", oneDNN's kernels, for the
    # Transformer); its MFU is against the peak under that precision. On a CPU the peak is measured in a child
    # process, which leaves the first steps' timings in this one as a run's would be (common.matmul_peak_apart)
    cpu = args.device == "cpu"
    peaks = {p: matmul_peak_apart(args.threads, p) if cpu else matmul_peak(args.device, precision=p)
             for p in ("highest", "medium" if cpu else "high")}
    for precision, peak in peaks.items():
        rows.append([f"matmul peak (float32, {precision})", "best of n=512..2048", f"{peak / 1e9:.0f} GFLOP/s",
                     f"{torch.get_num_threads()} threads"])

    from makemore.training import prepare_data
    from makemore.models import FAMILIES, step_recipe
    from makemore.models import build_model
    from makemore.config import TrainConfig
    from makemore.rundir import RunDir
    from makemore.training import build_trainer

    prepared = prepare_data(str(path), seed=42)
    splits = prepared.encoded()
    block_size = max(len(w) for w in prepared.words.words) + 1
    targets_per_word = statistics.fmean(len(w) + 1 for w in prepared.train)
    tmp = Path(tempfile.mkdtemp(prefix="makemore-speed-"))
    families = args.families.split(",") if args.families else list(FAMILIES)

    def trainer_for(name: str, settings: dict, data=None):
        torch.manual_seed(0)
        hyper = {**FAMILIES[name].hyper, **(REFERENCE_MODEL.get(name, {}) if settings is REFERENCE_SETTINGS else {})}
        model = build_model(name, len(prepared.vocab), block_size, hyper)
        if not model.trainable:
            return None
        cfg = TrainConfig(**{**step_recipe(name), **settings}, device=args.device)
        return build_trainer(model, prepared.vocab, data or splits, cfg, RunDir(tmp), name, path.stem)

    def measure(trainer) -> tuple[float, float, str]:
        seconds = median_time(trainer._train_step, device=args.device, **reps)
        flops = statistics.fmean(count_flops(trainer._train_step) for _ in range(3))
        tokens = trainer.cfg.batch_size * targets_per_word
        mfu = f"MFU {flops / seconds / peaks[trainer.matmul_precision]:.1%} ({trainer.matmul_precision})"
        if trainer.matmul_precision != "highest":  # also against torch's default matmul, as the others
            mfu += f", {flops / seconds / peaks['highest']:.1%} of the highest-precision peak"
        return seconds, tokens / seconds, mfu

    trained = {}
    for name in families:
        batch_256 = (("default model", {"batch_size": 256}),) if name == "transformer" else ()  # the MFU goal
        for label, settings in (("reference settings", REFERENCE_SETTINGS), ("default recipe", {}), *batch_256):
            trainer = trainer_for(name, settings)
            if trainer is None:
                rows.append([f"train step: {name}", label, "-", "count model: fitted in one pass"])
                break
            seconds, tokens_per_s, mfu = measure(trainer)
            rows.append([f"train step: {name}", f"{label}, batch {trainer.cfg.batch_size}",
                         f"{seconds * 1e3:.2f} ms",
                         f"{tokens_per_s:,.0f} tokens/s, {mfu}"])
            trained[name] = trainer

    if args.reference:
        # the reference as its users run it: its own script and loop (DataLoader with its default 4 workers, AdamW),
        # timed by its own per-step clock (printed every 10 steps), against our training step on the same data.
        # Alternated in rounds: this machine's speed drifts by up to a third within minutes, so each round's ratio
        # compares two measurements taken back to back, and the median over rounds is the figure reported
        ours = trainer_for("transformer", REFERENCE_SETTINGS)
        median_time(ours._train_step, warmup=reps["warmup"], reps=1)
        steps = 100 if args.quick else 300
        # ours under the precision its trainer took, and (on a CPU) under torch's default, "highest", to show
        # what the oneDNN matmuls add
        precisions = list(dict.fromkeys([ours.matmul_precision, "highest"]))
        rounds = []
        for _ in range(1 if args.quick else args.rounds):
            ref = statistics.median(reference_script_times(args.reference, path, tmp, steps))
            mine = []
            for precision in precisions:
                torch.set_float32_matmul_precision(precision)
                mine.append(statistics.median(median_time(ours._train_step, warmup=0, reps=1) for _ in range(steps)))
            rounds.append((ref, *mine))
        rows.append(["train step: reference makemore.py", "its defaults, batch 32",
                     f"{statistics.median(r[0] for r in rounds) * 1e3:.2f} ms",
                     "its own loop and step clock; " + ", ".join(f"{r[0] * 1e3:.1f}" for r in rounds) + " ms"])
        for i, precision in enumerate(precisions, start=1):
            ratios = sorted(r[0] / r[i] for r in rounds)
            rows.append([f"train step: makemore transformer ({precision})", "same settings, alternated",
                         f"{statistics.median(r[i] for r in rounds) * 1e3:.2f} ms",
                         ", ".join(f"{r[i] * 1e3:.1f}" for r in rounds) + " ms"])
            rows.append(["  ratio, round by round", f"{len(rounds)} rounds", f"{statistics.median(ratios):.2f}x",
                         f"range {ratios[0]:.2f}x to {ratios[-1]:.2f}x"])

    from makemore.models.base import LanguageModel
    from makemore.sample import generate

    n = 1000
    torch.set_float32_matmul_precision("highest")  # as `makemore sample` runs: torch's default
    for name, trainer in trained.items():
        model = trainer.model
        gen = torch.Generator().manual_seed(0)
        cached = median_time(lambda: generate(model, prepared.vocab, n, generator=gen), warmup=1,
                             reps=1 if args.quick else 3)
        words = generate(model, prepared.vocab, n, generator=gen)
        mean_len = statistics.fmean(len(g.word) for g in words)
        detail = f"{n / cached:,.0f} names/s (mean length {mean_len:.1f})"
        if type(model).decode is not LanguageModel.decode:  # the family has its own incremental decoder
            model.init_state = types.MethodType(LanguageModel.init_state, model)
            model.decode = types.MethodType(LanguageModel.decode, model)
            model.keep_rows = types.MethodType(LanguageModel.keep_rows, model)
            try:
                full = median_time(lambda: generate(model, prepared.vocab, n, generator=gen), warmup=1, reps=1)
            finally:
                del model.init_state, model.decode, model.keep_rows
            detail += f"; recomputing the prefix: {n / full:,.0f} names/s"
        rows.append([f"sampling: {name}", f"{n} names, batched", f"{cached * 1e3:.0f} ms", detail])

    rows.extend(cli_rows(tmp, path, quick=args.quick))
    rows.extend(data_rows(tmp, path, prepared, quick=args.quick, step_time=lambda data: median_time(
        trainer_for("transformer", {}, data)._train_step, warmup=3, reps=3, inner=5)))
    shutil.rmtree(tmp, ignore_errors=True)
    print(table(rows, ["measurement", "configuration", "value", "detail"]))


def reference_script_times(path: str, data: Path, tmp: Path, steps: int) -> list[float]:
    """Seconds per step of Karpathy's makemore.py run unmodified at its defaults, from its own step log.

    It prints ``step N | loss L | step time T ms`` every 10 steps, timing batch fetch, forward, backward and the
    AdamW step (its evaluation and sampling fall outside that clock). The first 50 steps are warm-up."""
    out = tmp / "reference-run"
    shutil.rmtree(out, ignore_errors=True)
    proc = subprocess.run([sys.executable, str(Path(path).resolve()), "-i", str(data), "-o", str(out),
                           "--max-steps", str(steps)], capture_output=True, text=True, check=True, cwd=tmp)
    logged = re.findall(r"^step (\d+) \| loss \S+ \| step time ([\d.]+)ms", proc.stdout, re.M)
    if not logged:
        sys.exit(f"{path}: printed no step times; is it Karpathy's makemore.py?")
    return [float(ms) / 1e3 for step, ms in logged if int(step) >= 50]


def _timed_runs(cmd: list[str], reps: int, cwd=None) -> float:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, cwd=cwd)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def cli_rows(tmp: Path, path: Path, quick: bool) -> list[list[str]]:
    exe = shutil.which("makemore")
    cli = [exe] if exe else [sys.executable, "-m", "makemore"]
    reps = 3 if quick else 5
    rows = []
    help_s = _timed_runs([*cli, "--help"], reps)
    probe = subprocess.run([sys.executable, "-c", "import sys, makemore.cli; print('torch' in sys.modules)"],
                           capture_output=True, text=True, check=True).stdout.strip()
    rows.append(["start-up: makemore --help", " ".join(Path(c).name for c in cli), f"{help_s * 1e3:.0f} ms",
                 "torch imported" if probe == "True" else "torch not imported"])
    torch_s = _timed_runs([sys.executable, "-c", "import torch"], reps)
    run_dir = tmp / "cli-run"
    subprocess.run([*cli, "train", str(path), "-o", str(run_dir), "--max-steps", "20", "--eval-interval", "20",
                    "--quiet", "--device", "cpu"], check=True, capture_output=True)
    sample_s = _timed_runs([*cli, "sample", str(run_dir), "-n", "10"], reps)
    rows.append(["start-up: makemore sample -n 10", "default transformer", f"{sample_s * 1e3:.0f} ms",
                 f"import torch alone {torch_s * 1e3:.0f} ms; the rest {max(0.0, sample_s - torch_s) * 1e3:.0f} ms"])
    return rows


def synthetic_words(n: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    return "".join("".join(rng.choices(letters, k=rng.randint(3, 12))) + "\n" for _ in range(n))


def data_rows(tmp: Path, path: Path, prepared_small, quick: bool, step_time) -> list[list[str]]:
    """Preparation time of the benchmark list and of a synthetic 1M-line list, and the Transformer's step on a
    small and on the large synthetic list (same word lengths), which should not differ: batches are drawn by
    indexing, whatever the size of the list."""
    from makemore.training import prepare_data

    rows = []
    lines = 100_000 if quick else 1_000_000
    small, big = tmp / "synthetic-small.txt", tmp / "synthetic.txt"
    small.write_text(synthetic_words(30_000, seed=1))
    big.write_text(synthetic_words(lines))
    for label, file in ((f"{prepared_small.words.lines:,} lines ({path.name})", path),
                        ("30,000 synthetic lines", small), (f"{lines:,} synthetic lines", big)):
        t0 = time.perf_counter()
        prepared = prepare_data(str(file), seed=42)
        splits = prepared.encoded()
        seconds = time.perf_counter() - t0
        detail = f"{len(prepared.words.words):,} words, read + split + encode"
        if file is not path:
            detail += f"; default transformer step on it {step_time(splits) * 1e3:.1f} ms"
        rows.append(["data preparation", label, f"{seconds:.2f} s", detail])
    return rows


if __name__ == "__main__":
    os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")
    main()
