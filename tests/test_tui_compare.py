"""`makemore tui RUN RUN...`: several runs' loss curves overlaid, through Textual's Pilot. What the chart, the
legend and the table hold is compared with the runs' own files, read here independently (metrics.jsonl line by
line, config.json); a run still being written is followed; the command line refuses what is not a run."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from makemore import rundir
from makemore.config import TrainConfig
from makemore.events import Eval, Failed, Finished, Started, Step

pytest.importorskip("textual")

from makemore.tui.app import create_app  # noqa: E402
from makemore.rundir import run_names  # noqa: E402
from makemore.tui.overlay import eval_seconds, looks  # noqa: E402
from makemore.tui.widgets.overlay_chart import OverlayChart, time_ticks  # noqa: E402
from makemore.tui.widgets.run_legend import RunLegend, RunsTable  # noqa: E402
from tui_helpers import screen_text, wait_for  # noqa: E402

SIZES = [(80, 24), (120, 40)]
WORDS = ["emma", "olivia", "ava", "isabella", "sophia", "mia", "amelia", "harper", "evelyn", "abigail", "emily",
         "ella", "elizabeth", "camila", "luna", "sofia", "avery", "mila", "aria", "scarlett", "penelope", "layla",
         "chloe", "victoria", "madison", "eleanor", "grace", "nora", "riley", "zoey"]


def colour_at(content, offset: int) -> tuple[int, int, int] | None:
    """The foreground colour of the rendered content at ``offset`` (the last span covering it wins)."""
    colour = None
    for span in content.spans:
        foreground = getattr(span.style, "foreground", None)
        if span.start <= offset < span.end and foreground is not None:
            colour = tuple(foreground.rgb)
    return colour


def metrics_of(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / rundir.METRICS).read_text(encoding="utf-8").splitlines()]


# --- tiny runs trained as `makemore train` trains them ------------------------------------------------------

def train_run(words: Path, out: Path, model_type: str, hyper: dict, steps: int) -> None:
    from makemore.sinks import JsonlSink
    from makemore.training import Request, drive, new_trainer

    request = Request(data=str(words), model_type=model_type, out=out, hyper=hyper, device="cpu",
                      train=dict(max_steps=steps, eval_interval=10, batch_size=8, warmup_steps=2))
    trainer, _ = new_trainer(request)
    with rundir.RunDir(trainer.run_dir).lock():
        drive(trainer, [JsonlSink(trainer.run_dir)])


@pytest.fixture(scope="module")
def three_runs(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("overlay")
    words = root / "words.txt"
    words.write_text("\n".join(WORDS) + "\n", encoding="utf-8")
    runs = [root / "bigram", root / "mlp", root / "transformer"]
    train_run(words, runs[0], "bigram", {}, 20)
    train_run(words, runs[1], "mlp", dict(n_embd=4, n_embd2=16), 30)
    train_run(words, runs[2], "transformer", dict(n_layer=1, n_head=2, n_embd=16), 20)
    return runs


async def test_overlay_holds_each_runs_curves_legend_and_row(three_runs):
    app = create_app(compare=three_runs, poll_interval=0.05, chart_interval=0.0)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        chart = screen.query_one(OverlayChart)
        await wait_for(pilot, lambda: all(r.type for r in screen.query_one(RunsTable).rows)
                       and all(r.status == "finished" for r in screen.query_one(RunsTable).rows),
                       what="the runs and their summaries")
        await pilot.pause(0.1)
        legend = screen.query_one(RunLegend)
        rows = screen.query_one(RunsTable).rows
        assert [c.name for c in chart.curves] == ["bigram", "mlp", "transformer"]
        for run, curve, row in zip(three_runs, chart.curves, rows):
            metrics = metrics_of(run)
            steps = [m for m in metrics if m["event"] == "step"]
            evals = [m for m in metrics if m["event"] == "eval"]
            finished = next(m for m in metrics if m["event"] == "finished")
            config = json.loads((run / rundir.CONFIG).read_text())
            # the curves are the metrics, point for point
            assert [(s, loss) for s, _, loss in curve.train] == [(m["step"], m["loss"]) for m in steps]
            assert [t for _, t, _ in curve.train] == [m["elapsed"] for m in steps]
            assert [(s, v) for s, _, v in curve.val] == [(m["step"], m["val_loss"]) for m in evals]
            # the legend names the run, its type, size and best val, in its colour
            best = min(evals, key=lambda m: m["val_loss"])
            line = next(text for text in legend.render().plain.splitlines() if f" {run.name} · " in text)
            assert f"{config['model']['type']} · {config['model']['num_params']:,} params" in line
            assert f"best val {best['val_loss']:.4f} @ {best['step']:,}" in line
            assert colour_at(legend.render(), legend.render().plain.index(f" {run.name} · ") + 1) == row.look.colour
            # the table's row: the run's summary
            assert (row.type, row.params, row.steps) == (config["model"]["type"], config["model"]["num_params"],
                                                         max(m["step"] for m in metrics if "step" in m))
            assert (row.best_val, row.test, row.seconds) == (best["val_loss"], finished["test_loss"],
                                                            finished["elapsed"])
        # each run in its own colour, and the same colour on its line as in the legend
        assert len({c.look.colour for c in chart.curves}) == 3
        val = [s for s in chart.series() if s.kind == "val"]
        assert [(s.run, s.colour, s.marker) for s in val] == [(c.name, c.look.colour, c.look.marker)
                                                             for c in chart.curves]
        assert [s.ys for s in val] == [[m["val_loss"] for m in metrics_of(r) if m["event"] == "eval"]
                                       for r in three_runs]
        text = screen_text(app)
        assert all(name in text for name in ("bigram", "mlp", "transformer")) and "best val" in text
        # t hides the train curves (and says so); w puts the seconds of training on the x axis
        assert {s.kind for s in chart.series()} == {"train", "val"}
        await pilot.press("t")
        assert {s.kind for s in chart.series()} == {"val"} and "train hidden" in chart.border_title
        await pilot.press("t", "w")
        await pilot.pause(0.1)
        train = [s for s in chart.series() if s.kind == "train"]
        assert train[0].xs == [m["elapsed"] for m in metrics_of(three_runs[0]) if m["event"] == "step"]
        assert "training time" in screen_text(app) and "x = time" in chart.border_subtitle
        await pilot.press("q")
        await wait_for(pilot, lambda: not app.is_running, what="q to quit")


def test_eval_seconds_interpolates_between_progress_records():
    steps, times = [10, 20, 40], [1.0, 3.0, 4.0]
    assert eval_seconds(steps, times, 20) == 3.0  # a record at that step
    assert eval_seconds(steps, times, 30) == pytest.approx(3.5)  # halfway between 20 and 40
    assert eval_seconds(steps, times, 0) == 0.0 and eval_seconds(steps, times, 5) == pytest.approx(0.5)
    assert eval_seconds(steps, times, 50) == 4.0 and eval_seconds([], [], 7) == 0.0


def test_names_and_looks():
    assert run_names([Path("runs/a"), Path("runs/b")]) == ["a", "b"]
    assert run_names([Path("x/run"), Path("y/run"), Path("z")]) == ["x/run", "y/run", "z"]  # told apart
    nine = looks(9)
    assert len({(k.colour, k.marker) for k in nine}) == 9  # past the palette, the marker differs
    assert all(max(k.dim) < max(k.colour) for k in nine)  # train is dimmer than val
    assert time_ticks(45) == [0, 10, 20, 30, 40] and time_ticks(130)[:3] == [0, 30, 60]


# --- runs written by hand: following, downsampling, a snapshot ---------------------------------------------

VOCAB = [".", *"abcdefghijklmnopqrstuvwxyz"]


def write_run(run: Path, model_type: str, num_params: int, events: list) -> None:
    run.mkdir(parents=True)
    config = rundir.RunConfig(model=rundir.ModelSpec(type=model_type, block_size=16, hyper={},
                                                     num_params=num_params),
                              train=TrainConfig(max_steps=4000, batch_size=32, learning_rate=1e-3, min_lr_ratio=0.1,
                                                warmup_steps=10, weight_decay=0.0, grad_clip=1.0,
                                                eval_interval=500),
                              vocab=VOCAB[1:])
    config.save(run / rundir.CONFIG)
    (run / rundir.SPLIT).write_text(json.dumps({"train": ["ab"], "val": ["ba"], "test": ["aa"]}))  # as every word run
    append(run, *events)


def append(run: Path, *events) -> None:
    with open(run / rundir.METRICS, "a", encoding="utf-8") as f:
        for e in events:
            f.write(json.dumps(e.to_json()) + "\n")


def scripted(run: str, model_type: str, num_params: int, floor: float, speed: float, last: int,
             finished: bool = True) -> list:
    """A run's events: the loss falls from ln(27) towards ``floor``; ``speed`` steps per second."""
    events = [Started(run_dir=run, model_type=model_type, num_params=num_params, device="cpu", dataset="names",
                      num_words=25_626, vocab=VOCAB, max_steps=last, batch_size=32)]
    best = None
    for s in range(20, last + 1, 20):
        loss = floor + (3.3 - floor) * math.exp(-s / 700) + 0.02 * math.sin(s / 53)
        events.append(Step(step=s, loss=loss, lr=1e-3, steps_per_s=speed, tokens_per_s=speed * 200,
                           elapsed=s / speed))
        if s % 500 == 0:
            val = floor + 0.04 + (3.3 - floor) * math.exp(-s / 700)
            best = val if best is None else min(best, val)
            events.append(Eval(step=s, train_loss=val - 0.03, val_loss=val, best_val_loss=best, best_step=s))
    if finished:
        events.append(Finished(step=last, reason="max_steps", best_val_loss=best, test_loss=best + 0.01,
                               elapsed=last / speed))
    return events


