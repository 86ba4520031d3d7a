"""saddlepoint: train GANs as two-player games with game-aware optimizers."""

__version__ = "0.1.0"
