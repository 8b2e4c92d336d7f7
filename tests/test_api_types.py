"""The Python API refuses a wrong-typed or out-of-range argument as the command line would, in one MakemoreError
line, before anything is written: never a TypeError from deep inside, never a run that stores the wrong type."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import makemore
from makemore.errors import MakemoreError

WORDS = ["emma", "olivia", "ava", "isabella", "sophia", "mia", "amelia", "harper", "evelyn", "abigail", "emily",
         "ella", "luna", "sofia", "avery", "mila", "aria", "chloe", "grace", "nora"]
TINY_TEXT = {"type": "transformer", "n_layer": 1, "n_embd": 16, "n_head": 2}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("data")
    (folder / "words.txt").write_text("\n".join(WORDS) + "\n", encoding="utf-8")
    (folder / "play.txt").write_text("ROMEO: but soft, what light through yonder window breaks.\n" * 40,
                                     encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def word_model(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "words"
    return makemore.train(data / "words.txt", type="bigram", max_steps=2, out=out, progress=False).model


@pytest.fixture(scope="module")
def text_model(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "text"
    return makemore.train(data / "play.txt", mode="text", block_size=8, max_steps=2, out=out, progress=False,
                          **TINY_TEXT).model


def _files(run: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(run)): (p.stat().st_size, p.stat().st_mtime_ns) for p in run.rglob("*")}


@pytest.mark.parametrize("given, message", [
    ({"max_steps": "5"}, "--max-steps must be an integer, not '5'"),
    ({"max_steps": 5.5}, "--max-steps must be an integer, not 5.5"),
    ({"max_steps": True}, "--max-steps must be an integer, not True"),
    ({"batch_size": "4"}, "--batch-size must be an integer, not '4'"),
    ({"batch_size": 4.5}, "--batch-size must be an integer, not 4.5"),
    ({"learning_rate": "0.1"}, "--learning-rate must be a number, not '0.1'"),
    ({"max_time": "5"}, "--max-time must be a number"),
    ({"ema": "0.5"}, "--ema must be a number, not '0.5'"),
    ({"max_len": "64"}, "--max-len must be an integer, not '64'"),
    ({"max_len": 10.5}, "--max-len must be an integer, not 10.5"),
    ({"block_size": "8"}, "--block-size must be an integer or None, not '8'"),
    ({"dropout": "0.1"}, "--dropout must be a number, not '0.1'"),
    ({"smoothing": "x"}, "--smoothing must be a number, not 'x'"),
    ({"batchnorm": "yes"}, "--batchnorm must be True or False, not 'yes'"),
    ({"diagnostics": "yes"}, "--diagnostics must be True or False, not 'yes'"),
    ({"compile": "no"}, "--compile must be True or False, not 'no'"),
    ({"progress": "no"}, "progress must be True or False, not 'no'"),
    ({"device": 0}, "--device must be a string, not 0"),
    ({"out": 5}, r"--out must be a path \(str or os.PathLike\) or None, not 5"),
    ({"resume": 5}, r"--resume must be a path \(str or os.PathLike\) or None, not 5"),
    ({"type": 3}, "--type must be a string or None, not 3"),
    ({"seed": "1"}, "--seed must be an integer, not '1'"),
    ({"seed": 1.5}, "--seed must be an integer, not 1.5"),
    ({"seed": None}, "--seed must be an integer, not None"),
    ({"seed": 2 ** 63}, "--seed must be between 0 and 9,223,372,036,854,775,807"),
    ({"seed": -1}, "--seed must be between 0 and 9,223,372,036,854,775,807"),
    ({"nonsense": 1}, "unknown option 'nonsense'"),
    # settings only the API takes, refused as the command line's are (before: a ZeroDivisionError, a negative
    # learning rate, NaN train losses, or a refusal after the run directory was written)
    ({"log_interval": 0}, "log_interval must be at least 1"),
    ({"min_lr_ratio": -1.0}, "min_lr_ratio must be between 0 and 1"),
    ({"min_lr_ratio": 5.0}, "min_lr_ratio must be between 0 and 1"),
    ({"eval_words": 0}, "eval_words must be at least 1"),
    ({"num_samples": -1}, "num_samples must be between 0 and 1,000"),
    ({"temperature": -1.0}, r"temperature \(of the samples at each evaluation\) must be 0 \(greedy\) or between"),
    ({"temperature": 5000.0}, r"temperature \(of the samples at each evaluation\) must be 0 \(greedy\) or"),
])
def test_train_refuses_a_wrong_type_before_writing_anything(data, tmp_path, monkeypatch, given, message):
    """Each keyword's type is checked first: the run directory (by default under ./runs) never appears."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MakemoreError, match=message):
        makemore.train(data / "words.txt", **{"type": "bigram", "max_steps": 2, "progress": False, **given})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args, given, message", [
    (("3",), {}, "-n must be an integer, not '3'"),
    ((1.5,), {}, "-n must be an integer, not 1.5"),
    ((None,), {}, "-n must be an integer, not None"),
    ((True,), {}, "-n must be an integer, not True"),
    ((2,), {"temperature": "1"}, "--temperature must be a number, not '1'"),
    ((2,), {"temperature": None}, "--temperature must be a number, not None"),
    ((2,), {"top_k": "3"}, "--top-k must be an integer or None, not '3'"),
    ((2,), {"top_k": 1.5}, "--top-k must be an integer or None, not 1.5"),
    ((2,), {"top_k": True}, "--top-k must be an integer or None, not True"),
    ((2,), {"top_p": "0.5"}, "--top-p must be a number or None, not '0.5'"),
    ((2,), {"prefix": 123}, "--prefix must be a string, not 123"),
    ((2,), {"prefix": None}, "--prefix must be a string, not None"),
    ((2,), {"prefix": ["a"]}, r"--prefix must be a string, not \['a'\]"),
    ((2,), {"min_len": "3"}, "--min-len must be an integer, not '3'"),
    ((2,), {"min_len": 1.5}, "--min-len must be an integer, not 1.5"),
    ((2,), {"max_len": 2.5}, "--max-len must be an integer or None, not 2.5"),
    ((2,), {"tags": "yes"}, "tags must be True or False, not 'yes'"),
    ((2,), {"seed": "1"}, "--seed must be an integer, not '1'"),
    ((2,), {"seed": None}, "--seed must be an integer, not None"),
    ((2,), {"seed": 1.5}, "--seed must be an integer, not 1.5"),
    ((2,), {"seed": 2 ** 70}, "--seed must be between 0 and 9,223,372,036,854,775,807"),
    ((2,), {"seed": 2 ** 63}, "--seed must be between 0 and 9,223,372,036,854,775,807"),
    ((2,), {"nonsense": 1}, "unknown option 'nonsense'"),
    ((2, 3), {}, "sample: too many positional arguments"),
])
def test_sample_refuses_a_wrong_type(word_model, args, given, message):
    with pytest.raises(MakemoreError, match=message):
        word_model.sample(*args, **given)


