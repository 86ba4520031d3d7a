"""Metropolis–Hastings GAN (Turner, Hung, Frank, Saatci, Yosinski, ICML 2019).

An independence Metropolis–Hastings chain (Tierney 1994) whose proposals x′ ~ p_G are the generator's samples
and whose target is p_data. The acceptance probability of moving from x to x′,

    α(x, x′) = min(1, p_data(x′) p_G(x) / (p_data(x) p_G(x′))) = min(1, (1/D(x) − 1) / (1/D(x′) − 1)),

needs only the discriminator D = p_data / (p_data + p_G) (paper, Eq. 5); in logits, α = min(1, e^{d(x′) − d(x)}),
computed so here (no division by D or 1 − D). p_data is the chain's stationary distribution whenever d is the
exact log density ratio and p_G covers p_data; each output sample is the state of an independent chain after
``k`` proposals (the paper uses K = 640 on CIFAR-10; default here 100).

Start (``init``): as the paper does (§3.2, and the authors' code), each chain starts at a **real** sample drawn
from ``real`` — a draw from the stationary distribution, so no burn-in is needed. If the chain never moves in
its ``k`` proposals it would return the real sample; the authors then rerun the chain over the same proposals
started at the first one, and so does ``restart=true`` (default): a second chain, started at proposal 1 and fed
proposals 2..k with its own uniforms, runs beside the first and is returned for the chains that never moved (no
extra network evaluations). ``restart=false`` returns the real sample instead (exact with an exact D).
``init=generated`` starts at a generated sample (proposal 0; no real samples needed at sampling time; exact only
as k → ∞).

Calibration (``calibration``, default ``isotonic``; :mod:`.calibrate`): the paper calibrates D on held-out real
and generated samples (isotonic regression in its main results) because MH uses D's probabilities, not only
their order.

Cost per output sample: k G evaluations and k D evaluations, plus one D evaluation of the real start
(``init=real``) or one G and one D evaluation of the generated start.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .. import checks
from ..checks import Option
from .base import COMMON_OPTIONS, SAMPLERS, Counts, Sampler
from .calibrate import calibration_options


def select(mask: Tensor, new: Tensor, old: Tensor) -> Tensor:
    """Row-wise ``new`` where ``mask`` else ``old`` (mask of shape (n,), tensors of shape (n, ...))."""
    return torch.where(mask.reshape(-1, *([1] * (new.ndim - 1))).to(new.device), new, old)


@SAMPLERS.register("mh", "mh-gan", paper="Turner et al., Metropolis-Hastings Generative Adversarial Networks, "
                   "ICML 2019", exact=True, needs_real=True, label="MH", needs_calibration=True,
                   summary="independence Metropolis-Hastings chains over k generator proposals per sample")
class MH(Sampler):
    """MH-GAN: one independence chain of ``k`` proposals per output sample; see the module docstring."""

    name = "mh"
    OPTIONS = {
        **COMMON_OPTIONS,
        "k": Option(100, checks.positive_int, "proposals per chain (one chain per output sample)"),
        "init": Option("real", lambda key, v: checks.choice(key, v, ("real", "generated")),
                       "chain start: a real sample (the paper) or a generated one"),
        "restart": Option(True, checks.boolean, "rerun a chain that never moved from its first proposal"),
        **calibration_options(d_steps=0, calibration="isotonic"),
    }

    def draw(self, n: int, generator: torch.Generator, counts: Counts,
             bar: Any) -> tuple[Tensor, int, int, dict[str, Any]]:
        k, batch = self.options["k"], self.options["batch_size"]
        real_start = self.options["init"] == "real"
        restart = self.options["restart"] and real_start
        out: list[Tensor] = []
        accepted = proposed = restarted = 0
        for start in range(0, n, batch):
            b = min(batch, n - start)
            if real_start:
                x = self.draw_real(b, generator)
            else:
                x = self.generate(self.latent(b, generator), counts)
            d = self.logits(x, counts)
            moved = torch.zeros(b, dtype=torch.bool, device=d.device)
            x2 = d2 = None  # the restart chain
            for step in range(k):
                z = self.latent(b, generator)
                log_u = torch.log(torch.rand(b, generator=generator, dtype=torch.float64)).to(d.device)
                x_new = self.generate(z, counts)
                d_new = self.logits(x_new, counts)
                accept = log_u <= d_new - d  # u ≤ min(1, exp(d′ − d))
                x, d = select(accept, x_new, x), torch.where(accept, d_new, d)
                moved |= accept
                accepted += int(accept.sum())
                if restart:
                    if step == 0:
                        x2, d2 = x_new, d_new
                    else:
                        log_u2 = torch.log(torch.rand(b, generator=generator, dtype=torch.float64)).to(d.device)
                        accept2 = log_u2 <= d_new - d2
                        x2, d2 = select(accept2, x_new, x2), torch.where(accept2, d_new, d2)
            proposed += b * k
            if restart:
                restarted += int((~moved).sum())
                x = select(~moved, x2, x)  # type: ignore[arg-type]
            out.append(x)
            bar.update(b)
        info = {"k": k, "init": self.options["init"], "restarted": restarted}
        return torch.cat(out), proposed, accepted, info
