"""Inception Score (Salimans et al. 2016, "Improved techniques for training GANs") from class logits.

For each of ``splits`` consecutive, equally sized parts of the samples (the last ``N mod splits``
samples are dropped, as in the original code):

    IS = exp( mean_x KL( p(y|x) ‖ p(y) ) ),  p(y) = mean_x p(y|x),

natural log, float64, 0·log 0 = 0; the result is the mean and the standard deviation (N − 1) over
splits. Uniform predictions give 1; confident predictions spread evenly over K classes give K.
The network is whatever classifier the features come from (Inception-v3 for natural images, the
shipped MNIST classifier for digits): scores from different networks are not comparable.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from .evaluate import METRICS, EvalContext, need_samples


def inception_score(logits: torch.Tensor, splits: int = 10) -> dict[str, float]:
    """{"is": mean over splits, "is_std": standard deviation over splits} from N×K logits
    (any log-probabilities up to an additive constant per row)."""
    lg = torch.as_tensor(logits, dtype=torch.float64)
    if lg.ndim != 2:
        raise ValueError(f"logits must be N×K, got shape {tuple(lg.shape)}")
    n = lg.shape[0]
    if splits < 1 or n < splits:
        raise ValueError(f"need at least one sample per split: {n} samples, {splits} splits")
    logp = torch.log_softmax(lg, dim=1)
    p = logp.exp()
    per = n // splits
    scores = []
    for s in range(splits):
        lp, pp = logp[s * per : (s + 1) * per], p[s * per : (s + 1) * per]
        py = pp.mean(dim=0)
        log_py = torch.where(py > 0, py.log(), torch.zeros_like(py))
        kl = torch.where(pp > 0, pp * (lp - log_py), torch.zeros_like(pp)).sum(dim=1)
        scores.append(math.exp(float(kl.mean())))
    t = torch.tensor(scores, dtype=torch.float64)
    return {"is": float(t.mean()), "is_std": float(t.std(unbiased=True)) if splits > 1 else 0.0}


@METRICS.register("is", best={"is": "max", "is_std": None}, primary="is", needs="logits", kinds=("images",),
                  priority=5, column=5)
def metric_is(samples: torch.Tensor, dataset: Any, ctx: EvalContext | None = None) -> dict[str, Any]:
    """Inception Score (Salimans et al. 2016) from the feature network's logits, ``eval.is_splits``."""
    ctx = ctx or EvalContext()
    need_samples(len(samples), ctx.cfg.is_splits, "is")
    return inception_score(ctx.fake_logits(samples, dataset), splits=ctx.cfg.is_splits)
