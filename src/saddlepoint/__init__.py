"""saddlepoint: train GANs as two-player games with game-aware optimizers."""

__version__ = "0.1.0"


def train(config=None, out=None):
    """Train a GAN from a nested config dict (see ``saddlepoint.config.Config``); return the run directory."""
    from .train import train as _train

    return _train(config, out)
