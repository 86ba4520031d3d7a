"""Reproduction (issue 16): Chavdarova, Pagliardini, Stich, Fleuret & Jaggi, "Taming GANs with Lookahead-Minmax",
ICLR 2021.

Claims tested (their bilinear experiments, §4.2 of the paper; the protocols are those of the authors' public
notebooks ``bilinear_game/batch_methods.ipynb`` and ``bilinear_game/LA-MM_stochastic_bilinear.ipynb`` in
github.com/Chavdarova/LAGAN-Lookahead_Minimax):

(a) Full batch. On min_x max_y Σ_i xᵀA_iy + a_iᵀx + b_iᵀy with A_i = e_i e_iᵀ (n = d = 100, so the game is
    xᵀy + (Σa_i)ᵀx + (Σb_i)ᵀy; the notebook scales every a_i, b_i and start by 1/√u with u uniform in {1 … d²};
    5 problems from ``np.random.seed(3)``), simultaneous GDA with η = 0.3 diverges, and Lookahead-minmax around it
    (LA-GDA, k = 6, α = 0.5 and 0.4) converges; Lookahead around extragradient (LA-ExtraGrad, k = 6, α = 0.5)
    converges faster than extragradient. 800 "passes": one per GDA step, three per extragradient step (the
    notebook's x-axis). Quantity: ‖x − x*‖ + ‖y − y*‖ (the notebook's distance), mean over the 5 problems.
(b) Stochastic. On the same kind of game with a_i, b_i, x_0, y_0 ~ N(0, I/d) (``build_problem(seed)``), a gradient
    being the sum over a minibatch of B indices drawn without replacement, LA-GDA converges for every B, while Adam,
    Extra-Adam and extragradient converge only with the full batch (B = n) and stall at a noise-dominated distance
    otherwise. The notebook's hyper-parameters for each B (k, α, γ, β₁) are used as they are; 20,000 iterations per
    run (2,000 for the full batch: its panel shows 500 passes), seeds 0, 1, 2 (the notebook: 5 seeds; ``--seeds``).
    The notebooks' MNIST GAN (100,000 iterations × 5 runs × 4 methods of a conv GAN) is not run: GPU scale.

Ours: saddlepoint's ``lookahead`` (``inner: sgd`` or ``inner: extragradient, base: sgd``), ``sgd``,
``extragradient`` (``base: sgd`` or ``base: adam``) and ``adam``, in float64, with one closure returning the two
player losses (f, −f) on the sampled indices. The paper's column is the notebook's own recursion, re-implemented
here from its equations in NumPy, run on the same problems and the *same index draws* as ours (so ours and theirs
must coincide wherever the update rules are the same; the notebook's Adam differs from ours: no bias correction of
the second moment, and Extra-Adam's moments absorb both gradients of a step under one step count).

Library checks (exact): one Lookahead cycle moves both players' slow weights to φ + α(θ_k − φ), with θ_k the
iterate of k plain ``sgd`` steps; the fast weights are plain GDA's inside the cycle; the iterate after N cycles is
z* + M^N (z_0 − z*) with M = (1 − α)I + αT^k (T the GDA or extragradient map); the measured contraction per cycle
is the spectral radius of M; ours equals the notebook's recursion on the paper's problems.

    python benchmarks/reproduce/lookahead.py           # full: ≈ 5 CPU-minutes (291 s wall on the shared 2-core machine)
    python benchmarks/reproduce/lookahead.py --quick   # ≈ 6 CPU-seconds: sanity checks only, exit 1 if one fails

Full mode writes ``benchmarks/results/reproduce/lookahead.json`` and ``docs/img/reproduce/lookahead.png``; quick mode
writes ``benchmarks/results/reproduce/lookahead-quick.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from saddlepoint.optim import build  # noqa: E402

torch.set_num_threads(1)
DTYPE = torch.float64
D = 100  # dimension and number of samples (n = d)


# ============================================================================ problems (the notebooks' generators)
def batch_problems(n_runs: int = 5, seed: int = 3) -> list[dict]:
    """``batch_methods.ipynb``: starts and a_i, b_i scaled by 1/√u, u uniform in {1 … d²}, from np.random.seed(3),
    drawn in the notebook's order (all starts first, then the problems)."""
    rs = np.random.RandomState(seed)
    starts = []
    for _ in range(n_runs):
        ux = int(rs.randint(D**2, size=1)[0]) + 1
        uy = int(rs.randint(D**2, size=1)[0]) + 1
        starts.append((rs.randn(D) / np.sqrt(ux), rs.randn(D) / np.sqrt(uy)))
    problems = []
    for r in range(n_runs):
        a, b = np.zeros((D, D)), np.zeros((D, D))
        for i in range(D):
            ux = int(rs.randint(D**2, size=1)[0]) + 1
            uy = int(rs.randint(D**2, size=1)[0]) + 1
            a[i] = rs.randn(D) / np.sqrt(ux)
            b[i] = rs.randn(D) / np.sqrt(uy)
        # ∇x = Σ(M_i y + a_i) = y + Σa, ∇y = x + Σb: x* = −Σb, y* = −Σa
        problems.append({"x0": starts[r][0], "y0": starts[r][1], "a": a, "b": b,
                         "x_star": -b.sum(0), "y_star": -a.sum(0)})
    return problems


