"""What each CLI command does, apart from parsing (cli.py parses). Module-level imports stay torch-free so that `info` and
`datasets` are instant; the commands that need torch import it inside."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from rich.markup import escape
from rich.table import Table
from rich.text import Text

from makemore import checkpoint as ckpt
from makemore.errors import AlreadySaid, MakemoreError, OnlyRecorded
from makemore.files import is_regular
from makemore.rundir import METRICS, RunDir, resolve_run
from makemore.console import TAG_STYLE, make_console, plural

out = make_console()
# notes: a reader that leaves stops nothing; printed as they are (a path's brackets are not rich's tags)
err = make_console(stderr=True, outlive_reader=True, markup=False)


# --- which run ------------------------------------------------------------------------------------

def split_run_and_words(args: list[str], root: Path = Path("runs")):
    """``makemore score [RUN] WORD...``: the first argument is the run if it is a run directory (or a path, which
    must then be one), else a word, and the run is the latest, as for every other command."""
    first = args[0] if args else ""
    if RunDir.is_run(Path(first)) or "/" in first:
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
        return _exit_if_interrupted(_train(dist=distributed.SINGLE, device=device, **options))
    # the options and files are checked before torch and before joining the others; the ranks of a machine
    # refuse alike, so its first one alone says why (rank 0, and on another machine that rank's first)
    plan = distributed.planned()
    try:
        prepared = _train(dist=plan, device=device, check_only=True, **options)
    except MakemoreError as e:
        if plan.is_main:
            raise
        if plan.local_rank == 0:
            raise MakemoreError(f"rank {plan.rank}: {e}") from None
        raise AlreadySaid(str(e)) from None
    from makemore.device import resolve_device

    wanted = resolve_device(device)
    if device == "auto" and not wanted.startswith("cuda"):
        wanted = "cpu"  # gloo; MPS has no collective backend
    ctx, device = distributed.setup(wanted)
    try:
        try:
            trainer = _train(dist=ctx, device=device, prepared=prepared, **options)
        except MakemoreError as e:  # what needed torch to check (token data, a resumed run): refused alike
            if ctx.is_main:
                raise
            if ctx.local_rank == 0 or getattr(e, "while_training", False):  # (training: each rank says its own)
                raise MakemoreError(f"rank {ctx.rank}: {e}") from None
            raise AlreadySaid(str(e)) from None
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
    _exit_if_interrupted(trainer)  # (after the barrier: a rank that Ctrl-C reached waits for rank 0's save)


def _train(*, data, model_type, out: Path | None, resume: Path | None, seed, device, max_len, hyper,
           train, given: set[str], tensorboard, quiet, dist, mode=None, block_size=None, tokenizer=None,
           preset=None, check_only: bool = False, prepared=None):
    """``hyper`` and ``train`` hold None for what the user did not set; ``given`` names every option typed.
    Returns the trainer once its run has ended; ``check_only``: return after the checks made before torch, with
    a word list read and checked (torch is not needed for it), which the next call takes as ``prepared``."""
    import contextlib

    from makemore.rundir import RunDir
    from makemore.sinks import ConsoleSink, JsonlSink, TensorBoardSink
    from makemore.training import Request, check_resume, new_trainer, prepare_data, \
        resume_trainer

    main = dist.is_main  # under torchrun, rank 0 alone prints and writes
    quiet = quiet or not main

    def sinks_for(trainer) -> list:
        if not main:
            return []
        return [ConsoleSink(quiet=quiet), JsonlSink(trainer.run_dir)] + \
            ([TensorBoardSink(trainer.run_dir)] if tensorboard else [])

    if tensorboard:
        from makemore.sinks import check_tensorboard

        check_tensorboard()
    if resume is not None and preset is not None:
        raise MakemoreError(f"--resume continues a run with the settings it was given, --preset {preset}'s among "
                            f"them if it had it; drop --preset")
    if resume is not None and tokenizer is not None:  # the original command repeated: the same tokenizer passes
        from makemore.training import check_resume_tokenizer

        check_resume_tokenizer(resume, tokenizer)
    if resume is not None and out is not None and Path(out).resolve() != Path(resume).resolve():
        raise MakemoreError(f"-o {out} does not apply with --resume: the run continues in {resume}")
    if resume is not None:
        run = RunDir.open(resume)
        values = {"data": data, "model_type": model_type, "seed": seed, "max_len": max_len, "device": device,
                  "mode": mode, "block_size": block_size, **hyper, **train}
        overrides = check_resume(run, {k: v for k, v in values.items() if k in given and v is not None})
        if check_only:
            return None
        lock = run.lock() if main else contextlib.nullcontext()
        with lock:
            if main:
                run.remove_stale_temporaries()  # left by a writer that was killed mid-save
            settle_imports()
            try:
                trainer = resume_trainer(run, overrides, dist=dist)
            except OnlyRecorded:  # the data's new place, recorded: what the command was for (exit 0)
                if main:
                    err.print(f"{run.path}: finished, with nothing to continue; where its data is now is recorded")
                return None
            if main and "diag_interval" in given and not trainer.cfg.diagnostics:  # as a new run says it
                err.print("--diag-interval has no effect without --diagnostics, which records the instruments")
            _drive(trainer, sinks_for(trainer))
        return trainer
    if data is None:
        raise MakemoreError("name a word list to train on (a file, or a built-in dataset such as `names`), "
                            "or --resume a run")
    from makemore.config import check_device
    from makemore.rundir import check_out

    check_device(device)  # (also in check_request; here before the run directory is checked)
    if out is not None and main:  # rank 0 creates the run directory; the others may start after it did
        check_out(Path(out))
    request = Request(data=data, model_type=model_type, out=out, hyper=hyper, train=train, seed=seed,
                      device=device, max_len=max_len, mode=mode, block_size=block_size,
                      tokenizer=Path(tokenizer) if tokenizer is not None else None, preset=preset)
    from makemore.shards import is_shard_dir
    from makemore.training import _check_logits_memory, batch_note, check_prepared, check_with_preset, data_notes, \
        late_notes, resolve_mode, unused_note, words_read

    request, checked = check_with_preset(request, type_given="model_type" in given)
    model_type, train = request.model_type, request.train
    from makemore.models import get_family

    if not get_family(model_type).fitted:
        from makemore.distributed import check_batch_size

        check_batch_size(checked[1].batch_size, dist)
    words = resolve_mode(request) == "words" and request.tokenizer is None and not is_shard_dir(data)
    if check_only:
        if not words:  # a text is scanned by check_with_preset; tokens need torch to read
            return None
        prepared = prepare_data(data, seed, max_len, "words")
        check_prepared(model_type, checked[0], prepared)
        return prepared
    if not words:
        from makemore.device import flush_denormals

        flush_denormals()  # torch reads a text from the start: its threads begin with denormals flushed
    if prepared is None:
        prepared = prepare_data(data, seed, max_len, resolve_mode(request), request.tokenizer)
    if hasattr(prepared, "describe"):  # tokens: a text and its tokenizer, or token shards
        if not quiet:
            err.print(prepared.describe(), soft_wrap=True)
    elif prepared.mode == "text":
        if not quiet:
            c, split = prepared.corpus, prepared.split_config()
            err.print(f"{prepared.path}: text, {len(c):,} characters, {len(c.chars)} distinct; split at character "
                      f"{split['boundary']:,}: {split['train']:,} train / {split['val']:,} val (the last 10%)")
    else:
        if not quiet:
            err.print(f"{words_read(prepared, max_len)}; "
                      f"split {len(prepared.train):,}/{len(prepared.val):,}/{len(prepared.test):,} train/val/test"
                      + _small_split_note(len(prepared.val), len(prepared.test)))
        if main and not quiet:
            for note in data_notes(prepared, model_type, checked[1].batch_size):
                err.print(f"note: {note}", soft_wrap=True)
        elif main and "batch_size" in given and (note := batch_note(prepared, model_type, checked[1].batch_size)):
            err.print(f"note: {note}", soft_wrap=True)  # under --quiet, a note on an option given, as warnings are
    check_prepared(model_type, checked[0], prepared)
    if words:  # before torch: a word list's logits too large for memory are refused at no cost
        _check_logits_memory(checked[1], max(len(w) for w in prepared.words.words) + 1, len(prepared.vocab))
    if preset is not None and main:  # said once nothing is refused, where a step is long on a CPU
        from makemore.device import resolve_device

        note = preset_cpu_note(preset, checked[0], checked[1].batch_size, request.block_size or 0,
                               os.cpu_count() or 1)
        if note and not resolve_device(device).startswith("cuda"):
            err.print(note)
    settle_imports()  # everything is checked: torch, if prepare_data did not import it, comes in here
    trainer, _ = new_trainer(request, prepared, dist=dist, checked=checked)
    if main and (note := unused_note(model_type, train)):
        err.print(note)
    for note in late_notes(model_type, trainer) if main else []:
        err.print(f"note: {note}")
    if main and (trainer.cfg.grad_accum > 1 or dist.world_size > 1) and _has_batch_norm(trainer.model):
        err.print(f"note: {trainer.model_type} normalises with the statistics of each micro-batch, so --grad-accum "
                  f"and several processes change its result (not so for a model without batch norm)")
    with trainer.rundir.lock() if main else contextlib.nullcontext():
        _drive(trainer, sinks_for(trainer))
    return trainer


def _drive(trainer, sinks) -> None:
    """Training itself; a refusal on the way (damaged data met in a batch) is marked as said while training: under
    torchrun each rank says its own, where what the ranks refuse before training they refuse alike."""
    from makemore.training import drive

    try:
        drive(trainer, sinks, handle_sigint=True, handle_term=True)
    except MakemoreError as e:
        e.while_training = True
        raise


def _has_batch_norm(model) -> bool:
    from torch import nn

    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def _small_split_note(val: int, test: int) -> str:
    """Why a small word list has no validation or test words, and what training does instead."""
    from makemore.data import split_sizes

    if val and test:
        return ""
    enough = next(n for n in range(1, 1 << 20) if all(split_sizes(n)))  # the fewest words that get both splits
    return (f" (no validation or test split for fewer than {enough} words: the val loss is the loss on the "
            f"training words, which also choose the best checkpoint, and there is no test loss)")


CORE_FLOPS = 1e11  # float32 matrix products a second on one core at its best (AVX-512): the note's bound


def preset_cpu_note(preset: str, hyper: dict, batch_size: int, block_size: int, cores: int) -> str | None:
    """What a preset's step costs on this machine's CPU, where it is more than a minute even at the cores' best:
    the blocks' matrix products alone (6 × 12 × layers × width² × tokens), so a bound from below."""
    flops = 6 * 12 * (hyper.get("n_layer") or 0) * (hyper.get("n_embd") or 0) ** 2 * batch_size * block_size
    seconds = flops / (CORE_FLOPS * max(cores, 1))
    if seconds <= 60:
        return None
    took = f"{seconds / 3600:,.0f} hours" if seconds >= 7200 else f"{seconds / 60:,.0f} minutes"
    return (f"--preset {preset} is sized for GPUs: on this CPU's {plural(cores, 'core')} one step of its batch "
            f"takes {took} or more; docs/tokens.md gives smaller overrides for a CPU")


