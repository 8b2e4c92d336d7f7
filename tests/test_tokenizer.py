"""Byte-level BPE: round trips, the pre-split, special tokens, the file format, streaming decode."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from makemore.errors import MakemoreError
from makemore.tokenizer import END_OF_TEXT, PATTERNS, Tokenizer, readable, safe_cuts

SHAKESPEARE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "tinyshakespeare.txt"
TRAIN_TEXT = """First Citizen:
Before we proceed any further, hear me speak.

All:
Speak, speak.

First Citizen:
You are all resolved rather to die than to famish?

All:
Resolved. resolved.

First Citizen:
First, you know Caius Marcius is chief enemy to the people. 12345 don't, WON'T; they're 3.14159!
""" * 3
UNSEEN = [
    "Hello, world! 😀🎉 👩‍👩‍👧 (a family emoji with joiners)",
    "한국어 텍스트는 어떻게 토큰화될까요?",
    "combining: e\u0301 a\u0300 n\u0303 o\u0308\u0304, precomposed: é à ñ",
    "tabs\tand  runs   of    spaces\r\nand CRLF\n\n\n",
    "   leading and trailing spaces   ",
    "",
    "x",
    "<|endoftext|> in the middle of <|endoftext|>text",
    "\u0000\u0001 control \x7f and \ufeff BOM",
]


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    return Tokenizer.train([TRAIN_TEXT], vocab_size=400)


def test_layout_bytes_then_merges_then_end_of_text(tok):
    assert tok.token_bytes[:256] == [bytes([b]) for b in range(256)]
    V = tok.vocab_size
    assert tok.eot_id == V - 1 and tok.token_bytes[V - 1] == END_OF_TEXT.encode()
    # every merged token is the concatenation of its two parts, and is created after both
    for a, b, new in tok.merges:
        assert tok.token_bytes[new] == tok.token_bytes[a] + tok.token_bytes[b]
        assert a < new and b < new
    assert sorted({new for _, _, new in tok.merges}) == list(range(256, V - 1))


def test_vocab_size_is_what_was_asked_unless_the_text_runs_out_of_pairs(tok):
    assert Tokenizer.train([TRAIN_TEXT], vocab_size=300).vocab_size == 300
    # 400 asks for more merges than this short text has pairs: BPE stops when every piece is one token
    assert tok.vocab_size < 400
    assert all(len(tok.encode(piece)) == 1 for piece in tok.pre_split(TRAIN_TEXT))


def test_round_trip_on_training_text(tok):
    ids = tok.encode(TRAIN_TEXT)
    assert tok.decode(ids) == TRAIN_TEXT
    assert len(ids) < len(TRAIN_TEXT.encode()) / 2  # it learned merges that compress its own text


@pytest.mark.parametrize("text", UNSEEN)
def test_round_trip_on_unseen_text(tok, text):
    assert tok.decode(tok.encode(text)) == text


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_round_trip_on_any_text(tok, text):
    assert tok.decode(tok.encode(text)) == text


def test_encoding_follows_merge_ranks_like_the_lectures_loop(tok):
    """Encode as the lecture does (repeatedly merge the pair of lowest rank, within each pre-split piece)."""
    rank = {(a, b): (r, new) for r, (a, b, new) in enumerate(tok.merges)}

    def lecture_encode(text: str) -> list[int]:
        out = []
        for piece in tok.pre_split(text):
            ids = list(piece.encode())
            while len(ids) >= 2:
                pairs = [(rank.get(p, (float("inf"),))[0], p) for p in zip(ids, ids[1:])]
                best, pair = min(pairs)
                if best == float("inf"):
                    break
                new, i, merged = rank[pair][1], 0, []
                while i < len(ids):
                    if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
                        merged.append(new)
                        i += 2
                    else:
                        merged.append(ids[i])
                        i += 1
                ids = merged
            out.extend(ids)
        return out

    for text in [TRAIN_TEXT[:500], *UNSEEN[:3]]:
        assert tok.encode(text) == lecture_encode(text)


def test_invalid_utf8_token_sequences_decode_with_replacement(tok):
    euro = "€".encode()  # e2 82 ac
    assert tok.decode([euro[0]]) == "\ufffd"
    assert tok.decode([euro[0], euro[1]]) == "\ufffd"  # truncated: one replacement for the maximal prefix
    assert tok.decode([0x80]) == "\ufffd"  # a lone continuation byte
    assert tok.decode([euro[0], ord("a")]) == "\ufffda"
    assert tok.decode([0xFF, 0xFE]) == "\ufffd\ufffd"
    assert tok.decode(list(euro)) == "€"


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_stream_decoder_equals_decoding_the_whole(tok, data):
    ids = data.draw(st.lists(st.integers(0, tok.vocab_size - 1), max_size=40))
    stream = tok.stream()
    parts = [stream.push(i) for i in ids]
    assert "".join(parts) + stream.flush() == tok.decode(ids)


def test_stream_holds_back_an_incomplete_character_until_it_completes(tok):
    stream = tok.stream()
    snowman = "☃".encode()
    assert [stream.push(b) for b in snowman] == ["", "", "☃"]
    assert stream.push(snowman[0]) == ""
    assert stream.push(ord("x")) == "\ufffdx"  # it cannot complete any more: replaced at once
    assert stream.push(snowman[0]) == ""
    assert stream.flush() == "\ufffd"


GPT4_CASES = "Hello world!!  123456 don't  \n\n  café 한국어 😀 e\u0301 x\r\n I'M HERE 1,000,000.50\t\tend"


@pytest.mark.parametrize("pattern", sorted(PATTERNS))
def test_pre_split_equals_the_regex_module(pattern):
    regex = pytest.importorskip("regex")
    tok = Tokenizer.train(["abc def"], vocab_size=260, pattern=pattern)
    for text in [GPT4_CASES, TRAIN_TEXT, *UNSEEN]:
        assert tok.pre_split(text) == regex.findall(PATTERNS[pattern], text)


@pytest.mark.parametrize("pattern", sorted(PATTERNS))
def test_no_token_crosses_a_letter_space_boundary(pattern):
    # A text where "e t" and "he " are by far the most frequent pairs of bytes across words: without the
    # pre-split BPE would merge across the spaces.
    text = "the the the the tea thee " * 200
    tok = Tokenizer.train([text], vocab_size=300, pattern=pattern)
    for text in [text, TRAIN_TEXT]:
        for i in tok.encode(text):
            s = tok.token_bytes[i].decode("utf-8", errors="replace")
            for left, right in zip(s, s[1:]):
                assert not (left.isalpha() and right.isspace()), (s, "letter then space in one token")
            assert not (s[:1].isalpha() and any(c.isspace() for c in s)), s


def test_gpt4_pattern_splits_digits_in_threes_and_gpt2_does_not():
    four = Tokenizer.train(["1234567"], vocab_size=270, pattern="gpt4")
    two = Tokenizer.train(["1234567"], vocab_size=270, pattern="gpt2")
    assert four.pre_split("1234567") == ["123", "456", "7"]
    assert two.pre_split("1234567") == ["1234567"]


def test_special_token_never_from_plain_text_and_always_its_id(tok):
    text = f"a{END_OF_TEXT}b {END_OF_TEXT}"
    ids = tok.encode(text)
    assert tok.eot_id not in ids
    assert tok.decode(ids) == text
    for text in UNSEEN + [TRAIN_TEXT]:
        assert tok.eot_id not in tok.encode(text)
    for other in tok.encode_batch(UNSEEN):
        assert tok.eot_id not in other
    # the id always decodes to its text, and a stream built with it keeps it where it was put
    assert tok.decode([tok.eot_id]) == END_OF_TEXT
    docs = ["one doc", "another"]
    stream = [t for d in docs for t in [tok.eot_id, *tok.encode(d)]]
    assert tok.decode(stream) == "".join(END_OF_TEXT + d for d in docs)
    # and the library itself, asked for the special token's id, agrees
    assert tok._hf.token_to_id(END_OF_TEXT) == tok.eot_id


def test_file_round_trip(tok, tmp_path):
    path = tmp_path / "tok.json"
    tok.save(path)
    spec = json.loads(path.read_text())
    assert spec["model"]["type"] == "BPE"
    back = Tokenizer.load(path)
    assert back.sha256 == tok.sha256 and back.token_bytes == tok.token_bytes and back.merges == tok.merges
    assert back.eot_id == tok.eot_id and back.pattern == "gpt4"
    for text in [TRAIN_TEXT, *UNSEEN]:
        assert back.encode(text) == tok.encode(text)


def test_file_loads_in_the_library_as_it_is(tok, tmp_path):
    from tokenizers import Tokenizer as HF

    path = tmp_path / "tok.json"
    tok.save(path)
    hf = HF.from_file(str(path))
    assert hf.encode(TRAIN_TEXT[:300]).ids == tok.encode(TRAIN_TEXT[:300])
    assert hf.decode(tok.encode("Speak, speak.")) == "Speak, speak."


@pytest.mark.parametrize("change, message", [
    (lambda s: s.update(model={**s["model"], "type": "WordPiece"}),
     r"not a tokenizer.json file of byte-level BPE \(its model has type .WordPiece.\)"),
    (lambda s: s.update(normalizer={"type": "Lowercase"}), "normalizer"),
    (lambda s: s.update(added_tokens=[]), "endoftext"),
    (lambda s: s["model"]["vocab"].update({"ĠĠĠĠĠĠĠĠĠĠ": s["model"]["vocab"].pop("Ā")}), "bytes have no token"),
    (lambda s: s["model"]["merges"].append(["zz", "q"]), "not in the vocabulary|cannot read"),
    (lambda s: s["pre_tokenizer"]["pretokenizers"][1].update(add_prefix_space=True), "add_prefix_space"),
    (lambda s: s["model"]["vocab"].update({"ĠĠĠĠĠĠĠĠĠĠ": 5}), "each once"),
    # a content that is a list or an object was counted before it was checked: a TypeError's traceback
    (lambda s: s["added_tokens"].append({"content": [1], "id": 300, "special": True}), "without content or id"),
    (lambda s: s["added_tokens"].append({"content": {"x": 1}, "id": 300}), "without content or id"),
])
def test_bad_files_are_refused_with_the_reason(tok, tmp_path, change, message):
    spec = json.loads(tok.to_json())
    change(spec)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(spec))
    with pytest.raises(MakemoreError, match=message):
        Tokenizer.load(path)


def _split_step(spec: dict) -> dict:
    return spec["pre_tokenizer"]["pretokenizers"][0]


@pytest.mark.parametrize("change, message", [
    (lambda s: s.update(decoder="ByteLevel"), "decoder is a string, expected an object"),
    (lambda s: s.update(pre_tokenizer="x"), "pre_tokenizer is a string, expected an object"),
    (lambda s: _split_step(s).update(pattern="abc"),
     'pre_tokenizer.pretokenizers[0].pattern is a string, expected an object such as {"Regex": "..."}'),
    (lambda s: _split_step(s).update(pattern=["Regex"]),
     'pre_tokenizer.pretokenizers[0].pattern is a list, expected an object such as {"Regex": "..."}'),
    (lambda s: _split_step(s).update(invert="no"),
     "pre_tokenizer.pretokenizers[0].invert is a string, expected true or false"),
    (lambda s: s["pre_tokenizer"].update(pretokenizers={"type": "ByteLevel"}),
     "pre_tokenizer.pretokenizers is an object, expected a list"),
    (lambda s: s["pre_tokenizer"]["pretokenizers"].__setitem__(0, "Split"),
     "pre_tokenizer.pretokenizers[0] is a string, expected an object"),
    (lambda s: s["pre_tokenizer"]["pretokenizers"][1].update(add_prefix_space="no"),
     "pre_tokenizer.pretokenizers[1].add_prefix_space is a string, expected true or false"),
    (lambda s: s["pre_tokenizer"]["pretokenizers"][1].update(use_regex=0),
     "pre_tokenizer.pretokenizers[1].use_regex is a number, expected true or false"),
    (lambda s: s.update(model="BPE"), "model is a string, expected an object"),
    (lambda s: s.update(added_tokens=7), "added_tokens is a number, expected a list"),
])
def test_parts_of_the_wrong_json_type_are_refused_by_name(tok, tmp_path, change, message):
    path, said = _refusal(tok, tmp_path, change)
    assert said == f"{path}: {message}"


def _refusal(tok, tmp_path, change) -> tuple[Path, str]:
    """The file of ``tok`` edited by ``change``, and what loading it is refused with."""
    spec = json.loads(tok.to_json())
    change(spec)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(spec))
    with pytest.raises(MakemoreError) as e:
        Tokenizer.load(path)
    return path, str(e.value)


def _prepend_end_of_text(spec: dict) -> dict:
    """A post-processor that puts <|endoftext|> before every text (as BERT's template puts [CLS])."""
    eot = next(t["id"] for t in spec["added_tokens"] if t["content"] == END_OF_TEXT)
    return {"type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": END_OF_TEXT, "type_id": 0}},
                       {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {END_OF_TEXT: {"id": END_OF_TEXT, "ids": [eot], "tokens": [END_OF_TEXT]}}}


