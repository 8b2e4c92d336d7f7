"""What a new user met on the command line, each fixed the way a user expects: eval reports what it skipped,
samples are never empty or cut short, piped output is never wrapped, the options are named as typed, and the
help and the README say what the code does."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from makemore.cli import app

runner = CliRunner()
PEOPLE = ["anna", "bob", "carla", "dave", "emma", "fred", "gina", "hank", "ivy", "jon", "kate", "liam", "mona",
          "nick", "olga", "paul", "quin", "rosa", "sam", "tina", "uma", "vic", "wendy", "xena", "yuri", "zoe"]


def makemore(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 120):
    env = {**os.environ, "COLUMNS": "200", **(env or {})}
    return subprocess.run([sys.executable, "-m", "makemore", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=timeout)


def one_line_error(result) -> str:
    stderr = result.stderr if isinstance(result, subprocess.CompletedProcess) else result.stderr
    code = result.returncode if isinstance(result, subprocess.CompletedProcess) else result.exit_code
    assert code == 2, (code, stderr)
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A bigram trained for a few steps on people.txt (a file name that is no built-in dataset's)."""
    root = tmp_path_factory.mktemp("fixes")
    (root / "people.txt").write_text("\n".join(PEOPLE) + "\n")
    result = makemore("train", str(root / "people.txt"), "--type", "bigram", "--max-steps", "30", "-q", cwd=root)
    assert result.returncode == 0, result.stderr
    return root / "runs" / "people-bigram"


def block_size(run: Path) -> int:
    return json.loads((run / "config.json").read_text())["model"]["block_size"]


# --- eval: what is skipped, and why -----------------------------------------------------------------

def test_eval_refuses_unknown_characters_naming_them_and_the_way_out(run, tmp_path):
    f = tmp_path / "mixed.txt"
    f.write_text("anna\nQuin\nbob\n")
    message = one_line_error(runner.invoke(app, ["eval", str(run), str(f)]))
    assert "'Q'" in message and "1 of 3 words" in message and "--skip-unknown scores the other 2 words" in message
    # words too long for the model are skipped either way: the way out says how many it would score
    f.write_text("anna\nQuin\n" + "ab" * block_size(run) + "\n")
    message = one_line_error(runner.invoke(app, ["eval", str(run), str(f)]))
    assert message.endswith(f"--skip-unknown scores the other 1 word (1 longer than its {block_size(run) - 1} "
                            f"characters are skipped either way)"), message
    f.write_text("Quin\n" + "ab" * block_size(run) + "\n")
    assert one_line_error(runner.invoke(app, ["eval", str(run), str(f)])).endswith(
        "no other word can be scored (1 longer than its " f"{block_size(run) - 1} characters are skipped either way)")


def test_eval_skips_and_counts_each_reason_and_scores_the_rest(run, tmp_path):
    longest = block_size(run) - 1
    kept = ["anna", "bob", "emma", "zoe"]
    too_long = "ab" * longest  # only characters the model knows, but longer than its window
    lines = [*kept, too_long, "Quin", "bob", "", "  "]
    f = tmp_path / "mixed.txt"
    f.write_text("\n".join(lines) + "\n")
    result = runner.invoke(app, ["eval", str(run), str(f), "--skip-unknown", "--json"])
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)
    assert got["skipped"] == {"too_long": 1, "unknown_characters": 1, "duplicates": 1, "empty_lines": 2}
    assert got["words"] == len(kept) and got["lines"] == len(lines) and got["unknown_chars"] == ["Q"]
    # the loss is that of the words kept, evaluated on their own
    alone = tmp_path / "kept.txt"
    alone.write_text("\n".join(kept) + "\n")
    reference = json.loads(runner.invoke(app, ["eval", str(run), str(alone), "--json"]).stdout)
    assert got["loss"] == pytest.approx(reference["loss"], rel=1e-12)
    assert "skipped" not in json.dumps(reference["skipped"]) and not any(reference["skipped"].values())
    text = runner.invoke(app, ["eval", str(run), str(f), "--skip-unknown"])
    assert text.exit_code == 0
    assert f"{len(kept)} words" in text.stdout
    report = text.stderr.strip()
    assert len(report.splitlines()) == 1
    for part in (f"1 word longer than the model's {longest} characters", "1 word with characters outside its "
                 "vocabulary ('Q')", "1 duplicate", "2 empty lines", f"{len(lines)} lines"):
        assert part in report, report