async def test_a_run_still_being_written_is_followed(tmp_path):
    done, live = tmp_path / "done", tmp_path / "live"
    write_run(done, "mlp", 11_897, scripted(str(done), "mlp", 11_897, 2.1, 200, 1000))
    write_run(live, "transformer", 204_544, scripted(str(live), "transformer", 204_544, 1.95, 40, 500,
                                                     finished=False))
    app = create_app(compare=[done, live], poll_interval=0.05, chart_interval=0.0)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        table = screen.query_one(RunsTable)
        await wait_for(pilot, lambda: [r.status for r in table.rows] == ["finished", "following"]
                       and table.rows[1].type is not None, what="the two runs")
        assert len(screen.chart.curves[1].train) == 25 and table.rows[1].steps == 500
        assert "following 1 of 2" in screen_text(app)
        offset = screen.tails[1].offset
        more = scripted(str(live), "transformer", 204_544, 1.95, 40, 1000)[26:]  # steps 520 to 1000, then the end
        append(live, *more[:-1])
        await wait_for(pilot, lambda: len(screen.chart.curves[1].train) == 50, what="the appended points")
        # only the appended bytes were read, and the table moved on with them
        assert screen.tails[1].offset == (live / rundir.METRICS).stat().st_size > offset
        assert table.rows[1].steps == 1000 and table.rows[1].best_val == min(
            e.val_loss for e in scripted(str(live), "transformer", 204_544, 1.95, 40, 1000) if isinstance(e, Eval))
        assert table.rows[1].status == "following" and table.rows[1].test is None
        append(live, more[-1])  # the end: the summary is read again, with the test loss
        await wait_for(pilot, lambda: table.rows[1].status == "finished", what="the end of the run")
        assert table.rows[1].test == pytest.approx(more[-1].test_loss)
        assert "all ended" in screen_text(app)


