"""DistributedDataParallel under torchrun (gloo, two CPU processes) against a one-process run.

Every rank draws the same global batch indices and trains on its own slice, with each slice's loss weighted by
its share of the global batch's target tokens, so a two-rank run computes the same gradient as one process on
the same global batch. The two differ only in floating-point summation order: one matmul over the whole batch
versus two half-batch gradients summed by the all-reduce. float32 rounding (~1e-7 relative) then compounds over
the steps (Adam divides by small second moments), so we allow 1e-3 on the logged losses; a rank drawing other
batches, or a mis-weighted slice, moves the curve by 1e-2 or more within a few steps.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

TOLERANCE = 1e-3
# a tiny model and an uneven global batch (9 words over 2 ranks: 5 + 4), so the token weighting is exercised
TINY = ["--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--batch-size", "9", "--lr", "1e-2",
        "--warmup-steps", "400", "--eval-interval", "100", "--quiet",
        # the same arithmetic in the torchrun processes (which time it) as in this one (where conftest.py pins it)
        "--dtype", "float32", "--matmul-precision", "highest"]


def _words(names_path: Path, tmp_path: Path) -> Path:
    path = tmp_path / "words.txt"
    path.write_text("".join(names_path.read_text().splitlines(keepends=True)[:3000]))
    return path


def _torchrun(args: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MAKEMORE_DIST_TIMEOUT": "60"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def _curve(run_dir: Path) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    events = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    steps = [(e["step"], e["loss"]) for e in events if e["event"] == "step"]
    evals = [(e["step"], e["val_loss"]) for e in events if e["event"] == "eval"]
    return steps, evals


def test_ddp_matches_one_process_and_resumes(names_path: Path, tmp_path: Path, monkeypatch):
    from typer.testing import CliRunner

    from makemore import trainer
    from makemore.cli import app

    words = _words(names_path, tmp_path)
    work = tmp_path / "ddp"
    work.mkdir()
    # two ranks: 120 steps, then --resume to 200 (the warm-up spans both, so the schedule does not depend on
    # max_steps and the resumed run must continue exactly)
    first = _torchrun(["-m", "makemore", "train", str(words), "-o", "out", "--max-steps", "120", *TINY], work)
    assert first.returncode == 0, first.stdout + first.stderr
    again = _torchrun(["-m", "makemore", "train", "--resume", "out", "--max-steps", "200", "--quiet"], work)
    assert again.returncode == 0, again.stdout + again.stderr
    assert sorted(p.name for p in work.iterdir()) == ["out"]  # rank 1 wrote nothing (no runs/ either)

    single = tmp_path / "single"
    result = CliRunner().invoke(app, ["train", str(words), "-o", str(single), "--max-steps", "200", *TINY,
                                      "--device", "cpu"])
    assert result.exit_code == 0, result.output

    ddp_steps, ddp_evals = _curve(work / "out")
    one_steps, one_evals = _curve(single)
    assert [s for s, _ in ddp_steps] == [s for s, _ in one_steps] == list(range(10, 201, 10))
    assert [s for s, _ in ddp_evals] == [0, 100, 120, 200]  # the first run ended with an evaluation at 120
    ddp_evals = [e for e in ddp_evals if e[0] != 120]
    assert [s for s, _ in one_evals] == [0, 100, 200]
    for (step, a), (_, b) in zip(ddp_steps + ddp_evals, one_steps + one_evals):
        assert abs(a - b) < TOLERANCE, f"step {step}: two ranks {a:.6f}, one process {b:.6f}"
    assert one_steps[-1][1] < one_steps[0][1] - 0.3  # it learned something
    # how many processes trained it is recorded (nothing said it: a rate or a time could not be read)
    assert "batch 9 over 2 processes" in CliRunner().invoke(app, ["info", str(work / "out")]).stdout
    assert "processes" not in CliRunner().invoke(app, ["info", str(single)]).stdout
    compared = json.loads(CliRunner().invoke(app, ["compare", str(work / "out"), str(single), "--json"]).stdout)
    assert compared["values"]["train.processes"] == [2, 1] and "train.processes" in compared["differ"]

    # one process stopped between two records (at step 105), continued by two: the first record after the resume
    # averages the steps before the stop in, as one process does (before, two averaged only those after it)
    original = trainer.Trainer._train_step

    def stopping(self):
        if self.step == 104 and not self.interrupted:
            self.interrupted = True
            self.request_stop()
        return original(self)

    monkeypatch.setattr(trainer.Trainer, "_train_step", stopping)
    stopped = CliRunner().invoke(app, ["train", str(words), "-o", str(work / "stopped"), "--max-steps", "200", *TINY,
                                       "--device", "cpu"])
    monkeypatch.undo()
    assert stopped.exit_code == 130, stopped.output
    resumed = _torchrun(["-m", "makemore", "train", "--resume", "stopped", "--quiet"], work)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    both_steps, _ = _curve(work / "stopped")
    assert [s for s, _ in both_steps] == [s for s, _ in one_steps]
    for (step, a), (_, b) in zip(both_steps, one_steps):
        assert abs(a - b) < TOLERANCE, f"step {step}: resumed by two ranks {a:.6f}, one process {b:.6f}"


FAILING_RANK = """
import sys
from makemore import trainer

