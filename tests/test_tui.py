"""The TUI through Textual's Pilot: a tiny run trained inside the app, a followed run directory, scripted events
for the snapshots. Each test waits on a condition with a deadline rather than sleeping a fixed time; what the
screen shows is read back from the rendered lines, at 80x24, 120x40 and 200x60."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from makemore import checkpoint as ckpt
from makemore import rundir
from makemore.events import Arithmetic, Bigrams, Eval, Sample, Samples, Saved, Started, Step

pytest.importorskip("textual")

from textual.widgets import Input  # noqa: E402

from makemore.tui.app import create_app  # noqa: E402
from makemore.tui.follow import MetricsTail  # noqa: E402
from makemore.tui.state import read_run_info  # noqa: E402
from makemore.tui.widgets.bigram_table import BigramTable  # noqa: E402
from makemore.tui.widgets.loss_chart import LossChart, downsample, nice_ticks  # noqa: E402
from makemore.tui.widgets.samples import SamplesPanel  # noqa: E402
from makemore.tui.widgets.stats import StatsPanel  # noqa: E402
from tui_helpers import screen_lines, screen_text, text_of, wait_for  # noqa: E402

SIZE = (120, 40)
SIZES = [(80, 24), (120, 40), (200, 60)]


def tiny_trainer(words: Path, out: Path, **train):
    from makemore.training import Request, new_trainer

    recipe = dict(max_steps=60, eval_interval=20, batch_size=8, warmup_steps=5)
    recipe.update(train)
    request = Request(data=str(words), model_type="transformer", out=out,
                      hyper=dict(n_layer=1, n_head=2, n_embd=16), train=recipe, device="cpu")
    trainer, _ = new_trainer(request)
    trainer.cfg.num_samples = 6
    return trainer


# --- training inside the app ------------------------------------------------------------------------

async def test_training_fills_loss_curve_samples_and_table(small_words, tmp_path):
    trainer = tiny_trainer(small_words, tmp_path / "run")
    app = create_app(trainer=trainer, poll_interval=0.05, chart_interval=0.05)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.run_screen()
        await wait_for(pilot, lambda: screen.state.snapshot().finished is not None, what="the run to finish")
        await pilot.pause(0.2)
        chart = screen.query_one(LossChart)
        assert len(chart.steps) == 6 and [e.step for e in chart.evals] == [0, 20, 40, 60]
        samples = screen.query_one(SamplesPanel)
        assert samples.samples is not None and len(samples.samples.samples) == 6
        assert any(s.word in text_of(app, "#sample-words") for s in samples.samples.samples)
        table = screen.query_one(BigramTable)
        V = len(trainer.vocab)
        assert table.size_v == V and len(table.bigrams.probs[0]) == V
        await pilot.press("right", "down")  # the cursor describes the cell (row 'a'-ish, column 1)
        assert table.cursor == (1, 1)
        info = table.describe().plain
        assert "P = " in info and "in training data" in info
        assert "finished" in text_of(app, "#status")
    # the same events reached metrics.jsonl as with `makemore train`
    kinds = [json.loads(line)["event"] for line in (tmp_path / "run" / rundir.METRICS).read_text().splitlines()]
    assert kinds[0] == "started" and kinds[-1] == "finished" and kinds.count("step") == 6


async def test_pause_stops_the_step_counter_and_quit_saves(small_words, tmp_path):
    trainer = tiny_trainer(small_words, tmp_path / "run", max_steps=100_000, eval_interval=50_000)
    app = create_app(trainer=trainer, poll_interval=0.05)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.run_screen()
        await wait_for(pilot, lambda: screen.state.snapshot().step >= 20, what="training to start")
        assert "p pause" in await drawn_footer(pilot, app)
        await pilot.press("p")
        assert trainer.paused and "paused" in text_of(app, "#status")
        await wait_for(pilot, lambda: "p resume" in footer_line(app), what="the footer to offer resume")
        assert "p pause" not in footer_line(app)  # the key says what it does
        await pilot.pause(0.3)  # the step under way finishes
        frozen = trainer.step
        await pilot.pause(0.6)
        assert trainer.step == frozen
        await pilot.press("p")
        await wait_for(pilot, lambda: trainer.step > frozen + 10, what="training to resume")
        await pilot.press("q")  # while training: stop, save, then exit
        await wait_for(pilot, lambda: not app.is_running, what="the app to exit")
    events = [json.loads(line) for line in (tmp_path / "run" / rundir.METRICS).read_text().splitlines()]
    assert events[-1]["event"] == "finished" and events[-1]["reason"] == "stopped"
    assert any(e["event"] == "saved" and e["reason"] == "interrupt" for e in events)
    _, meta = ckpt.load_tensors(tmp_path / "run" / rundir.LAST)
    assert meta["step"] == events[-1]["step"] > frozen


async def test_save_key_writes_a_checkpoint(small_words, tmp_path):
    trainer = tiny_trainer(small_words, tmp_path / "run", max_steps=100_000, eval_interval=50_000)
    app = create_app(trainer=trainer, poll_interval=0.05)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.run_screen()
        await wait_for(pilot, lambda: screen.state.snapshot().step >= 10, what="training to start")
        assert not (tmp_path / "run" / rundir.LAST).exists()  # no periodic save before step 50,000
        await pilot.press("c")
        await wait_for(pilot, lambda: (s := screen.state.snapshot().saved) is not None and s.reason == "request",
                       what="the requested save")
        saved = screen.state.snapshot().saved
        _, meta = ckpt.load_tensors(tmp_path / "run" / rundir.LAST)
        assert meta["step"] == saved.step > 0
        trainer.request_stop()
        await wait_for(pilot, lambda: screen.state.snapshot().finished is not None, what="the stop")


async def test_exception_in_training_is_shown(small_words, tmp_path):
    trainer = tiny_trainer(small_words, tmp_path / "run")

    def broken_step():
        raise RuntimeError("CUDA out of memory (simulated)")

    trainer._train_step = broken_step
    app = create_app(trainer=trainer, poll_interval=0.05)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.run_screen()
        await wait_for(pilot, lambda: screen.state.snapshot().failed is not None, what="the failure")
        await pilot.pause(0.1)
        assert app.is_running  # the app survives the worker's exception
        assert "out of memory (simulated)" in text_of(app, "#error")
        assert screen.query_one("#error").display
        assert "failed" in text_of(app, "#status")
        # nothing left to steer: the training keys are hidden
        assert screen.check_action("pause", ()) is False and screen.check_action("save", ()) is False


# --- following another process ----------------------------------------------------------------------

VOCAB = [".", "a", "b"]


def write_config(run: Path, model_type: str, block_size: int, vocab: list[str]) -> None:
    from makemore.config import TrainConfig

    config = rundir.RunConfig(model=rundir.ModelSpec(type=model_type, block_size=block_size, hyper={}),
                              train=TrainConfig(max_steps=100, batch_size=4, learning_rate=0.1, min_lr_ratio=0.1,
                                                warmup_steps=1, weight_decay=0.0, grad_clip=1.0, eval_interval=50),
                              vocab=vocab)
    config.save(run / rundir.CONFIG)


def write_run_dir(run: Path) -> None:
    run.mkdir()
    write_config(run, "bigram", 4, ["a", "b"])
    ckpt.write_json(run / rundir.SPLIT, {"train": ["ab", "aab", "b"], "val": [], "test": []})


def started(run_dir: str = "runs/x") -> Started:
    return Started(run_dir=run_dir, model_type="bigram", num_params=9, device="cpu", dataset="toy", num_words=3,
                   vocab=VOCAB, max_steps=100, batch_size=4)


def append(path: Path, *events, raw: str = "") -> None:
    with open(path, "a", encoding="utf-8") as f:
        for e in events:
            f.write(json.dumps(e.to_json()) + "\n")
        f.write(raw)


def step(i: int, loss: float = 1.0) -> Step:
    return Step(step=i, loss=loss, lr=1e-3, steps_per_s=10.0, tokens_per_s=100.0, elapsed=i / 10)


async def test_following_a_run_shows_appended_points(tmp_path):
    run = tmp_path / "run"
    write_run_dir(run)
    metrics = run / rundir.METRICS
    append(metrics, started(), step(10), step(20))
    app = create_app(follow=run, poll_interval=0.05, chart_interval=0.0)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.run_screen()
        chart = screen.query_one(LossChart)
        await wait_for(pilot, lambda: len(chart.steps) == 2, what="the first points")
        assert "following" in text_of(app, "#status")
        assert screen.check_action("pause", ()) is False  # steering keys are hidden
        append(metrics, step(30), Eval(step=30, train_loss=0.9, val_loss=0.95, best_val_loss=0.95, best_step=30))
        await wait_for(pilot, lambda: len(chart.steps) == 3 and len(chart.evals) == 1, what="the appended points")
        assert "30 / 100" in text_of(app, "#stats")
        # a line still being written is not read until it is complete, and does not crash anything
        line = json.dumps(step(40).to_json())
        append(metrics, raw=line[:17])
        await pilot.pause(0.3)
        assert len(chart.steps) == 3 and app.is_running
        append(metrics, raw=line[17:] + "\n")
        await wait_for(pilot, lambda: len(chart.steps) == 4, what="the completed line")
        assert chart.steps[-1] == (40, 1.0)


async def test_the_run_panel_names_the_dtype_the_first_step_chose(tmp_path):
    run = tmp_path / "run"
    write_run_dir(run)
    append(run / rundir.METRICS, started(), step(10))
    app = create_app(follow=run, poll_interval=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "10 / 100" in text_of(app, "#stats"), what="the first steps")
        assert "device cpu" in text_of(app, "#stats") and "bfloat16" not in text_of(app, "#stats")
        append(run / rundir.METRICS, Arithmetic(step=11, dtype="bfloat16", matmul_precision="highest",
                                                native_gelu=False, dtype_chosen=True), step(20))
        await wait_for(pilot, lambda: "device cpu · bfloat16" in text_of(app, "#stats"), what="the dtype")


async def test_a_stalled_followed_run_shows_no_rate_or_eta(tmp_path, monkeypatch):
    """A followed run that writes nothing for a while is stalled: its last rate and the ETA from it are stale, so
    the Run panel says so instead of counting down; a new line brings them back."""
    from makemore.tui import run_screen

    run = tmp_path / "run"
    write_run_dir(run)
    metrics = run / rundir.METRICS
    append(metrics, started(), step(10), step(20))
    app = create_app(follow=run, poll_interval=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "20 / 100" in text_of(app, "#stats"), what="the first steps")
        assert "eta 0:08" in text_of(app, "#stats") and "steps/s 10.0" in text_of(app, "#stats")
        monkeypatch.setattr(run_screen, "STALLED_AFTER", 0.2)
        await wait_for(pilot, lambda: "stalled" in text_of(app, "#status"), what="the stall")
        await wait_for(pilot, lambda: "eta stalled" in text_of(app, "#stats"), what="the panel to say so")
        assert "steps/s -" in text_of(app, "#stats") and "tokens/s -" in text_of(app, "#stats")
        monkeypatch.setattr(run_screen, "STALLED_AFTER", 30.0)
        append(metrics, step(30))
        await wait_for(pilot, lambda: "steps/s 10.0" in text_of(app, "#stats"), what="the rate again")
        assert "eta 0:07" in text_of(app, "#stats") and "following" in text_of(app, "#status")


async def test_following_a_run_with_a_truncated_last_line(tmp_path):
    run = tmp_path / "run"
    write_run_dir(run)
    append(run / rundir.METRICS, started(), step(10),
           Bigrams(step=10, probs=[[0.1, 0.6, 0.3], [0.2, 0.3, 0.5], [0.5, 0.25, 0.25]]),
           raw='{"event": "step", "step": 20, "loss": 0.9, "l')
    app = create_app(follow=run, poll_interval=0.05)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.run_screen()
        await wait_for(pilot, lambda: screen.query_one(BigramTable).size_v == 3, what="the table")
        assert screen.query_one(LossChart).steps == [(10, 1.0)]
        await pilot.press("down", "right")  # row 'a', column 'a': the pair 'aa' occurs once in the training words
        await pilot.pause(0.1)
        info = screen_text(app)
        assert "'a' → 'a'" in info and "P = 0.300" in info and "1 of the 3 pairs after 'a'" in info
        assert "P(next | prev)" in screen.query_one(BigramTable).border_title  # a bigram model: exact


def test_metrics_tail_keeps_partial_lines_and_skips_bad_ones(tmp_path):
    (tmp_path / rundir.METRICS).write_text('{"event": "step", "step": 1, "loss": 2.0, "lr": 0.1, "steps_per_s": 1,'
                                         ' "tokens_per_s": 1, "elapsed": 1}\nnot json\n{"event": "st')
    tail = MetricsTail(tmp_path)
    events = tail.poll()
    assert [e.step for e in events] == [1] and tail.bad_lines == 1 and tail.partial == b'{"event": "st'
    assert tail.poll() == []
    (tmp_path / rundir.METRICS).write_text("")  # replaced by a new, shorter file: start over
    assert tail.poll() == [] and tail.offset == 0 and tail.partial == b""


def test_metrics_tail_reads_a_backlog_in_bounded_chunks(tmp_path):
    lines = [json.dumps(step(i).to_json()) for i in range(1, 201)]
    (tmp_path / rundir.METRICS).write_text("\n".join(lines) + "\n")
    tail = MetricsTail(tmp_path, max_bytes=1000)
    seen = []
    polls = 0
    while True:
        before = tail.offset
        seen += tail.poll()
        polls += 1
        assert tail.offset - before <= 1000  # never more than max_bytes per poll
        if not tail.behind:
            break
    assert polls >= len("\n".join(lines)) // 1000
    assert [e.step for e in seen] == list(range(1, 201)) and tail.poll() == []


def test_run_info_counts_bigrams_with_start_and_stop(tmp_path):
    run = tmp_path / "run"
    write_run_dir(run)
    info = read_run_info(run, VOCAB)
    # words ab, aab, b: <s>a a b b</s> / <s>a a a a b b</s> / <s>b b</s>
    assert info.counts == {(0, 1): 2, (1, 2): 2, (2, 0): 3, (1, 1): 1, (0, 2): 1}
    assert info.row_totals[1] == 3 and info.exact_bigram


def test_chart_helpers():
    points = [(i, float(i)) for i in range(1000)]
    small = downsample(points, 100)
    assert len(small) == 100 and small[-1][0] == 999 and small[0] == (9, 4.5)
    assert nice_ticks(8000) == [0, 2000, 4000, 6000, 8000]
    assert nice_ticks(690)[:3] == [0, 200, 400]


# --- the command line -------------------------------------------------------------------------------

def test_cli_tui_refuses_bad_input_before_opening_the_screen(tmp_path):
    from makemore.cli import app

    runner = CliRunner()
    r = runner.invoke(app, ["tui", str(tmp_path / "missing.txt")], prog_name="makemore")
    assert r.exit_code == 2 and "no such file" in r.output
    run = tmp_path / "run"
    write_run_dir(run)
    r = runner.invoke(app, ["tui", str(run), "--max-steps", "5"], prog_name="makemore")
    assert r.exit_code == 2 and "--max-steps" in r.output
    r = runner.invoke(app, ["tui", "--help"], prog_name="makemore")
    assert r.exit_code == 0 and "--learning-rate" in r.output and "--resume" not in r.output


# --- snapshot -----------------------------------------------------------------------------------------

def scripted_events() -> list:
    import math

    vocab = [".", *"abcdefghijklmnopqrstuvwxyz"]
    V = len(vocab)
    events = [Started(run_dir="runs/names-transformer", model_type="transformer", num_params=204_544,
                      device="cpu", dataset="names", num_words=25_626, vocab=vocab, max_steps=8000, batch_size=64)]
    for s in range(10, 4010, 10):
        events.append(Step(step=s, loss=2.0 + 1.3 * math.exp(-s / 600) + 0.03 * math.sin(s / 37), lr=2e-3,
                           steps_per_s=41.3, tokens_per_s=21_100.0, elapsed=s / 41.3))
        if s % 500 == 0:
            val = 2.05 + 1.25 * math.exp(-s / 600)
            events.append(Eval(step=s, train_loss=val - 0.02, val_loss=val, best_val_loss=val, best_step=s))
    probs = [[((i * 7 + j * 13) % V + 1) ** 2 for j in range(V)] for i in range(V)]
    probs = [[p / sum(row) for p in row] for row in probs]
    words = ["kaylani", "brennix", "zariyah", "emma", "jaxon", "ameliana", "oliver", "sky", "maddox", "liora",
             "ava", "thea"]
    tags = ["new", "new", "new", "train", "test", "new", "train", "new", "train", "new", "train", "new"]
    events += [Samples(step=4000, temperature=1.0, samples=[Sample(w, t) for w, t in zip(words, tags)]),
               Bigrams(step=4000, probs=probs),
               Saved(step=4000, path="runs/names-transformer/last.safetensors", reason="last")]
    return events


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_main_screen_snapshot(snap_compare, size, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no runs/ here: the replayed run has no checkpoint to play with
    app = create_app(events=scripted_events())

    async def move_cursor_once_the_table_is_filled(pilot):
        table = pilot.app.screen.query_one(BigramTable)
        for _ in range(100):
            if table.size_v:
                break
            await pilot.pause(0.05)
        await pilot.press("down", "right", "right")
        # let the screen settle: the chart replots at most once a second
        await pilot.pause(1.2)

    assert snap_compare(app, terminal_size=size, run_before=move_cursor_once_the_table_is_filled)


# --- a finished run to follow, replay and play with ---------------------------------------------------

def train_headless(trainer) -> list:
    """What `makemore train` does with a trainer: every event to metrics.jsonl; returns the events."""
    from makemore.sinks import JsonlSink
    from makemore.training import drive

    events = []
    with rundir.RunDir(trainer.run_dir).lock():
        drive(trainer, [JsonlSink(trainer.run_dir), events.append])
    return events


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("finished")
    words = root / "words.txt"
    words.write_text("\n".join(["emma", "olivia", "ava", "isabella", "sophia", "mia", "amelia", "harper", "evelyn",
                                "abigail", "emily", "ella", "elizabeth", "camila", "luna", "sofia", "avery",
                                "mila", "aria", "scarlett", "penelope", "layla", "chloe", "victoria", "madison",
                                "eleanor", "grace", "nora", "riley", "zoey", "a", "ab"]) + "\n", encoding="utf-8")
    trainer = tiny_trainer(words, root / "run", max_steps=40)
    train_headless(trainer)
    return root / "run"


def region_inside(widget, app) -> bool:
    r, s = widget.region, app.screen.region
    return r.width > 0 and r.height > 0 and r.x >= s.x and r.y >= s.y and r.right <= s.right and r.bottom <= s.bottom


def footer_line(app) -> str:
    return screen_lines(app)[-1]


async def drawn_footer(pilot, app) -> str:
    """The footer line once it is drawn: Textual recomposes the footer when the keys change, and a loaded machine
    can catch it blank in between. Always shows the quit key when drawn."""
    await wait_for(pilot, lambda: "quit" in footer_line(app), what="the footer to be drawn")
    return footer_line(app)


PANELS = {"loss": LossChart, "samples": SamplesPanel, "bigrams": BigramTable, "stats": StatsPanel}


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_every_panel_is_readable_at_every_size(finished_run, size):
    app = create_app(follow=finished_run, poll_interval=0.05)
    async with app.run_test(size=size) as pilot:
        screen = app.run_screen()
        await wait_for(pilot, lambda: screen.snap.finished is not None and screen.table.size_v > 0,
                       what="the replayed run")
        await pilot.pause(0.1)
        expected = {(80, 24): "compact", (120, 40): "medium", (200, 60): "wide"}[size]
        assert screen.layout_class == expected
        shown_panels = []
        for i, key in enumerate(PANELS, 1):
            if expected == "compact":
                await pilot.press(str(i))
                await pilot.pause(0.05)
                # one panel at a time, and the step, loss and val stay in the top bar
                assert [k for k, cls in PANELS.items() if screen.query_one(cls).display] == [key]
                assert "step 40/40" in screen_lines(app)[0] and "val" in screen_lines(app)[0]
            widget = screen.query_one(PANELS[key])
            assert region_inside(widget, app), key
            shown_panels.append(key)
            text = screen_text(app)
            if key == "stats":  # every line of the Run panel, the final result included
                for needle in ("step", "loss", "best val", "elapsed", "run dir", "last save", "finished"):
                    assert needle in text, needle
            if key == "bigrams":
                assert "rows" in text and "cols" in text and "P = " in text
            if key == "samples":
                assert any(s.word and s.word in text for s in screen.snap.samples.samples)
        assert shown_panels == list(PANELS)
        footer = await drawn_footer(pilot, app)
        # the essential keys of a finished run, each with its key (drawn_footer waited for the word "quit")
        assert "q quit" in footer and "s sample" in footer, screen_text(app)
        if expected == "wide":  # the room is used: wider cells, a taller chart
            assert screen.table.geometry()[1] >= 3
            assert screen.chart.size.height >= 30 and screen.chart.size.width >= 90


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_essential_keys_stay_in_the_footer_while_training(small_words, tmp_path, size):
    from makemore.training import Request

    # as `makemore tui WORDS` does: the trainer is built in the worker, after the screen is up
    request = Request(data=str(small_words), model_type="transformer", out=tmp_path / "run",
                      hyper=dict(n_layer=1, n_head=2, n_embd=16), device="cpu",
                      train=dict(max_steps=100_000, eval_interval=50_000, batch_size=8, warmup_steps=5))
    app = create_app(request=request, poll_interval=0.05)
    async with app.run_test(size=size) as pilot:
        screen = app.run_screen()
        await wait_for(pilot, lambda: screen.snap.step >= 10, what="training to start")
        trainer = screen.trainer
        footer = await drawn_footer(pilot, app)
        for key, word in (("q", "quit"), ("p", "pause"), ("s", "sample"), ("c", "save")):
            assert f"{key} {word}" in footer, (key, footer)
        if size == (80, 24):
            assert "1-4 panels" in footer
        trainer.request_stop()
        await wait_for(pilot, lambda: screen.snap.finished is not None, what="the stop")
        await pilot.pause(0.1)
        assert "stopped" in text_of(app, "#status")  # stopped, not finished
        # nothing to pause any more: the key is hidden (once the footer is redrawn for the stopped run)
        await wait_for(pilot, lambda: "quit" in footer_line(app) and "pause" not in footer_line(app),
                       what="the footer without the pause key")


# --- the heatmap ---------------------------------------------------------------------------------------

def vocab_events(vocab: list[str]) -> list:
    V = len(vocab)
    probs = [[((i * 5 + j * 3) % V + 1) for j in range(V)] for i in range(V)]
    probs = [[p / sum(row) for p in row] for row in probs]
    return [Started(run_dir="runs/none", model_type="transformer", num_params=1, device="cpu", dataset="toy",
                    num_words=1, vocab=vocab, max_steps=10, batch_size=1), Bigrams(step=0, probs=probs)]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_heatmap_cursor_is_reverse_video(size):
    app = create_app(events=scripted_events())
    async with app.run_test(size=size) as pilot:
        screen = app.run_screen()
        await wait_for(pilot, lambda: screen.table.size_v == 27, what="the table")
        if size == (80, 24):
            await pilot.press("3")
        await pilot.press("down", "down", "right")
        await pilot.pause(0.05)
        assert screen.table.cursor == (2, 1)
        # find the cursor cell in the rendered strips: the one segment drawn black on white
        strips = app.screen._compositor.render_strips()
        marked = [(y, seg.text) for y, strip in enumerate(strips) for seg in strip
                  if seg.style is not None and seg.style.bgcolor is not None
                  and seg.style.bgcolor.get_truecolor() == (255, 255, 255)]
        assert len(marked) == 1, marked
        y, _ = marked[0]
        row_text = strips[y].text
        assert " b " in row_text  # the row of 'b' (row 2), its label drawn reversed too


EXTENDED = [".", "'", *"ABCDEFGHIJKLMNOPQRSTUVWXYZ", *"abcdefghijklmnopqrstuvwxyz", *"àâçèéêëîïôöûüñ", "å", "æ", "ø"]
TEXT_VOCAB = [".", "\n", " ", "!", "$", "&", "'", ",", "-", ".", "3", ":", ";", "?",
              *"ABCDEFGHIJKLMNOPQRSTUVWXYZ", *"abcdefghijklmnopqrstuvwxyz"]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("vocab", [EXTENDED, TEXT_VOCAB], ids=["70-symbols", "text-66"])
async def test_large_vocabulary_scrolls_with_the_cursor(size, vocab):
    assert len(vocab) >= 66
    app = create_app(events=vocab_events(vocab))
    async with app.run_test(size=size) as pilot:
        screen = app.run_screen()
        table = screen.table
        await wait_for(pilot, lambda: table.size_v == len(vocab), what="the table")
        if size == (80, 24):
            await pilot.press("3")
            await pilot.pause(0.05)
        _, _, ncols, nrows = table.geometry()
        V = len(vocab)
        assert ncols < V  # this vocabulary does not fit: the view scrolls
        await pilot.press("end", *["pagedown"] * (V // 10 + 1))  # the last column, the last row
        await pilot.pause(0.05)
        assert table.cursor == (V - 1, V - 1)
        text = screen_text(app)
        last = vocab[-1]
        assert f"cols {vocab[V - ncols]}–{last} of {V}" in text
        if nrows < V:
            assert f"rows {vocab[V - nrows]}–{last} of {V}" in text
        header = next(line for line in screen_lines(app) if last in line and vocab[V - 2] in line)
        assert header  # the cursor's column label is on screen
        await pilot.press("home", *["pageup"] * (V // 10 + 1))
        await pilot.pause(0.05)
        assert table.cursor == (0, 0) and (table.row0, table.col0) == (0, 0)
        assert f"cols {vocab[0]}–{vocab[ncols - 1]} of {V}".replace("\n", "⏎") in screen_text(app).replace(
            "\n", "⏎") or f"cols {vocab[0]}" in screen_text(app)


async def test_counts_under_the_table_match_the_cell(tmp_path):
    """A model that sees more than one character: row c is P(next | ⟨start⟩ c), so the count is of the words
    that start with c and continue with next, computed here independently of the TUI's counter."""
    run = tmp_path / "run"
    run.mkdir()
    words = ["a", "ab", "abc", "ba", "bab", "aa", "cab", "a"]
    write_config(run, "transformer", 5, ["a", "b", "c"])
    ckpt.write_json(run / rundir.SPLIT, {"train": words, "val": [], "test": []})
    vocab = [".", "a", "b", "c"]
    probs = [[0.25] * 4 for _ in range(4)]
    events = [Started(run_dir=str(run), model_type="transformer", num_params=1, device="cpu", dataset="toy",
                      num_words=len(words), vocab=vocab, max_steps=10, batch_size=1), Bigrams(step=0, probs=probs)]
    app = create_app(events=events)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.run_screen()
        await wait_for(pilot, lambda: screen.table.size_v == 4 and screen.info is not None, what="the table")
        assert "⟨start⟩" in screen.table.border_title
        for (r, c) in [(1, 0), (1, 2), (2, 1), (0, 3)]:
            screen.table.cursor = (r, c)
            await pilot.pause(0.05)
            first, nxt = vocab[r], ("" if c == 0 else vocab[c])
            if r == 0:
                expected = sum(w.startswith(nxt) for w in words)
                total = len(words)
            else:
                expected = sum(w.startswith(first) and w[1:2] == nxt for w in words)
                total = sum(w.startswith(first) for w in words)
            info = screen.table.describe().plain
            assert f"in training data: {expected:,} of the {total:,}" in info, (r, c, info)
        screen.table.cursor = (1, 0)  # 'a' then stop: the words that are exactly "a", not words ending in a
        await pilot.pause(0.05)
        text = screen_text(app)
        assert "⟨start⟩ 'a' → ⟨stop⟩" in text  # on screen; the rest may wrap
        info = screen.table.describe().plain
        assert "2 of the 5 words starting 'a' end there = 0.400" in info  # "a" twice; a, ab, abc, aa, a
        pair, pairs = sum(w.endswith("a") for w in words), sum(w.count("a") for w in words)
        assert f"anywhere in a word: {pair} of {pairs}" in info and "not what this row estimates" in info


