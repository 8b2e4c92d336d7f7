"""The command line, as a user meets it: real subprocesses for start-up and errors, CliRunner elsewhere."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from makemore.cli import app

runner = CliRunner()
TINY = ["--n-layer", "1", "--n-head", "2", "--n-embd", "16"]


def makemore(*args: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "makemore", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=timeout)


def invoke_in(cwd: Path, *args: str):
    """The command run in this process (no start-up to pay), from the folder ``cwd``."""
    with contextlib.chdir(cwd):
        return runner.invoke(app, list(args), env={"COLUMNS": "200"})


def test_help_and_version_do_not_import_torch():
    code = ("import sys; from makemore.cli import app; "
            "sys.argv = ['makemore', '--help']\n"
            "try:\n    app()\nexcept SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules and 'textual' not in sys.modules, 'heavy import'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "train" in result.stdout and "sample" in result.stdout
    version = makemore("--version")
    assert version.returncode == 0 and version.stdout.startswith("makemore ")


@pytest.mark.parametrize("args, message, ending", [
    (["train", "--nope"], "error: No such option: --nope", " train --help` lists the options)"),
    (["sample", "-n", "abc"], "error: Invalid value for '-n'", " sample --help` lists the options)"),
    (["nope"], "error: No such command 'nope'.", "makemore --help` lists the commands)"),
    (["tokenizer", "nope"], "error: No such command 'nope'.", " tokenizer --help` lists the commands)"),
])
def test_a_usage_error_is_one_line_and_exit_2(args, message, ending):
    """Click's usage errors read like makemore's own refusals: one line on stderr, exit 2, no box."""
    result = makemore(*args)
    assert result.returncode == 2 and result.stdout == "", result
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(message) and lines[0].endswith(ending), lines


def test_makemore_alone_prints_its_help():
    result = makemore()
    assert result.returncode == 2 and "Commands" in result.stdout and "train" in result.stdout
    assert result.stdout.count(" Usage: ") == 1  # once, not twice


def test_train_help_lists_every_family_with_defaults():
    result = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    from makemore.models import FAMILIES

    for name in FAMILIES:
        assert name in result.output


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    words = root / "words.txt"
    words.write_text("\n".join(["anna", "bob", "carla", "dave", "emma", "fred", "gina", "hank", "ivy", "jon",
                                "kate", "liam", "mona", "nick", "olga", "paul", "quin", "rosa", "sam", "tina",
                                "uma", "vic", "wendy", "xena", "yuri", "zoe"]) + "\n")
    result = makemore("train", str(words), *TINY, "--max-steps", "40", "--eval-interval", "20", cwd=root)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    run = root / "runs" / "words-transformer"
    assert run.is_dir()
    return run


def test_sample_latest_run_and_options(trained_run):
    root = trained_run.parent.parent
    a = invoke_in(root, "sample", "-n", "8", "--seed", "3", "--json")
    b = invoke_in(root, "sample", str(trained_run), "-n", "8", "--seed", "3", "--json")
    assert a.exit_code == b.exit_code == 0, a.stderr + b.stderr
    sa, sb = json.loads(a.stdout), json.loads(b.stdout)
    assert [s["word"] for s in sa["samples"]] == [s["word"] for s in sb["samples"]]
    assert len(sa["samples"]) == 8 and all(s["tag"] in ("new", "train", "test") for s in sa["samples"])
    c = invoke_in(root, "sample", str(trained_run), "-n", "5", "--prefix", "ka", "--top-k", "3", "--temperature",
                  "0.8", "--new-only", "--unique", "--scores", "-O", str(root / "out.txt"))
    assert c.exit_code == 0, c.stderr
    words = (root / "out.txt").read_text().split()
    assert len(words) == 5 and len(set(words)) == 5 and all(w.startswith("ka") for w in words)
    assert "novelty 100%" in c.stderr


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_sample_output_writes_as_a_shell_redirection_does(trained_run, tmp_path):
    """-O writes as > does: through a link to the file it names (the link stays), into a FIFO (which stays a
    FIFO; before, both were replaced by a regular file, and so, run as root, was /dev/null), and a file replaced
    keeps its permissions (a private file stayed private only by chance of the umask). A file in any run
    directory is refused, not only in the run sampled from."""
    import stat
    import threading
    from types import SimpleNamespace

    def in_process(*args: str, cwd: Path):  # what needs no file descriptor of its own: no new process
        r = invoke_in(cwd, *args)
        return SimpleNamespace(returncode=r.exit_code, stdout=r.stdout, stderr=r.stderr)

    root = trained_run.parent.parent
    target, link = tmp_path / "target.txt", tmp_path / "link.txt"
    target.write_text("private\n")
    target.chmod(0o600)
    link.symlink_to(target)
    done = in_process("sample", str(trained_run), "-n", "3", "-O", str(link), cwd=root)
    assert done.returncode == 0, done.stderr
    assert link.is_symlink() and len(target.read_text().split()) == 3
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()), daemon=True)
    reader.start()
    done = in_process("sample", str(trained_run), "-n", "4", "-O", str(fifo), cwd=root)
    reader.join(timeout=30)
    assert done.returncode == 0, done.stderr
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and got and len(got[0].split()) == 4
    other = tmp_path / "other-run"
    other.mkdir()
    (other / "config.json").write_text((trained_run / "config.json").read_text())
    done = in_process("sample", str(trained_run), "-n", "2", "-O", str(other / "new.txt"), cwd=root)
    assert done.returncode == 0, done.stderr  # a folder of another kind may have a config.json of its own
    (other / "new.txt").unlink()
    (other / "metrics.jsonl").write_text("")
    for path in (other / "config.json", other / "new.txt"):
        done = in_process("sample", str(trained_run), "-n", "2", "-O", str(path), cwd=root)
        assert done.returncode == 2 and f"inside the run directory {other}" in done.stderr, done.stderr
    assert sorted(p.name for p in other.iterdir()) == ["config.json", "metrics.jsonl"]
    shards = tmp_path / "shards"  # token shards (their index.json) are no place for samples either
    shards.mkdir()
    (shards / "index.json").write_text("{}")
    for path in (shards / "index.json", shards / "train_000000.bin"):
        done = in_process("sample", str(trained_run), "-n", "2", "-O", str(path), cwd=root)
        assert done.returncode == 2 and f"inside the token shards {shards}" in done.stderr, done.stderr
    assert [p.name for p in shards.iterdir()] == ["index.json"] and (shards / "index.json").read_text() == "{}"
    piped = makemore("sample", str(trained_run), "-n", "3", "-O", "/dev/stdout", cwd=root)  # stdout: a pipe
    assert piped.returncode == 0 and len(piped.stdout.split()) == 3 * 2 + 3, piped.stderr  # tagged, then plain
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    (tmp_path / "away").symlink_to(tmp_path / "missing" / "file.txt")
    for path, message in (("loop", "a loop of symbolic links"), ("away", f"no directory {tmp_path / 'missing'}")):
        done = in_process("sample", str(trained_run), "-n", "2", "-O", str(tmp_path / path), cwd=root)
        assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_sample_prints_the_same_lines_to_a_terminal_and_to_a_pipe(trained_run):
    """A pipe gets plain lines written at once (100,000 words took 18 s through rich, 5 s now); a terminal the
    same lines with the tags coloured."""
    import re

    root = trained_run.parent.parent
    args = ("sample", str(trained_run), "-n", "30", "--seed", "5", "--scores")
    plain = makemore(*args, cwd=root)
    coloured = subprocess.run([sys.executable, "-m", "makemore", *args], cwd=root, capture_output=True, text=True,
                              env={**os.environ, "FORCE_COLOR": "1", "COLUMNS": "80"}, timeout=120)
    assert plain.returncode == coloured.returncode == 0, coloured.stderr
    assert "\x1b[" in coloured.stdout and "\x1b[" not in plain.stdout
    assert re.sub(r"\x1b\[[0-9;]*m", "", coloured.stdout) == plain.stdout
    lines = plain.stdout.splitlines()
    assert len(lines) == 30 and all(re.fullmatch(r"[a-z]+ +(new|train|test) +-?\d+\.\d{3}", line) for line in lines)


def test_sample_imports_only_what_it_needs(trained_run):
    """`sample` of a character run: no tokenizer code, no TUI."""
    code = ("import sys; from makemore.cli import main\n"
            f"sys.argv = ['makemore', 'sample', {str(trained_run)!r}, '-n', '3', '--top-p', '0.9', '-T', '0.8']\n"
            "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            "heavy = [m for m in ('makemore.tokentext', 'tokenizers', 'textual') if m in sys.modules]\n"
            "assert not heavy, heavy")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.split("\n")) >= 3


def test_eval_info_score(trained_run):
    result = runner.invoke(app, ["eval", str(trained_run), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["loss"] > 0 and abs(data["bpc"] - data["loss"] / 0.6931471805599453) < 1e-9
    info = runner.invoke(app, ["info", str(trained_run), "--json"])
    summary = json.loads(info.stdout)
    chars = set((trained_run.parent.parent / "words.txt").read_text().replace("\n", ""))
    assert summary["type"] == "transformer" and summary["steps"] == 40
    assert summary["vocab_size"] == len(chars) + 1
    # the arithmetic the steps used, as the run's first step chose it (--dtype auto) and recorded it
    recorded = [json.loads(line) for line in (trained_run / "metrics.jsonl").read_text().splitlines()]
    chosen = next(e for e in recorded if e["event"] == "arithmetic")
    assert summary["arithmetic"]["dtype"] == chosen["dtype"] in ("float32", "bfloat16")
    assert summary["arithmetic"]["matmul_precision"] == chosen["matmul_precision"]
    shown = runner.invoke(app, ["info", str(trained_run)], env={"COLUMNS": "200"}).stdout
    assert f"cpu · {chosen['dtype']}, chosen by --dtype auto" in shown
    score = runner.invoke(app, ["score", str(trained_run), "emma", "zzzz", "--json"])
    rows = json.loads(score.stdout)
    assert [r["word"] for r in rows] == ["emma", "zzzz"]
    assert rows[0]["tag"] in ("train", "test")
    # the white space around a word is stripped, as a word list's lines are (and as `eval FILE` reads them)
    spaced = runner.invoke(app, ["score", str(trained_run), " emma ", "zzzz\t", "--json"])
    assert spaced.exit_code == 0, spaced.output
    assert json.loads(spaced.stdout) == rows
    blank = runner.invoke(app, ["score", str(trained_run), "  "])
    assert blank.exit_code == 2 and "cannot score an empty word" in blank.output


def test_eval_on_a_file(trained_run, tmp_path):
    other = tmp_path / "other.txt"
    other.write_text("anna\nbob\n")
    result = runner.invoke(app, ["eval", str(trained_run), str(other), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["words"] == 2
    root = trained_run.parent.parent  # `eval FILE`: the latest run in runs/, on the file, as `eval [RUN] [FILE]`
    alone = invoke_in(root, "eval", str(other), "--json")
    assert alone.exit_code == 0, alone.stderr
    assert json.loads(alone.stdout) == {**json.loads(result.stdout), "run": str(Path("runs") / trained_run.name)}
    builtin = invoke_in(root, "eval", str(trained_run), "names", "--skip-unknown", "--json")  # a built-in name
    assert builtin.exit_code == 0, builtin.stderr
    assert json.loads(builtin.stdout)["on"].endswith(str(Path("datasets") / "names.txt"))


def test_eval_on_each_split(trained_run):
    """--split train|val|test: the loss of the best checkpoint on that split's words, as stored in split.json."""
    from makemore.data import EncodedWords
    from makemore.evaluation import evaluate
    from makemore.rundir import RunDir

    split = json.loads((trained_run / "split.json").read_text(encoding="utf-8"))
    loaded = RunDir.open(trained_run).load_model("best")
    losses = {}
    for name in ("train", "val", "test"):
        result = runner.invoke(app, ["eval", str(trained_run), "--split", name, "--json"])
        assert result.exit_code == 0, result.output
        got = json.loads(result.stdout)
        expected = evaluate(loaded.model, EncodedWords(split[name], loaded.vocab))
        assert got["words"] == len(split[name]) and got["on"] == f"{name} split"
        assert got["loss"] == pytest.approx(expected, rel=1e-6)
        losses[name] = got["loss"]
    assert len(set(losses.values())) == 3  # three different word lists
    default = json.loads(runner.invoke(app, ["eval", str(trained_run), "--json"]).stdout)
    assert default["loss"] == losses["test"]
    refused = runner.invoke(app, ["eval", str(trained_run), "--split", "dev"])
    assert refused.exit_code == 2 and "--split must be train, val or test" in refused.output


