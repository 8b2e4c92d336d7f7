"""The model's next-character probabilities as a heatmap: rows are the previous character (the first row is the
start token), columns the next character (the first column is the stop token). A text run has neither: its rows
are averaged over the val text, the first over every position, and its first column is never the next.

Cells widen with the room there is (2 columns, 3 or 4 with the percentage written in); a vocabulary that does
not fit scrolls both ways with the cursor, and the last line says which rows and columns are shown. The cursor
cell is drawn in reverse (black on white, with its figure) and its row and column labels too. Below the
table, the cell is spelled out with the count in the training words that estimates the same probability.
"""

from __future__ import annotations

from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget

from makemore.events import Bigrams
from makemore.tui.state import RunInfo
from makemore.tui.widgets.cells import center, pad

# dark blue -> teal -> yellow, indexed by sqrt(p) so that the many small probabilities stay distinguishable
_STOPS = [(0.0, (18, 18, 38)), (0.35, (32, 96, 140)), (0.65, (70, 170, 120)), (1.0, (250, 220, 60))]
_STYLES = []
for _i in range(33):
    t = _i / 32
    for (t0, c0), (t1, c1) in zip(_STOPS, _STOPS[1:]):
        if t <= t1:
            f = (t - t0) / (t1 - t0)
            rgb = tuple(round(a + (b - a) * f) for a, b in zip(c0, c1))
            break
    _STYLES.append(Style(bgcolor=Color.from_rgb(*rgb), color="black" if t > 0.6 else "rgb(200,200,200)"))

CURSOR = Style(color="rgb(0,0,0)", bgcolor="rgb(255,255,255)", bold=True)
LABEL = Style(bold=True)
LABEL_AT_CURSOR = Style(bold=True, reverse=True)


def cell_style(p: float) -> Style:
    return _STYLES[min(32, max(0, round(max(p, 0.0) ** 0.5 * 32)))]


def shown(ch: str) -> str:
    return {" ": "␠", "\t": "␉", "\n": "⏎", "\r": "␍"}.get(ch, ch)


def cell_text(p: float, width: int) -> str:
    """The cell's figure as a percentage when there is room for it (blank under 1%)."""
    if width < 3:
        return " " * width
    pct = round(p * 100)
    if pct < 1:
        return " " * width
    return f"{min(pct, 99):>{width - 1}} " if width >= 4 else f"{min(pct, 99):>2} "[:width]


def window(cursor: int, offset: int, visible: int, total: int) -> int:
    """The first index shown so that ``cursor`` stays in view (moving the view as little as possible)."""
    if visible >= total:
        return 0
    if cursor < offset:
        offset = cursor
    elif cursor >= offset + visible:
        offset = cursor - visible + 1
    return max(0, min(offset, total - visible))


