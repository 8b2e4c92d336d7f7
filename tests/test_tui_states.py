"""What the screens show of runs in odd states, each through Textual's Pilot on a small run directory written by
hand (no training):
a failed run's step and ETA, the stall of an abandoned run, a metrics.jsonl that is no file, the damaged lines
counted as `makemore info` counts them, the overlay's table, chart and markers, a diverged run's y axis, a text
run's P(next) labels, and the titles and keys that name what is there."""

from __future__ import annotations

import json
import math
import os
import re
import time
from pathlib import Path

import pytest

from makemore import rundir
from makemore.events import Bigrams, Eval, Failed, Started, Step

pytest.importorskip("textual")

from makemore.tui.app import create_app  # noqa: E402
from makemore.tui.widgets.bigram_table import BigramTable  # noqa: E402
from makemore.tui.widgets.run_legend import RunsTable  # noqa: E402
from test_tui_compare import VOCAB, append, scripted, write_run  # noqa: E402
from tui_helpers import screen_lines, screen_text, text_of, wait_for  # noqa: E402

COMPACT = (80, 24)


def diverged(run: Path) -> list:
    """A run that diverged at step 14 of 100, its last progress record at step 10 (as `--learning-rate 1e4`)."""
    return [Started(run_dir=str(run), model_type="mlp", num_params=11_897, device="cpu", dataset="names",
                    num_words=1_800, vocab=VOCAB, max_steps=100, batch_size=32),
            Step(step=10, loss=7.7e24, lr=1e4, steps_per_s=88.3, tokens_per_s=244_214.0, elapsed=0.11),
            Failed(step=14, message="training diverged: the loss became NaN or infinite at step 14")]


# --- a failed run: the step it failed at, and no time left to count down ---------------------------------

async def test_a_failed_run_shows_the_step_it_failed_at_and_no_eta(tmp_path):
    """A run that diverged at step 14 showed `step 10 / 100   eta 0:07` forever beside `✖ failed`."""
    run = tmp_path / "div"
    write_run(run, "mlp", 11_897, diverged(run))
    app = create_app(follow=run, poll_interval=0.05)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.run_screen()
        await wait_for(pilot, lambda: screen.snap.failed is not None, what="the failure")
        await pilot.pause(0.1)
        stats = text_of(app, "#stats")
        assert "failed" in text_of(app, "#status")
        assert "step 14 / 100" in stats, stats
        assert re.search(r"eta +- ", stats), stats


# --- a run abandoned long ago is stalled at once ---------------------------------------------------------

def abandoned(run: Path) -> None:
    """A run killed three hours ago: it has not ended, and its metrics.jsonl was last written then."""
    write_run(run, "mlp", 100, scripted(str(run), "mlp", 100, 2.1, 500, 500, finished=False))
    hours_ago = time.time() - 3 * 3600
    os.utime(run / rundir.METRICS, (hours_ago, hours_ago))


async def test_a_run_abandoned_hours_ago_is_stalled_at_once(tmp_path):
    """Killed hours before, it showed `● following` and a ticking ETA for its first 30 s on screen: the stall was
    timed from when the file was read, not from when it was written."""
    run = tmp_path / "killed"
    abandoned(run)
    app = create_app(follow=run, poll_interval=0.05)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.run_screen()
        await wait_for(pilot, lambda: screen.snap.last_step is not None, what="the backlog")
        await pilot.pause(0.3)
        assert "stalled" in text_of(app, "#status"), text_of(app, "#status")
        assert re.search(r"eta +stalled", text_of(app, "#stats")), text_of(app, "#stats")
        append(run, Step(step=520, loss=2.2, lr=1e-3, steps_per_s=500, tokens_per_s=1e5, elapsed=1.04))
        await wait_for(pilot, lambda: "following" in text_of(app, "#status"), what="the run to write again")


async def test_the_overlay_shows_a_run_abandoned_hours_ago_stalled_at_once(tmp_path):
    done, killed = tmp_path / "done", tmp_path / "killed"
    write_run(done, "mlp", 100, scripted(str(done), "mlp", 100, 2.1, 500, 500))
    abandoned(killed)
    app = create_app(compare=[done, killed], poll_interval=0.05, chart_interval=0.0)
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.screen.query_one(RunsTable)
        await wait_for(pilot, lambda: [r.status for r in table.rows] == ["finished", "stalled"], timeout=5,
                       what="the killed run stalled")


# --- a metrics.jsonl that is no file says so ---------------------------------------------------------------

@pytest.mark.parametrize("kind,says", [("directory", "is a directory, not a file"),
                                       ("fifo", "a FIFO (named pipe), not a regular file")])
