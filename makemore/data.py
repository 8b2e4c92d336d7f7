"""Data: read a word list, build the vocabulary, split it, and encode it once into tensors.

One word per line, UTF-8 (a BOM and CRLF or CR line ends are fine). Lines are stripped, empty lines and
duplicates are dropped before the split so no word sits in both train and test. Token 0 is the start/stop
token; characters get 1..V-1 in sorted order. Batches are drawn by tensor indexing, never per-item Python.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from makemore.console import plural
from makemore.errors import MakemoreError
from makemore.files import check_name, check_not_utf16, no_such_file, read_limited

MAX_WORDS_BYTES = 1 << 30  # 1 GiB: a word list becomes Python strings, several times its size in memory
DEFAULT_MAX_LEN = 64  # characters; longer lines are skipped (and counted) unless --max-len says otherwise
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
# C0 and C1 control characters other than tab and line ends: never part of a word, and printing them back
# (in samples) could drive the terminal. A tab inside a word is refused separately (a TSV file, probably).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


# --- built-in datasets ---------------------------------------------------------------------------

def builtin_datasets() -> dict[str, Path]:
    root = resources.files("makemore.datasets")
    return {p.name[:-4]: Path(str(p)) for p in root.iterdir() if p.name.endswith(".txt")}


def check_data_named(spec: str | Path) -> None:
    """Refuse a data argument that is empty (a path would read it as the current directory), or white space that
    names no file."""
    if isinstance(spec, str) and (not spec or not spec.strip() and not os.path.lexists(spec)):
        raise MakemoreError(f"{spec!r}: an empty name for the data; give a file or a built-in dataset "
                            f"({', '.join(sorted(builtin_datasets()))})")
    check_name(spec)


def resolve_dataset(spec: str | Path) -> tuple[str, Path]:
    """A path, or the name of a built-in dataset; returns (name, path)."""
    check_data_named(spec)
    path = Path(spec).expanduser()
    if path.exists() or path.suffix or "/" in str(spec):
        return path.stem, path
    builtins = builtin_datasets()
    if str(spec) in builtins:
        return str(spec), builtins[str(spec)]
    raise MakemoreError(
        f"{spec}: no such file, and not a built-in dataset (built-in: {', '.join(sorted(builtins))})"
    )


# --- reading ---------------------------------------------------------------------------------------

@dataclass
class WordList:
    words: list[str]  # unique, in first-seen order
    lines: int  # lines in the file
    empty: int  # empty or whitespace-only lines dropped
    duplicates: int  # repeated words dropped
    too_long: int  # words longer than max_len dropped
    sha256: str
    marks: int = 0  # byte-order marks removed from the start of a line after the first (files joined by `cat`)


BOM = "\ufeff"


def read_bytes(path: Path) -> bytes:
    """A word list's bytes: a regular file of at most ``MAX_WORDS_BYTES`` (a FIFO, a device or a pipe is refused,
    never waited on or read without end)."""
    if not path.exists():
        raise MakemoreError(no_such_file(path))
    if path.is_dir():
        raise MakemoreError(f"{path}: is a directory, expected a text file with one word per line")
    return read_limited(path, MAX_WORDS_BYTES, "a text file with one word per line",
                        "; a word list is read whole (a larger text trains with --mode text)")


def decode_text(data: bytes, path: Path) -> str:
    check_not_utf16(data, path)
    if b"\x00" in data:
        raise MakemoreError(f"{path}: binary data (NUL bytes), expected UTF-8 text with one word per line")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = len(re.findall(rb"\r\n|\r|\n", data[: e.start])) + 1  # CR-only files count lines too
        raise MakemoreError(
            f"{path}: not UTF-8 (byte 0x{data[e.start]:02x} on line {line}); convert it, e.g. iconv -f latin1 -t utf-8"
        ) from None


def read_words(path: Path, max_len: int = DEFAULT_MAX_LEN) -> WordList:
    data = read_bytes(path)
    text = decode_text(data, path)
    control = _CONTROL.search(text)
    if control:
        line = len(_LINE_BREAK.findall(text, 0, control.start())) + 1
        raise MakemoreError(f"{path}: control character U+{ord(control.group()):04X} on line {line}; "
                            f"expected printable text with one word per line")
    lines = _LINE_BREAK.split(text)
    if lines and lines[-1] == "":
        lines.pop()  # the final line break ends the last line; it does not start a new one
    # a byte-order mark starting a line after the first (files that each began with one, joined by `cat`) is
    # no character of a word: removed, and counted (the first line's went with the decoding)
    marks = sum(line.lstrip().startswith(BOM) for line in lines)
    stripped = [line.strip().lstrip(BOM).strip() for line in lines] if marks else [line.strip() for line in lines]
    tabbed = next((i for i, w in enumerate(stripped) if "\t" in w), None)
    if tabbed is not None:
        raise MakemoreError(f"{path}: a tab inside the word on line {tabbed + 1}; expected one word per line "
                            f"(for a table, keep only the word column, e.g. cut -f1)")
    nonempty = [w for w in stripped if w]
    if not nonempty:
        what = "empty file" if not data else "no words (only empty or whitespace-only lines)"
        raise MakemoreError(f"{path}: {what}")
    unique = list(dict.fromkeys(nonempty))
    kept = [w for w in unique if len(w) <= max_len]
    if not kept:
        longest = max(len(w) for w in unique)
        raise MakemoreError(
            f"{path}: every word is longer than --max-len {max_len} (longest: {longest} characters)"
        )
    return WordList(
        words=kept,
        lines=len(lines),
        empty=len(stripped) - len(nonempty),
        duplicates=len(nonempty) - len(unique),
        too_long=len(unique) - len(kept),
        sha256=hashlib.sha256(data).hexdigest(),
        marks=marks,
    )


@dataclass
class ScoredWords:
    """The words of a file that a trained model can score, and what was left out and why."""

    words: list[str]
    lines: int
    empty: int  # empty or whitespace-only lines
    duplicates: int  # repeats of a word already counted
    too_long: int  # words longer than the model's longest (its window)
    unknown: int  # words with a character outside the model's vocabulary (skipped only when asked)
    unknown_chars: list[str]  # those characters, sorted

    def skipped(self) -> dict[str, int]:
        return {"too_long": self.too_long, "unknown_characters": self.unknown, "duplicates": self.duplicates,
                "empty_lines": self.empty}


def read_words_for_model(path: Path, vocab: Vocab, longest: int, skip_unknown: bool = False) -> ScoredWords:
    """A file's words as a trained model sees them. Words longer than ``longest`` characters cannot be scored
    and are skipped; a word with a character the model never saw is refused, naming the characters, unless
    ``skip_unknown``. Either way every skipped word is counted. Each word counts once, under the first reason."""
    read = read_words(path, max_len=1 << 62)
    fits = [w for w in read.words if len(w) <= longest]
    unknown = [w for w in fits if vocab.unknown(w)]
    chars = sorted(set().union(*(vocab.unknown(w) for w in unknown)))
    if unknown and not skip_unknown:
        shown = ", ".join(repr(c) for c in chars[:5]) + (f" and {len(chars) - 5:,} more" if len(chars) > 5 else "")
        others, too_long = len(fits) - len(unknown), len(read.words) - len(fits)
        raise MakemoreError(
            f"{path}: {len(unknown):,} of {len(read.words):,} words have characters not in the model's vocabulary "
            f"({shown}; first {unknown[0]!r}); "
            + (f"--skip-unknown scores the other {plural(others, 'word')}" if others else "no other word can be scored")
            + (f" ({too_long:,} longer than its {longest} characters are skipped either way)" if too_long else ""))
    kept = [w for w in fits if not vocab.unknown(w)] if unknown else fits
    if not kept:
        raise MakemoreError(f"{path}: no word the model can score ({len(read.words) - len(fits):,} longer than its "
                            f"{longest} characters, {len(unknown):,} with characters outside its vocabulary)")
    return ScoredWords(kept, read.lines, read.empty, read.duplicates, len(read.words) - len(fits), len(unknown),
                       chars)


# --- vocabulary ------------------------------------------------------------------------------------

BOUNDARY = "."  # how the start/stop token is shown (a glyph not in the vocabulary is picked if "." is)


class Vocab:
    """Index 0 is the start/stop token; characters follow in sorted (code point) order.

    ``text``: a text stream's vocabulary, in which newline and tab are characters like any other."""

    def __init__(self, chars: list[str], text: bool = False):
        if not chars:
            raise MakemoreError("vocabulary is empty")
        if len(set(chars)) != len(chars):
            raise MakemoreError("vocabulary has duplicate characters")
        if any(len(c) != 1 for c in chars):
            raise MakemoreError("vocabulary entries must be single characters")
        control = next((c for c in chars if _CONTROL.match(c) or c in ("\r" if text else "\t\n\r")), None)
        if control is not None:
            raise MakemoreError(f"vocabulary has a control character U+{ord(control):04X}")
        self.text = text
        self.chars = sorted(chars)
        self.stoi = {c: i + 1 for i, c in enumerate(self.chars)}
        self.boundary = next(g for g in (BOUNDARY, "¶", "␃", "\u2400") if g not in self.stoi)

    @classmethod
    def from_words(cls, words: list[str]) -> Vocab:
        return cls(sorted(set("".join(words))))

    def __len__(self) -> int:
        return len(self.chars) + 1

    @property
    def itos(self) -> list[str]:
        """Index -> display symbol (the start/stop token as ``self.boundary``)."""
        return [self.boundary, *self.chars]

    def encode(self, word: str) -> list[int]:
        try:
            return [self.stoi[c] for c in word]
        except KeyError as e:
            raise MakemoreError(f"character {e.args[0]!r} is not in the model's vocabulary") from None

    def decode(self, ids) -> str:
        return "".join(self.chars[i - 1] for i in ids if i > 0)

    def unknown(self, text: str) -> set[str]:
        return set(text) - self.stoi.keys()


