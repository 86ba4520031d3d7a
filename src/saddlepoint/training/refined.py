"""Discriminator-driven sampling on a run: its (G, D) pair, refined samples, and the metrics of ``eval.refine``.

The samplers themselves live in :mod:`saddlepoint.refine` (DRS, Azadi et al. 2019; MH-GAN, Turner et al. 2019;
DDLS, Che et al. 2020). Here they meet a run directory: D is read from ``checkpoints/last.pt`` beside the
generator, real samples come from the run's dataset, and the calibrated discriminator is saved in
``RUN_DIR/refine/`` and reused. At the end of training (and in ``saddlepoint eval``) every sampler of
``eval.refine`` is evaluated with the run's metrics on ``eval.samples`` samples beside the plain generator:
the rows "G" and "G + DRS" of ``summary.json["refined"]``, the report and comparisons.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from ..config import Config
from ..errors import UserError
from ..metrics import evaluate_metrics
from ..models import build_models
from ..refine import SAMPLERS, RefineResult, real_sampler, refine
from .checkpoint import load_checkpoint
from .evaluation import metric_names
from .sampling import EVAL_SEED_OFFSET


class LoadedPair(NamedTuple):
    """A run's generator (its EMA when asked and kept), discriminator, config and dataset, in eval mode."""

    G: nn.Module
    D: nn.Module
    cfg: Config
    dataset: Any


def load_pair(run_dir: str | Path, ema: bool = True) -> LoadedPair:
    """G (as :func:`~.api.load_generator`) and D of ``run_dir/checkpoints/last.pt``."""
    from .api import load_generator  # the API imports the loop, which imports this module
    G, cfg, dataset = load_generator(run_dir, ema=ema)
    ckpt_path = Path(run_dir) / "checkpoints" / "last.pt"
    ckpt = load_checkpoint(ckpt_path)
    _, D = build_models(cfg.model.name, dataset.sample_shape, cfg.model.z_dim, **cfg.model.options())
    try:
        D.load_state_dict(ckpt["D"])
    except (KeyError, RuntimeError, TypeError, ValueError, AttributeError) as exc:
        raise UserError(f"checkpoint {ckpt_path} does not match the run's discriminator: {exc}") from None
    device = next(G.parameters()).device
    return LoadedPair(G, D.to(device).eval(), cfg, dataset)


def label(name: str) -> str:
    """The row name of sampler ``name`` beside the plain generator: "G + DRS"."""
    return f"G + {SAMPLERS.fact(name, 'label', name)}"


def refine_run(run_dir: str | Path, name: str, n: int = 64, seed: int = 0, *, ema: bool = True,
               options: Mapping[str, Any] | None = None, progress: bool | None = None) -> RefineResult:
    """``n`` samples of the run's G refined by its D with sampler ``name`` (``drs``, ``mh``, ``ddls``) and
    ``options`` (``refine.*``); the calibration is kept in ``run_dir/refine/``."""
    G, D, _, dataset = load_pair(run_dir, ema=ema)
    return refine(name, G, D, n, seed=seed, options=options, real=real_sampler(dataset),
                  cache_dir=Path(run_dir) / "refine", progress=progress)


def refined_metrics(cfg: Config, dataset: Any, G: nn.Module, D: nn.Module, out: Path,
                    device: torch.device | str = "cpu") -> dict[str, Any]:
    """For every sampler of ``eval.refine``: its label, the run's metrics of ``eval.samples`` refined samples
    (sampling seed = the evaluation noise's), and the cost (:meth:`RefineResult.cost`)."""
    names = metric_names(cfg, dataset)
    rows: dict[str, Any] = {}
    for name, options in cfg.eval.refine.items():
        result = refine(name, G, D, cfg.eval.samples, seed=cfg.seed + EVAL_SEED_OFFSET, options=options,
                        real=real_sampler(dataset), cache_dir=Path(out) / "refine", progress=False)
        metrics = evaluate_metrics(names, result.samples, dataset, cfg.eval, device=device) if names else {}
        rows[name] = {"label": label(name), "options": dict(options), "metrics": metrics, "cost": result.cost()}
    return rows


def final_refined(t: Any) -> dict[str, Any]:
    """:func:`refined_metrics` for a trainer at the end of its run (rank 0; the EMA generator when kept)."""
    if not t.cfg.eval.refine:
        return {}
    G = t.ema.module if t.ema is not None else t.G
    D = getattr(t.D, "module", t.D)  # the plain module under DistributedDataParallel
    return t.world.on_main(lambda: refined_metrics(t.cfg, t.dataset, G, D, t.out, t.device), {})