def _exit_if_interrupted(trainer) -> None:
    """Ctrl-C stopped the run (after saving it): end in KeyboardInterrupt, which the CLI turns into exit code 130
    as shells expect of an interrupted program, so a script can tell a finished run from a stopped one; SIGTERM
    or SIGHUP end in 128 + the signal's number (143, 129), as a process they end does. (None: nothing trained.)"""
    if trainer is not None and trainer.interrupted:
        import signal

        if trainer.stop_signal != signal.SIGINT:
            err.print(f"stopped by {signal.Signals(trainer.stop_signal).name}")
            raise SystemExit(128 + trainer.stop_signal)
        raise KeyboardInterrupt


def settle_imports() -> None:
    """Called by the commands before their work: torch (imported here if it was not yet) and what came with it
    live as long as the process, so they leave the cycle collector's reach (``gc.freeze``), which would otherwise
    walk their millions of objects in each of its full passes: `makemore sample -n 10` took 0.2 s longer beyond
    `import torch` without this. Denormals are flushed to zero from here on (``makemore.device.flush_denormals``).
    Once per process (a test runs many commands in one)."""
    global _settled
    if _settled:
        return
    import gc
    import importlib

    importlib.import_module("torch")
    from makemore.device import flush_denormals

    flush_denormals()  # before any torch work starts the threads that inherit it
    gc.freeze()
    _settled = True