def bad_file(tmp_path: Path, name: str, content: bytes) -> str:
    p = tmp_path / name
    p.write_bytes(content)
    return str(p)


@pytest.mark.parametrize("make_args, message", [
    (lambda t: ["train", str(t / "missing.txt")], "no such file"),
    (lambda t: ["train", str(t)], "is a directory"),
    (lambda t: ["train", bad_file(t, "empty.txt", b"")], "empty file"),
    (lambda t: ["train", bad_file(t, "blank.txt", b"  \n \n")], "no words"),
    (lambda t: ["train", bad_file(t, "latin1.txt", "café\n".encode("latin-1"))], "not UTF-8"),
    (lambda t: ["train", bad_file(t, "bin.txt", b"ab\x00\x01\n")], "binary"),
    (lambda t: ["train", "nosuchdataset"], "not a built-in dataset"),
    # the examples name the files they were measured on: one that is not there names the built-in it may mean
    (lambda t: ["train", "names.txt"], "names.txt: no such file (the built-in dataset is `names`, without .txt)"),
    (lambda t: ["tokenizer", "train", "shakespeare.txt", "--vocab-size", "300", "-o", str(t / "t.json")],
     "the built-in dataset is `shakespeare`, without .txt"),
    (lambda t: ["train", "names", "--type", "nosuchmodel"], "unknown model type"),
    (lambda t: ["train", "names", "--device", "tpu"], "unknown device"),
    (lambda t: ["train", "names", "--context", "3"], "does not apply"),
    (lambda t: ["train", "names", "--matmul-precision", "low"], "--matmul-precision must be"),
    (lambda t: ["sample", str(t / "norun")], "no such run directory"),
    (lambda t: ["sample", str(t)], "not a makemore run"),
    (lambda t: ["eval", str(t / "norun")], "no such run directory"),
    (lambda t: ["info", str(t)], "not a makemore run"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, make_args, message):
    result = makemore(*make_args(tmp_path), cwd=tmp_path)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()  # nothing written for refused input


def test_prefix_outside_vocabulary_names_the_character(trained_run):
    result = makemore("sample", str(trained_run), "--prefix", "a#", cwd=trained_run.parent.parent)
    assert result.returncode == 2
    assert "'#'" in result.stderr and "vocabulary" in result.stderr


def test_train_into_existing_out_refuses_and_says_how_to_resume(trained_run):
    root = trained_run.parent.parent
    before = (trained_run / "config.json").read_bytes()
    result = makemore("train", str(root / "words.txt"), "-o", str(trained_run), cwd=root)
    assert result.returncode == 2
    assert "--resume" in result.stderr
    assert (trained_run / "config.json").read_bytes() == before


def test_resume_extends_a_finished_run(trained_run):
    root = trained_run.parent.parent
    result = makemore("train", "--resume", str(trained_run), "--max-steps", "50", "-q", cwd=root)
    assert result.returncode == 0, result.stderr
    info = json.loads(runner.invoke(app, ["info", str(trained_run), "--json"]).stdout)
    assert info["steps"] == 50 and info["train"]["max_steps"] == 50  # the run is now a run of 50 steps
    text = runner.invoke(app, ["info", str(trained_run)], env={"COLUMNS": "200"}).stdout
    assert "50 steps · batch" in text
    assert f"weights' average {info['train']['ema']}" in text  # the recipe's average of the weights, shown


def test_train_piped_into_a_reader_that_leaves_trains_to_its_end(tmp_path, small_words):
    """`makemore train ... | head -1`: once the reader has gone, the progress falls silent and the run goes on to
    finish and save (before, rich's broken-pipe handling ended it at once, exit 1, with no checkpoint)."""
    out = tmp_path / "run"
    with open(tmp_path / "stderr.txt", "w") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "makemore", "train", str(small_words), "--type", "bigram",
                                 "--max-steps", "300", "--eval-interval", "5", "-o", str(out)],
                                stdout=subprocess.PIPE, stderr=stderr, text=True)
        first = proc.stdout.readline()
        proc.stdout.close()  # as `head -1` does after its line
        assert proc.wait(timeout=120) == 0, (tmp_path / "stderr.txt").read_text()
    assert "bigram" in first
    info = json.loads(makemore("info", str(out), "--json").stdout)
    assert info["steps"] == 300 and info["finished"] == "max_steps" and (out / "model.safetensors").exists()