# --- the playground -------------------------------------------------------------------------------------

@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_finished_run_is_a_playground(finished_run, size):
    app = create_app(follow=finished_run, poll_interval=0.05)
    async with app.run_test(size=size) as pilot:
        screen = app.run_screen()
        panel = screen.samples
        await wait_for(pilot, lambda: screen.snap.finished is not None and panel.playable, what="the replay")
        if size == (80, 24):
            await pilot.press("2")  # the samples tab, where +, -, / and w act
        await pilot.press("s")
        await wait_for(pilot, lambda: getattr(screen.snap.samples, "source", ""), what="samples from the checkpoint")
        drawn = screen.snap.samples
        assert drawn.source.startswith("best checkpoint") and drawn.temperature == 1.0
        assert len(drawn.samples) >= 12
        if size == (200, 60):
            assert len(drawn.samples) > 12  # a large panel shows more samples
        if size == (80, 24):  # the keys' effects at the smallest size; the others check what their size changes
            await play_with_the_keys(pilot, screen, panel, finished_run)
        await pilot.press("w", *"Emma-Louise1", "enter")  # a refusal wider than the panel: wrapped, not cut
        await wait_for(pilot, lambda: "'E', '-', 'L', '1'" in str(panel.score), what="the long refusal")
        await pilot.pause(0.1)
        assert "vocabulary" in screen_text(app).split("'L', '1'")[-1]  # its end is on the screen


