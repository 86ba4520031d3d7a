"""The training loop: a GAN as a two-player game, read in one sitting.

Players are ``[G, D]`` (generator first); the closure returns ``[loss_G, loss_D]`` at the current
parameters and the game optimizer decides how often to call it. Phases: :func:`setup` builds
everything from the config, :meth:`Trainer.run` steps, logs, samples, evaluates and checkpoints, and
:meth:`Trainer.finish` writes the final samples, checkpoint and summary.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .. import __version__
from ..config import Config, build_config, dump_yaml, to_dict
from ..data import Dataset, build_dataset
from ..errors import ConfigError, DivergenceError, UserError
from ..losses import LOSSES, build_penalty
from ..metrics import (
    FEATURE_METRICS,
    EvalContext,
    check_metrics,
    default_metrics,
    evaluate_metrics,
    evaluation_protocol,
    primary_metric,
)
from ..models import build_models, native_resolution
from ..optim import LossScaler, attach_scaler
from ..optim import build as build_optimizer
from ..report.animation import TrainingAnimation
from ..report.html import write_run_report
from ..report.plots import save_image_grid, save_scatter
from ..report.tensorboard import TensorBoardLogger
from . import distributed
from .checkpoint import load_checkpoint, rng_state, save_atomic, set_rng_state, write_text_atomic
from .closure import GANClosure
from .distributed import DistInfo
from .ema import EMA

PLAYERS = ("G", "D")


class Interrupted(Exception):
    """SIGINT/SIGTERM arrived; a checkpoint was written. Exit code 130."""

    exit_code = 130


def versions() -> dict[str, str]:
    import numpy

    return {"saddlepoint": __version__, "torch": str(torch.__version__), "numpy": numpy.__version__,
            "python": sys.version.split()[0]}


def select_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device: cuda requested but no CUDA device is available")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


@dataclasses.dataclass
class Trainer:
    """Everything one run needs; built by :func:`setup`."""

    cfg: Config
    out: Path
    device: torch.device
    dataset: Dataset
    G: nn.Module
    D: nn.Module
    loss_fn: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]
    penalties: list
    opt: Any
    ema: EMA | None
    data_gen: torch.Generator
    noise_gen: torch.Generator
    fixed_z: Tensor
    step: int = 0
    elapsed: float = 0.0
    status: str = "running"
    last_metrics: dict[str, Any] = dataclasses.field(default_factory=dict)
    best: dict[str, Any] = dataclasses.field(default_factory=dict)
    animation: TrainingAnimation | None = None
    tb: TensorBoardLogger | None = None
    stop_requested: bool = False
    #: data parallel: this rank's place in the job (None: one process)
    dist: DistInfo | None = None
    #: autocast dtype around the models' forward passes (train.amp), None: off
    amp_dtype: torch.dtype | None = None
    channels_last: bool = False

    @property
    def main(self) -> bool:
        """Whether this process writes the run directory (rank 0, or the only process)."""
        return self.dist is None or self.dist.main

    # ------------------------------------------------------------------ one game step
    def batch(self) -> tuple[Tensor, Tensor]:
        """The global batch from the seeded generators; under data parallelism this rank's slice of it
        (every rank draws the same global batch, so the shards are exact and the generators agree)."""
        n = self.cfg.train.batch_size
        real = self.dataset.sample(n, self.data_gen)
        z = torch.randn(n, self.G.z_dim, generator=self.noise_gen)
        if self.dist is not None:
            n //= self.dist.world
            lo = self.dist.rank * n
            real, z = real[lo : lo + n], z[lo : lo + n]
        real, z = real.to(self.device, dtype=z.dtype), z.to(self.device)
        if self.channels_last and real.dim() == 4:
            real = real.contiguous(memory_format=torch.channels_last)
        return real, z

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def closure_for(self, real: Tensor, z: Tensor, aux: dict[str, float]) -> GANClosure:
        """``[loss_G, loss_D]`` on this batch (see :mod:`saddlepoint.train.closure`: D(x) and the penalties
        only when loss_D is used, G(z) reused while G is unchanged)."""
        autocast = self.autocast if self.amp_dtype is not None else None
        return GANClosure(self.G, self.D, self.loss_fn, self.penalties, real, z, aux, autocast,
                          pushforward=self.opt.wants_pushforward)

    def game_step(self) -> tuple[list[float], dict[str, float]]:
        """n_critic − 1 discriminator-only steps on fresh batches, then one step of both players."""
        for _ in range(self.cfg.train.n_critic - 1):
            real, z = self.batch()
            self.opt.step(self.closure_for(real, z, {}), players=[1])
            self._after_d_update()
        aux: dict[str, float] = {}
        real, z = self.batch()
        losses = self.opt.step(self.closure_for(real, z, aux))
        self._after_d_update()
        if self.ema is not None and not self.opt.last_step_skipped:  # a skipped (fp16) step changes nothing
            self.ema.update(self.G)
        return losses, aux

    def _after_d_update(self) -> None:
        for penalty in self.penalties:
            penalty.after_step(self.D)

    def synchronise(self, losses: list[float], aux: dict[str, float], stop: bool) -> tuple[list[float], dict, bool]:
        """Data parallel: average the logged losses and diagnostics over the ranks and agree on a stop
        request (a signal seen by any rank stops every rank after the same step). One all-reduce."""
        if self.dist is None:
            return losses, aux, stop
        keys = sorted(aux)
        avg = distributed.average_floats([*losses, *(aux[k] for k in keys), float(stop)], self.dist.world)
        n = len(losses)
        return avg[:n], dict(zip(keys, avg[n : n + len(keys)])), avg[-1] > 0

    def check_finite(self, losses: list[float]) -> None:
        scaler = self.opt.scaler
        if scaler is not None and self.opt.last_step_skipped:
            # fp16: inf/NaN met under loss scaling; the step was undone and the scale halved. Only a
            # scale driven down to MIN_LOSS_SCALE (≈ 40 skips in a row from 2**16) means divergence
            if scaler.scale < MIN_LOSS_SCALE:
                raise DivergenceError(self.step, "G and D", f"gradient (loss scale {scaler.scale:.3g})")
            return
        for name, loss, norm in zip(PLAYERS, losses, self.opt.last_grad_norms):
            if not math.isfinite(loss):
                raise DivergenceError(self.step, name, "loss")
            if not math.isfinite(norm):
                raise DivergenceError(self.step, name, "gradient")

    def check_parameters(self) -> None:
        for name, module in zip(PLAYERS, (self.G, self.D)):
            if not all(bool(torch.isfinite(p).all()) for p in module.parameters()):
                raise DivergenceError(self.step, name, "parameter")

    # ------------------------------------------------------------------ outputs
    def log(self, record: dict[str, Any]) -> None:
        with open(self.out / "metrics.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
        if self.tb is not None:
            self.tb.log(record)

    def sampler(self, use_ema: bool = True) -> nn.Module:
        return self.ema.module if (use_ema and self.ema is not None) else self.G

    @torch.no_grad()
    def generate(self, n: int, use_ema: bool = True, z: Tensor | None = None) -> Tensor:
        G = self.sampler(use_ema)
        was_training = G.training
        G.eval()
        if z is None:
            z = self.eval_noise(n)
        out = torch.cat([G(chunk.to(self.device)).cpu() for chunk in z.split(1024)])
        G.train(was_training)
        return out

    def eval_noise(self, n: int) -> Tensor:
        """The noise of the ``n`` evaluation samples: the same for every evaluation and world size."""
        return torch.randn(n, self.G.z_dim, generator=torch.Generator().manual_seed(self.cfg.seed + 10_000))

    def save_samples(self, name: str) -> Path:
        path = self.out / "samples" / f"{name}.png"
        if self.dataset.kind == "points":
            pts = self.generate(self.cfg.eval.samples)
            stats = self.last_metrics.get("modes")
            hq = self.last_metrics.get("hq")
            title = f"step {self.step}"
            if stats is not None:
                title += f" · modes {stats}, {100 * hq:.1f}% high quality"
            return save_scatter(pts, path, getattr(self.dataset, "centers", None), title)
        return save_image_grid(self.generate(len(self.fixed_z), z=self.fixed_z), path, nrow=8)

    def metric_names(self) -> list[str]:
        return self.cfg.eval.metrics or default_metrics(self.dataset, self.cfg.eval)

    def evaluate(self) -> dict[str, Any]:
        """The metrics of ``eval.samples`` generated samples. Data parallel: every rank must call it (at the
        same point); each generates its shard and, for feature metrics, extracts its shard's features;
        rank 0 computes the metrics from the gathered rows (the others return {})."""
        names = self.metric_names()
        if not names:
            return {}
        n = self.cfg.eval.samples
        ctx = EvalContext(self.cfg.eval, device=self.device)
        if self.dist is None or n < self.dist.world:
            if not self.main:
                return {}
            samples = self.generate(n)
        else:
            samples = self.sharded_samples(n, names, ctx)
            if not self.main:
                return {}
        self.last_metrics = evaluate_metrics(names, samples, self.dataset, self.cfg.eval, device=self.device,
                                             context=ctx)
        return self.last_metrics

    def sharded_samples(self, n: int, names: list[str], ctx: EvalContext) -> Tensor:
        """Data parallel: the ``n`` evaluation samples, each rank generating rows :func:`shard_bounds` of the
        same global noise (so sample j is the same for any world size), gathered on every rank; the
        generated features/logits the metrics need are extracted per shard and set in ``ctx``."""
        assert self.dist is not None
        world, lo, hi = self.dist.world, *distributed.shard_bounds(n, self.dist.world, self.dist.rank)
        local = self.generate(hi - lo, z=self.eval_noise(n)[lo:hi])
        kinds = (["features"] if FEATURE_METRICS.intersection(names) - {"is"} else []) + \
            (["logits"] if "is" in names else [])
        for kind in kinds:
            extractor = ctx.extractor(self.dataset)
            values = extractor.features(local) if kind == "features" else extractor.logits(local)
            ctx.set_fake(kind, distributed.gather_rows(values, n, world, self.device))
        return distributed.gather_rows(local, n, world, self.device)

    def keep_best(self, metrics: dict[str, Any]) -> None:
        """Save ``checkpoints/best.pt`` when the primary metric improves (fid/kid lower, ...)."""
        primary = primary_metric(self.metric_names())
        if primary is None or primary[0] not in metrics:
            return
        key, mode = primary
        value = float(metrics[key])
        best = self.best.get("value")
        if best is None or (value < best if mode == "min" else value > best):
            self.best = {"metric": key, "mode": mode, "value": value, "step": self.step}
            save_atomic(self.state(), self.out / "checkpoints" / "best.pt")

    # ------------------------------------------------------------------ checkpoints
    def state(self) -> dict[str, Any]:
        return {
            "format": "saddlepoint-checkpoint",
            "versions": versions(),
            "config": to_dict(self.cfg),
            "step": self.step,
            "elapsed": self.elapsed,
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "optimizer": self.opt.state_dict(),
            "penalties": [getattr(p, "state_dict", dict)() for p in self.penalties],
            "rng": rng_state(),
            "data_gen": self.data_gen.get_state(),
            "noise_gen": self.noise_gen.get_state(),
            "dataset": self.dataset.state_dict(),
            "fixed_z": self.fixed_z,
            "best": dict(self.best),
        }

    def load_state(self, ckpt: dict[str, Any]) -> None:
        try:
            self.G.load_state_dict(ckpt["G"])
            self.D.load_state_dict(ckpt["D"])
            if self.ema is not None and ckpt.get("ema") is not None:
                self.ema.load_state_dict(ckpt["ema"])
            self.opt.load_state_dict(ckpt["optimizer"])
            set_rng_state(ckpt["rng"])
            if self.dist is not None and not self.dist.main:  # rank 0 carries the saved stream
                torch.manual_seed(_rank_seed(self.cfg.seed, self.dist.rank, int(ckpt["step"])))
            self.data_gen.set_state(ckpt["data_gen"])
            self.noise_gen.set_state(ckpt["noise_gen"])
            self.dataset.load_state_dict(ckpt["dataset"])
            self.fixed_z = ckpt["fixed_z"]
            self.best = dict(ckpt.get("best") or {})
            self.step = int(ckpt["step"])
            self.elapsed = float(ckpt["elapsed"])
        except (KeyError, RuntimeError, TypeError, ValueError) as exc:
            raise UserError(f"checkpoint does not match this run's models or optimizer: {exc}") from None

    def save_checkpoint(self) -> Path:
        """Write ``checkpoints/last.pt`` atomically (never with non-finite parameters) and keep the last
        ``checkpoint.keep`` as ``step_*.pt`` hard links to the same bytes."""
        self.check_parameters()
        ckpt_dir = self.out / "checkpoints"
        last = ckpt_dir / "last.pt"
        save_atomic(self.state(), last)
        keep = self.cfg.checkpoint.keep
        if keep > 1:
            numbered = ckpt_dir / f"step_{self.step:08d}.pt"
            numbered.unlink(missing_ok=True)
            try:
                os.link(last, numbered)
            except OSError:
                save_atomic(self.state(), numbered)
            for path in sorted(ckpt_dir.glob("step_*.pt"))[: -(keep - 1)]:
                path.unlink(missing_ok=True)
        return last

    # ------------------------------------------------------------------ the loop
    def run(self) -> Path:
        """Step until ``train.steps``; log, evaluate, sample and checkpoint on their schedules."""
        cfg = self.cfg
        progress = Progress(cfg, self.step, enabled=self.main)
        handler = _SignalFlag()
        start_time = time.perf_counter() - self.elapsed
        self.animation = self._start_animation() if self.main else None
        self.tb = TensorBoardLogger(self.out, start_step=self.step) if cfg.log.tensorboard and self.main else None
        try:
            with handler:
                while self.step < cfg.train.steps:
                    losses, aux = self.game_step()
                    if self.dist is not None:
                        losses, aux, handler.signalled = self.synchronise(losses, aux, handler.signalled)
                    self.step += 1
                    self.elapsed = time.perf_counter() - start_time
                    self.check_finite(losses)
                    self.on_schedule(losses, aux)
                    progress.update(self.step, losses)
                    if handler.signalled:
                        self.status = "interrupted"
                        if self.main:
                            self.save_checkpoint()
                            self.write_summary()
                        raise Interrupted(f"interrupted at step {self.step}; checkpoint saved in {self.out}")
            progress.close()
            return self.finish()
        except DivergenceError as exc:
            self.status = "diverged"
            if self.main:
                self.log({"step": exc.step, "event": "diverged", "player": exc.player, "what": exc.what})
                self.write_summary(error=str(exc))
            raise
        finally:
            progress.close()
            if self.animation is not None:
                self.animation.save()
            if self.tb is not None:
                self.tb.close()
                self.tb = None

    def on_schedule(self, losses: list[float], aux: dict[str, float]) -> None:
        """Everything that happens every N steps: log, evaluate (+ best checkpoint), sample, checkpoint."""
        cfg, step = self.cfg, self.step
        if not self.main:  # only rank 0 writes; every rank checks (parameters are the same on all)
            if step % cfg.log.every == 0 or step == cfg.train.steps:
                self.check_parameters()
            if cfg.eval.every and step % cfg.eval.every == 0 and step < cfg.train.steps:
                self.evaluate()  # its shard of the sharded evaluation
            return
        record = None
        if step % cfg.log.every == 0 or step == cfg.train.steps:
            self.check_parameters()
            record = self.record(losses, aux)
        if cfg.eval.every and step % cfg.eval.every == 0 and step < cfg.train.steps:
            record = record or self.record(losses, aux)
            record.update(self.evaluate())
            self.keep_best(self.last_metrics)
        if record is not None:
            self.log(record)
        if cfg.train.sample_every and step % cfg.train.sample_every == 0:
            self.save_samples(f"step_{step:08d}")
        if self.animation is not None and self.animation.due(step):
            self.animation.add(self.generate(512), step)
        if cfg.checkpoint.every and step % cfg.checkpoint.every == 0:
            self.save_checkpoint()

    def _start_animation(self) -> TrainingAnimation | None:
        """2-D runs: an animated GIF of generator samples over training (mode hopping vs convergence)."""
        if self.dataset.kind != "points":
            return None
        anim = TrainingAnimation.for_steps(self.out / "samples" / "training.gif", self.cfg.train.steps,
                                           centers=getattr(self.dataset, "centers", None))
        if self.step == 0:
            anim.add(self.generate(512), 0)
        return anim

    def record(self, losses: list[float], aux: dict[str, float]) -> dict[str, Any]:
        rec: dict[str, Any] = {"step": self.step, "time": round(self.elapsed, 4)}
        for name, loss, norm in zip(PLAYERS, losses, self.opt.last_grad_norms):
            rec[f"loss_{name.lower()}"] = loss
            rec[f"grad_norm_{name.lower()}"] = norm
        rec.update(aux)
        rec["grad_evals"] = self.opt.counts["grad"]
        rec["hvps"] = self.opt.counts["hvp"]
        if self.opt.scaler is not None:  # fp16: the loss scale and the number of skipped steps so far
            rec["amp_scale"] = self.opt.scaler.scale
            rec["amp_skipped"] = self.opt.scaler.skipped
        return rec

    def finish(self) -> Path:
        self.status = "completed"
        if not self.main:
            self.evaluate()  # its shard of the final evaluation
            return self.out / "samples"
        metrics = self.evaluate()
        if metrics:
            self.log({"step": self.step, "time": round(self.elapsed, 4), "final": True, **metrics})
        samples = self.save_samples("final")
        self.save_checkpoint()
        self.keep_best(metrics)
        self.write_summary(samples=samples)
        return samples

    def write_summary(self, samples: Path | None = None, error: str | None = None) -> None:
        summary = {
            "status": self.status,
            "steps": self.step,
            "wall_time": round(self.elapsed, 3),
            "metrics": self.last_metrics,
            "grad_evals": self.opt.counts["grad"],
            "hvps": self.opt.counts["hvp"],
            "closure_calls": self.opt.counts["closure"],
            "versions": versions(),
        }
        if self.last_metrics:
            summary["protocol"] = evaluation_protocol(self.metric_names(), self.dataset, self.cfg.eval.samples,
                                                      self.cfg.eval)
        if self.best:
            summary["best"] = self.best
        if samples is not None:
            summary["samples"] = str(samples.relative_to(self.out))
        if error is not None:
            summary["error"] = error
        write_text_atomic(self.out / "summary.json", json.dumps(summary, indent=2) + "\n")


class Progress:
    """A tqdm bar with live losses on a terminal; a few plain lines otherwise (short CI logs)."""

    def __init__(self, cfg: Config, start: int, enabled: bool = True) -> None:
        mode = cfg.log.progress if enabled else "none"
        if mode == "auto":
            mode = "bar" if sys.stderr.isatty() else "lines"
        self.mode = mode
        self.total = cfg.train.steps
        self.every = max(1, cfg.train.steps // 10)
        self.t0 = time.perf_counter()
        self.start = start
        self.bar = None
        if mode == "bar":
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, initial=start, dynamic_ncols=True, unit="step")

    def update(self, step: int, losses: list[float]) -> None:
        text = " ".join(f"{n}={v:.3f}" for n, v in zip(PLAYERS, losses))
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix_str(text, refresh=False)
        elif self.mode == "lines" and (step % self.every == 0 or step == self.total):
            rate = (step - self.start) / max(1e-9, time.perf_counter() - self.t0)
            eta = (self.total - step) / max(rate, 1e-9)
            print(f"step {step}/{self.total}  {text}  {rate:.1f} step/s  eta {eta:.0f}s", file=sys.stderr,
                  flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class _SignalFlag:
    """Turns SIGINT/SIGTERM into a flag checked after each step (main thread only)."""

    def __init__(self) -> None:
        self.signalled = False
        self._old: dict[int, Any] = {}

    def _handle(self, signum, frame) -> None:  # noqa: ARG002
        self.signalled = True

    def __enter__(self) -> _SignalFlag:
        import threading

        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


# ---------------------------------------------------------------------------------- setup
def setup(cfg: Config, out: Path) -> Trainer:
    """Build data, models, losses, penalties, optimizer and EMA from ``cfg`` (seeded)."""
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    for key in ("train.steps", "train.batch_size", "train.n_critic", "log.every", "eval.samples"):
        section, name = key.split(".")
        if getattr(getattr(cfg, section), name) < 1:
            raise ConfigError(f"{key}: must be at least 1")
    amp_dtype = check_accelerator_options(cfg)
    device = select_device(cfg.train.device)
    dist_info = distributed.init_from_env(cfg.train.device, cfg.train.threads)
    if dist_info is not None:
        if cfg.train.batch_size % dist_info.world:
            raise ConfigError(f"train.batch_size: {cfg.train.batch_size} is not divisible by the world size "
                              f"{dist_info.world} (each rank trains on an equal shard of the global batch)")
        if device.type == "cuda":
            device = torch.device("cuda", dist_info.local_rank)
    torch.manual_seed(cfg.seed)
    import random

    import numpy as np

    random.seed(cfg.seed)
    np.random.seed(cfg.seed % 2**32)

    resolution = native_resolution(cfg.model.name)
    channels = cfg.data.channels
    dataset = build_dataset(cfg.data.name, root=cfg.data.root, resolution=resolution, channels=channels,
                            limit=cfg.data.limit)
    G, D = build_models(cfg.model.name, dataset.sample_shape, cfg.model.z_dim, **cfg.model.options())
    if dist_info is not None and (cfg.train.sync_bn is None or cfg.train.sync_bn):
        G, D = distributed.convert_sync_batchnorm(G), distributed.convert_sync_batchnorm(D)
    G, D = G.to(device), D.to(device)
    if dist_info is not None:  # identical seeds give identical models; make sure of it
        distributed.broadcast_module(G)
        distributed.broadcast_module(D)
    if cfg.train.channels_last:
        G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    if cfg.train.compile:
        G.compile()
        D.compile()
    check_metrics(cfg.eval.metrics or default_metrics(dataset, cfg.eval), dataset, cfg.eval)
    loss_fn = LOSSES.get(cfg.loss.name, "loss.name")
    penalties = [build_penalty(name, getattr(cfg.loss, f"{name}_weight", None)) for name in cfg.loss.penalty]
    opt = build_optimizer(
        cfg.optim.name,
        [list(G.parameters()), list(D.parameters())],
        buffers=[*G.buffers(), *D.buffers()],
        **optimizer_hyper_parameters(cfg),
    )
    _check_amp_optimizer(cfg, opt, amp_dtype)
    if amp_dtype == torch.float16:  # one dynamic loss scale for the whole game (optim/amp.py)
        attach_scaler(opt, LossScaler())
    ema = EMA(G, cfg.train.ema) if cfg.train.ema > 0 else None
    data_gen = torch.Generator().manual_seed(cfg.seed)
    noise_gen = torch.Generator().manual_seed(cfg.seed + 1)
    fixed_z = torch.randn(64, G.z_dim, generator=torch.Generator().manual_seed(cfg.seed + 2))
    if dist_info is not None:
        distributed.attach(opt, distributed.make_reduce(dist_info.world))
        if not dist_info.main:  # dropout masks and penalty noise: independent per rank
            torch.manual_seed(_rank_seed(cfg.seed, dist_info.rank, 0))
    return Trainer(cfg, out, device, dataset, G, D, loss_fn, penalties, opt, ema, data_gen, noise_gen, fixed_z,
                   dist=dist_info, amp_dtype=amp_dtype, channels_last=cfg.train.channels_last)


def _rank_seed(seed: int, rank: int, step: int) -> int:
    return (seed + 1_000_003 * rank + 7_919 * step) % 2**63


AMP_DTYPES = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}
#: fp16: a loss scale below this after a skipped step is reported as divergence
MIN_LOSS_SCALE = 2.0**-24


def check_accelerator_options(cfg: Config) -> torch.dtype | None:
    """Validate ``train.amp`` and return the autocast dtype (None: off)."""
    if cfg.train.amp not in AMP_DTYPES:
        raise ConfigError(f"train.amp: {cfg.train.amp!r}; valid: {', '.join(AMP_DTYPES)}")
    return AMP_DTYPES[cfg.train.amp]


def _check_amp_optimizer(cfg: Config, opt: Any, amp_dtype: torch.dtype | None) -> None:
    """Second-order methods differentiate twice through the forward graph, so under autocast the kernels
    of their products run in the forward's precision. fp16 (11-bit mantissa, loss-scaled, results and
    solves in float32) is allowed; bf16 (8-bit mantissa) is refused: on a small MLP game ACGD drifted
    15% from float32 in 20 steps with bf16 against 0.6% with fp16 (docs/distributed.md). torch.compile'd
    modules do not double-backward."""
    from ..optim.second_order import SecondOrder

    inner = opt
    while inner is not None and not isinstance(inner, SecondOrder):
        inner = getattr(inner, "inner", None)
    if inner is None:
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
    from ..optim import OPTIMIZERS

    hp = cfg.optim.hyper_parameters()
    gan_scheme = getattr(OPTIMIZERS.get(cfg.optim.name, "optim.name"), "gan_scheme", None)
    if "scheme" not in hp and gan_scheme is not None:
        hp["scheme"] = gan_scheme
    return hp


def prepare_out_dir(out: Path | None, cfg: Config) -> Path:
    if out is None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        out = Path("runs") / f"{cfg.data.name}-{cfg.loss.name}-{cfg.optim.name}-{stamp}"
    out = Path(out)
    if (out / "config.yaml").exists() or (out / "checkpoints").exists():
        raise UserError(f"--out {out}: already holds a run; use 'saddlepoint resume {out}' or another --out")
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / "samples").mkdir(exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise UserError(f"--out {out}: cannot write there ({exc.strerror or exc})") from None
    return out


def train(config: Config | dict[str, Any] | None = None, out: str | Path | None = None) -> Path:
    """Train a GAN from a config (a :class:`Config`, or a nested dict on top of the chosen dataset's
    preset, see :func:`saddlepoint.config.with_dataset_preset`); return the run directory."""
    cfg = config if isinstance(config, Config) else build_config(config or {}, dataset_defaults=True)
    trainer = setup(cfg, Path(out) if out is not None else Path("."))
    try:
        if trainer.dist is None:
            trainer.out = prepare_out_dir(Path(out) if out is not None else None, cfg)
            write_text_atomic(trainer.out / "config.yaml", dump_yaml(cfg))
        else:  # rank 0 alone touches the run directory; the others learn its path or its error
            error, path = None, None
            if trainer.main:
                try:
                    path = prepare_out_dir(Path(out) if out is not None else None, cfg)
                    write_text_atomic(path / "config.yaml", dump_yaml(cfg))
                except UserError as exc:
                    error = str(exc)
            error, path = distributed.broadcast_object((error, str(path) if path else None))
            if error is not None:
                raise UserError(error)
            trainer.out = Path(path)
        _run_with_report(trainer)
    finally:
        distributed.shutdown(trainer.dist)
    return trainer.out


def _run_with_report(trainer: Trainer) -> None:
    """Run, then write report.html whatever happened (completed, diverged, interrupted)."""
    try:
        trainer.run()
    finally:
        if trainer.cfg.log.report and trainer.main:
            try:
                write_run_report(trainer.out)
            except Exception as exc:  # noqa: BLE001  (a report must never hide the run's own outcome)
                print(f"warning: report.html not written: {exc}", file=sys.stderr)


#: config sections/keys that may change on resume without ``--force`` (they do not change the numbers)
RESUMABLE_CHANGES = ("train.steps", "eval.", "log.", "checkpoint.")


def config_differences(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested config dicts."""
    keys = sorted(set(old) | set(new))
    diffs: list[str] = []
    for key in keys:
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            diffs += config_differences(a, b, f"{prefix}{key}.")
        elif a != b:
            diffs.append(f"{prefix}{key}")
    return diffs


