"""The training engine. It prints nothing: ``Trainer.run()`` yields events (see makemore.events) and the
caller hands each one to its sinks. Thread-safe requests (stop, pause, save, sample) let a UI steer it.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Iterator

import torch

from makemore import distributed
from makemore.batches import WordBatches
from makemore.config import TrainConfig, lr_at
from makemore.data import Vocab
from makemore.device import onednn_off
from makemore.console import plural
from makemore.errors import MakemoreError
from makemore.rundir import BEST, LAST_STATE, RunDir, TrainingState, best_is_initial
from makemore.events import (MAX_TABLE_VOCAB, Arithmetic, Bigrams, Eval, Event, Failed, Finished, Samples, Saved,
                             Started, Step)


def dtype_timed(cfg: TrainConfig, device_type: str, model) -> bool:
    """Whether the first step times float32 against bfloat16 autocast to settle ``--dtype auto``: on a CPU, for a
    trained model, without ``--compile`` (elsewhere auto means float32)."""
    return cfg.dtype == "auto" and device_type == "cpu" and model.trainable and not cfg.compile


def flatten(params: list[torch.Tensor]) -> torch.nn.Parameter:
    """One contiguous parameter, with its gradient preallocated, of which ``params`` become views.

    Autograd accumulates each gradient in place into its view, so the optimizer and gradient clipping see the
    whole model as one tensor: one AdamW update and one norm instead of one per tensor (per-tensor bookkeeping is
    a tenth of a small model's step). Gradients are zeroed in place,
    never set to None, or the views would be lost.
    """
    flat = torch.nn.Parameter(torch.cat([p.detach().reshape(-1) for p in params]))
    flat.grad = torch.zeros_like(flat)
    offset = 0
    for p in params:
        n = p.numel()
        p.data = flat.data[offset:offset + n].view_as(p)
        p.grad = flat.grad[offset:offset + n].view_as(p)
        offset += n
    return flat


def make_optimizer(model, cfg: TrainConfig, flat: bool = False):
    """AdamW with weight decay on matrices only; ``flat``: each group's tensors as one (see ``flatten``)."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    if flat:
        decay, no_decay = ([flatten(group)] if group else [] for group in (decay, no_decay))
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    # fused AdamW updates every tensor in one kernel: on CPU and CUDA makemore.optim runs it without torch.optim's
    # second of start-up; elsewhere (MPS) torch's own, fused where it can be, foreach otherwise
    from makemore import optim

    if optim.supported(decay + no_decay):
        return optim.AdamW(groups, lr=cfg.learning_rate, betas=(0.9, cfg.beta2))
    try:
        return torch.optim.AdamW(groups, lr=cfg.learning_rate, betas=(0.9, cfg.beta2), fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.AdamW(groups, lr=cfg.learning_rate, betas=(0.9, cfg.beta2), foreach=True)


class Diverged(MakemoreError):
    pass


class Trainer:
    def __init__(self, model, vocab: Vocab, splits, cfg: TrainConfig, run: RunDir,
                 *, model_type: str, dataset: str, dist: distributed.Context = distributed.SINGLE,
                 matmul_precision: str = "highest"):
        """``splits``: a word list's {"train", "val", "test"} EncodedWords, or a batch source (see
        ``makemore.batches``), e.g. a text stream's ``makemore.text.TextBatches``."""
        self.model = model
        self.dist = dist  # one process, or this rank's place under torchrun (only rank 0 writes and evaluates)
        self.vocab = vocab
        if isinstance(splits, dict):
            self.train_words, self.val_words, self.test_words = splits["train"], splits["val"], splits["test"]
            splits = WordBatches(splits, vocab, cfg.eval_words)
        self.data = splits  # where batches, evaluations and samples come from
        # (training words, held-out words) to tag samples with; a text has no words to tag
        self.known = getattr(splits, "known", (set(), set()))
        self.cfg = cfg
        self.rundir = run  # the run directory: where checkpoints go (rank 0 alone writes)
        self.model_type = model_type
        self.dataset = dataset
        self.device = torch.device(cfg.device)
        if cfg.init_scale != 1.0:  # before the weights move into flat buffers; --resume then loads its own
            from makemore.diagnostics import apply_init_scale

            apply_init_scale(model, cfg.init_scale, model_type)
        # the parameters live in flat buffers (before DDP wraps the model, so its buckets see the views)
        self.optimizer = make_optimizer(model, cfg, flat=True) if model.trainable else None
        self.trained = [p for g in self.optimizer.param_groups for p in g["params"]] if self.optimizer else []
        # the moving average of the (flat) weights: one fused update per step, swapped in to evaluate
        self.ema = [p.detach().clone() for p in self.trained] if cfg.ema and model.trainable else None
        self.step = 0
        self.best_val = math.inf
        self.best_step = -1
        self.elapsed = 0.0
        # the progress window (steps since the last Step event): its loss summed and its steps, and those a run
        # resumed in the middle of one took before it stopped (``restore``)
        self._window_loss, self._window_steps, self._carried = torch.zeros(()), 0, (0.0, 0)
        # under DDP, every rank's default generators at the last save point (``_gather_rng``): each draws its own
        # share's dropout masks, so they differ, and a resume gives each rank its own back
        self._ranks_rng: list[dict] = []
        self._ranks_rng_step = -1
        self.batch_gen = torch.Generator().manual_seed(cfg.seed)
        self.sample_gen = torch.Generator().manual_seed(cfg.seed + 1)
        self.matmul_precision = matmul_precision  # as makemore.device.set_matmul_precision set it for this process
        self.lean = None  # a budget tier made leaner for this machine (makemore.training.Lean), set by new_trainer
        # --matmul-precision auto on a CPU where oneDNN's matmuls are exact ("medium"): whether they are also faster
        # is timed on the model's own passes in the first step, kept in the run's state for --resume
        self._precision_auto = cfg.matmul_precision == "auto" and self.device.type == "cpu"
        self._precision_open = self._precision_auto and matmul_precision == "medium"
        self._saved_precision: str | None = None
        self._kernels_chosen = False
        self.choosing_seconds = 0.0  # the first step's timings of the arithmetic (``_train_step``)
        self._timing_abandoned = False  # a stop request cut the first step's timing short
        # --dtype auto: on a CPU, bfloat16 autocast if the first step times the model's own passes faster under
        # it (kept in the run's state for --resume); float32 elsewhere (CUDA trains in float32 with TF32)
        self._dtype_auto = self._dtype_open = cfg.dtype == "auto"
        self._saved_dtype: str | None = None
        if self._dtype_open and not dtype_timed(cfg, self.device.type, model):
            self._set_dtype("float32")
        if self._precision_open and not (model.trainable and cfg.dtype in ("float32", "auto")):
            self._set_precision("highest")  # nothing to time: no float32 training step
        if model.trainable:
            distributed.check_batch_size(cfg.batch_size, dist)
        # the training forward: DDP around the model under torchrun, compiled with --compile; evaluation and
        # sampling always use the plain module (no recompiles for growing sequences, no collectives)
        self.ddp = distributed.wrap(model, dist, self.device) if model.trainable else model
        self.forward = self.ddp
        if cfg.compile and model.trainable:
            from makemore.models.base import WindowModel

            if isinstance(model, WindowModel):  # its forward picks the real positions by a mask (shapes that
                # depend on the data, which a graph cannot hold): the windows' network alone is compiled
                self.forward = functools.partial(self.ddp, window_logits=torch.compile(model.window_logits,
                                                                                      dynamic=True))
            else:
                self.forward = torch.compile(self.ddp)
        self.scaler = torch.amp.GradScaler("cuda") if cfg.dtype == "float16" and self.device.type == "cuda" else None
        # on a CPU, the Transformer's step may run faster with torch's GELU kernel than with oneDNN's (small
        # batches): timed at this model's MLP shape in the first step (then every step runs with oneDNN off),
        # kept in the run's state so that --resume continues with the same kernel
        self.native_gelu: bool | None = None
        # --diagnostics: rank 0 records every diag_interval steps; off, nothing is created and no hook registered
        self.recorder = None
        if cfg.diagnostics and model.trainable and dist.is_main:
            from makemore.diagnostics import Recorder, embedding_rows

            self.recorder = Recorder(model, model_type, cfg.diag_interval, rows=embedding_rows(vocab))
        self._record_step = False  # set by run() before each step: whether the Recorder watches it
        self._measure_norm = False  # set by run(): the gradient norm is wanted (a logged step) without clipping
        self.grad_norm: torch.Tensor | None = None  # the last measured global gradient norm (before clipping)
        self.diagnostics: list[Event] = []  # what the Recorder produced in the last step, for run() to yield
        self._synced_elapsed = 0.0  # under DDP: rank 0's clock at the last control exchange (drives the schedule)
        self._agreed_stop: str | None = None  # under DDP: the stop decision all ranks took at that exchange
        self._stop = threading.Event()
        self.interrupted = False  # stopped by Ctrl-C (set by the driver's signal handler)
        self.done_training = False  # past the last step: a signal now stops nothing (see ``drive``)
        self.stop_signal = 2  # the signal that stopped the run, where one did: SIGINT (Ctrl-C), SIGTERM or SIGHUP
        self._resume = threading.Event()
        self._resume.set()
        self._save_now = threading.Event()
        self._sample_now = threading.Event()
        # held by the training loop except while it waits in a pause: another thread that takes it (``idle``)
        # has the model to itself, and resuming waits until that thread is done
        self._busy = threading.Lock()

    @property
    def run_dir(self) -> Path:
        return self.rundir.path

    # --- requests from other threads (the TUI, a signal handler) ----------------------------------

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def request_stop(self) -> None:
        self._stop.set()
        self._resume.set()

    def pause(self) -> None:
        self._resume.clear()

    def resume(self) -> None:
        self._resume.set()

    @property
    def paused(self) -> bool:
        return not self._resume.is_set()

    def request_save(self) -> None:
        self._save_now.set()

    def request_samples(self, temperature: float | None = None) -> None:
        if temperature is not None:
            self.cfg.temperature = temperature
        self._sample_now.set()

    @contextlib.contextmanager
    def idle(self) -> Iterator[None]:
        """Within: a paused trainer's model may be used from another thread (to sample, score or save).

        Waits until the loop has reached its pause; resuming waits until the block ends. The random states
        (torch's, the batches' and the samples' generators) and the model's train/eval mode are put back
        exactly as they were, so the run continues as if nothing had happened.
        """
        if not self.paused:
            raise MakemoreError("the trainer is not paused")
        with self._busy:
            rng = torch.get_rng_state()
            cuda_rng = torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None
            generators = [(g, g.get_state()) for g in (self.batch_gen, self.sample_gen)]
            mode = [(m, m.training) for m in self.model.modules()]
            try:
                yield
            finally:
                torch.set_rng_state(rng)
                if cuda_rng is not None:
                    torch.cuda.set_rng_state(cuda_rng, self.device)
                for g, state in generators:
                    g.set_state(state)
                for m, training in mode:
                    m.training = training

    def save(self, reason: str = "request") -> Saved:
        """Write the last checkpoint now (from another thread only inside ``idle``)."""
        return self._save_last(reason)

    # --- the loop ---------------------------------------------------------------------------------

    def _autocast(self):
        if self.cfg.dtype in ("float32", "auto"):  # auto: float32 until the first step has chosen
            return contextlib.nullcontext()
        dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16}[self.cfg.dtype]
        return torch.autocast(self.device.type, dtype=dtype)

    def started_event(self) -> Started:
        return Started(
            run_dir=str(self.run_dir), model_type=self.model_type, num_params=self.model.num_params(),
            device=str(self.device), dataset=self.dataset, num_words=self.data.num_items,
            vocab=self.vocab.itos, max_steps=self.cfg.max_steps if self.model.trainable else 0,
            batch_size=self.cfg.batch_size, start_step=self.step, time=time.time(),
            max_time=self.cfg.max_time if self.model.trainable else None, mode=self.data.mode,
            unit=self.data.unit, best_step=self.best_step, processes=self.dist.world_size,
        )

    def run(self) -> Iterator[Event]:
        with self._busy:
            yield from self._run()

    def _run(self) -> Iterator[Event]:
        yield self.started_event()
        if not self.model.trainable:
            yield from self._fit()
            return
        cfg = self.cfg
        model, opt = self.model, self.optimizer
        model.train()
        main = self.dist.is_main
        self._synced_elapsed = self.elapsed
        if self.step == 0 and main:
            for event in self._evaluate():
                yield event
                if isinstance(event, Eval):  # the lecture's first check: the initial loss against ln(V)
                    from makemore.diagnostics import initial_loss_event

                    yield initial_loss_event(event.train_loss, len(self.vocab))
        # (a run resumed in the middle of a progress window goes on summing it where it stopped: the same sums)
        # (under DDP the ranks' window losses are summed: the carried part is rank 0's alone)
        window_loss = self._window_loss = torch.full((), self._carried[0] if main else 0.0, device=self.device)
        window_steps = 0
        window_tokens = 0
        window_start = time.perf_counter()
        last_tick = window_start
        reason = "max_steps"
        while not cfg.max_steps or self.step < cfg.max_steps:
            if not self._resume.is_set():  # paused: time stands still
                paused = time.perf_counter()
                self.elapsed += paused - last_tick
                self._busy.release()  # another thread may use the model meanwhile (see ``idle``)
                try:
                    self._resume.wait()
                finally:
                    self._busy.acquire()
                last_tick = time.perf_counter()
                window_start += last_tick - paused  # the window's rate counts its steps' time, not the pause
            if self.dist.enabled:  # every rank stops at the same step: the one agreed at the last exchange
                if self._agreed_stop:
                    reason = self._agreed_stop
                    self.elapsed += time.perf_counter() - last_tick
                    break
            elif self._stop.is_set():
                reason = "stopped"
                self.elapsed += time.perf_counter() - last_tick  # the steps since the last log line count too
                break
            if self._save_now.is_set() and main:
                self._save_now.clear()
                yield self._save_last("request")
            if self._sample_now.is_set() and main:
                self._sample_now.clear()
                with self.averaged():
                    yield self._samples()
            now = time.perf_counter()
            self.elapsed += now - last_tick
            last_tick = now
            if not self.dist.enabled and cfg.max_time is not None and self.elapsed >= cfg.max_time:
                reason = "max_time"
                break
            # under DDP every rank follows rank 0's clock, as of the last exchange, so all take the same lr
            lr = lr_at(self.step, cfg, self._synced_elapsed if self.dist.enabled else self.elapsed)
            for group in opt.param_groups:
                group["lr"] = lr
            # every diag_interval steps, and the last step of a run with a step budget (its final state)
            self._record_step = self.recorder is not None and (self.recorder.due(self.step)
                                                               or self.step + 1 == cfg.max_steps)
            self._measure_norm = (self.step + 1) % cfg.log_interval == 0 or self.step + 1 == cfg.max_steps
            first = not self._kernels_chosen
            try:
                loss_sum, tokens = self._train_step()
            except MakemoreError as e:  # data that cannot be trained on, met in a batch (a damaged shard)
                if main:
                    yield Failed(step=self.step, message=str(e))
                raise
            if first:  # timing the arithmetic to choose is not training time, for the clock nor the rate (as
                last_tick += self.choosing_seconds  # evaluation is not): a short --max-time is spent training
                window_start += self.choosing_seconds
            if first and main and not self._timing_abandoned:  # (abandoned: nothing chosen to tell)
                yield Arithmetic(step=self.step + 1, dtype=self.cfg.dtype, matmul_precision=self.matmul_precision,
                                 native_gelu=bool(self.native_gelu), dtype_chosen=self._dtype_auto)
            window_loss += loss_sum
            window_tokens += tokens
            window_steps += 1
            self._window_steps = window_steps
            self.step += 1
            if self.diagnostics:
                yield from self.diagnostics
                self.diagnostics = []
            if not self.dist.enabled and self.device.type == "cpu" and not math.isfinite(float(loss_sum)):
                yield from self._diverged(self.step)
            if self.step % cfg.log_interval == 0 or self.step == cfg.max_steps:
                now = time.perf_counter()
                self.elapsed += now - last_tick
                last_tick = now
                # the global batch's loss and tokens; under DDP also clock and stop
                total, total_tokens = self._exchange(window_loss, window_tokens)
                # (with the steps of this window a resumed run took before it stopped: the same curve)
                mean = total / (window_steps + self._carried[1])
                self._carried = (0.0, 0)
                if not math.isfinite(mean):
                    yield from self._diverged(self.step)
                dt = max(now - window_start, 1e-9)
                if main:
                    norm = float(self.grad_norm) if self.grad_norm is not None else math.nan
                    yield Step(step=self.step, loss=mean, lr=lr, steps_per_s=window_steps / dt,
                               tokens_per_s=total_tokens / dt, elapsed=self.elapsed,
                               device_memory=_device_memory(self.device), grad_norm=_finite(norm))
                window_loss.zero_()
                window_steps = window_tokens = self._window_steps = 0
                window_start = last_tick = time.perf_counter()  # time spent in the sinks is not training time
            if self.dist.enabled and (self.step % cfg.eval_interval == 0 or self.step == cfg.max_steps):
                self._ranks_rng = self._gather_rng()  # every rank, at the steps rank 0 saves at
            if main and (self.step % cfg.eval_interval == 0 or self.step == cfg.max_steps):
                started = time.perf_counter()
                self.elapsed += started - last_tick
                yield from self._evaluate()
                yield self._save_last("last")
                last_tick = time.perf_counter()  # evaluation is not training time, for the clock nor the rate:
                window_start += last_tick - started  # the steps since the last Step keep their own time
        # a stop asked while the last step or its evaluation ran did not stop the run: it ended on its own terms
        self.interrupted, self.done_training = reason == "stopped", True
        saves = self.step % cfg.eval_interval != 0 and self.step != cfg.max_steps
        if self.dist.enabled and saves:
            self._ranks_rng = self._gather_rng()
        if not main:
            return  # rank 0 evaluates, saves and reports the end
        if saves:
            # the end of a run (its time budget) is evaluated; a stop is not: evaluated there, its loss took part
            # in choosing the best checkpoint and its samples drew from their generator, so that a run stopped and
            # resumed ended with another best, test loss and samples than the same run never stopped
            if reason != "stopped":
                yield from self._evaluate()
            yield self._save_last("interrupt" if reason == "stopped" else "last")
        yield self._finished(reason)

    def _gelu_kernel_is_a_choice(self) -> bool:
        """Whether the first step times the GELU kernel: where it could take either (``_gelu_kernel_applies``)
        and the precision was the run's to choose (a precision given fixes the arithmetic: the same seed then gives
        the same numbers, with torch's default kernel)."""
        return self._gelu_kernel_applies() and self.cfg.matmul_precision == "auto"

    def _gelu_kernel_applies(self) -> bool:
        """Whether oneDNN in this run's step serves the GELU alone: a float32 step of a model with GELU MLPs on a
        CPU, eager, with float32 matmuls not handed to oneDNN (precision highest). A kernel in a run's state is
        kept where this holds (a run saved before a given precision stopped the timing keeps what it took)."""
        model, cfg = self.model, self.cfg
        return bool(model.trainable and model.gelu_width and self.device.type == "cpu" and cfg.dtype == "float32"
                    and not cfg.compile and self.matmul_precision == "highest"
                    and torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled)

    def _choose_matmul_precision(self, chunk: torch.Tensor) -> None:
        """Where ``--matmul-precision auto`` left it open on a CPU (oneDNN's matmuls exact here, "medium"): keep
        them only if the model's forward and backward passes on the micro-batch ``chunk`` are faster in oneDNN than
        in the BLAS library ("highest"), timed each way (makemore.device.matmuls_in_onednn_pay; its time counts as
        the first step's); a resumed run takes the precision it was trained with. Under DDP on CPUs the ranks
        agree: oneDNN's only if every rank takes it."""
        if self._precision_open:
            medium = self._saved_precision == "medium"
            if self._saved_precision not in ("highest", "medium"):
                from makemore.device import matmuls_in_onednn_pay

                with self._probe_passes(chunk) as (x, passes), self._unless_stopped():
                    key = self._timing_key(x)
                    medium = matmuls_in_onednn_pay(key, passes)
            self._set_precision("medium" if medium else "highest")
        if not self._every_rank(self.matmul_precision == "medium") and self._precision_auto:
            self._set_precision("highest")

    def _choose_dtype(self, chunk: torch.Tensor) -> None:
        """Where ``--dtype auto`` left it open (a CPU): bfloat16 autocast if the model's forward and backward passes
        on the micro-batch ``chunk`` are faster under it than in float32 (makemore.device.bfloat16_pays; its time
        counts as the first step's), else float32; a resumed run takes the dtype it was trained with. Under DDP
        on CPUs the ranks agree: bfloat16 only if every rank takes it."""
        if self._dtype_open:
            bf16 = self._saved_dtype == "bfloat16"
            if self._saved_dtype not in ("float32", "bfloat16"):
                from makemore.device import bfloat16_pays

                def use(flag: bool) -> None:  # the passes autocast as the run's dtype says
                    self.cfg.dtype = "bfloat16" if flag else "float32"

                with self._probe_passes(chunk) as (x, passes), self._unless_stopped():
                    key = (*self._timing_key(x), self.matmul_precision)  # float32's time depends on it
                    bf16 = bfloat16_pays(key, passes, use, self._run_seconds)
            self._set_dtype("bfloat16" if bf16 else "float32")
        if not self._every_rank(self.cfg.dtype == "bfloat16") and self._dtype_auto:
            self._set_dtype("float32")

    def _run_seconds(self, pass_seconds: float) -> float:
        """About how long the rest of this run trains, given one forward and backward pass's seconds on a
        micro-batch: its time budget, or its steps left at that pace, whichever ends it first; unbounded: inf."""
        cfg = self.cfg
        by_steps = (cfg.max_steps - self.step) * pass_seconds * max(1, cfg.grad_accum) if cfg.max_steps else math.inf
        by_time = cfg.max_time - self.elapsed if cfg.max_time else math.inf
        return max(0.0, min(by_steps, by_time))

    @contextlib.contextmanager
    def _unless_stopped(self):
        """Within: a timing that a stop request abandons leaves the choice at its default (float32, MKL's
        matmuls, oneDNN's GELU) for the one step then taken, which ends the run; the choices stay open, to be
        timed by the process that resumes it."""
        try:
            yield
        except _StopTiming:
            self._timing_abandoned = True

    def _timing_key(self, x: torch.Tensor) -> tuple:
        """What a timing is kept for in this process: the model (its type and every size: the heads, not only the
        width, decide how many small matmuls a step makes) and the micro-batch's shape."""
        return self.model_type, repr(self.model.config), tuple(x.shape)

    def _set_dtype(self, dtype: str) -> None:
        self.cfg.dtype = dtype
        self._dtype_open = False

    def _set_precision(self, precision: str) -> None:
        self.matmul_precision = precision
        self._precision_open = False
        torch.set_float32_matmul_precision(precision)

    @contextlib.contextmanager
    def _probe_passes(self, chunk: torch.Tensor):
        """(the micro-batch's input, a function that runs the plain model's forward and backward passes on it),
        for timing kernels; afterwards the gradients, the buffers (batch norm's running statistics) and torch's
        random numbers (dropout) are as they were."""
        model = self.model
        x, y, extra = self.data.micro_batch(chunk, model, self.cfg.pack, self.device)
        # the model's own parameters: where the optimizer holds flat buffers, their gradients are its views
        params = [p for p in model.parameters() if p.requires_grad]
        saved: dict = {}  # what the timing would change, saved at its first pass (what is not timed, not saved)

        def passes() -> None:  # the plain module: under DDP, no gradients exchanged
            if self._stop.is_set():  # Ctrl-C, q: answered after this pass, not after the whole timing
                raise _StopTiming
            if not saved:
                saved["rng"] = torch.get_rng_state()
                saved["grads"] = [None if p.grad is None else p.grad.clone() for p in params]
                saved["buffers"] = [b.clone() for b in model.buffers()]
            with self._autocast():
                _, loss = model(x, y, **extra)
            loss.backward()

        try:
            yield x, passes
        finally:
            if saved:
                torch.set_rng_state(saved["rng"])
                for b, kept in zip(model.buffers(), saved["buffers"]):
                    b.copy_(kept)
                for p, g in zip(params, saved["grads"]):
                    if g is None:
                        p.grad = None
                    else:  # in place: the gradients may be views of a flat buffer
                        p.grad.copy_(g)

    def _choose_gelu_kernel(self, chunk: torch.Tensor) -> bool:
        """Whether this run's steps take torch's GELU kernel (oneDNN off), where that is a choice: decided at the
        model's MLP width and the rows that the micro-batch ``chunk`` gives it, by timing the model's forward and
        backward passes on it each way (makemore.device.native_gelu_pays; its time counts as the first step's).
        The timing leaves no trace but on forward hooks: the gradients and torch's random numbers (dropout) are
        as they were. Under DDP the ranks agree: torch's kernel only if every rank's timing finds it faster."""
        native = False
        if self._gelu_kernel_is_a_choice():
            from makemore.device import native_gelu_pays

            with self._probe_passes(chunk) as (x, passes), self._unless_stopped():
                native = native_gelu_pays(x.numel(), int(self.model.gelu_width), passes)
        return self._every_rank(native)

    def _every_rank(self, mine: bool) -> bool:
        """Whether every rank's timing took the faster kernel (``mine``: this rank's), so that under DDP on CPUs all
        train alike; every rank takes part, whatever its own case. One process: ``mine``."""
        if not (self.dist.enabled and self.device.type == "cpu"):
            return mine
        votes = distributed.all_reduce_sum(torch.tensor([float(mine)], dtype=torch.float64), self.dist)
        return int(votes[0]) == self.dist.world_size

    def _gather_rng(self) -> list[dict]:
        """Every rank's default generator states (CPU, and CUDA where it trains), gathered on every rank: a
        collective, called by all ranks at the same steps. Packed into one float64 sum (each rank fills its own
        row; a byte is exact in float64)."""
        states = {"torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            states["cuda"] = torch.cuda.get_rng_state(self.device)
        names, world = list(states), self.dist.world_size
        sizes = [states[n].numel() for n in names]
        rows = torch.zeros(world, sum(sizes), dtype=torch.float64)
        rows[self.dist.rank] = torch.cat([states[n].to(torch.float64) for n in names])
        distributed.all_reduce_sum(rows, self.dist)
        out = []
        for r in range(world):
            parts = torch.split(rows[r].to(torch.uint8), sizes)
            out.append({n: part.clone() for n, part in zip(names, parts)})
        self._ranks_rng_step = self.step
        return out

    def _exchange(self, window_loss: torch.Tensor, window_tokens: int) -> tuple[float, int]:
        """Sum the window's loss and tokens over the ranks (their shares of a batch may differ by a row); under
        DDP also adopt rank 0's clock, and stop if any rank was asked to or rank 0's time is up.

        Every rank calls this at the same steps (each ``log_interval``), so the collective always pairs up.
        """
        if not self.dist.enabled:
            return float(window_loss), window_tokens
        cfg = self.cfg
        main = self.dist.is_main
        out_of_time = main and cfg.max_time is not None and self.elapsed >= cfg.max_time
        # a stop asked of any rank (Ctrl-C may reach one process alone) stops them all; the clock is rank 0's
        values = torch.tensor([float(window_loss), self.elapsed if main else 0.0, float(self._stop.is_set()),
                               float(out_of_time), float(window_tokens)], dtype=torch.float64)
        distributed.all_reduce_sum(values, self.dist)
        self._synced_elapsed = float(values[1])
        if not main:
            self.elapsed = self._synced_elapsed
        self._agreed_stop = "stopped" if values[2] > 0 else "max_time" if values[3] > 0 else None
        if self._agreed_stop == "stopped":  # (under torchrun only Ctrl-C asks): the job was interrupted, so every
            self.interrupted = True  # rank ends as one interrupted does, exit code 130
        return float(values[0]), int(values[4])

    def _train_step(self) -> tuple[torch.Tensor, int]:
        """One optimizer step on a global batch of ``batch_size`` words, and the update of the weights' average.

        Every rank draws the same global indices (same seeded generator) and trains on its own slice, in
        ``grad_accum`` micro-batches. Each micro-batch's mean loss is weighted by its share of the global batch's
        target tokens, so the summed gradient is exactly that of the global batch's mean loss, however the batch
        is split among ranks and micro-batches. Returns this rank's share of that loss (the ranks' shares sum to
        it) and the tokens it processed.
        """
        cfg = self.cfg
        index = self.data.draw(cfg.batch_size, self.batch_gen)
        mine = index[self.dist.shard(len(index))]
        chunks = mine.chunk(max(1, cfg.grad_accum))
        if not self._kernels_chosen:  # this process's first step: timed at the shape of its first micro-batch
            timing = time.perf_counter()
            still_open = self._precision_open, self._dtype_open, self.native_gelu
            self._choose_matmul_precision(chunks[0])  # first: the dtype's timing compares with the float32 chosen
            self._choose_dtype(chunks[0])
            if self.native_gelu is None:
                self.native_gelu = self._choose_gelu_kernel(chunks[0])
            self._kernels_chosen = True
            self.choosing_seconds = time.perf_counter() - timing
            if self._timing_abandoned:  # this step on the defaults; the run's state says nothing was chosen
                self._precision_open, self._dtype_open, self.native_gelu = still_open
        # the weights of the micro-batches' losses; one micro-batch on one process needs none
        total_targets = self.data.targets(index) if len(chunks) > 1 or self.dist.world_size > 1 else None
        loss_sum = torch.zeros((), device=self.device)
        tokens = 0
        record = self._record_step and self.recorder is not None
        # a record step runs the plain module: hooks on a compiled graph would make it recompile
        forward = self.ddp if record else self.forward
        watching = self.recorder.watch() if record else contextlib.nullcontext()
        with watching, onednn_off() if self.native_gelu else contextlib.nullcontext():
            loss_sum, tokens = self._micro_batches(chunks, forward, total_targets, loss_sum, tokens)
        if self.scaler:
            self.scaler.unscale_(self.optimizer)
        if record:
            # the backward pass scaled the loss by the world size (DDP averages) and the float16 scaler's scale
            loss_scale: torch.Tensor | int = self.dist.world_size
            if self.scaler:  # a device tensor: reading the scale as a number would synchronise
                loss_scale = self.scaler.scale(torch.full((), float(loss_scale), device=self.device))
            self.recorder.gradients(loss_scale)
        norm = None
        if cfg.grad_clip > 0:
            norm = torch.nn.utils.clip_grad_norm_(self.trained, cfg.grad_clip)
        elif self._measure_norm or record:
            from makemore.diagnostics import grad_norm

            norm = grad_norm(self.trained)
        if norm is not None:
            self.grad_norm = norm
        if record:
            self.recorder.before_update()
        if self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        if record:
            self.diagnostics.append(self.recorder.finish(step=self.step, lr=self.optimizer.param_groups[0]["lr"],
                                                         grad_norm=norm))
        for p in self.trained:  # in place: set to None, the parameters' gradients would stop being views
            p.grad.zero_()
        if self.ema is not None:
            # decay warms up as (1 + t) / (10 + t) so that the early average is not dominated by the init
            decay = min(cfg.ema, (1 + self.step) / (10 + self.step))
            with torch.no_grad():
                torch._foreach_lerp_(self.ema, [p.detach() for p in self.trained], 1 - decay)
        return loss_sum, tokens

    def _micro_batches(self, chunks, forward, total_targets: int | None, loss_sum: torch.Tensor,
                       tokens: int) -> tuple[torch.Tensor, int]:
        """Forward and backward over the micro-batches of one step; gradients accumulate."""
        # the whole batch in one micro-batch on one process: weight 1, no scalar product in either pass
        whole = total_targets is None
        for i, chunk in enumerate(chunks):
            x, y, extra = self.data.micro_batch(chunk, self.model, self.cfg.pack, self.device)
            weight = 1.0 if whole else self.data.targets(chunk) / total_targets
            # DDP all-reduces (averages) gradients on the last micro-batch only; the others accumulate locally
            last = i == len(chunks) - 1
            with contextlib.nullcontext() if last or not self.dist.enabled else self.ddp.no_sync():
                with self._autocast():
                    _, loss = forward(x, y, **extra)
                scaled = loss if whole else loss * weight
                # DDP divides the summed gradients by the world size
                backward = scaled if whole else scaled * self.dist.world_size
                (self.scaler.scale(backward) if self.scaler else backward).backward()
            loss_sum += scaled.detach().float()
            tokens += x.numel()
        return loss_sum, tokens

    def _diverged(self, step: int) -> Iterator[Event]:
        cfg = self.cfg
        if step == 0:  # before any update: the initial weights (a run resumed from step 0 has its checkpoint)
            scale = f" (--init-scale {cfg.init_scale:g})" if cfg.init_scale != 1 else ""
            kept = "the checkpoint in {} is kept" if self.rundir.file(BEST).exists() else "nothing was saved in {}"
            message = (f"training diverged: the loss is NaN or infinite at step 0, before any training: the "
                       f"initial weights give it{scale}; {kept.format(self.run_dir)}")
        else:
            decay = f" or --weight-decay than {cfg.weight_decay:g}" if cfg.learning_rate * cfg.weight_decay >= 1 else ""
            message = (f"training diverged: the loss became NaN or infinite at step {step} "
                       f"(try a lower --learning-rate than {cfg.learning_rate:g}{decay}); "
                       f"the last good checkpoint in {self.run_dir} is kept")
        yield Failed(step=step, message=message)
        raise Diverged(message)

    def _fit(self) -> Iterator[Event]:
        if not self.dist.is_main:
            return  # counting needs no second process: rank 0 fits, evaluates, saves and reports
        t0 = time.perf_counter()
        self.data.fit(self.model, self.device)
        self.elapsed = time.perf_counter() - t0
        yield from self._evaluate()
        yield self._save_last("last")
        yield self._finished("fitted")

    # --- evaluation, samples, checkpoints ---------------------------------------------------------

    @contextlib.contextmanager
    def averaged(self) -> Iterator[None]:
        """Within: the model holds the averaged weights (with --ema; otherwise nothing changes)."""
        if self.ema is None:
            yield
            return
        params = self.trained  # the flat buffers the model's parameters are views of
        with torch.no_grad():
            live = [p.detach().clone() for p in params]
            torch._foreach_copy_(params, self.ema)
        try:
            yield
        finally:
            with torch.no_grad():
                torch._foreach_copy_(params, live)

    def _evaluate(self) -> Iterator[Event]:
        with self.averaged():
            yield from self._evaluate_model()

    def one_pass(self):
        """Inside: a model that averages dropout masks evaluates in one pass (see the Transformer's)."""
        return getattr(self.model, "one_pass", contextlib.nullcontext)()

    def _evaluate_model(self) -> Iterator[Event]:
        with self.one_pass():  # the periodic losses and the checkpoint chosen by them: one pass each
            train_loss = self.data.evaluate(self.model, "train", device=self.device)
            # a word list too small for a validation split selects checkpoints on the training subset
            val_loss = self.data.evaluate(self.model, "val", device=self.device) if self.data.has("val") \
                else train_loss
        if not math.isfinite(val_loss):
            yield from self._diverged(self.step)
        improved = val_loss < self.best_val
        if improved:
            self.best_val, self.best_step = val_loss, self.step
        # text runs: nats per character (or per token) -> bits per character of the text, as `makemore eval`
        bpc = getattr(self.data, "bits_per_char", None)
        split = "val" if self.data.has("val") else "train"
        # the best checkpoint is written before the evaluation is told: a save that fails (a full disk) stops the
        # run with no record of a best whose weights were never kept
        saved = self._save_best() if improved else None
        yield Eval(step=self.step, train_loss=train_loss, val_loss=val_loss, best_val_loss=self.best_val,
                   best_step=self.best_step, val_bpc=bpc(val_loss, split) if bpc and math.isfinite(val_loss) else None,
                   best_val_bpc=bpc(self.best_val, split) if bpc and math.isfinite(self.best_val) else None)
        if saved is not None:
            yield saved
        yield self._samples()
        if len(self.vocab) <= MAX_TABLE_VOCAB:
            yield Bigrams(step=self.step, probs=self.data.bigram_table(self.model, self.device).tolist())

    def _samples(self) -> Samples:
        return self.data.samples(self.model, self.step, self.cfg.temperature, self.sample_gen, self.device,
                                 n=self.cfg.num_samples)

    def _meta(self) -> dict:
        return {"type": self.model_type, "step": self.step, "best_val_loss": _finite(self.best_val),
                "best_step": self.best_step}

    def _save_best(self) -> Saved:
        path = self.rundir.save_best(self.model.state_dict(), self._meta())
        return Saved(step=self.step, path=str(path), reason="best")

    def _save_last(self, reason: str) -> Saved:
        """Weights, optimizer and RNG state: everything --resume needs to continue exactly."""
        rng = {"torch": torch.get_rng_state(), "batches": self.batch_gen.get_state(),
               "samples": self.sample_gen.get_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        gathered = self._ranks_rng if self._ranks_rng_step == self.step else []  # (gathered at this step only)
        for r, states in enumerate(gathered[1:], 1):  # the other ranks' (rank 0's are those above)
            rng.update({f"{name}.rank{r}": state for name, state in states.items()})
        # the steps since the last progress record, which a resumed run's first record averages in (under DDP,
        # where every stop is agreed at a record, a save between two records keeps none)
        window = self._window_steps + self._carried[1]
        carried = {"window": [float(self._window_loss), window]} \
            if window and not self.dist.enabled else {}
        state = TrainingState(weights=self.model.state_dict(),
                              optimizer=self.optimizer.state_dict() if self.optimizer is not None else None,
                              rng=rng, ema=list(self.ema or []),
                              meta={**self._meta(), **carried, "elapsed": self.elapsed, "train": asdict(self.cfg),
                                    # None: no kernel chosen yet, or no choice here
                                    "native_gelu": self.native_gelu if self._gelu_kernel_applies() else None,
                                    # None: not chosen yet (a resumed run's restored choice counts as chosen)
                                    "matmul_precision": None if self._precision_open and self._saved_precision is None
                                    else self.matmul_precision,
                                    "dtype": None if self._dtype_open and self._saved_dtype is None
                                    else self.cfg.dtype})
        path = self.rundir.save_state(state)
        return Saved(step=self.step, path=str(path), reason=reason)

    def restore(self) -> None:
        """Continue from the run directory's last checkpoint (``--resume``)."""
        from makemore.models import load_weights

        state = self.rundir.load_state()
        where = self.rundir.file(LAST_STATE)
        load_weights(self.model, state.weights, where)
        self.model.to(self.device)
        try:
            if self.optimizer is not None:
                self.optimizer.load_state_dict(state.optimizer)
            own = f".rank{self.dist.rank}" if self.dist.rank and f"torch.rank{self.dist.rank}" in state.rng else ""
            torch.set_rng_state(state.rng["torch" + own])  # (a run saved by fewer processes: rank 0's)
            self.batch_gen.set_state(state.rng["batches"])
            self.sample_gen.set_state(state.rng["samples"])
            if self.ema is not None:
                if len(state.ema) != len(self.ema):
                    raise ValueError(f"{len(state.ema)} averaged tensors, the model has {len(self.ema)}")
                for i, (t, saved) in enumerate(zip(self.ema, state.ema)):
                    if saved.shape != t.shape:
                        raise ValueError(f"averaged weight {i} has shape {tuple(saved.shape)}, not {tuple(t.shape)}")
                    t.copy_(saved)
            if "cuda" in state.rng and self.device.type == "cuda":
                torch.cuda.set_rng_state(state.rng["cuda" + own if "cuda" + own in state.rng else "cuda"],
                                         self.device)
            meta = state.meta
            self.step, self.best_val, self.best_step, self.elapsed = _saved_progress(meta, where)
            window = meta.get("window")
            if window is not None:  # (one process's, stopped between two records; under DDP none is saved)
                if not (isinstance(window, list) and len(window) == 2):
                    raise ValueError(f"a progress window of {window!r}")
                loss, steps = float(window[0]), int(window[1])
                if not (math.isfinite(loss) and 0 < steps <= self.step):
                    raise ValueError(f"a progress window of {plural(steps, 'step')} summing to {loss}")
                self._carried = (loss, steps)
            if meta.get("matmul_precision") is None and isinstance(meta.get("native_gelu"), bool):
                # saved before the key (or, past step 0, without it): a GELU kernel chosen meant MKL's matmuls
                meta = {**meta, "matmul_precision": "highest"}
            if "dtype" not in meta and self.step > 0:
                meta = {**meta, "dtype": "float32"}  # saved before --dtype auto existed: it trained in float32
            if meta.get("dtype") in ("float32", "bfloat16") and self._dtype_open:
                # the dtype it trained with, taken in the first step (under DDP the ranks vote); set now for the
                # GELU's choice below, which depends on it
                self._saved_dtype = self.cfg.dtype = meta["dtype"]
            elif meta.get("dtype") == "bfloat16" and self._dtype_auto and self.cfg.compile:
                # --compile on a CPU trains in float32: the run would change its arithmetic halfway, unsaid
                raise MakemoreError(f"{self.rundir.path}: trains under bfloat16 autocast, as --dtype auto chose "
                                    f"when it began, and --compile on a CPU trains in float32; resume it without "
                                    f"--compile")
            if meta.get("matmul_precision") in ("highest", "medium") and self._precision_open:
                # the precision it trained with, taken in the first step (under DDP the ranks vote); set now for
                # the GELU's choice below, which depends on it
                self._saved_precision = self.matmul_precision = meta["matmul_precision"]
                torch.set_float32_matmul_precision(self.matmul_precision)
            if "native_gelu" in meta:  # the kernel the run was taking, where still a choice; None: time it now
                saved = meta["native_gelu"]
                self.native_gelu = saved and self._gelu_kernel_applies() if isinstance(saved, bool) else None
            elif self.step > 0:  # a run saved before the choice existed trained with oneDNN's
                self.native_gelu = False
        except (KeyError, ValueError, TypeError, RuntimeError) as e:
            raise MakemoreError(f"{where}: optimizer or RNG state does not fit this run "
                                f"({type(e).__name__}: {e})") from None

    def _finished(self, reason: str) -> Finished:
        test_loss = one_pass = None
        latest = False
        if self.data.has("test"):
            from makemore.models import load_weights

            def test() -> tuple[float, float | None]:
                loss = self.data.evaluate(self.model, "test", device=self.device)
                if not getattr(self.model.config, "dropout_samples", 0):
                    return loss, None
                with self.one_pass():
                    return loss, self.data.evaluate(self.model, "test", device=self.device)

            # the checkpoint chosen by validation, unless it holds only the initial weights: then the weights
            # sampling takes too, the latest
            untrained = best_is_initial(self.best_step, self.step, self.cfg.eval_interval, reason)
            weights = None if untrained else self.rundir.best_weights(str(self.device))
            latest = untrained
            if weights is not None:
                current = {k: v.clone() for k, v in self.model.state_dict().items()}
                load_weights(self.model, weights, self.rundir.file(BEST))
                test_loss, one_pass = test()
                self.model.load_state_dict(current)
            else:
                with self.averaged():
                    test_loss, one_pass = test()
        return Finished(step=self.step, reason=reason, best_val_loss=_finite(self.best_val),
                        test_loss=test_loss, elapsed=self.elapsed, test_loss_one_pass=one_pass,
                        test_on_latest=latest)


class _StopTiming(Exception):
    """Raised by a timed pass once the run is asked to stop: the timing is abandoned, nothing kept of it."""


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _device_memory(device: torch.device) -> int | None:
    """Peak bytes allocated on a CUDA device (None elsewhere); reading it does not synchronize."""
    return torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None


def _saved_progress(meta: dict, where) -> tuple[int, float, int, float]:
    """(step, best val loss, its step, seconds of training) as a run's state saved them; a value no run saves (a
    fraction of a step, a NaN best, which no later loss would ever beat, a billion steps or centuries of
    training) is refused: the state at ``where`` is damaged, and the run is not continued from it."""
    from makemore.config import MAX_STEPS
    from makemore.rundir import MAX_ELAPSED

    def damaged(name: str, value) -> MakemoreError:
        return MakemoreError(f"{where}: {name} {json.dumps(value)[:40]}, which no run saves: the state is damaged "
                             f"(an edit?); train a new run")

    def whole(name: str, value, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise damaged(name, value)
        return value

    def number(name: str, value, high: float) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= high:
            raise damaged(name, value)  # (NaN is not within any bounds)
        return float(value)

    step = whole("step", meta["step"], 0, MAX_STEPS)
    best = meta.get("best_val_loss")
    best_val = math.inf if best is None else number("best_val_loss", best, math.inf)
    if best_val == math.inf and best is not None:
        raise damaged("best_val_loss", best)
    best_step = whole("best_step", meta.get("best_step", -1), -1, MAX_STEPS)
    elapsed = number("elapsed", meta.get("elapsed", 0.0), MAX_ELAPSED)
    return step, best_val, best_step, elapsed
