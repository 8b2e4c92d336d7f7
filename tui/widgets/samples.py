"""The latest samples, each tagged new / train / test (the same colours as `makemore sample`), or a text
continuation wrapped over several lines (text mode). Below them, when there is a model to play with, a
prefix to sample from and a word to score (text mode: a text to continue, and nothing to score).

The panel owns ``samples``, ``temperature``, ``note``, ``playable``, ``text_mode`` and ``score`` as reactive
attributes; the screen sets them and the panel redraws what changed.
"""

from __future__ import annotations

from dataclasses import replace

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.widgets import Input, Static

from makemore.events import Samples, novelty as novelty_of
from makemore.console import TAG_STYLE
from makemore.tui.widgets.cells import cell_len, pad


WORD_CELLS = (10, 18)  # a column is as wide as its longest word, within these (terminal cells)
TAG_CELLS = 6  # "train " / "new   "
GAP = 3  # cells between columns
MAX_COLUMNS = 4
# each box's placeholder, longest first: the longest that fits its width is shown (a cut one read "(Enter")
PLACEHOLDERS = {"prefix": ("prefix (Enter samples)", "prefix (Enter)", "prefix"),
                "text": ("text to continue (Enter)", "text to continue", "text"),
                "word": ("a word to score (Enter)", "word to score", "score")}


def placeholder_for(kind: str, width: int) -> str:
    """The longest of the ``kind`` box's placeholders that fits ``width`` cells (the shortest if none does)."""
    return next((p for p in PLACEHOLDERS[kind] if cell_len(p) <= width), PLACEHOLDERS[kind][-1])


def word_cells(words: list[str]) -> int:
    """The cells a column gives each word: the longest word's width, within ``WORD_CELLS``."""
    return _word_cells(max((cell_len(w) for w in words), default=0))


def _word_cells(longest: int) -> int:
    lo, hi = WORD_CELLS
    return max(lo, min(longest, hi))