async def test_a_metrics_file_that_is_no_file_says_why(tmp_path, kind, says):
    """It left the screen `waiting for the first event` forever, with no reason, where `makemore runs` and the
    overlay said why; a FIFO must never be waited on for a writer. Once a file is put in its place, it is read."""
    run = tmp_path / "run"
    events = scripted(str(run), "mlp", 100, 2.1, 500, 500)
    write_run(run, "mlp", 100, [])
    metrics = run / rundir.METRICS
    metrics.unlink(missing_ok=True)
    metrics.mkdir() if kind == "directory" else os.mkfifo(metrics)
    app = create_app(follow=run, poll_interval=0.05)
    async with app.run_test(size=COMPACT, notifications=True) as pilot:
        screen = app.run_screen()
        await wait_for(pilot, lambda: says in screen_text(app), timeout=5, what="the reason on the chart")
        assert f"cannot read the run's events: {metrics}: {says}" in screen.chart.waiting
        assert "unreadable" in text_of(app, "#status")
        assert sum(says in str(n.message) for n in app._notifications) == 1  # said once
        metrics.rmdir() if kind == "directory" else metrics.unlink()
        append(run, *events)
        await wait_for(pilot, lambda: screen.snap.finished is not None and "finished" in text_of(app, "#status"),
                       timeout=5, what="the file put in its place")
        assert screen.tail.problem is None and "cannot read" not in str(screen.topbar.title)


# --- the overlay's table keeps its figures beside an unreadable run -----------------------------------------

@pytest.mark.parametrize("size", [COMPACT, (120, 40)], ids=lambda s: f"{s[0]}x{s[1]}")
async def test_an_unreadable_run_never_squeezes_the_figures_out_of_the_runs_table(tmp_path, size):
    """Its reason, a long path, was appended to the status column (no wrap): every figure column shrank to `2…`."""
    good, bad = tmp_path / "good", tmp_path / "bad"
    for run in (good, bad):
        write_run(run, "mlp", 11_897, scripted(str(run), "mlp", 11_897, 2.1, 500, 500))
    (bad / rundir.METRICS).unlink()
    (bad / rundir.METRICS).mkdir()
    app = create_app(compare=[good, bad], poll_interval=0.05, chart_interval=0.0)
    async with app.run_test(size=size) as pilot:
        table = app.screen.query_one(RunsTable)
        await wait_for(pilot, lambda: [r.status for r in table.rows] == ["finished", "unreadable"],
                       what="the summaries")
        await pilot.pause(0.2)
        row = table.rows[0]
        lines = screen_lines(app)
        header = next(line for line in lines if " status" in line)
        assert all(f" {col}" in header for col in ("type", "params", "steps", "time", "best val", "test")), header
        figures = next(line for line in lines if " good " in line and "finished" in line)
        assert all(f" {figure}" in figures for figure in ("mlp", "11,897", "500", "0:01", f"{row.best_val:.4f}",
                                                           f"{row.test:.4f}")), figures
        # the reason in full, under the table, wrapped to its width (compared without the spaces a wrap moves, the
        # borders and the scroll bar)
        below = re.sub(r"[\s│╰─╯▁▂▃▄▅▆▇█]", "", "".join(lines[lines.index(figures) + 1:]))
        reason = f"bad: {bad / rundir.METRICS}: is a directory, not a file"
        assert re.sub(r"\s", "", reason) in below, below


# --- damaged lines counted as `makemore info` counts them -------------------------------------------------

async def test_damaged_lines_are_counted_as_makemore_info_counts_them(tmp_path):
    """A line like {"event": "step"} (no step) is a plausible line to `makemore info`, which skips it uncounted as
    no event it knows; the TUI counted it damaged too (one more than info). A blank line info counts; the TUI
    passed it over (one fewer). One rule now counts for both."""
    run = tmp_path / "run"
    events = scripted(str(run), "mlp", 100, 2.1, 500, 500)
    write_run(run, "mlp", 100, events[:3])
    with open(run / rundir.METRICS, "a", encoding="utf-8") as f:
        f.write('not json\n{"event": 3}\n{"event": "step"}\n{"event": "step", "step": -1, "loss": 2.0}\n'
                '{"event": "eval", "step": 5, "val_loss": "low"}\n\n')
    append(run, *events[3:])
    run_dir = rundir.RunDir(run)
    assert sum(1 for _ in run_dir.metrics()) and run_dir.damaged == 5  # as `makemore info` counts them
    app = create_app(follow=run, poll_interval=0.05)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await wait_for(pilot, lambda: app.run_screen().snap.finished is not None, what="the replay")
        await pilot.pause(0.2)
        notes = [str(n.message) for n in app._notifications]
    assert notes == [f"{run / rundir.METRICS}: skipped 5 damaged lines"], notes


