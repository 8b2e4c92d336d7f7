"""The command line: makemore train | sample | eval | score | info | datasets | tui | tokenizer | tokenize | prepare.

Start-up stays fast: nothing here imports torch or textual at module level; each command imports what it needs.
"""

# No `from __future__ import annotations` here: Typer reads every command's annotations when the command line
# starts, and annotations kept as strings were compiled and evaluated one by one each time (a fifth of what
# `makemore sample -n 10` added to `import torch`); evaluated once, as the functions are defined, they cost
# next to nothing.
import functools
import importlib
import inspect
import os
import sys
import typing
from pathlib import Path, PurePath
from typing import Annotated, Optional

import typer
import typer.core
from typer.core import TyperCommand, TyperGroup

from makemore import __version__
from makemore.errors import AlreadySaid, MakemoreError, refusal
from makemore.models import BASE_RECIPE, BASE_TEXT_RECIPE, FAMILIES, recipe_text


class _Help:
    """Help as a user reads it, whatever Typer's version: a flag shows no value type (``--new-only``, not
    ``--new-only <bool>``), and an option's long names read ``--learning-rate, --lr``. The options are changed for
    the rendering only and restored after it."""

    def format_help(self, ctx, formatter):
        saved = []
        for param in self.get_params(ctx):
            if getattr(param, "param_type_name", None) != "option":
                continue
            saved.append((param, param.opts, param.metavar))
            if getattr(param, "is_flag", False):
                param.metavar = ""  # rendered as nothing in place of the type
            longs = [o for o in param.opts if o.startswith("--")]
            if len(longs) > 1:
                param.opts = [", ".join(longs), *(o for o in param.opts if not o.startswith("--"))]
        try:
            return super().format_help(ctx, formatter)
        finally:
            for param, opts, metavar in saved:
                param.opts, param.metavar = opts, metavar


# the click that Typer runs on: its own copy in recent versions, the click package in older ones
_click = getattr(typer.core, "_click", None) or importlib.import_module("click")
_CLICK_ERROR = _click.exceptions.ClickException
_NO_ARGS = getattr(_click.exceptions, "NoArgsIsHelpError", ())
_ABORT = getattr(typer.core, "Abort", None) or _click.exceptions.Abort


def _names_a_path(param) -> bool:
    """Whether a command's parameter takes a path: a click.Path in Typer's older versions, an annotation of Path
    (or a list of them) in its newer ones."""
    if getattr(getattr(param, "type", None), "name", None) == "path":
        return True
    hint = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    return any(isinstance(h, type) and issubclass(h, PurePath) for h in (hint, *typing.get_args(hint)))


def _check_values(param) -> None:
    """Have a path or name parameter refuse, as its own usage error: an empty path (pathlib reads "" as ".", the
    current directory, which `-O ""` then called a directory and `-o ""` a directory of other files), and a name
    a run could not record or print back (``files.check_name``)."""
    from makemore.files import check_name

    consume = param.consume_value

    def consume_value(ctx, opts):
        value, source = consume(ctx, opts)
        values = value if isinstance(value, (list, tuple)) else [value]
        if "" in values and _names_a_path(param):
            raise _click.exceptions.BadParameter("an empty path", ctx=ctx, param=param)
        for v in values:
            if isinstance(v, str):
                try:
                    check_name(v)
                except MakemoreError as e:
                    raise _click.exceptions.BadParameter(str(e), ctx=ctx, param=param) from None
        return value, source

    param.consume_value = consume_value


class _Command(_Help, TyperCommand):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for param in self.params:
            if _names_a_path(param) or param.name in ("data", "out"):  # (a data argument takes a name or a path)
                _check_values(param)