TRUNCATION = {"direction": "Right", "max_length": 5, "strategy": "LongestFirst", "stride": 0}


# Each of these the library applies though makemore never writes it: unrefused, the text is cut, padded, given
# an end-of-text id, encoded at random, or the library panics (stride >= max_length, a "##" prefix).
@pytest.mark.parametrize("change, field, shown", [
    (lambda s: s.update(truncation=TRUNCATION), "truncation", "an object"),
    (lambda s: s.update(truncation={**TRUNCATION, "stride": 5}), "truncation", "an object"),
    (lambda s: s.update(padding={"strategy": {"Fixed": 50}, "direction": "Right", "pad_to_multiple_of": None,
                                 "pad_id": 0, "pad_type_id": 0, "pad_token": "!"}), "padding", "an object"),
    (lambda s: s.update(post_processor=_prepend_end_of_text(s)), "post_processor", "an object"),
    (lambda s: s["model"].update(end_of_word_suffix="</w>"), "model.end_of_word_suffix", '"</w>"'),
    (lambda s: s["model"].update(continuing_subword_prefix="##"), "model.continuing_subword_prefix", '"##"'),
    (lambda s: s["model"].update(dropout=0.9), "model.dropout", "0.9"),
    (lambda s: s["model"].update(unk_token="!"), "model.unk_token", '"!"'),
    (lambda s: s["model"].update(fuse_unk=True), "model.fuse_unk", "true"),
    (lambda s: s["model"].update(byte_fallback=True), "model.byte_fallback", "true"),
    (lambda s: s["model"].update(ignore_merges=True), "model.ignore_merges", "true"),
    (lambda s: s["model"].update(ignore_merges=0), "model.ignore_merges", "0"),
])
def test_library_extras_makemore_never_writes_are_refused_by_name(tok, tmp_path, change, field, shown):
    path, said = _refusal(tok, tmp_path, change)
    written = "false" if field in ("model.fuse_unk", "model.byte_fallback", "model.ignore_merges") else "none"
    assert said == f"{path}: {field} is {shown}; makemore's tokenizers have {written} (an edited file?)"


