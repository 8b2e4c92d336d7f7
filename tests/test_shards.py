"""Token shards: prepare a corpus, read it back through memory maps, windows in a permuted document order."""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import numpy as np
import pytest

from makemore.corpus import documents, read_pieces, read_text
from makemore.errors import MakemoreError
from makemore.shards import Shards, TokenWindows, bits_per_char, is_shard_dir, prepare
from makemore.tokenizer import END_OF_TEXT, Tokenizer

DOCS = {
    "a.txt": "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n" * 40,
    "b.txt": "Résumé: naïve café. 😀 한국어 e\u0301\r\nwith CRLF\r\n" * 30,
    "c/d.txt": "\ufeffa BOM first, then text with <|endoftext|> written in it.\n" * 25,
    "c/e.txt": "",
    "f.md": "x\ny\nz\n" * 200,
    "g.txt": "The quick brown fox jumps over the lazy dog.\n" * 60,
}


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    return Tokenizer.train(list(DOCS.values()), vocab_size=320)


@pytest.fixture()
def corpus(tmp_path) -> Path:
    root = tmp_path / "corpus"
    for name, text in DOCS.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(text.encode())
    (root / ".hidden").write_text("never read")
    return root


def _lf(text: str) -> str:
    """Line ends as every command reads them: CRLF and CR as LF."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _text(name: str) -> str:
    return _lf(DOCS[name].removeprefix("\ufeff"))  # a BOM at the start of a file is not part of its text


def _split_tokens(shards: Shards, split: str) -> np.ndarray:
    return np.concatenate([seg for doc in shards.documents(split) for seg in doc] or [np.zeros(0, np.int64)])


def test_prepare_a_directory_gives_shards_that_decode_to_the_documents_in_order(corpus, tok, tmp_path):
    # the last file, g.txt, is about a quarter of the corpus: whole files each side (see the test below)
    index = prepare(corpus, tok, tmp_path / "shards", shard_tokens=500, piece_bytes=300, batch_pieces=3,
                    val_fraction=0.25)
    names = sorted(DOCS)
    assert [d["name"] for d in index["documents"]] == names
    shards = Shards(tmp_path / "shards")
    # the shard files themselves, concatenated split by split, in the order the index lists them
    raw = {split: np.concatenate([np.fromfile(tmp_path / "shards" / s["file"], dtype="<u2")
                                  for s in index["shards"] if s["split"] == split]) for split in ("train", "val")}
    for split in ("train", "val"):
        names_in = [d["name"] for d in index["documents"] if d["split"] == split]
        assert tok.decode(raw[split].tolist()) == "".join(END_OF_TEXT + _text(n) for n in names_in)
        assert np.array_equal(_split_tokens(shards, split), raw[split])
    # each document alone: end-of-text, then exactly the tokens of its text
    for split in ("train", "val"):
        for d, segments in zip([d for d in index["documents"] if d["split"] == split], shards.documents(split)):
            ids = np.concatenate(segments).tolist()
            assert ids == [tok.eot_id, *tok.encode(_text(d["name"]))]
            assert d["chars"] == len(_text(d["name"])) and d["bytes"] == len(_text(d["name"]).encode())
    # fixed-size shards (all but the last of a split), a validation split, the tokenizer's hash
    for split in ("train", "val"):
        sizes = [s["tokens"] for s in index["shards"] if s["split"] == split]
        assert sizes and all(t == 500 for t in sizes[:-1]) and 0 < sizes[-1] <= 500
    assert index["splits"]["val"]["documents"] >= 1 and index["splits"]["train"]["documents"] >= 1
    assert index["tokenizer"]["sha256"] == tok.sha256 and index["dtype"] == "uint16"
    assert len(list((tmp_path / "shards").glob("train_*.bin"))) > 1  # the corpus did span several shards
    assert not list(tmp_path.glob(".shards.*"))  # no temporary directory left


def test_a_single_file_is_cut_into_a_training_and_a_validation_document(tmp_path, tok):
    text = _lf("".join(DOCS.values()).replace("\ufeff", ""))
    (tmp_path / "one.txt").write_text(text)
    index = prepare(tmp_path / "one.txt", tok, tmp_path / "s")
    shards = Shards(tmp_path / "s")
    train, val = (tok.decode(_split_tokens(shards, s).tolist()) for s in ("train", "val"))
    assert train.startswith(END_OF_TEXT) and val.startswith(END_OF_TEXT)
    assert train[len(END_OF_TEXT):] + val[len(END_OF_TEXT):] == text
    assert 0.8 < index["splits"]["train"]["bytes"] / len(text.encode()) < 0.95


@pytest.mark.parametrize("text, fraction, before", [
    ("the quick brown fox jumps over the lazy dog and runs far away\n", 0.1, b" "),  # its one line break: its end
    ("hello there\r\nsecond line here\r\nthird\r\n", 0.1, None),  # CRLF, never parted
    ("a" * 500 + "\n" + "b" * 500 + "\n", 0.1, b"b"),  # no break or space near the share: a character start
    ("ab\n", 0.1, None),
    ("abcdefghij", 0.95, b"a"),  # the share asked takes the cut to the file's start
    ("Before we proceed any further, hear me speak. " * 2000 + "end\nof\ntext\n", 0.1, b" "),  # breaks at the end
    ("First Citizen:\nBefore we proceed any further, hear me speak.\n" * 100, 0.1, b"\n"),
], ids=["one-line", "crlf", "two-long-lines", "three-bytes", "most", "breaks-at-the-end", "lines"])
def test_a_single_file_is_cut_within_a_tenth_of_the_share_asked(tmp_path, text, fraction, before):
    """The cut is the place nearest the share within a tenth of it (or a character's bytes, for a tiny file),
    after a line break, else a space, else before a character: however the file's line breaks fall, both parts
    hold text and val is within 10% of --val-fraction."""
    from makemore.corpus import documents
    from makemore.shards import _plan

    (tmp_path / "one.txt").write_bytes(text.encode())
    (train,), (val,) = _plan(documents(tmp_path / "one.txt"), fraction)
    size, data = len(text.encode()), text.encode()
    assert 0 < train.end == val.start < size and val.end is None
    assert abs((size - val.start) - fraction * size) <= max(0.1 * fraction * size, 4)
    assert data[val.start - 1:val.start + 1] != b"\r\n"  # a CRLF stays whole
    if before is not None:
        assert data[val.start - 1:val.start] == before


def test_a_directory_whose_last_file_has_no_line_break_near_the_share_is_cut_at_a_space(tmp_path):
    from makemore.corpus import documents
    from makemore.shards import _plan

    (tmp_path / "a.txt").write_text("Speak, speak.\n" * 100)
    (tmp_path / "b.txt").write_text("word " * 400 + "\n")
    (tmp_path / "z.txt").write_text("")  # an empty last file validates, and text with it
    train, val = _plan(documents(tmp_path), 0.1)
    total = 14 * 100 + 5 * 400 + 1
    held = sum((d.end if d.end is not None else d.path.stat().st_size) - d.start for d in val)
    assert [d.name for d in train] == ["a.txt", "b.txt"] and [d.name for d in val] == ["b.txt#val", "z.txt"]
    assert abs(held - 0.1 * total) <= 0.01 * total


@pytest.mark.parametrize("text, before", [
    ("First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n" * 40, "\n"),
    ("Before we proceed any further, hear me speak. " * 60, " "),  # one line: after a space
    ("ÉÉÉÉÉ" * 200, "É"),  # no line break or space: where a character starts
], ids=["lines", "one-line", "one-word"])
def test_a_single_file_is_cut_after_a_line_break_else_a_space_else_between_characters(tmp_path, tok, text, before):
    """The validation part starts a line (after all the line breaks there: a blank line does not start it), else
    a word, else a character; about a tenth of the bytes."""
    (tmp_path / "one.txt").write_text(text)
    prepare(tmp_path / "one.txt", tok, tmp_path / "s")
    shards = Shards(tmp_path / "s")
    train, held = (tok.decode(_split_tokens(shards, s).tolist())[len(END_OF_TEXT):] for s in ("train", "val"))
    assert train + held == text and train.endswith(before) and held[0] not in "\n "
    assert 0.09 <= len(held.encode()) / len(text.encode()) <= 0.11


def test_a_last_file_far_larger_than_the_validation_share_is_cut_for_it(tmp_path, tok):
    """The last files validate; where the last one alone is far more than --val-fraction of the corpus (here
    91%), it is cut at a line break as a single file is, so that the split is about the share asked for."""
    corpus = tmp_path / "c"
    corpus.mkdir()
    small, big = "All:\nSpeak, speak.\n" * 100, "First Citizen:\nBefore we proceed any further.\n" * 450
    (corpus / "a.txt").write_text(small)
    (corpus / "b.txt").write_text(big)
    index = prepare(corpus, tok, tmp_path / "s")
    assert [(d["name"], d["split"]) for d in index["documents"]] == [
        ("a.txt", "train"), ("b.txt", "train"), ("b.txt#val", "val")]
    total = len(small) + len(big)
    assert 0.09 < index["splits"]["val"]["bytes"] / total < 0.11
    shards = Shards(tmp_path / "s")
    train, val = (tok.decode(_split_tokens(shards, s).tolist()) for s in ("train", "val"))
    assert (train + val).replace(END_OF_TEXT, "") == small + big


@pytest.mark.parametrize("end", ["\n", "\r\n", "\r"], ids=["LF", "CRLF", "CR"])
def test_a_single_file_in_any_script_is_cut_where_no_token_crosses(tmp_path, tok, end):
    """A line break between two characters that are not whitespace is a safe cut in any script and with any line
    ends (before, only an LF between two ASCII characters: a Cyrillic text, or any CRLF file, was refused as
    having no line break)."""
    lines = ["привет мир как дела", "日本語の文章です", "γειά σου κόσμε"] * 300
    text = "\n".join(lines) + "\n"
    (tmp_path / "ru.txt").write_bytes(text.replace("\n", end).encode())
    prepare(tmp_path / "ru.txt", tok, tmp_path / "s")
    shards = Shards(tmp_path / "s")
    train, val = (tok.decode(_split_tokens(shards, s).tolist()) for s in ("train", "val"))
    assert train[len(END_OF_TEXT):] + val[len(END_OF_TEXT):] == text
    head = train[len(END_OF_TEXT):]
    assert head.endswith("\n") and not head.endswith(" \n") and 0.85 < len(head) / len(text) < 0.95


def test_line_ends_are_read_as_text_mode_reads_them(tmp_path, tok):
    """CRLF and CR become LF in a corpus, across piece edges too, as `train FILE --tokenizer` and `eval` read a
    text: the same document gives the same tokens whichever command reads it."""
    text = _lf("".join(DOCS.values()).replace("\ufeff", ""))
    crlf = text.replace("\n", "\r\n")
    (tmp_path / "t.txt").write_bytes(crlf.encode())
    for size in (5, 6, 97, 1 << 20):
        assert "".join(read_pieces(tmp_path / "t.txt", piece_bytes=size)) == text
    (tmp_path / "mac.txt").write_bytes(text.replace("\n", "\r").encode())
    assert "".join(read_pieces(tmp_path / "mac.txt", piece_bytes=7)) == text


def test_more_than_65536_tokens_are_stored_as_uint32(tmp_path, tok, monkeypatch):
    monkeypatch.setattr(Tokenizer, "vocab_size", property(lambda self: 70_000))
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "a.txt").write_text("abc abc\n")
    (tmp_path / "c" / "b.txt").write_text("abd\n")
    index = prepare(tmp_path / "c", tok, tmp_path / "s")
    assert index["dtype"] == "uint32"
    assert (tmp_path / "s" / "val_000000.bin").stat().st_size == 4 * index["splits"]["val"]["tokens"]


def test_refusals(tmp_path, tok, corpus):
    with pytest.raises(MakemoreError, match="no such file"):
        prepare(tmp_path / "missing", tok, tmp_path / "s")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(MakemoreError, match="not empty"):
        prepare(corpus, tok, tmp_path / "full")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.txt").write_text("fine\n")
    (bad / "b.txt").write_bytes(b"caf\xe9\n")
    with pytest.raises(MakemoreError, match="b.txt: not UTF-8"):
        prepare(bad, tok, tmp_path / "s2")
    assert not (tmp_path / "s2").exists() and not list(tmp_path.glob(".s2.*"))  # nothing half-written
    (bad / "b.txt").write_bytes(b"\x18\x06\x00\x00\xc1{}")  # a binary file: named so, not sent to iconv
    with pytest.raises(MakemoreError, match="b.txt: binary data"):
        prepare(bad, tok, tmp_path / "s2")
    run = tmp_path / "run"  # what a run directory or token shards hold is not a corpus
    run.mkdir()
    (run / "config.json").write_text("{}")
    (run / "best.safetensors").write_bytes(b"\x08\x00")
    with pytest.raises(MakemoreError, match="a run directory"):
        prepare(run, tok, tmp_path / "s3")
    prepare(corpus, tok, tmp_path / "shards")
    with pytest.raises(MakemoreError, match="token shards"):
        prepare(tmp_path / "shards", tok, tmp_path / "s4")


@pytest.mark.parametrize("data, says", [
    (b"caf\xe9\nna\xefve\nhello\nworld\n", "not UTF-8 (byte 0xe9 at offset 3)"),  # Latin-1, too short to cut
    (b"\x7fELF\x02\x01\x01\x00\x00\x00", "binary data"),
    ("one line, no break".encode("utf-16"), "UTF-16 text"),
    (b"x", "one character; too short to cut off a validation split"),  # text indeed: the cut is what fails
    (b"\xef\xbb\xbf", "no text (a byte-order mark alone)"),  # not "one character"
    (b"\xe9", "not UTF-8 (byte 0xe9 at offset 0)"),
    # beyond the first HEAD_BYTES (1 MiB here), after the cut
    (b"abc\n" * (((1 << 20) + (224 << 10)) // 4) + b"\xe9" + b"a" * (64 << 10),  # (lines: quick to encode)
     "not UTF-8 (byte 0xe9 at offset 1,277,952)"),
], ids=["latin-1", "binary", "utf-16", "one-character", "bom-alone", "one-latin-1-character",
        "latin-1-after-the-cut"])
def test_a_single_file_that_cannot_be_prepared_says_why(tmp_path, tok, data, says, monkeypatch):
    """A single file that cannot be prepared says what is wrong with its text, if anything, before that it is too
    short to cut: a small Latin-1 or binary file used to be refused for having no line break. A file whose head
    (the first 16 MB, 1 MiB here) is text says so of a byte after it, which the encoding finds."""
    from makemore import corpus

    monkeypatch.setattr(corpus, "HEAD_BYTES", 1 << 20)
    (tmp_path / "one.txt").write_bytes(data)
    with pytest.raises(MakemoreError, match=re.escape(f"one.txt: {says}")):
        prepare(tmp_path / "one.txt", tok, tmp_path / "s")
    assert not (tmp_path / "s").exists()


def test_a_changed_shard_or_tokenizer_is_refused(corpus, tok, tmp_path):
    prepare(corpus, tok, tmp_path / "s", shard_tokens=500)
    other = Tokenizer.train(["something else entirely"], vocab_size=300)
    (tmp_path / "s" / "tokenizer.json").write_bytes(other.to_json())
    with pytest.raises(MakemoreError, match="not the tokenizer"):
        Shards(tmp_path / "s")
    (tmp_path / "s" / "tokenizer.json").write_bytes(tok.to_json())
    with open(tmp_path / "s" / "train_000000.bin", "ab") as f:
        f.write(b"\0\0")
    with pytest.raises(MakemoreError, match="index.json says"):
        Shards(tmp_path / "s")
    # a shard that is no file, and an index that is none: named for what they are (a FIFO's "0 bytes, index.json
    # says ..."; a folder as index.json made the shards a directory to prepare)
    shard, index_file = tmp_path / "s" / "train_000000.bin", tmp_path / "s" / "index.json"
    kept = shard.read_bytes()[:-2]
    shard.unlink()
    os.mkfifo(shard)
    with pytest.raises(MakemoreError, match=f"^{re.escape(str(shard))}: not a regular file"):
        Shards(tmp_path / "s")
    shard.unlink()
    shard.write_bytes(kept)
    kept = index_file.read_bytes()
    index_file.unlink()
    index_file.mkdir()
    assert is_shard_dir(tmp_path / "s")
    with pytest.raises(MakemoreError, match=f"^{re.escape(str(index_file))}: is a directory"):
        Shards(tmp_path / "s")
    index_file.rmdir()
    index_file.write_bytes(kept)
    Shards(tmp_path / "s")  # as it was: read
    index = json.loads((tmp_path / "s" / "index.json").read_text())
    index["documents"][0]["tokens"] += 1
    (tmp_path / "s" / "index.json").write_text(json.dumps(index))
    with pytest.raises(MakemoreError, match="consistently"):
        Shards(tmp_path / "s")
    # shard_tokens below a split's last (or only) shard: windows would be looked for in shards that do not
    # exist (an IndexError's traceback); a split's characters unlike its documents': bits per character of -26,405
    prepare(corpus, tok, tmp_path / "one", shard_tokens=10**6)  # one shard a split
    index = json.loads((tmp_path / "one" / "index.json").read_text())
    train = [s["tokens"] for s in index["shards"] if s["split"] == "train"]
    assert len(train) == 1 and train[0] > 1
    for key, value in (("shard_tokens", train[0] - 1), ("chars", -5), ("chars", 10**12)):
        edited = json.loads(json.dumps(index))
        if key == "chars":
            edited["splits"]["val"]["chars"] = value
        else:
            edited[key] = value
        (tmp_path / "one" / "index.json").write_text(json.dumps(edited))
        with pytest.raises(MakemoreError, match="consistently"):
            Shards(tmp_path / "one")


def _reference_batches(docs: list[np.ndarray], B: int, T: int, seed: int, n: int) -> list:
    """The windows written out plainly: the documents of each epoch in the permuted order, joined, cut."""
    stream = np.concatenate([docs[i] for e in range(n * B * T // sum(map(len, docs)) + 2)
                             for i in np.random.default_rng([seed, e]).permutation(len(docs))])
    return [(stream[k * B * T:(k + 1) * B * T].reshape(B, T), stream[k * B * T + 1:(k + 1) * B * T + 1].reshape(B, T))
            for k in range(n)]


def test_windows_follow_a_new_permutation_of_documents_each_epoch(corpus, tok, tmp_path):
    prepare(corpus, tok, tmp_path / "s", shard_tokens=128)
    shards = Shards(tmp_path / "s")
    docs = [np.concatenate(d).astype(np.int64) for d in shards.documents("train")]
    B, T, n = 4, 32, 100
    windows = TokenWindows(shards.documents("train"), T, seed=7)
    assert n * B * T > 2 * windows.tokens  # more than two epochs
    got = [b for _, b in zip(range(n), windows.batches(B))]
    for (x, y), (rx, ry) in zip(got, _reference_batches(docs, B, T, 7, n)):
        assert np.array_equal(x, rx) and np.array_equal(y, ry)
    orders = [tuple(windows.order(e)) for e in range(4)]
    assert len(set(orders)) > 1  # the order changes between epochs
    # the same windows from arrays in memory, and from any starting batch
    in_memory = TokenWindows([[d] for d in docs], T, seed=7)
    assert all(np.array_equal(a[0], b[0]) for (a, b) in zip(got, in_memory.batches(B)))
    for start in (1, 17, 45):
        x, y = next(TokenWindows(shards.documents("train"), T, seed=7).batches(B, start=start))
        assert np.array_equal(x, got[start][0]) and np.array_equal(y, got[start][1])
    # any rows, in any order: what a rank's or a micro-batch's share of a batch reads
    x, y = windows.rows([4 * 37 + 3, 5, 4 * 37 + 1])
    assert np.array_equal(x[0], got[37][0][3]) and np.array_equal(x[1], got[1][0][1])
    assert np.array_equal(y[2], got[37][1][1])


def test_windows_read_through_memory_maps(corpus, tok, tmp_path):
    prepare(corpus, tok, tmp_path / "s", shard_tokens=128)
    segments = [seg for doc in Shards(tmp_path / "s").documents("train") for seg in doc]
    assert all(isinstance(seg, np.memmap) for seg in segments if len(seg))


def test_read_pieces_cut_safely_and_keep_everything(tmp_path, tok):
    text = _lf("".join(DOCS.values()).replace("\ufeff", ""))
    (tmp_path / "t.txt").write_bytes(text.encode())
    pieces = list(read_pieces(tmp_path / "t.txt", piece_bytes=97))
    assert "".join(pieces) == text and len(pieces) > 10
    assert [i for p in pieces for i in tok.encode(p)] == tok.encode(text)


def test_bits_per_char_by_hand():
    # A toy text of 12 characters encoded as 4 tokens, with a loss of ln 2 nats per token: 4 ln 2 nats in all,
    # i.e. 4 bits, over 12 characters: 1/3 bit per character.
    assert bits_per_char(math.log(2), tokens=4, chars=12) == pytest.approx(1 / 3)
    # a character model (one token per character) reads its loss in bits directly
    assert bits_per_char(1.5, tokens=10, chars=10) == pytest.approx(1.5 / math.log(2))


@pytest.mark.parametrize("sizes,fraction", [((100,) * 5, 0.5), ((100,) * 5, 0.1), ((100,) * 5, 0.3),
                                            ((1000, 10), 0.3), ((10, 1000), 0.1), ((300, 50, 50, 50), 0.25)])
def test_the_validation_split_is_the_fraction_asked_for_whatever_the_files(tmp_path, sizes, fraction):
    """The last files validate whole while they stay within 10% of --val-fraction, and the end of the file before
    them, cut at a line break, makes up the rest: within 10% of the share on files of any sizes (each a number
    of lines of 20 bytes), with at least one document on each side, and every byte in exactly one of them."""
    from makemore.corpus import documents
    from makemore.shards import _plan

    for i, lines in enumerate(sizes):
        (tmp_path / f"{i}.txt").write_text("Speak, speak, hear.\n" * lines)
    train, val = _plan(documents(tmp_path), fraction)
    total = 20 * sum(sizes)
    span = {d: (d.end if d.end is not None else d.path.stat().st_size) - d.start for d in train + val}
    assert train and val and sum(span.values()) == total
    assert abs(sum(span[d] for d in val) - fraction * total) <= 0.1 * fraction * total + 20, (train, val)
    assert [d.name.removesuffix("#val") for d in train + val] == [
        f"{i}.txt" for i in range(len(sizes)) for _ in range(1 + any(d.name == f"{i}.txt#val" for d in val))]


def test_prepare_command(corpus, tok, tmp_path):
    from typer.testing import CliRunner

    from makemore.cli import app

    tok.save(tmp_path / "tok.json")
    runner = CliRunner()
    result = runner.invoke(app, ["prepare", str(corpus), "--tokenizer", str(tmp_path / "tok.json"), "-o",
                                 str(tmp_path / "s"), "--shard-tokens", "1000"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == f"{corpus}: 6 files (skipped 1 hidden file)"
    index = json.loads((tmp_path / "s" / "index.json").read_text())
    train = index["splits"]["train"]
    assert f"train: {train['documents']} documents, {train['tokens']:,} tokens" in result.output
    assert "1 empty document" in result.output
    result = runner.invoke(app, ["prepare", str(corpus), "--tokenizer", str(tmp_path / "tok.json"), "-o",
                                 str(tmp_path / "s")])
    assert result.exit_code == 2 and "not empty" in result.output
    assert "note: val holds" not in result.output
    two = tmp_path / "two"  # a large first file and a small last one: the end of the first makes up the 30%
    two.mkdir()
    (two / "a.txt").write_text("First Citizen:\nBefore we proceed any further, hear me speak.\n" * 200)
    (two / "b.txt").write_text("All:\nSpeak, speak.\n" * 10)
    result = runner.invoke(app, ["prepare", str(two), "--tokenizer", str(tmp_path / "tok.json"), "-o",
                                 str(tmp_path / "s2"), "--val-fraction", "0.3"])
    assert result.exit_code == 0 and "val: 2 documents" in result.output and "note:" not in result.output
    index = json.loads((tmp_path / "s2" / "index.json").read_text())
    assert [(d["name"], d["split"]) for d in index["documents"]] == [
        ("a.txt", "train"), ("a.txt#val", "val"), ("b.txt", "val")]
    assert 0.27 <= index["splits"]["val"]["bytes"] / sum(s["bytes"] for s in index["splits"].values()) <= 0.33
    # two files of one character: nowhere to cut, so the last file validates whole (1 of 2 bytes), and says so
    (two / "a.txt").write_text("a")
    (two / "b.txt").write_text("b")
    result = runner.invoke(app, ["prepare", str(two), "--tokenizer", str(tmp_path / "tok.json"), "-o",
                                 str(tmp_path / "s3"), "--val-fraction", "0.3"])
    assert result.exit_code == 0 and "note: val holds 50% of the text, where --val-fraction asked 30%: the " \
        "nearest the files could be cut to it" in result.output, result.output


def _with_skipped_entries(corpus: Path) -> Path:
    """The corpus plus a file in a hidden directory, a FIFO and a broken link: none of them read, all counted."""
    (corpus / ".git").mkdir()
    (corpus / ".git" / "config").write_text("never read either")
    os.mkfifo(corpus / "c" / "pipe.txt")
    (corpus / "gone.txt").symlink_to(corpus / "nowhere.txt")
    return corpus


def test_what_a_directory_walk_leaves_out_is_counted(corpus):
    found = documents(_with_skipped_entries(corpus))
    assert [p.relative_to(corpus).as_posix() for p in found.files] == sorted(DOCS)
    assert found.skipped == {"hidden file": 1, "hidden directory": 1, "FIFO": 1, "broken link": 1}
    assert found.describe() == "6 files (skipped 1 hidden file, 1 hidden directory, 1 FIFO, 1 broken link)"
    (corpus / ".another").write_text("x")
    assert documents(corpus).describe().startswith("6 files (skipped 2 hidden files, ")
    assert documents(corpus / "a.txt").describe() == "1 file"


def test_prepare_and_tokenizer_train_report_what_they_skipped(corpus, tok, tmp_path):
    from typer.testing import CliRunner

    from makemore.cli import app

    _with_skipped_entries(corpus)
    tok.save(tmp_path / "tok.json")
    runner = CliRunner()
    skipped = "6 files (skipped 1 hidden file, 1 hidden directory, 1 FIFO, 1 broken link)"
    result = runner.invoke(app, ["prepare", str(corpus), "--tokenizer", str(tmp_path / "tok.json"), "-o",
                                 str(tmp_path / "s")])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == f"{corpus}: {skipped}"
    index = json.loads((tmp_path / "s" / "index.json").read_text())
    assert index["files"] == 6 and index["skipped"] == {"hidden file": 1, "hidden directory": 1, "FIFO": 1,
                                                        "broken link": 1}
    result = runner.invoke(app, ["tokenizer", "train", str(corpus), "--vocab-size", "260", "-o",
                                 str(tmp_path / "t.json")])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].startswith(f"{corpus}: {skipped}, ")


def test_a_directory_with_nothing_to_read_says_what_it_skipped(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / ".hidden").write_text("x")
    os.mkfifo(tmp_path / "d" / "pipe")
    with pytest.raises(MakemoreError) as e:
        documents(tmp_path / "d")
    assert str(e.value) == f"{tmp_path / 'd'}: no files in this directory (skipped 1 hidden file, 1 FIFO)"


@pytest.mark.parametrize("special", ["fifo", "/dev/zero"])
def test_a_fifo_or_a_device_is_refused_as_not_a_regular_file(tmp_path, tok, special):
    if special == "fifo":
        os.mkfifo(tmp_path / "fifo")
    path = tmp_path / "fifo" if special == "fifo" else Path(special)
    kind = "a FIFO (named pipe)" if special == "fifo" else "a device"
    message = f"{path}: {kind}, not a regular file (expected a text file or a directory of text files); " \
              f"save it to a file first"
    with pytest.raises(MakemoreError) as e:
        prepare(path, tok, tmp_path / "s")
    assert str(e.value) == message
    with pytest.raises(MakemoreError) as e:
        documents(path)
    assert str(e.value) == message
    with pytest.raises(MakemoreError, match=re.escape(f"{kind}, not a regular file (expected a text file)")):
        next(read_pieces(path))  # opened without waiting for a writer
    with pytest.raises(MakemoreError, match=re.escape(f"{kind}, not a regular file (expected a text file)")):
        read_text(path, 100)


def test_prepare_refuses_an_output_inside_the_corpus_too_many_shards_and_an_empty_split(corpus, tok, tmp_path,
                                                                                         monkeypatch):
    from makemore import shards

    with pytest.raises(MakemoreError, match="inside the corpus"):
        prepare(corpus, tok, corpus / "shards")
    assert not (corpus / "shards").exists()
    monkeypatch.setattr(shards, "MAX_SHARDS", 8)
    with pytest.raises(MakemoreError, match="--shard-tokens 16 makes more than 4 train shards"):
        prepare(corpus, tok, tmp_path / "a" / "b" / "s", shard_tokens=16)
    assert not (tmp_path / "a").exists()  # the directories made for it are gone again
    empty = tmp_path / "empty-val"
    empty.mkdir()
    (empty / "a.txt").write_text("S")  # one character: nowhere to cut its end off at
    for i in range(3):
        (empty / f"z{i}.txt").write_text("")
    with pytest.raises(MakemoreError, match="the val documents hold no text"):
        prepare(empty, tok, tmp_path / "s2", val_fraction=0.5)
    assert not (tmp_path / "s2").exists()
    with pytest.raises(MakemoreError, match=re.escape(f"{empty / 'z0.txt'}: empty file")):  # one empty file
        prepare(empty / "z0.txt", tok, tmp_path / "s3")
    assert not (tmp_path / "s3").exists()
    assert math.isnan(bits_per_char(2.0, 10, 0))


def test_damaged_token_ids_are_refused_as_they_are_read(corpus, tok, tmp_path):
    prepare(corpus, tok, tmp_path / "s", shard_tokens=500)
    shard = tmp_path / "s" / "train_000000.bin"
    data = bytearray(shard.read_bytes())
    data[:200] = b"\xff" * 200  # token 65,535: far outside the tokenizer's vocabulary, the size unchanged
    shard.write_bytes(bytes(data))
    windows = TokenWindows(Shards(tmp_path / "s").documents("train"), 16, vocab_size=tok.vocab_size, shuffle=False)
    with pytest.raises(MakemoreError, match="outside the tokenizer's"):
        windows.rows(range(4))


def test_a_damaged_id_in_the_first_training_tokens_is_refused_before_the_run_exists(corpus, tok, tmp_path):
    """The train loss's sample (the stream's first tokens) was read without the vocabulary check: training from
    such shards died at its first evaluation with an IndexError's traceback, leaving a run with no checkpoint."""
    from typer.testing import CliRunner

    from makemore.cli import app

    prepare(corpus, tok, tmp_path / "s", shard_tokens=500)
    shard = tmp_path / "s" / "train_000000.bin"
    data = bytearray(shard.read_bytes())
    data[:2] = b"\xe8\xfd"  # token 65,000 in the first document, the size unchanged
    shard.write_bytes(bytes(data))
    result = CliRunner().invoke(app, ["train", str(tmp_path / "s"), "--n-layer", "1", "--n-embd", "16", "--n-head",
                                      "2", "--block-size", "16", "--max-steps", "2", "--batch-size", "4", "-o",
                                      str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    assert f"token id 65,000 in the training shards ({shard}, token 0) is outside the tokenizer's" \
        in result.stderr, result.stderr
    assert not (tmp_path / "run").exists()


def test_a_damaged_id_met_while_training_names_its_shard_and_marks_the_run_failed(corpus, tok, tmp_path,
                                                                                 monkeypatch):
    """An id beyond the first tokens (which are checked before the run exists) is met in a batch: the refusal
    names the shard file and the place in it, and the run is recorded as failed at the step it reached (before,
    the message named no file and `info` showed the run as not finished, as if it were still going)."""
    from typer.testing import CliRunner

    from makemore import text as _text
    from makemore.cli import app
    from makemore.rundir import RunDir

    monkeypatch.setattr(_text, "EVAL_TOKENS", 64)  # the first tokens checked: fewer than the stream's
    prepare(corpus, tok, tmp_path / "s", shard_tokens=500)
    index = json.loads((tmp_path / "s" / "index.json").read_text())
    last = [s for s in index["shards"] if s["split"] == "train"][-1]
    shard = tmp_path / "s" / last["file"]
    data = bytearray(shard.read_bytes())
    at = last["tokens"] // 2
    data[2 * at:2 * at + 2] = b"\xe8\xfd"  # token 65,000, the size unchanged
    shard.write_bytes(bytes(data))
    result = CliRunner().invoke(app, ["train", str(tmp_path / "s"), "--n-layer", "1", "--n-embd", "16", "--n-head",
                                      "2", "--block-size", "16", "--max-steps", "200", "--batch-size", "16",
                                      "--eval-interval", "1000", "-q", "-o", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    line = f"token id 65,000 in the training shards ({shard}, token {at:,}) is outside the tokenizer's"
    assert line in result.stderr, result.stderr
    summary = RunDir(tmp_path / "run").summary()
    events = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    failed = [e for e in events if e["event"] == "failed"]
    assert len(failed) == 1 and line in failed[0]["message"] and 0 < failed[0]["step"] < 200, failed
    assert summary["failed"] == failed[0]["message"] and RunDir(tmp_path / "run").status() == "failed", summary


def test_every_rank_meets_a_damaged_id_in_any_share_of_the_batch(corpus, tok, tmp_path, monkeypatch):
    """Under torchrun each rank reads only its share of a batch: a damaged id in rank 1's share stopped rank 1
    alone, and rank 0 lost its peer without recording the run as failed. The batch's rows are drawn alike on
    every rank, and the drawing checks the whole batch: every rank stops at the same step."""
    from makemore import text as _text
    from makemore.tokentext import prepare_shards

    monkeypatch.setattr(_text, "EVAL_TOKENS", 64)  # the first tokens checked before training: fewer than 3 batches
    prepare(corpus, tok, tmp_path / "s", shard_tokens=500)
    prepared = prepare_shards(tmp_path / "s", seed=0)
    block, batch = 16, 8
    windows = TokenWindows(prepared.shards.documents("train"), block, seed=0, vocab_size=tok.vocab_size)
    # the last row of batch 3 (the second rank's share of 8 rows), in the stream: its file and place
    row = 4 * batch - 1
    seg, first, _ = next(windows._pieces(row * block + 5, 1))
    shard = Path(seg.base.filename)
    at = (seg.ctypes.data - seg.base.ctypes.data) // seg.itemsize + first
    data = bytearray(shard.read_bytes())
    data[2 * at:2 * at + 2] = b"\xe8\xfd"  # token 65,000
    shard.write_bytes(bytes(data))
    batches = prepare_shards(tmp_path / "s", seed=0).batches(None, block, None)
    for _ in range(3):
        rows = batches.draw(batch, None)  # batches 0-2: whole
        # a share's rows, taken from the batch drawn (read once), are the rows the windows read
        for share in (rows, rows[1::2], rows[3:5]):
            x, y, _ = batches.micro_batch(share, None, False, None)
            want = windows.rows(share.tolist())
            assert x.numpy().tolist() == want[0].tolist() and y.numpy().tolist() == want[1].tolist()
    with pytest.raises(MakemoreError, match=re.escape(f"token id 65,000 in the training shards ({shard}, token {at:,})")):
        batches.draw(batch, None)  # batch 3: refused on drawing, whatever share a rank trains on


def test_prepare_and_tokenize_take_a_built_in_datasets_name_as_train_does(tok, tmp_path, monkeypatch):
    """datasets/README.md: a built-in dataset's name works wherever a file is expected (before, `prepare names`
    and `tokenize --file names` said there was no such file)."""
    from typer.testing import CliRunner

    from makemore.cli import app
    from makemore.data import builtin_datasets

    monkeypatch.chdir(tmp_path)
    tok.save(tmp_path / "tok.json")
    runner = CliRunner()
    made = runner.invoke(app, ["prepare", "names", "--tokenizer", "tok.json", "-o", "shards"])
    assert made.exit_code == 0, made.output
    text = builtin_datasets()["names"].read_text(encoding="utf-8")
    chars = sum(d["chars"] for d in json.loads((tmp_path / "shards" / "index.json").read_text())["documents"])
    assert chars == len(text)
    counted = runner.invoke(app, ["tokenize", "tok.json", "--file", "names", "--json"])
    assert counted.exit_code == 0, counted.output
    assert json.loads(counted.stdout)["tokens"] == len(tok.encode(text))


def test_prepare_removes_what_a_killed_prepare_left_and_refuses_an_output_made_meanwhile(tok, corpus, tmp_path,
                                                                                        monkeypatch):
    """A prepare killed mid-way left its hidden temporary (gigabytes on a real corpus) forever; two prepares into
    one -o at once ended in a traceback."""
    from typer.testing import CliRunner

    from makemore.cli import app
    from makemore import shards

    monkeypatch.chdir(tmp_path)
    tok.save(tmp_path / "tok.json")
    prefix = shards._temporary_prefix(Path("out"))
    killed = tmp_path / f"{prefix}abcd1234{shards.PREPARING}"  # nobody holds its lock: its prepare is gone
    (killed / "train").mkdir(parents=True)
    (killed / "train" / "000000.bin").write_bytes(b"\0" * 4096)
    running = tmp_path / f"{prefix}efgh5678{shards.PREPARING}"  # its prepare holds its lock
    running.mkdir()
    held = shards._hold(running)
    unknown = tmp_path / ".out.k3j4h5g6"  # named as before the lock was held: cannot be told, so said and kept
    unknown.mkdir()
    other = tmp_path / f"{shards._temporary_prefix(Path('out.v2'))}abcd1234{shards.PREPARING}"  # another output's
    other.mkdir()
    try:
        result = CliRunner().invoke(app, ["prepare", str(corpus), "--tokenizer", "tok.json", "-o", "out"])
    finally:
        os.close(held)
    assert result.exit_code == 0, result.output
    assert f"removed {killed.name} (0.0 MB), left by a prepare that was killed" in result.stderr
    assert f"note: {unknown.name} is another prepare's into out" in result.stderr
    assert f"note: {running.name} is another prepare's into out" in result.stderr and other.name not in result.stderr
    assert not killed.exists() and unknown.exists() and running.exists() and other.exists()
    assert (tmp_path / "out" / "index.json").exists()
    replace = os.replace

    def raced(src, dst):  # another prepare publishes the same output first
        Path(dst).mkdir(exist_ok=True)
        (Path(dst) / "index.json").write_text("{}")
        return replace(src, dst)

    monkeypatch.setattr(shards.os, "replace", raced)
    result = CliRunner().invoke(app, ["prepare", str(corpus), "--tokenizer", "tok.json", "-o", "other"])
    assert result.exit_code == 2 and "other: made by another process while this one prepared" in result.stderr
    assert (tmp_path / "other" / "index.json").read_text() == "{}"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".other.")]  # its temporary removed


def test_a_shard_runs_evaluation_reads_only_the_val_tokens_it_scores():
    """The whole val split was concatenated into memory for its first MAX_EVAL_TOKENS tokens."""
    import numpy as np

    from makemore.tokentext import _first_tokens

    class Unread(list):  # a document past the tokens evaluation takes: never to be read
        def __iter__(self):
            raise AssertionError("read past the tokens evaluation takes")

    docs = [[np.arange(0, 5), np.arange(5, 7)], [np.arange(7, 20)], Unread([np.arange(20, 10**6)])]
    got = _first_tokens(docs, 10)
    assert np.concatenate(got).tolist() == list(range(10)) and got[-1].base is not None  # a view, no copy
    assert np.concatenate(_first_tokens(docs[:1], 10)).tolist() == list(range(7))
    assert len(np.concatenate(_first_tokens([], 10))) == 0


def test_shards_too_short_for_one_window_are_named(tmp_path, tok):
    """The refusal named no shards: "3 tokens are fewer than one window of 17"."""
    import makemore

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("a few words\n" * 30)
    (corpus / "b.txt").write_text("and more\n" * 30)
    index = prepare(corpus, tok, tmp_path / "shards", val_fraction=0.5)
    train = index["splits"]["train"]["tokens"]
    with pytest.raises(MakemoreError, match=f"^{tmp_path / 'shards'}: the train shards hold {train} tokens, fewer "
                                            f"than one window of {train + 1}; lower --block-size"):
        makemore.train(tmp_path / "shards", block_size=train, max_steps=1, n_layer=1, n_embd=16, n_head=2,
                       out=tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()
    # the val split too short: its remedy is in `prepare` (it said "use a longer text")
    index = prepare(corpus, tok, tmp_path / "shards-short-val", val_fraction=0.1)
    val = index["splits"]["val"]["tokens"]
    assert val < index["splits"]["train"]["tokens"]
    with pytest.raises(MakemoreError, match=f"the val part \\({val} tokens\\) is shorter than one window of {val + 1} "
                                            f"tokens; lower --block-size, or prepare the shards again with a larger "
                                            f"--val-fraction"):
        makemore.train(tmp_path / "shards-short-val", block_size=val, max_steps=1, n_layer=1, n_embd=16, n_head=2,
                       out=tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_moved_shards_are_named_gone_and_taken_again_where_they_are_now(tmp_path, tok):
    """A run whose shards were moved said "not a shard directory (no index.json; make one ...)", and `train
    SHARDS --resume RUN` from their new place was refused as other data, as a moved text is not."""
    import makemore

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in ("a", "b", "c"):
        (corpus / f"{name}.txt").write_text(DOCS["g.txt"] + DOCS["a.txt"])
    prepare(corpus, tok, tmp_path / "shards", val_fraction=0.34)
    tiny = dict(block_size=8, n_layer=1, n_embd=16, n_head=2, batch_size=4, progress=False)
    run = makemore.train(tmp_path / "shards", max_steps=2, out=tmp_path / "run", **tiny).run_dir
    (tmp_path / "shards").rename(tmp_path / "moved")
    with pytest.raises(MakemoreError, match="the shards this run trained on are gone .*--resume"):
        makemore.load(run).evaluate()
    makemore.train(tmp_path / "moved", resume=run, max_steps=4, progress=False)
    assert makemore.load(run).evaluate()["loss"] > 0
    config = json.loads((run / "config.json").read_text())
    assert config["dataset"]["path"] == str((tmp_path / "moved").resolve())
    (tmp_path / "other").mkdir()  # shards of other text: still refused
    prepare(corpus / "a.txt", tok, tmp_path / "other" / "shards")
    with pytest.raises(MakemoreError, match="not the data this run was trained on"):
        makemore.train(tmp_path / "other" / "shards", resume=run, max_steps=6, progress=False)


def test_a_shard_file_the_index_does_not_list_is_said_not_read(corpus, tok, tmp_path):
    """A train_000007.bin put beside the shards was passed over without a word."""
    import shutil

    from makemore.tokentext import prepare_shards

    prepare(corpus, tok, tmp_path / "shards")
    assert "not in index.json" not in prepare_shards(tmp_path / "shards", 0).describe()
    shutil.copy(tmp_path / "shards" / "train_000000.bin", tmp_path / "shards" / "train_000007.bin")
    assert prepare_shards(tmp_path / "shards", 0).describe().endswith(
        "; 1 shard file not in index.json, not read (train_000007.bin)")
