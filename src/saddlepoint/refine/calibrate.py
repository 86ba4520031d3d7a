"""Calibrating the discriminator before sampling, and saving the result for reuse.

The samplers need the logit d(x) ≈ log p_data(x) − log p_G(x) of the *sampling* generator (Goodfellow et al.
2014, Prop. 1: D*(x) = p_data / (p_data + p_G)). The discriminator at the end of training lags the generator
(and an EMA generator was never trained against), so two corrections are offered, in this order:

1. **Continued training** (``d_steps`` > 0; DRS, Azadi et al. 2019, §3.2 and Alg. 1): D alone is trained for
   ``d_steps`` Adam steps (β = (0.5, 0.999), learning rate decaying linearly from ``d_lr`` to 0, batches of
   ``d_batch`` real and ``d_batch`` generated samples) on the binary cross-entropy
   E_data[softplus(−d(x))] + E_G[softplus(d(G(z)))], G frozen. Its minimiser over all functions is the log
   density ratio above, whatever loss D was trained with. The decay averages out the batch noise that otherwise
   leaves d with offsets of its own between modes (seen on the 2-D mixtures).
2. **Calibration** on held-out samples (MH-GAN, Turner et al. 2019, §3.3): ``calib_samples`` real and as many
   generated samples, labelled 1 and 0 (balanced, so that a calibrated probability is
   p_data / (p_data + p_G)), fit a monotone map of d:

   * ``platt`` — logistic regression on the logit (Platt 1999): d_cal = a·d + b;
   * ``isotonic`` — isotonic regression of the label on d (Zadrozny & Elkan 2002), piecewise linear between its
     thresholds, probabilities clipped to [ε, 1 − ε] with ε = 1/(2·calib_samples), d_cal = log p − log(1 − p);
   * ``none`` — d unchanged.

Training draws its real and generated batches with ``torch.Generator().manual_seed(calib_seed)``, the
held-out calibration samples with ``calib_seed + 1``. Both results are saved as weights-only ``.pt`` files in
the given directory and reused whenever G's and D's weights and the options they depend on match
(:func:`load_cached`): D's continued training in ``d-<fingerprint>.pt`` (shared by all samplers), the
calibration map with any sampler-specific preparation (the DRS pilot maximum) in ``<sampler>-<fingerprint>.pt``.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import checks
from ..checks import Option
from ..io import atomic_torch_save

if TYPE_CHECKING:
    from .base import Counts

CALIBRATIONS = ("none", "platt", "isotonic")
#: the options that decide the calibrated discriminator (part of every sampler's setup fingerprint)
CALIBRATION_KEYS = ("d_steps", "d_lr", "d_batch", "calibration", "calib_samples", "calib_seed")
#: the options that decide the continued training of D
FINETUNE_KEYS = ("d_steps", "d_lr", "d_batch", "calib_seed")
FORMAT = "saddlepoint-refine"
CHUNK = 1000  # rows per network call when scoring calibration samples


def calibration_options(d_steps: int, calibration: str, kinds: tuple[str, ...] = CALIBRATIONS) -> dict[str, Option]:
    """The calibration options, with a sampler's own defaults for ``d_steps`` and ``calibration``."""
    return {
        "d_steps": Option(d_steps, lambda k, v: checks.integer(k, v, low=0), "steps of continued D training"),
        "d_lr": Option(1e-3, checks.positive, "initial Adam learning rate of the continued D training"),
        "d_batch": Option(256, checks.positive_int, "real and generated samples per continued-training step"),
        "calibration": Option(calibration, lambda k, v: checks.choice(k, v, kinds), "map of d: " + "|".join(kinds)),
        "calib_samples": Option(5000, checks.positive_int, "held-out real (and generated) samples to calibrate"),
        "calib_seed": Option(0, checks.integer, "seed of the continued training and calibration samples"),
    }


# ------------------------------------------------------------------------------------------ calibration maps
def interp(x: Tensor, xp: Tensor, fp: Tensor) -> Tensor:
    """Piecewise-linear interpolation of (xp, fp) at x (xp increasing), constant beyond the ends."""
    if xp.numel() == 1:
        return fp.expand_as(x).clone()
    x = x.clamp(xp[0], xp[-1])
    i = torch.searchsorted(xp, x.contiguous(), right=True).clamp(1, xp.numel() - 1)
    x0, x1, f0, f1 = xp[i - 1], xp[i], fp[i - 1], fp[i]
    w = (x - x0) / (x1 - x0).clamp_min(torch.finfo(x.dtype).tiny)
    return f0 + w * (f1 - f0)


