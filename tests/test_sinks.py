"""Where events go: metrics.jsonl and back, the console off a terminal, TensorBoard."""

from __future__ import annotations

import io
import json
import types

import pytest

from makemore import rundir
from makemore.events import (EVENT_TYPES, Arithmetic, Bigrams, Diagnostics, Eval, Failed, Finished, InitialLoss,
                             LayerStats, Sample, Samples, Saved, Started, Step, WeightStats, event_from_json)
from makemore.sinks import ConsoleSink, JsonlSink

# one of each event type, with the values that are easy to lose: None, non-ASCII text, markup-like words,
# floats that need all their digits, an empty list
EVENTS = [
    Started(run_dir="runs/zoë-[x]", model_type="transformer", num_params=204_544, device="cpu",
            dataset="names", num_words=4131, vocab=[".", "a", "ë", "👩\u200d"], max_steps=0, batch_size=128,
            start_step=40, time=1796000000.123456, max_time=60.0),
    Started(run_dir="runs/a", model_type="bigram", num_params=729, device="cuda:1", dataset="a", num_words=3,
            vocab=[".", "a"], max_steps=500, batch_size=256),
    Step(step=10, loss=2.718281828459045, lr=1 / 3, steps_per_s=41.3, tokens_per_s=21_100.5, elapsed=0.1,
         device_memory=123_456_789),
    Step(step=20, loss=1e-300, lr=6e-3, steps_per_s=0.0, tokens_per_s=0.0, elapsed=1e6),
    Eval(step=20, train_loss=2.0, val_loss=2.1000000000000001, best_val_loss=2.05, best_step=10),
    Samples(step=20, temperature=0.8, samples=[Sample("emma", "train"), Sample("zoë", "test"),
                                               Sample("[/b]", "new"), Sample("", "new")]),
    Samples(step=30, temperature=1.0, samples=[]),
    Bigrams(step=20, probs=[[0.1, 0.9], [1 / 3, 2 / 3]]),
    Saved(step=20, path="runs/a/model.safetensors", reason="best"),
    Finished(step=500, reason="max_steps", best_val_loss=2.05, test_loss=None, elapsed=12.5),
    Failed(step=7, message="training diverged: the loss became NaN or infinite at step 7"),
    InitialLoss(loss=3.3012, uniform=3.295836866004329, far_above=False),
    Arithmetic(step=1, dtype="bfloat16", matmul_precision="highest", native_gelu=True, dtype_chosen=True),
    Diagnostics(step=100, lr=6e-3, grad_norm=None,
                layers=[LayerStats("h.0.mlp.gelu", "gelu", 256, -0.1, 0.9, 0.125, 0, [0.5, 0.5], -5.0, 5.0),
                        LayerStats("lm_head", "linear", 27, 0.0, 1.5, None, None, [1.0], -5.0, 5.0)],
                weights=[WeightStats("lm_head.weight", [27, 64], 0.05, 0.0, 1e-3, 0.02, None)],
                embedding=[[0.1, -0.2], [1 / 3, 2.5]], embedding_variance=None),
    Samples(step=40, temperature=0.8, samples=[], text="ROMEO:\nWhat, zoë [b]\n\n"),
]


def test_every_event_type_survives_metrics_jsonl(tmp_path):
    """Written as `makemore train` writes them, read back as the run directory and the TUI's follower read
    them: equal events."""
    assert {type(e) for e in EVENTS} == set(EVENT_TYPES.values())  # a new event type needs an example here
    sink = JsonlSink(tmp_path)
    for event in EVENTS:
        sink(event)
    sink.close()
    lines = (tmp_path / rundir.METRICS).read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(EVENTS) and all(json.loads(line)["event"] for line in lines)
    assert [event_from_json(json.loads(line)) for line in lines] == EVENTS
    assert list(rundir.RunDir(tmp_path).events()) == EVENTS  # `info`, --resume and the API read them so
    from makemore.tui.follow import MetricsTail

    assert MetricsTail(tmp_path).poll() == EVENTS  # the TUI follows a run so
    # the samples of each evaluation also go to samples.txt, one word and its tag per line
    assert (tmp_path / rundir.SAMPLES).read_text(encoding="utf-8").splitlines() == [
        "# step 20 temperature 0.8", "emma\ttrain", "zoë\ttest", "[/b]\tnew", "\tnew",
        "# step 30 temperature 1",
        # a text continuation as it was drawn, after its header
        "# step 40 temperature 0.8", "ROMEO:", "What, zoë [b]", "", ""]


