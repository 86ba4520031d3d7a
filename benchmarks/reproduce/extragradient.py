"""Reproduction (issue 16): Gidel, Berard, Vignoud, Vincent & Lacoste-Julien, "A Variational Inequality Perspective
on Generative Adversarial Networks", ICLR 2019.

Claims tested:

(a) Bilinear games. Simultaneous gradient descent (GD) does not converge on min_x max_y xᵀAy + bᵀx + cᵀy (it spirals
    out, or cycles under weight clipping), alternating GD cycles, uniform averaging of GD's iterates with decreasing
    steps converges (slowly), and extragradient (EG) and extrapolation from the past (PastEG, one gradient per step)
    converge in the last iterate; extrapolation from the past needs a smaller step than extragradient.
    1. Their Figure 1 toy (the protocol of the authors' notebook ``bilinear_wgan.ipynb`` in
       github.com/GauthierGidel/Variational-Inequality-GAN): f = θφ (a WGAN with D(x) = φx between N(0, 1) and
       z + θ), start (θ, φ) = (2, 0.5), D's weight φ clipped to [−1, 1] after every step, 100 iterations:
       SimSGD η = 0.1, AltSGD η = 0.1, AvgSGD η_t = 2/√(t+1) (uniform average of the iterates), EG ("SEM") η = 0.6,
       PastEG ("OneSEM") η = 0.5. Ours: saddlepoint's ``sgd`` (AltSGD: one player per
       ``step(..., players=[i])``, with the clip in between, as the notebook clips φ between its half-steps),
       ``extragradient`` and ``past-extragradient`` with ``base: sgd``; the decreasing step of AvgSGD is a
       1/√(t+1) factor on the losses (lr 2). The paper's quantity: distance to the optimum after 100 iterations
       of the notebook's own recursions (re-implemented here from its equations; its plot prints no numbers).
    2. A d = 100 bilinear game (their §7.1 "bilinear saddle point (stochastic)", set up as we read it:
       f = (1/n) Σ_i θᵀA_iφ + b_iᵀθ + c_iᵀφ with A_i = e_i e_iᵀ, b_i, c_i ~ N(0, 1/d), n = d = 100; so the full
       game has A = I/n), deterministic (full batch) and stochastic (one sample i per gradient, fresh samples for
       the extrapolation and the update, as in their Algorithm 2), each with and without uniform averaging of the
       iterates, at an equal number of gradient computations, plus GD with decreasing steps η/√t (their AvgSGD).
       Steps: η·L = 0.5 with L = ‖A‖ = 1/n (full batch);
       η = 0.1 (stochastic, per-sample L = 1; in a NumPy pre-check 0.5 made every method blow up and 0.2 left all far
       above their start within 40,000 gradients: with
       independent samples the extrapolation almost never touches the coordinate the update moves, so stochastic EG
       is nearly GD here) for EG, PastEG and GD. Start: the equilibrium plus N(0, I) in each player. Quantity:
       distance of the last iterate and of the averaged iterate to the equilibrium, relative to the start.
    3. Step-size check on the unit bilinear game x·y (L = 1): the largest ηL at which each method's last iterate
       converges, measured by bisection on ηL with saddlepoint's optimizers, and predicted from the
       spectral radius of each method's linear iteration (measured: the distance after 600 steps is below that
       after 300).

(b) A WGAN-GP comparison, Extra-Adam vs Adam, scaled down for a CPU: their Table (CIFAR-10, DCGAN and ResNet
    generators, Inception Score; the project references quote: WGAN DCGAN ExtraAdam 6.38 vs simultaneous Adam 6.05
    vs alternating Adam with 5 D steps 5.45) becomes the ring of 8 Gaussians (PacGAN protocol, ``configs/ring.yaml``
    model: MLP z 2, depth 3, width 128, batch 256, EMA 0.99) trained with WGAN-GP (λ = 10) and Adam β = (0.5, 0.9)
    (their WGAN-GP settings), lr 5e-4 for both players (their ExtraAdam WGAN-GP lr), seeds 0-2: simultaneous Adam
    and Extra-Adam (``extragradient`` with ``base: adam``) at an equal number of gradient evaluations (Extra-Adam
    takes half the steps), and simultaneous Adam at Extra-Adam's number of steps. Metric: PacGAN mode statistics of
    2,500 samples (``saddlepoint.metrics.mode_stats``, 3σ) and the same at 10σ (a coarse reading, since WGAN-GP
    rarely lands within 3σ = 0.03 of a mode in a few thousand steps), plus two continuous readings for runs that
    cover no mode: the median distance of a sample to its nearest mode and the median radius (the ring's is 1).

    python benchmarks/reproduce/extragradient.py           # full: about 10 minutes (658 s measured, loaded machine)
    python benchmarks/reproduce/extragradient.py --quick   # about a minute: sanity checks only, exit 1 if one fails

Full mode writes ``benchmarks/results/reproduce/extragradient.json`` and ``docs/img/reproduce/extragradient.png``;
quick mode writes ``benchmarks/results/reproduce/extragradient-quick.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import saddlepoint  # noqa: E402
from saddlepoint.games import BilinearGame  # noqa: E402
from saddlepoint.metrics.modes import mode_stats  # noqa: E402
from saddlepoint.optim import build  # noqa: E402

torch.set_num_threads(1)
DTYPE = torch.float64
#: the project references (REFERENCES.md): Gidel et al. 2019, CIFAR-10 DCGAN WGAN, Inception Score
PAPER_IS = {"ExtraAdam": 6.38, "simultaneous Adam": 6.05, "alternating Adam (5 D steps)": 5.45}


# ============================================================================ (a1) the Figure 1 toy
def toy_ours(method: str, steps: int = 100) -> dict:
    game = BilinearGame(A=torch.ones(1, 1), b=torch.zeros(1), c=torch.zeros(1), x0=torch.tensor([2.0]),
                        y0=torch.tensor([0.5]))
    # AltSGD: the notebook clips φ between the two half-steps (φ first, then θ with the clipped φ), so the two
    # players step one at a time (``step(..., players=[i])``) with the clip in between
    lr, name, hp = {"sim": (0.1, "sgd", {}), "alt": (0.1, "sgd", {}),
                    "avg": (2.0, "sgd", {}), "eg": (0.6, "extragradient", {"base": "sgd"}),
                    "past": (0.5, "past-extragradient", {"base": "sgd"})}[method]
    opt = build(name, game.players, lr=lr, **hp)
    avg = np.array([2.0, 0.5])
    dists = [math.hypot(2.0, 0.5)]
    for t in range(steps):
        scale = 1.0 / math.sqrt(t + 1) if method == "avg" else 1.0
        if method == "alt":
            opt.step(game.losses, players=[1])
            with torch.no_grad():
                game.y.clamp_(-1.0, 1.0)
            opt.step(game.losses, players=[0])
        else:
            opt.step(lambda s=scale: [s * loss for loss in game.losses()])
        with torch.no_grad():
            game.y.clamp_(-1.0, 1.0)
        point = np.array([float(game.x.detach()), float(game.y.detach())])
        avg = avg * (t + 1) / (t + 2) + point / (t + 2)
        dists.append(float(np.hypot(*(avg if method == "avg" else point))))
    return {"dist": dists[-1], "curve": dists}


def toy_notebook(method: str, steps: int = 100) -> float:
    """The notebook's recursions (∇ of θφ: g_θ = φ, g_φ = θ; φ clipped), written from its equations."""
    x, y = 2.0, 0.5
    clip = lambda v: min(1.0, max(-1.0, v))  # noqa: E731
    if method == "sim":
        for _ in range(steps):
            x, y = x - 0.1 * y, clip(y + 0.1 * x)
    elif method == "alt":
        for _ in range(steps):
            y = clip(y + 0.1 * x)
            x = x - 0.1 * y
    elif method == "avg":
        ax, ay = x, y
        for i in range(steps):
            x, y = x - 2.0 / math.sqrt(i + 1) * y, clip(y + 2.0 / math.sqrt(i + 1) * x)
            ax, ay = ax * (i + 1) / (i + 2) + x / (i + 2), ay * (i + 1) / (i + 2) + y / (i + 2)
        return math.hypot(ax, ay)
    elif method == "eg":
        for _ in range(steps):
            xh, yh = x - 0.6 * y, y + 0.6 * x
            x, y = x - 0.6 * yh, clip(y + 0.6 * xh)
    elif method == "past":
        xh, yh = x, y
        for _ in range(steps):
            xh_prev = xh
            xh, yh = x - 0.5 * yh, clip(y + 0.5 * xh_prev)
            x, y = x - 0.5 * yh, clip(y + 0.5 * xh)
    return math.hypot(x, y)


