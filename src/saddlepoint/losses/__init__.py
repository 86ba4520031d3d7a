"""Adversarial losses and discriminator penalties, by name.

``build_loss(name, **options)(d_real, d_fake) -> (loss_g, loss_d)``; ``build_penalties(cfg.loss)`` returns
the configured :class:`Penalty` objects (``.name``, ``.weight``, ``.options``), whose call is added to D's loss
and whose ``after_step`` runs after D's update; ``penalty_options(name, options)`` validates one penalty's
settings against its registration.
"""

from __future__ import annotations

from .adversarial import LOSSES, build_loss, hinge, least_squares, minimax, non_saturating, wasserstein
from .penalties import (
    PENALTIES,
    DRAGANPenalty,
    FunctionPenalty,
    GradientPenalty,
    Penalty,
    R1Penalty,
    R2Penalty,
    WeightClipping,
    build_penalties,
    build_penalty,
    input_gradients,
    penalty_options,
    per_sample_norms,
)

__all__ = [
    "LOSSES",
    "PENALTIES",
    "DRAGANPenalty",
    "FunctionPenalty",
    "GradientPenalty",
    "Penalty",
    "R1Penalty",
    "R2Penalty",
    "WeightClipping",
    "build_loss",
    "build_penalties",
    "build_penalty",
    "hinge",
    "input_gradients",
    "least_squares",
    "minimax",
    "non_saturating",
    "penalty_options",
    "per_sample_norms",
    "wasserstein",
]
