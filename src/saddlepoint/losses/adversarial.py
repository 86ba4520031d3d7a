"""Adversarial losses on discriminator logits.

Each loss maps ``(d_real, d_fake)`` — D's raw outputs (logits) on a real and a generated batch — to
``(loss_g, loss_d)``: two scalars, means over the batch, that G and D each *minimise*. Sigmoid
cross-entropies use ``softplus`` (log σ(x) = −softplus(−x), log(1 − σ(x)) = −softplus(x)), which is
exact and finite for any finite logit; no ``log(σ(x) + ε)``.

Adding a loss is one function plus one registration line; a loss with options declares them as a fact,
``@LOSSES.register("name", options={"margin": Option(1.0, positive)})``, and receives them as keywords
(set in a config as ``loss.margin``; :func:`build_loss`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch.nn.functional as F
from torch import Tensor

from ..checks import options as check_options
from ..registry import Registry

LossFn = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]

LOSSES: Registry[LossFn] = Registry("loss")


@LOSSES.register("minimax")
def minimax(d_real: Tensor, d_fake: Tensor) -> tuple[Tensor, Tensor]:
    """The original saturating game (Goodfellow et al. 2014, eq. 1).

    L_D = −E log σ(D(x)) − E log(1 − σ(D(G(z)))) = E softplus(−D(x)) + E softplus(D(G(z)))
    L_G = +E log(1 − σ(D(G(z))))                  = −E softplus(D(G(z)))

    L_G = −L_D up to the term G does not affect: the true zero-sum game, whose generator gradient
    vanishes when D confidently rejects the samples (dL_G/dD(G(z)) = −σ(D(G(z)))/N).
    """
    loss_d = F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
    loss_g = -F.softplus(d_fake).mean()
    return loss_g, loss_d


@LOSSES.register("ns")
def non_saturating(d_real: Tensor, d_fake: Tensor) -> tuple[Tensor, Tensor]:
    """Non-saturating GAN (Goodfellow et al. 2014, §3); what many libraries call "vanilla".

    L_D = E softplus(−D(x)) + E softplus(D(G(z)))   (as ``minimax``)
    L_G = −E log σ(D(G(z))) = E softplus(−D(G(z)))
    """
    loss_d = F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
    loss_g = F.softplus(-d_fake).mean()
    return loss_g, loss_d


@LOSSES.register("wgan")
def wasserstein(d_real: Tensor, d_fake: Tensor) -> tuple[Tensor, Tensor]:
    """Wasserstein GAN (Arjovsky et al. 2017); D is the critic, to be kept Lipschitz by a penalty
    (``gp``, ``clip``, ...).

    L_D = E D(G(z)) − E D(x),   L_G = −E D(G(z))
    """
    loss_d = d_fake.mean() - d_real.mean()
    loss_g = -d_fake.mean()
    return loss_g, loss_d


@LOSSES.register("lsgan")
def least_squares(d_real: Tensor, d_fake: Tensor) -> tuple[Tensor, Tensor]:
    """Least-squares GAN (Mao et al. 2017, eq. 2) on D's *raw* outputs (no sigmoid), with the
    targets a = 0 (fake), b = 1 (real), c = 1 (what G wants D to say) and the paper's ½ factors.

    L_D = ½ E (D(x) − 1)² + ½ E D(G(z))²,   L_G = ½ E (D(G(z)) − 1)²
    """
    loss_d = 0.5 * (d_real - 1).square().mean() + 0.5 * d_fake.square().mean()
    loss_g = 0.5 * (d_fake - 1).square().mean()
    return loss_g, loss_d


@LOSSES.register("hinge")
def hinge(d_real: Tensor, d_fake: Tensor) -> tuple[Tensor, Tensor]:
    """Hinge loss (Lim & Ye 2017; Miyato et al. 2018).

    L_D = E relu(1 − D(x)) + E relu(1 + D(G(z))),   L_G = −E D(G(z))
    """
    loss_d = F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()
    loss_g = -d_fake.mean()
    return loss_g, loss_d


def build_loss(name: str, **options: Any) -> LossFn:
    """The registered loss ``name`` with its declared ``options`` (defaults filled; unknown names and
    options are a :class:`ConfigError` naming ``loss.name`` / the valid options). A loss without options
    is returned as registered."""
    fn = LOSSES.get(name, key="loss.name")
    declared = LOSSES.facts(name).get("options", {})
    if not declared and not options:
        return fn
    return functools.partial(fn, **check_options("loss", options, declared))