def stochastic_problem(seed: int) -> dict:
    """``LA-MM_stochastic_bilinear.ipynb``'s ``build_problem(seed)``: x_0, y_0, a_i, b_i ~ N(0, I/d)."""
    rs = np.random.RandomState(seed)
    x0 = rs.randn(D) / np.sqrt(D)
    y0 = rs.randn(D) / np.sqrt(D)
    a, b = np.zeros((D, D)), np.zeros((D, D))
    for i in range(D):
        a[i] = rs.randn(D) / np.sqrt(D)
        b[i] = rs.randn(D) / np.sqrt(D)
    return {"x0": x0, "y0": y0, "a": a, "b": b, "x_star": -b.sum(0), "y_star": -a.sum(0)}


class Indices:
    """The minibatch stream: B indices without replacement per draw (all n for B = n), from a seeded generator;
    ours and the notebook's recursion get equal streams, so they see the same samples."""

    def __init__(self, batch: int, seed: int) -> None:
        self.batch = batch
        self.rng = np.random.default_rng(seed)
        self.all = np.arange(D)

    def draw(self) -> np.ndarray:
        if self.batch >= D:
            return self.all
        if self.batch == 1:
            return np.array([self.rng.integers(D)])
        return self.rng.choice(D, self.batch, replace=False)


def distance(p: dict, x, y) -> float:
    """The notebooks' distance ‖x − x*‖ + ‖y − y*‖."""
    return float(np.linalg.norm(np.asarray(x) - p["x_star"]) + np.linalg.norm(np.asarray(y) - p["y_star"]))


# ============================================================================ the notebooks' recursions (NumPy)
def grads(p: dict, x, y, idx):
    """Σ_{i∈idx} (M_i y + a_i), Σ_{i∈idx} (M_iᵀx + b_i) with M_i = e_i e_iᵀ."""
    gx, gy = p["a"][idx].sum(0), p["b"][idx].sum(0)
    gx[idx] += y[idx]
    gy[idx] += x[idx]
    return gx, gy


class NotebookAdam:
    """The notebooks' ``AdamOpt``: one object for both players, bias correction of the first moment only, and the
    iteration's t for both calls of an Extra-Adam step. ``textbook=True`` turns it into Kingma & Ba's Adam (v̂
    bias-corrected too, t counting moment updates), which is saddlepoint's rule; used to attribute the gap."""

    def __init__(self, beta1: float, beta2: float = 0.999, eps: float = 1e-8, textbook: bool = False) -> None:
        self.b1, self.b2, self.eps, self.textbook = beta1, beta2, eps, textbook
        self.m = [np.zeros(D), np.zeros(D)]
        self.v = [np.zeros(D), np.zeros(D)]
        self.calls = 0

    def direction(self, gx, gy, t):
        self.calls += 1
        if self.textbook:
            t = self.calls - 1
        out = []
        for j, g in enumerate((gx, gy)):
            self.m[j] = self.b1 * self.m[j] + (1 - self.b1) * g
            self.v[j] = self.b2 * self.v[j] + (1 - self.b2) * g**2
            v = self.v[j] / (1 - self.b2 ** (t + 1)) if self.textbook else self.v[j]
            out.append(self.m[j] / (1 - self.b1 ** (t + 1)) / (np.sqrt(v) + self.eps))
        return out


