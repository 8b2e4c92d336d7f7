"""The whole path: data -> model -> trainer -> events -> run directory -> load -> sample/eval."""

from __future__ import annotations

import itertools
import json
import math

import pytest
import torch

from makemore import checkpoint as ckpt
from makemore import rundir
from makemore.events import Eval, Finished, Samples, Saved, Step
from makemore.errors import MakemoreError
from makemore.training import Request, new_trainer, resume_trainer
from makemore.rundir import RunDir
from makemore.sample import generate

TINY = {"n_layer": 1, "n_head": 2, "n_embd": 16}


def run_all(trainer, stop_at: int | None = None):
    events = []
    for event in trainer.run():
        events.append(event)
        if stop_at is not None and isinstance(event, Step) and event.step == stop_at:
            trainer.request_stop()
    return events


def test_short_run_on_names_learns(names_path, tmp_path):
    """A small Transformer, 300 steps: the test loss falls far below the uniform ln(27) = 3.30."""
    req = Request(data=str(names_path), out=tmp_path / "run", hyper={"n_layer": 2, "n_head": 2, "n_embd": 32},
                  train={"max_steps": 300, "eval_interval": 150, "batch_size": 32, "learning_rate": 5e-3})
    trainer, prepared = new_trainer(req)
    assert len(prepared.test) == len(prepared.val) == 1000
    events = run_all(trainer)
    evals = [e for e in events if isinstance(e, Eval)]
    assert abs(evals[0].val_loss - math.log(27)) < 0.1  # a sane initialisation
    finished = events[-1]
    assert isinstance(finished, Finished) and finished.reason == "max_steps"
    assert finished.test_loss < 2.5  # near the count bigram's 2.45 after a few seconds
    for name in (rundir.CONFIG, rundir.SPLIT, rundir.BEST, rundir.LAST, rundir.LAST_STATE):
        assert (trainer.run_dir / name).is_file()
    split = json.loads((trainer.run_dir / rundir.SPLIT).read_text())
    assert split["test"] == prepared.test and split["val"] == prepared.val


def test_checkpoint_round_trip_gives_identical_logits(small_words, tmp_path):
    req = Request(data=str(small_words), out=tmp_path / "run", hyper=TINY,
                  train={"max_steps": 30, "eval_interval": 30})
    trainer, _ = new_trainer(req)
    run_all(trainer)
    loaded = RunDir.open(trainer.run_dir).load_model("last")
    idx = torch.randint(0, len(loaded.vocab), (4, 8))
    idx[:, 0] = 0
    trainer.model.eval()
    expected, _ = trainer.model(idx)
    got, _ = loaded.model(idx)
    assert torch.equal(expected, got)


@pytest.mark.parametrize("ema, masks", [(0.0, 0), (0.9, 0), (0.0, 3)])
def test_resume_continues_exactly(small_words, tmp_path, ema, masks):
    """A run stopped at step 30 and resumed logs the same losses as one that never stopped (with the moving
    average of the weights too: the evaluations after the resume use it; and with a model that averages dropout
    masks, whose evaluations and samples draw no random numbers of the training's)."""
    common = dict(data=str(small_words), hyper={**TINY, "dropout": 0.1, "dropout_samples": masks},
                  train={"max_steps": 60, "eval_interval": 20, "batch_size": 8, "ema": ema})
    straight, _ = new_trainer(Request(out=tmp_path / "a", **common))
    a = run_all(straight)
    stopped, _ = new_trainer(Request(out=tmp_path / "b", **common))
    b1 = run_all(stopped, stop_at=30)
    assert b1[-1].reason == "stopped" and b1[-1].step == 30
    b2 = run_all(resume_trainer(tmp_path / "b"))
    steps_a = {e.step: e.loss for e in a if isinstance(e, Step)}
    steps_b = {e.step: e.loss for e in b1 + b2 if isinstance(e, Step)}
    assert steps_a.keys() == steps_b.keys()
    for step in steps_a:
        assert steps_a[step] == steps_b[step], step
    evals_a = {e.step: (e.train_loss, e.val_loss) for e in a if isinstance(e, Eval)}
    evals_b = {e.step: (e.train_loss, e.val_loss) for e in b2 if isinstance(e, Eval)}
    assert evals_b and all(evals_a[s] == evals_b[s] for s in evals_b)
    assert a[-1].test_loss == b2[-1].test_loss


