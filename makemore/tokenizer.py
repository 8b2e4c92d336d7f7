"""Byte-level BPE, as in the tokenizer lecture: 256 byte tokens, merges of the most frequent pair, a regex
pre-split so that merges never cross letters, digits, punctuation and spaces, and special tokens outside BPE.

Training and encoding run in the `tokenizers` library (Rust, parallel); the file is its standard
``tokenizer.json``, which the Hugging Face ecosystem loads as it is. What the lecture makes visible stays visible
here: the ids are laid out as in GPT-2 (ids 0..255 are the bytes 0..255, then one id per merged token in the
order BPE created it, then ``<|endoftext|>``), ``merges`` lists the merges in rank order as byte strings, and
``token_bytes`` maps every id to the bytes it stands for. Decoding joins those bytes and replaces invalid UTF-8
(``errors="replace"``); ``StreamDecoder`` does the same one token at a time, holding back an incomplete
character until it completes or can no longer complete.

Special tokens are never produced from plain text: ``encode`` treats the text ``<|endoftext|>`` as the 13
characters it is, and the end-of-text id enters a token stream only where a caller puts ``eot_id``.
"""

from __future__ import annotations

import codecs
import hashlib
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

from makemore.errors import MakemoreError
from makemore.files import parse_json, read_limited

# The pre-split patterns of tiktoken's GPT-2 and GPT-4 (cl100k) encodings.
PATTERNS = {
    "gpt4": r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+""",
    "gpt2": r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""",
}
END_OF_TEXT = "<|endoftext|>"
MAX_FILE_BYTES = 64 << 20  # a 200k-token vocabulary is ~10 MB of JSON
MAX_VOCAB = 1 << 24  # ids are stored as uint32 at most; far beyond any sensible vocabulary
CHUNK_CHARS = 1 << 20  # text is handed to the library in pieces of about this size, cut where the pre-split cuts
GROUP_CHARS = 1 << 20  # characters encoded by one call of the library, in parallel pieces: its encodings take
# some 100 bytes a character while they live (more on machines of many cores: a piece for each)
MIN_PIECE_CHARS = 1 << 16
TRAIN_PIECE_CHARS = 1 << 16  # what training hands the library at a time (it buffers 256 pieces)
# Parts of the file the library applies and makemore never sets, with the value makemore writes (absent is the
# same): any other value changes the ids (cut, padded, the end-of-text id added, words split into "##" pieces or
# given "</w>" ends, merges skipped or taken at random), or makes the library panic.
UNSET = {"truncation": None, "padding": None, "post_processor": None}
UNSET_IN_MODEL = {"dropout": None, "unk_token": None, "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": False, "byte_fallback": False, "ignore_merges": False}


