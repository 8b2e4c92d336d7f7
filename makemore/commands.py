"""What each CLI command does, apart from parsing (cli.py parses). Module-level imports stay torch-free so that `info` and
`datasets` are instant; the commands that need torch import it inside."""

from __future__ import annotations

import json
import math
import signal
import sys
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from makemore import checkpoint as ckpt
from makemore.errors import MakemoreError
from makemore.sinks import TAG_STYLE, make_console

out = make_console()
err = make_console(stderr=True)


def plural(count: int, noun: str, plural_noun: str | None = None) -> str:
    """``1 duplicate``, ``2 duplicates``, ``1 empty line``: a count with its noun in the right number."""
    return f"{count:,} {noun if count == 1 else plural_noun or noun + 's'}"


# --- which run ------------------------------------------------------------------------------------

def find_run(run: Path | None, root: Path = Path("runs")) -> Path:
    """The run a command reads: ``run``, or the latest in ``root``. A name that is no run directory but a
    word list's name (``makemore sample names``) is refused with the runs trained on that word list."""
    if run is None:
        return ckpt.latest_run(root)
    if Path(run).is_dir():
        return ckpt.check_run_dir(Path(run))
    trained = runs_trained_on(str(run), root)
    if Path(run).exists():  # a file: say what it is, and which runs were trained on it if it is a word list
        try:
            return ckpt.check_run_dir(Path(run))
        except MakemoreError as e:
            hint = f"; runs trained on {run}: " + ", ".join(str(r) for r in trained) if trained else ""
            raise MakemoreError(f"{e}{hint}") from None
    if trained:
        raise MakemoreError(f"{run}: no such run directory; runs trained on {run}: "
                            + ", ".join(str(r) for r in trained))
    from makemore.data import builtin_datasets

    if str(run) in builtin_datasets():
        raise MakemoreError(f"{run}: no such run directory; {run} is a built-in word list with no run "
                            f"in {root}/ yet: makemore train {run}")
    raise MakemoreError(f"{run}: no such run directory")


def runs_trained_on(dataset: str, root: Path = Path("runs")) -> list[Path]:
    """The run directories in ``root`` trained on ``dataset``, most recent first: on that very file if it is
    one, else on a word list of that name (``names``, ``names.txt``)."""
    from makemore.run import read_config

    file = Path(dataset).resolve() if Path(dataset).is_file() else None
    found = []
    for path in sorted(root.glob("*")) if root.is_dir() else []:
        if path.name.startswith(".") or not ckpt.is_run_dir(path):
            continue
        try:
            used = read_config(path).get("dataset") or {}
        except MakemoreError:
            continue  # a damaged run is no answer here; the command that opens it says what is wrong
        if used.get("path") == str(file) if file else used.get("name") in (dataset, Path(dataset).stem):
            found.append(path)
    return sorted(found, key=lambda p: (p / ckpt.CONFIG).stat().st_mtime, reverse=True)


def split_run_and_words(args: list[str], root: Path = Path("runs")) -> tuple[Path, list[str]]:
    """``makemore score [RUN] WORD...``: the first argument is the run if it is a directory (or a path, which
    must then be one), else a word, and the run is the latest, as for every other command."""
    first = args[0] if args else ""
    if Path(first).is_dir() or "/" in first:
        run, words = find_run(Path(first), root), args[1:]
    else:
        run, words = find_run(None, root), list(args)
    if not words:
        raise MakemoreError("name the words to score: makemore score [RUN] WORD...")
    return run, words


# --- train ------------------------------------------------------------------------------------------

def train_command(*, device, **options) -> None:
    """Train in this process, or, when torchrun started it, as one rank of a DistributedDataParallel job."""
    import gc

    from makemore import distributed

    if not distributed.launched_by_torchrun():
        return _train(dist=distributed.SINGLE, device=device, **options)
    from makemore.training import resolve_device

    wanted = resolve_device(device)
    if device == "auto" and not wanted.startswith("cuda"):
        wanted = "cpu"  # gloo; MPS has no collective backend
    ctx, device = distributed.setup(wanted)
    try:
        _train(dist=ctx, device=device, **options)
        # the trainer's DDP wrapper (its reducer holds gloo work and the process group) must be gone while the
        # interpreter is fully alive: left to interpreter shutdown it intermittently aborted a rank at exit
        gc.collect()
        distributed.barrier(ctx)  # rank 0 evaluates and saves at the end: the others wait rather than tear down
    except RuntimeError as e:
        if type(e).__name__ in ("DistBackendError", "DistNetworkError", "DistStoreError") or "gloo" in str(e).lower():
            raise MakemoreError(f"rank {ctx.rank} of {ctx.world_size}: lost the other processes ({e}); "
                                f"see the first failing rank's message above") from None
        raise
    finally:
        distributed.teardown(ctx)


