"""The dataset registry, the epoch stream and image conversion (saddlepoint.data.base)."""

from __future__ import annotations

import pytest
import torch

from saddlepoint.data import (
    DATASETS,
    Dataset,
    build_dataset,
    convert_images,
)
from saddlepoint.errors import CheckpointError, ConfigError, DataError

from .helpers import (
    coded,
    gen,
    ids,
)


def test_registry_names_and_interface():
    for name in ("ring", "grid", "mnist", "mnist-t10k", "stacked-mnist", "digits", "folder", "npz"):
        assert name in DATASETS
    with pytest.raises(ConfigError, match="data.name"):
        build_dataset("no-such-data")
    with pytest.raises(ConfigError, match="limit"):
        build_dataset("digits", limit=0)
    for name in ("mnist", "folder", "npz"):
        with pytest.raises(DataError, match="data.root"):
            build_dataset(name)




def test_stream_epochs_visit_each_image_once():
    n = 10
    ds = coded(n)
    g = gen(3)
    drawn = []
    for size in (3, 3, 4, 7, 6, 7):  # 30 draws = 3 epochs, batches straddling epoch boundaries
        b = ds.sample(size, g)
        assert b.shape == (size, 1, 2, 2) and b.dtype == torch.float32
        drawn += ids(b, n)
    epochs = [drawn[i : i + n] for i in range(0, 30, n)]
    for e in epochs:
        assert sorted(e) == list(range(n))
    assert epochs[0] != epochs[1] or epochs[1] != epochs[2]  # reshuffled per epoch
    assert ds.state_dict()["epoch"] == 3 and ds.state_dict()["position"] == n


def test_stream_state_round_trip(tmp_path):
    ds = coded(13)
    g = gen(5)
    for _ in range(3):
        ds.sample(5, g)
    torch.save({"data": ds.state_dict(), "rng": g.get_state()}, tmp_path / "ck.pt")
    expected = [ds.sample(4, g) for _ in range(8)]

    ck = torch.load(tmp_path / "ck.pt", weights_only=True)  # plain ints/tensors only
    fresh = coded(13)
    g2 = torch.Generator()
    g2.set_state(ck["rng"])
    fresh.load_state_dict(ck["data"])
    for want in expected:
        assert torch.equal(fresh.sample(4, g2), want)

    with pytest.raises(CheckpointError, match="13 samples"):
        coded(12).load_state_dict(ck["data"])
    with pytest.raises(CheckpointError):
        build_dataset("ring").load_state_dict({"position": 1})
    # a fresh dataset state round-trips too (no permutation drawn yet)
    empty = coded(4).state_dict()
    other = coded(4)
    other.load_state_dict(empty)
    assert torch.equal(other.sample(4, gen(1)), coded(4).sample(4, gen(1)))


def test_convert_images_and_base_class():
    x = torch.tensor([1.0, -1.0, -1.0]).view(1, 3, 1, 1).expand(1, 3, 4, 6)  # red, 4×6
    g = convert_images(x, resolution=2, channels=1)
    assert g.shape == (1, 1, 2, 2)
    assert g.flatten().tolist() == pytest.approx([0.299 - 0.587 - 0.114] * 4, abs=1e-6)
    assert convert_images(torch.zeros(2, 1, 3, 3)).shape == (2, 1, 3, 3)
    with pytest.raises(NotImplementedError):
        Dataset().sample(1, gen())
