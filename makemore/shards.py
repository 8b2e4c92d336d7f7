"""Token shards: a corpus tokenized once into fixed-size files of token ids, read back through memory maps.

``prepare`` reads a file or a directory of text files (each file one document) piece by piece, encodes the
pieces in parallel (the `tokenizers` library's batch encode, on every core), and appends each document to the
shards of its split, preceded by the end-of-text token, as little-endian uint16 (uint32 when the vocabulary
has more than 65,536 tokens). The last documents (``val_fraction`` of the bytes, within 10%) are the
validation split: the last files whole, and the end of the file before them, cut off after a line break (else a
space) near the share, for the rest; a corpus of one file is cut so into a training and a validation document.
``index.json`` records the tokenizer (its sha256; a copy sits beside the shards as ``tokenizer.json``), the
shards and their token counts, every document with its split, first token and counts of tokens, characters
and bytes, and how many entries of each kind the walk of the corpus left out (``skipped``: hidden files and
directories, FIFOs, devices). Everything is written into a temporary directory that is renamed into place at
the end: an interrupted ``prepare`` leaves nothing behind.

``TokenWindows`` yields training batches: each epoch walks the documents in a new permuted order (the GPT-2
lecture saw periodic bumps in the loss without it) and cuts the stream into consecutive windows of
``batch_size * block_size + 1`` tokens. It reads through memory maps a window at a time, so memory does not
grow with the corpus; the same class over arrays in memory gives the same batches, token for token.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from makemore.corpus import Corpus, check_text_head, corpus_bytes, documents, read_pieces
from makemore.errors import MakemoreError
from makemore.files import check_parent, is_regular, no_text, open_regular, read_json

FORMAT = "makemore-token-shards"
VERSION = 1
INDEX = "index.json"
TOKENIZER = "tokenizer.json"
DEFAULT_SHARD_TOKENS = 100_000_000  # the GPT-2 lecture's FineWeb-Edu shards: 1e8 tokens, 200 MB of uint16
VAL_FRACTION = 0.1
PIECE_BYTES = 128 << 10  # text per piece handed to the encoder
# pieces per parallel encode: two per core. The library keeps ~80 bytes per token of an encoding (the id, the
# token's text, offsets, masks), so memory holds ~4 MB per core of encodings, whatever the size of the corpus.
BATCH_PIECES = 2 * (os.cpu_count() or 1)
MAX_INDEX_BYTES = 256 << 20
MAX_SHARDS = 1_000  # memory maps one process keeps open, each holding a file descriptor


@dataclass(frozen=True)
class Document:
    path: Path
    name: str  # as recorded in the index (relative to the corpus root)
    start: int = 0  # byte range of the file that makes this document
    end: int | None = None


def _plan(corpus: Corpus, val_fraction: float) -> tuple[list[Document], list[Document]]:
    """(train, val) documents: the last files by sorted order make the validation split, the end of one cut off to
    bring it to ``val_fraction`` of the bytes where whole files would not."""
    src, files = corpus.root, corpus.files
    root = src if src.is_dir() else src.parent
    docs = [Document(p, str(p.relative_to(root))) for p in files]
    sizes = [p.stat().st_size for p in files]
    if sizes == [0]:
        raise MakemoreError(f"{files[0]}: empty file")
    want, n_val, got = val_fraction * sum(sizes), 0, 0
    # the last files validate whole while they stay within 10% of the share (the first file always trains) ...
    while n_val < len(docs) - 1 and got + sizes[-n_val - 1] <= 1.1 * want:
        n_val += 1
        got += sizes[-n_val]
    if got < 0.9 * want:  # ... and the end of the file before them (a single file's end) makes up the rest
        i = len(docs) - n_val - 1
        cut = _cut_near(files[i], int(sizes[i] - (want - got)), int(0.1 * want))
        if cut is not None:
            return ([*docs[:i], Document(docs[i].path, docs[i].name, 0, cut)],
                    [Document(docs[i].path, docs[i].name + "#val", cut, None), *docs[i + 1:]])
    if len(files) == 1:
        check_text_head(files[0])  # a file that is not text says so, rather than that it is too short
        with open_regular(files[0]) as f:
            head = f.read(8)
        if not head.decode("utf-8-sig", errors="replace"):  # a byte-order mark alone
            raise MakemoreError(no_text(files[0], len(head)))
        raise MakemoreError(f"{files[0]}: one character; too short to cut off a validation split")
    n_val = max(n_val, 1)  # nowhere to cut (a file of one character): whole files, at least one (prepare says so)
    return docs[:-n_val], docs[-n_val:]


def _cut_near(path: Path, at: int, slack: int) -> int | None:
    """Where to cut a file into two documents: the place nearest byte ``at``, at most ``slack`` bytes away (and
    ``CUT_WINDOW``), just after a run of line breaks (the second document starts a line; a CRLF is never parted);
    else just after a run of spaces or tabs (it starts a word); else where a character starts. Never at the file's
    start or end: None for a file of one character."""
    slack = min(max(slack, 4), CUT_WINDOW)  # 4: a character's bytes, so that one always starts within reach
    with open_regular(path, "a text file") as f:
        size = os.fstat(f.fileno()).st_size
        lo, hi = max(1, at - slack), min(size - 1, at + slack)
        if lo > hi:
            return None
        f.seek(lo - 1)
        block = f.read(hi - lo + 2)  # from the byte before ``lo`` to the byte at ``hi``
    for pattern in _RUNS:
        # a run's end is a place to cut (block[0] is the byte at lo - 1); one that reaches past hi may go on
        ends = (lo - 1 + m.end() for m in pattern.finditer(block))
        cut = min((c for c in ends if lo <= c <= hi), key=lambda c: abs(c - at), default=None)
        if cut is not None:
            return cut
    starts = (p for d in range(slack + 1) for p in (at - d, at + d) if lo <= p <= hi)
    return next((p for p in starts if not 0x80 <= block[p - lo + 1] < 0xC0), None)  # not a continuation byte


_RUNS = (re.compile(rb"[\r\n]+"), re.compile(rb"[ \t]+"))  # ASCII: never inside a character's UTF-8 bytes
CUT_WINDOW = 16 << 20


def _pieces(doc: Document, piece_bytes: int) -> Iterator[str]:
    return read_pieces(doc.path, piece_bytes, start=doc.start, end=doc.end)


class _ShardWriter:
    """Appends token arrays to files of exactly ``shard_tokens`` tokens (the last one shorter)."""

    def __init__(self, folder: Path, split: str, shard_tokens: int, dtype):
        self.folder, self.split, self.shard_tokens, self.dtype = folder, split, shard_tokens, dtype
        self.shards: list[dict] = []
        self.total = 0
        self._file = None
        self._in_shard = 0

    def write(self, ids) -> None:
        import numpy as np

        ids = np.asarray(ids, dtype=self.dtype)
        pos = 0
        while pos < len(ids):
            if self._file is None:
                if len(self.shards) >= MAX_SHARDS // 2:  # each split's share of what a reader keeps open
                    raise MakemoreError(f"--shard-tokens {self.shard_tokens:,} makes more than {MAX_SHARDS // 2:,} "
                                        f"{self.split} shards; give a larger --shard-tokens")
                name = f"{self.split}_{len(self.shards):06d}.bin"
                self._file = open(self.folder / name, "wb")
                self.shards.append({"file": name, "split": self.split, "tokens": 0})
                self._in_shard = 0
            take = min(len(ids) - pos, self.shard_tokens - self._in_shard)
            self._file.write(ids[pos:pos + take].astype("<" + ids.dtype.str[1:], copy=False).tobytes())
            self._in_shard += take
            self.shards[-1]["tokens"] += take
            pos += take
            self.total += take
            if self._in_shard == self.shard_tokens:
                self.close()

    def close(self) -> None:
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None


def prepare(src: str | Path, tokenizer, out: str | Path, shard_tokens: int = DEFAULT_SHARD_TOKENS,
            val_fraction: float = VAL_FRACTION, piece_bytes: int = PIECE_BYTES,
            batch_pieces: int | None = None, progress=None) -> dict:
    """Tokenize the corpus ``src`` into shards in the new directory ``out``; returns the index.

    ``progress(bytes_done, bytes_total)`` is called after each batch of pieces, if given.
    """
    import numpy as np

    src, out = Path(src).expanduser(), Path(out).expanduser()
    if shard_tokens < 1:
        raise MakemoreError(f"--shard-tokens {shard_tokens}: expected at least 1")
    if not 0 < val_fraction < 1:
        raise MakemoreError(f"--val-fraction {val_fraction}: expected a fraction between 0 and 1")
    try:
        taken = out.exists() and (not out.is_dir() or any(out.iterdir()))
    except OSError as e:
        raise MakemoreError(f"{out}: cannot read ({e.strerror or e})") from None
    if taken:
        what = "a directory that is not empty" if out.is_dir() else "a file"
        raise MakemoreError(f"{out}: already exists, {what}; choose another output directory")
    check_parent(out, "choose another output directory")
    corpus = documents(src)
    if corpus.root.is_dir() and out.resolve().is_relative_to(corpus.root.resolve()):
        raise MakemoreError(f"{out}: inside the corpus {src}, whose next reading would take the shards for text; "
                            f"choose an output directory outside it")
    train_docs, val_docs = _plan(corpus, val_fraction)
    total_bytes = corpus_bytes(corpus.files)
    dtype = np.uint16 if tokenizer.vocab_size <= 1 << 16 else np.uint32
    made = [p for p in reversed(out.parents) if not p.exists()]  # removed again if prepare fails
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        # made under a name ``leftovers`` passes over, locked, and only then named as a prepare's: another
        # prepare never finds it unlocked
        new = Path(tempfile.mkdtemp(prefix=_temporary_prefix(out), suffix=".new", dir=out.parent))
    except OSError as e:
        _remove_empty(made)
        raise MakemoreError(f"{out.parent}: cannot create the shard directory here ({e.strerror or e})") from None
    held = _hold(new)  # while it is held, another prepare into ``out`` leaves the temporary alone
    tmp = new.with_name(new.name.removesuffix(".new") + PREPARING)
    try:
        os.rename(new, tmp)
    except OSError as e:
        shutil.rmtree(new, ignore_errors=True)
        if held is not None:
            os.close(held)
        _remove_empty(made)
        raise MakemoreError(f"{out.parent}: cannot create the shard directory here ({e.strerror or e})") from None
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; the shards are an ordinary directory
        t0 = time.perf_counter()
        records, done = [], 0
        writers = {split: _ShardWriter(tmp, split, shard_tokens, dtype) for split in ("train", "val")}
        for split, docs in (("train", train_docs), ("val", val_docs)):
            writer = writers[split]
            for doc, text, ids in _encoded(docs, tokenizer, piece_bytes, batch_pieces or BATCH_PIECES):
                if text is None:  # a document begins: end-of-text first
                    record = {"name": doc.name, "split": split, "start": writer.total, "tokens": 1, "chars": 0,
                              "bytes": 0}
                    records.append(record)
                    writer.write([tokenizer.eot_id])
                    continue
                writer.write(ids)
                nbytes = len(text.encode())
                record["tokens"] += len(ids)
                record["chars"] += len(text)
                record["bytes"] += nbytes
                done += nbytes
                if progress is not None:
                    progress(done, total_bytes)
            writer.close()
        seconds = time.perf_counter() - t0
        index = {
            "format": FORMAT, "version": VERSION,
            "tokenizer": {"file": TOKENIZER, "sha256": tokenizer.sha256, "vocab_size": tokenizer.vocab_size,
                          "eot_id": tokenizer.eot_id},
            "dtype": np.dtype(dtype).name, "shard_tokens": shard_tokens,
            "shards": writers["train"].shards + writers["val"].shards,
            "documents": records,
            "splits": {split: {"documents": sum(r["split"] == split for r in records),
                               "tokens": writers[split].total,
                               "chars": sum(r["chars"] for r in records if r["split"] == split),
                               "bytes": sum(r["bytes"] for r in records if r["split"] == split)}
                       for split in ("train", "val")},
            "source": str(src), "files": len(corpus.files), "skipped": corpus.skipped,
            "seconds": round(seconds, 3),
        }
        empty = [split for split in ("train", "val") if not index["splits"][split]["chars"]]
        if empty:
            raise MakemoreError(f"{src}: the {empty[0]} documents hold no text; a split needs some (bits per "
                                f"character divide by its characters)")
        (tmp / TOKENIZER).write_bytes(tokenizer.to_json())
        (tmp / INDEX).write_text(json.dumps(index, indent=1, ensure_ascii=False) + "\n")
        try:
            if out.exists():
                out.rmdir()  # empty, checked above
            os.replace(tmp, out)
        except OSError as e:
            if out.exists():  # another process made it meanwhile (another prepare with the same -o)
                raise MakemoreError(f"{out}: made by another process while this one prepared; choose another "
                                    f"output directory") from None
            raise MakemoreError(f"{out}: cannot create the shard directory ({e.strerror or e})") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        _remove_empty(made)
        raise
    finally:
        if held is not None:
            os.close(held)
    return index


PREPARING = ".preparing"  # the suffix of the temporary a prepare writes its shards into


def _temporary_prefix(out: Path) -> str:
    """How the temporaries of a prepare into ``out`` begin: its name's first 40 characters (a name may take all of
    the 255 bytes a name can have) and a digest of the whole name, which tells two long names apart."""
    import hashlib

    return f".{out.name[:40]}.{hashlib.sha256(out.name.encode('utf-8', 'surrogateescape')).hexdigest()[:8]}."


def _hold(folder: Path) -> int | None:
    """An exclusive lock on ``folder`` for as long as the returned descriptor is open (None: not to be had, or
    no locks on this system): a prepare holds its temporary's, so that another can tell a live one from one that
    was killed (the kernel lets go of a dead process's locks)."""
    try:
        import fcntl
    except ImportError:
        return None
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def leftovers(out: Path | str) -> tuple[list[tuple[Path, int]], list[Path]]:
    """The temporaries of earlier prepares into ``out``, beside it: those of a prepare that was killed (nobody
    holds their lock) are removed, and returned with their sizes; those that cannot be told so (a prepare still
    running, a system without locks, or one named before the lock was held) are returned to be said."""
    out = Path(out).expanduser()
    ours = re.compile(re.escape(_temporary_prefix(out)) + r"[A-Za-z0-9_]{8}" + re.escape(PREPARING))
    older = re.compile(re.escape(f".{out.name}.") + r"[A-Za-z0-9_]{8}")
    removed, kept = [], []
    try:
        entries = sorted(p for p in out.parent.iterdir() if p.is_dir() and not p.is_symlink())
    except OSError:
        return removed, kept
    for path in entries:
        if older.fullmatch(path.name):
            kept.append(path)
            continue
        if not ours.fullmatch(path.name):
            continue
        fd = _hold(path)
        if fd is None:
            kept.append(path)
            continue
        try:
            size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())
            shutil.rmtree(path, ignore_errors=True)
        finally:
            os.close(fd)
        if path.exists():  # (another user's, say, that this one cannot remove)
            kept.append(path)
        else:
            removed.append((path, size))
    return removed, kept


