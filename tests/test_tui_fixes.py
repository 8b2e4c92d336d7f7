"""The TUI at 80x24 and with wide characters, through Textual's Pilot: the samples drawn are the samples shown (and
the novelty counts those), CJK words keep their columns, a large character vocabulary is explained as such, the
start form's refusal is in view, and the footer's keys are never cut mid-word."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from makemore.events import Bigrams, Sample, Samples, Started, novelty

pytest.importorskip("textual")

from rich.cells import cell_len  # noqa: E402
from textual.widgets import Input  # noqa: E402

from makemore.tui.app import create_app  # noqa: E402
from makemore.tui.playground import Drawn  # noqa: E402
from makemore.tui.run_screen import RunScreen, no_table_note  # noqa: E402
from makemore.tui.widgets.samples import fit_count, render_samples  # noqa: E402
from tui_helpers import screen_lines, screen_text, text_of, wait_for  # noqa: E402

COMPACT = (80, 24)


def started(vocab: list[str], **kw) -> Started:
    return Started(run_dir="runs/none", model_type="mlp", num_params=1, device="cpu", dataset="toy", num_words=1,
                   vocab=vocab, max_steps=10, batch_size=1, **kw)


def samples_lines(app) -> list[str]:
    """The lines inside the Samples panel's border."""
    lines = screen_lines(app)
    top = next(i for i, line in enumerate(lines) if "Samples ·" in line)
    bottom = next(i for i in range(top + 1, len(lines)) if lines[i].lstrip().startswith("╰"))
    return lines[top + 1:bottom]


def shown_novelty(title: str) -> str:
    return re.search(r"novelty (\d+%)", title).group(1)


async def samples_tab(app, pilot):
    """The run screen once its samples are in, on the compact layout's Samples tab."""
    screen = app.run_screen()
    await wait_for(pilot, lambda: screen.snap.samples is not None, what="the samples")
    await pilot.press("2")
    await pilot.pause(0.2)
    return screen


# --- 1. as many samples drawn as shown, and the novelty of those -------------------------------------------

class FakePlayground:
    """Draws ``n`` words of which every 7th is long (13 letters, so only 3 columns fit at 80 columns)."""

    def __init__(self):
        self.asked = []

    def sample(self, n, temperature, prefix=""):
        self.asked.append(n)
        words = [f"{prefix}{i:03d}" + ("longtail" if i % 7 == 0 else "") for i in range(n)]
        tags = ["train" if i % 10 == 3 else "test" if i % 13 == 5 else "new" for i in range(n)]
        return Drawn(step=1, temperature=temperature, source="fake checkpoint", prefix=prefix,
                     samples=[Sample(w, t) for w, t in zip(words, tags)])


@pytest.mark.parametrize("size", [COMPACT, (120, 40)], ids=lambda s: f"{s[0]}x{s[1]}")
async def test_the_playground_keeps_as_many_samples_as_the_panel_shows(size):
    app = create_app(events=[started(list(".abcdefghijklmnopqrstuvwxyz0123456789"))])
    async with app.run_test(size=size) as pilot:
        screen = app.run_screen()
        await wait_for(pilot, lambda: screen.snap.started is not None, what="the replay")
        fake = FakePlayground()
        screen._get_playground = lambda: fake
        if size == COMPACT:
            await pilot.press("2")
            await pilot.pause(0.1)
        screen._play("sample", "ma")
        await wait_for(pilot, lambda: getattr(screen.snap.samples, "source", "") == "fake checkpoint",
                       what="the samples")
        await pilot.pause(0.2)
        drawn = screen.snap.samples.samples
        on_screen = re.findall(r"(new|train|test) +(ma\d{3}\w*)", "\n".join(samples_lines(app)))
        assert sorted(w for _, w in on_screen) == sorted(s.word for s in drawn)  # every word kept is shown, in full
        title = screen.samples.border_title
        assert shown_novelty(title) == f"{novelty(t for t, _ in on_screen):.0%}", title
        assert "shown" not in title  # nothing hidden to mention
        assert len(drawn) >= 12
        if size == COMPACT:  # a long word took a column away: the words that no longer fit were left out
            assert len(drawn) < fake.asked[0]