_settled = False


# --- sample -----------------------------------------------------------------------------------------

SMALL_SAMPLE = 100  # up to this many words, `sample` runs on one CPU thread
MAX_HELD = 100_000_000  # characters of all continuations, where --json or -O holds them until written
DEFAULT_LENGTH = 500  # characters of a text run's continuation without --length


def _check_sample_options(run, *, n, temperature, top_k, top_p, prefix, min_len, max_len, new_only, unique,
                          scores, output, prompt, length, seed=None, as_json=False, device="cpu",
                          allow_empty=False) -> None:
    """What `sample` can refuse from the run's config.json alone: before torch is imported or weights read."""
    from makemore.config import check_device, check_lengths, check_sampling, check_text_length
    from makemore.data import check_prefix
    from makemore.rundir import tokenizer_entry

    check_sampling(n=n, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed)
    check_device(device)
    run_dir = run.path
    if run.config.mode == "text":
        words_only = {"--prefix": prefix != "", "--min-len": min_len != 0, "--max-len": max_len is not None,
                      "--new-only": new_only, "--unique": unique, "--scores": scores, "--allow-empty": allow_empty}
        given = next((k for k, v in words_only.items() if v), None)
        if given:
            raise MakemoreError(f"{given} applies to word lists; {run_dir} is a text run "
                                f"(continue a --prompt for --length characters)")
        if length is not None:
            check_text_length(length)
        held = (n or 1) * (DEFAULT_LENGTH if length is None else length)
        if (as_json or output is not None) and held > MAX_HELD:
            raise MakemoreError(f"-n × --length is {held:,} characters; with --json or -O all are held until "
                                f"written, at most {MAX_HELD:,}")
        if prompt is not None:
            from makemore.text import check_prompt, encode

            prompt = check_prompt(prompt)
        if prompt is not None and tokenizer_entry(run.config.dataset) is None:  # a token run encodes any text
            try:
                encode(prompt, run.vocab().chars)
            except MakemoreError as e:
                raise MakemoreError(f"--prompt {prompt!r}: {e}") from None
    else:
        if prompt is not None or length is not None:
            raise MakemoreError(f"--{'prompt' if prompt is not None else 'length'} applies to text runs; "
                                f"{run_dir} learned a word list (use --prefix, --max-len)")
        check_lengths(run.config.model.block_size, prefix, min_len, max_len)
        check_prefix(prefix, run.vocab())
    if output is not None:
        target = Path(output)
        if target.is_dir():
            raise MakemoreError(f"{target}: is a directory; -O names the file to write the samples to")
        try:
            landing = target.resolve()  # through a link: where the samples would land
        except (OSError, RuntimeError):  # a loop of links
            raise MakemoreError(f"{target}: a loop of symbolic links; -O names a file") from None
        if not target.parent.is_dir() or not landing.parent.is_dir():
            raise MakemoreError(f"{target}: no directory {landing.parent} to write the samples into")
        home = landing.parent
        if home == Path(run_dir).resolve() or RunDir.looks_like_run(home):
            raise MakemoreError(f"{target}: inside the run directory "
                                f"{run_dir if home == Path(run_dir).resolve() else home}, whose files are the "
                                f"run's; -O names a file elsewhere")
        from makemore.shards import is_shard_dir

        if is_shard_dir(home):
            raise MakemoreError(f"{target}: inside the token shards {home}, which training reads; -O names a file "
                                f"elsewhere")
        data = run.config.dataset.get("path")
        if isinstance(data, str) and data and (target.resolve() == Path(data).resolve()
                                               or target.parent.resolve() == Path(data).resolve()):
            raise MakemoreError(f"{target}: the data {run_dir} was trained on ({data}), which evaluating and "
                                f"resuming the run read again; -O names a file elsewhere")
    longest = run.config.model.block_size - 1
    if run.config.mode != "text" and max_len is not None and max_len > longest:  # it holds of every word: said
        err.print(f"note: --max-len {max_len} is more than this model's longest word ({longest} characters): it "
                  f"limits nothing")