async def play_with_the_keys(pilot, screen, panel, finished_run):
    """The playground's keys on a finished run's samples panel: temperature, prefix, score, refusals."""
    from makemore.data import EncodedWords
    from makemore.evaluation import word_nll

    app = pilot.app
    await pilot.press("plus")
    await wait_for(pilot, lambda: screen.snap.samples.temperature == 1.1, what="samples at T=1.1")
    assert "T=1.10" in panel.border_title
    await pilot.press("minus", "minus")
    await wait_for(pilot, lambda: screen.snap.samples.temperature == 0.9, what="samples at T=0.9")
    await pilot.press("slash", "e", "m", "enter")
    await wait_for(pilot, lambda: getattr(screen.snap.samples, "prefix", "") == "em", what="prefixed samples")
    assert all(s.word.startswith("em") for s in screen.snap.samples.samples)
    assert not isinstance(app.focused, Input)  # Enter left the box: the keys act again
    await pilot.press("slash", "x", "escape")  # Esc leaves the input, and stays on the run
    assert app.run_screen() is screen and not isinstance(app.focused, Input)
    assert screen.query_one("#prefix", Input).value == "em"  # what Esc left was not applied: the box says so
    await pilot.press("slash", "9", "enter")  # a prefix the model cannot start from is refused, not applied
    await wait_for(pilot, lambda: "not in the model's vocabulary" in str(panel.score), what="the refused prefix")
    await pilot.press("slash", "escape")
    assert screen.query_one("#prefix", Input).value == "em" and "prefix 'em'" in panel.border_title
    await pilot.press("w", *"emma", "enter")
    await wait_for(pilot, lambda: "nats/char" in str(panel.score), what="the score")
    run = rundir.RunDir.open(finished_run).load_model()
    expected = word_nll(run.model, EncodedWords(["emma"], run.vocab))[0]
    assert f"{expected:.3f} nats/char" in str(panel.score) and "train" in str(panel.score)
    assert screen.query_one("#prefix", Input).value == "em"  # nothing typed after Enter went into the box
    await pilot.press("w", *"x1", "enter")  # a character the model has never seen: said, not crashed
    await wait_for(pilot, lambda: "not in the model's vocabulary" in str(panel.score), what="the refusal")
    assert not screen.check_action("pause", ()) and not screen.check_action("save", ())