def test_library_extras_absent_or_null_load_and_round_trip(tok, tmp_path):
    spec = json.loads(tok.to_json())
    for key in ["truncation", "padding", "post_processor"]:
        del spec[key]
    for key in ["dropout", "unk_token", "continuing_subword_prefix", "end_of_word_suffix", "ignore_merges"]:
        del spec["model"][key]
    spec["model"].update(fuse_unk=None, byte_fallback=False)
    path = tmp_path / "tok.json"
    path.write_text(json.dumps(spec))
    back = Tokenizer.load(path)
    for text in [TRAIN_TEXT, *UNSEEN]:
        assert back.encode(text) == tok.encode(text) and back.decode(back.encode(text)) == text


def test_a_merge_into_a_token_not_in_the_vocabulary_is_refused_before_the_library_reads_it(tok, tmp_path):
    spec = json.loads(tok.to_json())
    spec["model"]["merges"].append(["Ġt", "Ġt"])  # "ĠtĠt" is not a token (some versions of the library panic)
    path = tmp_path / "tok.json"
    path.write_text(json.dumps(spec))
    with pytest.raises(MakemoreError) as e:
        Tokenizer.load(path)
    assert str(e.value) == f"{path}: the merge 'Ġt' + 'Ġt' names a token not in the vocabulary"
    spec["model"]["merges"][-1] = spec["model"]["merges"][0]  # one merge at two ranks: its count said 43, listed 44
    path.write_text(json.dumps(spec))
    with pytest.raises(MakemoreError, match=r"the merge .* is listed twice$"):
        Tokenizer.load(path)


