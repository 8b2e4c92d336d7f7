"""A footer whose key list is never cut mid-word. When the keys do not fit the terminal's width, their short labels
are used (the screen's ``FOOTER_SHORT``: description -> shorter description); if that is not enough, whole entries
are left out from the end of the list (a screen lists its keys most important first). A key left out of the footer
still acts."""

from __future__ import annotations

from textual.widget import Widget
from textual.widgets import Footer

from makemore.tui.widgets.cells import cell_len


def is_key(widget: Widget) -> bool:
    """One key of Textual's footer (a FooterKey: its class is not exported), not the command palette's."""
    return hasattr(widget, "key_display") and hasattr(widget, "description") \
        and not widget.has_class("-command-palette")


def key_cells(key_display: str, description: str, compact: bool) -> int:
    """The cells a key takes in the footer, its margin included (as Textual's Footer and FooterKey style it:
    compact "k label" and a margin of 1; otherwise " k label ")."""
    if compact:
        return cell_len(key_display) + (1 + cell_len(description) if description else 0) + 1
    return cell_len(key_display) + (3 + cell_len(description) if description else 0)


def fit_keys(widths: list[int], room: int, compact: bool) -> int:
    """How many of the entries, taken in order, fit in ``room`` cells (a compact footer's last margin may fall
    outside)."""
    used = 0
    slack = 1 if compact else 0
    for i, w in enumerate(widths):
        used += w
        if used > room + slack:
            return i
    return len(widths)


class FittingFooter(Footer):
    def compose(self):
        widgets = list(super().compose())
        keys = [w for w in widgets if is_key(w)]
        others = [w for w in widgets if not is_key(w)]
        if any(not w.has_class("-command-palette") for w in others):
            yield from widgets  # key groups: laid out as Textual does
            return
        room = self.size.width or self.app.size.width
        for palette in others:
            room -= key_cells(palette.key_display, palette.description, False) + 2  # its border and padding

        def fitting() -> int:
            return fit_keys([key_cells(k.key_display, k.description, self.compact) for k in keys], room,
                            self.compact)

        if fitting() < len(keys):
            short = getattr(self.screen, "FOOTER_SHORT", {})
            for k in keys:
                k.description = short.get(k.description, k.description)
        yield from keys[:fitting()]
        yield from others

    def on_resize(self, event) -> None:
        if event.size.width != getattr(self, "_fitted_width", None):  # what fits has changed
            self._fitted_width = event.size.width
            if self._bindings_ready:
                self.call_after_refresh(self.recompose)
