"""Where the run stands: progress, speed, learning rate, time, best validation loss, size, device, run dir."""

from __future__ import annotations

import math

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from makemore.tui.state import Snapshot


def fmt_time(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "-"
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def fmt_loss(x: float | None) -> str:
    return f"{x:.4f}" if x is not None and math.isfinite(x) else "-"


class StatsPanel(Static):
    DEFAULT_CSS = """
    StatsPanel { height: 1fr; padding: 0 1; }
    """

    def show(self, snap: Snapshot, *, elapsed: float | None = None) -> None:
        st, last = snap.started, snap.last_step
        step = snap.step
        total = st.max_steps if st else 0
        t = Table.grid(padding=(0, 3))
        t.add_column(no_wrap=True, min_width=26)
        t.add_column(no_wrap=True)

        def kv(key: str, value: str, style: str = "") -> Text:
            return Text.assemble((f"{key} ", "dim"), (value, style or "bold"))

        speed = last.steps_per_s if last else None
        if elapsed is None:
            elapsed = last.elapsed if last else (snap.finished.elapsed if snap.finished else None)
        remaining = (total - step) / speed if speed and total and not snap.finished else None
        if not total and st and st.max_time and elapsed is not None and not snap.finished:
            remaining = max(0.0, st.max_time - elapsed)  # no step limit: the time budget decides
        ev = snap.evals[-1] if snap.evals else None
        t.add_row(kv("step", f"{step:,}" + (f" / {total:,}" if total else "")),
                  kv("eta", fmt_time(remaining) if remaining is not None else "-"))
        t.add_row(kv("steps/s", f"{speed:,.1f}" if speed else "-"),
                  kv("tokens/s", f"{last.tokens_per_s / 1000:,.1f}k" if last else "-"))
        t.add_row(kv("loss", fmt_loss(last.loss) if last else "-"), kv("val", fmt_loss(ev.val_loss) if ev else "-"))
        t.add_row(kv("best val", f"{fmt_loss(ev.best_val_loss)} @ {ev.best_step:,}" if ev else "-", "bold green"),
                  kv("lr", f"{last.lr:.2e}" if last else "-"))
        t.add_row(kv("elapsed", fmt_time(elapsed)), kv("batch", f"{st.batch_size}" if st else "-"))
        t.add_row(kv("params", f"{st.num_params:,}" if st else "-"), kv("device", st.device if st else "-"))
        saved = f"{snap.saved.path.rsplit('/', 1)[-1]} @ {snap.saved.step:,} ({snap.saved.reason})" if snap.saved else "-"
        parts = [t, kv("run dir", st.run_dir if st else "-"), kv("last save", saved)]
        if snap.finished:
            f = snap.finished
            parts.append(Text.assemble(("finished ", "bold green"), f"({f.reason}) · best val {fmt_loss(f.best_val_loss)}"
                                       f" · test {fmt_loss(f.test_loss)}"))
        if snap.failed:
            parts.append(Text(f"error: {snap.failed}", style="bold red"))
        from rich.console import Group

        self.update(Group(*parts))
