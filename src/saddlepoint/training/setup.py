"""Build a run from its config: data, models, loss, penalties, optimizer and EMA, seeded, in one place.

The optimizer's collaborators are injected (``opt.configure(reduce=..., scaler=...)``: the world's
all-reduce under torchrun, a loss scaler for float16 autocast) and its needs are read from declared
attributes (``requires_double_backward``). The order of construction is part of a run's identity: the
global torch generator is seeded once and the builders below draw from it in this order.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import checks
from ..config import Config
from ..data import Dataset, build_dataset
from ..data.augment import DiffAugment
from ..errors import ConfigError
from ..losses import build_loss, build_penalties
from ..metrics import check_metrics, default_metrics
from ..models import build_models, native_resolution
from ..optim import OPTIMIZERS, LossScaler
from ..optim import build as build_optimizer
from ..system import default_threads
from .ema import EMA
from .health import GradientHealth
from .loop import Trainer
from .run_dir import RunDir
from .world import World, join

AMP_DTYPES = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def configure_threads(threads: int | None) -> int:
    """Intra-op threads of this process: ``train.threads`` when set; otherwise torch's own count (which
    follows ``OMP_NUM_THREADS``) capped by the cores this process may use (affinity and cgroup quota,
    :func:`saddlepoint.system.default_threads`). See docs/distributed.md, "Threads"."""
    n = int(threads) if threads else min(torch.get_num_threads(), default_threads(None))
    if n != torch.get_num_threads():
        torch.set_num_threads(n)
    return n


def select_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device: cuda requested but no CUDA device is available")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def check_accelerator_options(cfg: Config) -> torch.dtype | None:
    """Validate ``train.amp`` and return the autocast dtype (None: off)."""
    if cfg.train.amp not in AMP_DTYPES:
        raise ConfigError(f"train.amp: {cfg.train.amp!r}; valid: {', '.join(AMP_DTYPES)}")
    return AMP_DTYPES[cfg.train.amp]


def check_amp_optimizer(cfg: Config, opt: Any, amp_dtype: torch.dtype | None) -> None:
    """Methods that differentiate twice through the forward graph (``requires_double_backward``) run the
    kernels of their products in the forward's precision under autocast: fp16 (11-bit mantissa,
    loss-scaled, results and solves in float32) is allowed, bf16 (8-bit mantissa) refused
    (docs/distributed.md); torch.compile'd modules do not double-backward."""
    if amp_dtype == torch.float16 and not getattr(opt, "supports_loss_scaling", True):
        raise ConfigError(f"train.amp: fp16 is not supported with the optimizer {cfg.optim.name!r} (its steps "
                          "overflow float16 at every loss scale); use train.amp=none")
    if not getattr(opt, "requires_double_backward", False):
        return
    if amp_dtype == torch.bfloat16:
        raise ConfigError(f"train.amp: bf16 is not supported with the second-order optimizer {cfg.optim.name!r} "
                          "(its Hessian-vector products would run with an 8-bit mantissa); use train.amp=fp16 "
                          "(loss-scaled) or none")
    if cfg.train.compile:
        raise ConfigError(f"train.compile: compiled models cannot be differentiated twice, which the "
                          f"second-order optimizer {cfg.optim.name!r} needs; use train.compile=false")


def optimizer_hyper_parameters(cfg: Config) -> dict[str, Any]:
    """``optim.*`` → ``build()`` keywords; an unset scheme becomes the method's ``gan_scheme`` if it has one."""
    hp = cfg.optim.hyper_parameters()
    gan_scheme = getattr(OPTIMIZERS.get(cfg.optim.name, "optim.name"), "gan_scheme", None)
    if "scheme" not in hp and gan_scheme is not None:
        hp["scheme"] = gan_scheme
    return hp


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)


def build_data(cfg: Config) -> Dataset:
    """The dataset of ``data.*`` at the chosen model's native resolution."""
    return build_dataset(cfg.data.name, root=cfg.data.root, resolution=native_resolution(cfg.model.name),
                         channels=cfg.data.channels, limit=cfg.data.limit)


