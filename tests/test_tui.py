"""The TUI through Textual's Pilot: a tiny run trained inside the app, a followed run directory, scripted events
for the snapshot. Each test waits on a condition with a deadline rather than sleeping a fixed time."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from makemore import checkpoint as ckpt
from makemore import rundir
from makemore.events import Bigrams, Eval, Sample, Samples, Saved, Started, Step

pytest.importorskip("textual")

from makemore.tui.app import create_app  # noqa: E402
from makemore.tui.follow import MetricsTail  # noqa: E402
from makemore.tui.state import read_run_info  # noqa: E402
from makemore.tui.widgets.bigram_table import BigramTable  # noqa: E402
from makemore.tui.widgets.loss_chart import LossChart, downsample, nice_ticks  # noqa: E402
from makemore.tui.widgets.samples import SamplesPanel  # noqa: E402

SIZE = (120, 40)


def tiny_trainer(words: Path, out: Path, **train):
    from makemore.training import Request, new_trainer

    recipe = dict(max_steps=60, eval_interval=20, batch_size=8, warmup_steps=5)
    recipe.update(train)
    request = Request(data=str(words), model_type="transformer", out=out,
                      hyper=dict(n_layer=1, n_head=2, n_embd=16), train=recipe, device="cpu")
    trainer, _ = new_trainer(request)
    trainer.cfg.num_samples = 6
    return trainer


async def wait_for(pilot, condition, timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


def text_of(app, selector: str) -> str:
    """The plain text a Static shows (whatever rich renderable it holds)."""
    from rich.console import Console

    console = Console(width=200, record=True, file=open("/dev/null", "w"))
    content = app.screen.query_one(selector).content
    console.print(content)
    return console.export_text()


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
        assert any(s.word in text_of(app, "#samples") for s in samples.samples.samples)
        table = screen.query_one(BigramTable)
        V = len(trainer.vocab)
        assert table.grid.row_count == V and len(table.grid.columns) == V
        await pilot.press("right", "down")  # the cursor describes the cell (row 'a'-ish, column 1)
        assert "P = " in text_of(app, "#bigram-info") and "in training data" in text_of(app, "#bigram-info")
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
        await pilot.press("p")
        assert trainer.paused and "paused" in text_of(app, "#status")
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
        # nothing left to steer: the training keys are disabled
        assert screen.check_action("pause", ()) is None


# --- following another process ----------------------------------------------------------------------

VOCAB = [".", "a", "b"]


def write_run_dir(run: Path) -> None:
    from makemore.config import TrainConfig

    run.mkdir()
    config = rundir.RunConfig(model=rundir.ModelSpec(type="bigram", block_size=4, hyper={}),
                              train=TrainConfig(max_steps=100, batch_size=4, learning_rate=0.1, min_lr_ratio=0.1,
                                                warmup_steps=1, weight_decay=0.0, grad_clip=1.0, eval_interval=50),
                              vocab=["a", "b"])
    config.save(run / rundir.CONFIG)
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


async def test_following_a_run_with_a_truncated_last_line(tmp_path):
    run = tmp_path / "run"
    write_run_dir(run)
    append(run / rundir.METRICS, started(), step(10),
           Bigrams(step=10, probs=[[0.1, 0.6, 0.3], [0.2, 0.3, 0.5], [0.5, 0.25, 0.25]]),
           raw='{"event": "step", "step": 20, "loss": 0.9, "l')
    app = create_app(follow=run, poll_interval=0.05)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.run_screen()
        await wait_for(pilot, lambda: screen.query_one(BigramTable).grid.row_count == 3, what="the table")
        assert screen.query_one(LossChart).steps == [(10, 1.0)]
        await pilot.press("down", "right")  # row 'a', column 'a': the pair 'aa' occurs once in the training words
        info = text_of(app, "#bigram-info")
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


def test_main_screen_snapshot(snap_compare):
    app = create_app(events=scripted_events())

    async def move_cursor_once_the_table_is_filled(pilot):
        from makemore.tui.widgets.bigram_table import BigramTable

        grid = pilot.app.screen.query_one(BigramTable).grid
        for _ in range(100):
            if grid.row_count:
                break
            await pilot.pause(0.05)
        await pilot.press("down", "right", "right")
        # let the screen settle: a few state polls (every 0.25 s) and repaints after the last change, or the
        # capture can catch the table's labels half painted
        await pilot.pause(0.6)

    assert snap_compare(app, terminal_size=SIZE, run_before=move_cursor_once_the_table_is_filled)