@pytest.mark.parametrize("args, given, message", [
    ((123, 5), {}, "--prompt must be a string or None, not 123"),
    (("a", "5"), {}, "--length must be an integer, not '5'"),
    (("a", 1.5), {}, "--length must be an integer, not 1.5"),
    (("a", -1), {}, "--length must be between 0 and 1,000,000 characters, not -1"),  # as `makemore sample --length -1`
    (("a", 5), {"top_k": "3"}, "--top-k must be an integer or None, not '3'"),
    (("a", 5), {"seed": 2 ** 63}, "--seed must be between 0 and 9,223,372,036,854,775,807"),
])
def test_continue_text_refuses_what_the_command_line_refuses(text_model, args, given, message):
    with pytest.raises(MakemoreError, match=message):
        text_model.continue_text(*args, **given)


@pytest.mark.parametrize("words, message", [
    ([123], "score takes words as strings, not 123"),
    ([None], "score takes words as strings, not None"),
    (["emma", 5], "score takes words as strings, not 5"),
    (b"emma", "score takes a word or a list of words, not b'emma'"),
    (None, "score takes a word or a list of words, not None"),
    (123, "score takes a word or a list of words, not 123"),
])
def test_score_refuses_what_is_not_words(word_model, words, message):
    with pytest.raises(MakemoreError, match=message):
        word_model.score(words)


def test_score_strips_the_white_space_around_a_word_as_a_word_list_is_read(word_model):
    assert word_model.score([" emma\t", "ab "]) == word_model.score(["emma", "ab"])


