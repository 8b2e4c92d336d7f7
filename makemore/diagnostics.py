"""The lectures' instruments: activation, gradient and update statistics recorded while a model trains.

Lecture 3 of makemore reads a network through a handful of statistics, and this module computes them for
every family. Every ``interval`` steps a :class:`Recorder` watches one training step:

- **activations** (forward hooks, registered for that step only and removed after it): for each layer that
  matters, the mean and standard deviation of its output, a histogram with fixed bins, and for the
  nonlinearities the *saturation* and the *dead units*;
- **weights** (every parameter with two or more dimensions: the matrices and the embedding tables): the mean and
  standard deviation of the gradient, the gradient-to-data ratio ``std(grad) / std(weight)`` and the
  update-to-data ratio ``log10(std(update) / std(weight))`` where the update is what AdamW actually changed
  (weight decay included), measured against a copy of the weights taken just before ``optimizer.step()``;
- **activation gradients** (tensor hooks, registered by the same forward hooks, so on record steps only): for each
  watched layer, the mean and standard deviation of ``d loss / d output`` and a histogram of it (lecture 3's
  second picture, the gradients flowing back through each tanh layer, which should look alike across layers);
- the global gradient norm before clipping, and the character embeddings projected on their first two
  principal components.

Everything is computed on the training device, concatenated into one vector and moved to the host with one
``.tolist()`` per record, so a record costs one synchronisation however many layers there are. On the steps
in between nothing is registered, and with diagnostics off nothing at all.

Which layers are watched is decided here, in :func:`watch_points`, for every family:

- every ``nn.Linear`` output (``linear``), every LayerNorm / BatchNorm output (``norm``), the output of a
  recurrent module (``recurrent``; for the plain RNN it is a tanh, read as ``tanh``), and the heads' attention
  output, i.e. the input of each attention block's output projection (``attention``);
- the nonlinearities, which the models call as functions (``torch.tanh``, ``F.gelu``), so the hook sits on the
  module whose output feeds them and applies the same function: listed per family in ``NONLINEARITIES``.

Saturation and dead units, per nonlinearity:

- ``tanh`` (and the bounded hidden state of ``recurrent`` cells): the lecture's share of outputs with
  ``|t| > 0.97``, where the local gradient ``1 - t²`` is below 0.06;
- ``gelu``: the share of pre-activations below ``GELU_FLAT`` (-3), GELU's flat tail, where its output is within
  0.005 of zero and its slope below 0.012 in magnitude: a unit there passes almost no gradient, as a saturated
  tanh does;
- ``relu``: the share of pre-activations at or below 0, where the slope is exactly zero;
- a **dead unit** is one that is saturated (in the flat region) for every example of the batch: "an entirely
  white column" of the lecture's saturation map, a neuron that cannot learn from this batch;
- for ``linear``, ``norm`` and ``attention`` outputs saturation and dead units do not apply (``None``).

Histograms have ``HIST_BINS`` equal bins over a fixed range per kind (``HIST_RANGE``: [-1, 1] for the bounded
kinds, [-5, 5] otherwise); values outside the range are counted in the first or last bin. Each bin holds the
share of the layer's values that fall in it. Above ``HIST_SAMPLE`` (16,384) values, the histograms (and only
they: means, spreads, saturation and dead units see every value) are taken on that many values at fixed
pseudo-random positions, the same positions at every record: counting bins was most of a record's cost, and
a share estimated from 16,384 values is within about 1.2 percentage points of the whole layer's (three
standard errors of a share of one half).

Activation gradients have no natural fixed range (their scale follows the batch size and the loss), so their
``GRAD_BINS`` (21) bins span ``±GRAD_SPAN`` (4) standard deviations of that layer's gradient at that record; an odd
count puts zero, where saturated units and padded positions leave their gradients, in the middle of the centre
bin rather than on an edge, so the picture stays symmetric. The histogram shows the distribution's shape, and
``grad_std`` its scale, which is what the lecture compares across layers (neither shrinking nor growing with
depth). The gradient is the one of the step's loss, the mean over the
global batch's targets, taken on the values the activation statistics describe: a module's output (or, for
``attention``, its input); for a nonlinearity that the model applies as a function, its output, read as the
input of the module that consumes it (``Nonlinearity.consumer``: the next linear layer, or the dropout after
it), since the module whose output feeds it only sees the gradient with respect to the pre-activation. The
backward pass scales the loss (by the number of DDP processes, and by the float16 gradient scaler); the recorded
gradients are divided back, so they do not depend on how the step was run. With gradient accumulation, as the
activations, they cover the first micro-batch.

``--init-scale X`` multiplies the *hidden weights* at initialisation (see :func:`hidden_weights`): every weight
matrix except the token/position embeddings and the output layer ``lm_head`` (so the bigram, whose only
parameter is its output table, has none). It replays the lecture's experiment: at 5 the MLP's tanh saturates.

Under ``--compile`` the record step runs the uncompiled module (hooks on a compiled graph would recompile it),
so every statistic is available there; that one step runs eagerly. Under DDP rank 0 records: the activations of
its own share of the batch, and the gradients and updates after the all-reduce (the same on every rank).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from makemore.events import GRAD_BINS, GRAD_SPAN, Diagnostics, InitialLoss, LayerStats, WeightStats

HIST_BINS = 20
SATURATED = 0.97  # |tanh| above this: saturated (lecture 3)
GELU_FLAT = -3.0  # GELU pre-activations below this are in its flat tail
HIST_RANGE = {"tanh": (-1.0, 1.0), "recurrent": (-1.0, 1.0)}  # others: DEFAULT_RANGE; gradients: GRAD_SPAN
DEFAULT_RANGE = (-5.0, 5.0)
DEFAULT_INTERVAL = 100  # steps between records: one record step costs a few plain steps
INIT_WARN_RATIO = 1.1  # the initial loss is "far above" ln(V) beyond this factor (a ×10 logit scale gives 1.2-1.4)


class Nonlinearity(NamedTuple):
    pattern: str  # regular expression matched against the full name of the module whose output feeds it
    kind: str  # tanh | gelu | relu
    label: str  # the name shown (``re.sub`` replacement: may refer to the pattern's groups)
    applied: bool = False  # True: the module's output already is the nonlinearity's output
    # not applied: the module whose first input is the nonlinearity's output, as it is (``re.sub`` replacement,
    # like ``label``); its gradient there is d loss / d output. None: no activation gradient for it.
    consumer: str | None = None


# The functional nonlinearities of each family, by the module whose output goes into them (and the one their
# output goes into).
NONLINEARITIES: dict[str, tuple[Nonlinearity, ...]] = {
    # lm_head(tanh(bn(fc(x)))); bn is an Identity without --batchnorm
    "mlp": (Nonlinearity(r"bn", "tanh", "tanh", consumer="lm_head"),),
    # dropout(tanh(bn(fc(x)))) per level: the dropout module (p may be 0) receives the tanh itself
    "wavenet": (Nonlinearity(r"levels\.(\d+)\.bn", "tanh", r"levels.\1.tanh", consumer=r"levels.\1.dropout"),),
    "bow": (Nonlinearity(r"c_fc", "tanh", "tanh", consumer="c_proj"),),  # x + c_proj(tanh(c_fc(x)))
    "transformer": (Nonlinearity(r"h\.(\d+)\.mlp\.c_fc", "gelu", r"h.\1.mlp.gelu", consumer=r"h.\1.mlp.c_proj"),),
    "rnn": (Nonlinearity(r"rnn", "tanh", "rnn.tanh", applied=True),),  # nn.RNN's output is its tanh
}


@dataclass(frozen=True)
class WatchPoint:
    name: str
    module: nn.Module
    kind: str  # linear | norm | attention | recurrent | tanh | gelu | relu
    source: str = "output"  # "output" or "input" (the first positional input) of the module
    applied: bool = True  # for tanh/gelu/relu: False when the hooked value is the pre-activation
    # where d loss / d output is read: None for the hooked value itself; otherwise this module's first input
    # (the output of a nonlinearity that is not applied), or "none" when nothing gives it
    consumer: nn.Module | str | None = None


def watch_points(model: nn.Module, model_type: str) -> list[WatchPoint]:
    """The layers whose activations are recorded for this family (see the module's docstring)."""
    points: list[WatchPoint] = []
    nonlinear = NONLINEARITIES.get(model_type, ())
    modules = dict(model.named_modules())
    for name, module in model.named_modules():
        feeds = [nl for nl in nonlinear if name and re.fullmatch(nl.pattern, name)]
        if isinstance(module, nn.Linear):
            if name.endswith("attn.c_proj"):  # its input: the heads' outputs, softmax(q kᵀ) v
                points.append(WatchPoint(name.removesuffix(".c_proj"), module, "attention", source="input"))
            points.append(WatchPoint(name, module, "linear"))
        elif isinstance(module, (nn.LayerNorm, nn.BatchNorm1d)):
            points.append(WatchPoint(name, module, "norm"))
        elif isinstance(module, nn.RNNBase) and not any(nl.applied for nl in feeds):
            points.append(WatchPoint(name, module, "recurrent"))
        for nl in feeds:  # after the layer that feeds it, in the order the forward pass meets them
            consumer = None
            if not nl.applied:
                consumer = modules.get(re.sub(nl.pattern, nl.consumer, name), "none") if nl.consumer else "none"
            points.append(WatchPoint(re.sub(nl.pattern, nl.label, name), module, nl.kind, applied=nl.applied,
                                     consumer=consumer))
    return points


def hidden_weights(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """The weights ``--init-scale`` multiplies: every parameter of two or more dimensions except those of
    embedding tables and of the output layer ``lm_head`` (and the bigram's table, which is its output)."""
    embedding_params = {id(p) for m in model.modules() if isinstance(m, nn.Embedding) for p in m.parameters()}
    return [(name, p) for name, p in model.named_parameters()
            if p.dim() >= 2 and id(p) not in embedding_params and not name.startswith("lm_head")
            and name != "logits"]


def apply_init_scale(model: nn.Module, scale: float, model_type: str) -> int:
    """Multiply the hidden weights by ``scale``; returns how many tensors were scaled."""
    from makemore.errors import MakemoreError

    weights = hidden_weights(model)
    if scale != 1.0 and not weights:
        raise MakemoreError(f"--init-scale: {model_type} has no hidden weights to scale")
    with torch.no_grad():
        for _, p in weights:
            p.mul_(scale)
    return len(weights)


def check_init_scale(model_type: str, hyper: dict[str, Any]) -> None:
    """Refuse ``--init-scale`` for a family without hidden weights (checked on a tiny copy of the model)."""
    from makemore.errors import MakemoreError
    from makemore.models import build_model, get_family

    if get_family(model_type).fitted or not hidden_weights(build_model(model_type, 3, 4, hyper)):
        raise MakemoreError(f"--init-scale: {model_type} has no hidden weights to scale")


def embedding_rows(vocab) -> slice:
    """The rows of a model's embedding that stand for symbols of ``vocab`` (see ``embedding_matrix``): a token
    model's vocabulary is padded to a multiple of 64 with rows no input ever selects, and a character text's
    index 0 (a word list's start and stop) never occurs in it; such rows are left out, as they would weigh in
    the principal components untrained."""
    tokens = getattr(vocab, "tokens", None)
    if tokens is not None:
        return slice(0, tokens)
    return slice(1, None) if getattr(vocab, "text", False) else slice(None)


def embedding_matrix(model: nn.Module, rows: slice = slice(None)) -> torch.Tensor | None:
    """One row per token (``rows`` of them, see ``embedding_rows``): the token embedding ``wte``, or the bigram's
    rows of logits; None if neither."""
    wte = getattr(model, "wte", None)
    if isinstance(wte, nn.Embedding):
        return wte.weight[rows]
    table = getattr(model, "logits", None)
    if isinstance(table, nn.Parameter) and table.dim() == 2:
        return table[rows]
    return None


def project_2d(matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(V, d) -> (V, 2) coordinates and the share of variance they explain (a 0-d tensor).

    Two columns or fewer are kept as they are (padded with zeros); wider matrices are projected on their first two
    principal components. Each component's sign is fixed so its largest coordinate is positive, which keeps the
    picture from flipping between records."""
    x = matrix.detach().float()
    if x.size(1) <= 2:
        coords = F.pad(x, (0, 2 - x.size(1)))
        return coords, torch.ones((), device=x.device)
    # a diverged model's weights (NaN, infinite, or near float32's limit) would make the SVD fail: it runs on
    # finite values scaled to at most 1, and the coordinates of a matrix that was not finite are NaN (no check
    # reads a value back to the host here)
    finite = torch.isfinite(x).all()
    centred = torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    centred = centred - centred.mean(dim=0, keepdim=True)
    scale = centred.abs().amax().clamp_min(1e-30)
    _, s, vh = torch.linalg.svd(centred / scale, full_matrices=False)
    coords = centred @ vh[:2].T  # (V, 2)
    biggest = coords.gather(0, coords.abs().argmax(dim=0, keepdim=True))  # (1, 2)
    coords = coords * torch.where(biggest < 0, -1.0, 1.0)
    variance = (s[:2] ** 2).sum() / (s**2).sum().clamp_min(1e-30)
    nan = torch.full((), math.nan, device=x.device)
    return torch.where(finite, coords, nan), torch.where(finite, variance, nan)


HIST_SAMPLE = 16_384  # values per histogram at most (see the module's docstring)
_sample_at: dict[tuple[int, str], torch.Tensor] = {}


def histogram(values: torch.Tensor, bins: int, lo: float, hi: float) -> torch.Tensor:
    """Shares of ``values`` in ``bins`` equal bins over [lo, hi] (outside values in the end bins), on at most
    ``HIST_SAMPLE`` of them at fixed pseudo-random positions (drawn, with replacement, once per tensor size and
    device)."""
    flat = values.reshape(-1)
    if flat.numel() > HIST_SAMPLE:
        key = (flat.numel(), str(flat.device))
        if key not in _sample_at:
            if len(_sample_at) >= 256:  # word batches vary in length: keep the memory bounded
                _sample_at.clear()
            gen = torch.Generator().manual_seed(flat.numel())
            _sample_at[key] = torch.randint(flat.numel(), (HIST_SAMPLE,), generator=gen).to(flat.device)
        flat = flat[_sample_at[key]]
    return torch.histc(flat.clamp(lo, hi), bins=bins, min=lo, max=hi) / max(1, flat.numel())


def activation_stats(value: torch.Tensor, kind: str, applied: bool = True) -> torch.Tensor:
    """[mean, std, saturation, dead units, units, hist...] of one layer's value (last dimension = units).

    Saturation and dead units are NaN where they do not apply. Runs on the value's device; no synchronisation.
    """
    x = value.detach().float().reshape(-1, value.shape[-1])  # (rows, units)
    nan = torch.full((), math.nan, device=x.device)
    if kind == "tanh":
        a = x if applied else torch.tanh(x)
        flat = a.abs() > SATURATED
    elif kind == "recurrent":
        a = x
        flat = a.abs() > SATURATED
    elif kind == "gelu":
        a = x if applied else F.gelu(x)
        flat = x < GELU_FLAT if not applied else None
    elif kind == "relu":
        a = x if applied else F.relu(x)
        flat = x <= 0
    else:
        a, flat = x, None
    if flat is not None:
        saturation = flat.float().mean()
        dead = flat.all(dim=0).float().sum()
    else:
        saturation = dead = nan
    lo, hi = HIST_RANGE.get(kind, DEFAULT_RANGE)
    hist = histogram(a, HIST_BINS, lo, hi)
    units = torch.full((), float(x.size(1)), device=x.device)
    std = a.std() if a.numel() > 1 else torch.zeros((), device=x.device)
    return torch.cat([torch.stack([a.mean(), std, saturation, dead, units]), hist])


ACT_FIELDS = 5  # mean, std, saturation, dead, units; then HIST_BINS bins
GRAD_FIELDS = 2 + GRAD_BINS  # mean, std, then GRAD_BINS bins


def gradient_stats(grad: torch.Tensor) -> torch.Tensor:
    """[mean, std, hist...] of one layer's activation gradient; the bins span ±GRAD_SPAN of its std.

    Runs on the gradient's device; no synchronisation (the bins are taken on the gradient divided by its scale,
    so the range given to ``histc`` is the fixed [-1, 1])."""
    g = grad.detach().float().reshape(-1)
    std = g.std() if g.numel() > 1 else torch.zeros((), device=g.device)
    scaled = g / (GRAD_SPAN * std).clamp_min(torch.finfo(torch.float32).tiny)  # all zero: every value in the middle
    hist = histogram(scaled, GRAD_BINS, -1.0, 1.0)
    return torch.cat([torch.stack([g.mean(), std]), hist])


def _number(x: float) -> float | None:
    return x if math.isfinite(x) else None


class Recorder:
    """Records one training step every ``interval`` steps; the trainer drives it (see ``Trainer._train_step``).

    The order within a record step: ``watch()`` around the forward passes, ``gradients()`` after backward (and
    after the gradient scaler's unscale) and before clipping, ``before_update()`` just before
    ``optimizer.step()``, and ``finish()`` after it, which builds the ``Diagnostics`` event.
    """

    def __init__(self, model: nn.Module, model_type: str, interval: int = DEFAULT_INTERVAL,
                 rows: slice = slice(None)):
        if interval < 1:
            raise ValueError(f"interval must be at least 1 (got {interval})")
        self.model = model
        self.interval = interval
        self.rows = rows  # the embedding's rows that stand for symbols (see ``embedding_rows``)
        self.points = watch_points(model, model_type)
        self.weights = [(name, p) for name, p in model.named_parameters() if p.requires_grad and p.dim() >= 2]
        self._stats: dict[str, torch.Tensor] = {}
        self._grad_stats: dict[str, torch.Tensor] = {}  # filled by tensor hooks during the backward pass
        self._tapped: set[str] = set()  # layers whose gradient is hooked already (the first micro-batch)
        self._act_grads: dict[str, torch.Tensor] = {}  # the same, divided by the loss scale (``gradients()``)
        self._handles: list[Any] = []
        self._grads: list[torch.Tensor] = []
        self._before: list[torch.Tensor] = []

    def due(self, step: int) -> bool:
        """Whether the step that starts from ``step`` updates is recorded (step 0, the initialisation, is)."""
        return step % self.interval == 0

    # --- activations ------------------------------------------------------------------------------

    def _hook(self, point: WatchPoint) -> Callable:
        def hook(module, args, output):
            if point.name in self._stats:  # gradient accumulation: the first micro-batch only
                return
            value = args[0] if point.source == "input" else output
            if isinstance(value, tuple):  # recurrent modules return (output, state)
                value = value[0]
            if torch.is_tensor(value) and value.numel():
                with torch.no_grad():
                    self._stats[point.name] = activation_stats(value, point.kind, point.applied)
                if point.consumer is None:
                    self._tap(point.name, value)

        return hook

    def _consumer_hook(self, point: WatchPoint) -> Callable:
        def pre_hook(module, args):
            if args and torch.is_tensor(args[0]) and args[0].numel():
                self._tap(point.name, args[0])

        return pre_hook

    def _tap(self, name: str, value: torch.Tensor) -> None:
        """Have the backward pass hand ``d loss / d value`` to :func:`gradient_stats` (once per record)."""
        if name in self._tapped or not value.requires_grad:
            return
        self._tapped.add(name)

        def grad_hook(grad: torch.Tensor) -> None:
            with torch.no_grad():
                self._grad_stats[name] = gradient_stats(grad)

        value.register_hook(grad_hook)

    def watch(self) -> _Watching:
        """A context: the forward hooks are registered inside it and removed when it ends."""
        return _Watching(self)

    # --- weights ---------------------------------------------------------------------------------

    @torch.no_grad()
    def gradients(self, loss_scale: torch.Tensor | float = 1.0) -> None:
        """After the backward pass: the weights' gradients, and the activation gradients divided by
        ``loss_scale``, the factor the backward pass multiplied the loss by (a number or a 0-d device tensor)."""
        for name, row in self._grad_stats.items():
            scale = torch.as_tensor(loss_scale, dtype=torch.float32, device=row.device).reshape(1)
            self._act_grads[name] = torch.cat([row[:2] / scale, row[2:]])
        self._grad_stats, self._tapped = {}, set()
        rows = []
        for _, p in self.weights:
            g = p.grad.detach().float() if p.grad is not None else torch.zeros_like(p, dtype=torch.float32)
            data_std = p.detach().float().std()
            g_std = g.std()
            rows.append(torch.stack([data_std, g.mean(), g_std, g_std / data_std]))
        self._grads = rows

    @torch.no_grad()
    def before_update(self) -> None:
        self._before = [p.detach().clone() for _, p in self.weights]

    @torch.no_grad()
    def finish(self, *, step: int, lr: float, grad_norm: torch.Tensor | float | None) -> Diagnostics:
        """After ``optimizer.step()``: the event of this record (the one transfer to the host happens here)."""
        device = next(self.model.parameters()).device
        parts: list[torch.Tensor] = []
        layer_names = [p.name for p in self.points if p.name in self._stats]
        parts += [self._stats[n] for n in layer_names]
        missing = torch.full((GRAD_FIELDS,), math.nan, device=device)
        parts += [self._act_grads.get(n, missing) for n in layer_names]
        updates = []
        for (_, p), before in zip(self.weights, self._before):
            b = before.float()
            ratio = (p.detach().float() - b).std() / b.std()
            updates.append(torch.log10(ratio))
        parts += self._grads
        if updates:
            parts.append(torch.stack(updates))
        norm = grad_norm if torch.is_tensor(grad_norm) else torch.tensor(
            math.nan if grad_norm is None else float(grad_norm))
        parts.append(norm.detach().float().reshape(1).to(device))
        emb = embedding_matrix(self.model, self.rows)
        if emb is not None:
            coords, variance = project_2d(emb)
            parts += [coords.reshape(-1), variance.reshape(1)]
        flat = torch.cat([t.reshape(-1).to(device) for t in parts]).tolist()  # the one device -> host copy
        self._stats, self._grads, self._before, self._act_grads = {}, [], [], {}
        self._grad_stats, self._tapped = {}, set()
        return self._event(flat, layer_names, step, lr, emb.shape[0] if emb is not None else 0)

    def _event(self, flat: list[float], layer_names: list[str], step: int, lr: float, vocab: int) -> Diagnostics:
        kinds = {p.name: p.kind for p in self.points}
        width = ACT_FIELDS + HIST_BINS
        layers = []
        at = 0
        grads_at = width * len(layer_names)
        for i, name in enumerate(layer_names):
            row = flat[at:at + width]
            at += width
            grad = flat[grads_at + i * GRAD_FIELDS: grads_at + (i + 1) * GRAD_FIELDS]
            kind = kinds[name]
            lo, hi = HIST_RANGE.get(kind, DEFAULT_RANGE)
            dead = _number(row[3])
            reached = math.isfinite(grad[1])
            layers.append(LayerStats(name=name, kind=kind, units=int(row[4]), mean=row[0], std=row[1],
                                     saturation=_number(row[2]), dead=int(dead) if dead is not None else None,
                                     hist=row[ACT_FIELDS:], lo=lo, hi=hi,
                                     grad_mean=_number(grad[0]) if reached else None,
                                     grad_std=grad[1] if reached else None,
                                     grad_hist=grad[2:] if reached else []))
        at = grads_at + GRAD_FIELDS * len(layer_names)
        grads = [flat[at + 4 * i: at + 4 * i + 4] for i in range(len(self.weights))]
        at += 4 * len(self.weights)
        updates = flat[at:at + len(self.weights)]
        at += len(self.weights)
        weights = [WeightStats(name=name, shape=list(p.shape), data_std=g[0], grad_mean=g[1], grad_std=g[2],
                               grad_to_data=_number(g[3]), update_to_data=_number(u))
                   for (name, p), g, u in zip(self.weights, grads, updates)]
        grad_norm = _number(flat[at])
        at += 1
        embedding, variance = [], None
        if vocab:
            embedding = [flat[at + 2 * i: at + 2 * i + 2] for i in range(vocab)]
            variance = _number(flat[at + 2 * vocab])
        return Diagnostics(step=step, lr=lr, grad_norm=grad_norm, layers=layers, weights=weights,
                           embedding=embedding, embedding_variance=variance)


class _Watching:
    def __init__(self, recorder: Recorder):
        self.recorder = recorder

    def __enter__(self) -> Recorder:
        r = self.recorder
        r._stats, r._grad_stats, r._tapped = {}, {}, set()
        r._handles = [p.module.register_forward_hook(r._hook(p)) for p in r.points]
        r._handles += [p.consumer.register_forward_pre_hook(r._consumer_hook(p)) for p in r.points
                       if isinstance(p.consumer, nn.Module)]
        return r

    def __exit__(self, *exc) -> None:
        for handle in self.recorder._handles:
            handle.remove()
        self.recorder._handles = []


def initial_loss_event(loss: float, vocab_size: int) -> InitialLoss:
    """The step-0 loss beside ln(V), the loss of a model that finds every token equally likely (lecture 3)."""
    uniform = math.log(vocab_size)
    return InitialLoss(loss=loss, uniform=uniform, far_above=bool(loss > INIT_WARN_RATIO * uniform))


def grad_norm(params: list[torch.Tensor]) -> torch.Tensor:
    """The global L2 norm of the gradients of ``params`` (as ``clip_grad_norm_`` computes it), on the device."""
    norms = [torch.linalg.vector_norm(p.grad.detach().float()) for p in params if p.grad is not None]
    return torch.linalg.vector_norm(torch.stack(norms)) if norms else torch.zeros(())
