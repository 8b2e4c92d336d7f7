"""Batch sources: what the trainer draws its batches from, evaluates on and samples with.

Two modes, one interface, so the trainer has no branch on the mode:

- ``WordBatches`` (this file): a word list, one word per row, each word a whole sequence from the start token
  to the stop token (the Transformer packs several words to a row);
- ``makemore.text.TextBatches``: one character stream, random windows of its training part.

A source offers ``mode``, ``unit`` (word, character or token), ``num_items`` (training items of that unit),
``has(split)``, ``draw(batch_size, generator)`` (the global batch's indices: the same on every rank),
``targets(index)`` (the predictions they hold, to weight micro-batches), ``micro_batch(index, model, pack,
device) -> (x, y, extra)``, ``evaluate(model, split, device)``, ``fit(model, device)`` (count models),
``samples(...)`` (a Samples event) and ``bigram_table(model, device)``.
"""

from __future__ import annotations

import torch

from makemore.data import EncodedWords, Vocab
from makemore.evaluation import evaluate
from makemore.events import Sample, Samples
from makemore.sample import NoEnd, generate, tag


class WordBatches:
    mode = "words"
    unit = "word"  # what num_items counts

    def __init__(self, splits: dict[str, EncodedWords], vocab: Vocab, eval_words: int = 1000):
        self.vocab = vocab
        self.splits = splits
        self.eval_subset = splits["train"].head(eval_words)  # fixed subset: the train loss at each evaluation
        self.known = (set(splits["train"].words), set(splits["val"].words) | set(splits["test"].words))
        self.num_items = len(splits["train"])

    def has(self, split: str) -> bool:
        return len(self.splits[split]) > 0

    def draw(self, batch_size: int, generator) -> torch.Tensor:
        return torch.randint(len(self.splits["train"]), (batch_size,), generator=generator)

    def targets(self, index) -> int:
        return int(self.splits["train"].lengths[index].sum()) + len(index)  # a word's characters and its stop

    def micro_batch(self, index, model, pack: bool, device):
        words = self.splits["train"]
        if pack and model.packs:
            x, y, pos = words.packed_batch(index, model.config.block_size, device)
            return x, y, {"pos": pos}
        x, y = words.batch(index, device)
        return x, y, {}

    def evaluate(self, model, split: str, device=None) -> float:
        return evaluate(model, self.eval_subset if split == "train" else self.splits[split], device=device)

    def fit(self, model, device) -> None:
        x, y = self.splits["train"].batch(torch.arange(len(self.splits["train"])), device)
        model.fit(x, y)

    def samples(self, model, step: int, temperature: float, generator, device, n: int = 12) -> Samples:
        """The preview of an evaluation: drawn as `makemore sample` draws, or, from a model that hardly ever ends
        a word within its window (a preview must not stop the run), with the words still going ended there."""
        try:
            words = generate(model, self.vocab, n, temperature=temperature, generator=generator, device=device,
                             scores=False)
        except NoEnd:
            words = generate(model, self.vocab, n, temperature=temperature, generator=generator, device=device,
                             scores=False, stop_at_window=True)
        return Samples(step=step, temperature=temperature,
                       samples=[Sample(g.word, tag(g.word, *self.known)) for g in words])

    def bigram_table(self, model, device=None) -> torch.Tensor:
        return model.bigram_table()