def notebook_run(p: dict, method: str, iters: int, gamma: float, idx: Indices, k: int = 1, alpha: float = 1.0,
                 beta1: float = 0.0, every: int = 1, textbook_adam: bool = False) -> list[float]:
    """``lookahead`` / ``sgd_sga`` / ``batch_extra`` / ``batch_lookahead`` of the notebooks (restarts off):
    method ∈ {gda, eg, adam, extra-adam, la-gda, la-eg}; the distance after every ``every``-th step (and the start)."""
    x, y = p["x0"].copy(), p["y0"].copy()
    xp, yp = x.copy(), y.copy()
    extra = method in ("eg", "extra-adam", "la-eg")
    adam = NotebookAdam(beta1, textbook=textbook_adam) if "adam" in method else None
    lookahead = method.startswith("la-")
    curve = [distance(p, x, y)]
    for t in range(iters):
        if lookahead and t > 0 and t % k == 0:  # one step back every k steps forward
            x = xp + alpha * (x - xp)
            y = yp + alpha * (y - yp)
            xp, yp = x.copy(), y.copy()
        dx, dy = grads(p, x, y, idx.draw())
        if adam:
            dx, dy = adam.direction(dx, dy, t)
        if extra:
            xe, ye = x - gamma * dx, y + gamma * dy
            dx, _ = grads(p, x, ye, idx.draw())
            _, dy = grads(p, xe, y, idx.draw())
            if adam:
                dx, dy = adam.direction(dx, dy, t)
        x, y = x - gamma * dx, y + gamma * dy
        if (t + 1) % every == 0 or t + 1 == iters:
            curve.append(distance(p, x, y))
    return curve


# ============================================================================ ours (saddlepoint)
class Game:
    """The sampled bilinear game as saddlepoint players; the closure returns (f_S, −f_S') on drawn index sets. For
    an extragradient-type method (two closure calls per step) the second call draws two sets, one per player, as
    the notebook's update step does (∇x from one sample at (x, ỹ), ∇y from another at (x̃, y))."""

    def __init__(self, p: dict, idx: Indices, two_calls: bool) -> None:
        self.p, self.idx, self.two_calls = p, idx, two_calls
        self.a, self.b = torch.tensor(p["a"], dtype=DTYPE), torch.tensor(p["b"], dtype=DTYPE)
        self.x = torch.nn.Parameter(torch.tensor(p["x0"], dtype=DTYPE))
        self.y = torch.nn.Parameter(torch.tensor(p["y0"], dtype=DTYPE))
        self.players = [[self.x], [self.y]]
        self.full = idx.batch >= D
        self.a_sum, self.b_sum = self.a.sum(0), self.b.sum(0)
        self.calls = 0

    def f(self, idx: np.ndarray):
        if self.full:
            return self.x @ self.y + self.a_sum @ self.x + self.b_sum @ self.y
        i = torch.as_tensor(idx)
        return (self.x[i] * self.y[i]).sum() + self.a[i].sum(0) @ self.x + self.b[i].sum(0) @ self.y

    def losses(self):
        self.calls += 1
        if self.two_calls and self.calls % 2 == 0:  # the update of an extragradient step
            f_x, f_y = self.f(self.idx.draw()), self.f(self.idx.draw())
            return [f_x, -f_y]
        f = self.f(self.idx.draw())
        return [f, -f]

    def distance(self) -> float:
        return distance(self.p, self.x.detach().numpy(), self.y.detach().numpy())


METHODS = {  # name → (saddlepoint optimizer, fixed hyper-parameters, closure calls per step)
    "gda": ("sgd", {}, 1),
    "eg": ("extragradient", {"base": "sgd"}, 2),
    "adam": ("adam", {"beta2": 0.999, "eps": 1e-8}, 1),
    "extra-adam": ("extragradient", {"base": "adam", "beta2": 0.999, "eps": 1e-8}, 2),
    "la-gda": ("lookahead", {"inner": "sgd"}, 1),
    "la-eg": ("lookahead", {"inner": "extragradient", "base": "sgd"}, 2),
}


def ours_run(p: dict, method: str, iters: int, gamma: float, idx: Indices, k: int = 1, alpha: float = 1.0,
             beta1: float = 0.0, every: int = 1) -> list[float]:
    name, fixed, calls = METHODS[method]
    hp = dict(fixed, lr=gamma)
    if method.startswith("la-"):
        hp.update(k=k, alpha=alpha)
    if "adam" in method:
        hp["beta1"] = beta1
    game = Game(p, idx, two_calls=calls == 2)
    opt = build(name, game.players, **hp)
    curve = [game.distance()]
    for t in range(iters):
        opt.step(game.losses)
        if (t + 1) % every == 0 or t + 1 == iters:
            curve.append(game.distance())
    assert opt.counts["closure"] == calls * iters, opt.counts
    return curve


