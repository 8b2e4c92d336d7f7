"""The latest samples, each tagged new / train / test (the same colours as `makemore sample`), or a text
continuation wrapped over several lines (text mode). Below them, when there is a model to play with, a
prefix to sample from and a word to score (text mode: a text to continue, and nothing to score).

The panel owns ``samples``, ``temperature``, ``note``, ``playable``, ``text_mode`` and ``score`` as reactive
attributes; the screen sets them and the panel redraws what changed.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.widgets import Input, Static

from makemore.events import Samples
from makemore.console import TAG_STYLE


def columns_for(width: int, words: list[str]) -> int:
    cell = 6 + min(max((len(w) for w in words), default=0), 18) + 3
    return max(1, min(4, width // max(cell, 1)))


def render_samples(samples: Samples | None, width: int, note: str = "") -> Text:
    if samples is None:
        return Text(note or "no samples yet", style="italic")
    text_mode = getattr(samples, "text", None)
    if text_mode:
        out = Text(text_mode, overflow="fold")
        out.append(f"\n{getattr(samples, 'source', '') or f'step {samples.step:,}'}", style="dim")
        if note:
            out.append(f" · {note}", style="italic dim")
        return out
    out = Text(no_wrap=True, overflow="ellipsis")
    words = samples.samples
    ncols = columns_for(width, [s.word for s in words])
    per = (len(words) + ncols - 1) // ncols
    wide = min(max((len(s.word) for s in words), default=0), 18)
    wide = max(wide, 10)
    for i in range(per):
        for j in range(ncols):
            k = i + j * per
            if k >= len(words):
                continue
            s = words[k]
            if j:
                out.append("   ")
            out.append(f"{s.tag:<6}", style=TAG_STYLE.get(s.tag, ""))
            word = s.word if len(s.word) <= 18 else s.word[:17] + "…"
            out.append(f"{word:<{wide}}", style="bold" if s.tag == "new" else "")
        out.append("\n")
    source = getattr(samples, "source", "")
    out.append(source or f"step {samples.step:,}", style="dim")
    if note:
        out.append(f" · {note}", style="italic dim")
    return out


class SamplesPanel(Vertical):
    samples: reactive[Samples | None] = reactive(None, init=False)
    temperature = reactive(1.0, init=False)
    note = reactive("", init=False)
    playable = reactive(False, init=False)  # a model to sample from and score with is at hand
    text_mode = reactive(False, init=False)  # a text run: the prefix is continued, and there are no words to score
    score: reactive[Text | str] = reactive("", init=False)

    def compose(self) -> ComposeResult:
        yield Static("no samples yet", id="sample-words")
        with Horizontal(id="play"):
            yield Input(placeholder="prefix (Enter samples)", id="prefix")
            yield Input(placeholder="a word to score (Enter)", id="word")
        yield Static("", id="score")

    def on_mount(self) -> None:
        self._title()
        self._play_shown()

    @property
    def words(self) -> Static:
        return self.query_one("#sample-words", Static)

    def watch_samples(self) -> None:
        self._title()
        self._draw()

    def watch_note(self) -> None:
        self._draw()

    def watch_temperature(self) -> None:
        self._title()

    def watch_playable(self) -> None:
        self._play_shown()
        self._title()

    def watch_text_mode(self, text_mode: bool) -> None:
        prefix = self.query_one("#prefix", Input)
        prefix.placeholder = "text to continue (Enter)" if text_mode else "prefix (Enter samples)"
        self._play_shown()
        self._title()

    def watch_score(self, score) -> None:
        self.query_one("#score", Static).update(score)

    def on_resize(self) -> None:
        self._draw()

    def _play_shown(self) -> None:
        self.query_one("#play").display = self.playable
        self.query_one("#word").display = not self.text_mode
        self.query_one("#score").display = self.playable and not self.text_mode

    def _draw(self) -> None:
        self.words.update(render_samples(self.samples, self.words.size.width or self.size.width, self.note))

    def _title(self) -> None:
        s = self.samples
        novelty = f" · novelty {s.novelty:.0%}" if s is not None and s.samples else ""
        drawn = ""
        if s is not None and abs(s.temperature - self.temperature) > 1e-9:
            drawn = f" (drawn at T={s.temperature:.2f})"
        prefix = getattr(s, "prefix", "")
        prefix = f" · prefix {prefix!r}" if prefix else ""
        self.border_title = f"Samples · T={self.temperature:.2f}{drawn}{prefix}{novelty}"
        play = " · /: prefix" + ("" if self.text_mode else " · w: score a word") if self.playable else ""
        self.border_subtitle = "s: sample · +/-: temperature" + play