async def test_a_run_that_diverged_at_its_first_record_is_drawn_and_counted_as_ended(tmp_path):
    """A run that blew up at its first progress record (one train point, 1e25) was left undrawn while its value
    set the y ticks, so that every tick but the lowest fell off the chart (none on a log scale); the top bar
    said "3 of 4 ended" of four runs that had all ended, one failed. Once drawn, its 1e25 squeezed every other
    run's curve into the bottom row of a linear axis: that axis now stops a little above where the runs started."""
    done, blown = tmp_path / "done", tmp_path / "blown"
    write_run(done, "mlp", 11_897, scripted(str(done), "mlp", 11_897, 2.1, 200, 1000))
    events = scripted(str(blown), "mlp", 11_897, 2.1, 200, 20, finished=False)[:1]
    events += [Eval(step=0, train_loss=3.3, val_loss=3.31, best_val_loss=3.31, best_step=0),
               Step(step=10, loss=1.36e25, lr=1e4, steps_per_s=200, tokens_per_s=4e4, elapsed=0.05),
               Failed(step=14, message="training diverged: the loss became NaN or infinite at step 14")]
    write_run(blown, "mlp", 11_897, events)
    app = create_app(compare=[done, blown], poll_interval=0.05, chart_interval=0.0)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        table = screen.query_one(RunsTable)
        await wait_for(pilot, lambda: [r.status for r in table.rows] == ["finished", "failed"], what="both runs")
        await pilot.pause(0.2)
        text = screen_text(app)
        assert "all ended, 1 failed" in text and "of 2 ended" not in text, text
        chart = "\n".join(line for line in text.splitlines() if "┤" in line or "│" in line)
        for log in (False, True):
            ticks = [line.split("┤")[0].strip(" │") for line in chart.splitlines() if "┤" in line]
            assert len([t for t in ticks if t]) >= 3, chart  # the y axis keeps its labels
            # the log scale reaches the diverged run's point; the linear one stops at 1.25 x the highest start
            # (3.31 here: the failed run's evaluation at step 0), where the point is drawn, named in the title
            assert any("e+2" in t or "1e25" in t for t in ticks) == log, chart
            if not log:
                assert float(ticks[0]) == pytest.approx(1.25 * 3.31, abs=0.01), chart
            assert ("● blown goes above 4.14, drawn at the top" in screen_text(app)) != log
            await pilot.press("l")
            await pilot.pause(0.2)
            chart = "\n".join(line for line in screen_text(app).splitlines() if "┤" in line or "│" in line)


