"""Token-level text mode: text mode (``makemore.text``) over the ids of a byte-level BPE tokenizer.

``makemore train FILE --mode text --tokenizer TOK`` reads the text as character text mode does (the same
normalisation, the same 90/10 split at the same character), encodes each part with the tokenizer, and trains on
random windows of tokens. The model's vocabulary is the tokenizer's, its embedding and head padded to a multiple
of 64 rows (the padding ids never occur and are never sampled). ``makemore train SHARDS/`` trains on a directory
made by ``makemore prepare``: windows in a permuted document order per epoch, read through memory maps.

Loss is nats per token; ``bits_per_char`` turns it into bits per character of the text the tokens encode
(total nats / characters / ln 2) so that a token model and a character model of the same text compare
directly. A run keeps a copy of its tokenizer as ``RUN/tokenizer.json`` (its sha256 in config.json), and
sampling decodes the drawn tokens as a stream, a character at a time once its bytes are complete.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from makemore.console import plural
from makemore.errors import MakemoreError
from makemore.files import CONTROL as _CONTROL
from makemore.files import no_text
from makemore.presets import padded_vocab
from makemore.rundir import tokenizer_entry  # noqa: F401 (config.json's, read where it is owned)
from makemore.shards import bits_per_char
from makemore import text as _text
from makemore.text import TextBatches, _decoded_chunks

RUN_TOKENIZER = "tokenizer.json"
MAX_EVAL_TOKENS = 1 << 24  # validation tokens of a shard run evaluated (128 MB as int64)
MAX_TOKEN_TEXT_BYTES = 1 << 30  # a larger text: tokenize it once with `makemore prepare` and train on the shards


class TokenVocab:
    """A tokenizer's vocabulary as the trainer and the screens see it; ``len`` is the model's (padded) rows."""

    chars: list[str] = []  # config.json's character vocabulary: none (the tokenizer file holds it)
    text = True

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.size = padded_vocab(tokenizer.vocab_size)
        self.tokens = tokenizer.vocab_size  # the first rows; the rest pad the model's vocabulary

    def __len__(self) -> int:
        return self.size

    @property
    def itos(self) -> list[str]:
        shown = [b.decode("utf-8", errors="replace") for b in self.tokenizer.token_bytes]
        return shown + ["<pad>"] * (self.size - len(shown))


def run_tokenizer(run):
    """The tokenizer a token run (a ``makemore.rundir.RunDir``) trained with: RUN/tokenizer.json, checked
    against config.json's sha256."""
    from makemore.tokenizer import Tokenizer

    entry = tokenizer_entry(run.config.dataset) or {}
    path = Path(run.path) / RUN_TOKENIZER
    tok = Tokenizer.load(path)
    if tok.sha256 != entry.get("sha256"):
        raise MakemoreError(f"{path}: not the tokenizer this run trained with (sha256 differs from config.json)")
    return tok


def run_vocab(run) -> TokenVocab:
    return TokenVocab(run_tokenizer(run))


# --- batches -----------------------------------------------------------------------------------------

