"""Reliability and security: bad input files, kills, divergence, untrusted checkpoints, full disks.

Every bad input goes through the real command line (the Typer app, and a real subprocess where a process
boundary matters): exit code 2, one line on stderr, no traceback, and nothing written for refused input.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import pickle
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from makemore import checkpoint as ckpt
from makemore import rundir
from makemore.cli import app
from makemore.errors import MakemoreError

TINY = ["--n-layer", "1", "--n-embd", "16", "--n-head", "2", "--batch-size", "8", "-q"]
WORDS = ["emma", "olivia", "ava", "isabella", "sophia", "mia", "amelia", "harper", "evelyn", "abigail",
         "emily", "ella", "elizabeth", "camila", "luna", "sofia", "avery", "mila", "aria", "scarlett"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "TTY_INTERACTIVE": "0", "PYTHONUNBUFFERED": "1"}


def cli(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args], prog_name="makemore")


def assert_refused(result, *fragments: str) -> str:
    """Exit code 2, exactly one line on stderr naming the problem, no traceback."""
    output = result.stdout + result.stderr
    assert result.exit_code == 2, output
    assert "Traceback" not in output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models on a shared machine: one intra-op thread is faster than two fighting for cores."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# --- bad word lists ----------------------------------------------------------------------------------

def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


WIDE = "".join(chr(c) for c in range(0x4E00, 0x4E00 + 20_000)) + "".join(chr(c) for c in range(0x20000, 0x20000 + 90_000))

BAD_INPUTS = {
    # name: (how to make it, extra options, what the one-line message must say)
    "empty file": (lambda d: _write(d / "in.txt", b""), [], ["empty file"]),
    "whitespace only": (lambda d: _write(d / "in.txt", b"  \n\t\n\r\n \n"), [], ["in.txt: "]),
    "directory": (lambda d: (d / "in.txt").mkdir() or d / "in.txt", [], ["is a directory"]),
    "missing path": (lambda d: d / "in.txt", [], ["no such file"]),
    "NUL bytes": (lambda d: _write(d / "in.txt", b"emma\nav\x00a\n"), [], ["NUL"]),
    "Latin-1": (lambda d: _write(d / "in.txt", "emma\ncafé\n".encode("latin-1")), [],
                ["not UTF-8", "0xe9", "line 2"]),
    "Latin-1 with CR line ends": (lambda d: _write(d / "in.txt", "emma\rava\rcafé\r".encode("latin-1")), [],
                                  ["not UTF-8", "line 3"]),
    "UTF-16 with its mark": (lambda d: _write(d / "in.txt", "emma\nava\nolivia\n".encode("utf-16")), [],
                             ["UTF-16 text, expected UTF-8", "iconv -f utf-16"]),
    "UTF-16 without a mark": (lambda d: _write(d / "in.txt", "emma\nava\nolivia\n".encode("utf-16-le")),
                              ["--mode", "text"], ["UTF-16 text, expected UTF-8"]),
    # binary data was called UTF-16 (all zeros) or Latin-1 to convert with iconv (a compressed file, in text mode)
    "all zeros": (lambda d: _write(d / "in.txt", bytes(3000)), [], ["binary data (NUL bytes)"]),
    "all zeros, text mode": (lambda d: _write(d / "in.txt", bytes(3000)), ["--mode", "text"],
                             ["binary data (NUL byte on line 1)"]),
    "gzip data, text mode": (lambda d: _write(d / "in.txt", __import__("gzip").compress(b"emma\n" * 500, mtime=0)),
                             ["--mode", "text"], ["binary data (NUL byte on line 1)"]),
    "terminal escape": (lambda d: _write(d / "in.txt", b"emma\n\x1b[31mred\n"), [],
                        ["control character U+001B", "line 2"]),
    "tab inside a word (TSV)": (lambda d: _write(d / "in.txt", b"emma\t5\nava\t3\n"), [], ["tab", "line 1"]),
    "only a line of a million characters": (lambda d: _write(d / "in.txt", b"a" * 1_000_000 + b"\n"), [],
                                            ["longer than --max-len 64", "1000000"]),
    "--max-len 0": (lambda d: _write(d / "in.txt", b"emma\n"), ["--max-len", "0"], ["--max-len must be between"]),
    "--max-len beyond the limit": (lambda d: _write(d / "in.txt", b"a" * 1_000_000 + b"\n"),
                                   ["--max-len", "2000000"], ["--max-len must be between"]),
    "110,000 distinct characters in long words": (
        lambda d: _write(d / "in.txt", "\n".join(WIDE[i:i + 60] for i in range(0, len(WIDE), 60)).encode()),
        ["--batch-size", "64", "-q"], ["110,001 symbols", "GiB", "--batch-size"]),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS), ids=list(BAD_INPUTS))
def test_train_refuses_bad_word_list(case, tmp_path, monkeypatch):
    make, extra, fragments = BAD_INPUTS[case]
    monkeypatch.chdir(tmp_path)
    data = make(tmp_path)
    before = tree(tmp_path)
    result = cli("train", data.name, "--n-layer", "1", "--n-embd", "16", "--n-head", "2", *extra)
    assert_refused(result, *fragments)
    assert tree(tmp_path) == before  # no run directory, no staging directory, nothing


# the TUI checks the word list before its screen opens; options and memory are checked on the screen
TUI_CASES = ["empty file", "whitespace only", "directory", "missing path", "NUL bytes", "Latin-1",
             "Latin-1 with CR line ends", "terminal escape", "tab inside a word (TSV)",
             "only a line of a million characters"]


@pytest.mark.parametrize("case", TUI_CASES)
def test_tui_refuses_bad_word_list(case, tmp_path, monkeypatch):
    make, extra, fragments = BAD_INPUTS[case]
    monkeypatch.chdir(tmp_path)
    data = make(tmp_path)
    before = tree(tmp_path)
    assert_refused(cli("tui", data.name, *extra), *fragments)
    assert tree(tmp_path) == before


@pytest.mark.parametrize("case", ["empty file", "directory", "missing path", "NUL bytes", "Latin-1",
                                  "terminal escape"])
def test_eval_refuses_bad_word_list(case, trained, tmp_path):
    make, _, fragments = BAD_INPUTS[case]
    data = make(tmp_path)
    before = tree(trained)
    assert_refused(cli("eval", trained, data), *fragments)
    assert tree(trained) == before


def test_eval_file_with_characters_outside_the_vocabulary(trained, tmp_path):
    data = _write(tmp_path / "other.txt", "emma\nzoë\n".encode())
    assert_refused(cli("eval", trained, data), "other.txt", "'ë'", "not in the model's vocabulary", "--skip-unknown")


@pytest.mark.parametrize("prefix, fragments", [
    ("Q", ["--prefix 'Q'", "not in the model's vocabulary"]),
    ("é", ["not in the model's vocabulary"]),
    ("a" * 100_000, ["--prefix is 100000 characters", "at most"]),
])
def test_sample_refuses_bad_prefix(trained, prefix, fragments):
    assert_refused(cli("sample", trained, "-n", "3", "--prefix", prefix), *fragments)


def test_sample_prints_words_that_look_like_markup(trained):
    """Training words are data, not rich markup: `[/b]` must neither crash nor vanish."""
    r = cli("sample", trained, "-n", "5", "--prefix", "[/b]", "--max-len", "4")
    assert r.exit_code == 0, r.stdout + r.stderr
    assert r.stdout.splitlines()[0].startswith("[/b]")


def test_no_read_permission(tmp_path):
    """Root ignores file modes, so when run as root the command runs as `nobody` through setpriv."""
    work = Path(tempfile.mkdtemp(prefix="makemore-perm-"))  # pytest's own tmp dirs are private to root
    try:
        os.chmod(work, 0o777)
        data = _write(work / "secret.txt", b"emma\nava\n")
        os.chmod(data, 0)
        cmd = [sys.executable, "-m", "makemore", "train", str(data), "-o", str(work / "run")]
        if os.geteuid() == 0:
            setpriv = shutil.which("setpriv")
            if setpriv is None:
                pytest.skip("running as root and setpriv is not available to drop privileges")
            cmd = [setpriv, "--reuid", "nobody", "--regid", "nogroup", "--clear-groups", *cmd]
        r = subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=work, timeout=60)
        if "Permission denied" in r.stderr and "secret.txt" not in r.stderr:
            pytest.skip(f"`nobody` cannot run this Python: {r.stderr.strip()[:200]}")
        assert r.returncode == 2, r.stderr
        assert r.stderr.strip().splitlines() == [f"error: {data}: permission denied"]
        assert sorted(p.name for p in work.iterdir()) == ["secret.txt"]
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_refusal_through_a_real_process(tmp_path):
    """The installed entry point: exit status 2 and one line, without importing torch for the check."""
    data = _write(tmp_path / "latin.txt", "olé\n".encode("latin-1"))
    r = subprocess.run([sys.executable, "-m", "makemore", "train", str(data)], capture_output=True, text=True,
                       env=ENV, cwd=tmp_path, timeout=60)
    assert r.returncode == 2
    assert r.stdout == ""
    assert r.stderr.splitlines() == [f"error: {data}: not UTF-8 (byte 0xe9 on line 1); convert it, e.g. "
                                     f"iconv -f latin1 -t utf-8"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latin.txt"]


# --- awkward but valid word lists ----------------------------------------------------------------------

def test_bom_crlf_and_lone_cr_are_plain_line_ends(tmp_path):
    data = _write(tmp_path / "in.txt", b"\xef\xbb\xbfemma\r\nava\rmia\nava\r\n\r\n")
    run = tmp_path / "run"
    r = cli("train", data, "-o", run, *TINY, "--max-steps", "2")
    assert r.exit_code == 0, r.stderr
    split = json.loads((run / rundir.SPLIT).read_text(encoding="utf-8"))
    assert sorted(split["train"] + split["val"] + split["test"]) == ["ava", "emma", "mia"]
    assert json.loads((run / rundir.CONFIG).read_text())["vocab"] == sorted(set("emmaavamia"))


def test_single_line_emoji_and_combining_characters(tmp_path):
    """Characters are code points, not normalised: a ZWJ emoji is several symbols, e + U+0308 two."""
    data = _write(tmp_path / "in.txt", "👩‍👩‍👧e\u0308\n".encode())
    run = tmp_path / "run"
    r = cli("train", data, "-o", run, *TINY, "--max-steps", "2")
    assert r.exit_code == 0, r.stderr
    vocab = json.loads((run / rundir.CONFIG).read_text(encoding="utf-8"))["vocab"]
    assert vocab == sorted(set("👩‍👩‍👧e\u0308")) and "\u200d" in vocab and "\u0308" in vocab
    r = cli("sample", run, "-n", "2", "--prefix", "👩\u200d", "--json")
    assert r.exit_code == 0, r.stderr
    assert all(s["word"].startswith("👩\u200d") for s in json.loads(r.stdout)["samples"])


def test_a_million_character_line_among_words_is_skipped_and_counted(tmp_path):
    data = _write(tmp_path / "in.txt", b"emma\n" + b"x" * 1_000_000 + b"\nava\n")
    run = tmp_path / "run"
    r = cli("train", data, "-o", run, "--n-layer", "1", "--n-embd", "16", "--n-head", "2", "--max-steps", "2")
    assert r.exit_code == 0, r.stderr
    assert "1 word longer than --max-len 64" in r.stderr
    config = json.loads((run / rundir.CONFIG).read_text())
    assert config["model"]["block_size"] == 5 and config["dataset"]["too_long_dropped"] == 1


def test_a_million_lines_are_prepared_quickly(tmp_path):
    from makemore.training import prepare_data

    data = tmp_path / "big.txt"
    data.write_text("".join(f"w{i:x}\n" for i in range(1_000_000)), encoding="utf-8")
    t0 = time.perf_counter()
    prepared = prepare_data(str(data), seed=1)
    encoded = prepared.encoded()
    elapsed = time.perf_counter() - t0
    assert prepared.words.lines == 1_000_000 and len(prepared.words.words) == 1_000_000
    assert len(encoded["train"]) == 998_000 and encoded["train"].tokens.dtype == torch.int32
    assert elapsed < 60, f"preparing 1M lines took {elapsed:.1f} s"


def test_huge_vocabulary_evaluates_in_bounded_batches():
    """100,000+ symbols: evaluation splits batches so the (B, T, V) logits stay under MAX_LOGITS."""
    from makemore.data import EncodedWords, Vocab
    from makemore.evaluation import MAX_LOGITS, _batch_size

    words = [WIDE[i:i + 10] for i in range(0, len(WIDE), 10)]
    vocab = Vocab.from_words(words)
    assert len(vocab) == 110_001
    encoded = EncodedWords(words, vocab)

    class Stub:
        class config:
            vocab_size = len(vocab)

    b = _batch_size(Stub, encoded, 512)
    assert 1 <= b < 512 and b * encoded.tokens.size(1) * len(vocab) <= MAX_LOGITS


# --- numerical safety ------------------------------------------------------------------------------

def test_divergence_stops_with_the_step_and_keeps_the_last_good_checkpoint(tmp_path, small_words):
    from safetensors.torch import load_file

    from makemore.models import build_model

    run = tmp_path / "run"
    r = cli("train", small_words, "-o", run, *TINY, "--learning-rate", "1e3", "--max-steps", "300",
            "--eval-interval", "1000", "--warmup-steps", "1")
    line = assert_refused(r, "diverged", "NaN or infinite at step", "--learning-rate")
    step = int(line.split("at step ")[1].split()[0])
    assert 1 <= step < 300
    # model.safetensors is the step-0 checkpoint: exactly the seeded initial weights, all finite
    config = rundir.RunDir.open(run).config
    torch.manual_seed(42)
    m = config.model
    initial = build_model(m.type, len(config.vocab) + 1, m.block_size, m.hyper).state_dict()
    best = load_file(run / rundir.BEST)
    assert best.keys() == initial.keys()
    assert all(torch.equal(best[k], initial[k]) for k in best)
    r = cli("eval", run)
    assert r.exit_code == 0, r.stderr
    events = [json.loads(x) for x in (run / rundir.METRICS).read_text().splitlines()]
    assert events[-1]["event"] == "failed" and events[-1]["step"] == step
    # info and runs say the run failed and why, where they said "not finished" and "no"
    r = cli("info", run)
    progress = next(line for line in r.stdout.splitlines() if line.startswith("progress"))
    assert f"failed: training diverged: the loss became NaN or infinite at step {step}" in progress
    r = cli("runs", tmp_path, "--json")
    assert [x["failed"] for x in json.loads(r.stdout)["runs"]] == [events[-1]["message"]]
    # initial weights that overflow: no learning rate is to blame, and no checkpoint was kept (it said both)
    r = cli("train", small_words, "-o", tmp_path / "huge", *TINY, "--init-scale", "1e300", "--max-steps", "3")
    assert_refused(r, "at step 0, before any training", "--init-scale 1e+300", "nothing was saved")
    assert not (tmp_path / "huge" / rundir.BEST).exists()


# --- untrusted files -----------------------------------------------------------------------------------

class Boom:
    """Unpickling this creates the marker file: proof that something was unpickled."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("protocol", [0, 2, 5, "torch.save"])