def _train(*, data, model_type, out: Path | None, resume: Path | None, seed, device, max_len, hyper,
           train, tensorboard, quiet, dist) -> None:
    import contextlib

    from makemore.training import Request, new_trainer, resume_trainer
    from makemore.sinks import ConsoleSink, JsonlSink, TensorBoardSink

    main = dist.is_main  # under torchrun, rank 0 alone prints and writes
    quiet = quiet or not main

    if resume is not None:
        given = {k: v for k, v in hyper.items() if v is not None}
        if data is not None or given:
            raise MakemoreError("--resume continues a run as it was configured; give only the run directory "
                                "(and optionally --max-steps, --max-time or --device)")
        allowed = {"max_steps", "max_time"}
        extra = [k for k, v in train.items() if v is not None and k not in allowed]
        if extra:
            raise MakemoreError(f"--resume cannot change --{extra[0].replace('_', '-')}")
        overrides = {k: train.get(k) for k in allowed}
        if device != "auto":
            overrides["device"] = device
        lock = ckpt.RunLock(ckpt.check_run_dir(resume)) if main else contextlib.nullcontext()
        with lock:
            if main:
                ckpt.remove_stale_temporaries(resume)  # left by a writer that was killed mid-save
            trainer = resume_trainer(resume, overrides, dist=dist)
            _train_loop(trainer, [ConsoleSink(quiet=quiet), JsonlSink(trainer.run_dir)]
                        + ([TensorBoardSink(trainer.run_dir)] if tensorboard else []) if main else [])
        return
    if data is None:
        raise MakemoreError("name a word list to train on (a file, or a built-in dataset such as `names`), "
                            "or --resume a run")
    request = Request(data=data, model_type=model_type, out=out, hyper=hyper, train=train, seed=seed,
                      device=device, max_len=max_len)
    from makemore.training import check_request, prepare_data

    check_request(request)
    prepared = prepare_data(data, seed, max_len)
    w = prepared.words
    if not quiet:
        dropped = [plural(w.duplicates, "duplicate")] + ([plural(w.empty, "empty line")] if w.empty else []) \
            + ([f"{plural(w.too_long, 'line')} longer than --max-len {max_len}"] if w.too_long else [])
        err.print(f"{prepared.path}: {plural(len(w.words), 'word')} (dropped {', '.join(dropped)}); "
                  f"split {len(prepared.train):,}/{len(prepared.val):,}/{len(prepared.test):,} train/val/test"
                  + _small_split_note(len(prepared.val), len(prepared.test)))
    trainer, _ = new_trainer(request, prepared, dist=dist)
    if not main:
        _train_loop(trainer, [])
        return
    with ckpt.RunLock(trainer.run_dir):
        sinks = [ConsoleSink(quiet=quiet), JsonlSink(trainer.run_dir)]
        if tensorboard:
            sinks.append(TensorBoardSink(trainer.run_dir))
        _train_loop(trainer, sinks)


def _small_split_note(val: int, test: int) -> str:
    """Why a small word list has no validation or test words, and what training does instead."""
    from makemore.data import split_sizes

    if val and test:
        return ""
    enough = next(n for n in range(1, 1 << 20) if all(split_sizes(n)))  # the fewest words that get both splits
    return (f" (no validation or test split for fewer than {enough} words: the val loss is the loss on the "
            f"training words, which also choose the best checkpoint, and there is no test loss)")


