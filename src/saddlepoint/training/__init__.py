"""Training: the API (:mod:`.api`), the loop in phases (:mod:`.loop`), setup from a config
(:mod:`.setup`), the world of one process or of a torchrun job (:mod:`.world`, :mod:`.distributed`), the
run directory (:mod:`.run_dir`), checkpoints (:mod:`.checkpoint`) and the generator EMA (:mod:`.ema`)."""

from ..errors import Interrupted
from .api import LoadedGenerator, load_generator, resume, sample, train
from .loop import Trainer
from .setup import setup

__all__ = ["Interrupted", "LoadedGenerator", "Trainer", "load_generator", "resume", "sample", "setup", "train"]