def test_encode_never_lets_the_library_add_special_tokens(tok):
    from tokenizers.processors import TemplateProcessing

    back = Tokenizer.from_bytes(tok.to_json())
    # a post-processor set behind the file check's back: encode must not apply it
    back._hf.post_processor = TemplateProcessing(single=f"{END_OF_TEXT} $A",
                                                 special_tokens=[(END_OF_TEXT, tok.eot_id)])
    assert back._hf.encode("hi").ids[0] == tok.eot_id
    assert back.encode("hi") == tok.encode("hi") and back.encode_batch(["hi"]) == [tok.encode("hi")]


def test_library_panics_become_one_line_errors_naming_the_file(tok, monkeypatch):
    import makemore.tokenizer as t

    class PanicException(BaseException):  # as pyo3's: not an Exception
        pass

    def panic(*args, **kwargs):
        raise PanicException("range end index 6 out of range\nfor slice of length 5")

    back = Tokenizer.from_bytes(tok.to_json(), "tok.json")
    back._hf = SimpleNamespace(encode=panic, encode_batch_fast=panic,
                               pre_tokenizer=SimpleNamespace(pre_tokenize_str=panic))
    for call, failed in [(back.encode, "failed to encode"), (lambda s: back.encode_batch([s]), "failed to encode"),
                         (back.pre_split, "failed to pre-split")]:
        with pytest.raises(MakemoreError) as e:
            call("hi")
        assert str(e.value) == (f"tok.json: the tokenizers library {failed} "
                                "(range end index 6 out of range for slice of length 5)")  # one line
    monkeypatch.setattr(t, "_library", lambda: SimpleNamespace(Tokenizer=SimpleNamespace(from_str=panic)))
    with pytest.raises(MakemoreError, match=r"^tok.json: the tokenizers library cannot read it \(range end"):
        Tokenizer.from_bytes(tok.to_json(), "tok.json")

    def interrupt(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(t, "_library", lambda: SimpleNamespace(Tokenizer=SimpleNamespace(from_str=interrupt)))
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C stays Ctrl-C
        Tokenizer.from_bytes(tok.to_json(), "tok.json")


def test_not_json_too_big_and_missing(tmp_path):
    (tmp_path / "a.json").write_bytes(b"\x80\x03}q\x00.")  # a pickle
    with pytest.raises(MakemoreError, match=r"a.json: not UTF-8 \(expected tokenizer JSON\)"):
        Tokenizer.load(tmp_path / "a.json")
    (tmp_path / "b.json").write_text('{"model": ')
    with pytest.raises(MakemoreError, match=r"b.json: not valid tokenizer JSON \(Expecting value at line 1"):
        Tokenizer.load(tmp_path / "b.json")
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(MakemoreError, match="deep.json: tokenizer JSON nested too deeply"):
        Tokenizer.load(tmp_path / "deep.json")
    with pytest.raises(MakemoreError, match="a directory, not a file"):
        Tokenizer.load(tmp_path)
    with pytest.raises(MakemoreError, match="no such file"):
        Tokenizer.load(tmp_path / "missing.json")
    import makemore.tokenizer as t

    big = tmp_path / "big.json"
    big.write_bytes(b" " * 2048)
    old, t.MAX_FILE_BYTES = t.MAX_FILE_BYTES, 1024
    try:
        with pytest.raises(MakemoreError, match="larger than"):
            Tokenizer.load(big)
    finally:
        t.MAX_FILE_BYTES = old


def test_bad_training_options():
    with pytest.raises(MakemoreError, match="vocab-size"):
        Tokenizer.train(["abc"], vocab_size=256)
    with pytest.raises(MakemoreError, match="pattern"):
        Tokenizer.train(["abc"], vocab_size=300, pattern="gpt3")


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.sampled_from("ab \n\t\r.X1'éΩ中ǅʰ\u0301"), max_size=300), st.integers(1, 40),
       st.booleans())
