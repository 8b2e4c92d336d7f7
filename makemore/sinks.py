"""Where events go: the console (rich on a terminal, plain lines otherwise), metrics.jsonl, TensorBoard."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Callable

from rich.markup import escape

from makemore.errors import MakemoreError
from makemore.files import open_own
from makemore.rundir import METRICS, SAMPLES
from makemore.events import Arithmetic, Eval, Event, Failed, Finished, InitialLoss, Samples, Saved, Started, Step
from makemore.console import TAG_STYLE, make_console, plural

Sink = Callable[[Event], None]


def _ends_mid_line(fd: int) -> bool:
    """Whether the file open at ``fd`` (for reading) ends inside a line: a writer was killed mid-line."""
    size = os.fstat(fd).st_size
    return size > 0 and os.pread(fd, 1, size - 1) != b"\n"


def _append(f, text: str) -> None:
    """Write and flush ``text`` to one of the run's logs; a full disk stops the run, its last checkpoint kept."""
    try:
        f.write(text)
        f.flush()
    except OSError as e:
        raise MakemoreError(f"{f.name}: cannot write ({e.strerror or e}); the run stops at its last checkpoint, "
                            f"which --resume continues once there is room") from None


class JsonlSink:
    """Appends every event to RUN/metrics.jsonl (flushed per line, so another process can follow it)
    and the samples of each evaluation to RUN/samples.txt."""

    def __init__(self, run_dir: Path):
        path = Path(run_dir) / METRICS
        fd = open_own(path, os.O_RDWR | os.O_APPEND)
        torn = _ends_mid_line(fd)  # a writer killed mid-line; end that line so the next one stays whole
        self.file = open(fd, "a", encoding="utf-8")
        if torn:
            self.file.write("\n")
        try:
            self.samples = open(open_own(Path(run_dir) / SAMPLES, os.O_WRONLY | os.O_APPEND), "a", encoding="utf-8")
        except BaseException:
            self.file.close()
            raise

    def __call__(self, event: Event) -> None:
        _append(self.file, json.dumps(event.to_json(), ensure_ascii=False) + "\n")
        if isinstance(event, Samples):
            _append(self.samples, f"# step {event.step} temperature {event.temperature:g}\n"
                    + (event.text + "\n" if event.text is not None else "")
                    + "".join(f"{s.word}\t{s.tag}\n" for s in event.samples))

    def close(self) -> None:
        for f in (self.file, self.samples):
            try:
                f.close()
            except OSError:  # what could not be written was said when it failed
                pass


TENSORBOARD_MISSING = "--tensorboard needs the tensorboard package: pip install 'makemore[tensorboard]'"


def check_tensorboard() -> None:
    """Refuse --tensorboard where the package is missing, before torch and before a run directory is made."""
    import importlib

    try:
        importlib.import_module("tensorboard")  # what torch's writer needs
    except ImportError:
        raise MakemoreError(TENSORBOARD_MISSING) from None


