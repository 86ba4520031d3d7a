"""Discriminator-Driven Latent Sampling (Che, Zhang, Sohl-Dickstein, Larochelle, Paull, Cao, Bengio, NeurIPS 2020).

With d(x) = log p_data(x) − log p_G(x), the data density is p_data(x) = p_G(x) e^{d(x)}: the GAN defines an
energy-based model. Pulled back to the latent space of G (prior p_0 = N(0, I)), samples z of

    p_t(z) ∝ p_0(z) e^{d(G(z))} = e^{−E(z)},    E(z) = ‖z‖²/2 − d(G(z))           (paper, Eq. 4 and 7)

give x = G(z) distributed as p_data (exactly so with the optimal D; paper, Cor. 1). DDLS samples p_t by
(unadjusted) Langevin dynamics in z (paper, Alg. 1):

    z_{t+1} = z_t − (ε/2) ∇_z E(z_t) + √ε · σ · n_t,    n_t ~ N(0, I),

``steps`` times with step size ε = ``step_size`` from z_0 ~ p_0, then returns G(z_T). The paper uses ε = 0.01
on CIFAR-10; the default here is 1e-3, because the sharper discriminators of the 2-D mixtures move samples off
the modes at 0.01 (docs/sampling.md). ``noise`` (σ, default 1:
the Langevin sampler of p_t) lower than 1 samples a colder, sharper distribution (σ = 0: gradient descent on E).
d is D's logit, optionally after continued training (``d_steps``) and Platt scaling (``calibration=platt``); an
isotonic map has no useful gradient and is not offered.

Cost per sample: ``steps`` G and D evaluations, each with a backward pass through both networks, plus the final
G(z_T).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from .. import checks
from ..checks import Option
from .base import COMMON_OPTIONS, SAMPLERS, Counts, Sampler
from .calibrate import calibration_options


def latent_energy(z: Tensor, G: nn.Module, score: nn.Module) -> Tensor:
    """E(z) = ‖z‖²/2 − d(G(z)), one value per row of z (differentiable in z)."""
    return 0.5 * z.flatten(1).pow(2).sum(1) - score(G(z)).reshape(-1)


def energy_grad(z: Tensor, G: nn.Module, score: nn.Module) -> Tensor:
    """∇_z E(z) for every row of z (rows are independent, so the gradient of the sum is per row)."""
    with torch.enable_grad():
        z = z.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(latent_energy(z, G, score).sum(), z)
    return grad


@SAMPLERS.register("ddls", "langevin", paper="Che et al., Your GAN is Secretly an Energy-based Model and You "
                   "Should use Discriminator Driven Latent Sampling, NeurIPS 2020", exact=False, needs_real=False,
                   label="DDLS", needs_calibration=False,
                   summary="Langevin dynamics on the latent energy ‖z‖²/2 − d(G(z)), then G(z)")
class DDLS(Sampler):
    """Discriminator-Driven Latent Sampling; see the module docstring for the update and its options."""

    name = "ddls"
    OPTIONS = {
        **COMMON_OPTIONS,
        "steps": Option(100, lambda k, v: checks.integer(k, v, low=0), "Langevin steps"),
        "step_size": Option(1e-3, checks.positive, "ε of the Langevin update"),
        "noise": Option(1.0, checks.non_negative, "σ: scale of the injected noise (1: Langevin; < 1: colder)"),
        **calibration_options(d_steps=0, calibration="none", kinds=("none", "platt")),
    }

    def energy(self, z: Tensor) -> Tensor:
        """E(z) with the sampler's (calibrated) logit."""
        self.prepare()
        return latent_energy(z, self.G, self.score)

    def energy_grad(self, z: Tensor) -> Tensor:
        """∇_z E(z) with the sampler's (calibrated) logit."""
        self.prepare()
        return energy_grad(z, self.G, self.score)

    def draw(self, n: int, generator: torch.Generator, counts: Counts,
             bar: Any) -> tuple[Tensor, int, int, dict[str, Any]]:
        steps, eps, sigma = self.options["steps"], self.options["step_size"], self.options["noise"]
        batch = self.options["batch_size"]
        out: list[Tensor] = []
        energies: list[Tensor] = []
        for start in range(0, n, batch):
            b = min(batch, n - start)
            z = self.latent(b, generator)
            for _ in range(steps):
                noise = self.latent(b, generator)
                z = z - 0.5 * eps * energy_grad(z, self.G, self.score) + math.sqrt(eps) * sigma * noise
                counts.g += b
                counts.d += b
            with torch.no_grad():
                x = self.generate(z, counts)
                energies.append((0.5 * z.flatten(1).pow(2).sum(1) - self.score(x).reshape(-1)).cpu())
            counts.d += b
            out.append(x)
            bar.update(b)
        info = {"steps": steps, "step_size": eps, "noise": sigma,
                "mean_energy": float(torch.cat(energies).to(torch.float64).mean())}
        return torch.cat(out), n, n, info
