"""The training loop: a GAN as a two-player game, read in one sitting.

Players are ``[G, D]`` (generator first); the closure (:class:`~saddlepoint.games.gan.GANClosure`) returns
``[loss_G, loss_D]`` at the current parameters and the game optimizer decides how often to call it. A step
has four phases, the same on every rank: **play** (the optimizer's step on this rank's shard), **agree**
(logged numbers and a stop request averaged over the ranks; an identity in one process), **guard**
(non-finite losses or gradients are divergence) and **periodic work**, one table of (schedule, task).
Rank differences live in :mod:`.world` and :mod:`.run_dir`. :meth:`Trainer.finish` writes the final
checkpoint and summary before the final evaluation, so a failure there loses no trained weights.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..config import Config
from ..data import Dataset
from ..data.augment import DiffAugment
from ..errors import DivergenceError, Interrupted, UserError
from ..games.gan import GANClosure, LossFn
from . import evaluation, refined
from .checkpoint import capture, restore
from .ema import EMA
from .progress import StopSignal, every
from .records import PLAYERS, step_record, summary
from .run_dir import RunDir
from .sampling import eval_noise, generate, title
from .world import World

#: fp16: a loss scale below this after a skipped step is reported as divergence (≈ 40 skips in a row)
MIN_LOSS_SCALE = 2.0**-24


@dataclasses.dataclass
class Trainer:
    """Everything one run needs; built by :func:`saddlepoint.training.setup.setup`."""

    cfg: Config
    world: World
    run_dir: RunDir
    device: torch.device
    dataset: Dataset
    G: nn.Module
    D: nn.Module
    loss_fn: LossFn
    penalties: list
    opt: Any
    ema: EMA | None
    data_gen: torch.Generator
    noise_gen: torch.Generator
    fixed_z: Tensor
    amp_dtype: torch.dtype | None = None  # autocast dtype around the models' forward passes (train.amp)
    channels_last: bool = False
    step: int = 0
    elapsed: float = 0.0
    status: str = "running"
    last_metrics: dict[str, Any] = dataclasses.field(default_factory=dict)
    best: dict[str, Any] = dataclasses.field(default_factory=dict)
    refined: dict[str, Any] = dataclasses.field(default_factory=dict)  # eval.refine's final rows (.refined)
    played: tuple[list[float], dict[str, float]] = ([], {})  # this step's (agreed) losses and diagnostics
    entries: dict[str, Any] | None = None  # this step's metrics.jsonl record is due (with these entries)
    health: Any = None  # per-layer gradient norms and warnings at every log (.health.GradientHealth)
    augment: DiffAugment | None = None  # train.augment: D sees T(x) and T(G(z)) (saddlepoint.data.augment)

    @property
    def out(self) -> Path:
        return self.run_dir.path

    # ------------------------------------------------------------------ 1. play
    def batch(self) -> tuple[Tensor, Tensor]:
        """The global batch from the seeded generators, this rank's shard of it (every rank draws the same
        global batch, so the shards are exact and the generators agree)."""
        n = self.cfg.train.batch_size
        real = self.dataset.sample(n, self.data_gen)
        z = torch.randn(n, self.G.z_dim, generator=self.noise_gen)
        real, z = self.world.shard(real, z)
        real, z = real.to(self.device, dtype=z.dtype), z.to(self.device)
        if self.channels_last and real.dim() == 4:
            real = real.contiguous(memory_format=torch.channels_last)
        return real, z

    def closure_for(self, real: Tensor, z: Tensor, aux: dict[str, float]) -> GANClosure:
        """``[loss_G, loss_D]`` on this batch (D(x) and penalties only when loss_D is used; T fixed per batch)."""
        autocast = None if self.amp_dtype is None else functools.partial(
            torch.autocast, device_type=self.device.type, dtype=self.amp_dtype)
        augment = None if self.augment is None else self.augment.for_batch(self.cfg.train.batch_size, self.world.shard)
        return GANClosure(self.G, self.D, self.loss_fn, self.penalties, real, z, aux, autocast,
                          pushforward=self.opt.wants_pushforward, augment=augment)

    def closures(self, aux: dict[str, float]) -> Any:
        """A closure on a fresh batch, or a pair on two independent batches for an optimizer that declares
        ``wants_independent_batches`` (stochastic Hamiltonian descent; the second batch logs nothing)."""
        first = self.closure_for(*self.batch(), aux)
        return (first, self.closure_for(*self.batch(), {})) if self.opt.wants_independent_batches else first

    def game_step(self) -> tuple[list[float], dict[str, float]]:
        """n_critic − 1 discriminator-only steps on fresh batches, then one step of both players."""
        for _ in range(self.cfg.train.n_critic - 1):
            self.opt.step(self.closures({}), players=[1])
            self.after_d_update()
        aux: dict[str, float] = {}
        losses = self.opt.step(self.closures(aux))
        self.after_d_update()
        if self.ema is not None and not self.opt.last_step_skipped:  # a skipped (fp16) step changes nothing
            self.ema.update(self.G)
        return losses, aux

    def after_d_update(self) -> None:
        for penalty in self.penalties:
            penalty.after_step(self.D)

    # ------------------------------------------------------------------ 3. guard
    def check_finite(self, losses: list[float]) -> None:
        scaler = self.opt.scaler
        if scaler is not None and self.opt.last_step_skipped:
            # fp16: inf/NaN met under loss scaling; the step was undone and the scale halved. Only a
            # scale driven down to MIN_LOSS_SCALE means divergence
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

    # ------------------------------------------------------------------ 4. periodic work
    def schedule(self) -> list[tuple[Callable[[int], bool], Callable[[], Any]]]:
        """The one table of periodic work: (due at step, task), run in this order on every rank."""
        c, steps = self.cfg, self.cfg.train.steps
        return [
            (every(c.log.every, last=steps), self.check_and_log),
            (every(c.eval.every, before=steps), self.evaluate_and_log),
            (lambda step: self.entries is not None, self.write_record),
            (every(c.train.sample_every), lambda: self.save_samples(f"step_{self.step:08d}")),
            (self.run_dir.frame_due, lambda: self.run_dir.add_frame(self.generate(512), self.step)),
            (every(c.checkpoint.every), self.save_checkpoint),
        ]

    def check_and_log(self) -> None:  # parameters are the same on every rank: all check, all raise
        self.check_parameters()
        self.entries = {} if self.health is None else self.health.record(self.opt)

    def evaluate_and_log(self) -> None:
        metrics = self.evaluate()
        self.keep_best(metrics)
        self.entries = {**(self.entries or {}), **metrics}

    def write_record(self) -> None:
        self.run_dir.log({**step_record(self, *self.played), **(self.entries or {})})
        self.entries = None

    # ------------------------------------------------------------------ the loop
    def run(self) -> Path:
        """Step until ``train.steps`` (play → agree → guard → periodic work), then :meth:`finish`."""
        start = time.perf_counter() - self.elapsed
        with self.run_dir.session(self.cfg, self.step, self.dataset, self.generate) as progress:
            try:
                with StopSignal() as stop:
                    table = self.schedule()
                    while self.step < self.cfg.train.steps:
                        losses, aux = self.game_step()
                        losses, aux, stop.signalled = self.world.average(losses, aux, stop.signalled)
                        self.step += 1
                        self.elapsed = time.perf_counter() - start
                        self.check_finite(losses)
                        self.played = losses, aux
                        for due, task in table:
                            if due(self.step):
                                task()
                        progress.update(self.step, losses)
                        if stop.signalled:
                            self.interrupt()
                progress.close()
                return self.finish()
            except DivergenceError as exc:
                self.status = "diverged"
                self.run_dir.log({"step": exc.step, "event": "diverged", "player": exc.player, "what": exc.what})
                self.write_summary(error=str(exc))
                raise

    def interrupt(self) -> None:
        self.status = "interrupted"
        self.save_checkpoint()
        self.write_summary()
        raise Interrupted(f"interrupted at step {self.step}; checkpoint saved in {self.out}")

    def finish(self) -> Path:
        """The final checkpoint and summary, then the final evaluation, samples and summary with them."""
        self.status = "completed"
        self.save_checkpoint()
        self.write_summary()
        try:
            metrics, self.refined = self.evaluate(), refined.final_refined(self)  # eval.refine's rows beside G
        except Exception as exc:
            self.write_summary(error=f"final evaluation failed: {exc}")
            if isinstance(exc, UserError):
                raise UserError(f"final evaluation failed: {exc} (the trained model is saved in "
                                f"{self.out / 'checkpoints' / 'last.pt'})") from None
            raise
        if metrics:
            self.run_dir.log({"step": self.step, "time": round(self.elapsed, 4), "final": True, **metrics})
        samples = self.save_samples("final")
        self.keep_best(metrics)
        self.write_summary(samples=samples)
        return samples

    # ------------------------------------------------------------------ evaluation and outputs
    def evaluate(self) -> dict[str, Any]:
        """The metrics of ``eval.samples`` generated samples (:mod:`.evaluation`: every rank calls it)."""
        draw = lambda z: self.generate(len(z), z=z)  # noqa: E731
        self.last_metrics = evaluation.evaluate(self.cfg, self.dataset, self.world, self.device, draw, self.G.z_dim)
        return self.last_metrics

    def keep_best(self, metrics: dict[str, Any]) -> None:
        """Save ``checkpoints/best.pt`` when the primary metric improves."""
        best = evaluation.improved(evaluation.metric_names(self.cfg, self.dataset), metrics, self.best, self.step)
        if best is not None:
            self.best = best
            self.run_dir.save_best(self.state)

    @torch.no_grad()
    def generate(self, n: int, use_ema: bool = True, z: Tensor | None = None) -> Tensor:
        G = self.ema.module if (use_ema and self.ema is not None) else self.G
        return generate(G, eval_noise(n, self.G.z_dim, self.cfg.seed) if z is None else z, self.device)

    def save_samples(self, name: str) -> Path:
        if self.dataset.kind == "points":
            draw = lambda: self.generate(self.cfg.eval.samples)  # noqa: E731
            return self.run_dir.save_samples(name, draw, self.dataset, title(self.step, self.last_metrics))
        return self.run_dir.save_samples(name, lambda: self.generate(len(self.fixed_z), z=self.fixed_z), self.dataset)

    def save_checkpoint(self) -> Path:
        """``checkpoints/last.pt`` (never with non-finite parameters) and the numbered copies."""
        self.check_parameters()
        return self.run_dir.save_checkpoint(self.state, self.step, self.cfg.checkpoint.keep)

    def state(self) -> dict[str, Any]:
        return capture(self)

    def load_state(self, ckpt: dict[str, Any]) -> None:
        restore(self, ckpt)

    def write_summary(self, samples: Path | None = None, error: str | None = None) -> None:
        self.run_dir.write_summary(lambda: summary(self, samples, error))
