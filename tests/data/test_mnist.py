"""The MNIST datasets: mnist, mnist-t10k, stacked-mnist."""

from __future__ import annotations

import pytest
import torch

from saddlepoint.data import (
    ImageDataset,
    build_dataset,
    load_mnist_t10k,
)
from saddlepoint.errors import DataError

from .helpers import (
    assert_close,
    write_mnist,
)


def test_mnist_builder_layouts(tmp_path):
    img, lab = write_mnist(tmp_path / "a" / "MNIST" / "raw", "t10k", 6, gz=True)
    ds = build_dataset("mnist", root=str(tmp_path / "a"))
    assert isinstance(ds, ImageDataset) and ds.kind == "images" and ds.sample_shape == (1, 28, 28)
    assert_close(ds.images[:, 0], torch.from_numpy(img).float() / 127.5 - 1)
    assert ds.labels.tolist() == lab.tolist()
    # train preferred over t10k; raw files directly in root
    write_mnist(tmp_path / "b", "t10k", 4, gz=False, seed=1)
    train, _ = write_mnist(tmp_path / "b", "train", 9, gz=False, seed=2)
    ds = build_dataset("mnist", root=str(tmp_path / "b"), resolution=32, channels=3, limit=5)
    assert ds.images.shape == (5, 3, 32, 32)
    assert ds.images.min() >= -1 and ds.images.max() <= 1
    assert torch.equal(ds.images[:, 0], ds.images[:, 2])
    # label count mismatch, missing dir, empty dir
    write_mnist(tmp_path / "c", "t10k", 6, gz=True, labels=5)
    with pytest.raises(DataError, match="5 labels for 6 images"):
        build_dataset("mnist", root=str(tmp_path / "c"))
    with pytest.raises(DataError, match=r"data\.root: directory .* does not exist"):
        build_dataset("mnist", root=str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no MNIST idx files"):
        build_dataset("mnist", root=str(tmp_path / "empty"))


def test_mnist_t10k_and_stacked():
    ds = build_dataset("mnist-t10k")
    assert ds.images.shape == (10_000, 1, 28, 28) and ds.images.dtype == torch.float32
    assert ds.images.min().item() == -1.0 and ds.images.max().item() == 1.0
    imgs, labels = load_mnist_t10k()
    assert torch.equal(ds.images[3, 0], imgs[3].float() / 127.5 - 1) and torch.equal(ds.labels, labels)

    st = build_dataset("stacked-mnist", limit=2000)
    assert st.images.shape == (2000, 3, 28, 28) and st.labels.max() < 1000
    assert len(st.labels.unique()) > 800  # ~1,000 modes
    flat = ds.images.flatten(1)
    for i in range(3):  # every channel is an MNIST digit whose class gives that label digit
        for c, div in enumerate((100, 10, 1)):
            j = (flat == st.images[i, c].flatten()).all(dim=1).nonzero()[0, 0]
            assert ds.labels[j] == st.labels[i] // div % 10
    assert torch.equal(build_dataset("stacked-mnist", limit=50).images, st.images[:50])  # fixed seed
    with pytest.raises(DataError, match="3 channels"):
        build_dataset("stacked-mnist", channels=1)


def test_the_old_idx_import_paths_still_work():
    from saddlepoint.data import idx, mnist

    for name in idx.MOVED_TO_MNIST:
        assert getattr(idx, name) is getattr(mnist, name)
    from saddlepoint.data.idx import load_mnist_t10k  # noqa: F401
