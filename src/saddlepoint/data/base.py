"""Dataset base classes, the ``DATASETS`` registry and the shared image conversions.

Every dataset hands out float32 batches ``(n, *sample_shape)`` drawn from a caller-owned
``torch.Generator``; image data lie in [-1, 1] (uint8 ``x`` → ``x / 127.5 − 1``). Batches are returned
on the generator's device. ``state_dict()`` holds the position in the data stream (plain ints and
tensors), so that a run restored from a checkpoint (with its generator state) draws the same batches.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .. import checks
from ..errors import CheckpointError, ConfigError, DataError
from ..registry import Registry

DATASETS: Registry[Callable[..., Dataset]] = Registry("dataset")

#: ITU-R BT.601 luma weights, the ones Pillow's ``convert("L")`` uses.
LUMA = (0.299, 0.587, 0.114)


class Dataset:
    """A source of training samples.

    ``kind`` is ``"points"`` (2-D samples, ``sample_shape == (2,)``) or ``"images"``
    (``sample_shape == (C, H, W)``).
    """

    kind: str = ""
    sample_shape: tuple[int, ...] = ()
    name: str = ""

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """Return a float32 batch of shape ``(n, *sample_shape)`` on ``generator.device``."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """Position in the data stream (plain ints/tensors only); empty for on-the-fly sources."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a position saved by :meth:`state_dict`."""
        if state:
            raise CheckpointError(f"dataset {self.name!r} keeps no stream state, got keys {sorted(state)}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, kind={self.kind!r}, shape={self.sample_shape})"


def _check_n(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"batch size must be a positive integer, got {n!r}")
    return n


class _EpochStream:
    """Epoch-shuffled index stream over ``size`` items: one permutation per epoch, drawn from the
    generator passed to :meth:`take` when the previous epoch is used up."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.epoch = 0  # number of permutations drawn so far
        self.position = 0  # next index into ``permutation``
        self.permutation: torch.Tensor | None = None

    def take(self, n: int, generator: torch.Generator) -> torch.Tensor:
        chunks = []
        need = n
        while need > 0:
            if self.permutation is None or self.position >= self.size:
                perm = torch.randperm(self.size, generator=generator, device=generator.device)
                self.permutation = perm.cpu()
                self.position = 0
                self.epoch += 1
            k = min(need, self.size - self.position)
            chunks.append(self.permutation[self.position : self.position + k])
            self.position += k
            need -= k
        return chunks[0] if len(chunks) == 1 else torch.cat(chunks)

    def state_dict(self) -> dict[str, Any]:
        perm = None if self.permutation is None else self.permutation.clone()
        return {"size": self.size, "epoch": self.epoch, "position": self.position, "permutation": perm}

    def load_state_dict(self, state: dict[str, Any], name: str) -> None:
        try:
            size, epoch, position, perm = (state[k] for k in ("size", "epoch", "position", "permutation"))
        except (KeyError, TypeError) as exc:
            raise CheckpointError(f"dataset {name!r}: stream state lacks {exc}") from None
        if int(size) != self.size:
            raise CheckpointError(
                f"dataset {name!r}: checkpoint was taken on {int(size)} samples, the data now has {self.size}"
            )
        if perm is not None:
            perm = torch.as_tensor(perm, dtype=torch.long).cpu()
            if perm.shape != (self.size,) or not torch.equal(perm.sort().values, torch.arange(self.size)):
                raise CheckpointError(f"dataset {name!r}: stream state holds no valid permutation")
        if not 0 <= int(position) <= self.size:
            raise CheckpointError(f"dataset {name!r}: stream position {int(position)} out of range")
        self.epoch, self.position = int(epoch), int(position)
        self.permutation = perm


class PointDataset(Dataset):
    """2-D samples (PacGAN protocol, see REFERENCES.md).

    A Gaussian mixture with uniform weights when ``centers``/``std`` are given and ``points`` is None
    (sampled on the fly; no stream state), or a fixed set of ``points`` (e.g. from an ``.npz``) handed out
    as an epoch-shuffled stream; ``centers``/``std`` may then be None.
    """

    kind = "points"
    sample_shape = (2,)

    def __init__(
        self,
        centers: torch.Tensor | None,
        std: float | None,
        *,
        points: torch.Tensor | None = None,
        name: str = "points",
    ) -> None:
        if points is None and (centers is None or std is None):
            raise ValueError("a PointDataset needs either points or centers and std")
        self.centers = None if centers is None else torch.as_tensor(centers, dtype=torch.float64)
        if self.centers is not None and (self.centers.ndim != 2 or self.centers.shape[1] != 2):
            raise ValueError(f"centers must be K×2, got {tuple(self.centers.shape)}")
        self.std = None if std is None else float(std)
        self.points = None if points is None else torch.as_tensor(points, dtype=torch.float32)
        self.name = name
        self._stream = None if self.points is None else _EpochStream(len(self.points))

    def __len__(self) -> int:
        if self.points is None:
            raise TypeError(f"dataset {self.name!r} is an infinite mixture")
        return len(self.points)

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """Mixture: uniform mode choice + N(0, std²) noise; point set: the next ``n`` of the stream."""
        n = _check_n(n)
        device = generator.device
        if self._stream is not None:
            assert self.points is not None
            return self.points[self._stream.take(n, generator)].to(device)
        assert self.centers is not None and self.std is not None
        idx = torch.randint(len(self.centers), (n,), generator=generator, device=device)
        noise = torch.randn(n, 2, generator=generator, device=device, dtype=torch.float32)
        return self.centers.to(device=device, dtype=torch.float32)[idx] + self.std * noise

    def state_dict(self) -> dict[str, Any]:
        return {} if self._stream is None else self._stream.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self._stream is None:
            super().load_state_dict(state)
        else:
            self._stream.load_state_dict(state, self.name)


class ImageDataset(Dataset):
    """Images ``N×C×H×W`` float32 in [-1, 1] with optional integer ``labels``.

    :meth:`sample` draws an epoch-shuffled stream: one permutation of all images per epoch, drawn from
    the passed generator when the previous epoch is exhausted (a batch may straddle two epochs); the
    position and the current permutation are kept in :meth:`state_dict`.
    """

    kind = "images"

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor | None = None,
        *,
        name: str = "images",
        classes: list[str] | None = None,
    ) -> None:
        if images.ndim != 4 or images.dtype != torch.float32:
            raise ValueError(f"images must be float32 N×C×H×W, got {images.dtype} {tuple(images.shape)}")
        if len(images) == 0:
            raise DataError(f"dataset {name!r} holds no images")
        if labels is not None:
            labels = torch.as_tensor(labels, dtype=torch.long)
            if labels.shape != (len(images),):
                raise DataError(f"dataset {name!r}: {len(labels)} labels for {len(images)} images")
        self.images = images
        self.labels = labels
        self.name = name
        self.classes = classes
        self.sample_shape = tuple(images.shape[1:])
        self._stream = _EpochStream(len(images))

    def __len__(self) -> int:
        return len(self.images)

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """The next ``n`` images of the epoch-shuffled stream."""
        idx = self._stream.take(_check_n(n), generator)
        return self.images[idx].to(generator.device)

    def state_dict(self) -> dict[str, Any]:
        return self._stream.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._stream.load_state_dict(state, self.name)

    def __repr__(self) -> str:
        return f"ImageDataset(name={self.name!r}, n={len(self)}, shape={self.sample_shape})"


# --------------------------------------------------------------------------------------------------
# conversions shared by the image builders


def check_options(resolution: int | None, channels: int | None, limit: int | None) -> None:
    """Validate the common builder options (raise :class:`ConfigError`)."""
    for key, value in (("resolution", resolution), ("channels", channels), ("data.limit", limit)):
        checks.integer(key, value, low=1, none=True)
    if channels is not None and channels not in (1, 3):
        raise ConfigError(f"channels: only 1 (grey) or 3 (RGB) are supported, got {channels}")


def uint8_to_unit(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 0..255 → float32 in [-1, 1] (``x / 127.5 − 1``)."""
    t = torch.as_tensor(np.asarray(x)) if isinstance(x, np.ndarray) else x
    return t.to(torch.float32).div_(127.5).sub_(1.0)


def convert_images(
    x: torch.Tensor,
    resolution: int | None = None,
    channels: int | None = None,
    *,
    where: str = "data",
    chunk: int = 2048,
) -> torch.Tensor:
    """Convert float ``N×C×H×W`` images in [-1, 1] to ``channels`` and a square ``resolution``.

    Grey → RGB repeats the channel; RGB → grey uses the BT.601 luma weights. Resizing is bilinear with
    antialiasing (a triangle filter widened on downscaling, i.e. area-appropriate; it is a convex
    combination, so values stay in [-1, 1]); non-square images are centre-cropped to a square first.
    """
    c = x.shape[1]
    original = x
    if channels is not None and channels != c:
        if c == 1:
            x = x.expand(-1, channels, -1, -1)
        elif c == 3 and channels == 1:
            w = torch.tensor(LUMA, dtype=x.dtype).view(1, 3, 1, 1)
            x = (x * w).sum(dim=1, keepdim=True)
        else:
            raise DataError(f"{where}: cannot convert {c}-channel images to {channels} channels")
    h, w_ = x.shape[2], x.shape[3]
    if resolution is not None and (h, w_) != (resolution, resolution):
        if h != w_:
            s = min(h, w_)
            top, left = (h - s) // 2, (w_ - s) // 2
            x = x[:, :, top : top + s, left : left + s]
        if x.shape[2] != resolution:
            x = torch.cat(
                [
                    F.interpolate(
                        x[i : i + chunk], size=(resolution, resolution), mode="bilinear",
                        align_corners=False, antialias=True,
                    )
                    for i in range(0, len(x), chunk)
                ]
            )
    return x if x is original else x.clamp(-1.0, 1.0).contiguous()


def apply_limit(n: int, limit: int | None) -> int:
    """Number of items to keep: the first ``limit`` (all when None)."""
    return n if limit is None else min(n, limit)


def build_dataset(
    name: str,
    *,
    root: str | None = None,
    resolution: int | None = None,
    channels: int | None = None,
    limit: int | None = None,
) -> Dataset:
    """Build the dataset registered as ``name`` (config key ``data.name``).

    ``resolution``/``channels`` are what the model needs (None: keep native); ``limit`` keeps only the
    first N images. Point datasets ignore the image options.
    """
    check_options(resolution, channels, limit)
    builder = DATASETS.get(name, key="data.name")
    return builder(root=root, resolution=resolution, channels=channels, limit=limit)