async def test_long_curves_are_downsampled(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    write_run(a, "mlp", 100, scripted(str(a), "mlp", 100, 2.1, 500, 100_000))  # 5,000 progress records
    write_run(b, "mlp", 100, scripted(str(b), "mlp", 100, 2.2, 500, 1000))
    app = create_app(compare=[a, b], poll_interval=0.05, chart_interval=0.0)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: len(screen.chart.curves[0].train) == 5000, what="the long run")
        series = {(s.run, s.kind): s for s in screen.chart.series()}
        width = screen.chart.size.width
        long = series[("a", "train")]
        assert len(long.xs) <= 2 * width and long.xs[-1] == 100_000
        assert len(series[("a", "val")].xs) <= width
        assert len(series[("b", "train")].xs) == 50  # a short curve is drawn as it is


def snapshot_runs(root: Path) -> list[Path]:
    specs = [("names-bigram", "bigram", 729, 2.45, 900, 1500), ("names-mlp", "mlp", 11_897, 2.12, 300, 3000),
             ("names-transformer", "transformer", 204_544, 1.98, 41, 4000)]
    runs = []
    for name, kind, params, floor, speed, last in specs:
        run = Path("runs") / name
        write_run(root / run, kind, params, scripted(str(run), kind, params, floor, speed, last))
        runs.append(run)
    return runs


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_overlay_snapshot(snap_compare, size, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = create_app(compare=snapshot_runs(tmp_path))

    async def until_the_table_is_filled(pilot):
        table = pilot.app.screen.query_one(RunsTable)
        for _ in range(200):
            if table.rows and all(r.type and r.status == "finished" for r in table.rows):
                break
            await pilot.pause(0.05)
        await pilot.pause(1.2)  # the chart replots at most once a second

    assert snap_compare(app, terminal_size=size, run_before=until_the_table_is_filled)


# --- the command line ---------------------------------------------------------------------------------------

@pytest.fixture
def no_screen(monkeypatch):
    """Record the apps the command would run instead of running them (as if on a terminal)."""
    import makemore.tui.app
    from makemore.tui.app import MakemoreApp

    ran = []
    monkeypatch.setattr(MakemoreApp, "run", lambda self, *a, **k: ran.append(self))
    monkeypatch.setattr(makemore.tui.app, "_need_terminal", lambda: None)
    return ran


def test_without_a_terminal_the_screen_is_refused_in_one_line_not_drawn_forever(tmp_path):
    """Input from /dev/null and output to a pipe: before, the screen drew escape codes into the pipe and spun a
    core until killed."""
    import subprocess
    import sys

    a = tmp_path / "a"
    write_run(a, "mlp", 100, scripted(str(a), "mlp", 100, 2.1, 500, 500))
    done = subprocess.run([sys.executable, "-m", "makemore", "tui", str(a)], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip() == ("error: makemore tui needs a terminal (its input or output is not one); train "
                                   "without the screen with `makemore train`, or see a run with `makemore info`")


def test_following_a_word_run_without_its_split_is_refused_before_the_screen(tmp_path, no_screen):
    from makemore.cli import app

    a = tmp_path / "a"
    write_run(a, "mlp", 100, scripted(str(a), "mlp", 100, 2.1, 500, 500))
    (a / "split.json").unlink(missing_ok=True)
    r = CliRunner().invoke(app, ["tui", str(a)], prog_name="makemore")
    assert r.exit_code == 2 and f"{a / 'split.json'}: missing" in r.output and not no_screen


def test_tui_overlays_runs_and_refuses_what_is_not_one(tmp_path, no_screen):
    from makemore.cli import app

    a, b = tmp_path / "a", tmp_path / "b"
    for run in (a, b):
        write_run(run, "mlp", 100, scripted(str(run), "mlp", 100, 2.1, 500, 500))
    runner = CliRunner()
    r = runner.invoke(app, ["tui", str(a), str(b)], prog_name="makemore")
    assert r.exit_code == 0, r.output
    assert len(no_screen) == 1 and no_screen[0].compare == [a, b]
    words = tmp_path / "words.txt"
    words.write_text("emma\n")
    for bad, why in ((tmp_path / "missing", "no such run directory"), (words, "not a directory"),
                     (tmp_path, "not a makemore run")):
        r = runner.invoke(app, ["tui", str(a), str(bad), str(b)], prog_name="makemore")
        assert r.exit_code == 2 and f"{bad}: {why}" in r.output and "Traceback" not in r.output
        assert len(r.output.strip().splitlines()) == 1
    r = runner.invoke(app, ["tui", str(a), str(tmp_path / "." / "a")], prog_name="makemore")
    assert r.exit_code == 2 and "give each run once" in r.output
    r = runner.invoke(app, ["tui", str(a), str(b), "--max-steps", "5"], prog_name="makemore")
    assert r.exit_code == 2 and "--max-steps applies only when training" in r.output
    assert len(no_screen) == 1  # none of the refusals opened a screen
    r = runner.invoke(app, ["tui", str(a)], prog_name="makemore")  # one run: followed, as before
    assert r.exit_code == 0 and no_screen[-1].compare is None and no_screen[-1].source["follow"] == a


def test_train_takes_one_data(tmp_path, monkeypatch):
    from makemore.cli import app

    monkeypatch.chdir(tmp_path)
    Path("words.txt").write_text("emma\nava\n")
    r = CliRunner().invoke(app, ["train", "words.txt", "names", "--max-steps", "1"], prog_name="makemore")
    assert r.exit_code == 2 and "train takes one DATA, not 2 (words.txt, names)" in r.output
    assert "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1
    assert not Path("runs").exists()  # nothing trained, nothing written


def test_tui_help_and_refusals_do_not_import_torch(tmp_path):
    code = ("import sys; from makemore.cli import app\n"
            "for argv in (['tui', '--help'], ['tui', sys.argv[1], sys.argv[2]]):\n"
            "    sys.argv = ['makemore', *argv]\n"
            "    try:\n        app()\n    except SystemExit as e:\n        print('exit', e.code)\n"
            "assert 'torch' not in sys.modules, 'heavy import'")
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "nope"), str(tmp_path)], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    assert "RUN [RUN...]" in result.stdout and "exit 0" in result.stdout and "exit 2" in result.stdout
    assert f"{tmp_path / 'nope'}: no such run directory" in result.stderr