class Calibration:
    """A monotone map of the logit: ``none``, ``platt`` (a·d + b) or ``isotonic`` (see the module docstring)."""

    def __init__(self, kind: str = "none", params: Mapping[str, Tensor] | None = None) -> None:
        self.kind = checks.choice("refine.calibration", kind, CALIBRATIONS)
        self.params = {k: torch.as_tensor(v, dtype=torch.float64) for k, v in (params or {}).items()}

    @classmethod
    def fit(cls, kind: str, d_real: Tensor, d_fake: Tensor) -> Calibration:
        """Fit ``kind`` to the logits of real (label 1) and generated (label 0) held-out samples."""
        if kind == "none":
            return cls()
        d = torch.cat([d_real, d_fake]).to(torch.float64).cpu().numpy()
        y = np.concatenate([np.ones(len(d_real)), np.zeros(len(d_fake))])
        if kind == "platt":
            from sklearn.linear_model import LogisticRegression

            clf = LogisticRegression(C=1e6, max_iter=1000).fit(d[:, None], y)
            return cls("platt", {"a": torch.tensor(float(clf.coef_[0, 0])),
                                 "b": torch.tensor(float(clf.intercept_[0]))})
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip").fit(d, y)
        eps = 0.5 / max(len(d_real), len(d_fake))
        return cls("isotonic", {"x": torch.from_numpy(np.asarray(iso.X_thresholds_, dtype=np.float64)),
                                "p": torch.from_numpy(np.asarray(iso.y_thresholds_, dtype=np.float64)),
                                "eps": torch.tensor(eps)})

    def __call__(self, d: Tensor) -> Tensor:
        """The calibrated logit (``platt`` keeps d's dtype and gradient; ``isotonic`` returns float64)."""
        if self.kind == "platt":
            return d * float(self.params["a"]) + float(self.params["b"])
        if self.kind == "isotonic":
            xp, fp, eps = self.params["x"].to(d.device), self.params["p"].to(d.device), float(self.params["eps"])
            p = interp(d.detach().to(torch.float64), xp, fp).clamp(eps, 1.0 - eps)
            return torch.log(p) - torch.log1p(-p)
        return d

    def state_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "params": dict(self.params)}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Calibration:
        return cls(state["kind"], state.get("params") or {})


class RefinedDiscriminator(nn.Module):
    """x → calibrated logit: a (possibly fine-tuned) discriminator followed by a :class:`Calibration`."""

    def __init__(self, D: nn.Module, calibration: Calibration) -> None:
        super().__init__()
        self.D = D
        self.calibration = calibration

    def forward(self, x: Tensor) -> Tensor:
        return self.calibration(self.D(x).reshape(-1))


# -------------------------------------------------------------------------------------------- preparation
def finetune(G: nn.Module, D: nn.Module, real: Callable[[int, torch.Generator], Tensor],
             latent: Callable[[int, torch.Generator], Tensor], *, steps: int, lr: float, batch: int, seed: int,
             counts: Counts) -> nn.Module:
    """A copy of D trained ``steps`` Adam steps on the cross-entropy against the frozen G (module docstring)."""
    D2 = copy.deepcopy(D)
    D2.train()
    params = [p for p in D2.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr, betas=(0.5, 0.999))
    generator = torch.Generator().manual_seed(seed)
    device = next(iter(params)).device if params else torch.device("cpu")
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = lr * (1.0 - step / steps)  # linear decay to 0: the last steps average out batch noise
        x_real = real(batch, generator).to(device)
        with torch.no_grad():
            x_fake = G(latent(batch, generator))
        loss = F.softplus(-D2(x_real).reshape(-1)).mean() + F.softplus(D2(x_fake).reshape(-1)).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        counts.g += batch
        counts.d += 2 * batch
    D2.eval()
    return D2