def sample_command(run, *, n, temperature, top_k, top_p, prefix, min_len, max_len, new_only, unique,
                   scores, as_json, output, seed, device, allow_empty: bool = False, prompt=None,
                   length=None) -> None:
    _check_sample_options(run, n=n, temperature=temperature, top_k=top_k, top_p=top_p, prefix=prefix,
                          min_len=min_len, max_len=max_len, new_only=new_only, unique=unique, scores=scores,
                          output=output, prompt=prompt, length=length, seed=seed, as_json=as_json,
                          device=device, allow_empty=allow_empty)
    from makemore.device import resolve_device
    from makemore.sample import cpu_threads, sample_words

    settle_imports()
    run_dir = run.path
    if run.config.mode == "text":
        from makemore.text import check_prompt, default_prompt

        if prompt is not None:  # printed and written as the model reads it: CRLF and CR as LF
            prompt = check_prompt(prompt)
        loaded = run.load_model(device=resolve_device(device))
        return _sample_text(loaded, n=n or 1, prompt=default_prompt(loaded.vocab) if prompt is None else prompt,
                            length=DEFAULT_LENGTH if length is None else length, temperature=temperature, top_k=top_k,
                            top_p=top_p, as_json=as_json, output=output, seed=seed)
    n = 20 if n is None else n
    device = resolve_device(device)
    loaded = run.load_model(device=device)
    run_dir = run.path
    # a batch this small gives each operation too little work to split over threads, and every split waits for
    # the other threads to wake (long on a busy machine: seconds of `sample -n 10` went to it)
    with cpu_threads(1 if device == "cpu" and n <= SMALL_SAMPLE else None):
        sampled = sample_words(loaded, n, temperature=temperature, top_k=top_k, top_p=top_p, prefix=prefix,
                               min_len=min_len, max_len=max_len, new_only=new_only, unique=unique,
                               allow_empty=allow_empty, seed=seed, scores=scores or as_json)
    results = [(d.word, d.tag, d.logprob) for d in sampled.samples]
    too_long = sampled.too_long
    counts = {k: sum(t == k for _, t, _ in results) for k in ("new", "train", "test", "empty")}
    words = len(results) - counts["empty"]
    novelty = counts["new"] / words if words else None  # the share of new words among the non-empty ones
    if output is not None:
        write_output(Path(output), "".join(w + "\n" for w, _, _ in results).encode("utf-8"))
    if as_json:
        print(json.dumps({"run": str(run_dir), "samples": [{"word": w, "tag": t, "logprob": lp}
                                                          for w, t, lp in results], "novelty": novelty,
                          "too_long": too_long, "not_new": sampled.not_new, "repeated": sampled.repeated},
                         ensure_ascii=False))
        return
    width = max(len(w) for w, _, _ in results)
    for start in range(0, len(results), PRINTED_AT_ONCE):  # one print per thousand lines: each costs ~0.1 ms
        chunk = results[start:start + PRINTED_AT_ONCE]
        if not out.is_terminal:  # a pipe or a file: the same lines without styles, written past rich (5x faster)
            sys.stdout.write("".join(f"{w.ljust(width)}  {t}" + (f"  {lp:8.3f}\n" if scores else "\n")
                                     for w, t, lp in chunk))
            continue
        lines = Text()
        for w, t, lp in chunk:
            lines.append(w.ljust(width) + "  ")  # (a word is never markup: Text takes it as it is)
            lines.append(t, style=TAG_STYLE[t])
            lines.append(f"  {lp:8.3f}\n" if scores else "\n")
        out.print(lines, soft_wrap=True, end="")
    sys.stdout.flush()
    summary = (f"novelty {novelty:.0%}: " if novelty is not None else "") + \
        f"{counts['new']} new, {counts['train']} in train, {counts['test']} in val/test"
    if counts["empty"]:
        summary += f", {plural(counts['empty'], 'empty word')} (not counted in the novelty)"
    longest = run.config.model.block_size - 1  # the model's window: the longest word it was trained on
    bound = f"--max-len {max_len}" if max_len is not None and max_len < longest else f"the model's {longest} characters"
    again = ([f"{plural(too_long, 'sample')} longer than {bound}"] if too_long else []) + \
        ([f"{plural(sampled.not_new, 'sample')} not new (--new-only)"] if sampled.not_new else []) + \
        ([f"{plural(sampled.repeated, 'repeat')} (--unique)"] if sampled.repeated else [])
    if again:
        summary += "; drawn again: " + ", ".join(again)
    err.print(f"{summary} · {run_dir}")