def _train_loop(trainer, sinks) -> None:
    """Feed the trainer's events to the sinks; the first Ctrl-C stops cleanly (and saves), a second aborts.
    Either way the command ends in KeyboardInterrupt, which the CLI turns into exit code 130 as shells expect
    of an interrupted program: a script running `makemore train` can tell a finished run from a stopped one."""
    interrupted = False

    def on_sigint(signum, frame):
        nonlocal interrupted
        if trainer._stop.is_set():
            raise KeyboardInterrupt
        interrupted = True
        err.print("\nstopping after this step and saving (Ctrl-C again to abort)")
        trainer.request_stop()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        for event in trainer.run():
            for sink in sinks:
                sink(event)
    finally:
        signal.signal(signal.SIGINT, previous)
        for sink in sinks:
            close = getattr(sink, "close", None)
            if close:
                close()
    if interrupted:
        raise KeyboardInterrupt


# --- sample -----------------------------------------------------------------------------------------

def sample_command(run_dir: Path, *, n, temperature, top_k, top_p, prefix, min_len, max_len, new_only, unique,
                   scores, as_json, output, seed, device, allow_empty: bool = False) -> None:
    import torch

    from makemore.training import resolve_device
    from makemore.run import load_run
    from makemore.sample import check_lengths, draw, tag

    if n < 1:
        raise MakemoreError("-n must be at least 1")
    if top_p is not None and not 0 < top_p <= 1:
        raise MakemoreError("--top-p must be in (0, 1]")
    run_dir = ckpt.check_run_dir(run_dir)
    from makemore.run import read_config

    check_lengths(read_config(run_dir)["model"]["block_size"], prefix, min_len, max_len)  # before loading weights
    loaded = load_run(run_dir, device=resolve_device(device))
    train_words, held_out = loaded.known_words()
    generator = torch.Generator().manual_seed(seed)
    results: list[tuple[str, str, float]] = []
    seen: set[str] = set()
    attempts = too_long = 0
    while len(results) < n:
        want = n - len(results)
        drawn = draw(loaded.model, loaded.vocab, want if not (new_only or unique) else max(2 * want, 32),
                     temperature=temperature, top_k=top_k, top_p=top_p, prefix=prefix, min_len=min_len,
                     max_len=max_len, allow_empty=allow_empty, generator=generator)
        attempts += len(drawn.words)
        too_long += drawn.too_long
        for g in drawn.words:
            t = tag(g.word, train_words, held_out)
            if (new_only and t != "new") or (unique and g.word in seen):
                continue
            seen.add(g.word)
            results.append((g.word, t, g.logprob))
            if len(results) == n:
                break
        if attempts > 100 * n and len(results) < n:
            raise MakemoreError(f"found only {len(results)} words meeting --new-only/--unique in {attempts} "
                                f"samples; try a higher --temperature")
    counts = {k: sum(t == k for _, t, _ in results) for k in ("new", "train", "test", "empty")}
    words = len(results) - counts["empty"]
    novelty = counts["new"] / words if words else None  # the share of new words among the non-empty ones
    if output is not None:
        ckpt.write_atomic(Path(output), "".join(w + "\n" for w, _, _ in results).encode("utf-8"))
    if as_json:
        print(json.dumps({"run": str(run_dir), "samples": [{"word": w, "tag": t, "logprob": lp}
                                                          for w, t, lp in results], "novelty": novelty,
                          "too_long": too_long}, ensure_ascii=False))
        return
    width = max(len(w) for w, _, _ in results)
    for w, t, lp in results:
        line = f"{escape(w):<{width + len(escape(w)) - len(w)}}  [{TAG_STYLE[t]}]{t}[/]"  # a word is not markup
        if scores:
            line += f"  {lp:8.3f}"
        out.print(line, markup=True, soft_wrap=True)
    summary = (f"novelty {novelty:.0%}: " if novelty is not None else "") + \
        f"{counts['new']} new, {counts['train']} in train, {counts['test']} in val/test"
    if counts["empty"]:
        summary += f", {plural(counts['empty'], 'empty word')} (not counted in the novelty)"
    if too_long:
        summary += f"; {plural(too_long, 'sample')} longer than --max-len {max_len} drawn again"
    err.print(f"{summary} · {run_dir}")


# --- eval, score ------------------------------------------------------------------------------------

