"""Data-parallel training under ``torchrun``: PyTorch's own process group and DistributedDataParallel.

``torchrun --nproc_per_node=N -m makemore train FILE`` starts N copies of the command with RANK, WORLD_SIZE and
LOCAL_RANK in their environment. Each copy calls :func:`setup`, which joins the process group (NCCL on CUDA,
gloo on the CPU) and pins its CUDA device to LOCAL_RANK. Outside torchrun, :func:`setup` returns a one-process
:class:`Context` and nothing here touches ``torch.distributed`` (nor imports torch: a refused option stays cheap).

How the trainer uses it:
- every rank draws the same global batch indices from an identically seeded generator and trains on its own
  disjoint slice of them, so a run on N ranks sees exactly the batches of a one-process run with the same seed;
- the loss is weighted by each slice's share of the global batch's tokens, so the averaged gradient is that of
  the whole global batch even when the batch does not divide evenly among the ranks;
- rank 0 alone writes the run directory, prints, evaluates and samples; the others still take part in every
  collective (gradient all-reduce, and the small control all-reduce that agrees on the elapsed time and on
  stopping), which rank 0 reaches in the same order;
- a process group timeout turns a hung or dead peer into an error instead of a hang, and torchrun stops the
  remaining ranks when one exits with an error.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

from makemore.errors import MakemoreError

DEFAULT_TIMEOUT_S = 600  # a peer silent this long is presumed dead (rank 0's evaluations take seconds)


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None  # None: one process, no process group

    @property
    def enabled(self) -> bool:
        return self.backend is not None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, n: int) -> slice:
        """This rank's contiguous part of ``n`` items; the first ``n % world_size`` ranks get one more."""
        base, extra = divmod(n, self.world_size)
        start = self.rank * base + min(self.rank, extra)
        return slice(start, start + base + (self.rank < extra))


SINGLE = Context()


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ and "LOCAL_RANK" in os.environ


def _env_int(name: str) -> int:
    value = os.environ[name]
    try:
        return int(value)
    except ValueError:
        raise MakemoreError(f"{name}={value!r} in the environment: expected a whole number (torchrun sets it)") \
            from None


MAX_TIMEOUT_S = 7 * 24 * 3600


def timeout_seconds() -> float:
    """MAKEMORE_DIST_TIMEOUT (seconds a silent peer is waited for), or the default; checked before torch."""
    value = os.environ.get("MAKEMORE_DIST_TIMEOUT")
    if value is None:
        return DEFAULT_TIMEOUT_S
    try:
        seconds = float(value)
    except ValueError:
        seconds = float("nan")
    if not 1 <= seconds <= MAX_TIMEOUT_S:  # (NaN fails this too)
        raise MakemoreError(f"MAKEMORE_DIST_TIMEOUT={value!r} in the environment: expected seconds between 1 and "
                            f"{MAX_TIMEOUT_S:,} (a week)")
    return seconds


def planned() -> Context:
    """This process's place in the torchrun job, from its environment, before any process group is joined (no
    torch): what the checks before training need (``is_main``, ``world_size``). Outside torchrun: ``SINGLE``."""
    if not launched_by_torchrun():
        return SINGLE
    rank, world, local = (_env_int(name) for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
    if world < 1 or not 0 <= rank < world or local < 0:
        raise MakemoreError(f"RANK={rank} WORLD_SIZE={world} LOCAL_RANK={local}: expected 0 <= RANK < WORLD_SIZE "
                            f"and LOCAL_RANK >= 0 (as torchrun sets them)")
    if world == 1:
        return SINGLE
    if not all(os.environ.get(name) for name in ("MASTER_ADDR", "MASTER_PORT")):
        raise MakemoreError("WORLD_SIZE > 1 without MASTER_ADDR and MASTER_PORT: start the processes with torchrun "
                            "(torchrun --nproc_per_node=N -m makemore train ...)")
    timeout_seconds()
    return Context(rank=rank, world_size=world, local_rank=local)


def check_batch_size(batch_size: int, ctx: Context) -> None:
    """Every rank needs at least one word (or window) of each global batch."""
    if batch_size < ctx.world_size:
        raise MakemoreError(f"--batch-size {batch_size} is smaller than the {ctx.world_size} processes; "
                            f"every rank needs at least one word (or window of text) per step")


def setup(device: str) -> tuple[Context, str]:
    """Join the process group if torchrun started us; returns the context and the device this rank uses.

    ``device`` is what the user asked for after resolution (cpu, cuda, cuda:N, ...). Under torchrun a CUDA
    device becomes ``cuda:LOCAL_RANK``: one GPU per process, as torchrun lays them out.
    """
    plan = planned()
    if plan.world_size == 1:
        return SINGLE, device
    rank, world, local = plan.rank, plan.world_size, plan.local_rank
    import torch
    import torch.distributed as dist

    if not dist.is_available():
        raise MakemoreError("this build of torch has no torch.distributed; run without torchrun")
    if device.startswith("cuda"):
        if local >= torch.cuda.device_count():
            raise MakemoreError(f"LOCAL_RANK {local} but only {torch.cuda.device_count()} CUDA device(s) here; "
                                f"use --nproc_per_node <= {torch.cuda.device_count()}")
        device = f"cuda:{local}"
        torch.cuda.set_device(local)
        backend = "nccl"
    elif device == "cpu":
        backend = "gloo"
    else:
        raise MakemoreError(f"distributed training runs on CPU (gloo) or CUDA (NCCL), not on {device}")
    timeout = timedelta(seconds=timeout_seconds())
    if not dist.is_initialized():
        kwargs = {"device_id": torch.device(device)} if backend == "nccl" else {}
        dist.init_process_group(backend, timeout=timeout, **kwargs)
    return Context(rank=rank, world_size=world, local_rank=local, backend=backend), device


def barrier(ctx: Context) -> None:
    if ctx.enabled:
        import torch.distributed as dist

        dist.barrier()


def teardown(ctx: Context) -> None:
    if ctx.enabled:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def wrap(model, ctx: Context, device):
    """The module the training forward goes through: DDP around ``model`` when distributed, else ``model``."""
    if not ctx.enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel as DDP

    # DDP broadcasts rank 0's parameters and buffers at construction, so every rank starts identical
    return DDP(model, device_ids=[device.index] if device.type == "cuda" else None)


def all_reduce_sum(values, ctx: Context):
    """Sum a small float64 tensor over the ranks (in place, on the device the backend needs)."""
    if not ctx.enabled:
        return values
    import torch
    import torch.distributed as dist

    if ctx.backend == "nccl":
        on_device = values.to(torch.device("cuda", torch.cuda.current_device()))
        dist.all_reduce(on_device)
        values.copy_(on_device.cpu())
    else:
        dist.all_reduce(values)
    return values