class TokenBatches(TextBatches):
    """Random windows of a token stream; evaluation, samples and the split as character text mode has them."""

    unit = "token"

    def __init__(self, train, val, tokenizer, chars: dict[str, int], block: int, skip: int = 0,
                 eval_tokens: int | None = None, name: str = "text"):
        eval_tokens = _text.EVAL_TOKENS if eval_tokens is None else eval_tokens
        self.corpus = None
        self.tokenizer = tokenizer
        self.chars = None
        self.block, self.skip, self.window, self.eval_tokens = block, skip, skip + block + 1, eval_tokens
        self.splits = {"train": train, "val": val}
        self.split_chars = chars  # characters each split's tokens encode (bits per character)
        for split, part in self.splits.items():
            if len(part) < self.window:
                raise MakemoreError(f"{name}: the {split} part ({plural(len(part), 'token')}) is shorter than one "
                                    f"window of {self.window} tokens; {self.too_short_advice(split)}")
        self.num_items = len(train)

    def too_short_advice(self, split: str) -> str:
        return "lower --block-size or use a longer text"

    def bits_per_char(self, loss: float, split: str) -> float:
        return bits_per_char(loss, *self.predicted(split))

    def predicted(self, split: str) -> tuple[int, int]:
        """(tokens, characters) a pass over ``split`` predicts: every token after the first window's context, and
        the characters they encode (what `makemore eval` reports, and divides by, as a character run counts)."""
        held = self.splits[split]
        return len(held) - self.skip - 1, self.split_chars[split] - _chars(self.tokenizer, held[: self.skip + 1])

    def samples(self, model, step: int, temperature: float, generator, device, n: int = 1):
        from makemore.events import Samples

        text = "".join(generate_tokens(model, self.tokenizer, "\n", _text.SAMPLE_CHARS, temperature=temperature,
                                       generator=generator, device=device))
        return Samples(step=step, temperature=temperature, samples=[], text=text)

    def bigram_table(self, model, device=None):  # pragma: no cover - the trainer skips it above 256 tokens
        raise MakemoreError("no bigram table for a token vocabulary")


class ShardBatches(TokenBatches):
    """Training windows from token shards (``makemore.shards``), in a permuted document order per epoch.

    ``draw`` hands out the rows of the next batch of the shared stream (the same on every rank; ranks and
    micro-batches then read only their rows), so training from shards equals training from the same documents
    in memory through ``TokenWindows``. Evaluation tiles the validation split as text mode does (its first
    ``MAX_EVAL_TOKENS`` tokens, held in memory) and, for the train loss, the first tokens of epoch 0's stream.
    """

    def __init__(self, windows, val, tokenizer, chars: dict[str, int], tokens: dict[str, int], block: int,
                 eval_tokens: int | None = None, name: str = "shards", held_train: int | None = None):
        eval_tokens = _text.EVAL_TOKENS if eval_tokens is None else eval_tokens
        import numpy as np
        import torch

        self.windows_ = windows
        self._held_chars: dict[str, int] = {}
        self.next_batch = 0
        self._drawn: tuple | None = None  # (first row, the drawn batch's tokens): its micro-batches' rows
        self.tokens = tokens  # in each split (its bits per character: loss * tokens / characters)
        first = min(windows.tokens, held_train or eval_tokens + block + 1)  # (``eval`` holds more)
        train = windows.checked(windows.read(0, first), [(0, first)])
        val = np.asarray(val[:MAX_EVAL_TOKENS], dtype=np.int64)
        super().__init__(torch.from_numpy(train), torch.from_numpy(val), tokenizer, chars, block, 0,
                         eval_tokens, name)
        self.num_items = windows.tokens

    def too_short_advice(self, split: str) -> str:
        return ("lower --block-size, or prepare the shards again with a larger --val-fraction" if split == "val"
                else "lower --block-size or prepare more text")

    def draw(self, batch_size: int, generator):
        import torch

        k = self.next_batch
        self.next_batch += 1
        # every rank checks the whole batch's tokens (one span of the stream) before any trains on its share:
        # a damaged id stops all of them at the same step, and rank 0 records it (a rank that met it alone died
        # with its message while rank 0 lost it, the run left looking unfinished)
        start, count = k * batch_size * self.windows_.T, batch_size * self.windows_.T + 1
        tokens = self.windows_.checked(self.windows_.read(start, count), [(start, count)])
        self._drawn = (k * batch_size, tokens)  # read once: the micro-batches take their rows from it
        return torch.arange(k * batch_size, (k + 1) * batch_size)

    def seek(self, batches_done: int, batch_size: int) -> None:
        """Continue a resumed run with the batch after ``batches_done``."""
        self.next_batch = batches_done

    def targets(self, rows) -> int:
        return len(rows) * self.block

    def micro_batch(self, rows, model, pack: bool, device):
        import torch

        import numpy as np

        rows = rows.tolist()
        T = self.windows_.T
        first, tokens = self._drawn or (0, None)
        if tokens is not None and first <= min(rows) and max(rows) < first + (len(tokens) - 1) // T:
            # row r is tokens r*T .. r*T + T of the stream: the drawn batch's, from its first row on
            block = tokens[(np.asarray(rows) - first)[:, None] * T + np.arange(T + 1)]
            x, y = block[:, :-1], block[:, 1:]
        else:
            x, y = self.windows_.rows(rows)
        x, y = torch.from_numpy(x), torch.from_numpy(y)
        if device is not None and torch.device(device).type != "cpu":
            x = x.pin_memory().to(device, non_blocking=True)
            y = y.pin_memory().to(device, non_blocking=True)
        return x, y, {}

    def predicted(self, split: str) -> tuple[int, int]:
        """As text mode's; where evaluation holds only the split's first tokens, the characters those encode (the
        documents' text, without their end-of-text tokens: counted once, then kept)."""
        held = self.splits[split]
        if len(held) == self.tokens[split]:
            return super().predicted(split)
        if split not in self._held_chars:
            self._held_chars[split] = _chars(self.tokenizer, held[self.skip + 1:])
        return len(held) - self.skip - 1, self._held_chars[split]


