"""The lectures' instruments on the command line: the learning-rate sweep (``lr-find``), a run's latest
diagnostics and its embedding scatter (``diagnose``), and runs side by side (``runs``, ``compare``).

Module-level imports stay torch-free: ``runs``, ``compare`` and ``diagnose`` of a run that recorded diagnostics
read JSON only.
"""

from __future__ import annotations

import functools
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table
from rich.text import Text

from makemore.console import make_console, plural
from makemore.errors import MakemoreError
from makemore.files import printable
from makemore.rundir import CONFIG, RUNS, RunDir, list_runs, run_names, staging
from makemore.sinks import fmt_time

out = make_console()  # piped or redirected, lines stay whole: a run's name is never folded or cut there
err = make_console(stderr=True, markup=False)  # printed as it is: a path's brackets are not rich's tags

# The AdamW band of update-to-data ratios (log10) that the TUI and `diagnose` mark as healthy. The lecture's -3
# is for plain SGD; AdamW normalises every update to about the learning rate, so the ratio follows
# lr / std(weight). On names.txt the default recipes, which reach the lectures' figures, stay inside it: the MLP
# between -4.0 (its first, warm-up step) and -1.55 at its peak rate of 1e-2, the Transformer (weights of std
# 0.02, peak 6e-3) between -2.5 and -1.14 in its first 250 steps. Below the band a layer barely moves (the
# learning rate is too low for it); above it, a step changes it by more than a tenth of its size.
HEALTHY_UPDATE = (-3.5, -1.0)
SATURATION_WARN = 0.25  # the lecture's first tanh layer sat at ~20% with gain 5/3; 5% is "a pretty good number"


# --- lr-find --------------------------------------------------------------------------------------------

EXPLODE = 4.0  # the sweep stops once a step's loss is this many times the lowest loss so far (or not finite)
VALLEY_WINDOW = 0.025  # share of the sweep on each side of a point in the centred moving average


@dataclass
class Sweep:
    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    suggested: float
    exploded_at: float | None  # the learning rate at which the loss exploded; None if the sweep ran to the end
    rule: str
    steps: int  # asked for
    lr_min: float
    lr_max: float
    model_type: str
    recipe_lr: float
    loss_unit: str = "nats/char"  # nats per character (words, text) or per token (a tokenizer's text)
    exploded_loss: float | None = None  # the loss that stopped the sweep: not finite, or EXPLODE x the lowest
    read: str | None = None  # a word list: the words kept and what was dropped (None for a text)
    notes: tuple[str, ...] = ()  # what a user should hear about the data, as `train` says it (training.data_notes)

    @property
    def at_edge(self) -> str | None:
        """"max" where the loss was still falling at the sweep's last learning rate (the valley lies beyond
        --max), "min" where it was lowest at the first (below --min); None when the valley lies within."""
        best = self.lrs.index(self.suggested)
        if best == len(self.lrs) - 1 and self.exploded_at is None:
            return "max"
        return "min" if best == 0 else None


def centred_average(values: list[float], half_width: int) -> list[float]:
    """Each value replaced by the mean of itself and ``half_width`` neighbours on each side (fewer at the ends).

    Centred, unlike an exponential average, so the curve's lowest point does not lag behind the data's."""
    out_ = []
    prefix = [0.0]
    for v in values:
        prefix.append(prefix[-1] + v)
    for i in range(len(values)):
        a, b = max(0, i - half_width), min(len(values), i + half_width + 1)
        out_.append((prefix[b] - prefix[a]) / (b - a))
    return out_


def suggest_lr(lrs: list[float], losses: list[float]) -> tuple[float, list[float]]:
    """The lecture's rule, made mechanical: the bottom of the valley, i.e. the learning rate where the loss,
    averaged over a centred window (2.5% of the sweep each side), is lowest, before it turns up."""
    smoothed = centred_average(losses, max(1, round(VALLEY_WINDOW * len(losses))))
    best = min(range(len(smoothed)), key=smoothed.__getitem__)
    return lrs[best], smoothed


RULE = ("the valley: the learning rate at the lowest point of the loss averaged over a centred window of 5% of "
        "the sweep, before the loss turns up (the lecture's pick of the curve's bottom)")


LR_RANGE = (1e-12, 1e6)  # the learning rates lr-find may sweep