def test_unknown_or_malformed_lines_are_not_events():
    assert event_from_json({"event": "nonsense", "step": 1}) is None
    assert event_from_json({"event": "eval", "step": 1}) is None  # fields missing
    assert event_from_json(["eval"]) is None


def _plain_console_sink(monkeypatch, quiet: bool = False):
    """A ConsoleSink printing to a string, off a terminal, with a clock the test moves."""
    from rich.console import Console

    clock = types.SimpleNamespace(now=1000.0)
    monkeypatch.setattr("makemore.sinks.time", types.SimpleNamespace(monotonic=lambda: clock.now))
    out = io.StringIO()
    console = Console(file=out, width=300, force_terminal=False, color_system=None)
    return ConsoleSink(console=console, quiet=quiet), out, clock


def test_the_console_says_when_auto_chose_bfloat16(monkeypatch):
    """--dtype auto's bfloat16 changes the arithmetic: the console says so, once; a dtype given, or float32
    chosen, needs no line; --quiet prints none."""
    choice = dict(step=1, matmul_precision="highest", native_gelu=False)
    for event, said in ((Arithmetic(dtype="bfloat16", dtype_chosen=True, **choice), True),
                        (Arithmetic(dtype="bfloat16", dtype_chosen=False, **choice), False),
                        (Arithmetic(dtype="float32", dtype_chosen=True, **choice), False)):
        for quiet in (False, True):
            sink, out, _ = _plain_console_sink(monkeypatch, quiet=quiet)
            sink(event)
            assert ("training under bfloat16 autocast" in out.getvalue()) is (said and not quiet), (event, quiet)


def test_console_sink_prints_plain_lines_off_a_terminal(monkeypatch):
    sink, out, clock = _plain_console_sink(monkeypatch)
    assert not sink.live
    started, timed_step, step, evaluation, samples = EVENTS[1], EVENTS[3], EVENTS[2], EVENTS[4], EVENTS[5]
    expected = []
    sink(started)
    expected.append("bigram · 729 parameters · cuda:1 · 3 training words · vocab 2 → runs/a")
    sink(step)
    expected.append("step 10/500 loss 2.7183 lr 3.33e-01 41.3 it/s")
    sink(Step(step=11, loss=1.0, lr=1.0, steps_per_s=1.0, tokens_per_s=1.0, elapsed=1.0))  # within 10 s: quiet
    clock.now += 10
    sink(timed_step)
    expected.append("step 20/500 loss 0.0000 lr 6.00e-03 0.0 it/s")
    sink(evaluation)
    expected.append("step 20: train 2.0000 val 2.1000 (best 2.0500 @ 10)")
    sink(samples)
    expected.append("  samples: emma  zoë  [/b]  ")  # words are data, not markup
    sink(Samples(step=20, temperature=1.0, samples=[]))  # num_samples 0: an empty "samples:" line was printed
    sink(EVENTS[7])  # bigrams: nothing
    sink(EVENTS[8])  # a periodic save: nothing
    sink(Saved(step=25, path="runs/a/last.safetensors", reason="interrupt"))
    expected.append("saved runs/a/last.safetensors at step 25")
    sink(EVENTS[10])  # a failure: the command prints its message
    sink(EVENTS[9])
    expected.append("done (max_steps) at step 500 in 0:12: best val 2.0500, no test split")
    sink.close()
    assert out.getvalue().splitlines() == expected


def test_console_sink_on_a_time_budget_and_quiet(monkeypatch):
    sink, out, clock = _plain_console_sink(monkeypatch)
    sink(EVENTS[0])  # no step limit, 60 s: progress is told in seconds
    sink(Step(step=5, loss=2.0, lr=1e-3, steps_per_s=5.0, tokens_per_s=1.0, elapsed=12.4))
    sink(Finished(step=9, reason="max_time", best_val_loss=None, test_loss=1.98766, elapsed=3725.0))
    assert out.getvalue().splitlines() == [
        "transformer · 204,544 parameters · cpu · 4,131 training words · vocab 4 → runs/zoë-[x] "
        "(resuming at step 40)",
        "step 5 (12/60 s) loss 2.0000 lr 1.00e-03 5.0 it/s",
        "done (max_time) at step 9 in 1:02:05: best val -, test 1.9877"]
    quiet, out, _ = _plain_console_sink(monkeypatch, quiet=True)
    for event in EVENTS:
        quiet(event)
    assert out.getvalue().splitlines() == ["done (max_steps) at step 500 in 0:12: best val 2.0500, no test split"]