class _Group(_Help, TyperGroup):
    """The commands' list shows each one's first paragraph as one flowing line, as the command's own help does
    (Typer's rich mode would keep the docstring's line breaks there); a usage error (an unknown option, a value
    of the wrong type) is one line on stderr and exit code 2, as makemore's own refusals are, where Typer would
    draw a usage line and a box."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except _NO_ARGS as e:  # `makemore` alone: its help (Typer's rich help is printed as the error is made)
            if e.format_message().strip():
                e.show()
            sys.exit(e.exit_code)
        except _CLICK_ERROR as e:
            command = e.ctx.command_path if getattr(e, "ctx", None) else "makemore"
            # a misspelt command under a group (makemore bogus, makemore tokenizer bogus): the commands are listed
            what = "commands" if "No such command" in e.format_message() else "options"
            typer.echo(f"error: {' '.join(e.format_message().split())} (`{command} --help` lists the {what})",
                       err=True)
            sys.exit(e.exit_code)
        except _ABORT:
            typer.echo("aborted", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)

    def format_help(self, ctx, formatter):
        saved = [(cmd, cmd.short_help) for cmd in self.commands.values() if not cmd.short_help and cmd.help]
        for cmd, _ in saved:
            cmd.short_help = " ".join(inspect.cleandoc(cmd.help).split("\n\n")[0].split())
        try:
            return super().format_help(ctx, formatter)
        finally:
            for cmd, short in saved:
                cmd.short_help = short


app = typer.Typer(
    name="makemore",
    cls=_Group,
    help="Train language models on a list of words or on a text, and generate more like them.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)


def _family_table() -> str:
    lines = ["[bold]Model types and their defaults[/] (model options · training recipe):", ""]
    for f in FAMILIES.values():
        hyper = " ".join(f"{k}={v}" for k, v in f.hyper.items()) or "-"
        r = {**BASE_RECIPE, **f.recipe}
        recipe = "fitted in one pass" if f.fitted else recipe_text(r)
        for seconds, settings in f.budgets:
            recipe += f"; with --max-time {seconds:g} or more: " + " ".join(f"{k}={v:g}" for k, v in settings.items())
        if f.lean is not None:
            recipe += (f" (on a machine that fits fewer than {f.lean[0]:,} of its steps: "
                       + " ".join(f"{k}={v:g}" for k, v in f.lean[1].items()) + ")")
        if f.text is not None:  # text mode (--mode text, or a built-in text such as shakespeare)
            t = {**BASE_TEXT_RECIPE, **f.text.recipe}
            parts = [f"block_size={f.text.block_size}", *(f"{k}={v}" for k, v in f.text.hyper.items())]
            if not f.fitted:
                parts.append(f"steps={t['max_steps']} batch={t['batch_size']} lr={t['learning_rate']:g}")
            recipe += " · [italic]text[/]: " + " ".join(parts)
            for seconds, settings in f.text.budgets:
                recipe += f"; with --max-time {seconds:g} or more: " + \
                    " ".join(f"{k}={v:g}" for k, v in settings.items())
        lines.append(f"  [bold]{f.name}[/]: {hyper} · {recipe}")
    return lines[0] + "\n\n" + "\n\n".join(lines[2:])


def handles_errors(fn):
    """Bad input ends with one line on stderr and exit code 2, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except MakemoreError as e:
            if not isinstance(e, AlreadySaid):
                typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            if os.environ.get("RANK", "0") in ("", "0"):  # under torchrun, said once: by rank 0, as it says the rest
                typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None
        except OSError as e:  # what the system refuses (permissions, a full disk) wherever it comes from: one line
            line = refusal(e)
            if line is None:
                raise
            typer.echo(f"error: {line}", err=True)
            raise typer.Exit(2) from None

    return wrapper


def _version(value: bool) -> None:
    if value:
        typer.echo(f"makemore {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[Optional[bool], typer.Option("--version", callback=_version, is_eager=True,
                                                    help="Show the version and exit.")] = None,
) -> None:
    """Train language models on a list of words or on a text, and generate more like them."""


# --- options shared between commands, defined once ------------------------------------------------

M, O, S, P = "Model", "Optimization", "System", "Output"
RunArg = Annotated[Optional[Path], typer.Argument(help="Run directory (default: the most recent run in runs/).",
                                                  show_default=False)]