def lr_sweep(data: str, *, model_type: str, steps: int, lr_min: float, lr_max: float, seed: int, device: str,
             batch_size: int | None = None, max_len: int = 64, hyper: dict | None = None, mode: str | None = None,
             block_size: int | None = None, tokenizer: Path | None = None) -> Sweep:
    """One optimizer step per learning rate on an exponential grid from ``lr_min`` to ``lr_max``, from a fresh
    model with the family's recipe (AdamW, its weight decay, its gradient clipping, no schedule): on a word list,
    or on a text (``mode`` text, ``block_size``, ``tokenizer``) with the family's text recipe, each step's batch
    drawn as training draws it."""
    from makemore.config import MAX_STEPS
    from makemore.models import family_name, get_family

    model_type = family_name(model_type)  # any case, as the command line takes it

    if not 2 <= steps <= MAX_STEPS:
        raise MakemoreError(f"--steps must be between 2 and {MAX_STEPS:,}, not {steps:,}")
    if not (0 < lr_min < lr_max) or not math.isfinite(lr_max):
        raise MakemoreError(f"--min ({lr_min:g}) must be positive and below --max ({lr_max:g})")
    lo, hi = LR_RANGE
    if not lo <= lr_min < lr_max <= hi:  # far beyond any useful rate: the grid and its plot overflowed
        raise MakemoreError(f"--min ({lr_min:g}) and --max ({lr_max:g}) must lie between {lo:g} and {hi:g}")
    if get_family(model_type).fitted:
        raise MakemoreError(f"{model_type} is fitted in one pass (counted), with no learning rate to find")

    from makemore.training import Request, _check_logits_memory, check_request, data_notes, prepare_data, \
        resolve_mode, text_block_size, words_read

    train = {"batch_size": batch_size} if batch_size is not None else {}
    request = Request(data=data, model_type=model_type, hyper=hyper or {}, train=train, seed=seed,
                      device=device, max_len=max_len, mode=mode, block_size=block_size,
                      tokenizer=Path(tokenizer) if tokenizer is not None else None)
    hyper_, cfg = check_request(request)  # before torch: a refused option costs nothing
    text = resolve_mode(request) == "text"
    if not text:  # a word list is read without torch: a bad file costs nothing either, nor a batch too large
        prepared = prepare_data(data, seed, max_len, "words", request.tokenizer)
        _check_logits_memory(cfg, max(len(w) for w in prepared.words.words) + 1, len(prepared.vocab),
                             ways=("lower --batch-size",))

    import torch

    from makemore.batches import WordBatches
    from makemore.device import flush_denormals, resolve_device
    from makemore.models import build_model
    from makemore.trainer import make_optimizer

    cfg.device = resolve_device(device)
    cfg.check()  # again, now that "auto" names a device
    flush_denormals()  # the sweep ends at learning rates that throw a model's values anywhere
    if text:  # (torch reads a text: after the flush)
        prepared = prepare_data(data, seed, max_len, "text", request.tokenizer)
    block = text_block_size(request) if text else max(len(w) for w in prepared.words.words) + 1
    if text:
        _check_logits_memory(cfg, block, len(prepared.vocab), ways=("lower --batch-size", "lower --block-size"))
    torch.manual_seed(seed)
    model = build_model(model_type, len(prepared.vocab), block, hyper_, copies=4).to(cfg.device)
    source = prepared.batches(model, block, cfg)  # the trainer's batch source: a text's windows, packed words
    if isinstance(source, dict):
        source = WordBatches(source, prepared.vocab)
    model.train()
    opt = make_optimizer(model, cfg)
    params = [p for p in model.parameters() if p.requires_grad]
    generator = torch.Generator().manual_seed(seed)
    lrs, losses = [], []
    exploded = exploded_loss = None
    for i in range(steps):
        lr = math.exp(math.log(lr_min) + (math.log(lr_max) - math.log(lr_min)) * i / (steps - 1))
        for group in opt.param_groups:
            group["lr"] = lr
        x, y, extra = source.micro_batch(source.draw(cfg.batch_size, generator), model, cfg.pack, cfg.device)
        _, loss = model(x, y, **extra)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        value = loss.item()  # one sync per step: the sweep needs every loss
        if not math.isfinite(value) or (losses and value > EXPLODE * min(losses)):
            exploded, exploded_loss = lr, value
            break
        lrs.append(lr)
        losses.append(value)
    if len(losses) < 2:
        raise MakemoreError(f"the loss exploded at once (learning rate {lr_min:g}); lower --min")
    suggested, smoothed = suggest_lr(lrs, losses)
    return Sweep(lrs=lrs, losses=losses, smoothed=smoothed, suggested=suggested, exploded_at=exploded, rule=RULE,
                 steps=steps, lr_min=lr_min, lr_max=lr_max, model_type=model_type, recipe_lr=cfg.learning_rate,
                 loss_unit="nats/token" if source.unit == "token" else "nats/char", exploded_loss=exploded_loss,
                 read=None if text else words_read(prepared, max_len),
                 notes=tuple(data_notes(prepared, model_type, cfg.batch_size)))


def _plot(build) -> str:
    import plotext

    plotext.clear_figure()
    try:
        build(plotext)
        text = plotext.build()
        # a pipe or a file gets the plain characters, without colour codes
        return text if out.is_terminal else plotext.uncolorize(text)
    finally:
        plotext.clear_figure()