def rel_dev(a: list[float], b: list[float], k: int = 1, every: int = 1) -> float:
    """Largest deviation between two distance curves, relative to the value or, below it, to 1e-6 of the start
    (the floating-point floor: the iterates are O(10) away from 0, so distances under ~1e-14 are rounding). With
    Lookahead (k > 1) the points after a multiple of k steps are skipped: the notebook records the fast weights
    there and synchronises at the start of the next iteration, saddlepoint right after the k-th step (the same
    trajectory, recorded on either side of the synchronisation)."""
    out, floor = 0.0, 1e-6 * abs(b[0])
    for j, (u, v) in enumerate(zip(a, b, strict=True)):
        if k > 1 and j > 0 and (j * every) % k == 0:
            continue
        if not (math.isfinite(u) and math.isfinite(v)):
            if u != v:
                return math.inf
            continue
        out = max(out, abs(u - v) / max(abs(v), floor))
    return out


# ============================================================================ library checks
def gda_map(eta: float, n: int = D) -> np.ndarray:
    """The GDA map on z − z* = (x − x*, y − y*) for f = xᵀy + …: x ← x − η y, y ← y + η x."""
    eye = np.eye(n)
    return np.block([[eye, -eta * eye], [eta * eye, eye]])


def eg_map(eta: float, n: int = D) -> np.ndarray:
    T = gda_map(eta, n)
    return np.eye(2 * n) + (T - np.eye(2 * n)) @ T  # z − η F(z − η F z)


def la_map(T: np.ndarray, k: int, alpha: float) -> np.ndarray:
    return (1 - alpha) * np.eye(T.shape[0]) + alpha * np.linalg.matrix_power(T, k)


def library_checks(p: dict) -> tuple[list[tuple[str, bool, str]], dict]:
    checks, info = [], {}
    full = Indices(D, 0)
    k, alpha, eta = 6, 0.5, 0.3
    # (1) one cycle: fast weights are plain GDA's; the sync moves both players jointly to φ + α(θ_k − φ)
    la, gd = Game(p, full, False), Game(p, full, False)
    opt_la = build("lookahead", la.players, inner="sgd", lr=eta, k=k, alpha=alpha)
    opt_gd = build("sgd", gd.players, lr=eta)
    phi = [la.x.detach().clone(), la.y.detach().clone()]
    dev_fast, dev_sync = 0.0, 0.0
    for _cycle in range(3):
        for j in range(k):
            opt_la.step(la.losses)
            opt_gd.step(gd.losses)
            if j < k - 1:
                dev_fast = max(dev_fast, float((la.x - gd.x).detach().abs().max()),
                               float((la.y - gd.y).detach().abs().max()))
        want = [phi[0] + alpha * (gd.x.detach() - phi[0]), phi[1] + alpha * (gd.y.detach() - phi[1])]
        dev_sync = max(dev_sync, float((la.x.detach() - want[0]).abs().max()),
                       float((la.y.detach() - want[1]).abs().max()))
        phi = [la.x.detach().clone(), la.y.detach().clone()]
        with torch.no_grad():  # restart plain GDA from the synchronised point, as the next cycle does
            gd.x.copy_(la.x)
            gd.y.copy_(la.y)
    checks.append(("inside a cycle the fast weights are plain GDA's iterates (k 6, 3 cycles)", dev_fast <= 1e-12,
                   f"max |Δ| = {dev_fast:.1e}"))
    checks.append(("every k = 6 steps both players' weights become φ + α(θ_k − φ) (α 0.5, 3 cycles)",
                   dev_sync <= 1e-12, f"max |Δ| = {dev_sync:.1e}"))
    info["cycle_dev"] = {"fast": dev_fast, "sync": dev_sync}

    # (2) N cycles = the linear map M = (1 − α)I + αT^k; per-cycle contraction = spectral radius of M
    z_star = np.concatenate([p["x_star"], p["y_star"]])
    z0 = np.concatenate([p["x0"], p["y0"]]) - z_star
    rates = {}
    for label, inner, T, a_ in (("LA-GDA α 0.5", "gda", gda_map(eta), 0.5), ("LA-GDA α 0.4", "gda", gda_map(eta), 0.4),
                                ("LA-GDA α 0.8", "gda", gda_map(eta), 0.8),
                                ("LA-ExtraGrad α 0.5", "eg", eg_map(eta), 0.5)):
        M = la_map(T, k, a_)
        rho = float(max(abs(np.linalg.eigvals(M))))
        cycles = 12
        game = Game(p, full, inner == "eg")
        hp = {"inner": "sgd"} if inner == "gda" else {"inner": "extragradient", "base": "sgd"}
        opt = build("lookahead", game.players, lr=eta, k=k, alpha=a_, **hp)
        norms, z_pred, dev = [float(np.linalg.norm(z0))], z0.copy(), 0.0
        for _ in range(cycles):
            for _ in range(k):
                opt.step(game.losses)
            z = np.concatenate([game.x.detach().numpy(), game.y.detach().numpy()]) - z_star
            z_pred = M @ z_pred
            dev = max(dev, float(np.linalg.norm(z - z_pred) / np.linalg.norm(z0)))
            norms.append(float(np.linalg.norm(z)))
        measured = (norms[-1] / norms[-6]) ** (1 / 5)
        rates[label] = {"rho": rho, "measured_per_cycle": measured, "rel_dev_from_M^N": dev,
                        "gda_per_cycle": float(max(abs(np.linalg.eigvals(np.linalg.matrix_power(T, k)))))}
        checks.append((f"{label}: iterate after each of 12 cycles = z* + M^N(z0 − z*) (to 1e-12 ‖z0 − z*‖), and the "
                       f"measured rate per cycle = ρ(M) (rel. 1e-9)",
                       dev <= 1e-12 and abs(measured - rho) <= 1e-9 * rho,
                       f"rel dev {dev:.1e}; ρ(M) {rho:.6f}, measured {measured:.6f}"))
    info["rates"] = rates
    checks.append(("ρ < 1 for LA-GDA α 0.5 and 0.4 and LA-ExtraGrad, ρ > 1 for α 0.8 and for GDA alone",
                   rates["LA-GDA α 0.5"]["rho"] < 1 and rates["LA-GDA α 0.4"]["rho"] < 1
                   and rates["LA-ExtraGrad α 0.5"]["rho"] < 1 and rates["LA-GDA α 0.8"]["rho"] > 1
                   and rates["LA-GDA α 0.5"]["gda_per_cycle"] > 1,
                   ", ".join(f"{k_} {v['rho']:.4f}" for k_, v in rates.items())))
    return checks, info


