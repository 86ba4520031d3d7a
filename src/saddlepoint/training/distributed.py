"""Data-parallel training on ``torch.distributed`` for every game optimizer (first order to ACGD).

Launch with ``torchrun --nproc_per_node=N -m saddlepoint train ...``. Design (docs/distributed.md):

* **Exact sharding.** Every rank draws the same GLOBAL batch (same seeded data and noise generators)
  and keeps its slice of ``train.batch_size / N`` rows, so N ranks compute what one process computes
  with the whole batch (up to floating-point summation order) and the generators' states — hence the
  checkpoint — are the same on every rank and independent of N.
* **Explicit all-reduce, not DDP** (DDP cannot double-backward): the optimizer's ``reduce`` hook
  (``GameOptimizer.configure(reduce=...)``, given by :class:`saddlepoint.training.world.Torchrun`)
  averages every per-player gradient and every Hessian-vector / mixed product over the ranks as flat,
  bucketed vectors (:func:`make_reduce`).
  Losses are means over the local shard; with equal shards their average is the global mean.
* **Synchronised BatchNorm** (:class:`SyncBatchNorm`): batch statistics all-reduced with the
  differentiable all-reduce :func:`all_reduce_sum` (differentiable twice, for the
  second-order methods), so they are the global batch's; running statistics updated as one process would.
* Randomness drawn from torch's global generator inside the models (dropout masks) or penalties is
  per rank (rank r > 0 is reseeded): statistically the same as one process, not bit-identical.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import sys
from collections.abc import Sequence
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from ..errors import ConfigError
from ..system import available_cores, default_threads

#: largest flat all-reduce, in elements (bucketing bounds the extra memory of the flat copy)
BUCKET_ELEMENTS = 8 * 2**20


@dataclasses.dataclass
class DistInfo:
    """This process's place in the job (from the torchrun environment)."""

    world: int
    rank: int
    local_rank: int
    local_world: int
    backend: str
    owns_group: bool = False  # True when this module initialised the process group

    @property
    def main(self) -> bool:
        return self.rank == 0


def env_world_size() -> int:
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def init_from_env(device_name: str, threads: int | None) -> DistInfo | None:
    """Join the torchrun job described by WORLD_SIZE/RANK/LOCAL_RANK (None when not under one, or a
    world of 1). Backend: NCCL for CUDA, gloo otherwise. Threads per process: ``threads`` if given, else
    ``OMP_NUM_THREADS``, else the available cores (affinity, cgroup quota) // the local world size, never
    oversubscribed (:func:`saddlepoint.system.default_threads`; docs/distributed.md)."""
    world = env_world_size()
    if world <= 1:
        return None
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", str(rank)))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
    use_cuda = device_name == "cuda" or (device_name == "auto" and torch.cuda.is_available())
    backend = "nccl" if use_cuda else "gloo"
    owns = False
    if not dist.is_initialized():
        if "MASTER_ADDR" not in os.environ or "MASTER_PORT" not in os.environ:
            raise ConfigError("distributed: WORLD_SIZE > 1 but MASTER_ADDR/MASTER_PORT are not set (use torchrun)")
        if use_cuda:
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend, rank=rank, world_size=world, timeout=datetime.timedelta(minutes=30))
        owns = True
    else:
        backend = dist.get_backend()
    if dist.get_world_size() != world:
        raise ConfigError(f"distributed: process group has {dist.get_world_size()} ranks, WORLD_SIZE says {world}")
    if threads and threads * local_world > available_cores() and rank == 0:
        print(f"warning: train.threads={threads} × {local_world} processes exceeds the "
              f"{available_cores()} cores (oversubscription is very slow)", file=sys.stderr)
    torch.set_num_threads(default_threads(threads, local_world))
    return DistInfo(world, rank, local_rank, local_world, backend, owns)


def shutdown(info: DistInfo | None) -> None:
    if info is not None and info.owns_group and dist.is_initialized():
        dist.destroy_process_group()


# ---------------------------------------------------------------------------------- collectives
def make_reduce(world: int, group: Any = None):
    """The optimizer's ``reduce`` hook: average a list of tensors over the ranks, one all-reduce per
    bucket of ≤ BUCKET_ELEMENTS elements of one dtype and device (flattened and concatenated)."""

    def reduce(tensors: Sequence[Tensor]) -> list[Tensor]:
        tensors = list(tensors)
        out: list[Tensor | None] = [None] * len(tensors)
        groups: dict[tuple[torch.dtype, torch.device], list[int]] = {}
        for idx, t in enumerate(tensors):
            groups.setdefault((t.dtype, t.device), []).append(idx)
        for (_, _), idxs in sorted(groups.items(), key=lambda kv: kv[1][0]):
            bucket: list[int] = []
            size = 0
            for idx in [*idxs, None]:
                if idx is not None and (not bucket or size + tensors[idx].numel() <= BUCKET_ELEMENTS):
                    bucket.append(idx)
                    size += tensors[idx].numel()
                    continue
                if bucket:
                    flat = torch.cat([tensors[j].detach().reshape(-1) for j in bucket])
                    dist.all_reduce(flat, group=group)
                    flat.div_(world)
                    offset = 0
                    for j in bucket:
                        n = tensors[j].numel()
                        out[j] = flat[offset : offset + n].view(tensors[j].shape)
                        offset += n
                if idx is not None:
                    bucket, size = [idx], tensors[idx].numel()
        return out  # type: ignore[return-value]

    return reduce


