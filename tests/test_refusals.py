"""Options that cannot work are refused in one line with exit code 2, before torch is imported, and before any
run directory is made or file written: model sizes, sampling options, a split, words to score, and an existing
tokenizer file."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from makemore.cli import app
from makemore.errors import MakemoreError

runner = CliRunner()

# each run in one fresh process, which must not have imported torch at the end (see _refused)
REFUSE = r"""
import json, sys
from typer.testing import CliRunner
from makemore.cli import app
runner = CliRunner()
results = []
for args in json.loads(sys.argv[1]):
    r = runner.invoke(app, args)
    results.append({"code": r.exit_code, "stderr": r.stderr, "exception": repr(r.exception)})
print(json.dumps({"results": results, "torch": "torch" in sys.modules}))
"""


def _refused(cases: list[list[str]], cwd: Path) -> list[str]:
    """Run every case in one fresh process; each must exit 2 with one line on stderr, and torch must not have
    been imported by any of them. Returns the lines."""
    done = subprocess.run([sys.executable, "-c", REFUSE, json.dumps(cases)], capture_output=True, text=True,
                          cwd=cwd, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    lines = []
    for args, r in zip(cases, report["results"], strict=True):
        assert r["code"] == 2, (args, r)
        stderr = r["stderr"].strip().splitlines()
        assert len(stderr) == 1 and "Traceback" not in r["stderr"], (args, r["stderr"])
        lines.append(stderr[0])
    assert report["torch"] is False, "a refusal imported torch"
    return lines


MODEL_CASES = [
    (["--n-embd", "0"], "--n-embd must be between 1 and 16,384, not 0"),
    (["--n-head", "0"], "--n-head must be between 1 and 1,024, not 0"),
    (["--n-layer", "0"], "--n-layer must be between 1 and 256, not 0"),
    (["--n-embd", "99999999"], "--n-embd must be between 1 and 16,384, not 99999999"),
    (["--type", "bow", "--n-embd", "-1"], "--n-embd must be between 1 and 16,384, not -1"),
    (["--type", "gru", "--n-embd2", "0"], "--n-embd2 must be between 1 and 65,536, not 0"),
    (["--type", "mlp", "--context", "0"], "--context must be between 1 and 1,024, not 0"),
    (["--n-head", "5"], "--n-embd 96 must be divisible by --n-head 5"),
    (["--dropout", "1"], "--dropout must be at least 0 and below 1, not 1"),
    (["--dropout", "-0.1"], "--dropout must be at least 0 and below 1, not -0.1"),
    (["--type", "ngram", "--smoothing", "0"], "--smoothing must be positive, not 0"),
    (["--type", "wavenet", "--context", "6"], "--context must be a power of two, at least 2, for --type wavenet"),
    (["--type", "ngram", "--context", "50"], "--context 50 is too long for an n-gram: its table would hold at least "
                                             "2^51 counts (at most 50,000,000)"),
    (["--dropout", "0.1", "--dropout-samples", "2000"], "--dropout-samples must be between 0 and 1,024, not 2000"),
    (["--type", "ngram", "--smoothing", "inf"], "--smoothing must be a finite number, not inf"),
    (["--grad-clip", "inf"], "--grad-clip must be a finite number, not inf"),
    (["--lr", "inf"], "--learning-rate must be a finite number, not inf"),
    (["--weight-decay", "inf"], "--weight-decay must be a finite number, not inf"),
    (["--max-time", "inf"], "--max-time must be a finite number, not inf"),
    (["--seed", str(1 << 64)], f"--seed must be between 0 and {(1 << 63) - 1:,}, not {1 << 64}"),
]


def test_impossible_models_are_refused_before_torch_and_before_a_run_directory(small_words, tmp_path):
    out = tmp_path / "run"
    cases = [["train", str(small_words), "--max-steps", "2", "-o", str(out), *args] for args, _ in MODEL_CASES]
    for line, (args, message) in zip(_refused(cases, tmp_path), MODEL_CASES):
        assert message in line, (args, line)
    assert not out.exists()


def test_a_block_size_out_of_range_is_refused_before_torch_and_before_reading_the_data(small_words, tmp_path):
    out = tmp_path / "run"
    cases = [["train", str(small_words), "--mode", "text", "--type", "bigram", "--block-size", size, "-o", str(out)]
             for size in ("0", "8193")]
    assert _refused(cases, tmp_path) == ["error: --block-size must be between 1 and 8192, not 0",
                                         "error: --block-size must be between 1 and 8192, not 8193"]
    assert not out.exists()


def test_the_python_api_refuses_them_alike_and_makes_no_directory(small_words, tmp_path):
    import makemore

    out = tmp_path / "run"
    with pytest.raises(MakemoreError, match="--n-embd must be between 1"):
        makemore.train(small_words, n_embd=0, max_steps=2, out=out, progress=False)
    assert not out.exists()


@pytest.fixture(scope="module")
def word_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("refusals")
    data = root / "people.txt"
    data.write_text("\n".join(["emma", "olivia", "ava", "isabella", "sophia", "mia", "amelia", "harper",
                               "evelyn", "abigail", "emily", "ella", "elizabeth", "camila", "luna"]) + "\n")
    result = runner.invoke(app, ["train", str(data), "--type", "bigram", "--max-steps", "2", "-q",
                                 "-o", str(root / "run")])
    assert result.exit_code == 0, result.output
    return root / "run"


def test_sampling_eval_and_score_refuse_bad_options_before_torch(word_run, tmp_path):
    run = str(word_run)
    (tmp_path / "adir").mkdir()
    cases = [
        (["sample", run, "-n", "0"], "-n must be between 1 and 1,000,000, not 0"),
        (["sample", run, "-n", "-1"], "-n must be between 1 and 1,000,000, not -1"),
        (["sample", run, "-n", "1000001"], "-n must be between 1 and 1,000,000, not 1,000,001"),
        (["sample", run, "--seed", str(1 << 64)], f"--seed must be between 0 and {(1 << 63) - 1:,}, not {1 << 64}"),
        (["sample", run, "-T", "inf"], "--temperature must be a finite number"),
        (["sample", run, "-T", "-1"], "--temperature must be 0 (greedy) or between 0.001 and 1,000, not -1.0"),
        (["sample", run, "-T", "nan"], "--temperature must be a finite number, not nan"),
        (["sample", run, "-T", "1e39"], "--temperature must be 0 (greedy) or between 0.001 and 1,000, not 1e+39"),
        (["sample", run, "-T", "1e-320"], "--temperature must be 0 (greedy) or between 0.001 and 1,000, not 1e-320"),
        (["sample", run, "--top-k", "0"], "--top-k must be at least 1, not 0"),
        (["sample", run, "--top-p", "2"], "--top-p must be in (0, 1], not 2"),
        (["sample", run, "--max-len", "0"], "--max-len must be at least 1"),
        (["sample", run, "--min-len", "5", "--max-len", "3"], "--min-len 5 is more than --max-len 3"),
        (["sample", run, "--prefix", "9"], "--prefix '9': character '9' is not in the model's vocabulary"),
        (["sample", run, "--prompt", "x"], "--prompt applies to text runs"),
        (["sample", run, "--length", "5"], "--length applies to text runs"),
        (["sample", run, "-O", str(tmp_path / "nowhere" / "x.txt")], "no directory"),
        (["sample", run, "-O", str(tmp_path / "adir")], "is a directory"),
        (["sample", run, "-O", str(word_run / "config.json")], "inside the run directory"),
        (["sample", run, "-O", str(word_run / "new.txt")], "inside the run directory"),
        (["sample", run, "-O", str(word_run.parent / "people.txt")], "the data"),
        (["eval", run, "--split", "foo"], "--split must be train, val or test, not 'foo'"),
        (["eval", run, str(word_run.parent / "people.txt"), "--split", "val"],
         "--split names one of the run's own parts; "),
        (["eval", run, "--skip-unknown"], "--skip-unknown applies to the words of a FILE"),
        (["score", run, "EMMA"],
         "'EMMA': characters 'E', 'M', 'A' are not in the model's vocabulary (it knows 'emma')"),
        (["score", run, "zoë!"], "'zoë!': characters 'ë', '!' are not in the model's vocabulary"),
        (["sample", run, "--prefix", "Ma"],
         "--prefix 'Ma': character 'M' is not in the model's vocabulary (it knows 'ma')"),
        (["score", run, "e" * 40], "this model handles at most"),
        (["eval", run, str(tmp_path / "latin.txt")], "latin.txt: not UTF-8 (byte 0xe9 on line 1)"),  # read first
        (["eval", run, str(tmp_path / "adir")],
         "adir: is a directory, not a file (expected a file to evaluate on)"),
    ]
    (tmp_path / "latin.txt").write_bytes(b"caf\xe9\n")
    for line, (args, message) in zip(_refused([args for args, _ in cases], tmp_path), cases):
        assert message in line, (args, line)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir", "latin.txt"]  # nothing written
    assert (word_run.parent / "people.txt").read_text().startswith("emma\nolivia\n")  # the data kept


def test_a_text_runs_sample_refuses_an_empty_prompt_and_word_options_before_torch(tmp_path):
    data = tmp_path / "play.txt"
    data.write_text("to be or not to be, that is the question.\n" * 30)
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", str(data), "--mode", "text", "--type", "bigram", "--block-size", "8",
                                 "--max-steps", "2", "-q", "-o", str(run)])
    assert result.exit_code == 0, result.output
    lines = _refused([["sample", str(run), "--prompt", ""], ["sample", str(run), "--allow-empty"],
                      ["sample", str(run), "-O", str(data)]], tmp_path)
    assert lines[0].startswith("error: --prompt is empty; give at least one character")
    assert lines[1].startswith("error: --allow-empty applies to word lists")
    assert "the data" in lines[2] and str(data) in lines[2]
    assert data.read_text().startswith("to be or not")


def test_a_text_it_cannot_score_is_refused_before_a_text_runs_model_is_loaded(tmp_path):
    """`eval RUN FILE` of a text run reads FILE before torch: an encoding, a control character, a character outside
    the model's vocabulary, a text shorter than one window (8 characters of block, 1 of target) are each refused
    in one line; a token run's file, for its encoding, binary data and, small, its length in tokens. A file it can
    score is scored (the check refuses no more)."""
    from makemore.tokenizer import Tokenizer

    data = tmp_path / "play.txt"
    data.write_text("to be or not to be, that is the question.\n" * 30)
    Tokenizer.train([data.read_text()], vocab_size=270).save(tmp_path / "tok.json")
    for run, extra in (("run", []), ("tokens", ["--tokenizer", str(tmp_path / "tok.json")])):
        result = runner.invoke(app, ["train", str(data), "--mode", "text", "--type", "bigram", "--block-size", "8",
                                     "--max-steps", "2", "-q", "-o", str(tmp_path / run), *extra])
        assert result.exit_code == 0, result.output
    files = {"latin.txt": b"to be \xe9\n", "bell.txt": b"to be or not to be, that is\x07\n",
             "upper.txt": b"To be or not to be\n",
             "short.txt": b"to be or", "fits.txt": b"to be or ", "empty.txt": b""}
    tok = Tokenizer.load(tmp_path / "tok.json")
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    run, tokens = str(tmp_path / "run"), str(tmp_path / "tokens")
    cases = [
        (["eval", run, "latin.txt"], "latin.txt: not UTF-8 (byte 0xe9 on line 1)"),
        (["eval", run, "bell.txt"], "bell.txt: control character U+0007 on line 1; expected text"),
        (["eval", run, "upper.txt"], "upper.txt: character 'T' is not in the model's vocabulary"),
        (["eval", run, "short.txt"], "short.txt: 8 characters are fewer than one window of 9"),
        (["eval", tokens, "latin.txt"], "latin.txt: not UTF-8 (byte 0xe9 on line 1)"),
        (["eval", tokens, "short.txt"],
         f"short.txt: {len(tok.encode('to be or'))} tokens are fewer than one window of 9"),
        (["eval", tokens, "empty.txt"], "empty.txt: empty file"),
    ]
    for line, (args, message) in zip(_refused([args for args, _ in cases], tmp_path), cases):
        assert message in line, (args, line)
    # a token run reads any text, as prepare does (a control character encodes), but not binary data
    scored = runner.invoke(app, ["eval", tokens, str(tmp_path / "bell.txt"), "--json"])
    first = tok.decode(tok.encode("to be or not to be, that is\x07\n")[:1])  # the first window's context
    assert scored.exit_code == 0 and json.loads(scored.stdout)["chars"] == 29 - len(first), scored.output  # the rest
    said = runner.invoke(app, ["sample", tokens, "--prompt", "to be\r\nor", "--length", "5", "--seed", "1"])
    assert said.exit_code == 0 and said.stdout.startswith("to be\nor"), said.output  # CRLF read as LF
    (tmp_path / "nul.txt").write_bytes(data.read_bytes()[:100] + b"\x00" + data.read_bytes()[100:])
    result = runner.invoke(app, ["train", str(tmp_path / "nul.txt"), "--mode", "text", "--type", "bigram",
                                 "--tokenizer", str(tmp_path / "tok.json"), "--max-steps", "2", "-q", "-o",
                                 str(tmp_path / "nul-run")])
    assert result.exit_code == 2 and "nul.txt: binary data (NUL byte on line 3); expected text" in result.stderr, \
        result.output
    assert not (tmp_path / "nul-run").exists()
    scored = runner.invoke(app, ["eval", run, str(tmp_path / "fits.txt"), "--json"])
    assert scored.exit_code == 0, scored.output
    assert json.loads(scored.stdout)["chars"] == 8  # one window of 9: each character after the first predicted
    scored = runner.invoke(app, ["eval", tokens, str(tmp_path / "upper.txt"), "--json"])
    assert scored.exit_code == 0 and json.loads(scored.stdout)["tokens"] > 0, scored.output


def test_top_k_below_one_is_refused_by_the_samplers_too(word_run):
    import makemore

    model = makemore.load(word_run)
    with pytest.raises(MakemoreError, match="--top-k must be at least 1"):
        model.sample(5, top_k=0)
    assert len(model.sample(5, top_k=2)) == 5
    # top-k 1 is taken: the likeliest character each time, one word five times; or, where this two-step bigram's
    # likeliest word does not end within its window (its weights depend on the first step's timed arithmetic),
    # the refusal of its own that says so (the word was cut at the window and returned)
    from makemore.sample import NoEnd

    try:
        greedy = model.sample(5, top_k=1)
    except NoEnd as e:
        assert str(e).startswith("under --top-k 1 every sample is the same word, and it does not end within 9 "
                                 "characters"), e
    else:
        assert len(greedy) == 5 and len(set(greedy)) == 1 and len(greedy[0]) <= 9, greedy


def test_tokenizer_train_does_not_overwrite_an_existing_file_and_wants_a_file_name(tmp_path):
    text = tmp_path / "play.txt"
    text.write_text("to be or not to be, that is the question\n" * 20)
    precious = tmp_path / "precious.json"
    precious.write_text("keep me")
    result = runner.invoke(app, ["tokenizer", "train", str(text), "--vocab-size", "260", "-o", str(precious)])
    assert result.exit_code == 2
    assert "already exists" in result.stderr and str(precious) in result.stderr
    assert "record its sha256" in result.stderr  # why it refuses where `sample -O` replaces a file
    assert precious.read_text() == "keep me"
    under_a_file = precious / "tok.json"  # refused before training, not when the file is written
    result = runner.invoke(app, ["tokenizer", "train", str(text), "--vocab-size", "260", "-o", str(under_a_file)])
    assert result.exit_code == 2 and f"{precious} is a file, not a directory" in result.stderr
    assert "trained in" not in result.output
    for directory in (f"{tmp_path / 'newdir'}/", str(tmp_path)):  # a directory, to be or that is: not a file name
        result = runner.invoke(app, ["tokenizer", "train", str(text), "--vocab-size", "260", "-o", directory])
        assert result.exit_code == 2 and f"{directory}: names a directory; give the tokenizer's file name, e.g. " \
            f"{Path(directory) / 'tokenizer.json'}" in result.stderr, result.output
    assert not (tmp_path / "newdir").exists()
    made = tmp_path / "new" / "dirs" / "tok.json"  # missing directories are made, as train -o and prepare -o do
    result = runner.invoke(app, ["tokenizer", "train", str(text), "--vocab-size", "260", "-o", str(made)])
    assert result.exit_code == 0 and made.is_file(), result.output


def test_tokenizer_train_keeps_a_file_another_process_wrote_while_it_trained(tmp_path, monkeypatch):
    """Two `tokenizer train -o tok.json` at once: the one that finished second replaced the other's file, which a
    run may already have recorded by its sha256. It is now refused, and the first file kept."""
    from makemore.tokenizer import Tokenizer

    text = tmp_path / "play.txt"
    text.write_text("to be or not to be, that is the question\n" * 20)
    out = tmp_path / "tok.json"
    train = Tokenizer.train

    def meanwhile(*args, **kwargs):
        tok = train(*args, **kwargs)
        out.write_text("the other process's")
        return tok

    monkeypatch.setattr(Tokenizer, "train", meanwhile)
    result = runner.invoke(app, ["tokenizer", "train", str(text), "--vocab-size", "260", "-o", str(out)])
    assert result.exit_code == 2 and f"{out}: already exists" in result.stderr, result.output
    assert out.read_text() == "the other process's"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["play.txt", "tok.json"]  # no temporary left
    monkeypatch.setattr(Tokenizer, "train", train)

    def no_links(src, dst):  # a FAT drive, some network mounts
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    fat = tmp_path / "fat.json"
    result = runner.invoke(app, ["tokenizer", "train", str(text), "--vocab-size", "260", "-o", str(fat)])
    assert result.exit_code == 0 and Tokenizer.load(fat).vocab_size == 260, result.output


def test_tokenizer_train_interrupted_after_saving_says_the_file_is_whole(tmp_path, monkeypatch):
    """Ctrl-C while the characters per token were measured said only "interrupted", though the tokenizer was
    saved (a rerun then found the file there); it says the file is whole, and still exits 130."""
    from makemore.tokenizer import Tokenizer

    text = tmp_path / "play.txt"
    text.write_text("to be or not to be, that is the question\n" * 20)

    def interrupted(self, texts):
        raise KeyboardInterrupt

    monkeypatch.setattr(Tokenizer, "encode_arrays", interrupted)
    out = tmp_path / "tok.json"
    result = runner.invoke(app, ["tokenizer", "train", str(text), "--vocab-size", "260", "-o", str(out)])
    assert result.exit_code == 130 and f"interrupted while measuring; {out} is saved whole" in result.stderr
    assert Tokenizer.load(out).vocab_size == 260


def test_an_output_under_a_file_and_a_missing_run_are_refused_before_torch(tmp_path):
    """`prepare -o FILE/shards` says the file is in the way (it said the shard directory could not be created);
    `makemore.load` of a missing run refuses it before torch is imported, as the commands do."""
    from makemore.tokenizer import Tokenizer

    text = tmp_path / "play.txt"
    text.write_text("to be or not to be, that is the question\n" * 20)
    Tokenizer.train([text.read_text()], vocab_size=260).save(tmp_path / "tok.json")
    lines = _refused([["prepare", str(text), "--tokenizer", "tok.json", "-o", str(text / "shards")]], tmp_path)
    assert lines[0] == f"error: {text / 'shards'}: {text} is a file, not a directory; choose another output directory"
    done = subprocess.run([sys.executable, "-c", "import sys, makemore\n"
                           "for device in ('cpu', 'bogus'):\n    try:\n        makemore.load('nope', device=device)\n"
                           "    except makemore.MakemoreError as e:\n        print(e)\nprint('torch' in sys.modules)"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert done.returncode == 0 and done.stdout.splitlines()[-1] == "False", done.stdout + done.stderr
    assert "nope" in done.stdout.splitlines()[0] and "bogus" in done.stdout.splitlines()[1]


def test_an_empty_path_or_data_name_is_refused_as_empty_not_read_as_the_current_directory(tmp_path):
    """pathlib reads "" as ".": `tokenizer train ""` learned from every file in the current directory, `-O ""` was
    called a directory, and `-o ""` a directory of other files."""
    cwd = tmp_path / "here"
    cwd.mkdir()
    (cwd / "notes.txt").write_text("not the data\n")
    cases = [
        (["tokenizer", "train", "", "--vocab-size", "300", "-o", "tok.json"], "'': an empty name for the data"),
        (["tokenizer", "train", "names", "--vocab-size", "300", "-o", ""], "--out: an empty path"),
        (["train", ""], "'': an empty name for the data"),
        (["train", "  "], "'  ': an empty name for the data"),
        (["lr-find", ""], "'': an empty name for the data"),
        (["train", "names", "-o", ""], "Invalid value for '--out' / '-o': an empty path"),
        (["sample", "-O", ""], "Invalid value for '--output' / '-O': an empty path"),
        (["eval", ""], "Invalid value for 'run': an empty path"),
        (["compare", "runs", ""], "Invalid value for 'RUN': an empty path"),
        (["prepare", "", "--tokenizer", "tok.json", "-o", "shards"], "Invalid value for 'src': an empty path"),
    ]
    lines = _refused([args for args, _ in cases], cwd)
    for (args, message), line in zip(cases, lines):
        assert message in line, (args, line)
    assert sorted(p.name for p in cwd.iterdir()) == ["notes.txt"]  # nothing made, nothing read as data


def test_a_name_a_run_could_not_record_or_print_back_is_refused_before_anything_is_made(small_words, tmp_path):
    """Bytes that are not UTF-8 in a path ended in a traceback when config.json was written, leaving a staging
    folder behind; an escape sequence in a name trained a run whose config.json makemore then called edited."""
    cwd = tmp_path / "here"
    cwd.mkdir()
    latin = os.fsdecode(b"caf\xe9.txt")
    for name in (latin, "we\x1bird.txt"):
        (cwd / name).write_bytes(small_words.read_bytes())
    cases = [
        (["train", latin, "--max-steps", "2"], "Invalid value for 'data': 'caf\\udce9.txt': a name that is not "
                                               "UTF-8 (byte 0xe9); rename it"),
        (["train", "we\x1bird.txt"], "'we\\x1bird.txt': a name holding control character U+001B; rename it"),
        (["train", str(small_words), "-o", "run\nname"], "Invalid value for '--out' / '-o': 'run\\nname': a name "
                                                         "holding control character U+000A"),
        (["tokenizer", "train", str(small_words), "--vocab-size", "260", "-o", os.fsdecode(b"t\xff.json")],
         "'t\\udcff.json': a name that is not UTF-8 (byte 0xff)"),
        (["info", "run\x1b]0;title\x07"], "Invalid value for 'run': 'run\\x1b]0;title\\x07': a name holding control"),
    ]
    lines = _refused([args for args, _ in cases], cwd)
    for (args, message), line in zip(cases, lines):
        assert message in line and "\x1b" not in line, (args, line)
    assert sorted(os.listdir(cwd)) == sorted([latin, "we\x1bird.txt"])  # nothing made
    import makemore

    for given in ({"data": latin}, {"data": str(small_words), "out": str(cwd / "run\x1b")}):
        with pytest.raises(MakemoreError, match="a name (that is not UTF-8|holding control character)"):
            makemore.train(**given, type="bigram", max_steps=1, progress=False)
    assert sorted(os.listdir(cwd)) == sorted([latin, "we\x1bird.txt"])


def test_a_run_found_under_a_name_that_cannot_be_printed_is_named_escaped(trained, tmp_path, monkeypatch):
    """A run folder named with an escape sequence or a newline, found by listing (`runs`, the latest run), reached
    the terminal raw: `runs` lists it as unreadable by its name escaped, and a command that would read it as
    the latest run refuses it."""
    import shutil

    monkeypatch.chdir(tmp_path)
    for name in ("x\x1b[31mred\nline", os.fsdecode(b"a\xffb")):
        shutil.rmtree(tmp_path / "runs", ignore_errors=True)
        shutil.copytree(trained, tmp_path / "runs" / name)
        listed = runner.invoke(app, ["runs"], env={"COLUMNS": "200"})
        assert listed.exit_code == 0 and "\x1b" not in listed.output \
            and not any("\udc80" <= c <= "\udcff" for c in listed.output), listed.output
        assert listed.stderr.splitlines()[0].startswith("skipped runs/" + ("x\\x1b[31mred\\x0aline: " if "x" in name
                                                                           else "a\\xffb: ")), listed.stderr
        as_json = json.loads(runner.invoke(app, ["runs", "--json"]).stdout)
        assert as_json["runs"] == [] and len(as_json["unreadable"]) == 1
        for args in (["sample", "-n", "1"], ["info"]):
            r = runner.invoke(app, args)
            assert r.exit_code == 2 and "a name " in r.stderr and "\x1b" not in r.stderr, r.stderr


def test_a_new_run_in_the_current_directory_is_refused_and_an_empty_folder_keeps_its_mode(small_words, tmp_path):
    """`-o .` in an empty folder read the data and then failed ("Device or resource busy"); `-o ../here` from
    inside it replaced the folder under the shell with a half-made run. A folder the run fills keeps its
    permissions (a shared folder's setgid bit: it came back 0755)."""
    here = tmp_path / "here"
    here.mkdir()
    lines = _refused([["train", str(small_words), "-o", "."], ["train", str(small_words), "-o", "../here"]], here)
    assert lines == ["error: .: the current directory, which a new run cannot be made in (it is renamed into "
                     "place); choose another directory with -o, e.g. run",
                     "error: ../here: the current directory, which a new run cannot be made in (it is renamed into "
                     "place); choose another directory with -o, e.g. ../here/run"]
    assert list(here.iterdir()) == []
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o2770)
    made = runner.invoke(app, ["train", str(small_words), "--type", "bigram", "--max-steps", "1", "-q", "-o",
                               str(shared)])
    assert made.exit_code == 0, made.output
    assert (shared / "config.json").exists() and oct(shared.stat().st_mode & 0o7777) == oct(0o2770)