# ============================================================================ (a) full batch
BATCH_RUNS = [  # label, method, γ, k, α, passes per step (the notebook's)
    ("GDA", "gda", 0.3, 1, 1.0, 1),
    ("GDA η=1e-4", "gda", 1e-4, 1, 1.0, 1),
    ("ExtraGrad", "eg", 0.3, 1, 1.0, 3),
    ("LA-GDA α=0.5", "la-gda", 0.3, 6, 0.5, 1),
    ("LA-GDA α=0.4", "la-gda", 0.3, 6, 0.4, 1),
    ("LA-GDA α=0.8", "la-gda", 0.3, 6, 0.8, 1),
    ("LA-ExtraGrad α=0.5", "la-eg", 0.3, 6, 0.5, 3),
]


def full_batch(problems: list[dict], n_pass: int = 800) -> dict:
    out = {}
    for label, method, gamma, k, alpha, per in BATCH_RUNS:
        iters = n_pass // per - 1  # the notebook records n_pass // per points: the start and n_pass // per − 1 steps
        ours, theirs = [], []
        for r, p in enumerate(problems):
            ours.append(ours_run(p, method, iters, gamma, Indices(D, r), k, alpha))
            theirs.append(notebook_run(p, method, iters, gamma, Indices(D, r), k, alpha))
        mean_ours = np.mean(ours, 0)
        mean_theirs = np.mean(theirs, 0)
        out[label] = {"method": method, "gamma": gamma, "k": k, "alpha": alpha, "steps": iters,
                      "passes": [per * t for t in range(iters + 1)],
                      "start": float(mean_ours[0]), "final_ours": float(mean_ours[-1]),
                      "final_notebook": float(mean_theirs[-1]),
                      "max_rel_dev": max(rel_dev(o, t, k) for o, t in zip(ours, theirs, strict=True)),
                      "curve": [float(v) for v in mean_ours]}
    return out