# --- sample: never empty unless asked, never cut short --------------------------------------------

def _bigram(vocab, rows: dict[str, dict[str, float]], block: int = 6):
    """A bigram whose next-token logits are given per previous symbol ('.' is start/stop); the rest -30."""
    from makemore.models import build_model

    model = build_model("bigram", len(vocab), block, {})
    index = {".": 0, **vocab.stoi}
    with torch.no_grad():
        model.logits.fill_(-30.0)
        for prev, nexts in rows.items():
            for nxt, logit in nexts.items():
                model.logits[index[prev], index[nxt]] = logit
    return model.eval()


def test_draw_never_returns_an_empty_word_unless_allowed_and_scores_the_model_own_probability():
    from makemore.data import EncodedWords, Vocab
    from makemore.evaluation import word_nll
    from makemore.sample import draw, tag

    vocab = Vocab(list("ab"))
    # stop first is by far the likeliest: ~88% of unconstrained samples would be empty
    model = _bigram(vocab, {".": {".": 3.0, "a": 0.0, "b": 0.0}, "a": {".": 0.0, "a": 0.0}, "b": {".": 0.0}})
    words = draw(model, vocab, 200, generator=torch.Generator().manual_seed(0)).words
    assert all(g.word for g in words)
    nll = word_nll(model, EncodedWords([g.word for g in words], vocab))
    for g, per_char in zip(words, nll):  # the model's probability, not the one conditioned on non-empty
        assert g.logprob == pytest.approx(-per_char * (len(g.word) + 1), abs=1e-4)
    allowed = draw(model, vocab, 200, allow_empty=True, generator=torch.Generator().manual_seed(0)).words
    empty = sum(not g.word for g in allowed)
    assert 120 < empty < 200  # ~176 expected
    assert tag("", {""}, set()) == "empty"