def test_playground_score_matches_word_nll(finished_run):
    from makemore.data import EncodedWords
    from makemore.evaluation import word_nll
    from makemore.tui.playground import Playground

    play = Playground.from_run(finished_run)
    run = rundir.RunDir.open(finished_run).load_model()
    for word in ("ava", "zzz", "olivia"):
        assert play.score(word).nll == pytest.approx(word_nll(run.model, EncodedWords([word], run.vocab))[0])
    assert play.score("ava").tag == "train" and play.score("zzz").tag == "new"
    # a long word's refusal names it by its ends, so that the score line's two rows show the reason (the whole
    # word pushed it out of view)
    from makemore.errors import MakemoreError

    for word, reason in (("a" * 80, "80 characters; this model reads at most"),
                         ("A" * 80, "is not in the model's vocabulary (it knows 'aaaaa…aaaaaaaaaa')"),
                         ("Ava", "is not in the model's vocabulary (it knows 'ava')")):
        with pytest.raises(MakemoreError) as refused:
            play.score(word)
        said = str(refused.value)
        assert reason in said and len(said) < 100, said
        assert (repr(word) in said) is (len(word) <= 16), said  # a long word by its ends, a short one whole
    first, second = play.sample(8, 1.0), play.sample(8, 1.0)
    assert [s.word for s in first.samples] != [s.word for s in second.samples]  # the generator moves on