def test_grad_accum_on_a_batch_norm_model_says_it_changes_the_result(tmp_path, small_words):
    """Batch norm normalises each micro-batch with its own statistics: --grad-accum is not one large batch there."""
    common = [str(small_words), "--type", "mlp", "--max-steps", "2", "--grad-accum", "2"]
    r = runner.invoke(app, ["train", *common, "--batchnorm", "-o", str(tmp_path / "bn")])
    assert r.exit_code == 0 and "mlp normalises with the statistics of each micro-batch" in r.stderr, r.output
    r = runner.invoke(app, ["train", *common, "-o", str(tmp_path / "plain")])
    assert r.exit_code == 0 and "micro-batch" not in r.stderr, r.output


def _wait_for_a_checkpoint(metrics: Path, seconds: float = 90) -> None:
    """Until a training process has saved its first checkpoint and logged two steps (or ``seconds`` pass)."""
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        text = metrics.read_text() if metrics.exists() else ""
        if '"event": "saved"' in text and text.count('"event": "step"') >= 2:
            return
        time.sleep(0.2)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_stops_cleanly_and_saves(tmp_path, small_words, sig):
    """The first Ctrl-C ends training at the next step, evaluates, saves, and exits 130 as shells expect; SIGTERM
    (`timeout`, `kill`, a batch scheduler) alike, with 143 (before, it ended the process at once, unsaved)."""
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "makemore", "train", str(small_words), *TINY,
                             "--max-steps", "100000", "-o", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = out / "metrics.jsonl"
    _wait_for_a_checkpoint(metrics)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, stderr  # as shells expect of a command stopped by Ctrl-C, after the save
    assert "Traceback" not in stderr
    events = [json.loads(line) for line in metrics.read_text().splitlines()]
    finished = events[-1]
    assert finished["event"] == "finished" and finished["reason"] == "stopped"
    assert 0 < finished["step"] < 100000
    saved = [e for e in events if e["event"] == "saved"]
    assert saved[-1]["step"] == finished["step"]
    result = runner.invoke(app, ["train", "--resume", str(out), "--max-steps", str(finished["step"] + 10), "-q"])
    assert result.exit_code == 0, result.output