SeedOpt = Annotated[int, typer.Option(help="Random seed: same seed, same result (with --dtype and --matmul-precision fixed: auto chooses by timing).", rich_help_panel=S)]
DeviceOpt = Annotated[str, typer.Option(help="auto | cpu | cuda | cuda:N | mps (auto: CUDA, then MPS, then CPU).",
                                        rich_help_panel=S)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.", rich_help_panel=P)]


def _run_dir(run: Path | None):
    from makemore.rundir import resolve_run

    return resolve_run(run)


def _given(ctx: typer.Context) -> set[str]:
    """The parameters the user typed (as opposed to left at their defaults). Compared by the source's name: Typer
    may bring its own copy of click's ParameterSource."""
    sources = {name: ctx.get_parameter_source(name) for name in ctx.params}
    return {name for name, source in sources.items()
            if source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")}


# --- train ------------------------------------------------------------------------------------------

HYPER = ("n_layer", "n_head", "n_embd", "n_embd2", "context", "dropout", "dropout_samples", "batchnorm", "smoothing",
         "tie_weights")
TRAIN = ("max_steps", "max_time", "batch_size", "learning_rate", "weight_decay", "warmup_steps", "grad_clip",
         "grad_accum", "eval_interval", "ema", "dtype", "compile", "matmul_precision", "diagnostics", "diag_interval",
         "init_scale")
TRAIN_ONLY = ("resume", "tensorboard", "quiet")  # options the live screen does not take


def train(
    ctx: typer.Context,
    data: Annotated[Optional[str], typer.Argument(help="Word list (one word per line) or text (see --mode), or a "
                                                       "built-in dataset name (see `makemore datasets`); for "
                                                       "`makemore tui`, also a run directory to follow, or "
                                                       "several to overlay.",
                                                  show_default=False)] = None,
    model_type: Annotated[str, typer.Option("--type", "-t", help=f"Model family: {', '.join(FAMILIES)}.",
                                            rich_help_panel=M)] = "transformer",
    n_layer: Annotated[Optional[int], typer.Option(help="Layers/blocks.", rich_help_panel=M, show_default=False)] = None,
    n_head: Annotated[Optional[int], typer.Option(help="Attention heads.", rich_help_panel=M, show_default=False)] = None,
    n_embd: Annotated[Optional[int], typer.Option(help="Embedding width.", rich_help_panel=M, show_default=False)] = None,
    n_embd2: Annotated[Optional[int], typer.Option(help="Hidden width (MLP, RNN, BoW, WaveNet).",
                                                   rich_help_panel=M, show_default=False)] = None,
    context: Annotated[Optional[int], typer.Option(help="Characters of context (ngram, mlp, wavenet).",
                                                   rich_help_panel=M, show_default=False)] = None,
    dropout: Annotated[Optional[float], typer.Option(help="Dropout probability.", rich_help_panel=M,
                                                     show_default=False)] = None,
    dropout_samples: Annotated[Optional[int], typer.Option(help="Transformer trained with dropout: predict the "
                                                           "average of this many dropout masks' predictions in "
                                                           "evaluation and sampling (Monte Carlo dropout); 0: one "
                                                           "pass with dropout off.", rich_help_panel=M,
                                                           show_default=False)] = None,
    tie_weights: Annotated[Optional[bool], typer.Option("--tie-weights/--no-tie-weights", help="Transformer: the "
                                                        "head shares the token embedding's matrix (GPT-2).",
                                                        rich_help_panel=M, show_default=False)] = None,
    batchnorm: Annotated[Optional[bool], typer.Option("--batchnorm/--no-batchnorm", help="Batch norm (mlp).",
                                                      rich_help_panel=M, show_default=False)] = None,
    smoothing: Annotated[Optional[float], typer.Option(help="Additive smoothing of counts (ngram).",
                                                       rich_help_panel=M, show_default=False)] = None,
    max_steps: Annotated[Optional[int], typer.Option(help="Optimizer steps (default: the family's recipe).",
                                                     rich_help_panel=O, show_default=False)] = None,
    max_time: Annotated[Optional[float], typer.Option(help="Seconds of training; the learning-rate schedule "
                                                           "follows them. Without --max-steps the time alone "
                                                           "decides, and a long budget picks the family's "
                                                           "larger settings (listed below).",
                                                      rich_help_panel=O, show_default=False)] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", "-b", help="Words per step.",
                                                      rich_help_panel=O, show_default=False)] = None,
    learning_rate: Annotated[Optional[float], typer.Option("--learning-rate", "--lr", help="Peak learning rate.",
                                                           rich_help_panel=O, show_default=False)] = None,
    weight_decay: Annotated[Optional[float], typer.Option(help="AdamW weight decay (matrices only).",
                                                         rich_help_panel=O, show_default=False)] = None,
    warmup_steps: Annotated[Optional[int], typer.Option(help="Linear warm-up steps before cosine decay (default: the "
                                                        "recipe's, at most a tenth of --max-steps, at least 1).",
                                                        rich_help_panel=O, show_default=False)] = None,
    grad_clip: Annotated[Optional[float], typer.Option(help="Max gradient norm (0: off).", rich_help_panel=O,
                                                       show_default=False)] = None,
    grad_accum: Annotated[Optional[int], typer.Option(help="Micro-batches per step.", rich_help_panel=O,
                                                      show_default=False)] = None,
    eval_interval: Annotated[Optional[int], typer.Option(help="Steps between evaluations and checkpoints.",
                                                         rich_help_panel=O, show_default=False)] = None,
    ema: Annotated[Optional[float], typer.Option(help="Decay of a moving average of the weights (e.g. 0.999) "
                                                 "that evaluation, samples and checkpoints use; 0: off (default: the "
                                                 "model type's recipe, --help's list).",
                                                 rich_help_panel=O, show_default=False)] = None,
    diagnostics: Annotated[Optional[bool], typer.Option(
        "--diagnostics/--no-diagnostics", help="Record activation, gradient and update statistics every "
        "--diag-interval steps to metrics.jsonl (see `makemore diagnose`). Off by default; on in the TUI.",
        rich_help_panel=P, show_default=False)] = None,
    diag_interval: Annotated[Optional[int], typer.Option(help="Steps between diagnostics records (default 100).",
                                                         rich_help_panel=P, show_default=False)] = None,
    init_scale: Annotated[Optional[float], typer.Option(help="Multiply the initial hidden weights (not the "
                                                        "embeddings or the output layer) by this, to replay the "
                                                        "lectures' initialisation experiments.",
                                                        rich_help_panel=M, show_default=False)] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Run directory (default: "
                                                "runs/<dataset>-<type>, then -2, -3, ...).", rich_help_panel=P,
                                                show_default=False)] = None,
    resume: Annotated[Optional[Path], typer.Option(help="Continue the run in this directory from its last "
                                                   "checkpoint. A larger --max-steps or --max-time extends it: "
                                                   "the learning-rate schedule is then spread over the new length, "
                                                   "so a finished run's rate rises again.", rich_help_panel=P,
                                                   show_default=False)] = None,
    tensorboard: Annotated[bool, typer.Option(help="Also write TensorBoard logs to RUN/tensorboard.",
                                              rich_help_panel=P)] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the final line, and any warning (a "
                                        "note on an option given, a confidently wrong start).", rich_help_panel=P)] = False,
    seed: SeedOpt = 42,
    device: DeviceOpt = "auto",
    dtype: Annotated[str, typer.Option(help="auto | float32 | bfloat16 | float16 (autocast). auto: float32, or on "
                                       "a CPU bfloat16 where the first step times it 10% faster.",
                                       rich_help_panel=S)] = "auto",
    compile: Annotated[bool, typer.Option("--compile", help="torch.compile the model (needs a C++ compiler "
                                          "on CPU; slow first step).", rich_help_panel=S)] = False,
    matmul_precision: Annotated[str, typer.Option(help="auto | highest | high | medium: torch's float32 matmul "
                                                  "precision. auto: TF32 on CUDA; on a CPU, for the "
                                                  "Transformer, WaveNet and GRU, oneDNN's matmuls where they "
                                                  "stay exact float32 and the first step times them faster.",
                                                  rich_help_panel=S)] = "auto",
    max_len: Annotated[int, typer.Option(help="Skip words longer than this (and say how many).",
                                         rich_help_panel=S)] = 64,
    mode: Annotated[Optional[str], typer.Option(help="words: one item per line · text: the file is one stream "
                                                "of characters, newlines included (default: text for a "
                                                "built-in text corpus such as shakespeare, else words).",
                                                rich_help_panel=M, show_default=False)] = None,
    block_size: Annotated[Optional[int], typer.Option(help="Text mode: characters (tokens, with --tokenizer) "
                                                      "of context per training window (default: the family's "
                                                      "text recipe).",
                                                      rich_help_panel=M, show_default=False)] = None,
    tokenizer: Annotated[Optional[Path], typer.Option(help="Text mode on tokens: a tokenizer file (makemore "
                                                      "tokenizer train); the vocabulary is its tokens.",
                                                      rich_help_panel=M, show_default=False)] = None,
    preset: Annotated[Optional[str], typer.Option(help="A named model and recipe: gpt2-124m (GPT-2 small, the "
                                                  "GPT-2 lecture's). Options given explicitly override it.",
                                                  rich_help_panel=M, show_default=False)] = None,
) -> None:
    """Train a model on a word list or a text and save it to a run directory.

    [dim]makemore train names · makemore train names.txt --type mlp --batchnorm · makemore train --resume runs/names-transformer[/]
    """
    more = list(ctx.args)  # further positional arguments: the runs that `makemore tui RUN RUN...` overlays
    if more and ctx.info_name != "tui":
        raise MakemoreError(f"train takes one DATA, not {len(more) + 1} ({', '.join([data or '', *more])}); "
                            f"to see runs side by side: makemore tui RUN RUN... or makemore compare RUN RUN...")
    from makemore.models import family_name

    model_type = family_name(model_type)  # any case; a misspelling is refused with the closest name
    options = dict(ctx.params)
    given = _given(ctx)
    hyper = {k: options[k] if k in given else None for k in HYPER}
    train_opts = {k: options[k] if k in given else None for k in TRAIN}  # None: the family's recipe decides
    if ctx.info_name == "tui":
        from makemore.tui.app import run_from_cli

        typed = [_option_name(ctx, k) for k in ctx.params if k in given and k != "data"]
        return run_from_cli(data, model_type=model_type, out=out, seed=seed, device=device, max_len=max_len,
                            hyper=hyper, train=train_opts, given=typed, mode=mode, block_size=block_size, more=more,
                            tokenizer=tokenizer, preset=preset, type_given="model_type" in given)
    from makemore.commands import train_command

    train_command(data=data, model_type=model_type, out=out, resume=resume, seed=seed, device=device,
                  max_len=max_len, hyper=hyper, train=train_opts, given=given, tensorboard=tensorboard, quiet=quiet,
                  mode=mode, block_size=block_size, tokenizer=tokenizer, preset=preset)