def test_a_followed_file_replaced_by_a_longer_one_is_read_from_its_top_and_timed_by_this_clock(tmp_path):
    """Another run's file put at the path, already longer than what was read of the old one, was read from the
    old offset: its first events lost, a torn line counted damaged; a copy of the same run put in its place (as
    rsync puts it) goes on where it was. A file written on another machine's clock (a network mount) looked
    stalled, or live, by that clock: after the first look, a change is timed here."""
    from makemore.tui.follow import MetricsTail

    run = tmp_path / "run"
    events = scripted(str(run), "mlp", 100, 2.1, 500, 500)
    write_run(run, "mlp", 100, events[:2])
    metrics = run / rundir.METRICS
    os.utime(metrics, (time.time() - 7200, time.time() - 7200))  # its clock two hours behind this one
    tail = MetricsTail(run)
    first = tail.poll()
    assert len(first) == 2 and time.time() - tail.written > 7000  # the first look: the file's own time
    append(run, events[2])
    os.utime(metrics, (time.time() - 7200, time.time() - 7200))
    assert len(tail.poll()) == 1 and time.time() - tail.written < 60  # a change seen now is now
    copy = tmp_path / "copy.jsonl"
    copy.write_text("".join(json.dumps(e.to_json()) + "\n" for e in events[:6]))
    copy.replace(metrics)  # the same run, synced: a new file, longer
    assert [e.kind for e in tail.poll()] == [e.kind for e in events[3:6]] and tail.bad_lines == 0
    other = tmp_path / "other.jsonl"
    others = scripted(str(tmp_path / "elsewhere"), "transformer", 300, 2.3, 900, 900)
    other.write_text("".join(json.dumps(e.to_json()) + "\n" for e in others[:9]))
    other.replace(metrics)  # another run's, longer than the offset read so far
    again = tail.poll()
    assert [e.kind for e in again] == [e.kind for e in others[:9]] and tail.bad_lines == 0


# --- a text run's P(next) table is labelled as running text's ----------------------------------------------

def text_run(mode: str) -> list:
    vocab = [".", "\n", " ", "a", "b"]
    probs = [[0.0, 0.1, 0.2, 0.3, 0.4], [0.0, 0.05, 0.05, 0.5, 0.4], [0.0, 0.1, 0.0, 0.6, 0.3],
             [0.0, 0.1, 0.4, 0.2, 0.3], [0.0, 0.2, 0.3, 0.4, 0.1]]
    return [Started(run_dir="runs/none", model_type="mlp", num_params=1, device="cpu", dataset="text",
                    num_words=20_244, vocab=vocab, max_steps=10, batch_size=1, mode=mode),
            Bigrams(step=10, probs=probs)]


async def test_a_text_runs_table_has_no_start_or_stop():
    """Running text has no start or stop token: row c is P(next | c) over the val text and row 0 the average over
    every position (makemore.text), but the panel read `P(next | ⟨start⟩ prev) · rows: first char` and
    `⟨start⟩ → ⟨stop⟩`, the labels of a word list's."""
    app = create_app(events=text_run("text"))
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.screen.query_one(BigramTable)
        await wait_for(pilot, lambda: table.bigrams is not None and table.info is not None, what="the table")
        titles = f"{table.border_title} · {table.border_subtitle}"
        # (and the step of the table, which comes a moment after its evaluation's losses)
        assert titles == "P(next | prev) · rows: prev · cols: next · averaged over the val text · first row: " \
                         "every position · step 10", titles
        first = table.describe().plain
        assert first.startswith("any character → ⟨none⟩ (no stop in running text)   P = 0.000"), first
        assert "⟨start⟩" not in first and "⟨stop⟩" not in first
        await pilot.press("down", "right", "right")
        cell = table.describe().plain
        assert cell.startswith("'\\n' → ' '   P = 0.050") and "likeliest: a 0.50  b 0.40" in cell, cell
        assert "⟨start⟩" not in screen_text(app) and "⟨stop⟩" not in screen_text(app)
    app = create_app(events=text_run("words"))  # a word list's table keeps its labels
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.screen.query_one(BigramTable)
        await wait_for(pilot, lambda: table.bigrams is not None and table.info is not None, what="the table")
        assert table.border_title == "P(next | ⟨start⟩ prev) · rows: first char · cols: second"
        assert table.describe().plain.startswith("⟨start⟩ → ⟨stop⟩")