def test_moving_average_of_the_weights_is_what_evaluation_sees(small_words, tmp_path):
    trainer, _ = new_trainer(Request(data=str(small_words), out=tmp_path / "r", hyper=TINY,
                                     train={"max_steps": 6, "eval_interval": 3, "ema": 0.5}))
    trainer.cfg.log_interval = 1  # a Step event after every step
    saved_best = False
    weights = lambda: torch.cat([p.detach().reshape(-1) for p in trainer.model.parameters()])
    averaged = lambda: torch.cat([e.reshape(-1) for e in trainer.ema])  # the same order: groups of flat buffers
    order = [p for g in trainer.optimizer.param_groups for p in g["params"]]
    assert [p.numel() for p in order] == [e.numel() for e in trainer.ema]
    expected = torch.cat([p.detach().reshape(-1) for p in order])
    for event in trainer.run():
        if isinstance(event, Step):  # after step k: average += (1 - decay) * (weights - average)
            decay = min(0.5, event.step / (9 + event.step))
            expected.lerp_(torch.cat([p.detach().reshape(-1) for p in order]), 1 - decay)
            torch.testing.assert_close(averaged(), expected, rtol=1e-6, atol=1e-7)
        if isinstance(event, Saved) and event.reason == "best" and event.step > 0:
            best, _ = ckpt.load_tensors(tmp_path / "r" / rundir.BEST)  # the averaged weights, not the live ones
            # events of an evaluation arrive while the model holds the averaged weights
            assert all(torch.equal(best[k], v) for k, v in trainer.model.state_dict().items())
            assert torch.equal(torch.cat([p.detach().reshape(-1) for p in order]), averaged())
            saved_best = True
    assert saved_best
    live = weights()
    with trainer.averaged():
        inside = weights()
    assert not torch.equal(inside, live)
    assert torch.equal(weights(), live)  # the live weights come back


def test_sampling_with_a_seed_is_deterministic(small_words, tmp_path):
    trainer, prepared = new_trainer(Request(data=str(small_words), out=tmp_path / "r", hyper=TINY,
                                            train={"max_steps": 20, "eval_interval": 20}))
    run_all(trainer)
    draw = lambda seed: [g.word for g in generate(trainer.model, prepared.vocab, 30,
                                                  generator=torch.Generator().manual_seed(seed))]
    assert draw(1) == draw(1)
    assert draw(1) != draw(2)


def test_samples_during_training_do_not_change_the_loss_curve(small_words, tmp_path):
    common = dict(data=str(small_words), hyper=TINY, train={"max_steps": 40, "eval_interval": 10})
    t1, _ = new_trainer(Request(out=tmp_path / "a", **common))
    a = [e.loss for e in run_all(t1) if isinstance(e, Step)]
    t2, _ = new_trainer(Request(out=tmp_path / "b", **common))
    b = []
    for event in t2.run():
        if isinstance(event, Step):
            b.append(event.loss)
            t2.request_samples(temperature=0.5)  # extra samples at every log line
    assert a == b


def test_samples_are_tagged(tmp_path):
    """Each sample is tagged by the stored split: "train", "test" (a validation or test word) or "new". The words
    are the strings of one to four letters over {a, b} without "bb", so a barely trained model draws all three
    kinds ("bb", "abb" and the like are new)."""
    words = ["".join(w) for n in range(1, 5) for w in itertools.product("ab", repeat=n) if "bb" not in "".join(w)]
    (tmp_path / "ab.txt").write_text("\n".join(words) + "\n", encoding="utf-8")
    trainer, _ = new_trainer(Request(data=str(tmp_path / "ab.txt"), model_type="bigram", out=tmp_path / "r",
                                     train={"max_steps": 10, "eval_interval": 10}))
    trainer.cfg.num_samples = 100
    samples = [s for e in run_all(trainer) if isinstance(e, Samples) for s in e.samples]
    split = json.loads((tmp_path / "r" / rundir.SPLIT).read_text())
    train, held_out = set(split["train"]), set(split["val"]) | set(split["test"])
    assert split["val"] and split["test"] and not train & held_out
    expected = ["empty" if not s.word else "train" if s.word in train else "test" if s.word in held_out else "new"
                for s in samples]
    assert [s.tag for s in samples] == expected
    assert {"train", "test", "new"} <= set(expected)  # each tag was checked at least once
    assert any(s.word in split["val"] for s in samples)  # a validation word counts as held out too