def eval_command(run_dir: Path, *, file: Path | None, split: str, as_json: bool, device: str,
                 skip_unknown: bool = False) -> None:
    from makemore.data import EncodedWords, read_words_for_model
    from makemore.evaluation import bits, evaluate
    from makemore.training import resolve_device
    from makemore.run import load_run

    if split not in ("train", "val", "test"):
        raise MakemoreError(f"--split must be train, val or test, not {split!r}")
    loaded = load_run(run_dir, device=resolve_device(device))
    longest = loaded.config["model"]["block_size"] - 1
    read = None
    if file is not None:
        read = read_words_for_model(Path(file), loaded.vocab, longest, skip_unknown=skip_unknown)
        words = read.words
        where = str(file)
    else:
        if not loaded.split:
            raise MakemoreError(f"{run_dir}: no {ckpt.SPLIT}; name a file to evaluate on")
        words = loaded.split[split]
        if not words:
            raise MakemoreError(f"{run_dir}: the {split} split is empty (the word list was too small)")
        where = f"{split} split"
    encoded = EncodedWords(words, loaded.vocab)
    loss = evaluate(loaded.model, encoded, device=loaded.model.lm_head.weight.device
                    if hasattr(loaded.model, "lm_head") else None)
    result = {"run": str(run_dir), "on": where, "words": len(words), "loss": loss, "bpc": bits(loss),
              "perplexity": math.exp(loss), "step": loaded.step}
    if read is not None:
        result.update(lines=read.lines, skipped=read.skipped(), longest=longest, unknown_chars=read.unknown_chars)
    if as_json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        out.print(f"{where}: {loss:.4f} nats/char · {bits(loss):.4f} bits/char · perplexity {math.exp(loss):.2f} "
                  f"· {len(words):,} words · {run_dir} @ step {loaded.step}")
        if read is not None and any(read.skipped().values()):
            err.print(f"{where}: {read.lines:,} lines, {len(words):,} words scored; skipped "
                      + ", ".join(_skip_reasons(read, longest)))


def _skip_reasons(read, longest: int) -> list[str]:
    reasons = []
    if read.too_long:
        reasons.append(f"{plural(read.too_long, 'word')} longer than the model's {longest} characters")
    if read.unknown:
        chars = ", ".join(repr(c) for c in read.unknown_chars[:5]) + ("..." if len(read.unknown_chars) > 5 else "")
        reasons.append(f"{plural(read.unknown, 'word')} with characters outside its vocabulary ({chars})")
    if read.duplicates:
        reasons.append(plural(read.duplicates, "duplicate"))
    if read.empty:
        reasons.append(plural(read.empty, "empty line"))
    return reasons


def score_command(run_dir: Path, words: list[str], *, as_json: bool) -> None:
    from makemore.data import EncodedWords
    from makemore.evaluation import word_nll
    from makemore.run import load_run

    loaded = load_run(run_dir)
    block = loaded.config["model"]["block_size"]
    for w in words:
        if not w.strip():
            raise MakemoreError("cannot score an empty word")
        if len(w) >= block:
            raise MakemoreError(f"{w!r}: {len(w)} characters; this model handles at most {block - 1}")
        unknown = loaded.vocab.unknown(w)
        if unknown:
            raise MakemoreError(f"{w!r}: character {sorted(unknown)[0]!r} is not in the model's vocabulary")
    nll = word_nll(loaded.model, EncodedWords(list(words), loaded.vocab))
    train_words, held_out = loaded.known_words()
    from makemore.sample import tag

    rows = [{"word": w, "nll": v, "tag": tag(w, train_words, held_out)} for w, v in zip(words, nll)]
    if as_json:
        print(json.dumps(rows, ensure_ascii=False))
        return
    table = Table(box=None)
    table.add_column("word")
    table.add_column("nats/char", justify="right")
    table.add_column("in data")
    for r in rows:
        table.add_row(escape(r["word"]), f"{r['nll']:.3f}", f"[{TAG_STYLE[r['tag']]}]{r['tag']}[/]")
    out.print(table)


# --- info, datasets ---------------------------------------------------------------------------------