def resume(run_dir: str | Path, overrides: dict[str, Any] | None = None, force: bool = False) -> Path:
    """Continue a run exactly from ``checkpoints/last.pt``.

    Only ``train.steps`` and the evaluation, logging and checkpoint keys may change; other changes are
    refused (they would make the resumed run a different experiment) unless ``force``.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"run directory {run_dir} does not exist")
    ckpt = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    try:
        old = build_config(ckpt["config"])
    except ConfigError as exc:
        raise UserError(f"checkpoint {run_dir / 'checkpoints' / 'last.pt'}: its config is invalid ({exc})") from None
    cfg = build_config(ckpt["config"], overrides or {})
    changed = [k for k in config_differences(to_dict(old), to_dict(cfg)) if not k.startswith(RESUMABLE_CHANGES)]
    if changed and not force:
        raise UserError(f"resume {run_dir}: configuration differs from the checkpoint in {', '.join(changed)} "
                        "(use --force to resume anyway)")
    trainer = setup(cfg, run_dir)
    try:
        trainer.load_state(ckpt)
        if trainer.main:
            _truncate_log(run_dir / "metrics.jsonl", trainer.step)
            write_text_atomic(run_dir / "config.yaml", dump_yaml(cfg))
        if trainer.dist is not None:  # the log is truncated before any rank steps on
            distributed.broadcast_object(None)
        _run_with_report(trainer)
    finally:
        distributed.shutdown(trainer.dist)
    return run_dir


def _truncate_log(path: Path, step: int) -> None:
    """Drop records written after the checkpoint (and any torn last line) so the log matches the state."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and record.get("step", 0) <= step and not record.get("final"):
            kept.append(line)
    write_text_atomic(path, "".join(f"{line}\n" for line in kept))