def test_a_pickle_is_never_unpickled(run_copy, tmp_path, protocol):
    marker = tmp_path / "unpickled"
    payload = {"wte.weight": Boom(marker)}
    if protocol == "torch.save":
        path = tmp_path / "buf"
        torch.save(payload, path)
        data = path.read_bytes()
    else:
        data = pickle.dumps(payload, protocol=protocol)
    # as the weights inside a run directory
    (run_copy / rundir.BEST).write_bytes(data)
    (run_copy / rundir.LAST).write_bytes(data)
    (run_copy / rundir.LAST_STATE).write_bytes(data)
    for args in (["sample", run_copy], ["eval", run_copy], ["train", "--resume", run_copy, "--max-steps", "40"],
                 ["score", run_copy, "emma"]):
        assert_refused(cli(*args), "model.safetensors" if args[0] != "train" else "last.state.safetensors")
    # and offered directly, under a pickle's name
    for name in ("model.pt", "weights.pkl", "model.bin"):
        (tmp_path / name).write_bytes(data)
        assert_refused(cli("sample", tmp_path / name), name, "pickle", "never unpickles")
        with pytest.raises(MakemoreError, match="pickle"):
            ckpt.load_tensors(tmp_path / name)
    assert not marker.exists()


def test_a_safetensors_file_that_starts_like_a_pickle_loads(tmp_path):
    """A header of 640 bytes makes a safetensors file start with 0x80 0x02, a pickle's first two bytes."""
    from safetensors.torch import load_file

    tensors = {"w": torch.arange(6.0).reshape(2, 3)}
    path = tmp_path / "w.safetensors"
    ckpt.save_tensors(path, tensors, {"note": ""})
    header = int.from_bytes(path.read_bytes()[:8], "little")  # grows with the note, in steps of 8
    for pad in range(640 - header - 8, 640 - header + 8):
        ckpt.save_tensors(path, tensors, {"note": "x" * pad})
        head = path.read_bytes()[:2]
        if head[0] == 0x80 and 2 <= head[1] <= 5:
            break
    else:
        pytest.fail("no padding gave a header that starts like a pickle")
    loaded, meta = ckpt.load_tensors(path)
    assert torch.equal(loaded["w"], load_file(path)["w"]) and meta["note"] == "x" * pad


