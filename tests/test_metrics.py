"""Metrics: closed forms, hand-built point sets, unbiasedness, the shipped classifier and the cache."""

from __future__ import annotations

import itertools
import math
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch
from torch import nn

from saddlepoint.config import EvalConfig
from saddlepoint.data import build_dataset, grid_centers, load_mnist_t10k, ring_centers
from saddlepoint.data.base import ImageDataset
from saddlepoint.errors import ConfigError, UserError
from saddlepoint.metrics import (
    METRICS,
    check_metrics,
    default_metrics,
    evaluate_metrics,
    evaluation_protocol,
    fid_from_features,
    frechet_distance,
    inception_score,
    kid_score,
    load_mnist_classifier,
    mmd2_unbiased,
    mode_stats,
    prdc,
    primary_metric,
    stacked_mode_stats,
)
from saddlepoint.metrics.features import (
    MNIST_HELDOUT_ACCURACY,
    MNIST_HELDOUT_SPLIT,
    classify_digits,
    feature_stats,
)


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _random_psd(d: int, rank: int | None = None, seed: int = 0) -> np.ndarray:
    a = _rng(seed).standard_normal((d, rank or 2 * d))
    return a @ a.T / a.shape[1]


def _orthogonal(d: int, seed: int = 0) -> np.ndarray:
    q, _ = np.linalg.qr(_rng(seed).standard_normal((d, d)))
    return q


# ------------------------------------------------------------------------------------------ Fréchet
@pytest.mark.parametrize("rotate", [False, True])
def test_frechet_matches_closed_form_for_commuting_covariances(rotate: bool) -> None:
    # Σ₁ = Q diag(a) Qᵀ, Σ₂ = Q diag(b) Qᵀ commute: d² = ‖μ₁−μ₂‖² + Σ (√aᵢ − √bᵢ)²
    d = 40
    r = _rng(1)
    a, b = r.uniform(0.1, 5.0, d), r.uniform(0.1, 5.0, d)
    mu1, mu2 = r.standard_normal(d), r.standard_normal(d)
    q = _orthogonal(d, 2) if rotate else np.eye(d)
    s1, s2 = (q * a) @ q.T, (q * b) @ q.T
    expected = float(((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum())
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)


def test_frechet_one_dimensional_and_scaled() -> None:
    # 1-D: (m₁−m₂)² + (s₁−s₂)²; Σ₂ = c²Σ₁: d² = (1−c)² tr Σ₁
    assert frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(4.0 + 1.0, rel=1e-12)
    s = _random_psd(30, seed=3)
    mu = np.zeros(30)
    assert frechet_distance(mu, s, mu, 9.0 * s) == pytest.approx(4.0 * np.trace(s), rel=1e-8)


@pytest.mark.parametrize("rank", [None, 10])
def test_frechet_zero_for_identical_statistics(rank: int | None) -> None:
    s = _random_psd(64, rank=rank, seed=4)  # rank 10: singular, round-off eigenvalues < 0 get clipped
    mu = _rng(5).standard_normal(64)
    assert abs(frechet_distance(mu, s, mu, s)) < 1e-8 * np.trace(s)


def test_frechet_agrees_with_scipy_sqrtm_and_is_symmetric() -> None:
    for seed, d in [(6, 20), (7, 60), (8, 120)]:
        s1, s2 = _random_psd(d, seed=seed), _random_psd(d, seed=seed + 100)
        mu1, mu2 = _rng(seed).standard_normal(d), _rng(seed + 1).standard_normal(d)
        covmean = scipy.linalg.sqrtm(s1 @ s2).real
        reference = float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))
        ours = frechet_distance(mu1, s1, mu2, s2)
        assert ours == pytest.approx(reference, rel=1e-6)
        assert frechet_distance(mu2, s2, mu1, s1) == pytest.approx(ours, rel=1e-10)