def test_max_len_drops_and_counts_words_that_had_not_ended_instead_of_cutting_them():
    from makemore.data import Vocab
    from makemore.sample import draw

    vocab = Vocab(list("ab"))
    # 'a' always stops after one character; 'b' never stops before the model's window (5 characters)
    model = _bigram(vocab, {".": {"a": 0.0, "b": 0.0}, "a": {".": 5.0}, "b": {"b": 5.0}})
    drawn = draw(model, vocab, 100, max_len=3, generator=torch.Generator().manual_seed(0))
    assert [g.word for g in drawn.words] == ["a"] * 100  # never "bbb"
    assert 50 < drawn.too_long < 160  # about as many b-words as a-words were drawn and dropped
    # the model's window (the longest word it was trained on) binds as --max-len does: a word still going there
    # is drawn again and counted, never cut short (it was stopped there, uncounted: 8% of an n-gram's names)
    whole = draw(model, vocab, 100, generator=torch.Generator().manual_seed(0))
    assert {g.word for g in whole.words} == {"a"} and 50 < whole.too_long < 160
    stopped = draw(model, vocab, 100, generator=torch.Generator().manual_seed(0), stop_at_window=True).words
    assert {g.word for g in stopped} == {"a", "bbbbb"}  # (the trainer's previews' fallback)
    from makemore.errors import MakemoreError

    only_b = _bigram(vocab, {".": {"b": 0.0}, "b": {"b": 5.0}})
    # (the count asked of draw is not named: `sample --unique` asks it for more words than the user asked for)
    with pytest.raises(MakemoreError, match=r"^[\d,]+ samples did not end within --max-len 2, and 0 did; raise"):
        draw(only_b, vocab, 3, max_len=2, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("rule, options", [("--temperature 0", {"temperature": 0.0}), ("--top-k 1", {"top_k": 1})])
def test_greedy_sampling_gives_up_at_once_on_a_word_that_does_not_end_within_max_len(rule, options):
    """The likeliest character at each step makes one word; drawing it again cannot end it sooner."""
    from makemore.data import Vocab
    from makemore.errors import MakemoreError
    from makemore.sample import draw

    vocab = Vocab(list("ab"))
    model = _bigram(vocab, {".": {"a": 0.0, "b": 1.0}, "a": {".": 5.0}, "b": {"b": 5.0, ".": 0.0}})  # "bbbbb"
    calls = []
    decode = model.decode
    model.decode = lambda *a: calls.append(1) or decode(*a)
    with pytest.raises(MakemoreError, match=f"^under {rule} every sample is the same word, and it does not end "
                                            r"within --max-len 3; raise --max-len, or sample without"):
        draw(model, vocab, 5, max_len=3, **options)
    assert len(calls) == 4  # one batch: three characters and the fourth step that would go on
    with pytest.raises(MakemoreError, match=f"^under {rule} every sample is the same word, and it does not end "
                                            r"within 5 characters \(the longest word this model was trained on\); "
                                            f"sample without {rule}$"):
        draw(model, vocab, 2, max_len=5, **options)  # the window binds where --max-len does not


def test_sample_cli_no_empty_words_and_novelty_over_non_empty_words(run):
    plain = runner.invoke(app, ["sample", str(run), "-n", "300", "--temperature", "3", "--json"])
    assert plain.exit_code == 0, plain.output
    assert all(s["word"] for s in json.loads(plain.stdout)["samples"])
    result = runner.invoke(app, ["sample", str(run), "-n", "300", "--temperature", "3", "--allow-empty", "--json"])
    data = json.loads(result.stdout)
    empty = [s for s in data["samples"] if not s["word"]]
    assert empty and all(s["tag"] == "empty" for s in empty)  # near-uniform at T=3: ~1 in 27 is empty
    words = [s for s in data["samples"] if s["word"]]
    assert data["novelty"] == pytest.approx(sum(s["tag"] == "new" for s in words) / len(words))
    text = runner.invoke(app, ["sample", str(run), "-n", "300", "--temperature", "3", "--allow-empty"])
    assert f"{len(empty)} empty word" in text.stderr and "not counted in the novelty" in text.stderr


@pytest.mark.parametrize("args, message", [
    (lambda block: ["--min-len", str(block)], lambda block: f"at most {block - 1} characters"),
    (lambda block: ["--min-len", "5", "--max-len", "3"], lambda block: "--min-len 5 is more than --max-len 3"),
    (lambda block: ["--max-len", "0"], lambda block: "--max-len must be at least 1"),
    (lambda block: ["--prefix", "anna", "--max-len", "3"], lambda block: "--max-len is 3"),
])
def test_impossible_lengths_are_refused_in_one_line(run, args, message):
    block = block_size(run)
    assert message(block) in one_line_error(runner.invoke(app, ["sample", str(run), *args(block)]))


def test_a_max_len_beyond_the_models_longest_word_is_said_to_limit_nothing(run):
    block = block_size(run)
    result = runner.invoke(app, ["sample", str(run), "-n", "3", "--max-len", str(block)])
    assert result.exit_code == 0, result.output
    assert f"note: --max-len {block} is more than this model's longest word ({block - 1} characters): it limits " \
        "nothing" in result.stderr
    within = runner.invoke(app, ["sample", str(run), "-n", "3", "--max-len", str(block - 1)])
    assert within.exit_code == 0 and "limits nothing" not in within.stderr
    refused = runner.invoke(app, ["sample", str(run), "--max-len", str(block), "--prefix", "Z"])
    assert "not in the model's vocabulary" in one_line_error(refused)  # a refusal alone: no note before it


def test_sample_max_len_reports_the_samples_drawn_again(run):
    result = runner.invoke(app, ["sample", str(run), "-n", "50", "--max-len", "2", "--temperature", "2", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert all(1 <= len(s["word"]) <= 2 for s in data["samples"]) and data["too_long"] > 0
    text = runner.invoke(app, ["sample", str(run), "-n", "50", "--max-len", "2", "--temperature", "2"])
    assert f"drawn again: {data['too_long']} samples longer than --max-len 2" in text.stderr


def test_sample_new_only_and_unique_count_what_they_passed_over(run):
    """--new-only and --unique draw again where a sample is in the run's words or already drawn: counted and said,
    as --max-len's are (before, nothing said how many were passed over)."""
    args = ["sample", str(run), "-n", "20", "--max-len", "1", "--new-only", "--unique"]
    data = json.loads(runner.invoke(app, [*args, "--json"]).stdout)
    assert {s["tag"] for s in data["samples"]} == {"new"} and len({s["word"] for s in data["samples"]}) == 20
    assert data["repeated"] > 0  # 20 different letters of 26: some drawn twice on the way
    text = runner.invoke(app, args).stderr  # the same seed: the same draws
    said = [f"{data['too_long']} samples longer than --max-len 1"] + (
        [f"{data['not_new']} samples not new (--new-only)"] if data["not_new"] else [])
    assert "drawn again: " + ", ".join(said + [f"{data['repeated']} repeats (--unique)"]) in text
    plain = json.loads(runner.invoke(app, ["sample", str(run), "-n", "30", "--temperature", "0.6", "--json"]).stdout)
    said = runner.invoke(app, ["sample", str(run), "-n", "30", "--temperature", "0.6"]).stderr
    assert plain["not_new"] == plain["repeated"] == 0 and "not new" not in said and "repeat" not in said
    # (a word still going at the model's window, its longest word, is drawn again too: counted and said)
    window = json.loads((run / "config.json").read_text())["model"]["block_size"] - 1
    assert plain["too_long"] > 0 and f"drawn again: {plain['too_long']} samples longer than the model's " \
        f"{window} characters · " in said, said


# --- off a terminal, lines stay whole ---------------------------------------------------------------

def test_piped_output_is_never_wrapped_or_padded(tmp_path):
    deep = tmp_path / ("a-directory-whose-name-alone-is-longer-than-most-terminals-" + "x" * 60)
    deep.mkdir()
    data = deep / "people.txt"
    data.write_text("\n".join(PEOPLE) + "\n")
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}  # as `| tee log` sees it
    result = subprocess.run([sys.executable, "-m", "makemore", "train", str(data), "--type", "bigram",
                             "--max-steps", "5", "-o", str(tmp_path / "run")],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    first = result.stderr.splitlines()[0]
    assert first.startswith(str(data)) and first.endswith("train/val/test"), result.stderr
    info = subprocess.run([sys.executable, "-m", "makemore", "info", str(tmp_path / "run")],
                          capture_output=True, text=True, env=env, timeout=60)
    dataset = [line for line in info.stdout.splitlines() if line.startswith("dataset")]
    assert len(dataset) == 1 and str(data) in dataset[0] and dataset[0].endswith("duplicates dropped")
    for line in (result.stdout + result.stderr + info.stdout).splitlines():
        assert line == line.rstrip(), repr(line)


# --- Ctrl-C: saved, then exit 130 --------------------------------------------------------------------
# (tests/test_cli.py::test_ctrl_c_stops_cleanly_and_saves)


# --- options named as typed; --type in any case --------------------------------------------------

def test_tui_names_the_option_as_the_user_typed_it(run):
    message = one_line_error(runner.invoke(app, ["tui", str(run), "--type", "mlp"]))
    assert "--type applies only when training" in message and "--model-type" not in message
    typed = one_line_error(makemore("tui", str(run), "--lr", "0.1"))
    assert "--lr applies only when training" in typed


def test_type_in_any_case_is_accepted(tmp_path):
    data = tmp_path / "people.txt"
    data.write_text("\n".join(PEOPLE) + "\n")
    result = runner.invoke(app, ["train", str(data), "--type", "BiGram", "--max-steps", "2", "-q",
                                 "-o", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "run" / "config.json").read_text())["model"]["type"] == "bigram"


@pytest.mark.parametrize("typed, suggestion", [("transfomer", "transformer"), ("lsmt", "lstm"), ("MPL", "mlp")])
def test_a_misspelt_type_is_refused_with_the_closest_name_without_importing_torch(typed, suggestion):
    code = ("import sys; from makemore.cli import app\n"
            f"sys.argv = ['makemore', 'train', 'names', '--type', {typed!r}]\n"
            "try:\n    app()\nexcept SystemExit as e:\n    code = e.code\n"
            "assert 'torch' not in sys.modules, 'imported torch'\n"
            "sys.exit(code)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    message = one_line_error(result)
    assert f"did you mean {suggestion}?" in message and repr(typed) in message


# --- score defaults to the latest run; a dataset name points to its runs -----------------------------

def test_score_defaults_to_the_latest_run(run, monkeypatch):
    monkeypatch.chdir(run.parent.parent)
    latest = runner.invoke(app, ["score", "emma", "zzzz", "--json"])
    named = runner.invoke(app, ["score", str(run), "emma", "zzzz", "--json"])
    assert latest.exit_code == 0, latest.stderr
    assert json.loads(latest.stdout) == json.loads(named.stdout)
    assert [r["word"] for r in json.loads(latest.stdout)] == ["emma", "zzzz"]
    assert "no such run directory" in one_line_error(runner.invoke(app, ["score", "runs/nope", "emma"]))
    (run.parent.parent / "emma").mkdir(exist_ok=True)  # a folder that happens to share a word's name is not a run
    beside = runner.invoke(app, ["score", "emma", "zzzz", "--json"])
    assert beside.exit_code == 0 and json.loads(beside.stdout) == json.loads(latest.stdout), beside.stderr


def test_a_dataset_name_points_to_the_runs_trained_on_it(run):
    root = run.parent.parent
    message = one_line_error(makemore("sample", "people", cwd=root))
    assert message == "error: people: no such run directory; runs trained on people: runs/people-bigram"
    the_file = one_line_error(makemore("sample", "people.txt", cwd=root))  # the word list itself
    assert "not a directory" in the_file and the_file.endswith("runs trained on people.txt: runs/people-bigram")
    other = root / "elsewhere"
    other.mkdir(exist_ok=True)
    (other / "people.txt").write_text("x\n")  # the same name, another file: no run was trained on it
    assert "runs trained" not in one_line_error(makemore("sample", str(other / "people.txt"), cwd=root))
    builtin = one_line_error(makemore("sample", "names", cwd=root))
    assert "no such run directory" in builtin and "makemore train names" in builtin


# --- the help -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("command", [[], ["train"], ["sample"], ["eval"], ["tui"]])
def test_help_shows_no_type_after_flags_and_separates_option_names(command):
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "<bool>" not in result.output
    assert re.search(r"--help\s+Show this message", result.output)
    if command == ["train"]:
        assert "--learning-rate, --lr" in result.output and re.search(r"--compile\s+torch\.compile", result.output)
        assert "<int>" in result.output  # options that take a value still show its type
    if command == ["sample"]:
        assert re.search(r"--new-only\s+Only words", result.output)


def test_the_commands_list_shows_each_summary_as_one_flowing_line():
    """A docstring's line breaks do not break the summary in the commands' list (they did in Typer's rich mode)."""
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "250"})
    assert result.exit_code == 0
    assert re.search(r"held-out set; from a text run, continue a prompt", result.output)
    assert re.search(r"exponential grid, loss against log10\(lr\)", result.output)


# --- messages -----------------------------------------------------------------------------------------

def test_counts_in_the_right_number_and_a_tiny_list_says_why_val_equals_train(tmp_path):
    from makemore.data import split_sizes

    data = tmp_path / "three.txt"
    data.write_text("ann\nbob\n\nbob\ncarl\n")
    result = runner.invoke(app, ["train", str(data), "--type", "bigram", "--max-steps", "2",
                                 "-o", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    first = result.stderr.splitlines()[0]
    assert "3 words (dropped 1 duplicate, 1 empty line); split 3/0/0" in first
    enough = int(re.search(r"no validation or test split for fewer than (\d+) words", first).group(1))
    assert 0 in split_sizes(enough - 1) and 0 not in split_sizes(enough)
    assert "training words" in first and "best checkpoint" in first
    info = runner.invoke(app, ["info", str(tmp_path / "run")])  # and info says so beside the best val
    best = next(line for line in info.stdout.splitlines() if line.startswith("best val"))
    assert best.endswith(" · on the training words (no val split)"), best


# --- the README says what the code does ---------------------------------------------------------------

def test_readme_command_list_matches_the_code():
    import typer.main

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = readme.split("## Commands", 1)[1].split("```")[1]
    group = typer.main.get_command(app)
    checked = 0
    command = None
    for line in block.splitlines():
        m = re.match(r"makemore ([\w-]+)", line)  # lr-find: a name with a hyphen
        command = group.commands[m.group(1)] if m else command
        if command is None:
            continue
        params = {o: p for p in command.params for o in (*p.opts, *p.secondary_opts)}
        for option, value in re.findall(r"\[(-[-\w]+)(?: ([^\]\s]+))?\]", line):
            assert option in params, f"README names {option} for `makemore {command.name}`, which has no such option"
            default = params[option].default
            # a number is the default the README promises; a letter (N, FILE) is a placeholder
            if re.fullmatch(r"\d+(\.\d+)?", value) and isinstance(default, (int, float)):
                assert float(value) == default, f"README: {option} {value}; the code's default is {default}"
                checked += 1
    assert checked >= 2  # -n 20 and --temperature 1.0 at least
    assert "--set" not in readme


def test_a_batch_larger_than_the_training_words_is_noted(tmp_path):
    """--batch-size 100,000 on a few thousand words trained without a word (it draws with replacement), its
    steps minutes long: now said before the first step. A batch within the words says nothing."""
    words = tmp_path / "people.txt"
    words.write_text("\n".join(PEOPLE) + "\n")
    big = runner.invoke(app, ["train", str(words), "--type", "bigram", "--max-steps", "1", "--batch-size", "500",
                              "-o", str(tmp_path / "big")])
    assert big.exit_code == 0, big.output
    train = json.loads((tmp_path / "big" / "split.json").read_text())["train"]
    assert f"note: --batch-size 500 is more than the {len(train)} training words" in big.stderr
    small = runner.invoke(app, ["train", str(words), "--type", "bigram", "--max-steps", "1", "--batch-size", "2",
                                "-o", str(tmp_path / "small")])
    assert small.exit_code == 0 and "--batch-size" not in small.stderr


def test_info_shows_both_budgets_of_a_run_given_both(tmp_path):
    words = tmp_path / "people.txt"
    words.write_text("\n".join(PEOPLE) + "\n")
    run = tmp_path / "both"
    r = runner.invoke(app, ["train", str(words), "--type", "bigram", "--max-steps", "3", "--max-time", "60", "-q",
                            "-o", str(run)])
    assert r.exit_code == 0, r.output
    shown = runner.invoke(app, ["info", str(run)], env={"COLUMNS": "200"}).stdout
    assert "3 steps or 60 s, whichever comes first" in shown and "1 word," not in shown
    assert "micro-batches" not in shown and "diagnostics every" not in shown
    # what changes a run's results (micro-batches, for batch norm) or its record (the instruments) is said too
    r = runner.invoke(app, ["train", str(words), "--type", "bigram", "--max-steps", "2", "-b", "8", "--grad-accum",
                            "2", "--diagnostics", "--diag-interval", "5", "-q", "-o", str(tmp_path / "accum")])
    assert r.exit_code == 0, r.output
    shown = runner.invoke(app, ["info", str(tmp_path / "accum")]).stdout
    assert "2 steps · batch 8 in 2 micro-batches · diagnostics every 5 steps · lr " in shown, shown


def test_info_names_the_recipe_s_cap_on_epochs_beside_its_steps(tmp_path):
    """A Transformer trained on a small list stops after the recipe's cap on epochs, long before its 4,000 steps:
    `info`'s defaults row names the cap, as `train --help` does (it showed the 4,000 steps alone)."""
    from makemore.models import recipe_for

    words = tmp_path / "people.txt"
    words.write_text("\n".join(PEOPLE) + "\n")
    shown = {}
    for family in ("transformer", "bigram"):
        run = tmp_path / family
        r = runner.invoke(app, ["train", str(words), "--type", family, "-q", "-o", str(run)]
                          + (["--n-layer", "1", "--n-embd", "8", "--n-head", "1"] if family == "transformer" else []))
        assert r.exit_code == 0, r.output
        shown[family] = runner.invoke(app, ["info", str(run)], env={"COLUMNS": "300"}).stdout
    cap = recipe_for("transformer")["max_epochs"]
    assert f"steps={recipe_for('transformer')['max_steps']} (at most {cap} epochs) batch=" in shown["transformer"]
    assert "epochs" not in shown["bigram"]  # a recipe without a cap says none


def test_quiet_keeps_the_notes_on_what_was_given(tmp_path):
    """-q prints the final line alone on stdout, and on stderr the notes on options given: the note on a batch
    given larger than the training words was dropped under -q while the others (a warm-up longer than the run)
    were said. The recipe's batch, not given, is not noted under -q."""
    (tmp_path / "few.txt").write_text("\n".join(PEOPLE[:10]) + "\n")
    done = makemore("train", "few.txt", "--type", "bigram", "--max-steps", "2", "-b", "500", "-q", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 1 and done.stdout.startswith("done (max_steps) at step 2")
    assert done.stderr.splitlines() == [line for line in done.stderr.splitlines() if line.startswith("note: ")]
    assert "note: --batch-size 500 is more than the 8 training words" in done.stderr
    done = makemore("train", "few.txt", "--type", "bigram", "--max-steps", "2", "-q", "-o", "recipe", cwd=tmp_path)
    assert done.returncode == 0 and done.stderr == "", done.stderr  # its recipe's 256: more than 8, not given


def test_a_byte_order_mark_alone_is_no_text_to_every_reader(tmp_path):
    """A file holding a UTF-8 byte-order mark alone was "empty file" to a token run, "no characters" to a text
    run and "one character" to prepare: one message now, from one function."""
    from makemore.tokenizer import Tokenizer

    Tokenizer.train(["a few words of text to train on"], vocab_size=260).save(tmp_path / "tok.json")
    (tmp_path / "bom.txt").write_bytes(b"\xef\xbb\xbf")
    for args in (["train", "bom.txt", "--tokenizer", "tok.json"], ["train", "bom.txt", "--mode", "text"],
                 ["prepare", "bom.txt", "--tokenizer", "tok.json", "-o", "shards"]):
        done = makemore(*args, cwd=tmp_path)
        assert one_line_error(done) == "error: bom.txt: no text (a byte-order mark alone)", args
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bom.txt", "tok.json"]


def test_brackets_in_a_path_are_printed_as_they_are(tmp_path, monkeypatch):
    """A path is printed through rich, which took `[a]` for a style (`runs/exp [a]` printed as `runs/exp `) and
    `[/x]` for a closing tag it could not match (a traceback, exit 1, from train, info, sample, score, diagnose)."""
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "d[/x]"
    data.mkdir(parents=True)
    (data / "people [v2].txt").write_text("\n".join(PEOPLE) + "\n")
    run = "runs/exp [a]/q[/x]"
    result = runner.invoke(app, ["train", "d[/x]/people [v2].txt", "--type", "bigram", "--max-steps", "3", "-o", run])
    assert result.exit_code == 0, result.output
    assert "d[/x]/people [v2].txt: 26 words" in result.stderr and f"→ {run}" in result.stdout
    info = runner.invoke(app, ["info", run])
    assert info.exit_code == 0 and f"run              {run}\n" in info.stdout, info.output
    assert "people [v2] (" in info.stdout and "d[/x]/people [v2].txt)" in info.stdout
    for args, where in ((["eval", run, "--split", "val"], "stdout"), (["sample", run, "-n", "2"], "stderr"),
                        (["score", run, "anna"], "stderr"), (["diagnose", run], "stderr")):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, (args, result.output)
        assert run in getattr(result, where), (args, result.output)


def test_a_run_stopped_before_its_first_evaluation_samples_and_reports_its_trained_weights(tmp_path, names_path,
                                                                                           capsys):
    """A run stopped (q, Ctrl-C) before its first evaluation after step 0 kept the initial weights as its best
    checkpoint: `makemore sample` drew from an untrained model and the run reported that model's test loss. Its
    latest weights are the ones sampled and reported now, with a note; the best stays as it was, so that the run
    resumes exactly as one never stopped."""
    from makemore.rundir import BEST, RunDir
    from makemore.training import Request, new_trainer

    words = tmp_path / "names.txt"
    words.write_text("\n".join(names_path.read_text(encoding="utf-8").split()[:1000]) + "\n", encoding="utf-8")
    trainer, _ = new_trainer(Request(data=str(words), out=tmp_path / "run", model_type="transformer", device="cpu",
                                     hyper={"n_layer": 1, "n_head": 2, "n_embd": 32},
                                     train={"batch_size": 32, "max_steps": 500, "eval_interval": 250,
                                            "learning_rate": 1e-2, "warmup_steps": 5}))
    step = trainer._train_step

    def then_stop():  # q pressed during step 60
        result = step()
        if trainer.step + 1 == 60:
            trainer.request_stop()
        return result

    trainer._train_step = then_stop
    events = list(trainer.run())
    first = next(e for e in events if e.kind == "eval")
    finished = events[-1]
    assert finished.reason == "stopped" and trainer.step == 60 and first.step == 0
    assert trainer.best_step == 0  # the best checkpoint is still the initial weights, as the run's record says
    assert finished.test_loss < first.val_loss - 0.3  # trained: ln(27) = 3.30 at the start
    capsys.readouterr()
    loaded = RunDir(tmp_path / "run").load_model("best")
    assert loaded.step == 60
    note = capsys.readouterr().err
    assert f"{BEST} holds the initial weights" in note and "(step 60)" in note
    # and the run's last line, its metrics and `makemore info` say whose test loss it is (beside a best val of
    # the initial weights, it read as if the test had been of those)
    assert finished.test_on_latest
    import io

    from rich.console import Console

    from makemore.commands import info_command
    from makemore.sinks import ConsoleSink, JsonlSink

    out = io.StringIO()
    console, metrics = ConsoleSink(Console(file=out, width=300, color_system=None)), JsonlSink(tmp_path / "run")
    for event in events:
        console(event)
        metrics(event)
    console.close()
    metrics.close()
    said = f"test {finished.test_loss:.4f} of the latest weights (step 60: the best checkpoint holds the initial ones)"
    assert said in out.getvalue()
    capsys.readouterr()
    info_command(RunDir(tmp_path / "run"), as_json=False)
    assert said.replace("test ", "", 1) in " ".join(capsys.readouterr().out.split())

    from makemore.tui.state import RunState
    from makemore.tui.widgets.stats import render_figures

    state = RunState()
    for event in events:
        state.apply(event)
    shown = io.StringIO()
    Console(file=shown, width=60, color_system=None).print(render_figures(state.snapshot().figures(), 60))
    assert f"test {finished.test_loss:.4f} (latest weights)" in shown.getvalue()  # the TUI's Run panel