# --- sampling ----------------------------------------------------------------------------------------

def generate_tokens(model, tokenizer, prompt: str, length: int, *, temperature: float = 1.0,
                    top_k: int | None = None, top_p: float | None = None, generator=None,
                    device=None) -> Iterator[str]:
    """Continue ``prompt`` until ``length`` characters have been drawn, yielding text as it decodes (a
    character split over several tokens appears once complete; bytes that cannot complete become U+FFFD, and
    so do control characters other than newline and tab)."""

    from makemore.config import check_sampling
    from makemore.sample import _filter_logits, pick as draw_index
    from makemore.text import check_prompt, continue_ids

    check_sampling(temperature=temperature, top_k=top_k, top_p=top_p)
    prompt = check_prompt(prompt)
    ids = tokenizer.encode(prompt)
    real = tokenizer.vocab_size

    def pick(row):
        row[real:] = float("-inf")  # padding rows of the head: never a token
        if temperature == 0:
            return int(row.argmax())
        probs = _filter_logits((row / temperature)[None], top_k, top_p).softmax(-1)
        return int(draw_index(probs, generator))

    decoder = tokenizer.stream()
    for i in ids:
        decoder.push(i)  # the prompt's own bytes: a character it leaves open is completed by what follows
    drawn = 0
    was_training = model.training
    model.eval()
    try:
        if length <= 0:
            return
        for token, _ in continue_ids(model, ids, 1 << 62, pick, device, pad=tokenizer.encode("\n")[0]):
            # a token model can draw any byte, and an escape sequence printed to a terminal could drive it
            text = _CONTROL.sub("\ufffd", decoder.push(token))
            if text:
                text = text[: length - drawn]
                drawn += len(text)
                yield text
                if drawn >= length:
                    return
    finally:
        model.train(was_training)


# --- preparing a run ---------------------------------------------------------------------------------

def _check_size(path: Path) -> None:
    size = path.stat().st_size if path.exists() else 0
    if size > MAX_TOKEN_TEXT_BYTES:
        raise MakemoreError(f"{path}: {size / 2**30:.1f} GiB; tokenize it once with `makemore prepare` and "
                            f"train on the shards")


