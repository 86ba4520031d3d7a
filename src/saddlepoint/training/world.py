"""This process's place in the job, as one object the training loop asks without rank branches.

:class:`World` is one process: every method is an identity (the batch is the whole batch, an average is
the value itself, a gather returns the rows, work "on the main rank" simply runs). :class:`Torchrun` is
one rank of a ``torchrun`` job (``torch.distributed``): it shards the global batch, averages the logged
numbers and the stop request in one all-reduce, generates and gathers the evaluation samples in shards,
runs run-directory work on rank 0 only and hands its result or error to every rank. All rank logic of
the trainer lives here (collectives in :mod:`.distributed`, design in docs/distributed.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import torch
from torch import Tensor, nn

from ..errors import ConfigError, UserError
from . import distributed

T = TypeVar("T")

#: one feature extraction of the sharded evaluation: (extract rows → tensor, receive the gathered tensor)
Extraction = tuple[Callable[[Tensor], Tensor], Callable[[Tensor], None]]


def rank_seed(seed: int, rank: int, step: int) -> int:
    """The torch seed of rank ``rank`` > 0 at ``step`` (dropout masks and penalty noise per rank)."""
    return (seed + 1_000_003 * rank + 7_919 * step) % 2**63


class World:
    """One process: the whole job. Subclassed by :class:`Torchrun` for data parallelism."""

    size = 1
    rank = 0
    local_rank = 0

    @property
    def main(self) -> bool:
        """Whether this process writes the run directory (rank 0, or the only process)."""
        return self.rank == 0

    # -- setup
    def check_batch(self, batch_size: int) -> None:
        """Every rank trains on an equal shard of the global batch."""

    def device(self, device: torch.device) -> torch.device:
        return device

    def prepare_models(self, G: nn.Module, D: nn.Module, sync_bn: bool | None) -> tuple[nn.Module, nn.Module]:
        """Models before they move to the device (synchronised BatchNorm across ranks)."""
        return G, D

    def share_models(self, *modules: nn.Module) -> None:
        """Make every rank's parameters and buffers rank 0's."""

    def reduce(self) -> Callable[[Sequence[Tensor]], list[Tensor]] | None:
        """The optimizer's ``reduce`` hook (averages gradients and products over the ranks); None here."""
        return None

    def reseed(self, seed: int, step: int) -> None:
        """Seed torch's global generator of ranks other than 0 (rank 0 keeps the single-process stream)."""

    def close(self) -> None:
        """Leave the process group if this object joined it."""

    # -- the loop
    def shard(self, *tensors: Tensor) -> tuple[Tensor, ...]:
        """This rank's rows of each global-batch tensor."""
        return tensors

    def average(self, losses: list[float], aux: dict[str, float], stop: bool) -> tuple[list[float], dict, bool]:
        """The logged losses and diagnostics averaged over the ranks, and whether any rank must stop."""
        return losses, aux, stop

    def sample_rows(self, n: int, rows: Callable[[int, int], Tensor], extract: Sequence[Extraction] = ()
                    ) -> Tensor | None:
        """The ``n`` evaluation samples, ``rows(lo, hi)`` generating rows [lo, hi) of the global evaluation
        noise; under torchrun each rank generates its shard (and extracts its features with ``extract``),
        and the rows are gathered in order. None on ranks that do not compute the metrics."""
        return rows(0, n)

    # -- rank 0 alone
    def on_main(self, fn: Callable[[], T], default: Any = None) -> T | Any:
        """``fn()`` on rank 0, ``default`` on the others (no collective)."""
        return fn() if self.main else default

    def agree(self, fn: Callable[[], T]) -> T:
        """``fn()`` run once, on rank 0, its result (or its :class:`UserError`) handed to every rank."""
        return fn()


class Torchrun(World):
    """One rank of a torchrun job (see :func:`distributed.init_from_env`)."""

    def __init__(self, info: distributed.DistInfo) -> None:
        self.info = info
        self.size, self.rank, self.local_rank = info.world, info.rank, info.local_rank
        self.placement: torch.device | None = None  # where collectives run (NCCL: this rank's GPU)

    def check_batch(self, batch_size: int) -> None:
        if batch_size % self.size:
            raise ConfigError(f"train.batch_size: {batch_size} is not divisible by the world size {self.size} "
                              "(each rank trains on an equal shard of the global batch)")

    def device(self, device: torch.device) -> torch.device:
        self.placement = torch.device("cuda", self.local_rank) if device.type == "cuda" else device
        return self.placement

    def prepare_models(self, G: nn.Module, D: nn.Module, sync_bn: bool | None) -> tuple[nn.Module, nn.Module]:
        if sync_bn is None or sync_bn:
            G, D = distributed.convert_sync_batchnorm(G), distributed.convert_sync_batchnorm(D)
        return G, D

    def share_models(self, *modules: nn.Module) -> None:
        for module in modules:  # identical seeds give identical models; make sure of it
            distributed.broadcast_module(module)

    def reduce(self) -> Callable[[Sequence[Tensor]], list[Tensor]]:
        return distributed.make_reduce(self.size)

    def reseed(self, seed: int, step: int) -> None:
        if not self.main:
            torch.manual_seed(rank_seed(seed, self.rank, step))

    def close(self) -> None:
        distributed.shutdown(self.info)

    def shard(self, *tensors: Tensor) -> tuple[Tensor, ...]:
        n = len(tensors[0]) // self.size
        lo = self.rank * n
        return tuple(t[lo : lo + n] for t in tensors)

    def average(self, losses: list[float], aux: dict[str, float], stop: bool) -> tuple[list[float], dict, bool]:
        keys = sorted(aux)
        avg = distributed.average_floats([*losses, *(aux[k] for k in keys), float(stop)], self.size)
        n = len(losses)
        return avg[:n], dict(zip(keys, avg[n : n + len(keys)])), avg[-1] > 0

    def sample_rows(self, n: int, rows: Callable[[int, int], Tensor], extract: Sequence[Extraction] = ()
                    ) -> Tensor | None:
        if n < self.size:  # fewer samples than ranks: rank 0 evaluates alone
            return rows(0, n) if self.main else None
        lo, hi = distributed.shard_bounds(n, self.size, self.rank)
        local = rows(lo, hi)
        for features, receive in extract:
            receive(distributed.gather_rows(features(local), n, self.size, self.placement))
        gathered = distributed.gather_rows(local, n, self.size, self.placement)
        return gathered if self.main else None

    def agree(self, fn: Callable[[], T]) -> T:
        error, result = None, None
        if self.main:
            try:
                result = fn()
            except UserError as exc:
                error = str(exc)
        error, result = distributed.broadcast_object((error, result))
        if error is not None:
            raise UserError(error)
        return result


def join(device_name: str, threads: int | None) -> World:
    """The world of this process: a :class:`Torchrun` rank under torchrun (WORLD_SIZE > 1), else one process."""
    info = distributed.init_from_env(device_name, threads)
    return World() if info is None else Torchrun(info)