def _sample_text(loaded, *, n, prompt, length, temperature, top_k, top_p, as_json, output, seed) -> None:
    """Continue ``prompt``; without --json each character is printed as it is drawn."""
    import torch

    from makemore.text import generate_text

    if hasattr(loaded.vocab, "tokenizer"):  # a token run: the prompt is encoded, the draw decoded as it comes
        from makemore.tokentext import sample_command as sample_tokens

        return sample_tokens(loaded, n=n, prompt=prompt, length=length, temperature=temperature, top_k=top_k,
                             top_p=top_p, as_json=as_json, output=output, seed=seed)
    generator = torch.Generator().manual_seed(seed)
    emit_continuations(loaded.run_dir, prompt, length, n, lambda: generate_text(
        loaded.model, loaded.vocab.chars, prompt, length, temperature=temperature, top_k=top_k, top_p=top_p,
        generator=generator), as_json=as_json, output=output)


CONTINUATIONS_APART = "\n" + "-" * 15 + "\n"  # between two continuations, printed or written: nanoGPT's line


PRINTED_AT_ONCE = 1000  # sampled words a print call renders


def write_output(path: Path, data: bytes) -> None:
    """``-O``: write as ``>`` would. A FIFO or a device (``/dev/null``, ``/dev/stdout``) is written to, not
    replaced; a regular file is replaced atomically (never left half-written), through a link the file it names,
    keeping its permissions and group (a hard link elsewhere keeps the old content)."""
    if path.exists() and not is_regular(path):  # (both follow links)
        try:
            with open(path, "wb") as f:
                f.write(data)
        except OSError as e:
            raise MakemoreError(f"{path}: cannot write ({e.strerror or e})") from None
        return
    ckpt.write_atomic(path.resolve(), data, keep_mode=True)


def emit_continuations(run_dir, prompt: str, length: int, n: int, draw, *, as_json: bool, output) -> None:
    """``n`` continuations of ``prompt``, each from ``draw()`` (an iterator of text pieces): printed piece by piece
    as they come (without --json), written to ``output`` and printed as JSON (with --json) once all are drawn.
    A line of dashes stands between two continuations (a blank line would not: a text has blank lines of its
    own). Character runs and token runs both sample through this."""
    texts, stream = [], not as_json
    keep = as_json or output is not None  # else each continuation is only printed, and memory stays flat
    for i in range(n):
        if stream:
            sys.stdout.write((CONTINUATIONS_APART if i else "") + prompt)
            sys.stdout.flush()
        drawn = []
        for piece in draw():
            if keep:
                drawn.append(piece)
            if stream:
                sys.stdout.write(piece)
                sys.stdout.flush()
        if keep:
            texts.append(prompt + "".join(drawn))
    if stream:
        sys.stdout.write("\n")
        sys.stdout.flush()
    if output is not None:
        write_output(Path(output), CONTINUATIONS_APART.join(texts).encode("utf-8") + b"\n")
    if as_json:
        print(json.dumps({"run": str(run_dir), "prompt": prompt, "length": length,
                          "samples": [{"text": t} for t in texts]}, ensure_ascii=False))


