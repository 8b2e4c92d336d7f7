"""Mixed precision, matmul precision and torch.compile on the CPU: they train (the loss falls) and sample words
that decode; the matmul precision chosen by default keeps float32 results."""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path

import pytest
import torch

from makemore.errors import MakemoreError
from makemore.training import Request, new_trainer
from makemore.sample import generate

TINY = {"n_layer": 1, "n_head": 2, "n_embd": 16}


@pytest.fixture(autouse=True)
def timed_arithmetic(steady_arithmetic, monkeypatch):
    """The real timings here (conftest.py answers them for the other tests' runs): these tests test them."""
    from makemore import device

    for name, real in steady_arithmetic.items():
        monkeypatch.setattr(device, name, real)


@pytest.fixture
def blas_matmuls(timed_arithmetic, monkeypatch):
    """The matmul precision's probe answered "highest" (the BLAS library's), where the GELU kernel is a choice:
    the GELU tests test the GELU's probe, whatever the real timing of the matmuls says on a busy machine."""
    from makemore import device

    monkeypatch.setattr(device, "matmuls_in_onednn_pay", lambda key, passes: False)


def _bf16_answers(answer):
    """A stand-in for ``device.bfloat16_pays`` that answers at once, with its signature."""
    return lambda key, passes, use, run_seconds=None: answer


def _train(words: Path, out: Path, **train):
    request = Request(data=str(words), out=out, hyper=TINY, device="cpu",
                      train={"batch_size": 16, "learning_rate": 1e-2, "warmup_steps": 10, **train})
    trainer, _ = new_trainer(request)
    events = list(trainer.run())
    losses = [e.loss for e in events if e.kind == "step"]
    return trainer, losses


def _decodable(trainer, words: list[str]) -> None:
    alphabet = set(trainer.vocab.chars)
    assert len(words) == 20
    assert all(set(w) <= alphabet and len(w) < trainer.model.config.block_size for w in words)
    assert sum(len(w) > 0 for w in words) >= 15


def test_bfloat16_autocast_trains_and_samples(small_words: Path, tmp_path: Path):
    trainer, losses = _train(small_words, tmp_path / "bf16", max_steps=150, eval_interval=150, dtype="bfloat16")
    assert losses[-1] < losses[0] - 0.5
    _decodable(trainer, [g.word for g in generate(trainer.model, trainer.vocab, 20,
                                                  generator=torch.Generator().manual_seed(0))])
    config = json.loads((tmp_path / "bf16" / "config.json").read_text())
    assert config["train"]["dtype"] == "bfloat16"


@pytest.mark.parametrize("model_type", ["rnn", "gru", "lstm"])
def test_each_recurrent_cell_trains_under_bfloat16_on_any_cpu(small_words: Path, tmp_path: Path, model_type,
                                                              monkeypatch):
    """On a CPU whose oneDNN has no bfloat16 (AVX2), oneDNN's LSTM under bfloat16 autocast cannot be built
    ("could not create a primitive descriptor"): `--type lstm --dtype bfloat16` failed with a traceback, and so
    did a plain `--type lstm`, whose first step times bfloat16. There the LSTM runs in float32 (asked of every
    CPU below, whatever this one's oneDNN has), the rest under autocast."""
    import math

    from makemore import device

    trainer, _ = new_trainer(Request(data=str(small_words), out=tmp_path / "run", model_type=model_type, device="cpu",
                                     hyper={"n_embd": 8, "n_embd2": 16, "n_layer": 1},
                                     train={"batch_size": 8, "max_steps": 20, "eval_interval": 20,
                                            "dtype": "bfloat16"}))
    events = list(trainer.run())
    assert events[-1].kind == "finished" and math.isfinite(events[-1].best_val_loss)
    if model_type == "lstm":
        monkeypatch.setattr(device, "cpu_bfloat16", lambda: False)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            h, _ = trainer.model.recur(trainer.model.wte(torch.zeros(2, 3, dtype=torch.long)), None)
        assert h.dtype == torch.float32


@pytest.mark.parametrize("has", [True, False])
def test_bfloat16_asked_of_a_cpu_that_emulates_it_is_said(small_words: Path, tmp_path: Path, monkeypatch, capsys,
                                                          has):
    """On a CPU without bfloat16 instructions (AVX2) `--dtype bfloat16` trained the default names Transformer
    about ten times slower than float32, unsaid; the run now says so as it starts (the CPU's answer set both ways
    here, whatever this one's is)."""
    import makemore
    from makemore import device

    monkeypatch.setattr(device, "cpu_bfloat16", lambda: has)
    makemore.train(str(small_words), type="transformer", n_layer=1, n_head=2, n_embd=16, dtype="bfloat16",
                   max_steps=2, batch_size=8, out=str(tmp_path / "run"), progress=False)
    said = "--dtype bfloat16 on a CPU without bfloat16 instructions (AVX-512 BF16 or AMX): autocast is emulated"
    assert (said in capsys.readouterr().err) != has


def test_float16_is_refused_on_the_cpu(small_words: Path, tmp_path: Path):
    with pytest.raises(MakemoreError, match="float16 needs a CUDA device"):
        _train(small_words, tmp_path / "fp16", max_steps=10, dtype="float16")
    assert not (tmp_path / "fp16").exists()


@pytest.fixture
def restore_matmul_precision():
    before = torch.get_float32_matmul_precision()
    yield
    torch.set_float32_matmul_precision(before)


def _float32_exact(precision: str) -> bool:
    """Whether float32 matmuls under ``precision`` compute in float32 on this CPU, found here independently of
    makemore.device's probe: numbers of 9 significant bits (bfloat16 keeps 8) times -1, 0 or 1, whose sums float32
    holds exactly, must equal the float64 products, through ``@`` and ``linear`` at a model's shapes."""
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision(precision)
    gen = torch.Generator().manual_seed(0)
    try:
        for m, k, n in ((128, 64, 192), (1040, 64, 256), (512, 256, 64)):
            sign = torch.randint(0, 2, (m, k), generator=gen) * 2 - 1
            a = torch.randint(256, 512, (m, k), generator=gen) * sign * 2.0**-8  # 9 significant bits
            b = torch.randint(-1, 2, (k, n), generator=gen).float()
            exact = a.double() @ b.double()
            if not (torch.equal((a @ b).double(), exact)
                    and torch.equal(torch.nn.functional.linear(a, b.T.contiguous()).double(), exact)):
                return False
        return True
    finally:
        torch.set_float32_matmul_precision(before)


def test_default_matmul_precision_keeps_float32_results(restore_matmul_precision):
    """auto offers CPU matmuls to oneDNN ("medium") exactly when they stay float32 here: "medium" if they do,
    "highest" if oneDNN computes in bfloat16; then products that bfloat16 arithmetic would round (1 + 2^-12 is 1
    in bfloat16) come out exact at the model's shapes, and a step's loss and gradients match "highest"'s."""
    from makemore.device import _stays_float32, set_matmul_precision

    _stays_float32.cache_clear()  # probe now, not in an earlier test
    expected = "medium" if _float32_exact("medium") else "highest"
    applied = set_matmul_precision(torch.device("cpu"), "auto", cpu_choice="medium")  # the Transformer's
    assert applied == expected and torch.get_float32_matmul_precision() == applied
    assert set_matmul_precision(torch.device("cpu"), "auto", cpu_choice="highest") == "highest"  # the MLP's
    for m, k, n in ((240, 64, 192), (1040, 64, 256), (1040, 256, 64), (64, 1040, 256), (256, 1040, 64)):
        a = torch.full((m, k), 1 + 2**-12)
        assert torch.equal(a @ torch.ones(k, n), torch.full((m, n), k * (1 + 2**-12))), (m, k, n)
    torch.manual_seed(0)
    x, w = torch.randn(1040, 64), torch.randn(256, 64, requires_grad=True)
    results = []
    for precision in (applied, "highest"):
        assert set_matmul_precision(torch.device("cpu"), precision) == precision
        w.grad = None
        loss = torch.nn.functional.linear(x, w).square().mean()
        loss.backward()
        results.append((loss.detach(), w.grad.clone()))
    torch.testing.assert_close(results[0], results[1], rtol=1e-5, atol=1e-6)


