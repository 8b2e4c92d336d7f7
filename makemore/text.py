"""Text mode: a file read as one stream of characters, as the GPT lecture and nanoGPT train on Tiny Shakespeare.

The file is UTF-8 whatever the locale (a BOM is stripped; CRLF and lone CR line ends become "\\n"; control
characters other than newline and tab are refused with their line). Newlines are characters like any other.
The vocabulary is the sorted characters, ids 1..V-1: id 0 stays the words mode's start/stop token, so every
model family works unchanged, and in text mode it is never a target (nor ever sampled).

The stream is encoded once into one integer tensor (uint8 when the vocabulary fits, else int16/int32), read
and encoded in chunks so that a corpus of hundreds of MB never exists as a Python string. Split as nanoGPT's
``prepare.py`` does: the first ``int(0.9 * n)`` characters train, the rest validate. There is no test split
(nanoGPT and the lecture report val); the boundary is recorded in the run's config.json.

Batches are random windows of ``skip + block + 1`` characters drawn by tensor indexing,
``stream[starts[:, None] + arange]``: no Python loop per window, no copy of the corpus. Fixed-window models
(mlp, wavenet, ngram) get ``skip = context - 1`` extra characters in front whose targets are ignored, so every
prediction they are trained and scored on sees a full window of real text.
"""

from __future__ import annotations

import codecs
import hashlib
import itertools
import math
import re
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from makemore.errors import MakemoreError
from makemore.files import CONTROL, check_not_utf16, line_ends, no_such_file, no_text, open_regular, size_text

TRAIN_FRACTION = 0.9  # nanoGPT's shakespeare_char/prepare.py: data[:int(n * 0.9)] trains
MAX_TEXT_BYTES = 2 << 30  # 2 GiB: a larger file is refused before reading
CHUNK_BYTES = 1 << 20  # read, decode and encode this much at a time
EVAL_TOKENS = 8_192  # predictions per split scored at each evaluation during training (fixed windows)
TABLE_TOKENS = 4_096  # predictions of the val split averaged into the P(next | previous) table
SAMPLE_CHARS = 200  # length of the continuation drawn at each evaluation
BUILTIN_TEXT = {"shakespeare"}  # built-in datasets that are text by nature
_CONTROL = CONTROL  # (CR is normalised away before this is applied)


# --- reading ---------------------------------------------------------------------------------------