def lr_plot(sweep: Sweep, width: int = 90, height: int = 22) -> str:
    xs = [math.log10(lr) for lr in sweep.lrs]

    def build(plt):
        plt.plotsize(width, height)
        plt.plot(xs, sweep.losses, marker="braille", label="loss")
        plt.plot(xs, sweep.smoothed, marker="braille", label="smoothed")
        plt.vline(math.log10(sweep.suggested))
        plt.title(f"lr-find · {sweep.model_type} · suggested {sweep.suggested:.2g}")
        plt.xlabel("log10(learning rate)")
        plt.ylabel(f"loss ({sweep.loss_unit})")

    return _plot(build)


def lr_find_command(data: str, *, model_type: str, steps: int, lr_min: float, lr_max: float, seed: int,
                    device: str, batch_size: int | None, as_json: bool, mode: str | None = None,
                    block_size: int | None = None, tokenizer: Path | None = None) -> None:
    sweep = lr_sweep(data, model_type=model_type, steps=steps, lr_min=lr_min, lr_max=lr_max, seed=seed,
                     device=device, batch_size=batch_size, mode=mode, block_size=block_size, tokenizer=tokenizer)
    for line in ([sweep.read] if sweep.read else []) + [f"note: {note}" for note in sweep.notes]:
        err.print(line, soft_wrap=True)  # on stderr: --json's stdout stays one object
    if as_json:
        print(json.dumps({"model_type": sweep.model_type, "suggested_lr": sweep.suggested, "rule": sweep.rule,
                          "recipe_lr": sweep.recipe_lr, "exploded_at": sweep.exploded_at, "steps": sweep.steps,
                          "steps_run": len(sweep.losses), "lr_min": sweep.lr_min, "lr_max": sweep.lr_max,
                          "loss_unit": sweep.loss_unit, "valley_beyond": sweep.at_edge, "lrs": sweep.lrs,
                          "losses": sweep.losses}))
        return
    print(lr_plot(sweep))  # as it is: rich would wrap the plot's lines
    if sweep.exploded_at is not None:
        loss = sweep.exploded_loss
        why = (f"became {loss}" if loss is None or not math.isfinite(loss) else
               f"reached {loss:.4g}, more than {EXPLODE:g}x its lowest ({min(sweep.losses):.4g})")
        out.print(f"stopped early: at learning rate {sweep.exploded_at:.3g} the loss {why}, after "
                  f"{len(sweep.losses)} of {sweep.steps} steps")
    if sweep.at_edge == "max":
        out.print(f"the loss was still falling at --max {sweep.lr_max:g}: the valley lies beyond it; sweep higher",
                  style="yellow")
    elif sweep.at_edge == "min":
        out.print(f"the loss was lowest at the first learning rate (--min {sweep.lr_min:g}): sweep lower, or more "
                  f"finely (more --steps, a lower --max)", style="yellow")
    out.print(f"suggested learning rate: [bold]{sweep.suggested:.3g}[/] (log10 {math.log10(sweep.suggested):.2f}); "
              f"the {sweep.model_type} recipe uses {sweep.recipe_lr:g}")
    out.print(f"rule: {sweep.rule}", style="dim")


# --- diagnose -------------------------------------------------------------------------------------------

def latest_diagnostics(run: RunDir):
    """The last Diagnostics event in a run's metrics.jsonl that reads as one, or None; a record that does not
    (an edit) is counted in ``run.damaged`` and the one before it stands."""
    from makemore.events import Diagnostics, event_from_json

    last, bad = None, 0
    for row in run.metrics():  # streamed: only the last record is kept
        if row.get("event") == Diagnostics.kind:
            event = event_from_json(row)
            if event is None:
                bad += 1
            else:
                last = event
    run.damaged += bad
    return last


def layer_warning(layer) -> str:
    """What the lecture would remark on for a layer, or ""."""
    notes = []
    if layer.dead:
        notes.append(f"{layer.dead} dead")
    if layer.saturation is not None and layer.saturation > SATURATION_WARN:
        notes.append("saturated")
    return ", ".join(notes)


def update_warning(ratio: float | None) -> str:
    if ratio is None:
        return ""
    lo, hi = HEALTHY_UPDATE
    return "too slow" if ratio < lo else "too fast" if ratio > hi else ""


def _num(x: float | None, fmt: str = ".3f") -> str:
    return "-" if x is None else format(x, fmt)


# the command line's tables: one space between columns, none at the edges (80 columns hold them)
COMPACT = {"box": None, "pad_edge": False, "collapse_padding": True}


NO_LAYERS = "no hidden layer to record: this model maps each input straight to its logits"