def test_output_directory_is_never_overwritten(small_words, tmp_path):
    from makemore.errors import MakemoreError

    out = tmp_path / "r"
    trainer, _ = new_trainer(Request(data=str(small_words), out=out, hyper=TINY, train={"max_steps": 5}))
    run_all(trainer)
    before = (out / rundir.CONFIG).read_bytes()
    with pytest.raises(MakemoreError, match="--resume"):
        new_trainer(Request(data=str(small_words), out=out, hyper=TINY))
    assert (out / rundir.CONFIG).read_bytes() == before


def test_recipe_is_shortened_for_a_small_word_list_unless_steps_are_given(small_words, tmp_path):
    from makemore.models import recipe_for

    recipe = recipe_for("transformer")
    trainer, prepared = new_trainer(Request(data=str(small_words), out=tmp_path / "a", hyper=TINY))
    expected = math.ceil(recipe["max_epochs"] * len(prepared.train) / recipe["batch_size"])
    assert trainer.cfg.max_steps == expected < recipe["max_steps"]
    interval = trainer.cfg.eval_interval
    evaluated = sorted({*range(interval, expected + 1, interval), expected})
    assert 4 <= len(evaluated) <= 5 and evaluated[-1] - evaluated[-2] >= interval / 4  # none just before the end
    given, _ = new_trainer(Request(data=str(small_words), out=tmp_path / "b", hyper=TINY,
                                   train={"max_steps": 777}))
    assert given.cfg.max_steps == 777
    saved = json.loads((trainer.run_dir / rundir.CONFIG).read_text())
    assert saved["train"]["max_steps"] == expected  # the run records what it actually does


@pytest.mark.parametrize("steps, interval", [(646, 130), (21, 6), (20, 4), (17, 5)])
def test_a_shortened_recipe_evaluates_four_or_five_times_none_just_before_the_end(steps, interval):
    from makemore.training import auto_eval_interval

    assert auto_eval_interval(steps) == interval


def test_a_time_budget_alone_decides_the_length_and_picks_the_budgets_settings(small_words, tmp_path):
    from makemore.training import check_request
    from makemore.models import get_family

    family = get_family("transformer")
    seconds, settings = family.budgets[0]
    hyper, cfg = check_request(Request(data=str(small_words), train={"max_time": seconds}))
    assert cfg.max_steps == 0 and cfg.max_time == seconds  # no step limit
    for key, value in settings.items():
        assert (hyper[key] if key in family.hyper else getattr(cfg, key)) == value
    # below the threshold, with --max-steps, or where the user set the value: the defaults / the user's choice
    hyper, cfg = check_request(Request(data=str(small_words), train={"max_time": seconds / 2}))
    assert all(hyper[k] == family.hyper[k] for k in settings if k in family.hyper) and cfg.max_steps == 0
    hyper, cfg = check_request(Request(data=str(small_words), train={"max_time": seconds, "max_steps": 50}))
    assert cfg.max_steps == 50 and all(hyper[k] == family.hyper[k] for k in settings if k in family.hyper)
    hyper, _ = check_request(Request(data=str(small_words), hyper={"n_embd": 24}, train={"max_time": seconds}))
    assert hyper["n_embd"] == 24


def test_a_timed_run_stops_on_time_and_resumes_only_with_more_time(small_words, tmp_path):
    trainer, _ = new_trainer(Request(data=str(small_words), out=tmp_path / "r", hyper=TINY,
                                     train={"max_time": 1.5, "eval_interval": 50}))
    events = run_all(trainer)
    finished = events[-1]
    assert isinstance(finished, Finished) and finished.reason == "max_time"
    assert finished.step > 0 and finished.elapsed >= 1.5  # it used its budget (how fast: benchmarks/)
    started = events[0]
    assert started.max_steps == 0 and started.max_time == 1.5
    (tmp_path / "r" / "metrics.jsonl").write_text("".join(json.dumps(e.to_json()) + "\n" for e in events))
    with pytest.raises(MakemoreError, match=r"already trained \d+\.\d s, past its --max-time of 1.5 s"):
        resume_trainer(tmp_path / "r")
    # more steps do not lift the time budget: refused as such (before, it "trained" no step and exited 0)
    before = (tmp_path / "r" / "config.json").read_bytes()
    with pytest.raises(MakemoreError, match="pass a larger --max-time"):
        resume_trainer(tmp_path / "r", {"max_steps": 10**6})
    assert (tmp_path / "r" / "config.json").read_bytes() == before
    more = resume_trainer(tmp_path / "r", {"max_time": 2.5})
    again = run_all(more)
    assert again[-1].reason == "max_time" and again[-1].step > finished.step