def test_a_mostly_zero_count_table_is_stored_by_its_cells_and_a_damaged_one_is_refused(tmp_path):
    """A large integer tensor that is mostly zeros (an n-gram's counts) is stored as its non-zero cells and read
    back whole; whatever in that entry was damaged is refused naming the file, before a byte is allocated for it."""
    import json

    from safetensors.torch import load_file, save_file

    counts = torch.zeros(300, 400, dtype=torch.int64)
    counts[3, 7], counts[299, 399], counts[0, 0] = 5, 1, 2
    dense = torch.ones(256, 256, dtype=torch.int64)  # no zeros: stored as it is
    weights = torch.zeros(300, 400)  # floating point: stored as it is
    path = tmp_path / "n.safetensors"
    ckpt.save_tensors(path, {"counts": counts, "dense": dense, "w": weights}, {"step": 4})
    stored = load_file(path)
    assert sorted(stored) == ["counts#index", "counts#values", "dense", "w"]
    assert stored["counts#index"].tolist() == [0, 3 * 400 + 7, 299 * 400 + 399]
    loaded, meta = ckpt.load_tensors(path)
    assert loaded["counts"].equal(counts) and loaded["dense"].equal(dense) and meta == {"format": "makemore/1",
                                                                                         "step": 4}
    assert ckpt.load_metadata(path) == meta
    assert ckpt.tensor_bytes(path) >= 8 * counts.numel() + 8 * dense.numel() + 4 * weights.numel()

    def damaged(tensors, shapes):
        save_file(tensors, path, metadata={"format": "makemore/1", "sparse": json.dumps(shapes)})
        with pytest.raises(MakemoreError, match=f"^{path}: damaged sparse tensor"):
            ckpt.load_tensors(path)

    index, values = stored["counts#index"], stored["counts#values"]
    good = {"counts#index": index, "counts#values": values}
    damaged(good, {"counts": [300, 40]})  # a cell beyond the shape
    damaged(good, {"counts": [10**9, 10**6]})  # more than a sparse tensor may unpack to
    damaged(good, {"counts": [300, -400]})
    damaged(good, ["counts"])
    damaged({"counts#index": index.flip(0), "counts#values": values}, {"counts": [300, 400]})  # not ascending
    damaged({"counts#index": index[:2], "counts#values": values}, {"counts": [300, 400]})
    damaged({"counts#index": index.int(), "counts#values": values}, {"counts": [300, 400]})
    damaged({"counts#values": values}, {"counts": [300, 400]})
    damaged({**good, "counts": counts}, {"counts": [300, 400]})  # both whole and sparse


