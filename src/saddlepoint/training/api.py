"""The training API: :func:`train`, :func:`resume`, :func:`load_generator`, :func:`sample` (also ``saddlepoint.*``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from ..config import Config, build_config
from ..data import Dataset
from ..errors import ConfigError, UserError
from ..models import build_models
from .checkpoint import load_checkpoint, newest_intact
from .loop import Trainer
from .run_dir import RunDir, check_resumable
from .sampling import generate
from .setup import build_data, select_device, setup


def run_with_report(trainer: Trainer) -> Path:
    """Run, then write report.html whatever happened (completed, diverged, interrupted); close the world."""
    try:
        trainer.run()
    finally:
        try:
            if trainer.cfg.log.report:
                trainer.run_dir.write_report()
        finally:
            trainer.world.close()
    return trainer.out


def train(config: Config | dict[str, Any] | None = None, out: str | Path | None = None) -> Path:
    """Train a GAN from a config (a :class:`Config`, or a nested dict on top of the chosen dataset's
    preset, see :func:`saddlepoint.config.with_dataset_preset`); return the run directory."""
    cfg = config if isinstance(config, Config) else build_config(config or {}, dataset_defaults=True)
    trainer = setup(cfg, Path(out) if out is not None else Path("."))
    try:
        trainer.run_dir = RunDir.create(out, cfg, trainer.world)
    except BaseException:
        trainer.world.close()
        raise
    return run_with_report(trainer)


def resume(run_dir: str | Path, overrides: dict[str, Any] | None = None, force: bool = False) -> Path:
    """Continue a run exactly from ``checkpoints/last.pt`` (or, when that file is damaged, from the newest
    intact numbered checkpoint: the damaged file is kept aside and one line on stderr says so).

    Only ``train.steps`` and the keys that do not change a run (evaluation, logging, checkpoints, ...:
    :data:`saddlepoint.config.RESUMABLE_KEYS`) may change; other changes are refused unless ``force``.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"run directory {run_dir} does not exist")
    found = newest_intact(run_dir / "checkpoints")
    try:
        old = build_config(found.state["config"])
    except ConfigError as exc:
        raise UserError(f"checkpoint {found.path}: its config is invalid ({exc})") from None
    cfg = build_config(found.state["config"], overrides or {})
    check_resumable(run_dir, old, cfg, force)
    trainer = setup(cfg, run_dir)
    try:
        trainer.load_state(found.state)
        trainer.run_dir = RunDir.reopen(run_dir, cfg, found, trainer.step, trainer.world)
    except BaseException:
        trainer.world.close()
        raise
    return run_with_report(trainer)


class LoadedGenerator(NamedTuple):
    """A trained generator (eval mode, on the run's device), the run's config and its dataset."""

    generator: nn.Module
    config: Config
    dataset: Dataset


def load_generator(run_dir: str | Path, ema: bool = True) -> LoadedGenerator:
    """The generator of ``run_dir/checkpoints/last.pt`` (its EMA when ``ema`` and the run kept one) without
    building a trainer or an optimizer; unpacks as ``G, cfg, dataset``."""
    path = Path(run_dir)
    if not path.is_dir():
        raise UserError(f"run directory {path} does not exist")
    ckpt_path = path / "checkpoints" / "last.pt"
    ckpt = load_checkpoint(ckpt_path)
    try:
        cfg = build_config(ckpt["config"])
    except (ConfigError, KeyError, TypeError) as exc:
        raise UserError(f"checkpoint {ckpt_path}: its config is invalid ({exc})") from None
    device = select_device(cfg.train.device)
    dataset = build_data(cfg)
    torch.manual_seed(cfg.seed)
    G, _ = build_models(cfg.model.name, dataset.sample_shape, cfg.model.z_dim, **cfg.model.options())
    try:
        G.load_state_dict(ckpt["ema"]["module"] if ema and ckpt.get("ema") is not None else ckpt["G"])
    except (KeyError, RuntimeError, TypeError, ValueError, AttributeError) as exc:
        raise UserError(f"checkpoint {ckpt_path} does not match the run's generator: {exc}") from None
    return LoadedGenerator(G.to(device).eval(), cfg, dataset)


def sample(run_dir: str | Path, n: int = 64, seed: int = 0, ema: bool = True, refine: str | None = None,
           options: dict[str, Any] | None = None) -> torch.Tensor:
    """``n`` samples of a run's generator from the noise seeded ``seed`` (N×2 points or N×C×H×W images in
    [-1, 1], on the CPU). ``refine``: a discriminator-driven sampler (``drs``, ``mh``, ``ddls``) with its
    ``options`` instead of G alone (:func:`.refined.refine_run`, which also returns the cost)."""
    if n < 1:
        raise UserError("--n: must be at least 1")
    if refine is not None:
        from .refined import refine_run

        return refine_run(run_dir, refine, n, seed, ema=ema, options=options).samples
    G, _, _ = load_generator(run_dir, ema=ema)
    z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(seed))
    return generate(G, z, next(G.parameters()).device)
