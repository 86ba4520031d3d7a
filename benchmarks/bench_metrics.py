"""Metric benchmarks (not part of the tests): prints a summary and writes benchmarks/results/metrics.json.

1. FID from 10,000 × 2,048 features: our symmetric eigen form (``frechet_distance``) against the classic
   scipy formula ``tr sqrtm(Σ₁Σ₂)`` in the same run, same statistics; ratio of times (goal ≤ 0.5) and
   relative agreement (goal ≤ 1e-6). Timed both for the matrix part alone and for FID from features
   (statistics included, identical code for both).
2. The MNIST real-versus-real floor in the shipped classifier's features: FID (and KID) between the two
   disjoint halves of t10k (5,000 vs 5,000) and between 2,500 images of one half and the other half.
3. Evaluation cost at the default settings (mnist-t10k, dcgan28, eval.samples 2,500, default metric
   ``fid``): generation + features + FID, cold (real statistics computed) and warm (cached), against
   the time of the default training run (train.steps × seconds per step).

    OMP_NUM_THREADS=1 python benchmarks/bench_metrics.py [--threads 1] [--skip-train]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--threads", type=int, default=1, help="BLAS/torch threads for every part (default 1)")
ap.add_argument("--n", type=int, default=10_000)
ap.add_argument("--d", type=int, default=2048)
ap.add_argument("--skip-train", action="store_true", help="skip part 3 (training step timing)")
ap.add_argument("--quick", action="store_true", help="2,000 × 2,048 features and no training-step timing")
ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "metrics.json"))
args = ap.parse_args()
if args.quick:
    args.n, args.skip_train = 2000, True
for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[var] = str(args.threads)  # before numpy/scipy load BLAS

import numpy as np  # noqa: E402
import scipy  # noqa: E402
import scipy.linalg  # noqa: E402
import torch  # noqa: E402

from saddlepoint.config import EvalConfig, build_config  # noqa: E402
from saddlepoint.data import build_dataset, load_mnist_t10k  # noqa: E402
from saddlepoint.metrics import default_metrics, evaluate_metrics, kid_score  # noqa: E402
from saddlepoint.metrics.extractors import mnist_extractor  # noqa: E402
from saddlepoint.metrics.frechet import frechet_distance  # noqa: E402
from saddlepoint.metrics.stats import feature_stats  # noqa: E402

torch.set_num_threads(args.threads)
OUT = Path(args.out)


def scipy_fid(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray) -> float:
    """The classic formula (pytorch-fid / TTUR code): tr sqrtm(Σ₁Σ₂), real part."""
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    if not np.isfinite(covmean).all():
        offset = np.eye(len(s1)) * 1e-6
        covmean = scipy.linalg.sqrtm((s1 + offset) @ (s2 + offset))
    covmean = np.real(covmean)
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean))


def random_features(n: int, d: int, shift: float, seed: int) -> torch.Tensor:
    """ReLU features of a 256-d latent through a fixed random layer plus noise (correlated, full rank)."""
    w = torch.randn(256, d, generator=torch.Generator().manual_seed(1234), dtype=torch.float64) / 16.0
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, 256, generator=g, dtype=torch.float64) * (1.0 + shift) + shift
    return torch.relu(z @ w + 0.3 * torch.randn(n, d, generator=g, dtype=torch.float64)).float()


def part_fid(n: int, d: int) -> dict:
    f1, f2 = random_features(n, d, 0.0, 1), random_features(n, d, 0.2, 2)
    t0 = time.perf_counter()
    mu1, s1 = feature_stats(f1)
    mu2, s2 = feature_stats(f2)
    t_stats = time.perf_counter() - t0
    t0 = time.perf_counter()
    ours = frechet_distance(mu1, s1, mu2, s2)
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref = scipy_fid(mu1, s1, mu2, s2)
    t_scipy = time.perf_counter() - t0
    return {
        "n": n, "d": d, "fid_ours": ours, "fid_scipy_sqrtm": ref, "relative_difference": abs(ours - ref) / abs(ref),
        "seconds_statistics": t_stats, "seconds_ours": t_ours, "seconds_scipy_sqrtm": t_scipy,
        "ratio_matrix_part": t_ours / t_scipy,
        "ratio_from_features": (t_stats + t_ours) / (t_stats + t_scipy),
    }


def part_floor() -> dict:
    images, _ = load_mnist_t10k()
    x = images.unsqueeze(1).float().div(127.5).sub(1.0)
    ext = mnist_extractor()
    t0 = time.perf_counter()
    feats = ext.features(x)
    t_feat = time.perf_counter() - t0
    out = {"features": f"{ext.name} ({ext.identity}), {feats.shape[1]}-d penultimate layer",
           "seconds_features_10000_images": t_feat}

    def fid(u: torch.Tensor, v: torch.Tensor) -> float:
        return frechet_distance(*feature_stats(u), *feature_stats(v))

    # t10k in file order: the first 5,000 digits come from SD-3 (Census employees, cleaner), the last
    # 5,000 from SD-1 (students): the file-order halves differ in writers, random halves do not
    a, b = feats[:5000], feats[5000:]
    perm = torch.randperm(10_000, generator=torch.Generator().manual_seed(0))
    ra, rb = feats[perm[:5000]], feats[perm[5000:]]
    out["fid_file_halves_5000_vs_5000"] = fid(a, b)
    out["fid_random_halves_5000_vs_5000"] = fid(ra, rb)
    out["fid_random_2500_vs_2500"] = fid(ra[:2500], rb[:2500])
    out["fid_2500_vs_all_10000_overlapping"] = fid(feats, ra[:2500])
    k = kid_score(a, b, subsets=100, subset_size=1000, seed=0)
    out["kid_file_halves"], out["kid_file_halves_std"] = k["kid"], k["kid_std"]
    k = kid_score(ra, rb, subsets=100, subset_size=1000, seed=0)
    out["kid_random_halves"], out["kid_random_halves_std"] = k["kid"], k["kid_std"]
    return out


def part_eval_cost(skip_train: bool) -> dict:
    from saddlepoint.training import setup

    cfg = build_config({"data": {"name": "mnist-t10k"}, "log": {"progress": "none"}})
    out: dict = {"config": "defaults: mnist-t10k, dcgan28, train.steps "
                 f"{cfg.train.steps}, batch {cfg.train.batch_size}, eval.samples {cfg.eval.samples}"}
    with tempfile.TemporaryDirectory() as tmp:
        trainer = setup(cfg, Path(tmp))
        names = default_metrics(trainer.dataset, cfg.eval)
        out["default_metrics"] = names
        eval_cfg = EvalConfig(cache_dir=str(Path(tmp) / "cache"))
        t0 = time.perf_counter()
        samples = trainer.generate(cfg.eval.samples)
        t_gen = time.perf_counter() - t0
        fresh = build_dataset("mnist-t10k")  # a new object: nothing memoised in this process
        t0 = time.perf_counter()
        evaluate_metrics(names, samples, fresh, eval_cfg)
        t_cold = time.perf_counter() - t0
        again = build_dataset("mnist-t10k")
        t0 = time.perf_counter()
        evaluate_metrics(names, samples, again, eval_cfg)  # real statistics from the disk cache
        t_warm = time.perf_counter() - t0
        out.update({"seconds_generate": t_gen, "seconds_metrics_cold": t_cold, "seconds_metrics_warm": t_warm})
        if not skip_train:
            for _ in range(3):
                trainer.game_step()
            steps = 20
            t0 = time.perf_counter()
            for _ in range(steps):
                trainer.game_step()
            per_step = (time.perf_counter() - t0) / steps
            total = per_step * cfg.train.steps
            out["seconds_per_train_step"] = per_step
            out["seconds_default_training"] = total
            out["share_final_eval_cold"] = (t_gen + t_cold) / total
            out["share_per_eval_warm"] = (t_gen + t_warm) / total
    return out


def main() -> None:
    res: dict = {"threads": args.threads, "python": sys.version.split()[0], "torch": torch.__version__,
                 "numpy": np.__version__, "scipy": scipy.__version__, "machine": platform.machine(),
                 "processor": platform.processor()}
    print(f"[1/3] FID from {args.n} × {args.d} features (threads {args.threads}) ...", flush=True)
    res["fid_benchmark"] = f = part_fid(args.n, args.d)
    print(f"  statistics {f['seconds_statistics']:.2f} s; eigen form {f['seconds_ours']:.2f} s; "
          f"scipy sqrtm {f['seconds_scipy_sqrtm']:.2f} s")
    print(f"  ratio (matrix part) {f['ratio_matrix_part']:.3f}; ratio (from features) "
          f"{f['ratio_from_features']:.3f}; relative difference {f['relative_difference']:.2e}")
    print("[2/3] MNIST real-vs-real floor in the shipped features ...", flush=True)
    res["mnist_floor"] = fl = part_floor()
    print(f"  FID file-order halves {fl['fid_file_halves_5000_vs_5000']:.3f}; random halves "
          f"{fl['fid_random_halves_5000_vs_5000']:.3f}; random 2500 vs 2500 {fl['fid_random_2500_vs_2500']:.3f}; "
          f"KID file halves {fl['kid_file_halves']:.3f} ± {fl['kid_file_halves_std']:.3f}, random halves "
          f"{fl['kid_random_halves']:.4f} ± {fl['kid_random_halves_std']:.3f}")
    print("[3/3] evaluation cost at the defaults ...", flush=True)
    res["eval_cost"] = ec = part_eval_cost(args.skip_train)
    msg = (f"  generate {ec['seconds_generate']:.2f} s; metrics cold {ec['seconds_metrics_cold']:.2f} s, "
           f"warm {ec['seconds_metrics_warm']:.2f} s")
    if "seconds_per_train_step" in ec:
        msg += (f"; training {ec['seconds_per_train_step'] * 1000:.0f} ms/step → final eval "
                f"{100 * ec['share_final_eval_cold']:.2f}% of a default run, each further eval "
                f"{100 * ec['share_per_eval_warm']:.2f}%")
    print(msg)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    tmp = OUT.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(res, indent=2) + "\n")
    os.replace(tmp, OUT)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