def test_the_package_never_calls_an_unpickler():
    root = Path(__file__).resolve().parents[1] / "makemore"
    for path in root.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for call in ("torch.load(", "pickle.load", "pickle.loads", "weights_only=False", "Unpickler"):
            assert call not in text, f"{path.name} calls {call}"


def test_truncated_safetensors(run_copy):
    data = (run_copy / rundir.BEST).read_bytes()
    for cut in (0, 7, 100, len(data) // 2, len(data) - 1):
        (run_copy / rundir.BEST).write_bytes(data[:cut])
        assert_refused(cli("sample", run_copy), "model.safetensors", "not a valid safetensors file")
    (run_copy / rundir.BEST).write_bytes(data[: len(data) // 2])
    assert_refused(cli("sample", run_copy), f"{len(data) // 2:,} bytes where its header declares {len(data):,}")
    with open(run_copy / rundir.BEST, "wb") as f:  # sparse: declared by its size, never read
        f.write(data)
        f.truncate(10 << 30)
    assert_refused(cli("sample", run_copy), f"{10 << 30:,} bytes where its header declares {len(data):,}")


def test_tensors_that_do_not_match_the_config(run_copy):
    from safetensors.torch import load_file, save_file

    tensors = load_file(run_copy / rundir.BEST)
    name = next(k for k, v in tensors.items() if v.dim() == 2)
    wrong = dict(tensors)
    wrong[name] = torch.zeros(3, 3)
    save_file(wrong, run_copy / rundir.BEST)
    assert_refused(cli("sample", run_copy), f"tensor {name} has shape (3, 3)")
    missing = dict(tensors)
    del missing[name]
    save_file(missing, run_copy / rundir.BEST)
    assert_refused(cli("eval", run_copy), "tensors do not match the model in config.json", f"missing {name}")
    config = json.loads((run_copy / rundir.CONFIG).read_text())
    config["model"]["hyper"]["n_embd"] = 20  # other shapes, of about the checkpoint's size
    (run_copy / rundir.CONFIG).write_text(json.dumps(config))
    save_file(tensors, run_copy / rundir.BEST)
    assert_refused(cli("sample", run_copy), "model.safetensors", "config.json implies")
    # a config describing a model the checkpoint cannot hold is refused before the model is built: 256 blocks of
    # 16,384 channels (within the options' limits) would need terabytes
    config["model"]["hyper"].update(n_layer=256, n_embd=16384, n_head=16)
    (run_copy / rundir.CONFIG).write_text(json.dumps(config))
    for command in ("sample", "eval"):
        assert_refused(cli(command, run_copy), "model.safetensors", "too few for the 824,",
                       "-parameter transformer that config.json describes")


def _edit_config(run: Path, edit) -> None:
    config = json.loads((run / rundir.CONFIG).read_text(encoding="utf-8"))
    edit(config)
    (run / rundir.CONFIG).write_text(json.dumps(config), encoding="utf-8")


BAD_CONFIGS = {
    "not JSON": (lambda c: None, "not valid JSON"),
    "model is a string": (lambda c: c.update(model="transformer"), "'model' has the wrong type"),
    "block_size is a string": (lambda c: c["model"].update(block_size="12"), "model.block_size has a bad value ('12')"),
    "block_size is huge": (lambda c: c["model"].update(block_size=10**12), "block_size"),
    "n_layer is a string": (lambda c: c["model"]["hyper"].update(n_layer="four"), "model.hyper.n_layer has a bad value ('four')"),
    "n_embd is negative": (lambda c: c["model"]["hyper"].update(n_embd=-16), "model.hyper.n_embd has a bad value (-16)"),
    "n_layer is huge": (lambda c: c["model"]["hyper"].update(n_layer=10**9), "model.hyper.n_layer has a bad value"),
    "unknown hyperparameter": (lambda c: c["model"]["hyper"].update(evil=1), "no hyperparameter 'evil'"),
    "unknown model type": (lambda c: c["model"].update(type="os.system"), "unknown model type 'os.system'"),
    "format from the future": (lambda c: c.update(format=99), "newer makemore"),
    "format is a string": (lambda c: c.update(format="1"), "'format' has the wrong type"),
    "vocab is a string": (lambda c: c.update(vocab="abc"), "'vocab' has the wrong type"),
    "vocab with duplicates": (lambda c: c.update(vocab=c["vocab"] + c["vocab"][:1]), "duplicate characters"),
    "vocab with a multi-character entry": (lambda c: c["vocab"].__setitem__(0, "ab"), "single characters"),
    "vocab with an escape character": (lambda c: c["vocab"].__setitem__(0, "\x1b"), "control character U+001B"),
    "no vocab": (lambda c: c.pop("vocab"), "missing field 'vocab'"),
}


@pytest.mark.parametrize("case", list(BAD_CONFIGS), ids=list(BAD_CONFIGS))
def test_bad_config_json(run_copy, case):
    edit, fragment = BAD_CONFIGS[case]
    if case == "not JSON":
        (run_copy / rundir.CONFIG).write_text('{"format": 1, "model": {', encoding="utf-8")
    else:
        _edit_config(run_copy, edit)
    before = {p: digest(run_copy / p) for p in (rundir.BEST, rundir.LAST, rundir.LAST_STATE)}
    for args in (["sample", run_copy], ["train", "--resume", run_copy, "--max-steps", "40"]):
        assert_refused(cli(*args), "config.json", fragment)
    assert {p: digest(run_copy / p) for p in before} == before


def test_bad_split_json(run_copy):
    (run_copy / rundir.SPLIT).write_text('{"train": "emma"}', encoding="utf-8")
    assert_refused(cli("train", "--resume", run_copy, "--max-steps", "40"), "split.json")


# --- crash safety ----------------------------------------------------------------------------------------

def test_resume_before_the_first_checkpoint_starts_over(run_copy, trained):
    """A kill between creating the run and its first save leaves config.json and split.json only."""
    for name in (rundir.BEST, rundir.LAST, rundir.LAST_STATE, rundir.METRICS, rundir.SAMPLES):
        (run_copy / name).unlink()
    r = cli("train", "--resume", run_copy)
    assert r.exit_code == 0, r.stderr
    from safetensors.torch import load_file

    # the same seed and configuration: the very same weights as the uninterrupted run
    a, b = load_file(run_copy / rundir.LAST), load_file(trained / rundir.LAST)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_what_a_killed_attempt_logged_past_the_checkpoint_is_undone_in_the_summary(run_copy):
    """Killed before its first checkpoint, a run starts over on --resume; the lines the killed process logged
    stay in metrics.jsonl, but info, runs and compare count the steps and the best val of the run that goes on."""
    for name in (rundir.BEST, rundir.LAST, rundir.LAST_STATE):
        (run_copy / name).unlink()
    killed = [json.loads(line) for line in (run_copy / rundir.METRICS).read_text().splitlines()]
    assert max(m.get("step", 0) for m in killed) == 20
    r = cli("train", "--resume", run_copy, "--max-steps", "12")
    assert r.exit_code == 0, r.stderr
    summary = rundir.RunDir(run_copy).summary()
    assert summary["steps"] == 12 and summary["best_step"] <= 12 and summary["finished"] == "max_steps"
    info = json.loads(cli("info", run_copy, "--json").stdout)
    assert info["steps"] == 12 and info["best_step"] <= 12


def test_a_best_checkpoint_saved_before_the_kill_stays_until_a_better_one(run_copy):
    """Killed between the best checkpoint and the last one at its first save, a run starts over at step 0 on
    --resume; its first evaluation replaced the best checkpoint, whatever its loss, and said nothing."""
    for name in (rundir.LAST, rundir.LAST_STATE):
        (run_copy / name).unlink()
    best = digest(run_copy / rundir.BEST)
    kept = json.loads(cli("info", run_copy, "--json").stdout)
    r = cli("train", "--resume", run_copy, "--max-steps", "12")
    assert r.exit_code == 0, r.stderr
    assert f"note: {run_copy} has no last checkpoint" in r.stderr and "trains again from step 0" in r.stderr
    assert f"(step {kept['best_step']}, val {kept['best_val_loss']:.4f}) stays until a better one" in r.stderr
    assert digest(run_copy / rundir.BEST) == best  # step 10's val is worse than step 20's
    info = json.loads(cli("info", run_copy, "--json").stdout)
    assert info["steps"] == 12 and (info["best_step"], info["best_val_loss"]) == (kept["best_step"],
                                                                                  kept["best_val_loss"])


def test_kill_between_state_and_weights_still_resumes(trained, tmp_path):
    """last.state.safetensors holds its own copy of the weights, so a newer state file with older weights
    (a kill between the two writes of one save) resumes exactly as if nothing had happened."""
    from safetensors.torch import load_file, save_file

    intact, torn = tmp_path / "intact", tmp_path / "torn"
    for run in (intact, torn):
        shutil.copytree(trained, run)
        _edit_config(run, lambda c: c["train"].update(max_steps=30))
    weights = load_file(torn / rundir.LAST)
    save_file({k: torch.zeros_like(v) for k, v in weights.items()}, torn / rundir.LAST,
              metadata={"format": "makemore/1", "step": "10"})
    for run in (intact, torn):
        r = cli("train", "--resume", run)
        assert r.exit_code == 0, r.stderr
    a, b = load_file(intact / rundir.LAST), load_file(torn / rundir.LAST)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], weights[k]) for k in a)  # it did train on


