"""Where the run stands: progress, speed, learning rate, time, best validation loss (and for a text run its
bits per character), size, device, run dir.

The panel owns ``figures`` (a small frozen record built from the run's state) and redraws when it changes.
Two columns of figures when the panel is wide enough, one otherwise."""

from __future__ import annotations

import math

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from makemore.sinks import fmt_time  # (the overlay's legend and chart take it from here too)
from makemore.tui.state import Figures




def fmt_loss(x: float | None) -> str:
    """Four decimals, or four digits in exponent form for a loss that diverged past 10,000 (1.178e+32), which
    would crowd everything else off its line."""
    if x is None or not math.isfinite(x):
        return "-"
    return f"{x:.4f}" if abs(x) < 1e4 else f"{x:.4g}"


def text_bpc(started, ev) -> tuple[float | None, float | None]:
    """A text run's (val, best val) in bits per character, as the trainer worked them out for the Eval event
    (nats per character / ln 2; a token run's nats per token x tokens / characters / ln 2, `makemore eval`'s
    conversion). (None, None) for a word list, or before the first evaluation."""
    if ev is None or started is None or started.mode != "text":
        return None, None
    if ev.val_bpc is None:  # a character run recorded before the event carried bits per character
        return ev.val_loss / math.log(2), ev.best_val_loss / math.log(2)
    best = ev.best_val_bpc
    if best is None and ev.val_loss:  # recorded before best_val_bpc: the conversion is linear in the loss
        best = ev.best_val_loss * ev.val_bpc / ev.val_loss
    return ev.val_bpc, best


def fmt_bpc(x: float | None) -> str:
    return f"{x:.4f}" if x is not None and math.isfinite(x) else "-"


def render_figures(f: Figures | None, width: int, where: str | None = None):
    if f is None:
        return Text("waiting for the run to start", style="italic")
    st, last = f.started, f.last_step
    step = f.step
    total = st.max_steps if st else 0

    def kv(key: str, value: str, style: str = "") -> Text:
        return Text.assemble((f"{key} ", "dim"), (value, style or "bold"))

    speed = last.steps_per_s if last and not f.stalled else None  # a stalled run's last rate is not its rate
    elapsed = f.finished.elapsed if f.finished else last.elapsed if last else None
    ended = f.finished is not None or f.failed is not None  # no time remains to count down
    remaining = (total - step) / speed if speed and total and not ended else None
    if not total and st and st.max_time and elapsed is not None and not ended and not f.stalled:
        remaining = max(0.0, st.max_time - elapsed)  # no step limit: the time budget decides
    ev = f.last_eval
    bpc, best_bpc = text_bpc(st, ev)
    pairs = [
        (kv("step", f"{step:,}" + (f" / {total:,}" if total else "")),
         kv("eta", "stalled", "bold yellow") if f.stalled else
         kv("eta", "paused", "bold yellow") if f.paused else
         kv("eta", fmt_time(remaining) if remaining is not None else "-")),
        (kv("steps/s", f"{speed:,.1f}" if speed else "-"),
         kv("tokens/s", f"{last.tokens_per_s / 1000:,.1f}k" if last and not f.stalled else "-")),
        (kv("loss", fmt_loss(last.loss) if last else "-"), kv("val", fmt_loss(ev.val_loss) if ev else "-")),
        (kv("best val", f"{fmt_loss(ev.best_val_loss)} @ {ev.best_step:,}" if ev else "-", "bold green"),
         kv("lr", f"{last.lr:.2e}" if last else "-")),
        *([(kv("val bits/char", fmt_bpc(bpc)),
            kv("best bits/char", fmt_bpc(best_bpc), "bold green"))] if st is not None and st.mode == "text" else []),
        (kv("elapsed", fmt_time(elapsed)), kv("batch", f"{st.batch_size}" if st else "-")),
        (kv("params", f"{st.num_params:,}" if st else "-"),
         kv("device", (st.device + ("" if f.dtype == "float32" else f" · {f.dtype}")) if st else "-")),
    ]
    t = Table.grid(padding=(0, 3))
    if width >= 48:
        t.add_column(no_wrap=True, min_width=23)
        t.add_column(no_wrap=True)
        for a, b in pairs:
            t.add_row(a, b)
    else:
        t.add_column(no_wrap=True)
        for a, b in pairs:
            t.add_row(a)
            t.add_row(b)
    saved = f"{f.saved.path.rsplit('/', 1)[-1]} @ {f.saved.step:,} ({f.saved.reason})" if f.saved else "-"
    # the directory being watched, where known (a copied run's events still name the one it was trained in)
    parts = [t, kv("run dir", where or (st.run_dir if st else "-")), kv("last save", saved)]
    if f.finished:
        fin = f.finished
        word = "stopped" if fin.reason == "stopped" else "finished"
        why = "" if fin.reason == word else f"({fin.reason}) "  # "stopped (stopped)" says it twice
        parts.append(Text.assemble((f"{word} ", "bold yellow" if word == "stopped" else "bold green"),
                                   f"{why}· best val {fmt_loss(fin.best_val_loss)}"
                                   + (f" ({fmt_bpc(best_bpc)} bits/char)" if best_bpc is not None else "")
                                   + f" · test {fmt_loss(fin.test_loss)}"
                                   + (" (latest weights)" if fin.test_on_latest and fin.test_loss is not None else "")))
    if f.failed:  # its first clause: the whole message is in the banner above the panels (said twice, it took
        # four rows of a 120x40 screen from the loss chart)
        parts.append(Text(f"failed: {f.failed.split(': ')[0]}", style="bold red"))
    return Group(*parts)


class StatsPanel(Static):
    figures: reactive[Figures | None] = reactive(None, init=False)
    where: str | None = None  # the run directory shown, if not the one the events name

    def on_mount(self) -> None:
        self.update(render_figures(self.figures, self.content_size.width, self.where))

    def watch_figures(self, figures: Figures | None) -> None:
        self.update(render_figures(figures, self.content_size.width, self.where))

    def on_resize(self) -> None:
        self.update(render_figures(self.figures, self.content_size.width, self.where))
