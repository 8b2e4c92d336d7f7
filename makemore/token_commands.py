"""What the token commands do: makemore tokenizer train | tokenize | prepare (the CLI only parses options)."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from makemore.console import plural
from makemore.errors import MakemoreError
from makemore.files import CONTROL as _CONTROL, check_parent

MAX_TOKENIZE_BYTES = 256 << 20  # tokenize --file reads the whole file; prepare is for larger corpora
COMPRESSION_SAMPLE_BYTES = 64 << 20  # tokenizer train measures chars/token on at most this much of its corpus
_COLOURS = ["on #4a3b6b", "on #2f5d50", "on #6b4a2f", "on #2f4a6b", "on #6b2f4a", "on #4a6b2f"]


def _echo(line: str = "") -> None:
    sys.stdout.write(line + "\n")


def _corpus(spec: str) -> Path:
    """A file, a directory of text files, or the name of a built-in dataset."""
    from makemore.data import check_data_named, resolve_dataset

    check_data_named(spec)
    path = Path(spec).expanduser()
    return path if path.is_dir() else resolve_dataset(spec)[1]


def tokenizer_train_command(data: str, vocab_size: int, out: str | Path, pattern: str) -> None:
    from makemore.corpus import corpus_bytes, documents, read_pieces
    from makemore.tokenizer import PATTERNS, Tokenizer

    if pattern not in PATTERNS:
        raise MakemoreError(f"--pattern {pattern}: expected one of {', '.join(PATTERNS)}")
    named, out = str(out), Path(out)
    if not named:
        raise MakemoreError("--out: an empty path; give the tokenizer's file name, e.g. tokenizer.json")
    if named.endswith(("/", os.sep)) or out.is_dir():
        raise MakemoreError(f"{named}: names a directory; give the tokenizer's file name, e.g. "
                            f"{out / 'tokenizer.json'}")
    taken = ("already exists; choose another --out (a tokenizer is never replaced: runs and shards made with it "
             "record its sha256)")
    if out.exists() or out.is_symlink():
        raise MakemoreError(f"{out}: {taken}")
    check_parent(out, "choose another --out")  # said now, not after the training (missing directories are made)
    src = _corpus(data)
    corpus = documents(src)
    files = corpus.files
    size = corpus_bytes(files)
    chars = text_bytes = 0  # of the text as read (line ends as LF): what the tokens encode

    def texts():
        nonlocal chars, text_bytes
        for path in files:
            for piece in read_pieces(path):
                chars += len(piece)
                text_bytes += len(piece.encode("utf-8"))
                yield piece

    t0 = time.perf_counter()
    tok = Tokenizer.train(texts(), vocab_size=vocab_size, pattern=pattern)
    seconds = time.perf_counter() - t0
    if chars == 0:
        raise MakemoreError(f"{src}: no text to train on")
    made = [p for p in reversed(out.parents) if not p.exists()]  # removed again if the file cannot be written
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tok.save(out, replace=False, taken=taken)  # another process's, written since the check above, is kept
    except (OSError, MakemoreError) as e:
        for p in reversed(made):
            try:
                p.rmdir()
            except OSError:
                break
        if isinstance(e, MakemoreError):
            raise
        raise MakemoreError(f"{out}: cannot write the tokenizer ({e.strerror or e})") from None
    _echo(f"{src}: {corpus.describe()}, {plural(chars, 'character')}, {plural(size, 'byte')}")
    short = f" (the text ran out of pairs to merge before {vocab_size:,})" if tok.vocab_size < vocab_size else ""
    _echo(f"{tok.describe()}{short} · trained in {seconds:.1f} s → {out}")
    if size <= COMPRESSION_SAMPLE_BYTES:
        try:
            tokens = sum(_count_tokens(tok, read_pieces(path)) for path in files)
        except KeyboardInterrupt:  # the tokenizer is saved: only its measure on the text is left out
            sys.stderr.write(f"interrupted while measuring; {out} is saved whole\n")
            raise SystemExit(130) from None  # still an interrupt to the shell: a loop of commands stops
        _echo(f"on its training text: {plural(tokens, 'token')}, {chars / max(tokens, 1):.2f} characters per token, "
              f"{text_bytes / max(tokens, 1):.2f} bytes per token")


def _count_tokens(tok, pieces) -> int:
    """The tokens of a text's pieces, encoded a group at a time (the encodings of the whole are never held)."""
    from makemore.tokenizer import GROUP_CHARS

    total, group, held = 0, [], 0
    for piece in pieces:
        group.append(piece)
        held += len(piece)
        if held >= GROUP_CHARS:
            total += sum(map(len, tok.encode_arrays(group)))
            group, held = [], 0
    return total + sum(map(len, tok.encode_arrays(group)))


def _shown(b: bytes) -> str:
    """A token's bytes for the terminal: its text with line ends marked and control characters escaped, or
    hex for bytes that are part of a character split across tokens."""
    try:
        text = b.decode("utf-8")
    except UnicodeDecodeError:
        return "⟨" + " ".join(f"{x:02x}" for x in b) + "⟩"
    text = text.replace("\r", "␍").replace("\n", "↵\n").replace("\t", "→")
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _summary(text: str, ids: list[int]) -> dict:
    n_bytes = len(text.encode())
    return {"tokens": len(ids), "characters": len(text), "bytes": n_bytes,
            "chars_per_token": round(len(text) / len(ids), 4) if ids else None,
            "compression_ratio": round(n_bytes / len(ids), 4) if ids else None}