async def test_the_novelty_counts_only_the_samples_shown():
    # 100 samples at evaluation, in a tab that holds fewer: the first half new, the rest train
    words = [Sample(f"w{i:02d}", "new" if i < 50 else "train") for i in range(100)]
    events = [started(list(".abcdefghijklmnopqrstuvwxyz0123456789")), Samples(step=5, temperature=1.0, samples=words)]
    app = create_app(events=events)
    async with app.run_test(size=COMPACT) as pilot:
        screen = await samples_tab(app, pilot)
        on_screen = re.findall(r"(new|train|test) +(w\d\d)", "\n".join(samples_lines(app)))
        assert 12 <= len(on_screen) < 100
        title = screen.samples.border_title
        assert shown_novelty(title) == f"{novelty(t for t, _ in on_screen):.0%}", title
        assert shown_novelty(title) != "50%"  # (the novelty of all 100)
        assert f"of {len(on_screen)} shown (100 drawn)" in title


def test_the_words_counted_are_the_words_rendered():
    words = [Sample("a" * (3 + i % 16), "new") for i in range(40)]
    for width in (30, 54, 76, 110):
        for rows in (3, 14):
            n = fit_count(width, rows, [s.word for s in words])
            text = render_samples(Samples(step=1, temperature=1.0, samples=words), width, rows=rows)
            lines = text.plain.splitlines()[:-1]  # the last line says where they came from
            assert len(lines) <= rows and sum(line.count("new") for line in lines) == n
            assert all(cell_len(line) <= width for line in lines), (width, lines)


# --- 2. wide characters, and a large character vocabulary ---------------------------------------------------

CJK = [chr(0x4E00 + 7 * i) for i in range(300)]


async def test_cjk_samples_keep_their_columns_and_the_table_note_speaks_of_characters():
    words = ["".join(CJK[(i * 5 + j * 11) % 300] for j in range(2 + i % 3)) for i in range(16)]
    events = [started([".", *CJK], unit="word"),
              Samples(step=5, temperature=1.0, samples=[Sample(w, "new") for w in words])]
    app = create_app(events=events)
    async with app.run_test(size=COMPACT) as pilot:
        screen = await samples_tab(app, pilot)
        lines = [line for line in samples_lines(app) if "new" in line]
        assert len(lines) == 4  # 16 words in 4 columns of 4 lines: nothing wrapped onto a line of its own
        for word in words:
            assert any(f"new   {word}" in line for line in lines), word
        assert all(cell_len(line) == 80 and line.rstrip().endswith("│") for line in samples_lines(app))
        await pilot.press("3")
        await pilot.pause(0.1)
        note = screen.table.note
        assert "its 300 distinct characters" in note and "301 x 301 grid" in note
        assert "tokens" not in note and "decoded text" not in note
        text = screen_text(app)
        assert "No P(next | previous) table" in text and "distinct" in text
        assert "rows:" not in text  # no table: its title does not describe rows and columns


def test_a_large_vocabulary_is_explained_by_what_it_holds():
    tokens = ["<|endoftext|>", *[f"t{i}" for i in range(400)], *["<pad>"] * 47]  # padded to 448 rows
    token_note = no_table_note(started(tokens, mode="text", unit="token"))
    assert "401 tokens" in token_note and "401 x 401 grid" in token_note and "decoded text" in token_note
    words_note = no_table_note(started([".", *CJK], unit="word"))
    assert "300 distinct characters" in words_note and "words the model draws" in words_note
    assert "token" not in words_note.replace("start/stop token", "") and "decoded" not in words_note
    text_note = no_table_note(started([".", *CJK], mode="text", unit="character"))
    assert "300 distinct characters" in text_note and "bits per character" in text_note
    assert "decoded" not in text_note
    assert no_table_note(started(list(".abc"))) == ""


async def test_a_table_of_wide_characters_keeps_its_columns():
    from makemore.tui.widgets.bigram_table import BigramTable

    vocab = [".", *CJK[:20]]
    V = len(vocab)
    probs = [[1 / V] * V for _ in range(V)]
    app = create_app(events=[started(vocab), Bigrams(step=0, probs=probs)])
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.run_screen()
        await wait_for(pilot, lambda: screen.table.size_v == V, what="the table")
        table = screen.query_one(BigramTable)
        label, cell, ncols, nrows = table.geometry()
        strips = table.build_lines()
        # the header and every row as wide as label + columns x cell: a label of two cells moves nothing
        for strip in strips[:1 + nrows]:
            assert strip.cell_length == label + ncols * cell, strip.text


