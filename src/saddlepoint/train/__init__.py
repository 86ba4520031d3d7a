"""Training: the loop, checkpoints and the generator EMA.

The module itself is callable, so ``saddlepoint.train(config, out)`` works whether or not this
subpackage has been imported (importing it rebinds the package attribute ``saddlepoint.train``).
"""

import sys
import types

from .loop import Interrupted, Trainer, resume, setup, train


class _CallableModule(types.ModuleType):
    def __call__(self, config=None, out=None):
        return train(config, out)


sys.modules[__name__].__class__ = _CallableModule

__all__ = ["Interrupted", "Trainer", "resume", "setup", "train"]
