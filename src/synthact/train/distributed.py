"""Data-parallel ``train-tsn`` under ``torchrun``: one process per device, DistributedDataParallel.

The world comes from torchrun's environment (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``); without it
(or with a world of one) nothing here runs and training is the single-process path unchanged.

Equivalence with one process: ``--batch-size`` is the *global* batch. Every rank draws the same
epoch order (:class:`~.dataset.EpochSampler`), cuts it into the same global batches and takes a
contiguous share of each (:class:`RankBatches`), so the ranks together see exactly the clips one
process would. Each rank's loss is its share of the global batch's mean loss (times the world
size, which DDP's gradient averaging divides out again), BatchNorm in training mode normalises
with the statistics of the whole global batch (:class:`GlobalBatchNorm` on CPU, torch's
``SyncBatchNorm`` on CUDA), and dropout draws the mask of the whole global batch on every rank and
keeps its own rows (:class:`ShardedDropout`), so the loss history equals the single-process one up
to float summation order. Augmentation is already a function of (seed, epoch, clip).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Sampler

from ..errors import BadConfig, SynthactError


def env_world() -> tuple[int, int, int]:
    """(world size, rank, local rank) from torchrun's environment; (1, 0, 0) outside it."""
    try:
        return (int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0")),
                int(os.environ.get("LOCAL_RANK", "0")))
    except ValueError:
        raise BadConfig("WORLD_SIZE, RANK and LOCAL_RANK must be whole numbers (set by torchrun)") from None


@dataclass
class World:
    """This process's place in a data-parallel run (size 1: a plain single-process run)."""

    size: int = 1
    rank: int = 0
    local_rank: int = 0
    bn_group: Any = None     # a gloo group of its own for GlobalBatchNorm's collectives
    owned: bool = False      # the process group was started here (and is ended here)

    @property
    def main(self) -> bool:
        """The one process that writes files (rank 0)."""
        return self.rank == 0

    @property
    def parallel(self) -> bool:
        """More than one process."""
        return self.size > 1

    def barrier(self) -> None:
        """Wait for every rank (no-op alone)."""
        if self.parallel:
            dist.barrier()

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank (pickled; small objects only)."""
        if not self.parallel:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, obj: Any) -> list:
        """Every rank's ``obj``, in rank order, on every rank."""
        if not self.parallel:
            return [obj]
        out: list = [None] * self.size
        dist.all_gather_object(out, obj)
        return out

    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sum of ``values`` over the ranks."""
        if not self.parallel:
            return values
        t = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(t)   # gloo reduces CPU tensors; NCCL runs take the same path through gloo below
        return t.tolist()


def setup(device: str) -> World:
    """Join torchrun's process group (NCCL on CUDA, gloo on CPU), or a world of one."""
    size, rank, local = env_world()
    if size <= 1:
        return World()
    if not dist.is_available():
        raise BadConfig(f"WORLD_SIZE={size}: this torch build has no torch.distributed")
    cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if device.startswith("cuda:"):
        raise BadConfig(f"--device {device}: under torchrun each rank uses cuda:LOCAL_RANK; pass --device cuda or auto")
    if cuda:
        if local >= torch.cuda.device_count():
            raise BadConfig(f"LOCAL_RANK={local} but torch sees {torch.cuda.device_count()} CUDA device(s): "
                            f"start at most that many processes per node (--nproc-per-node)")
        torch.cuda.set_device(local)
    owned = not dist.is_initialized()
    if owned:
        # gloo beside NCCL: object broadcasts and metric sums stay on the CPU
        dist.init_process_group("cuda:nccl,cpu:gloo" if cuda else "gloo")
    return World(size, rank, local, dist.new_group(backend="gloo") if not cuda else None, owned)


def teardown(world: World) -> None:
    """Leave the process group if :func:`setup` started it (a caller's own group stays)."""
    if world.owned and dist.is_initialized():
        dist.destroy_process_group()


def share_outcome(world: World, fn, *args):
    """Run ``fn`` on rank 0 and hand its result to every rank; a refusal on rank 0 (a bad setting,
    a busy folder) is raised on every rank instead of leaving the others waiting."""
    result, error = None, None
    if world.main:
        try:
            result = fn(*args)
        except (SynthactError, OSError) as exc:
            error = exc
            if not world.parallel:
                raise
    if not world.parallel:
        return result
    result, error = world.broadcast((result, error))
    if error is not None:
        raise error
    return result