def test_fid_from_features_uses_float64_statistics() -> None:
    f1 = torch.randn(500, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    f2 = f1 * 2.0 + 1.0
    mu, sigma = feature_stats(f1)
    np.testing.assert_allclose(sigma, np.cov(f1.numpy(), rowvar=False), rtol=1e-12)
    # f2 = 2 f1 + 1: Δμ = μ+1, Σ₂ = 4Σ₁ → d² = ‖μ + 1‖² + tr Σ₁
    expected = float(((mu + 1.0) ** 2).sum() + np.trace(sigma))
    assert fid_from_features(f1, f2) == pytest.approx(expected, rel=1e-9)


# ---------------------------------------------------------------------------------------------- KID
def _mmd2_loops(x: np.ndarray, y: np.ndarray) -> float:
    m, d = x.shape

    def k(a: np.ndarray, b: np.ndarray) -> float:
        return (float(np.dot(a, b)) / d + 1.0) ** 3

    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_mmd2_matches_independent_loop_implementation() -> None:
    r = _rng(9)
    x, y = r.standard_normal((7, 3)), r.standard_normal((7, 3)) + 0.5
    assert mmd2_unbiased(torch.tensor(x), torch.tensor(y)) == pytest.approx(_mmd2_loops(x, y), rel=1e-12)
    # one subset of all points: KID is the full-sample estimate whatever the permutation
    out = kid_score(torch.tensor(x), torch.tensor(y), subsets=1, subset_size=7)
    assert out["kid"] == pytest.approx(_mmd2_loops(x, y), rel=1e-12) and out["kid_std"] == 0.0


def test_kid_is_unbiased_for_equal_distributions() -> None:
    g = torch.Generator().manual_seed(10)
    real, fake = torch.randn(2000, 16, generator=g), torch.randn(2000, 16, generator=g)
    out = kid_score(real, fake, subsets=50, subset_size=200, seed=3)
    assert abs(out["kid"]) < out["kid_std"]  # within its own standard error of 0
    # over independent repetitions the mean is within 3 standard errors of 0; the biased V-statistic
    # (diagonal terms kept) fails the same check, so the check has power
    unbiased, biased = [], []
    for _ in range(40):
        x, y = torch.randn(60, 16, generator=g, dtype=torch.float64), torch.randn(60, 16, generator=g,
                                                                                   dtype=torch.float64)
        unbiased.append(mmd2_unbiased(x, y))
        kx, ky, kxy = ((a @ b.T / 16 + 1) ** 3 for a, b in ((x, x), (y, y), (x, y)))
        biased.append(float(kx.mean() + ky.mean() - 2 * kxy.mean()))
    u, b = np.array(unbiased), np.array(biased)
    assert abs(u.mean()) < 3 * u.std(ddof=1) / math.sqrt(len(u))
    assert b.mean() > 3 * b.std(ddof=1) / math.sqrt(len(b))


def test_kid_grows_with_shift_and_is_seeded() -> None:
    g = torch.Generator().manual_seed(11)
    real = torch.randn(1000, 8, generator=g)
    base = torch.randn(1000, 8, generator=g)
    values = [kid_score(real, base + s, subsets=20, subset_size=300)["kid"] for s in (0.0, 0.25, 0.5, 1.0)]
    assert all(a < b for a, b in zip(values, values[1:]))
    assert values[-1] > 10 * abs(values[0])
    again = kid_score(real, base + 0.5, subsets=20, subset_size=300)
    assert again["kid"] == values[2]


# ----------------------------------------------------------------------------------------------- IS
def test_inception_score_hand_computation() -> None:
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.3, 0.3, 0.4], [0.25, 0.25, 0.5]])
    scores = []
    for part in (p[:2], p[2:]):
        py = part.mean(0)
        scores.append(math.exp(np.mean([sum(pi * math.log(pi / q) for pi, q in zip(row, py)) for row in part])))
    out = inception_score(torch.tensor(np.log(p)), splits=2)
    assert out["is"] == pytest.approx(np.mean(scores), rel=1e-12)
    assert out["is_std"] == pytest.approx(np.std(scores, ddof=1), rel=1e-9)


def test_inception_score_limits() -> None:
    assert inception_score(torch.zeros(100, 10), splits=5)["is"] == pytest.approx(1.0, abs=1e-12)
    k = 7
    logits = torch.full((k * 20, k), -1e4)
    logits[torch.arange(k * 20), torch.arange(k * 20) % k] = 0.0  # one-hot, each split holds every class
    out = inception_score(logits, splits=4)
    assert out["is"] == pytest.approx(k, rel=1e-9) and out["is_std"] == pytest.approx(0.0, abs=1e-9)


# --------------------------------------------------------------------------------------------- PRDC
def _line(*xs: float) -> torch.Tensor:
    return torch.tensor([[x, 0.0] for x in xs], dtype=torch.float64)


