"""Zeroth-order gradients (``optim.grad: zo``) against autograd: prints tables, writes benchmarks/results/zo.json.

1. **Analytic games** (float64): simultaneous GDA (``sgd``, lr 0.05) on ``quadratic`` (dim 10 per player, the
   strongly convex-concave game) and extragradient (base sgd, lr 0.2) on ``bilinear`` (dim 5), start and matrices
   from seed 0. Variants: autograd; zeroth order with coordinate-wise central differences (2d evaluations per gradient:
   exact on these quadratic games, so the trajectory is autograd's); zeroth order with q Gaussian directions
   (central, μ 1e-3). Reported: forward passes (closure calls) per step, distance to the equilibrium after 100
   steps, and the distance once 2,000 forward passes are spent (autograd's backward passes beside).
2. **Cosine vs d/q** (float32): the cosine between one estimate (Gaussian directions, central differences, μ
   1e-3, the optimizer's own path with ``check_every: 1``) and the backpropagated gradient, for G and D of the
   2-D MLP GAN (``build_models("mlp", (2,), 2)``, ring batch 256) and of DCGAN-28 (scale 1, MNIST t10k batch 64),
   q ∈ {1, 10, 100} (MLP also 1000), 3 seeds (MLP) and 2 (DCGAN-28); against the prediction 1/√(1 + (d + 1)/q)
   (Gaussian: E⟨ĝ, g⟩ = ‖g‖², E‖ĝ‖² = (1 + (d + 1)/q)‖g‖²).
3. **Ring** (``saddlepoint.train``, the ring preset's data, loss and batch, optimizer alternating Adam lr 1e-3):
   autograd (2000 steps) vs zeroth order (q 10, Gaussian, central; 500 steps, 21 forward passes per player and
   step) on the preset MLP (depth 3, width 128) and on a small one (depth 2, width 16), seed 0: modes, high-quality
   share and KL at four evaluations, against the forward passes (closure calls) spent so far.

One process, 1 thread: ``python benchmarks/bench_zo.py [--quick] [--parts games,cosine,ring]``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--quick", action="store_true", help="fewer seeds and steps (about a minute)")
ap.add_argument("--parts", default="games,cosine,ring")
ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "zo.json"))
args = ap.parse_args()
torch.set_num_threads(1)

import saddlepoint as sp  # noqa: E402
from saddlepoint.data import build_dataset  # noqa: E402
from saddlepoint.games.analytic import GAMES  # noqa: E402
from saddlepoint.games.gan import GANClosure  # noqa: E402
from saddlepoint.losses import LOSSES  # noqa: E402
from saddlepoint.models import build_models  # noqa: E402
from saddlepoint.optim import build  # noqa: E402

PARTS = set(args.parts.split(","))


# ----------------------------------------------------------------------------- 1. analytic games
def game_runs() -> list[dict[str, Any]]:
    rows = []
    setups = [("quadratic", "sgd", 10, 0.05, {}), ("bilinear", "extragradient", 5, 0.2, {"base": "sgd"})]
    variants: list[tuple[str, dict[str, Any]]] = [
        ("autograd", {}),
        ("zo coordinate", {"grad": "zo", "zo": {"directions": "coordinate"}}),
        *[(f"zo gaussian q={q}", {"grad": "zo", "zo": {"directions": "gaussian", "q": q}}) for q in (1, 10, 40)],
    ]
    budget, steps_report = 2000, 100
    for game_name, method, dim, lr, extra in setups:
        for label, hp in variants:
            game = GAMES.get(game_name)(seed=0, dim=dim)
            opt = build(method, game.players, lr=lr, **extra, **hp)
            d0, at_steps, at_budget, step = game.distance(), None, None, 0
            while at_budget is None or at_steps is None:
                opt.step(game.losses)
                step += 1
                if step == steps_report:
                    at_steps = game.distance()
                if at_budget is None and opt.counts["closure"] >= budget:
                    at_budget = {"steps": step, "distance": game.distance(), "backward": opt.counts["grad"]}
                if not math.isfinite(game.distance()) or step > 100_000:
                    break
            per_step = opt.counts["closure"] / step
            rows.append({"game": game_name, "dim": dim, "lr": lr, "method": method, "variant": label,
                         "forward_per_step": per_step,
                         "initial_distance": d0, f"distance_{steps_report}_steps": at_steps,
                         f"at_{budget}_forward": at_budget})
            print(f"{game_name:9s} {method:13s} {label:18s} fwd/step {per_step:6.1f}  dist@{steps_report} steps "
                  f"{at_steps:.3e}  dist@{budget} fwd {at_budget['distance']:.3e} ({at_budget['steps']} steps)")
    return rows


# ----------------------------------------------------------------------------- 2. cosine vs d/q
def problem(name: str, seed: int):
    torch.manual_seed(seed)
    if name == "mlp":
        G, D = build_models("mlp", (2,), 2)
        data, batch = build_dataset("ring"), 256
    else:
        G, D = build_models("dcgan28", (1, 28, 28), 100, scale=1.0)
        data, batch = build_dataset("mnist-t10k", resolution=28), 64
    gen = torch.Generator().manual_seed(seed)
    real, z = data.sample(batch, gen), torch.randn(batch, G.z_dim, generator=gen)
    return G, D, real, z


def cosine_runs(quick: bool) -> list[dict[str, Any]]:
    rows = []
    loss_fn = LOSSES.get("ns")
    cases = (("mlp", (1, 10, 100, 1000), 1 if quick else 3), ("dcgan28", (1, 10, 100), 1 if quick else 2))
    for name, qs, seeds in cases:
        for q in qs:
            cos: dict[int, list[float]] = {0: [], 1: []}
            t0 = time.perf_counter()
            for seed in range(seeds):
                G, D, real, z = problem(name, seed)
                players = [list(G.parameters()), list(D.parameters())]
                opt = build("sgd", players, buffers=[*G.buffers(), *D.buffers()], lr=1e-12, scheme="simultaneous",
                            grad="zo", zo={"directions": "gaussian", "q": q, "check_every": 1, "seed": seed})
                opt.step(GANClosure(G, D, loss_fn, [], real, z, {}))
                for i in (0, 1):
                    cos[i].append(opt.stats()[f"zo_cosine_{i}"])
            seconds = (time.perf_counter() - t0) / seeds
            for i, player in ((0, "G"), (1, "D")):
                d = sum(p.numel() for p in players[i])
                predicted = 1 / math.sqrt(1 + (d + 1) / q)
                mean = sum(cos[i]) / len(cos[i])
                sd = math.sqrt(sum((c - mean) ** 2 for c in cos[i]) / max(1, len(cos[i]) - 1))
                rows.append({"model": name, "player": player, "d": d, "q": q, "d_over_q": d / q,
                             "cosine": cos[i], "mean": mean, "sd": sd, "predicted": predicted,
                             "seconds_per_estimate_pair": seconds})
                print(f"{name:8s} {player} d {d:8d} q {q:5d} d/q {d / q:10.1f}  cos {mean:+.4f} ± {sd:.4f}  "
                      f"predicted {predicted:.4f}")
    return rows


# ----------------------------------------------------------------------------- 3. the ring
def ring_runs(quick: bool) -> list[dict[str, Any]]:
    rows = []
    root = Path(tempfile.mkdtemp(prefix="bench_zo_"))
    models = {"preset (depth 3, width 128)": {}, "small (depth 2, width 16)": {"depth": 2, "width": 16}}
    variants = (("autograd", {}, 400 if quick else 2000),
                ("zo q=10", {"grad": "zo", "zo": {"q": 10, "directions": "gaussian"}}, 100 if quick else 500))
    for model_label, model in models.items():
        for label, hp, steps in variants:
            t0 = time.perf_counter()
            cfg = {"seed": 0, "data": {"name": "ring"}, "model": {"name": "mlp", **model},
                   "optim": {"name": "adam", "lr": 1e-3, **hp}, "train": {"steps": steps},
                   "eval": {"every": steps // 4}, "log": {"every": steps // 4, "progress": "none", "report": False}}
            run = Path(sp.train(cfg, out=str(root / f"{len(rows)}")))
            summary = json.loads((run / "summary.json").read_text())
            per_step = summary["closure_calls"] / steps
            curve = [{"step": r["step"], "forward": round(r["step"] * per_step), "modes": r["modes"], "hq": r["hq"],
                      "kl": r.get("kl")}
                     for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if "modes" in r]
            row = {"model": model_label, "variant": label, "steps": steps, "status": summary.get("status"),
                   "forward_per_step": per_step, "backward": summary.get("grad_evals"), "curve": curve,
                   "seconds": round(time.perf_counter() - t0, 1), "train_seconds": summary.get("wall_time")}
            rows.append(row)
            points = "  ".join(f"{c['forward']} fwd: {c['modes']} modes, hq {c['hq']:.3f}" for c in curve)
            print(f"ring {model_label:28s} {label:9s} {points}  ({row['seconds']} s)")
    return rows


def main() -> None:
    out: dict[str, Any] = {"date": time.strftime("%Y-%m-%d"), "threads": 1, "torch": torch.__version__,
                           "quick": args.quick}
    if "games" in PARTS:
        out["games"] = game_runs()
    if "cosine" in PARTS:
        out["cosine"] = cosine_runs(args.quick)
    if "ring" in PARTS:
        out["ring"] = ring_runs(args.quick)
    path = Path(args.out)
    if path.exists():  # keep the parts not run
        old = json.loads(path.read_text())
        out = {**{k: v for k, v in old.items() if k in ("games", "cosine", "ring")}, **out}
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