def test_safe_cuts_pre_split_like_the_whole(text, size, spaces):
    """Cut after a lone line break, and (``spaces``) before a space between two letters."""
    pieces = list(safe_cuts(text, size, spaces=spaces))
    assert "".join(pieces) == text
    regex = pytest.importorskip("regex")
    for pattern in PATTERNS.values():
        assert [m for p in pieces for m in regex.findall(pattern, p)] == regex.findall(pattern, text)


def test_long_text_encodes_as_a_whole(tok, monkeypatch):
    import makemore.tokenizer as t

    monkeypatch.setattr(t, "CHUNK_CHARS", 64)
    assert tok.encode(TRAIN_TEXT) == tok._hf.encode(TRAIN_TEXT).ids
    # a text without line breaks is cut before spaces, and encoded a group of pieces at a time, as a whole
    monkeypatch.setattr(t, "GROUP_CHARS", 64)
    monkeypatch.setattr(t, "MIN_PIECE_CHARS", 16)
    flat = TRAIN_TEXT.replace("\n", " ")
    assert len(list(safe_cuts(flat, 64))) == 1 and len(list(safe_cuts(flat, 64, spaces=True))) > 5
    calls = []
    encode = tok._hf.encode_batch_fast
    monkeypatch.setattr(tok, "_hf", SimpleNamespace(encode_batch_fast=lambda pieces, **kw: calls.append(pieces)
                                                    or encode(pieces, **kw)))
    got = tok.encode_arrays([flat, TRAIN_TEXT])
    monkeypatch.undo()
    assert got[0].tolist() == tok._hf.encode(flat).ids and got[1].tolist() == tok._hf.encode(TRAIN_TEXT).ids
    assert len(calls) > 5 and max(sum(map(len, c)) for c in calls) < 200  # a group of small pieces at a time