def _columns(width: int, longest: int) -> int:
    return max(1, min(MAX_COLUMNS, (width + GAP) // (TAG_CELLS + _word_cells(longest) + GAP)))


def columns_for(width: int, words: list[str]) -> int:
    """How many columns of ``words`` fit side by side in ``width`` cells (1 to 4), as ``render_samples`` lays
    them out: each column a tag and a word of ``word_cells`` cells, with ``GAP`` cells between columns."""
    return _columns(width, max((cell_len(w) for w in words), default=0))


def fit_count(width: int, rows: int | None, words: list[str]) -> int:
    """How many of ``words``, the first ones, ``render_samples`` shows in ``width`` cells and ``rows`` lines of
    words (None: as many lines as it takes). The columns are as wide as the longest word shown, so a long word
    can leave fewer in view than the words before it would have filled."""
    if rows is None:
        return len(words)
    n, longest = 0, 0
    for word in words:
        longest = max(longest, cell_len(word))
        if n + 1 > _columns(width, longest) * rows:
            break
        n += 1
    return n


def render_samples(samples: Samples | None, width: int, note: str = "", rows: int | None = None) -> Text:
    """The samples in columns (the first ones down the first column), then where they came from. With ``rows``,
    only the words that fit in that many lines are drawn (``fit_count``)."""
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
    words = samples.samples[:fit_count(width, rows, [s.word for s in samples.samples])]
    ncols = columns_for(width, [s.word for s in words])
    per = (len(words) + ncols - 1) // ncols
    wide = word_cells([s.word for s in words])
    # the room the columns leave: a word longer than WORD_CELLS takes it, in as many columns (a word list of
    # long lines showed two columns of 18 cells beside 40 empty ones)
    room = (width + GAP) // ncols - GAP - TAG_CELLS
    wide = max(wide, min(max((cell_len(s.word) for s in words), default=0), room))
    for i in range(per):
        for j in range(ncols):
            k = i + j * per
            if k >= len(words):
                continue
            s = words[k]
            if j:
                out.append(" " * GAP)
            out.append(f"{s.tag:<{TAG_CELLS}}", style=TAG_STYLE.get(s.tag, ""))
            out.append(pad(s.word, wide), style="bold" if s.tag == "new" else "")
        out.append("\n")
    source = getattr(samples, "source", "")
    out.append(source or f"step {samples.step:,}", style="dim")
    if note:
        out.append(f" · {note}", style="italic dim")
    return out


SCORE_ROWS = 2  # the score line's height (app.tcss): a score and where it came from; a longer refusal is notified


class SamplesPanel(Vertical):
    samples: reactive[Samples | None] = reactive(None, init=False)
    temperature = reactive(1.0, init=False)
    note = reactive("", init=False)
    playable = reactive(False, init=False)  # a model to sample from and score with is at hand
    can_sample = reactive(True, init=False)  # s acts now (the subtitle offers the keys only then)
    text_mode = reactive(False, init=False)  # a text run: the prefix is continued, and there are no words to score
    score: reactive[Text | str] = reactive("", init=False)
    at_least = 12  # the fewest samples the playground draws (the panel's smallest size shows as many)

    def compose(self) -> ComposeResult:
        yield Static("no samples yet", id="sample-words")
        with Horizontal(id="play"):
            yield Input(placeholder=PLACEHOLDERS["prefix"][0], id="prefix")
            yield Input(placeholder=PLACEHOLDERS["word"][0], id="word")
        yield Static("", id="score")

    def on_mount(self) -> None:
        self._title()
        self._play_shown()

    @property
    def words(self) -> Static:
        return self.query_one("#sample-words", Static)

    def watch_samples(self) -> None:
        self._draw()  # and the title, which counts what is drawn

    def watch_note(self) -> None:
        self._draw()

    def watch_temperature(self) -> None:
        self._title()

    def watch_playable(self) -> None:
        self._play_shown()
        self._title()

    def watch_can_sample(self) -> None:
        self._title()

    def watch_text_mode(self, text_mode: bool) -> None:
        self._play_shown()
        self._placeholders()
        self._title()

    def watch_score(self, score) -> None:
        line = self.query_one("#score", Static)
        line.update(score)
        text = score if isinstance(score, Text) else Text(score)
        width = line.size.width or self.size.width
        # a text run has no score line (its refused prefix said nothing), and a refusal the line would cut: notified
        if text.plain and (self.text_mode or width and len(text.wrap(self.app.console, width)) > SCORE_ROWS):
            self.notify(text.plain, timeout=10, markup=False,  # the whole of it, for as long as it takes to read
                        severity="error" if str(text.style) == "red" else "information")

    def on_resize(self) -> None:
        self._draw()
        self.call_after_refresh(self._placeholders)  # once the boxes have their new widths

    def _placeholders(self) -> None:
        for box, kind in ((self.query_one("#prefix", Input), "text" if self.text_mode else "prefix"),
                          (self.query_one("#word", Input), "word")):
            box.placeholder = placeholder_for(kind, box.content_size.width or 1000)

    def _play_shown(self) -> None:
        self.query_one("#play").display = self.playable
        self.query_one("#word").display = not self.text_mode
        self.query_one("#score").display = self.playable and not self.text_mode

    @property
    def word_rows(self) -> int | None:
        """The lines of words the panel has room for: its height less the source line (fixed in every layout, so
        that the words never squeeze the chart). None while it has no size (hidden under another tab)."""
        words = self.words
        height = words.styles.height
        if height is None or height.is_auto or not words.size.height:
            return None
        return max(1, words.size.height - 1)

    def fit(self, samples: Samples) -> Samples:
        """``samples`` cut to what the panel shows at its size (the playground draws a few more than may fit: the
        number of columns depends on the longest word). Hidden, it keeps them all: drawing cuts them once shown."""
        rows = self.word_rows
        if rows is None:
            return samples
        words = [s.word for s in samples.samples]
        n = fit_count(self.words.size.width or self.size.width, rows, words)
        return samples if n >= len(words) else replace(samples, samples=samples.samples[:n])

    def _shown(self) -> list:
        """The samples on screen (all of them, unless the panel's height cannot hold them)."""
        s = self.samples
        if s is None or not s.samples:
            return []
        width = self.words.size.width or self.size.width
        return s.samples[:fit_count(width, self.word_rows, [x.word for x in s.samples])]

    def _draw(self) -> None:
        self.words.update(render_samples(self.samples, self.words.size.width or self.size.width, self.note,
                                         rows=self.word_rows))
        self._title()

    def _title(self) -> None:
        s = self.samples
        shown = self._shown()
        novelty = f" · novelty {novelty_of(x.tag for x in shown):.0%}" if shown else ""
        if s is not None and 0 < len(shown) < len(s.samples):  # the rest do not fit: said, and not counted
            novelty += f" of {len(shown)} shown ({len(s.samples)} drawn)"
        drawn = ""
        if s is not None and abs(s.temperature - self.temperature) > 1e-9:
            drawn = f" (drawn at T={s.temperature:.2f})"
        prefix = getattr(s, "prefix", "")
        prefix = f" · prefix {prefix!r}" if prefix else ""
        self.border_title = f"Samples · T={self.temperature:.2f}{drawn}{prefix}{novelty}"
        play = " · /: prefix" + ("" if self.text_mode else " · w: score a word") if self.playable else ""
        self.border_subtitle = "s: sample · +/-: temperature" + play if self.can_sample else ""
