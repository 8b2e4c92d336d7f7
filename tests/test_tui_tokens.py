"""The TUI on text runs: a token run (a tokenizer trained here on a small text) trained live, followed and replayed,
with the val loss in bits per character beside the loss; `makemore tui --tokenizer/--preset` reach the same
request `makemore train` builds."""

from __future__ import annotations

import functools
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

pytest.importorskip("textual")

from makemore import rundir  # noqa: E402
from makemore.events import event_from_json  # noqa: E402
from makemore.tokenizer import Tokenizer  # noqa: E402
from makemore.tui.app import create_app  # noqa: E402
from makemore.tui.widgets.bigram_table import BigramTable  # noqa: E402
from makemore.tui.widgets.samples import SamplesPanel  # noqa: E402
from tui_helpers import screen_text, text_of, wait_for as _wait_for  # noqa: E402

# token runs train a little longer to their first evaluations
wait_for = functools.partial(_wait_for, timeout=30.0)


TEXT = ("First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n"
        "First Citizen:\nYou are all resolved rather to die than to famish?\n\nAll:\nResolved. resolved.\n\n") * 30
TINY = dict(n_layer=1, n_head=2, n_embd=16)
RECIPE = dict(max_steps=6, eval_interval=3, batch_size=4, warmup_steps=2)
SIZE = (120, 40)


@pytest.fixture(autouse=True)
def small_evaluations(monkeypatch):
    import makemore.text

    monkeypatch.setattr(makemore.text, "EVAL_TOKENS", 1024)
    monkeypatch.setattr(makemore.text, "SAMPLE_CHARS", 60)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tui-tokens")
    (root / "play.txt").write_text(TEXT)
    Tokenizer.train([TEXT], vocab_size=290).save(root / "tok.json")
    return root


def request(workdir: Path, out: Path, tokenizer: bool = True):
    from makemore.training import Request

    return Request(data=str(workdir / "play.txt"), model_type="transformer", out=out, hyper=dict(TINY),
                   train=dict(RECIPE), device="cpu", mode="text", block_size=16,
                   tokenizer=workdir / "tok.json" if tokenizer else None)


def val_bits_per_char(workdir: Path, val_loss: float) -> float:
    """Bits per character of the val text (its last 10% of characters), worked out here from the text and the
    tokenizer: nats per token x the tokens predicted / the characters they encode / ln 2 (all but the first
    token, whose context a window never has, as `makemore eval` counts them)."""
    val = TEXT[int(len(TEXT) * 0.9):]  # nanoGPT's split: the last 10% of the characters validate
    tok = Tokenizer.load(workdir / "tok.json")
    ids = tok.encode(val)
    return val_loss * (len(ids) - 1) / (len(val) - len(tok.decode(ids[:1]))) / math.log(2)


def evals(run: Path) -> list[dict]:
    return [e for e in (json.loads(line) for line in (run / rundir.METRICS).read_text().splitlines())
            if e["event"] == "eval"]


async def shows_bits_per_char(app, pilot, workdir: Path, run: Path) -> None:
    """The Run panel and the top bar show the val loss in bits per character, and the best val's too."""
    last = evals(run)[-1]
    best = min(evals(run), key=lambda e: e["val_loss"])
    val_bpc, best_bpc = val_bits_per_char(workdir, last["val_loss"]), val_bits_per_char(workdir, best["val_loss"])
    stats = text_of(app, "#stats")
    assert f"val bits/char {val_bpc:.4f}" in stats, stats
    assert f"best bits/char {best_bpc:.4f}" in stats, stats
    assert f"({best_bpc:.4f} bits/char)" in stats  # the finished line's best val
    assert f"({val_bpc:.4f} bits/char)" in text_of(app, "#summary")
    assert best_bpc != pytest.approx(best["val_loss"] / math.log(2), abs=1e-3)  # not nats per token / ln 2
    # the table says why it is not drawn
    table = app.run_screen().query_one(BigramTable)
    assert table.bigrams is None and "tokens would make a" in table.note
    assert "No P(next | previous) table" in screen_text(app)
    samples = app.run_screen().query_one(SamplesPanel).samples
    assert samples is not None and samples.text and "Ġ" not in samples.text  # decoded text, not token strings
    assert samples.text.splitlines()[0][:20] in text_of(app, "#sample-words")
    assert "loss (nats/token)" in screen_text(app) and "nats/char" not in screen_text(app)  # the chart's axis


async def test_tui_trains_a_token_run_and_shows_bits_per_char(workdir, tmp_path):
    run = tmp_path / "run"
    app = create_app(request=request(workdir, run), poll_interval=0.05, chart_interval=0.05)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.run_screen()
        await wait_for(pilot, lambda: screen.state.snapshot().finished is not None, timeout=60,
                       what="the run to finish")
        await pilot.pause(0.2)
        assert "tokens)" in text_of(app, "#title")
        await shows_bits_per_char(app, pilot, workdir, run)
    assert (run / "tokenizer.json").read_bytes() == (workdir / "tok.json").read_bytes()