def test_resume_never_writes_through_a_link_or_into_a_fifo_planted_in_a_run(word_run, tmp_path):
    """A run directory from elsewhere may hold a symbolic link where the run keeps its lock or its logs: resuming
    wrote through it (a file outside the run emptied or appended to), and a FIFO there blocked the resume."""
    import shutil

    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    plants = {".lock": lambda p: p.symlink_to(victim), "metrics.jsonl": lambda p: p.symlink_to(victim),
              "samples.txt": lambda p: p.symlink_to(tmp_path / "made-by-the-run.txt"),  # a dangling link
              "samples.txt ": lambda p: os.mkfifo(p), ".lock ": lambda p: os.mkfifo(p),
              "metrics.jsonl ": lambda p: p.mkdir()}
    cases, said = [], []
    for i, (name, plant) in enumerate(plants.items()):
        copy = tmp_path / f"copy{i}"
        shutil.copytree(word_run, copy)
        own = copy / name.strip()
        own.unlink(missing_ok=True)
        plant(own)
        kind = "a symbolic link" if own.is_symlink() else "a FIFO (named pipe)" if own.is_fifo() else "a directory"
        cases.append(["train", "--resume", str(copy), "--max-steps", "4"])
        said.append(f"error: {own}: {kind}, where the run keeps a file of its own; remove it")
    code = ("import json, sys\nfrom typer.testing import CliRunner\nfrom makemore.cli import app\n"
            "print(json.dumps([[r.exit_code, r.stderr] for r in (CliRunner().invoke(app, a) for a in "
            "json.loads(sys.argv[1]))]))")
    done = subprocess.run([sys.executable, "-c", code, json.dumps(cases)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    for (exit_code, stderr), line in zip(json.loads(done.stdout.splitlines()[-1]), said, strict=True):
        assert exit_code == 2 and stderr.strip() == line, (stderr, line)
    assert victim.read_text() == "precious\n" and not (tmp_path / "made-by-the-run.txt").exists()


def test_a_run_directory_whose_config_holds_an_impossible_model_is_refused(word_run, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(word_run, copy)
    config = json.loads((copy / "config.json").read_text())
    config["model"]["type"] = "mlp"
    config["model"]["hyper"] = {"context": 3, "n_embd": 0, "n_embd2": 8, "batchnorm": False}
    (copy / "config.json").write_text(json.dumps(config))
    line = _refused([["sample", str(copy), "-n", "2"]], tmp_path)[0]
    assert line == f"error: {copy / 'config.json'}: model.hyper: --n-embd must be between 1 and 16,384, not 0"


@pytest.mark.parametrize("edit, message", [
    (lambda c: c.update(vocab=[]), "config.json: vocabulary is empty"),
    (lambda c: c["train"].update(batch_size=10**9), "config.json: 20 symbols x 10 positions x batch 1000000000"),
    (lambda c: c["vocab"].__setitem__(c["vocab"].index("z") if "z" in c["vocab"] else -1, "!"),
     "split.json: train holds the character "),
])
def test_resume_refuses_an_edited_config_in_one_line_naming_the_file(word_run, tmp_path, edit, message):
    """An edited config.json is refused by --resume as a new run's options are: an empty vocabulary, a batch
    whose logits no memory holds, a vocabulary that no longer covers the stored split (before: a traceback, an
    allocation failure, and a message that named no file)."""
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(word_run, copy)
    config = json.loads((copy / "config.json").read_text())
    edit(config)
    (copy / "config.json").write_text(json.dumps(config))
    metrics = (copy / "metrics.jsonl").read_bytes()
    result = runner.invoke(app, ["train", "--resume", str(copy), "--max-steps", "4"])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1, result.output
    assert message in result.stderr and str(copy) in result.stderr
    assert (copy / "metrics.jsonl").read_bytes() == metrics  # nothing trained, nothing logged


def test_a_word_run_without_its_split_is_refused_not_every_word_called_new(word_run, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(word_run, copy)
    (copy / "split.json").unlink()
    for args in (["sample", str(copy), "-n", "3"], ["score", str(copy), "emma"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and f"{copy / 'split.json'}: missing" in result.stderr, (args, result.output)


def test_a_checkpoint_whose_weights_are_not_finite_is_refused_by_name(word_run, tmp_path):
    import shutil

    from makemore import checkpoint

    copy = tmp_path / "copy"
    shutil.copytree(word_run, copy)
    tensors, meta = checkpoint.load_tensors(copy / "model.safetensors")
    checkpoint.save_tensors(copy / "model.safetensors", {k: v * float("nan") for k, v in tensors.items()},
                            {k: v for k, v in meta.items() if k != "format"})
    for args in (["sample", str(copy), "-n", "2"], ["eval", str(copy)], ["score", str(copy), "emma"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert f"{copy / 'model.safetensors'}: tensor " in result.stderr and "not finite" in result.stderr


def test_lost_checkpoints_are_said_or_refused_never_passed_over(word_run, tmp_path):
    """Without model.safetensors, commands use the latest weights and say so; without last.state.safetensors a
    run that saved checkpoints cannot resume (before, it started again at step 0 without a word)."""
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(word_run, copy)
    (copy / "model.safetensors").unlink()
    result = runner.invoke(app, ["eval", str(copy)])
    assert result.exit_code == 0, result.output
    assert f"note: {copy / 'model.safetensors'} is missing; using last.safetensors (step 2)" in result.stderr
    (copy / "last.state.safetensors").unlink()
    shutil.copy(word_run / "model.safetensors", copy / "model.safetensors")
    metrics = (copy / "metrics.jsonl").read_bytes()
    result = runner.invoke(app, ["train", "--resume", str(copy), "--max-steps", "5"])
    assert result.exit_code == 2 and f"{copy / 'last.state.safetensors'}: missing" in result.stderr, result.output
    assert (copy / "metrics.jsonl").read_bytes() == metrics


def test_damaged_lines_of_metrics_are_counted_and_said(word_run, tmp_path):
    import shutil

    copy = tmp_path / "runs" / "copy"
    shutil.copytree(word_run, copy)
    with open(copy / "metrics.jsonl", "a") as f:
        f.write('garbage\n[1, 2, 3]\n{"event": "step", "step": 1, "loss": 3.0}\n')
    info = runner.invoke(app, ["info", str(copy)])
    assert f"skipped 2 damaged lines of {copy / 'metrics.jsonl'}" in " ".join(info.stdout.split())
    assert json.loads(runner.invoke(app, ["info", str(copy), "--json"]).stdout)["damaged_lines"] == 2
    runs = runner.invoke(app, ["runs", str(tmp_path / "runs")])
    assert f"{copy}: skipped 2 damaged lines of its metrics.jsonl" in " ".join(runs.stderr.split())
    assert json.loads(runner.invoke(app, ["info", str(word_run), "--json"]).stdout)["damaged_lines"] == 0


def test_a_float16_gpu_run_continues_on_a_cpu_in_float32(word_run, tmp_path):
    """A run trained on CUDA in float16 (here: its config.json says so) continues on a machine without CUDA, in
    float32, and says so (before, it was refused with advice that --resume then refused too)."""
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(word_run, copy)
    config = json.loads((copy / "config.json").read_text())
    config["train"].update(device="cuda:0", dtype="float16")
    (copy / "config.json").write_text(json.dumps(config))
    result = runner.invoke(app, ["train", "--resume", str(copy), "--max-steps", "4", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert f"note: {copy} trained in float16, which needs CUDA; it continues in float32 on cpu" in result.stderr


def test_an_output_that_is_a_file_is_named_as_one(small_words, tmp_path):
    target = tmp_path / "notes.txt"
    target.write_text("mine")
    result = runner.invoke(app, ["train", str(small_words), "--max-steps", "2", "-o", str(target)])
    assert result.exit_code == 2
    assert f"{target}: is a file, not a run directory" in result.stderr and target.read_text() == "mine"


def test_token_commands_refuse_fifos_devices_and_deep_json_in_one_line_without_waiting(tmp_path):
    text = tmp_path / "play.txt"
    text.write_text("to be or not to be, that is the question\n" * 20)
    tok = tmp_path / "tok.json"
    assert runner.invoke(app, ["tokenizer", "train", str(text), "--vocab-size", "260", "-o", str(tok)]).exit_code == 0
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    special = "not a regular file (expected a text file or a directory of text files); save it to a file first"
    cases = [
        (["tokenize", "fifo", "x"], "error: fifo: a FIFO (named pipe), not a regular file (expected a "
                                    "tokenizer.json file); save it to a file first"),
        (["tokenize", "deep.json", "x"], "error: deep.json: tokenizer JSON nested too deeply"),
        (["tokenize", str(tok), "--file", "fifo"],
         "error: fifo: a FIFO (named pipe), not a regular file (expected a text file); save it to a file first"),
        (["prepare", "fifo", "--tokenizer", str(tok), "-o", "s"], f"error: fifo: a FIFO (named pipe), {special}"),
        (["prepare", "/dev/zero", "--tokenizer", str(tok), "-o", "s"], f"error: /dev/zero: a device, {special}"),
        (["prepare", str(text), "--tokenizer", "fifo", "-o", "s"],
         "error: fifo: a FIFO (named pipe), not a regular file (expected a tokenizer.json file); save it to a "
         "file first"),
        (["tokenizer", "train", "fifo", "--vocab-size", "260", "-o", "t.json"],
         f"error: fifo: a FIFO (named pipe), {special}"),
        (["tokenizer", "train", "/dev/zero", "--vocab-size", "260", "-o", "t.json"],
         f"error: /dev/zero: a device, {special}"),
    ]
    assert _refused([args for args, _ in cases], tmp_path) == [line for _, line in cases]
    assert not (tmp_path / "s").exists() and not (tmp_path / "t.json").exists()


def test_an_unreadable_path_is_refused_in_one_line_not_a_usage_box(tmp_path, monkeypatch):
    """Click's own readability check would print a boxed usage error; the commands refuse it in one line."""
    text = tmp_path / "play.txt"
    text.write_text("to be or not to be, that is the question\n" * 20)
    tok = tmp_path / "tok.json"
    assert runner.invoke(app, ["tokenizer", "train", str(text), "--vocab-size", "260", "-o", str(tok)]).exit_code == 0
    locked = tmp_path / "locked"
    locked.write_text("{}")
    real_open, real_access = os.open, os.access

    def denied(path, *args, **kwargs):  # what a file without read permission gives anyone but root
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", denied)
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: Path(path) != locked and real_access(path, mode, **kw))
    for args in (["tokenize", str(locked), "x"], ["tokenize", str(tok), "--file", str(locked)],
                 ["prepare", str(locked), "--tokenizer", str(tok), "-o", str(tmp_path / "s")],
                 ["prepare", str(text), "--tokenizer", str(locked), "-o", str(tmp_path / "s")]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert result.stderr == f"error: {locked}: permission denied\n", (args, result.stderr)


def test_the_learning_rate_sweep_refuses_before_torch_and_bounds_its_batch(small_words, tmp_path):
    lines = _refused([["lr-find", str(small_words), "--type", "bigram", "-b", "0"],
                      ["lr-find", str(small_words), "--type", "bigram", "--seed", str(1 << 64)]], tmp_path)
    assert lines == ["error: --batch-size must be at least 1", f"error: --seed must be between 0 and {(1 << 63) - 1:,}, not {1 << 64}"]
    r = CliRunner().invoke(app, ["lr-find", str(small_words), "--type", "bigram", "--steps", "5", "-b", "1000000000"])
    assert r.exit_code == 2 and "needs about" in r.stderr and "GiB for the logits of one step" in r.stderr


def test_eval_refuses_what_the_run_and_the_file_system_say_before_torch(word_run, tmp_path):
    cases = [["eval", str(word_run), str(tmp_path / "missing.txt")], ["eval", str(word_run), str(tmp_path)]]
    assert _refused(cases, tmp_path) == [
        f"error: {tmp_path / 'missing.txt'}: no such file (expected a file to evaluate on)",
        f"error: {tmp_path}: is a directory, not a file (expected a file to evaluate on)"]


def test_resume_refuses_an_output_directory_other_than_the_run(word_run, tmp_path):
    line = _refused([["train", "--resume", str(word_run), "-o", str(tmp_path / "other"), "--max-steps", "9"]],
                    tmp_path)[0]
    assert line == f"error: -o {tmp_path / 'other'} does not apply with --resume: the run continues in {word_run}"
    assert not (tmp_path / "other").exists()


@pytest.mark.parametrize("env, message", [
    ({"RANK": "0", "WORLD_SIZE": "abc", "LOCAL_RANK": "0"}, "WORLD_SIZE='abc' in the environment: expected a whole"),
    ({"RANK": "5", "WORLD_SIZE": "2", "LOCAL_RANK": "0"}, "RANK=5 WORLD_SIZE=2 LOCAL_RANK=0: expected 0 <= RANK"),
    ({"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0", "MASTER_ADDR": "", "MASTER_PORT": ""},
     "WORLD_SIZE > 1 without MASTER_ADDR and MASTER_PORT"),
])
def test_a_broken_distributed_environment_is_one_line(small_words, tmp_path, env, message):
    result = subprocess.run([sys.executable, "-m", "makemore", "train", str(small_words), "--type", "bigram",
                             "--max-steps", "2", "-o", str(tmp_path / "run")], capture_output=True, text=True,
                            cwd=tmp_path, timeout=60, env={**os.environ, **env})
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: {message}"), result.stderr
    assert not (tmp_path / "run").exists()


def test_a_preset_unknown_or_misapplied_and_a_negative_merge_count_are_refused_before_torch(small_words, tmp_path):
    tok = tmp_path / "tok.json"
    tok.write_text("{}")
    text = tmp_path / "play.txt"
    text.write_text("to be or not to be, that is the question\n" * 30)
    lines = _refused([["train", str(small_words), "--preset", "nope"],
                      ["tokenize", "--merges", str(tok), "-n", "-1"],
                      # a known preset: what it sets up is checked before torch too, and its CUDA warning waits
                      ["train", str(tmp_path / "nope.txt"), "--preset", "gpt2-124m"],
                      ["train", str(text), "--mode", "text", "--preset", "gpt2-124m", "--learning-rate", "-1"],
                      ["train", str(small_words), "--preset", "gpt2-124m"]], tmp_path)
    assert lines[0].startswith("error: --preset nope: unknown") and lines[1] == "error: -n must be at least 0, not -1"
    assert lines[2] == f"error: {tmp_path / 'nope.txt'}: no such file"  # not that it reads as a word list
    assert lines[3].startswith("error: --learning-rate must be")
    assert lines[4].startswith("error: --preset gpt2-124m is a recipe for text or token shards")


def test_a_text_run_of_one_character_of_context_reads_back(tmp_path):
    text = tmp_path / "play.txt"
    text.write_text("to be or not to be, that is the question\n" * 30)
    run = tmp_path / "run"
    r = CliRunner().invoke(app, ["train", str(text), "--mode", "text", "--type", "bigram", "--block-size", "1",
                                 "--max-steps", "3", "-o", str(run), "-q"])
    assert r.exit_code == 0, r.output
    info = CliRunner().invoke(app, ["info", str(run), "--json"])
    assert info.exit_code == 0 and json.loads(info.stdout)["block_size"] == 1, info.output
    sample = CliRunner().invoke(app, ["sample", str(run), "--prompt", "to", "--length", "5"])
    assert sample.exit_code == 0 and sample.stdout.startswith("to"), sample.output


@pytest.fixture(scope="module")
def char_text_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("text-refusals")
    text = root / "play.txt"
    text.write_text("to be or not to be, that is the question\n" * 30)
    r = runner.invoke(app, ["train", str(text), "--mode", "text", "--type", "bigram", "--block-size", "4",
                            "--max-steps", "2", "-o", str(root / "run"), "-q"])
    assert r.exit_code == 0, r.output
    return root / "run"


def test_a_text_runs_sampling_options_are_refused_before_torch(char_text_run, tmp_path):
    run = str(char_text_run)
    cases = [
        (["sample", run, "--prompt", "to bΩ"], "--prompt 'to bΩ': character 'Ω' is not in the model's vocabulary"),
        (["sample", run, "--length", "-1"], "--length must be between 0 and 1,000,000 characters, not -1"),
        (["sample", run, "--length", "1000001"], "--length must be between 0 and 1,000,000 characters, not 1,000,001"),
        (["sample", run, "-n", "1000", "--length", "200000", "--json"],
         "-n × --length is 200,000,000 characters; with --json or -O all are held until written, at most 100,000,000"),
    ]
    for line, (args, message) in zip(_refused([args for args, _ in cases], tmp_path), cases):
        assert message in line, (args, line)


def test_what_a_new_runs_data_and_output_make_impossible_is_refused_before_torch(char_text_run, tmp_path):
    """A missing file, a text too short for one window in each part, a tokenizer beside token shards, a broken
    tokenizer file and an output that exists: each refused before torch, and nothing written."""
    short = tmp_path / "short.txt"
    short.write_text("to be or not to be\n" * 20)  # 380 characters: 342 train, 38 val
    shards = tmp_path / "shards"
    shards.mkdir()
    (shards / "index.json").write_text("{}")
    broken = tmp_path / "broken.json"
    broken.write_text('{"x": 1}')
    cut = tmp_path / "cut.txt"  # a character the file's end cuts: its first byte named, not 0x00
    cut.write_bytes(b"emma\nbob\nann\xe2\x82")
    cases = [
        (["train", str(cut), "--mode", "text"], f"{cut}: not UTF-8 (byte 0xe2 on line 3)"),
        (["train", str(tmp_path / "gone.txt"), "--mode", "text"], f"{tmp_path / 'gone.txt'}: no such file"),
        (["train", str(tmp_path / "gone.txt"), "--tokenizer", str(broken)], "no such file"),
        (["train", str(short), "--mode", "text", "--block-size", "64"],
         "the val part (38 characters of 380; the first 90% train, the last 10% validate) is shorter than one "
         "window of 65 characters"),
        (["train", str(short), "--mode", "text", "--type", "mlp", "--block-size", "32", "--context", "8"],
         "shorter than one window of 40 characters"),
        (["lr-find", str(short), "--mode", "text", "--block-size", "64"], "shorter than one window of 65 characters"),
        (["train", str(shards), "--tokenizer", str(broken)], "token shards carry their tokenizer; drop --tokenizer"),
        (["train", str(tmp_path), "--tokenizer", str(broken)],
         f"is a directory, not a file; a directory of text files trains as token shards: `makemore prepare {tmp_path}"),
        (["train", str(char_text_run)], "is a run directory, not data; continue it with `makemore train --resume"),
        # the folder a run is in (`makemore train runs`): said for what it is, not taken for token shards to prepare
        (["train", str(char_text_run.parent)], f"{char_text_run.parent}: is a folder of runs, not data; `makemore "
                                               f"runs {char_text_run.parent}` lists them"),
        (["tui", str(char_text_run.parent), "--max-steps", "3"], "is a folder of runs, which the TUI lists to open or "
                                                               "train beside; --max-steps applies only when training"),
        (["train", str(short), "--tokenizer", str(broken)], "not a tokenizer.json file"),
        (["train", str(short), "--mode", "text", "--block-size", "4", "-o", str(char_text_run)], "already exists"),
        (["train", str(short), "--mode", "text", "--max-len", "5"],  # was trained with --max-len unused, unsaid
         f"--max-len applies to word lists; {short} trains as one text (its context is --block-size)"),
        (["train", str(shards), "--max-len", "5"], "--max-len applies to word lists"),
        (["train", str(shards), "--type", "mlp"], f"{shards}: token shards train models that read a whole window"),
        (["lr-find", str(shards), "--type", "wavenet"], "token shards train models that read a whole window"),
    ]
    before = sorted(p.name for p in tmp_path.iterdir())
    for line, (args, message) in zip(_refused([args for args, _ in cases], tmp_path), cases):
        assert message in line, (args, line)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no run directory made


SMALL = {"transformer": {"n_layer": 1, "n_head": 2, "n_embd": 8}, "mlp": {"context": 4, "n_embd2": 8},
         "wavenet": {"context": 4, "n_embd2": 8}, "ngram": {"context": 3}, "bigram": {}, "rnn": {"n_embd2": 8},
         "bow": {"n_embd2": 8}}


@pytest.mark.parametrize("family", sorted(SMALL))
def test_the_early_window_check_refuses_what_the_batches_refuse(family, tmp_path):
    """check_request, before torch, from the options and the file's length alone, refuses exactly the texts that
    the batches built for the model refuse, around the shortest text that fits: a text of two-byte characters,
    so that bytes and characters differ."""
    from makemore.models import build_model
    from makemore.training import Request, check_request, prepare_data

    block = 8
    outcomes = []
    for n in range(80, 140):
        path = tmp_path / f"{n}.txt"
        path.write_text(("aé\n" * n)[:n], encoding="utf-8")
        request = Request(data=str(path), model_type=family, mode="text", block_size=block, hyper=SMALL[family])
        early = late = None
        try:
            hyper, cfg = check_request(request)
        except MakemoreError as e:
            early = str(e)
            hyper, cfg = check_request(dataclasses.replace(request, data=None))  # the options alone
        prepared = prepare_data(str(path), 42, mode="text")
        try:
            prepared.batches(build_model(family, len(prepared.vocab), block, hyper), block, cfg)
        except MakemoreError as e:
            late = str(e)
        assert early == late, (family, n)
        outcomes.append(early is None)
    assert not outcomes[0] and outcomes[-1]  # the range holds the boundary: refused below it, accepted above


def test_a_text_is_checked_before_torch_and_read_once_more_to_encode_it(tmp_path, monkeypatch):
    """The scan that refuses a text before torch is the one reading it uses: the file is read through twice in
    all (a scan, then the encoding), not three times. A file changed since its scan is scanned again."""
    from makemore import text as textmode

    path = tmp_path / "play.txt"
    path.write_text("to be or not to be\n" * 20)
    passes = []
    chunks = textmode._decoded_chunks
    monkeypatch.setattr(textmode, "_decoded_chunks", lambda p: (passes.append(p), chunks(p))[1])
    scan = textmode.check_text(path, 16)
    assert len(passes) == 1 and scan.length == 380
    corpus = textmode.read_text(path)
    assert len(passes) == 2 and len(corpus) == 380 and corpus.sha256 == scan.sha256
    path.write_text("to be or not to be?\n" * 20)  # another size: scanned afresh, not taken from the last scan
    corpus = textmode.read_text(path)
    assert len(passes) == 4 and len(corpus) == 400 and "?" in corpus.chars
    with pytest.raises(MakemoreError, match="the val part .* shorter than one window of 64"):
        textmode.check_text(path, 64)


def test_train_refuses_a_bad_byte_in_a_text_before_torch(small_words, tmp_path):
    """--mode text: a control character deep in the file is refused with its line before torch is imported."""
    path = tmp_path / "bad.txt"
    path.write_bytes(b"to be or not to be\n" * 5000 + b"that is the \x07question\n")
    [line] = _refused([["train", str(path), "--mode", "text", "-o", str(tmp_path / "run")]], tmp_path)
    assert line == f"error: {path}: control character U+0007 on line 5001; expected text", line
    assert not (tmp_path / "run").exists()


def test_a_device_that_cannot_work_is_refused_before_torch_and_before_the_data(word_run, small_words, tmp_path):
    """A misspelt device always; CUDA when torch is a CPU build (its version says so) and MPS off macOS: by every
    command that takes --device, before the data is read or torch imported."""
    from importlib import metadata

    run = str(word_run)
    devices = ["tpu"] + (["cuda:1"] if metadata.version("torch").endswith("+cpu") else []) + \
        (["mps"] if sys.platform != "darwin" else [])
    cases = []
    for device in devices:
        cases += [["train", str(small_words), "--device", device], ["sample", run, "--device", device],
                  ["eval", run, "--device", device], ["train", "--resume", run, "--device", device],
                  ["lr-find", str(small_words), "--device", device],
                  ["train", str(small_words), "--preset", "gpt2-124m", "--device", device]]
    lines = _refused(cases, tmp_path)
    for args, line in zip(cases, lines):
        device = args[-1]
        expected = {"tpu": "unknown device 'tpu'; use auto, cpu, cuda, cuda:N or mps",
                    "cuda:1": "device 'cuda:1': CUDA is not available on this machine (torch ",
                    "mps": "device 'mps': MPS is not available on this machine"}[device]
        assert line.startswith("error: " + expected), (args, line)
    sampled = runner.invoke(app, ["sample", run, "-n", "2", "--device", "cpu:0"])  # torch's name of the CPU
    assert sampled.exit_code == 0, sampled.output


def test_runs_counts_a_run_whose_config_is_no_file_as_unreadable(word_run, tmp_path):
    """A folder whose config.json is a FIFO is a run that cannot be read, listed as such (before: "no runs")."""
    import shutil

    root = tmp_path / "runs"
    shutil.copytree(word_run, root / "good")
    (root / "odd").mkdir()
    os.mkfifo(root / "odd" / "config.json")
    result = runner.invoke(app, ["runs", str(root)])
    assert result.exit_code == 0, result.output
    said = " ".join(result.stderr.split())
    assert "1 run in" in said and "1 unreadable" in said and f"skipped {root / 'odd'}:" in said


def test_runs_keeps_each_line_whole_in_a_pipe_and_says_a_stopped_run_was_stopped(word_run, tmp_path):
    """Piped, `runs` writes one line per run, its name whole (before: folded at 80 columns and padded), and a run
    stopped with Ctrl-C shows as stopped, not done."""
    import shutil

    root = tmp_path / "runs"
    name = "names-mlp-batchnorm-context5-a-long-experiment-name"
    shutil.copytree(word_run, root / name)
    lines = (root / name / "metrics.jsonl").read_text().splitlines()
    finished = json.loads(lines[-1])
    assert finished["event"] == "finished"
    lines[-1] = json.dumps({**finished, "reason": "stopped"})
    (root / name / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    result = runner.invoke(app, ["runs", str(root)], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    row = next(line for line in result.stdout.splitlines() if name in line)
    assert row.split()[0] == name and row.split()[-1] == "stopped" and row == row.rstrip()


@pytest.mark.parametrize("under", ["run", "a/b"])
def test_an_output_under_a_file_is_refused_in_one_line(tmp_path, under):
    """`-o FILE/run` ended in a traceback (FileExistsError, or NotADirectoryError a level deeper)."""
    (tmp_path / "words.txt").write_text("emma\nolivia\nava\n")
    blocker = tmp_path / "empty.txt"
    blocker.write_text("")
    out = blocker / under
    result = runner.invoke(app, ["train", str(tmp_path / "words.txt"), "--type", "bigram", "--max-steps", "1",
                                 "-o", str(out)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"{blocker} is a file, not a directory" in result.stderr
    assert blocker.read_text() == "" and sorted(p.name for p in tmp_path.iterdir()) == ["empty.txt", "words.txt"]


def test_what_a_word_list_makes_impossible_is_refused_before_torch(tmp_path):
    """An n-gram's table over the file's vocabulary too large, a file `lr-find` cannot read: refused once the
    words are read, before torch is imported (2 s more, before)."""
    words = tmp_path / "words.txt"
    words.write_text("emma\nolivia\nava\n")
    latin = tmp_path / "latin.txt"
    latin.write_bytes(b"caf\xe9\n")
    cases = [
        (["train", str(words), "--type", "ngram", "--context", "9", "-q"],
         "a context of 9 over 8 symbols needs a table of 8^10 = 1,073,741,824 counts"),  # 7 letters + start/stop
        (["lr-find", str(latin)], f"{latin}: not UTF-8 (byte 0xe9 on line 1)"),
        (["lr-find", str(tmp_path / "gone.txt")], "no such file"),
    ]
    for line, (args, message) in zip(_refused([args for args, _ in cases], tmp_path), cases):
        assert message in line, (args, line)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latin.txt", "words.txt"]


def test_a_text_runs_recorded_place_and_split_are_checked_for_what_they_are(char_text_run, tmp_path):
    """A device or a folder where the text was is not "gone"; a boundary or count below zero is no split (info
    showed characters [0, -1,000,000,000,000) as the training part)."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(char_text_run, run)
    config = json.loads((run / "config.json").read_text())
    for path, says in (("/dev/zero", "/dev/zero: not a file, where config.json names the text"),
                       (str(tmp_path), f"{tmp_path}: not a file, where config.json names the text")):
        (run / "config.json").write_text(json.dumps({**config, "dataset": {**config["dataset"], "path": path}}))
        r = runner.invoke(app, ["eval", str(run)])
        assert r.exit_code == 2 and says in r.stderr, r.output
    for key, value in (("boundary", -10**12), ("val", "many"), ("train", True)):
        (run / "config.json").write_text(json.dumps({**config, "split": {**config["split"], key: value}}))
        r = runner.invoke(app, ["info", str(run)])
        assert r.exit_code == 2 and f"field split.{key} must be a count, not {json.dumps(value)}" in r.stderr, \
            r.output
    (run / "config.json").write_text(json.dumps(config))
    assert runner.invoke(app, ["info", str(run)]).exit_code == 0
