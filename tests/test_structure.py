"""The run directory's one owner, the one driver, the Python API, resume as people type it, and refusals that
cost no torch import."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from makemore import rundir
from makemore.cli import app
from makemore.errors import MakemoreError

runner = CliRunner()
TINY = ["--type", "transformer", "--n-layer", "1", "--n-head", "2", "--n-embd", "16"]


@pytest.mark.parametrize("argv, message", [
    (["train", "names", "--type", "mlp", "--n-layer", "3"], "--n-layer does not apply to --type mlp"),
    (["train", "names", "--type", "nosuch"], "unknown model type"),
    (["train", "names", "--max-steps", "0"], "--max-steps must be at least 1"),
    (["train", "names", "--device", "tpu"], "unknown device"),
    (["train", "names", "--dtype", "int8"], "--dtype must be"),
    (["train", "names", "--ema", "1.5"], "--ema must be"),
])
def test_a_refused_option_does_not_import_torch(argv, message):
    code = ("import sys; from makemore.cli import app\n"
            f"sys.argv = ['makemore', *{argv!r}]\n"
            "try:\n    app()\nexcept SystemExit as e:\n    code = e.code\n"
            "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH', code)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert message in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr  # one line
    assert result.stdout.split() == ["NO-TORCH", "2"], result.stdout + result.stderr


def test_run_config_round_trips_and_a_bad_field_is_named(tmp_path, small_words):
    from makemore.api import train

    run = train(small_words, type="bigram", max_steps=5, out=tmp_path / "r", progress=False)
    path = run.run_dir / rundir.CONFIG
    config = rundir.RunConfig.load(path)
    again = tmp_path / "again.json"
    config.save(again)
    assert json.loads(again.read_text()) == json.loads(path.read_text())
    assert config.model.type == "bigram" and config.train.max_steps == 5
    for field, value, named in [(("train", "batch_size"), "64", "train.batch_size"),
                                (("model", "block_size"), 10 ** 9, "block_size"),
                                (("train", "nonsense"), 1, "train.nonsense"),
                                (("model", "hyper"), {"n_layer": 2}, "n_layer")]:
        obj = json.loads(path.read_text())
        obj[field[0]][field[1]] = value
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps(obj))
        with pytest.raises(MakemoreError) as e:
            rundir.RunConfig.load(bad)
        assert str(bad) in str(e.value) and named in str(e.value)


def test_latest_run_is_the_most_recently_changed(tmp_path, small_words, monkeypatch):
    import os

    from makemore.api import train

    monkeypatch.chdir(tmp_path)
    a = train(small_words, type="bigram", max_steps=3, progress=False).run_dir
    b = train(small_words, type="bigram", max_steps=3, progress=False).run_dir
    assert a != b and rundir.latest_run().path == b
    later = rundir.RunDir(b).last_change() + 10
    os.utime(a / rundir.METRICS, (later, later))  # a run that logged more recently is the latest
    assert rundir.latest_run().path == a
    assert [r.path for r in rundir.list_runs()] == [a, b]


def test_python_api_example_runs_as_written(tmp_path, small_words, monkeypatch):
    """The README's example, on a small list and a short budget."""
    import makemore

    monkeypatch.chdir(tmp_path)
    run = makemore.train(str(small_words), type="transformer", max_steps=40, n_layer=1, n_head=2, n_embd=16,
                         out="runs/x", progress=False)
    assert run.step == 40 and run.reason == "max_steps" and run.test_loss is not None
    model = makemore.load("runs/x")
    words = model.sample(10, temperature=0.8, prefix="ma")
    assert len(words) == 10 and all(isinstance(w, str) and w.startswith("ma") for w in words)
    tagged = model.sample(3, tags=True, logprobs=True, seed=1)
    assert all(len(t) == 3 and t[1] in ("new", "train", "test") and t[2] < 0 for t in tagged)
    scores = model.score(["emma", "mmmmmmm"])
    assert len(scores) == 2 and scores[0] < scores[1]  # a training name is more typical than a jumble
    other = tmp_path / "other.txt"
    other.write_text("emma\nava\nzoë\n" + "a" * 80 + "\n", encoding="utf-8")
    with pytest.raises(makemore.MakemoreError, match="--skip-unknown"):
        model.evaluate(other)
    result = model.evaluate(other, skip_unknown=True)
    assert result["words"] == 2 and result["skipped"]["too_long"] == 1 and result["skipped"]["unknown_characters"] == 1
    assert result["bpc"] == pytest.approx(result["loss"] / 0.6931471805599453)
    # the same numbers as the command line's (one code path)
    cli = json.loads(runner.invoke(app, ["eval", "runs/x", str(other), "--json", "--skip-unknown"]).stdout)
    assert cli["loss"] == pytest.approx(result["loss"])
    with pytest.raises(makemore.MakemoreError):
        makemore.train(str(small_words), type="mlp", n_layer=2)