def check_scorable(path: Path, tokenizer, window: int) -> None:
    """Before torch: refuse a text a token run cannot score: too large, empty, not UTF-8, binary data; a small one
    (up to ``ENCODED_BEFORE`` bytes) encoded, and refused if it is fewer tokens than one ``window``."""
    from makemore.text import check_length

    _check_size(path)
    size = path.stat().st_size
    if size == 0:
        raise MakemoreError(f"{path}: empty file")
    if size <= ENCODED_BEFORE:
        text = _read_normalised(path)[0]
        if not text:
            raise MakemoreError(no_text(path, size))
        try:
            check_length(len(tokenizer.encode(text)), window, "token")
        except MakemoreError as e:
            raise MakemoreError(f"{path}: {e}") from None
        return
    for _ in _checked_chunks(path):
        pass


ENCODED_BEFORE = 1 << 20  # bytes of a text to score that are encoded before torch, to count its tokens


def _checked_chunks(path: Path) -> Iterator[tuple[str, bytes]]:
    """``text._decoded_chunks`` with binary data refused: a NUL byte, named by its line, as ``prepare`` and
    ``tokenizer train`` refuse it. Other control characters encode as any text does (character text mode refuses
    them: each would be a character of its vocabulary)."""
    from makemore.text import refuse_control

    lines = 0
    for text, raw in _decoded_chunks(path):
        refuse_control(text, path, lines, _NUL)
        lines += text.count("\n")
        yield text, raw


_NUL = re.compile("\x00")


def _read_normalised(path: Path) -> tuple[str, str, int]:
    """The text as character text mode reads it (BOM dropped, CRLF and CR as LF; binary data refused), its sha256
    and byte count."""
    import hashlib

    _check_size(path)
    digest, parts, n = hashlib.sha256(), [], 0
    for text, raw in _checked_chunks(path):
        digest.update(raw)
        n += len(raw)
        parts.append(text)
    return "".join(parts), digest.hexdigest(), n


@dataclass
class PreparedTokens:
    """A text encoded with a tokenizer, ready to train on (what ``makemore.training`` asks of prepared data)."""

    name: str
    path: Path
    tokenizer: object
    train: object  # torch int32 tensors of token ids
    val: object
    chars: dict[str, int]
    sha256: str
    bytes: int
    mode = "text"
    hint = None

    @property
    def vocab(self) -> TokenVocab:
        return TokenVocab(self.tokenizer)

    @property
    def num_train(self) -> int:
        return len(self.train)

    @property
    def boundary(self) -> int:
        return self.chars["train"]

    def batches(self, model, block_size: int, cfg) -> TokenBatches:
        from makemore.text import window_skip

        return TokenBatches(self.train, self.val, self.tokenizer, self.chars, block_size, window_skip(model),
                            name=str(self.path))

    def dataset_config(self, max_len: int | None = None) -> dict:
        t = self.tokenizer
        return {"name": self.name, "path": str(self.path.resolve()), "sha256": self.sha256, "bytes": self.bytes,
                "chars": self.chars["train"] + self.chars["val"],
                "tokenizer": {"file": RUN_TOKENIZER, "sha256": t.sha256, "vocab_size": t.vocab_size,
                              "padded": padded_vocab(t.vocab_size), "pattern": t.pattern}}

    def split_config(self, seed: int | None = None) -> dict:
        """Characters [0, boundary) train, the rest validate (as character text mode); tokens of each part."""
        return {"kind": "stream", "boundary": self.boundary, "train": len(self.train), "val": len(self.val),
                "test": 0, "train_chars": self.chars["train"], "val_chars": self.chars["val"]}

    def split_file(self) -> None:
        return None

    def run_files(self) -> dict[str, bytes]:
        return {RUN_TOKENIZER: self.tokenizer.to_json()}

    def describe(self) -> str:
        t, n = self.tokenizer, len(self.train) + len(self.val)
        c = self.chars["train"] + self.chars["val"]
        return (f"{self.path}: text, {c:,} characters → {n:,} tokens ({c / n:.2f} characters per token; "
                f"{t.describe()}); split at character {self.boundary:,}: {len(self.train):,} / {len(self.val):,} "
                f"tokens train / val (the last 10%)")


