"""Loss of a model on a list of words: mean negative log-likelihood per character (the stop token counts)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from makemore.data import EncodedWords

MAX_LOGITS = 1 << 24  # logits per evaluation batch (64 MiB in float32): bounds memory for huge vocabularies


def _batch_size(model, words: EncodedWords, batch_size: int) -> int:
    """``batch_size`` words, fewer when (words x positions x vocabulary) logits would exceed MAX_LOGITS."""
    per_word = words.tokens.size(1) * model.config.vocab_size
    return max(1, min(batch_size, MAX_LOGITS // per_word))


@torch.inference_mode()
def evaluate(model, words: EncodedWords, batch_size: int = 512, device=None) -> float:
    """Mean NLL in nats per character over every word (NaN for an empty list).

    A model that trains on packed rows (the Transformer) is scored on packed rows too: several words to a row,
    each attending to itself only, the same loss as one padded row per word (to float rounding) in about half
    the positions (what it saves: benchmarks/README.md). A model averaging dropout masks is scored so too: each
    position's masks are drawn independently, whatever row holds it, so packed rows average the same ensemble
    in half the passes' work (its masks differ from the padded rows', its loss by the Monte Carlo noise)."""
    if len(words) == 0:
        return math.nan
    size = _batch_size(model, words, batch_size)
    if _packs(model, words):
        return mean_nll(model, _packed_batches(words, size, model.config.block_size, device))
    return mean_nll(model, words.iter_batches(size, device))


def _packs(model, words: EncodedWords) -> bool:
    """Whether ``words`` are scored on packed rows: a model that packs, and every word fitting a row."""
    return bool(getattr(model, "packs", False)) and int(words.lengths.max()) + 1 <= model.config.block_size


def _packed_batches(words: EncodedWords, batch_size: int, row_len: int, device):
    """(x, y, {"pos": positions}) of ``batch_size`` words at a time, packed into rows of ``row_len`` slots."""
    for i in range(0, len(words), batch_size):
        x, y, pos = words.packed_batch(torch.arange(i, min(i + batch_size, len(words))), row_len, device)
        yield x, y, {"pos": pos}


@torch.inference_mode()
def mean_nll(model, batches) -> float:
    """Mean NLL in nats over the targets of ``batches`` ((x, y) pairs, or (x, y, the model's keyword arguments);
    targets of -1 are padding), with the model in eval mode for the duration. Words and text streams are both
    scored by it."""
    was_training = model.training
    model.eval()
    total = torch.zeros((), dtype=torch.float64)
    count = 0
    try:
        for x, y, *extra in batches:  # (x, y) or (x, y, keyword arguments of the model: packed rows' positions)
            logits, _ = model(x, **(extra[0] if extra else {}))
            nll = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1),
                                  ignore_index=-1, reduction="sum")
            total += nll.double().cpu()
            count += int((y != -1).sum())
    finally:
        model.train(was_training)
    return float(total) / count


@torch.inference_mode()
def word_nll(model, words: EncodedWords, device=None) -> list[float]:
    """Each word's mean NLL per character (its characters and the stop token)."""
    model.eval()
    return (-word_logprobs(model, words, device=device) / (words.lengths + 1)).tolist()


@torch.inference_mode()
def word_logprobs(model, words: EncodedWords, skip: int = 0, device=None) -> torch.Tensor:
    """Each word's log-probability under ``model`` as it is (float64, on the CPU): the sum over its characters
    and its stop token, the targets of its first ``skip`` positions (a prefix given) not counted. On packed rows
    where ``evaluate`` packs them (a model averaging dropout masks runs its passes over half the positions)."""
    out = torch.zeros(len(words), dtype=torch.float64)
    size = _batch_size(model, words, 512)
    packed = len(words) > 0 and _packs(model, words)
    for i in range(0, len(words), size):
        index = torch.arange(i, min(i + size, len(words)))
        if packed:  # word, row, column of each target; its position within its word
            x, y, pos, (word, r, c) = words.packed_batch(index, model.config.block_size, device, slots=True)
            logits, _ = model(x, pos=pos)
            t = pos.cpu()[r, c]
        else:  # one row per word
            x, y = words.batch(index, device)
            logits, _ = model(x)
            word, c = (y.cpu() != -1).nonzero(as_tuple=True)
            r, t = word, c
        logp = logits.float().log_softmax(-1).gather(-1, y.clamp(min=0).unsqueeze(-1)).squeeze(-1).cpu()
        keep = t >= skip
        out[i:i + len(index)].index_add_(0, word[keep], logp[r[keep], c[keep]].double())
    return out


def bits(nats: float) -> float:
    return nats / math.log(2)


def score_words(loaded, words: list[str]) -> list[float]:
    """Each word's mean NLL per character under a loaded run's model (the white space around a word stripped, as
    a word list's lines are); a word it cannot score is refused."""
    from makemore.data import check_scorable

    words = check_scorable(words, loaded.config.model.block_size, loaded.vocab)
    if not words:
        return []
    return word_nll(loaded.model, EncodedWords(list(words), loaded.vocab), device=_device(loaded.model))


def _device(model):
    return next(iter(model.parameters()), torch.zeros(())).device


def evaluate_on(loaded, file=None, split: str = "test", skip_unknown: bool = False, read=None) -> dict:
    """Loss of a loaded run's model on a word list ``file`` or on one of its splits: loss and bits per character,
    words evaluated, and, for a file, its lines and the words skipped by reason (longer than the model's block;
    characters outside its vocabulary, which refuse the file unless ``skip_unknown``; duplicates; empty lines).
    What `makemore eval` and the Python API's ``Model.evaluate`` both call; ``read``: ``file`` as
    ``read_words_for_model`` read it already (before torch, to refuse a bad file at once)."""
    from pathlib import Path

    from makemore.data import read_words_for_model
    from makemore.errors import MakemoreError

    extra: dict = {}
    if file is not None:
        longest = loaded.config.model.block_size - 1
        read = read or read_words_for_model(Path(file), loaded.vocab, longest, skip_unknown=skip_unknown)
        words, where = read.words, str(file)
        extra = {"lines": read.lines, "skipped": read.skipped(), "longest": longest,
                 "unknown_chars": read.unknown_chars}
    else:
        if split not in ("train", "val", "test"):
            raise MakemoreError(f"--split must be train, val or test, not {split!r}")
        if not loaded.split:
            raise MakemoreError(f"{loaded.run_dir}: no split.json; name a file to evaluate on")
        words = loaded.split[split]
        if not words:
            raise MakemoreError(f"{loaded.run_dir}: the {split} split is empty (the word list was too small)")
        where = f"{split} split"
    loss = evaluate(loaded.model, EncodedWords(words, loaded.vocab), device=_device(loaded.model))
    masks = getattr(loaded.model.config, "dropout_samples", 0)
    if masks:  # the model predicts the average of this many dropout masks' predictions
        extra["dropout_samples"] = masks
    return {"on": where, "words": len(words), "loss": loss, "bpc": bits(loss), "perplexity": math.exp(loss), **extra}


def evaluate_text(loaded, *, file=None, split: str = "val") -> dict:
    """A text run's loss on its val (or train) split, or on another text ``file``: loss (nats per character, or
    per token for a token run), bpc (bits per character of the text), perplexity, and what was scored."""
    from pathlib import Path

    from makemore.errors import MakemoreError
    from makemore.text import batches_for_run, read_text, stream_loss, window_skip

    if hasattr(loaded.vocab, "tokenizer"):
        from makemore.tokentext import evaluate_run

        return evaluate_run(loaded, file=file, split=split)
    run_dir = loaded.run_dir
    param = next(loaded.model.parameters(), None)
    device = param.device if param is not None else None
    block = loaded.config.model.block_size
    if file is not None:
        stream = read_text(Path(file), chars=loaded.vocab.chars).stream
        skip = window_skip(loaded.model)
        try:
            loss = stream_loss(loaded.model, stream, block, skip, device)
        except MakemoreError as e:
            raise MakemoreError(f"{file}: {e}") from None
        where, chars = str(file), len(stream) - skip - 1
    else:
        if split not in ("train", "val"):
            raise MakemoreError(f"{run_dir}: a text run has no {split} split; its held-out part is val, the last "
                                f"10% of the text (as nanoGPT's); use --split val or name a file")
        batches = batches_for_run(loaded.run, loaded.model)
        loss = batches.evaluate(loaded.model, split, device, max_tokens=None)
        where = f"{split} split"
        chars = len(batches.splits[split]) - batches.skip - 1  # all but the first window's context
    return {"run": str(run_dir), "on": where, "chars": chars, "loss": loss, "loss_unit": "nats/char",
            "bpc": bits(loss), "perplexity": math.exp(loss), "step": loaded.step}
