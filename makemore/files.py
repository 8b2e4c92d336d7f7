"""Reading what a user or a run directory hands us, bounded: regular files only, at most a stated size, JSON
parsed without a traceback whatever it holds.

A FIFO would block the reader until a writer came, and a device (``/dev/zero``) or a pipe never ends and reports
a size of 0; so a path must name a regular file, and the read itself stops one byte past the limit, whatever
``stat`` said. Nothing here imports torch.
"""

from __future__ import annotations

import json
import os
import re
import stat
import sys
from pathlib import Path
from typing import Any, BinaryIO

from makemore.errors import MakemoreError

# C0 and C1 control characters other than tab and newline: what a terminal would act on rather than print
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def control_in(obj: Any) -> str | None:
    """The first control character (``CONTROL``) in any string of a parsed JSON value, or None: a value that is
    printed back to a terminal (a run's metrics) must not carry an escape sequence an edit put there."""
    if isinstance(obj, str):
        found = CONTROL.search(obj)
        return found.group() if found else None
    if isinstance(obj, dict):
        return next((c for k, v in obj.items() if (c := control_in(k) or control_in(v))), None)
    if isinstance(obj, list):
        return next((c for v in obj if (c := control_in(v))), None)
    return None


def check_name(value: str | os.PathLike) -> None:
    """Refuse a path, or a dataset's name, that a run could neither record in its JSON nor print back: bytes that
    are not UTF-8 (a command line keeps them as surrogates), or a control character (an escape sequence would
    reach the terminal; a newline would split a listing's line)."""
    text = os.fspath(value)
    if not isinstance(text, str):
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        bad = ord(text[e.start])
        raise MakemoreError(f"{text!r}: a name that is not UTF-8 (byte 0x{bad - 0xDC00:02x}); rename it"
                            if 0xDC80 <= bad <= 0xDCFF else f"{text!r}: a name that is not UTF-8 (character "
                            f"U+{bad:04X}); rename it") from None
    found = re.search(r"[\x00-\x1f\x7f-\x9f]", text)
    if found:
        raise MakemoreError(f"{text!r}: a name holding control character U+{ord(found.group()):04X}; rename it")


def printable(value: str | os.PathLike) -> str:
    """A name as it can be printed: its control characters (``\\x1b``) and bytes that are not UTF-8 (``\\xff``)
    written as escapes, so that a name found on disk never acts on the terminal nor splits a line."""
    text = os.fspath(value)
    if not isinstance(text, str):
        text = os.fsdecode(text)

    def escaped(found: re.Match) -> str:
        c = ord(found.group())
        return f"\\x{c - 0xDC00:02x}" if 0xDC80 <= c <= 0xDCFF else f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"

    return re.sub(r"[\x00-\x1f\x7f-\x9f\udc80-\udcff]", escaped, text)


def check_not_utf16(head: bytes, path: Path | str) -> None:
    """Refuse a file that begins as UTF-16 does (its byte-order mark, or a NUL beside every ASCII character), by
    that name: its NUL bytes would otherwise read as binary data, and its mark as bytes that are not UTF-8."""
    start = head[:64]
    odd, even = start[1::2], start[0::2]  # (NULs on both sides are binary data, not text)
    if start.startswith((b"\xff\xfe", b"\xfe\xff")) or (len(start) >= 8 and (
            (odd.count(0) == len(odd) and 0 not in even) or (even.count(0) == len(even) and 0 not in odd))):
        raise MakemoreError(f"{path}: UTF-16 text, expected UTF-8; convert it, e.g. iconv -f utf-16 -t utf-8")


