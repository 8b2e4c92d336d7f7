"""How far a held-out loss can be trusted: the loss of runs on one split, with its spread over the words.

A test split of 1,000 names is a sample. Drawing its words again with replacement (a bootstrap) shows how much
the per-character loss would move on another sample of that size: the standard error of the figure itself. Two
runs scored on the same words differ by much less noise than either figure has (the same hard names are hard
for both), so each pair also gets its difference with a paired standard error. Given two runs or more, the
average of their predicted probabilities (an ensemble, here only as a measurement) is scored too. A run whose
model averages dropout masks (``--dropout-samples``) is scored as it predicts; with ``--one-pass`` also by its
one pass with dropout off, paired with the first.

    python benchmarks/split_noise.py RUN_A RUN_B [...]            # word runs on one word list and one split
    python benchmarks/split_noise.py RUN_A RUN_B --split val --resamples 5000
    python benchmarks/split_noise.py RUN --one-pass               # a run's mask average against its one pass
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import table  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="run directories (word runs on the same word list and split)")
    parser.add_argument("--split", default="test", choices=("val", "test"))
    parser.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples (default 2000)")
    parser.add_argument("--one-pass", action="store_true",
                        help="also score each run that averages dropout masks by its one pass with dropout off")
    args = parser.parse_args()

    import torch
    import torch.nn.functional as F

    from makemore.data import EncodedWords
    from makemore.rundir import RunDir

    loaded = [RunDir(Path(r)).load_model("best") for r in args.runs]
    for run, lr in zip(args.runs, loaded):
        if not lr.split:
            sys.exit(f"{run}: not a word run with a split (a text run is scored by `makemore eval`)")
    first = loaded[0]
    for run, other in zip(args.runs[1:], loaded[1:]):
        if other.split.get(args.split) != first.split.get(args.split) or other.vocab.chars != first.vocab.chars:
            sys.exit(f"{run}: its {args.split} split or vocabulary differs from {args.runs[0]}'s; "
                     "the runs must share both")
    words = EncodedWords(first.split[args.split], first.vocab)
    if len(words) == 0:
        sys.exit(f"{args.runs[0]}: the {args.split} split is empty")

    # what is scored: each run as it predicts, and with --one-pass each averaging run's one pass too
    scored = [(run, lr, False) for run, lr in zip(args.runs, loaded)]
    if args.one_pass:
        scored += [(f"{run} (one pass)", lr, True) for run, lr in zip(args.runs, loaded)
                   if getattr(lr.model.config, "dropout_samples", 0)]
    # per word: the summed NLL of its characters and stop token, under each and under the runs' average
    chars = torch.zeros(len(words))
    sums = {label: torch.zeros(len(words)) for label, _, _ in scored}
    average = torch.zeros(len(words))
    with torch.inference_mode():
        for start in range(0, len(words), 500):
            index = torch.arange(start, min(start + 500, len(words)))
            x, y = words.batch(index)
            keep = y != -1
            chars[index] = keep.sum(1).float()
            logps = []
            for label, lr, one_pass in scored:
                lr.model.eval()
                with lr.model.one_pass() if one_pass else contextlib.nullcontext():
                    logits, _ = lr.model(x)
                logp = F.log_softmax(logits.float(), -1).gather(-1, y.clamp(min=0).unsqueeze(-1)).squeeze(-1)
                sums[label][index] = -(logp * keep).sum(1)
                if not one_pass:
                    logps.append(logp)
            mixed = torch.logsumexp(torch.stack(logps), 0) - math.log(len(logps))
            average[index] = -(mixed * keep).sum(1)

    gen = torch.Generator().manual_seed(0)
    draws = torch.randint(len(words), (args.resamples, len(words)), generator=gen)
    drawn_chars = chars[draws].sum(1)

    def loss_and_se(per_word: torch.Tensor) -> tuple[float, float]:
        return float(per_word.sum() / chars.sum()), float((per_word[draws].sum(1) / drawn_chars).std())

    rows = []
    for label in sums:
        loss, se = loss_and_se(sums[label])
        rows.append([label, f"{loss:.4f}", f"{se:.4f}"])
    if len(args.runs) > 1:
        loss, se = loss_and_se(average)
        rows.append([f"average of the {len(args.runs)} runs' probabilities", f"{loss:.4f}", f"{se:.4f}"])
    print(f"{args.split} split: {len(words):,} words, {int(chars.sum()):,} characters and stop tokens; "
          f"bootstrap over words, {args.resamples:,} resamples")
    print(table(rows, ["run", "loss (nats/char)", "standard error"]))
    if len(sums) > 1:
        pairs = []
        for a, b in itertools.combinations(sums, 2):
            diff, se = loss_and_se(sums[a] - sums[b])
            pairs.append([f"{a} − {b}", f"{diff:+.4f}", f"{se:.4f}"])
        print()
        print(table(pairs, ["pair, on the same words", "difference", "paired standard error"]))


if __name__ == "__main__":
    main()
