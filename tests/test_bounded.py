"""Everything read is bounded: regular files only (a FIFO never blocks a command, a device never fills memory), a
size limit enforced by the read itself, JSON nested too deep refused, and fields of the wrong type in a run's files
refused or shown as unknown, never a traceback. A damaged run's settings are refused before a model is built from
them."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from makemore import rundir
from makemore.cli import app
from makemore.errors import MakemoreError

WORDS = ["emma", "olivia", "ava", "isabella", "sophia", "mia", "amelia", "harper", "evelyn", "abigail",
         "emily", "ella", "elizabeth", "camila", "luna", "sofia", "avery", "mila", "aria", "scarlett"]
DEEP = "[" * 100_000 + "]" * 100_000  # valid JSON that Python's parser cannot descend


def cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args], prog_name="makemore", env={"COLUMNS": "400"})


def refused(result, *fragments: str) -> str:
    output = result.stdout + result.stderr
    assert result.exit_code == 2, output
    assert "Traceback" not in output and not isinstance(result.exception, (RecursionError, TypeError, ValueError))
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def subprocess_cli(*args, cwd: Path) -> subprocess.CompletedProcess:
    """A real process with a deadline: a command that blocked on a FIFO would be killed, and the test fail."""
    return subprocess.run([sys.executable, "-m", "makemore", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=60, env={**os.environ, "COLUMNS": "200"})


@pytest.fixture
def run(run_copy) -> Path:
    """conftest's small finished run, copied for a test to damage."""
    return run_copy


def _replace(path: Path, how: str) -> None:
    path.unlink()
    if how == "fifo":
        os.mkfifo(path)
    elif how == "device":
        path.symlink_to("/dev/zero")
    else:
        path.mkdir()


# --- what is not a regular file ----------------------------------------------------------------------

@pytest.mark.skipif(not hasattr(os, "mkfifo") or not os.path.exists("/dev/zero"), reason="needs FIFOs and /dev/zero")
def test_a_fifo_or_a_device_as_the_data_is_refused_at_once(trained, tmp_path):
    fifo = tmp_path / "words.fifo"
    os.mkfifo(fifo)  # no writer: opening it to read would wait for ever
    for args in (["train", fifo, "--type", "bigram"], ["train", fifo, "--mode", "text", "--type", "bigram"],
                 ["eval", trained, fifo]):
        r = subprocess_cli(*args, cwd=tmp_path)
        assert r.returncode == 2 and len(r.stderr.splitlines()) == 1, r.stderr
        assert r.stderr.startswith(f"error: {fifo}: a FIFO (named pipe), not a regular file"), r.stderr
    for args in (["train", "/dev/zero", "--type", "bigram"], ["eval", trained, "/dev/zero"]):
        refused(cli(*args), "/dev/zero: a device, not a regular file")
    assert not (tmp_path / "runs").exists()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_inside_a_run_directory_never_blocks_a_command(run, tmp_path):
    _replace(run / rundir.METRICS, "fifo")
    for args in (["info", run], ["runs", run.parent], ["diagnose", run]):
        r = subprocess_cli(*args, cwd=tmp_path)
        assert "Traceback" not in r.stderr, r.stderr
        assert f"{run / rundir.METRICS}: a FIFO (named pipe), not a regular file" in r.stderr, (args, r.stderr)
        assert r.returncode == (0 if args[0] == "runs" else 2), (args, r.stderr)  # runs: listed as unreadable


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_named_as_the_run_is_refused_at_once(tmp_path):
    import makemore

    fifo = tmp_path / "run.fifo"
    os.mkfifo(fifo)  # no writer: opening it to read its first bytes would wait for ever
    for args in (["info", fifo], ["train", "--resume", fifo]):
        r = subprocess_cli(*args, cwd=tmp_path)
        assert r.returncode == 2 and r.stderr == f"error: {fifo}: not a directory (expected a run directory " \
            f"written by `makemore train`)\n", r.stderr
    with pytest.raises(MakemoreError, match="not a directory"):
        makemore.load(fifo)


@pytest.mark.parametrize("how", ["device", "directory"])
def test_a_run_file_that_is_not_a_regular_file_is_named(run, how):
    if how == "device" and not os.path.exists("/dev/zero"):
        pytest.skip("needs /dev/zero")
    _replace(run / rundir.METRICS, how)
    kind = "a device" if how == "device" else "is a directory"
    refused(cli("info", run), f"{run / rundir.METRICS}: {kind}")
    r = cli("runs", run.parent)
    assert r.exit_code == 0 and "unreadable" in r.output and f"{run / rundir.METRICS}: {kind}" in r.output
    config = (run / rundir.CONFIG).read_bytes()
    _replace(run / rundir.CONFIG, how)
    refused(cli("info", run), f"{run / rundir.CONFIG}: not a regular file")
    os.rmdir(run / rundir.CONFIG) if how == "directory" else (run / rundir.CONFIG).unlink()
    (run / rundir.CONFIG).write_bytes(config)
    _replace(run / rundir.BEST, how)
    refused(cli("eval", run), f"{run / rundir.BEST}: {kind}")


