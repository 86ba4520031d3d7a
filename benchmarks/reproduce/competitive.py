"""Reproduction (issue 16): competitive gradient descent (CGD) and adaptive CGD (ACGD).

Papers: Schäfer & Anandkumar, "Competitive Gradient Descent", NeurIPS 2019 (CGD); Schäfer, Zheng & Anandkumar,
"Implicit competitive regularization in GANs", ICML 2020 (ACGD).

Claims tested:

* CGD (its Figures 2 and 3, and the covariance-estimation figure): on f(x, y) = αxy (x minimises f, y maximises
  it), at the step η = 0.2 and α ∈ {1, 3, 6}, GDA diverges at every α, while LCGD, ConOpt/SGA (γ = 1) and OGDA
  lose stability as the interaction α grows; CGD converges at every α with the same step. On the separable games
  α(x² − y²) (convergence wanted) and −α(x² − y²) (divergence wanted, the point is a maximum–minimum) CGD does the
  right thing at every α. On a GAN-like covariance-estimation game the other methods diverge at the larger step
  sizes while CGD converges at all of them, and is faster in forward passes thanks to the larger steps.
* ACGD: adaptive CGD keeps GAN training stable where Adam breaks down (CIFAR-10, DCGAN, loss functions without
  gradient penalty). Here scaled to the 2-D ring of 8 Gaussians: a grid of learning rates for Adam and ACGD on the
  zero-sum GAN loss with the ring preset's MLP, counting diverged and collapsed runs.

Protocols (the authors' public Julia code, github.com/f-t-s/CGD: ``bilinear_strong.jl``, ``quadratic_equi.jl``,
``quadratic_noequi.jl``, ``cvest.jl``, ``optimizers_abstract.jl``; and github.com/devzhk/Implicit-Competitive-
Regularization for ACGD):

* 1-D games: start (x, y) = (0.5, 0.5), η = 0.2, γ = 1, 50 iterations (bilinear) or 100 (quadratic). Methods and
  their saddlepoint equivalents: GDA = ``sgd``; LCGD (Δx = ∇ₓf − η D²ₓᵧf ∇ᵧg) = ``sga`` with λ = η (identical on
  zero-sum games); ConOpt (γ = 1; on a bilinear game also SGA) = ``consensus`` γ = 1; OGDA = ``optimistic`` with
  ``base: sgd``; CGD = ``cgd``. The "paper" numbers are the authors' recursions re-implemented from their
  equations (the figures print no numbers).
* Covariance estimation: Σ = UUᵀ, U ~ N(0, 1)^{d×d}; f(W, V) = ⟨W, VVᵀ − Σ⟩, W minimises f and V minimises −f;
  start V = U + (uniform(−½, ½)), W = PPᵀ with P uniform(−½, ½); residual √(‖VVᵀ − Σ‖² + ‖(W + Wᵀ)/2‖²); step sizes
  0.005, 0.025, 0.1, 0.4; methods CGD, OGDA, SGA (γ = 1), ConOpt (γ = 1); cost counted in forward passes with the
  authors' convention (GDA/OGDA 2, SGA 4, ConOpt 6, CGD 2·(CG iterations) + 4). Paper: d = 20, 40, 60 and 100,000
  forward passes; here d = 20 and ``--cov-budget`` forward passes (CPU budget).
* Ring (ACGD): saddlepoint's ring (8 modes, radius 1, σ 0.01), ``configs/ring.yaml``'s MLP (z 2, depth 3, width 128,
  ReLU), batch 256; the zero-sum GAN loss V = E softplus(−D(x)) + E softplus(D(G(z))), D minimises V, G maximises it
  (ACGD in the authors' package is zero-sum only); Adam β = (0.5, 0.999) and ACGD β = 0.99 at the same learning
  rates, with two controls: ``rmsprop`` (α 0.99, no bias correction) and Adam with β = (0, 0.99), which is ACGD's
  bias-corrected per-coordinate step without the competitive term (the same step up to where ε enters); mode
  statistics (``saddlepoint.metrics.mode_stats``, 3σ) on 2,500 samples of the raw G. A run has *diverged* if a loss
  or a sample is not finite or the samples' median radius exceeds 10, and has *collapsed* if it covers at most one
  mode.

Library checks (float64, exact to 1e-12): the CGD step against the paper's closed form
Δx = −η(I + η²D²ₓᵧD²ᵧₓ)⁻¹(∇ₓf + ηD²ₓᵧ∇ᵧf) on a random bilinear game; the ACGD step against a dense solve of the
block system with the RMSprop-scaled step sizes; every 1-D trajectory against the authors' recursion.

    python benchmarks/reproduce/competitive.py --quick   # ≈ 15 s: sanity checks (PASS/FAIL), exit 1 if one fails
    python benchmarks/reproduce/competitive.py           # full: 455 s measured on one thread (shared machine)

Full mode writes ``benchmarks/results/reproduce/competitive.json`` and ``docs/img/reproduce/competitive.png``;
quick mode writes ``benchmarks/results/reproduce/competitive-quick.json``.
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

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from saddlepoint.data.toy import RING_STD, ring_centers  # noqa: E402
from saddlepoint.metrics.modes import mode_stats  # noqa: E402
from saddlepoint.models.mlp import mlp  # noqa: E402
from saddlepoint.optim import build  # noqa: E402

torch.set_num_threads(1)
DT = torch.float64
ETA, GAMMA = 0.2, 1.0
ALPHAS = (1.0, 3.0, 6.0)
X0 = (0.5, 0.5)
METHODS_1D = ("GDA", "LCGD", "ConOpt", "OGDA", "CGD")

PAPER = {
    "cgd": "Schäfer & Anandkumar, Competitive Gradient Descent, NeurIPS 2019 (arXiv 1905.12103); "
    "code github.com/f-t-s/CGD",
    "acgd": "Schäfer, Zheng & Anandkumar, Implicit competitive regularization in GANs, ICML 2020 (arXiv 1910.05852); "
    "code github.com/devzhk/Implicit-Competitive-Regularization",
    "figure2": "f = alpha*x*y, alpha in {1,3,6}, eta 0.2, gamma 1, 50 iterations from (0.5, 0.5): GDA diverges; LCGD, "
    "ConOpt(=SGA), OGDA degrade as alpha grows; CGD converges for every alpha",
    "figure3": "f = alpha(x^2 - y^2) (convergence wanted) and -alpha(x^2 - y^2) (divergence wanted), alpha in {1,3,6}, "
    "eta 0.2, 100 iterations",
    "covariance": "d in {20,40,60}, 100,000 forward passes, eta in {0.005,0.025,0.1,0.4}: CGD converges at every step "
    "size; the others diverge at the larger ones (figure, no number)",
    "icr": "CIFAR-10, DCGAN: ACGD keeps training stable where Adam breaks down (inception-score curves, no number "
    "quoted here)",
}


# ----------------------------------------------------------------------------- 1-D games
def game_1d(kind: str, alpha: float):
    """Players [x], [y]; losses [f, −f] of f = αxy (bilinear), α(x² − y²) (convex-concave) or −α(x² − y²)."""
    x = torch.nn.Parameter(torch.tensor([X0[0]], dtype=DT))
    y = torch.nn.Parameter(torch.tensor([X0[1]], dtype=DT))

    def losses():
        if kind == "bilinear":
            f = alpha * x * y
        elif kind == "convex-concave":
            f = alpha * (x * x - y * y)
        else:
            f = -alpha * (x * x - y * y)
        f = f.sum()
        return [f, -f]

    return x, y, losses


def build_1d(method: str, players, eta: float = ETA):
    if method == "GDA":
        return build("sgd", players, lr=eta)
    if method == "LCGD":  # Δx = ∇ₓf − η D²ₓᵧf ∇ᵧg: SGA with λ = η on a zero-sum game
        return build("sga", players, lr=eta, lam=eta)
    if method == "ConOpt":
        return build("consensus", players, lr=eta, gamma=GAMMA)
    if method == "SGA":
        return build("sga", players, lr=eta, lam=GAMMA)
    if method == "OGDA":
        return build("optimistic", players, lr=eta, base="sgd")
    if method == "CGD":
        return build("cgd", players, lr=eta, tol=1e-14)
    raise ValueError(method)


def run_1d(kind: str, alpha: float, method: str, steps: int) -> list[tuple[float, float]]:
    x, y, losses = game_1d(kind, alpha)
    opt = build_1d(method, [[x], [y]])
    path = [(float(x.detach()), float(y.detach()))]
    for _ in range(steps):
        opt.step(losses)
        path.append((float(x.detach()), float(y.detach())))
    return path


def authors_1d(kind: str, alpha: float, method: str, steps: int) -> list[tuple[float, float]]:
    """The authors' recursion (optimizers_abstract.jl), written out for the 1-D games in plain floats.

    With f(x, y) and g = −f: ∇ₓf = a·y + p·x, ∇ᵧg = −a·x + q·y, D²ₓᵧf = a, D²ᵧₓg = −a, D²ₓₓf = p, D²ᵧᵧg = q, where
    (a, p, q) = (α, 0, 0) for αxy, (0, 2α, 2α) for α(x² − y²) and (0, −2α, −2α) for −α(x² − y²)."""
    a, p, q = {"bilinear": (alpha, 0.0, 0.0), "convex-concave": (0.0, 2 * alpha, 2 * alpha),
               "concave-convex": (0.0, -2 * alpha, -2 * alpha)}[kind]
    eta, gamma = ETA, GAMMA
    x, y = X0
    ox = oy = 0.0  # OGDA's previous gradients (zero before the first step, as in the Julia code)
    path = [(x, y)]
    for _ in range(steps):
        gx, gy = a * y + p * x, -a * x + q * y
        if method == "GDA":
            dx, dy = -eta * gx, -eta * gy
        elif method == "LCGD":
            dx, dy = -eta * (gx - eta * a * gy), -eta * (gy - eta * (-a) * gx)
        elif method == "ConOpt":
            dx = -eta * (gx - gamma * a * gy + gamma * p * gx)
            dy = -eta * (gy - gamma * (-a) * gx + gamma * q * gy)
        elif method == "OGDA":
            dx, dy = -(2 * eta * gx - eta * ox), -(2 * eta * gy - eta * oy)
            ox, oy = gx, gy
        elif method == "CGD":  # CG_CGDA!: Δx = η(1 − η² D²ₓᵧf D²ᵧₓg)⁻¹(−∇ₓf + η D²ₓᵧf ∇ᵧg), likewise for y
            dx = eta * (-(gx - eta * a * gy)) / (1 - eta**2 * a * (-a))
            dy = eta * (-(gy - eta * (-a) * gx)) / (1 - eta**2 * (-a) * a)
        else:
            raise ValueError(method)
        x, y = x + dx, y + dy
        path.append((x, y))
    return path


def rel_dev(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> float:
    return max(math.hypot(p[0] - q[0], p[1] - q[1]) / max(1.0, math.hypot(*q)) for p, q in zip(a, b, strict=True))


def one_d_experiments(steps_bilinear: int, steps_quadratic: int) -> dict:
    out = {}
    for kind, steps in (("bilinear", steps_bilinear), ("convex-concave", steps_quadratic),
                        ("concave-convex", steps_quadratic)):
        for alpha in ALPHAS:
            for method in METHODS_1D:
                ours = run_1d(kind, alpha, method, steps)
                theirs = authors_1d(kind, alpha, method, steps)
                out[f"{kind}/alpha={alpha:g}/{method}"] = {
                    "kind": kind, "alpha": alpha, "method": method, "steps": steps,
                    "dist": [math.hypot(*p) for p in ours],
                    "final": math.hypot(*ours[-1]), "paper_final": math.hypot(*theirs[-1]),
                    "max_rel_dev_vs_authors": rel_dev(ours, theirs),
                }
    return out


# ----------------------------------------------------------------------------- closed-form step checks
def check_cgd_closed_form(steps: int = 5, dim: int = 5, eta: float = 0.3) -> float:
    """Largest deviation of saddlepoint's CGD from Δx = −η(I + η²AAᵀ)⁻¹(∇ₓf + ηA∇ᵧf),
    Δy = −η(I + η²AᵀA)⁻¹(∇ᵧ(−f) − ηAᵀ∇ₓf) on f = xᵀAy + bᵀx + cᵀy, over ``steps`` steps."""
    g = torch.Generator().manual_seed(5)
    A = torch.randn(dim, dim + 1, generator=g, dtype=DT)
    b, c = torch.randn(dim, generator=g, dtype=DT), torch.randn(dim + 1, generator=g, dtype=DT)
    x = torch.nn.Parameter(torch.randn(dim, generator=g, dtype=DT))
    y = torch.nn.Parameter(torch.randn(dim + 1, generator=g, dtype=DT))

    def losses():
        f = x @ A @ y + b @ x + c @ y
        return [f, -f]

    opt = build("cgd", [[x], [y]], lr=eta, tol=1e-15)
    worst = 0.0
    for _ in range(steps):
        xv, yv = x.detach().clone(), y.detach().clone()
        gx, gy = A @ yv + b, A.T @ xv + c  # ∇ₓf, ∇ᵧf
        dx = -eta * torch.linalg.solve(torch.eye(dim, dtype=DT) + eta**2 * A @ A.T, gx + eta * A @ gy)
        dy = eta * torch.linalg.solve(torch.eye(dim + 1, dtype=DT) + eta**2 * A.T @ A, gy - eta * A.T @ gx)
        opt.step(losses)
        worst = max(worst, float((x.detach() - xv - dx).abs().max()), float((y.detach() - yv - dy).abs().max()))
    return worst


def check_acgd_closed_form(steps: int = 5, dim: int = 4, lr: float = 0.05, beta: float = 0.99,
                           eps: float = 1e-8) -> float:
    """Largest deviation of saddlepoint's ACGD from the block system [[I, η_x D], [−η_y Dᵀ, I]] Δ = −[η_x ∇ₓf; η_y ∇ᵧg]
    with η = lr·√(1 − βᵗ)/(√v + ε), v ← βv + (1 − β)∇², on the game f = xᵀAy + bᵀx + cᵀy + ½‖x‖² − ½‖y‖²."""
    g = torch.Generator().manual_seed(6)
    A = torch.randn(dim, dim, generator=g, dtype=DT)
    b, c = torch.randn(dim, generator=g, dtype=DT), torch.randn(dim, generator=g, dtype=DT)
    x = torch.nn.Parameter(torch.randn(dim, generator=g, dtype=DT))
    y = torch.nn.Parameter(torch.randn(dim, generator=g, dtype=DT))

    def losses():
        f = x @ A @ y + b @ x + c @ y + 0.5 * x @ x - 0.5 * y @ y
        return [f, -f]

    opt = build("acgd", [[x], [y]], lr=lr, beta=beta, eps=eps, tol=1e-15)
    vx, vy = torch.zeros(dim, dtype=DT), torch.zeros(dim, dtype=DT)
    worst = 0.0
    eye = torch.eye(dim, dtype=DT)
    for t in range(1, steps + 1):
        xv, yv = x.detach().clone(), y.detach().clone()
        gx, gy = A @ yv + b + xv, -(A.T @ xv + c - yv)  # ∇ₓf, ∇ᵧ(−f)
        vx, vy = beta * vx + (1 - beta) * gx**2, beta * vy + (1 - beta) * gy**2
        ex = lr * math.sqrt(1 - beta**t) / (vx.sqrt() + eps)
        ey = lr * math.sqrt(1 - beta**t) / (vy.sqrt() + eps)
        N = torch.cat([torch.cat([eye, ex[:, None] * A], 1), torch.cat([-ey[:, None] * A.T, eye], 1)])
        want = torch.linalg.solve(N, -torch.cat([ex * gx, ey * gy]))
        opt.step(losses)
        got = torch.cat([x.detach() - xv, y.detach() - yv])
        worst = max(worst, float((got - want).abs().max()))
    return worst


# ----------------------------------------------------------------------------- covariance estimation
def covariance_problem(d: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    U = torch.randn(d, d, generator=g, dtype=DT)
    P = torch.rand(d, d, generator=g, dtype=DT) - 0.5
    W0 = P @ P.T
    V0 = U + (torch.rand(d, d, generator=g, dtype=DT) - 0.5)
    return U @ U.T, W0, V0


COV_COST = {"GDA": 2, "OGDA": 2, "SGA": 4, "ConOpt": 6}  # the authors' forward passes per step; CGD: 2k + 4


def run_covariance(method: str, eta: float, d: int, budget: int, record_every: int = 50) -> dict:
    sigma, W0, V0 = covariance_problem(d)
    W = torch.nn.Parameter(W0.clone())
    V = torch.nn.Parameter(V0.clone())

    def losses():
        f = (W * (V @ V.T - sigma)).sum()
        return [f, -f]

    def resid() -> float:
        with torch.no_grad():
            return float(torch.sqrt(((V @ V.T - sigma) ** 2).sum() + (((W + W.T) / 2) ** 2).sum()))

    opt = build_1d(method, [[W], [V]], eta=eta) if method != "CGD" else build("cgd", [[W], [V]], lr=eta, tol=1e-6)
    cost, step = 0, 0
    curve_c, curve_r = [0], [resid()]
    r0 = curve_r[0]
    t0 = time.perf_counter()
    diverged = False
    while cost < budget:
        opt.step(losses)
        step += 1
        cost += 2 * opt.last_solve["iterations"] + 4 if method == "CGD" else COV_COST[method]
        r = resid()
        if not math.isfinite(r) or r > 1e6 * r0:
            diverged = True
            curve_c.append(cost)
            curve_r.append(float("inf"))
            break
        if step % record_every == 0 or cost >= budget:
            curve_c.append(cost)
            curve_r.append(r)
    return {"method": method, "eta": eta, "d": d, "budget": budget, "steps": step, "forward_passes": cost,
            "start": r0, "final": curve_r[-1], "diverged": diverged, "seconds": round(time.perf_counter() - t0, 2),
            "curve": {"forward_passes": curve_c, "residual": curve_r}}


# ----------------------------------------------------------------------------- ring: ACGD vs Adam
CENTERS = ring_centers().to(torch.float64)
RING_METHODS = ("adam", "rmsprop", "adam-b1=0", "acgd")


def run_ring(method: str, lr: float, seed: int, steps: int, n_eval: int = 2500, keep_samples: bool = False) -> dict:
    torch.manual_seed(seed)
    G, D = mlp((2,), 2, depth=3, width=128, activation="relu")
    players = [list(G.parameters()), list(D.parameters())]
    if method == "adam":
        opt = build("adam", players, lr=lr, beta1=0.5, beta2=0.999, scheme="simultaneous")
    elif method == "adam-b1=0":  # ACGD's bias-corrected per-coordinate step without the competitive term
        opt = build("adam", players, lr=lr, beta1=0.0, beta2=0.99, eps=1e-8, scheme="simultaneous")
    elif method == "rmsprop":  # ACGD's per-coordinate scaling without the competitive term (no bias correction)
        opt = build("rmsprop", players, lr=lr, alpha=0.99, eps=1e-8, scheme="simultaneous")
    else:
        opt = build("acgd", players, lr=lr, beta=0.99)
    gen = torch.Generator().manual_seed(10_000 + seed)
    z_eval = torch.randn(n_eval, 2, generator=torch.Generator().manual_seed(20_000 + seed))
    centers = CENTERS.float()
    cg_iters, losses, finite = [], [0.0, 0.0], True
    t0 = time.perf_counter()
    for _ in range(steps):
        real = centers[torch.randint(0, len(centers), (256,), generator=gen)] + RING_STD * torch.randn(256, 2,
                                                                                                     generator=gen)
        z = torch.randn(256, 2, generator=gen)

        def closure(real=real, z=z):  # bound now: called within this step only
            v = F.softplus(-D(real)).mean() + F.softplus(D(G(z))).mean()  # D minimises V, G maximises it
            return [-v, v]

        losses = [float(v) for v in opt.step(closure)]
        if method == "acgd":
            cg_iters.append(opt.last_solve["iterations"])
        if not all(math.isfinite(v) for v in losses):
            finite = False
            break
    with torch.no_grad():
        x = G(z_eval).double()
    finite = finite and bool(torch.isfinite(x).all())
    radius = float(x.norm(dim=1).median()) if finite else float("inf")
    stats = mode_stats(x, CENTERS, RING_STD) if finite else {"modes": 0, "hq": 0.0, "kl": math.log(8)}
    diverged = (not finite) or radius > 10.0
    out = {"method": method, "lr": lr, "seed": seed, "steps": steps, **stats, "median_radius": radius,
           "diverged": diverged, "collapsed": (not diverged) and stats["modes"] <= 1, "losses": losses,
           "mean_cg_iterations": sum(cg_iters) / len(cg_iters) if cg_iters else None,
           "seconds": round(time.perf_counter() - t0, 2)}
    if keep_samples and finite:
        out["samples"] = x[:800].clamp(-1.95, 1.95).tolist()  # clamped into the plotted square
    return out


def ring_reference() -> dict:
    """What the metric gives 2,500 points spread uniformly along the unit circle (no concentration on the modes)."""
    t = torch.linspace(0, 2 * math.pi, 2501, dtype=DT)[:-1]
    return {"what": "2500 points uniform on the unit circle",
            **mode_stats(torch.stack([t.cos(), t.sin()], 1), CENTERS, RING_STD)}


# ----------------------------------------------------------------------------- figure
def plot(one_d: dict, cov: list[dict], ring: list[dict], lrs: list[float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 4, figsize=(18, 8))
    styles = {"GDA": ":", "LCGD": "--", "ConOpt": "-.", "OGDA": (0, (3, 1, 1, 1)), "CGD": "-"}
    for j, alpha in enumerate(ALPHAS):
        ax = axes[0, j]
        for m in METHODS_1D:
            r = one_d[f"bilinear/alpha={alpha:g}/{m}"]
            ax.semilogy(range(len(r["dist"])), [max(v, 1e-30) for v in r["dist"]], ls=styles[m], lw=2, label=m)
        ax.set_title(f"f = {alpha:g}·xy, η = {ETA}: ‖(x, y)‖")
        ax.set_xlabel("iteration")
        ax.grid(True, which="both", alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    ax = axes[0, 3]
    for kind, ls in (("convex-concave", "-"), ("concave-convex", "--")):
        for m, color in (("CGD", "tab:purple"), ("ConOpt", "tab:green"), ("OGDA", "tab:red")):
            vals = [math.log10(max(one_d[f"{kind}/alpha={a:g}/{m}"]["final"], 1e-300)) for a in ALPHAS]
            game = "α(x²−y²), converge wanted" if kind == "convex-concave" else "−α(x²−y²), diverge wanted"
            ax.plot(ALPHAS, [min(max(v, -40), 40) for v in vals], marker="o", ls=ls, color=color,
                    label=f"{m}{' (= GDA = LCGD)' if m == 'CGD' else ''}: {game}")
    ax.axhline(math.log10(math.hypot(*X0)), color="k", lw=0.5)
    ax.set_title("separable quadratics, η = 0.2: log10 ‖(x, y)‖ after 100 its (clipped ±40)", fontsize=8)
    ax.set_xlabel("α")
    ax.legend(fontsize=6)
    ax.grid(True, alpha=0.3)

    ax = axes[1, 0]
    colors = {0.005: "red", 0.025: "green", 0.1: "blue", 0.4: "brown"}
    cstyle = {"CGD": "-", "OGDA": ":", "SGA": "--", "ConOpt": "-."}
    for r in cov:
        c = r["curve"]
        ys = [v if math.isfinite(v) else 1e6 * r["start"] for v in c["residual"]]
        ax.semilogy(c["forward_passes"], ys, ls=cstyle[r["method"]], color=colors.get(r["eta"], "k"),
                    label=f"{r['method']} η {r['eta']:g}" + (" (diverged)" if r["diverged"] else ""))
    ax.set_ylim(1e-6, 1e4)
    ax.set_title(f"covariance estimation, d = {cov[0]['d']}: residual", fontsize=9)
    ax.set_xlabel("forward passes (authors' count)")
    ax.legend(fontsize=5, ncol=2)
    ax.grid(True, which="both", alpha=0.3)

    ax = axes[1, 1]
    for method, marker in (("adam", "o"), ("rmsprop", "^"), ("adam-b1=0", "v"), ("acgd", "s")):
        rs = [[r for r in ring if r["method"] == method and r["lr"] == lr] for lr in lrs]
        ax.semilogx(lrs, [sum(r["modes"] for r in g) / len(g) for g in rs], marker=marker, label=f"{method}: modes")
        ax.semilogx(lrs, [sum(r["diverged"] for r in g) for g in rs], marker=marker, ls=":",
                    label=f"{method}: diverged runs")
    ax.set_title("ring, zero-sum GAN loss: modes (mean) and diverged runs", fontsize=9)
    ax.set_xlabel("learning rate")
    ax.legend(fontsize=7)
    ax.grid(True, which="both", alpha=0.3)

    lr_show = min(lrs, key=lambda v: abs(math.log(v / 1e-2)))  # the grid's learning rate nearest 1e-2
    shown = [r for m in ("adam", "acgd") for r in ring if r["method"] == m and r["lr"] == lr_show and "samples" in r]
    c = CENTERS.numpy()
    for k, r in enumerate(shown[:2]):
        ax = axes[1, 2 + k]
        s = torch.tensor(r["samples"])
        ax.scatter(c[:, 0], c[:, 1], s=40, c="red", marker="x")
        ax.scatter(s[:, 0], s[:, 1], s=2, alpha=0.4)
        ax.set_xlim(-2, 2)
        ax.set_ylim(-2, 2)
        ax.set_aspect("equal")
        ax.set_title(f"{r['method']} lr {r['lr']:g}, seed {r['seed']}: {r['modes']} modes, "
                     f"{100 * r['hq']:.0f}% hq, radius {r['median_radius']:.2f}", fontsize=8)
    fig.suptitle("CGD (Schäfer & Anandkumar 2019) and ACGD (Schäfer, Zheng & Anandkumar 2020) with saddlepoint")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="seconds: small runs and PASS/FAIL sanity checks")
    ap.add_argument("--cov-d", type=int, default=20, help="covariance dimension (paper: 20, 40, 60)")
    ap.add_argument("--cov-budget", type=int, default=None, help="forward passes per run (paper: 100,000)")
    ap.add_argument("--ring-steps", type=int, default=None)
    ap.add_argument("--ring-seeds", type=int, default=None)
    ap.add_argument("--lrs", type=str, default=None, help="comma-separated learning rates for Adam and ACGD")
    args = ap.parse_args(argv)
    quick = args.quick
    t_start = time.perf_counter()

    cov_d = 6 if quick else args.cov_d
    cov_budget = args.cov_budget or (2_000 if quick else 20_000)
    cov_etas = [0.005, 0.025, 0.1, 0.4]
    ring_steps = args.ring_steps or (8 if quick else 300)
    ring_seeds = list(range(args.ring_seeds or (1 if quick else 2)))
    lrs = [float(v) for v in (args.lrs or ("1e-3,1e-1" if quick else "1e-3,1e-2,3e-2,1e-1")).split(",")]

    one_d = one_d_experiments(50, 100)
    dev_cgd = check_cgd_closed_form()
    dev_acgd = check_acgd_closed_form()
    cov = [run_covariance(m, eta, cov_d, cov_budget) for m in ("CGD", "OGDA", "SGA", "ConOpt") for eta in cov_etas]
    ring = []
    for method in RING_METHODS:
        for lr in lrs:
            for seed in ring_seeds:
                ring.append(run_ring(method, lr, seed, ring_steps, keep_samples=(seed == 0)))
                r = ring[-1]
                print(f"ring {method:9s} lr {lr:g} seed {seed}: modes {r['modes']}, hq {100 * r['hq']:.1f}%, "
                      f"radius {r['median_radius']:.3g}, diverged {r['diverged']}, collapsed {r['collapsed']}, "
                      f"{r['seconds']} s", flush=True)

    # ------------------------------------------------------------------ report
    print(f"\n1-D games, η = {ETA}, start (0.5, 0.5): ‖(x, y)‖ at the end (ours | authors' recursion)")
    for kind, steps in (("bilinear", 50), ("convex-concave", 100), ("concave-convex", 100)):
        for alpha in ALPHAS:
            row = "  ".join(f"{m} {one_d[f'{kind}/alpha={alpha:g}/{m}']['final']:.3g}" for m in METHODS_1D)
            print(f"  {kind:15s} α {alpha:g} ({steps} its): {row}")
    print(f"\ncovariance estimation, d = {cov_d}, {cov_budget:,} forward passes: residual start → end")
    for r in cov:
        print(f"  {r['method']:6s} η {r['eta']:<6g} {r['start']:.3g} → {r['final']:.3g} "
              f"({r['steps']} steps{', DIVERGED' if r['diverged'] else ''}, {r['seconds']} s)")
    ref = ring_reference()

    def ring_summary() -> dict:
        out = {}
        for method in RING_METHODS:
            for lr in lrs:
                rs = [r for r in ring if r["method"] == method and r["lr"] == lr]
                ok = [r for r in rs if not r["diverged"]]
                out[f"{method}@{lr:g}"] = {
                    "runs": len(rs), "diverged": sum(r["diverged"] for r in rs),
                    "collapsed": sum(r["collapsed"] for r in rs),
                    "modes": sum(r["modes"] for r in rs) / len(rs),
                    "hq": sum(r["hq"] for r in rs) / len(rs),
                    "kl": sum(r["kl"] for r in rs) / len(rs),
                    "median_radius": (sum(r["median_radius"] for r in ok) / len(ok)) if ok else None,
                    "mean_cg_iterations": (sum(r["mean_cg_iterations"] for r in rs) / len(rs)
                                           if method == "acgd" else None),
                    "seconds": sum(r["seconds"] for r in rs)}
        return out

    ring_sum = ring_summary()
    print(f"\nring, zero-sum GAN loss, {ring_steps} steps, seeds {ring_seeds}:")
    for k, e in ring_sum.items():
        print(f"  {k:16s} diverged {e['diverged']}/{e['runs']}, collapsed {e['collapsed']}/{e['runs']}, "
              f"modes {e['modes']:.1f}, hq {100 * e['hq']:.1f}%, KL {e['kl']:.3f}, radius {e['median_radius']}, "
              f"CG its {e['mean_cg_iterations']}, {e['seconds']:.0f} s")

    # ------------------------------------------------------------------ checks
    checks: list[tuple[str, bool, str]] = []
    checks.append(("CGD step = closed form Δx = −η(I + η²AAᵀ)⁻¹(∇ₓf + ηA∇ᵧf) (and Δy), 5 steps", dev_cgd < 1e-12,
                   f"max dev {dev_cgd:.1e}"))
    checks.append(("ACGD step = dense block solve with RMSprop-scaled η, 5 steps", dev_acgd < 1e-12,
                   f"max dev {dev_acgd:.1e}"))
    worst = max(r["max_rel_dev_vs_authors"] for r in one_d.values())
    checks.append(("every 1-D trajectory (5 methods × 9 games) = the authors' recursion", worst < 1e-12,
                   f"max relative dev {worst:.1e}"))
    bil = {(a, m): one_d[f"bilinear/alpha={a:g}/{m}"]["final"] for a in ALPHAS for m in METHODS_1D}
    start = math.hypot(*X0)
    checks.append(("bilinear: GDA diverges at every α; CGD converges at every α (distance < start)",
                   all(bil[(a, "GDA")] > start and bil[(a, "CGD")] < start for a in ALPHAS),
                   ", ".join(f"α {a:g}: GDA {bil[(a, 'GDA')]:.3g}, CGD {bil[(a, 'CGD')]:.3g}" for a in ALPHAS)))
    rate = max(abs(bil[(a, "CGD")] / start - (1 + ETA**2 * a**2) ** -25) / (1 + ETA**2 * a**2) ** -25 for a in ALPHAS)
    checks.append(("bilinear: CGD contracts by exactly 1/√(1 + η²α²) per step", rate < 1e-9, f"max rel dev {rate:.1e}"))
    checks.append(("bilinear α 6: LCGD, ConOpt and OGDA all end farther out than CGD",
                   all(bil[(6.0, m)] > 1e3 * bil[(6.0, "CGD")] for m in ("LCGD", "ConOpt", "OGDA")),
                   ", ".join(f"{m} {bil[(6.0, m)]:.3g}" for m in ("LCGD", "ConOpt", "OGDA"))))
    same = max(rel_dev([(v, 0.0) for v in one_d[f"{k}/alpha={a:g}/CGD"]["dist"]],
                       [(v, 0.0) for v in one_d[f"{k}/alpha={a:g}/GDA"]["dist"]])
               for k in ("convex-concave", "concave-convex") for a in ALPHAS)
    checks.append(("separable quadratics (no interaction): CGD's trajectory is GDA's", same < 1e-12,
                   f"max relative dev {same:.1e}"))
    q = {(k, a, m): one_d[f"{k}/alpha={a:g}/{m}"]["final"] for k in ("convex-concave", "concave-convex")
         for a in ALPHAS for m in METHODS_1D}
    checks.append(("quadratics: CGD converges on α(x² − y²) for α ∈ {1, 3} (ηα < 1) and diverges on −α(x² − y²) at "
                   "every α; ConOpt converges to the non-Nash point of −(x² − y²)",
                   all(q[("convex-concave", a, "CGD")] < 1e-6 for a in (1.0, 3.0))
                   and all(q[("concave-convex", a, "CGD")] > 1e6 for a in ALPHAS)
                   and q[("concave-convex", 1.0, "ConOpt")] < 1e-6,
                   "CGD α(x²−y²) " + ", ".join(f"{q['convex-concave', a, 'CGD']:.2g}" for a in ALPHAS)
                   + "; CGD −α(x²−y²) " + ", ".join(f"{q['concave-convex', a, 'CGD']:.2g}" for a in ALPHAS)
                   + f"; ConOpt −(x²−y²) {q['concave-convex', 1.0, 'ConOpt']:.2g}"))
    cgd_cov = [r for r in cov if r["method"] == "CGD"]
    cgd_big = next(r for r in cgd_cov if r["eta"] == max(cov_etas))
    checks.append(("covariance: CGD never diverges; at the largest step it ends below 1e-3 × the start residual",
                   all(not r["diverged"] for r in cgd_cov) and cgd_big["final"] < 1e-3 * cgd_big["start"],
                   ", ".join(f"η {r['eta']:g}: {r['final']:.2g}" for r in cgd_cov)
                   + f" (start {cgd_big['start']:.3g})"))
    other_big = [r for r in cov if r["method"] != "CGD" and r["eta"] == max(cov_etas)]
    checks.append(("covariance: OGDA, SGA, ConOpt diverge at the largest step size",
                   all(r["diverged"] for r in other_big), ", ".join(f"{r['method']} {r['final']:.2g}"
                                                                   for r in other_big)))
    checks.append(("ring: every run finished with mode statistics in range",
                   all(0 <= r["modes"] <= 8 and 0 <= r["hq"] <= 1 for r in ring), f"{len(ring)} runs"))
    a1 = run_ring("acgd", lrs[0], 0, 2)
    a2 = run_ring("acgd", lrs[0], 0, 2)
    checks.append(("ring: ACGD deterministic (2-step rerun identical)",
                   {k: a1[k] for k in ("modes", "hq", "kl", "median_radius", "losses")}
                   == {k: a2[k] for k in ("modes", "hq", "kl", "median_radius", "losses")}, str(a1["losses"])))
    print("\nsanity checks:")
    ok = True
    for name, passed, detail in checks:
        ok &= passed
        print(f"  {'PASS' if passed else 'FAIL'}  {name}: {detail}")

    out_dir = ROOT / "benchmarks" / "results" / "reproduce"
    out_dir.mkdir(parents=True, exist_ok=True)
    result = {
        "paper": PAPER,
        "quick": quick,
        "machine": {"python": platform.python_version(), "torch": torch.__version__, "threads": 1},
        "seconds": round(time.perf_counter() - t_start, 1),
        "settings": {"eta": ETA, "gamma": GAMMA, "alphas": ALPHAS, "start": X0, "cov_d": cov_d,
                     "cov_budget": cov_budget, "cov_etas": cov_etas, "ring_steps": ring_steps, "ring_seeds": ring_seeds,
                     "lrs": lrs, "adam": {"beta1": 0.5, "beta2": 0.999}, "acgd": {"beta": 0.99, "eps": 1e-8,
                                                                                  "tol": 1e-5}},
        "closed_form": {"cgd_max_dev": dev_cgd, "acgd_max_dev": dev_acgd},
        "one_d": {k: {kk: vv for kk, vv in v.items() if kk != "dist"} for k, v in one_d.items()},
        "covariance": [{k: v for k, v in r.items() if k != "curve"} for r in cov],
        "ring_summary": ring_sum,
        "ring_reference": ref,
        "ring": [{k: v for k, v in r.items() if k != "samples"} for r in ring],
        "checks": [{"name": n, "passed": p, "detail": d} for n, p, d in checks],
    }
    path = out_dir / ("competitive-quick.json" if quick else "competitive.json")
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"\nwrote {path.relative_to(ROOT)} ({result['seconds']} s)")
    if not quick:
        png = ROOT / "docs" / "img" / "reproduce" / "competitive.png"
        plot(one_d, cov, ring, lrs, png)
        print(f"wrote {png.relative_to(ROOT)}")
    print("ALL PASS" if ok else "SOME CHECKS FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