def layer_table(diag) -> Table:
    t = Table(title=f"activations at step {diag.step:,}; grad: d loss / d output", title_justify="left",
              **COMPACT)
    t.add_column("layer", overflow="fold")  # a long name wraps; the numbers are never cut short
    for col, right in (("kind", False), ("units", True), ("mean", True), ("std", True),
                       ("saturated", True), ("dead", True), ("grad mean", True), ("grad std", True), ("", False)):
        t.add_column(col, justify="right" if right else "left", no_wrap=True)
    for layer in diag.layers:
        warn = layer_warning(layer)
        t.add_row(escape(layer.name), layer.kind, f"{layer.units}", f"{layer.mean:+.3f}", f"{layer.std:.3f}",
                  "-" if layer.saturation is None else f"{layer.saturation:.1%}", _num(layer.dead, "d"),
                  _num(layer.grad_mean, "+.2e"), _num(layer.grad_std, ".2e"),
                  Text(warn, style="bold yellow") if warn else "")
    return t


def weight_table(diag) -> Table:
    lo, hi = HEALTHY_UPDATE
    t = Table(title=f"weights at step {diag.step:,} (lr {diag.lr:.2e}); upd/data = log10(std(update) / "
              f"std(weight)), healthy for AdamW: {lo:g} to {hi:g}", title_justify="left", **COMPACT)
    t.add_column("weight", overflow="fold")
    for col, right in (("shape", False), ("std", True), ("grad mean", True), ("grad std", True),
                       ("grad/data", True), ("upd/data", True), ("", False)):
        t.add_column(col, justify="right" if right else "left", no_wrap=True)
    for w in diag.weights:
        warn = update_warning(w.update_to_data)
        t.add_row(escape(w.name), "x".join(map(str, w.shape)), f"{w.data_std:.3g}", f"{w.grad_mean:+.2e}",
                  f"{w.grad_std:.2e}", _num(w.grad_to_data, ".2e"), _num(w.update_to_data, "+.2f"),
                  Text(warn, style="bold yellow") if warn else "")
    return t


MAX_LABELS = 256  # a token vocabulary's thousands of labels would fill every row: its points are drawn unlabelled


def embedding_plot(coords: list[list[float]], labels: list[str], title: str, width: int = 70,
                   height: int = 24) -> str:
    """Each point labelled, or, above ``MAX_LABELS`` points, a dot each; points that cannot be drawn (a diverged
    run's NaN, a damaged record's infinity) are left out, and the title says how many."""
    labelled = len(labels) <= MAX_LABELS
    xs, ys, labels, left_out = drawable(coords, labels)
    if left_out:
        title += f" · {plural(left_out, 'point')} not finite, left out"
    if not xs:
        return title

    def build(plt, cells=None):
        plt.plotsize(width, height)
        plt.scatter(xs, ys, marker=" " if labelled else "·")
        # labels that would land on the same cells joined ("ei"), as the TUI's panel draws them
        for x, y, label in joined_labels(xs, ys, labels, *cells) if cells else ():
            plt.text(label, x, y, alignment="left")  # from x, as joined_labels places it

    plot = _plot(build)
    if labelled:  # on the grid of cells the points were drawn on, measured from the drawing
        plot = _plot(functools.partial(build, cells=_canvas(plot)))
    return title + "\n" + plot  # plotext drops a title wider than the plot


DRAWABLE = 1e100  # a coordinate beyond this is not drawn: the plot's range (its ends' difference) must be finite


def drawable(coords: list[list[float]], labels: list[str]) -> tuple[list[float], list[float], list[str], int]:
    """The x, the y and the label of each point that can be drawn (both coordinates finite, within ``DRAWABLE``),
    and how many points cannot. A point past the labels is unlabelled."""
    xs, ys, kept = [], [], []
    for i, point in enumerate(coords):
        x, y = point[0], point[1]
        if math.isfinite(x) and math.isfinite(y) and abs(x) <= DRAWABLE and abs(y) <= DRAWABLE:
            xs.append(x)
            ys.append(y)
            kept.append(labels[i] if i < len(labels) else "")
    return xs, ys, kept, len(coords) - len(xs)


def _canvas(plot: str) -> tuple[int, int]:
    """The columns and rows inside a plotext drawing's frame."""
    import plotext

    lines = plotext.uncolorize(plot).splitlines()
    top = next((i for i, line in enumerate(lines) if "┌" in line), None)
    bottom = next((i for i, line in enumerate(lines) if "└" in line), None)
    if top is None or bottom is None or "┐" not in lines[top]:
        return max(1, len(lines[0]) if lines else 1), max(1, len(lines))
    return max(1, lines[top].index("┐") - lines[top].index("┌") - 1), max(1, bottom - top - 1)


