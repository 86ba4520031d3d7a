"""Evaluation: feature metrics on real digits and noise, early checks, defaults, primary metric, RNG."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch
from torch import nn

from saddlepoint.config import EvalConfig
from saddlepoint.data import build_dataset
from saddlepoint.data.base import ImageDataset
from saddlepoint.errors import ConfigError, UserError
from saddlepoint.metrics import (
    METRICS,
    check_metrics,
    default_metrics,
    direction,
    evaluate_metrics,
    evaluation_protocol,
    extraction_needs,
    is_better,
    metric_columns,
    primary_metric,
    table_ranking,
)
from saddlepoint.metrics.extractors import EXTRACTORS
from saddlepoint.models.classifier import shipped_classifier


def test_evaluation_leaves_the_global_rng_alone(digits, t10k) -> None:
    shipped_classifier.cache_clear()  # force a fresh load of the classifier
    EXTRACTORS.clear()
    x, _ = t10k
    before = torch.get_rng_state()
    evaluate_metrics(["fid", "is"], x[:40], digits(x, 100), EvalConfig(cache_dir="none", is_splits=2))
    assert torch.equal(before, torch.get_rng_state())  # resumed runs must draw the same numbers


def test_fid_in_shipped_features_separates_real_from_noise(digits, t10k, cfg: EvalConfig, tmp_path: Path) -> None:
    x, _ = t10k
    ds = digits(x, 5000)
    real_other = x[5000:5500]
    noise = torch.rand(500, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
    good = evaluate_metrics(["fid", "kid", "prdc", "is"], real_other, ds, cfg)
    bad = evaluate_metrics(["fid", "kid", "prdc", "is"], noise, ds, cfg)
    assert good["fid"] < 0.1 * bad["fid"]
    assert good["kid"] < 0.1 * bad["kid"]
    assert good["precision"] > 0.5 and good["coverage"] > 0.5 and bad["precision"] < 0.05
    assert good["is"] > 8.0 and bad["is"] < good["is"]
    files = list((tmp_path / "cache").iterdir())
    assert len(files) == 1 and files[0].suffix == ".npz"  # one entry, no temporary file left behind
    info = evaluation_protocol(["fid"], ds, 500, cfg)
    assert info["features"] == "mnist" and info["real_samples"] == 5000 and info["samples"] == 500


def test_inception_requested_but_absent_is_a_clear_error(digits, t10k, tmp_path: Path, monkeypatch) -> None:
    """Without the inception extra (simulated) and without a file: one error naming the install command."""
    from saddlepoint.metrics import inception

    monkeypatch.setattr(inception, "packaged_inception", lambda: None)
    EXTRACTORS.clear()
    x, _ = t10k
    ds = digits(x, 100)
    with pytest.raises(UserError, match=r"eval.inception_path: .*pip install -e '\.\[inception\]'"):
        evaluate_metrics(["fid"], x[:50], ds, EvalConfig(features="inception", cache_dir="none"))
    missing = tmp_path / "nope" / "inception.pt"
    with pytest.raises(UserError, match=str(missing)):
        evaluate_metrics(["fid"], x[:50], ds, EvalConfig(features="inception", inception_path=str(missing)))
    with pytest.raises(UserError, match="eval.inception_path"):  # before training starts
        check_metrics(["fid"], ds, EvalConfig(features="inception"))
    check_metrics(["fid", "kid", "is", "prdc"], ds, EvalConfig())
    with pytest.raises(ConfigError, match="modes"):
        check_metrics(["modes"], ds)
    with pytest.raises(ConfigError, match="unknown metric"):
        check_metrics(["fdi"], ds)
    rgb = ImageDataset(torch.zeros(20, 3, 32, 32), name="cifar-like")
    assert default_metrics(rgb) == []
    with pytest.raises(UserError, match="eval.features"):
        evaluate_metrics(["fid"], torch.zeros(20, 3, 32, 32), rgb, EvalConfig(cache_dir="none"))


def test_registry_defaults_and_primary_metric() -> None:
    for name in ("fid", "kid", "is", "prdc", "modes", "stacked-modes"):
        assert name in METRICS
    assert default_metrics(build_dataset("ring")) == ["modes"]
    assert default_metrics(build_dataset("mnist-t10k", limit=10)) == ["fid"]
    assert default_metrics(build_dataset("stacked-mnist", limit=10)) == ["fid", "stacked-modes"]
    assert primary_metric(["modes"]) == ("kl", "min")
    assert primary_metric(["is", "fid"]) == ("fid", "min")
    assert primary_metric(["is"]) == ("is", "max")
    assert primary_metric([]) is None
    with pytest.raises(ConfigError, match="eval.samples"):
        evaluate_metrics(["is"], torch.zeros(3, 1, 28, 28), build_dataset("mnist-t10k", limit=10))
    assert list(itertools.islice(METRICS, 1))  # iterable


def test_facts_drive_best_checkpoint_needs_and_tables(digits, t10k) -> None:
    assert direction("fid") == "min" and direction("coverage") == "max" and direction("kid_std") is None
    assert direction("not-a-metric") is None
    assert is_better("fid", 1.0, 2.0) and not is_better("fid", 2.0, 1.0) and is_better("is", 3.0, None)
    with pytest.raises(ValueError):
        is_better("kid_std", 0.1, 0.2)
    assert extraction_needs(["modes"]) == [] and extraction_needs(["fid", "is"]) == ["features", "logits"]
    assert extraction_needs(["is"]) == ["logits"]
    assert metric_columns(["zeta", "kl", "fid", "modes"]) == ["modes", "kl", "fid", "zeta"]
    assert table_ranking(["modes", "kl", "fid"]) == [("modes", True), ("kl", False)]
    assert table_ranking(["fid", "kid"]) == [("fid", False)] and table_ranking(["zeta"]) == [("zeta", False)]
    # 'is' with a feature network without logits is rejected at validation, before any training
    x, _ = t10k
    with pytest.raises(ConfigError, match="'is' needs class logits"):
        check_metrics(["fid", "is"], digits(x, 50), EvalConfig(cache_dir="none"), features=nn.Flatten())
    check_metrics(["fid", "kid", "prdc"], digits(x, 50), EvalConfig(cache_dir="none"), features=nn.Flatten())