def test_a_text_model_refuses_word_list_calls(text_model):
    """score and --skip-unknown mean words of a list; a text run has none (the CLI's score says so too)."""
    with pytest.raises(MakemoreError, match="a text run; score scores words of a word list"):
        text_model.score(["ab"])
    with pytest.raises(MakemoreError, match="--skip-unknown applies to word lists"):
        text_model.evaluate(skip_unknown=True)


def test_evaluate_takes_what_eval_takes(word_model, data):
    """A built-in dataset by name, as `train` and `eval` take it; a file with a split, or --skip-unknown with no
    file, refused as `eval` refuses them (before: the split was ignored, the name was "no such file")."""
    on_builtin = word_model.evaluate("names", skip_unknown=True)
    assert on_builtin["on"].endswith("names.txt") and on_builtin["words"] > 1000
    assert on_builtin["perplexity"] == pytest.approx(math.exp(on_builtin["loss"]))  # as a text model's result has
    with pytest.raises(MakemoreError, match="--split names one of the run's own parts"):
        word_model.evaluate(data / "words.txt", split="val")
    with pytest.raises(MakemoreError, match="--skip-unknown applies to the words of a FILE"):
        word_model.evaluate(skip_unknown=True)


def test_the_package_lists_its_api():
    assert {"train", "load", "lr_find", "Model", "Run", "MakemoreError"} <= set(dir(makemore))


@pytest.mark.parametrize("given, message", [
    ({"file": 5}, r"file must be a path \(str or os.PathLike\) or None, not 5"),
    ({"split": 1}, "--split must be a string or None, not 1"),
    ({"skip_unknown": "yes"}, "--skip-unknown must be True or False, not 'yes'"),
])
def test_evaluate_refuses_a_wrong_type(word_model, given, message):
    with pytest.raises(MakemoreError, match=message):
        word_model.evaluate(**given)


@pytest.mark.parametrize("given, message", [
    ({"steps": "5"}, "--steps must be an integer, not '5'"),
    ({"steps": 2.5}, "--steps must be an integer, not 2.5"),
    ({"min": "0.1"}, "--min must be a number, not '0.1'"),
    ({"batch_size": "4"}, "--batch-size must be an integer or None, not '4'"),
    ({"batch_size": 2.5}, "--batch-size must be an integer or None, not 2.5"),
    ({"type": 3}, "--type must be a string, not 3"),
    ({"seed": 2 ** 70}, "--seed must be between 0 and 9,223,372,036,854,775,807"),
    ({"seed": 2 ** 63}, "--seed must be between 0 and 9,223,372,036,854,775,807"),
    ({"nonsense": 1}, "unknown option 'nonsense'"),
])
def test_lr_find_refuses_a_wrong_type(data, given, message):
    with pytest.raises(MakemoreError, match=message):
        makemore.lr_find(data / "words.txt", **{"type": "mlp", "steps": 3, **given})


@pytest.mark.parametrize("args, given, message", [
    ((5,), {}, r"run_dir must be a path \(str or os.PathLike\) or None, not 5"),
    ((None,), {"device": 0}, "--device must be a string, not 0"),
])
def test_load_refuses_a_wrong_type(args, given, message):
    with pytest.raises(MakemoreError, match=message):
        makemore.load(*args, **given)


@pytest.fixture
def word_run(data, tmp_path) -> Path:
    return makemore.train(data / "words.txt", type="bigram", max_steps=2, out=tmp_path / "run", progress=False).run_dir


@pytest.mark.parametrize("given, message", [
    ({"seed": 7}, "--seed 7 differs from the run's 42"),
    ({"max_len": 10}, "--max-len 10 differs from the run's 64"),
    ({"mode": "text"}, "--mode text differs from the run's words"),
    ({"init_scale": 2.0}, "--init-scale 2 differs from the run's 1 "),  # as typed (it said 2.0 and 1.0)
    ({"block_size": 10}, "--block-size applies to --mode text; .* learned a word list"),
    ({"out": "elsewhere"}, r"out does not apply with resume \(the run continues in "),
])
def test_resume_refuses_what_cannot_change(word_run, tmp_path, monkeypatch, given, message):
    """As `makemore train --resume RUN --seed 7`: silently continuing with the run's own value would mislead."""
    monkeypatch.chdir(tmp_path)
    before = _files(word_run)
    with pytest.raises(MakemoreError, match=message):
        makemore.train(resume=word_run, max_steps=3, progress=False, **given)
    assert _files(word_run) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_resume_refuses_a_text_runs_other_block_size(text_model):
    with pytest.raises(MakemoreError, match="--block-size 10 differs from the run's 8"):
        makemore.train(resume=text_model.run_dir, max_steps=3, block_size=10, progress=False)


