"""The TUI's start screen through Textual's Pilot: the recent runs of a runs/ directory, and the form that
describes a new run (what it hands to the run screen, what it refuses)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from makemore import rundir
from makemore.events import Eval

pytest.importorskip("textual")

from textual.screen import Screen  # noqa: E402
from textual.widgets import Input, OptionList, Select, Static  # noqa: E402

from makemore.tui.app import create_app  # noqa: E402

SIZE = (120, 40)


def make_run(root: Path, name: str, model_type: str, words: Path, *, finish: bool, mtime: float) -> Path:
    """A real run directory, as `makemore train` leaves it: finished, or left after its evaluation at step 10."""
    from makemore.sinks import JsonlSink
    from makemore.training import Request, new_trainer

    trainer, _ = new_trainer(Request(data=str(words), model_type=model_type, out=root / name,
                                     train={} if model_type == "ngram" else
                                     {"max_steps": 30, "eval_interval": 10, "batch_size": 8}))
    sink = JsonlSink(trainer.run_dir)
    for event in trainer.run():
        sink(event)
        if not finish and isinstance(event, Eval) and event.step == 10:
            break  # killed here: no "finished" line
    sink.close()
    for f in trainer.run_dir.iterdir():
        os.utime(f, (mtime, mtime))
    return trainer.run_dir


class FakeRunScreen(Screen):
    """Stands in for the run screen: records what the start screen asked it to show."""

    def __init__(self, **kwargs):
        super().__init__()
        self.kwargs = kwargs

    def compose(self):
        yield Static("run screen")


@pytest.fixture
def fake_run_screen(monkeypatch):
    monkeypatch.setattr("makemore.tui.run_screen.RunScreen", FakeRunScreen)


def option_texts(options: OptionList) -> list[str]:
    return [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]


async def test_start_screen_lists_recent_runs_newest_first(small_words, tmp_path, fake_run_screen):
    import time

    runs = tmp_path / "runs"
    now = time.time()
    old = make_run(runs, "old-ngram", "ngram", small_words, finish=True, mtime=now - 3 * 3600)
    new = make_run(runs, "new-bigram", "bigram", small_words, finish=False, mtime=now - 120)
    (runs / "not-a-run").mkdir()
    (runs / "broken").mkdir()
    (runs / "broken" / rundir.CONFIG).write_text("{", encoding="utf-8")  # listed as unreadable, not fatal
    app = create_app(runs_root=runs)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        options = app.screen.query_one("#runs", OptionList)
        texts = option_texts(options)
        disabled = [options.get_option_at_index(i).disabled for i in range(options.option_count)]
        readable = [t for t, off in zip(texts, disabled) if not off]
        broken = [t for t, off in zip(texts, disabled) if off]
        assert len(broken) == 1 and broken[0].split()[:3] == ["broken", "unreadable:", "config.json:"], broken
        texts = readable
        assert len(texts) == 2 and texts[0].split()[0] == "new-bigram" and texts[1].split()[0] == "old-ngram"
        for text, run, state, ago in ((texts[0], new, "unfinished", "2 min ago"),
                                      (texts[1], old, "finished", "3 h ago")):
            lines = [json.loads(x) for x in (run / rundir.METRICS).read_text().splitlines()]
            best = min(x["val_loss"] for x in lines if x["event"] == "eval")
            steps = max(x["step"] for x in lines if x["event"] in ("step", "eval", "finished"))
            name_line, detail = text.splitlines()  # two lines: the run, then how it stands
            assert name_line.split() == [run.name, run.name.split("-")[1]]
            assert detail.split() == [state, "·", str(steps), "steps", "·", "val", f"{best:.4f}", "·", *ago.split()]
        assert app.screen.focused is options
        await pilot.press("enter")  # open the highlighted run: the newest one, highlighted from the start
        await pilot.pause()
        assert isinstance(app.screen, FakeRunScreen) and app.screen.kwargs == {"follow": new}


def test_the_recent_runs_say_a_text_run_and_a_token_runs_loss_per_token(tmp_path):
    """A token run's best val (nats per token) was listed beside character runs' as if it were per character."""
    from makemore.sinks import JsonlSink
    from makemore.tokenizer import Tokenizer
    from makemore.training import Request, new_trainer
    from makemore.tui.start_screen import recent_runs

    text = "First Citizen:\nBefore we proceed any further, hear me speak.\n" * 40
    (tmp_path / "play.txt").write_text(text)
    Tokenizer.train([text], vocab_size=270).save(tmp_path / "tok.json")
    for name, extra in (("chars", {}), ("tokens", {"tokenizer": tmp_path / "tok.json"})):
        trainer, _ = new_trainer(Request(data=str(tmp_path / "play.txt"), mode="text", block_size=8,
                                         out=tmp_path / "runs" / name, hyper={"n_layer": 1, "n_embd": 16},
                                         train={"max_steps": 2, "eval_interval": 2, "batch_size": 4}, **extra))
        sink = JsonlSink(trainer.run_dir)
        for event in trainer.run():
            sink(event)
        sink.close()
    listed = {path.name: text.plain.splitlines() for path, text, _ in recent_runs(tmp_path / "runs")}
    assert listed["chars"][0].split() == ["chars", "transformer", "·", "text"], listed
    assert listed["tokens"][0].split() == ["tokens", "transformer", "·", "tokens"], listed
    assert re.search(r"val \d\.\d{4}/token ·", listed["tokens"][1]), listed
    assert re.search(r"val \d\.\d{4} ·", listed["chars"][1]), listed


async def test_start_screen_without_runs_offers_the_form(tmp_path):
    app = create_app(runs_root=tmp_path / "runs")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        options = app.screen.query_one("#runs", OptionList)
        assert options.option_count == 1 and options.get_option_at_index(0).disabled
        assert "no runs in" in option_texts(options)[0]
        assert app.screen.focused is app.screen.query_one("#data", Input)


async def test_escape_in_a_field_leaves_the_field_and_keeps_the_form(tmp_path):
    """Esc in a field leaves it, as on the run screen (it quit the app and lost the form); Esc again quits."""
    app = create_app(runs_root=tmp_path / "runs")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press(*"names")
        await pilot.press("escape")
        await pilot.pause()
        assert app.is_running and app.screen.focused is None
        assert app.screen.query_one("#data", Input).value == "names"
        await pilot.press("escape")
        await pilot.pause()
        assert not app.is_running


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_tab_stops_only_at_controls_a_person_can_see(tmp_path, size):
    """Tab walks the form's fields and buttons and the list of runs; the form's scrolling column was a stop of
    its own, with nothing shown focused."""
    from textual.widgets import Button

    app = create_app(runs_root=tmp_path / "runs")
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        seen = []
        while not seen or seen[0] not in seen[1:]:  # round the form and the list, back to the first stop
            assert len(seen) < 25, seen
            await pilot.press("tab")
            await pilot.pause()
            focused = app.screen.focused
            assert isinstance(focused, (Input, Select, Button, OptionList)), focused
            seen.append(focused)
        assert len({id(w) for w in seen}) >= 5 and app.screen.query_one("#data", Input) in seen


async def type_into(pilot, selector: str, text: str) -> None:
    field = pilot.app.screen.query_one(selector, Input)
    field.focus()
    field.value = ""
    await pilot.press(*text)


async def test_the_form_builds_the_request(small_words, tmp_path, fake_run_screen, monkeypatch):
    from makemore.models import recipe_for
    from makemore.training import Request

    monkeypatch.chdir(small_words.parent)
    app = create_app(runs_root=tmp_path / "runs")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.screen
        screen.query_one("#type", Select).value = "mlp"
        await pilot.pause()
        recipe = recipe_for("mlp")  # the placeholders show the chosen family's recipe
        assert [screen.query_one(f"#{k}", Input).placeholder for k in ("max_steps", "batch_size", "learning_rate")] \
            == [f"{recipe['max_steps']:g}", f"{recipe['batch_size']:g}", f"{recipe['learning_rate']:g}"]
        await type_into(pilot, "#data", small_words.name)
        await type_into(pilot, "#hyper", "n_embd=8 context=2 batchnorm=yes")  # a switch's words
        await type_into(pilot, "#max_steps", "7")
        await type_into(pilot, "#learning_rate", "0.05")
        await pilot.click("#train")
        await pilot.pause()
        assert isinstance(app.screen, FakeRunScreen) and list(app.screen.kwargs) == ["request"]
        request = app.screen.kwargs["request"]
        assert isinstance(request, Request)
        assert (request.data, request.model_type, request.hyper) == \
            (small_words.name, "mlp", {"n_embd": 8, "context": 2, "batchnorm": True})
        # the fields left empty are not set (None): the family's recipe decides
        # what the form sets; in the TUI the diagnostics are on unless the user says otherwise
        assert {k: v for k, v in request.train.items() if v is not None} == {"max_steps": 7, "learning_rate": 0.05,
                                                                              "diagnostics": True}


async def test_the_form_trains_a_text_and_tokens_with_their_recipe(tmp_path, fake_run_screen, monkeypatch):
    """The placeholders were the word-list recipe's whatever the data (a text trained with another); and the form
    could not start a text run on a file or a token run: mode, tokenizer and block_size in the options field go
    to the request, as `makemore tui FILE --mode text --tokenizer T --block-size N` takes them."""
    from makemore.models import get_family, recipe_for, text_defaults
    from makemore.tokenizer import Tokenizer

    text = "First Citizen:\nBefore we proceed any further, hear me speak.\n" * 40
    (tmp_path / "play.txt").write_text(text)
    Tokenizer.train([text], vocab_size=270).save(tmp_path / "my tok.json")  # a space: quoted in the field
    monkeypatch.chdir(tmp_path)
    app = create_app(runs_root=tmp_path / "runs")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.screen

        def shown():
            return [screen.query_one(f"#{k}", Input).placeholder for k in ("max_steps", "batch_size", "learning_rate")]

        words, prose = recipe_for("transformer"), recipe_for("transformer", "text")
        assert shown() == [f"{words[k]:g}" for k in ("max_steps", "batch_size", "learning_rate")]
        screen.query_one("#data", Input).value = "shakespeare"  # a built-in text
        await pilot.pause()
        assert shown() == [f"{prose[k]:g}" for k in ("max_steps", "batch_size", "learning_rate")] != \
            [f"{words[k]:g}" for k in ("max_steps", "batch_size", "learning_rate")]
        block, hyper = text_defaults("transformer")
        assert f"n_embd={hyper['n_embd']}" in screen.query_one("#hyper", Input).placeholder
        assert f"block_size={block}" in screen.query_one("#hyper", Input).placeholder
        # a time budget alone trains with its tier's settings (training.check_request), and no step limit
        tier = get_family("transformer").for_budget(600, "text")
        screen.query_one("#max_time", Input).value = "10m"
        await pilot.pause()
        assert shown() == ["none", f"{prose['batch_size']:g}", f"{tier['learning_rate']:g}"]
        assert f"n_layer={tier['n_layer']}" in screen.query_one("#hyper", Input).placeholder
        screen.query_one("#max_steps", Input).value = "500"  # steps given: the recipe's own settings
        await pilot.pause()
        assert shown()[2] == f"{prose['learning_rate']:g}"
        assert f"n_layer={hyper['n_layer']}" in screen.query_one("#hyper", Input).placeholder
        screen.query_one("#max_steps", Input).value = ""
        screen.query_one("#max_time", Input).value = ""
        screen.query_one("#data", Input).value = "play.txt"  # a file: a word list, until the options say text
        await pilot.pause()
        assert shown()[0] == f"{words['max_steps']:g}"
        screen.query_one("#hyper", Input).value = 'mode=text tokenizer="my tok.json" block_size=16, n_layer=1'
        await pilot.pause()
        assert shown()[0] == f"{prose['max_steps']:g}"
        await pilot.click("#train")
        await pilot.pause()
        assert isinstance(app.screen, FakeRunScreen), str(screen.query_one("#form-error", Static).content)
        request = app.screen.kwargs["request"]
        assert (request.data, request.mode, request.tokenizer, request.block_size, request.hyper) == \
            ("play.txt", "text", Path("my tok.json"), 16, {"n_layer": 1})


async def test_a_name_the_system_refuses_is_said_under_the_form(tmp_path, fake_run_screen):
    """A data name too long for the file system (a pasted path) crashed the screen: each change of the field
    looks for token shards there, and the OSError escaped. It is said under the form when Train is pressed."""
    app = create_app(runs_root=tmp_path / "runs")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.screen
        screen.query_one("#data", Input).value = "a" * 300
        await pilot.pause()
        screen.query_one("#hyper", Input).value = "mode=text"
        await pilot.pause()
        await pilot.click("#train")
        await pilot.pause()
        assert not isinstance(app.screen, FakeRunScreen) and app.is_running
        shown = str(screen.query_one("#form-error", Static).content)
        assert "a" * 40 in shown and "too long" in shown, shown


@pytest.mark.parametrize("field, text, message", [
    ("#data", "missing.txt", "missing.txt"),
    ("#hyper", "n_embd", "is not name=value"),
    ("#hyper", "n_head=2", "--n-head does not apply to --type mlp"),
    # not a word for true: refused here, not trained as true and then refused by every command that reads the run
    ("#hyper", "batchnorm=maybe", "--batchnorm must be true or false, not 'maybe'"),
])
async def test_the_form_refuses_bad_input_in_place(tmp_path, fake_run_screen, field, text, message):
    app = create_app(runs_root=tmp_path / "runs")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.screen.query_one("#type", Select).value = "mlp"
        await type_into(pilot, field, text)
        await pilot.press("enter")
        await pilot.pause()
        assert not isinstance(app.screen, FakeRunScreen)
        shown = str(app.screen.query_one("#form-error", Static).content)
        assert message in shown


def test_tui_on_a_folder_of_runs_opens_the_start_screen_on_it(tmp_path, monkeypatch):
    """`makemore tui runs` (the folder, an easy slip for `makemore tui`): its runs listed, new ones made there;
    before, it was refused as a directory to prepare as token shards."""
    from makemore.tui import app as tui_app

    runs = tmp_path / "mine"
    (runs / "a").mkdir(parents=True)
    (runs / "a" / rundir.CONFIG).write_text("{}")
    made = {}

    class Opened(Exception):
        pass

    def fake_create_app(**kwargs):
        made.update(kwargs)
        raise Opened

    monkeypatch.setattr(tui_app, "create_app", fake_create_app)
    with pytest.raises(Opened):
        tui_app.run_from_cli(str(runs), model_type="transformer", out=None, seed=42, device="auto", max_len=32,
                             hyper={}, train={}, given=[])
    assert made == {"runs_root": runs}
    made.clear()
    monkeypatch.chdir(tmp_path)  # the default folder with no run in it yet: its start screen (it waited, forever,
    (tmp_path / "runs").mkdir()  # for a run to begin in it)
    with pytest.raises(Opened):
        tui_app.run_from_cli("runs", model_type="transformer", out=None, seed=42, device="auto", max_len=32,
                             hyper={}, train={}, given=[])
    assert made == {"runs_root": Path("runs")}


def test_a_switchs_words_are_taken_only_for_a_switch():
    """yes/no/on/off are true or false for an option the family takes as a switch; any other option keeps its word
    (tokenizer=on names a file called "on", not True)."""
    from makemore.tui.start_screen import parse_hyper, request_options, with_switches

    hyper = parse_hyper("batchnorm=YES tokenizer=on n_embd=8 context=off")
    own = request_options(hyper)
    assert own == {"tokenizer": Path("on")}
    assert with_switches(hyper, "mlp") == {"batchnorm": True, "n_embd": 8, "context": "off"}
    assert with_switches({"tie_weights": "no"}, "transformer") == {"tie_weights": False}