# --- a diverged run's y axis is read at a glance ------------------------------------------------------------

def diverging() -> list:
    """Step 0 to 13 of a run whose loss grows from 3.3 to 8e+23 (the evaluation at step 10: 9.2e+24)."""
    events = [Started(run_dir="runs/div", model_type="mlp", num_params=1, device="cpu", dataset="names",
                      num_words=1_800, vocab=VOCAB, max_steps=100, batch_size=32)]
    events += [Step(step=s, loss=3.3 * 10 ** (1.8 * s), lr=1e4, steps_per_s=88.0, tokens_per_s=1.0, elapsed=s / 88)
               for s in range(14)]
    events += [Eval(step=0, train_loss=3.3, val_loss=3.3, best_val_loss=3.3, best_step=0),
               Eval(step=10, train_loss=9.2e24, val_loss=9.234e24, best_val_loss=3.3, best_step=0)]
    return events


def y_labels(app) -> list[str]:
    """The y axis's labels, top to bottom, as the chart shows them."""
    return [m.group(1) for line in screen_lines(app) if (m := re.match(r"│ *([^ │┤]+)┤", line))]


async def test_a_diverged_runs_y_axis_is_labelled_compactly_with_the_ticks_that_fit():
    """Linear, the labels took 27 columns (`9234298965706837231403008.0┤`); log, dozens of 1-2-5 ticks for 14
    rows, each row labelled with whichever tick fell on it (`2e+24` at the top of a curve that reaches 9e+24)."""
    app = create_app(events=diverging(), chart_interval=0.0)
    async with app.run_test(size=COMPACT) as pilot:
        await wait_for(pilot, lambda: len(y_labels(app)) >= 2, what="the chart")
        await pilot.pause(0.2)
        rows = app.run_screen().chart.size.height - 4
        linear = y_labels(app)
        assert all(len(label) <= 7 for label in linear), linear
        assert [float(label) for label in linear] == sorted((float(label) for label in linear), reverse=True)
        await pilot.press("l")
        await pilot.pause(0.2)
        log = y_labels(app)
        assert 3 <= len(log) <= rows // 2 and all(len(label) <= 7 for label in log), log
        values = [float(label) for label in log]
        assert values == sorted(values, reverse=True) and values[0] <= 9.3e24 and values[-1] >= 3.3, log
        # evenly spaced: powers of ten, the same number of decades apart
        assert len({round(math.log10(a / b)) for a, b in zip(values, values[1:])}) == 1, log


# --- the overlay's markers over every run's lines ---------------------------------------------------------

def evals_on_a_line(run: Path, model_type: str, steps: list[int]) -> list:
    """A run's evaluations at ``steps``, all on one straight line of val loss (3 at step 0, 2 at step 4,000)."""
    events = [Started(run_dir=str(run), model_type=model_type, num_params=100, device="cpu", dataset="names",
                      num_words=25_626, vocab=VOCAB, max_steps=4000, batch_size=32)]
    return events + [Eval(step=s, train_loss=3 - s / 4000, val_loss=3 - s / 4000, best_val_loss=3 - s / 4000,
                          best_step=s) for s in steps]


async def test_a_later_runs_line_never_hides_an_earlier_runs_markers(tmp_path):
    """Each run was drawn line then markers, so the second run's val line, through the first run's evaluations,
    painted over its markers."""
    a, b = tmp_path / "a", tmp_path / "b"
    write_run(a, "mlp", 100, evals_on_a_line(a, "mlp", list(range(500, 3501, 500))))  # 7 markers, between...
    write_run(b, "transformer", 100, evals_on_a_line(b, "transformer", [0, 4000]))  # ...b's two, on its line
    app = create_app(compare=[a, b], poll_interval=0.05, chart_interval=0.0)
    async with app.run_test(size=(120, 40)) as pilot:
        chart = app.screen.chart
        await wait_for(pilot, lambda: [len(c.val) for c in chart.curves] == [7, 2], what="the evaluations")
        await pilot.pause(0.3)
        marker = chart.curves[0].look.marker
        lines = screen_lines(app)
        on_chart = lines[:next(i for i, line in enumerate(lines) if line.startswith(" ━"))]  # above the legend
        assert sum(line.count(marker) for line in on_chart) == 7, "\n".join(on_chart)


# --- many runs overlaid at 80x24 --------------------------------------------------------------------------