def test_resume_accepts_the_runs_own_values(word_run):
    """Repeating what the run was trained with, its own directory as out included, continues it."""
    run = makemore.train(resume=str(word_run), out=word_run, seed=42, max_len=64, mode="words", max_steps=3,
                         progress=False)
    assert run.step == 3 and run.run_dir == word_run


def test_resuming_a_run_another_process_trains_changes_nothing(data, tmp_path):
    """makemore.train(resume=...) read the run and saved its new length into config.json before the lock refused
    it: the run another process was training ended with the settings of a refused call."""
    from makemore.rundir import RunDir

    out = tmp_path / "run"
    makemore.train(data / "words.txt", type="bigram", max_steps=2, out=out, progress=False)
    with RunDir(out).lock():  # what a training process holds (flock on a second open file refuses alike)
        before = _files(out)
        with pytest.raises(MakemoreError, match="another makemore process is training into this run"):
            makemore.train(resume=out, max_steps=999, progress=False)
        assert _files(out) == before


def test_a_family_named_in_any_case_is_stored_by_its_name(data, tmp_path):
    """type="MLP" made a run of type "MLP", which `--resume RUN --type mlp` then refused as another type."""
    run = makemore.train(data / "words.txt", type="MLP", max_steps=2, out=tmp_path / "run", progress=False)
    assert makemore.load(run.run_dir).type == "mlp"
    assert makemore.train(resume=run.run_dir, type="mlp", max_steps=3, progress=False).step == 3