# --- eval, score ------------------------------------------------------------------------------------

def eval_command(run, *, file: Path | None, split: str, as_json: bool, device: str,
                 skip_unknown: bool = False) -> None:
    from makemore.config import check_device, check_eval_target

    if split not in (None, "train", "val", "test"):
        raise MakemoreError(f"--split must be train, val or test, not {split!r}")
    check_device(device)
    # what config.json and the file system can refuse, before torch is imported or weights read
    if run.config.mode == "text" and skip_unknown:
        raise MakemoreError(f"--skip-unknown applies to word lists; {run.path} is a text run, one stream with no "
                            f"words to skip")
    check_eval_target(file, split, skip_unknown)
    if run.config.mode == "text" and split == "test" and file is None:
        raise MakemoreError(f"{run.path}: a text run has no test split; its held-out part is val, the last 10% "
                            f"of the text (as nanoGPT's); use --split val or name a file")
    read = None
    if file is not None:
        from makemore.files import open_regular

        open_regular(file, "a file to evaluate on").close()
    if file is not None and run.config.mode != "text":  # read now: a file it cannot score is refused before torch
        from makemore.data import read_words_for_model

        read = read_words_for_model(Path(file), run.vocab(), run.config.model.block_size - 1, skip_unknown)
    elif file is not None:
        _check_eval_text(run, Path(file))
    from makemore.device import resolve_device
    from makemore.evaluation import evaluate_on

    settle_imports()
    loaded = run.load_model(device=resolve_device(device))
    if loaded.mode == "text":
        return _eval_text(loaded, file=file, split=split or "val", as_json=as_json)
    split = split or "test"
    result = evaluate_on(loaded, file=file, split=split, skip_unknown=skip_unknown, read=read)
    result = {"run": str(run.path), **result, "step": loaded.step}
    if as_json:
        print(json.dumps(result, ensure_ascii=False))
        return
    where, words = result["on"], result["words"]
    out.print(f"{where}: {result['loss']:.4f} nats/char · {result['bpc']:.4f} bits/char · perplexity "
              f"{result['perplexity']:.2f} · {plural(words, 'word')} · {run.path} @ step {loaded.step}"
              + (f" · averaging {result['dropout_samples']} dropout masks" if result.get("dropout_samples") else ""),
              markup=False)
    if any(result.get("skipped", {}).values()):
        err.print(f"{where}: {plural(result['lines'], 'line')}, {plural(words, 'word')} scored; skipped " + ", ".join(_skip_reasons(result)))


def _check_eval_text(run, file: Path) -> None:
    """Before torch: refuse a text that a text run would refuse once its model is loaded. A character run reads it
    for its characters and length (a window holds the block, its target and a window model's context in front); a
    token run, whose tokenizer encodes any text, for its size, its encoding and, if it is small, its length."""
    from makemore.rundir import tokenizer_entry

    m = run.config.model
    window = m.block_size + m.hyper.get("context", 1)
    if tokenizer_entry(run.config.dataset) is not None:
        from makemore.tokentext import check_scorable

        return check_scorable(file, run.vocab().tokenizer, window)
    from makemore.text import check_length, scan_text

    scan = scan_text(file, chars=run.vocab().chars)
    try:
        check_length(scan.length, window)
    except MakemoreError as e:
        raise MakemoreError(f"{file}: {e}") from None


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


def _eval_text(loaded, *, file: Path | None, split: str, as_json: bool) -> None:
    """Nats and bits per character over windows that tile the val (or train) part, or another text file."""
    from makemore.evaluation import evaluate_text

    if hasattr(loaded.vocab, "tokenizer"):  # a token run: nats per token and bits per character
        from makemore.tokentext import eval_command as eval_tokens

        return eval_tokens(loaded, file=file, split=split, as_json=as_json)
    result = evaluate_text(loaded, file=file, split=split)
    if as_json:
        print(json.dumps(result))
    else:
        where, loss, chars = result["on"], result["loss"], result["chars"]
        out.print(f"{where}: {loss:.4f} nats/char · {result['bpc']:.4f} bits/char · perplexity "
                  f"{result['perplexity']:.2f} · {chars:,} characters predicted · {loaded.run_dir} @ step "
                  f"{loaded.step}", soft_wrap=True, markup=False)


SKIP_REASONS = {"too_long": "longer than the model's block", "unknown": "characters outside the model's vocabulary"}


def score_command(run, words: list[str], *, as_json: bool) -> None:
    from makemore.data import check_scorable

    if run.config.mode == "text":
        raise MakemoreError(f"{run.path}: a text run; score scores words of a word list "
                            f"(for a text, use `makemore eval {run.path} FILE`)")
    words = check_scorable(words, run.config.model.block_size, run.vocab())  # before torch is imported
    from makemore.evaluation import score_words
    from makemore.sample import tag

    settle_imports()
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
    err.print(f"{plural(len(rows), 'word')} scored by {run.path}")  # which run: a mistyped name is a word