def test_a_run_its_time_ended_before_a_checkpoint_is_refused_the_same_time(small_words, tmp_path):
    """A --max-time so short it ends the run at step 0, before its first checkpoint: resumed with only more steps,
    it started over and ended at step 0 again, exit 0. Refused, as a run past its time is; more time goes on."""
    out = tmp_path / "r"
    events = run_all(new_trainer(Request(data=str(small_words), out=out, hyper=TINY,
                                         train={"max_time": 1e-9}))[0])
    assert events[-1].reason == "max_time" and events[-1].step == 0 and not RunDir(out).has_state()
    (out / "metrics.jsonl").write_text("".join(json.dumps(e.to_json()) + "\n" for e in events))
    with pytest.raises(MakemoreError, match=r"its --max-time of 1e-09 s ended it before its first checkpoint"):
        resume_trainer(out, {"max_steps": 30})
    again = run_all(resume_trainer(out, {"max_steps": 30, "max_time": 600}))
    assert again[-1].reason == "max_steps" and again[-1].step == 30
    # stopped (Ctrl-C, q) before its first checkpoint, with time to spare: it starts over, not refused
    stopped = tmp_path / "stopped"
    trainer, _ = new_trainer(Request(data=str(small_words), out=stopped, hyper=TINY,
                                     train={"max_time": 3600, "max_steps": 10}))
    trainer.request_stop()
    events = run_all(trainer)
    assert events[-1].reason == "stopped" and events[-1].step == 0 and not RunDir(stopped).has_state()
    (stopped / "metrics.jsonl").write_text("".join(json.dumps(e.to_json()) + "\n" for e in events))
    assert run_all(resume_trainer(stopped, {}))[-1].step == 10


def test_a_resume_that_extends_a_run_keeps_its_new_length_through_an_interruption(small_words, tmp_path):
    """--resume --max-steps N configures the run for N steps: stopped on the way, it resumes again without
    repeating N (before, it fell back to the first length and refused: "already trained 20 of 10 steps")."""
    out = tmp_path / "r"

    def save(events):  # what the JSON sink writes
        with open(out / "metrics.jsonl", "a") as f:
            f.writelines(json.dumps(e.to_json()) + "\n" for e in events)

    trainer, _ = new_trainer(Request(data=str(small_words), out=out, hyper=TINY,
                                     train={"max_steps": 10, "eval_interval": 5, "log_interval": 5}))
    save(run_all(trainer))
    extended = resume_trainer(out, {"max_steps": 40})
    assert json.loads((out / "config.json").read_text())["train"]["max_steps"] == 40
    events = run_all(extended, stop_at=20)
    save(events)
    assert events[-1].reason == "stopped" and events[-1].step == 20
    again = resume_trainer(out)  # no --max-steps: the run's own 40
    assert again.cfg.max_steps == 40 and again.step == 20
    assert run_all(again)[-1].step == 40
    assert RunDir(out).config.train.max_steps == 40


def test_flat_parameter_buffers_train_exactly_like_per_tensor_ones(small_words, tmp_path):
    """The trainer keeps the weights in two flat buffers (one AdamW update, one clipping norm); the steps must be
    those of the usual per-tensor optimizer, and the model's parameters must stay views of the buffers."""
    from makemore.trainer import make_optimizer

    train = {"max_steps": 30, "batch_size": 16, "learning_rate": 3e-2, "grad_clip": 0.5}  # clipping bites
    flat, _ = new_trainer(Request(data=str(small_words), out=tmp_path / "a", hyper=TINY, train=train))
    plain, _ = new_trainer(Request(data=str(small_words), out=tmp_path / "b", hyper=TINY, train=train))
    plain.optimizer = make_optimizer(plain.model, plain.cfg, flat=False)  # one state per parameter tensor
    plain.trained = list(plain.model.parameters())
    if plain.ema is not None:  # the moving average, per tensor too
        plain.ema = [t.detach().clone() for t in plain.trained]
    assert len(flat.trained) == 2 and len(plain.trained) > 2
    for _ in range(30):
        a, _ = flat._train_step()
        b, _ = plain._train_step()
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    # the same function (raw weights may differ where the gradient is zero up to rounding, e.g. the key bias,
    # which Adam's normalisation turns into different noise)
    x, _ = flat.val_words.batch(torch.arange(len(flat.val_words)))
    flat.model.eval(), plain.model.eval()
    torch.testing.assert_close(flat.model(x)[0], plain.model(x)[0], rtol=1e-4, atol=1e-5)
    buffers = {p.untyped_storage().data_ptr() for p in flat.trained}
    assert all(p.untyped_storage().data_ptr() in buffers for p in flat.model.parameters())