def test_kill_after_the_last_save_finishes_on_resume(run_copy):
    assert_refused(cli("train", "--resume", run_copy), "already trained 20 of 20 steps")
    lines = (run_copy / rundir.METRICS).read_text().splitlines()
    assert json.loads(lines[-1])["event"] == "finished"
    (run_copy / rundir.METRICS).write_text("\n".join(lines[:-1]) + "\n")  # killed before the final event
    # a length below the step it stands at was taken, the run "done" at step 20 of 10 (config.json said 10)
    config = (run_copy / rundir.CONFIG).read_bytes()
    assert_refused(cli("train", "--resume", run_copy, "--max-steps", "10"), "already trained 20 of 10 steps")
    assert (run_copy / rundir.CONFIG).read_bytes() == config
    r = cli("train", "--resume", run_copy)
    assert r.exit_code == 0, r.stderr
    last = json.loads((run_copy / rundir.METRICS).read_text().splitlines()[-1])
    assert last["event"] == "finished" and last["step"] == 20 and last["test_loss"] is not None


def test_a_new_length_out_of_range_on_resume_is_the_options_fault(run_copy):
    """`--resume RUN --max-steps 0` was blamed on the run's config.json, once torch was imported."""
    config = (run_copy / rundir.CONFIG).read_bytes()
    for args, said in ((["--max-steps", "0"], "--max-steps must be at least 1"),
                       (["--max-time", "-1"], "--max-time must be positive"),
                       (["--diag-interval", "0"], "--diag-interval must be at least 1")):
        r = cli("train", "--resume", run_copy, *args)
        assert r.exit_code == 2 and r.stderr == f"error: {said}\n", (args, r.stderr)
    assert (run_copy / rundir.CONFIG).read_bytes() == config


