"""Reproduction: Wang, Zhang & Ba, ICLR 2020, "On Solving Minimax Optimization Locally: A Follow-the-Ridge
Approach" (``follow-ridge``), and Zhang, Wu, Poupart & Yu 2020, "Newton-type Methods for Minimax Optimization"
(arXiv 2006.14592; ``gdn``, ``complete-newton``).

Claims. (FTR) On their low-dimensional toy functions g1 = −3x² − y² + 4xy (origin: local minimax, not a local Nash
point), g2 = 3x² + y² + 4xy (origin: stationary, not local minimax) and a non-quadratic g3, gradient descent–ascent
(GDA) converges to the non-minimax point of g2 and fails on g1/g3, while Follow-the-Ridge (FR) converges exactly
to the local minimax points and is repelled from the non-minimax one; on a 1-D mixture of Gaussians FR drives both
players' gradient norms towards zero where GDA keeps oscillating. (Newton) GDN (gradient step for the leader, Newton
step for the follower) and Complete Newton (CN, Newton on the Schur complement for the leader too) converge faster
than GDA/TGDA/FR to strict local minimax points, CN super-linearly, and are much less hurt by ill-conditioning.

Protocols, from the authors' public code (github.com/gd-zhang/Follow-the-Ridge ``quadratic.py``,
``follow_ridge_1D.py``; github.com/watml/min-max-2nd-order ``synthetic.py``, ``run.py``, ``bash_gaussian_mean.sh``):

A. toys (FTR ``quadratic.py``): g1 from (5, 7), g2 from (6, 5), g3 from (7, 5); 1,000 iterations, η = 0.05 for
   both players; GDA and FR (x ← x − η f_x, y ← y + η f_y + η f_xy/f_yy · f_x). Ours: ``sgd`` (simultaneous) and
   ``follow-ridge`` (``base: sgd``, exact solves), with ``gdn`` (η = [0.05, 1]) and ``complete-newton`` (η = 1)
   added. The authors' recursions are re-implemented from their equations (float64) as the reference.
B. sin-minimax (Newton ``synthetic.py``): f = (x² + 1)(2 + sin y), local minimax (0, π/2), start (1, π/2 + 0.01),
   200 iterations; GDA alternating η 0.1/0.1, FR η 0.1/0.1, GDN η_x 0.1 (η_y 1), CN η 1/1 (leader first, follower at
   the new leader: their "alternating" GDN/CN).
C. Gaussian mean estimation, ill-conditioned (Newton ``bash_gaussian_mean.sh``): data x ~ N(0, diag(1, 0.05)),
   n = 10,000, full batch; G(z) = z + θ with z the data itself (their ShiftNet/NoiseGenerator); linear D(x) = wᵀx;
   f = −BCE(D(x), 1) − BCE(D(G(z)), 0), G minimises f, D maximises it; θ, w ~ 0.1·N(0, I); 1,000 iterations; CG with
   8 iterations, no damping. 2TS-GDA (alternating, η_x 0.05, η_y 0.5), GDA-20 (20 D steps of 0.05), FR (0.05, 0.5),
   GDN (0.05, 1), CN (1, 1). Measured: ‖∇_θ f‖ + ‖∇_w f‖ per iteration and the linear rate vs its prediction from
   the Hessian at the equilibrium (0, 0).
D. 1-D mixture of Gaussians GAN (FTR ``follow_ridge_1D.py``): 3 modes at −4, 0, 4, σ 0.1; G, D: MLP 2×64 tanh,
   z ∈ R¹⁶, Xavier-normal init; saturating (zero-sum) loss, D's loss with weight decay 1e-4; both players
   RMSprop (β 0.999, ε 1e-8, bias-corrected = ``adam`` with β₁ = 0) at 2e-4; FR with 5 CG iterations on the normal
   equations, damping 1 adapted by their rule, the mixed term by a gradient difference along G's step; a fixed
   data set of 5,000 points as the batch, fresh z each step; 50,000 iterations. Scaled here (0.09 s per FR step on
   one thread at batch 500): 500 points, lr 3e-3 (15×) for 2,500 iterations (5%; lr × iterations 7.5 vs their
   10), ``--mog-*`` options; the values used are in the JSON.

    python benchmarks/reproduce/ridge.py --quick   # seconds: library checks + short runs, PASS/FAIL, exit 1 on FAIL
    python benchmarks/reproduce/ridge.py           # full: every experiment (≈ 6.5 minutes on one thread)
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from saddlepoint.metrics.modes import mode_stats
from saddlepoint.models.mlp import mlp
from saddlepoint.optim import build

ROOT = Path(__file__).resolve().parents[2]
NAME = "ridge"
DT = torch.float64
EXACT = {"system": "normal", "krylov": "cg", "damping": 0.0, "adapt_damping": False, "tol": 1e-30, "max_iter": 8}

PAPER = {
    "ftr": {
        "source": "Wang, Zhang & Ba, ICLR 2020, section 5 (toy functions figure; MOG figures) + "
                  "github.com/gd-zhang/Follow-the-Ridge (quadratic.py, follow_ridge_1D.py)",
        "toys": "g1 = -3x^2 - y^2 + 4xy from (5,7); g2 = 3x^2 + y^2 + 4xy from (6,5); g3 from (7,5); eta 0.05, 1000 it",
        "claim_toys": "GDA converges to the non-minimax origin of g2 and does not converge to the local minimax of g1 "
                      "and g3; FR converges to the local minimax points of g1 and g3 and is repelled from g2's origin "
                      "(trajectory figure, no numbers)",
        "mog": "1-D MOG (modes -4,0,4, std 0.1), MLP 2x64 tanh, z 16, batch 5000, RMSprop 2e-4, wd 1e-4, 50000 it; "
               "FR: 5 CG iterations, damping 1 adapted",
        "claim_mog": "FR's gradient norms of both players decrease by orders of magnitude while GDA's stay large and "
                     "oscillate (gradient-norm figure, no numbers)",
    },
    "newton": {
        "source": "Zhang, Wu, Poupart & Yu 2020, arXiv 2006.14592, experiments + github.com/watml/min-max-2nd-order "
                  "(synthetic.py, run.py, bash_gaussian_mean.sh)",
        "claim": "GDN and CN converge faster than GDA/TGDA/FR to strict local minimax points, CN super-linearly "
                 "(quadratically), and are much less affected by ill-conditioning (gradient-norm / distance "
                 "figures, no numbers)",
    },
}


# ============================================================================ A/B: scalar games
def g1(x, y):
    return -3 * x * x - y * y + 4 * x * y


def g2(x, y):
    return 3 * x * x + y * y + 4 * x * y


def g3(x, y):
    return (0.4 * x * x - 0.1 * (y - 3 * x + 0.05 * x ** 3) ** 2 - 0.01 * y ** 4) * torch.exp(-0.01 * (x * x + y * y))


def sin_minimax(x, y):
    return (x * x + 1) * (2 + torch.sin(y))


TOYS = {"g1": (g1, (5.0, 7.0), (0.0, 0.0)), "g2": (g2, (6.0, 5.0), (0.0, 0.0)), "g3": (g3, (7.0, 5.0), (0.0, 0.0))}
SIN = (sin_minimax, (1.0, math.pi / 2 + 1e-2), (0.0, math.pi / 2))


def derivs(f, x: float, y: float) -> tuple[float, float, float, float, float]:
    """f_x, f_y, f_xx, f_xy, f_yy at (x, y) by autograd (float64)."""
    z = torch.tensor([x, y], dtype=DT)
    g = torch.autograd.functional.jacobian(lambda v: f(v[0], v[1]), z)
    h = torch.autograd.functional.hessian(lambda v: f(v[0], v[1]), z)
    return float(g[0]), float(g[1]), float(h[0, 0]), float(h[0, 1]), float(h[1, 1])


def reference(method: str, f, z0, steps: int, ex: float, ey: float) -> list[tuple[float, float]]:
    """The authors' recursions, from their equations: GDA and FR simultaneous (FTR quadratic.py; FR's y-step
    η_y f_y + η_x f_xy/f_yy f_x); 'gda-alt', 'gdn' and 'cn' with the leader first and the follower at the new
    leader (Newton synthetic.py: GDN y ← y − f_y/f_yy; CN x ← x − η f_x/(f_xx − f_xy²/f_yy))."""
    x, y = z0
    out = [(x, y)]
    for _ in range(steps):
        fx, fy, fxx, fxy, fyy = derivs(f, x, y)
        if method == "gda":
            x, y = x - ex * fx, y + ey * fy
        elif method == "ftr":
            x, y = x - ex * fx, y + ey * fy + ex * fxy / fyy * fx
        else:
            if method == "cn":
                x = x - ex / (fxx - fxy * fxy / fyy) * fx
            else:
                x = x - ex * fx
            _, fy, _, _, fyy = derivs(f, x, y)
            y = y + ey * fy if method == "gda-alt" else y - ey * fy / fyy
        out.append((x, y))
        if not (math.isfinite(x) and math.isfinite(y)) or abs(x) + abs(y) > 1e12:
            break
    return out


OURS = {  # method → (registry name, hyper-parameters given η = (η_x, η_y))
    "gda": lambda ex, ey: ("sgd", {"lr": [ex, ey], "scheme": "simultaneous"}),
    "gda-alt": lambda ex, ey: ("sgd", {"lr": [ex, ey], "scheme": "alternating", "order": "forward"}),
    "ftr": lambda ex, ey: ("follow-ridge", {"lr": [ex, ey], "base": "sgd", **EXACT}),
    "gdn": lambda ex, ey: ("gdn", {"lr": [ex, ey], "base": "sgd", **EXACT}),
    # normal equations for both solves: exact Newton steps wherever G_yy is invertible. (With ``system: direct``
    # CG meets negative curvature where G_yy is not positive definite — g2, parts of g3; it then steps along the
    # gradient; before that fix, found by this script, the follower did not move at all.)
    "cn": lambda ex, ey: ("complete-newton", {"lr": [ex, ey], **EXACT}),
}


def ours(method: str, f, z0, steps: int, ex: float, ey: float) -> list[tuple[float, float]]:
    x = torch.tensor([z0[0]], dtype=DT, requires_grad=True)
    y = torch.tensor([z0[1]], dtype=DT, requires_grad=True)
    name, hp = OURS[method](ex, ey)
    opt = build(name, [[x], [y]], **hp)

    def closure():
        v = f(x, y).sum()
        return [v, -v]

    out = [(float(x.detach()), float(y.detach()))]
    for _ in range(steps):
        opt.step(closure)
        out.append((float(x.detach()), float(y.detach())))
        if not (math.isfinite(out[-1][0]) and math.isfinite(out[-1][1])) or abs(out[-1][0]) + abs(out[-1][1]) > 1e12:
            break
    return out


def dist(p, q) -> float:
    return math.hypot(p[0] - q[0], p[1] - q[1])


def toy_runs(steps: int, methods: tuple[str, ...] = ("gda", "ftr", "gdn", "cn"),
             games: tuple[str, ...] = tuple(TOYS)) -> dict:
    out = {}
    for name in games:
        f, z0, star = TOYS[name]
        for method in methods:
            ex, ey = {"gdn": (0.05, 1.0), "cn": (1.0, 1.0)}.get(method, (0.05, 0.05))
            tr = ours(method, f, z0, steps, ex, ey)
            tail = tr[-max(2, len(tr) // 10):]
            fin = all(math.isfinite(v) for v in tr[-1]) and abs(tr[-1][0]) + abs(tr[-1][1]) < 1e6
            gx, gy = derivs(f, *tr[-1])[:2] if fin else (math.inf, math.inf)
            row = {"game": name, "method": method, "lr": [ex, ey], "trajectory": tr, "final": tr[-1],
                   "final_distance": dist(tr[-1], star), "steps_run": len(tr) - 1,
                   "final_grad_norm": math.hypot(gx, gy) if fin else math.inf,
                   "tail_spread": max(dist(p, tail[-1]) for p in tail) if fin else math.inf}
            if method in ("gda", "ftr"):
                ref = reference(method, f, z0, steps, ex, ey)
                n = min(len(ref), len(tr))
                row["paper_final"] = ref[-1]
                row["paper_final_distance"] = dist(ref[-1], star)
                dev = max(dist(a, b) / max(1.0, math.hypot(*b)) for a, b in zip(tr[:n], ref[:n], strict=True))
                row["max_rel_deviation_from_paper_recursion"] = dev
            out[f"{name}/{method}"] = row
    return out


def sin_runs(steps: int) -> dict:
    f, z0, star = SIN
    out = {}
    for method, (ex, ey) in {"gda-alt": (0.1, 0.1), "ftr": (0.1, 0.1), "gdn": (0.1, 1.0), "cn": (1.0, 1.0)}.items():
        tr = ours(method, f, z0, steps, ex, ey)
        ref = reference(method, f, z0, steps, ex, ey)
        d, dr = [dist(p, star) for p in tr], [dist(p, star) for p in ref]
        first = next((i for i, v in enumerate(d) if v < 1e-10), None)
        first_r = next((i for i, v in enumerate(dr) if v < 1e-10), None)
        out[method] = {"lr": [ex, ey], "distance": d, "paper_distance": dr, "final_distance": d[-1],
                       "paper_final_distance": dr[-1], "steps_to_1e-10": first, "paper_steps_to_1e-10": first_r}
    return out


# ============================================================================ C: Gaussian mean estimation
def mean_game(seed: int = 0, n: int = 10_000):
    g = torch.Generator().manual_seed(seed)
    data = torch.randn(n, 2, generator=g, dtype=DT) * torch.tensor([1.0, math.sqrt(0.05)], dtype=DT)
    theta = (0.1 * torch.randn(2, generator=g, dtype=DT)).requires_grad_()
    w = (0.1 * torch.randn(2, generator=g, dtype=DT)).requires_grad_()

    def f_of(th, ww):
        real, fake = data @ ww, (data + th) @ ww
        return -F.softplus(-real).mean() - F.softplus(fake).mean()  # −BCE(real, 1) − BCE(fake, 0)

    return data, theta, w, f_of


MEAN_METHODS = {"2ts-gda": ("gda-alt", 0.05, 0.5), "gda-20": ("gda-20", 0.05, 0.05), "ftr": ("ftr", 0.05, 0.5),
                "gdn": ("gdn", 0.05, 1.0), "cn": ("cn", 1.0, 1.0)}


def mean_run(label: str, steps: int) -> dict:
    method, ex, ey = MEAN_METHODS[label]
    _, theta, w, f_of = mean_game()

    def closure():
        v = f_of(theta, w)
        return [v, -v]

    def gnorm() -> float:
        gx, gy = torch.autograd.grad(f_of(theta, w), [theta, w])
        return float(gx.norm() + gy.norm())

    if method == "gda-20":
        opt = build("sgd", [[theta], [w]], lr=[ex, ey])
    else:
        name, hp = OURS[method](ex, ey)
        opt = build(name, [[theta], [w]], **hp)
    norms, t0 = [gnorm()], time.perf_counter()
    for _ in range(steps):
        if method == "gda-20":
            opt.step(closure, players=[0])
            for _ in range(20):
                opt.step(closure, players=[1])
        else:
            opt.step(closure)
        norms.append(gnorm())
    k = next((i for i, v in enumerate(norms) if v < 1e-12), None)
    lo, hi = (steps // 2, steps) if k is None else (max(0, k // 2), k)
    rate = (norms[hi] / norms[lo]) ** (1.0 / max(1, hi - lo)) if norms[lo] > 0 and norms[hi] > 0 else 0.0
    return {"method": label, "lr": [ex, ey], "grad_norm": norms, "final_grad_norm": norms[-1],
            "final_point": [theta.tolist(), w.tolist()], "iterations_to_1e-12": k, "measured_rate": rate,
            "seconds": round(time.perf_counter() - t0, 2)}


def mean_predicted() -> dict:
    """Spectral radii of the linearised iterations at the equilibrium (0, 0) from the exact Hessian of f there."""
    _, _, _, f_of = mean_game()
    z = torch.zeros(4, dtype=DT)
    H = torch.autograd.functional.hessian(lambda v: f_of(v[:2], v[2:]), z)
    hxx, hxy, hyx, hyy = H[:2, :2], H[:2, 2:], H[2:, :2], H[2:, 2:]
    S = hxx - hxy @ torch.linalg.solve(hyy, hyx)
    eye = torch.eye(2, dtype=DT)

    def rho(M):
        return float(torch.linalg.eigvals(M).abs().max())

    def alt(ex, ey, dsteps=1):
        Mx = torch.cat([eye - ex * hxx, -ex * hxy], 1)  # x' = x − η_x ∇_x f
        Y = torch.cat([torch.zeros(2, 2, dtype=DT), eye], 1)
        M = torch.cat([Mx, Y], 0)
        for _ in range(dsteps):  # y' = y + η_y ∇_y f(x', y)
            M = torch.cat([M[:2], M[2:] + ey * (hyx @ M[:2] + hyy @ M[2:])], 0)
        return M

    s = torch.linalg.eigvalsh(S)
    return {"S_eigenvalues": s.tolist(), "Hyy_eigenvalues": torch.linalg.eigvalsh(hyy).tolist(),
            "2ts-gda": rho(alt(0.05, 0.5)), "gda-20": rho(alt(0.05, 0.05, 20)),
            "ftr": max(float((1 - 0.05 * s).abs().max()), float((1 + 0.5 * torch.linalg.eigvalsh(hyy)).abs().max())),
            "gdn": float((1 - 0.05 * s).abs().max()), "cn": 0.0}


# ============================================================================ D: 1-D mixture of Gaussians
MOG_CENTERS = torch.tensor([[-4.0], [0.0], [4.0]], dtype=torch.float64)


def mog_run(method: str, steps: int, n: int, lr: float, every: int, seed: int = 0) -> dict:
    torch.manual_seed(seed)
    G, D = mlp((1,), 16, depth=2, width=64, activation="tanh")
    for m in [*G.modules(), *D.modules()]:
        if isinstance(m, torch.nn.Linear):
            torch.nn.init.xavier_normal_(m.weight)
            torch.nn.init.zeros_(m.bias)
    gen = torch.Generator().manual_seed(1000 + seed)
    data = (MOG_CENTERS[torch.randint(0, 3, (n,), generator=gen)].float()
            + 0.1 * torch.randn(n, 1, generator=gen))
    z_eval = torch.randn(2500, 16, generator=torch.Generator().manual_seed(2000 + seed))
    players = [list(G.parameters()), list(D.parameters())]
    rms = {"base": "adam", "beta1": 0.0, "beta2": 0.999, "eps": 1e-8}
    if method == "ftr":
        opt = build("follow-ridge", players, lr=lr, **rms, mixed="step", system="normal", krylov="cg", max_iter=5,
                    damping=1.0, adapt_damping=True, tol=1e-8)
    else:
        opt = build("adam", players, lr=lr, beta1=0.0, beta2=0.999, eps=1e-8, scheme="simultaneous")

    def losses(z):
        d_real, d_fake = D(data), D(G(z))
        loss_d = F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
        loss_d = loss_d + 1e-4 * sum((p ** 2).sum() for p in D.parameters())
        return [-F.softplus(d_fake).mean(), loss_d]  # saturating G loss: the zero-sum game

    track, t0, accepted, lams = [], time.perf_counter(), 0, []
    for step in range(steps + 1):
        z = torch.randn(n, 16, generator=gen)
        if step % every == 0 or step == steps:
            lg, ld = losses(z)
            gx = torch.autograd.grad(lg, players[0], retain_graph=True)
            gy = torch.autograd.grad(ld, players[1])
            with torch.no_grad():
                x = G(z_eval)
            track.append({"step": step, "gnorm_g": float(sum((g ** 2).sum() for g in gx)),
                          "gnorm_d": float(sum((g ** 2).sum() for g in gy)),
                          **mode_stats(x.double(), MOG_CENTERS, 0.1), "finite": bool(torch.isfinite(x).all())})
        if step == steps:
            break
        opt.step(lambda z=z: losses(z))
        if method == "ftr":
            info = getattr(opt, "last_solve", {}).get("follower", {})
            accepted += bool(info.get("accepted", False))
            lams.append(float(info.get("damping", math.nan)))
    with torch.no_grad():
        samples = G(z_eval).squeeze(1)
    return {"method": method, "steps": steps, "n": n, "lr": lr, "track": track, "final": track[-1],
            "samples": samples[:1000].tolist(), "seconds": round(time.perf_counter() - t0, 1),
            "damping": getattr(opt, "state", {}).get("damping") if method == "ftr" else None,
            "ridge_correction_accepted_share": accepted / max(1, steps) if method == "ftr" else None,
            "median_damping": sorted(lams)[len(lams) // 2] if lams else None}


# ============================================================================ library checks
def quadratic_checks() -> dict:
    """One step of each method against its paper's update formula on f = ½xᵀAx + xᵀBy + ½yᵀCy (x ∈ R³, y ∈ R⁴,
    C negative definite, S = A − BC⁻¹Bᵀ positive definite), exact solves: largest absolute deviation."""
    g = torch.Generator().manual_seed(3)
    Q = torch.randn(4, 4, generator=g, dtype=DT)
    C = -(Q @ Q.T + 0.5 * torch.eye(4, dtype=DT))
    B = torch.randn(3, 4, generator=g, dtype=DT)
    R = torch.randn(3, 3, generator=g, dtype=DT)
    A = (R + R.T) / 2  # indefinite in general; shifted so that S = A − BC⁻¹Bᵀ ≥ I
    A = A + (1.0 - torch.linalg.eigvalsh(A - B @ torch.linalg.solve(C, B.T)).min()) * torch.eye(3, dtype=DT)
    x0, y0 = torch.randn(3, generator=g, dtype=DT), torch.randn(4, generator=g, dtype=DT)
    gx, gy = A @ x0 + B @ y0, B.T @ x0 + C @ y0
    S = A - B @ torch.linalg.solve(C, B.T)
    ex, ey = 0.07, 0.3
    paper = {
        # FTR eq. (4): x ← x − η_x ∇_x f, y ← y + η_y ∇_y f + η_x H_yy⁻¹ H_yx ∇_x f
        "ftr": (x0 - ex * gx, y0 + ey * gy + ex * torch.linalg.solve(C, B.T @ gx)),
        # GDN: y ← y − H_yy⁻¹ (η_y ∇_y f − η_x H_yx ∇_x f) (the Newton step at the leader's new point)
        "gdn": (x0 - ex * gx, y0 - torch.linalg.solve(C, ey * gy - ex * B.T @ gx)),
        # CN: x ← x − η_x S⁻¹ ∇_x f, the follower as GDN along that step
        "cn": (x0 - ex * torch.linalg.solve(S, gx),
               y0 - torch.linalg.solve(C, ey * gy + B.T @ (-ex * torch.linalg.solve(S, gx)))),
    }
    out = {}
    for method, (px, py) in paper.items():
        for mixed in ("product", "step"):
            x, y = x0.clone().requires_grad_(), y0.clone().requires_grad_()
            name, hp = OURS[method](ex, ey)
            hp = {**hp, "mixed": mixed, "max_iter": 20}
            if method == "cn":
                hp["system"] = "direct"
            opt = build(name, [[x], [y]], **hp)

            def closure(x=x, y=y):
                v = 0.5 * x @ A @ x + x @ B @ y + 0.5 * y @ C @ y
                return [v, -v]

            opt.step(closure)
            out[f"{method}/{mixed}"] = max(float((x.detach() - px).abs().max()), float((y.detach() - py).abs().max()))
    # two CN steps with η = 1 land on the equilibrium (0, 0)
    x, y = x0.clone().requires_grad_(), y0.clone().requires_grad_()
    opt = build("complete-newton", [[x], [y]], **{**EXACT, "system": "direct", "max_iter": 20})

    def closure2():
        v = 0.5 * x @ A @ x + x @ B @ y + 0.5 * y @ C @ y
        return [v, -v]

    for _ in range(2):
        opt.step(closure2)
    out["cn two steps: distance to equilibrium"] = float(torch.cat([x.detach(), y.detach()]).norm())
    return out


# ============================================================================ figure
def figure(toys: dict, sin: dict, mean: dict, mog: dict, path: Path, mog_note: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(14, 8.5))
    colors = {"gda": "tab:gray", "ftr": "tab:red", "gdn": "tab:blue", "cn": "tab:orange"}
    for ax, (name, (f, z0, _)) in zip(axes[0], TOYS.items(), strict=True):
        w = 12 if name != "g3" else 8
        xs = torch.linspace(-w, w, 120, dtype=DT)
        X, Y = torch.meshgrid(xs, xs, indexing="xy")
        ax.contourf(X.numpy(), Y.numpy(), f(X, Y).numpy(), 30, cmap="gray")
        for method in ("gda", "ftr", "gdn", "cn"):
            tr = torch.tensor(toys[f"{name}/{method}"]["trajectory"])
            d = toys[f"{name}/{method}"]["final_distance"]
            ax.plot(tr[:, 0].clamp(-w, w), tr[:, 1].clamp(-w, w), "-" if method == "ftr" else "--",
                    color=colors[method], lw=2 if method == "ftr" else 1.3, label=f"{method} (final dist {d:.1e})")
        ax.plot(*z0, "^", color="r", ms=9)
        ax.set_xlim(-w, w)
        ax.set_ylim(-w, w)
        ax.set_title(f"FTR toy {name}: η 0.05, 1,000 iterations", fontsize=9)
        ax.legend(fontsize=7, loc="lower right")
    ax = axes[1][0]
    for method, r in sin.items():
        ax.semilogy([max(v, 1e-17) for v in r["distance"]], label=f"{method} (ours)",
                    color=colors.get(method.replace("-alt", ""), "k"))
        ax.semilogy([max(v, 1e-17) for v in r["paper_distance"]], ":", color="k", lw=0.8)
    ax.set_title("sin-minimax (Newton paper): distance to (0, π/2)\ndotted: authors' recursions", fontsize=9)
    ax.set_xlabel("iteration")
    ax.legend(fontsize=7)
    ax = axes[1][1]
    for label, r in mean["runs"].items():
        ax.semilogy([max(v, 1e-17) for v in r["grad_norm"]], label=f"{label} (rate {r['measured_rate']:.4f})")
    ax.set_title("Gaussian mean, ill-conditioned (Newton paper)\n‖∇_θ f‖ + ‖∇_w f‖", fontsize=9)
    ax.set_xlabel("iteration")
    ax.legend(fontsize=7)
    ax = axes[1][2]
    for method, r in mog.items():
        st = [t["step"] for t in r["track"]]
        c = "tab:red" if method == "ftr" else "tab:gray"
        ax.semilogy(st, [t["gnorm_g"] for t in r["track"]], "-", color=c, label=f"{method}: G ‖∇‖²")
        ax.semilogy(st, [t["gnorm_d"] for t in r["track"]], "--", color=c, label=f"{method}: D ‖∇‖²")
    ax.set_title(f"1-D MOG GAN (FTR paper), squared gradient norms\nscaled: {mog_note}", fontsize=9)
    ax.set_xlabel("iteration")
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ============================================================================ main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="short runs; PASS/FAIL sanity checks")
    ap.add_argument("--mog-steps", type=int, default=None, help="1-D MOG iterations (paper 50,000)")
    ap.add_argument("--mog-n", type=int, default=None, help="1-D MOG data set = batch size (paper 5,000)")
    ap.add_argument("--mog-lr", type=float, default=3e-3, help="1-D MOG RMSprop learning rate (paper 2e-4)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    quick = args.quick
    t_start = time.perf_counter()
    toy_steps, sin_steps, mean_steps = (200, 60, 20) if quick else (1000, 200, 1000)
    mog_steps = args.mog_steps or (4 if quick else 2500)
    mog_n = args.mog_n or (200 if quick else 500)
    mog_every = 2 if quick else 50

    lib = quadratic_checks()
    for k, v in lib.items():
        print(f"library check {k}: {v:.2e}")
    toys = toy_runs(toy_steps, ("gda", "ftr"), ("g1", "g2")) if quick else toy_runs(toy_steps)
    for key, r in toys.items():
        extra = (f", paper recursion {r['paper_final_distance']:.3e}, max rel. deviation "
                 f"{r['max_rel_deviation_from_paper_recursion']:.1e}") if "paper_final" in r else ""
        print(f"toy {key:10s}: final distance {r['final_distance']:.3e} after {r['steps_run']} steps, at "
              f"({r['final'][0]:.3g}, {r['final'][1]:.3g}), |grad| {r['final_grad_norm']:.1e}, last-10% spread "
              f"{r['tail_spread']:.1e}{extra}")
    sin = sin_runs(sin_steps)
    for m, r in sin.items():
        print(f"sin-minimax {m:8s}: distance {r['final_distance']:.2e} (paper recursion "
              f"{r['paper_final_distance']:.2e}), <1e-10 at {r['steps_to_1e-10']} (paper {r['paper_steps_to_1e-10']})")
    pred = mean_predicted()
    mean = {"predicted_rate": pred, "runs": {}}
    for label in MEAN_METHODS:
        if quick and label == "gda-20":
            continue
        r = mean_run(label, mean_steps)
        mean["runs"][label] = r
        print(f"gaussian mean {label:8s}: grad norm {r['grad_norm'][0]:.2e} -> {r['final_grad_norm']:.2e}, "
              f"<1e-12 at {r['iterations_to_1e-12']}, rate {r['measured_rate']:.4f} (predicted "
              f"{pred[label]:.4f}), {r['seconds']} s")
    mog = {}
    for method in ("gda", "ftr"):
        r = mog_run(method, mog_steps, mog_n, args.mog_lr, mog_every)
        mog[method] = r
        f = r["final"]
        print(f"1-D MOG {method}: {mog_steps} it, |grad G|^2 {r['track'][0]['gnorm_g']:.2e} -> {f['gnorm_g']:.2e}, "
              f"|grad D|^2 {r['track'][0]['gnorm_d']:.2e} -> {f['gnorm_d']:.2e}, modes {f['modes']}/3, "
              f"hq {100 * f['hq']:.0f}%, {r['seconds']} s, correction accepted "
              f"{r['ridge_correction_accepted_share']}, median damping {r['median_damping']}", flush=True)
    seconds = round(time.perf_counter() - t_start, 1)

    out_dir = ROOT / "benchmarks" / "results" / "reproduce"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / (f"{NAME}-quick.json" if quick else f"{NAME}.json")
    record = {
        "paper": PAPER,
        "ours": {"toys": {"steps": toy_steps, "exact_solves": EXACT}, "sin_minimax": {"steps": sin_steps},
                 "gaussian_mean": {"steps": mean_steps, "n": 10_000, "seed": 0},
                 "mog_1d": {"steps": mog_steps, "n": mog_n, "lr": args.mog_lr, "every": mog_every,
                            "model": "mlp 2x64 tanh, z 16, xavier normal", "optimizer": "adam beta1 0 (= their "
                            "bias-corrected RMSprop), follow-ridge base adam beta1 0, mixed step, cg 5, damping 1 "
                            "adapted"},
                 "torch_threads": 1},
        "library_checks": lib,
        "toys": {k: {kk: vv for kk, vv in v.items() if kk != "trajectory"} for k, v in toys.items()},
        "sin_minimax": sin,
        "gaussian_mean": mean,
        "mog_1d": {k: {kk: vv for kk, vv in v.items() if kk != "samples"} for k, v in mog.items()},
        "seconds": seconds,
    }
    out.write_text(json.dumps(record, indent=1))
    print(f"wrote {out.relative_to(ROOT)} ({seconds} s)")
    if not quick:
        png = ROOT / "docs" / "img" / "reproduce" / f"{NAME}.png"
        figure(toys, sin, mean, mog, png, f"n {mog_n}, lr {args.mog_lr:g}, {mog_steps:,} it")
        print(f"wrote {png.relative_to(ROOT)}")
        return 0

    t = {k: v for k, v in toys.items()}
    checks = {
        "library: FTR/GDN/CN steps equal the papers' formulas to 1e-10 (product and step mixed terms)":
            all(v < 1e-10 for k, v in lib.items() if "/" in k),
        "library: CN with eta 1 solves the quadratic game in two steps (distance < 1e-10)":
            lib["cn two steps: distance to equilibrium"] < 1e-10,
        "toys: our GDA and FTR follow the authors' recursions (relative deviation < 1e-10)":
            all(r["max_rel_deviation_from_paper_recursion"] < 1e-10 for r in t.values() if "paper_final" in r),
        "g1: FTR converges to the local minimax (distance < 1e-5); GDA diverges (> 1e3)":
            t["g1/ftr"]["final_distance"] < 1e-5 and t["g1/gda"]["final_distance"] > 1e3,
        "g2: GDA converges to the non-minimax origin (< 1e-5); FTR leaves it (> start distance)":
            t["g2/gda"]["final_distance"] < 1e-5 and t["g2/ftr"]["final_distance"] > math.hypot(6, 5),
        "sin-minimax: CN reaches 1e-10 within 8 steps, GDN within 40": (
            (sin["cn"]["steps_to_1e-10"] or 999) <= 8 and (sin["gdn"]["steps_to_1e-10"] or 999) <= 40),
        "gaussian mean: CN's gradient norm < 1e-12 within 10 iterations":
            (mean["runs"]["cn"]["iterations_to_1e-12"] or 999) <= 10,
        "gaussian mean: GDN ahead of FTR and 2TS-GDA (lower gradient norm after 20 iterations)":
            mean["runs"]["gdn"]["grad_norm"][-1] < min(mean["runs"]["ftr"]["grad_norm"][-1],
                                                       mean["runs"]["2ts-gda"]["grad_norm"][-1]),
        "1-D MOG: finite samples and gradient norms, parameters moved": all(
            all(tr["finite"] and math.isfinite(tr["gnorm_g"]) and math.isfinite(tr["gnorm_d"]) for tr in r["track"])
            and r["final"]["gnorm_g"] != r["track"][0]["gnorm_g"] for r in mog.values()),
    }
    for name, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}: {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