def joined_labels(xs: list[float], ys: list[float], labels: list[str], cols: int,
                  rows: int) -> list[tuple[float, float, str]]:
    """(x, y, text) for each label of a scatter drawn ``cols`` x ``rows`` cells, where labels that would fall on
    or touch the same cells of a row are joined, left to right, into one text at the first one's place ("e" and
    "i" close together: "ei"), so that none is drawn over and hidden by another; a text is drawn left-aligned
    from its x, moved left where it would run past the right edge, and cut with "…" where longer than a row.
    Points that are not finite are left out."""

    def cell(v: float, lo: float, hi: float, n: int) -> int:
        return round((v - lo) / (hi - lo) * (n - 1)) if hi > lo and n > 1 else 0

    points = [(x, y, label) for x, y, label in zip(xs, ys, labels) if math.isfinite(x) and math.isfinite(y)]
    if not points:
        return []
    x0, x1 = min(p[0] for p in points), max(p[0] for p in points)
    y0, y1 = min(p[1] for p in points), max(p[1] for p in points)
    placed: list[list] = []  # [x, y, text, row, first column, last column], in (row, column) order
    for row, col, x, y, label in sorted((cell(y, y0, y1, rows), cell(x, x0, x1, cols), x, y, label)
                                        for x, y, label in points):
        last = placed[-1] if placed else None
        if last is not None and last[3] == row and col <= last[5] + 1:
            last[2] += label
            last[5] += len(label)
        else:
            placed.append([x, y, label, row, col, col + len(label) - 1])
    step = (x1 - x0) / (cols - 1) if x1 > x0 and cols > 1 else 0.0  # one cell, in x
    out = []
    for x, y, text, _, first, last in placed:
        if len(text) > cols:
            text, last = text[:cols - 1] + "…", first + cols - 1
        # a text that would run past the right edge (where plotext cuts it) ends at the edge, never left of x0
        shift = min(max(0, last - (cols - 1)), first)
        out.append((x - shift * step, y, text))
    return out


def token_labels(vocab: list[str], start: bool = True) -> list[str]:
    """Index -> label: with ``start``, index 0 is the start/stop token, shown as the lectures' '.'; a token with
    whitespace or an unprintable character is shown quoted."""
    return ["." if i == 0 and start else
            (c if c.isprintable() and not any(ch.isspace() for ch in c) else repr(c)) for i, c in enumerate(vocab)]


def run_rows(run: RunDir) -> slice:
    """The rows of a run's embedding that stand for its symbols (``diagnostics.embedding_rows``), from its
    config.json alone."""
    from makemore.rundir import token_vocab_size

    tokens = token_vocab_size(run.config.dataset)
    return slice(0, tokens) if tokens is not None else slice(1, None) if run.config.mode == "text" else slice(None)


def run_labels(run: RunDir) -> list[str]:
    """A run's embedding rows (``run_rows``), labelled: a word list's start/stop token and characters; a character
    text's characters; a token run's tokens."""
    from makemore.rundir import tokenizer_entry

    if tokenizer_entry(run.config.dataset) is None:
        text = run.config.mode == "text"
        return token_labels(list(run.config.vocab) if text else ["<s>", *run.config.vocab], start=not text)
    from makemore.tokentext import run_tokenizer

    tokens = run_tokenizer(run).token_bytes  # a byte that is part of a character shows as its escape: '\\xe2'
    return token_labels([b.decode("utf-8", errors="backslashreplace") for b in tokens], start=False)


def embedding_from_checkpoint(run: RunDir, rows: slice = slice(None)) -> tuple[list[list[float]], float | None] | None:
    """The best (else the last) checkpoint's embedding on 2 principal components, of its ``rows``."""
    from makemore.diagnostics import embedding_matrix, project_2d

    loaded = run.load_model()
    matrix = embedding_matrix(loaded.model, rows)
    if matrix is None:
        return None
    coords, variance = project_2d(matrix)
    return coords.tolist(), float(variance)


def skipped_note(run, damaged: int) -> None:
    """Say on stderr how many lines of a run's metrics.jsonl were skipped as damaged, if any."""
    if damaged:
        err.print(f"{run}: skipped {plural(damaged, 'damaged line')} of its metrics.jsonl")