def _decoded_chunks(path: Path) -> Iterator[tuple[str, bytes]]:
    """(text, raw bytes) chunk by chunk: UTF-8, BOM stripped, CRLF and CR turned into LF across chunk edges."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    pending_cr = False
    lines_before = 0
    read = 0
    with open_regular(path, "a text file") as f:
        while True:
            raw = f.read(CHUNK_BYTES)
            if not read:
                check_not_utf16(raw, path)
            read += len(raw)
            if read > MAX_TEXT_BYTES:  # the size was checked first; this holds a file that grows as it is read
                raise MakemoreError(f"{path}: larger than {size_text(MAX_TEXT_BYTES)}; split it, or train on a part")
            final = not raw
            try:
                text = decoder.decode(raw, final=final)
            except UnicodeDecodeError as e:
                # what the decoder was decoding: this chunk after the start of a character the last one cut (the
                # bytes of a character the file's end cut, alone, at the end)
                held = e.object if isinstance(e.object, bytes) else raw
                line = lines_before + held[: max(0, e.start)].count(b"\n") + 1
                if b"\x00" in raw:  # binary data (a compressed file, a program), which no encoding explains
                    at = lines_before + raw[: raw.index(b"\x00")].count(b"\n") + 1
                    raise MakemoreError(f"{path}: binary data (NUL byte on line {at}); expected text") from None
                bad = held[e.start] if 0 <= e.start < len(held) else 0
                raise MakemoreError(f"{path}: not UTF-8 (byte 0x{bad:02x} on line {line}); convert it, "
                                    f"e.g. iconv -f latin1 -t utf-8") from None
            if pending_cr:
                text = "\r" + text
            pending_cr = not final and text.endswith("\r")
            if pending_cr:
                text = text[:-1]  # a CR at the edge may be the first half of a CRLF
            text = line_ends(text)
            lines_before += text.count("\n")
            yield text, raw
            if final:
                return


@dataclass
class TextCorpus:
    path: Path
    chars: list[str]  # sorted; character chars[i] has id i + 1
    stream: object  # torch tensor (n,), uint8 / int16 / int32: the encoded text
    sha256: str  # of the file's bytes
    bytes: int
    lines: int  # newlines in the normalised text

    def __len__(self) -> int:
        return len(self.stream)

    @property
    def boundary(self) -> int:
        return split_boundary(len(self.stream))


def split_boundary(n: int) -> int:
    """The first ``int(0.9 * n)`` characters train, the rest validate (nanoGPT's prepare.py)."""
    return int(n * TRAIN_FRACTION)


def _check_parts(path: Path, n: int, window: int) -> None:
    """Refuse a text of ``n`` characters whose train or val part is shorter than one ``window``."""
    b = split_boundary(n)
    for name, length in (("train", b), ("val", n - b)):
        if length < window:
            raise MakemoreError(
                f"{path}: the {name} part ({length:,} characters of {n:,}; the first 90% train, the last 10% "
                f"validate) is shorter than one window of {window} characters; lower --block-size or use a "
                f"longer text")


def check_text(path: Path, window: int) -> TextScan:
    """Before torch: the checks ``read_text`` makes (``scan_text``), and a train and a val part of at least one
    ``window`` of characters each, as ``TextBatches`` needs. ``read_text`` of the same file reuses this scan."""
    path = Path(path)
    scan = scan_text(path)
    _check_parts(path, scan.length, window)
    return scan


def stream_dtype(vocab_size: int):
    import torch

    return torch.uint8 if vocab_size <= 256 else torch.int16 if vocab_size <= 32768 else torch.int32


@dataclass
class TextScan:
    """What the first pass over a text finds, before anything is encoded (no torch)."""

    chars: list[str]  # sorted: the text's own characters, or the vocabulary it was checked against
    length: int  # characters of the normalised text
    sha256: str
    bytes: int
    lines: int


def refuse_control(text: str, path: Path, lines_before: int = 0, refused: re.Pattern = _CONTROL) -> None:
    """Refuse binary data (a NUL) or a control character (those ``refused`` matches) in ``text``, a chunk of
    ``path`` after ``lines_before`` lines, naming its line."""
    control = refused.search(text)
    if control:
        line = lines_before + text.count("\n", 0, control.start()) + 1
        what = "binary data (NUL byte" if control.group() == "\x00" else \
            f"control character U+{ord(control.group()):04X}"
        raise MakemoreError(f"{path}: {what} on line {line}" + (")" if what.startswith("binary") else "") +
                            "; expected text")


# the last scan, by the file's identity (path, device, inode, size, modification and change times: a rewrite that
# keeps the modification time still moves the change time) and the vocabulary it was checked against: checking a
# file before torch and reading it after (train, eval) scans it once
_last_scan: tuple[tuple, TextScan] | None = None


def scan_text(path: Path, chars: list[str] | None = None) -> TextScan:
    """Check ``path`` as one character stream, chunk by chunk, without torch: its size, its encoding, no binary
    data or control characters, and, given ``chars`` (a trained model's vocabulary), no character outside them.
    A file scanned last, unchanged since (see ``_last_scan``), is not read again."""
    global _last_scan
    path = Path(path)
    try:
        st = path.stat()
        key = (str(path.resolve()), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns,
               None if chars is None else tuple(chars))
    except OSError:
        key = None
    if key is not None and _last_scan is not None and _last_scan[0] == key:
        return _last_scan[1]
    scan = _scan(path, chars)
    _last_scan = (key, scan) if key is not None else None
    return scan


def _scan(path: Path, chars: list[str] | None) -> TextScan:
    if not path.exists():
        raise MakemoreError(no_such_file(path))
    if path.is_dir():
        raise MakemoreError(f"{path}: is a directory, expected a text file")
    size = path.stat().st_size
    if size > MAX_TEXT_BYTES:
        raise MakemoreError(f"{path}: {size / 2**30:.1f} GiB; text mode reads files of at most "
                            f"{MAX_TEXT_BYTES / 2**30:.0f} GiB (split it, or train on a part)")
    digest = hashlib.sha256()
    seen: set[str] = set()
    n = lines = nbytes = 0
    for text, raw in _decoded_chunks(path):
        digest.update(raw)
        nbytes += len(raw)
        refuse_control(text, path, lines)
        seen.update(text)
        n += len(text)
        lines += text.count("\n")
    if n == 0:
        raise MakemoreError(no_text(path, nbytes))
    if chars is None:
        chars = sorted(seen)
    else:
        unknown = sorted(seen - set(chars))
        if unknown:
            raise MakemoreError(f"{path}: character {unknown[0]!r} is not in the model's vocabulary"
                                + (f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""))
    return TextScan(list(chars), n, digest.hexdigest(), nbytes, lines)


def read_text(path: Path, chars: list[str] | None = None) -> TextCorpus:
    """Read ``path`` as one character stream; ``chars``: encode with this (a trained model's) vocabulary.

    Two passes over the file, each chunk by chunk: the first (``scan_text``) checks it and collects its
    characters, the second encodes it into a tensor allocated once. Peak memory is the encoded stream plus a few
    chunks.
    """
    import torch

    path = Path(path)
    scan = scan_text(path, chars)
    chars, n = scan.chars, scan.length
    table = torch.tensor([ord(c) for c in chars], dtype=torch.int32)
    stream = torch.empty(n, dtype=stream_dtype(len(chars) + 1))
    offset = 0
    for text, _ in _decoded_chunks(path):
        if not text:
            continue
        ids = _encode_codes(text, table)
        if offset + len(ids) > n:
            raise MakemoreError(f"{path}: changed while being read")
        stream[offset:offset + len(ids)] = ids
        offset += len(ids)
    if offset != n:
        raise MakemoreError(f"{path}: changed while being read")
    return TextCorpus(path, list(chars), stream, scan.sha256, scan.bytes, scan.lines)


def _encode_codes(text: str, table):
    """Characters -> ids 1..V-1 through the sorted code points ``table`` (all characters must be in it)."""
    import torch

    if text.isascii():  # one byte a character and a 128-entry lookup: the common case, light on memory
        lut = torch.zeros(128, dtype=torch.int32)
        ascii_ = table[table < 128]
        lut[ascii_.long()] = torch.searchsorted(table, ascii_, out_int32=True) + 1
        ids = lut[torch.frombuffer(bytearray(text.encode("ascii")), dtype=torch.uint8).long()]
        if bool((ids == 0).any()):
            raise MakemoreError(f"character {text[int((ids == 0).nonzero()[0])]!r} is not in the model's vocabulary")
        return ids
    codes = torch.frombuffer(bytearray(text.encode("utf-32-le")), dtype=torch.int32)
    ids = torch.searchsorted(table, codes, out_int32=True).clamp_(max=len(table) - 1)
    bad = table[ids] != codes
    if bool(bad.any()):
        raise MakemoreError(f"character {chr(int(codes[bad][0]))!r} is not in the model's vocabulary")
    return ids.add_(1)


def encode(text: str, chars: list[str]) -> list[int]:
    """A short string (a prompt) -> ids; an unknown character is an error naming it."""
    stoi = {c: i + 1 for i, c in enumerate(chars)}
    for c in text:
        if c not in stoi:
            raise MakemoreError(f"character {c!r} is not in the model's vocabulary")
    return [stoi[c] for c in text]


def decode(ids, chars: list[str]) -> str:
    return "".join(chars[i - 1] for i in ids if i > 0)


# --- batches ---------------------------------------------------------------------------------------

def window_skip(model) -> int:
    """Leading characters of a window that only give context: ``context - 1`` for fixed-window models."""
    from makemore.models.base import WindowModel

    return model.config.context - 1 if isinstance(model, WindowModel) else 0


class TextBatches:
    """The trainer's batch source in text mode: random windows of the training part of one encoded stream.

    Implements what the trainer asks of a batch source (see ``makemore.batches``): ``draw`` the
    global batch, ``micro_batch`` a rank's share, ``targets`` to weight it, ``evaluate`` a split, ``fit`` a
    count model, ``samples`` and ``bigram_table`` for the screen.
    """

    mode = "text"
    unit = "character"  # what num_items counts and the loss is per

    def __init__(self, corpus: TextCorpus, block: int, skip: int = 0, eval_tokens: int = EVAL_TOKENS):
        self.corpus = corpus
        self.chars = corpus.chars
        self.block = block  # predictions per window
        self.skip = skip  # context-only characters in front of them
        self.window = skip + block + 1
        self.eval_tokens = eval_tokens
        b = corpus.boundary
        self.splits = {"train": corpus.stream[:b], "val": corpus.stream[b:]}
        _check_parts(corpus.path, len(corpus), self.window)
        self.num_items = len(self.splits["train"])  # characters in the training part

    # what the trainer asks of a batch source

    def has(self, split: str) -> bool:
        return split in self.splits

    def draw(self, batch_size: int, generator):
        import torch

        return torch.randint(len(self.splits["train"]) - self.window + 1, (batch_size,), generator=generator)

    def targets(self, starts) -> int:
        return len(starts) * self.block

    def windows(self, split: str, starts, device=None):
        """Inputs and targets (B, skip + block) of the windows at ``starts``; context-only targets are -1."""
        return windows(self.splits[split], starts, self.window, self.skip, device)

    def micro_batch(self, starts, model, pack: bool, device):
        x, y = self.windows("train", starts, device)
        return x, y, {}

    def eval_starts(self, split: str, max_tokens: int | None = None):
        return tiling_starts(len(self.splits[split]), self.window, self.block, max_tokens)

    def evaluate(self, model, split: str, device=None, max_tokens: int | None = -1) -> float:
        """Mean loss in nats per character over fixed windows of ``split`` (``max_tokens`` -1: the trainer's
        subset of ``eval_tokens``; None: the whole split)."""
        if max_tokens == -1:
            max_tokens = self.eval_tokens
        return stream_loss(model, self.splits[split], self.block, self.skip, device, max_tokens)

    def bits_per_char(self, loss: float, split: str) -> float:
        """Nats per character as bits per character (``makemore eval``'s figure); token runs override it."""
        return loss / math.log(2)

    def fit(self, model, device) -> None:
        """Count models: count every (window, next character) of the training part, chunk by chunk."""
        train = self.splits["train"]
        chunk = 1 << 20
        for a in range(0, len(train) - 1 - self.skip, chunk):
            part = train[a:a + chunk + self.skip + 1].long()
            x, y = part[:-1][None], part[1:][None].clone()
            y[:, : self.skip] = -1
            model.fit(x.to(device), y.to(device))

    def samples(self, model, step: int, temperature: float, generator, device, n: int = 1):
        """One continuation of a newline (``default_prompt``), ``SAMPLE_CHARS`` long (several lines); ``n`` is for
        word lists."""
        from makemore.events import Samples

        text = "".join(generate_text(model, self.chars, default_prompt(self), SAMPLE_CHARS, temperature=temperature,
                                     generator=generator, device=device))
        return Samples(step=step, temperature=temperature, samples=[], text=text)

    def bigram_table(self, model, device=None):
        """P(next | previous character), the model's next-character distributions averaged over the positions
        of val windows where that character came last; row 0 (the start token, absent from text) holds the
        average over every position."""
        import torch

        V = len(self.chars) + 1
        sums = torch.zeros(V, V, dtype=torch.float64)
        counts = torch.zeros(V, dtype=torch.float64)
        was_training = model.training
        model.eval()
        try:
            with torch.inference_mode():
                for x, y in _batches(self.splits["val"], self.eval_starts("val", TABLE_TOKENS), self.window,
                                     self.skip, device, model):
                    logits, _ = model(x)
                    probs = logits.float().softmax(-1)[:, self.skip:].reshape(-1, V).double().cpu()
                    prev = x[:, self.skip:].reshape(-1).cpu()
                    sums.index_add_(0, prev, probs)
                    counts.index_add_(0, prev, torch.ones_like(prev, dtype=torch.float64))
        finally:
            model.train(was_training)
        table = sums / counts.clamp(min=1)[:, None]
        table[0] = sums.sum(0) / counts.sum()
        empty = counts == 0
        empty[0] = False
        table[empty] = 1.0 / V  # a character the val windows never show: no information
        return table.float()


def windows(stream, starts, window: int, skip: int = 0, device=None):
    """Inputs and targets (B, window - 1) of the windows of ``stream`` at ``starts``, by one tensor index;
    the first ``skip`` targets (context only) are -1."""
    import torch

    rows = stream[starts[:, None] + torch.arange(window)].long()  # (B, window)
    x, y = rows[:, :-1], rows[:, 1:].clone()
    y[:, :skip] = -1
    if device is not None and torch.device(device).type != "cpu":
        x = x.pin_memory().to(device, non_blocking=True)
        y = y.pin_memory().to(device, non_blocking=True)
    return x, y


def tiling_starts(n: int, window: int, block: int, max_tokens: int | None = None):
    """Starts of windows whose predictions tile a stream of ``n`` characters without overlap (all but the
    first ``window - block`` characters are predicted once); ``max_tokens``: an evenly spaced subset, the same
    every time, so that evaluation is deterministic (unless the tiling fits, ``tiled_whole``)."""
    import torch

    starts = torch.arange(0, n - window + 1, block)
    if not tiled_whole(n, window, block, max_tokens):
        starts = starts[torch.linspace(0, len(starts) - 1, max(1, math.ceil(max_tokens / block))).round().long()]
    return starts


def tiled_whole(n: int, window: int, block: int, max_tokens: int | None) -> bool:
    """Whether every window tiling a stream of ``n`` is scored within ``max_tokens`` predictions (None: no
    limit); torch-free, for `info`'s word on what training scored."""
    return max_tokens is None or n < window or (n - window) // block + 1 <= max(1, math.ceil(max_tokens / block))


def _batches(stream, starts, window: int, skip: int, device, model, budget: int = 1 << 24):
    """Windows at ``starts`` in batches whose logits stay under ``budget`` values."""
    size = max(1, budget // (window * model.config.vocab_size))
    for i in range(0, len(starts), size):
        yield windows(stream, starts[i:i + size], window, skip, device)


def check_length(n: int, window: int, unit: str = "character") -> None:
    """Refuse a stream of ``n`` characters (or tokens: ``unit``) shorter than one ``window`` to score."""
    from makemore.console import plural

    if n < window:
        raise MakemoreError(f"{plural(n, unit)} {'is' if n == 1 else 'are'} fewer than one window of {window}")


def stream_loss(model, stream, block: int, skip: int = 0, device=None, max_tokens: int | None = None,
                unit: str = "character") -> float:
    """Mean NLL per predicted character (or token: ``unit``) over windows tiling ``stream`` (or ``max_tokens`` of
    them)."""
    from makemore.evaluation import mean_nll

    window = skip + block + 1
    check_length(len(stream), window, unit)
    starts = tiling_starts(len(stream), window, block, max_tokens)
    batches = _batches(stream, starts, window, skip, device, model)
    # the whole stream (no limit, or one it fits within): every character after the first window's context, once,
    # so that training's evaluation of a small val split is `makemore eval`'s
    if tiled_whole(len(stream), window, block, max_tokens):
        batches = itertools.chain(batches, _tail(stream, int(starts[-1]) + window, window, device))
    return mean_nll(model, batches)


def _tail(stream, end: int, window: int, device):
    """The stream's last window, where the tiling's windows stop short of the end (``end``: just past the last
    character they predict): only its targets beyond ``end`` count."""
    import torch

    if len(stream) > end:
        start = len(stream) - window
        x, y = windows(stream, torch.tensor([start]), window, 0, device)
        y[:, : end - start - 1] = -1  # predicted by the tiling already (its first ``skip`` among them)
        yield x, y


# --- sampling --------------------------------------------------------------------------------------

def continue_ids(model, ids: list[int], length: int, pick, device=None,
                 pad: int | None = None) -> Iterator[tuple[int, object]]:
    """Extend ``ids`` by ``length`` tokens; ``pick(logits (V,)) -> int`` chooses each. Yields (token, logits).

    A fixed-window model (mlp, wavenet, ngram) given fewer ids than its window has ``pad`` in front of them:
    trained on a text, it never saw the word lists' start token (id 0) that its window starts with otherwise,
    and drew garbage until the prompt filled the window. ``pad`` is the text's own start of a line (a newline).

    A model with a position limit (``model.context_limit``: the Transformer's and the bag-of-words' block)
    sees at most its last ``context_limit`` tokens, as the lecture crops ``idx[:, -block_size:]``. While the
    sequence fits, the incremental state (the KV cache) grows by one token a step; once it would overflow, every
    position would shift, so the state is rebuilt from the cropped window (what a full recomputation does).
    Recurrent models carry their state across any length; fixed-window models keep their window.
    """
    import torch

    if not ids:
        raise MakemoreError("the prompt is empty")
    device = device or next(model.parameters(), torch.zeros(())).device
    from makemore.models.base import WindowModel

    if pad is not None and isinstance(model, WindowModel) and len(ids) < model.config.context:
        ids = [pad] * (model.config.context - len(ids)) + list(ids)
    limit = model.context_limit
    history: deque[int] = deque(ids, maxlen=limit or max(1, len(ids)))

    def feed(tokens: list[int], state):
        with torch.no_grad():  # not held across a yield: the caller's grad mode is never touched
            return model.decode(torch.tensor([tokens], dtype=torch.long, device=device), state)

    window = list(history)
    logits, state = feed(window, model.init_state(1, device))
    seen = len(window)
    for _ in range(length):
        row = logits[0].float().cpu()
        row[0] = float("-inf")  # the start/stop token is not text
        token = int(pick(row))
        yield token, row
        history.append(token)
        if limit is not None and seen + 1 > limit:
            window = list(history)  # the last `limit` tokens, from position 0 again
            logits, state = feed(window, model.init_state(1, device))
            seen = len(window)
        else:
            logits, state = feed([token], state)
            seen += 1


def generate_text(model, chars: list[str], prompt: str, length: int, *, temperature: float = 1.0,
                  top_k: int | None = None, top_p: float | None = None, generator=None,
                  device=None) -> Iterator[str]:
    """Continue ``prompt`` by ``length`` characters, yielding each as it is drawn."""

    from makemore.config import check_sampling
    from makemore.sample import _filter_logits, pick as draw_index

    check_sampling(temperature=temperature, top_k=top_k, top_p=top_p)
    prompt = check_prompt(prompt)
    ids = encode(prompt, chars)
    pad = encode(start_char(chars), chars)[0]

    def pick(row):
        if temperature == 0:
            return int(row.argmax())
        probs = _filter_logits((row / temperature)[None], top_k, top_p).softmax(-1)
        return int(draw_index(probs, generator))

    was_training = model.training
    model.eval()
    try:
        for token, _ in continue_ids(model, ids, length, pick, device, pad=pad):
            yield chars[token - 1]
    finally:
        model.train(was_training)


def check_prompt(prompt: str) -> str:
    """The prompt as the model reads text (line ends as LF): a continuation needs one character at least (left
    out, it starts from ``default_prompt``), and no NUL."""
    if not prompt:
        raise MakemoreError("--prompt is empty; give at least one character, or leave --prompt out to start "
                            "from a newline (or a space, in a text without one)")
    if "\x00" in prompt:  # binary data, which every reader of a text refuses
        raise MakemoreError(f"--prompt {prompt!r}: a NUL character; a prompt is text")
    check_utf8(prompt, "--prompt")
    return line_ends(prompt)  # CRLF and CR as LF, as every text was read


def check_utf8(text: str, what: str) -> None:
    """Refuse a string holding bytes that were not UTF-8 (a command line's argument keeps them as surrogates,
    which neither a vocabulary nor a tokenizer can read), naming ``what`` it is."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        bad = ord(text[e.start])
        raise MakemoreError(f"{what}: not UTF-8 (byte 0x{bad - 0xDC00:02x})" if 0xDC80 <= bad <= 0xDCFF else
                            f"{what}: not UTF-8 (character U+{bad:04X})") from None


def default_prompt(vocab) -> str:
    """Where a continuation starts when no prompt is given: a newline, or for a character run whose text has none,
    a space, else the first character of its vocabulary, in code-point order (a token run encodes any text)."""
    chars = getattr(vocab, "chars", None)
    if hasattr(vocab, "tokenizer") or not chars:
        return "\n"
    return start_char(chars)


def start_char(chars) -> str:
    """A character text's start of a line: a newline, or where it has none a space, else its first character."""
    return "\n" if "\n" in chars else " " if " " in chars else chars[0]


def continuation(model, vocab, prompt: str, length: int, **options) -> Iterator[str]:
    """A text run's continuation of ``prompt`` by ``length`` characters, as pieces of text: a character run's
    (``generate_text``), or a token run's (``vocab`` holds a ``tokenizer``; drawn tokens decoded as they come)."""
    if hasattr(vocab, "tokenizer"):
        from makemore.tokentext import generate_tokens

        return generate_tokens(model, vocab.tokenizer, prompt, length, **options)
    return generate_text(model, vocab.chars, prompt, length, **options)


# --- runs ------------------------------------------------------------------------------------------

@dataclass
class PreparedText:
    """A text corpus ready to train on: what ``makemore.training`` asks of prepared data, for text mode."""

    name: str
    corpus: TextCorpus
    vocab: object  # makemore.data.Vocab (text=True)
    mode = "text"

    @property
    def path(self) -> Path:
        return self.corpus.path

    @property
    def num_train(self) -> int:
        return self.corpus.boundary

    def batches(self, model, block_size: int, cfg) -> TextBatches:
        return TextBatches(self.corpus, block_size, window_skip(model))

    def dataset_config(self, max_len: int | None = None) -> dict:
        c = self.corpus
        return {"name": self.name, "path": str(c.path.resolve()), "sha256": c.sha256, "bytes": c.bytes,
                "chars": len(c), "lines": c.lines}

    def split_config(self, seed: int | None = None) -> dict:
        """The split as offsets into the stream: characters [0, boundary) train, [boundary, chars) validate."""
        n, b = len(self.corpus), self.corpus.boundary
        return {"kind": "stream", "boundary": b, "train": b, "val": n - b, "test": 0}

    def split_file(self) -> None:
        return None


def prepare_text(data: str) -> PreparedText:
    from makemore.data import Vocab, resolve_dataset

    name, path = resolve_dataset(data)
    corpus = read_text(path)
    try:
        vocab = Vocab(corpus.chars, text=True)
    except MakemoreError as e:
        raise MakemoreError(f"{path}: {e}") from None
    return PreparedText(name, corpus, vocab)


def batches_for_run(run, model) -> TextBatches:
    """A text run's batches again (``--resume``, ``eval``): the file it trained on, checked by sha256, and its
    boundary. ``run``: a ``makemore.rundir.RunDir``."""
    from makemore.rundir import CONFIG

    config = run.config
    where = run.file(CONFIG)
    path, sha = config.dataset.get("path"), config.dataset.get("sha256")
    if not isinstance(path, str) or not isinstance(sha, str):
        raise MakemoreError(f"{where}: a text run needs dataset.path and dataset.sha256")
    if Path(path).exists() and not Path(path).is_file():  # a folder or a device where the text was
        raise MakemoreError(f"{path}: not a file, where config.json names the text this run trained on; put the "
                            f"text back, or record where it is now with `makemore train FILE --resume {run.path}`")
    if not Path(path).is_file():
        raise MakemoreError(f"{path}: the text this run trained on is gone (config.json names it); put it back, "
                            f"or record where it is now with `makemore train FILE --resume {run.path}`")
    corpus = read_text(Path(path))
    if corpus.sha256 != sha:
        raise MakemoreError(f"{path}: changed since the run began (sha256 differs from {where}); its "
                            f"train/val split would not be the run's")
    if corpus.chars != config.vocab:
        raise MakemoreError(f"{where}: vocab does not match the characters of {path}")
    if config.split.get("boundary") != corpus.boundary:
        raise MakemoreError(f"{where}: split.boundary {config.split.get('boundary')!r} does not match the text's "
                            f"{corpus.boundary}")
    return TextBatches(corpus, config.model.block_size, window_skip(model))