def _allow_open_files(n: int) -> None:
    """Raise this process's limit on open files to ``n`` where the hard limit allows (each memory map keeps
    its file open; the usual soft limit is 1,024)."""
    try:
        import resource
    except ImportError:  # not on this system
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < n:
        target = n if hard == resource.RLIM_INFINITY else min(n, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass


def _remove_empty(folders: list[Path]) -> None:
    """The directories a failed prepare created for its output, deepest first, where still empty."""
    for folder in reversed(folders):
        try:
            folder.rmdir()
        except OSError:
            return


def _encoded(docs: list[Document], tokenizer, piece_bytes: int, batch_pieces: int):
    """(document, text, ids) for each piece in order, and (document, None, None) where a document begins;
    the pieces are encoded ``batch_pieces`` at a time, in parallel by the library."""
    batch: list[tuple[Document, str | None]] = []

    def flush():
        ids = iter(tokenizer.encode_arrays([text for _, text in batch if text is not None]))
        return [(doc, text, None if text is None else next(ids)) for doc, text in batch]

    for doc in docs:
        batch.append((doc, None))
        for text in _pieces(doc, piece_bytes):
            batch.append((doc, text))
            if len(batch) >= batch_pieces:
                yield from flush()
                batch = []
    yield from flush()


# --- reading ---------------------------------------------------------------------------------------

def is_shard_dir(path: str | Path) -> bool:
    """Whether ``path`` is a folder with a shard index (not: a name the system refuses, too long or unreadable).
    An index.json that is not a file (a FIFO, a folder) counts: reading it says what it is, by its name."""
    try:
        return Path(path).is_dir() and os.path.lexists(Path(path) / INDEX)
    except OSError:
        return False


class Shards:
    """A prepared shard directory: its index, its tokenizer, and its splits as memory-mapped documents."""

    def __init__(self, folder: str | Path):
        import numpy as np

        from makemore.tokenizer import Tokenizer

        self.folder = Path(folder)
        path = self.folder / INDEX
        self.index = _read_index(path)
        self.tokenizer = Tokenizer.load(self.folder / TOKENIZER)
        if self.tokenizer.sha256 != self.index["tokenizer"]["sha256"] or \
                self.index["tokenizer"].get("vocab_size") != self.tokenizer.vocab_size:
            raise MakemoreError(f"{self.folder / TOKENIZER}: not the tokenizer these shards were made with "
                                f"(its sha256 or size differs from index.json)")
        if len(self.index["shards"]) > MAX_SHARDS:
            raise MakemoreError(f"{path}: {len(self.index['shards']):,} shards, more than the {MAX_SHARDS:,} one "
                                f"process keeps open; make them again with a larger --shard-tokens")
        self.dtype = np.dtype(self.index["dtype"]).newbyteorder("<")
        _allow_open_files(len(self.index["shards"]) + 256)
        self._maps: dict[str, list] = {}
        for split in ("train", "val"):
            arrays = []
            for shard in (s for s in self.index["shards"] if s["split"] == split):
                file = self.folder / shard["file"]
                if file.exists() and not is_regular(file):  # a FIFO or a device would be mapped as bytes it is not
                    raise MakemoreError(f"{file}: not a regular file (index.json lists it as a shard)")
                size = file.stat().st_size if file.exists() else -1
                if size != shard["tokens"] * self.dtype.itemsize:
                    raise MakemoreError(f"{file}: {'missing' if size < 0 else f'{size:,} bytes'}, index.json "
                                        f"says {shard['tokens']:,} tokens")
                arrays.append(np.memmap(file, dtype=self.dtype, mode="r") if shard["tokens"] else
                              np.zeros(0, dtype=self.dtype))
            self._maps[split] = arrays

    def documents(self, split: str) -> list[list]:
        """Each document of ``split`` as a list of memory-mapped segments (one, or two across a shard edge)."""
        size = self.index["shard_tokens"]
        maps = self._maps[split]
        out = []
        for d in self.index["documents"]:
            if d["split"] != split:
                continue
            start, end, segments = d["start"], d["start"] + d["tokens"], []
            while start < end:
                shard, offset = divmod(start, size)
                take = min(end - start, size - offset)
                segments.append(maps[shard][offset:offset + take])
                start += take
            out.append(segments)
        return out

    def tokens(self, split: str) -> int:
        return self.index["splits"][split]["tokens"]

    def chars(self, split: str) -> int:
        return self.index["splits"][split]["chars"]


def _read_index(path: Path) -> dict:
    """``index.json``, bounded and parsed without a traceback (a FIFO in its place is refused, not waited on)."""
    if not os.path.lexists(path):
        raise MakemoreError(f"{path.parent}: not a shard directory (no {INDEX}; make one with makemore prepare)")
    index = read_json(path, MAX_INDEX_BYTES, "JSON")
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        raise MakemoreError(f"{path}: not a makemore shard index")
    if index.get("version") != VERSION:
        raise MakemoreError(f"{path}: version {index.get('version')}, this makemore reads version {VERSION}")
    try:
        assert index["dtype"] in ("uint16", "uint32")
        assert isinstance(index["shard_tokens"], int) and index["shard_tokens"] > 0
        for s in index["shards"]:
            assert s["split"] in ("train", "val") and isinstance(s["tokens"], int) and s["tokens"] >= 0
            assert "/" not in s["file"] and "\\" not in s["file"] and not s["file"].startswith(".")
        for d in index["documents"]:
            assert d["split"] in ("train", "val")
            assert all(isinstance(d[k], int) and d[k] >= 0 for k in ("start", "tokens", "chars", "bytes"))
        for split in ("train", "val"):
            docs = [d for d in index["documents"] if d["split"] == split]
            shards = [s["tokens"] for s in index["shards"] if s["split"] == split]
            assert all(t == index["shard_tokens"] for t in shards[:-1]) and all(
                t <= index["shard_tokens"] for t in shards[-1:])  # the last may be short, never longer
            assert sum(d["tokens"] for d in docs) == sum(shards) == index["splits"][split]["tokens"]
            assert all(a["start"] + a["tokens"] == b["start"] for a, b in zip(docs, docs[1:]))
            assert not docs or docs[0]["start"] == 0
            chars = index["splits"][split]["chars"]
            assert type(chars) is int and chars == sum(d["chars"] for d in docs)  # what bits/char divide by
        assert isinstance(index["tokenizer"]["sha256"], str)
    except (AssertionError, KeyError, TypeError, AttributeError):
        raise MakemoreError(f"{path}: the index does not describe its shards consistently") from None
    return index


class TokenWindows:
    """Windows over documents, in a permuted document order each epoch.

    ``docs`` is a list of documents, each a list of 1-D integer arrays (memory-mapped shard segments, or arrays
    in memory). Epoch ``e`` orders the documents by ``numpy.random.default_rng([seed, e]).permutation`` (or
    keeps their order when ``shuffle`` is off) and concatenates them; the epochs follow one another in one
    stream. Row ``r`` is tokens ``r*T .. r*T + T`` of that stream (T + 1 tokens: inputs and targets overlap by
    all but one), so batch ``k`` of ``B`` rows is the ``B*T + 1`` tokens from ``k*B*T`` on, cut into rows, as
    the GPT-2 lecture's loader cuts its shards. Any row can be read directly, which lets data-parallel ranks and
    gradient-accumulation micro-batches take their share of a batch and a resumed run start where it stopped;
    only the rows asked for are copied out of the maps.
    """

    def __init__(self, docs: list[list], block_size: int, seed: int = 0, shuffle: bool = True,
                 vocab_size: int | None = None):
        import numpy as np

        self.docs, self.T, self.seed, self.shuffle = docs, block_size, seed, shuffle
        self.vocab_size = vocab_size  # given: every row read is checked against it (a damaged shard)
        self.lengths = np.array([sum(len(s) for s in d) for d in docs], dtype=np.int64)
        self.tokens = int(self.lengths.sum())
        if self.tokens <= block_size:
            raise MakemoreError(f"{self.tokens:,} tokens are fewer than one window of {block_size + 1}")
        self._epochs: dict[int, tuple] = {}

    def order(self, epoch: int):
        import numpy as np

        n = len(self.docs)
        return np.random.default_rng([self.seed, epoch]).permutation(n) if self.shuffle else np.arange(n)

    def _epoch(self, epoch: int):
        if epoch not in self._epochs:
            if len(self._epochs) > 2:
                self._epochs.pop(min(self._epochs))
            order = self.order(epoch)
            self._epochs[epoch] = (order, self.lengths[order].cumsum())
        return self._epochs[epoch]

    def _pieces(self, start: int, n: int) -> Iterator[tuple]:
        """(segment, first, count): where tokens ``start .. start + n`` of the stream of all epochs lie."""
        import numpy as np

        filled = 0
        while filled < n:
            epoch, offset = divmod(start + filled, self.tokens)
            order, ends = self._epoch(epoch)
            i = int(np.searchsorted(ends, offset, side="right"))
            within = offset - (int(ends[i]) - int(self.lengths[order[i]]))
            for seg in self.docs[order[i]]:
                if within >= len(seg):
                    within -= len(seg)
                    continue
                take = min(n - filled, len(seg) - within)
                yield seg, within, take
                filled += take
                within = 0
                if filled == n:
                    break

    def read(self, start: int, n: int):
        """Tokens ``start .. start + n`` of the stream of all epochs, as int64."""
        import numpy as np

        out = np.empty(n, dtype=np.int64)
        filled = 0
        for seg, first, take in self._pieces(start, n):
            out[filled:filled + take] = seg[first:first + take]
            filled += take
        return out

    def rows(self, rows) -> tuple:
        """Inputs and targets (len(rows), T), int64 numpy arrays, of the given rows."""
        import numpy as np

        rows = [int(r) for r in rows]
        block = self.checked(np.stack([self.read(r * self.T, self.T + 1) for r in rows]),
                             [(r * self.T, self.T + 1) for r in rows])
        return block[:, :-1], block[:, 1:]

    def checked(self, tokens, spans=()):
        """``tokens`` read from the training shards (the (start, count) ``spans`` of the stream), refused if an id
        is outside the tokenizer's vocabulary, naming the shard file and the place in it of the first one."""
        if self.vocab_size is not None and tokens.size and int(tokens.max()) >= self.vocab_size:
            bad = self.where(spans)
            place = f" ({bad[1]}, token {bad[2]:,})" if bad else ""
            token = bad[0] if bad else int(tokens.max())
            raise MakemoreError(f"token id {token:,} in the training shards{place} is outside the tokenizer's "
                                f"{self.vocab_size:,}; the shards are damaged (make them again)")
        return tokens

    def where(self, spans) -> tuple[int, str, int] | None:
        """The first id outside the vocabulary in the (start, count) ``spans`` of the stream: (id, its shard file's
        path, its index in the file); None where the documents are not memory-mapped shards."""
        import numpy as np

        for start, count in spans:
            for seg, first, take in self._pieces(start, count):
                beyond = np.flatnonzero(np.asarray(seg[first:first + take]) >= self.vocab_size)
                if not beyond.size:
                    continue
                whole = seg.base if isinstance(seg, np.memmap) and isinstance(seg.base, np.memmap) else None
                if whole is None or whole.filename is None:
                    return None
                at = (seg.ctypes.data - whole.ctypes.data) // seg.itemsize + first + int(beyond[0])
                return int(seg[first + int(beyond[0])]), str(whole.filename), int(at)
        return None

    def batches(self, batch_size: int, start: int = 0) -> Iterator[tuple]:
        """(x, y) of batch ``start``, ``start + 1``, ... forever."""
        k = start
        while True:
            yield self.rows(range(k * batch_size, (k + 1) * batch_size))
            k += 1

    def rows_per_epoch(self) -> float:
        return self.tokens / self.T


def bits_per_char(nats_per_token: float, tokens: int, chars: int) -> float:
    """Loss per token turned into bits per character of the text the tokens encode: total nats / chars / ln 2
    (NaN for no characters: nothing to divide by)."""
    return nats_per_token * tokens / chars / math.log(2) if chars else math.nan