def tokenize_command(tok_path: Path, text: str | None, file: Path | None, as_json: bool, merges: bool,
                     n: int) -> None:
    from makemore.tokenizer import Tokenizer, readable

    if n < 0:
        raise MakemoreError(f"-n must be at least 0, not {n}")
    tok = Tokenizer.load(tok_path)
    if merges:
        if text is not None or file is not None:
            raise MakemoreError("--merges lists the tokenizer's merges; give no text or --file with it")
        rows = tok.merge_list()[:n]
        if as_json:
            _echo(json.dumps({"tokenizer": str(tok_path), "vocab_size": tok.vocab_size,
                              "merges": len(tok.merges), "pattern": tok.pattern,
                              "first": [{"rank": r, "id": new, "left": list(a), "right": list(b)}
                                        for r, (new, a, b, _) in enumerate(rows)]}))
            return
        _echo(f"{tok_path}: {tok.describe()}; the first {len(rows)} merges, in rank order:")
        for r, (new, a, b, merged) in enumerate(rows):
            _echo(f"{r:>6}  {readable(a):>12} + {readable(b):<12} → {readable(merged):<16} id {new}")
        return
    if (text is None) == (file is None):
        raise MakemoreError("give a text to tokenize or --file FILE (not both)")
    if file is not None:
        from makemore.corpus import read_text

        text = read_text(_corpus(str(file)), MAX_TOKENIZE_BYTES)  # a file, or a built-in dataset's name
    else:
        from makemore.text import check_utf8, line_ends

        check_utf8(text, "the text to tokenize")
        text = line_ends(text)  # CRLF and CR as LF, as a file is read
    ids = tok.encode(text)
    summary = _summary(text, ids)
    if as_json:
        _echo(json.dumps({"tokenizer": str(tok_path), **({"file": str(file)} if file else {}), "ids": ids,
                          **summary}))
        return
    if file is None:
        from rich.console import Console
        from rich.text import Text

        shown = Text()
        for i, (_, b) in enumerate(tok.pieces(text)):
            shown.append(_shown(b), style=_COLOURS[i % len(_COLOURS)])
        Console(highlight=False, soft_wrap=True).print(shown)
        if len(ids) <= 200:
            _echo(" ".join(map(str, ids)))
    ratio = f"{summary['chars_per_token']:.2f} characters per token, {summary['compression_ratio']:.2f} bytes " \
            f"per token" if ids else "nothing to encode"
    _echo(f"{plural(len(ids), 'token')} · {plural(len(text), 'character')} · {plural(summary['bytes'], 'byte')} · "
          f"{ratio}")


def prepare_command(src: Path, tokenizer: Path, out: Path, shard_tokens: int, val_fraction: float,
                    quiet: bool) -> None:
    from makemore.corpus import files_text
    from makemore.shards import leftovers, prepare
    from makemore.tokenizer import Tokenizer

    src = _corpus(str(src))  # a file, a directory of text files, or a built-in dataset's name
    tok = Tokenizer.load(tokenizer)
    removed, kept = leftovers(out)
    for path, size in removed:
        sys.stderr.write(f"removed {path} ({size / 2**20:,.1f} MB), left by a prepare that was killed\n")
    for path in kept:
        sys.stderr.write(f"note: {path} is another prepare's into {out}, running or killed; remove it if none runs\n")
    t0 = time.perf_counter()
    last = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.perf_counter()
        if not quiet and sys.stderr.isatty() and now - last[0] > 0.5:
            last[0] = now
            sys.stderr.write(f"\r{done / 2**20:,.0f} / {total / 2**20:,.0f} MB "
                             f"({done / 2**20 / max(now - t0, 1e-9):.1f} MB/s)")
            sys.stderr.flush()

    index = prepare(src, tok, out, shard_tokens=shard_tokens, val_fraction=val_fraction, progress=progress)
    if not quiet and sys.stderr.isatty():
        sys.stderr.write("\r\033[K")
    seconds = time.perf_counter() - t0
    docs = index["documents"]
    empty = sum(d["chars"] == 0 for d in docs)
    total = sum(s["bytes"] for s in index["splits"].values())
    _echo(f"{src}: {files_text(index['files'], index['skipped'])}")
    for split, s in index["splits"].items():
        shards = sum(x["split"] == split for x in index["shards"])
        _echo(f"{split}: {plural(s['documents'], 'document')}, {plural(s['tokens'], 'token')} in "
              f"{plural(shards, 'shard')}, {plural(s['chars'], 'character')}"
              + (f" ({s['chars'] / s['tokens']:.2f} per token)" if s["tokens"] else ""))
    share = index["splits"]["val"]["bytes"] / max(total, 1)
    if abs(share - val_fraction) > 0.1 * val_fraction:  # files of a character or a few bytes: no closer cut
        _echo(f"note: val holds {share * 100:.2g}% of the text, where --val-fraction asked {val_fraction * 100:.2g}%: "
              f"the nearest the files could be cut to it")
    _echo(f"{out}: {index['dtype']} shards of {index['shard_tokens']:,} tokens"
          + (f"; {empty} empty document{'s' * (empty != 1)} (end-of-text only)" if empty else "")
          + f"; {total / 2**20:,.1f} MB in {seconds:.1f} s ({total / 2**20 / max(seconds, 1e-9):.1f} MB/s)")