# --- sizes -------------------------------------------------------------------------------------------

def test_a_word_list_is_read_no_further_than_its_limit(tmp_path, monkeypatch):
    from makemore import data

    words = tmp_path / "words.txt"
    words.write_text("\n".join(WORDS) + "\n")
    monkeypatch.setattr(data, "MAX_WORDS_BYTES", 40)
    refused(cli("train", words, "--type", "bigram", "-o", tmp_path / "r"), f"{words}: larger than 40 bytes",
            "--mode text")
    assert not (tmp_path / "r").exists()
    monkeypatch.setattr(data, "MAX_WORDS_BYTES", words.stat().st_size)  # exactly the limit: read
    assert cli("train", words, "--type", "bigram", "--max-steps", "1", "-o", tmp_path / "r", "-q").exit_code == 0


def test_an_overlong_metrics_line_is_skipped_and_the_rest_read(run, monkeypatch):
    lines = (run / rundir.METRICS).read_bytes().splitlines(keepends=True)
    monkeypatch.setattr(rundir, "MAX_METRICS_LINE", max(len(x) for x in lines) + 10)
    long = b'{"event": "note", "x": "' + b"a" * (2 * rundir.MAX_METRICS_LINE) + b'"}\n'
    (run / rundir.METRICS).write_bytes(lines[0] + long + b"".join(lines[1:]))
    assert len(list(rundir.RunDir(run).metrics())) == len(lines)  # every line but the long one
    r = cli("info", run, "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["steps"] == 20


def test_a_metrics_file_larger_than_any_runs_record_is_refused_before_it_is_read(run):
    """Each line was bounded, the file not: `info` on a metrics.jsonl grown to 4 GB read it all (25 s)."""
    with open(run / rundir.METRICS, "r+b") as f:
        f.truncate(rundir.MAX_METRICS_BYTES + 1)  # sparse: no disk taken
    said = f"{run / rundir.METRICS}: {rundir.MAX_METRICS_BYTES + 1:,} bytes, more than the 8 GiB makemore reads"
    refused(cli("info", run), said)
    r = cli("runs", run.parent)
    assert r.exit_code == 0 and f"skipped {run}: {said}" in r.stderr, r.output


def test_a_checkpoint_is_checked_against_its_header_before_it_is_read(run):
    best = run / rundir.BEST
    data = best.read_bytes()
    with open(best, "ab") as f:  # padded to 10 GiB, sparse: refused from the header and the size alone
        f.truncate(10 << 30)
    refused(cli("eval", run), f"{best}: not a valid safetensors file ({10 << 30:,} bytes where its header "
                              f"declares {len(data):,}")


# --- JSON nested too deep ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", [rundir.CONFIG, rundir.SPLIT])
def test_json_nested_too_deep_is_one_line(run, name):
    (run / name).write_text(DEEP)
    refused(cli("eval", run), f"{run / name}", "nested too deeply")


def test_a_metrics_line_nested_too_deep_is_skipped(run):
    """Too deep for the parser; and deep enough to pass the parser and then not the look for escape sequences,
    which recursed into it with a traceback."""
    parsed = '{"event": "step", "step": 1, "loss": 1, "x": ' + "[" * 600 + '"\\u00e9"' + "]" * 600 + "}"
    with open(run / rundir.METRICS, "a") as f:
        f.write(DEEP + "\n" + parsed + "\n")
    import sys

    from makemore.tui.follow import MetricsTail

    before = sys.getrecursionlimit()
    # the same whatever depth the interpreter allows the parser (torch's compiler raises the limit, so in a
    # process that had compiled, the second line passed)
    for limit in (before, 20_000):
        sys.setrecursionlimit(limit)
        try:
            r = cli("info", run, "--json")
            assert r.exit_code == 0 and json.loads(r.stdout)["steps"] == 20, r.output
            assert json.loads(r.stdout)["damaged_lines"] == 2, (limit, r.stdout)
            tail = MetricsTail(run)
            assert tail.poll() and tail.bad_lines == 2
        finally:
            sys.setrecursionlimit(before)


def test_checkpoint_metadata_nested_too_deep_is_one_line(run):
    from safetensors.torch import load_file, save_file

    best = run / rundir.BEST
    save_file(load_file(best), best, metadata={"format": "makemore/1", "step": DEEP})
    refused(cli("eval", run), f"{best}", "nested too deeply")


# --- fields of the wrong type ------------------------------------------------------------------------

def _edit(path: Path, edit) -> None:
    obj = json.loads(path.read_text())
    edit(obj)
    path.write_text(json.dumps(obj))


def test_info_and_runs_show_a_field_of_the_wrong_type_as_unknown(run):
    _edit(run / rundir.CONFIG, lambda c: (c["model"].update(num_params=None), c["dataset"].update(words="many")))
    lines = (run / rundir.METRICS).read_text().splitlines()
    finished = json.loads(lines[-1])
    assert finished["event"] == "finished"
    for elapsed in ("x", float("inf")):
        (run / rundir.METRICS).write_text("\n".join(lines[:-1] + [json.dumps({**finished, "elapsed": elapsed})])
                                          + "\n")
        r = cli("info", run)
        assert r.exit_code == 0, r.output
        assert "? parameters" in r.output and "? words" in r.output and "finished (max_steps)\n" in r.output
        for sort in ("time", "test", "name"):
            r = cli("runs", run.parent, "--sort", sort)
            assert r.exit_code == 0 and "run " in r.output and "Traceback" not in r.output, r.output
    evaluated = next(json.loads(line) for line in lines if '"eval"' in line)  # a loss of -Infinity: not the best
    (run / rundir.METRICS).write_text("\n".join(lines + [json.dumps({**evaluated, "val_loss": -math.inf})]) + "\n")
    listed = cli("runs", run.parent, "--json").stdout  # (was -Infinity: no JSON)
    assert json.loads(listed, parse_constant=lambda c: pytest.fail(f"{c} in {listed}"))["runs"][0]["best_val_loss"] > 0
    assert "-inf" not in cli("runs", run.parent).output
    (run / rundir.METRICS).unlink()  # no record of any evaluation: said so, not "@ step None"
    r = cli("info", run)
    assert r.exit_code == 0 and "- (no evaluation recorded yet)" in r.output and "None" not in r.output, r.output


@pytest.mark.parametrize("vocab, reason", [(["a", "a"], "duplicate"), ([], "empty"), (["ab"], "")])
def test_info_refuses_a_vocabulary_every_other_command_refuses(run, vocab, reason):
    """info and runs showed `1 symbols: '' + start/stop` for a vocabulary that eval, score and sample refuse."""
    _edit(run / rundir.CONFIG, lambda c: c.update(vocab=vocab))
    said = refused(cli("info", run), f"{run / rundir.CONFIG}: ", reason)
    assert refused(cli("sample", run)) == said  # the same words
    r = cli("runs", run.parent)
    assert r.exit_code == 0 and f"skipped {run}: {said.removeprefix('error: ')}" in r.stderr, r.output


def test_metrics_lines_of_the_wrong_shape_are_counted_and_a_clock_past_reason_is_unknown(run):
    """An edited metrics.jsonl: lines whose step or loss is not a number were skipped without being counted (or
    read as progress), and a finished run's time of 1e308 s printed hundreds of digits in `info` and `runs`."""
    lines = (run / rundir.METRICS).read_text().splitlines()
    finished = json.loads(lines[-1])
    steps = rundir.RunDir(run).summary()["steps"]
    edits = [{"event": "eval", "step": "x"}, {"event": "eval", "step": steps + 100, "train_loss": "a",
                                              "val_loss": 0.5}, {"event": "step", "step": -1}, {"step": 3}]
    (run / rundir.METRICS).write_text("\n".join(lines[:-1] + [json.dumps(e) for e in edits]
                                                + [json.dumps({**finished, "elapsed": 1e308})]) + "\n")
    summary = rundir.RunDir(run).summary()
    assert summary["damaged_lines"] == len(edits) and summary["steps"] == steps  # not moved by an edit
    assert summary["elapsed"] is None and summary["finished"] == finished["reason"]
    shown = cli("info", run).output
    assert f"skipped {len(edits)} damaged lines" in shown and "0000000" not in shown, shown
    listed = cli("runs", run.parent).output
    assert "0000000" not in listed and max(map(len, listed.splitlines())) < 400, listed


def test_an_escape_sequence_in_a_run_file_never_reaches_the_terminal(run):
    """A run directory is not trusted: an escape sequence written into metrics.jsonl (a finished line's reason, a
    layer's name) was printed raw by info, compare and diagnose, setting the terminal's title or clearing it. A
    line holding a control character is now damaged, counted and skipped, by the commands and by the TUI; one in
    config.json is refused, naming the file."""
    from tui.follow import MetricsTail

    lines = (run / rundir.METRICS).read_text().splitlines()
    finished = json.loads(lines[-1])
    (run / rundir.METRICS).write_text("\n".join(
        lines[:-1] + [json.dumps({**finished, "reason": "max_steps\x1b]0;PWNED\x07\x1b[2J"})]) + "\n")
    shown = cli("info", run)
    assert shown.exit_code == 0 and "\x1b" not in shown.output and "skipped 1 damaged line" in shown.output
    tail = MetricsTail(run)
    assert len(tail.poll()) == len(lines) - 1 and tail.bad_lines == 1
    # a token run's started event lists its byte tokens, control characters among them: not damage
    started = json.dumps({"event": "started", "vocab": ["\x00", "\x1b", "a"], "dataset": "x"}).encode()
    assert not rundir.escapes_terminal(started, json.loads(started))
    assert rundir.escapes_terminal(started.replace(b'"x"', b'"\\u001b"'), {"dataset": "\x1b"})
    for control in ("\x9b", "\x7f"):  # C1's CSI and DEL, which JSON leaves unescaped (written raw, as UTF-8)
        raw = json.dumps({"event": "finished", "reason": f"x{control}2J"}, ensure_ascii=False).encode()
        assert b"\\u" not in raw and rundir.escapes_terminal(raw, json.loads(raw))
    _edit(run / rundir.CONFIG, lambda c: c["dataset"].update(name="names\x1b[2J"))
    refused(cli("info", run), f"{run / rundir.CONFIG}: holds control character U+001B")


def test_half_a_surrogate_pair_in_a_runs_json_is_refused_by_name(run):
    """\\ud800 alone is valid JSON and no text: a vocabulary or a split holding one crashed sample, info --json,
    eval and resume with a traceback (it cannot be encoded); a metrics line holding one is damage, skipped."""
    lines = (run / rundir.METRICS).read_text().splitlines()
    finished = json.loads(lines[-1])
    (run / rundir.METRICS).write_text("\n".join(lines[:-1] + [json.dumps({**finished, "reason": "x\ud800"})]) + "\n")
    shown = cli("info", run, "--json")
    assert shown.exit_code == 0 and json.loads(shown.stdout)["damaged_lines"] == 1
    split = json.loads((run / rundir.SPLIT).read_text())
    split["test"] = ["ab\ud800c"] + split["test"]
    (run / rundir.SPLIT).write_text(json.dumps(split))
    refused(cli("eval", run), f"{run / rundir.SPLIT}: holds half of a UTF-16 surrogate pair")
    from makemore.files import parse_json  # text already decoded (a checkpoint's metadata) may hold one as it is

    with pytest.raises(MakemoreError, match="half of a UTF-16 surrogate pair"):
        parse_json('{"step": "\ud800"}', "meta")
    _edit(run / rundir.CONFIG, lambda c: c["vocab"].__setitem__(-1, "\ud800"))
    for command in (("info", "--json"), ("sample", "-n", "3")):
        refused(cli(command[0], run, *command[1:]), f"{run / rundir.CONFIG}: holds half of a UTF-16 surrogate pair")


def test_a_split_word_of_a_character_the_model_lacks_is_refused_by_the_file(run):
    """eval said "character '€' is not in the model's vocabulary", naming no file."""
    split = json.loads((run / rundir.SPLIT).read_text())
    split["test"] = ["em€a"] + split["test"]
    (run / rundir.SPLIT).write_text(json.dumps(split))
    refused(cli("eval", run), f"{run / rundir.SPLIT}: test holds the character '€', which is not in config.json's")


def test_settings_no_run_could_have_are_refused_by_name(run):
    _edit(run / rundir.CONFIG, lambda c: c["train"].update(max_steps=0, max_time=None))
    refused(cli("info", run), f"{run / rundir.CONFIG}: train: --max-steps must be at least 1")


def test_a_diagnostics_event_with_bad_fields_is_skipped(tmp_path):
    from makemore.events import event_from_json

    step = {"event": "step", "step": 3, "loss": float("nan"), "lr": 1e-3, "steps_per_s": 1.0, "tokens_per_s": 1.0,
            "elapsed": 1.0}
    assert event_from_json(step) is not None  # a diverged run's NaN is a float
    for bad in ({"step": "3"}, {"loss": "low"}, {"step": True}, {"grad_norm": [1.0]}):
        assert event_from_json({**step, **bad}) is None, bad
    diag = {"event": "diagnostics", "step": 1, "lr": 0.1, "grad_norm": None, "layers": [], "weights": [],
            "embedding": [[0.0, 1.0], [1.0, 0.0]]}
    assert event_from_json(diag) is not None
    assert event_from_json({**diag, "embedding": [[1.0]]}) is None
    assert event_from_json({**diag, "step": "x"}) is None
    assert event_from_json({**diag, "layers": [{"name": 3}]}) is None


def test_a_resume_with_impossible_optimizer_settings_is_refused_before_training(run):
    from safetensors.torch import load_file, save_file

    state = run / rundir.LAST_STATE
    tensors = load_file(state)
    with open(state, "rb") as f:  # the metadata as written, param_groups edited
        n = int.from_bytes(f.read(8), "little")
        meta = json.loads(f.read(n))["__metadata__"]
    before = (run / rundir.METRICS).read_bytes()
    for groups_edit in (lambda g: g.update(weight_decay="x"), lambda g: g.update(betas="ab"),
                        lambda g: g.update(eps=float("nan")), lambda g: g.update(lr=-1.0)):
        groups = json.loads(meta["param_groups"])
        groups_edit(groups[0])
        save_file(tensors, state, metadata={**meta, "param_groups": json.dumps(groups)})
        refused(cli("train", "--resume", run, "--max-steps", "30"), f"{state}", "optimizer")
        assert (run / rundir.METRICS).read_bytes() == before  # nothing recorded: the run is as it was


def test_a_resume_from_impossible_progress_is_refused_before_training(run):
    """A fraction of a step (continued at its whole part), a NaN best loss (no later checkpoint ever beat it), a
    step or a time no run reaches: a damaged state, refused as such."""
    from safetensors.torch import load_file, save_file

    state = run / rundir.LAST_STATE
    tensors = load_file(state)
    with open(state, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        meta = json.loads(f.read(n))["__metadata__"]
    before = (run / rundir.METRICS).read_bytes()
    for key, value in (("step", "3.5"), ("step", "1e21"), ("step", "true"), ("best_val_loss", "NaN"),
                       ("best_val_loss", "-1.0"), ("best_step", "\"2\""), ("elapsed", "1e308")):
        save_file(tensors, state, metadata={**meta, key: value})
        refused(cli("train", "--resume", run, "--max-steps", "30"), f"{state}: {key} ", "which no run saves")
        assert (run / rundir.METRICS).read_bytes() == before  # nothing recorded: the run is as it was
    save_file(tensors, state, metadata=meta)  # as it was saved: continued
    assert cli("train", "--resume", run, "--max-steps", "30", "-q").exit_code == 0


# --- models a machine cannot hold --------------------------------------------------------------------

def test_a_model_larger_than_memory_is_refused_before_it_is_built(tmp_path):
    words = tmp_path / "words.txt"
    words.write_text("\n".join(WORDS) + "\n")
    r = cli("train", words, "--n-layer", "256", "--n-embd", "16384", "--n-head", "16", "-o", tmp_path / "big")
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    last = r.stderr.splitlines()[-1]  # after the line that describes the data
    assert last.startswith("error: a transformer of 824,689,131,520 parameters needs 12,288.8 GiB for its "
                           "weights, gradients and optimizer state; this machine has "), last
    assert not (tmp_path / "big").exists()


def test_the_rough_size_bounds_every_familys_weights_from_above():
    """The bound that decides whether the exact size is computed: never below the weights it bounds."""
    import random

    from makemore.models import FAMILIES, build_model, rough_bytes

    rng = random.Random(0)
    for name, family in FAMILIES.items():
        for _ in range(12):
            hyper = dict(family.hyper)
            for key, value in hyper.items():
                if isinstance(value, bool) or not isinstance(value, int) or key == "dropout_samples":
                    continue
                hyper[key] = (rng.choice([2, 4, 8, 16]) if name == "wavenet" else rng.randint(1, 3 if name == "ngram"
                              else 12)) if key == "context" else rng.randint(1, 4) if key == "n_layer" else \
                    rng.choice([1, 2, 4]) if key == "n_head" else rng.choice([4, 8, 16, 32, 64, 128])
            vocab, block = rng.randint(3, 60), rng.randint(2, 40)
            model = build_model(name, vocab, block, hyper)
            actual = sum(t.numel() * t.element_size() for t in model.state_dict().values())
            assert actual <= rough_bytes(vocab, block, hyper), (name, hyper, vocab, block)


def test_sampling_gives_up_on_what_it_cannot_find_and_names_the_constraints(trained):
    """Greedy decoding makes one word: asking for five distinct ones stops after its attempts and says what to
    loosen (what the user constrained, not a fixed hint)."""
    r = cli("sample", trained, "-n", "5", "--unique", "-T", "0", "--top-k", "3")
    line = refused(r, "found only 1 word meeting --unique in ")
    assert line.endswith("samples; try a higher --temperature or loosen --top-k"), line


@pytest.mark.parametrize("args, says", [
    (["train", "names", "--max-steps", "99999999999999999999"],
     "--max-steps must be at most 1,000,000,000, not 99,999,999,999,999,999,999"),
    (["train", "names", "--warmup-steps", "10000000000"], "--warmup-steps must be at most 1,000,000,000"),
    (["lr-find", "names", "--steps", "100000000000"], "--steps must be between 2 and 1,000,000,000"),
])
def test_a_step_count_no_run_could_reach_is_refused(tmp_path, args, says):
    """A digit too many trained until Ctrl-C (a count past 64 bits included); now it is refused, before a run
    directory is made."""
    result = cli(*args, *(["-o", tmp_path / "out"] if args[0] == "train" else []))
    assert result.exit_code == 2 and says in result.stderr, result.output
    assert not (tmp_path / "out").exists()


def test_a_run_that_failed_before_its_first_progress_record_counts_the_steps_it_took(run):
    """`runs` and `info` count the steps to a divergence (the failed record's step), not 0, and `diagnose` says
    when it skipped damaged lines, as they do."""
    from makemore.cli import app
    from makemore.rundir import RunDir

    lines = (run / "metrics.jsonl").read_text().splitlines()
    started = next(x for x in lines if json.loads(x)["event"] == "started")
    first = next(x for x in lines if json.loads(x)["event"] == "eval")
    failed = json.dumps({"event": "failed", "step": 10, "message": "training diverged: the loss became nan"})
    (run / "metrics.jsonl").write_text("\n".join([started, first, failed, '{"event": "diagn']) + "\n")
    summary = RunDir(run).summary()
    assert summary["steps"] == 10 and summary["failed"] == "training diverged: the loss became nan"
    result = CliRunner().invoke(app, ["diagnose", str(run)])
    said = " ".join(result.stderr.split())  # (as the console wraps it)
    assert f"{run}: skipped 1 damaged line of its metrics.jsonl" in said, result.output


def test_a_diverged_loss_is_shown_in_exponent_form_on_the_screen():
    from makemore.tui.widgets.stats import fmt_loss

    assert fmt_loss(1.1779553451967974e32) == "1.178e+32" and fmt_loss(2.05) == "2.0500"
    assert fmt_loss(9999.5) == "9999.5000" and fmt_loss(float("nan")) == "-"


def test_a_number_too_long_to_convert_in_a_json_file_is_named(run, tmp_path):
    """Python refuses to convert an integer of more than 4,300 digits (a ValueError, not a JSON error): every
    command said so with a traceback, and one such run broke `makemore runs` for all the others."""
    config = json.loads((run / rundir.CONFIG).read_text())
    config["train"]["max_steps"] = int("9" * 4000)
    (run / rundir.CONFIG).write_text(json.dumps(config).replace("9" * 4000, "9" * 5000))
    for command in ("info", "sample", "diagnose"):
        refused(cli(command, run), f"{run / rundir.CONFIG}: not valid JSON (a number of more than 4,300 digits)")
    r = cli("runs", run.parent)
    assert r.exit_code == 0 and "unreadable" in r.output and "4,300 digits" in r.output, r.output
    tok = tmp_path / "tok.json"
    tok.write_text('{"version": "1.0", "x": ' + "1" * 5000 + "}")
    refused(cli("tokenize", tok, "hi"), f"{tok}: not valid")


def test_an_edited_split_or_sample_count_is_refused_before_training(run):
    """split.json with no training words, or a word longer than the model reads, crashed `train --resume`
    (and `eval`) with a traceback; a num_samples of a billion in config.json hung it, drawing samples."""
    split = json.loads((run / rundir.SPLIT).read_text())
    original = (run / rundir.SPLIT).read_text()
    (run / rundir.SPLIT).write_text(json.dumps({**split, "train": []}))
    refused(cli("train", "--resume", run, "--max-steps", "5", "-q"), f"{run / rundir.SPLIT}: no training words")
    longest = json.loads((run / rundir.CONFIG).read_text())["model"]["block_size"] - 1
    (run / rundir.SPLIT).write_text(json.dumps({**split, "val": split["val"] + ["a" * (longest + 1)]}))
    for args in (["train", "--resume", run, "--max-steps", "5", "-q"], ["eval", run, "--split", "val"],
                 ["sample", run, "-n", "2"]):
        refused(cli(*args), f"{run / rundir.SPLIT}: val holds a word of {longest + 1} characters, longer than the "
                            f"{longest} this run's model reads")
    (run / rundir.SPLIT).write_text(original)
    config = json.loads((run / rundir.CONFIG).read_text())
    for key, value, message in (("num_samples", 10**9, "num_samples must be between 0 and 1,000"),
                                ("temperature", 1e-4, "temperature (of the samples at each evaluation) must be 0")):
        (run / rundir.CONFIG).write_text(json.dumps({**config, "train": {**config["train"], key: value}}))
        refused(cli("train", "--resume", run, "--max-steps", "5", "-q"), f"{run / rundir.CONFIG}: {message}")
        for args in (["info", run], ["sample", run, "-n", "2"]):  # a run written before these bounds still reads
            assert cli(*args).exit_code == 0, (key, args)


def test_the_api_bounds_the_samples_drawn_at_each_evaluation(tmp_path):
    import makemore

    with pytest.raises(makemore.MakemoreError, match="num_samples must be between 0 and 1,000"):
        makemore.train("names", type="bigram", max_steps=1, num_samples=10**9, out=tmp_path / "r", progress=False)
    assert not (tmp_path / "r").exists()


# --- what the system refuses: permissions, a full disk, a closed or failing output -------------------------------

def _without_root_powers() -> list[str] | None:
    """The prefix that runs a command with file permissions enforced: nothing as an ordinary user; as root,
    setpriv dropping the capabilities that bypass them. None where neither can be had."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    caps = "-dac_override,-dac_read_search,-fowner"
    probe = subprocess.run([setpriv, f"--inh-caps={caps}", f"--bounding-set={caps}", "true"], capture_output=True)
    return [setpriv, f"--inh-caps={caps}", f"--bounding-set={caps}"] if probe.returncode == 0 else None


def test_a_folder_that_cannot_be_entered_is_named_in_one_line(run, tmp_path):
    """Path.exists() raises PermissionError on Python 3.11 for a path under a folder that cannot be entered: every
    command ended in a traceback. Now one line naming the path; `runs` lists such a folder as unreadable."""
    prefix = _without_root_powers()
    if prefix is None:
        pytest.skip("needs file permissions enforced (setpriv, as root)")
    locked = tmp_path / "locked"
    locked.mkdir()
    shutil.copytree(run, tmp_path / "runs" / "b")
    shutil.copytree(run, tmp_path / "runs" / "a")
    (tmp_path / "runs" / "b").chmod(0)
    locked.chmod(0)
    try:
        for args in (["info", "locked/x"], ["sample", "locked/x"], ["train", "locked/words.txt"],
                     ["sample", run, "-n", "2", "-O", "locked/out.txt"]):
            r = subprocess.run([*prefix, sys.executable, "-m", "makemore", *map(str, args)], capture_output=True,
                               text=True, cwd=tmp_path, timeout=60)
            assert r.returncode == 2 and "Traceback" not in r.stderr, (args, r.stderr)
            assert len(r.stderr.splitlines()) == 1 and "locked/" in r.stderr and "denied" in r.stderr, (args, r.stderr)
        r = subprocess.run([*prefix, sys.executable, "-m", "makemore", "runs", "runs"], capture_output=True,
                           text=True, cwd=tmp_path, timeout=60)
        assert r.returncode == 0 and "1 run in runs, 1 unreadable" in r.stderr, r.stderr
        assert "skipped runs/b: runs/b/config.json: cannot read" in r.stderr, r.stderr
    finally:
        locked.chmod(0o755)
        (tmp_path / "runs" / "b").chmod(0o755)


def test_a_full_disk_while_making_a_run_leaves_nothing_behind(small_words, tmp_path, monkeypatch):
    """The run's first files could not be written: the hidden staging folder and the empty run folder were left
    (the next run took the name -2), and the message named the staging folder. Now nothing is left, and the
    message names the run's file."""
    from makemore import checkpoint

    def full(path, obj):
        raise MakemoreError(f"{path}: cannot write (No space left on device)")

    monkeypatch.setattr(checkpoint, "write_json", full)
    monkeypatch.chdir(tmp_path)
    r = cli("train", small_words, "--type", "bigram", "--max-steps", "2", "-q")
    refused(r, "runs/small-bigram/split.json: cannot write (No space left on device)")
    assert not (tmp_path / "runs").exists()  # made for this run, and removed with it
    r = cli("train", small_words, "--type", "bigram", "--max-steps", "2", "-q", "-o", "deep/er/run")
    refused(r, "deep/er/run/split.json: cannot write (No space left on device)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["small.txt"]  # nor the folders -o asked for


def test_the_empty_folder_a_killed_run_creation_left_is_taken_again(small_words, tmp_path, monkeypatch):
    """A kill while a new run's first files were written left the empty folder reserved for its name (and the
    hidden staging folder), and the next run took the name -2. Now it takes the empty folder; a name another
    process fills meanwhile moves the run on to the next name, leaving the other's run as it was."""
    monkeypatch.chdir(tmp_path)
    runs = tmp_path / "runs"
    (runs / "small-bigram").mkdir(parents=True)  # what the kill left
    (runs / ".small-bigram.abc123.tmp").mkdir()
    (runs / ".small-bigram.abc123.tmp" / "split.json").write_text("{}")
    r = cli("train", small_words, "--type", "bigram", "--max-steps", "2", "-q")
    assert r.exit_code == 0, r.output
    assert (runs / "small-bigram" / "config.json").is_file() and not (runs / "small-bigram-2").exists()

    (runs / "small-bigram-2").mkdir()  # reserved by another process, which publishes its run while we stage ours
    staging_dir = rundir._staging_dir

    def other_publishes(out):
        staging = staging_dir(out)
        if out.name == "small-bigram-2":
            (out / "config.json").write_text("theirs")
        return staging

    monkeypatch.setattr(rundir, "_staging_dir", other_publishes)
    r = cli("train", small_words, "--type", "bigram", "--max-steps", "2", "-q")
    assert r.exit_code == 0, r.output
    assert (runs / "small-bigram-2" / "config.json").read_text() == "theirs"
    assert (runs / "small-bigram-3" / "config.json").is_file()
    assert sorted(p.name for p in runs.iterdir()) == [".small-bigram.abc123.tmp", "small-bigram",
                                                      "small-bigram-2", "small-bigram-3"]


def test_the_folder_of_runs_and_out_are_refused_in_one_line(small_words, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").write_text("")
    refused(cli("train", small_words, "--type", "bigram", "--max-steps", "2", "-q"),
            "runs: not a directory, where the runs go")
    (tmp_path / "runs").unlink()
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    refused(cli("train", small_words, "--type", "bigram", "-o", "dangling"), "dangling: a link to nothing")
    (tmp_path / "empty").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "empty")  # a link to an empty folder: the run is made there
    r = cli("train", small_words, "--type", "bigram", "--max-steps", "2", "-q", "-o", "link")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "link").is_symlink() and (tmp_path / "empty" / "config.json").is_file()
    long = "w" * 250 + ".txt"  # the run's name, 'w…w-bigram', is longer than a name can be
    shutil.copy(small_words, tmp_path / long)
    refused(cli("train", long, "--type", "bigram", "--max-steps", "2", "-q"), "File name too long")
    named = "r" * 245  # a name of 245 bytes is fine, though its staging folder's would not have been
    r = cli("train", small_words, "--type", "bigram", "--max-steps", "2", "-q", "-o", named)
    assert r.exit_code == 0 and (tmp_path / named / "config.json").is_file(), r.output


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_training_goes_on_when_its_output_cannot_be_written(small_words, tmp_path):
    """`makemore train … > log` on a full disk: the progress failed to print and training died after making its
    run directory. Now it says so once on stderr and trains to its end; a closed stdout is no error either, and
    a terminal that cannot encode a character shows its escape."""
    with open("/dev/full", "w") as full:
        r = subprocess.run([sys.executable, "-m", "makemore", "train", str(small_words), "--type", "bigram",
                            "--max-steps", "20", "-o", "full"], stdout=full, stderr=subprocess.PIPE, text=True,
                           cwd=tmp_path, timeout=120)
    assert r.returncode == 0 and "note: the progress cannot be written (No space left on device)" in r.stderr, r.stderr
    assert (tmp_path / "full" / "model.safetensors").is_file()
    closed = subprocess.run(f"{sys.executable} -m makemore info full >&-", shell=True, capture_output=True,
                            text=True, cwd=tmp_path, timeout=60)
    assert closed.returncode == 0 and "Traceback" not in closed.stderr, closed.stderr
    latin = subprocess.run([sys.executable, "-m", "makemore", "train", str(small_words), "--type", "bigram",
                            "--max-steps", "2", "-o", "latin"], capture_output=True, cwd=tmp_path, timeout=120,
                           env={**os.environ, "PYTHONIOENCODING": "latin-1"})
    assert latin.returncode == 0, latin.stderr
    assert b"\\u2192 latin" in latin.stdout + latin.stderr  # the banner's arrow, escaped


def test_a_full_disk_under_metrics_jsonl_stops_the_run_in_one_line(tmp_path):
    from makemore.events import Step
    from makemore.sinks import JsonlSink

    class Full:
        name = str(tmp_path / "metrics.jsonl")

        def write(self, text):
            raise OSError(28, "No space left on device")

        flush = close = lambda self: None

    sink = JsonlSink(tmp_path)
    sink.file.close()
    sink.file = Full()
    with pytest.raises(MakemoreError, match=r"metrics.jsonl: cannot write \(No space left on device\); the run stops"):
        sink(Step(step=1, loss=1.0, lr=0.1, steps_per_s=1.0, tokens_per_s=1.0, elapsed=1.0))
    sink.close()