def test_an_out_that_is_taken_is_refused_before_torch_in_the_apis_words(data, tmp_path):
    """makemore.train(out=...) on a run that exists was refused only after torch and the data were read, telling
    a Python caller to use -o and `makemore train --resume`."""
    import json
    import subprocess
    import sys

    out = tmp_path / "run"
    makemore.train(data / "words.txt", type="bigram", max_steps=2, out=out, progress=False)
    code = ("import json, sys, makemore\n"
            "try:\n"
            f"    makemore.train({str(data / 'words.txt')!r}, type='bigram', out={str(out)!r}, progress=False)\n"
            "except makemore.MakemoreError as e:\n"
            "    print(json.dumps({'error': str(e), 'torch': 'torch' in sys.modules}))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    report = json.loads(done.stdout)
    assert report == {"error": f"{out}: already exists; continue it with makemore.train(resume={str(out)!r}) or "
                               f"choose another directory with out=", "torch": False}, report


def test_a_name_the_system_refuses_is_a_makemore_error(data, tmp_path):
    """A path too long for the file system raised a bare OSError from deep inside the API, where the command line
    said one line: the API now says the same line."""
    long = str(tmp_path / ("x" * 300))
    for call in (lambda: makemore.load(long), lambda: makemore.train(long, type="bigram", max_steps=1)):
        with pytest.raises(MakemoreError, match="File name too long"):
            call()


def test_sample_counts_what_it_drew_again_as_the_command_line_does(word_model):
    """``Model.sample`` dropped the counts `makemore sample` prints (and took no ``allow_empty``)."""
    import json

    from typer.testing import CliRunner

    from makemore.cli import app

    words = word_model.sample(20, max_len=2, unique=True, seed=1)
    assert isinstance(words, list) and len(words) == 20 and all(len(w) <= 2 for w in words)
    r = CliRunner().invoke(app, ["sample", str(word_model.run_dir), "-n", "20", "--max-len", "2", "--unique",
                                 "--seed", "1", "--json"], prog_name="makemore")
    said = json.loads(r.stdout)
    assert [s["word"] for s in said["samples"]] == list(words)
    assert (words.too_long, words.repeated) == (said["too_long"], said["repeated"]) and words.too_long > 0
    empty = word_model.sample(200, max_len=1, allow_empty=True, seed=1)
    assert "" in empty and "" not in word_model.sample(200, max_len=1, seed=1)  # empty words only when allowed


def test_a_call_leaves_torchs_generator_and_matmul_precision_as_it_found_them(data, tmp_path):
    """train seeded torch's global generator with the run's seed and left the precision `auto` (or the call)
    chose: after it, a notebook's own torch.rand drew the same numbers every time, its matmuls in TF32 on CUDA."""
    import torch

    before = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision("high")
        torch.manual_seed(7)
        expected = torch.rand(3)
        torch.manual_seed(7)
        makemore.train(data / "words.txt", type="mlp", max_steps=2, out=tmp_path / "run", progress=False,
                       matmul_precision="medium")
        assert torch.get_float32_matmul_precision() == "high" and torch.equal(torch.rand(3), expected)
        torch.manual_seed(7)
        makemore.lr_find(data / "words.txt", type="bigram", steps=5, seed=3)
        assert torch.equal(torch.rand(3), expected)
    finally:
        torch.set_float32_matmul_precision(before)


def test_a_call_that_sets_nothing_puts_nothing_back(word_model, monkeypatch):
    """Putting back the generator after every call (score, sample, load) wound back a run training in another
    thread: only train and lr_find, which set it, put it back."""
    import torch

    touched = []
    monkeypatch.setattr(torch, "set_rng_state", lambda state: touched.append("rng"))
    monkeypatch.setattr(torch, "set_float32_matmul_precision", lambda p: touched.append("precision"))
    word_model.score(["emma"])
    word_model.sample(3)
    makemore.load(word_model.run_dir)
    assert touched == []


def test_train_takes_tensorboard_as_the_command_line_does(data, tmp_path):
    """The README says the API takes the command line's options as keywords; tensorboard=True was refused as an
    unknown option."""
    pytest.importorskip("tensorboard")
    run = makemore.train(data / "words.txt", type="bigram", max_steps=2, out=tmp_path / "run", progress=False,
                         tensorboard=True)
    assert any(p.name.startswith("events.out.tfevents") for p in (run.run_dir / "tensorboard").iterdir())
    with pytest.raises(MakemoreError, match="must be True or False"):
        makemore.train(data / "words.txt", type="bigram", max_steps=2, out=tmp_path / "other", tensorboard="yes")


def test_a_notebooks_numbers_and_a_home_directory_are_taken_as_the_command_line_takes_them(data, tmp_path,
                                                                                          monkeypatch):
    """NumPy's integers and float32 were refused ("-n must be an integer, not np.int64(2)"), a sweep over
    np.arange failed; out="~/runs/x" wrote a run under a directory named "~" in the working directory, and
    load("~/runs/x") looked there too."""
    np = pytest.importorskip("numpy")
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)
    run = makemore.train(data / "words.txt", type="bigram", max_steps=np.int64(3), out="~/runs/x", progress=False,
                         learning_rate=np.float32(0.1), seed=np.int32(5))
    assert run.run_dir == home / "runs" / "x" and not (tmp_path / "~").exists()
    config = (home / "runs" / "x" / "config.json").read_text()
    assert '"max_steps": 3,' in config and '"seed": 5' in config  # plain numbers, as the command line's
    model = makemore.load("~/runs/x")
    words = model.sample(np.int64(4), temperature=np.float32(0.5), seed=np.uint8(3))
    assert len(words) == 4 and words == model.sample(4, temperature=0.5, seed=3)
    assert model.evaluate(split="val")["loss"] > 0
    with pytest.raises(MakemoreError, match=r"^-n must be an integer, not np.float64\(4.5\)$"):
        model.sample(np.float64(4.5))  # a real that is not an integer is still refused


def test_a_runs_diagnostics_once_its_directory_is_gone_say_so(data, tmp_path):
    """Run.diagnostics() and latest_diagnostics() on a deleted run answered [] and None: "it recorded none"."""
    import shutil

    run = makemore.train(data / "words.txt", type="mlp", max_steps=4, out=tmp_path / "run", progress=False,
                         diagnostics=True, diag_interval=2)
    assert len(run.diagnostics()) >= 2 and run.latest_diagnostics() is not None
    shutil.rmtree(tmp_path / "run")
    for call in (run.diagnostics, run.latest_diagnostics):
        with pytest.raises(MakemoreError, match="no such run directory"):
            call()
    with pytest.raises(MakemoreError, match=r"^which must be a string, not None$"):
        makemore.load(tmp_path, which=None)
