"""Adversarial losses and discriminator penalties, by name.

``LOSSES.get(name)(d_real, d_fake) -> (loss_g, loss_d)``; ``build_penalty(name, weight)`` returns a
:class:`Penalty` whose call is added to D's loss and whose ``after_step`` runs after D's update.
"""

from __future__ import annotations

from .adversarial import LOSSES, build_loss, hinge, least_squares, minimax, non_saturating, wasserstein
from .penalties import (
    PENALTIES,
    DRAGANPenalty,
    GradientPenalty,
    Penalty,
    R1Penalty,
    R2Penalty,
    WeightClipping,
    build_penalty,
    input_gradients,
    per_sample_norms,
)

__all__ = [
    "LOSSES",
    "PENALTIES",
    "DRAGANPenalty",
    "GradientPenalty",
    "Penalty",
    "R1Penalty",
    "R2Penalty",
    "WeightClipping",
    "build_loss",
    "build_penalty",
    "hinge",
    "input_gradients",
    "least_squares",
    "minimax",
    "non_saturating",
    "per_sample_norms",
    "wasserstein",
]