def average_floats(values: Sequence[float], world: int, device: torch.device | None = None) -> list[float]:
    """Average plain numbers over the ranks (float64, one all-reduce)."""
    t = torch.tensor(list(values), dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return (t / world).tolist()


def shard_bounds(n: int, world: int, rank: int) -> tuple[int, int]:
    """Rows ``[lo, hi)`` of ``n`` that rank ``rank`` of ``world`` owns (contiguous, sizes differ by ≤ 1)."""
    return n * rank // world, n * (rank + 1) // world


def gather_rows(local: Tensor, n: int, world: int, device: torch.device | None = None) -> Tensor:
    """Every rank's shard (rows :func:`shard_bounds` of ``n``) concatenated in rank order, on every rank:
    one all-gather of shards padded to the largest (on ``device``: NCCL needs CUDA tensors). The result
    is on ``local``'s device."""
    sizes = [hi - lo for lo, hi in (shard_bounds(n, world, r) for r in range(world))]
    if local.shape[0] != sizes[dist.get_rank()]:
        raise ValueError(f"gather_rows: this rank holds {local.shape[0]} rows, its shard has {sizes[dist.get_rank()]}")
    device = device if device is not None else local.device
    padded = torch.zeros((max(sizes), *local.shape[1:]), dtype=local.dtype, device=device)
    padded[: local.shape[0]] = local.to(device)
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded)
    return torch.cat([part[:size] for part, size in zip(parts, sizes, strict=True)]).to(local.device)


def broadcast_object(obj: Any, src: int = 0) -> Any:
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


@torch.no_grad()
def broadcast_module(module: nn.Module, src: int = 0) -> None:
    """Make every rank's parameters and buffers those of rank ``src``."""
    for t in [*module.parameters(), *module.buffers()]:
        dist.broadcast(t.data, src=src)


# ---------------------------------------------------------------------------------- BatchNorm
class _AllReduceSum(torch.autograd.Function):
    """Differentiable (any order) sum over the ranks: the adjoint of a sum-all-reduce is itself."""

    @staticmethod
    def forward(ctx, tensor: Tensor) -> Tensor:  # noqa: ARG004
        out = tensor.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # noqa: ARG004
        return _AllReduceSum.apply(grad)


def all_reduce_sum(tensor: Tensor) -> Tensor:
    return _AllReduceSum.apply(tensor)


class SyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training-mode statistics are those of the global batch across all ranks.

    Works on CPU/gloo (torch's SyncBatchNorm is CUDA-only) and on CUDA. The mean and the biased variance
    come from one differentiable all-reduce (:func:`all_reduce_sum`) of per-channel sums of the input
    shifted by the running mean, so first and second derivatives flow through the statistics of every
    rank's shard (one all-reduce per layer forward, one backward). Running statistics use the unbiased
    variance of the global batch. Outside a process group,
    in eval mode or without batch statistics it is an ordinary BatchNorm.

    Its statistics couple the ranks, so a forward-mode tangent through it cannot be formed locally: the
    class declares ``supports_forward_tangents = False`` (read by :mod:`saddlepoint.games.gan`).
    """

    supports_forward_tangents = False

    def _check_input_dim(self, x: Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2-D input, got {x.dim()}-D")

    def forward(self, x: Tensor) -> Tensor:
        self._check_input_dim(x)
        use_batch = self.training or not self.track_running_stats
        if not use_batch or not dist.is_available() or not dist.is_initialized() or dist.get_world_size() == 1:
            return super().forward(x)
        c = x.shape[1]
        dims = [0, *range(2, x.dim())]
        shape = [1, c] + [1] * (x.dim() - 2)
        # ONE all-reduce of per-channel Σ(x − s), Σ(x − s)² and the element count, shifted by the running
        # mean s (the same on every rank, a constant): var = E(x − s)² − (E(x − s))² without the
        # cancellation of the unshifted one-pass formula; its adjoint in backward is one all-reduce too
        shift = self.running_mean.detach() if self.running_mean is not None else x.new_zeros(c)
        xs = x - shift.view(shape)
        local = torch.cat([xs.sum(dims), (xs * xs).sum(dims), x.new_full((1,), float(x.numel() // c))])
        total = all_reduce_sum(local)
        n = float(total[-1].detach())
        mean_s = total[:c] / n
        mean = mean_s + shift
        var = (total[c : 2 * c] / n - mean_s * mean_s).clamp_min(0.0)
        centred = xs - mean_s.view(shape)
        y = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        if self.training and self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                self.running_mean.mul_(1 - momentum).add_(mean.detach(), alpha=momentum)
                unbiased = var.detach() * (n / max(n - 1.0, 1.0))
                self.running_var.mul_(1 - momentum).add_(unbiased, alpha=momentum)
        return y


def convert_sync_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every ``nn.BatchNorm1d/2d/3d`` in ``module`` by a :class:`SyncBatchNorm` sharing its
    parameters and buffers (in place for children; returns the possibly new root)."""
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, SyncBatchNorm):
        new = SyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                            module.track_running_stats, device=None, dtype=None)
        if module.affine:
            new.weight, new.bias = module.weight, module.bias
        if module.track_running_stats:
            new.running_mean, new.running_var = module.running_mean, module.running_var
            new.num_batches_tracked = module.num_batches_tracked
        new.train(module.training)
        return new
    for name, child in module.named_children():
        setattr(module, name, convert_sync_batchnorm(child))
    return module
