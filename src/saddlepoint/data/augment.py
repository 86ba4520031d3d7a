"""DiffAugment (Zhao, Liu, Lin, Zhu, Han, NeurIPS 2020, "Differentiable Augmentation for Data-Efficient GAN
Training"): the discriminator sees T(x) and T(G(z)) for a random, differentiable transformation T.

The ops are those of the paper's code (``DiffAugment_pytorch.py``), on N×C×H×W batches, with per-image
parameters:

* ``color`` = ``brightness`` (x + b, b ~ U[−0.5, 0.5)), then ``saturation`` ((x − m_c)·s + m_c, m_c the
  per-pixel mean over channels, s ~ U[0, 2)), then ``contrast`` ((x − m)·c + m, m the per-image mean,
  c ~ U[0.5, 1.5));
* ``translation``: a shift by (t_h, t_w) pixels, t ~ U{−r, …, r} with r = int(size/8 + 0.5), zero fill:
  out[i, j] = x[i + t_h, j + t_w] (0 outside the image);
* ``cutout``: a square of int(size/2 + 0.5) pixels (H and W apart) set to 0, its centre o ~ U{0, …, size − 1}
  for an odd side and U{0, …, size} for an even one (the paper's ranges), clipped to the image.

Every op is differentiable with respect to the images (no rounding of pixel values), and draws its parameters
from a :class:`Draw` over an explicit ``torch.Generator`` (never torch's global stream), in a documented order.
An op is one function ``op(x, draw) -> Tensor`` and one registration line::

    @AUGMENTATIONS.register("flip")
    def flip(x, draw): ...

:class:`DiffAugment` applies a policy (``"color,translation,cutout"``, a list of names, or none/empty: no
augmentation) in order. For training, :meth:`DiffAugment.for_batch` fixes one batch's parameters
(:class:`BatchAugment`): every call for that batch, however many evaluations of the game's closure there are,
transforms with the same parameters, real and generated images with independent draws of them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.nn import functional as F

from ..errors import ConfigError
from ..registry import Registry

__all__ = ["AUGMENTATIONS", "BatchAugment", "DiffAugment", "Draw", "parse_policy"]

Augmentation = Callable[[Tensor, "Draw"], Tensor]

AUGMENTATIONS: Registry[Augmentation] = Registry("augmentation")

#: the policy of the paper's experiments
PAPER_POLICY = "color,translation,cutout"


class Draw:
    """Per-image random parameters from ``generator``, in call order (CPU draws, then moved to the images).

    ``rows``/``total``: the images are rows ``rows`` of a global batch of ``total`` (a data-parallel shard);
    every draw is made for the whole global batch and these rows kept, so a shard is transformed exactly as
    those images are in one process. Default: the images are the whole batch."""

    def __init__(self, generator: torch.Generator, rows: Tensor | None = None, total: int | None = None) -> None:
        self.generator, self.rows = generator, rows
        self.total = total if total is not None else (None if rows is None else len(rows))

    def _draw(self, x: Tensor, values: Callable[[int], Tensor]) -> Tensor:
        if self.rows is None:
            return values(x.shape[0])
        if len(self.rows) != x.shape[0]:
            raise ValueError(f"augmentation: {len(self.rows)} rows drawn for a batch of {x.shape[0]} images")
        assert self.total is not None
        return values(self.total)[self.rows]

    def uniform(self, x: Tensor, low: float, high: float) -> Tensor:
        """One number low + (high − low)·u per image, u ~ U[0, 1) (float32), shaped (N, 1, 1, 1) like ``x``."""
        u = self._draw(x, lambda n: torch.rand(n, generator=self.generator))
        return (low + (high - low) * u).to(x.device, x.dtype).view(-1, *([1] * (x.dim() - 1)))

    def integers(self, x: Tensor, low: int, high: int) -> Tensor:
        """One integer in {low, …, high − 1} per image (int64, on ``x``'s device), shaped (N,)."""
        return self._draw(x, lambda n: torch.randint(low, high, (n,), generator=self.generator)).to(x.device)


# ------------------------------------------------------------------------------------------- the ops
@AUGMENTATIONS.register("brightness")
def brightness(x: Tensor, draw: Draw) -> Tensor:
    """x + b, b ~ U[−0.5, 0.5) per image (DiffAugment ``rand_brightness``; images in [−1, 1])."""
    return x + draw.uniform(x, -0.5, 0.5)


@AUGMENTATIONS.register("saturation")
def saturation(x: Tensor, draw: Draw) -> Tensor:
    """(x − m_c)·s + m_c, m_c the mean over channels at each pixel, s ~ U[0, 2) per image (``rand_saturation``;
    the identity on one-channel images, which still consume their draw)."""
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * draw.uniform(x, 0.0, 2.0) + mean


@AUGMENTATIONS.register("contrast")
def contrast(x: Tensor, draw: Draw) -> Tensor:
    """(x − m)·c + m, m the image's mean over channels and pixels, c ~ U[0.5, 1.5) per image (``rand_contrast``)."""
    mean = x.mean(dim=tuple(range(1, x.dim())), keepdim=True)
    return (x - mean) * draw.uniform(x, 0.5, 1.5) + mean


@AUGMENTATIONS.register("color")
def color(x: Tensor, draw: Draw) -> Tensor:
    """The paper's ``color``: brightness, saturation, contrast, in this order (three draws per image)."""
    return contrast(saturation(brightness(x, draw), draw), draw)


@AUGMENTATIONS.register("translation")
def translation(x: Tensor, draw: Draw, ratio: float = 0.125) -> Tensor:
    """Shift by (t_h, t_w), t ~ U{−r, …, r}, r = int(size·ratio + 0.5), ratio 1/8, zero fill (``rand_translation``):
    out[n, c, i, j] = x[n, c, i + t_h, j + t_w], 0 where that falls outside. Draws t_h, then t_w."""
    n, _, h, w = x.shape
    rh, rw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    th = draw.integers(x, -rh, rh + 1).view(n, 1, 1)
    tw = draw.integers(x, -rw, rw + 1).view(n, 1, 1)
    rows = (torch.arange(h, device=x.device).view(1, h, 1) + th + 1).clamp(0, h + 1)  # +1: the zero border
    cols = (torch.arange(w, device=x.device).view(1, 1, w) + tw + 1).clamp(0, w + 1)
    batch = torch.arange(n, device=x.device).view(n, 1, 1)
    padded = F.pad(x, [1, 1, 1, 1]).permute(0, 2, 3, 1)  # N×(H+2)×(W+2)×C
    return padded[batch, rows, cols].permute(0, 3, 1, 2)


@AUGMENTATIONS.register("cutout")
def cutout(x: Tensor, draw: Draw, ratio: float = 0.5) -> Tensor:
    """Zero a k_h×k_w rectangle, k = int(size·ratio + 0.5), ratio 1/2, rows o_h − k_h//2 … o_h − k_h//2 + k_h − 1
    (columns alike) clipped to the image, o ~ U{0, …, size − k % 2} (``rand_cutout``). Draws o_h, then o_w."""
    n, _, h, w = x.shape
    kh, kw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    top = draw.integers(x, 0, h + 1 - kh % 2).view(n, 1) - kh // 2
    left = draw.integers(x, 0, w + 1 - kw % 2).view(n, 1) - kw // 2
    i, j = torch.arange(h, device=x.device).view(1, h), torch.arange(w, device=x.device).view(1, w)
    inside = ((i >= top) & (i < top + kh)).view(n, h, 1) & ((j >= left) & (j < left + kw)).view(n, 1, w)
    return x * (~inside).unsqueeze(1).to(x.dtype)


# ------------------------------------------------------------------------------------------- policies
def parse_policy(policy: Any, key: str = "train.augment") -> list[str]:
    """The registered names of a policy: ``"color,translation,cutout"``, a list of names, or none/empty (no
    augmentation: ``[]``). An unknown name is a :class:`ConfigError` naming ``key`` and the valid names."""
    if policy is None:
        return []
    if isinstance(policy, str):
        policy = policy.strip().strip("[]").split(",")
    if not isinstance(policy, (list, tuple)) or not all(isinstance(p, str) for p in policy):
        raise ConfigError(f"{key}: expected a comma-separated string or a list of names, got {policy!r}")
    names = [p.strip().strip("'\"") for p in policy]
    return [AUGMENTATIONS.canonical(p, key) for p in names if p and p.lower() not in ("none", "null", "~")]


class BatchAugment:
    """T with one batch's parameters fixed: :meth:`real` and :meth:`fake` transform with the parameters drawn
    from their own seed at every call, so any number of evaluations see the same T (real and generated
    images: the same policy, independent draws, as the paper's two calls of DiffAugment)."""

    def __init__(self, ops: Sequence[Augmentation], seeds: tuple[int, int], rows: Tensor | None = None,
                 total: int | None = None) -> None:
        self.ops, self.seeds, self.rows, self.total = list(ops), seeds, rows, total

    def apply(self, x: Tensor, stream: int) -> Tensor:
        """The policy on ``x`` with the parameters of ``stream`` (0: real images, 1: generated images)."""
        draw = Draw(torch.Generator().manual_seed(self.seeds[stream]), self.rows, self.total)
        for op in self.ops:
            x = op(x, draw)
        return x

    def real(self, x: Tensor) -> Tensor:
        return self.apply(x, 0)

    def fake(self, x: Tensor) -> Tensor:
        return self.apply(x, 1)


class DiffAugment:
    """A policy's ops in order (DiffAugment, Zhao et al. 2020), with the generator its batches draw seeds from.

    ``DiffAugment(policy)(x, generator)`` transforms once with fresh draws; :meth:`for_batch` fixes a batch's
    parameters for training. ``seed`` seeds the generator (the trainer passes ``seed + 3``)."""

    def __init__(self, policy: str | Sequence[str] | None = PAPER_POLICY, seed: int = 0) -> None:
        self.names = parse_policy(policy)
        self.ops = [AUGMENTATIONS.get(name) for name in self.names]
        self.generator = torch.Generator().manual_seed(seed)

    def __bool__(self) -> bool:
        return bool(self.ops)

    def __repr__(self) -> str:
        return f"DiffAugment({','.join(self.names) or 'none'!r})"

    def __call__(self, x: Tensor, generator: torch.Generator | Draw | None = None) -> Tensor:
        """T(x) with parameters from ``generator`` (default: this object's generator)."""
        draw = generator if isinstance(generator, Draw) else Draw(self.generator if generator is None else generator)
        for op in self.ops:
            x = op(x, draw)
        return x

    def for_batch(self, total: int | None = None, shard: Callable[..., tuple[Tensor, ...]] | None = None
                  ) -> BatchAugment:
        """One batch's T: two seeds (real, generated) drawn from the generator. ``shard``: this process's
        rows of a global batch of ``total`` (the world's ``shard``), so shards are transformed as in one process."""
        seeds = torch.randint(0, 2**62, (2,), generator=self.generator).tolist()
        rows = shard(torch.arange(total))[0] if shard is not None and total is not None else None
        return BatchAugment(self.ops, (seeds[0], seeds[1]), rows, total if rows is not None else None)

    def state_dict(self) -> dict[str, Tensor]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.generator.set_state(state["generator"])