def size_text(n: int) -> str:
    """``64 MB``, ``2 GiB``, ``512 bytes``: a limit as a person reads it."""
    for unit, shift in (("GiB", 30), ("MB", 20), ("KB", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift} {unit}"
    return f"{n:,} bytes"


def no_such_file(path: str | Path, what: str = "no such file", expected: str = "") -> str:
    """The refusal of a data file that is not there, naming the built-in dataset it may have meant (``names.txt``
    where ``names`` is built in: the examples name the files they were measured on)."""
    from makemore.data import builtin_datasets

    stem = Path(path).stem
    notes = [f"expected {expected}"] if expected else []
    if Path(path).suffix == ".txt" and stem in builtin_datasets():
        notes.append(f"the built-in dataset is `{stem}`, without .txt")
    return f"{path}: {what}" + (f" ({'; '.join(notes)})" if notes else "")


def no_text(path: Path | str, nbytes: int) -> str:
    """The refusal of a file with no text once read: empty, or a UTF-8 byte-order mark alone (every reader of a
    text says it alike)."""
    return f"{path}: empty file" if nbytes == 0 else f"{path}: no text (a byte-order mark alone)"


def open_regular(path: Path | str, what: str = "") -> BinaryIO:
    """``path`` opened for reading in binary, refused with one line unless it is a regular file: missing,
    unreadable, a directory, a FIFO, a socket or a device. ``what`` names what was expected (``a word list``)."""
    path = Path(path)
    expected = f" (expected {what})" if what else ""
    try:
        # non-blocking, so that opening a FIFO returns at once instead of waiting for a writer
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise MakemoreError(no_such_file(path, expected=what)) from None
    except IsADirectoryError:
        raise MakemoreError(f"{path}: is a directory, not a file{expected}") from None
    except PermissionError:
        raise MakemoreError(f"{path}: permission denied") from None
    except OSError as e:
        raise MakemoreError(f"{path}: cannot read ({e.strerror or e})") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise MakemoreError(not_a_file(path, mode, what))
        if getattr(os, "O_NONBLOCK", 0):  # (where the opening asked for it: elsewhere reads block anyway)
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def not_a_file(path: Path | str, mode: int, what: str = "") -> str:
    """What ``open_regular`` says of a path that is there but is no regular file (``mode``: its ``st_mode``), so
    that a caller that only looked (``stat``) says it in the same words, without opening it."""
    expected = f" (expected {what})" if what else ""
    if stat.S_ISDIR(mode):
        return f"{path}: is a directory, not a file{expected}"
    kind = "a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or \
        stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode) else "not a regular file"
    return f"{path}: {kind}, not a regular file{expected}; save it to a file first"


def _not_own(path: Path, mode: int) -> str:
    kind = "a symbolic link" if stat.S_ISLNK(mode) else "a directory" if stat.S_ISDIR(mode) else \
        "a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "not a regular file"
    return f"{path}: {kind}, where the run keeps a file of its own; remove it"


def check_own(path: Path | str) -> None:
    """Refuse a file a run writes into itself (see ``open_own``) that is there but is no regular file."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    except OSError:  # said by the opening, with its reason
        return
    if not stat.S_ISREG(mode):
        raise MakemoreError(_not_own(Path(path), mode))


def open_own(path: Path | str, flags: int, cannot: str = "") -> int:
    """A file a run writes into itself (its lock, ``metrics.jsonl``, ``samples.txt``) opened with ``flags`` (and
    created), refused in one line unless it is a regular file there: a symbolic link planted in a run directory
    would have the run write through it to a file outside the run, and a FIFO would block the opening.
    ``cannot``: what an error of the file system (a full disk, no permission) is said as, before its reason."""
    path = Path(path)
    check_own(path)
    try:
        fd = os.open(path, flags | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
                     | getattr(os, "O_CLOEXEC", 0), 0o644)
    except OSError as e:
        check_own(path)  # put there since
        raise MakemoreError(f"{cannot or f'{path}: cannot write'} ({e.strerror or e})") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise MakemoreError(_not_own(path, mode))
    if getattr(os, "O_NONBLOCK", 0):
        os.set_blocking(fd, True)
    return fd


def is_regular(path: Path | str) -> bool:
    """Whether ``path`` is a regular file (following symbolic links), without opening it."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def check_parent(out: Path, remedy: str) -> None:
    """Refuse ``out`` when the nearest of its parents that exists is a file, not a directory (the missing ones
    are made when it is written); ``remedy``: what to do instead."""
    above = next((p for p in Path(out).parents if p.exists() or p.is_symlink()), None)
    if above is not None and not above.is_dir():
        what = "a link to nothing" if above.is_symlink() and not above.exists() else "a file"
        raise MakemoreError(f"{out}: {above} is {what}, not a directory; {remedy}")


def read_limited(path: Path | str, limit: int, what: str = "", advice: str = "") -> bytes:
    """The whole of the regular file ``path``, refused if it holds more than ``limit`` bytes (the read stops one
    byte past it). ``advice`` follows the refusal (``; split it``)."""
    with open_regular(path, what) as f:
        try:
            data = f.read(limit + 1)
        except OSError as e:
            raise MakemoreError(f"{path}: cannot read ({e.strerror or e})") from None
    if len(data) > limit:
        raise MakemoreError(f"{path}: larger than {size_text(limit)}{advice}")
    return data


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")  # \ud800 to \udfff: JSON's way to write half a pair
_SURROGATE = re.compile("[\ud800-\udfff]")


def lone_surrogate(data: bytes | str, obj: Any) -> bool:
    """Whether the JSON ``data``, parsed as ``obj``, holds a lone UTF-16 surrogate (``"\\ud800"``): valid JSON,
    but a string no file or terminal can take (printing or encoding it fails). Looked for only where the text
    writes one, so that a file without any costs one search."""
    if isinstance(data, str) and _SURROGATE.search(data):  # text already decoded may hold one as it is
        return True
    raw = data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass")
    if not _SURROGATE_ESCAPE.search(raw):
        return False
    try:
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    except (RecursionError, ValueError):  # too deep to walk here: what reads it refuses that
        return False
    return False


def parse_json(data: bytes | str, path: Path | str, what: str = "JSON") -> Any:
    """``data`` (the contents of ``path``) parsed as JSON, or one line naming the file: not UTF-8, not JSON,
    nested too deep for the parser, holding an integer too long for Python to convert, or half a surrogate pair
    (``lone_surrogate``)."""
    try:
        obj = json.loads(data)
    except UnicodeDecodeError:
        raise MakemoreError(f"{path}: not UTF-8 (expected {what})") from None
    except json.JSONDecodeError as e:
        raise MakemoreError(f"{path}: not valid {what} ({e.msg.removesuffix(' at')} at line {e.lineno}, "
                            f"column {e.colno})") from None
    except RecursionError:
        raise MakemoreError(f"{path}: {what} nested too deeply") from None
    except ValueError:  # an integer longer than Python converts (4,300 digits: sys.get_int_max_str_digits)
        raise MakemoreError(f"{path}: not valid {what} (a number of more than "
                            f"{sys.get_int_max_str_digits():,} digits)") from None
    if lone_surrogate(data, obj):
        raise MakemoreError(f"{path}: holds half of a UTF-16 surrogate pair (an escape from \\ud800 to \\udfff "
                            f"alone), which is not text (expected {what})")
    return obj


def read_json(path: Path | str, limit: int, what: str = "JSON") -> Any:
    """A JSON file of at most ``limit`` bytes, parsed; every failure is one line naming the file."""
    return parse_json(read_limited(path, limit, what), path, what)


def line_ends(text: str) -> str:
    """CRLF and CR as LF: how every command reads a text's line ends (text mode, corpora, tokenizers)."""
    return text.replace("\r\n", "\n").replace("\r", "\n")
