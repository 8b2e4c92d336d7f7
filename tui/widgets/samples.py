"""The latest samples, each tagged new / train / test (the same colours as `makemore sample`)."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from makemore.events import Samples
from makemore.sinks import TAG_STYLE



class SamplesPanel(Static):
    DEFAULT_CSS = """
    SamplesPanel { height: 1fr; padding: 0 1; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__("no samples yet", **kwargs)
        self.samples: Samples | None = None
        self.temperature = 1.0
        self.note = ""

    def on_mount(self) -> None:
        self._title()

    def show(self, samples: Samples | None, temperature: float, note: str = "") -> None:
        if samples is self.samples and temperature == self.temperature and note == self.note:
            return
        self.samples, self.temperature, self.note = samples, temperature, note
        self._title()
        if samples is None:
            self.update(note or "no samples yet")
            return
        text = Text(no_wrap=True, overflow="ellipsis")
        words = samples.samples
        half = (len(words) + 1) // 2
        width = max((len(s.word) for s in words), default=0)
        width = min(max(width, 10), 18)
        for i in range(half):
            for j, s in enumerate((words[i], words[i + half] if i + half < len(words) else None)):
                if s is None:
                    continue
                if j:
                    text.append("   ")
                text.append(f"{s.tag:<6}", style=TAG_STYLE.get(s.tag, ""))
                text.append(f"{s.word[:18]:<{width}}", style="bold" if s.tag == "new" else "")
            text.append("\n")
        text.append(f"step {samples.step:,}", style="dim")
        if note:
            text.append(f" · {note}", style="italic dim")
        self.update(text)

    def _title(self) -> None:
        s = self.samples
        novelty = f" · novelty {s.novelty:.0%}" if s else ""
        sampled_at = f" (drawn at T={s.temperature:.2f})" if s and abs(s.temperature - self.temperature) > 1e-9 else ""
        self.border_title = f"Samples · T={self.temperature:.2f}{sampled_at}{novelty}"