# ============================================================================ (b) stochastic
#: the notebook's settings per minibatch size: (γ, k, α) for LA-GDA, (γ, β₁) for Adam and Extra-Adam, γ for EG
STOCH = {
    100: {"la-gda": (0.2, 15, 0.3), "adam": (0.005, -0.9), "extra-adam": (0.02, -0.6), "eg": 0.8},
    64: {"la-gda": (0.005, 450, 0.3), "adam": (0.005, -0.6), "extra-adam": (0.01, -0.2), "eg": 0.005},
    16: {"la-gda": (0.01, 1500, 0.3), "adam": (0.005, -0.3), "extra-adam": (0.005, 0.0), "eg": 0.005},
    4: {"la-gda": (0.03, 2350, 0.3), "adam": (0.005, -0.1), "extra-adam": (0.01, 0.0), "eg": 0.04},
    1: {"la-gda": (0.05, 2450, 0.3), "adam": (0.005, 0.0), "extra-adam": (0.005, 0.0), "eg": 0.005},
}
STOCH_LABELS = {"adam": "Adam", "extra-adam": "Extra-Adam", "eg": "Extragradient", "la-gda": "LA-GDA"}


def stochastic(batches: list[int], seeds: list[int], n_pass: int, n_pass_full: int, every: int,
               every_full: int) -> dict:
    out = {}
    for B in batches:
        passes = n_pass_full if B >= D else n_pass
        step = every_full if B >= D else every
        for method in ("adam", "extra-adam", "eg", "la-gda"):
            s = STOCH[B][method]
            gamma, k, alpha, beta1 = (s[0], s[1], s[2], 0.0) if method == "la-gda" else (
                (s[0], 1, 1.0, s[1]) if "adam" in method else (s, 1, 1.0, 0.0))
            iters = passes // 3 if method in ("eg", "extra-adam") else passes
            ev = max(1, step // 3) if method in ("eg", "extra-adam") else step
            ours, theirs, secs = [], [], 0.0
            for seed in seeds:
                p = stochastic_problem(seed)
                t0 = time.perf_counter()
                ours.append(ours_run(p, method, iters, gamma, Indices(B, 1000 + seed), k, alpha, beta1, ev))
                secs += time.perf_counter() - t0
                theirs.append(notebook_run(p, method, iters, gamma, Indices(B, 1000 + seed), k, alpha, beta1, ev))
            n_pts = len(ours[0])
            per = 3 if method in ("eg", "extra-adam") else 1
            xs = [per * min(ev * j, iters) for j in range(n_pts)]
            tail = max(1, n_pts // 10)
            out[f"B={B}/{method}"] = {
                "B": B, "method": method, "label": STOCH_LABELS[method], "gamma": gamma, "k": k, "alpha": alpha,
                "beta1": beta1, "iterations": iters, "seeds": seeds, "seconds_ours": round(secs, 1),
                "start": float(np.mean([c[0] for c in ours])),
                "final_ours": float(np.mean([c[-1] for c in ours])),
                "final_notebook": float(np.mean([c[-1] for c in theirs])),
                "last10_ours": float(np.mean([np.mean(c[-tail:]) for c in ours])),
                "last10_notebook": float(np.mean([np.mean(c[-tail:]) for c in theirs])),
                "max_rel_dev": max(rel_dev(o, t, k, ev) for o, t in zip(ours, theirs, strict=True)),
                "passes": xs, "curve": [float(v) for v in np.mean(ours, 0)],
                "curve_notebook": [float(v) for v in np.mean(theirs, 0)],
            }
    return out


def stochastic_agreement() -> tuple[str, bool, str]:
    """Ours = the notebook's recursion on the same index draws (B = 4, 600 iterations, LA-GDA k 50 and EG)."""
    p = stochastic_problem(0)
    devs = {}
    for method, gamma, k, alpha in (("la-gda", 0.03, 50, 0.3), ("eg", 0.04, 1, 1.0), ("gda", 0.03, 1, 1.0)):
        iters = 200 if method == "eg" else 600
        ours = ours_run(p, method, iters, gamma, Indices(4, 7), k, alpha)
        theirs = notebook_run(p, method, iters, gamma, Indices(4, 7), k, alpha)
        devs[method] = rel_dev(ours, theirs, k)
    for method, beta1 in (("adam", -0.1), ("extra-adam", 0.0)):
        iters = 100 if method == "extra-adam" else 300
        ours = ours_run(p, method, iters, 0.01, Indices(4, 7), beta1=beta1)
        theirs = notebook_run(p, method, iters, 0.01, Indices(4, 7), beta1=beta1, textbook_adam=True)
        devs[f"{method} (textbook Adam)"] = rel_dev(ours, theirs)
    return ("stochastic B = 4, same index draws: ours = the notebook's recursion for LA-GDA, extragradient, GDA, and "
            "for Adam and Extra-Adam once its Adam is made textbook (rel. 1e-12)", max(devs.values()) <= 1e-12,
            ", ".join(f"{m} {v:.1e}" for m, v in devs.items()))


# ============================================================================ main
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="seconds: small budgets and sanity checks")
    ap.add_argument("--seeds", type=int, default=3, help="stochastic runs per setting (full mode; notebook: 5)")
    args = ap.parse_args()
    quick = args.quick
    t_start = time.perf_counter()

    problems = batch_problems()
    checks, lib = library_checks(problems[0])
    checks.append(stochastic_agreement())

    # ---------------------------------------------------------------- (a)
    batch = full_batch(problems[:1] if quick else problems)
    print(f"\n(a) full batch (batch_methods.ipynb): d = n = 100, η 0.3, 800 passes, "
          f"{1 if quick else 5} problem(s); mean ‖x − x*‖ + ‖y − y*‖")
    print(f"{'method':22s} {'steps':>6s} {'start':>9s} {'notebook':>11s} {'ours':>11s} {'max rel dev':>12s}")
    for label, r in batch.items():
        print(f"{label:22s} {r['steps']:6d} {r['start']:9.4f} {r['final_notebook']:11.3e} {r['final_ours']:11.3e} "
              f"{r['max_rel_dev']:12.1e}")
    checks.append(("full batch: ours = the notebook's recursion for every method (rel. 1e-9 over all steps)",
                   all(r["max_rel_dev"] <= 1e-9 for r in batch.values()),
                   f"max {max(r['max_rel_dev'] for r in batch.values()):.1e}"))
    start = batch["GDA"]["start"]
    checks.append(("full batch: GDA η 0.3 diverges (> 1e3× the start), LA-GDA α 0.8 too (> the start); LA-GDA α 0.5 "
                   "and 0.4 and LA-ExtraGrad converge (< 1e-8× the start)",
                   batch["GDA"]["final_ours"] > 1e3 * start and batch["LA-GDA α=0.8"]["final_ours"] > start
                   and max(batch[k_]["final_ours"] for k_ in ("LA-GDA α=0.5", "LA-GDA α=0.4", "LA-ExtraGrad α=0.5"))
                   < 1e-8 * start,
                   ", ".join(f"{k_} {r['final_ours'] / start:.1e}" for k_, r in batch.items())))
    checks.append(("full batch: LA-ExtraGrad ends ≥ 100× closer than ExtraGrad at 800 passes",
                   batch["LA-ExtraGrad α=0.5"]["final_ours"] * 100 < batch["ExtraGrad"]["final_ours"],
                   f"{batch['LA-ExtraGrad α=0.5']['final_ours']:.1e} vs {batch['ExtraGrad']['final_ours']:.1e}"))

    # ---------------------------------------------------------------- (b)
    if quick:
        sto = stochastic([100], [0], n_pass=0, n_pass_full=500, every=10, every_full=10)
    else:
        sto = stochastic([100, 64, 16, 1], list(range(args.seeds)), n_pass=20000, n_pass_full=2000, every=100,
                         every_full=5)
    print("\n(b) stochastic (LA-MM_stochastic_bilinear.ipynb): mean ‖x − x*‖ + ‖y − y*‖ over seeds "
          f"{sorted({s for r in sto.values() for s in r['seeds']})}")
    print(f"{'B/method':18s} {'γ':>6s} {'k':>5s} {'α':>4s} {'β1':>5s} {'iters':>6s} {'start':>7s} "
          f"{'notebook: last':>15s} {'ours: last':>11s} {'notebook: last 10%':>19s} {'ours: last 10%':>15s} "
          f"{'rel dev':>8s} {'s':>5s}")
    for key, r in sto.items():
        print(f"{key:18s} {r['gamma']:6.3f} {r['k']:5d} {r['alpha']:4.1f} {r['beta1']:5.1f} {r['iterations']:6d} "
              f"{r['start']:7.2f} {r['final_notebook']:15.3e} {r['final_ours']:11.3e} {r['last10_notebook']:19.3e} "
              f"{r['last10_ours']:15.3e} {r['max_rel_dev']:8.1e} {r['seconds_ours']:5.1f}")
    same_rule = [r for r in sto.values() if r["method"] in ("eg", "la-gda")]
    checks.append(("stochastic runs: ours = the notebook's recursion for LA-GDA and extragradient (rel. 1e-9)",
                   all(r["max_rel_dev"] <= 1e-9 for r in same_rule),
                   f"max {max(r['max_rel_dev'] for r in same_rule):.1e}"))
    full_la = sto["B=100/la-gda"]
    checks.append(("full batch (stochastic notebook's setting: γ 0.2, k 15, α 0.3): LA-GDA converges "
                   "(< 1e-6× the start within the run)", full_la["final_ours"] < 1e-6 * full_la["start"],
                   f"{full_la['final_ours']:.2e} from {full_la['start']:.2f}"))
    if not quick:
        small = [B for B in (64, 16, 1)]
        la_small = {B: sto[f"B={B}/la-gda"]["last10_ours"] for B in small}
        others = {B: min(sto[f"B={B}/{m}"]["last10_ours"] for m in ("adam", "extra-adam", "eg")) for B in small}
        checks.append(("B < n: LA-GDA ends closer (last 10% of the run) than Adam, Extra-Adam and extragradient",
                       all(la_small[B] < others[B] for B in small),
                       "; ".join(f"B={B}: LA-GDA {la_small[B]:.3f}, best other {others[B]:.3f}" for B in small)))

    print("\nlibrary checks and sanity checks:")
    ok = True
    for name, passed, detail in checks:
        ok &= passed
        print(f"  {'PASS' if passed else 'FAIL'}  {name}: {detail}")

    out_dir = ROOT / "benchmarks" / "results" / "reproduce"
    out_dir.mkdir(parents=True, exist_ok=True)
    result = {
        "paper": "Chavdarova, Pagliardini, Stich, Fleuret, Jaggi. Taming GANs with Lookahead-Minmax. ICLR 2021",
        "protocol": "bilinear_game/batch_methods.ipynb and bilinear_game/LA-MM_stochastic_bilinear.ipynb of "
                    "github.com/Chavdarova/LAGAN-Lookahead_Minimax; paper column = the notebooks' recursions "
                    "re-implemented in NumPy on the same problems and index draws",
        "quick": quick,
        "machine": {"python": platform.python_version(), "torch": torch.__version__, "threads": 1},
        "seconds": round(time.perf_counter() - t_start, 1),
        "library": lib, "full_batch": batch, "stochastic": sto,
        "checks": [{"name": n, "passed": p, "detail": d} for n, p, d in checks],
    }
    if quick:  # the quick file keeps the numbers, not the curves
        for r in list(batch.values()) + list(sto.values()):
            for key in ("passes", "curve", "curve_notebook"):
                r.pop(key, None)
    path = out_dir / ("lookahead-quick.json" if quick else "lookahead.json")
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"\nwrote {path.relative_to(ROOT)} ({result['seconds']} s)")
    if not quick:
        plot(batch, sto, ROOT / "docs" / "img" / "reproduce" / "lookahead.png")
    print("ALL PASS" if ok else "SOME CHECKS FAILED")
    return 0 if ok else 1