def _option_name(ctx: typer.Context, name: str) -> str:
    """The parameter ``name`` as the user typed it (``--lr`` or ``--learning-rate``, ``-t`` or ``--type``), read
    from the command line when there is one; else its first long name (``--type``, never ``--model-type``)."""
    param = next((p for p in ctx.command.params if p.name == name), None)
    names = [*getattr(param, "opts", []), *getattr(param, "secondary_opts", [])]
    argv = sys.argv[1:]
    typed = [n for n in names if any(a == n or a.startswith(n + "=") for a in argv)]
    longs = [n for n in names if n.startswith("--")]
    return (typed or longs or ["--" + name.replace("_", "-")])[0]


TUI_HELP = """Watch and steer training live: loss curve, samples, bigram probability table.

[dim]makemore tui names --type transformer · makemore tui runs/names-transformer · makemore tui runs/a runs/b · makemore tui[/]

Give a word list to train on it here (the options are those of `makemore train`, but for resuming, TensorBoard and -q), a run directory to follow a run that `makemore train` is writing (or replay a finished one), two or more run directories to overlay their loss curves, or nothing (or a folder of runs) for a start screen.
"""

class _LiveCommand(_Command):
    """`makemore tui`: train's parameters less those the live screen does not take (they keep their defaults)."""

    def __init__(self, *args, params=None, **kwargs):
        super().__init__(*args, params=[p for p in params or [] if p.name not in TRAIN_ONLY], **kwargs)

    def collect_usage_pieces(self, ctx) -> list[str]:
        return ["[DATA | RUN [RUN...]]" if piece.lower() == "[data]" else piece
                for piece in super().collect_usage_pieces(ctx)]