def test_auto_offers_onednn_only_where_it_is_exact(monkeypatch, restore_matmul_precision):
    """Exactness decides what auto offers; speed is the run's to time (below): not exact keeps "highest"."""
    from makemore import device

    for exact, expected in ((True, "medium"), (False, "highest")):
        monkeypatch.setattr(device, "_stays_float32", lambda d, p, exact=exact: exact)
        assert device.set_matmul_precision(torch.device("cpu"), "auto", cpu_choice="medium") == expected
        assert torch.get_float32_matmul_precision() == expected
    assert device.set_matmul_precision(torch.device("cpu"), "auto", cpu_choice="highest") == "highest"


def test_the_matmul_probe_times_the_runs_passes_under_both_precisions(monkeypatch, restore_matmul_precision):
    """oneDNN's matmuls are kept only if the run's own passes are faster with them, by PAYS_BY; both precisions
    are timed, the process's precision is as it was afterwards, and each key (model and shape) is timed once."""
    from makemore import device

    torch.set_float32_matmul_precision("medium")
    timed = []

    def passes():
        timed.append(torch.get_float32_matmul_precision())

    monkeypatch.setattr(device, "_precision_choices", {})
    monkeypatch.setattr(device, "ROUNDS", 3)
    monkeypatch.setattr(device, "PAYS_BY", 100.0)  # any timing says oneDNN pays
    assert device.matmuls_in_onednn_pay(("a",), passes) is True
    assert set(timed) == {"highest", "medium"} and timed.count("medium") >= device.ROUNDS
    assert torch.get_float32_matmul_precision() == "medium"
    monkeypatch.setattr(device, "PAYS_BY", 0.0)  # no timing says it pays
    assert device.matmuls_in_onednn_pay(("a",), lambda: pytest.fail("timed again")) is True
    assert device.matmuls_in_onednn_pay(("b",), passes) is False


def test_a_long_pass_is_timed_for_one_round(monkeypatch, restore_matmul_precision):
    """A large model's pass (at least LONG_PASS_SECONDS at its first call) is neither sized again nor timed for
    more than one round: the probe costs 5 passes (1 first, 2 a side); a shorter one is sized by 2 more and timed
    for MIN_ROUNDS rounds."""
    import time

    from makemore import device

    timed = []

    def passes():
        timed.append(torch.get_float32_matmul_precision())
        time.sleep(0.002)

    monkeypatch.setattr(device, "_precision_choices", {})
    monkeypatch.setattr(device, "PROBE_SECONDS", 0.0)
    monkeypatch.setattr(device, "CLEAR_MARGIN", float("inf"))  # no timing clear enough to stop sooner
    monkeypatch.setattr(device, "LONG_PASS_SECONDS", 0.001)
    device.matmuls_in_onednn_pay(("long",), passes)
    assert len(timed) == 1 + 2 * 2  # Ctrl-C waits for fewer of a large model's passes, which take seconds each
    monkeypatch.setattr(device, "LONG_PASS_SECONDS", 1.0)  # the same pass, now short: MIN_ROUNDS rounds
    timed.clear()
    device.matmuls_in_onednn_pay(("short",), passes)
    assert len(timed) == 3 + device.MIN_ROUNDS * 2 * 2


def test_one_slow_round_does_not_decide_for_a_mid_sized_model(monkeypatch):
    """The ten-minute names Transformer's passes take about 60 ms: timed for one round, a machine that slowed
    the first round's bfloat16 pass made the run train in float32 where bfloat16 takes two thirds of its time.
    Such a pass is timed over MIN_ROUNDS rounds, and their median decides."""
    import time

    from makemore import device

    state = {"bf16": False, "bf16 passes": 0}

    def use(flag: bool) -> None:
        state["bf16"] = flag

    def passes():
        if state["bf16"]:
            state["bf16 passes"] += 1  # the first round's two (one untimed, one timed) slowed by the machine
            time.sleep(0.1 if state["bf16 passes"] <= 2 else 0.04)
        else:
            time.sleep(0.06)

    monkeypatch.setattr(device, "_dtype_choices", {})
    monkeypatch.setattr(device, "PROBE_SECONDS", 0.0)  # MIN_ROUNDS rounds, no more
    assert device.bfloat16_pays(("mid-sized",), passes, use) is True
    assert state["bf16 passes"] == device.MIN_ROUNDS * 2
    assert state["bf16"] is False  # float32 again afterwards, whatever the answer


def test_a_dtype_timing_near_its_line_is_timed_on(monkeypatch):
    """A bfloat16 timing whose median after the usual rounds lies within NEAR_MARGIN of BFLOAT16_PAYS_BY is timed
    on until the median leaves that band (or NEAR_SECONDS pass): the median of the first seven rounds moves from
    one process to the next more than that of more rounds. Far from the line, or
    near it for NEAR_SECONDS, the timing stops as before. On a clock of the passes' own."""
    import types

    from makemore import device

    clock = {"now": 0.0}
    monkeypatch.setattr(device, "time", types.SimpleNamespace(perf_counter=lambda: clock["now"]))
    state = {"bf16": False, "bf16 passes": 0}

    def use(flag: bool) -> None:
        state["bf16"] = flag

    def timing(ratios, run_seconds=None, seconds=0.030) -> tuple[bool, int]:  # ratios(n): bfloat16's share of
        state["bf16 passes"] = 0  # float32's time at its n-th pass; seconds: a float32 pass's

        def passes():
            if state["bf16"]:
                state["bf16 passes"] += 1
                clock["now"] += seconds * ratios(state["bf16 passes"])
            else:
                clock["now"] += seconds
        monkeypatch.setattr(device, "_dtype_choices", {})
        return device.bfloat16_pays(("ten-minute",), passes, use, run_seconds), state["bf16 passes"] // 2

    line = device.BFLOAT16_PAYS_BY
    near = line * (1 + device.NEAR_MARGIN) / 2  # past the line, within the band
    below = line * (1 / device.NEAR_MARGIN + 1 / device.CLEAR_MARGIN) / 2  # under the band, not clear-cut either
    monkeypatch.setattr(device, "NEAR_SECONDS", 60.0)
    # seven rounds near the line, past it, then below: timed on until the median left the band
    answer, rounds = timing(lambda n: near if n <= 2 * device.MIN_ROUNDS else below)
    assert answer is True and rounds == device.ROUNDS  # the median at ROUNDS rounds is below's: out of the band
    # the same first rounds, and near on: timed up to NEAR_ROUNDS, float32 taken
    answer, rounds = timing(lambda n: near)
    assert answer is False and rounds == device.NEAR_ROUNDS
    monkeypatch.setattr(device, "NEAR_SECONDS", 1.5)  # ... or until NEAR_SECONDS have passed
    answer, rounds = timing(lambda n: near)
    a_round = 2 * 0.030 + 2 * 0.030 * near  # a pass after each switch, and one timed, each way
    assert answer is False and rounds == int(1.5 / a_round) + 1  # no round begins once 1.5 s have passed
    # a run whose NEAR_SHARE is shorter than NEAR_SECONDS is timed on for that share alone; its estimate is asked
    # with a float32 pass's seconds
    asked = []

    def run_seconds(once):
        asked.append(once)
        return 40 * once / device.NEAR_SHARE  # the share: 40 passes' time, some ten rounds
    answer, rounds = timing(lambda n: near, run_seconds)
    share_rounds = int(40 * 0.030 / a_round) + 1
    assert asked == [pytest.approx(0.030)]
    assert answer is False and device.MIN_ROUNDS < rounds == share_rounds < int(1.5 / a_round) + 1
    answer, rounds = timing(lambda n: near, lambda once: 0.0)  # no time to spare: the usual rounds decide
    assert answer is False and rounds == device.MIN_ROUNDS
    # a share shorter than PROBE_SECONDS times as a timing far from the line would, not less: passes of 5 ms, whose
    # ROUNDS rounds take less than PROBE_SECONDS, all taken
    short_round = 2 * 0.005 + 2 * 0.005 * near
    assert device.ROUNDS * short_round < device.PROBE_SECONDS
    answer, rounds = timing(lambda n: near, lambda once: 0.5 * device.PROBE_SECONDS / device.NEAR_SHARE, 0.005)
    assert answer is False and rounds == device.ROUNDS
    answer, rounds = timing(lambda n: near, lambda once: math.inf)  # unbounded: NEAR_SECONDS, as without
    assert answer is False and rounds == int(1.5 / a_round) + 1
    # neither near nor clear: PROBE_SECONDS, then MIN_ROUNDS decide
    answer, rounds = timing(lambda n: below)
    assert answer is True and rounds == device.MIN_ROUNDS
    monkeypatch.setattr(device, "NEAR_SECONDS", 0.0)  # the old rule: the first seven rounds decide
    answer, rounds = timing(lambda n: near if n <= 2 * device.MIN_ROUNDS else below)
    assert answer is False and rounds == device.MIN_ROUNDS
    assert state["bf16"] is False


