"""Figures of the discriminator-driven sampling study (``bench_refine.py`` calls this after a full run):

* ``docs/img/refine-<dataset>.png``: seed 0's samples of G alone and of each sampler beside the data, with the
  3σ circles of the modes (what the high-quality rule counts);
* ``docs/img/refine-cost.png``: high quality against G evaluations per kept sample, every method, both presets,
  mean ± standard error over the seeds of ``benchmarks/results/refine.json``, with the data's own score.

    python benchmarks/plot_refine.py [--work runs/bench-refine]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))
IMG = ROOT / "docs" / "img"

#: the panels of the sample figure: label in the study → sampler and options
PANELS = ("G", "G + DRS", "G + MH", "G + DDLS (σ=0)", "G + DDLS (σ=0, 1,000 × 3e-4)")


def samples_figure(dataset: str, work: Path, n: int = 2500) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch
    from bench_refine import METHODS, load_pair

    from saddlepoint.metrics import mode_stats
    from saddlepoint.refine import real_sampler, refine

    run = work / f"{dataset}-0"
    G, D, data = load_pair(run)
    panels = [("data", data.sample(n, torch.Generator().manual_seed(1)))]
    for label in PANELS:
        name, options = METHODS[label]
        if name is None:
            with torch.no_grad():
                x = G(torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(1)))
        else:
            x = refine(name, G, D, n, seed=1, options=options, real=real_sampler(data), cache_dir=run / "refine",
                       progress=False).samples
        panels.append((label, x))
    fig, axes = plt.subplots(1, len(panels), figsize=(3.0 * len(panels), 3.2), sharex=True, sharey=True)
    for ax, (label, x) in zip(axes, panels):
        s = mode_stats(x, data.centers, data.std)
        ax.scatter(x[:, 0].numpy(), x[:, 1].numpy(), s=1, alpha=0.4, color="tab:blue")
        for c in data.centers:
            ax.add_patch(plt.Circle((float(c[0]), float(c[1])), 3 * data.std, fill=False, lw=0.5, color="tab:red"))
        ax.set_title(f"{label}\n{100 * s['hq']:.1f}% hq, KL {s['kl']:.3f}", fontsize=8)
        ax.set_aspect("equal")
    fig.suptitle(f"{dataset}, seed 0: 2,500 samples; red circles: 3σ around each mode", fontsize=9)
    fig.tight_layout()
    out = IMG / f"refine-{dataset}.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def cost_figure(results: dict) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results["tables"]), figsize=(6.0 * len(results["tables"]), 4.2))
    for ax, (dataset, table) in zip(list(axes) if len(results["tables"]) > 1 else [axes], results["tables"].items()):
        for label, e in table.items():
            if label == "data":
                ax.axhline(100 * e["hq"][0], color="gray", ls="--", lw=0.8, label="data itself")
                continue
            x = max(e["g_per_sample"], 1.0)
            ax.errorbar(x, 100 * e["hq"][0], yerr=100 * e["hq"][1], fmt="o", ms=4, capsize=2)
            ax.annotate(label.replace("G + ", ""), (x, 100 * e["hq"][0]), fontsize=6, xytext=(3, 2),
                        textcoords="offset points")
        ax.set_xscale("log")
        ax.set_xlabel("G evaluations per kept sample (log)")
        ax.set_ylabel("high quality (%)")
        ax.set_title(f"{dataset}: mean ± s.e. over {len(results['seeds'])} seeds", fontsize=9)
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    out = IMG / "refine-cost.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "bench-refine")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    IMG.mkdir(parents=True, exist_ok=True)
    results = json.loads((ROOT / "benchmarks" / "results" / "refine.json").read_text())
    print(f"wrote {cost_figure(results)}")
    for dataset in results["tables"]:
        print(f"wrote {samples_figure(dataset, args.work)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
