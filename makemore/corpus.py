"""Text corpora for tokenizers and token shards: a file, or a directory of text files, read piece by piece.

A corpus may be larger than memory, so nothing here holds more than a few pieces of it at once. Each file is
one document, read as UTF-8 as character text mode reads a text: a BOM is dropped, CRLF and CR become LF, and
anything else is kept exactly as it is (byte-level BPE gives every byte back). Pieces are cut only where the
tokenizer's pre-split cuts anyway, so
encoding them one by one gives the tokens of the whole.
"""

from __future__ import annotations

import codecs
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from makemore.errors import MakemoreError
from makemore.files import check_not_utf16, line_ends, no_such_file, open_regular, read_limited

PIECE_BYTES = 1 << 20  # read this much at a time; pieces are about this long
MAX_PIECE_CHARS = 64 << 20  # a text without a safe place to cut in this many characters is cut anyway
# A line break alone between two characters that are not whitespace: GPT-2's and GPT-4's patterns always split
# after it, whatever follows, so a piece may end there (tokenizer.safe_cuts relies on the same fact).
SAFE_BREAK = re.compile(r"(?<=\S)\n(?=\S)")


# what a directory walk leaves out, by kind: (singular, plural) as the report names them
SKIPPED_NAMES = {
    "hidden file": ("hidden file", "hidden files"),
    "hidden directory": ("hidden directory", "hidden directories"),
    "FIFO": ("FIFO", "FIFOs"),
    "device": ("device", "devices"),
    "socket": ("socket", "sockets"),
    "broken link": ("broken link", "broken links"),
    "linked directory": ("linked directory", "linked directories"),
    "unreadable directory": ("unreadable directory", "unreadable directories"),
    "other entry": ("other entry", "other entries"),
}