def _byte_chars() -> list[str]:
    """GPT-2's printable stand-in for each byte (the ``ByteLevel`` alphabet of `tokenizers`): byte b -> chr."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars, extra = {}, 0
    for b in range(256):
        if b in keep:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return [chars[b] for b in range(256)]


BYTE_CHARS = _byte_chars()
CHAR_BYTE = {c: b for b, c in enumerate(BYTE_CHARS)}


def _symbol_bytes(symbol: str, where: str) -> bytes:
    try:
        return bytes(CHAR_BYTE[c] for c in symbol)
    except KeyError as e:
        raise MakemoreError(f"{where}: token {symbol!r} has the character {e.args[0]!r}, which is not in the "
                            f"byte-level alphabet (not a byte-level BPE tokenizer)") from None


def safe_cuts(text: str, size: int = CHUNK_CHARS, spaces: bool = False) -> Iterator[str]:
    """``text`` in pieces of roughly ``size`` characters, each cut after a line break that stands alone between
    two characters that are not whitespace: both patterns always split there, whether or not the text goes on,
    so the pieces pre-split exactly as the whole does. With ``spaces`` (GPT-2's and GPT-4's patterns, not a
    tokenizer's own), where no such line break comes within ``size``, before a space between two letters: both
    patterns end a run of letters there and begin the next piece with that space, as they do in the whole. A
    text without either place stays whole."""
    start, line = 0, 0  # line: the first line break to cut after at or past the last search (None: none left)
    while len(text) - start > size:
        at = start + max(size, 1)
        if line is not None and line < at:  # (searched again only past it: one pass over the text in all)
            line = _line_cut(text, at)
        cut = line
        if spaces and (cut is None or cut - at > size):
            space = _space_cut(text, at, cut)  # (one before the line break, if any)
            if space is not None:
                cut = space
        cut = cut or len(text)
        yield text[start:cut]
        start = cut
    if start < len(text):
        yield text[start:]


def _line_cut(text: str, at: int) -> int | None:
    """Just after the first line break at or after ``at`` that stands between two characters that are not
    whitespace; None if there is none."""
    while True:
        nl = text.find("\n", at)
        if nl < 0 or nl + 1 >= len(text):
            return None
        if not text[nl - 1].isspace() and not text[nl + 1].isspace():
            return nl + 1
        at = nl + 1


def _space_cut(text: str, at: int, before: int | None) -> int | None:
    """The first space at or after ``at`` (and before ``before``) between two letters; None if there is none."""
    end = len(text) - 1 if before is None else min(before, len(text) - 1)
    while True:
        sp = text.find(" ", max(at, 1), end)
        if sp < 0:
            return None
        if text[sp - 1].isalpha() and text[sp + 1].isalpha():
            return sp
        at = sp + 1


def _library():
    try:
        import tokenizers
    except ImportError:  # pragma: no cover - a dependency; only a broken install gets here
        raise MakemoreError("the `tokenizers` package is missing: pip install tokenizers") from None
    return tokenizers


@contextmanager
def _library_errors(source: str, failed: str, quiet: bool = False):
    """The library's failures as one-line errors naming the file, its panics included: pyo3's PanicException
    derives from BaseException, so ``except Exception`` would let it out as a traceback. With ``quiet`` (a
    tokenizer's own regex, which can panic on a text), the report its native code prints of a panic is dropped:
    the one line says it."""
    try:
        with _stderr_held() if quiet else nullcontext():
            yield
    except (KeyboardInterrupt, SystemExit, GeneratorExit):
        raise
    except BaseException as e:
        raise MakemoreError(f"{source}: the tokenizers library {failed} ({' '.join(str(e).split())})") from None


@contextmanager
def _stderr_held():
    """Standard error (the file descriptor) pointed at a temporary file while the library runs: what it printed
    is passed on if it succeeded, and dropped if it failed (a panic's report, printed before the exception
    reaches Python)."""
    import os
    import sys
    import tempfile
    import threading

    if threading.current_thread() is not threading.main_thread():  # another thread (a screen) may be writing
        yield
        return
    try:
        sys.stderr.flush()
        held = tempfile.TemporaryFile()
    except (OSError, ValueError, AttributeError):  # nowhere to hold it: said as it comes
        yield
        return
    with held:
        saved = os.dup(2)
        os.dup2(held.fileno(), 2)
        ok = False
        try:
            yield
            ok = True
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            if ok:
                held.seek(0)
                while said := held.read(1 << 20):
                    os.write(2, said)


def _interruptible(fn):
    """``fn()`` in a worker thread while the calling (main) thread waits on it: the library's training runs in
    native code, where a signal handler, which runs in the main thread, waits until it is done, so Ctrl-C took
    effect only once the merges were all learned. The worker is abandoned to end with the process."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return fn()
    box: dict = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as e:  # handed to the waiting thread
            box["error"] = e

    worker = threading.Thread(target=run, name="makemore-bpe", daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(0.1)
    if "error" in box:
        raise box["error"]
    return box.get("value")


class Tokenizer:
    """A byte-level BPE tokenizer with an end-of-text token (load, train, encode, decode, save)."""

    def __init__(self, hf, source: str, pattern: str | None, data: bytes, layout: tuple):
        self._hf = hf
        self._hf.encode_special_tokens = True  # "<|endoftext|>" in a text is text, never the special token
        self.source = source  # file name, for messages
        self.pattern = pattern  # "gpt4" | "gpt2" | the custom regex | None (GPT-2's built-in byte-level split)
        self.sha256 = hashlib.sha256(data).hexdigest()  # of the file: shards name the tokenizer they were made with
        self._json = data
        self.token_bytes, self.specials, self.merges = layout
        self.eot_id = self.specials[END_OF_TEXT]
        # a pre-split regex of the file's own (not GPT-2's or GPT-4's): it may panic on a text (backtracking)
        self._own_regex = pattern is not None and pattern not in PATTERNS

    # --- building --------------------------------------------------------------------------------

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int, pattern: str = "gpt4") -> Tokenizer:
        """BPE on ``texts``: ``vocab_size`` ids in all (256 bytes, the merges, and ``<|endoftext|>``)."""
        if pattern not in PATTERNS:
            raise MakemoreError(f"--pattern {pattern}: expected one of {', '.join(PATTERNS)}")
        if not 257 <= vocab_size <= MAX_VOCAB:
            raise MakemoreError(f"--vocab-size {vocab_size}: expected at least 257 (256 bytes and "
                                f"{END_OF_TEXT}) and at most {MAX_VOCAB:,}")
        tk = _library()
        hf = tk.Tokenizer(tk.models.BPE())
        hf.pre_tokenizer = _pre_tokenizer(tk, pattern)
        hf.decoder = tk.decoders.ByteLevel()
        trainer = tk.trainers.BpeTrainer(
            vocab_size=vocab_size - 1, min_frequency=0, show_progress=False, special_tokens=[],
            initial_alphabet=tk.pre_tokenizers.ByteLevel.alphabet(),  # all 256 bytes, seen in the text or not
        )
        # in small pieces, cut where the pattern splits (at spaces too): the library holds a few hundred pieces
        # at once, and pre-splits each at some 100 bytes a character (a 10 MB text whole took 1.3 GB)
        pieces = (piece for text in texts for piece in safe_cuts(text, TRAIN_PIECE_CHARS, spaces=True))
        _interruptible(lambda: hf.train_from_iterator(pieces, trainer))
        return cls._renumbered(tk, hf, pattern)

    @classmethod
    def _renumbered(cls, tk, trained, pattern: str) -> Tokenizer:
        """The trained model with GPT-2's id layout: bytes in byte order, merged tokens in creation order, eot."""
        model = json.loads(trained.to_str())["model"]
        merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
        vocab = {c: b for b, c in enumerate(BYTE_CHARS)}
        for a, b in merges:
            vocab.setdefault(a + b, len(vocab))
        hf = tk.Tokenizer(tk.models.BPE(vocab=vocab, merges=merges))
        hf.pre_tokenizer = _pre_tokenizer(tk, pattern)
        hf.decoder = tk.decoders.ByteLevel()
        hf.add_special_tokens([tk.AddedToken(END_OF_TEXT, special=True, normalized=False)])
        spec = json.loads(hf.to_str())
        data = json.dumps(spec, ensure_ascii=False, indent=1).encode()
        return cls(hf, "<trained>", pattern, data, _layout(spec, "<trained>"))

    @classmethod
    def load(cls, path: str | Path) -> Tokenizer:
        """A ``tokenizer.json``: a regular file (a FIFO would block), JSON only, at most ``MAX_FILE_BYTES``,
        checked to be a byte-level BPE."""
        path = Path(path)
        data = read_limited(path, MAX_FILE_BYTES, "a tokenizer.json file", "; not a tokenizer file")
        return cls.from_bytes(data, str(path))

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "<tokenizer>") -> Tokenizer:
        spec = parse_json(data, source, "tokenizer JSON")
        pattern = _check_spec(spec, source)
        layout = _layout(spec, source)  # before the library reads it: it panics on some files these refuse
        tk = _library()
        with _library_errors(source, "cannot read it"):  # its own message says what it could not read
            hf = tk.Tokenizer.from_str(data.decode())
        return cls(hf, source, pattern, data, layout)

    def to_json(self) -> bytes:
        return self._json

    def save(self, path: str | Path, *, replace: bool = True, taken: str = "") -> None:
        """Written whole or not at all; without ``replace``, a file there is never replaced (``taken``: what is
        said then)."""
        from makemore.checkpoint import write_atomic

        write_atomic(Path(path), self._json, replace=replace, taken=taken)

    # --- using -----------------------------------------------------------------------------------

    @property
    def vocab_size(self) -> int:
        return len(self.token_bytes)

    def encode(self, text: str) -> list[int]:
        """Plain text to ids; never produces a special token."""
        if len(text) > CHUNK_CHARS:
            return self.encode_batch([text])[0]
        with _library_errors(self.source, "failed to encode", quiet=self._own_regex):
            return self._hf.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        """Several texts at once, encoded in parallel by the library (long texts in safe pieces)."""
        return [ids.tolist() for ids in self.encode_arrays(texts)]

    def encode_arrays(self, texts: list[str]):
        """``encode_batch`` as int32 arrays, at 4 bytes a token: the library's encodings (some 100 bytes a
        character) live only for a group of pieces, one for each core, of about ``GROUP_CHARS`` characters in all
        (at least ``MIN_PIECE_CHARS`` a piece), whatever the texts' size."""
        import os

        import numpy as np

        spaces = self.pattern in PATTERNS or self.pattern is None  # a tokenizer's own regex: line breaks only
        out: list[list] = [[] for _ in texts]
        group: list[tuple[int, str]] = []

        def encode_group() -> None:
            with _library_errors(self.source, "failed to encode", quiet=self._own_regex):
                encodings = self._hf.encode_batch_fast([piece for _, piece in group], add_special_tokens=False)
            for (i, _), enc in zip(group, encodings):
                out[i].append(np.array(enc.ids, dtype=np.int32))
            group.clear()

        cores = os.cpu_count() or 1
        held, size = 0, max(GROUP_CHARS // cores, MIN_PIECE_CHARS)
        group_chars = size * cores
        for i, text in enumerate(texts):
            for piece in safe_cuts(text, size, spaces=spaces):
                group.append((i, piece))
                held += len(piece)
                if held >= group_chars:
                    encode_group()
                    held = 0
        if group:
            encode_group()
        return [np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32) for parts in out]

    def decode(self, ids: Iterable[int]) -> str:
        """Ids to text; bytes that are not valid UTF-8 become U+FFFD, as in the lecture."""
        try:
            return b"".join(self.token_bytes[i] for i in ids).decode("utf-8", errors="replace")
        except (IndexError, TypeError):
            raise MakemoreError(f"{self.source}: token ids outside 0..{self.vocab_size - 1}") from None

    def stream(self) -> StreamDecoder:
        return StreamDecoder(self.token_bytes)

    def pieces(self, text: str) -> list[tuple[int, bytes]]:
        """Each token of ``text`` with the bytes it stands for (for showing tokens one by one)."""
        return [(i, self.token_bytes[i]) for i in self.encode(text)]

    def merge_list(self) -> list[tuple[int, bytes, bytes, bytes]]:
        """The merges in rank order: (id of the merged token, left bytes, right bytes, merged bytes)."""
        return [(new, self.token_bytes[a], self.token_bytes[b], self.token_bytes[new])
                for a, b, new in self.merges]

    def pre_split(self, text: str) -> list[str]:
        """The pieces the regex cuts ``text`` into before BPE (merges never cross them)."""
        out = []
        with _library_errors(self.source, "failed to pre-split", quiet=self._own_regex):
            split = self._hf.pre_tokenizer.pre_tokenize_str(text)
        for piece, _ in split:
            out.append(bytes(CHAR_BYTE[c] for c in piece).decode("utf-8", errors="replace"))
        return out

    def describe(self) -> str:
        name = self.pattern if self.pattern in PATTERNS else "custom" if self.pattern else "gpt2 (built-in)"
        merges = f"{len(self.merges):,} merge{'' if len(self.merges) == 1 else 's'}"
        return f"byte-level BPE · {self.vocab_size:,} tokens ({merges}) · {name} pre-split"


class StreamDecoder:
    """Decodes a token stream one id at a time: a character split over tokens appears once its last byte has
    come; bytes that can no longer form a character become U+FFFD right away (``errors="replace"``)."""

    def __init__(self, token_bytes: list[bytes]):
        self._bytes = token_bytes
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def push(self, token: int) -> str:
        return self._utf8.decode(self._bytes[token])

    def flush(self) -> str:
        """What is left at the end (an incomplete character becomes U+FFFD)."""
        return self._utf8.decode(b"", final=True)


# --- the tokenizer.json format ------------------------------------------------------------------------

def _pre_tokenizer(tk, pattern: str):
    return tk.pre_tokenizers.Sequence([
        tk.pre_tokenizers.Split(tk.Regex(PATTERNS[pattern]), behavior="isolated", invert=False),
        tk.pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])


def _kind(value) -> str:
    """What a JSON value is, as a message names it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return {dict: "an object", list: "a list", str: "a string"}.get(type(value), "a number")


def _shown(value) -> str:
    """A JSON value as a message quotes it: a short scalar as written, anything else by its kind."""
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, (dict, list)) else ""
    return text if 0 < len(text) <= 40 else _kind(value)


def _check_spec(spec, source: str) -> str | None:
    """What makes encode-then-decode give back the text: BPE over all 256 bytes, no normalizer, no added prefix
    space, a byte-level decoder, none of the library's extras (``UNSET``). Returns the pre-split pattern's name
    (or the regex, or None for GPT-2's own).

    The file is anyone's JSON: every part looked at is type-checked first, so a string where an object belongs
    is refused by name rather than failing on a method it lacks."""
    def bad(what: str):
        return MakemoreError(f"{source}: {what}")

    def get(obj: dict, key: str, types: tuple, expected: str, where: str, default=None):
        """``obj[key]`` (``default`` when absent or null), refused unless one of ``types``."""
        value = obj.get(key)
        if value is None:
            return default
        if not isinstance(value, types):
            raise bad(f"{where}{key} is {_kind(value)}, expected {expected}")
        return value

    if not isinstance(spec, dict):
        raise bad(f"not a tokenizer.json file (the file is {_kind(spec)}, expected an object)")
    model = get(spec, "model", (dict,), "an object", "")
    if model is None:
        raise bad("not a tokenizer.json file (no model)")
    if model.get("type") != "BPE":
        raise bad(f"not a tokenizer.json file of byte-level BPE (its model has type {model.get('type')!r})")
    if not isinstance(model.get("vocab"), dict) or not isinstance(model.get("merges"), list):
        raise bad("the BPE model has no vocab or merges")
    for obj, unset, where in [(spec, UNSET, ""), (model, UNSET_IN_MODEL, "model.")]:
        for key, written in unset.items():
            value = obj.get(key)
            if value is not None and value is not written:  # `is`, as 0 == False
                raise bad(f"{where}{key} is {_shown(value)}; makemore's tokenizers have "
                          f"{'none' if written is None else _shown(written)} (an edited file?)")
    get(spec, "added_tokens", (list,), "a list", "")
    if spec.get("normalizer") is not None:
        raise bad("has a normalizer, which would change the text (decode would not give it back)")
    decoder = get(spec, "decoder", (dict,), "an object", "", {})
    if decoder.get("type") != "ByteLevel":
        raise bad("its decoder is not byte-level")
    pre = get(spec, "pre_tokenizer", (dict,), "an object", "", {})
    if pre.get("type") == "Sequence":
        steps = get(pre, "pretokenizers", (list,), "a list", "pre_tokenizer.", [])
        where = [f"pre_tokenizer.pretokenizers[{i}]" for i in range(len(steps))]
    else:
        steps, where = [pre], ["pre_tokenizer"]
    for step, name in zip(steps, where):
        if not isinstance(step, dict):
            raise bad(f"{name} is {_kind(step)}, expected an object")
    if not steps or steps[-1].get("type") != "ByteLevel":
        raise bad("its pre-tokenizer does not end in a byte-level step (not a byte-level BPE tokenizer)")
    last = steps[-1]
    if get(last, "add_prefix_space", (bool,), "true or false", where[-1] + ".", False):
        raise bad("adds a space before the text (add_prefix_space), so decode would not give the text back")
    use_regex = get(last, "use_regex", (bool,), "true or false", where[-1] + ".", True)
    if len(steps) == 1:
        return None if use_regex else "none"
    split = steps[0]
    if len(steps) != 2 or split.get("type") != "Split" or use_regex:
        raise bad("expected a pre-tokenizer of one regex Split then ByteLevel(use_regex=false)")
    pattern = get(split, "pattern", (dict,), 'an object such as {"Regex": "..."}', where[0] + ".", {})
    regex = pattern.get("Regex")
    invert = get(split, "invert", (bool,), "true or false", where[0] + ".", False)
    if not isinstance(regex, str) or split.get("behavior") != "Isolated" or invert:
        raise bad("its Split pre-tokenizer is not an isolating regex split")
    return next((name for name, p in PATTERNS.items() if p == regex), regex)


def _layout(spec: dict, source: str) -> tuple[list[bytes], dict[str, int], list[tuple[int, int, int]]]:
    """id -> bytes for every id (specials: their text), the special tokens, and the merges as id triples."""
    vocab = spec["model"]["vocab"]
    added = spec.get("added_tokens") or []
    for t in added:  # checked before they are counted: a content that is a list or an object is not a token
        if not isinstance(t, dict) or not isinstance(t.get("content"), str) or not isinstance(t.get("id"), int):
            raise MakemoreError(f"{source}: an added token without content or id")
    size = len(vocab) + sum(1 for t in added if t["content"] not in vocab)
    if size > MAX_VOCAB:
        raise MakemoreError(f"{source}: {size:,} tokens, more than {MAX_VOCAB:,}")
    table: list[bytes | None] = [None] * size
    for symbol, i in vocab.items():
        if not isinstance(i, int) or not 0 <= i < size or table[i] is not None:
            raise MakemoreError(f"{source}: token ids are not 0..{size - 1}, each once")
        table[i] = _symbol_bytes(symbol, source)
    specials = {}
    for t in added:
        i = t["id"]
        if t["content"] in vocab and vocab[t["content"]] == i:
            continue
        if not 0 <= i < size or table[i] is not None:
            raise MakemoreError(f"{source}: token ids are not 0..{size - 1}, each once")
        table[i] = t["content"].encode()
        if t.get("special"):
            specials[t["content"]] = i
    if any(b is None for b in table):
        raise MakemoreError(f"{source}: token ids are not 0..{size - 1}, each once")
    missing = [b for b, c in enumerate(BYTE_CHARS) if c not in vocab]
    if missing:
        raise MakemoreError(f"{source}: {len(missing)} of the 256 bytes have no token (e.g. 0x{missing[0]:02x}); "
                            f"text containing them could not be encoded")
    if END_OF_TEXT not in specials:
        raise MakemoreError(f"{source}: no {END_OF_TEXT} special token")
    merges = []
    for m in spec["model"]["merges"]:
        pair = m.split(" ") if isinstance(m, str) else m
        if not isinstance(pair, list) or len(pair) != 2 or not all(isinstance(p, str) for p in pair):
            raise MakemoreError(f"{source}: a merge is not a pair of tokens: {m!r}")
        a, b = pair
        if a not in vocab or b not in vocab or a + b not in vocab:
            raise MakemoreError(f"{source}: the merge {a!r} + {b!r} names a token not in the vocabulary")
        merges.append((vocab[a], vocab[b], vocab[a + b]))
    if len(set(merges)) < len(merges):  # two ranks for one merge: the list and its count disagree
        seen: set = set()
        a, b, _ = next(m for m in merges if m in seen or seen.add(m))  # type: ignore[func-returns-value]
        raise MakemoreError(f"{source}: the merge {readable(table[a])} + {readable(table[b])} is listed twice")
    return table, specials, merges  # type: ignore[return-value]


def readable(b: bytes) -> str:
    """Bytes as a short quoted literal: the text where they are valid UTF-8, Python's b'' escapes where not."""
    try:
        return repr(b.decode("utf-8"))
    except UnicodeDecodeError:
        return repr(b)
