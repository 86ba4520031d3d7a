"""Game optimizers: one contract (``build``, ``step(closure)``, ``state_dict``) from SGD to ACGD."""

from . import first_order  # noqa: F401  (registers the methods)
from .base import OPTIMIZERS, GameOptimizer, build, per_player

__all__ = ["OPTIMIZERS", "GameOptimizer", "build", "per_player"]