# ============================================================================ (a2) the d = 100 game
class FiniteSumBilinear:
    """f = (1/n) Σ_i θᵀA_iφ + b_iᵀθ + c_iᵀφ with A_i = e_i e_iᵀ (n = d); losses (f, −f) of the full sum or of one
    sample drawn inside the closure from a NumPy generator, so every closure call (extrapolation and update) sees
    a fresh sample (the framework restores torch's RNG between the calls of one step, not NumPy's)."""

    def __init__(self, d: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.d = d
        self.b = torch.randn(d, d, generator=g, dtype=DTYPE) / math.sqrt(d)  # row i: b_i
        self.c = torch.randn(d, d, generator=g, dtype=DTYPE) / math.sqrt(d)
        # full game: ∇θ = φ/n + b̄ = 0, ∇φ = θ/n + c̄ = 0
        self.phi_star = -d * self.b.mean(0)
        self.theta_star = -d * self.c.mean(0)
        self.theta = torch.nn.Parameter(self.theta_star + torch.randn(d, generator=g, dtype=DTYPE))
        self.phi = torch.nn.Parameter(self.phi_star + torch.randn(d, generator=g, dtype=DTYPE))
        self.players = [[self.theta], [self.phi]]
        self.rng = np.random.default_rng(seed)
        self.stochastic = False

    def losses(self):
        if self.stochastic:
            i = int(self.rng.integers(self.d))
            f = self.theta[i] * self.phi[i] + self.b[i] @ self.theta + self.c[i] @ self.phi
        else:
            f = self.theta @ self.phi / self.d + self.b.mean(0) @ self.theta + self.c.mean(0) @ self.phi
        return [f, -f]

    def dist(self, theta, phi) -> float:
        return float(torch.sqrt(((theta - self.theta_star) ** 2).sum() + ((phi - self.phi_star) ** 2).sum()))


def finite_sum_run(method: str, stochastic: bool, grads: int, lr: float, seed: int = 0, points: int = 60) -> dict:
    game = FiniteSumBilinear(100, seed)
    game.stochastic = stochastic
    name, per_step = {"gd": ("sgd", 1), "gd-decay": ("sgd", 1), "eg": ("extragradient", 2),
                      "past": ("past-extragradient", 1)}[method]
    hp = {} if name == "sgd" else {"base": "sgd"}
    opt = build(name, game.players, lr=lr, **hp)
    steps = grads // per_step
    d0 = game.dist(game.theta.detach(), game.phi.detach())
    avg_t, avg_p = game.theta.detach().clone(), game.phi.detach().clone()
    every = max(1, steps // points)
    curve = {"grads": [0], "last": [1.0], "avg": [1.0]}
    for t in range(1, steps + 1):
        if method == "gd-decay":  # η_t = η/√t, as the paper's AvgSGD: a 1/√t factor on the losses
            scale = 1.0 / math.sqrt(t)
            opt.step(lambda s=scale: [s * loss for loss in game.losses()])
        else:
            opt.step(game.losses)
        avg_t += (game.theta.detach() - avg_t) / (t + 1)
        avg_p += (game.phi.detach() - avg_p) / (t + 1)
        if t % every == 0 or t == steps:
            last = game.dist(game.theta.detach(), game.phi.detach()) / d0
            curve["grads"].append(t * per_step)
            curve["last"].append(last if math.isfinite(last) else float("inf"))
            curve["avg"].append(game.dist(avg_t, avg_p) / d0)
    assert opt.counts["grad"] == 2 * steps * per_step, opt.counts  # two players
    return {"method": method, "stochastic": stochastic, "lr": lr, "steps": steps, "grads": steps * per_step,
            "rel_dist_last": curve["last"][-1], "rel_dist_avg": curve["avg"][-1], "curve": curve}


# ============================================================================ (a3) step sizes
def spectral_radius(method: str, h: float) -> float:
    """Spectral radius of the method's iteration on the unit bilinear game x·y (state (x, y[, past])), step h."""
    M = np.array([[0.0, 1.0], [-1.0, 0.0]])  # field ξ = (∂x f, −∂y f) = M z for f = x y
    eye = np.eye(2)
    if method == "gd":
        T = eye - h * M
    elif method == "eg":
        T = eye - h * M @ (eye - h * M)
    else:  # past: z_{t+1} = z_t − h M (z_t − h M z_{t−1/2}) ... in OGDA form on the half points w:
        # w_{t+1} = w_t − 2h M w_t + h M w_{t−1}  (PastEG's extrapolated points are OGDA's iterates)
        T = np.block([[eye - 2 * h * M, h * M], [eye, np.zeros((2, 2))]])
    return float(max(abs(np.linalg.eigvals(T))))


def measured_converges(method: str, h: float, steps: int = 600) -> bool:
    """Whether saddlepoint's optimizer contracts on x·y at step h: the distance to 0 after ``steps`` steps is below
    the distance after ``steps // 2`` (≈ ρ^(steps/2) for the iteration's spectral radius ρ)."""
    game = BilinearGame(A=torch.ones(1, 1), b=torch.zeros(1), c=torch.zeros(1), x0=torch.tensor([1.0]),
                        y0=torch.tensor([1.0]))
    name = {"gd": "sgd", "eg": "extragradient", "past": "past-extragradient"}[method]
    opt = build(name, game.players, lr=h, **({} if name == "sgd" else {"base": "sgd"}))
    half = None
    for t in range(1, steps + 1):
        opt.step(game.losses)
        if t == steps // 2:
            half = game.distance()
    d = game.distance()
    return math.isfinite(d) and d < half


def threshold(pred, lo: float = 1e-3, hi: float = 3.0, iters: int = 50) -> float:
    """Largest h in (lo, hi) with pred(h) True, by bisection (pred True below, False above)."""
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if pred(mid) else (lo, mid)
    return lo


# ============================================================================ (b) WGAN-GP on the ring
def gan_run(label: str, optim: dict, steps: int, seed: int, work: Path) -> dict:
    from saddlepoint.data import ring_centers

    cfg = {
        "seed": seed,
        "data": {"name": "ring"},
        "model": {"name": "mlp", "z_dim": 2, "depth": 3, "width": 128, "activation": "relu"},
        "loss": {"name": "wgan", "penalty": ["gp"], "gp_weight": 10.0},
        "optim": optim,
        "train": {"steps": steps, "batch_size": 256, "ema": 0.99},
        "eval": {"metrics": ["modes"], "samples": 2500},
        "log": {"every": max(1, steps // 4)},
    }
    t0 = time.perf_counter()
    run_dir = saddlepoint.train(cfg, out=work / f"{label}-s{seed}")
    seconds = time.perf_counter() - t0
    x = saddlepoint.sample(run_dir, n=2500, seed=1234)
    std = 0.01  # the ring's σ (PacGAN protocol)
    s3 = mode_stats(x, ring_centers(), std, threshold=3.0)
    s10 = mode_stats(x, ring_centers(), std, threshold=10.0)
    # continuous readings for runs that cover no mode: the median distance of a sample to its nearest mode and the
    # median radius of the samples (the ring has radius 1)
    nearest = torch.cdist(x.double(), ring_centers().double()).min(dim=1).values
    radius = x.double().norm(dim=1)
    return {"nearest_median": float(nearest.median()), "radius_median": float(radius.median()),
            "label": label, "seed": seed, "steps": steps, "optim": optim, "seconds": round(seconds, 1),
            "modes": s3["modes"], "hq": s3["hq"], "kl": s3["kl"],
            "modes10": s10["modes"], "hq10": s10["hq"], "kl10": s10["kl"],
            "finite": bool(torch.isfinite(x).all())}


def mean_se(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values) / math.sqrt(len(values)):.2f}"


# ============================================================================ main
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="about a minute: small budgets and sanity checks")
    args = ap.parse_args()
    quick = args.quick
    t_start = time.perf_counter()
    checks: list[tuple[str, bool, str]] = []

    # ---------------------------------------------------------------- (a1)
    toy = {}
    for m in ("sim", "alt", "avg", "eg", "past"):
        ours = toy_ours(m)
        toy[m] = {"ours": ours["dist"], "notebook": toy_notebook(m), "curve": ours["curve"]}
    names = {"sim": "SimSGD η=0.1", "alt": "AltSGD η=0.1", "avg": "AvgSGD η=2/√t (average)",
             "eg": "extragradient η=0.6", "past": "extrapolation from the past η=0.5"}
    print("\n(a1) Figure 1 toy: f = θφ, start (2, 0.5), φ clipped to [−1, 1], 100 iterations; distance to (0, 0)")
    print(f"{'method':36s} {'ours':>9s} {'notebook':>9s}")
    for m, r in toy.items():
        print(f"{names[m]:36s} {r['ours']:9.4f} {r['notebook']:9.4f}")
    for m in ("sim", "alt", "avg", "eg"):
        checks.append((f"toy {m}: ours equals the notebook's recursion",
                       abs(toy[m]["ours"] - toy[m]["notebook"]) < 1e-9,
                       f"{toy[m]['ours']:.6f} vs {toy[m]['notebook']:.6f}"))
    checks.append(("toy: EG and PastEG converge (< 0.05), SimSGD and AltSGD do not (> 0.5)",
                   max(toy["eg"]["ours"], toy["past"]["ours"]) < 0.05
                   and min(toy["sim"]["ours"], toy["alt"]["ours"]) > 0.5,
                   ", ".join(f"{m} {toy[m]['ours']:.3f}" for m in toy)))

    # ---------------------------------------------------------------- (a2)
    budget_det, budget_sto = (600, 1500) if quick else (4000, 40000)
    fs = {}
    for stochastic, budget, lr in ((False, budget_det, 50.0), (True, budget_sto, 0.1)):
        for m in ("gd", "gd-decay", "eg", "past"):
            key = f"{'stochastic' if stochastic else 'deterministic'}/{m}"
            fs[key] = finite_sum_run(m, stochastic, budget, lr)
    print("\n(a2) d = n = 100 bilinear game; distance to the equilibrium ÷ at the start, equal gradient budgets")
    print(f"{'setting/method':26s} {'η':>6s} {'grads':>7s} {'last iterate':>13s} {'uniform average':>16s}")
    for key, r in fs.items():
        print(f"{key:26s} {r['lr']:6.2f} {r['grads']:7d} {r['rel_dist_last']:13.3e} {r['rel_dist_avg']:16.3e}")
    det = {m: fs[f"deterministic/{m}"] for m in ("gd", "gd-decay", "eg", "past")}
    sto = {m: fs[f"stochastic/{m}"] for m in ("gd", "gd-decay", "eg", "past")}
    checks.append(("deterministic: GD's last iterate diverges, EG's and PastEG's converge (< 1e-3)",
                   det["gd"]["rel_dist_last"] > 1
                   and max(det["eg"]["rel_dist_last"], det["past"]["rel_dist_last"]) < 1e-3,
                   f"GD {det['gd']['rel_dist_last']:.2e}, EG {det['eg']['rel_dist_last']:.2e}, "
                   f"PastEG {det['past']['rel_dist_last']:.2e}"))
    checks.append(("averaging helps GD: deterministic, with η/√t steps its average approaches the equilibrium "
                   "(< 0.5 of the start) and beats its last iterate; stochastic, constant step: average < last",
                   det["gd-decay"]["rel_dist_avg"] < 0.5 < det["gd-decay"]["rel_dist_last"]
                   and sto["gd"]["rel_dist_avg"] < sto["gd"]["rel_dist_last"],
                   f"det avg {det['gd-decay']['rel_dist_avg']:.2e} (last {det['gd-decay']['rel_dist_last']:.2e}); "
                   f"sto avg {sto['gd']['rel_dist_avg']:.2e} (last {sto['gd']['rel_dist_last']:.2e})"))
    checks.append(("stochastic: EG's and PastEG's averaged iterates end closer than GD's last iterate",
                   max(sto["eg"]["rel_dist_avg"], sto["past"]["rel_dist_avg"]) < sto["gd"]["rel_dist_last"],
                   f"EG avg {sto['eg']['rel_dist_avg']:.2e}, PastEG avg {sto['past']['rel_dist_avg']:.2e}, "
                   f"GD last {sto['gd']['rel_dist_last']:.2e}"))

    # ---------------------------------------------------------------- (a3)
    iters = 12 if quick else 30
    steps_thr = {}
    for m in ("eg", "past"):
        steps_thr[m] = {
            "predicted": threshold(lambda h, m=m: spectral_radius(m, h) < 1.0, iters=iters),
            "measured": threshold(lambda h, m=m: measured_converges(m, h), iters=iters),
        }
    gd_rho = spectral_radius("gd", 0.01)
    print("\n(a3) largest step ηL with last-iterate convergence on the unit bilinear game x·y")
    print(f"{'method':28s} {'predicted (ρ < 1)':>18s} {'measured (600 steps)':>21s}")
    for m, r in steps_thr.items():
        print(f"{names[m].split(' η')[0]:28s} {r['predicted']:18.3f} {r['measured']:21.3f}")
    print(f"simultaneous GD: ρ = √(1 + η²L²) > 1 for every η (η = 0.01: ρ − 1 = {gd_rho - 1:.1e})")
    checks.append(("step sizes: PastEG's largest convergent step is below EG's (measured and predicted)",
                   steps_thr["past"]["measured"] < steps_thr["eg"]["measured"]
                   and steps_thr["past"]["predicted"] < steps_thr["eg"]["predicted"],
                   f"PastEG {steps_thr['past']['measured']:.3f} vs EG {steps_thr['eg']['measured']:.3f}"))
    checks.append(("step sizes: measured thresholds agree with the spectral radius (±0.02)",
                   all(abs(r["measured"] - r["predicted"]) < 0.02 for r in steps_thr.values()),
                   "; ".join(f"{m} {r['measured']:.3f}/{r['predicted']:.3f}" for m, r in steps_thr.items())))

    # ---------------------------------------------------------------- (b)
    if quick:
        seeds, budget = [0], 100
    else:
        seeds, budget = [0, 1, 2], 2000
    base = {"beta1": 0.5, "beta2": 0.9, "lr": 5e-4}
    variants = [
        ("Adam (simultaneous), equal gradients", {"name": "adam", "scheme": "simultaneous", **base}, budget),
        ("Extra-Adam", {"name": "extragradient", "base": "adam", **base}, budget // 2),
        ("Adam (simultaneous), equal steps", {"name": "adam", "scheme": "simultaneous", **base}, budget // 2),
    ]
    gan: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="repro-eg-") as tmp:
        for seed in seeds:
            for label, optim, steps in variants:
                if quick and label.endswith("equal steps"):
                    continue
                gan.append(gan_run(label.split(",")[0].replace(" ", "_").replace("(", "").replace(")", "")
                                   + f"-{steps}", optim, steps, seed, Path(tmp)) | {"variant": label})
    print(f"\n(b) WGAN-GP (λ 10) on the ring of 8 Gaussians, MLP z 2/depth 3/width 128, batch 256, EMA 0.99, "
          f"β (0.5, 0.9), lr 5e-4; seeds {seeds}; 2,500 samples")
    print(f"{'variant':40s} {'steps':>6s} {'grad evals/player':>18s} {'modes (3σ)':>12s} {'hq (3σ)':>14s} "
          f"{'KL (3σ)':>12s} {'modes (10σ)':>12s} {'hq (10σ)':>14s} {'median dist to mode':>20s} "
          f"{'median radius':>14s} {'s/run':>6s}")
    summary = {}
    for label, optim, steps in variants:
        rs = [r for r in gan if r["variant"] == label]
        if not rs:
            continue
        per = 2 if optim["name"] == "extragradient" else 1
        summary[label] = {k: [r[k] for r in rs] for k in ("modes", "hq", "kl", "modes10", "hq10", "nearest_median",
                                                          "radius_median", "seconds")}
        print(f"{label:40s} {steps:6d} {steps * per:18d} {mean_se(summary[label]['modes']):>12s} "
              f"{mean_se([100 * h for h in summary[label]['hq']]):>13s}% {mean_se(summary[label]['kl']):>12s} "
              f"{mean_se(summary[label]['modes10']):>12s} {mean_se([100 * h for h in summary[label]['hq10']]):>13s}% "
              f"{mean_se(summary[label]['nearest_median']):>20s} {mean_se(summary[label]['radius_median']):>14s} "
              f"{statistics.median(summary[label]['seconds']):6.0f}")
    print("paper (CIFAR-10, DCGAN WGAN, Inception Score): " + ", ".join(f"{k} {v}" for k, v in PAPER_IS.items()))
    checks.append(("GAN runs finished with finite samples", all(r["finite"] for r in gan), f"{len(gan)} runs"))

    print("\nsanity checks:")
    ok = True
    for name, passed, detail in checks:
        ok &= passed
        print(f"  {'PASS' if passed else 'FAIL'}  {name}: {detail}")

    out_dir = ROOT / "benchmarks" / "results" / "reproduce"
    out_dir.mkdir(parents=True, exist_ok=True)
    result = {
        "paper": "Gidel, Berard, Vignoud, Vincent, Lacoste-Julien. A Variational Inequality Perspective on "
                 "Generative Adversarial Networks. ICLR 2019",
        "protocol": "toy: bilinear_wgan.ipynb of github.com/GauthierGidel/Variational-Inequality-GAN; "
                    "d=100 game: their section 7.1 as read here; GAN: CPU-scaled analogue on the ring",
        "quick": quick,
        "machine": {"python": platform.python_version(), "torch": torch.__version__, "threads": 1},
        "seconds": round(time.perf_counter() - t_start, 1),
        "toy": toy, "finite_sum": fs, "step_sizes": steps_thr, "gan": gan, "gan_summary": summary,
        "paper_inception_scores": PAPER_IS,
        "checks": [{"name": n, "passed": p, "detail": d} for n, p, d in checks],
    }
    path = out_dir / ("extragradient-quick.json" if quick else "extragradient.json")
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"\nwrote {path.relative_to(ROOT)} ({result['seconds']} s)")
    if not quick:
        plot(toy, fs, names, ROOT / "docs" / "img" / "reproduce" / "extragradient.png")
    print("ALL PASS" if ok else "SOME CHECKS FAILED")
    return 0 if ok else 1


def plot(toy: dict, fs: dict, names: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.3))
    for m, r in toy.items():
        axes[0].plot(r["curve"], label=names[m])
    axes[0].set_title("Figure-1 toy f = θφ (φ clipped): distance to optimum")
    axes[0].set_xlabel("iteration")
    axes[0].set_ylim(-0.05, 2.6)
    axes[0].legend(fontsize=7)
    for ax, setting in zip(axes[1:], ("deterministic", "stochastic")):
        for i, m in enumerate(("gd", "gd-decay", "eg", "past")):
            r = fs[f"{setting}/{m}"]
            label = {"gd": "GD", "gd-decay": "GD η/√t", "eg": "extragradient", "past": "extrap. from the past"}[m]
            color = f"C{i}"
            ax.semilogy(r["curve"]["grads"], r["curve"]["last"], color=color, label=f"{label} (last)")
            ax.semilogy(r["curve"]["grads"], r["curve"]["avg"], color=color, ls="--", label=f"{label} (average)")
        ax.set_title(f"d = 100 bilinear, {setting}: distance ÷ start")
        ax.set_xlabel("gradient computations")
        ax.set_ylim(1e-8, 1e3)
        ax.legend(fontsize=7)
    for ax in axes:
        ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    sys.exit(main())