# one function, two commands: `tui` takes train's options as they are defined there, so the two cannot drift.
# Both let further positional arguments through (ctx.args): `tui` overlays them, `train` refuses them in a line.
EXTRA_ARGS = {"allow_extra_args": True}
app.command(cls=_Command, epilog=_family_table(), context_settings=EXTRA_ARGS)(handles_errors(train))
app.command(name="tui", help=TUI_HELP, epilog=_family_table(), cls=_LiveCommand,
            context_settings=EXTRA_ARGS)(handles_errors(train))


# --- sample -----------------------------------------------------------------------------------------

@app.command(cls=_Command)
@handles_errors
def sample(
    ctx: typer.Context,
    run: RunArg = None,
    n: Annotated[int, typer.Option("-n", "--num", help="How many words, or text continuations (for a text run "
                                   "the default is 1).")] = 20,
    temperature: Annotated[float, typer.Option("--temperature", "-T",
                                               help="Softmax temperature: 0 (greedy), or 0.001 to 1,000.")] = 1.0,
    top_k: Annotated[Optional[int], typer.Option(help="Sample among the k likeliest characters.",
                                                 show_default=False)] = None,
    top_p: Annotated[Optional[float], typer.Option(help="Nucleus sampling: the smallest set with this mass.",
                                                   show_default=False)] = None,
    prefix: Annotated[str, typer.Option(help="Start every word with this.")] = "",
    min_len: Annotated[int, typer.Option(help="At least this many characters (at most the model's longest "
                                              "word).")] = 0,
    max_len: Annotated[Optional[int], typer.Option(help="At most this many characters (default: the model's "
                                                        "longest word): a sample still going is drawn again (and "
                                                        "counted), never cut short.",
                                                   show_default=False)] = None,
    allow_empty: Annotated[bool, typer.Option("--allow-empty", help="Let a word be empty (the model stops at "
                                              "once); empty words never count as new.")] = False,
    new_only: Annotated[bool, typer.Option("--new-only", help="Only words not in the training file.")] = False,
    unique: Annotated[bool, typer.Option("--unique", help="No word twice.")] = False,
    scores: Annotated[bool, typer.Option("--scores", help="Show each word's log-probability.")] = False,
    as_json: JsonOpt = False,
    output: Annotated[Optional[Path], typer.Option("--output", "-O", help="Also write the words to this file (a "
                                                   "file there is replaced, keeping its permissions); a text run's continuations, a "
                                                   "line of dashes apart.",
                                                   show_default=False)] = None,
    seed: SeedOpt = 0,
    device: DeviceOpt = "cpu",
    prompt: Annotated[Optional[str], typer.Option(help="Text runs: continue this text (default: a newline; in a "
                                                       "text without one, a space, else the first character of its "
                                                       "vocabulary).",
                                                  show_default=False)] = None,
    length: Annotated[Optional[int], typer.Option(help="Text runs: characters to draw (default 500).",
                                                  show_default=False)] = None,
) -> None:
    """Generate words from a trained run, each marked new, in the training set, or in the held-out set; from a
    text run, continue a prompt, printing each character as it is drawn."""
    from makemore.commands import sample_command

    sample_command(_run_dir(run), n=n if "n" in _given(ctx) else None, temperature=temperature, top_k=top_k, top_p=top_p, prefix=prefix,
                   min_len=min_len, max_len=max_len, new_only=new_only, unique=unique, scores=scores,
                   as_json=as_json, output=output, seed=seed, device=device, allow_empty=allow_empty,
                   prompt=prompt, length=length)


