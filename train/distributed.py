"""Data-parallel plumbing: the process group a run gets when torchrun starts it.

torchrun (or srun + torchrun for several nodes) sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and
the rendezvous address; ``join_world`` reads them and joins the group (nccl on CUDA, gloo on the
CPU), one device per rank (``cuda:LOCAL_RANK`` of the GPUs the task sees). Without those variables
the run is a world of one and nothing here communicates, so single-process runs are unchanged.

What the trainer agrees on through this module, and why:
- ``batch_size`` is the global batch: each rank trains on its ``batch_size / world_size`` share of
  every step's batch, drawn from the same epoch order, so a run has the learning dynamics of one
  process with that batch (BatchNorm aside: it normalises each rank's share on its own).
- a stop signal may reach one rank before the others: the ranks vote on it before every step
  (``StopVote``), with a non-blocking all-reduce of the host-side flag on a gloo group of its own,
  whose result is read before the next step. The host never waits for the device for it, every
  rank reads the same vote at the same step, so all stop after the same step (one step after the
  signal's) and rank 0 checkpoints that position. Between epochs ``agree_stop`` all-reduces at once.
- BatchNorm: with ``sync_batchnorm`` (the default) its statistics are those of the global batch
  (torch's SyncBatchNorm on CUDA; ``GlobalBatchNorm2d`` below on the CPU, where torch has none), so
  the run matches one process with the same batch; without it each rank normalises its share.
- sums (training loss, evaluation loss and accuracy) are all-reduced, so every rank knows the
  same metrics; only rank 0 writes them (run.json, W&B, checkpoints, train.log).
"""

from __future__ import annotations

import contextlib
import os
import warnings
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from sweepkit.train.errors import UserError