def test_a_clear_cut_timing_stops_after_its_first_rounds(monkeypatch, restore_matmul_precision):
    """Passes six times slower under the switch decide after FAR_ROUNDS rounds (FAR_MARGIN), or CLEAR_ROUNDS
    rounds within it; six times faster, after CLEAR_ROUNDS: a switch is never taken so soon. A timing that is
    never clear enough takes all ROUNDS."""
    import time

    from makemore import device

    timed = []

    def passes():
        timed.append(torch.get_float32_matmul_precision())
        time.sleep(0.012 if torch.get_float32_matmul_precision() == "medium" else 0.002)

    monkeypatch.setattr(device, "_precision_choices", {})
    monkeypatch.setattr(device, "ROUNDS", 8)
    monkeypatch.setattr(device, "PROBE_SECONDS", float("inf"))  # only clarity stops it before ROUNDS
    assert device.matmuls_in_onednn_pay(("far",), passes) is False  # six times slower: FAR_ROUNDS say it
    assert timed.count("medium") == device.FAR_ROUNDS * 2  # a pass after each switch, and one timed
    timed.clear()
    monkeypatch.setattr(device, "FAR_MARGIN", float("inf"))
    assert device.matmuls_in_onednn_pay(("slow",), passes) is False
    assert timed.count("medium") == device.CLEAR_ROUNDS * 2
    monkeypatch.setattr(device, "FAR_MARGIN", 2.0)
    timed.clear()
    slow = {"medium": 0.002, "highest": 0.012}

    def faster():
        timed.append(torch.get_float32_matmul_precision())
        time.sleep(slow[torch.get_float32_matmul_precision()])

    assert device.matmuls_in_onednn_pay(("fast",), faster) is True
    assert timed.count("medium") == device.CLEAR_ROUNDS * 2
    monkeypatch.setattr(device, "FAR_MARGIN", float("inf"))
    timed.clear()
    monkeypatch.setattr(device, "CLEAR_MARGIN", float("inf"))  # no timing clear enough
    assert device.matmuls_in_onednn_pay(("close",), passes) is False
    assert timed.count("medium") == device.ROUNDS * 2


def test_the_bfloat16_probe_times_the_runs_passes_both_ways(monkeypatch):
    """bfloat16 is taken only if the run's passes are faster under it by BFLOAT16_PAYS_BY; both ways are timed,
    the run is left in float32 afterwards, and each key is timed once."""
    from makemore import device

    state = {"bf16": False}
    timed = []

    def use(flag):
        state["bf16"] = flag

    def passes():
        timed.append(state["bf16"])

    monkeypatch.setattr(device, "_dtype_choices", {})
    monkeypatch.setattr(device, "ROUNDS", 3)
    monkeypatch.setattr(device, "BFLOAT16_PAYS_BY", 100.0)
    assert device.bfloat16_pays(("a",), passes, use) is True
    assert set(timed) == {True, False} and state["bf16"] is False
    monkeypatch.setattr(device, "BFLOAT16_PAYS_BY", 0.0)
    assert device.bfloat16_pays(("a",), lambda: pytest.fail("timed again"), use) is True
    assert device.bfloat16_pays(("b",), passes, use) is False and state["bf16"] is False


def _autocast_seen(trainer) -> list[bool]:
    """Whether bfloat16 autocast was on at each training forward pass of ``trainer``'s model."""
    seen: list[bool] = []
    trainer.model.register_forward_pre_hook(
        lambda m, args: seen.append(torch.is_autocast_enabled("cpu")) if m.training else None)
    return seen


@pytest.mark.parametrize("pays", [True, False])
def test_dtype_auto_trains_in_what_its_first_step_timed_and_resumes_with_it(small_words, tmp_path, monkeypatch,
                                                                           restore_matmul_precision, pays):
    """--dtype auto (the default) on a CPU: the first step times the run's passes in float32 and under bfloat16
    autocast, once; every step then trains in the dtype chosen, which the run's state keeps: --resume takes it
    without timing again. config.json keeps what was asked for (auto)."""
    from makemore import device
    from makemore.training import resume_trainer

    monkeypatch.setattr(device, "native_gelu_pays", lambda rows, width, passes: False)
    monkeypatch.setattr(device, "matmuls_in_onednn_pay", lambda key, passes: False)
    calls = []
    monkeypatch.setattr(device, "bfloat16_pays", lambda key, passes, use, run_seconds=None: calls.append(key) or pays)
    out = tmp_path / "run"
    trainer, _ = _precision_run(small_words, out)
    seen = _autocast_seen(trainer)
    assert trainer.cfg.dtype == "auto"
    events = list(trainer.run())
    chosen = "bfloat16" if pays else "float32"
    assert len(calls) == 1 and trainer.cfg.dtype == chosen
    said = [e for e in events if e.kind == "arithmetic"]  # what the first step chose, told once
    assert [(e.step, e.dtype, e.dtype_chosen) for e in said] == [(1, chosen, True)]
    assert set(seen) == {pays}
    assert json.loads((out / "config.json").read_text())["train"]["dtype"] == "auto"

    monkeypatch.setattr(device, "bfloat16_pays",
                        lambda key, passes, use, run_seconds=None: pytest.fail("timed again on resume"))
    if pays:  # --compile on a CPU trains in float32: it switched a bfloat16 run's arithmetic halfway, unsaid
        with pytest.raises(MakemoreError, match="trains under bfloat16 autocast, as --dtype auto chose when it "
                                                "began, and --compile on a CPU trains in float32; resume it without"):
            resume_trainer(out, {"max_steps": 6, "compile": True})
    resumed = resume_trainer(out, {"max_steps": 6})
    seen = _autocast_seen(resumed)
    said = [e for e in resumed.run() if e.kind == "arithmetic"]
    assert resumed.step == 6 and resumed.cfg.dtype == chosen and set(seen) == {pays}
    assert [(e.step, e.dtype) for e in said] == [(5, chosen)]  # the resumed process's first step