# --- eval, score ------------------------------------------------------------------------------------

@app.command(cls=_Command, name="eval")
@handles_errors
def eval_(
    run: RunArg = None,
    file: Annotated[Optional[Path], typer.Argument(help="Evaluate on this word list instead of a split.",
                                                   show_default=False)] = None,
    split: Annotated[Optional[str], typer.Option(help="train | val | test (default: test; val for a text run, "
                                                      "whose held-out part is the last 10%).",
                                                 show_default=False)] = None,
    skip_unknown: Annotated[bool, typer.Option("--skip-unknown", help="Skip the file's words with characters "
                                               "outside the model's vocabulary (counted) instead of refusing "
                                               "the file.")] = False,
    as_json: JsonOpt = False,
    device: DeviceOpt = "cpu",
) -> None:
    """Loss of a run's best checkpoint: nats and bits per character on its test split or on a file.

    Words of a file longer than the model's longest are skipped; each skipped word is counted and reported.
    """
    from makemore.commands import eval_command
    from makemore.data import builtin_datasets, resolve_dataset

    if run is not None and file is None and (run.is_file() or (not run.exists() and str(run) in builtin_datasets())):
        run, file = None, run  # `makemore eval FILE`: the latest run, on that file (or built-in dataset)
    if file is not None:
        file = resolve_dataset(file)[1]
    eval_command(_run_dir(run), file=file, split=split, as_json=as_json, device=device, skip_unknown=skip_unknown)


@app.command(cls=_Command)
@handles_errors
def score(
    words: Annotated[list[str], typer.Argument(metavar="WORD", show_default=False,
                                               help="Words to score; the first is a run directory if it is one "
                                                    "(default: the most recent run in runs/).")],
    as_json: JsonOpt = False,
) -> None:
    """Each word's mean negative log-likelihood per character (lower: the model finds it more typical).

    [dim]makemore score emma olivia · makemore score runs/names-mlp emma olivia[/]
    """
    from makemore.commands import score_command, split_run_and_words

    run, words = split_run_and_words(words)
    score_command(run, words, as_json=as_json)


