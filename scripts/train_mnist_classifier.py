"""Train the MNIST classifier shipped as ``saddlepoint/assets/mnist_classifier.pt``.

Data: the MNIST test set bundled with the package (t10k). Training split: images 0–7,999; held-out
split: images 8,000–9,999 (never seen in training; the accuracy on it is what the docs state).
Deterministic: fixed seed, one CPU thread by default, deterministic algorithms. Light augmentation:
random shifts of up to ±2 pixels (zero-padded with the background value −1).

    python scripts/train_mnist_classifier.py            # writes the asset, prints the held-out accuracy
    python scripts/train_mnist_classifier.py --out /tmp/clf.pt
"""

from __future__ import annotations

import argparse
import io
import math
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from saddlepoint.data import load_mnist_t10k
from saddlepoint.models.classifier import MNIST_HELDOUT_SPLIT, MNIST_TRAIN_SPLIT, MnistNet

ASSET = Path(__file__).resolve().parents[1] / "src" / "saddlepoint" / "assets" / "mnist_classifier.pt"


def random_shift(x: torch.Tensor, max_shift: int, g: torch.Generator) -> torch.Tensor:
    """Shift each image by an independent integer offset in [−max_shift, max_shift]², padding with −1."""
    n, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4, value=-1.0)
    dy = torch.randint(0, 2 * max_shift + 1, (n,), generator=g)
    dx = torch.randint(0, 2 * max_shift + 1, (n,), generator=g)
    rows = (dy[:, None] + torch.arange(h))[:, :, None]
    cols = (dx[:, None] + torch.arange(w))[:, None, :]
    return padded[torch.arange(n)[:, None, None], 0, rows, cols].unsqueeze(1)


@torch.no_grad()
def accuracy(model: MnistNet, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    pred = torch.cat([model(chunk).argmax(1) for chunk in x.split(1000)])
    return float((pred == y).double().mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--shift", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(ASSET))
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(args.seed)
    g = torch.Generator().manual_seed(args.seed)

    images, labels = load_mnist_t10k()
    x = images.unsqueeze(1).float().div(127.5).sub(1.0)
    (a, b), (c, d) = MNIST_TRAIN_SPLIT, MNIST_HELDOUT_SPLIT
    x_train, y_train, x_test, y_test = x[a:b], labels[a:b], x[c:d], labels[c:d]

    model = MnistNet()
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    steps_per_epoch = math.ceil(len(x_train) / args.batch_size)
    total = args.epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    t0 = time.perf_counter()
    for epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(len(x_train), generator=g)
        running = 0.0
        for idx in perm.split(args.batch_size):
            xb = random_shift(x_train[idx], args.shift, g) if args.shift else x_train[idx]
            loss = F.cross_entropy(model(xb), y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            running += float(loss.detach()) * len(idx)
        print(f"epoch {epoch + 1:2d}  loss {running / len(x_train):.4f}  held-out acc "
              f"{accuracy(model, x_test, y_test):.4f}  ({time.perf_counter() - t0:.0f} s)", flush=True)

    acc = accuracy(model, x_test, y_test)
    buf = io.BytesIO()
    torch.save({k: v.detach().clone() for k, v in model.state_dict().items()}, buf)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, out)
    print(f"held-out accuracy (t10k[{c}:{d}]): {acc:.4f}  ({int(round(acc * (d - c)))}/{d - c})")
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
