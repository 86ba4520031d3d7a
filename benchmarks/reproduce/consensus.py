"""Reproduction: Mescheder, Nowozin & Geiger, "The Numerics of GANs", NeurIPS 2017 — consensus optimization on the
mixture of 8 Gaussians on a circle (their Figure 4: simultaneous gradient ascent vs consensus optimization).

Their protocol (the toy-experiment notebook of their public code, ``notebooks/mog-eigval-dist.ipynb``):
8 Gaussians at (cos 2πk/8, sin 2πk/8), σ = 0.01, every batch of 512 holds 64 points of each mode; G and D are
MLPs with 4 hidden layers of 16 ReLU units (linear output), z ~ N(0, I_16); the standard GAN objective with the
non-saturating generator loss (sigmoid cross-entropy with label 1); RMSprop (TensorFlow 1: decay 0.9, ε 1e-10
inside the root, accumulator initialised to 1) with learning rate 1e-4 for both players; consensus
v = ξ + γ∇½‖ξ‖² with γ = 10; 50,000 iterations in the notebook, the figure shows 0 / 5,000 / 10,000 / 20,000.

Here: the same data (saddlepoint's ``ring`` centres and σ, with their stratified batches), the same networks
(``saddlepoint.models.mlp``: depth 4, width 16, ReLU; PyTorch's default initialisation, not TF-slim's Xavier),
the same loss and RMSprop (``alpha`` 0.9, ``eps`` 1e-5 added outside the root ≈ their 1e-10 inside; the
accumulator starts at 0, not 1), through ``saddlepoint.optim.build`` — ``rmsprop`` with ``scheme``
simultaneous / alternating (D first) and ``consensus`` (``base: rmsprop``, ``gamma: 10``). Our own loop, not
``saddlepoint.train``: the trainer draws each point's mode at random (theirs are stratified) and evaluates only
at the end, while the figure needs samples at the paper's iteration counts. Evaluated with saddlepoint's
``mode_stats`` (PacGAN's 3σ rule) on 2,500 samples of the raw G (no EMA) at each snapshot.

    python benchmarks/reproduce/consensus.py          # full: 3 seeds × 3 methods × 10,000 iterations (≈ 17 min)
    python benchmarks/reproduce/consensus.py --quick    # seconds: pipeline sanity checks, PASS/FAIL
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
from snapshots import snapshot_figure

from saddlepoint.data.toy import RING_STD, ring_centers
from saddlepoint.metrics.modes import mode_stats
from saddlepoint.models.mlp import mlp
from saddlepoint.optim import build

ROOT = Path(__file__).resolve().parents[2]
NAME = "consensus"

PAPER = {
    "source": "Mescheder, Nowozin & Geiger, NeurIPS 2017, Figure 4 + notebooks/mog-eigval-dist.ipynb",
    "data": "8 Gaussians on the unit circle, sigma 0.01, stratified batches of 512",
    "model": "G and D: MLP 4 x 16 ReLU, linear output; z ~ N(0, I_16)",
    "loss": "standard GAN, non-saturating G loss",
    "optimizer": "RMSprop lr 1e-4 (TF1: decay 0.9, eps 1e-10), consensus gamma 10",
    "iterations": "figure: 0 / 5,000 / 10,000 / 20,000 (notebook runs 50,000)",
    "claim": "simultaneous gradient ascent oscillates and does not converge to the mixture; "
    "consensus optimization converges to all 8 modes (qualitative figure, no number)",
}

METHODS = {
    "simultaneous": ("rmsprop", {"scheme": "simultaneous"}),
    "alternating": ("rmsprop", {"scheme": "alternating"}),
    "consensus": ("consensus", {"base": "rmsprop", "gamma": 10.0}),
}
RMSPROP = {"lr": 1e-4, "alpha": 0.9, "eps": 1e-5}


def run(method: str, seed: int, steps: int, snapshots: list[int], track_every: int, batch: int = 512,
        z_dim: int = 16, n_eval: int = 2500) -> dict:
    """Train one (method, seed); mode stats every ``track_every`` steps and samples at ``snapshots``."""
    torch.manual_seed(seed)
    G, D = mlp((2,), z_dim, depth=4, width=16, activation="relu")
    centers = ring_centers()
    mus = centers[torch.arange(batch) % len(centers)].float()  # their stratified batch: 64 per mode
    gen = torch.Generator().manual_seed(10_000 + seed)
    z_eval = torch.randn(n_eval, z_dim, generator=torch.Generator().manual_seed(20_000 + seed))
    name, extra = METHODS[method]
    opt = build(name, [list(G.parameters()), list(D.parameters())], **RMSPROP, **extra)

    def evaluate(step: int) -> dict:
        with torch.no_grad():
            x = G(z_eval)
        stats = mode_stats(x, centers, RING_STD)
        stats["finite"] = bool(torch.isfinite(x).all())
        return {"step": step, **stats}, x

    theta0 = torch.cat([p.detach().flatten().clone() for p in [*G.parameters(), *D.parameters()]])
    track, samples = [], {}
    t0 = time.perf_counter()
    for step in range(steps + 1):
        if step % track_every == 0 or step in snapshots or step == steps:
            stats, x = evaluate(step)
            track.append(stats)
            if step in snapshots:
                samples[step] = x[:1000].tolist()
        if step == steps:
            break
        real = mus + RING_STD * torch.randn(batch, 2, generator=gen)
        z = torch.randn(batch, z_dim, generator=gen)

        def closure(real=real, z=z):  # bound now: called within this step only
            d_real, d_fake = D(real), D(G(z))
            loss_d = F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
            return [F.softplus(-d_fake).mean(), loss_d]

        losses = opt.step(closure)
    seconds = time.perf_counter() - t0
    moved = float((torch.cat([p.detach().flatten() for p in [*G.parameters(), *D.parameters()]]) - theta0).norm())
    final = track[-1]
    last = [t for t in track if t["step"] >= 0.75 * steps]
    return {
        "method": method, "seed": seed, "steps": steps, "seconds": round(seconds, 2), "param_change": moved,
        "final": final, "track": track, "samples": samples,
        "losses": [float(v) for v in losses],
        "last_quarter_mean": {k: sum(t[k] for t in last) / len(last) for k in ("modes", "hq", "kl")},
    }


def chance_reference(n: int = 2500, draws: int = 5) -> dict:
    """What the metric gives a generator that has found the circle but not the modes: n points uniform in angle on
    the unit circle (mean over ``draws`` seeded draws)."""
    g = torch.Generator().manual_seed(0)
    stats = []
    for _ in range(draws):
        a = torch.rand(n, generator=g) * 2 * math.pi
        stats.append(mode_stats(torch.stack([a.cos(), a.sin()], 1), ring_centers(), RING_STD))
    return {"what": "2500 points uniform on the unit circle", **{k: sum(s[k] for s in stats) / draws
                                                                  for k in ("modes", "hq", "kl")}}


def summarize(rows: list[dict]) -> dict:
    out = {}
    for method in METHODS:
        rs = [r for r in rows if r["method"] == method]
        if not rs:
            continue
        entry = {}
        for k in ("modes", "hq", "kl"):
            v = [r["final"][k] for r in rs]
            m = sum(v) / len(v)
            se = math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1) / len(v)) if len(v) > 1 else 0.0
            entry[k] = {"mean": m, "se": se, "per_seed": v}
        entry["all8_seeds"] = sum(r["final"]["modes"] == 8 for r in rs)
        entry["seconds"] = sum(r["seconds"] for r in rs)
        entry["snapshots"] = {
            str(t["step"]): {"modes": [r2["modes"] for r2 in (next(x for x in r["track"] if x["step"] == t["step"])
                                                               for r in rs)]}
            for t in rs[0]["track"] if str(t["step"]) in {str(s) for s in rs[0]["samples"]}
        }
        out[method] = entry
    return out


def table(summary: dict, steps: int) -> str:
    lines = [f"| method (RMSprop 1e-4) | modes /8 at {steps:,} | high quality | KL | seeds with 8 modes | time (s) |",
             "|---|---|---|---|---|---|"]
    for method, e in summary.items():
        lines.append(
            f"| {method} | {e['modes']['mean']:.1f} ± {e['modes']['se']:.1f} | "
            f"{100 * e['hq']['mean']:.1f} ± {100 * e['hq']['se']:.1f}% | {e['kl']['mean']:.3f} ± {e['kl']['se']:.3f} | "
            f"{e['all8_seeds']}/{len(e['modes']['per_seed'])} | {e['seconds']:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny iteration counts; PASS/FAIL sanity checks")
    ap.add_argument("--steps", type=int, default=None, help="override the iteration count")
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    steps = args.steps or (30 if args.quick else 10_000)
    snapshots = [0, 10, 20, 30] if args.quick else [0, 2_500, 5_000, 10_000, 20_000]
    snapshots = [s for s in snapshots if s <= steps]
    seeds = list(range(2 if args.quick else args.seeds))
    track_every = 10 if args.quick else 1_000

    rows = []
    for seed in seeds:
        for method in METHODS:
            r = run(method, seed, steps, snapshots, track_every)
            f = r["final"]
            print(f"seed {seed} {method:13s} {steps} it: {f['modes']} modes, hq {100 * f['hq']:.1f}%, "
                  f"KL {f['kl']:.3f}, {r['seconds']:.1f} s", flush=True)
            rows.append(r)
    summary = summarize(rows)
    print(table(summary, steps))
    ref = chance_reference()
    print(f"reference, {ref['what']}: {ref['modes']:.1f} modes, hq {100 * ref['hq']:.1f}%, KL {ref['kl']:.3f}")

    out_dir = ROOT / "benchmarks" / "results" / "reproduce"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / (f"{NAME}-quick.json" if args.quick else f"{NAME}.json")
    record = {
        "paper": PAPER,
        "ours": {"data": "saddlepoint ring centres (radius 1, 8 modes), sigma 0.01, stratified batches of 512",
                 "model": "saddlepoint.models.mlp depth 4 width 16 relu, z_dim 16, PyTorch default init",
                 "loss": "ns (softplus form)", "optimizer": {"rmsprop": RMSPROP, "methods": METHODS},
                 "steps": steps, "seeds": seeds, "eval": "mode_stats on 2500 samples of raw G, 3 sigma rule",
                 "torch_threads": 1},
        "summary": summary,
        "reference": ref,
        "runs": [{k: v for k, v in r.items() if k != "samples"} for r in rows],
    }
    out.write_text(json.dumps(record, indent=1))
    print(f"wrote {out.relative_to(ROOT)}")
    if not args.quick:
        png = ROOT / "docs" / "img" / "reproduce" / f"{NAME}.png"
        snapshot_figure(rows, list(METHODS), snapshots, ring_centers(), 1.6, png, seeds[0],
                        f"8-Gaussian ring (σ 0.01), MLP 4×16, RMSprop 1e-4; seed {seeds[0]}; red × = modes")
        print(f"wrote {png.relative_to(ROOT)}")

    if args.quick:
        checks = {
            "every run finished with finite samples and losses": all(
                all(t["finite"] for t in r["track"]) and all(math.isfinite(v) for v in r["losses"]) for r in rows),
            "mode stats in range": all(0 <= r["final"]["modes"] <= 8 and 0 <= r["final"]["hq"] <= 1
                                       and 0 <= r["final"]["kl"] <= math.log(8) + 1e-9 for r in rows),
            "deterministic (seed 0 rerun identical)": run("consensus", 0, 10, [], 10)["final"]
            == run("consensus", 0, 10, [], 10)["final"],
            "parameters moved": all(r["param_change"] > 0 for r in rows),
        }
        for name, ok in checks.items():
            print(f"{'PASS' if ok else 'FAIL'}: {name}")
        return 0 if all(checks.values()) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