def test_a_quiet_run_that_has_not_ended_is_stalled():
    from makemore.tui.overlay import run_status
    from makemore.tui.state import STALLED_AFTER, RunState

    state = RunState()
    for event in scripted("runs/x", "mlp", 100, 2.1, 500, 500, finished=False):
        state(event)
    snap = state.snapshot()
    assert run_status(snap, now=snap.last_event_time + 1) == "following"
    assert run_status(snap, now=snap.last_event_time + STALLED_AFTER + 1) == "stalled"
    state(scripted("runs/x", "mlp", 100, 2.1, 500, 500)[-1])  # its end: never stalled
    assert run_status(state.snapshot(), now=snap.last_event_time + STALLED_AFTER + 1) == "finished"
    empty = RunState()  # a metrics file with no start in it (empty): waiting, then stalled as the run view says
    assert run_status(empty.snapshot(), now=1e12) == "waiting"  # no file yet: waiting for as long as it takes
    empty.written(1000.0)
    assert run_status(empty.snapshot(), now=1001.0) == "waiting"
    assert run_status(empty.snapshot(), now=1000.0 + STALLED_AFTER + 1) == "stalled"


async def test_a_run_whose_summary_cannot_be_read_says_why(tmp_path):
    good, bad = tmp_path / "good", tmp_path / "bad"
    for run in (good, bad):
        write_run(run, "mlp", 100, scripted(str(run), "mlp", 100, 2.1, 500, 500))
    (bad / rundir.CONFIG).write_text("{not json", encoding="utf-8")
    app = create_app(compare=[good, bad], poll_interval=0.05, chart_interval=0.0)
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.screen.query_one(RunsTable)
        await wait_for(pilot, lambda: [r.status for r in table.rows] == ["finished", "unreadable"],
                       what="the summaries")
        assert "config.json" in (table.rows[1].error or "")
        assert len(app.screen.chart.curves[1].train) == 25  # its curve is still drawn from its metrics
        assert "unreadable" in screen_text(app) and app.is_running


