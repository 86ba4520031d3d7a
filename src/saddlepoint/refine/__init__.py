"""Discriminator-driven sampling: draw from a trained (G, D) pair instead of G alone.

Post-hoc samplers that use the discriminator's logit d(x) ≈ log p_data(x) − log p_G(x) to remove what G
generates and the data lack (bridges between modes, artefacts):

* ``drs`` — Discriminator Rejection Sampling (Azadi et al., ICLR 2019), :mod:`.drs`;
* ``mh`` — Metropolis–Hastings GAN (Turner et al., ICML 2019), :mod:`.mh`;
* ``ddls`` — Discriminator-Driven Latent Sampling (Che et al., NeurIPS 2020), :mod:`.ddls`.

D can be trained further on the frozen G and calibrated first (:mod:`.calibrate`); the result is saved and
reused. Every sampler reports its cost (:class:`RefineResult`). Layering: above models, losses and metrics,
below training.

    from saddlepoint.refine import refine
    result = refine("drs", G, D, 2500, seed=0, real=real_sampler(dataset), cache_dir=run_dir / "refine")
    result.samples, result.acceptance_rate, result.g_per_sample
"""

from __future__ import annotations

from . import ddls, drs, mh  # noqa: F401  (registers the samplers)
from .base import (
    COMMON_OPTIONS,
    SAMPLERS,
    RefineResult,
    Sampler,
    build_sampler,
    check_options,
    declared_options,
    real_sampler,
    refine,
    refine_setting,
)
from .calibrate import CALIBRATIONS, Calibration, RefinedDiscriminator, fingerprint
from .ddls import DDLS, energy_grad, latent_energy
from .drs import DRS, acceptance_logit
from .mh import MH

__all__ = [
    "CALIBRATIONS",
    "COMMON_OPTIONS",
    "DDLS",
    "DRS",
    "MH",
    "SAMPLERS",
    "Calibration",
    "RefineResult",
    "RefinedDiscriminator",
    "Sampler",
    "acceptance_logit",
    "build_sampler",
    "check_options",
    "declared_options",
    "energy_grad",
    "fingerprint",
    "latent_energy",
    "real_sampler",
    "refine",
    "refine_setting",
]
