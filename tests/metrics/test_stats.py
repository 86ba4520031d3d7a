"""The real-statistics cache: keyed by content and settings, on disk, never for extractors without identity."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from saddlepoint.config import EvalConfig
from saddlepoint.metrics import evaluate_metrics
from saddlepoint.metrics.stats import REAL_STATS


class _CountingNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(784, 12)
        nn.init.normal_(self.proj.weight, generator=torch.Generator().manual_seed(0))
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += len(x)
        return torch.tanh(self.proj(x.flatten(1)))


def test_real_statistics_are_cached_on_disk_by_content_and_settings(digits, t10k, cfg: EvalConfig,
                                                                     tmp_path: Path) -> None:
    x, _ = t10k
    net = _CountingNet()
    fake = x[9000:9100]
    first = evaluate_metrics(["fid"], fake, digits(x, 3000), cfg, features=net)
    assert net.calls == 3000 + 100
    net.calls = 0
    again = evaluate_metrics(["fid"], fake, digits(x, 3000), cfg, features=net)  # new object: same key
    assert net.calls == 100 and again == first
    net.calls = 0
    REAL_STATS.clear()  # forget what this process computed: from disk
    assert evaluate_metrics(["fid"], fake, digits(x, 3000), cfg, features=net) == first
    assert net.calls == 100
    net.calls = 0
    evaluate_metrics(["fid"], fake, digits(x.flip(0), 3000), cfg, features=net)  # same name/size, other data
    assert net.calls == 3000 + 100
    net.calls = 0
    small = EvalConfig(cache_dir=cfg.cache_dir, real_samples=1000)
    evaluate_metrics(["fid"], fake, digits(x, 3000), small, features=net)  # a seeded subset of 1000
    assert net.calls == 1000 + 100
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 3
    # a plain callable has no stable identity: never cached on disk
    evaluate_metrics(["fid"], fake, digits(x, 300), EvalConfig(cache_dir=str(tmp_path / "c2")),
                     features=lambda im: im.flatten(1)[:, :10])
    assert not (tmp_path / "c2").exists()