@dataclass(frozen=True)
class World:
    """This process's place in the run: rank 0 of 1 unless torchrun started it."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def agree_stop(self, requested: bool, device: torch.device) -> bool:
        """True on every rank when a stop was requested on any rank (a collective: all call it)."""
        if not self.distributed:
            return requested
        flag = torch.tensor([1 if requested else 0], device=device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())

    def sum(self, *values: torch.Tensor) -> list[torch.Tensor]:
        """Element-wise sums over the ranks (in float64 on the values' device)."""
        if not self.distributed:
            return list(values)
        packed = torch.stack([v.double() for v in values])
        dist.all_reduce(packed)
        return list(packed.unbind())

    def share(self, value: Any) -> Any:
        """Rank 0's ``value`` on every rank (a picklable object)."""
        if not self.distributed:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, value: Any) -> list[Any]:
        """Every rank's ``value`` (a picklable object), in rank order, on every rank."""
        if not self.distributed:
            return [value]
        out: list[Any] = [None] * self.size
        dist.all_gather_object(out, value)
        return out

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def local_slice(self, n: int) -> slice:
        """This rank's contiguous part of ``n`` items (evaluation splits)."""
        return slice(self.rank * n // self.size, (self.rank + 1) * n // self.size)


class StopVote:
    """The per-step stop check of a data-parallel run, without a host sync per step.

    ``vote(requested)`` before each step returns the result of the vote cast before the previous
    step and casts this one: an all-reduce (MAX) of a CPU flag on a gloo group of its own, started
    without waiting (``async_op``). A CPU tensor on gloo never waits for the GPU, and by the next
    step the ranks have all cast it (DDP's gradient all-reduce keeps them in step), so reading it
    costs nothing. Every rank reads the same vote before the same step, so all stop together, one
    step after the signal. ``settle()`` waits for a vote still open (the epoch ended first; the
    signal stays noted, so the blocking check after the epoch sees it). A world of one votes alone,
    with no lag."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.group: dist.ProcessGroup | None = None
        if world.distributed:
            group = dist.new_group(backend="gloo")  # every rank is a member: never the placeholder
            assert isinstance(group, dist.ProcessGroup)
            self.group = group
        self.open: tuple[dist.Work, torch.Tensor] | None = None

    def vote(self, requested: bool) -> bool:
        if not self.world.distributed:
            return requested
        if self.settle():
            return True
        flag = torch.tensor([1 if requested else 0], dtype=torch.int32)
        work = dist.all_reduce(flag, op=dist.ReduceOp.MAX, group=self.group, async_op=True)
        assert work is not None  # async_op=True returns the work handle
        self.open = (work, flag)
        return False

    def settle(self) -> bool:
        """The result of the vote still open (False when none is): waits for it."""
        if self.open is None:
            return False
        work, flag = self.open
        self.open = None
        work.wait()
        return bool(flag.item())


def _env_int(name: str) -> int | None:
    value = os.environ.get(name, "")
    return int(value) if value.isdigit() else None


def world_from_env() -> World:
    """The world torchrun describes in the environment; a world of one without it."""
    size = _env_int("WORLD_SIZE") or 1
    rank = _env_int("RANK") or 0
    local_rank = _env_int("LOCAL_RANK") or 0
    return World(rank=rank, size=size, local_rank=local_rank)


def join_world(world: World, device_request: str) -> torch.device:
    """Join the process group (when there is one) and return this rank's device."""
    use_cuda = device_request != "cpu" and torch.cuda.is_available()
    if device_request == "cuda" and not torch.cuda.is_available():
        raise UserError(
            "device=cuda but no CUDA device is visible; set device: auto or cpu, or request a GPU"
        )
    if use_cuda:
        if world.local_rank >= torch.cuda.device_count():
            raise UserError(
                f"rank {world.rank} has LOCAL_RANK {world.local_rank} but this task sees "
                f"{torch.cuda.device_count()} GPU(s); start torchrun with --nproc-per-node at most "
                "the task's GPUs (profile key gpus)"
            )
        torch.cuda.set_device(world.local_rank)
        device = torch.device("cuda", world.local_rank)
    else:
        device = torch.device("cpu")
    if world.distributed and not dist.is_initialized():
        dist.init_process_group(
            backend="nccl" if use_cuda else "gloo",
            timeout=timedelta(minutes=10),
            device_id=device if use_cuda else None,
        )
    return device


def leave_world(meet: bool = False) -> None:
    """Leave the process group. ``meet``: every rank ended the run the same way, so they first
    wait for each other, and no rank tears the group down while a peer still uses it (rank 1 of a
    finished two-rank run aborted at exit once, "terminate called without an active exception")."""
    if dist.is_available() and dist.is_initialized():
        if meet:
            with contextlib.suppress(RuntimeError):  # a peer already gone: leave anyway
                dist.barrier()
        dist.destroy_process_group()


def check_batch_split(batch_size: int, world: World) -> int:
    """The per-rank share of the global batch; a batch that does not split evenly is refused."""
    if batch_size % world.size:
        raise UserError(
            f"batch_size={batch_size} does not split over {world.size} data-parallel processes "
            f"(batch_size is the global batch, divided among them); use a multiple of {world.size}"
        )
    return batch_size // world.size


class GlobalBatchNorm2d(torch.nn.BatchNorm2d):
    """BatchNorm2d whose training statistics are those of the global batch, for gloo on the CPU.

    Each rank's per-channel sums (count, sum, sum of squares, in float64) are all-reduced with the
    differentiable all_reduce, so the gradients flow back across ranks as torch's SyncBatchNorm
    (CUDA only) arranges. Evaluation uses the running statistics, as BatchNorm2d does.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_initialized()):
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce

        xd = x.double()
        count = torch.full((x.shape[1],), x.numel() / x.shape[1], dtype=torch.float64)
        stats = torch.stack([count, xd.sum((0, 2, 3)), (xd * xd).sum((0, 2, 3))])
        n, total, squares = all_reduce(stats).unbind()
        mean = total / n
        var = squares / n - mean * mean
        if self.running_mean is not None and self.running_var is not None:
            with torch.no_grad():
                momentum = self.momentum if self.momentum is not None else 0.1
                self.running_mean.lerp_(mean.to(x.dtype), momentum)
                self.running_var.lerp_((var * n / (n - 1)).to(x.dtype), momentum)
                self.num_batches_tracked.add_(1)  # type: ignore[union-attr]
        scale = (var + self.eps).rsqrt().to(x.dtype).view(1, -1, 1, 1)
        out = (x - mean.to(x.dtype).view(1, -1, 1, 1)) * scale
        if self.affine:
            out = out * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)
        return out


def _globalise_batchnorm(module: torch.nn.Module) -> None:
    """Swap every BatchNorm2d below ``module`` for GlobalBatchNorm2d, keeping its parameters and
    buffers (the optimiser already holds those parameters)."""
    # The differentiable all_reduce is the one torch's own SyncBatchNorm design rests on; its
    # suggested successor has no autograd support yet.
    warnings.filterwarnings(
        "ignore", "torch.distributed.nn.functional.all_reduce is deprecated", FutureWarning
    )
    for name, child in module.named_children():
        if type(child) is torch.nn.BatchNorm2d:
            swapped = GlobalBatchNorm2d(child.num_features, child.eps, child.momentum, child.affine)
            swapped.weight, swapped.bias = child.weight, child.bias
            swapped.running_mean, swapped.running_var = child.running_mean, child.running_var
            swapped.num_batches_tracked = child.num_batches_tracked
            setattr(module, name, swapped)
        else:
            _globalise_batchnorm(child)


def world_size_changed(run_dir: object, saved: int, now: int) -> str:
    """Why a checkpointed run does not resume on another world size (one line)."""
    return (
        f"run folder {run_dir} was checkpointed by {saved} data-parallel process(es) and this "
        f"resume has {now}; resume it with torchrun --nproc-per-node={saved} (or {saved} ranks "
        "in all), or pass a new --run-dir"
    )


def wrap_model(
    model: torch.nn.Module, world: World, device: torch.device, sync_batchnorm: bool
) -> torch.nn.Module:
    """DistributedDataParallel around ``model`` in a group; the model itself otherwise.

    ``model``'s BatchNorm layers are swapped in place for synchronised ones when asked, so the
    caller's ``model`` (checkpoints, evaluation) is the module that trains."""
    if not world.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    if sync_batchnorm and device.type == "cuda":
        for name, child in list(model.named_children()):
            setattr(model, name, torch.nn.SyncBatchNorm.convert_sync_batchnorm(child))
    elif sync_batchnorm:
        _globalise_batchnorm(model)
    return DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None
    )