def plot(batch: dict, sto: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 5, figsize=(22, 4.3), gridspec_kw={"width_ratios": [1.5, 1, 1, 1, 1]})
    ax = axes[0]
    for label, r in batch.items():
        ax.semilogy(r["passes"], r["curve"], label=label, ls="--" if "0.8" in label else "-")
    ax.set_ylim(5e-8, 1e4)
    ax.set_xlim(0, 800)
    ax.set_title("(a) full batch, η 0.3, k 6 (5 problems)")
    ax.set_xlabel("number of passes")
    ax.set_ylabel("‖x − x*‖ + ‖y − y*‖")
    ax.legend(fontsize=7)
    for ax, B in zip(axes[1:], (100, 64, 16, 1), strict=True):
        for j, m in enumerate(("adam", "extra-adam", "eg", "la-gda")):
            r = sto.get(f"B={B}/{m}")
            if r is None:
                continue
            ax.plot(r["passes"], r["curve"], color=f"C{j}", label=f"{r['label']} (ours)")
            ax.plot(r["passes"], r["curve_notebook"], color=f"C{j}", ls=":", lw=1, label=f"{r['label']} (notebook)")
        ax.set_ylim(-1, 40)
        ax.set_xlim(0, 500 if B >= D else 20000)
        ax.set_title(f"(b) stochastic, {'full batch' if B >= D else f'B = {B}'}")
        ax.set_xlabel("number of passes (iterations)")
        if B >= D:
            ax.legend(fontsize=6)
    for ax in axes:
        ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    sys.exit(main())