original = trainer.Trainer._train_step

def failing(self):
    if self.dist.rank == 1 and self.step == 30:
        raise RuntimeError("simulated failure on rank 1")
    return original(self)

trainer.Trainer._train_step = failing
from makemore.cli import main
sys.argv = ["makemore", *sys.argv[1:]]
main()
"""


def test_a_failing_rank_stops_the_job(names_path: Path, tmp_path: Path):
    words = _words(names_path, tmp_path)
    script = tmp_path / "failing.py"
    script.write_text(FAILING_RANK)
    run = _torchrun([str(script), "train", str(words), "-o", "out", "--max-steps", "100000", *TINY], tmp_path,
                    timeout=90)  # a hang would raise TimeoutExpired here
    assert run.returncode != 0
    assert "simulated failure on rank 1" in run.stdout + run.stderr


# --- text mode: one character stream, and the same text on tokens ----------------------------------------

TEXT = ("First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n"
        "First Citizen:\nYou are all resolved rather to die than to famish?\n\nAll:\nResolved. resolved.\n\n") * 30
# 9 windows over 2 ranks (5 + 4); evaluations at 0, 10 and 20 score the whole val part on rank 0
TEXT_TINY = ["--mode", "text", "--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "16",
             "--batch-size", "9", "--lr", "1e-2", "--warmup-steps", "5", "--max-steps", "20",
             "--eval-interval", "10", "--quiet"]


@pytest.mark.parametrize("tokens", [False, True], ids=["characters", "tokens"])
def test_text_under_ddp_matches_one_process(tmp_path: Path, tokens: bool):
    """Text mode under torchrun: every rank draws the same windows (the same seeded generator) and trains on
    its slice; rank 0 evaluates. The curve, the val loss and (tokens) the bits per character equal one
    process's on the same global batch."""
    from typer.testing import CliRunner

    from makemore.cli import app

    (tmp_path / "play.txt").write_text(TEXT)
    args = ["train", "play.txt", *TEXT_TINY]
    if tokens:
        from makemore.tokenizer import Tokenizer

        Tokenizer.train([TEXT], vocab_size=280).save(tmp_path / "tok.json")
        args += ["--tokenizer", "tok.json"]
    ddp = _torchrun(["-m", "makemore", *args, "-o", "ddp"], tmp_path)
    assert ddp.returncode == 0, ddp.stdout + ddp.stderr
    here = os.getcwd()
    os.chdir(tmp_path)
    try:
        result = CliRunner().invoke(app, [*args, "-o", "one", "--device", "cpu"])
    finally:
        os.chdir(here)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["ddp", "one"]  # rank 1 wrote nothing

    def events(run: str) -> list[dict]:
        return [json.loads(line) for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]

    two, one = events("ddp"), events("one")
    for kind, field in (("step", "loss"), ("eval", "val_loss"), ("eval", "train_loss")):
        a = [(e["step"], e[field]) for e in two if e["event"] == kind]
        b = [(e["step"], e[field]) for e in one if e["event"] == kind]
        assert [s for s, _ in a] == [s for s, _ in b] and len(a) >= 2, (kind, a, b)
        for (step, x), (_, y) in zip(a, b):
            assert abs(x - y) < TOLERANCE, f"{kind} {field} at step {step}: two ranks {x:.6f}, one process {y:.6f}"
    # bits per character: the val loss times the same factor in both (1 / ln 2 for characters; tokens / characters
    # / ln 2 of the val split for tokens), so the whole val split was scored on rank 0 as in one process
    factors = [(e.get("val_bpc") or math.nan) / e["val_loss"] for run in (two, one) for e in run
               if e["event"] == "eval"]
    assert factors and all(math.isclose(f, factors[0], rel_tol=1e-9) for f in factors), factors
    if not tokens:
        assert math.isclose(factors[0], 1 / math.log(2), rel_tol=1e-9)
    steps = [e["loss"] for e in one if e["event"] == "step"]
    assert steps[-1] < steps[0]  # it learned something
    # the tokens a step: the ranks' shares summed (a batch of 9 is 5 and 4 rows; rank 0's times two overstated it)
    per_step = {name: {round(e["tokens_per_s"] / e["steps_per_s"], 6) for e in run if e["event"] == "step"}
                for name, run in (("ddp", two), ("one", one))}
    assert per_step["ddp"] == per_step["one"] and len(per_step["one"]) == 1, per_step
    if tokens:  # token data is checked with torch, after joining: still said once, by rank 0 (before, by each)
        (tmp_path / "empty.txt").write_text("")
        refused = _torchrun(["-m", "makemore", "train", "empty.txt", "--tokenizer", "tok.json", "-o", "none"],
                            tmp_path)
        output = refused.stdout + refused.stderr
        assert refused.returncode != 0 and output.count("empty.txt: empty file") == 1, output
        assert not (tmp_path / "none").exists()