@dataclass(frozen=True)
class Corpus:
    """The files of a corpus in reading order, and how many entries of each kind the walk left out: nothing is
    dropped without being counted, so a command can say what it did not read."""

    root: Path
    files: list[Path]
    skipped: dict[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        return files_text(len(self.files), self.skipped)


def skipped_text(skipped: dict[str, int]) -> str:
    """``skipped 1 hidden file, 2 FIFOs``, or empty when nothing was left out."""
    parts = [f"{n:,} {SKIPPED_NAMES[k][n != 1]}" for k, n in skipped.items() if n]
    return "skipped " + ", ".join(parts) if parts else ""


def files_text(n: int, skipped: dict[str, int]) -> str:
    """``3 files (skipped 1 hidden file)``: what the commands print about the corpus they read."""
    left_out = skipped_text(skipped)
    return f"{n:,} file{'s' * (n != 1)}" + (f" ({left_out})" if left_out else "")


def _kind(mode: int) -> str:
    """The skip category of what is not a regular file."""
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "other entry"


def documents(src: str | Path) -> Corpus:
    """The files of a corpus: ``src`` itself (a regular file), or every regular file under the directory ``src``
    in sorted order. Hidden files and directories, FIFOs, devices, sockets, broken links and links to
    directories are left out and counted."""
    src = Path(src).expanduser()
    if not src.exists():
        raise MakemoreError(no_such_file(src, "no such file or directory"))
    if not src.is_dir():
        open_regular(src, "a text file or a directory of text files").close()  # refuses a FIFO or a device
        return Corpus(src, [src])
    from makemore.rundir import RunDir

    if RunDir.is_run(src):
        raise MakemoreError(f"{src}: a run directory (a trained model), not a corpus; give a text file or a "
                            f"directory of text files")
    if (src / "index.json").is_file() and any(src.glob("*.bin")):
        raise MakemoreError(f"{src}: token shards (made by `makemore prepare`), not a corpus; give a text file or "
                            f"a directory of text files")
    counts = dict.fromkeys(SKIPPED_NAMES, 0)
    files = []

    def unreadable(error: OSError) -> None:
        if error.filename == str(src):
            raise MakemoreError(f"{src}: cannot read ({error.strerror or error})")
        counts["unreadable directory"] += 1

    for folder, dirs, names in os.walk(src, onerror=unreadable):
        here = Path(folder)
        for d in list(dirs):
            if d.startswith("."):
                counts["hidden directory"] += 1
            elif (here / d).is_symlink():
                counts["linked directory"] += 1  # not followed: a link to a directory above would never end
            else:
                continue
            dirs.remove(d)
        for name in names:
            path = here / name
            if name.startswith("."):
                counts["hidden file"] += 1
                continue
            try:
                mode = path.stat().st_mode
            except OSError:
                counts["broken link"] += 1
                continue
            if stat.S_ISREG(mode):
                files.append(path)
            else:
                counts[_kind(mode)] += 1
    skipped = {k: n for k, n in counts.items() if n}
    if not files:
        left_out = skipped_text(skipped)
        raise MakemoreError(f"{src}: no files in this directory" + (f" ({left_out})" if left_out else ""))
    return Corpus(src, sorted(files), skipped)


def corpus_bytes(files: list[Path]) -> int:
    """The bytes of the corpus's (regular) files, as listed: what progress is measured against."""
    return sum(p.stat().st_size for p in files)


def read_pieces(path: Path, piece_bytes: int = PIECE_BYTES, start: int = 0, end: int | None = None
                ) -> Iterator[str]:
    """The text of ``path`` (bytes ``start`` to ``end``) in pieces of about ``piece_bytes``, cut at safe places;
    refuses non-UTF-8 and NUL bytes."""
    decoder = codecs.getincrementaldecoder("utf-8-sig" if start == 0 else "utf-8")()
    left = float("inf") if end is None else end - start
    f = open_regular(path, "a text file")  # a FIFO or a device is refused, never waited on
    buffer, offset, cr = "", start, ""
    with f:
        try:
            f.seek(start)
        except OSError as e:
            raise MakemoreError(f"{path}: cannot read ({e.strerror or e})") from None
        while True:
            try:
                raw = f.read(int(min(piece_bytes, left)))
            except OSError as e:
                raise MakemoreError(f"{path}: cannot read ({e.strerror or e})") from None
            left -= len(raw)
            if offset == 0:
                check_not_utf16(raw, path)
            text = cr + _decode(decoder, raw, path, offset)
            offset += len(raw)
            cr = "\r" if raw and text.endswith("\r") else ""  # perhaps the first half of a CRLF: held back
            buffer += line_ends(text[:-1] if cr else text)
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


HEAD_BYTES = 16 << 20  # what check_text_head reads of a file


def check_text_head(path: Path, limit: int | None = None) -> None:
    """Refuse ``path`` when its first ``limit`` bytes (``HEAD_BYTES``) are not UTF-8 text (UTF-16, binary, another
    encoding), with the message ``read_pieces`` would give: for a refusal about the file's shape that its encoding
    explains."""
    limit = HEAD_BYTES if limit is None else limit
    with open_regular(path, "a text file") as f:
        try:
            raw = f.read(limit)
        except OSError as e:
            raise MakemoreError(f"{path}: cannot read ({e.strerror or e})") from None
    decode_head(raw, path, whole=len(raw) < limit)


def _decode(decoder, raw: bytes, path: Path, offset: int) -> str:
    """The next ``raw`` bytes (at ``offset`` in the file) through the incremental UTF-8 ``decoder``; the end of
    the file when ``raw`` is empty. Refuses non-UTF-8 and NUL bytes."""
    try:
        text = decoder.decode(raw, final=not raw)
    except UnicodeDecodeError as e:  # e.object: the bytes the decoder held back from before, then raw
        if b"\x00" in raw:
            raise MakemoreError(f"{path}: binary data (a NUL byte), expected text") from None
        at = offset - (len(e.object) - len(raw)) + e.start
        raise MakemoreError(f"{path}: not UTF-8 (byte 0x{e.object[e.start]:02x} at offset {at:,}); convert it, "
                            f"e.g. iconv -f latin1 -t utf-8") from None
    if "\x00" in text:
        raise MakemoreError(f"{path}: binary data (a NUL byte), expected text")
    return text


def _last_safe_cut(text: str) -> int | None:
    """The position just after the last safe line break of ``text`` (None if there is none)."""
    nl = text.rfind("\n")
    while nl > 0:
        if SAFE_BREAK.match(text, nl):
            return nl + 1
        nl = text.rfind("\n", 0, nl)
    return None


def read_text(path: Path, limit: int) -> str:
    """A whole (small) text file, refused when larger than ``limit`` bytes; a FIFO or a device is refused, not
    read (it might never end)."""
    return line_ends(decode_head(read_limited(path, limit, "a text file"), path, whole=True))


def decode_head(data: bytes, path: Path, whole: bool) -> str:
    """The text of a file's first bytes (all of them if ``whole``; else a character cut at the end is held back),
    refused as ``read_pieces`` refuses it: UTF-16, binary, not UTF-8."""
    check_not_utf16(data, path)
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    return _decode(decoder, data, path, 0) + (_decode(decoder, b"", path, len(data)) if whole else "")