def test_a_run_given_few_steps_leaves_its_warm_up(small_words):
    """--max-steps 60 with a recipe that warms up over 100 steps: before, the whole run stayed in the warm-up (its
    peak learning rate never reached); now a tenth of the steps, as for a run cut short by a small word list. A
    warm-up given, or a run long enough, keeps its own."""
    from makemore.training import check_request

    def warmup(**train) -> int:
        return check_request(Request(data=str(small_words), train=train))[1].warmup_steps

    assert warmup(max_steps=60) == 6 and warmup(max_steps=5) == 1
    assert warmup(max_steps=60, warmup_steps=50) == 50
    assert warmup(max_steps=5000) == warmup() == 100


@pytest.mark.parametrize("at, stopped", [(3, True), (6, False), ("finished", False)])
def test_a_signal_stops_a_run_at_the_next_step_but_not_one_past_its_last(small_words, tmp_path, at, stopped):
    """Ctrl-C (or SIGTERM) during the evaluation at step 3 of 6 stops the run there, and it counts as interrupted
    (exit 130); during the evaluation of its last step, or once it has finished, the run ends as it would have,
    finished (before: exit 130 and "interrupted" for a run that had finished)."""
    import os
    import signal

    from makemore.training import drive

    trainer, _ = new_trainer(Request(data=str(small_words), out=tmp_path / "r", hyper=TINY,
                                     train={"max_steps": 6, "eval_interval": 3}))

    def send(event):
        if isinstance(event, Eval) and event.step == at or isinstance(event, Finished) and at == "finished":
            os.kill(os.getpid(), signal.SIGTERM)

    last = drive(trainer, [send], handle_sigint=True, handle_term=True)
    assert isinstance(last, Finished) and last.reason == ("stopped" if stopped else "max_steps")
    assert last.step == (at if stopped else 6) and trainer.interrupted is stopped
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is the driver's only while it runs


def test_a_signal_the_process_ignores_stays_ignored_and_the_api_leaves_sigterm_alone(small_words, tmp_path):
    """Under `nohup` SIGHUP is ignored, and stays so while a run trains; the Python API (handle_term off) takes
    Ctrl-C only: a script's SIGTERM keeps its own meaning."""
    import os
    import signal

    from makemore.training import drive

    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        trainer, _ = new_trainer(Request(data=str(small_words), out=tmp_path / "r", hyper=TINY,
                                         train={"max_steps": 6, "eval_interval": 3}))
        seen = {}

        def send(event):
            if isinstance(event, Eval) and event.step == 3:
                seen["term"] = signal.getsignal(signal.SIGTERM)
                os.kill(os.getpid(), signal.SIGHUP)

        last = drive(trainer, [send], handle_sigint=True, handle_term=True)
        assert last.reason == "max_steps" and not trainer.interrupted
        assert callable(seen["term"])  # the command line's stop on SIGTERM was in place
        trainer, _ = new_trainer(Request(data=str(small_words), out=tmp_path / "api", hyper=TINY,
                                         train={"max_steps": 3, "eval_interval": 3}))
        drive(trainer, [lambda e: seen.update(api=signal.getsignal(signal.SIGTERM))], handle_sigint=True)
        assert seen["api"] is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_a_run_stopped_between_two_progress_records_resumes_the_same_curve(small_words, tmp_path):
    """A stop after step 33 (progress is recorded every 10 steps): the resumed run's record at step 40 averaged
    steps 34-40 only, where the run that never stopped averages 31-40; the sum so far is in the run's state."""
    common = dict(data=str(small_words), hyper={**TINY, "dropout": 0.1},
                  train={"max_steps": 50, "eval_interval": 20, "batch_size": 8})
    a = run_all(new_trainer(Request(out=tmp_path / "a", **common))[0])
    stopped, _ = new_trainer(Request(out=tmp_path / "b", **common))
    step = stopped._train_step

    def stepping():  # a stop asked in the middle of a progress window: after step 33
        done = step()
        if stopped.step == 32:
            stopped.request_stop()
        return done

    stopped._train_step = stepping
    b1 = run_all(stopped)
    assert b1[-1].reason == "stopped" and b1[-1].step == 33
    b2 = run_all(resume_trainer(tmp_path / "b"))
    steps_a = {e.step: e.loss for e in a if isinstance(e, Step)}
    steps_b = {e.step: e.loss for e in b1 + b2 if isinstance(e, Step)}
    assert steps_a.keys() == steps_b.keys() and 40 in steps_b
    assert all(steps_a[s] == steps_b[s] for s in steps_a), [(s, steps_a[s], steps_b[s]) for s in steps_a]
    # the stop is no evaluation point: it neither takes part in choosing the best checkpoint nor draws samples
    # (the samples after the resume were one draw ahead of the run never stopped, and a best found at the stop
    # changed the run's best val and test loss)
    assert not any(isinstance(e, (Eval, Samples)) and e.step == 33 for e in b1)
    drawn = lambda events: [(e.step, [s.word for s in e.samples]) for e in events if isinstance(e, Samples)]
    assert drawn(b2) == [d for d in drawn(a) if d[0] > 33] and drawn(b2)
    assert (a[-1].best_val_loss, a[-1].test_loss) == (b2[-1].best_val_loss, b2[-1].test_loss)