class BigramTable(Widget, can_focus=True):
    BINDINGS = [
        Binding("up", "move(-1, 0)", "up", show=False),
        Binding("down", "move(1, 0)", "down", show=False),
        Binding("left", "move(0, -1)", "left", show=False),
        Binding("right", "move(0, 1)", "right", show=False),
        Binding("pageup", "move(-10, 0)", show=False),
        Binding("pagedown", "move(10, 0)", show=False),
        Binding("home", "edge(0)", show=False),
        Binding("end", "edge(1)", show=False),
    ]

    bigrams: reactive[Bigrams | None] = reactive(None)
    vocab: reactive[tuple[str, ...]] = reactive(tuple)
    info: reactive[RunInfo | None] = reactive(None)
    cursor: reactive[tuple[int, int]] = reactive((0, 0))
    note: reactive[str] = reactive("")  # why there is no table (a token vocabulary), shown in its place

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.row0 = self.col0 = 0  # the view's first row and column (follow the cursor)
        self.info_lines = 5  # lines the description under the table took at the last render
        self._lines: list[Strip] | None = None
        self._lines_for: tuple = ()

    # --- what it shows -------------------------------------------------------------------------------

    @property
    def size_v(self) -> int:
        return len(self.bigrams.probs) if self.bigrams is not None else 0

    @property
    def labels(self) -> list[str]:
        V = self.size_v
        return list(self.vocab) if len(self.vocab) == V else [str(i) for i in range(V)]

    def watch_info(self) -> None:
        self._titles()

    def _titles(self) -> None:
        if self.note:  # no table: nothing has rows and columns to describe
            self.border_title, self.border_subtitle = "P(next)", ""
            return
        # the step the table was computed at: it comes a moment after its evaluation's losses
        at = [f"step {self.bigrams.step:,}"] if self.bigrams is not None else []
        if self.text:  # running text has no start or stop: row c averages every position after c
            self.border_title = "P(next | prev) · rows: prev · cols: next"
            self.border_subtitle = " · ".join(["averaged over the val text · first row: every position", *at])
            return
        exact = self.info is None or self.info.exact_bigram
        self.border_title = ("P(next | prev) · rows: prev · cols: next" if exact else
                             "P(next | ⟨start⟩ prev) · rows: first char · cols: second")
        self.border_subtitle = " · ".join(([] if exact else ["the model sees more than one character"]) + at)

    @property
    def text(self) -> bool:
        """A text run's table (makemore.text): row c is P(next | c) averaged over the positions of the val text
        where c came last, row 0 the average over every position; column 0, the stop token, never comes next."""
        return self.info is not None and self.info.text

    def symbol(self, j: int) -> str:
        """Row or column ``j`` named in the lines under the table."""
        if j == 0:
            return "⟨none⟩" if self.text else "⟨stop⟩"
        return shown(self.labels[j])

    def validate_cursor(self, cursor: tuple[int, int]) -> tuple[int, int]:
        V = max(1, self.size_v)
        return min(max(cursor[0], 0), V - 1), min(max(cursor[1], 0), V - 1)

    def watch_bigrams(self, bigrams: Bigrams | None) -> None:
        self.cursor = self.validate_cursor(self.cursor)
        self._titles()

    def action_move(self, rows: int, cols: int) -> None:
        r, c = self.cursor
        self.cursor = (r + rows, c + cols)

    def action_edge(self, end: int) -> None:
        self.cursor = (self.cursor[0], self.size_v - 1 if end else 0)

    # --- geometry ------------------------------------------------------------------------------------

    def geometry(self) -> tuple[int, int, int, int]:
        """(label width, cell width, visible columns, visible rows) for the current size."""
        V = self.size_v
        width, height = self.size.width, self.size.height
        label = 4
        cell = max(2, min(4, (width - label) // max(V, 1)))
        cols = max(1, min(V, (width - label) // cell))
        rows = max(1, min(V, height - 1 - self.info_lines))
        return label, cell, cols, rows

    def on_click(self, event: events.Click) -> None:
        if self.bigrams is None:
            return
        label, cell, cols, rows = self.geometry()
        x, y = event.x, event.y
        if y >= 1 and y - 1 < rows and x >= label and (x - label) // cell < cols:
            self.cursor = (self.row0 + y - 1, self.col0 + (x - label) // cell)

    # --- drawing (the Line API: one Strip per line, built once per change; a rich Text of thousands of
    # styled cells takes Textual ~0.3 s to lay out, the strips a few milliseconds) --------------------------

    def watch_vocab(self) -> None:
        self._lines = None

    def watch_note(self) -> None:
        self._titles()
        self._lines = None
        self.refresh()

    def watch_cursor(self) -> None:
        self._lines = None

    def on_resize(self) -> None:
        self._lines = None

    def render_line(self, y: int) -> Strip:
        key = (self.bigrams, self.info, self.size, self.rich_style, self.note)
        if self._lines is None or self._lines_for != key:
            width, base = self.size.width, self.rich_style
            self._lines = [line.adjust_cell_length(width).apply_style(base) for line in self.build_lines()]
            self._lines_for = key
        return self._lines[y] if y < len(self._lines) else Strip.blank(self.size.width, self.rich_style)

    def build_lines(self) -> list[Strip]:
        width = max(self.size.width, 1)
        console = self.app.console
        options = console.options.update_width(width)
        if self.bigrams is None:
            if self.note:
                return [Strip(line) for line in console.render_lines(Text(self.note, style="italic"), options,
                                                                       pad=False)]
            return [Strip(console.render_lines(Text("waiting for the first evaluation", style="italic"),
                                               options)[0])]
        probs = self.bigrams.probs
        V = len(probs)
        labels = self.labels
        r, c = self.cursor
        # the description's height (wrapped to the width) decides how many rows fit above it; its last line
        # names the rows shown, so it is built once more after the view has moved
        self.info_lines = len(console.render_lines(self.describe(), options))
        label, cell, ncols, nrows = self.geometry()
        self.row0 = window(r, self.row0, nrows, V)
        self.col0 = window(c, self.col0, ncols, V)
        cols = range(self.col0, self.col0 + ncols)
        header = [Segment(" " * label)]
        for j in cols:
            header.append(Segment(center(shown(labels[j]), cell), LABEL_AT_CURSOR if j == c else LABEL))
        lines = [Strip(header)]
        for i in range(self.row0, self.row0 + nrows):
            segments = [Segment(f" {pad(shown(labels[i]), label - 2)} ", LABEL_AT_CURSOR if i == r else LABEL)]
            row = probs[i]
            for j in cols:
                if (i, j) == (r, c):
                    figure = f"{min(round(row[j] * 100), 99):>{cell - 1}} " if cell >= 3 else "◆ "[:cell]
                    segments.append(Segment(figure[:cell], CURSOR))
                else:
                    segments.append(Segment(cell_text(row[j], cell), cell_style(row[j])))
            lines.append(Strip(segments))
        lines.extend(Strip(segments) for segments in console.render_lines(self.describe(), options, pad=False))
        return lines

    def describe(self) -> Text:
        """The cursor cell in words, its count in the training words, the row's likeliest, and the view."""
        probs = self.bigrams.probs
        V = len(probs)
        labels = self.labels
        r, c = self.cursor
        info = self.info
        exact = info is None or info.exact_bigram
        first = "⟨start⟩" if r == 0 else repr(labels[r])
        nxt = "⟨stop⟩" if c == 0 else repr(labels[c])
        given = first if exact or r == 0 else f"⟨start⟩ {first}"
        if self.text:  # no start or stop in running text (see ``text``)
            nxt = "⟨none⟩ (no stop in running text)" if c == 0 else nxt
            given = "any character" if r == 0 else first
        p = probs[r][c]
        text = Text()
        text.append(f"{given} → {nxt}", style="bold")
        text.append(f"   P = {p:.3f}\n")
        if info is not None and info.text:
            text.append("a text run: no training words to count this in\n", style="dim")
        elif info is None or not info.have_words:
            text.append("training words not available (no split.json)\n", style="dim")
        else:
            count, total = info.matching(r, c)
            share = f" = {count / total:.3f}" if total else ""
            style = "" if count else "dim"
            if r == 0:
                what = f"start with {nxt}" if c else "are empty"
                text.append(f"in training data: {count:,} of the {total:,} words {what}{share}\n", style=style)
            elif exact:
                text.append(f"in training data: {count:,} of the {total:,} pairs after {first}{share} "
                            f"(anywhere in a word)\n", style=style)
            else:
                cont = "end there" if c == 0 else f"go on with {nxt}"
                text.append(f"in training data: {count:,} of the {total:,} words starting {first} {cont}{share}\n",
                            style=style)
                pair, pairs = info.counts.get((r, c), 0), info.row_totals.get(r, 0)
                text.append(f"(the pair {first} {nxt} anywhere in a word: {pair:,} of {pairs:,}; "
                            f"not what this row estimates)\n", style="dim")
        row = probs[r]
        top = sorted(range(V), key=lambda j: -row[j])[:4]
        text.append("likeliest: " + "  ".join(f"{self.symbol(j)} {row[j]:.2f}"
                                              for j in top) + "\n", style="dim")
        text.append(self.view_line(), style="dim")
        return text

    def view_line(self) -> str:
        V = self.size_v
        labels = self.labels
        _, _, ncols, nrows = self.geometry()

        def span(start: int, count: int, what: str) -> str:
            if count >= V:
                return f"all {V} {what}"
            return f"{what} {shown(labels[start])}–{shown(labels[start + count - 1])} of {V}"

        cells = " · cells: P in %" if self.geometry()[1] >= 3 else ""
        return f"{span(self.row0, nrows, 'rows')} · {span(self.col0, ncols, 'cols')}{cells} · arrows move"