def prepare_tokens(data: str, tokenizer_path: str | Path) -> PreparedTokens:
    import torch

    from makemore.data import resolve_dataset
    from makemore.files import no_such_file
    from makemore.text import split_boundary
    from makemore.tokenizer import Tokenizer

    tok = Tokenizer.load(tokenizer_path)
    name, path = resolve_dataset(data)
    if not path.is_file():
        raise MakemoreError(no_such_file(path) if not path.exists() else f"{path}: not a file")
    text, sha, nbytes = _read_normalised(path)
    if not text:
        raise MakemoreError(no_text(path, nbytes))
    b = split_boundary(len(text))
    train, val = (torch.from_numpy(ids) for ids in tok.encode_arrays([text[:b], text[b:]]))
    return PreparedTokens(name, path, tok, train, val, {"train": b, "val": len(text) - b}, sha, nbytes)


def _first_tokens(documents, n: int) -> list:
    """The segments of ``documents`` (each a list of token arrays) that hold their first ``n`` tokens, the last cut
    to fit: a split larger than memory is never read whole for the part of it evaluation takes."""
    import numpy as np

    out, have = [], 0
    for doc in documents:
        for seg in doc:
            out.append(np.asarray(seg[: n - have]))
            have += len(out[-1])
            if have >= n:
                return out
    return out or [np.zeros(0, dtype=np.int64)]


@dataclass
class PreparedShards:
    """A shard directory (``makemore prepare``) ready to train on."""

    name: str
    path: Path
    shards: object  # makemore.shards.Shards
    seed: int
    mode = "text"
    hint = None

    @property
    def tokenizer(self):
        return self.shards.tokenizer

    @property
    def vocab(self) -> TokenVocab:
        return TokenVocab(self.shards.tokenizer)

    @property
    def num_train(self) -> int:
        return self.shards.tokens("train")

    def batches(self, model, block_size: int, cfg, held_train: int | None = None) -> ShardBatches:
        import numpy as np

        from makemore.shards import TokenWindows

        # (a fixed-context model is refused by ``check_request``, from the family alone)
        vocab_size = self.tokenizer.vocab_size
        held = self.shards.tokens("train")
        if held <= block_size:  # (said of these shards, not of tokens somewhere)
            raise MakemoreError(f"{self.path}: the train shards hold {plural(held, 'token')}, fewer than one window "
                                f"of {block_size + 1}; lower --block-size or prepare more text")
        windows = TokenWindows(self.shards.documents("train"), block_size, seed=self.seed, vocab_size=vocab_size)
        val = np.concatenate(_first_tokens(self.shards.documents("val"), MAX_EVAL_TOKENS))  # (all that is read)
        idx = self.shards.index["splits"]
        if val.size and int(val.max()) >= vocab_size:
            raise MakemoreError(f"{self.path}: the val shards hold token id {int(val.max()):,}, outside the "
                                f"tokenizer's {vocab_size:,}; the shards are damaged (make them again)")
        for split in ("train", "val"):
            if not idx[split]["chars"]:
                raise MakemoreError(f"{self.path}: the {split} documents hold no text (bits per character need "
                                    f"some); make the shards again from a corpus with text in both")
        return ShardBatches(windows, val, self.tokenizer, {s: idx[s]["chars"] for s in ("train", "val")},
                            {s: idx[s]["tokens"] for s in ("train", "val")}, block_size, name=str(self.path),
                            held_train=held_train)

    def dataset_config(self, max_len: int | None = None) -> dict:
        t, idx = self.tokenizer, self.shards.index
        return {"name": self.name, "path": str(self.path.resolve()), "kind": "shards",
                "index_sha256": _sha256(self.path / "index.json"),
                "chars": sum(s["chars"] for s in idx["splits"].values()),
                "tokenizer": {"file": RUN_TOKENIZER, "sha256": t.sha256, "vocab_size": t.vocab_size,
                              "padded": padded_vocab(t.vocab_size), "pattern": t.pattern}}

    def split_config(self, seed: int | None = None) -> dict:
        idx = self.shards.index["splits"]
        return {"kind": "shards", "train": idx["train"]["tokens"], "val": idx["val"]["tokens"], "test": 0,
                "train_chars": idx["train"]["chars"], "val_chars": idx["val"]["chars"],
                "documents": {s: idx[s]["documents"] for s in ("train", "val")}, "seed": self.seed}

    def split_file(self) -> None:
        return None

    def run_files(self) -> dict[str, bytes]:
        return {RUN_TOKENIZER: self.tokenizer.to_json()}

    def describe(self) -> str:
        idx = self.shards.index["splits"]
        return (f"{self.path}: token shards, {idx['train']['tokens']:,} train tokens in "
                f"{plural(idx['train']['documents'], 'document')}, {idx['val']['tokens']:,} val tokens; "
                f"{self.tokenizer.describe()}" + self._unlisted())

    def _unlisted(self) -> str:
        """Shard files in the directory that index.json does not list: never read, and said so."""
        import re

        listed = {s.get("file") for s in self.shards.index.get("shards", []) if isinstance(s, dict)}
        try:
            extra = sorted(p.name for p in self.path.iterdir()
                           if re.fullmatch(r"(train|val)_\d+\.bin", p.name) and p.name not in listed)
        except OSError:
            return ""
        if not extra:
            return ""
        shown = ", ".join(extra[:3]) + (", ..." if len(extra) > 3 else "")
        return f"; {plural(len(extra), 'shard file')} not in index.json, not read ({shown})"