# --- what only rank 0 does, and what any rank may ask ------------------------------------------------------

def test_a_counted_model_under_ddp_is_written_by_rank_0_alone(names_path: Path, tmp_path: Path):
    """An n-gram is counted, not trained: every rank used to evaluate and save it, rank 1 into runs/ itself
    (model.safetensors, last.safetensors beside the run directories), and the two writers sometimes collided."""
    words = _words(names_path, tmp_path)
    run = _torchrun(["-m", "makemore", "train", str(words), "--type", "ngram", "--quiet"], tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["words-ngram"]
    assert (tmp_path / "runs" / "words-ngram" / "model.safetensors").is_file()


STOPPED_RANK = """
import sys
from makemore import trainer

original = trainer.Trainer._train_step

def stopping(self):
    if self.dist.rank == 1 and self.step == 30 and not self.interrupted:
        self.interrupted = True  # what Ctrl-C does to a process (makemore.training.drive), here to rank 1 alone
        self.request_stop()
    return original(self)

trainer.Trainer._train_step = stopping
from makemore.cli import main
sys.argv = ["makemore", *sys.argv[1:]]
main()
"""


def test_a_stop_asked_of_one_rank_stops_every_rank_and_the_run_continues_exactly(names_path: Path, tmp_path: Path):
    """Ctrl-C may reach one process of the job alone: before, rank 1 kept training to the end, then left before
    rank 0's last save and the job failed with 'lost the other processes'. Now all stop at the next exchange,
    rank 0 saves, and the run continues as the same run never stopped, with dropout too: each rank draws its own
    share's masks, and gets its own generator back (before, every rank took rank 0's)."""
    words = _words(names_path, tmp_path)
    script = tmp_path / "stopping.py"
    script.write_text(STOPPED_RANK)
    dropout = ["--dropout", "0.2"]
    run = _torchrun([str(script), "train", str(words), "-o", "out", "--max-steps", "60", *TINY, *dropout], tmp_path)
    output = run.stdout + run.stderr
    assert "lost the other processes" not in output, output
    assert output.count("interrupted") == 1, output  # said once, by rank 0 (each rank said it)
    events = [json.loads(line) for line in (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()]
    finished = [e for e in events if e["event"] == "finished"]
    assert finished and finished[-1]["reason"] == "stopped" and finished[-1]["step"] == 40, output
    assert (tmp_path / "out" / "last.safetensors").is_file()
    again = _torchrun(["-m", "makemore", "train", "--resume", "out", "--quiet"], tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    whole = _torchrun(["-m", "makemore", "train", str(words), "-o", "whole", "--max-steps", "60", *TINY, *dropout],
                      tmp_path)
    assert whole.returncode == 0, whole.stdout + whole.stderr
    assert _curve(tmp_path / "out") == _curve(tmp_path / "whole")


# one rank's process, given [[arguments, environment changes], ...]: each command's exit code, its error output and
# whether torch was imported by then, one JSON line each (one process for all: each would pay for its start-up)
ONE_RANK = r"""
import json, os, sys
from typer.testing import CliRunner
from makemore.cli import app
for args, env in json.loads(sys.argv[1]):
    os.environ.update(env)
    r = CliRunner().invoke(app, args)
    print(json.dumps({"code": r.exit_code, "stderr": r.stderr, "torch": "torch" in sys.modules}))
"""


@pytest.mark.parametrize("rank, local", [(0, 0), (1, 1), (2, 0)])
def test_a_refusal_under_torchrun_comes_before_torch_and_once_a_machine(names_path: Path, tmp_path: Path,
                                                                         rank: int, local: int):
    """One rank of a four-process job on two machines, with torchrun's environment: every rank refuses a bad
    option, before torch and before joining the others (which waited for a peer there); rank 0 prints it, and the
    first rank of another machine (whose files may differ), with its rank. A batch too small for the processes
    is refused before the run directory exists, and so is a word list's bad byte (read by every rank)."""
    words = _words(names_path, tmp_path)
    (tmp_path / "latin1.txt").write_bytes(b"emma\nol\xe9\nava\n")
    env = {**os.environ, "RANK": str(rank), "WORLD_SIZE": "4", "LOCAL_RANK": str(local), "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": "1"}  # nothing listens there: joining would fail, not refuse
    cases = [(["train", str(words), "-o", "out", "--max-steps", "-5"], "--max-steps must be at least 1"),
             (["train", str(words), "-o", "out", "-b", "3"], "--batch-size 3 is smaller than the 4 processes"),
             (["train", "--resume", "nowhere"], "nowhere"),
             (["train", "latin1.txt", "-o", "out"], "latin1.txt: not UTF-8 (byte 0xe9 on line 2)")]
    values = ("abc", "nan", "inf", "1e30", "-5")
    commands = [[args, {}] for args, _ in cases] + \
               [[["train", str(words), "-o", "out"], {"MAKEMORE_DIST_TIMEOUT": value}] for value in values]
    done = subprocess.run([sys.executable, "-c", ONE_RANK, json.dumps(commands)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    reports = [json.loads(line) for line in done.stdout.strip().splitlines()[-len(commands):]]
    assert len(reports) == len(commands), done.stdout + done.stderr
    for (args, message), report in zip(cases, reports):
        extra = args[1:]
        assert report["code"] == 2 and report["torch"] is False, (extra, report)
        if local == 0:
            prefix = "error: " if rank == 0 else f"error: rank {rank}: "
            assert report["stderr"].count("\n") == 1 and report["stderr"].startswith(prefix), (extra, report)
            assert message in report["stderr"], (extra, report)
        else:
            assert report["stderr"] == "", (extra, report)
    assert not (tmp_path / "out").exists()
    for value, report in zip(values, reports[len(cases):]):
        assert report["code"] == 2 and report["torch"] is False, (value, report)
        assert report["stderr"] == f"error: MAKEMORE_DIST_TIMEOUT={value!r} in the environment: expected seconds " \
                                   f"between 1 and 604,800 (a week)\n", report