def test_the_dtype_timing_is_told_how_long_the_run_trains(small_words, tmp_path, monkeypatch,
                                                          restore_matmul_precision):
    """A dtype timing near its line goes on for at most NEAR_SHARE of the run's time: the trainer estimates it from
    one pass's seconds as its steps left at that pace, each of grad_accum micro-batches, or its time budget where
    that ends the run first."""
    from makemore import device

    monkeypatch.setattr(device, "native_gelu_pays", lambda rows, width, passes: False)
    monkeypatch.setattr(device, "matmuls_in_onednn_pay", lambda key, passes: False)
    estimates = []

    def pays(key, passes, use, run_seconds=None):
        estimates.append(run_seconds(0.01))
        return False

    monkeypatch.setattr(device, "bfloat16_pays", pays)
    for i, train in enumerate(({"max_steps": 40, "grad_accum": 2}, {"max_steps": 10**6, "max_time": 0.2})):
        trainer, _ = _precision_run(small_words, tmp_path / f"run{i}", train)
        next(e for e in trainer.run() if e.kind == "arithmetic")
        if i == 0:
            assert estimates[-1] == pytest.approx(40 * 0.01 * 2)
        else:  # the budget less what the run has trained, far short of its steps' 10,000 s
            assert 0 <= estimates[-1] <= 0.2


def test_restored_choices_survive_a_save_before_the_first_step_and_old_states_keep_torchs_gelu(
        small_words, tmp_path, monkeypatch, restore_matmul_precision):
    """A resumed run saved before its first step (a pause and save, a quit) keeps the dtype and precision it
    restored, rather than saving them as undecided; a state saved before the precision was recorded, whose steps
    took torch's GELU, trained with MKL's matmuls: it resumes with both, untimed."""
    from makemore import device, rundir
    from makemore.training import resume_trainer

    monkeypatch.setattr(device, "_stays_float32", lambda d, p: True)
    monkeypatch.setattr(device, "matmuls_in_onednn_pay", lambda key, passes: False)
    monkeypatch.setattr(device, "bfloat16_pays", _bf16_answers(True))
    monkeypatch.setattr(device, "native_gelu_pays", lambda rows, width, passes: True)
    out = tmp_path / "run"
    trainer, _ = _precision_run(small_words, out)
    list(trainer.run())
    assert trainer.cfg.dtype == "bfloat16" and trainer.matmul_precision == "highest"

    for name in ("matmuls_in_onednn_pay", "bfloat16_pays", "native_gelu_pays"):
        monkeypatch.setattr(device, name, lambda *args: pytest.fail("timed"))
    resumed = resume_trainer(out, {"max_steps": 6})
    resumed.save("request")  # before any step of this process
    meta = rundir.RunDir.open(out).load_state().meta
    assert (meta["dtype"], meta["matmul_precision"]) == ("bfloat16", "highest")

    load_state = rundir.RunDir.load_state

    gelu = {"native": True}

    def old_state(self):  # as a run saved before the precision and dtype were kept: float32, a GELU kernel
        state = load_state(self)
        del state.meta["matmul_precision"], state.meta["dtype"]
        state.meta["native_gelu"] = gelu["native"]
        return state

    monkeypatch.setattr(rundir.RunDir, "load_state", old_state)
    for native, steps in ((True, 6), (False, 8)):  # either kernel chosen meant MKL's matmuls: neither timed again
        gelu["native"] = native
        resumed = resume_trainer(out, {"max_steps": steps})
        list(resumed.run())
        assert resumed.step == steps and resumed.cfg.dtype == "float32"
        assert resumed.matmul_precision == "highest" and resumed.native_gelu is native


def test_timings_are_kept_per_model_not_per_width(small_words, tmp_path, monkeypatch, restore_matmul_precision):
    """Two runs in one process (the TUI, a notebook) whose models differ only in their heads are timed each:
    the heads decide how many small matmuls a step makes. The same model again takes the kept answer."""
    from makemore import device

    monkeypatch.setattr(device, "_stays_float32", lambda d, p: True)
    monkeypatch.setattr(device, "native_gelu_pays", lambda rows, width, passes: False)
    monkeypatch.setattr(device, "_precision_choices", {})
    monkeypatch.setattr(device, "_dtype_choices", {})
    timed = []
    monkeypatch.setattr(device, "_median_ratio", lambda work, switch, threshold, **_: timed.append(threshold) or 2.0)
    for i, heads in enumerate((1, 2, 2)):
        trainer, _ = new_trainer(Request(data=str(small_words), out=tmp_path / str(i), device="cpu",
                                         hyper={**TINY, "n_head": heads},
                                         train={"batch_size": 8, "max_steps": 2, "eval_interval": 2}))
        list(trainer.run())
        assert trainer.cfg.dtype == "float32" and trainer.matmul_precision == "highest"
    assert len(timed) == 4  # precision and dtype, for each of the two models