class RankBatches(Sampler):
    """This rank's share of each global batch of an epoch order: the order is cut into batches of
    ``batch`` clips (the last one dropped when ``drop_last``, as DataLoader does) and rank r takes the
    r-th contiguous slice of each (sizes differ by at most one where a batch does not divide)."""

    def __init__(self, order: Sampler, batch: int, drop_last: bool, world: World):
        self.order, self.batch, self.drop_last, self.world = order, batch, drop_last, world

    def global_batches(self) -> list[list[int]]:
        """The epoch's global batches, as one process would see them."""
        idx = list(iter(self.order))
        out = [idx[i:i + self.batch] for i in range(0, len(idx), self.batch)]
        return out[:-1] if self.drop_last and out and len(out[-1]) < self.batch else out

    def __iter__(self):
        for b in self.global_batches():
            lo, hi = share(len(b), self.world)
            yield b[lo:hi]

    def __len__(self) -> int:
        n = len(self.order)   # type: ignore[arg-type]  # every sampler given here is sized
        return n // self.batch if self.drop_last else -(-n // self.batch)


def share(n: int, world: World) -> tuple[int, int]:
    """Rank ``world.rank``'s contiguous slice [lo, hi) of ``n`` items."""
    base, extra = divmod(n, world.size)
    lo = world.rank * base + min(world.rank, extra)
    return lo, lo + base + (world.rank < extra)


class ShardedDropout(nn.Dropout):
    """``nn.Dropout`` that, when told the global batch (:meth:`set_shard`), draws the mask of all of
    it (the same draw on every rank) and applies its own rows: the mask one process would use."""

    shard: tuple[int, int] | None = None    # (rows of the global batch, this rank's first row)

    def set_shard(self, rows: int, offset: int) -> None:
        """The global batch's row count and this rank's first row for the next forward."""
        self.shard = (rows, offset)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Dropout with this rank's rows of the global mask (plain dropout without a shard)."""
        if not self.training or self.shard is None or self.p == 0:
            return super().forward(x)
        rows, offset = self.shard
        noise = torch.empty((rows, *x.shape[1:]), dtype=x.dtype, device=x.device).bernoulli_(1 - self.p)
        noise.div_(1 - self.p)    # as ATen's CPU dropout: x * (bernoulli(1 - p) / (1 - p))
        return x * noise[offset:offset + x.shape[0]]


class GlobalBatchNorm(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics are those of the whole global batch across ranks, on
    CPU (torch's SyncBatchNorm is GPU-only): sums and squared sums are all-reduced through a
    differentiable collective, so gradients flow across ranks as SyncBatchNorm's do."""

    group: Any = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise with the global batch's mean and variance in training, running ones otherwise."""
        if not self.training:
            return super().forward(x)
        dims = (0, 2, 3)
        count = torch.full((1,), x.numel() // x.shape[1], dtype=x.dtype, device=x.device)
        stats = _AllReduce.apply(torch.cat([x.sum(dims), (x * x).sum(dims), count]), self.group)
        c = x.shape[1]
        n = stats[-1]
        mean = stats[:c] / n
        var = (stats[c:2 * c] / n - mean * mean).clamp_min(0)
        tracked, running_mean, running_var = self.num_batches_tracked, self.running_mean, self.running_var
        assert tracked is not None and running_mean is not None and running_var is not None   # track_running_stats
        with torch.no_grad():
            tracked.add_(1)
            m = self.momentum if self.momentum is not None else 1.0 / float(tracked)
            running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
            running_var.mul_(1 - m).add_(var.detach() * (n / (n - 1).clamp_min(1)), alpha=m)
        shape = (1, c, 1, 1)
        y = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        return y * self.weight.view(shape) + self.bias.view(shape) if self.affine else y


class _AllReduce(torch.autograd.Function):
    """Sum over the ranks whose gradient is again the sum over the ranks (what SyncBatchNorm does)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, group) -> torch.Tensor:
        ctx.group = group
        x = x.clone()
        dist.all_reduce(x, group=group)
        return x

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        grad = grad.clone()
        dist.all_reduce(grad, group=ctx.group)
        return grad, None


M = TypeVar("M", bound=nn.Module)


def convert_batchnorm(module: M, world: World, cuda: bool) -> M:
    """Every BatchNorm2d normalising over the global batch: SyncBatchNorm on CUDA, else GlobalBatchNorm
    (same parameters and buffers, so state dicts and checkpoints are unchanged)."""
    if cuda:
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.BatchNorm2d:
                new = GlobalBatchNorm(child.num_features, child.eps, child.momentum, child.affine,
                                      child.track_running_stats).to(child.weight.device if child.affine else "cpu")
                new.load_state_dict(child.state_dict())
                new.train(child.training)
                new.group = world.bn_group
                setattr(parent, name, new)
    return module
