"""Reading, vocabulary, splitting and encoding."""

from __future__ import annotations


import pytest
import torch

from makemore.data import EncodedWords, Vocab, read_words, resolve_dataset, split_sizes, split_words
from makemore.errors import MakemoreError


def test_encode_decode_round_trip_non_ascii():
    words = ["zoë", "ñandú", "straße", "日本", "a"]
    vocab = Vocab.from_words(words)
    for w in words:
        assert vocab.decode(vocab.encode(w)) == w
    assert vocab.chars == sorted(set("".join(words)))
    assert len(vocab) == len(set("".join(words))) + 1


def test_encoded_matrix_matches_per_word_encoding():
    words = ["zoë", "ñandú", "ab", "日本語"]
    vocab = Vocab.from_words(words)
    enc = EncodedWords(words, vocab)
    for i, w in enumerate(words):
        row = enc.tokens[i].tolist()
        assert row[0] == 0
        assert row[1:len(w) + 1] == vocab.encode(w)
        assert all(t == 0 for t in row[len(w) + 1:])


def test_batch_targets_are_shifted_and_padding_ignored():
    words = ["abc", "a"]
    vocab = Vocab.from_words(words)
    x, y = EncodedWords(words, vocab).batch(torch.tensor([0, 1]))
    assert x.shape == y.shape == (2, 4)  # longest word (3) + 1
    assert x[0].tolist() == [0, 1, 2, 3]
    assert y[0].tolist() == [1, 2, 3, 0]
    assert x[1].tolist()[:2] == [0, 1]
    assert y[1].tolist() == [1, 0, -1, -1]


def test_packed_batch_holds_every_word_once_with_positions_from_its_start():
    words = ["abcdef", "a", "bb", "cab", "f", "edcba", "ab"]
    vocab = Vocab.from_words(words)
    enc = EncodedWords(words, vocab)
    index = torch.tensor([0, 1, 2, 3, 4, 5, 6, 2])  # a word drawn twice is packed twice
    x, y, pos = enc.packed_batch(index, row_len=8)
    assert x.shape == y.shape == pos.shape and x.size(1) == 8
    found = []
    for r in range(x.size(0)):
        starts = [c for c in range(8) if pos[r, c] == 0 and y[r, c] != -1]
        for s in starts:
            n = 0
            while s + n < 8 and y[r, s + n] != -1 and (n == 0 or pos[r, s + n] == n):
                n += 1
            assert x[r, s].item() == 0  # each word starts with the start token
            assert y[r, s + n - 1].item() == 0  # and ends with the stop token
            assert x[r, s + 1:s + n].tolist() == y[r, s:s + n - 1].tolist()  # targets are the inputs shifted
            found.append(vocab.decode(y[r, s:s + n - 1].tolist()))
    assert sorted(found) == sorted(words[i] for i in index.tolist())
    assert int((y != -1).sum()) == sum(len(words[i]) + 1 for i in index.tolist())
    assert x.size(0) < len(index)  # several words share a row


def test_packed_batch_refuses_a_word_longer_than_the_row():
    enc = EncodedWords(["abcdefgh", "a"], Vocab.from_words(["abcdefgh"]))
    with pytest.raises(ValueError, match="does not fit"):
        enc.packed_batch(torch.tensor([0, 1]), row_len=8)


def test_unknown_character_is_an_error_naming_it():
    vocab = Vocab.from_words(["abc"])
    with pytest.raises(MakemoreError, match="'z'"):
        EncodedWords(["abz"], vocab)
    with pytest.raises(MakemoreError, match="'q'"):
        vocab.encode("q")


def test_split_is_deterministic_and_disjoint():
    words = [f"w{i}" for i in range(5000)]
    a = split_words(words, seed=7)
    b = split_words(words, seed=7)
    c = split_words(words, seed=8)
    assert a == b
    assert a != c
    train, val, test = a
    assert len(val) == len(test) == 500
    assert len(train) + len(val) + len(test) == len(words)
    assert not (set(train) & set(test)) and not (set(train) & set(val)) and not (set(val) & set(test))


def test_split_sizes_cap_at_1000():
    assert split_sizes(32_000) == (1000, 1000)
    assert split_sizes(50) == (5, 5)
    assert split_sizes(3) == (0, 0)


def test_reader_strips_dedupes_and_counts(tmp_path):
    p = tmp_path / "w.txt"
    p.write_bytes("\ufeffemma\r\n  olivia \r\n\r\nemma\rava\n   \nolivia".encode("utf-8"))
    wl = read_words(p)
    assert wl.words == ["emma", "olivia", "ava"]
    assert wl.duplicates == 2
    assert wl.empty == 2


def test_a_byte_order_mark_starting_a_later_line_is_removed_and_counted(tmp_path):
    """Two lists that each began with a byte-order mark, joined by `cat`: the second's mark became the first
    character of a word ('\ufeffcarl', not a duplicate of 'carl') and of the vocabulary, unsaid."""
    from makemore.training import words_read

    p = tmp_path / "joined.txt"
    p.write_bytes("\ufeffanna\nbob\n".encode("utf-8") + "\ufeffcarl\nanna\n \ufeffbob\ncarl\n".encode("utf-8"))
    wl = read_words(p)
    assert wl.words == ["anna", "bob", "carl"] and wl.duplicates == 3 and wl.marks == 2
    said = words_read(type("Prepared", (), {"words": wl, "path": p})(), 64)
    assert said.endswith("3 words (dropped 3 duplicates; removed 2 byte-order marks starting a line)"), said
    plain = tmp_path / "plain.txt"
    plain.write_text("anna\nbob\n", encoding="utf-8")
    assert read_words(plain).marks == 0 and "byte-order" not in words_read(
        type("Prepared", (), {"words": read_words(plain), "path": plain})(), 64)


def test_names_txt_duplicates_are_dropped(names_path):
    wl = read_words(names_path)
    assert wl.lines == 32_033  # 32,032 line breaks; the last name has none
    assert len(wl.words) + wl.duplicates == 32_033
    assert 2000 < wl.duplicates < 3000  # about 2,500 repeated names in the file
    assert len(set(wl.words)) == len(wl.words)


def test_builtin_dataset_resolves_by_name():
    name, path = resolve_dataset("names")
    assert name == "names" and path.is_file()
    assert len(read_words(path).words) > 1000


@pytest.mark.parametrize("content, message", [
    (b"", "empty file"),
    (b"  \n\t\n", "no words"),
    (b"ab\x00cd\n", "binary"),
    (b"caf\xe9\n", "not UTF-8"),
])
def test_reader_refuses_bad_files(tmp_path, content, message):
    p = tmp_path / "bad.txt"
    p.write_bytes(content)
    with pytest.raises(MakemoreError, match=message) as e:
        read_words(p)
    assert str(p) in str(e.value)