def test_torn_metrics_line_is_tolerated(run_copy):

    whole = len(list(rundir.RunDir(run_copy).metrics()))
    with open(run_copy / rundir.METRICS, "ab") as f:
        f.write(b'{"event": "step", "step": 21, "lo')  # the writer was killed mid-line
    assert len(list(rundir.RunDir(run_copy).metrics())) == whole
    assert rundir.RunDir(run_copy).summary()["steps"] == 20
    assert cli("info", run_copy).exit_code == 0
    # a resumed writer ends the torn line first, so every line it appends is whole
    _edit_config(run_copy, lambda c: c["train"].update(max_steps=30))
    assert cli("train", "--resume", run_copy).exit_code == 0
    lines = (run_copy / rundir.METRICS).read_text().splitlines()
    bad = []
    for line in lines:
        try:
            json.loads(line)
        except json.JSONDecodeError:
            bad.append(line)
    assert bad == ['{"event": "step", "step": 21, "lo']
    assert any(json.loads(x)["event"] == "started" for x in lines if x not in bad)


def test_a_full_disk_during_a_save_keeps_the_previous_checkpoint(run_copy, monkeypatch):
    _edit_config(run_copy, lambda c: c["train"].update(max_steps=40))
    before = {p: digest(run_copy / p) for p in (rundir.BEST, rundir.LAST, rundir.LAST_STATE, rundir.CONFIG)}
    real_fsync = os.fsync

    def full(fd):
        if os.path.basename(os.readlink(f"/proc/self/fd/{fd}")).endswith(".tmp"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fsync(fd)

    best = {k: v for k, v in json.loads(cli("info", run_copy, "--json").stdout).items() if k.startswith("best")}
    monkeypatch.setattr(os, "fsync", full)
    r = cli("train", "--resume", run_copy)
    assert_refused(r, "cannot write", "No space left on device", "previous version is kept")
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert {p: digest(run_copy / p) for p in before} == before
    # the evaluation whose best checkpoint could not be written is not recorded as the run's best
    after = json.loads(cli("info", run_copy, "--json").stdout)
    assert {k: v for k, v in after.items() if k.startswith("best")} == best
    assert not list(run_copy.glob(".*.tmp"))
    r = cli("train", "--resume", run_copy)  # space is back: the run continues
    assert r.exit_code == 0, r.stderr


def test_read_only_run_directory(run_copy):
    """A run directory the user cannot write to: a clear message, nothing changed (as `nobody` under root)."""
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        pytest.skip("running as root and setpriv is not available to drop privileges")
    work = Path(tempfile.mkdtemp(prefix="makemore-ro-"))
    try:
        os.chmod(work, 0o755)
        run = work / "run"
        shutil.copytree(run_copy, run)
        for p in [run, *run.iterdir()]:
            os.chmod(p, 0o755 if p.is_dir() else 0o644)
        (run / rundir.LOCK).unlink()
        if os.geteuid() != 0:
            os.chmod(run, 0o555)
        before = {p.name: digest(p) for p in run.iterdir()}
        cmd = [sys.executable, "-m", "makemore", "train", "--resume", str(run), "--max-steps", "40"]
        if os.geteuid() == 0:
            cmd = ["setpriv", "--reuid", "nobody", "--regid", "nogroup", "--clear-groups", *cmd]
        r = subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=work, timeout=60)
        if r.returncode != 2 and "Permission denied" in r.stderr and str(run) not in r.stderr:
            pytest.skip(f"`nobody` cannot run this Python: {r.stderr.strip()[:200]}")
        assert r.returncode == 2, r.stderr
        assert r.stderr.strip().splitlines() == [f"error: {run}: cannot write to the run directory "
                                                 f"(Permission denied)"]
        assert {p.name: digest(p) for p in run.iterdir()} == before
    finally:
        os.chmod(work, 0o755)
        for p in work.rglob("*"):
            if p.is_dir():
                os.chmod(p, 0o755)
        shutil.rmtree(work, ignore_errors=True)