def losses(events) -> list[tuple[str, int, float]]:
    from makemore.events import Eval as E, Step as S

    return [("step", e.step, e.loss) for e in events if isinstance(e, S)] + \
           [("eval", e.step, e.val_loss) for e in events if isinstance(e, E)]


def test_trainer_idle_leaves_a_paused_run_exactly_as_it_was(small_words, tmp_path):
    """Pause at step 20, sample, score and save from another thread, resume: the same losses as a run left
    alone (and the same samples at the next evaluation)."""
    import threading

    from makemore.tui.playground import Playground

    reference = train_headless(tiny_trainer(small_words, tmp_path / "a", ema=0.9, max_steps=40))
    trainer = tiny_trainer(small_words, tmp_path / "b", ema=0.9, max_steps=40)
    done = []

    def play():
        p = Playground.from_trainer(trainer)
        done.append(p.sample(5, 0.8, "a"))
        done.append(p.score("emma"))
        done.append(p.save())
        trainer.resume()

    events = []
    from makemore.sinks import JsonlSink

    sink = JsonlSink(trainer.run_dir)
    for event in trainer.run():
        sink(event)
        events.append(event)
        if isinstance(event, Step) and event.step == 20:
            trainer.pause()
            threading.Thread(target=play).start()
    sink.close()
    assert len(done) == 3 and done[2].step == 20 and all(s.word.startswith("a") for s in done[0].samples)
    assert losses(events) == losses(reference)
    assert [e.samples for e in events if isinstance(e, Samples)] == \
           [e.samples for e in reference if isinstance(e, Samples)]