def test_training_hands_the_library_small_pieces_and_learns_what_the_whole_teaches(monkeypatch):
    """A text whose lines end in a space (no line break to cut at) was handed to the library whole, at some 130
    bytes a character (1.3 GB for 10 MB): it is cut before spaces too, into pieces of ``TRAIN_PIECE_CHARS``,
    and learns the same merges."""
    import makemore.tokenizer as t

    text = (TRAIN_TEXT.replace("\n", " \n") + " ") * 4
    whole = Tokenizer.train([text], vocab_size=300).to_json()
    handed = []
    cuts = t.safe_cuts
    monkeypatch.setattr(t, "TRAIN_PIECE_CHARS", 64)
    monkeypatch.setattr(t, "safe_cuts", lambda *a, **kw: (handed.append(p) or p for p in cuts(*a, **kw)))
    assert Tokenizer.train([text], vocab_size=300).to_json() == whole
    assert len(handed) > 10 and max(map(len, handed)) < 200


def test_readable_merges(tok):
    new, a, b, merged = tok.merge_list()[0]
    assert merged == a + b and readable(merged).startswith("'")
    assert readable(b"\xe2\x82") == "b'\\xe2\\x82'"
    assert readable("é".encode()) == "'é'"


@pytest.mark.skipif(not SHAKESPEARE.exists(), reason="Tiny Shakespeare not beside the repository")
def test_shakespeare_round_trip_and_compression():
    text = SHAKESPEARE.read_text()
    tok = Tokenizer.train([text], vocab_size=512)
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert 1.8 < len(text) / len(ids) < 3.0  # 255 merges: about two characters a token


# --- the commands ------------------------------------------------------------------------------------