def test_tensorboard_sink_writes_the_scalars(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    from makemore.sinks import TensorBoardSink

    sink = TensorBoardSink(tmp_path)
    for event in EVENTS:
        sink(event)
    sink.close()
    logs = EventAccumulator(str(tmp_path / "tensorboard"))
    logs.Reload()
    scalars = lambda tag: [(s.step, s.value) for s in logs.Scalars(tag)]
    steps = [e for e in EVENTS if isinstance(e, Step)]
    assert scalars("loss/train_step") == [(e.step, pytest.approx(e.loss, rel=1e-6)) for e in steps]
    assert scalars("lr") == [(e.step, pytest.approx(e.lr, rel=1e-6)) for e in steps]
    assert scalars("loss/train") == [(20, pytest.approx(2.0))]
    assert scalars("loss/val") == [(20, pytest.approx(2.1))]
    texts = {t.step: tensor_util.make_ndarray(t.tensor_proto).item().decode() for t in
             logs.Tensors("samples/text_summary")}
    assert texts[20].split() == ["emma", "zoë", "[/b]"]


def test_started_says_what_its_count_counts_for_runs_written_before_it_said_so():
    """A started event names its unit; one from before the field existed (unit "") is read by its mode and
    vocabulary: a token's symbol may be longer than one character."""
    def started(**kw):
        return Started(run_dir="r", model_type="transformer", num_params=1, device="cpu", dataset="d", num_words=9,
                       vocab=kw.pop("vocab", ["<>", "a", "b"]), max_steps=1, batch_size=1, **kw)

    assert started(unit="token", mode="text").item == "token"
    assert started(mode="text", vocab=["<>", "a", "th"]).item == "token"
    assert started(mode="text").item == "character"
    assert started().item == "word"


def test_tensorboard_missing_is_refused_before_a_run_is_made_or_changed(tmp_path, small_words):
    """Without the tensorboard package, --tensorboard was refused only once the run directory existed (an empty
    run left behind, which then blocked -o), and a refused --resume had already saved its new length."""
    import os
    import subprocess
    import sys

    hidden = tmp_path / "hidden" / "tensorboard"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text("raise ImportError('not installed')\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "hidden")}

    def train(*args):
        return subprocess.run([sys.executable, "-m", "makemore", "train", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)

    done = train(str(small_words), "--type", "bigram", "--max-steps", "2", "-o", "run", "--tensorboard")
    assert done.returncode == 2 and done.stderr == "error: --tensorboard needs the tensorboard package: pip " \
                                                   "install 'makemore[tensorboard]'\n", done.stderr
    assert not (tmp_path / "run").exists()
    assert train(str(small_words), "--type", "bigram", "--max-steps", "2", "-q", "-o", "run").returncode == 0
    config = (tmp_path / "run" / "config.json").read_bytes()
    done = train("--resume", "run", "--max-steps", "4", "--tensorboard")
    assert done.returncode == 2 and "--tensorboard needs the tensorboard package" in done.stderr
    assert (tmp_path / "run" / "config.json").read_bytes() == config


def test_a_duration_is_shown_alike_everywhere_to_the_nearest_second():
    """The TUI's run panel and overlay (fmt_time) cut 2.6 s to 0:02 where `runs` and `info` said 3 s."""
    from makemore.instruments import _fmt_seconds
    from makemore.sinks import fmt_time
    from makemore.tui.widgets import run_legend, stats  # the run panel, the overlay's legend and chart

    for shown in (fmt_time, _fmt_seconds, stats.fmt_time, run_legend.fmt_time):  # each against what it must say
        assert [shown(s) for s in (2.6, 59.5, 3599.6, 7321.2, 0.4)] == ["0:03", "1:00", "1:00:00", "2:02:01", "0:00"]
    assert fmt_time(-1) == fmt_time(float("nan")) == fmt_time(None) == "-"