# --- 3. the start form's refusal is in view -------------------------------------------------------------------

@pytest.mark.parametrize("size", [COMPACT, (120, 32), (120, 50)], ids=lambda s: f"{s[0]}x{s[1]}")
async def test_the_start_forms_refusal_is_in_view(tmp_path, size, monkeypatch):
    monkeypatch.chdir(tmp_path)
    missing = "nope.txt"
    app = create_app(runs_root=tmp_path / "runs")
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        field = app.screen.query_one("#data", Input)
        field.focus()
        field.value = missing
        await pilot.press("enter")
        await pilot.pause(0.2)
        assert app.screen.query_one("#form-error").region.height > 0
        assert f"{missing}: no such file" in screen_text(app)
        assert missing in screen_text(app)  # and the field that was refused is in view too
        # a good value clears it
        field.value = "names"
        hyper = app.screen.query_one("#hyper", Input)
        hyper.value = "n_embd"
        hyper.focus()
        await pilot.press("enter")
        await pilot.pause(0.2)
        assert "is not name=value" in screen_text(app) and "no such file" not in screen_text(app)


# --- 4. the footer's keys are never cut mid-word ----------------------------------------------------------------

def footer_labels() -> set[str]:
    """Every word the run screen's footer may show: the keys and their labels, long and short."""
    words = set()
    for b in RunScreen.BINDINGS:
        if b.show:
            words.update((b.key_display or b.key).split())
            words.update(b.description.split())
    for short in RunScreen.FOOTER_SHORT.values():
        words.update(short.split())
    return words | {"esc"}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    from makemore.sinks import JsonlSink
    from makemore.training import Request, drive, new_trainer

    root = tmp_path_factory.mktemp("fixes")
    words = root / "words.txt"
    words.write_text("\n".join(["emma", "olivia", "ava", "isabella", "sophia", "mia", "amelia", "harper", "evelyn",
                                "abigail", "emily", "ella", "luna", "sofia", "avery", "mila"]) + "\n", encoding="utf-8")
    trainer, _ = new_trainer(Request(data=str(words), model_type="bigram", out=root / "run", device="cpu",
                                     train=dict(max_steps=20, eval_interval=10, batch_size=8)))
    from makemore.rundir import RunDir

    with RunDir(trainer.run_dir).lock():
        drive(trainer, [JsonlSink(trainer.run_dir)])
    return root / "run"


@pytest.mark.parametrize("size", [COMPACT, (100, 30), (120, 40)], ids=lambda s: f"{s[0]}x{s[1]}")
async def test_the_footer_is_never_cut_mid_word(finished_run, size):
    app = create_app(follow=finished_run, poll_interval=0.05)
    allowed = footer_labels()
    async with app.run_test(size=size) as pilot:
        screen = app.run_screen()
        await wait_for(pilot, lambda: screen.snap.finished is not None and screen.playable, what="the replay")
        tabs = "1234" if screen.layout_class == "compact" else " "
        for tab in tabs:
            if tab != " ":
                await pilot.press(tab)

            def footer_holds() -> bool:  # the footer is composed again after a resize or a tab: wait for it
                footer = screen_lines(app)[-1]
                return (set(footer.split()) <= allowed  # whole entries only
                        and all(entry in footer for entry in ("q quit", "esc runs", "s sample"))  # the key ones
                        # where the playground's keys act: all of them, with shorter labels
                        and (tab != "2" or all(k in footer for k in ("/ prefix", "w score", "d diag")))
                        # room enough: the full labels
                        and (size != (120, 40) or ("x screenshot" in footer and "d diagnostics" in footer)))

            await wait_for(pilot, footer_holds, what=f"a footer of whole entries: {screen_lines(app)[-1]!r}")


async def test_the_log_scale_survives_resizes_and_tab_switches(finished_run):
    """Each render builds the chart again; with plotext's own log scale every build took the log of the data
    once more: the chart went blank after one resize and the app died on a negative logarithm after two."""
    from makemore.tui.widgets.log_axis import logged

    app = create_app(follow=finished_run, poll_interval=0.05)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.run_screen()
        await wait_for(pilot, lambda: screen.snap.finished is not None, what="the replay")
        await pilot.press("l")
        for size in ((130, 40), (120, 40), (80, 24), (120, 40)):
            await pilot.resize_terminal(*size)
            await pilot.pause(0.2)
            assert app.is_running
            assert sum("\u2800" < ch <= "\u28ff" for ch in screen_text(app)) > 20, size  # the curve, drawn
        assert "now log" in screen_text(app)
    assert logged([100.0, 1.0]) == [2.0, 0.0]


