"""Text corpora for tokenizers and token shards: a file, or a directory of text files, read piece by piece.

A corpus may be larger than memory, so nothing here holds more than a few pieces of it at once. Each file is
one document, read as UTF-8 (a BOM is dropped; anything else is kept exactly as it is, line ends included, since
byte-level BPE gives every byte back). Pieces are cut only where the tokenizer's pre-split cuts anyway, so
encoding them one by one gives the tokens of the whole.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from pathlib import Path

from makemore.errors import MakemoreError

PIECE_BYTES = 1 << 20  # read this much at a time; pieces are about this long
MAX_PIECE_CHARS = 64 << 20  # a text without a safe place to cut in this many characters is cut anyway
# A line break alone between two characters that are not whitespace: GPT-2's and GPT-4's patterns always split
# after it, whatever follows, so a piece may end there (tokenizer.safe_cuts relies on the same fact).
_SAFE = re.compile(r"(?<=\S)\n(?=\S)")


def documents(src: str | Path) -> list[Path]:
    """The files of a corpus: ``src`` itself, or every file under the directory ``src`` in sorted order
    (hidden files and directories skipped)."""
    src = Path(src).expanduser()
    if not src.exists():
        raise MakemoreError(f"{src}: no such file or directory")
    if src.is_file():
        return [src]
    files = sorted(p for p in src.rglob("*")
                   if p.is_file() and not any(part.startswith(".") for part in p.relative_to(src).parts))
    if not files:
        raise MakemoreError(f"{src}: no files in this directory")
    return files


def corpus_bytes(files: list[Path]) -> int:
    return sum(p.stat().st_size for p in files)


def read_pieces(path: Path, piece_bytes: int = PIECE_BYTES, start: int = 0, end: int | None = None
                ) -> Iterator[str]:
    """The text of ``path`` (bytes ``start`` to ``end``) in pieces of about ``piece_bytes``, cut at safe places;
    refuses non-UTF-8 and NUL bytes."""
    decoder = codecs.getincrementaldecoder("utf-8-sig" if start == 0 else "utf-8")()
    left = float("inf") if end is None else end - start
    try:
        f = open(path, "rb")
        f.seek(start)
    except PermissionError:
        raise MakemoreError(f"{path}: permission denied") from None
    except OSError as e:
        raise MakemoreError(f"{path}: cannot read ({e.strerror or e})") from None
    buffer, offset = "", start
    with f:
        while True:
            raw = f.read(int(min(piece_bytes, left)))
            left -= len(raw)
            try:
                text = decoder.decode(raw, final=not raw)
            except UnicodeDecodeError as e:
                raise MakemoreError(f"{path}: not UTF-8 (byte 0x{raw[e.start]:02x} at offset "
                                    f"{offset + e.start:,}); convert it, e.g. iconv -f latin1 -t utf-8") from None
            if "\x00" in text:
                raise MakemoreError(f"{path}: binary data (a NUL byte), expected text")
            offset += len(raw)
            buffer += text
            if not raw:
                break
            cut = _last_safe_cut(buffer)
            if cut is None and len(buffer) >= MAX_PIECE_CHARS:
                cut = len(buffer)
            if cut:
                yield buffer[:cut]
                buffer = buffer[cut:]
    if buffer:
        yield buffer


def _last_safe_cut(text: str) -> int | None:
    """The position just after the last safe line break of ``text`` (None if there is none)."""
    nl = text.rfind("\n")
    while nl > 0:
        if _SAFE.match(text, nl):
            return nl + 1
        nl = text.rfind("\n", 0, nl)
    return None


def read_text(path: Path, limit: int) -> str:
    """A whole (small) text file, refused when larger than ``limit`` bytes."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise MakemoreError(f"{path}: no such file") from None
    if path.is_dir():
        raise MakemoreError(f"{path}: is a directory, expected a text file")
    if size > limit:
        raise MakemoreError(f"{path}: {size:,} bytes, more than the {limit:,} read here")
    return "".join(read_pieces(path))
