"""Property-based tests of the reader and the encoder: any input either round-trips or is refused cleanly."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from makemore.data import EncodedWords, Vocab, read_words
from makemore.errors import MakemoreError

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

# words as the reader yields them: no line breaks, no control characters, no surrounding whitespace
word = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=12).map(str.strip).filter(bool)


def read_bytes_as_words(data: bytes, max_len: int = 64):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "words.txt"
        path.write_bytes(data)
        return read_words(path, max_len)


@SETTINGS
@given(st.binary(max_size=300))
def test_any_bytes_are_read_or_refused_cleanly(data):
    try:
        result = read_bytes_as_words(data)
    except MakemoreError as e:
        assert "\n" not in str(e)
        return
    text = data.decode("utf-8-sig")  # what was accepted is UTF-8 ...
    assert b"\x00" not in data
    for w in result.words:  # ... and every word is a clean, stripped, bounded piece of one line
        assert w and w == w.strip() and len(w) <= 64 and w in text
        assert not CONTROL.search(w)
    assert len(set(result.words)) == len(result.words)


@SETTINGS
@given(st.lists(word, min_size=1, max_size=30), st.sampled_from(["\n", "\r\n", "\r"]), st.booleans(),
       st.booleans(), st.integers(1, 12))
def test_words_round_trip_through_the_reader(words, newline, bom, trailing, max_len):
    text = newline.join(words) + (newline if trailing else "")
    data = (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8")
    unique = list(dict.fromkeys(words))
    kept = [w for w in unique if len(w) <= max_len]
    try:
        result = read_bytes_as_words(data, max_len)
    except MakemoreError as e:
        assert not kept and "longer than --max-len" in str(e)
        return
    assert result.words == kept
    assert result.duplicates == len(words) - len(unique)
    assert result.too_long == len(unique) - len(kept)
    assert result.lines == len(words)


@SETTINGS
@given(st.lists(word, min_size=1, max_size=30))
def test_encoder_round_trips(words):
    vocab = Vocab.from_words(words)
    assert len(vocab) == len(set("".join(words))) + 1
    encoded = EncodedWords(words, vocab)
    assert encoded.tokens.dtype == torch.int32
    for i, w in enumerate(words):
        row = encoded.tokens[i].tolist()
        assert row[0] == 0 and row[len(w) + 1:] == [0] * (len(row) - len(w) - 1)
        assert row[1:len(w) + 1] == vocab.encode(w)
        assert vocab.decode(row) == w
    x, y = encoded.batch(torch.arange(len(words)))
    assert x.shape == y.shape and (y != -1).sum() == sum(len(w) + 1 for w in words)


@SETTINGS
@given(st.lists(word, min_size=1, max_size=10), st.text(max_size=10))
def test_text_outside_the_vocabulary_is_refused(words, other):
    vocab = Vocab.from_words(words)
    unknown = vocab.unknown(other)
    try:
        encoded = EncodedWords([other], vocab) if other else None
    except MakemoreError as e:
        assert unknown and "not in the model's vocabulary" in str(e)
        return
    assert not unknown
    if encoded is not None:
        assert vocab.decode(encoded.tokens[0].tolist()) == other


@SETTINGS
@given(st.lists(st.text(min_size=0, max_size=2), max_size=8))
def test_any_vocabulary_list_is_accepted_or_refused_cleanly(chars):
    """What config.json may hold: an empty list, duplicates, multi-character or control entries are refused."""
    try:
        vocab = Vocab(chars)
    except MakemoreError:
        assert (not chars or len(set(chars)) != len(chars) or any(len(c) != 1 for c in chars)
                or any(CONTROL.search(c) for c in chars))
        return
    assert vocab.chars == sorted(chars) and vocab.boundary not in vocab.stoi