async def test_the_run_shown_last_is_named_once_the_screen_is_gone(finished_run):
    """`makemore tui` promised to print the run directory at the end: it looked for the run screen after Textual
    had emptied its screens, and printed nothing."""
    app = create_app(follow=finished_run, poll_interval=0.05)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.run_screen().snap.finished is not None, what="the replay")
        await pilot.press("q")
    assert app.left_run == (finished_run, False)  # followed, not trained here: nothing to resume


async def test_q_quits_from_the_diagnostics_screen_too(finished_run):
    app = create_app(follow=finished_run, poll_interval=0.05)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.run_screen().snap.finished is not None, what="the replay")
        await pilot.press("d")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "DiagnosticsScreen", what="the diagnostics")
        await pilot.press("q")
        await pilot.pause(0.3)
        assert not app.is_running


async def test_the_tui_and_the_api_say_the_notes_the_command_line_prints(small_words, tmp_path, capsys):
    """A batch larger than the training words was noted by `makemore train` alone: the TUI shows the note as a
    notification, and the Python API prints it on stderr, as the command line does."""
    import makemore
    from makemore.training import Request

    request = Request(data=str(small_words), model_type="transformer", out=tmp_path / "tui",
                      hyper=dict(n_layer=1, n_head=2, n_embd=16), device="cpu",
                      train=dict(max_steps=3, eval_interval=3, batch_size=64, warmup_steps=1))
    app = create_app(request=request, poll_interval=0.05)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        screen = app.run_screen()
        await wait_for(pilot, lambda: screen.snap.finished is not None, what="the run")
        notes = [str(n.message) for n in app._notifications]
    assert any("--batch-size 64 is more than the" in n and "training words" in n for n in notes), notes
    makemore.train(small_words, type="bigram", out=tmp_path / "api", max_steps=2, batch_size=64, progress=False)
    err = capsys.readouterr().err
    assert "note: --batch-size 64 is more than the" in err
    makemore.train(small_words, type="bigram", out=tmp_path / "quiet", max_steps=2, batch_size=4, progress=False)
    assert "--batch-size" not in capsys.readouterr().err  # a batch the words fill says nothing


# --- 5. a new user's pass: the chart after a resize, the start form's ranges, errors that stay, ... ----------

async def test_samples_drawn_for_the_compact_tab_do_not_squeeze_the_chart_after_a_resize():
    """Samples drawn to fill the compact layout's Samples tab (80x24), then a resize back to 120x40: the Samples
    panel grew with its words and pushed the Loss panel off the screen, and drawing again kept it so."""
    app = create_app(events=[started(list(".abcdefghijklmnopqrstuvwxyz0123456789"))])
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.run_screen()
        await wait_for(pilot, lambda: screen.snap.started is not None, what="the replay")
        fake = FakePlayground()
        screen._get_playground = lambda: fake
        await pilot.resize_terminal(*COMPACT)
        await pilot.pause(0.1)
        await pilot.press("2")
        await pilot.pause(0.1)
        for prefix in ("ab", "cd"):  # drawn for the tab, shown at 120x40; then drawn again at 120x40
            screen._play("sample", prefix)
            await wait_for(pilot, lambda: getattr(screen.snap.samples, "prefix", "") == prefix, what="the samples")
            if prefix == "ab":
                assert len(screen.snap.samples.samples) > 24  # the tab holds many
            await pilot.resize_terminal(120, 40)
            await pilot.pause(0.3)
            assert screen.chart.size.height >= 8, screen_text(app)
            assert "Loss" in screen_lines(app)[1]
            on_screen = re.findall(r"(new|train|test) +([a-d]{2}\d{3}\w*)", "\n".join(samples_lines(app)))
            assert 12 <= len(on_screen) <= 18  # six rows of words, at most three columns
        assert len(screen.snap.samples.samples) == len(on_screen)  # drawn at 120x40: as many as shown


