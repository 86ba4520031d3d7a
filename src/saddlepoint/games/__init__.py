"""Analytic games with known equilibria (``saddlepoint game NAME``): bilinear, quadratic, dirac."""

from .analytic import GAMES, BilinearGame, DiracGAN, Game, QuadraticGame
from .runner import build_game, run_game

__all__ = ["GAMES", "BilinearGame", "DiracGAN", "Game", "QuadraticGame", "build_game", "run_game"]
