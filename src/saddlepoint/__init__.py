"""saddlepoint: train GANs as two-player games with game-aware optimizers.

``saddlepoint.train(config, out)``, ``resume(run_dir)``, ``sample(run_dir, n, refine=None)`` and
``load_generator(run_dir)`` are the functions of :mod:`saddlepoint.training.api`, ``refine_run(run_dir, sampler,
n)`` (discriminator-driven sampling, with its cost) that of :mod:`saddlepoint.training.refined`; all are imported
on first use so that ``import saddlepoint`` stays light (torch is not imported until needed).
"""

import importlib
import os

__version__ = "0.1.0"

# OpenMP threads that wait passively instead of spinning degrade gracefully when another process is busy
# on the same cores and compute the same numbers (docs/distributed.md, "Threads"); an explicit setting wins.
# It takes effect when saddlepoint is imported before torch (the CLI always is).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

#: public functions re-exported from submodules: name → module
API = {"train": "saddlepoint.training.api", "resume": "saddlepoint.training.api",
       "sample": "saddlepoint.training.api", "load_generator": "saddlepoint.training.api",
       "refine_run": "saddlepoint.training.refined"}

__all__ = ["__version__", *API]


def __getattr__(name: str):
    if name in API:
        value = getattr(importlib.import_module(API[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'saddlepoint' has no attribute {name!r}")