# --- info, datasets ---------------------------------------------------------------------------------

@app.command(cls=_Command)
@handles_errors
def info(run: RunArg = None, as_json: JsonOpt = False) -> None:
    """A run's configuration, size, vocabulary and results (reads JSON only: instant)."""
    from makemore.commands import info_command

    info_command(_run_dir(run), as_json=as_json)


@app.command(cls=_Command)
@handles_errors
def datasets(as_json: JsonOpt = False) -> None:
    """The built-in datasets, word lists and texts (use a name wherever a file is expected)."""
    from makemore.commands import datasets_command

    datasets_command(as_json=as_json)


# --- the lectures' instruments: lr-find, diagnose, runs, compare -------------------------------------

@app.command(name="lr-find", cls=_Command)
@handles_errors
def lr_find(
    data: Annotated[str, typer.Argument(help="Word list or text: a file, token shards or a built-in dataset "
                                             "name.")],
    model_type: Annotated[str, typer.Option("--type", "-t", help=f"Model family: {', '.join(FAMILIES)}.")] = "transformer",
    steps: Annotated[int, typer.Option(help="Steps of the sweep: one per learning rate.")] = 1000,
    lr_min: Annotated[float, typer.Option("--min", help="First learning rate (1e-12 or more).")] = 1e-5,
    lr_max: Annotated[float, typer.Option("--max", help="Last learning rate (1e6 or less).")] = 10.0,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", "-b", help="Words or windows per step "
                                                      "(default: the family's recipe).", show_default=False)] = None,
    as_json: JsonOpt = False,
    seed: SeedOpt = 42,
    device: DeviceOpt = "auto",
    mode: Annotated[Optional[str], typer.Option(help="words | text, as `makemore train --mode`.",
                                                show_default=False)] = None,
    block_size: Annotated[Optional[int], typer.Option(help="Text mode: characters (or tokens) of context per "
                                                      "window (default: the family's text recipe).",
                                                      show_default=False)] = None,
    tokenizer: Annotated[Optional[Path], typer.Option(help="Text mode on tokens: a tokenizer file.",
                                                      show_default=False)] = None,
) -> None:
    """The lecture's learning-rate sweep: from a fresh model, one step per learning rate on an exponential grid,
    loss against log10(lr) in the terminal, and a suggested learning rate (the valley). On a word list or a text,
    with the family's recipe for it.

    [dim]makemore lr-find names --type mlp · makemore lr-find shakespeare --steps 300[/]
    """
    from makemore.instruments import lr_find_command

    lr_find_command(data, model_type=model_type, steps=steps, lr_min=lr_min, lr_max=lr_max,
                    seed=seed, device=device, batch_size=batch_size, as_json=as_json, mode=mode,
                    block_size=block_size, tokenizer=tokenizer)


@app.command(cls=_Command)
@handles_errors
def diagnose(run: RunArg = None, as_json: JsonOpt = False) -> None:
    """A run's latest diagnostics (train with --diagnostics): activations per layer, gradients and update-to-data
    ratios per weight, and the character embeddings on their first two principal components."""
    from makemore.instruments import diagnose_command

    diagnose_command(_run_dir(run).path, as_json=as_json)


@app.command(cls=_Command)
@handles_errors
def runs(
    root: Annotated[Path, typer.Argument(help="Directory holding run directories.")] = Path("runs"),
    as_json: JsonOpt = False,
    sort: Annotated[str, typer.Option(help="name | type | params | steps | time | val | test")] = "name",
) -> None:
    """The runs in a directory: type, parameters, steps, time, best validation and test loss."""
    from makemore.instruments import runs_command

    runs_command(root, as_json=as_json, sort=sort)


@app.command(cls=_Command)
@handles_errors
def compare(
    run_dirs: Annotated[list[Path], typer.Argument(help="Two or more run directories.", metavar="RUN")],
    as_json: JsonOpt = False,
) -> None:
    """Runs side by side: every setting and result in one table, the rows that differ highlighted."""
    from makemore.instruments import compare_command

    compare_command(run_dirs, as_json=as_json)
