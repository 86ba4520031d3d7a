"""Discriminator Rejection Sampling (Azadi, Olsson, Darrell, Goodfellow, Odena, ICLR 2019).

With the optimal discriminator's logit d(x) = log p_data(x) − log p_G(x), rejection sampling from p_G with
the bound p_data ≤ e^M p_G accepts x with probability p_data(x) / (e^M p_G(x)) = e^{d(x) − M} and returns exact
samples of p_data; on average 1 in e^M proposals is kept. The paper (§3.2, Alg. 1) makes this practical:

* **M** is the largest logit over a pilot set of ``pilot`` generated samples, and is kept as a running maximum
  while sampling (a proposal with d > M raises M before its own test);
* **acceptance** with probability σ(F(x)), where

      F(x) = d(x) − M − log(1 − exp(d(x) − M − ε)) − γ,

  ε keeping the logarithm finite. For γ = 0, σ(F) = 1 / (1 + e^{M−d} − e^{−ε}) ≈ e^{d−M}: exact rejection
  sampling. A larger γ lowers every acceptance probability and most those of low-d samples: it trades
  diversity for quality (and sharpens beyond p_data);
* **γ** is a percentile (``percentile``, default 95 as in the public MH-GAN code of the same algorithm) of
  F(x) with γ = 0. The paper takes it over each batch of proposals; here it is taken over the pilot set at the
  current M (recomputed whenever M grows), so that acceptance does not depend on the batch size and a late,
  much larger maximum does not stall sampling. ``gamma`` sets a fixed γ instead (``gamma=0``: exact sampling).
* D is first trained further on the frozen G (``d_steps``, :mod:`.calibrate`), as the paper does, so that d
  estimates the log density ratio of the sampling generator.

Cost: every proposal is one G and one D evaluation, so 1 / acceptance rate of each per kept sample, plus the
one-time pilot and continued training (reported apart). Proposal batches are sized from the acceptance rate
expected on the pilot set (at most ``batch_size``), so few surplus samples are drawn. Sampling stops with an
error after ``max_proposals`` proposals per requested sample.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .. import checks
from ..checks import Option
from ..errors import UserError
from .base import COMMON_OPTIONS, SAMPLERS, Counts, Sampler
from .calibrate import CALIBRATION_KEYS, calibration_options

MIN_BATCH = 64  # the smallest proposal batch


def acceptance_logit(d: Tensor, M: Tensor | float, epsilon: float, gamma: float) -> Tensor:
    """F = d − M − log(1 − exp(d − M − ε)) − γ (d ≤ M; computed with expm1 for accuracy near d = M)."""
    delta = d - M
    return delta - torch.log(-torch.expm1(delta - epsilon)) - gamma


@SAMPLERS.register("drs", "rejection", paper="Azadi et al., Discriminator Rejection Sampling, ICLR 2019",
                   exact=True, needs_real=False, label="DRS", needs_calibration=True,
                   summary="rejection sampling of G's samples with probability σ(F(x)), F from D's logit")
class DRS(Sampler):
    """Discriminator Rejection Sampling; see the module docstring for the equations and options."""

    name = "drs"
    OPTIONS = {
        **COMMON_OPTIONS,
        "pilot": Option(10_000, checks.positive_int, "generated samples whose largest logit starts M"),
        "epsilon": Option(1e-6, checks.positive, "ε in F, keeps log(1 − exp(d − M − ε)) finite"),
        "percentile": Option(95.0, lambda k, v: checks.number(k, v, low=0, high=100),
                             "γ is this percentile of F (γ = 0) over the pilot set"),
        "gamma": Option(None, lambda k, v: checks.number(k, v, none=True), "a fixed γ (overrides percentile)"),
        "max_proposals": Option(1000, checks.positive_int, "give up after this many proposals per sample"),
        **calibration_options(d_steps=2000, calibration="none"),
    }
    SETUP_KEYS = (*CALIBRATION_KEYS, "pilot", "epsilon", "percentile")

    def setup_extra(self, counts: Counts) -> dict[str, Any]:
        """The pilot set: M = its largest logit, and γ = the ``percentile`` of F (γ = 0) over it."""
        generator = torch.Generator().manual_seed(self.options["calib_seed"] + 2)
        logits = []
        for start in range(0, self.options["pilot"], self.options["batch_size"]):
            b = min(self.options["batch_size"], self.options["pilot"] - start)
            logits.append(self.logits(self.generate(self.latent(b, generator), counts), counts).cpu())
        d = torch.cat(logits)
        if not torch.isfinite(d).all():
            raise UserError("refine drs: the discriminator gives non-finite logits on the pilot set")
        M = float(d.max())
        F = acceptance_logit(d, M, self.options["epsilon"], 0.0).numpy()
        return {"M": M, "gamma": float(np.percentile(F, self.options["percentile"])), "pilot": d.float()}

    def valid_extra(self, extra: Any) -> bool:
        return {"M", "gamma", "pilot"} <= set(extra)

    def draw(self, n: int, generator: torch.Generator, counts: Counts,
             bar: Any) -> tuple[Tensor, int, int, dict[str, Any]]:
        extra = self.state["extra"]  # type: ignore[index]
        pilot = extra["pilot"].double()
        M = torch.tensor(float(extra["M"]), dtype=torch.float64)
        eps, batch, fixed = self.options["epsilon"], self.options["batch_size"], self.options["gamma"]

        def threshold(M: Tensor) -> tuple[float, float]:
            """γ (fixed, or the percentile of F over the pilot set at the current M) and the acceptance rate
            expected from the pilot set, which sizes the batches."""
            F = acceptance_logit(pilot, M, eps, 0.0)
            gamma = fixed if fixed is not None else float(np.percentile(F.numpy(), self.options["percentile"]))
            return gamma, float(torch.sigmoid(F - gamma).mean())

        gamma, rate = threshold(M)
        limit = self.options["max_proposals"] * n
        kept: list[Tensor] = []
        n_kept = proposed = 0
        while n_kept < n:
            if proposed >= limit:
                raise UserError(f"refine drs: only {n_kept} of {n} samples accepted after {proposed} proposals "
                                f"(acceptance {n_kept / proposed:.2g}); lower refine.percentile or set refine.gamma")
            b = min(batch, max(MIN_BATCH, math.ceil(1.1 * (n - n_kept) / max(rate, 1e-6))))
            z = self.latent(b, generator)
            u = torch.rand(b, generator=generator, dtype=torch.float64)
            x = self.generate(z, counts)
            d = self.logits(x, counts).cpu()
            running = torch.maximum(torch.cummax(d, dim=0).values, M)  # M before each proposal's own test
            accept = u < torch.sigmoid(acceptance_logit(d, running, eps, gamma))
            proposed += b
            if accept.any():
                kept.append(x[accept.to(x.device)])
                new = int(accept.sum())
                bar.update(min(new, n - n_kept))
                n_kept += new
            if running[-1] > M:  # a new maximum: γ follows it (the percentile is of F at the current M)
                M = running[-1]
                gamma, rate = threshold(M)
        samples = torch.cat(kept)[:n]
        info = {"M": float(M), "M_pilot": float(extra["M"]), "gamma": gamma, "epsilon": eps}
        return samples, proposed, n_kept, info
