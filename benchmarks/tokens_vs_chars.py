"""Character model against token models of the same text, in the same CPU time: val bits per character.

Tiny Shakespeare is split at the same character for both (the first 90% of the characters train, the rest
validate), so bits per character compare directly: a character model's loss in bits, and a token model's total
nats over the val text's characters (loss per token x tokens / characters / ln 2). Each model is the
Transformer with the family's text recipe for the time budget (`makemore train --max-time`), trained by the
real command; the token models use tokenizers trained on the training part only.

    python benchmarks/tokens_vs_chars.py                        # 600 s each: char, and tokens at 512 and 1280
    python benchmarks/tokens_vs_chars.py --seconds 5 --vocab 300 # a quick check of the script
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, table  # noqa: E402

SHAKESPEARE = REPO.parent / "shared" / "data" / "tinyshakespeare.txt"


def makemore(*args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "makemore", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"makemore {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(SHAKESPEARE))
    parser.add_argument("--seconds", type=float, default=600, help="training budget of each model")
    parser.add_argument("--vocab", default="512,1280", help="tokenizer sizes for the token models")
    parser.add_argument("--extra", default="", help="more `makemore train` options for every model, e.g. "
                        "'--n-embd 128'")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="makemore-tokens-vs-chars-"))
    data = Path(args.data)
    text = data.read_text()
    train_part = root / "train-part.txt"  # the tokenizer never sees the validation characters
    train_part.write_text(text[: int(len(text) * 0.9)])
    extra = args.extra.split()
    rows = []
    runs = [("characters", None)] + [(f"tokens, vocab {v}", int(v)) for v in args.vocab.split(",") if v]
    for label, vocab in runs:
        out = root / (f"tok{vocab}" if vocab else "chars")
        options = ["train", str(data), "--mode", "text", "--max-time", f"{args.seconds:g}", "-o", str(out), "-q",
                   *extra]
        if vocab:
            tok = root / f"tok{vocab}.json"
            makemore("tokenizer", "train", str(train_part), "--vocab-size", str(vocab), "-o", str(tok))
            options += ["--tokenizer", str(tok)]
        makemore(*options)
        ev = json.loads(makemore("eval", str(out), "--json"))
        config = json.loads((out / "config.json").read_text())
        rows.append([label, f"{config['model']['num_params']:,}", str(config["model"]["block_size"]),
                     f"{ev['loss']:.4f}", f"{ev['bpc']:.4f}", f"{ev['chars'] / ev.get('tokens', ev['chars']):.2f}"])
    print(f"{data}: val bits per character after {args.seconds:g} s of training each (best-val checkpoint)")
    print(table(rows, ["model", "params", "block", "val loss (nats per unit)", "val bits/char", "chars/unit"]))
    best = min(rows, key=lambda r: float(r[4]))
    print(f"best: {best[0]} at {best[4]} bits per character; run directories under {root}")


if __name__ == "__main__":
    main()