@torch.no_grad()
def held_out_logits(G: nn.Module, D: nn.Module, real: Callable[[int, torch.Generator], Tensor],
                    latent: Callable[[int, torch.Generator], Tensor], m: int, seed: int,
                    counts: Counts) -> tuple[Tensor, Tensor]:
    """Logits of ``m`` real and ``m`` generated samples drawn with ``Generator().manual_seed(seed)``."""
    generator = torch.Generator().manual_seed(seed)
    device = next(iter(D.parameters()), torch.empty(0)).device
    d_real, d_fake = [], []
    for start in range(0, m, CHUNK):
        b = min(CHUNK, m - start)
        d_real.append(D(real(b, generator).to(device)).reshape(-1).to(torch.float64).cpu())
        d_fake.append(D(G(latent(b, generator))).reshape(-1).to(torch.float64).cpu())
        counts.g += b
        counts.d += 2 * b
    return torch.cat(d_real), torch.cat(d_fake)


def tuned_discriminator(G: nn.Module, D: nn.Module, options: Mapping[str, Any], *,
                        real: Callable[[int, torch.Generator], Tensor] | None,
                        latent: Callable[[int, torch.Generator], Tensor], counts: Counts,
                        directory: Path | None) -> tuple[nn.Module, bool]:
    """D after ``d_steps`` of continued training (D itself when 0), loaded from ``directory`` when saved there
    for the same weights and training options (shared by every sampler); returns (D, reused)."""
    steps = options["d_steps"]
    if steps == 0:
        return D, False
    if real is None:
        raise checks.fail("refine.d_steps", "0 when no real samples are given", steps)
    train_options = {k: options[k] for k in FINETUNE_KEYS}
    key = fingerprint(G, D, sampler="d", options=train_options)
    state = load_cached(directory, "d", key)
    tuned = copy.deepcopy(D)
    if state is not None:
        tuned.load_state_dict(state["D"])
        tuned.eval()
        return tuned, True
    tuned = finetune(G, D, real, latent, steps=steps, lr=options["d_lr"], batch=options["d_batch"],
                     seed=options["calib_seed"], counts=counts)
    save_cached(directory, "d", key, {"format": FORMAT, "D": tuned.state_dict(), "options": train_options})
    return tuned, False


def fit_calibration(G: nn.Module, D: nn.Module, options: Mapping[str, Any], *,
                    real: Callable[[int, torch.Generator], Tensor] | None,
                    latent: Callable[[int, torch.Generator], Tensor], counts: Counts) -> Calibration:
    """The ``calibration`` map of D's logit fitted on held-out samples (G and D in eval mode)."""
    kind = options["calibration"]
    if kind == "none":
        return Calibration()
    if real is None:
        raise checks.fail("refine.calibration", "none when no real samples are given", kind)
    d_real, d_fake = held_out_logits(G, D, real, latent, options["calib_samples"], options["calib_seed"] + 1, counts)
    return Calibration.fit(kind, d_real, d_fake)


# ------------------------------------------------------------------------------------------------ the cache
def fingerprint(*modules: nn.Module, sampler: str, options: Mapping[str, Any]) -> str:
    """SHA-256 of the modules' weights (names, dtypes, shapes, bytes), the sampler name and the options."""
    h = hashlib.sha256()
    h.update(json.dumps({"sampler": sampler, "options": dict(options)}, sort_keys=True, default=str).encode())
    for module in modules:
        for name, t in module.state_dict().items():
            t = t.detach().cpu().contiguous().reshape(-1)
            h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
            h.update(t.view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def cache_file(directory: Path | None, sampler: str, key: str) -> Path | None:
    """``directory/<sampler>-<first 16 hex digits of key>.pt`` (None without a directory)."""
    return None if directory is None else Path(directory) / f"{sampler}-{key[:16]}.pt"


def load_cached(directory: Path | None, sampler: str, key: str) -> dict[str, Any] | None:
    """The saved preparation for ``key``, or None (no directory, no file, another key, an unreadable file)."""
    path = cache_file(directory, sampler, key)
    if path is None or not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # a damaged or foreign file is recomputed and replaced, never trusted
        return None
    if not isinstance(state, dict) or state.get("format") != FORMAT or state.get("fingerprint") != key:
        return None
    return state


def save_cached(directory: Path | None, sampler: str, key: str, state: dict[str, Any]) -> Path | None:
    """Write ``state`` (atomically) for later :func:`load_cached`; returns the file (None without a directory)."""
    path = cache_file(directory, sampler, key)
    if path is None:
        return None
    state["fingerprint"] = key
    state["sampler"] = sampler
    atomic_torch_save(state, path)
    return path