@pytest.mark.parametrize("field,value,refusal", [
    ("max_steps", "-5", "max steps: must be at least 1, not -5"),
    ("max_steps", "99999999999999999999999", "max steps: must be at most 1,000,000,000"),
    ("batch_size", "0", "batch size: must be at least 1, not 0"),
    ("learning_rate", "-0.1", "learning rate: must be a positive number"),
])
async def test_the_start_form_refuses_numbers_out_of_range_itself(tmp_path, monkeypatch, field, value, refusal):
    """A max steps of -5 opened the run screen on empty panels and `error: --max-steps must be at least 1`."""
    monkeypatch.chdir(tmp_path)
    app = create_app(runs_root=tmp_path / "runs")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        box = app.screen.query_one(f"#{field}", Input)
        box.focus()
        box.value = value
        await pilot.press("enter")
        await pilot.pause(0.2)
        assert type(app.screen).__name__ == "StartScreen"
        assert refusal in screen_text(app)


async def test_a_draw_clears_the_refusal_of_the_prefix_before(finished_run):
    """A refused prefix (too long), then an empty one and `s`: new samples came, the refusal stayed under them."""
    app = create_app(follow=finished_run, poll_interval=0.05)
    async with app.run_test(size=COMPACT) as pilot:
        screen = app.run_screen()
        await wait_for(pilot, lambda: screen.snap.finished is not None and screen.playable, what="the replay")
        await pilot.press("2", "slash")
        await pilot.pause(0.1)
        await pilot.press(*"a" * 30, "enter")
        await wait_for(pilot, lambda: "--prefix is 30 characters" in screen_text(app), what="the refusal", timeout=60)
        await pilot.press("slash")
        await pilot.pause(0.1)
        await pilot.press("ctrl+u", "enter")
        await wait_for(pilot, lambda: getattr(screen.snap.samples, "source", ""), what="the samples")
        first = screen.snap.samples
        await pilot.press("s")
        await wait_for(pilot, lambda: screen.snap.samples is not first, what="the second draw")
        await pilot.pause(0.3)
        assert "--prefix is 30" not in screen_text(app)


async def test_two_screenshots_in_the_same_second_are_two_files(finished_run, monkeypatch):
    """`x x`: the second screenshot, named by the same second, overwrote the first (two notes named one file)."""
    import time

    monkeypatch.setattr(time, "strftime", lambda fmt, *a: "20260101-120000")  # both in one second
    for old in finished_run.glob("screenshot-*.svg"):
        old.unlink()
    app = create_app(follow=finished_run, poll_interval=0.05)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await wait_for(pilot, lambda: app.run_screen().snap.finished is not None, what="the replay")
        await pilot.press("x", "x")
        await pilot.pause(0.2)
        notes = [str(n.message) for n in app._notifications]
    shots = sorted(p.name for p in finished_run.glob("screenshot-*.svg"))
    try:
        assert shots == ["screenshot-20260101-120000-2.svg", "screenshot-20260101-120000.svg"]
        assert len({n for n in notes if n.startswith("screenshot saved")}) == 2, notes
    finally:
        for shot in finished_run.glob("screenshot-*.svg"):
            shot.unlink()


@pytest.mark.parametrize("model_type,interval,says", [
    ("ngram", None, "ngram is fitted in one pass (counted): nothing to diagnose"),  # as `makemore diagnose`
    ("mlp", 100, "no record yet: the first comes at the first diagnostics interval (every 100 steps)"),  # here
    ("mlp", None, "no record yet (train with --diagnostics"),  # followed or replayed
])
async def test_the_diagnostics_title_says_why_there_is_no_record_and_ends_in_an_ellipsis(model_type, interval, says):
    """At 80 columns the title was cut mid-advice with no ellipsis, and the advice (train with --diagnostics) was
    wrong for a run the TUI trains (they are on) and for an n-gram (nothing to diagnose)."""
    import dataclasses

    from makemore.tui.diagnostics_screen import DiagnosticsScreen

    events = [dataclasses.replace(started(list(".abc")), model_type=model_type)]
    app = create_app(events=events)
    async with app.run_test(size=COMPACT) as pilot:
        await pilot.pause()
        app.push_screen(DiagnosticsScreen(Path("runs/early"), events=events, diag_interval=lambda: interval))
        await wait_for(pilot, lambda: isinstance(app.screen, DiagnosticsScreen) and app.screen.is_mounted,
                       what="the diagnostics screen")
        await wait_for(pilot, lambda: says in text_of(app, "#diag-title"), what="the title")
        # too long for 80 columns: cut, and seen to be
        await wait_for(pilot, lambda: screen_lines(app)[0].rstrip().endswith("…"), what="the ellipsis")
        await pilot.resize_terminal(200, 40)
        await wait_for(pilot, lambda: says in screen_lines(app)[0], what="the whole title at 200 columns")