def test_prdc_hand_built_sets_and_conventions() -> None:
    real, fake = _line(0, 1, 2, 3, 4), _line(0.5, 5, 10)
    out = prdc(real, fake, k=1)
    # real radii (k=1) are all 1; fake radii 4.5, 4.5, 5
    # precision (≤): 0.5 inside, 5 exactly on the ball of 4 → inside, 10 outside → 2/3
    # recall (≤): every real point lies within 4.5 of the fake point 0.5 → 1
    # density (<): 0.5 is strictly inside the balls of 0 and 1, 5 is on a boundary → 2/(1·3)
    # coverage (<): only 0 and 1 hold a fake point strictly inside their ball → 2/5
    assert out == pytest.approx({"precision": 2 / 3, "recall": 1.0, "density": 2 / 3, "coverage": 2 / 5})
    same = prdc(real, real.clone(), k=1)
    assert same == pytest.approx({"precision": 1.0, "recall": 1.0, "density": 1.0, "coverage": 1.0})
    # k = 2 on a square of side 1: radii √2 (the diagonal); the centre lies inside all four balls
    square = torch.tensor([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=torch.float64)
    out = prdc(square, torch.tensor([[0.5, 0.5], [3.0, 3.0], [3.0, 4.0]], dtype=torch.float64), k=2)
    assert out["precision"] == pytest.approx(1 / 3) and out["density"] == pytest.approx(4 / 6)
    assert out["coverage"] == pytest.approx(1.0)


def _prdc_naive(real: np.ndarray, fake: np.ndarray, k: int) -> dict[str, float]:
    def radii(a: np.ndarray) -> np.ndarray:
        return np.array([sorted(np.linalg.norm(a - p, axis=1))[k] for p in a])

    rr, rf = radii(real), radii(fake)
    dist = np.linalg.norm(real[:, None, :] - fake[None, :, :], axis=2)  # real × fake
    return {
        "precision": float(np.mean([(dist[:, j] <= rr).any() for j in range(len(fake))])),
        "recall": float(np.mean([(dist[i, :] <= rf).any() for i in range(len(real))])),
        "density": float(sum((dist[:, j] < rr).sum() for j in range(len(fake))) / (k * len(fake))),
        "coverage": float(np.mean([(dist[i, :] < rr[i]).any() for i in range(len(real))])),
    }


def test_prdc_matches_naive_definition_on_random_sets() -> None:
    r = _rng(12)
    real, fake = r.standard_normal((80, 5)), r.standard_normal((60, 5)) * 1.3 + 0.3
    ours = prdc(torch.tensor(real), torch.tensor(fake), k=3)
    assert ours == pytest.approx(_prdc_naive(real, fake, 3), abs=1e-12)


# -------------------------------------------------------------------------------------------- modes
def test_mode_stats_hand_built_ring_and_grid() -> None:
    c = ring_centers()  # 8 modes, σ = 0.01
    s = 0.01
    pts = torch.stack([c[0], c[0], c[1], c[2] + torch.tensor([2 * s, 0.0], dtype=c.dtype),
                       c[3] + torch.tensor([0.0, 3.5 * s], dtype=c.dtype), torch.zeros(2, dtype=c.dtype)])
    out = mode_stats(pts, c, s)
    # high quality: the first four (σ-distance 0, 0, 0, 2); 3.5σ and the origin are not
    assert out["modes"] == 3 and out["hq"] == pytest.approx(4 / 6)
    assert out["kl"] == pytest.approx(0.5 * math.log(4) + 0.5 * math.log(2), rel=1e-12)
    g = grid_centers()
    out = mode_stats(g.repeat(2, 1), g, 0.05)
    assert out == pytest.approx({"modes": 25, "hq": 1.0, "kl": 0.0})
    out = mode_stats(g + 1.0, g, 0.05)  # every point 1 away: 20σ
    assert out["modes"] == 0 and out["hq"] == 0.0 and out["kl"] == pytest.approx(math.log(25))


def test_stacked_mode_stats() -> None:
    assert stacked_mode_stats(torch.arange(1000)) == pytest.approx({"modes": 1000, "kl": 0.0})
    assert stacked_mode_stats(torch.full((50,), 7)) == pytest.approx({"modes": 1, "kl": math.log(1000)})
    assert stacked_mode_stats(torch.tensor([3, 3, 999, 999])) == pytest.approx({"modes": 2, "kl": math.log(500)})


# ------------------------------------------------------------------------------ shipped classifier
@pytest.fixture(scope="module")
def t10k() -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = load_mnist_t10k()
    return images.unsqueeze(1).float().div(127.5).sub(1.0), labels


def test_shipped_classifier_reaches_stated_accuracy(t10k) -> None:
    x, y = t10k
    a, b = MNIST_HELDOUT_SPLIT
    net = load_mnist_classifier()
    assert sum(p.numel() for p in net.parameters()) < 150_000
    assert len(resources.files("saddlepoint").joinpath("assets", "mnist_classifier.pt").read_bytes()) < 500_000
    with torch.no_grad():
        pred = torch.cat([net(chunk).argmax(1) for chunk in x[a:b].split(1000)])
    acc = float((pred == y[a:b]).double().mean())
    assert acc >= 0.985
    assert acc == pytest.approx(MNIST_HELDOUT_ACCURACY, abs=1e-3)


def test_evaluation_leaves_the_global_rng_alone(t10k, monkeypatch: pytest.MonkeyPatch) -> None:
    from saddlepoint.metrics import features

    monkeypatch.setattr(features, "_MNIST_CACHE", {})  # force a fresh load of the classifier
    monkeypatch.setattr(features, "_EXTRACTORS", {})
    x, _ = t10k
    before = torch.get_rng_state()
    evaluate_metrics(["fid", "is"], x[:40], _digits(x, 100), EvalConfig(cache_dir="none", is_splits=2))
    assert torch.equal(before, torch.get_rng_state())  # resumed runs must draw the same numbers


def test_stacked_modes_metric_on_real_stacked_digits() -> None:
    ds = build_dataset("stacked-mnist", limit=600)
    digits = classify_digits(ds.images)
    pred = digits[:, 0] * 100 + digits[:, 1] * 10 + digits[:, 2]
    assert float((pred == ds.labels).double().mean()) > 0.95
    out = evaluate_metrics(["stacked-modes"], ds.images, ds)
    assert out == stacked_mode_stats(pred)
    truth = stacked_mode_stats(ds.labels)
    assert abs(out["modes"] - truth["modes"]) <= 15
    with pytest.raises(ConfigError, match="3-channel"):
        evaluate_metrics(["stacked-modes"], torch.zeros(4, 1, 28, 28), ds)


# ------------------------------------------------------------------ feature metrics and the cache
@pytest.fixture
def cfg(tmp_path: Path) -> EvalConfig:
    return EvalConfig(cache_dir=str(tmp_path / "cache"), kid_subsets=10, kid_subset_size=200)


def _digits(x: torch.Tensor, n: int, name: str = "mnist-t10k") -> ImageDataset:
    return ImageDataset(x[:n].clone(), name=name)


def test_fid_in_shipped_features_separates_real_from_noise(t10k, cfg: EvalConfig, tmp_path: Path) -> None:
    x, _ = t10k
    ds = _digits(x, 5000)
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


class _CountingNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(784, 12)
        nn.init.normal_(self.proj.weight, generator=torch.Generator().manual_seed(0))
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += len(x)
        return torch.tanh(self.proj(x.flatten(1)))


def test_real_statistics_are_cached_on_disk_by_content_and_settings(t10k, cfg: EvalConfig, tmp_path: Path) -> None:
    x, _ = t10k
    net = _CountingNet()
    fake = x[9000:9100]
    first = evaluate_metrics(["fid"], fake, _digits(x, 3000), cfg, features=net)
    assert net.calls == 3000 + 100
    net.calls = 0
    again = evaluate_metrics(["fid"], fake, _digits(x, 3000), cfg, features=net)  # new object: from disk
    assert net.calls == 100 and again == first
    net.calls = 0
    evaluate_metrics(["fid"], fake, _digits(x.flip(0), 3000), cfg, features=net)  # same name/size, other data
    assert net.calls == 3000 + 100
    net.calls = 0
    small = EvalConfig(cache_dir=cfg.cache_dir, real_samples=1000)
    evaluate_metrics(["fid"], fake, _digits(x, 3000), small, features=net)  # a seeded subset of 1000
    assert net.calls == 1000 + 100
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 3
    # a plain callable has no stable identity: never cached on disk
    evaluate_metrics(["fid"], fake, _digits(x, 300), EvalConfig(cache_dir=str(tmp_path / "c2")),
                     features=lambda im: im.flatten(1)[:, :10])
    assert not (tmp_path / "c2").exists()


def test_inception_requested_but_absent_is_a_clear_error(t10k, tmp_path: Path) -> None:
    x, _ = t10k
    ds = _digits(x, 100)
    with pytest.raises(UserError, match="eval.inception_path"):
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


class _FakeInception(nn.Module):
    """Mimics the NVIDIA TorchScript interface: 0..255 input, return_features / no_output_bias flags."""

    def forward(self, x: torch.Tensor, return_features: bool = False, no_output_bias: bool = False) -> torch.Tensor:
        pooled = x.mean(dim=(2, 3))  # N×3
        feats = torch.cat([pooled, pooled * pooled / 255.0], dim=1)
        if return_features:
            return feats
        return torch.softmax(feats[:, :4] / 255.0, dim=1)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_torchscript_feature_files(t10k, tmp_path: Path) -> None:
    x, _ = t10k
    ds = _digits(x, 200)
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