# --- info, datasets ---------------------------------------------------------------------------------

def _arithmetic(train: dict, chosen: dict | None) -> str:
    """The dtype the steps computed in, and the float32 matmul precision where it is not torch's default: as the
    latest process's first step chose them (``auto``) or as given; before any step, as configured."""
    dtype = chosen.get("dtype") if chosen else None
    text = f"{dtype}, chosen by --dtype auto" if dtype and train.get("dtype") == "auto" else \
        str(dtype or f"--dtype {train.get('dtype')}")
    precision = chosen.get("matmul_precision") if chosen else None
    return text + (f" · matmul precision {precision}" if precision and precision != "highest" else "")


def info_command(run, *, as_json: bool) -> None:
    s = run.summary()
    if as_json:
        print(json.dumps(s, ensure_ascii=False))
        return
    from makemore.models import get_family, recipe_for, recipe_text

    t = Table(box=None, show_header=False, pad_edge=False)
    t.add_column(style="bold", no_wrap=True)
    t.add_column(overflow="fold")  # a long vocabulary or path folds onto the next line, never cut short

    def row(name: str, value: str) -> None:  # printed as it is: a path's brackets are not rich's tags
        t.add_row(name, Text(value))

    d = s["dataset"]

    def count(v) -> str:  # config.json is the user's to edit: a field of the wrong type shows as "?"
        return f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else "?"

    row("run", s["run"])
    row("model", " · ".join([f"{s['type']}", f"{count(s['params'])} parameters"]
                             + ([" ".join(f"{k}={v}" for k, v in s["hyper"].items())] if s["hyper"] else [])
                             + ([f"--preset {s['preset']} where no option was given"] if s["preset"] else [])))
    if s["mode"] == "text":
        sp = s["split"]
        row("dataset", f"{d.get('name')} ({d.get('path')}) · text, {count(d.get('chars', 0))} characters")
        unit = "tokens" if isinstance(d.get("tokenizer"), dict) else "characters"  # what the parts hold
        part = _scored_part(sp, unit, s["block_size"], s["hyper"].get("context"))
        if sp.get("kind") == "shards":  # prepared shards: whole documents each side, counted in tokens
            docs = sp.get("documents") if isinstance(sp.get("documents"), dict) else {}
            row("split", f"token shards: {count(sp.get('train', 0))} / {count(sp.get('val', 0))} tokens "
                         f"train / val, in {count(docs.get('train'))} / {count(docs.get('val'))} documents · "
                         f"block {s['block_size']}")
        else:
            row("split", f"characters [0, {count(sp.get('boundary', 0))}) train, the rest val: "
                               f"{count(sp.get('train', 0))} / {count(sp.get('val', 0))} {unit} · "
                               f"block {s['block_size']}")
        tk = d.get("tokenizer")  # a token run's: its size, padding, pre-split
        # the model's rows, as training counts them: the characters and id 0 (a word list's start/stop; unused here)
        row("vocab", f"{s['vocab_size']} symbols: {s['vocab']!r} + id 0 (unused in a text)"
            if not isinstance(tk, dict) else
            f"{tk.get('vocab_size')} tokens (rows padded to {tk.get('padded')}) · byte-level BPE, "
            f"{tk.get('pattern')} pre-split · {s['run']}/tokenizer.json")
    else:
        # a word list too small for a val split: training chose its best on the training words, as it said
        part = " · on the training words (no val split)" if s["split"].get("val") == 0 else ""
        words, dups = d.get("words", 0), d.get("duplicates_dropped", 0)
        row("dataset", f"{d.get('name')} ({d.get('path')}) · {count(words)} word{'' if words == 1 else 's'}, "
            f"{count(dups)} duplicate{'' if dups == 1 else 's'} dropped")
        row("split", " / ".join(count(s['split'].get(k, 0)) for k in ("train", "val", "test"))
            + " train/val/test")
        row("vocab", f"{s['vocab_size']} symbols: {s['vocab']!r} + start/stop")
    tr = s["train"]
    if get_family(s["type"]).fitted:
        row("training", f"fitted in one pass · seed {tr.get('seed')} · {tr.get('device')}")
    else:
        steps, seconds = tr.get("max_steps"), tr.get("max_time")
        length = " or ".join(([f"{count(steps)} step{'' if steps == 1 else 's'}"] if steps else [])
                             + ([f"{seconds:g} s"] if seconds else [])) \
            + (", whichever comes first" if steps and seconds else "")
        every = tr.get("diag_interval")
        accum = tr.get("grad_accum")  # (results differ for a model with batch norm) and the instruments: said
        row("training", f"{length} · batch {tr.get('batch_size')}"
            + (f" in {accum} micro-batches" if isinstance(accum, int) and accum > 1 else "")
            + (f" over {s['processes']} processes" if s["processes"] > 1 else "")
            + (f" · diagnostics every {every} step{'' if every == 1 else 's'}" if tr.get("diagnostics") is True
               else "")
            + f" · lr {tr.get('learning_rate')} · wd {tr.get('weight_decay')} · "
            + (f"weights' average {tr.get('ema')} · " if tr.get("ema") else "")
            + f"seed {tr.get('seed')} · {tr.get('device')} · {_arithmetic(tr, s['arithmetic'])}")
    took = f" in {s['elapsed']:.0f} s" if s["elapsed"] is not None else ""
    if s["damaged_lines"]:
        row("metrics", f"skipped {plural(s['damaged_lines'], 'damaged line')} of {run.path / METRICS}")
    row("progress", f"step {s['steps']}" + (f" · finished ({s['finished']}){took}" if s["finished"] else
                                             f" · failed: {s['failed']}" if s["failed"] else
                                             " · not finished"))
    fmt = (lambda v: f"{v:.4f}" if isinstance(v, float) else "-")
    bpc = f" ({s['best_val_bpc']:.4f} bits/char)" if s["mode"] == "text" and s["best_val_bpc"] is not None else ""
    row("best val", f"{fmt(s['best_val_loss'])} {s['loss_unit']}{bpc} @ step {s['best_step']}{part}"
        if s["best_step"] is not None else "- (no evaluation recorded yet)")
    if s["mode"] != "text":  # a text run's held-out part is val (there is no test split)
        row("test", fmt(s["test_loss"]) + (f" of the latest weights (step {s['steps']}: the best checkpoint holds "
                                            "the initial ones)" if s["test_on_latest"] and s["test_loss"] is not None
                                            else ""))
    family, defaults = get_family(s["type"]), recipe_for(s["type"], s["mode"])
    recipe = "fitted in one pass" if family.fitted else recipe_text(defaults)
    if s["mode"] == "text":
        from makemore.models import text_defaults

        block, text_hyper = text_defaults(s["type"])
        hyper = " ".join(f"{k}={v}" for k, v in text_hyper.items()) + f" block_size={block}"
    else:
        hyper = " ".join(f"{k}={v}" for k, v in family.hyper.items())
    row(f"{s['type']} defaults" + (" (text)" if s["mode"] == "text" else ""),
        f"{hyper} · {recipe}" if hyper else recipe)
    out.print(t)