def diagnose_command(run_dir: Path, *, as_json: bool) -> None:
    from makemore.rundir import BEST, LAST

    run = RunDir.open(run_dir)
    config = run.config
    try:
        labels = run_labels(run)
    except MakemoreError as e:  # a token run's tokenizer.json missing or changed: its points are drawn unlabelled
        err.print(f"note: the embeddings are not labelled: {e}")
        labels = None
    diag = latest_diagnostics(run)
    skipped_note(run_dir, run.damaged)  # the latest record shown may be an earlier one than the run wrote last
    embedding, variance, source = None, None, None
    if diag is not None and diag.embedding:
        embedding, variance, source = diag.embedding, diag.embedding_variance, f"step {diag.step:,}"
    elif (run.path / BEST).exists() or (run.path / LAST).exists():
        found = embedding_from_checkpoint(run, run_rows(run))
        if found is not None:
            embedding, variance = found
            source = "best checkpoint"
    if embedding and labels is not None and len(embedding) == len(labels) + 1 and run_rows(run).start == 1:
        embedding = embedding[1:]  # recorded before a character text's unused index 0 was left out
    if embedding and labels is not None:
        embedding = embedding[:len(labels)]  # a token run's padding rows left out (recorded before they were)
    labels = labels if labels is not None else [""] * len(embedding or [])
    if as_json:
        print(json.dumps({"run": str(run_dir), "diagnostics": diag.to_json() if diag else None,
                          "embedding": embedding, "embedding_variance": variance,
                          "labels": labels if embedding else None}, ensure_ascii=False))
        return
    from makemore.models import get_family

    if get_family(config.model.type).fitted:
        err.print(f"{run_dir}: {config.model.type} is fitted in one pass (counted): nothing to diagnose")
    elif diag is None:
        err.print(f"{run_dir}: no diagnostics recorded; train with --diagnostics (or watch it in `makemore tui`)")
    else:
        norm = f"{diag.grad_norm:.3g}" if diag.grad_norm is not None else "-"
        out.print(f"[bold]{escape(str(run_dir))}[/] · diagnostics at step {diag.step:,} · lr {diag.lr:.2e} · "
                  f"gradient norm {norm}")
        out.print(layer_table(diag) if diag.layers else NO_LAYERS)
        out.print()
        out.print(weight_table(diag))
    if embedding:
        share = f" · {variance:.0%} of the variance" if variance is not None else ""
        out.print()
        dots = f" · {len(embedding):,} tokens, unlabelled" if len(embedding) > MAX_LABELS else ""
        print(embedding_plot(embedding, labels[:len(embedding)],
                             f"embeddings on 2 principal components · {source}{share}{dots}"))
    elif diag is not None:
        err.print(f"{run_dir}: this model has no embedding table to draw")


# --- runs, compare ---------------------------------------------------------------------------------------

SORT_KEYS = {"name": "run", "type": "type", "params": "params", "steps": "steps", "time": "elapsed",
             "val": "best_val_loss", "test": "test_loss"}


def find_runs(root: Path) -> list[RunDir]:
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise MakemoreError(f"{root}: a file, not a directory of runs")
    if not root.is_dir():
        raise MakemoreError(f"{root}: no such directory")
    if RunDir.is_run(root):  # one run named: listed alone
        return [RunDir(root)]
    # a folder whose config.json is there but is no file (a FIFO, a broken link), or a folder that cannot be
    # entered, may be a run that cannot be read: listed as unreadable (``summaries``), not passed over
    odd = [RunDir(p) for p in sorted(root.iterdir()) if not staging(p) and p.is_dir()
           and not RunDir.is_run(p) and _config_there_or_hidden(p)]
    return list_runs(root) + odd


def _config_there_or_hidden(folder: Path) -> bool:
    try:
        os.lstat(folder / CONFIG)
        return True
    except PermissionError:  # a folder that cannot be entered: whether it holds a run is unknown, so it is said
        return True
    except OSError:
        return False


def summaries(runs: list[RunDir]) -> tuple[list[dict[str, Any]], list[tuple[Path, str]]]:
    """Each run's summary; runs that cannot be read are returned with the reason instead of being dropped."""
    rows, bad = [], []
    for run in runs:
        try:
            rows.append(run.summary())
        except MakemoreError as e:
            bad.append((run.path, str(e)))
        except PermissionError as e:
            bad.append((run.path, f"{e.filename or run.path}: {e.strerror}"))
    return rows, bad


def _fmt_loss(x) -> str:
    return f"{x:.4f}" if isinstance(x, (int, float)) else "-"


def _fmt_seconds(x) -> str:
    if not isinstance(x, (int, float)) or not math.isfinite(x):
        return "-"
    return fmt_time(x)


NARROW_RUNS = 64  # terminal columns under which `runs` shows the name and the losses only