async def test_paused_run_samples_and_saves_at_once_and_resumes_exactly(small_words, tmp_path):
    # steps enough that the run does not end between step 20 and the pause on a busy machine (with 80, a full
    # suite once timed out waiting for the paused samples: a run that ended first would draw from its best model)
    reference = train_headless(tiny_trainer(small_words, tmp_path / "a", max_steps=400, eval_interval=100))
    trainer = tiny_trainer(small_words, tmp_path / "b", max_steps=400, eval_interval=100)
    app = create_app(trainer=trainer, poll_interval=0.05)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.run_screen()
        await wait_for(pilot, lambda: screen.snap.step >= 20, what="training to start")
        await pilot.press("p")
        await pilot.press("2")  # the samples tab
        await pilot.press("s")
        await wait_for(pilot, lambda: "live model" in getattr(screen.snap.samples, "source", ""),
                       what="samples drawn while paused")
        paused_at = trainer.step
        assert f"paused at step {paused_at:,}" in screen.snap.samples.source
        first = screen.snap.samples  # a second press draws new words (it drew the same ones again)
        await pilot.press("s")
        await wait_for(pilot, lambda: screen.snap.samples is not first, what="a second draw while paused")
        new_words = [x.word for x in screen.snap.samples.samples] != [x.word for x in first.samples]
        await pilot.press("c")
        await wait_for(pilot, lambda: screen.snap.saved is not None and screen.snap.saved.reason == "request",
                       what="the save while paused")
        assert screen.snap.saved.step == paused_at == trainer.step  # at once: the trainer did not move
        _, meta = ckpt.load_tensors(tmp_path / "b" / rundir.LAST)
        assert meta["step"] == paused_at
        await pilot.press("p")
        await wait_for(pilot, lambda: screen.snap.finished is not None, timeout=60, what="the run to finish")
    from makemore.events import event_from_json

    written = [event_from_json(json.loads(line)) for line in (tmp_path / "b" / rundir.METRICS).read_text().splitlines()]
    assert losses(written) == losses(reference)
    assert any(isinstance(e, Saved) and e.reason == "request" and e.step == paused_at for e in written)
    assert new_words  # (asserted once the run has ended: a failure while paused would leave its thread waiting)