def _scored_part(split: dict, unit: str, block: object, context: object) -> str:
    """What a text run's best val loss was scored on, where that is not all of val: training scores a fixed part
    (``EVAL_TOKENS``, in windows of ``block``) at each evaluation, and `makemore eval` all of it, or a shard run's
    first ``MAX_EVAL_TOKENS``. A val split whose windows fit within that part is scored whole by both."""
    from makemore.text import EVAL_TOKENS, tiled_whole
    from makemore.tokentext import MAX_EVAL_TOKENS

    val = split.get("val")
    if not isinstance(val, int) or isinstance(val, bool) or not isinstance(block, int) or block < 1:
        return ""
    skip = context - 1 if isinstance(context, int) and context > 1 else 0  # a window model's context in front
    if tiled_whole(val, skip + block + 1, block, EVAL_TOKENS):
        return ""
    whole = f"its first {MAX_EVAL_TOKENS:,}" if split.get("kind") == "shards" and val > MAX_EVAL_TOKENS else "all of it"
    return f" · on {EVAL_TOKENS:,} {unit} of val (`makemore eval` scores {whole})"


DATASET_INFO = {
    "names": "US first names (Census 1990 lists), lowercase",
    "surnames": "US surnames (Census 1990 list), lowercase",
    "words": "English words (SCOWL american-english), lowercase a-z",
    "shakespeare": "Shakespeare's plays (Project Gutenberg), one text: trained in text mode",
}


def datasets_command(*, as_json: bool) -> None:
    from makemore.data import builtin_datasets
    from makemore.text import BUILTIN_TEXT

    rows = []
    for name, path in sorted(builtin_datasets().items()):
        data = path.read_bytes()
        kind = "text" if name in BUILTIN_TEXT else "words"
        rows.append({"name": name, "kind": kind, "lines": data.count(b"\n"), "bytes": len(data),
                     "description": DATASET_INFO.get(name, ""), "path": str(path)})
        if kind == "words":
            rows[-1]["words"] = rows[-1]["lines"]
    if as_json:
        print(json.dumps(rows))
        return
    t = Table(box=None)
    for col in ("name", "kind", "lines", "size", "what"):
        t.add_column(col, justify="right" if col in ("lines", "size") else "left")
    for r in rows:
        t.add_row(r["name"], r["kind"], f"{r['lines']:,}", f"{r['bytes'] / 1024:.0f} KiB", r["description"])
    out.print(t)
    err.print("train on one with e.g. `makemore train names` (a word list) or `makemore train shakespeare` (text)")
