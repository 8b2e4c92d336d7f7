"""Sampling speed: names/s of the default Transformer for 10, 100, 1,000 and 10,000 names, the current sampler
against the previous one (kept here as a reference), and `makemore sample -n 10` end to end against
`python -c "import torch"`.

    python benchmarks/sampling.py [--run RUN] [--data names.txt] [--rounds 5] [--train-steps 300] [--threads N]
                                  [--cpu-time]

Without ``--run`` the default recipe trains ``--train-steps`` steps into a temporary directory first (the
architecture is the default one whatever the number of steps; the words, and so the speed, come close to a
fully trained model's after a few hundred steps). Both samplers run alternately in every round, so that a
machine whose speed drifts affects both alike; the table gives the median and the range over rounds and the
ratio round by round. The goals (issue 17): >= 20,000 names/s at 1,000 names, and `sample -n 10` within 0.3 s
of `import torch`.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import compile_package, cpu_name, names_path, table  # noqa: E402


def reference_generate(model, vocab, n, generator, batch_size=1024):
    """The sampler as it was before: every finished word leaves the batch at once (``keep_rows`` at each step
    where one stopped, so the KV caches are copied at almost every step). Plain sampling only (temperature 1,
    no filtering, no prefix, lengths up to the model's window), which is all this benchmark asks of it."""
    import torch

    block = model.config.block_size
    limit = block - 1
    out = []
    with torch.inference_mode():
        while len(out) < n:
            B = min(batch_size, n - len(out))
            state = model.init_state(B, "cpu")
            idx = torch.zeros(B, 1, dtype=torch.long)
            tokens = torch.zeros(B, limit, dtype=torch.long)
            logprob = torch.zeros(B, dtype=torch.float64)
            alive = torch.arange(B)
            length = 0
            while True:
                logits, state = model.decode(idx, state)
                logits = logits.float().cpu()
                logp = logits.log_softmax(-1)
                if length < 1:
                    logits[:, 0] = float("-inf")
                if length >= limit:
                    nxt = torch.zeros(len(alive), dtype=torch.long)
                else:
                    nxt = torch.multinomial(logits.softmax(-1), 1, generator=generator).squeeze(1)
                logprob[alive] += logp.gather(1, nxt[:, None]).squeeze(1).double()
                if length >= limit:
                    break
                tokens[alive, length] = nxt
                keep = (nxt != 0).nonzero().squeeze(1)
                if len(keep) == 0:
                    break
                if len(keep) < len(alive):
                    alive, nxt = alive[keep], nxt[keep]
                    state = model.keep_rows(state, keep)
                length += 1
                idx = nxt[:, None]
            for row, lp in zip(tokens.tolist(), logprob.tolist()):
                out.append((vocab.decode(row[: row.index(0)] if 0 in row else row), lp))
    return out


def wall(cmd: list[str]) -> tuple[float, float]:
    """The command's wall time and its CPU time (user + system, its threads together): the CPU time hardly moves
    when other programs share the machine, so its difference between two commands is the steadier figure."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    elapsed = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", help="a run directory of a Transformer (default: train one briefly)")
    ap.add_argument("--data", help="word list for that training (default: ../shared/data/names.txt)")
    ap.add_argument("--train-steps", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--sizes", default="10,100,1000,10000")
    ap.add_argument("--cli-runs", type=int, default=7, help="subprocess runs of each command (median)")
    ap.add_argument("--threads", type=int, help="torch's CPU threads for the in-process figures (default: torch's)")
    ap.add_argument("--cpu-time", action="store_true", help="time the in-process figures by this process's CPU "
                    "time (all its threads) instead of the wall clock: names per CPU second, steadier on a shared "
                    "machine (with --threads 1, the back-to-back ratios of a busy machine)")
    args = ap.parse_args()
    compile_package()

    exe = shutil.which("makemore")
    cli = [exe] if exe else [sys.executable, "-m", "makemore"]
    tmp = None
    run = args.run
    if run is None:
        tmp = Path(tempfile.mkdtemp(prefix="makemore-sampling-"))
        run = str(tmp / "run")
        print(f"training the default recipe for {args.train_steps} steps into {run} ...", file=sys.stderr)
        subprocess.run([*cli, "train", str(names_path(args.data)), "-o", run, "--max-steps", str(args.train_steps),
                        "--quiet", "--device", "cpu"], check=True, capture_output=True)
    try:
        import torch

        if args.threads:
            torch.set_num_threads(args.threads)
        from makemore.rundir import resolve_run
        from makemore.sample import generate

        loaded = resolve_run(run).load_model()
        if loaded.model_type != "transformer":
            sys.exit(f"{run}: a {loaded.model_type} run; this benchmark measures the Transformer")
        model, vocab = loaded.model, loaded.vocab
        sizes = [int(s) for s in args.sizes.split(",")]
        generator = torch.Generator().manual_seed(0)
        generate(model, vocab, 100, generator=generator)  # warm-up of both paths
        reference_generate(model, vocab, 100, generator)
        rows = []
        clock = time.process_time if args.cpu_time else time.perf_counter
        for n in sizes:
            new, old = [], []
            for _ in range(args.rounds):
                t0 = clock()
                words = generate(model, vocab, n, generator=generator)
                new.append(clock() - t0)
                t0 = clock()
                reference_generate(model, vocab, n, generator)
                old.append(clock() - t0)
            mean_len = statistics.fmean(len(g.word) for g in words)
            ratios = sorted(o / w for o, w in zip(old, new))
            rate = lambda ts: f"{n / statistics.median(ts):,.0f}"  # noqa: E731
            spread = lambda ts: f"{n / max(ts):,.0f}-{n / min(ts):,.0f}"  # noqa: E731
            rows.append([f"{n:,}", rate(new), spread(new), rate(old), spread(old),
                         f"{statistics.median(ratios):.2f}x", f"{ratios[0]:.2f}-{ratios[-1]:.2f}x",
                         f"{mean_len:.1f}"])
        print(f"CPU: {cpu_name()}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
              f"{'per CPU second' if args.cpu_time else 'per second of wall time'}, "
              f"{date()}; run {run} ({loaded.model.num_params():,} parameters, block {model.config.block_size})")
        print(table(rows, ["names", "names/s now", "range", "names/s before", "range", "ratio", "range",
                           "mean length"]))
        print("goal: >= 20,000 names/s at 1,000 names")

        torch_s, sample_s = [], []
        for _ in range(args.cli_runs):  # alternated, for the same reason as above
            torch_s.append(wall([sys.executable, "-c", "import torch"]))
            sample_s.append(wall([*cli, "sample", run, "-n", "10"]))
        rows = []
        for label, runs in (("python -c 'import torch'", torch_s), ("makemore sample RUN -n 10", sample_s),
                            ("  the difference, run by run", [(s[0] - t[0], s[1] - t[1])
                                                              for s, t in zip(sample_s, torch_s)])):
            walls, cpus = sorted(r[0] for r in runs), sorted(r[1] for r in runs)
            rows.append([label, f"{statistics.median(walls):.2f} s", f"{walls[0]:.2f}-{walls[-1]:.2f} s",
                         f"{statistics.median(cpus):.2f} s", f"{cpus[0]:.2f}-{cpus[-1]:.2f} s"])
        print()
        print(table(rows, ["command", "median wall", "range", "median CPU", "range"]))
        print("goal: the difference <= 0.30 s")
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def date() -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime())


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