# --- going back, the start screen ------------------------------------------------------------------------

def make_finished(root: Path, name: str, reason: str) -> Path:
    from makemore.events import Finished

    run = root / name
    write_run_dir(run)
    append(run / rundir.METRICS, started(str(run)), step(10),
           Eval(step=10, train_loss=1.0, val_loss=1.1, best_val_loss=1.1, best_step=10),
           Finished(step=10, reason=reason, best_val_loss=1.1, test_loss=None, elapsed=1.0))
    return run


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_start_screen_lists_stopped_runs_and_escape_comes_back(tmp_path, size):
    make_finished(tmp_path, "done", "max_steps")
    make_finished(tmp_path, "halted", "stopped")
    app = create_app(runs_root=tmp_path)
    async with app.run_test(size=size) as pilot:
        from makemore.tui.start_screen import StartScreen

        assert isinstance(app.screen, StartScreen)
        shown = screen_lines(app)
        # each run on two lines: its name, then its state
        lines = {name: next(shown[i + 1] for i, line in enumerate(shown) if name in line)
                 for name in ("done", "halted")}
        assert "stopped" in lines["halted"] and "finished" not in lines["halted"]
        assert "finished" in lines["done"]
        field = app.screen.query_one("#max_time")
        field.focus(scroll_visible=False)
        field.scroll_visible(animate=False)  # on a small terminal the form scrolls to it
        await wait_for(pilot, lambda: "time budget" in screen_text(app), timeout=5, what="the time budget field")
        app.screen.query_one("#runs").focus()
        await pilot.press("enter")  # opens the first run
        await wait_for(pilot, lambda: app.run_screen() is not None, what="the run screen")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, StartScreen), what="the start screen again")


async def test_escape_from_a_run_opened_directly_shows_the_start_screen(finished_run):
    from makemore.tui.start_screen import StartScreen

    app = create_app(follow=finished_run, poll_interval=0.05, runs_root=finished_run.parent)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, StartScreen), what="the start screen")
        assert finished_run.name in screen_text(app)


async def test_escape_from_a_run_outside_runs_lists_its_folder_too(finished_run, tmp_path):
    """`makemore tui elsewhere/run`, then Esc: the start screen lists the runs beside it as well as runs/'s, and
    says which folders it lists (before, only runs/, where the run just left was not)."""
    from makemore.tui.start_screen import StartScreen

    runs = tmp_path / "runs"
    runs.mkdir()
    make_finished(runs, "ours", "max_steps")
    app = create_app(follow=finished_run, poll_interval=0.05, runs_root=runs)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, StartScreen), what="the start screen")
        assert app.screen.runs == [finished_run, runs / "ours"] or app.screen.runs == [runs / "ours", finished_run]
        text = screen_text(app)
        assert str(finished_run) in text and "ours" in text
        assert app.screen.query_one("#runs").border_title == f"Recent runs in {runs}/ and {finished_run.parent}/"


async def test_start_form_takes_a_time_budget(tmp_path):
    from makemore.errors import MakemoreError
    from makemore.tui.start_screen import StartScreen, parse_duration

    app = create_app(runs_root=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, StartScreen)
        screen.query_one("#max_time").value = "5m"
        assert screen.request().train["max_time"] == 300.0
        screen.query_one("#max_time").value = "soon"
        with pytest.raises(MakemoreError, match="time budget"):
            screen.request()
        screen.query_one("#train").press()
        await pilot.pause(0.1)
        assert "time budget" in text_of(app, "#form-error")
    assert parse_duration("90") == 90 and parse_duration("1.5h") == 5400 and parse_duration("") is None


# --- following: a run that has not started, and what the follower costs --------------------------------