def _train_cmd(data: Path, run: Path, steps: int, interval: int) -> list[str]:
    return [sys.executable, "-m", "makemore", "train", str(data), "-o", str(run), *TINY,
            "--max-steps", str(steps), "--eval-interval", str(interval)]


def _saved_step(run: Path) -> int | None:
    try:
        _, meta = ckpt.load_tensors(run / rundir.LAST_STATE)
    except MakemoreError:
        return None
    return meta["step"]


def _max_logged_step(run: Path) -> int:

    return max((m.get("step", 0) for m in rundir.RunDir(run).metrics() if m.get("event") in ("step", "eval")), default=0)


def _finished_event(run: Path) -> bool:

    return any(m.get("event") == "finished" for m in rundir.RunDir(run).metrics())


def test_sigkill_at_random_moments_then_resume_to_the_end(tmp_path, small_words):
    """Kill -9 once during start-up and three times at random points of training (chosen by step, so the test
    does not depend on how fast the machine is), resuming each time; the run must end complete and loadable."""
    steps, interval = 1500, 50
    run = tmp_path / "run"
    rng = random.Random(int(os.environ.get("MAKEMORE_KILL_SEED", "5")))
    targets = sorted(rng.sample(range(60, steps - 60), 3))
    kills = 0
    for attempt in range(12):
        cmd = (_train_cmd(small_words, run, steps, interval) if not rundir.RunDir.is_run(run)
               else [sys.executable, "-m", "makemore", "train", "--resume", str(run)])
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV, cwd=tmp_path)
        if kills < 4:
            if kills == 0:
                time.sleep(rng.uniform(0.3, 1.5))  # importing torch, preparing data, writing the run directory
            else:
                deadline = time.monotonic() + 120
                while proc.poll() is None and _max_logged_step(run) < targets[kills - 1]:
                    assert time.monotonic() < deadline, "training made no progress"
                    time.sleep(0.005)
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                kills += 1
                saved = _saved_step(run)
                if saved is not None:  # lost work: at most one checkpoint interval
                    assert _max_logged_step(run) - saved <= interval
                if _finished_event(run):  # killed while exiting, after its work was done
                    break
                continue
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()
        break
    assert kills >= 3, "training finished before it could be killed"
    from makemore.rundir import RunDir

    for which in ("best", "last"):
        loaded = RunDir.open(run).load_model(which)
        assert all(torch.isfinite(v).all() for v in loaded.model.state_dict().values())
    assert RunDir.open(run).load_model("last").step == steps
    assert _saved_step(run) == steps
    finished = [json.loads(x) for x in (run / rundir.METRICS).read_text().splitlines()
                if x.startswith('{"event": "finished"')]
    assert finished and finished[-1]["step"] == steps