async def test_following_and_replaying_a_token_run_show_the_same(workdir, tmp_path):
    from makemore.commands import train_command

    run = tmp_path / "run"
    train_command(data=str(workdir / "play.txt"), model_type="transformer", out=run, resume=None, seed=42,
                  device="cpu", max_len=64, hyper=dict(TINY), train=dict(RECIPE), given=set(), tensorboard=False,
                  quiet=True, mode="text", block_size=16, tokenizer=workdir / "tok.json")
    app = create_app(follow=run, poll_interval=0.05)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.run_screen()
        await wait_for(pilot, lambda: screen.snap.finished is not None, what="the followed run's end")
        await pilot.pause(0.2)
        await shows_bits_per_char(app, pilot, workdir, run)
        # the finished run is a playground: s continues a newline, / a prefix, with the best checkpoint's model
        panel = screen.samples
        await wait_for(pilot, lambda: panel.playable, what="the playground")
        await pilot.press("slash", *"All:", "enter")
        await wait_for(pilot, lambda: getattr(screen.snap.samples, "prefix", "") == "All:", what="a continuation")
        drawn = screen.snap.samples
        assert drawn.source.startswith("best checkpoint") and drawn.text.startswith("All:")
        import makemore.text

        assert 0 < len(drawn.text) - len("All:") <= makemore.text.SAMPLE_CHARS and "Ġ" not in drawn.text
        assert drawn.text[:20] in text_of(app, "#sample-words")
        # a text run has no words to score: no input for one, no key, no hint
        from textual.widgets import Input

        assert panel.text_mode and not screen.query_one("#word", Input).display
        assert screen.query_one("#prefix", Input).placeholder.startswith("text to continue")
        assert "score a word" not in str(panel.border_subtitle) and "/: prefix" in str(panel.border_subtitle)
        assert screen.check_action("focus_input", ("word",)) is False
        assert screen.check_action("focus_input", ("prefix",)) is True
        await pilot.press("w")  # (Enter left the prefix box)
        await pilot.pause(0.1)
        assert not screen.query_one("#word", Input).has_focus
    events = [event_from_json(json.loads(line)) for line in (run / rundir.METRICS).read_text().splitlines()]
    app = create_app(events=[e for e in events if e is not None])
    async with app.run_test(size=SIZE) as pilot:
        screen = app.run_screen()
        await wait_for(pilot, lambda: screen.snap.finished is not None, what="the replay")
        await pilot.pause(0.2)
        await shows_bits_per_char(app, pilot, workdir, run)


async def test_a_character_text_run_shows_nats_per_char_over_ln2(workdir, tmp_path):
    run = tmp_path / "run"
    app = create_app(request=request(workdir, run, tokenizer=False), poll_interval=0.05, chart_interval=0.05)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.run_screen()
        await wait_for(pilot, lambda: screen.state.snapshot().finished is not None, timeout=60,
                       what="the run to finish")
        await pilot.pause(0.2)
        last = evals(run)[-1]
        stats = text_of(app, "#stats")
        assert f"val bits/char {last['val_loss'] / math.log(2):.4f}" in stats, stats
        assert "characters)" in text_of(app, "#title")
        table = screen.query_one(BigramTable)
        assert table.note == ""  # a character vocabulary has its table
        # below it: a text has no training words to count the cell in (not "no split.json", a word list's case)
        described = table.describe().plain
        assert "a text run: no training words" in described and "split.json" not in described
        assert "loss (nats/char)" in screen_text(app)


def test_tui_help_lists_tokenizer_and_preset_without_importing_torch():
    code = ("import sys; from makemore.cli import app; "
            "sys.argv = ['makemore', 'tui', '--help']\n"
            "try:\n    app()\nexcept SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules and 'textual' not in sys.modules, 'heavy import'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={"COLUMNS": "200", "PATH": ""})
    assert result.returncode == 0, result.stderr
    assert "--tokenizer" in result.stdout and "--preset" in result.stdout
    assert "--resume" not in result.stdout  # still train-only


def test_tui_passes_tokenizer_and_preset_to_the_request(workdir, monkeypatch):
    """`makemore tui FILE --tokenizer T --preset gpt2-124m` builds the request `makemore train` would: the preset
    fills in what was not given, the options given win."""
    import makemore.tui.app as tui_app
    from makemore.cli import app

    made = {}

    class NoScreen:
        left_run = None
        return_code = 0
        stop_signal = None

        def run(self):
            pass

    monkeypatch.setattr(tui_app, "create_app", lambda **kw: made.update(kw) or NoScreen())
    monkeypatch.setattr(tui_app, "_need_terminal", lambda: None)  # as if on a terminal
    monkeypatch.chdir(workdir)
    result = CliRunner().invoke(app, ["tui", "play.txt", "--tokenizer", "tok.json", "--preset", "gpt2-124m",
                                      "--n-layer", "2", "--n-embd", "128", "--max-steps", "20", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    req = made["request"]
    assert req.tokenizer == Path("tok.json") and req.model_type == "transformer"
    assert {k: req.hyper[k] for k in ("n_layer", "n_head", "n_embd")} == {"n_layer": 2, "n_head": 2, "n_embd": 128}
    assert req.block_size == 1024 and req.train["max_steps"] == 20 and req.train["beta2"] == 0.95
    # a bad tokenizer is refused before a screen opens, as `makemore train` refuses it
    (workdir / "bad.json").write_text("{}")
    result = CliRunner().invoke(app, ["tui", "play.txt", "--tokenizer", "bad.json", "--device", "cpu"])
    assert result.exit_code == 2 and "bad.json" in result.output and "Traceback" not in result.output
