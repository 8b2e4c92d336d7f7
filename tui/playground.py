"""Play with a model: draw samples at any temperature and prefix, score a word. No Textual here; the screen
calls these from a thread worker.

Two sources: the best checkpoint of a run directory (a finished, followed or replayed run), or the live
model of a paused trainer, used inside ``Trainer.idle()`` so that the run resumes exactly as if it had not
been touched. The playground draws with its own generator: pressing ``s`` twice gives new words, and the
trainer's generators are never advanced.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from pathlib import Path

from makemore.data import not_in_vocabulary
from makemore.errors import MakemoreError
from makemore.events import Sample, Samples
from makemore.text import default_prompt
from makemore.tui import backend
from makemore.tui.widgets.cells import middle

SHOWN_CELLS = 16  # a word wider than this is named by its start and end in a refusal

PLAY_SEED = 1234  # the playground's own generator; each draw continues it


@dataclass(frozen=True)
class Score:
    word: str
    nll: float  # mean negative log-likelihood per character, the stop token included (nats)
    tag: str  # train / test / new

    @property
    def perplexity(self) -> float:
        return math.exp(self.nll)


@dataclass(frozen=True)
class Drawn(Samples):
    """Samples drawn in the playground: the same record as the trainer's, plus where they came from."""

    source: str = ""  # "best checkpoint (step 4,000)" or "live model (paused at step 1,234)"
    prefix: str = ""


class Playground:
    """A model to play with. ``from_run`` loads the best checkpoint; ``from_trainer`` borrows a paused one."""

    def __init__(self, model, vocab, known: tuple[set[str], set[str]], step: int, source: str, trainer=None,
                 mode: str = "words"):
        import torch

        self.model, self.vocab, self.known, self.step, self.source = model, vocab, known, step, source
        self.mode = mode  # "text": a sample is a continuation of the prefix (decoded text on a token run)
        self.trainer = trainer
        self.generator = torch.Generator().manual_seed(PLAY_SEED)
        self._lock = threading.Lock()  # one job at a time (keys pressed quickly start overlapping workers)

    @classmethod
    def from_run(cls, run_dir: Path) -> Playground:
        run = backend.load_run(run_dir, "best")
        return cls(run.model, run.vocab, run.known_words(), run.step, f"best checkpoint (step {run.step:,})",
                   mode=run.mode)

    @classmethod
    def from_trainer(cls, trainer) -> Playground:
        known = trainer.known
        return cls(trainer.model, trainer.vocab, known, trainer.step, "", trainer=trainer,
                   mode=getattr(trainer.data, "mode", "words"))

    def _using(self):
        """The trainer's ``idle`` (its model held still, its state restored after), or a lock for a checkpoint."""
        if self.trainer is None:
            return self._lock
        return self.trainer.idle()

    def sample(self, n: int, temperature: float, prefix: str = "") -> Drawn:
        with self._using():
            averaged = self.trainer.averaged() if self.trainer is not None else _nothing()
            with averaged:
                if self.mode == "text":
                    text = backend.continue_text(self.model, self.vocab, prefix or default_prompt(self.vocab),
                                                 temperature=temperature,
                                                 generator=self.generator)
                else:
                    words = backend.generate(self.model, self.vocab, n, temperature=temperature, prefix=prefix,
                                             generator=self.generator, scores=False)
            step = self.trainer.step if self.trainer is not None else self.step
        source = self.source or f"live model (paused at step {step:,})"
        if self.mode == "text":
            return Drawn(step=step, temperature=temperature, source=source, prefix=prefix, samples=[],
                         text=(prefix or default_prompt(self.vocab)) + text)
        return Drawn(step=step, temperature=temperature, source=source, prefix=prefix,
                     samples=[Sample(g.word, backend.tag(g.word, *self.known)) for g in words])

    def score(self, word: str) -> Score:
        if not word:
            raise MakemoreError("type a word to score")
        if self.mode == "text":
            raise MakemoreError("a text run: scoring words is for word lists (`makemore eval RUN FILE` scores a text)")
        def shown(text: str) -> str:  # the score line has two rows: a long word by its ends, the reason in view
            return repr(middle(text, SHOWN_CELLS))

        why = not_in_vocabulary(word, self.vocab.stoi, shown)
        if why:
            raise MakemoreError(f"{shown(word)}: {why}")
        block = self.model.config.block_size
        if len(word) + 1 > block:
            raise MakemoreError(f"{shown(word)} is {len(word)} characters; this model reads at most {block - 1}")
        with self._using():
            averaged = self.trainer.averaged() if self.trainer is not None else _nothing()
            with averaged:
                was_training = self.model.training
                try:
                    nll = backend.word_nll(self.model, backend.encode_words([word], self.vocab))[0]
                finally:
                    self.model.train(was_training)
        return Score(word, nll, backend.tag(word, *self.known))

    def save(self):
        """Write the paused trainer's last checkpoint now; the Saved event it returns goes to the sinks."""
        if self.trainer is None:
            raise MakemoreError("nothing to save: this run is not training here")
        with self.trainer.idle():
            return self.trainer.save("request")


def _nothing():
    import contextlib

    return contextlib.nullcontext()
