"""Game optimizers: one contract (``build``, ``step(closure)``, ``state_dict``) from SGD to ACGD."""

from . import first_order  # noqa: F401  (registers the methods)
from .amp import LossScaler, attach_scaler
from .base import OPTIMIZERS, GameOptimizer, build, per_player
from .extrapolation import Extragradient, Optimistic, PastExtragradient  # noqa: F401  (registers them)
from .lookahead import Lookahead  # noqa: F401  (registers it)
from .second_order import ACGD, CGD, SGA, Consensus  # noqa: F401  (registers them)

__all__ = ["OPTIMIZERS", "GameOptimizer", "LossScaler", "attach_scaler", "build", "per_player"]
