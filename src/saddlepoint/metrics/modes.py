"""Mode statistics on 2-D mixtures, the PacGAN protocol (Lin et al. 2018, their released code).

Each sample is assigned to its nearest centre in the σ-scaled distance √Σ((x−μ)²/σ²); it is *high
quality* if that distance is below ``threshold`` (3, i.e. within 3σ). A mode is covered if at least
one high-quality sample is assigned to it. ``kl`` is KL(histogram of high-quality samples over modes
‖ uniform), natural log; a mode with no sample contributes 0 (0·log 0 = 0). With no high-quality
sample at all the histogram is undefined and ``kl`` is reported as log K (the KL of a point mass).
"""

from __future__ import annotations

import math

import torch


def mode_stats(
    samples: torch.Tensor, centers: torch.Tensor, std: float, threshold: float = 3.0
) -> dict[str, float | int]:
    """{"modes": covered modes, "hq": fraction of high-quality samples, "kl": KL(hist ‖ uniform)}."""
    x = torch.as_tensor(samples, dtype=torch.float64)
    c = torch.as_tensor(centers, dtype=torch.float64)
    dist = torch.cdist(x, c) / std
    nearest_dist, nearest = dist.min(dim=1)
    good = nearest_dist < threshold
    k = c.shape[0]
    counts = torch.bincount(nearest[good], minlength=k).to(torch.float64)
    n_good = int(good.sum())
    if n_good == 0:
        kl = math.log(k)
    else:
        p = counts / n_good
        nz = p > 0
        kl = float((p[nz] * torch.log(p[nz] * k)).sum())
    return {"modes": int((counts > 0).sum()), "hq": n_good / max(1, x.shape[0]), "kl": kl}