class TensorBoardSink:
    def __init__(self, run_dir: Path):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise MakemoreError(TENSORBOARD_MISSING) from None
        self.writer = SummaryWriter(str(Path(run_dir) / "tensorboard"))

    def __call__(self, event: Event) -> None:
        if isinstance(event, Step):
            self.writer.add_scalar("loss/train_step", event.loss, event.step)
            self.writer.add_scalar("lr", event.lr, event.step)
        elif isinstance(event, Eval):
            self.writer.add_scalar("loss/train", event.train_loss, event.step)
            self.writer.add_scalar("loss/val", event.val_loss, event.step)
        elif isinstance(event, Samples):
            self.writer.add_text("samples", event.text if event.text is not None
                                 else "  \n".join(s.word for s in event.samples), event.step)
        elif isinstance(event, Finished):
            self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def fmt_time(seconds: float | None) -> str:
    """h:mm:ss or m:ss, to the nearest second (as `info` rounds); "-" for an unknown or impossible duration (the
    console, the TUI and `runs` show time alike)."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "-"
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 \
        else f"{seconds // 60}:{seconds % 60:02d}"


class ConsoleSink:
    """A live progress line on a terminal; plain log lines (one per evaluation) otherwise."""

    def __init__(self, console=None, quiet: bool = False):
        self.console = console or make_console(outlive_reader=True)  # `train ... | head` trains on, unprinted
        self.quiet = quiet
        self.live = self.console.is_terminal and not quiet
        self.progress = None
        self.task = None
        self.total = 0
        self.max_time: float | None = None  # with no step limit, progress is measured in seconds of this budget
        self.last_plain = 0.0

    def _start_progress(self, event: Started) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        timed = not event.max_steps
        amount = TextColumn("{task.completed:.0f}/{task.total:.0f} s") if timed else MofNCompleteColumn()
        self.progress = Progress(
            TextColumn("[bold]train"), BarColumn(), amount,
            TextColumn("loss {task.fields[loss]}  val {task.fields[val]}  {task.fields[speed]}"),
            TimeRemainingColumn(), console=self.console, refresh_per_second=4, transient=False,
        )
        self.task = self.progress.add_task("train", total=event.max_time if timed else event.max_steps,
                                           completed=0 if timed else event.start_step, loss="-", val="-",
                                           speed="")
        self.progress.start()

    def __call__(self, event: Event) -> None:
        if self.console.quiet:
            return
        try:
            self._show(event)
        except OSError as e:  # the output cannot be written (a full disk under `> log`): training goes on unseen
            self.console.quiet = True
            if self.progress is not None:
                self.progress.live.console.quiet = True
            import sys

            print(f"note: the progress cannot be written ({e.strerror or e}); training goes on without it",
                  file=sys.stderr)

    def _show(self, event: Event) -> None:
        c = self.console
        if isinstance(event, InitialLoss) and event.far_above:  # shown even with --quiet: a wasted run
            c.print(f"[bold yellow]warning:[/] initial loss {event.loss:.4f} is far above ln(vocab size) = "
                    f"{event.uniform:.4f}: the model starts confidently wrong; scale down its output layer "
                    f"(or --init-scale)", highlight=False)
            return
        if self.quiet and not isinstance(event, (Finished, Failed)):
            return  # --quiet: the final line only
        if isinstance(event, Started):
            self.total = event.max_steps
            self.max_time = event.max_time
            c.print(f"[bold]{event.model_type}[/] · {event.num_params:,} parameters · {event.device} · "
                    + (f"{event.processes} processes · " if event.processes > 1 else "") +
                    f"{plural(event.num_words, 'training ' + event.item)} · "
                    f"vocab {_vocab_size(event.vocab)} → {escape(event.run_dir)}"
                    + (f" (resuming at step {event.start_step})" if event.start_step else ""))
            if self.live and (event.max_steps or event.max_time):
                self._start_progress(event)
        elif isinstance(event, Step):
            if self.progress is not None:
                self.progress.update(self.task, completed=event.step if self.total else event.elapsed,
                                     loss=f"{event.loss:.4f}",
                                     speed=f"{event.steps_per_s:.0f} it/s {event.tokens_per_s / 1000:.0f}k tok/s")
            elif not self.quiet and time.monotonic() - self.last_plain >= 10:
                self.last_plain = time.monotonic()
                of = f"/{self.total}" if self.total else f" ({event.elapsed:.0f}/{self.max_time or 0:.0f} s)"
                c.print(f"step {event.step}{of} loss {event.loss:.4f} lr {event.lr:.2e} "
                        f"{event.steps_per_s:.1f} it/s", highlight=False)
        elif isinstance(event, Eval):
            if self.progress is not None:
                self.progress.update(self.task, val=f"{event.val_loss:.4f}")
            line = (f"step {event.step}: train {event.train_loss:.4f} val {event.val_loss:.4f} "
                    + (f"({event.val_bpc:.4f} bits/char) " if event.val_bpc is not None else "")
                    + f"(best {event.best_val_loss:.4f} @ {event.best_step})")
            (self.progress.console if self.progress else c).print(line, highlight=False)
        elif isinstance(event, Arithmetic) and event.dtype_chosen and event.dtype == "bfloat16":
            # the one choice that changes the arithmetic itself: said, as the lines of a resumed run say theirs
            (self.progress.console if self.progress else c).print(
                "training under bfloat16 autocast: the first step timed it faster than float32 on this CPU "
                "(a run trained with --dtype float32 keeps float32; evaluation is float32)" if event.step <= 1 else
                "continuing under bfloat16 autocast, as --dtype auto chose when this run began (evaluation is "
                "float32)", highlight=False)
        elif isinstance(event, InitialLoss):
            (self.progress.console if self.progress else c).print(
                f"initial loss {event.loss:.4f} (ln(vocab size) = {event.uniform:.4f})", highlight=False)
        elif isinstance(event, Samples) and not self.quiet and event.text is not None:
            lines = [line for line in event.text.splitlines() if line.strip()][:2]
            (self.progress.console if self.progress else c).print(
                f"  sample: {escape(' ⏎ '.join(lines)[:200])}", highlight=False)
        elif isinstance(event, Samples) and not self.quiet and event.samples:  # (num_samples 0: none drawn)
            text = "  ".join(f"[{TAG_STYLE[s.tag]}]{escape(s.word)}[/]" for s in event.samples[:8])  # words are data
            (self.progress.console if self.progress else c).print(f"  samples: {text}", highlight=False)
        elif isinstance(event, Failed):
            self._stop()
        elif isinstance(event, Finished):
            self._stop()
            test = f"test {event.test_loss:.4f}" if event.test_loss is not None else "no test split"
            if event.test_loss_one_pass is not None:  # the model averages dropout masks; its curve is one pass
                test += f" (averaging dropout masks; one pass {event.test_loss_one_pass:.4f})"
            if event.test_on_latest and event.test_loss is not None:
                test += f" of the latest weights (step {event.step}: the best checkpoint holds the initial ones)"
            best = f"{event.best_val_loss:.4f}" if event.best_val_loss is not None else "-"
            c.print(f"[bold]done[/] ({event.reason}) at step {event.step} in {fmt_time(event.elapsed)}: "
                    f"best val {best}, {test}")
        elif isinstance(event, Saved) and event.reason in ("request", "interrupt"):
            c.print(f"saved {escape(event.path)} at step {event.step}")

    def notice(self, message: str) -> None:
        """A line from the driver (e.g. what Ctrl-C does), on stderr, around the live progress line; said to no
        one where stderr's reader is gone (Ctrl-C ends `| tee` too), so that the stop still saves."""
        try:
            make_console(stderr=True, outlive_reader=True).print(f"\n{message}")
        except OSError:
            pass

    def _stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def close(self) -> None:
        try:
            self._stop()
        except OSError:  # said when the output first failed
            pass


def _vocab_size(vocab: list[str]) -> str:
    """The vocabulary as `info` gives it: a token run's rows padded for faster kernels are said as such."""
    pad = vocab.count("<pad>") if vocab and vocab[-1] == "<pad>" else 0
    return f"{len(vocab) - pad:,} (rows padded to {len(vocab):,})" if pad else f"{len(vocab):,}"