def test_a_closed_terminal_stops_the_run_and_saves_it(tmp_path, small_words):
    """SIGHUP after the terminal is gone: the run stops after its step and saves, as with Ctrl-C, and exits 129
    (before, the default ended it unsaved; and a stop that wrote to the gone terminal failed with EIO)."""
    import pty
    import threading
    import time

    out = tmp_path / "run"
    master, slave = pty.openpty()
    # the run starts with SIGHUP's default, as a terminal's session has it, even if pytest runs under nohup
    hangup = signal.signal(signal.SIGHUP, signal.SIG_DFL)
    try:
        proc = subprocess.Popen([sys.executable, "-m", "makemore", "train", str(small_words), *TINY,
                                 "--max-steps", "100000", "-o", str(out)],
                                stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    finally:
        signal.signal(signal.SIGHUP, hangup)
    os.close(slave)

    reading = threading.Event()
    reading.set()

    def drain():  # a terminal's reader: the run's output must not fill the pty and block it
        import select

        with contextlib.suppress(OSError):
            while reading.is_set():
                if select.select([master], [], [], 0.1)[0]:
                    os.read(master, 4096)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    metrics = out / "metrics.jsonl"
    _wait_for_a_checkpoint(metrics)
    reading.clear()
    reader.join()  # (a read still blocked on the master would keep the terminal from hanging up)
    os.close(master)  # the terminal closes: it hangs up, and then the signal comes
    time.sleep(0.5)
    proc.send_signal(signal.SIGHUP)
    assert proc.wait(timeout=60) == 128 + signal.SIGHUP
    events = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert events[-1]["event"] == "finished" and events[-1]["reason"] == "stopped"
    assert [e for e in events if e["event"] == "saved"][-1]["step"] == events[-1]["step"]


def test_ctrl_c_under_a_pipe_whose_reader_is_gone_still_saves(tmp_path, small_words):
    """`makemore train … 2>&1 | tee log` and Ctrl-C: tee ends first, and the stop's notice, written to the closed
    pipe, ended the run with exit 1, unsaved."""
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "makemore", "train", str(small_words), *TINY,
                             "--max-steps", "100000", "-o", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    metrics = out / "metrics.jsonl"
    _wait_for_a_checkpoint(metrics)
    proc.stdout.close()  # the reader (tee) is gone
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    events = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert events[-1]["event"] == "finished" and events[-1]["reason"] == "stopped"
    assert [e for e in events if e["event"] == "saved"][-1]["step"] == events[-1]["step"]


def test_an_interrupt_stops_the_python_api_cleanly_and_a_run_stopped_before_any_checkpoint_resumes(tmp_path,
                                                                                                     small_words):
    """A notebook's interrupt (SIGINT) during makemore.train stops after the step and saves, as Ctrl-C does on the
    command line (before: a KeyboardInterrupt and nothing saved), then raises KeyboardInterrupt, so that a loop
    of calls ends there (it went on to the next call, and the script exited with 0). A run stopped before its
    first checkpoint of the last weights starts again at step 0 on --resume."""
    out = tmp_path / "api"
    code = ("import os, pathlib, signal, threading, time, makemore\n"
            "def interrupt():  # once training runs: its second logged step\n"
            f"    metrics = pathlib.Path({str(out) + '0/metrics.jsonl'!r})\n"
            "    while not metrics.exists() or metrics.read_text().count('\"event\": \"step\"') < 2:\n"
            "        time.sleep(0.05)\n"
            "    os.kill(os.getpid(), signal.SIGINT)\n"
            "threading.Thread(target=interrupt, daemon=True).start()\n"
            "for i in range(2):\n"
            f"    makemore.train({str(small_words)!r}, type='bigram', max_steps=10**6, eval_interval=10**5, "
            f"out={str(out)!r} + str(i), progress=False)\n"
            "    print('went on')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    last = done.stderr.rstrip().splitlines()[-1]
    assert done.returncode == -signal.SIGINT and last.startswith("KeyboardInterrupt: stopped at step "), done.stderr
    assert f"and saved in {out}0; makemore.train(resume='{out}0') continues it" in last, last  # which run, said
    assert "went on" not in done.stdout and not Path(str(out) + "1").exists()
    out = Path(str(out) + "0")
    finished = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()][-1]
    reason, step = finished["reason"], finished["step"]
    assert reason == "stopped" and 0 < int(step) < 10**6
    assert (out / "last.state.safetensors").is_file()
    result = runner.invoke(app, ["train", "--resume", str(out), "--max-steps", str(int(step) + 5), "-q"])
    assert result.exit_code == 0, result.output
    early = tmp_path / "early"  # the step-0 evaluation saved the best weights, and nothing else yet
    result = runner.invoke(app, ["train", str(small_words), "--type", "bigram", "--max-steps", "5", "-q",
                                 "-o", str(early)])
    for name in ("last.safetensors", "last.state.safetensors"):
        (early / name).unlink()
    result = runner.invoke(app, ["train", "--resume", str(early), "-q"])
    assert result.exit_code == 0 and result.stdout.startswith("done (max_steps) at step 5"), result.output


def test_default_run_dir_gets_a_suffix_when_taken(trained_run):
    root = trained_run.parent.parent
    result = makemore("train", str(root / "words.txt"), *TINY, "--max-steps", "2", "-q", cwd=root)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[0].startswith("done") and not result.stderr  # -q: one line
    assert len(result.stdout.strip().splitlines()) == 1
    assert (root / "runs" / "words-transformer-2" / "config.json").is_file()


def test_a_reader_that_leaves_early_ends_sample_quietly(trained_run):
    """`makemore sample -n 100000 | head -1`: the words go to a pipe past rich, in large writes; a reader that
    leaves ends the command quietly (exit code 1, as click ends a command whose output pipe closed). 20,000 words
    are some 200 KB, beyond what a pipe holds (64 KB)."""
    root = trained_run.parent.parent
    proc = subprocess.Popen([sys.executable, "-m", "makemore", "sample", str(trained_run), "-n", "20000"], cwd=root,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = proc.stdout.readline()
    proc.stdout.close()  # the reader leaves
    _, err = proc.communicate(timeout=120)
    assert first.strip() and proc.returncode == 1
    assert b"Traceback" not in err and b"BrokenPipe" not in err, err.decode()


def test_runs_on_a_narrow_terminal_keeps_the_names(trained_run):
    """Under 64 columns rich squeezed the name column out entirely; the names and the losses are shown instead."""
    import re

    root = trained_run.parent.parent
    shown = {}
    for columns in (40, 100):
        r = subprocess.run([sys.executable, "-m", "makemore", "runs", str(trained_run.parent)], cwd=root,
                           capture_output=True, text=True, timeout=60,
                           env={**os.environ, "FORCE_COLOR": "1", "COLUMNS": str(columns)})
        assert r.returncode == 0, r.stderr
        shown[columns] = re.sub(r"\x1b\[[0-9;]*m", "", r.stdout).splitlines()
    assert shown[40][0].split() == ["run", "best", "val", "test"] and trained_run.name in shown[40][1]
    assert all(len(line) <= 40 for line in shown[40])
    assert shown[100][0].split() == ["run", "type", "params", "steps", "time", "best", "val", "test", "done"]


def test_training_goes_on_when_the_reader_of_its_notes_leaves(small_words, tmp_path):
    """`makemore train … 2>&1 | head -1`: the reader leaves after the first line, and the data's note on stderr met a
    closed pipe, which ended the command before its run was made. Its notes now fall silent, and it trains."""
    proc = subprocess.Popen([sys.executable, "-m", "makemore", "train", str(small_words), "--type", "bigram",
                             "--max-steps", "20", "-o", str(tmp_path / "run")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    proc.stderr.close()  # before the first note is written
    assert proc.wait(timeout=120) == 0
    assert (tmp_path / "run" / "model.safetensors").is_file()