def test_repeating_the_command_with_resume_continues_the_run(tmp_path, small_words, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["train", str(small_words), *TINY, "--max-steps", "20", "--lr", "0.003", "-o", "runs/x", "-q"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    # the same command, a longer budget, and --resume: accepted
    again = runner.invoke(app, [*args[:-5], "--max-steps", "30", "--lr", "0.003", "-o", "runs/x", "-q",
                                "--resume", "runs/x"])
    assert again.exit_code == 0, again.output
    assert rundir.RunDir("runs/x").summary()["steps"] == 30
    # a different value is refused, naming the option and both values
    changed = runner.invoke(app, ["train", "--resume", "runs/x", "--lr", "0.01", "--max-steps", "40"])
    assert changed.exit_code == 2
    assert "--learning-rate 0.01 differs from the run's 0.003" in changed.output
    other = tmp_path / "other.txt"
    other.write_text("bob\nann\n")
    wrong_data = runner.invoke(app, ["train", str(other), "--resume", "runs/x", "--max-steps", "40"])
    assert wrong_data.exit_code == 2 and "not the data this run was trained on" in wrong_data.output
    wrong_type = runner.invoke(app, ["train", "--resume", "runs/x", "--type", "mlp", "--max-steps", "40"])
    assert wrong_type.exit_code == 2 and "--type mlp differs from the run's transformer" in wrong_type.output
    flag = runner.invoke(app, ["train", "--resume", "runs/x", "--tie-weights", "--max-steps", "40"])  # not "True"
    assert flag.exit_code == 2 and "--tie-weights: the run was made without --tie-weights" in flag.stderr, flag.output


def test_one_driver_feeds_every_sink_and_closes_them(tmp_path, small_words):
    from makemore.events import Finished, Started
    from makemore.training import Request, drive, new_trainer

    trainer, _ = new_trainer(Request(data=str(small_words), model_type="bigram", out=tmp_path / "r",
                                     train={"max_steps": 5, "eval_interval": 5}))
    seen_a, seen_b, closed = [], [], []

    class Closing:
        def __call__(self, event):
            seen_b.append(event)

        def close(self):
            closed.append(True)

    last = drive(trainer, [seen_a.append, Closing()])
    assert seen_a == seen_b and isinstance(seen_a[0], Started) and isinstance(last, Finished)
    assert closed == [True]


def test_tui_state_is_a_sink_like_any_other(tmp_path, small_words):
    pytest.importorskip("textual")
    from makemore.training import Request, drive, new_trainer
    from makemore.tui.state import RunState

    trainer, _ = new_trainer(Request(data=str(small_words), model_type="bigram", out=tmp_path / "r",
                                     train={"max_steps": 20, "eval_interval": 10, "log_interval": 5}))
    state = RunState()
    drive(trainer, [state])
    snap = state.snapshot()
    assert snap.finished is not None and snap.finished.step == 20
    assert [e.step for e in snap.evals] == [0, 10, 20]
    # and replaying metrics.jsonl through the run directory gives the same picture
    replayed = RunState()
    written, _ = new_trainer(Request(data=str(small_words), model_type="bigram", out=tmp_path / "s",
                                     train={"max_steps": 20, "eval_interval": 10, "log_interval": 5}))
    from makemore.sinks import JsonlSink

    drive(written, [JsonlSink(written.run_dir)])
    for event in rundir.RunDir(written.run_dir).events():
        replayed(event)
    assert [e.val_loss for e in replayed.snapshot().evals] == pytest.approx([e.val_loss for e in snap.evals])


def test_nothing_reads_run_files_outside_rundir():
    """One owner: the run directory's file names appear in makemore.rundir alone (docs aside)."""
    root = Path(__file__).resolve().parents[1]
    offenders = []
    for path in [*(root / "makemore").rglob("*.py"), *(root / "tui").rglob("*.py")]:
        if path.name == "rundir.py":
            continue
        text = path.read_text(encoding="utf-8")
        code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith(("#", '"', "'")))
        for name in ('"config.json"', '"split.json"', '"model.safetensors"', '"last.safetensors"',
                     '"last.state.safetensors"', '"metrics.jsonl"'):
            if name in code:
                offenders.append(f"{path.relative_to(root)}: {name}")
    assert not offenders, offenders
