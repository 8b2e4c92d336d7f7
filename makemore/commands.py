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
from makemore.rundir import resolve_run
from makemore.sinks import TAG_STYLE, make_console

out = make_console()
err = make_console(stderr=True)


def plural(count: int, noun: str, plural_noun: str | None = None) -> str:
    """``1 duplicate``, ``2 duplicates``, ``1 empty line``: a count with its noun in the right number."""
    return f"{count:,} {noun if count == 1 else plural_noun or noun + 's'}"


# --- which run ------------------------------------------------------------------------------------

def split_run_and_words(args: list[str], root: Path = Path("runs")):
    """``makemore score [RUN] WORD...``: the first argument is the run if it is a directory (or a path, which
    must then be one), else a word, and the run is the latest, as for every other command."""
    first = args[0] if args else ""
    if Path(first).is_dir() or "/" in first:
        run, words = resolve_run(Path(first), root), args[1:]
    else:
        run, words = resolve_run(None, root), list(args)
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
    from makemore.device import resolve_device

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
           train, given: set[str], tensorboard, quiet, dist) -> None:
    """``hyper`` and ``train`` hold None for what the user did not set; ``given`` names every option typed."""
    import contextlib

    from makemore.rundir import RunDir
    from makemore.sinks import ConsoleSink, JsonlSink, TensorBoardSink
    from makemore.training import Request, check_request, check_resume, drive, new_trainer, prepare_data, \
        resume_trainer

    main = dist.is_main  # under torchrun, rank 0 alone prints and writes
    quiet = quiet or not main

    def sinks_for(trainer) -> list:
        if not main:
            return []
        return [ConsoleSink(quiet=quiet), JsonlSink(trainer.run_dir)] + \
            ([TensorBoardSink(trainer.run_dir)] if tensorboard else [])

    if resume is not None:
        run = RunDir.open(resume)
        values = {"data": data, "model_type": model_type, "seed": seed, "max_len": max_len, "device": device,
                  **hyper, **train}
        overrides = check_resume(run, {k: v for k, v in values.items() if k in given and v is not None})
        lock = run.lock() if main else contextlib.nullcontext()
        with lock:
            if main:
                run.remove_stale_temporaries()  # left by a writer that was killed mid-save
            trainer = resume_trainer(run, overrides, dist=dist)
            drive(trainer, sinks_for(trainer), handle_sigint=True)
        _exit_if_interrupted(trainer)
        return
    if data is None:
        raise MakemoreError("name a word list to train on (a file, or a built-in dataset such as `names`), "
                            "or --resume a run")
    request = Request(data=data, model_type=model_type, out=out, hyper=hyper, train=train, seed=seed,
                      device=device, max_len=max_len)
    if train.get("diagnostics") and main:
        from makemore.models import get_family

        if get_family(model_type).fitted:
            err.print(f"--diagnostics: {model_type} is fitted in one pass (counted): nothing to diagnose")
    checked = check_request(request)
    prepared = prepare_data(data, seed, max_len)
    w = prepared.words
    if not quiet:
        dropped = [plural(w.duplicates, "duplicate")] + ([plural(w.empty, "empty line")] if w.empty else []) \
            + ([f"{plural(w.too_long, 'line')} longer than --max-len {max_len}"] if w.too_long else [])
        err.print(f"{prepared.path}: {plural(len(w.words), 'word')} (dropped {', '.join(dropped)}); "
                  f"split {len(prepared.train):,}/{len(prepared.val):,}/{len(prepared.test):,} train/val/test"
                  + _small_split_note(len(prepared.val), len(prepared.test)))
    trainer, _ = new_trainer(request, prepared, dist=dist, checked=checked)
    with trainer.rundir.lock() if main else contextlib.nullcontext():
        drive(trainer, sinks_for(trainer), handle_sigint=True)
    _exit_if_interrupted(trainer)


def _small_split_note(val: int, test: int) -> str:
    """Why a small word list has no validation or test words, and what training does instead."""
    from makemore.data import split_sizes

    if val and test:
        return ""
    enough = next(n for n in range(1, 1 << 20) if all(split_sizes(n)))  # the fewest words that get both splits
    return (f" (no validation or test split for fewer than {enough} words: the val loss is the loss on the "
            f"training words, which also choose the best checkpoint, and there is no test loss)")


def _exit_if_interrupted(trainer) -> None:
    """Ctrl-C stopped the run (after saving it): end in KeyboardInterrupt, which the CLI turns into exit code 130
    as shells expect of an interrupted program, so a script can tell a finished run from a stopped one."""
    if trainer.interrupted:
        raise KeyboardInterrupt


# --- sample -----------------------------------------------------------------------------------------

def sample_command(run, *, n, temperature, top_k, top_p, prefix, min_len, max_len, new_only, unique,
                   scores, as_json, output, seed, device, allow_empty: bool = False) -> None:
    from makemore.device import resolve_device
    from makemore.sample import check_lengths, sample_words

    check_lengths(run.config.model.block_size, prefix, min_len, max_len)  # before loading the weights
    loaded = run.load_model(device=resolve_device(device))
    run_dir = run.path
    sampled = sample_words(loaded, n, temperature=temperature, top_k=top_k, top_p=top_p, prefix=prefix,
                           min_len=min_len, max_len=max_len, new_only=new_only, unique=unique,
                           allow_empty=allow_empty, seed=seed)
    results = [(d.word, d.tag, d.logprob) for d in sampled.samples]
    too_long = sampled.too_long
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

def eval_command(run, *, file: Path | None, split: str, as_json: bool, device: str,
                 skip_unknown: bool = False) -> None:
    from makemore.device import resolve_device
    from makemore.evaluation import evaluate_on

    loaded = run.load_model(device=resolve_device(device))
    result = evaluate_on(loaded, file=file, split=split, skip_unknown=skip_unknown)
    result = {"run": str(run.path), **result, "perplexity": math.exp(result["loss"]), "step": loaded.step}
    if as_json:
        print(json.dumps(result, ensure_ascii=False))
        return
    where, words = result["on"], result["words"]
    out.print(f"{where}: {result['loss']:.4f} nats/char · {result['bpc']:.4f} bits/char · perplexity "
              f"{result['perplexity']:.2f} · {words:,} words · {run.path} @ step {loaded.step}")
    if any(result.get("skipped", {}).values()):
        err.print(f"{where}: {result['lines']:,} lines, {words:,} words scored; skipped " + ", ".join(_skip_reasons(result)))


def _skip_reasons(result: dict) -> list[str]:
    skipped, reasons = result["skipped"], []
    if skipped["too_long"]:
        reasons.append(f"{plural(skipped['too_long'], 'word')} longer than the model's {result['longest']} characters")
    if skipped["unknown_characters"]:
        chars = result["unknown_chars"]
        shown = ", ".join(repr(c) for c in chars[:5]) + ("..." if len(chars) > 5 else "")
        reasons.append(f"{plural(skipped['unknown_characters'], 'word')} with characters outside its vocabulary "
                       f"({shown})")
    if skipped["duplicates"]:
        reasons.append(plural(skipped["duplicates"], "duplicate"))
    if skipped["empty_lines"]:
        reasons.append(plural(skipped["empty_lines"], "empty line"))
    return reasons


def score_command(run, words: list[str], *, as_json: bool) -> None:
    from makemore.evaluation import score_words
    from makemore.sample import tag

    loaded = run.load_model()
    nll = score_words(loaded, words)
    train_words, held_out = loaded.known_words()
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

def info_command(run, *, as_json: bool) -> None:
    s = run.summary()
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
