"""Reproduction (issue 16): Daskalakis, Ilyas, Syrgkanis & Zeng, "Training GANs with Optimism", ICLR 2018.

Claim (their Section 3 toy example, "learning the mean of a multivariate Gaussian" with a WGAN; the protocol is
that of the authors' public notebook ``notebooks/Simple_GAN_example.ipynb`` in
github.com/vsyrgkanis/optimistic_GAN_training): simultaneous gradient descent (GD) on the WGAN game cycles around
(or spirals away from) the equilibrium, even with weight clipping, while optimistic gradient descent (OMD/OGD,
θ_{t+1} = θ_t − 2η∇_t + η∇_{t−1}) converges to it in the last iterate, with exact and with minibatch gradients.

Game: data x ~ N(v, I) in d = 2 dimensions, v = (3, 4); generator G(z) = z + θ, z ~ N(0, I); linear discriminator
D(x) = ⟨w, x⟩; WGAN loss L(θ, w) = E D(x) − E D(G(z)) (= ⟨w, v − θ⟩ in expectation); G minimises L, D maximises it
(player losses [L, −L]); equilibrium θ = v, w = 0. Start w = 1.4·1, θ = 1.7·1 (the notebook's). Gradients:
``expected`` — the exact expectation; ``stochastic`` — minibatch means of B samples of x and of z per step (the loss
is linear in the samples, so x̄ − z̄ ~ N(v, 2I/B) is drawn directly: the same distribution as the notebook's
minibatch averages, at a cost independent of B).

Runs (saddlepoint's optimizers, float64, one gradient per player per step):
* expected game, η = 0.1 for both players, 999 steps (the notebook's T = 1000 iterates): ``sgd`` (simultaneous GD),
  ``sgd`` with D's weights clipped to [−1, 1] after every step (the notebook's "GD with clipping"), ``optimistic``
  with ``base: sgd``;
* stochastic game, η = 0.01, 99,999 steps (T = 100,000): GD with clipping at B = 200 (the notebook's run), GD
  without clipping at B = 200, and optimistic at B = 2000, 200 and 50 (the notebook's three runs).

Reported per run: ‖θ − v‖ and ‖w‖ at the last iterate, the largest ‖θ − v‖ over the last 10% of the iterations
(cycling keeps it large), and ‖θ̄ − v‖ for the uniform average θ̄ of all iterates (what the notebook prints as
"Recovered mean"). The paper's quantities are the notebook's printed last iterates and averages (its stochastic
runs are unseeded, so only their size is comparable; its expected-game runs are deterministic).

Checks of the library: (1) ``optimistic`` with ``base: sgd`` takes exactly θ_{t+1} = θ_t − 2η∇_t + η∇_{t−1}
(first step θ_1 = θ_0 − 2η∇_0) — the gradients are recorded and every step compared to 1e-12; (2) GD with clipping
on the expected game reproduces the notebook's deterministic last iterate θ = (3.48000545, 5.07760794) (printed to
8 digits there); (3) unclipped simultaneous GD grows the distance to the equilibrium by exactly √(1 + η²) per step.

    python benchmarks/reproduce/optimistic.py           # full: about 7.5 CPU-minutes (measured 444 s, loaded machine)
    python benchmarks/reproduce/optimistic.py --quick   # seconds: sanity checks only, exit 1 if one fails

Full mode writes ``benchmarks/results/reproduce/optimistic.json`` and ``docs/img/reproduce/optimistic.png``; quick
mode writes ``benchmarks/results/reproduce/optimistic-quick.json``.
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

from saddlepoint.optim import build  # noqa: E402

torch.set_num_threads(1)
DTYPE = torch.float64
V = (3.0, 4.0)
W0, THETA0 = 1.4, 1.7

#: the authors' notebook (Simple_GAN_example.ipynb), printed outputs: (last θ, mean of all θ iterates)
PAPER = {
    "expected/gd-clip": ((3.48000545, 5.07760794), (3.01224287, 3.98588748)),
    "expected/optimistic": ((2.99125639, 3.98489638), (3.01131623, 4.00931959)),
    "stochastic/gd-clip B=200": ((2.06519415, 2.99770197), (3.00005789, 3.99818775)),
    "stochastic/optimistic B=2000": ((3.00550835, 4.01208917), (3.00146516, 4.00109936)),
    "stochastic/optimistic B=200": ((3.0058941, 3.99661061), (3.00168508, 4.00107909)),
    "stochastic/optimistic B=50": ((3.08116009, 3.87980193), (3.00092459, 4.001331)),
}


def dist_v(theta) -> float:
    return math.hypot(*(float(a) - b for a, b in zip(theta, V)))


class MeanGame:
    """The linear WGAN of the paper: players [θ] (G) and [w] (D); closure returns [L, −L]."""

    def __init__(self, batch: int | None, seed: int) -> None:
        self.v = torch.tensor(V, dtype=DTYPE)
        self.theta = torch.nn.Parameter(torch.full((2,), THETA0, dtype=DTYPE))
        self.w = torch.nn.Parameter(torch.full((2,), W0, dtype=DTYPE))
        self.batch = batch
        torch.manual_seed(seed)

    def losses(self):
        if self.batch is None:  # the expected game: E⟨w, x⟩ − E⟨w, z + θ⟩ = ⟨w, v − θ⟩
            loss = self.w @ (self.v - self.theta)
        else:
            # the minibatch loss mean⟨w, x_i⟩ − mean⟨w, z_i + θ⟩ = ⟨w, x̄ − z̄ − θ⟩ depends on the batch only through
            # its means, so they are drawn directly: x̄ − z̄ ~ N(v, (2/B) I), exactly the minibatch's distribution
            gap = self.v + torch.randn(2, dtype=DTYPE) * math.sqrt(2.0 / self.batch)
            loss = self.w @ (gap - self.theta)
        return [loss, -loss]


def run(method: str, lr: float, steps: int, batch: int | None, clip: float | None, seed: int = 0,
        record_every: int = 1) -> dict:
    game = MeanGame(batch, seed)
    name = "sgd" if method.startswith("gd") else "optimistic"
    hp = {} if name == "sgd" else {"base": "sgd"}
    opt = build(name, [[game.theta], [game.w]], lr=lr, **hp)
    theta_sum = game.theta.detach().clone()
    tail_from = steps - steps // 10
    tail_max = 0.0
    curve_t, curve_d, curve_w = [0], [dist_v(game.theta.detach())], [float(game.w.detach().norm())]
    t0 = time.perf_counter()
    for t in range(1, steps + 1):
        opt.step(game.losses)
        if clip is not None:
            with torch.no_grad():
                game.w.clamp_(-clip, clip)
        theta = game.theta.detach()
        theta_sum += theta
        d = dist_v(theta)
        if not math.isfinite(d):
            break
        if t >= tail_from:
            tail_max = max(tail_max, d)
        if t % record_every == 0 or t == steps:
            curve_t.append(t)
            curve_d.append(d)
            curve_w.append(float(game.w.detach().norm()))
    mean_theta = (theta_sum / (steps + 1)).tolist()
    return {
        "method": method, "lr": lr, "steps": steps, "batch": batch, "clip": clip, "seed": seed,
        "last_theta": game.theta.detach().tolist(), "last_w": game.w.detach().tolist(),
        "dist_last": curve_d[-1], "w_norm_last": curve_w[-1], "dist_tail_max": tail_max,
        "mean_theta": mean_theta, "dist_mean": dist_v(mean_theta),
        "seconds": round(time.perf_counter() - t0, 2),
        "curve": {"t": curve_t, "dist": curve_d, "w_norm": curve_w},
    }


def check_optimistic_update(lr: float = 0.1, steps: int = 20) -> float:
    """Largest deviation of saddlepoint's optimistic (base sgd) from θ_{t+1} = θ_t − 2η∇_t + η∇_{t−1}."""
    game = MeanGame(None, 0)
    opt = build("optimistic", [[game.theta], [game.w]], lr=lr, base="sgd")
    worst, prev = 0.0, None
    for _ in range(steps):
        before = [game.theta.detach().clone(), game.w.detach().clone()]
        losses = game.losses()
        grads = [torch.autograd.grad(losses[0], game.theta, retain_graph=True)[0],
                 torch.autograd.grad(losses[1], game.w)[0]]
        opt.step(game.losses)
        for i, p in enumerate((game.theta, game.w)):
            expected = before[i] - 2 * lr * grads[i] + (lr * prev[i] if prev is not None else 0.0)
            worst = max(worst, float((p.detach() - expected).abs().max()))
        prev = grads
    return worst


