"""Text measured in terminal cells, not characters: a CJK ideograph or a full-width letter takes two cells, so
``len()`` and ``str.ljust`` misplace anything that follows it."""

from __future__ import annotations

from rich.cells import cell_len

__all__ = ["cell_len", "center", "crop", "middle", "pad"]


def crop(text: str, width: int, ellipsis: str = "…") -> str:
    """``text`` in at most ``width`` cells, its end replaced by ``ellipsis`` when it is longer."""
    if cell_len(text) <= width:
        return text
    room = width - cell_len(ellipsis)
    if room < 1:
        ellipsis, room = "", width
    out, used = "", 0
    for ch in text:
        w = cell_len(ch)
        if used + w > room:
            break
        out, used = out + ch, used + w
    return out + ellipsis


def middle(text: str, width: int) -> str:
    """``text`` in at most ``width`` cells, cut in its middle where it is longer: a third of the room before "…",
    the rest after (the end of a name tells names apart more often than its start)."""
    if cell_len(text) <= width:
        return text
    keep = max(width - 1, 0)  # cells, a wide character two of them
    if not keep:
        return "…"[:width]
    head = _start(text, keep // 3)
    return head + "…" + _start(text[::-1], keep - cell_len(head))[::-1]


def _start(text: str, width: int) -> str:
    """The longest start of ``text`` that takes at most ``width`` cells."""
    taken = 0
    for i, c in enumerate(text):
        taken += cell_len(c)
        if taken > width:
            return text[:i]
    return text


def pad(text: str, width: int) -> str:
    """``text`` padded on the right with spaces to ``width`` cells (cropped first if it is wider)."""
    text = crop(text, width)
    return text + " " * (width - cell_len(text))


def center(text: str, width: int) -> str:
    """``text`` centred in ``width`` cells (as ``str.center`` would, counting cells; cropped if wider)."""
    text = crop(text, width)
    room = width - cell_len(text)
    left = room // 2
    return " " * left + text + " " * (room - left)