def test_a_second_writer_is_refused_and_the_first_is_unharmed(tmp_path, small_words):
    run = tmp_path / "run"
    first = subprocess.Popen(_train_cmd(small_words, run, 100_000, 50) + ["--max-time", "4"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while not (run / rundir.LAST).exists():  # the first has its lock and has saved once
            assert first.poll() is None, first.stderr.read().decode()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert_refused(cli("train", "--resume", run, "--max-steps", "200000"), "another makemore process")
        assert_refused(cli("train", small_words, "-o", run, *TINY), "already exists")
        _, err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, err.decode()
    from makemore.rundir import RunDir

    assert RunDir.open(run).load_model("last").step == _saved_step(run) > 0
    events = [json.loads(x) for x in (run / rundir.METRICS).read_text().splitlines()]
    assert [e["event"] for e in events].count("started") == 1
    assert events[-1]["event"] == "finished"


def test_compile_may_be_turned_on_when_resuming(run_copy):
    """`--resume RUN --compile` was refused as "--compile True differs from the run's False", though compiling
    changes only the speed of the training forward (the weights and checkpoints are the plain module's)."""
    from makemore.training import check_resume

    assert check_resume(rundir.RunDir(run_copy), {"compile": True, "max_steps": 40}) == {"compile": True,
                                                                                         "max_steps": 40}
    with pytest.raises(MakemoreError, match="--n-embd 32 differs from the run's 16"):  # the rest is the run's
        check_resume(rundir.RunDir(run_copy), {"compile": True, "n_embd": 32})


def test_a_run_killed_after_its_last_save_past_its_time_finishes_on_resume(small_words, tmp_path):
    """A run's last save falls a moment after its --max-time: killed before its final event, it finishes on
    --resume (a step count past the one given is refused; its time past the budget is not)."""
    run = tmp_path / "run"
    r = cli("train", small_words, "--type", "bigram", "--max-time", "1", "-q", "-o", run)
    assert r.exit_code == 0, r.stderr
    lines = (run / rundir.METRICS).read_text().splitlines()
    finished = json.loads(lines[-1])
    assert finished["event"] == "finished" and finished["elapsed"] >= 1
    (run / rundir.METRICS).write_text("\n".join(lines[:-1]) + "\n")  # killed before the final event
    r = cli("train", "--resume", run)
    assert r.exit_code == 0, r.stderr
    last = json.loads((run / rundir.METRICS).read_text().splitlines()[-1])
    assert last["event"] == "finished" and last["step"] == finished["step"]
