"""The idx file format."""

from __future__ import annotations

import gzip
import hashlib
import importlib.resources

import numpy as np
import pytest
import torch

from saddlepoint.data import (
    load_mnist_t10k,
    read_idx,
)
from saddlepoint.errors import DataError

from .helpers import (
    MNIST_ASSETS,
    T10K_IMAGES_MD5,
    T10K_LABELS_MD5,
    bundled_bytes,
    idx_bytes,
)


def test_read_idx_bundled_t10k(tmp_path):
    gz = bundled_bytes("t10k-images-idx3-ubyte.gz")
    raw = gzip.decompress(gz)
    assert hashlib.md5(raw).hexdigest() == T10K_IMAGES_MD5
    with importlib.resources.as_file(MNIST_ASSETS / "t10k-images-idx3-ubyte.gz") as p:
        images = read_idx(p, expect_magic=2051)
    assert images.shape == (10_000, 28, 28) and images.dtype == np.uint8
    assert images.tobytes() == raw[16:]
    (tmp_path / "raw-idx").write_bytes(raw)
    np.testing.assert_array_equal(read_idx(tmp_path / "raw-idx", 2051), images)  # raw == gz

    imgs, labels = load_mnist_t10k()
    assert torch.equal(imgs, torch.from_numpy(images))
    raw_labels = gzip.decompress(bundled_bytes("t10k-labels-idx1-ubyte.gz"))
    assert hashlib.md5(raw_labels).hexdigest() == T10K_LABELS_MD5
    assert labels.dtype == torch.int64 and labels.shape == (10_000,)
    assert labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert torch.bincount(labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_read_idx_dtypes_and_errors(tmp_path):
    a = np.arange(24, dtype=np.int32).reshape(2, 3, 4) - 5
    (tmp_path / "ints").write_bytes(idx_bytes(a, 0x0C))
    np.testing.assert_array_equal(read_idx(tmp_path / "ints"), a)
    f = np.linspace(-1, 1, 6).astype(np.float32)
    (tmp_path / "floats.gz").write_bytes(gzip.compress(idx_bytes(f, 0x0D)))
    np.testing.assert_array_equal(read_idx(tmp_path / "floats.gz"), f)

    img = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    data = idx_bytes(img)
    bad = tmp_path / "short-images-idx3-ubyte"
    bad.write_bytes(data[:-10])
    with pytest.raises(DataError, match=r"short-images-idx3-ubyte.*truncated"):
        read_idx(bad, 2051)
    (tmp_path / "hdr").write_bytes(data[:10])
    with pytest.raises(DataError, match="truncated"):
        read_idx(tmp_path / "hdr")
    (tmp_path / "long").write_bytes(data + b"\0\0")
    with pytest.raises(DataError, match="beyond"):
        read_idx(tmp_path / "long")
    with pytest.raises(DataError, match=r"magic.*2049"):  # an image file where labels are expected
        (tmp_path / "img").write_bytes(data)
        read_idx(tmp_path / "img", 2049)
    (tmp_path / "junk").write_bytes(b"\x12\x34\x08\x03" + data[4:])
    with pytest.raises(DataError, match="junk.*not an idx file"):
        read_idx(tmp_path / "junk")
    gzdata = gzip.compress(data)
    (tmp_path / "cut.gz").write_bytes(gzdata[: len(gzdata) // 2])
    with pytest.raises(DataError, match=r"cut\.gz.*gzip"):
        read_idx(tmp_path / "cut.gz")
    with pytest.raises(DataError, match="does not exist"):
        read_idx(tmp_path / "missing")