async def test_a_paused_run_shows_the_step_it_paused_at_and_no_eta(small_words, tmp_path):
    """Paused at step 308, the Run panel said `step 300 / 1,000   eta 0:04` (the last step logged, and time left
    as if it were still training) while the samples said `live model (paused at step 308)`."""
    from makemore.training import Request

    request = Request(data=str(small_words), model_type="mlp", out=tmp_path / "run", device="cpu",
                      train=dict(max_steps=1_000_000, eval_interval=500_000, batch_size=8))
    app = create_app(request=request, poll_interval=0.05)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.run_screen()
        await wait_for(pilot, lambda: screen.snap.last_step is not None and screen.snap.last_step.step >= 20,
                       timeout=60, what="some steps")
        try:
            await pilot.press("p")
            await wait_for(pilot, lambda: screen.paused, what="the pause")
            await pilot.pause(0.5)  # the step under way is finished, then the loop waits
            step = screen.trainer.step
            stats = text_of(app, "#stats")
            assert f"step {step:,} / 1,000,000" in stats, stats
            assert re.search(r"eta +paused", stats), stats
            await pilot.press("p")  # resumed: the ETA again
            await wait_for(pilot, lambda: re.search(r"eta +\d", text_of(app, "#stats")), what="the resume")
        finally:
            screen.trainer.request_stop()  # (a paused trainer would hold the app open)


@pytest.mark.parametrize("size", [(200, 60), (160, 45), (120, 40), COMPACT], ids=lambda s: f"{s[0]}x{s[1]}")
async def test_the_boxes_placeholders_are_never_cut(finished_run, size):
    """At 200x60 the word box read `a word to score (Enter` (no closing parenthesis): the panel was too narrow."""
    app = create_app(follow=finished_run, poll_interval=0.05)
    async with app.run_test(size=size) as pilot:
        screen = app.run_screen()
        await wait_for(pilot, lambda: screen.snap.finished is not None and screen.playable, what="the replay")
        if size == COMPACT:
            await pilot.press("2")
        await pilot.pause(0.3)
        line = next(line for line in screen_lines(app) if "prefix" in line and "│" in line)
        for box in (screen.query_one("#prefix", Input), screen.query_one("#word", Input)):
            assert cell_len(box.placeholder) <= box.content_size.width, (box.placeholder, box.content_size)
            assert re.search(rf"(^|\s){re.escape(box.placeholder)}(\s|$)", line), (box.placeholder, line)
        if size in ((120, 40), COMPACT):  # room enough: the full placeholders
            assert "prefix (Enter samples)" in line and "a word to score (Enter)" in line


async def test_damaged_lines_of_a_followed_run_are_counted_on_the_screen(finished_run, tmp_path):
    """`makemore info` counts the lines of metrics.jsonl it skips; the TUI skipped them in silence, so a run whose
    file was damaged showed as waiting for its first event with nothing said. (Its path, brackets and all, is
    no markup: `[/x]` ended the screen with a MarkupError.)"""
    import shutil

    run = tmp_path / "runs [v2]" / "r[" / "x]"
    shutil.copytree(finished_run, run)
    lines = (run / "metrics.jsonl").read_text().splitlines()
    (run / "metrics.jsonl").write_text("\n".join(lines[:2] + ["not json", "{\"event\": 3}"] + lines[2:]) + "\n")
    app = create_app(follow=run, poll_interval=0.05)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await wait_for(pilot, lambda: app.run_screen().snap.finished is not None, what="the replay")
        await pilot.pause(0.2)
        notes = [str(n.message) for n in app._notifications]
    assert notes.count(f"{run / 'metrics.jsonl'}: skipped 2 damaged lines") == 1, notes
    app = create_app(compare=[finished_run, run], poll_interval=0.05, chart_interval=0.0)  # overlaid, the same
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await pilot.pause(0.5)
        notes = [str(n.message) for n in app._notifications]
    assert notes == [f"{run / 'metrics.jsonl'}: skipped 2 damaged lines"], notes