def run_summary(run_dir: Path) -> dict[str, Any]:
    from makemore.run import read_config

    config = read_config(run_dir)
    metrics = ckpt.read_metrics(run_dir)
    evals = [m for m in metrics if m.get("event") == "eval"]
    finished = [m for m in metrics if m.get("event") == "finished"]
    steps = [m.get("step", 0) for m in metrics if m.get("event") in ("step", "eval", "finished")]
    best = min(evals, key=lambda m: m["val_loss"]) if evals else None
    return {
        "run": str(run_dir),
        "type": config["model"]["type"],
        "params": config["model"].get("num_params"),
        "hyper": config["model"]["hyper"],
        "block_size": config["model"]["block_size"],
        "train": config.get("train", {}),
        "dataset": config.get("dataset", {}),
        "split": config.get("split", {}),
        "vocab": "".join(config["vocab"]),
        "vocab_size": len(config["vocab"]) + 1,
        "steps": max(steps, default=0),
        "best_val_loss": best["val_loss"] if best else None,
        "best_step": best["step"] if best else None,
        "test_loss": finished[-1].get("test_loss") if finished else None,
        "finished": finished[-1].get("reason") if finished else None,
        "elapsed": finished[-1].get("elapsed") if finished else None,
    }


def info_command(run_dir: Path, *, as_json: bool) -> None:
    s = run_summary(run_dir)
    if as_json:
        print(json.dumps(s, ensure_ascii=False))
        return
    from makemore.models import get_family, recipe_for

    t = Table(box=None, show_header=False, pad_edge=False)
    t.add_column(style="bold")
    t.add_column()
    d = s["dataset"]
    t.add_row("run", s["run"])
    t.add_row("model", f"{s['type']} · {s['params']:,} parameters · " +
              " ".join(f"{k}={v}" for k, v in s["hyper"].items()))
    t.add_row("dataset", f"{d.get('name')} ({d.get('path')}) · {d.get('words', 0):,} words, "
              f"{d.get('duplicates_dropped', 0):,} duplicates dropped")
    t.add_row("split", " / ".join(f"{s['split'].get(k, 0):,}" for k in ("train", "val", "test")) + " train/val/test")
    t.add_row("vocab", f"{s['vocab_size']} symbols: {s['vocab']!r} + start/stop")
    tr = s["train"]
    if get_family(s["type"]).fitted:
        t.add_row("training", f"fitted in one pass · seed {tr.get('seed')} · {tr.get('device')}")
    else:
        length = f"{tr.get('max_steps')} steps" if tr.get("max_steps") else f"{tr.get('max_time'):g} s"
        t.add_row("training", f"{length} · batch {tr.get('batch_size')} · "
                  f"lr {tr.get('learning_rate')} · wd {tr.get('weight_decay')} · seed {tr.get('seed')} · "
                  f"{tr.get('device')}")
    t.add_row("progress", f"step {s['steps']}" + (f" · finished ({s['finished']}) in {s['elapsed']:.0f} s"
                                                   if s["finished"] else " · not finished"))
    fmt = (lambda v: f"{v:.4f}" if isinstance(v, float) else "-")
    t.add_row("best val", f"{fmt(s['best_val_loss'])} @ step {s['best_step']}")
    t.add_row("test", fmt(s["test_loss"]))
    family, defaults = get_family(s["type"]), recipe_for(s["type"])
    recipe = "fitted in one pass" if family.fitted else \
        f"steps={defaults['max_steps']} batch={defaults['batch_size']} lr={defaults['learning_rate']:g}"
    hyper = " ".join(f"{k}={v}" for k, v in family.hyper.items())
    t.add_row(f"{s['type']} defaults", f"{hyper} · {recipe}" if hyper else recipe)
    out.print(t)


DATASET_INFO = {
    "names": "US first names (Census 1990 lists), lowercase",
    "surnames": "US surnames (Census 1990 list), lowercase",
    "words": "English words (SCOWL american-english), lowercase a-z",
}


def datasets_command(*, as_json: bool) -> None:
    from makemore.data import builtin_datasets

    rows = []
    for name, path in sorted(builtin_datasets().items()):
        data = path.read_bytes()
        rows.append({"name": name, "words": data.count(b"\n"), "bytes": len(data),
                     "description": DATASET_INFO.get(name, ""), "path": str(path)})
    if as_json:
        print(json.dumps(rows))
        return
    t = Table(box=None)
    for col in ("name", "words", "size", "what"):
        t.add_column(col, justify="right" if col in ("words", "size") else "left")
    for r in rows:
        t.add_row(r["name"], f"{r['words']:,}", f"{r['bytes'] / 1024:.0f} KiB", r["description"])
    out.print(t)
    err.print("train on one with e.g. `makemore train names`")