def notebook_omd(lr: float, steps: int) -> list[float]:
    """The notebook's expected-game OMD recursion (its iterates 0 and 1 both at the start), written from its
    equations, for comparison with saddlepoint's first step θ_1 = θ_0 − 2η∇_0."""
    v = torch.tensor(V, dtype=DTYPE)
    w = [torch.full((2,), W0, dtype=DTYPE)] * 2
    th = [torch.full((2,), THETA0, dtype=DTYPE)] * 2
    for _ in range(2, steps + 1):
        w_new = w[-1] + 2 * lr * (v - th[-1]) - lr * (v - th[-2])
        th_new = th[-1] + 2 * lr * w[-1] - lr * w[-2]
        w, th = [w[-1], w_new], [th[-1], th_new]
    return th[-1].tolist()


def fmt(x) -> str:
    return "(" + ", ".join(f"{a:.4f}" for a in x) + ")"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="seconds: small iteration counts and sanity checks")
    args = ap.parse_args()
    quick = args.quick
    t_start = time.perf_counter()

    det_steps = 999
    if quick:
        sto_steps, sto_lr, rec = 3000, 0.05, 10
        sto = [("gd-clip", 200, 1.0), ("gd", 200, None), ("optimistic", 200, None)]
    else:
        sto_steps, sto_lr, rec = 99_999, 0.01, 100
        sto = [("gd-clip", 200, 1.0), ("gd", 200, None), ("optimistic", 2000, None), ("optimistic", 200, None),
               ("optimistic", 50, None)]

    runs: dict[str, dict] = {}
    for method, clip in (("gd", None), ("gd-clip", 1.0), ("optimistic", None)):
        runs[f"expected/{method}"] = run(method, 0.1, det_steps, None, clip)
    for method, batch, clip in sto:
        runs[f"stochastic/{method} B={batch}"] = run(method, sto_lr, sto_steps, batch, clip, seed=1, record_every=rec)

    # ------------------------------------------------------------------ checks
    checks: list[tuple[str, bool, str]] = []
    dev = check_optimistic_update()
    checks.append(("optimistic (base sgd) takes θ_{t+1} = θ_t − 2η∇_t + η∇_{t−1}", dev < 1e-12, f"max dev {dev:.1e}"))
    gd_clip = runs["expected/gd-clip"]["last_theta"]
    nb = PAPER["expected/gd-clip"][0]
    dev_nb = max(abs(a - b) for a, b in zip(gd_clip, nb))
    checks.append(("GD+clip (expected game) matches the notebook's last θ", dev_nb < 1e-7,
                   f"ours {fmt(gd_clip)} vs {fmt(nb)}"))
    gd = runs["expected/gd"]
    # the distance in (θ, w) jointly grows by √(1+η²) per step; θ alone oscillates within that envelope
    joint0 = math.hypot(dist_v([THETA0] * 2), math.hypot(W0, W0))
    joint = math.hypot(gd["dist_last"], gd["w_norm_last"])
    ratio = joint / joint0 / (1 + 0.1**2) ** (det_steps / 2)
    checks.append(("unclipped GD spirals out at √(1+η²) per step (expected game)", abs(ratio - 1) < 1e-9,
                   f"‖(θ−v, w)‖ grew ×{joint / joint0:.1f}, predicted ×{(1.01) ** (det_steps / 2):.1f}"))
    opt_det = runs["expected/optimistic"]
    checks.append(("optimistic converges on the expected game (last ‖θ−v‖ < 0.05, ‖w‖ < 0.05)",
                   opt_det["dist_last"] < 0.05 and opt_det["w_norm_last"] < 0.05,
                   f"‖θ−v‖ {opt_det['dist_last']:.4f}, ‖w‖ {opt_det['w_norm_last']:.4f}"))
    checks.append(("GD+clip keeps cycling (max ‖θ−v‖ over the last 10% > 10× optimistic's)",
                   runs["expected/gd-clip"]["dist_tail_max"] > 10 * opt_det["dist_tail_max"],
                   f"{runs['expected/gd-clip']['dist_tail_max']:.3f} vs {opt_det['dist_tail_max']:.4f}"))
    sto_opt = [r for k, r in runs.items() if k.startswith("stochastic/optimistic")]
    sto_gdc = runs["stochastic/gd-clip B=200"]
    best_opt = min(r["dist_tail_max"] for r in sto_opt)
    checks.append(("stochastic: optimistic's last-10% max ‖θ−v‖ below GD+clip's", best_opt < sto_gdc["dist_tail_max"],
                   f"{best_opt:.3f} vs {sto_gdc['dist_tail_max']:.3f}"))
    checks.append(("stochastic: averaging rescues GD+clip (‖θ̄−v‖ < 0.5 · last-10% max)",
                   sto_gdc["dist_mean"] < 0.5 * sto_gdc["dist_tail_max"],
                   f"‖θ̄−v‖ {sto_gdc['dist_mean']:.3f}"))
    ours_nb = notebook_omd(0.1, det_steps)

    # ------------------------------------------------------------------ table
    print("\nLearning the mean of N(v, I), v = (3, 4), linear WGAN; start θ = 1.7·1, w = 1.4·1")
    head = f"{'run':34s} {'η':>5s} {'steps':>7s} {'last θ':>18s} {'‖θ−v‖':>8s} {'‖w‖':>8s} {'max‖θ−v‖ last10%':>17s} " \
           f"{'‖θ̄−v‖':>8s} {'paper last θ':>18s} {'paper ‖θ−v‖':>11s} {'paper ‖θ̄−v‖':>12s}"
    print(head)
    for key, r in runs.items():
        paper = PAPER.get(key)
        p_last = fmt(paper[0]) if paper else "–"
        p_d = f"{dist_v(paper[0]):.4f}" if paper else "–"
        p_m = f"{dist_v(paper[1]):.4f}" if paper else "–"
        print(f"{key:34s} {r['lr']:5.2f} {r['steps']:7d} {fmt(r['last_theta']):>18s} {r['dist_last']:8.4f} "
              f"{r['w_norm_last']:8.4f} {r['dist_tail_max']:17.4f} {r['dist_mean']:8.4f} {p_last:>18s} {p_d:>11s} "
              f"{p_m:>12s}")
    print(f"\nnotebook's OMD recursion (θ_1 = θ_0) from its equations: last θ {fmt(ours_nb)} "
          f"(the notebook printed {fmt(PAPER['expected/optimistic'][0])})")
    print("\nsanity checks:")
    ok = True
    for name, passed, detail in checks:
        ok &= passed
        print(f"  {'PASS' if passed else 'FAIL'}  {name}: {detail}")

    out_dir = ROOT / "benchmarks" / "results" / "reproduce"
    out_dir.mkdir(parents=True, exist_ok=True)
    result = {
        "paper": "Daskalakis, Ilyas, Syrgkanis, Zeng. Training GANs with Optimism. ICLR 2018",
        "protocol": "notebooks/Simple_GAN_example.ipynb of github.com/vsyrgkanis/optimistic_GAN_training",
        "quick": quick,
        "machine": {"python": platform.python_version(), "torch": torch.__version__, "threads": 1},
        "seconds": round(time.perf_counter() - t_start, 1),
        "paper_values": {k: {"last_theta": v[0], "mean_theta": v[1], "dist_last": dist_v(v[0]),
                             "dist_mean": dist_v(v[1])} for k, v in PAPER.items()},
        "notebook_omd_recursion_last_theta": ours_nb,
        "runs": runs,
        "checks": [{"name": n, "passed": p, "detail": d} for n, p, d in checks],
    }
    path = out_dir / ("optimistic-quick.json" if quick else "optimistic.json")
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"\nwrote {path.relative_to(ROOT)} ({result['seconds']} s)")
    if not quick:
        plot(runs, ROOT / "docs" / "img" / "reproduce" / "optimistic.png")
    print("ALL PASS" if ok else "SOME CHECKS FAILED")
    return 0 if ok else 1


def plot(runs: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5))
    for row, prefix in enumerate(("expected", "stochastic")):
        for key, r in runs.items():
            if not key.startswith(prefix):
                continue
            label = key.split("/", 1)[1]
            c = r["curve"]
            axes[row, 0].semilogy(c["t"], [max(d, 1e-6) for d in c["dist"]], label=label, lw=1)
            axes[row, 1].semilogy(c["t"], [max(d, 1e-6) for d in c["w_norm"]], label=label, lw=1)
        eta = next(r["lr"] for k, r in runs.items() if k.startswith(prefix))
        kind = "expected (exact) gradients" if prefix == "expected" else "minibatch gradients"
        axes[row, 0].set_title(f"‖θ − v‖, {kind}, η = {eta}")
        axes[row, 1].set_title(f"‖w‖, {kind}, η = {eta}")
        for ax in axes[row]:
            ax.set_xlabel("iteration")
            ax.grid(True, which="both", alpha=0.3)
        axes[row, 0].legend(fontsize=8)
    fig.suptitle("Linear WGAN learning the mean of N((3,4), I): simultaneous GD vs optimistic GD (saddlepoint)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    sys.exit(main())