# --- tokenizer, tokenize, prepare ------------------------------------------------------------------

tokenizer_app = typer.Typer(cls=_Group, help="Byte-level BPE tokenizers (GPT-2/GPT-4 style) for token-level text models.",
                            no_args_is_help=True)
app.add_typer(tokenizer_app, name="tokenizer")
# readable=False: Click's own check would print a boxed usage error; makemore.files refuses it in one line
TokArg = Annotated[Path, typer.Argument(help="Tokenizer file (tokenizer.json, from makemore tokenizer train).",
                                        show_default=False, readable=False)]


@tokenizer_app.command(name="train", cls=_Command)
@handles_errors
def tokenizer_train(
    data: Annotated[str, typer.Argument(help="Text to learn merges from: a file, a directory of text files, "
                                             "or a built-in dataset name.", show_default=False)],
    vocab_size: Annotated[int, typer.Option("--vocab-size", help="Tokens in all: 256 bytes, the merges and "
                                            "<|endoftext|>.", show_default=False)],
    out: Annotated[str, typer.Option("--out", "-o", help="A new file for the tokenizer (JSON); an existing one is never "
                                      "replaced: runs and shards made with it record its sha256.",
                                      show_default=False)],
    pattern: Annotated[str, typer.Option(help="Pre-split regex: gpt4 (cl100k) | gpt2.")] = "gpt4",
) -> None:
    """Train a byte-level BPE tokenizer and save it as tokenizer.json.

    [dim]makemore tokenizer train shakespeare.txt --vocab-size 1024 -o shakespeare-1k.json[/]
    """
    from makemore.token_commands import tokenizer_train_command

    tokenizer_train_command(data, vocab_size=vocab_size, out=out, pattern=pattern)


@app.command(cls=_Command)
@handles_errors
def tokenize(
    ctx: typer.Context,
    tok: TokArg,
    text: Annotated[Optional[str], typer.Argument(help="Text to tokenize.", show_default=False)] = None,
    file: Annotated[Optional[Path], typer.Option("--file", "-f", help="Tokenize this file instead.",
                                                 show_default=False, readable=False)] = None,
    merges: Annotated[bool, typer.Option("--merges", help="List the first merges, in rank order, as byte "
                                         "strings.")] = False,
    n: Annotated[int, typer.Option("-n", help="How many merges --merges lists.")] = 30,
    as_json: JsonOpt = False,
) -> None:
    """Show how a tokenizer cuts a text: the tokens one by one in colour, their count, characters per token.

    [dim]makemore tokenize tok.json "To be, or not to be" · makemore tokenize tok.json --file play.txt --json · makemore tokenize --merges tok.json[/]
    """
    from makemore.token_commands import tokenize_command

    if "n" in _given(ctx) and not merges:
        raise MakemoreError("-n applies to --merges (how many merges it lists)")
    tokenize_command(tok, text=text, file=file, as_json=as_json, merges=merges, n=n)


@app.command(cls=_Command)
@handles_errors
def prepare(
    src: Annotated[Path, typer.Argument(help="A text file, or a directory of text files (each one document).",
                                        show_default=False, readable=False)],
    tokenizer: Annotated[Path, typer.Option(help="Tokenizer file.", show_default=False, readable=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="New directory for the shards.", show_default=False,
                                      readable=False)],
    shard_tokens: Annotated[int, typer.Option(help="Tokens per shard.")] = 100_000_000,
    val_fraction: Annotated[float, typer.Option(help="This fraction of the bytes validates: the last "
                                                "documents, the end of one cut off after a line break to make it up.")] = 0.1,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress line.")] = False,
) -> None:
    """Tokenize a corpus once into token shards on disk, for corpora larger than memory.

    [dim]makemore prepare big-corpus/ --tokenizer tok.json -o shards/[/]
    """
    from makemore.token_commands import prepare_command

    prepare_command(src, tokenizer=tokenizer, out=out, shard_tokens=shard_tokens, val_fraction=val_fraction,
                    quiet=quiet)


def main() -> None:
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is None:  # closed by the caller (`>&-`): what would be printed there goes nowhere
            setattr(sys, name, open(os.devnull, "w", encoding="utf-8"))
        elif (stream.encoding or "").lower().replace("-", "") != "utf8" and hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")  # a Latin-1 terminal: '→' as '\u2192', not a crash
    app()


if __name__ == "__main__":
    main()