def runs_command(root: Path, *, as_json: bool, sort: str) -> None:
    if sort not in SORT_KEYS:
        raise MakemoreError(f"--sort must be one of {', '.join(SORT_KEYS)}, not {sort!r}")
    # where runs go by default, before the first run made it: no runs yet, as in an empty directory
    rows, bad = summaries(find_runs(root) if root != RUNS or root.exists() else [])
    key = SORT_KEYS[sort]
    if key == "best_val_loss":  # bits per character, which a token run's loss per token is not (without: last)
        key = "best_val_bpc"
        rows.sort(key=lambda r: r["best_val_loss"] is None)
    by_unit = key == "test_loss"  # losses per character first, then those per token
    rows.sort(key=lambda r: (r.get(key) is None, by_unit and r["loss_unit"] == "nats/token",
                             r.get(key) if r.get(key) is not None else 0, r["run"]))
    if as_json:
        print(json.dumps({"runs": [{k: r[k] for k in ("run", "type", "params", "steps", "elapsed", "best_val_loss",
                                                      "loss_unit", "best_val_bpc", "best_step", "test_loss",
                                                      "finished", "failed", "damaged_lines")} for r in rows],
                          "unreadable": [{"run": printable(p), "error": e} for p, e in bad]}, ensure_ascii=False))
        return
    if not rows and not bad:
        err.print(f"no runs in {root}/; train one first (makemore train names)")
        return
    # a token run's losses are per token, the others' per character: marked, and the best of each kind shown
    tokens = any(r["loss_unit"] == "nats/token" for r in rows)
    best = {unit: min((r["best_val_loss"] for r in rows if r["best_val_loss"] is not None and r["loss_unit"] == unit),
                      default=None) for unit in ("nats/char", "nats/token")}

    def loss(r, key: str) -> str:
        mark = ("*" if r["loss_unit"] == "nats/token" else " ") if tokens else ""
        return _fmt_loss(r[key]) + (mark if r[key] is not None else " " * len(mark))

    t = Table(**COMPACT)  # 80 columns hold a name of 25 characters whole
    t.add_column("run", overflow="fold")  # a long name wraps onto a second line, never cut short
    # a terminal narrower than the eight columns: the name and the losses (rich would squeeze the name out)
    shown = ("best val", "test") if out.is_terminal and out.width < NARROW_RUNS else \
        ("type", "params", "steps", "time", "best val", "test", "done")
    for col in shown:
        t.add_column(col, justify="left" if col in ("type", "done") else "right", no_wrap=True)
    for r in rows:
        val = loss(r, "best_val_loss")
        top = r["best_val_loss"] is not None and r["best_val_loss"] == best[r["loss_unit"]]
        cells = {"type": r["type"], "params": f"{r['params']:,}" if r["params"] else "-", "steps": f"{r['steps']:,}",
                 "time": _fmt_seconds(r["elapsed"]), "best val": Text(val, style="bold green") if top else val,
                 "test": loss(r, "test_loss"), "done": _done(r)}
        t.add_row(escape(Path(r["run"]).name), *(cells[col] for col in shown))
    out.print(t)
    for path, e in bad:
        err.print(f"skipped {printable(path)}: {e}")
    for r in rows:
        skipped_note(r["run"], r["damaged_lines"])
    err.print(f"{plural(len(rows), 'run')} in {root}" + (f", {len(bad)} unreadable" if bad else "") + f" · sorted by {sort}" + (" (bits per character)" if sort == "val" else "")
              + (" · * nats per token, not per character" if tokens else ""))


def _done(summary: dict[str, Any]):
    """The runs table's last column: yes (its budget used, or counted), stopped (Ctrl-C or q: resumable),
    failed (diverged), no (still training, or killed)."""
    reason = summary["finished"]
    if reason == "stopped":
        return Text("stopped", style="yellow")
    if reason:
        return "yes"
    return Text("failed", style="red") if summary.get("failed") else Text("no", style="yellow")


RESULTS = ("steps", "time (s)", "loss unit", "best val", "best val (bits/char)", "best step", "test", "finished",
           "failed")  # compare's last rows, in this order (``_flatten``)
_GROUPS = {"model": 1, "train": 2, "data": 3, "vocab size": 3}


def _flatten(summary: dict[str, Any]) -> dict[str, Any]:
    """The settings and results of one run as flat rows: model.*, train.*, data.*, then the results."""
    rows: dict[str, Any] = {"type": summary["type"], "params": summary["params"], "mode": summary["mode"]}
    if summary.get("preset"):  # a row of its own only where some run was given one
        rows["preset"] = summary["preset"]
    rows.update({f"model.{k}": v for k, v in summary["hyper"].items()})
    rows["model.block_size"] = summary["block_size"]  # the context: a word list's longest word + 1, a text's window
    rows.update({f"train.{k}": v for k, v in summary["train"].items()})
    if summary.get("processes", 1) > 1:  # under torchrun: a row of its own only where some run had several
        rows["train.processes"] = summary["processes"]
    used = summary.get("arithmetic") or {}  # what "auto" chose (or what was given), as the steps computed
    rows.update({"train.dtype_used": used.get("dtype"), "train.matmul_precision_used": used.get("matmul_precision")})
    data = summary.get("dataset") or {}
    tokenizer = data.get("tokenizer") if isinstance(data.get("tokenizer"), dict) else {}
    rows.update({"data.name": data.get("name"), "data.sha256": (data.get("sha256") or "")[:12] or None,
                 "data.words": data.get("words"), "vocab size": summary["vocab_size"],
                 "data.tokenizer": (str(tokenizer.get("sha256") or "")[:12] or None) if tokenizer else None})
    rows.update({"steps": summary["steps"], "time (s)": summary["elapsed"], "loss unit": summary["loss_unit"],
                 "best val": summary["best_val_loss"], "best val (bits/char)": summary["best_val_bpc"],
                 "best step": summary["best_step"], "test": summary["test_loss"], "finished": summary["finished"],
                 "failed": summary.get("failed")})
    return rows



