"""The model's next-character probabilities as a heatmap: rows are the previous character (the first row is the
start token), columns the next character (the first column is the stop token). The cell under the cursor is
spelled out below the table with the count of that pair in the training words."""

from __future__ import annotations

from rich.color import Color
from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Static

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
    _STYLES.append(Style(bgcolor=Color.from_rgb(*rgb)))


def cell_style(p: float) -> Style:
    return _STYLES[min(32, max(0, round(max(p, 0.0) ** 0.5 * 32)))]


def shown(ch: str) -> str:
    return {" ": "␠", "\t": "␉"}.get(ch, ch)


class BigramTable(Vertical):
    DEFAULT_CSS = """
    BigramTable { height: 1fr; }
    BigramTable > DataTable { height: 1fr; scrollbar-size: 1 1; }
    BigramTable > #bigram-info { height: 3; padding: 0 1; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.vocab: list[str] = []
        self.probs: list[list[float]] | None = None
        self.counts: dict[tuple[int, int], int] = {}
        self.row_totals: dict[int, int] = {}
        self.exact = True

    def compose(self) -> ComposeResult:
        yield DataTable(cursor_type="cell", cell_padding=0, zebra_stripes=False, id="bigram-grid")
        yield Static("waiting for the first evaluation", id="bigram-info")

    @property
    def grid(self) -> DataTable:
        return self.query_one("#bigram-grid", DataTable)

    def configure(self, vocab: list[str], counts: dict[tuple[int, int], int], row_totals: dict[int, int],
                  exact: bool) -> None:
        self.vocab, self.counts, self.row_totals, self.exact = vocab, counts, row_totals, exact
        self.border_title = ("P(next | prev) · rows: prev · cols: next" if exact else
                             "P(next | ⟨start⟩ prev) · rows: prev · cols: next")
        self.border_subtitle = "" if exact else "context > 1 character: row c is after ⟨start⟩ c"

    def set_probs(self, probs: list[list[float]]) -> None:
        grid = self.grid
        V = len(probs)
        fresh = self.probs is None or len(self.probs) != V or grid.row_count != V
        self.probs = probs
        if fresh:
            cursor = grid.cursor_coordinate
            grid.clear(columns=True)
            labels = self.vocab if len(self.vocab) == V else [str(i) for i in range(V)]
            for j in range(V):
                grid.add_column(Text(f" {shown(labels[j])}", style="bold"), width=2, key=str(j))
            for i in range(V):
                grid.add_row(*(Text("  ", style=cell_style(p)) for p in probs[i]),
                             label=Text(f" {shown(labels[i])} ", style="bold"), key=str(i))
            if cursor.row < V and cursor.column < V:
                grid.cursor_coordinate = cursor
        else:
            for i in range(V):
                row = probs[i]
                for j in range(V):
                    grid.update_cell_at((i, j), Text("  ", style=cell_style(row[j])))
        self.describe()

    def describe(self) -> None:
        info = self.query_one("#bigram-info", Static)
        if self.probs is None:
            return
        r, c = self.grid.cursor_coordinate
        V = len(self.probs)
        if not (0 <= r < V and 0 <= c < V):
            return
        labels = self.vocab if len(self.vocab) == V else [str(i) for i in range(V)]
        prev = "⟨start⟩" if r == 0 else repr(labels[r])
        nxt = "⟨stop⟩" if c == 0 else repr(labels[c])
        after = prev  # the data counts are of the pair anywhere in a word
        if not self.exact and r > 0:
            prev = f"⟨start⟩ {prev}"
        count, total = self.counts.get((r, c), 0), self.row_totals.get(r, 0)
        text = Text()
        text.append(f"{prev} → {nxt}", style="bold")
        text.append(f"   P = {self.probs[r][c]:.3f}\n")
        if self.row_totals:
            text.append(f"in training data: {count:,} of the {total:,} pairs after {after}\n",
                        style="dim" if not count else "")
        else:
            text.append("training words not available (no split.json)\n", style="dim")
        row = self.probs[r]
        top = sorted(range(V), key=lambda j: -row[j])[:4]
        text.append("likeliest: " + "  ".join(
            f"{'⟨stop⟩' if j == 0 else labels[j]} {row[j]:.2f}" for j in top), style="dim")
        info.update(text)

    def on_data_table_cell_highlighted(self, event: DataTable.CellHighlighted) -> None:
        event.stop()
        self.describe()