def test_commands_train_tokenize_and_list_merges(tmp_path):
    import subprocess
    import sys

    from typer.testing import CliRunner

    from makemore.cli import app

    runner = CliRunner()
    (tmp_path / "play.txt").write_text(TRAIN_TEXT)
    out = tmp_path / "tok.json"
    result = runner.invoke(app, ["tokenizer", "train", str(tmp_path / "play.txt"), "--vocab-size", "300",
                                 "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert f"300 tokens ({300 - 257} merges)" in result.output and out.exists()
    tok = Tokenizer.load(out)

    result = runner.invoke(app, ["tokenize", str(out), "Speak, speak."])
    assert result.exit_code == 0, result.output
    ids = tok.encode("Speak, speak.")
    assert " ".join(map(str, ids)) in result.output
    assert f"{len(ids)} tokens · 13 characters · 13 bytes" in result.output
    crlf = runner.invoke(app, ["tokenize", str(out), "to be\r\nor not\r", "--json"])  # as --file reads line ends
    assert json.loads(crlf.output)["ids"] == tok.encode("to be\nor not\n")
    one = runner.invoke(app, ["tokenize", str(out), "a"])
    assert "1 token · 1 character · 1 byte ·" in one.output, one.output

    result = runner.invoke(app, ["tokenize", str(out), "--file", str(tmp_path / "play.txt"), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["ids"] == tok.encode(TRAIN_TEXT) and tok.decode(data["ids"]) == TRAIN_TEXT
    assert data["chars_per_token"] == pytest.approx(len(TRAIN_TEXT) / len(data["ids"]), abs=1e-4)
    assert data["compression_ratio"] == pytest.approx(len(TRAIN_TEXT.encode()) / len(data["ids"]), abs=1e-4)

    result = runner.invoke(app, ["tokenize", "--merges", str(out), "-n", "5"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()[1:]
    assert len(lines) == 5
    for rank, line in enumerate(lines):
        a, b, new = tok.merges[rank]
        assert readable(tok.token_bytes[new]) in line and f"id {new}" in line

    # bad input: one line, exit 2; no traceback, and refusals do not import torch
    code = ("import sys; from makemore.cli import app; sys.argv = ['makemore', 'tokenizer', 'train', 'x.txt', "
            "'--vocab-size', '300', '-o', 'o.json', '--pattern', 'gpt3']\n"
            "try:\n    app()\nexcept SystemExit as e:\n    code = e.code\n"
            "assert 'torch' not in sys.modules and 'tokenizers' not in sys.modules, 'heavy import'\n"
            "sys.exit(code)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.strip() == "error: --pattern gpt3: expected one of gpt4, gpt2"
    (tmp_path / "bad.json").write_text("{}")
    result = runner.invoke(app, ["tokenize", str(tmp_path / "bad.json"), "x"])
    assert result.exit_code == 2 and "not a tokenizer.json file" in result.output
    # -n without --merges was ignored; a text of bytes that are not UTF-8 (a command line keeps them as
    # surrogates) was blamed on the tokenizer file
    result = runner.invoke(app, ["tokenize", str(out), "abc", "-n", "3"])
    assert result.exit_code == 2 and result.stderr == "error: -n applies to --merges (how many merges it lists)\n"
    result = runner.invoke(app, ["tokenize", str(out), "a\udcffb"])
    assert result.exit_code == 2 and result.stderr == "error: the text to tokenize: not UTF-8 (byte 0xff)\n", \
        result.stderr


def test_command_refuses_an_edited_tokenizer_in_one_line(tok, tmp_path):
    """A "##" prefix makes the library panic as it reads the file (a Rust backtrace on stderr under
    RUST_BACKTRACE=1, then a Python traceback): makemore refuses the file before the library sees it."""
    import os
    import subprocess
    import sys

    spec = json.loads(tok.to_json())
    spec["model"]["continuing_subword_prefix"] = "##"
    (tmp_path / "bad.json").write_text(json.dumps(spec))
    proc = subprocess.run([sys.executable, "-m", "makemore", "tokenize", "bad.json", "hi"], capture_output=True,
                          text=True, cwd=tmp_path, env={**os.environ, "RUST_BACKTRACE": "1"})
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines() == ["error: bad.json: model.continuing_subword_prefix is \"##\"; makemore's "
                                        "tokenizers have none (an edited file?)"]


def test_training_runs_where_ctrl_c_reaches_it_and_its_errors_come_back():
    """The library's training is native code a signal handler waits on: run in a worker while the main thread
    waits, Ctrl-C ends the wait at once (before, only when every merge was learned)."""
    import os
    import signal
    import threading
    import time

    from makemore.tokenizer import _interruptible

    def fails():
        raise MakemoreError("from the worker")

    with pytest.raises(MakemoreError, match="from the worker"):
        _interruptible(fails)
    assert _interruptible(lambda: 42) == 42
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    start = time.monotonic()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        _interruptible(lambda: time.sleep(5))  # a call that keeps its thread out of Python, as training does
    assert time.monotonic() - start < 2


def test_a_regex_of_the_files_own_that_panics_is_one_line(tok, tmp_path):
    """A tokenizer.json whose pre-split regex backtracks without end makes the library panic: its native code
    printed a report (187 lines with RUST_BACKTRACE=1) before the one-line error. Text it can split is unaffected,
    and what the library prints without failing still reaches standard error."""
    import os
    import subprocess
    import sys

    spec = json.loads(tok.to_json())
    spec["pre_tokenizer"]["pretokenizers"][0]["pattern"] = {"Regex": "(a+)+$"}
    path = tmp_path / "evil.json"
    path.write_text(json.dumps(spec))
    run = lambda text: subprocess.run([sys.executable, "-m", "makemore", "tokenize", str(path), text],
                                      capture_output=True, text=True, timeout=60,
                                      env={**os.environ, "RUST_BACKTRACE": "1"})
    failed = run("hello there " + "a" * 40 + "b")
    assert failed.returncode == 2 and failed.stderr.count("\n") == 1, failed.stderr
    assert failed.stderr.startswith(f"error: {path}: the tokenizers library failed to encode"), failed.stderr
    fine = run("hello")
    assert fine.returncode == 0 and fine.stderr == "" and "5 characters" in fine.stdout, fine.stderr
