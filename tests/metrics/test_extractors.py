"""Feature networks from TorchScript files: the NVIDIA Inception interface and a plain module."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from saddlepoint.config import EvalConfig
from saddlepoint.metrics import evaluate_metrics, fid_from_features


class _FakeInception(nn.Module):
    """Mimics the NVIDIA TorchScript interface: 0..255 input, return_features / no_output_bias flags."""

    def forward(self, x: torch.Tensor, return_features: bool = False, no_output_bias: bool = False) -> torch.Tensor:
        pooled = x.mean(dim=(2, 3))  # N×3
        feats = torch.cat([pooled, pooled * pooled / 255.0], dim=1)
        if return_features:
            return feats
        return torch.softmax(feats[:, :4] / 255.0, dim=1)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_torchscript_feature_files(digits, t10k, tmp_path: Path) -> None:
    x, _ = t10k
    ds = digits(x, 200)
    path = tmp_path / "inception.pt"
    torch.jit.script(_FakeInception()).save(str(path))
    cfg = EvalConfig(features="inception", inception_path=str(path), cache_dir=str(tmp_path / "c"), is_splits=2)
    out = evaluate_metrics(["fid", "is"], x[300:400], ds, cfg)
    mean255 = (x[:200] + 1).mul(127.5).mean(dim=(1, 2, 3))  # grey repeated to RGB, 0..255 range
    expected = fid_from_features(torch.stack([mean255] * 3 + [mean255**2 / 255] * 3, 1),
                                 torch.stack([(x[300:400] + 1).mul(127.5).mean(dim=(1, 2, 3))] * 3
                                             + [((x[300:400] + 1).mul(127.5).mean(dim=(1, 2, 3))) ** 2 / 255] * 3,
                                             1))
    assert out["fid"] == pytest.approx(expected, rel=1e-4)
    assert out["is"] >= 1.0
    plain = tmp_path / "plain.pt"
    torch.jit.script(nn.Sequential(nn.Flatten(), nn.Linear(784, 6))).save(str(plain))
    out = evaluate_metrics(["fid"], x[300:400], ds, EvalConfig(features=str(plain), cache_dir="none"))
    assert out["fid"] >= 0.0