def build_augment(cfg: Config, dataset: Dataset) -> DiffAugment | None:
    """DiffAugment (Zhao et al. 2020) of ``train.augment`` (None: off), seeded ``seed + 3``; images only."""
    if not cfg.train.augment:
        return None
    if dataset.kind != "images":
        raise ConfigError(f"train.augment: DiffAugment transforms images; dataset {cfg.data.name!r} holds "
                          f"{dataset.kind} (use train.augment=none)")
    return DiffAugment(cfg.train.augment, seed=cfg.seed + 3)


def build_players(cfg: Config, dataset: Dataset, device: torch.device, world: World) -> tuple[nn.Module, nn.Module]:
    """G and D of ``model.*`` on ``device`` (synchronised BatchNorm and shared initial weights under torchrun)."""
    G, D = build_models(cfg.model.name, dataset.sample_shape, cfg.model.z_dim, **cfg.model.options())
    G, D = world.prepare_models(G, D, cfg.train.sync_bn)
    G, D = G.to(device), D.to(device)
    world.share_models(G, D)
    if cfg.train.channels_last:
        G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    if cfg.train.compile:
        G.compile()
        D.compile()
    return G, D


def setup(cfg: Config, out: str | Path = ".", world: World | None = None) -> Trainer:
    """A :class:`Trainer` for ``cfg`` writing to ``out``, in ``world`` (default: joined from the environment)."""
    configure_threads(cfg.train.threads)
    for key in ("train.steps", "train.batch_size", "train.n_critic", "log.every", "eval.samples"):
        section, name = key.split(".")
        if getattr(getattr(cfg, section), name) < 1:
            raise ConfigError(f"{key}: must be at least 1")
    amp_dtype = check_accelerator_options(cfg)
    device = select_device(cfg.train.device)
    world = world if world is not None else join(cfg.train.device, cfg.train.threads)
    world.check_batch(cfg.train.batch_size)
    device = world.device(device)
    seed_everything(cfg.seed)
    dataset = build_data(cfg)
    augment = build_augment(cfg, dataset)
    G, D = build_players(cfg, dataset, device, world)
    check_metrics(cfg.eval.metrics or default_metrics(dataset, cfg.eval), dataset, cfg.eval)
    loss_fn = build_loss(cfg.loss.name, **cfg.loss.options())
    penalties = build_penalties(cfg.loss)
    opt = build_optimizer(cfg.optim.name, [list(G.parameters()), list(D.parameters())],
                          buffers=[*G.buffers(), *D.buffers()], **optimizer_hyper_parameters(cfg))
    check_amp_optimizer(cfg, opt, amp_dtype)
    # one dynamic loss scale for the whole game under fp16 (optim/amp.py); the world's all-reduce
    opt.configure(reduce=world.reduce(), scaler=LossScaler() if amp_dtype == torch.float16 else None)
    ema = EMA(G, cfg.train.ema) if cfg.train.ema > 0 else None
    data_gen = torch.Generator().manual_seed(cfg.seed)
    noise_gen = torch.Generator().manual_seed(cfg.seed + 1)
    fixed_z = torch.randn(64, G.z_dim, generator=torch.Generator().manual_seed(cfg.seed + 2))
    world.reseed(cfg.seed, 0)  # dropout masks and penalty noise: independent per rank
    health = GradientHealth({"G": G, "D": D}, checks.positive("log.grad_low", cfg.log.grad_low),
                            checks.positive("log.grad_high", cfg.log.grad_high),
                            checks.positive_int("log.grad_patience", cfg.log.grad_patience), main=world.main)
    return Trainer(cfg, world, RunDir(out, world), device, dataset, G, D, loss_fn, penalties, opt, ema, data_gen,
                   noise_gen, fixed_z, amp_dtype=amp_dtype, channels_last=cfg.train.channels_last, health=health,
                   augment=augment)