def compare_command(paths: list[Path], *, as_json: bool) -> None:
    if len(paths) < 2:
        raise MakemoreError("compare needs at least two run directories")
    runs, seen = [], {}
    for p in paths:
        run = RunDir.open(p)
        if run.path.resolve() in seen:
            raise MakemoreError(f"{p}: the same run as {seen[run.path.resolve()]}; give each run once")
        seen[run.path.resolve()] = p
        runs.append(run)
    rows, bad = summaries(runs)
    if bad:
        raise MakemoreError(bad[0][1])
    flat = [_flatten(r) for r in rows]
    if any("train.processes" in f for f in flat):  # one process where it was one
        for f in flat:
            f.setdefault("train.processes", 1)
    # every run's settings, grouped (model.*, train.*, data.*), then the results: runs of other families add
    # their own settings to their group, never below the results
    keys = sorted(dict.fromkeys(k for f in flat for k in f), key=lambda k: (
        k in RESULTS, RESULTS.index(k) if k in RESULTS else _GROUPS.get(k.split(".")[0], 0)))
    differ = [k for k in keys if len({json.dumps(f.get(k)) for f in flat}) > 1]
    for r in rows:
        skipped_note(r["run"], r["damaged_lines"])
    if as_json:
        print(json.dumps({"runs": [r["run"] for r in rows], "values": {k: [f.get(k) for f in flat] for k in keys},
                          "differ": differ}, ensure_ascii=False))
        return
    names = [escape(n) for n in run_names([Path(r["run"]) for r in rows])]  # runs/mlp and other/mlp told apart
    cells = {k: [_compared(k, f.get(k)) for f in flat] for k in keys}
    for k in differ:
        if k != "time (s)":  # (a time shown to the second is not a setting that seemed the same)
            cells[k] = _told_apart([f.get(k) for f in flat], cells[k])
    for i, group in enumerate(_fitting(names, keys, cells)):
        if i:
            out.print()
        out.print(_compare_table([names[j] for j in group], keys, {k: [c[j] for j in group] for k, c in cells.items()},
                                 differ))
    err.print(f"{len(differ)} of {len(keys)} rows differ (highlighted)")


def _compared(key: str, v: Any) -> str:
    """One run's value in compare's table: a hash by its first 7 digits, as git shortens one (the rows that
    differ are found on the whole value); the training time as every other command shows it."""
    if key.endswith("sha256") and isinstance(v, str) and len(v) > 8:
        return v[:7] + "…"
    if key == "time (s)" and isinstance(v, (int, float)) and not isinstance(v, bool):
        return fmt_time(v)
    return _cell(v)


def _told_apart(values: list[Any], cells: list[str]) -> list[str]:
    """A row's cells, with more digits where two different numbers would show alike (learning rates of 0.01 and
    0.00996 both as 0.0100, in a row highlighted as differing)."""
    distinct = {json.dumps(v) for v in values}
    if len(set(cells)) == len(distinct) or not any(isinstance(v, float) for v in values):
        return cells
    for digits in (6, 9, 17):
        more = [f"{v:.{digits}g}" if isinstance(v, float) else c for v, c in zip(values, cells)]
        if len(set(more)) == len(distinct):
            return more
    return more


def _compare_table(names: list[str], keys: list[str], cells: dict[str, list[str]], differ: list[str]) -> Table:
    t = Table(box=None)
    t.add_column("", overflow="fold")  # (folds only where one run beside the names cannot fit the terminal)
    for name in names:
        t.add_column(name, justify="right", overflow="fold")
    for k in keys:
        if k == RESULTS[0]:  # the results below the settings
            t.add_section()
        style = "bold yellow" if k in differ else "dim"
        t.add_row(Text("time" if k == "time (s)" else k, style=style), *(Text(c, style=style) for c in cells[k]))
    return t


def _fitting(names: list[str], keys: list[str], cells: dict[str, list[str]]) -> list[list[int]]:
    """The runs in groups of columns, each group's table as wide as the terminal at most, printed one below the
    other (the names repeated), as a wide data frame is: a value is never folded onto two lines while a narrower
    table would hold it. Piped or redirected, one table."""
    if not out.is_terminal:
        return [list(range(len(names)))]
    from rich.measure import Measurement

    def width(group: list[int]) -> int:
        table = _compare_table([names[j] for j in group], keys, {k: [c[j] for j in group] for k, c in cells.items()}, [])
        return Measurement.get(out, out.options.update_width(100_000), table).maximum  # unfolded

    groups: list[list[int]] = [[]]
    for j in range(len(names)):
        if groups[-1] and width(groups[-1] + [j]) > out.width:
            groups.append([])
        groups[-1].append(j)
    return groups


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4f}" if abs(v) >= 1e-3 or v == 0 else f"{v:.3g}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)

