"""``saddlepoint fid A B``: folders, image arrays, statistics files and run directories; its errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from saddlepoint.cli import main
from saddlepoint.data import load_mnist_t10k
from saddlepoint.metrics import fid_from_features
from saddlepoint.metrics.extractors import mnist_extractor
from saddlepoint.metrics.kid import kid


def printed(capsys) -> dict[str, float]:
    return {k: float(v) for k, v in (line.split(": ") for line in capsys.readouterr().out.splitlines())}


@pytest.fixture(scope="module")
def digits():
    images, _ = load_mnist_t10k()
    return images[:400].numpy()  # uint8 N×28×28


def test_arrays_folders_and_statistics_files(digits, tmp_path, capsys):
    """FID and KID of two digit sets equal the metrics of the shipped classifier's features computed here;
    the same images as a folder of PNGs, and A's saved statistics, give the same FID."""
    a, b = tmp_path / "a.npz", tmp_path / "b.npy"
    np.savez(a, x=digits[:200])
    np.save(b, digits[200:])
    assert main(["fid", str(a), str(b), "--features", "mnist", "--metrics", "fid,kid", "--no-cache"]) == 0
    out = printed(capsys)
    ext = mnist_extractor()
    fa = ext.features(torch.from_numpy(digits[:200]).unsqueeze(1).float() / 127.5 - 1)
    fb = ext.features(torch.from_numpy(digits[200:]).unsqueeze(1).float() / 127.5 - 1)
    assert out["fid"] == pytest.approx(fid_from_features(fa, fb), rel=1e-5)
    expected = kid(fa, fb)
    assert out["kid"] == pytest.approx(expected["kid"], rel=1e-5, abs=1e-9)
    assert set(out) == {"fid", "kid", "kid_std"}

    folder = tmp_path / "pngs"
    folder.mkdir()
    for i, img in enumerate(digits[:200]):
        Image.fromarray(img).save(folder / f"{i:03d}.png")
    stats = tmp_path / "a_stats.npz"
    assert main(["fid", str(folder), "--features", "mnist", "--save-stats", str(stats), "--no-cache"]) == 0
    capsys.readouterr()
    with np.load(stats) as z:
        assert z["mu"].shape == (128,) and z["sigma"].shape == (128, 128)
    assert main(["fid", str(stats), str(b), "--features", "mnist", "--no-cache"]) == 0
    assert printed(capsys)["fid"] == pytest.approx(out["fid"], rel=1e-5)


def test_statistics_are_cached_by_content(digits, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SADDLEPOINT_CACHE", str(tmp_path / "cache"))
    a, b = tmp_path / "a.npy", tmp_path / "b.npy"
    np.save(a, digits[:100])
    np.save(b, digits[100:200])
    assert main(["fid", str(a), str(b), "--features", "mnist"]) == 0
    first = printed(capsys)
    files = sorted((tmp_path / "cache" / "stats").glob("*.npz"))
    assert len(files) == 2  # one entry per side, keyed by the images' content
    np.save(tmp_path / "a_copy.npy", digits[:100])  # same content elsewhere: served from the cache
    assert main(["fid", str(tmp_path / "a_copy.npy"), str(b), "--features", "mnist"]) == 0
    assert printed(capsys) == first and sorted((tmp_path / "cache" / "stats").glob("*.npz")) == files


def test_a_run_directory_is_its_generator(tmp_path, digits, capsys):
    import saddlepoint

    saddlepoint.train({"data": {"name": "mnist-t10k", "limit": 64},
                       "model": {"name": "dcgan28", "z_dim": 8, "scale": 0.125},
                       "train": {"steps": 2, "batch_size": 8, "ema": 0.0},
                       "eval": {"metrics": []}, "log": {"progress": "none", "report": False}},
                      out=tmp_path / "run")
    run = tmp_path / "run"
    np.save(tmp_path / "b.npy", digits[:100])
    assert main(["fid", str(run), str(tmp_path / "b.npy"), "--features", "mnist", "--samples", "50",
                 "--metrics", "fid,is", "--no-cache"]) == 0
    out = printed(capsys)
    samples = saddlepoint.sample(run, n=50, seed=0)
    ext = mnist_extractor()
    fb = ext.features(torch.from_numpy(digits[:100]).unsqueeze(1).float() / 127.5 - 1)
    assert out["fid"] == pytest.approx(fid_from_features(ext.features(samples), fb), rel=1e-5)
    assert out["is"] >= 1.0


@pytest.mark.parametrize("args, words", [
    (["fid", "MISSING", "b.npy"], ["MISSING", "no such file"]),
    (["fid", "a.npy"], ["two sides"]),
    (["fid", "stats.npz", "a.npy", "--metrics", "kid"], ["KID", "mu and sigma"]),
    (["fid", "a.npy", "a.npy", "--metrics", "fid,lpips"], ["--metrics", "lpips"]),
    (["fid", "points.npy", "a.npy"], ["points"]),
])
def test_bad_input_is_one_error_line(args, words, digits, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    np.save("a.npy", digits[:20])
    np.save("points.npy", np.zeros((10, 2), np.float32))
    np.savez("stats.npz", mu=np.zeros(128), sigma=np.eye(128))
    assert main([*args, "--features", "mnist", "--no-cache"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("error: ")
    for word in words:
        assert word in err[0], err[0]