async def test_nine_runs_at_80x24_leave_the_chart_its_room_and_each_its_own_marker(tmp_path):
    """The legend and the table took all but two of the chart's rows (the screen itself scrolled), and the eighth
    run had the second's marker though each run is said to have its own."""
    runs = [tmp_path / f"run{i}" for i in range(9)]
    for i, run in enumerate(runs):
        write_run(run, "mlp", 100, scripted(str(run), "mlp", 100, 2.1 + 0.05 * i, 500, 1000))
    app = create_app(compare=runs, poll_interval=0.05, chart_interval=0.0)
    async with app.run_test(size=COMPACT) as pilot:
        table = app.screen.query_one(RunsTable)
        await wait_for(pilot, lambda: len(table.rows) == 9 and all(r.status == "finished" for r in table.rows),
                       what="the runs")
        # the screen fits, the footer on its last row (drawn once the layout settles): the legend and table scroll
        await wait_for(pilot, lambda: screen_lines(app)[-1].startswith("q quit"), timeout=5, what="the footer")
        assert app.screen.chart.size.height >= 10, app.screen.chart.size
        await pilot.press("end")  # (the keys scroll them: they hold the focus, having nothing else to)
        await pilot.pause(0.2)
        last = next((line for line in screen_lines(app) if " run8 " in line and "finished" in line), None)
        assert last is not None and f"{table.rows[8].best_val:.4f}" in last, screen_text(app)
        assert len({row.look.marker for row in table.rows}) == 9


# --- the title counts one word as one --------------------------------------------------------------------

@pytest.mark.parametrize("count,says", [(1, "(1 word)"), (1_800, "(1,800 words)")])
async def test_the_title_counts_the_words_in_the_right_number(count, says):
    """A one-line file was titled `isfile (1 words)`."""
    events = [Started(run_dir="runs/one", model_type="mlp", num_params=1, device="cpu", dataset="isfile",
                      num_words=count, vocab=VOCAB, max_steps=10, batch_size=1, unit="word")]
    app = create_app(events=events)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.run_screen().snap.started is not None, what="the replay")
        await pilot.pause(0.1)
        assert f"isfile {says} · mlp" in screen_lines(app)[0]



# --- the Samples panel offers only the keys that act ------------------------------------------------------

async def test_without_a_checkpoint_the_samples_panel_offers_no_sampling(tmp_path):
    """With model.safetensors missing the footer left `s` out, but the panel's subtitle still said
    `s: sample · +/-: temperature`."""
    run = tmp_path / "run"
    write_run(run, "mlp", 100, scripted(str(run), "mlp", 100, 2.1, 500, 500))
    app = create_app(follow=run, poll_interval=0.05)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.run_screen()
        await wait_for(pilot, lambda: screen.snap.finished is not None, what="the replay")
        await pilot.pause(0.2)
        assert not screen.playable and " s sample" not in screen_lines(app)[-1]
        assert "s: sample" not in screen.samples.border_subtitle and "s: sample" not in screen_text(app)
        (run / rundir.BEST).write_bytes(b"")  # a checkpoint appears: both offer it
        await wait_for(pilot, lambda: screen.samples.border_subtitle.startswith("s: sample · +/-: temperature"),
                       what="the keys offered")


async def test_a_run_evaluated_at_another_runs_steps_keeps_its_markers_in_view(tmp_path):
    """Two runs evaluated at the same steps with the same losses share every marker's cell: the second drawn hid
    the first's altogether (a run evaluated twice, at step 0 and at its end, showed no marker at all). The run
    with fewer evaluations is drawn last, so each run shows at least those."""
    a, b = tmp_path / "a", tmp_path / "b"
    write_run(a, "mlp", 100, evals_on_a_line(a, "mlp", [0, 4000]))  # two evaluations...
    write_run(b, "transformer", 100, evals_on_a_line(b, "transformer", list(range(0, 4001, 500))))  # ...on b's
    app = create_app(compare=[a, b], poll_interval=0.05, chart_interval=0.0)
    async with app.run_test(size=(120, 40)) as pilot:
        chart = app.screen.chart
        await wait_for(pilot, lambda: [len(c.val) for c in chart.curves] == [2, 9], what="the evaluations")
        await pilot.pause(0.3)
        lines = screen_lines(app)
        on_chart = lines[:next(i for i, line in enumerate(lines) if line.startswith(" ━"))]  # above the legend
        on_chart = on_chart[1:]  # (the top bar's ● says the runs are followed)
        first, second = (c.look.marker for c in chart.curves)
        assert sum(line.count(first) for line in on_chart) == 2, "\n".join(on_chart)
        assert sum(line.count(second) for line in on_chart) == 7, "\n".join(on_chart)  # 9, less the 2 shared