def not_in_vocabulary(text: str, known, shown: Callable[[str], str] = repr) -> str | None:
    """Why ``text`` cannot be read by a model that knows the characters ``known``: each unknown character, in the
    order they appear (the first five), and the lowercase spelling where the model knows that one (as ``shown``
    writes it); None if it can."""
    unknown = list(dict.fromkeys(c for c in text if c not in known))
    if not unknown:
        return None
    named = ", ".join(repr(c) for c in unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
    message = (f"characters {named} are" if len(unknown) > 1 else f"character {named} is") + \
        " not in the model's vocabulary"
    lower = text.lower()
    if lower != text and all(c in known for c in lower):
        message += f" (it knows {shown(lower)})"
    return message


def check_prefix(prefix: str, vocab: Vocab) -> None:
    """Refuse a sampling prefix with a character the model has never seen."""
    why = not_in_vocabulary(prefix, vocab.stoi)
    if why:
        raise MakemoreError(f"--prefix {prefix!r}: {why}")


def check_scorable(words: list[str], block_size: int, vocab: Vocab) -> list[str]:
    """The words stripped of the white space around them, as a word list's lines are; a word a model of
    ``block_size`` over ``vocab`` cannot score is refused: empty, too long, or with a character outside the
    vocabulary."""
    words = [w.strip() for w in words]
    for w in words:
        if not w:
            raise MakemoreError("cannot score an empty word")
        if len(w) >= block_size:
            raise MakemoreError(f"{w!r}: {len(w)} characters; this model handles at most {block_size - 1}")
        why = not_in_vocabulary(w, vocab.stoi)
        if why:
            raise MakemoreError(f"{w!r}: {why}")
    return words


# --- splitting -------------------------------------------------------------------------------------

def split_sizes(n: int) -> tuple[int, int]:
    """(val, test) sizes: each min(1000, 10%)."""
    k = min(1000, n // 10)
    return k, k


def split_words(words: list[str], seed: int) -> tuple[list[str], list[str], list[str]]:
    """Deterministic from the seed (Python's own PRNG, stable across torch versions)."""
    order = list(range(len(words)))
    random.Random(seed).shuffle(order)
    n_val, n_test = split_sizes(len(words))
    test = [words[i] for i in order[:n_test]]
    val = [words[i] for i in order[n_test:n_test + n_val]]
    train = [words[i] for i in order[n_test + n_val:]]
    return train, val, test


# --- tensors ---------------------------------------------------------------------------------------

class EncodedWords:
    """A list of words encoded once as a padded int32 matrix: row i = [0, w_1, ..., w_n, 0, 0, ...]."""

    def __init__(self, words: list[str], vocab: Vocab):
        import torch

        self.words = words
        n = len(words)
        self.lengths = torch.tensor([len(w) for w in words], dtype=torch.int64)
        width = int(self.lengths.max()) + 2 if n else 2
        self.tokens = torch.zeros(n, width, dtype=torch.int32)
        if n:
            codes = torch.frombuffer(bytearray("".join(words).encode("utf-32-le")), dtype=torch.int32)
            table = torch.tensor([ord(c) for c in vocab.chars], dtype=torch.int32)
            ids = torch.searchsorted(table, codes).clamp_(max=len(table) - 1)
            bad = table[ids] != codes
            if bool(bad.any()):
                raise MakemoreError(
                    f"character {chr(int(codes[bad][0]))!r} is not in the model's vocabulary"
                )
            rows = torch.repeat_interleave(torch.arange(n), self.lengths)
            starts = torch.cumsum(self.lengths, 0) - self.lengths
            cols = torch.arange(len(codes)) - torch.repeat_interleave(starts, self.lengths) + 1
            self.tokens[rows, cols] = (ids + 1).to(torch.int32)

    def __len__(self) -> int:
        return len(self.words)

    def head(self, n: int) -> EncodedWords:
        """The first ``n`` words, sharing storage."""
        sub = EncodedWords.__new__(EncodedWords)
        sub.words, sub.lengths, sub.tokens = self.words[:n], self.lengths[:n], self.tokens[:n]
        return sub

    def batch(self, index, device=None):
        """Inputs (B, T) and targets (B, T) for the words at ``index``; T = longest of them + 1."""
        import torch

        lengths = self.lengths[index]
        T = int(lengths.max()) + 1
        rows = self.tokens[index, : T + 1].long()
        x = rows[:, :T]
        y = rows[:, 1:].clone()
        y[torch.arange(T) > lengths[:, None]] = -1  # after the stop token: padding, ignored by the loss
        if device is not None and torch.device(device).type != "cpu":
            x = x.pin_memory().to(device, non_blocking=True)
            y = y.pin_memory().to(device, non_blocking=True)
        return x, y

    def packed_batch(self, index, row_len: int, device=None, slots: bool = False):
        """The words at ``index`` packed several to a row of ``row_len`` tokens, instead of one padded row each.

        Returns inputs, targets and positions, each (R, row_len); with ``slots``, also where each word's targets
        lie, on the CPU: (word, row, column), one entry per target, ``word`` indexing ``index``. A word occupies
        ``len + 1`` consecutive slots (start token and characters in; characters and stop token out) and its
        positions count from 0 at its start token, so a model that restarts attention at position 0 (a word
        attends only to itself) computes exactly the loss of the padded batch with the same targets. Rows are
        filled longest word first, topped up with the shortest ones that still fit; names.txt at batch 128 fills
        ~90% of the slots where padding to the longest word of the batch fills ~55%.
        """
        import torch

        lengths = self.lengths[index]
        sizes = (lengths + 1).tolist()
        if max(sizes) > row_len:
            raise ValueError(f"a word of {max(sizes) - 1} characters does not fit a row of {row_len} tokens")
        order = sorted(range(len(sizes)), key=sizes.__getitem__, reverse=True)
        row_of, offset = [0] * len(sizes), [0] * len(sizes)
        lo, hi, rows = 0, len(order) - 1, 0
        while lo <= hi:
            first = order[lo]
            lo += 1
            row_of[first], used = rows, sizes[first]
            while lo <= hi and used + sizes[order[hi]] <= row_len:
                last = order[hi]
                hi -= 1
                row_of[last], offset[last] = rows, used
                used += sizes[last]
            rows += 1
        tokens = self.tokens[index]  # (B, width): 0 w_1 ... w_n 0 0 ...
        word, t = (torch.arange(tokens.size(1) - 1) <= lengths[:, None]).nonzero(as_tuple=True)  # slots in use
        r = torch.tensor(row_of)[word]
        c = torch.tensor(offset)[word] + t
        x = torch.zeros(rows, row_len, dtype=torch.long)
        y = torch.full((rows, row_len), -1, dtype=torch.long)
        pos = torch.zeros(rows, row_len, dtype=torch.long)
        x[r, c] = tokens[word, t].long()
        y[r, c] = tokens[word, t + 1].long()
        pos[r, c] = t
        if device is not None and torch.device(device).type != "cpu":
            x, y, pos = (a.pin_memory().to(device, non_blocking=True) for a in (x, y, pos))
        return (x, y, pos, (word, r, c)) if slots else (x, y, pos)

    def iter_batches(self, batch_size: int, device=None):
        """Every word once, in order (evaluation)."""
        import torch

        for i in range(0, len(self), batch_size):
            yield self.batch(torch.arange(i, min(i + batch_size, len(self))), device)