def test_what_auto_chose_is_shown_kept_and_accepted_on_resume(small_words, tmp_path, monkeypatch,
                                                               restore_matmul_precision):
    """The dtype auto chose is the run's: `info` and `compare` show it (config.json keeps "auto"), also after a
    resume that ran no step; --resume accepts it given explicitly and refuses another dtype, naming the choice;
    the trainer's choice does not leak into the run directory's configuration."""
    from makemore import device
    from makemore.instruments import _flatten
    from makemore.rundir import RunDir
    from makemore.training import check_resume, resume_trainer

    monkeypatch.setattr(device, "native_gelu_pays", lambda rows, width, passes: False)
    monkeypatch.setattr(device, "matmuls_in_onednn_pay", lambda key, passes: False)
    monkeypatch.setattr(device, "bfloat16_pays", _bf16_answers(True))
    from makemore.sinks import JsonlSink
    from makemore.training import drive

    out = tmp_path / "run"
    trainer, _ = _precision_run(small_words, out)
    drive(trainer, [JsonlSink(out)])  # metrics.jsonl, as the command line writes it
    assert trainer.cfg.dtype == "bfloat16" and trainer.rundir.config.train.dtype == "auto"
    lines = (out / "metrics.jsonl").read_text().splitlines()
    (out / "metrics.jsonl").write_text("\n".join(lines[:-1]) + "\n")  # killed after its last save, unfinished
    resumed = resume_trainer(out, {"max_steps": 4})  # nothing left to train: this process takes no step
    drive(resumed, [JsonlSink(out)])
    kinds = [json.loads(line)["event"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert kinds.count("started") == 2 and "arithmetic" not in kinds[kinds.index("started", 1):]
    run = RunDir.open(out)
    used = run.summary()["arithmetic"]
    assert (used["dtype"], used["matmul_precision"]) == ("bfloat16", "highest")
    rows = _flatten(run.summary())
    assert (rows["train.dtype"], rows["train.dtype_used"], rows["train.matmul_precision_used"]) == \
        ("auto", "bfloat16", "highest")
    assert check_resume(run, {"dtype": "bfloat16", "matmul_precision": "highest"}) == {}
    with pytest.raises(MakemoreError, match=r"--dtype float32 differs from the run's auto, which chose bfloat16"):
        check_resume(run, {"dtype": "float32"})


@pytest.mark.parametrize("train, model_type", [({"dtype": "float32"}, "transformer"),
                                               ({"dtype": "bfloat16"}, "transformer"), ({}, "ngram")])
def test_no_dtype_timing_where_the_dtype_is_given_or_nothing_trains(small_words, tmp_path, monkeypatch, train,
                                                                    model_type):
    from makemore import device

    monkeypatch.setattr(device, "bfloat16_pays", lambda key, passes, use, run_seconds=None: pytest.fail("timed"))
    trainer, _ = new_trainer(Request(data=str(small_words), out=tmp_path / "run", model_type=model_type,
                                     device="cpu", hyper=TINY if model_type == "transformer" else {},
                                     train={"batch_size": 8, "max_steps": 3, "eval_interval": 3, **train}))
    list(trainer.run())
    assert trainer.cfg.dtype == train.get("dtype", "float32")


def test_the_probes_leave_batch_norms_running_statistics_as_they_were(small_words, tmp_path, monkeypatch,
                                                                      restore_matmul_precision):
    """The first step's timed passes run in training mode, which moves batch norm's running statistics: they are
    put back, so a WaveNet (batch norm) whose first step timed the precision and the dtype trains and evaluates
    exactly as one whose choices were given without timing."""
    from makemore import device

    monkeypatch.setattr(device, "_stays_float32", lambda d, p: True)  # the precision is timed too
    monkeypatch.setattr(device, "ROUNDS", 2)
    monkeypatch.setattr(device, "PAYS_BY", 0.0)  # the timings say: MKL's matmuls, float32
    monkeypatch.setattr(device, "BFLOAT16_PAYS_BY", 0.0)
    timed, given = device.matmuls_in_onednn_pay, device.bfloat16_pays
    runs = []
    for probe in (True, False):
        monkeypatch.setattr(device, "_precision_choices", {})
        monkeypatch.setattr(device, "_dtype_choices", {})
        monkeypatch.setattr(device, "matmuls_in_onednn_pay", timed if probe else lambda key, passes: False)
        monkeypatch.setattr(device, "bfloat16_pays", given if probe else _bf16_answers(False))
        torch.manual_seed(5)
        trainer, _ = new_trainer(Request(data=str(small_words), out=tmp_path / str(probe), model_type="wavenet",
                                         hyper={"n_embd": 8, "n_embd2": 16}, device="cpu",
                                         train={"batch_size": 8, "max_steps": 4, "eval_interval": 4}))
        trainer.cfg.log_interval = 1
        events = list(trainer.run())
        assert trainer.cfg.dtype == "float32" and trainer.matmul_precision == "highest"
        runs.append(([e.loss for e in events if e.kind == "step"], [e.val_loss for e in events if e.kind == "eval"],
                     [b.clone() for b in trainer.model.buffers()]))
    (steps, evals, buffers), (steps2, evals2, buffers2) = runs
    assert len(steps) == 4 and steps == steps2 and evals == evals2
    assert buffers and all(torch.equal(a, b) for a, b in zip(buffers, buffers2))


def _precision_run(words: Path, out: Path, train: dict | None = None, model_type: str = "transformer"):
    trainer, _ = new_trainer(Request(data=str(words), out=out, model_type=model_type, device="cpu",
                                     hyper=TINY if model_type == "transformer" else {},
                                     train={"batch_size": 8, "max_steps": 4, "eval_interval": 4, **(train or {})}))
    seen = []  # the precision at each training forward pass
    trainer.model.register_forward_pre_hook(
        lambda m, args: seen.append(torch.get_float32_matmul_precision()) if m.training else None)
    return trainer, seen


@pytest.mark.parametrize("pays", [True, False])
def test_a_run_trains_with_the_precision_its_first_step_timed_and_resumes_with_it(
        small_words, tmp_path, monkeypatch, restore_matmul_precision, pays):
    """Where auto offers oneDNN's matmuls (exact here), the first step times the run's own passes on its first
    micro-batch, once; every training step then runs under the precision chosen, which is in the run's state:
    --resume takes it without timing again."""
    from makemore import device
    from makemore.training import resume_trainer

    monkeypatch.setattr(device, "_stays_float32", lambda d, p: True)
    monkeypatch.setattr(device, "native_gelu_pays", lambda rows, width, passes: False)
    monkeypatch.setattr(device, "bfloat16_pays", _bf16_answers(False))  # float32: its precision matters
    calls = []
    monkeypatch.setattr(device, "matmuls_in_onednn_pay", lambda key, passes: calls.append(key) or pays)
    out = tmp_path / "run"
    trainer, seen = _precision_run(small_words, out)
    assert trainer.matmul_precision == "medium"  # offered, not yet timed
    list(trainer.run())
    chosen = "medium" if pays else "highest"
    assert len(calls) == 1 and calls[0][0] == "transformer"
    assert trainer.matmul_precision == chosen and torch.get_float32_matmul_precision() == chosen
    assert set(seen[-4:]) == {chosen}  # the steps after the probe's passes

    torch.set_float32_matmul_precision("highest" if pays else "medium")  # as another run in the process left it
    monkeypatch.setattr(device, "matmuls_in_onednn_pay", lambda key, passes: pytest.fail("timed again on resume"))
    resumed = resume_trainer(out, {"max_steps": 6})
    resumed_seen = []
    resumed.model.register_forward_pre_hook(
        lambda m, args: resumed_seen.append(torch.get_float32_matmul_precision()) if m.training else None)
    list(resumed.run())
    assert resumed.step == 6 and resumed.matmul_precision == chosen and set(resumed_seen) == {chosen}


@pytest.mark.parametrize("train", [{"matmul_precision": "medium"}, {"matmul_precision": "highest"},
                                   {"dtype": "bfloat16"}])
def test_no_matmul_timing_where_the_precision_is_given_or_no_float32_step(small_words, tmp_path, monkeypatch,
                                                                         restore_matmul_precision, train):
    """A precision given by the user is used as given; under bfloat16 auto keeps "highest" (the matmuls run in
    bfloat16 under autocast): nothing timed."""
    from makemore import device

    monkeypatch.setattr(device, "_stays_float32", lambda d, p: True)
    monkeypatch.setattr(device, "matmuls_in_onednn_pay", lambda key, passes: pytest.fail("timed"))
    trainer, _ = _precision_run(small_words, tmp_path / "run", train)
    list(trainer.run())
    assert trainer.matmul_precision == train.get("matmul_precision", "highest")


@pytest.mark.slow
def test_compile_trains_and_samples_from_the_plain_module(small_words: Path, tmp_path: Path):
    pytest.importorskip("torch._inductor")
    trainer, losses = _train(small_words, tmp_path / "compiled", max_steps=60, eval_interval=60, compile=True)
    assert losses[-1] < losses[0] - 0.3
    assert trainer.forward is not trainer.model  # the training forward went through torch.compile
    # the compiled forward and the plain module (which evaluates and samples) agree
    x, y = trainer.train_words.batch(torch.arange(8))
    with torch.no_grad():
        compiled, _ = trainer.forward(x, y)
        plain, _ = trainer.model(x, y)
    torch.testing.assert_close(compiled, plain, rtol=1e-4, atol=1e-4)
    _decodable(trainer, [g.word for g in generate(trainer.model, trainer.vocab, 20,
                                                  generator=torch.Generator().manual_seed(0))])


def test_compile_of_a_window_model_compiles_its_network_without_a_graph_break(small_words, tmp_path):
    """mlp's forward picks its real positions by a mask, whose shape depends on the data: compiled whole, it
    broke the graph with some 40 lines of torch's errors and ran at 0.3 steps a second. Its windows' network
    alone is compiled now, and gives what the plain module gives."""
    import warnings

    pytest.importorskip("torch._inductor")
    request = Request(data=str(small_words), out=tmp_path / "mlp", model_type="mlp", device="cpu",
                      hyper={"n_embd": 8, "n_embd2": 16}, train={"batch_size": 8, "max_steps": 3, "compile": True})
    trainer, _ = new_trainer(request)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        list(trainer.run())
        x, y = trainer.train_words.batch(torch.arange(8))
        with torch.no_grad():
            compiled, _ = trainer.forward(x, y)
            plain, _ = trainer.model(x, y)
    assert trainer.forward.keywords["window_logits"] is not trainer.model.window_logits
    assert not [w for w in caught if "Error detected" in str(w.message) or "graph break" in str(w.message).lower()]
    torch.testing.assert_close(compiled, plain, rtol=1e-5, atol=1e-5)


def _denormals(n: int = 1 << 22) -> torch.Tensor:
    """``n`` copies of the smallest float32 denormal, made from its bits (no arithmetic that could flush it)."""
    return torch.ones(n, dtype=torch.int32).view(torch.float32)


def _flushes(x: torch.Tensor) -> bool:
    """Whether this thread's arithmetic (and its intra-op threads': the tensor is large enough to be split among
    them) reads and writes denormals as zero."""
    return not bool((x * 1.0).count_nonzero())


def _in_a_new_thread(fn) -> dict:
    seen: dict = {}
    thread = threading.Thread(target=lambda: seen.update(fn()))
    thread.start()
    thread.join()
    return seen


@pytest.mark.parametrize("mode", ["words", "text"])
def test_the_thread_that_trains_flushes_denormals_from_the_start(small_words: Path, tmp_path: Path, mode):
    """A model's values can drift into denormals, which CPUs handle tens of times slower; the thread that builds
    a trainer (a script's, the TUI's training thread) flushes them to zero before its first parallel work, so its
    intra-op threads, started then, flush them too. Checked in new threads, whose intra-op threads are their own
    (each starts with flushing off, whatever the test process did before)."""
    if not torch.set_flush_denormal(False):
        pytest.skip("this CPU has no flush-to-zero mode")
    text = tmp_path / "play.txt"
    # 1.2 MB: enough for torch to read it in parallel, which starts the thread's intra-op threads
    text.write_text("First Citizen:\nBefore we proceed any further, hear me speak.\n" * 20000)
    x = _denormals()

    def untouched() -> dict:
        torch.set_flush_denormal(False)
        return {"flushes": _flushes(x)}

    def training() -> dict:
        torch.set_flush_denormal(False)
        new_trainer(Request(data=str(small_words if mode == "words" else text), model_type="transformer",
                            out=tmp_path / "run", mode=mode, hyper=TINY, train={"max_steps": 1}))
        return {"flushes": _flushes(x)}

    assert _in_a_new_thread(untouched) == {"flushes": False}
    assert _in_a_new_thread(training) == {"flushes": True}


def test_the_command_line_flushes_denormals_before_torch_reads_a_text(tmp_path: Path):
    """`makemore train TEXT --mode text`: torch encodes the text before the trainer exists, so the command flushes
    denormals before reading it (the first parallel work starts the intra-op threads, which keep the setting)."""
    import subprocess
    import sys

    if not torch.set_flush_denormal(False):
        pytest.skip("this CPU has no flush-to-zero mode")
    text = tmp_path / "play.txt"
    text.write_text("First Citizen:\nBefore we proceed any further, hear me speak.\n" * 20000)  # 1.2 MB
    code = ("import sys, torch\n"
            "from makemore.cli import app\n"
            f"app(['train', {str(text)!r}, '--mode', 'text', '--max-steps', '1', '--n-layer', '1',"
            f" '--n-embd', '16', '--n-head', '2', '-o', {str(tmp_path / 'run')!r}], standalone_mode=False)\n"
            "x = torch.ones(1 << 22, dtype=torch.int32).view(torch.float32)  # denormals, from their bits\n"
            "print('flushes' if not bool((x * 1.0).count_nonzero()) else 'keeps denormals')\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "flushes"


# --- the GELU kernel a CPU step takes ---------------------------------------------------------------------

ONEDNN = pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="torch built without oneDNN")


def test_onednn_off_switches_it_off_within_and_restores_it_after_an_error():
    from makemore.device import onednn_off

    before = torch.backends.mkldnn.enabled
    with pytest.raises(RuntimeError, match="inside"):
        with onednn_off():
            assert torch.backends.mkldnn.enabled is False
            raise RuntimeError("inside")
    assert torch.backends.mkldnn.enabled is before


def test_overlapping_onednn_off_restores_the_switch_when_the_last_one_leaves():
    """Two trainers in two threads may overlap their steps in any order: the first in saves the switch, the
    last out restores it (each saving and restoring its own would leave oneDNN off for good)."""
    from makemore.device import onednn_off

    before = torch.backends.mkldnn.enabled
    a, b = onednn_off(), onednn_off()
    a.__enter__()
    b.__enter__()
    a.__exit__(None, None, None)  # the first in leaves first
    assert torch.backends.mkldnn.enabled is False
    b.__exit__(None, None, None)
    assert torch.backends.mkldnn.enabled is before


@ONEDNN
def test_the_gelu_probe_times_the_runs_passes_of_small_mlps_and_decides_by_its_threshold(monkeypatch):
    from makemore import device

    before = torch.backends.mkldnn.enabled
    sizing = []  # oneDNN's switch at each GELU of the isolated MLP that sizes it
    gelu = torch.nn.functional.gelu
    monkeypatch.setattr(torch.nn.functional, "gelu", lambda x: sizing.append(torch.backends.mkldnn.enabled) or gelu(x))
    timed = []  # oneDNN's switch at each of the run's passes the probe times

    def passes():
        timed.append(torch.backends.mkldnn.enabled)

    def decide(rows=32, width=8):
        monkeypatch.setattr(device, "_gelu_choices", {})  # a fresh process's
        sizing.clear()
        timed.clear()
        return device.native_gelu_pays(rows, width, passes)

    monkeypatch.setattr(device, "ROUNDS", 3)
    monkeypatch.setattr(device, "SMALL_MLP_SECONDS", float("inf"))  # every MLP small enough to time
    monkeypatch.setattr(device, "NATIVE_GELU_PAYS_BY", 100.0)  # any timing says it pays
    assert decide() is True
    assert set(timed) == {True, False} and timed.count(False) >= device.ROUNDS  # the run's passes, both ways
    assert set(sizing) == {True}  # the isolated MLP only sizes it, with oneDNN as it was
    monkeypatch.setattr(device, "NATIVE_GELU_PAYS_BY", 0.0)  # no timing says it pays
    assert decide() is False
    monkeypatch.setattr(device, "NATIVE_GELU_PAYS_BY", 100.0)
    monkeypatch.setattr(device, "SMALL_MLP_SECONDS", 0.0)  # every MLP too large to time: oneDNN stays
    assert decide() is False
    assert sizing == [True] * (1 + device.SIZE_PASSES) and timed == []  # sized, and the run's passes untouched
    assert torch.backends.mkldnn.enabled is before


@ONEDNN
def test_the_gelu_probe_stops_after_its_time_once_its_fewest_rounds_are_done(monkeypatch):
    import time

    from makemore import device

    timed = []

    def passes():  # 3 ms: one timed pass a side per round
        timed.append(torch.backends.mkldnn.enabled)
        time.sleep(3e-3)

    monkeypatch.setattr(device, "_gelu_choices", {})
    monkeypatch.setattr(device, "SMALL_MLP_SECONDS", float("inf"))
    monkeypatch.setattr(device, "PROBE_SECONDS", 0.0)
    monkeypatch.setattr(device, "MIN_ROUNDS", 2)
    device.native_gelu_pays(32, 8, passes)
    assert timed.count(False) == 2 * 2  # two rounds (of 15), each a pass after the switch and one timed


@ONEDNN
def test_the_gelu_choice_is_made_once_per_process_and_mlp_shape(monkeypatch):
    from makemore import device

    monkeypatch.setattr(device, "_gelu_choices", {})
    monkeypatch.setattr(device, "ROUNDS", 1)
    monkeypatch.setattr(device, "SMALL_MLP_SECONDS", float("inf"))
    monkeypatch.setattr(device, "NATIVE_GELU_PAYS_BY", 100.0)
    assert device.native_gelu_pays(32, 8, lambda: None) is True
    monkeypatch.setattr(device, "NATIVE_GELU_PAYS_BY", 0.0)  # a second timing would now say no
    assert device.native_gelu_pays(32, 8, lambda: pytest.fail("timed again")) is True
    assert device.native_gelu_pays(64, 8, lambda: None) is False  # another shape is timed


@ONEDNN
@pytest.mark.usefixtures("blas_matmuls")
def test_timing_the_runs_passes_leaves_no_trace_on_its_training(small_words, tmp_path, monkeypatch):
    """The probe times the model's own forward and backward passes in the first step, with dropout: the run
    then trains exactly as one whose kernel was given without timing (the same gradients, the same random
    numbers), and the timed passes were training passes with oneDNN on and off."""
    from makemore import device

    monkeypatch.setattr(device, "ROUNDS", 2)
    monkeypatch.setattr(device, "SMALL_MLP_SECONDS", float("inf"))
    monkeypatch.setattr(device, "NATIVE_GELU_PAYS_BY", 100.0)
    timed = device.native_gelu_pays
    curves, seen, in_probe = [], [], []

    def probe(rows, width, passes):
        mark = len(seen)
        try:
            return timed(rows, width, passes)
        finally:
            in_probe.extend(seen[mark:])

    for choose in (probe, lambda rows, width, passes: True):
        monkeypatch.setattr(device, "_gelu_choices", {})
        monkeypatch.setattr(device, "native_gelu_pays", choose)
        torch.manual_seed(3)  # the same draws before the run as well
        trainer, _ = new_trainer(Request(data=str(small_words), out=tmp_path / str(len(curves)),
                                         hyper={**TINY, "dropout": 0.2}, device="cpu",
                                         train={"batch_size": 8, "max_steps": 6, "eval_interval": 6,
                                                "matmul_precision": "auto", "dtype": "float32"}))
        trainer.cfg.log_interval = 1
        seen = _watch_onednn(trainer.model)
        curves.append([e.loss for e in trainer.run() if e.kind == "step"])
        assert trainer.native_gelu is True
    assert set(in_probe) == {(True, True), (True, False)}  # training passes, oneDNN on and off
    assert len(curves[0]) == 6 and curves[0] == curves[1]


@ONEDNN
def test_a_precision_given_leaves_the_gelu_kernel_untimed(small_words, tmp_path, monkeypatch):
    """`--dtype float32 --matmul-precision highest` fixes the arithmetic, so the same seed gives the same numbers:
    the GELU kernel was still chosen by timing, and two runs of one command differed from their 20th step."""
    from makemore import device

    monkeypatch.setattr(device, "native_gelu_pays", lambda rows, width, passes: pytest.fail("timed"))
    trainer, _ = new_trainer(Request(data=str(small_words), out=tmp_path / "run", hyper=TINY, device="cpu",
                                     train={"batch_size": 8, "max_steps": 2, "eval_interval": 2,
                                            "matmul_precision": "highest", "dtype": "float32"}))
    list(trainer.run())
    assert not trainer.native_gelu and not trainer._gelu_kernel_is_a_choice()
    # a run saved with torch's kernel before a given precision stopped the timing goes on with it
    from makemore import rundir
    from makemore.training import resume_trainer

    load_state = rundir.RunDir.load_state

    def took_torchs(self):
        state = load_state(self)
        state.meta["native_gelu"] = True
        return state

    monkeypatch.setattr(rundir.RunDir, "load_state", took_torchs)
    resumed = resume_trainer(tmp_path / "run", {"max_steps": 3})
    assert resumed.native_gelu is True
    list(resumed.run())
    monkeypatch.setattr(rundir.RunDir, "load_state", load_state)
    assert rundir.RunDir.open(tmp_path / "run").load_state().meta["native_gelu"] is True  # and keeps it


def _watch_onednn(model) -> list[tuple[bool, bool]]:
    """(training?, oneDNN on?) at each forward pass of ``model``."""
    seen: list[tuple[bool, bool]] = []
    model.register_forward_pre_hook(lambda m, args: seen.append((m.training, torch.backends.mkldnn.enabled)))
    return seen


@ONEDNN
@pytest.mark.parametrize("native", [True, False])
@pytest.mark.usefixtures("blas_matmuls")
def test_steps_take_the_gelu_kernel_the_probe_chose_and_a_resumed_run_keeps_it(small_words, tmp_path, monkeypatch,
                                                                              native):
    """The probe runs once, in the first step, at the model's MLP shape and the rows of its micro-batch; every
    training step then runs with oneDNN off (torch's GELU) or on, evaluation always with it on; the choice is in
    the run's state, so --resume continues with it without timing again."""
    from makemore import device
    from makemore.training import resume_trainer

    calls = []
    monkeypatch.setattr(device, "native_gelu_pays", lambda rows, width, passes: calls.append((rows, width)) or native)
    out = tmp_path / "run"
    trainer, _ = new_trainer(Request(data=str(small_words), out=out, hyper=TINY, device="cpu",
                                     train={"batch_size": 8, "max_steps": 6, "eval_interval": 3,
                                            "matmul_precision": "auto", "dtype": "float32"}))
    seen = _watch_onednn(trainer.model)
    draws = []
    draw = trainer.data.draw
    trainer.data.draw = lambda n, generator: draws.append(draw(n, generator)) or draws[-1]
    list(trainer.run())
    x, _, _ = trainer.data.micro_batch(draws[0], trainer.model, True, "cpu")  # the rows the MLP saw
    assert len(draws) == 6 and calls == [(x.numel(), TINY["n_embd"])]
    assert trainer.native_gelu is native
    assert {on for training, on in seen if training} == {not native}
    assert {on for training, on in seen if not training} == {True}
    assert torch.backends.mkldnn.enabled is True

    monkeypatch.setattr(device, "native_gelu_pays", lambda rows, width, passes: pytest.fail("timed again on resume"))
    resumed = resume_trainer(out, {"max_steps": 9})
    seen = _watch_onednn(resumed.model)
    list(resumed.run())
    assert resumed.native_gelu is native and resumed.step == 9
    assert {on for training, on in seen if training} == {not native}


@pytest.mark.parametrize("train, hyper", [({"matmul_precision": "medium"}, TINY), ({"dtype": "bfloat16"}, TINY),
                                          ({}, {"n_layer": 1, "n_embd": 8})])
def test_the_gelu_kernel_is_no_choice_where_onednn_does_more_or_there_is_no_gelu(
        small_words, tmp_path, monkeypatch, train, hyper, restore_matmul_precision):
    """With oneDNN's matmuls (precision medium), under bfloat16, or in a model without GELU MLPs (an LSTM),
    oneDNN stays on and nothing is timed."""
    from makemore import device

    monkeypatch.setattr(device, "native_gelu_pays", lambda rows, width, passes: pytest.fail("timed"))
    model_type = "transformer" if hyper is TINY else "lstm"
    trainer, _ = new_trainer(Request(data=str(small_words), out=tmp_path / "run", model_type=model_type, hyper=hyper,
                                     device="cpu", train={"batch_size": 8, "max_steps": 3, "eval_interval": 3,
                                                          **train}))
    seen = _watch_onednn(trainer.model)
    list(trainer.run())
    assert trainer.native_gelu is False
    assert {on for _, on in seen} == {True}


@ONEDNN
@pytest.mark.usefixtures("blas_matmuls")
def test_torchs_gelu_and_onednns_train_to_the_same_losses_up_to_rounding(small_words, tmp_path, monkeypatch):
    """The same run with either kernel: the same losses up to rounding (the kernels differ in GELU's last bits,
    too little to move these losses much; that the switch acts is the forward hook's test above)."""
    from makemore import device

    curves = []
    for native in (True, False):
        monkeypatch.setattr(device, "native_gelu_pays", lambda rows, width, passes, native=native: native)
        trainer, _ = new_trainer(Request(data=str(small_words), out=tmp_path / str(native), hyper=TINY, device="cpu",
                                         train={"batch_size": 8, "max_steps": 20, "eval_interval": 20,
                                                "matmul_precision": "auto", "dtype": "float32"}))
        curves.append([e.loss for e in trainer.run() if e.kind == "step"])
        assert trainer.native_gelu is native
    assert len(curves[0]) == 2
    torch.testing.assert_close(curves[0], curves[1], rtol=1e-4, atol=1e-5)


@ONEDNN
@pytest.mark.usefixtures("blas_matmuls")
def test_a_resumed_run_saved_before_the_choice_keeps_onednn_and_an_undecided_one_times_it(small_words, tmp_path,
                                                                                         monkeypatch):
    """A run whose state lacks the choice (saved before it existed) trained with oneDNN's GELU, so it resumes
    with it, untimed; a state that says none was chosen yet (None) times it at the resumed run's first step."""
    from makemore import device, rundir
    from makemore.training import resume_trainer

    monkeypatch.setattr(device, "native_gelu_pays", lambda rows, width, passes: True)
    out = tmp_path / "run"
    trainer, _ = new_trainer(Request(data=str(small_words), out=out, hyper=TINY, device="cpu",
                                     train={"batch_size": 8, "max_steps": 3, "eval_interval": 3,
                                            "matmul_precision": "auto", "dtype": "float32"}))
    list(trainer.run())
    assert trainer.native_gelu is True
    load_state = rundir.RunDir.load_state

    def saved_as(value):
        def load(self):
            state = load_state(self)
            if value == "missing":
                del state.meta["native_gelu"]
            else:
                state.meta["native_gelu"] = value
            return state
        return load

    monkeypatch.setattr(rundir.RunDir, "load_state", saved_as("missing"))
    monkeypatch.setattr(device, "native_gelu_pays", lambda rows, width, passes: pytest.fail("timed"))
    resumed = resume_trainer(out, {"max_steps": 4})
    list(resumed.run())
    assert resumed.native_gelu is False

    monkeypatch.setattr(rundir.RunDir, "load_state", saved_as(None))
    calls = []
    monkeypatch.setattr(device, "native_gelu_pays", lambda rows, width, passes: calls.append(rows) or True)
    resumed = resume_trainer(out, {"max_steps": 5})
    assert resumed.native_gelu is None
    list(resumed.run())
    assert resumed.native_gelu is True and len(calls) == 1


def test_the_probes_draw_no_numbers_from_the_training_generator():
    """The matmul-precision and GELU probes run once per process: drawing from torch's default generator, they
    made the first run in a process train differently from a later one with the same seed."""
    from makemore import device

    device._stays_float32.cache_clear()
    torch.manual_seed(11)
    before = torch.get_rng_state()
    device._stays_float32("cpu", "medium")
    device._mlp_is_small(64, 16)
    assert torch.equal(torch.get_rng_state(), before)


def test_two_runs_with_one_seed_in_one_process_train_alike(small_words, tmp_path):
    from makemore import device

    device._precision_choices.clear()  # the first run times the probes, the second finds them cached
    device._gelu_choices.clear()
    losses = []
    for name in ("a", "b"):
        trainer, _ = new_trainer(Request(data=str(small_words), out=tmp_path / name,
                                         hyper={"n_layer": 1, "n_head": 2, "n_embd": 16, "dropout": 0.1},
                                         train={"max_steps": 12, "eval_interval": 12, "batch_size": 8}))
        trainer.cfg.log_interval = 1
        losses.append([e.loss for e in trainer.run() if e.kind == "step"])
    assert len(losses[0]) == 12 and losses[0] == losses[1]


def test_a_stop_during_the_first_steps_timing_is_answered_at_once(small_words, tmp_path, monkeypatch,
                                                                 restore_matmul_precision):
    """Ctrl-C or q while the first step times the run's passes (a large model's take seconds each): the timing
    is abandoned at its next pass, the run takes the default (float32) for that one step and stops. Nothing was
    chosen, and nothing is recorded as chosen: the resumed run times again."""
    from makemore import rundir
    from makemore.training import resume_trainer

    from makemore import device

    monkeypatch.setattr(device, "native_gelu_pays", lambda rows, width, passes: False)
    monkeypatch.setattr(device, "matmuls_in_onednn_pay", lambda key, passes: False)
    trainer, _ = _precision_run(small_words, tmp_path / "run", {"max_steps": 50})
    timed = []

    def pays(key, passes, use, run_seconds=None):
        passes()
        trainer.request_stop()  # arrives while the timing runs
        for _ in range(100):
            passes()
            timed.append(1)
        return True

    monkeypatch.setattr(device, "bfloat16_pays", pays)
    events = list(trainer.run())
    assert timed == [] and trainer.cfg.dtype == "float32" and trainer.step == 1
    assert events[-1].kind == "finished" and events[-1].reason == "stopped"
    assert "arithmetic" not in [e.kind for e in events]
    meta = rundir.RunDir.open(tmp_path / "run").load_state().meta
    assert meta["dtype"] is None and meta["matmul_precision"] is None
    monkeypatch.setattr(device, "bfloat16_pays", _bf16_answers(True))  # timed now, in full
    resumed = resume_trainer(tmp_path / "run", {"max_steps": 3})
    said = [e for e in resumed.run() if e.kind == "arithmetic"]
    assert resumed.cfg.dtype == "bfloat16" and [(e.step, e.dtype) for e in said] == [(2, "bfloat16")]


def test_a_stopped_run_counts_the_time_of_its_steps_since_the_last_log_line(small_words, tmp_path):
    """Before, a stop between two log lines dropped those steps' time from the run's clock (saved for --resume
    and its --max-time): a stop after a slow step reported 0 s."""
    import time

    trainer, _ = _precision_run(small_words, tmp_path / "run", {"max_steps": 50})
    trainer.cfg.log_interval = 1000
    step = trainer._train_step

    def slow_step():  # a large model's step, asked to stop while it runs
        result = step()
        time.sleep(0.3)
        trainer.request_stop()
        return result

    trainer._train_step = slow_step
    events = list(trainer.run())
    assert events[-1].kind == "finished" and events[-1].reason == "stopped" and trainer.step == 1
    assert events[-1].elapsed >= 0.3


def test_a_run_that_starts_over_has_no_arithmetic_until_its_first_step(small_words, tmp_path, monkeypatch,
                                                                       restore_matmul_precision):
    """Killed before its first save, a run starts over at step 0 and times again: what the killed process chose is
    no longer the run's (a resume from a saved step keeps it: its state holds it)."""
    from makemore import device
    from makemore.rundir import RunDir
    from makemore.sinks import JsonlSink
    from makemore.training import drive

    monkeypatch.setattr(device, "native_gelu_pays", lambda rows, width, passes: False)
    monkeypatch.setattr(device, "matmuls_in_onednn_pay", lambda key, passes: False)
    monkeypatch.setattr(device, "bfloat16_pays", _bf16_answers(True))
    out = tmp_path / "run"
    drive(_precision_run(small_words, out)[0], [JsonlSink(out)])
    metrics = out / "metrics.jsonl"
    assert RunDir.open(out).summary()["arithmetic"]["dtype"] == "bfloat16"
    with metrics.open("a") as f:  # a process that resumed from step 4: the choice stands
        f.write(json.dumps({"event": "started", "start_step": 4}) + "\n")
    assert RunDir.open(out).summary()["arithmetic"]["dtype"] == "bfloat16"
    with metrics.open("a") as f:  # one that started over
        f.write(json.dumps({"event": "started", "start_step": 0}) + "\n")
    assert RunDir.open(out).summary()["arithmetic"] is None