def _sha256(path: Path) -> str:
    """Of a shard directory's index.json, read within the limit its reader keeps."""
    import hashlib

    from makemore.files import read_limited
    from makemore.shards import MAX_INDEX_BYTES

    return hashlib.sha256(read_limited(path, MAX_INDEX_BYTES)).hexdigest()


def prepare_shards(data: str | Path, seed: int) -> PreparedShards:
    from makemore.shards import Shards

    path = Path(data)
    return PreparedShards(path.name, path, Shards(path), seed)


def batches_for_run(run, model, held_train: int | None = None):
    """A token run's batches again (``--resume``, ``eval``): the same text or shards, checked by sha256.
    ``run``: a ``makemore.rundir.RunDir``; ``held_train``: the train tokens shards hold for evaluation."""
    from makemore.rundir import CONFIG

    config = run.config
    where = Path(run.path) / CONFIG
    dataset = config.dataset or {}
    tok = run_tokenizer(run)
    block = config.model.block_size
    path = Path(str(dataset.get("path")))
    if dataset.get("kind") == "shards":
        if not path.exists():
            raise MakemoreError(f"{path}: the shards this run trained on are gone (config.json names them); put "
                                f"them back, or record where they are now with `makemore train SHARDS --resume "
                                f"{run.path}`")
        prepared = prepare_shards(path, int((config.split or {}).get("seed", 0)))
        if _sha256(path / "index.json") != dataset.get("index_sha256"):
            raise MakemoreError(f"{path}: the shards changed since the run began (index.json's sha256 differs "
                                f"from {where})")
    else:
        if path.exists() and not path.is_file():  # a folder or a device where the text was
            raise MakemoreError(f"{path}: not a file, where config.json names the text this run trained on; put "
                                f"the text back, or record where it is now with `makemore train FILE --resume "
                                f"{run.path}`")
        if not path.is_file():
            raise MakemoreError(f"{path}: the text this run trained on is gone (config.json names it); put it "
                                f"back, or record where it is now with `makemore train FILE --resume {run.path}`")
        prepared = prepare_tokens(str(path), Path(run.path) / RUN_TOKENIZER)
        if prepared.sha256 != dataset.get("sha256"):
            raise MakemoreError(f"{path}: changed since the run began (sha256 differs from {where})")
    if prepared.tokenizer.sha256 != tok.sha256:
        raise MakemoreError(f"{path}: made with another tokenizer than this run's")
    if held_train is not None and dataset.get("kind") == "shards":
        return prepared.batches(model, block, None, held_train=held_train)
    return prepared.batches(model, block, None)


