"""Game optimizers: one contract (``build``, ``step(closure)``, ``state_dict``) from SGD to ACGD."""

from . import first_order  # noqa: F401  (registers the methods)
from .adahessian import AdaHessianGDA  # noqa: F401  (registers the rule and the optimizer)
from .amp import LossScaler, attach_scaler
from .base import OPTIMIZERS, GameOptimizer, build, per_player
from .competitive import ACGD, CGD  # noqa: F401  (registers them)
from .extrapolation import Extragradient, Optimistic, PastExtragradient  # noqa: F401  (registers them)
from .hamiltonian import Hamiltonian  # noqa: F401  (registers it)
from .lead import LEAD  # noqa: F401  (registers it)
from .lookahead import Lookahead  # noqa: F401  (registers it)
from .newton import Newton  # noqa: F401  (registers it)
from .ridge import GDN, CompleteNewton, FollowRidge  # noqa: F401  (registers them)
from .rules import RULES
from .second_order import SGA, Consensus  # noqa: F401  (registers them)

__all__ = ["OPTIMIZERS", "RULES", "GameOptimizer", "LossScaler", "attach_scaler", "build", "per_player"]