def test_long_samples_take_the_room_their_columns_leave():
    """A word list of long lines (a text trained as words) showed two columns of 18 cells, each word cut, beside
    40 empty cells at 80 columns, and one cut column at 200; the columns stay as many, and take the room."""
    from makemore.events import Sample, Samples
    from makemore.tui.widgets.samples import columns_for, render_samples

    words = [Sample("KENans ane. tonve the wall of it", "new"), Sample("Aurey hathacicist and sure", "new"),
             Sample("anna", "train"), Sample("Sit if hey, f die on me now", "new")]
    for width in (76, 196):
        lines = render_samples(Samples(step=5, temperature=1.0, samples=words), width).plain.splitlines()
        assert columns_for(width, [w.word for w in words]) == (2 if width == 76 else 4)
        shown = " ".join(lines[:-1])
        assert "Aurey hathacicist and sure" in shown and "Sit if hey, f die on me now" in shown, lines
        assert all(len(line) <= width for line in lines), lines
    assert "KENans ane. tonve the wall of it" in render_samples(Samples(step=5, temperature=1.0, samples=words),
                                                               196).plain


async def test_a_key_of_the_playground_is_answered_at_once():
    """Loading torch and a checkpoint takes seconds: s says so while it loads, and the note goes once the samples
    come; a word to score says it is being scored (before, nothing changed for seconds: the key looked ignored)."""
    import threading

    from makemore.errors import MakemoreError

    release = threading.Event()

    class Slow(FakePlayground):
        def sample(self, n, temperature, prefix=""):
            release.wait(10)
            return super().sample(n, temperature, prefix)

        def score(self, word):
            release.wait(10)
            raise MakemoreError(f"{word!r}: refused")

    app = create_app(events=[started(list(".abcdefghijklmnopqrstuvwxyz0123456789"))])
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.run_screen()
        await wait_for(pilot, lambda: screen.snap.started is not None, what="the replay")
        slow = Slow()
        screen._get_playground = lambda: slow
        screen.action_sample()  # what s does (on a replay of events alone, with no checkpoint, s is not offered)
        await pilot.pause(0.1)
        assert "loading the model to sample" in "\n".join(samples_lines(app))
        release.set()
        await wait_for(pilot, lambda: getattr(screen.snap.samples, "source", "") == "fake checkpoint",
                       what="the samples")
        await pilot.pause(0.2)
        assert "loading" not in "\n".join(samples_lines(app)) and screen.samples.note == ""
        release.clear()
        screen._ask("score", "zz")
        await pilot.pause(0.1)
        assert "scoring" in str(screen.samples.score) or "loading the model to score" in str(screen.samples.score)
        release.set()
        await wait_for(pilot, lambda: "refused" in str(screen.samples.score), what="the refusal")

        def broken(*args):
            raise RuntimeError("the checkpoint could not be read")

        slow.sample = broken  # what loading or sampling fails on: said, and the note goes (it stayed, unsaid)
        screen.action_sample()
        await wait_for(pilot, lambda: "RuntimeError: the checkpoint" in str(screen.samples.score), what="the error")
        assert screen.samples.note == ""


@pytest.mark.parametrize("text_mode", [False, True], ids=["words", "text"])
async def test_the_score_line_keeps_its_height_and_a_long_refusal_is_notified(text_mode):
    """What the score line says never moves the chart (a refusal or a score took rows from it), a refusal longer
    than the line is notified whole (its end was cut), and so is a text run's refused prefix (a text run has no
    score line: the refusal said nothing)."""
    from rich.text import Text

    app = create_app(events=[started(list(".abcdefghijklmnopqrstuvwxyz0123456789"))])
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        screen = app.run_screen()
        await wait_for(pilot, lambda: screen.snap.started is not None, what="the replay")
        panel = screen.samples
        panel.text_mode, panel.playable = text_mode, True
        await pilot.pause(0.1)
        chart = screen.chart.region.height
        long = "runs/x/model.safetensors: not a valid safetensors file (1,000 bytes where its header declares " \
               "93,532: truncated or damaged)"
        short = "emma  2.345 nats/char (perplexity 10.4) · train · best checkpoint"
        for said in (short, Text(long, style="red")):
            panel.score = said
            await pilot.pause(0.1)
            assert screen.chart.region.height == chart
            assert screen.query_one("#score").region.height == (0 if text_mode else 2)
        assert [str(n.message) for n in app._notifications] == ([short, long] if text_mode else [long])