def test_the_tui_refuses_bad_training_options_and_a_damaged_overlay_before_its_screen_opens(tmp_path):
    """Each refused in one line, exit 2, torch not imported: the screen never opens to show "training failed"."""
    good, bad, taken = tmp_path / "good", tmp_path / "bad", tmp_path / "taken"
    for run in (good, bad):
        write_run(run, "mlp", 100, scripted(str(run), "mlp", 100, 2.1, 500, 500))
    (bad / rundir.CONFIG).write_text("{not json", encoding="utf-8")
    taken.mkdir()
    (taken / "x").write_text("x")
    words = tmp_path / "words.txt"
    words.write_text("emma\nava\nmia\n")
    cases = [(["tui", str(good), str(bad)], f"{bad / rundir.CONFIG}: not valid JSON"),
             (["tui", str(bad)], f"{bad / rundir.CONFIG}: not valid JSON"),  # followed alone: refused alike
             (["tui", str(words), "--type", "bigram", "--eval-interval", "0"], "--eval-interval must be at least 1"),
             (["tui", str(words), "--type", "bigram", "--grad-accum", "0"], "--grad-accum must be between 1"),
             (["tui", str(words), "--type", "bigram", "--lr", "inf"], "--learning-rate must be a finite number"),
             (["tui", str(words), "--type", "bigram", "--device", "tpu"], "unknown device 'tpu'"),
             (["tui", str(words), "--type", "bigram", "-o", str(taken)],
              f"{taken}: a directory that is not empty and holds no makemore run")]
    code = ("import json, sys; from makemore.cli import app\n"
            "for argv in json.loads(sys.argv[1]):\n"
            "    sys.argv = ['makemore', *argv]\n"
            "    try:\n        app()\n    except SystemExit as e:\n        print('exit', e.code, flush=True)\n"
            "    print('---', file=sys.stderr, flush=True)\n"
            "print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code, json.dumps([args for args, _ in cases])],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:-1] == ["exit 2"] * len(cases) + ["False"], result.stdout
    errors = result.stderr.split("---\n")[:-1]
    for (args, message), stderr in zip(cases, errors, strict=True):
        assert len(stderr.strip().splitlines()) == 1 and stderr.startswith("error: ") and message in stderr, \
            (args, stderr)
    assert not (tmp_path / "runs").exists()


def test_a_token_runs_losses_are_marked_per_token_beside_per_character_ones():
    """A token run's losses are nats per token: marked "*" in the legend and the table, the axis says both units,
    and the lowest val is picked among runs of the same unit (before, the axis said nats/char for every run)."""
    from rich.console import Console

    from makemore.tui.overlay import RunRow, loss_axis
    from makemore.tui.widgets.run_legend import legend_line, runs_table

    chars, tokens = looks(2)
    rows = (RunRow("mlp", chars, "mlp", 11_897, 200, 3.0, 2.2, 199, 2.19, "finished"),
            RunRow("tok", tokens, "transformer", 288_640, 5, 1.0, 3.47, 5, None, "finished", per_token=True))
    assert str(legend_line(rows[0])).endswith("best val 2.2000 @ 199")
    assert str(legend_line(rows[1])).endswith("best val 3.4700* @ 5")
    console = Console(width=120, record=True, file=open("/dev/null", "w"))
    console.print(runs_table(rows))
    table = console.export_text()
    assert "2.2000" in table and "2.1900" in table and "3.4700*" in table and "2.2000*" not in table
    assert loss_axis([False, True]) == "loss (nats/char; * nats/token)"
    assert loss_axis([False, False]) == "loss (nats/char)" and loss_axis([True]) == "loss (nats/token)"


def test_a_long_run_name_is_cut_in_its_middle_beside_its_marker_and_the_figures_stay_whole():
    """A long run name folded onto lines of its own, its marker left alone on the row above (at 80 columns only
    the first run's row was in view); it is cut on its row. Cut at its end, two names that differ only there
    (a learning rate) read alike: the cut is in the middle."""
    from rich.console import Console

    from makemore.tui.overlay import RunRow
    from makemore.tui.widgets.run_legend import runs_table

    a, b = looks(2)
    c = looks(3)[2]
    long = "this-is-a-very-long-run-directory-name-for-testing-overflow-mlp"
    rows = (RunRow(long + "-lr0.01", a, "mlp", 23_259, 300, 2.0, 2.1643, 299, 2.1657, "finished"),
            RunRow("shak1", b, "transformer", 226_432, 200, 30.0, 2.55, 200, None, "finished"),
            RunRow(long + "-lr0.003", c, "mlp", 23_259, 300, 2.0, 2.1701, 299, 2.1702, "finished"))
    for width in (76, 116):
        console = Console(width=width, record=True, file=open("/dev/null", "w"))
        console.print(runs_table(rows))
        lines = console.export_text().splitlines()
        assert len(lines) == 4, lines  # the header and one row a run
        first, third = lines[1].split(" mlp ")[0].strip(), lines[3].split(" mlp ")[0].strip()
        assert first.startswith(f"{a.marker} this-") and first.endswith("-lr0.01") and "…" in first, lines
        assert third.endswith("-lr0.003") and first[2:] != third[2:], lines  # told apart
        assert all(figure in lines[1] for figure in ("23,259", "300", "2.1643", "2.1657", "finished")), lines
    wide = (RunRow("実験" * 10 + "-lr0.01", a, "mlp", 23_259, 300, 2.0, 2.1643, 299, 2.1657, "finished"),)
    console = Console(width=76, record=True, file=open("/dev/null", "w"))
    console.print(runs_table(wide))
    row = console.export_text().splitlines()[1]  # cut by cells, a wide character two: the end kept
    assert row.split(" mlp ")[0].strip().endswith("実験-lr0.01") and "…" in row and "23,259" in row, row