# --- commands ----------------------------------------------------------------------------------------

def sample_command(loaded, *, n, prompt, length, temperature, top_k, top_p, as_json, output, seed) -> None:
    """Continue ``prompt`` by ``length`` characters; without --json each piece is printed as it decodes."""
    import torch

    from makemore.commands import emit_continuations

    tok = loaded.vocab.tokenizer
    generator = torch.Generator().manual_seed(seed)
    emit_continuations(loaded.run_dir, prompt, length, n, lambda: generate_tokens(
        loaded.model, tok, prompt, length, temperature=temperature, top_k=top_k, top_p=top_p,
        generator=generator), as_json=as_json, output=output)


def evaluate_run(loaded, *, file=None, split: str = "val") -> dict:
    """A token run's nats per token and bits per character on its val (or train) split, or another text file."""
    import torch

    from makemore.text import stream_loss, window_skip

    run_dir, model = loaded.run_dir, loaded.model
    # where the model lives: a counted n-gram has buffers and no parameters
    device = next((t.device for t in (*model.parameters(), *model.buffers())), torch.device("cpu"))
    block = loaded.config.model.block_size
    tok = loaded.vocab.tokenizer
    if file is not None:
        text, _, _ = _read_normalised(Path(file))
        ids = torch.from_numpy(tok.encode_arrays([text])[0])
        skip = window_skip(model)
        try:
            loss = stream_loss(model, ids, block, skip, device, unit="token")
        except MakemoreError as e:
            raise MakemoreError(f"{file}: {e}") from None
        # what was predicted: every token after the first window's context (as a character run counts them)
        where, tokens, chars = str(file), len(ids) - skip - 1, len(text) - _chars(tok, ids[:skip + 1])
    else:
        if split not in ("train", "val"):
            raise MakemoreError(f"{run_dir}: a text run has no {split} split; its held-out part is val")
        # the train split of shards: its first tokens in epoch 0's order, as many as the val split may hold
        batches = batches_for_run(loaded.run, model, MAX_EVAL_TOKENS + block + 1 if split == "train" else None)
        loss = batches.evaluate(model, split, device, max_tokens=None)
        held = batches.splits[split]
        whole = getattr(batches, "tokens", {}).get(split, len(held))
        where = f"{split} split"
        tokens, chars = batches.predicted(split)  # as training's evaluations count them
        if len(held) < whole:  # shards: evaluation holds the split's first tokens only (``ShardBatches``)
            order = " in the first epoch's order" if split == "train" else ""
            where = f"{split} split, its first {len(held):,} of {whole:,} tokens{order}"
    return {"run": str(run_dir), "on": where, "tokens": tokens, "chars": chars, "loss": loss,
            "loss_unit": "nats/token", "bpc": bits_per_char(loss, tokens, chars), "perplexity": math.exp(loss),
            "step": loaded.step}


def _chars(tok, ids) -> int:
    """The characters of the text that token ids (a tensor) encode; an end-of-text token is none."""
    return len(tok.decode(ids[ids != tok.eot_id].tolist()))


def eval_command(loaded, *, file, split: str, as_json: bool) -> None:
    """Nats per token and bits per character on the val split (or train, or another text file)."""
    import json

    result = evaluate_run(loaded, file=file, split=split)
    if as_json:
        print(json.dumps(result))
    else:
        where, loss, bpc = result["on"], result["loss"], result["bpc"]
        tokens, chars = result["tokens"], result["chars"]
        print(f"{where}: {loss:.4f} nats/token · {bpc:.4f} bits/char ({chars / tokens:.2f} characters per token) "
              f"· perplexity {math.exp(loss):.2f} · {tokens:,} tokens · {loaded.run_dir} @ step {loaded.step}")