@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_following_a_run_that_is_still_starting(tmp_path, size, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = Path("runs") / "x"  # as typed: makemore tui runs/x
    app = create_app(follow=run, poll_interval=0.05)
    async with app.run_test(size=size) as pilot:
        screen = app.run_screen()
        await pilot.pause(0.2)
        assert f"waiting for {run} to start" in screen_text(app)
        assert app.is_running
        (tmp_path / "runs").mkdir()
        write_run_dir(tmp_path / run)
        append(run / rundir.METRICS, started(str(run)), step(10))
        await wait_for(pilot, lambda: len(screen.chart.steps) == 1, what="the run's first step")
        assert "following" in text_of(app, "#status")


def test_a_target_that_is_not_there_yet_is_awaited(tmp_path, monkeypatch):
    from makemore.tui.app import awaits_run, follows

    monkeypatch.chdir(tmp_path)
    assert awaits_run("runs/x")  # `makemore train ... -o runs/x` has not created it yet
    assert follows("runs/x") and follows(str(tmp_path / "runs" / "x"))
    assert not follows("names") and not follows("nmaes") and not follows("words.txt")  # word lists, or typos
    (tmp_path / "mine.txt").write_text("emma\n")
    assert not follows("mine.txt") and not follows(str(tmp_path / "mine.txt"))
    assert not awaits_run("nmaes") and not awaits_run("words.txt")  # typos of word lists stay errors
    (tmp_path / ".y.abc123.tmp").mkdir()  # the staging directory of a run being prepared
    assert awaits_run("y")
    (tmp_path / "empty").mkdir()
    assert awaits_run("empty")


async def test_follower_reads_only_new_bytes_and_redraws_only_what_changed(tmp_path, monkeypatch):
    run = tmp_path / "run"
    write_run_dir(run)
    metrics = run / rundir.METRICS
    append(metrics, started(), step(10), step(20))
    app = create_app(follow=run, poll_interval=0.05, chart_interval=0.0)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.run_screen()
        await wait_for(pilot, lambda: len(screen.chart.steps) == 2, what="the first points")
        await pilot.pause(0.2)
        counts = {"replot": 0, "stats": 0, "read": 0}
        real_replot, real_stats = LossChart.replot, StatsPanel.watch_figures

        def replot(self):
            counts["replot"] += 1
            real_replot(self)

        def watch_figures(self, figures):
            counts["stats"] += 1
            real_stats(self, figures)

        import makemore.tui.follow as follow

        real_open = follow.open_regular

        def counting_open(*args, **kwargs):
            counts["read"] += 1
            return real_open(*args, **kwargs)

        monkeypatch.setattr(LossChart, "replot", replot)
        monkeypatch.setattr(StatsPanel, "watch_figures", watch_figures)
        monkeypatch.setattr(follow, "open_regular", counting_open)
        await pilot.pause(0.5)  # ten polls of an unchanged file
        assert counts == {"replot": 0, "stats": 0, "read": 0}
        offset = screen.tail.offset
        append(metrics, step(30))
        await wait_for(pilot, lambda: len(screen.chart.steps) == 3, what="the new point")
        await pilot.pause(0.1)
        assert counts["read"] == 1 and counts["replot"] == 1 and counts["stats"] == 1
        assert screen.tail.offset == metrics.stat().st_size > offset


def test_follow_polls_gently_by_default(tmp_path):
    from makemore.tui.run_screen import POLL, RunScreen

    assert RunScreen(follow=tmp_path).poll_interval == POLL["follow"] >= 1.0


# --- screenshot, chart, text samples, errors -------------------------------------------------------------

@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_screenshot_key_saves_an_svg_into_the_run_directory(finished_run, size):
    before = set(finished_run.glob("screenshot-*.svg"))
    app = create_app(follow=finished_run, poll_interval=0.05)
    async with app.run_test(size=size, notifications=True) as pilot:
        await pilot.pause(0.1)
        await pilot.press("x")
        await pilot.pause(0.1)
        new = set(finished_run.glob("screenshot-*.svg")) - before
        assert len(new) == 1
        path = new.pop()
        assert path.read_text(encoding="utf-8").startswith("<svg")
        assert any(str(path) in str(n.message) for n in app._notifications)
        path.unlink()


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_chart_says_it_waits_and_marks_train_and_val(tmp_path, size):
    run = tmp_path / "run"
    write_run_dir(run)
    metrics = run / rundir.METRICS
    append(metrics, started(str(run)))
    app = create_app(follow=run, poll_interval=0.05, chart_interval=0.0)
    async with app.run_test(size=size) as pilot:
        screen = app.run_screen()
        await wait_for(pilot, lambda: screen.snap.started is not None, what="the start")
        await pilot.pause(0.1)
        text = screen_text(app)
        assert "waiting for the first step" in text and "┤" not in text  # no empty axis with ticks
        append(metrics, step(10, 2.0), step(20, 1.5), step(30, 1.2),
               Eval(step=30, train_loss=1.2, val_loss=1.3, best_val_loss=1.3, best_step=30))
        await wait_for(pilot, lambda: len(screen.chart.evals) == 1, what="the points")
        await pilot.pause(0.1)
        text = screen_text(app)
        assert "waiting for the first step" not in text and "┤" in text  # now the axes, with their ticks
        assert "── train" in screen.chart.border_title and "◆ val" in screen.chart.border_title
        assert "◆" in "\n".join(screen.chart.plt.build().splitlines())  # the val point carries its marker


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_text_samples_are_wrapped_over_several_lines(size):
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class TextSamples(Samples):  # the text mode's event: a continuation instead of words
        text: str | None = None

    passage = ("ROMEO:\nBut soft, what light through yonder window breaks? It is the east, and Juliet is the sun. "
               "Arise, fair sun, and kill the envious moon")
    events = [*vocab_events(TEXT_VOCAB), TextSamples(step=5, temperature=1.0, samples=[], text=passage)]
    app = create_app(events=events)
    async with app.run_test(size=size) as pilot:
        screen = app.run_screen()
        await wait_for(pilot, lambda: screen.snap.samples is not None, what="the samples")
        if size == (80, 24):
            await pilot.press("2")
        await pilot.pause(0.1)
        lines = [line for line in screen_lines(app) if "ROMEO" in line or "soft" in line or "Juliet" in line
                 or "moon" in line]
        assert len(lines) >= 3  # wrapped, never cut
        assert "moon" in screen_text(app) and "ROMEO:" in screen_text(app)


async def test_divergence_is_told_by_its_type(small_words, tmp_path):
    import torch

    trainer = tiny_trainer(small_words, tmp_path / "run")

    def nan_step():
        return torch.tensor(float("nan")), 1

    trainer._train_step = nan_step
    app = create_app(trainer=trainer, poll_interval=0.05)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.run_screen()
        await wait_for(pilot, lambda: screen.snap.failed is not None, what="the failure")
        await pilot.pause(0.1)
        error = text_of(app, "#error")
        assert "training diverged" in error and "Diverged:" not in error


def test_run_state_is_a_sink():
    from makemore.tui.state import RunState

    state = RunState()
    for event in scripted_events():
        state(event)
    snap = state.snapshot()
    assert snap.started is not None and snap.bigrams is not None and len(snap.steps) == 400


def test_trainer_idle_refuses_a_running_trainer(small_words, tmp_path):
    from makemore.errors import MakemoreError

    trainer = tiny_trainer(small_words, tmp_path / "run")
    with pytest.raises(MakemoreError, match="not paused"):
        with trainer.idle():
            pass


def test_the_screens_open_without_torch():
    """The start screen and a followed run appear before torch has been imported (it takes seconds)."""
    import subprocess
    import sys

    code = ("import sys, makemore.tui.app, makemore.tui.run_screen, makemore.tui.start_screen; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


async def test_a_copied_run_shows_the_directory_it_is_in(finished_run, tmp_path):
    """Its events name the directory it was trained in; the Run panel names the one being watched."""
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(finished_run, copy)
    app = create_app(follow=copy, poll_interval=0.05)
    async with app.run_test(size=(200, 60)) as pilot:
        screen = app.run_screen()
        await wait_for(pilot, lambda: screen.snap.finished is not None, what="the replay")
        await pilot.pause(0.1)
        shown = text_of(app, "#stats")
        assert str(copy) in shown and str(finished_run) not in shown
