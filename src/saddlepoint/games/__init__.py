"""Games: analytic games with known equilibria (``saddlepoint game NAME``: bilinear, quadratic, dirac, ...) and
the GAN as a game (:mod:`.gan`: its closure; :mod:`.tangents`: forward-mode products through the generator)."""

from .analytic import GAMES, BilinearGame, DiracGAN, Game, QuadraticGame
from .gan import GANClosure, LazyLosses
from .runner import build_game, run_game

__all__ = ["GAMES", "BilinearGame", "DiracGAN", "GANClosure", "Game", "LazyLosses", "QuadraticGame", "build_game",
           "run_game"]
