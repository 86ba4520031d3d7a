"""Training: the loop, checkpoints and the generator EMA."""

from .loop import Interrupted, Trainer, resume, setup, train

__all__ = ["Interrupted", "Trainer", "resume", "setup", "train"]
