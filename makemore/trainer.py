"""The training engine. It prints nothing: ``Trainer.run()`` yields events (see makemore.events) and the
caller hands each one to its sinks. Thread-safe requests (stop, pause, save, sample) let a UI steer it.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

import torch

from makemore import checkpoint as ckpt
from makemore.data import EncodedWords, Vocab
from makemore.errors import MakemoreError
from makemore.evaluation import evaluate
from makemore.events import Bigrams, Eval, Event, Failed, Finished, Sample, Samples, Saved, Started, Step
from makemore.sample import generate, tag

MAX_TABLE_VOCAB = 256  # above this the bigram table is not computed (it would be V x V)


@dataclass
class TrainConfig:
    max_steps: int
    batch_size: int
    learning_rate: float
    min_lr_ratio: float  # cosine decays to learning_rate * min_lr_ratio
    warmup_steps: int
    weight_decay: float  # AdamW, on matrices only (not biases, norms)
    grad_clip: float  # max gradient norm; 0 disables
    eval_interval: int  # steps between evaluations (and checkpoints)
    max_time: float | None = None  # seconds of training; the schedule then follows elapsed time too
    seed: int = 42
    device: str = "cpu"
    dtype: str = "float32"  # autocast dtype: float32 (off), bfloat16, float16 (CUDA, with a grad scaler)
    grad_accum: int = 1  # micro-batches per optimizer step (the batch is split among them)
    compile: bool = False
    log_interval: int = 10  # steps between Step events (the loss is read from the device only then)
    eval_words: int = 1000  # fixed subset of training words on which the train loss is evaluated
    num_samples: int = 12  # samples drawn at each evaluation
    temperature: float = 1.0  # of those samples


def lr_at(step: int, cfg: TrainConfig, progress: float | None = None) -> float:
    """Linear warm-up, then cosine decay to ``min_lr_ratio`` of the peak; a pure function of the step."""
    if step < cfg.warmup_steps:
        return cfg.learning_rate * (step + 1) / cfg.warmup_steps
    if progress is None:
        span = max(1, cfg.max_steps - cfg.warmup_steps)
        progress = (step - cfg.warmup_steps) / span
    progress = min(max(progress, 0.0), 1.0)
    min_lr = cfg.learning_rate * cfg.min_lr_ratio
    return min_lr + 0.5 * (cfg.learning_rate - min_lr) * (1 + math.cos(math.pi * progress))


def make_optimizer(model, cfg: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    # fused AdamW updates every tensor in one kernel (CPU and CUDA); foreach is the fallback
    try:
        return torch.optim.AdamW(groups, lr=cfg.learning_rate, betas=(0.9, 0.99), fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.AdamW(groups, lr=cfg.learning_rate, betas=(0.9, 0.99), foreach=True)


class Diverged(MakemoreError):
    pass


class Trainer:
    def __init__(self, model, vocab: Vocab, splits: dict[str, EncodedWords], cfg: TrainConfig, run_dir: Path,
                 *, model_type: str, dataset: str):
        self.model = model
        self.vocab = vocab
        self.train_words = splits["train"]
        self.val_words = splits["val"]
        self.test_words = splits["test"]
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.model_type = model_type
        self.dataset = dataset
        self.device = torch.device(cfg.device)
        self.eval_subset = self.train_words.head(cfg.eval_words)
        self.known = (set(self.train_words.words), set(self.val_words.words) | set(self.test_words.words))
        self.optimizer = make_optimizer(model, cfg) if model.trainable else None
        self.step = 0
        self.best_val = math.inf
        self.best_step = -1
        self.elapsed = 0.0
        self.batch_gen = torch.Generator().manual_seed(cfg.seed)
        self.sample_gen = torch.Generator().manual_seed(cfg.seed + 1)
        self.forward = model
        if cfg.compile and model.trainable:
            self.forward = torch.compile(model)
        self.scaler = torch.amp.GradScaler("cuda") if cfg.dtype == "float16" and self.device.type == "cuda" else None
        self._stop = threading.Event()
        self._resume = threading.Event()
        self._resume.set()
        self._save_now = threading.Event()
        self._sample_now = threading.Event()

    # --- requests from other threads (the TUI, a signal handler) ----------------------------------

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

    # --- the loop ---------------------------------------------------------------------------------

    def _autocast(self):
        if self.cfg.dtype == "float32":
            return contextlib.nullcontext()
        dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16}[self.cfg.dtype]
        return torch.autocast(self.device.type, dtype=dtype)

    def started_event(self) -> Started:
        return Started(
            run_dir=str(self.run_dir), model_type=self.model_type, num_params=self.model.num_params(),
            device=str(self.device), dataset=self.dataset, num_words=len(self.train_words),
            vocab=self.vocab.itos, max_steps=self.cfg.max_steps if self.model.trainable else 0,
            batch_size=self.cfg.batch_size, start_step=self.step, time=time.time(),
        )

    def run(self) -> Iterator[Event]:
        yield self.started_event()
        if not self.model.trainable:
            yield from self._fit()
            return
        cfg = self.cfg
        model, opt = self.model, self.optimizer
        model.train()
        if self.step == 0:
            yield from self._evaluate()
        window_loss = torch.zeros((), device=self.device)
        window_steps = 0
        window_tokens = 0
        window_start = time.perf_counter()
        last_tick = window_start
        reason = "max_steps"
        while self.step < cfg.max_steps:
            if not self._resume.is_set():  # paused: time stands still
                self.elapsed += time.perf_counter() - last_tick
                self._resume.wait()
                last_tick = window_start = time.perf_counter()
            if self._stop.is_set():
                reason = "stopped"
                break
            if self._save_now.is_set():
                self._save_now.clear()
                yield self._save_last("request")
            if self._sample_now.is_set():
                self._sample_now.clear()
                yield self._samples()
            now = time.perf_counter()
            self.elapsed += now - last_tick
            last_tick = now
            if cfg.max_time is not None and self.elapsed >= cfg.max_time:
                reason = "max_time"
                break
            progress = None
            if cfg.max_time:
                span = max(1, cfg.max_steps - cfg.warmup_steps)
                progress = max((self.step - cfg.warmup_steps) / span, self.elapsed / cfg.max_time)
            lr = lr_at(self.step, cfg, progress)
            for group in opt.param_groups:
                group["lr"] = lr
            loss_sum, tokens = self._train_step()
            window_loss += loss_sum
            window_tokens += tokens
            window_steps += 1
            self.step += 1
            if self.device.type == "cpu" and not math.isfinite(float(loss_sum)):
                yield from self._diverged(self.step)
            if self.step % cfg.log_interval == 0 or self.step == cfg.max_steps:
                mean = float(window_loss) / window_steps
                if not math.isfinite(mean):
                    yield from self._diverged(self.step)
                now = time.perf_counter()
                dt = max(now - window_start, 1e-9)
                yield Step(step=self.step, loss=mean, lr=lr, steps_per_s=window_steps / dt,
                           tokens_per_s=window_tokens / dt, elapsed=self.elapsed + (now - last_tick))
                window_loss.zero_()
                window_steps = window_tokens = 0
                window_start = time.perf_counter()
            if self.step % cfg.eval_interval == 0 or self.step == cfg.max_steps:
                yield from self._evaluate()
                yield self._save_last("last")
                window_start = last_tick = time.perf_counter()  # evaluation is not training time
        if self.step % cfg.eval_interval != 0 and self.step != cfg.max_steps:
            yield from self._evaluate()
            yield self._save_last("interrupt" if reason == "stopped" else "last")
        yield self._finished(reason)

    def _train_step(self) -> tuple[torch.Tensor, int]:
        cfg = self.cfg
        micro = max(1, cfg.grad_accum)
        index = torch.randint(len(self.train_words), (cfg.batch_size,), generator=self.batch_gen)
        loss_sum = torch.zeros((), device=self.device)
        tokens = 0
        for chunk in index.chunk(micro):
            x, y = self.train_words.batch(chunk, self.device)
            with self._autocast():
                _, loss = self.forward(x, y)
            scaled = loss * (len(chunk) / cfg.batch_size)
            (self.scaler.scale(scaled) if self.scaler else scaled).backward()
            loss_sum += scaled.detach().float()
            tokens += x.numel()
        if self.scaler:
            self.scaler.unscale_(self.optimizer)
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        if self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss_sum, tokens

    def _diverged(self, step: int) -> Iterator[Event]:
        message = (f"training diverged: the loss became NaN or infinite at step {step} "
                   f"(try a lower --learning-rate than {self.cfg.learning_rate:g}); "
                   f"the last good checkpoint in {self.run_dir} is kept")
        yield Failed(step=step, message=message)
        raise Diverged(message)

    def _fit(self) -> Iterator[Event]:
        t0 = time.perf_counter()
        x, y = self.train_words.batch(torch.arange(len(self.train_words)), self.device)
        self.model.fit(x, y)
        self.elapsed = time.perf_counter() - t0
        yield from self._evaluate()
        yield self._save_last("last")
        yield self._finished("fitted")

    # --- evaluation, samples, checkpoints ---------------------------------------------------------

    def _evaluate(self) -> Iterator[Event]:
        val_set = self.val_words if len(self.val_words) else self.eval_subset
        train_loss = evaluate(self.model, self.eval_subset, device=self.device)
        val_loss = evaluate(self.model, val_set, device=self.device)
        if not math.isfinite(val_loss):
            yield from self._diverged(self.step)
        improved = val_loss < self.best_val
        if improved:
            self.best_val, self.best_step = val_loss, self.step
        yield Eval(step=self.step, train_loss=train_loss, val_loss=val_loss, best_val_loss=self.best_val,
                   best_step=self.best_step)
        if improved:
            yield self._save_best()
        yield self._samples()
        if len(self.vocab) <= MAX_TABLE_VOCAB:
            yield Bigrams(step=self.step, probs=self.model.bigram_table().tolist())

    def _samples(self) -> Samples:
        words = generate(self.model, self.vocab, self.cfg.num_samples, temperature=self.cfg.temperature,
                         generator=self.sample_gen, device=self.device)
        return Samples(step=self.step, temperature=self.cfg.temperature,
                       samples=[Sample(g.word, tag(g.word, *self.known)) for g in words])

    def _meta(self) -> dict:
        return {"type": self.model_type, "step": self.step, "best_val_loss": _finite(self.best_val),
                "best_step": self.best_step}

    def _save_best(self) -> Saved:
        path = self.run_dir / ckpt.BEST
        ckpt.save_tensors(path, self.model.state_dict(), self._meta())
        return Saved(step=self.step, path=str(path), reason="best")

    def _save_last(self, reason: str) -> Saved:
        """Weights, optimizer and RNG state: everything --resume needs to continue exactly."""
        state: dict[str, torch.Tensor] = {
            "rng.torch": torch.get_rng_state(),
            "rng.batches": self.batch_gen.get_state(),
            "rng.samples": self.sample_gen.get_state(),
        }
        if self.device.type == "cuda":
            state["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        groups = []
        if self.optimizer is not None:
            opt_state = self.optimizer.state_dict()
            for pid, entry in opt_state["state"].items():
                for key, value in entry.items():
                    state[f"opt.{pid}.{key}"] = value if torch.is_tensor(value) else torch.tensor(value)
            groups = opt_state["param_groups"]
        # the state file carries its own copy of the weights, so it alone is a consistent checkpoint: a kill
        # between the two writes below leaves a state file that --resume continues from exactly
        weights = self.model.state_dict()
        state.update({f"model.{k}": v for k, v in weights.items()})
        ckpt.save_tensors(self.run_dir / ckpt.LAST_STATE, state,
                          {**self._meta(), "elapsed": self.elapsed, "param_groups": groups,
                           "train": asdict(self.cfg)})
        ckpt.save_tensors(self.run_dir / ckpt.LAST, weights, self._meta())
        return Saved(step=self.step, path=str(self.run_dir / ckpt.LAST), reason=reason)

    def restore(self) -> None:
        """Continue from the run directory's last checkpoint (``--resume``)."""
        from makemore.run import load_state

        state, smeta = ckpt.load_tensors(self.run_dir / ckpt.LAST_STATE)
        weights = {k[len("model."):]: v for k, v in state.items() if k.startswith("model.")}
        source = self.run_dir / ckpt.LAST_STATE
        if not weights:  # older runs kept the weights only in last.safetensors
            weights, meta = ckpt.load_tensors(self.run_dir / ckpt.LAST)
            source = self.run_dir / ckpt.LAST
            if meta.get("step") != smeta.get("step"):
                raise MakemoreError(f"{self.run_dir}: last checkpoint and its optimizer state disagree on the "
                                    f"step ({meta.get('step')} vs {smeta.get('step')}); the run cannot resume exactly")
        for key in ("step", "param_groups"):
            if key not in smeta:
                raise MakemoreError(f"{source}: checkpoint metadata lacks {key!r}")
        load_state(self.model, weights, source)
        self.model.to(self.device)
        try:
            if self.optimizer is not None:
                opt_state: dict = {"state": {}, "param_groups": smeta["param_groups"]}
                for key, value in state.items():
                    if key.startswith("opt."):
                        _, pid, name = key.split(".", 2)
                        opt_state["state"].setdefault(int(pid), {})[name] = value
                self.optimizer.load_state_dict(opt_state)
            torch.set_rng_state(state["rng.torch"])
            self.batch_gen.set_state(state["rng.batches"])
            self.sample_gen.set_state(state["rng.samples"])
            if "rng.cuda" in state and self.device.type == "cuda":
                torch.cuda.set_rng_state(state["rng.cuda"], self.device)
            self.step = int(smeta["step"])
            self.best_val = float(smeta["best_val_loss"]) if smeta.get("best_val_loss") is not None else math.inf
            self.best_step = int(smeta.get("best_step", -1))
            self.elapsed = float(smeta.get("elapsed", 0.0))
        except (KeyError, ValueError, TypeError, RuntimeError) as e:
            raise MakemoreError(f"{self.run_dir / ckpt.LAST_STATE}: optimizer or RNG state does not fit this run "
                                f"({type(e).__name__}: {e})") from None

    def _finished(self, reason: str) -> Finished:
        test_loss = None
        if len(self.test_words):
            from makemore.run import load_state

            best = self.run_dir / ckpt.BEST
            if best.exists():  # report test on the checkpoint chosen by validation
                current = {k: v.clone() for k, v in self.model.state_dict().items()}
                weights, _ = ckpt.load_tensors(best, str(self.device))
                load_state(self.model, weights, best)
                test_loss = evaluate(self.model, self.test_words, device=self.device)
                self.model.load_state_dict(current)
            else:
                test_loss = evaluate(self.model, self.test_words, device=self.device)
        return Finished(step=self.step, reason=reason, best_val_loss=_finite(self.best_val),
                        test_loss=test_loss, elapsed=self.elapsed)


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None
