"""Byte-level BPE figures: training time and compression on Tiny Shakespeare, encoding throughput, and
`makemore prepare` throughput and peak memory on a generated corpus.

1. Training: a tokenizer of 512, 1,280 and 4,352 tokens (256 bytes + about 256, 1,024 and 4,096 merges; the
   ids include <|endoftext|>) on Tiny Shakespeare: seconds to train, characters and bytes per token on the
   same text.
2. Encoding, in MB of UTF-8 per second, at one vocabulary size: makemore's ``Tokenizer.encode_batch`` (the text
   in safe pieces, encoded in parallel), the `tokenizers` library's own ``Tokenizer.encode`` on the whole text
   in one call, and the lecture's reference: a plain-Python loop (regex pre-split, then repeatedly merge the
   pair of lowest rank) on a prefix of the text (it is slow: --python-chars). Every encoder's ids are checked
   to equal makemore's.
3. `makemore prepare` on a generated corpus (a directory of files of shuffled Tiny Shakespeare lines) of each
   size in --prepare-mb, run as the real command in a subprocess: MB/s, and the peak resident memory of that
   process (``ru_maxrss``), which should not grow with the corpus.
4. Token text mode's memory: the peak resident memory of `makemore train TEXT --mode text --tokenizer TOK
   --max-steps 1` (the whole text encoded in memory) on the text repeated 1 and --copies times, and of `makemore
   prepare` on the same texts with their line breaks made spaces (no line break to cut at), and of `makemore
   tokenizer train` on them with a space before each line break: the slope between the two sizes is what each
   character of text costs.

    python benchmarks/tokenizer.py                                   # everything (500 MB corpus: minutes)
    python benchmarks/tokenizer.py --vocab 512 --prepare-mb 1 --python-chars 2000 --reps 1   # a quick check
    python benchmarks/tokenizer.py --vocab 512 --prepare-mb "" --python-chars 2000 --reps 1 --copies 12  # memory
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, table  # noqa: E402

SHAKESPEARE = REPO.parent / "shared" / "data" / "tinyshakespeare.txt"


def python_bpe_encoder(tok):
    """The lecture's encoder, written plainly: split with the pattern, then in each piece merge the pair of
    lowest rank until no pair of the piece has been merged in training (minbpe's encode_ordinary)."""
    import regex

    from makemore.tokenizer import PATTERNS

    pattern = regex.compile(PATTERNS[tok.pattern])
    rank = {(a, b): r for r, (a, b, _) in enumerate(tok.merges)}
    new_id = {(a, b): new for a, b, new in tok.merges}

    def encode_piece(ids: list[int]) -> list[int]:
        while len(ids) >= 2:
            pair = min(set(zip(ids, ids[1:])), key=lambda p: rank.get(p, float("inf")))
            if pair not in rank:
                break
            new, out, i = new_id[pair], [], 0
            while i < len(ids):
                if i < len(ids) - 1 and ids[i] == pair[0] and ids[i + 1] == pair[1]:
                    out.append(new)
                    i += 2
                else:
                    out.append(ids[i])
                    i += 1
            ids = out
        return ids

    def encode(text: str) -> list[int]:
        out = []
        for piece in pattern.findall(text):
            out.extend(encode_piece(list(piece.encode("utf-8"))))
        return out

    return encode


def best_of(fn, reps: int) -> float:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def generate_corpus(folder: Path, megabytes: float, seed: int = 0, file_mb: float = 4.0) -> int:
    """Files of about ``file_mb`` MB of shuffled Tiny Shakespeare lines, ``megabytes`` in all."""
    lines = SHAKESPEARE.read_text().splitlines(keepends=True)
    rng = random.Random(seed)
    folder.mkdir(parents=True)
    total, target, k = 0, int(megabytes * 2**20), 0
    while total < target:
        size, chunk = min(int(file_mb * 2**20), target - total), []
        got = 0
        while got < size:
            line = rng.choice(lines)
            chunk.append(line)
            got += len(line)
        data = "".join(chunk).encode()
        (folder / f"doc_{k:05d}.txt").write_bytes(data)
        total += len(data)
        k += 1
    return total


# Runs the command from a small Python process: a child forked from this (large) script would count the pages
# it shares with it in its peak resident memory until it execs.
_LAUNCHER = """import resource, subprocess, sys
rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(rc)"""


def run_prepare(corpus: Path, tok_path: Path, out: Path) -> tuple[float, int]:
    """Seconds and peak RSS (bytes) of `makemore prepare` as its own process."""
    return run_measured(["prepare", str(corpus), "--tokenizer", str(tok_path), "-o", str(out), "--quiet"])


def run_measured(args: list[str]) -> tuple[float, int]:
    """Seconds and peak RSS (bytes) of `makemore ARGS` as its own process."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _LAUNCHER, sys.executable, "-m", "makemore", *args],
                          capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"makemore {args[0]} failed: {proc.stderr.strip()}")
    return seconds, int(proc.stdout.split()[-1]) * 1024  # Linux reports kilobytes


TRAIN_SPACED = "tokenizer train, lines end in a space"


def token_text_memory(text: str, tok, copies: int, folder: Path) -> None:
    """Section 4: peak RSS of a one-step token text run and of prepare without line breaks, at two sizes."""
    tok_path = folder / "tok.json"
    tok.save(tok_path)
    rows, peaks = [], {}
    for n in (1, copies):
        whole, flat, spaced = folder / f"text-{n}.txt", folder / f"flat-{n}.txt", folder / f"spaced-{n}.txt"
        whole.write_text(text * n)
        flat.write_text((text * n).replace("\n", " "))
        spaced.write_text((text * n).replace("\n", " \n"))  # no line break between two words to cut at
        chars = len(text) * n
        for what, args in (("train --mode text --tokenizer, 1 step", [
                "train", str(whole), "--mode", "text", "--tokenizer", str(tok_path), "--n-layer", "1", "--n-embd",
                "16", "--n-head", "2", "--block-size", "16", "--max-steps", "1", "-q", "-o", str(folder / f"run-{n}")]),
                           ("prepare, no line breaks", ["prepare", str(flat), "--tokenizer", str(tok_path), "-o",
                                                        str(folder / f"shards-{n}"), "--quiet"]),
                           (TRAIN_SPACED, ["tokenizer", "train", str(spaced), "--vocab-size", str(tok.vocab_size),
                                           "-o", str(folder / f"tok-{n}.json")])):
            seconds, rss = run_measured(args)
            peaks[what, n] = (chars, rss)
            rows.append([what, f"{chars / 2**20:,.1f}", f"{seconds:.1f}", f"{rss / 2**20:,.0f}"])
    print(f"\nToken text mode's memory (vocab {tok.vocab_size:,}; the text 1 and {copies} times)")
    print(table(rows, ["command", "M chars", "seconds", "peak RSS MB"]))
    for what in ("train --mode text --tokenizer, 1 step", "prepare, no line breaks", TRAIN_SPACED):
        (c1, r1), (c2, r2) = peaks[what, 1], peaks[what, copies]
        print(f"{what}: {(r2 - r1) / (c2 - c1):.1f} bytes of peak memory per character of text")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(SHAKESPEARE), help="text to train and encode (Tiny Shakespeare)")
    parser.add_argument("--vocab", default="512,1280,4352", help="vocabulary sizes to train")
    parser.add_argument("--encode-vocab", type=int, default=None, help="vocabulary of the encoding comparison "
                        "(default: the largest of --vocab)")
    parser.add_argument("--python-chars", type=int, default=100_000, help="characters the plain-Python loop "
                        "encodes")
    parser.add_argument("--prepare-mb", default="50,500", help="sizes of the generated corpora, in MB ('' skips)")
    parser.add_argument("--reps", type=int, default=3, help="timings per figure (the best is reported)")
    parser.add_argument("--tmp", default=None, help="directory for the generated corpora (default: a temporary one)")
    parser.add_argument("--copies", type=int, default=12, help="times the text is repeated for the memory figure "
                        "(0 skips it)")
    args = parser.parse_args()

    from makemore.tokenizer import Tokenizer

    text = Path(args.data).read_text()
    n_bytes = len(text.encode())
    vocabs = [int(v) for v in args.vocab.split(",")]
    print(f"{args.data}: {len(text):,} characters, {n_bytes:,} bytes; {os.cpu_count()} CPUs")

    # 1. training time and compression
    rows, toks = [], {}
    for V in vocabs:
        seconds = best_of(lambda: toks.__setitem__(V, Tokenizer.train([text], vocab_size=V)), args.reps)
        tok = toks[V]
        ids = tok.encode_batch([text])[0]
        assert tok.decode(ids) == text
        rows.append([f"{V:,}", f"{len(tok.merges):,}", f"{seconds:.2f}", f"{len(text) / len(ids):.3f}",
                     f"{n_bytes / len(ids):.3f}", f"{len(ids):,}"])
    print("\nTraining on the text, and compression of the same text")
    print(table(rows, ["vocab", "merges", "train s", "chars/token", "bytes/token", "tokens"]))

    # 2. encoding throughput
    V = args.encode_vocab or max(vocabs)
    tok = toks.get(V) or Tokenizer.train([text], vocab_size=V)
    ours = tok.encode_batch([text])[0]
    hf = tok._hf
    assert hf.encode(text).ids == ours, "the library's encode disagrees with makemore's"
    sample = text[: args.python_chars]
    python_encode = python_bpe_encoder(tok)
    assert python_encode(sample) == tok.encode(sample), "the plain-Python loop disagrees with makemore's"
    mb = n_bytes / 2**20
    t_ours = best_of(lambda: tok.encode_batch([text]), args.reps)
    t_hf = best_of(lambda: hf.encode(text), args.reps)
    t_py = best_of(lambda: python_encode(sample), max(1, args.reps // 3))
    py_mb = len(sample.encode()) / 2**20
    rows = [["makemore Tokenizer.encode_batch (safe pieces, parallel)", f"{mb / t_ours:.2f}", f"{t_ours:.3f}"],
            ["tokenizers Tokenizer.encode (whole text, one call)", f"{mb / t_hf:.2f}", f"{t_hf:.3f}"],
            [f"plain-Python BPE loop ({len(sample):,} chars)", f"{py_mb / t_py:.4f}", f"{t_py:.3f}"]]
    print(f"\nEncoding (vocab {V:,}, same ids from all three)")
    print(table(rows, ["encoder", "MB/s", "seconds"]))

    # 3. prepare
    sizes = [float(s) for s in args.prepare_mb.split(",") if s.strip()]
    if sizes:
        root = Path(tempfile.mkdtemp(prefix="makemore-bench-", dir=args.tmp))
        try:
            tok_path = root / "tok.json"
            tok.save(tok_path)
            rows = []
            for size in sizes:
                corpus = root / f"corpus-{size:g}"
                total = generate_corpus(corpus, size)
                seconds, rss = run_prepare(corpus, tok_path, root / f"shards-{size:g}")
                index = json.loads((root / f"shards-{size:g}" / "index.json").read_text())
                tokens = sum(s["tokens"] for s in index["splits"].values())
                rows.append([f"{total / 2**20:,.0f}", f"{len(list(corpus.iterdir())):,}", f"{tokens:,}",
                             f"{seconds:.1f}", f"{total / 2**20 / seconds:.1f}", f"{rss / 2**20:,.0f}"])
                shutil.rmtree(corpus)
                shutil.rmtree(root / f"shards-{size:g}")
            print(f"\nmakemore prepare (vocab {V:,}, generated corpora of shuffled lines, start-up included)")
            print(table(rows, ["MB", "files", "tokens", "seconds", "MB/s", "peak RSS MB"]))
        finally:
            shutil.rmtree(root, ignore_errors=True)
    # 4. token text mode's memory
    if args.copies > 1:
        root = Path(tempfile.mkdtemp(prefix="makemore-bench-", dir=args.tmp))
        try:
            token_text_memory(text, tok, args.copies, root)
        finally:
            shutil.rmtree(root, ignore_errors=True)
    print(f"\n(peak RSS of this script: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB)")


if __name__ == "__main__":
    main()