def _tier_run(small_words, tmp_path, name: str, hyper: dict | None = None):
    from makemore.models import get_family

    seconds = get_family("transformer").budgets[0][0]
    return new_trainer(Request(data=str(small_words), out=tmp_path / name, hyper=hyper or {},
                               train={"max_time": seconds}))[0]


def _timed_at(monkeypatch, steps: int | None):
    """``seconds_per_step`` as if this machine fit ``steps`` of the tier's steps in its budget (None: never timed)."""
    from makemore import training

    def timed(model, batches, cfg):
        assert steps is not None, "timed where the tier is not the machine's to choose"
        return cfg.max_time / steps / training.STEP_OVER_PASSES

    monkeypatch.setattr(training, "seconds_per_step", timed)


def test_a_machine_too_slow_for_the_budget_tier_trains_its_lean_settings(small_words, tmp_path, monkeypatch):
    """The ten-minute tier's dropout is for a machine that fits its ``Family.lean`` steps in the budget; where
    fewer fit (timed before the run starts), the lean settings replace it: the model, config.json and a note say
    so, and it is the model the user would get by giving them (the same seed, the same weights)."""
    from makemore.models import get_family
    from makemore.training import late_notes

    family = get_family("transformer")
    needed, lean = family.lean
    tier = family.budgets[0][1]
    assert all(tier[k] != v for k, v in lean.items())  # the lean settings change the tier
    _timed_at(monkeypatch, needed // 2)
    slow = _tier_run(small_words, tmp_path, "slow")
    rng_after_slow = torch.get_rng_state()
    stored = json.loads((tmp_path / "slow" / "config.json").read_text())["model"]["hyper"]
    for key, value in lean.items():
        assert getattr(slow.model.config, key) == value and stored[key] == value
    note = " ".join(late_notes("transformer", slow))
    assert f"about {needed // 2:,} steps" in note and f"fewer than the {needed:,}" in note
    assert all(f"--{k.replace('_', '-')} {tier[k]:g}" in note for k in lean)  # the option that keeps the tier
    _timed_at(monkeypatch, None)  # settings given: nothing timed
    given = _tier_run(small_words, tmp_path, "given", hyper=dict(lean))
    assert torch.equal(torch.get_rng_state(), rng_after_slow)
    for (name, a), (_, b) in zip(slow.model.state_dict().items(), given.model.state_dict().items()):
        assert torch.equal(a, b), name
    assert given.lean is None and not late_notes("transformer", given)


def test_a_machine_fast_enough_keeps_the_budget_tier_as_it_was(small_words, tmp_path, monkeypatch):
    from makemore.models import get_family

    family = get_family("transformer")
    needed, lean = family.lean
    tier = family.budgets[0][1]
    _timed_at(monkeypatch, needed)
    fast = _tier_run(small_words, tmp_path, "fast")
    rng_after_fast = torch.get_rng_state()
    assert fast.lean is None and all(getattr(fast.model.config, k) == tier[k] for k in lean)
    _timed_at(monkeypatch, None)
    given = _tier_run(small_words, tmp_path, "given", hyper={k: tier[k] for k in lean})
    assert torch.equal(torch.get_rng_state(), rng_after_fast)  # the timing drew no random number
    for (name, a), (_, b) in zip(fast.model.state_dict().items(), given.model.state_dict().items()):
        assert torch.equal(a, b), name
    # a step count, or a budget below the tier: nothing timed, nothing changed
    steps = new_trainer(Request(data=str(small_words), out=tmp_path / "steps",
                                train={"max_time": family.budgets[0][0], "max_steps": 5}))[0]
    short = new_trainer(Request(data=str(small_words), out=tmp_path / "short", train={"max_time": 5}))[0]
    assert steps.lean is None and short.lean is None


def test_timing_a_models_passes_leaves_no_trace(small_words):
    from makemore.config import TrainConfig
    from makemore.data import EncodedWords, Vocab
    from makemore.batches import WordBatches
    from makemore.models import BASE_RECIPE, build_model
    from makemore.training import seconds_per_step

    words = small_words.read_text().split()
    vocab = Vocab.from_words(words)
    encoded = EncodedWords(words, vocab)
    batches = WordBatches({"train": encoded, "val": encoded, "test": encoded}, vocab)
    torch.manual_seed(0)
    model = build_model("transformer", len(vocab), max(map(len, words)) + 1, {**TINY, "dropout": 0.3})
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    seconds = seconds_per_step(model, batches, TrainConfig(**{**BASE_RECIPE, "batch_size": 8}, device="cpu"))
    assert math.isfinite(seconds) and seconds > 0  # a time was measured
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


@pytest.mark.parametrize("bf16_share, takes", [(0.6, "bfloat16"), (1.0, "float32")])
def test_the_step_is_timed_in_the_dtype_the_run_will_train_in(small_words, monkeypatch, bf16_share, takes):
    """Under ``--dtype auto`` on a CPU with bfloat16 instructions the first step takes bfloat16 autocast where it
    pays (``makemore.device.BFLOAT16_PAYS_BY``): the steps that fit in the budget are counted at the time of the
    dtype the run will take, the passes timed each way in turn; elsewhere in the one dtype the run trains in."""
    import time

    from makemore import device
    from makemore.config import TrainConfig
    from makemore.data import EncodedWords, Vocab
    from makemore.batches import WordBatches
    from makemore.models import BASE_RECIPE, build_model
    from makemore.training import seconds_per_step

    words = small_words.read_text().split()
    vocab = Vocab.from_words(words)
    encoded = EncodedWords(words, vocab)
    batches = WordBatches({"train": encoded, "val": encoded, "test": encoded}, vocab)
    model = build_model("transformer", len(vocab), max(map(len, words)) + 1, {**TINY, "dropout": 0.1})
    forward, seen, clock = model.forward, [], [0.0]
    float32_seconds = 0.05

    def paced(*args, **kwargs):  # a pass whose time (on a clock of its own) depends on its dtype, as on such a CPU
        autocast = torch.is_autocast_enabled("cpu")
        seen.append(torch.get_autocast_dtype("cpu") if autocast else torch.float32)
        clock[0] += float32_seconds * (bf16_share if autocast else 1.0)
        return forward(*args, **kwargs)

    model.forward = paced
    monkeypatch.setattr(time, "perf_counter", lambda: clock[0])
    monkeypatch.setattr(device, "cpu_bfloat16", lambda: True)
    batch = {**BASE_RECIPE, "batch_size": 8}
    seconds = seconds_per_step(model, batches, TrainConfig(**batch, device="cpu", dtype="auto"))
    assert seen[:4] == [torch.float32, torch.bfloat16] * 2  # in turn, round by round
    assert seconds == pytest.approx(float32_seconds * (bf16_share if takes == "bfloat16" else 1.0))
    for dtype, timed in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):  # given: that one alone
        seen.clear()
        seconds_per_step(model, batches, TrainConfig(**batch, device="cpu", dtype=dtype))
        assert set(seen) == {timed}
    monkeypatch.setattr(device, "cpu_bfloat16", lambda: False)  # emulated: float32 wins, and is all that is timed
    seen.clear()
    seconds = seconds_per_step(model, batches, TrainConfig(**batch, device="cpu", dtype="auto"))
    assert set(seen) == {torch.float32} and seconds == pytest.approx(float32_seconds)
