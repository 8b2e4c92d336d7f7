"""Quality benchmark: train every model family with its default recipe and compare with the lectures' figures.

    python benchmarks/quality.py                         # every family on ../shared/data/names.txt
    python benchmarks/quality.py --types mlp,wavenet     # some of them
    python benchmarks/quality.py --json > quality.json   # for the README

Each row trains through the same code path as `makemore train` (makemore.training.new_trainer, then
trainer.run()) into its own run directory, and reports the test loss of the checkpoint chosen by validation.
Families with no row below get one with no figure, so a new family is benchmarked as soon as it is registered.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "names.txt"
APPROX = 0.03  # "≈ figure" is met within this many nats above it


@dataclass(frozen=True)
class Row:
    label: str
    model_type: str
    hyper: dict[str, Any] = field(default_factory=dict)  # on top of the family's defaults
    figure: float | None = None  # the lectures' test/val loss on names.txt (nats per character)
    approx: bool = False  # the figure is to be matched (≈) rather than beaten (≤)
    below: str | None = None  # the label of a row whose test loss this one must beat
    source: str = ""


ROWS = [
    Row("ngram", "ngram", figure=2.45, approx=True, source="lecture 1, counted bigram"),
    Row("ngram --context 2", "ngram", {"context": 2}, below="ngram", source="trigram: lower than the bigram"),
    Row("bigram", "bigram", figure=2.45, approx=True, source="lecture 1, neural bigram"),
    Row("mlp", "mlp", figure=2.17, source="lecture 2"),
    Row("mlp --batchnorm", "mlp", {"batchnorm": True}, figure=2.10, source="lecture 3"),
    Row("wavenet", "wavenet", figure=1.99, source="lecture 5"),
    Row("rnn", "rnn", below="mlp", source="beats mlp"),
    Row("gru", "gru", below="mlp", source="beats mlp"),
    Row("lstm", "lstm", below="mlp", source="beats mlp"),
    Row("bow", "bow", source="reported"),
    Row("transformer", "transformer", figure=1.92, source="reference makemore"),
]


def rows_for(types: list[str] | None) -> list[Row]:
    from makemore.models import FAMILIES, get_family

    rows = list(ROWS) + [Row(name, name) for name in FAMILIES if not any(r.model_type == name for r in ROWS)]
    if types is None:
        return [r for r in rows if r.model_type in FAMILIES]
    for t in types:
        get_family(t)  # an unknown type: a clear error
    return [r for r in rows if r.model_type in types]


def train_row(row: Row, data: str, runs: Path, seed: int, device: str) -> dict[str, Any]:
    from makemore.events import Eval, Finished, Started
    from makemore.training import Request, new_trainer

    out = runs / row.label.replace(" --", "-").replace(" ", "-")
    request = Request(data=data, model_type=row.model_type, out=out, hyper=dict(row.hyper), seed=seed,
                      device=device)
    t0 = time.perf_counter()
    trainer, _ = new_trainer(request)
    evals: dict[int, Eval] = {}
    params = finished = None
    for event in trainer.run():
        if isinstance(event, Started):
            params = event.num_params
        elif isinstance(event, Eval):
            evals[event.step] = event
        elif isinstance(event, Finished):
            finished = event
    wall = time.perf_counter() - t0
    assert finished is not None
    best = min(evals.values(), key=lambda e: e.val_loss, default=None)  # the checkpoint tested
    return {
        "label": row.label, "type": row.model_type, "hyper": trainer_hyper(out), "params": params,
        "steps": finished.step, "wall_s": round(wall, 1), "train_s": round(finished.elapsed, 1),
        "train": best.train_loss if best else None, "val": best.val_loss if best else None,
        "test": finished.test_loss, "figure": row.figure, "approx": row.approx, "below": row.below,
        "source": row.source,
    }


def trainer_hyper(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "config.json").read_text())["model"]["hyper"]


def judge(results: list[dict[str, Any]]) -> None:
    """Fill in each row's target and whether it is met."""
    by_label = {r["label"]: r for r in results}
    for r in results:
        r["target"], r["met"] = None, None
        if r["figure"] is not None:
            r["target"] = f"{'≈' if r['approx'] else '≤'} {r['figure']:.2f}"
            r["met"] = r["test"] <= r["figure"] + (APPROX if r["approx"] else 0.0)
        elif r["below"] is not None and r["below"] in by_label:
            other = by_label[r["below"]]["test"]
            r["target"] = f"< {r['below']} ({other:.3f})"
            r["met"] = r["test"] < other


def table(results: list[dict[str, Any]]) -> str:
    head = ["type", "params", "steps", "wall", "train", "val", "test", "lectures", "met"]
    lines = []
    for r in results:
        met = {True: "yes", False: "NO", None: ""}[r["met"]]
        lines.append([r["label"], f"{r['params']:,}", f"{r['steps']:,}", f"{r['wall_s']:.0f} s",
                      f"{r['train']:.3f}", f"{r['val']:.3f}", f"{r['test']:.3f}", r["target"] or r["source"], met])
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(head)]
    fmt = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    return "\n".join([fmt(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(fmt, lines)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="word list (default: %(default)s)")
    parser.add_argument("--types", help="comma-separated model types (default: every family)")
    parser.add_argument("--runs", type=Path, help="keep the run directories here (default: a temporary folder)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    args = parser.parse_args(argv)

    from makemore.errors import MakemoreError

    try:
        rows = rows_for(args.types.split(",") if args.types else None)
        with tempfile.TemporaryDirectory(prefix="makemore-quality-") as tmp:
            runs = args.runs or Path(tmp)
            results = []
            for row in rows:
                print(f"training {row.label} ...", file=sys.stderr, flush=True)
                results.append(train_row(row, args.data, runs, args.seed, args.device))
                r = results[-1]
                print(f"  test {r['test']:.4f} after {r['steps']} steps, {r['wall_s']:.0f} s", file=sys.stderr,
                      flush=True)
    except MakemoreError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    judge(results)
    print(json.dumps(results, indent=2) if args.json else table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
