"""The idx file format (MNIST's files); the MNIST datasets are in :mod:`saddlepoint.data.mnist`.

idx: 4 magic bytes ``0, 0, dtype code, ndim``, then ``ndim`` big-endian uint32 sizes, then the data,
big-endian. MNIST image files have magic 2051 (ubyte, 3 dims), label files 2049 (ubyte, 1 dim).
"""

from __future__ import annotations

import gzip
import os
import zlib
from typing import Any

import numpy as np

from ..errors import DataError

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049

_IDX_DTYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _decompress(data: bytes, path: str) -> bytes:
    if data[:2] != b"\x1f\x8b":
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: not a valid gzip file, truncated or corrupt ({exc})") from None


def parse_idx(data: bytes, path: str = "<bytes>", expect_magic: int | None = None) -> np.ndarray:
    """Parse the (decompressed) bytes of an idx file; ``path`` only names the source in errors."""
    if len(data) < 4:
        raise DataError(f"{path}: truncated idx file: {len(data)} bytes, not even a header")
    magic = int.from_bytes(data[:4], "big")
    code, ndim = data[2], data[3]
    if expect_magic is not None and magic != expect_magic:
        raise DataError(f"{path}: wrong idx magic number {magic} (0x{magic:08x}), expected {expect_magic}")
    if data[0] != 0 or data[1] != 0 or code not in _IDX_DTYPES or ndim == 0:
        raise DataError(f"{path}: not an idx file (magic number 0x{magic:08x})")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: truncated idx file: header needs {header} bytes, file has {len(data)}")
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = _IDX_DTYPES[code]
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    got = len(data) - header
    if got < expected:
        raise DataError(
            f"{path}: truncated idx file: header {'×'.join(map(str, dims))} needs {expected} data bytes, "
            f"file has {got}"
        )
    if got > expected:
        raise DataError(
            f"{path}: malformed idx file: {got - expected} bytes beyond the {'×'.join(map(str, dims))} "
            "the header declares"
        )
    arr = np.frombuffer(data, dtype=dtype, count=expected // dtype.itemsize, offset=header)
    return arr.reshape(dims).astype(dtype.newbyteorder("="), copy=True)


def read_idx(path: str | os.PathLike[str], expect_magic: int | None = None) -> np.ndarray:
    """Read an idx file, gzipped (detected by content) or raw, into a native-endian numpy array.

    ``expect_magic`` (e.g. 2051 for MNIST images, 2049 for labels) is checked when given. A missing,
    truncated (fewer bytes than the header declares), over-long or malformed file raises
    :class:`DataError` naming the file and the problem.
    """
    p = str(path)
    try:
        with open(p, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        raise DataError(f"{p}: file does not exist") from None
    except OSError as exc:
        raise DataError(f"{p}: cannot read ({exc.strerror or exc})") from None
    return parse_idx(_decompress(raw, p), p, expect_magic)


#: names that moved to :mod:`saddlepoint.data.mnist`, still importable from here
MOVED_TO_MNIST = ("STACKED_SEED", "build_mnist", "build_mnist_t10k", "build_stacked_mnist", "find_mnist",
                  "load_mnist_t10k", "read_mnist_pair")


def __getattr__(name: str) -> Any:
    if name in MOVED_TO_MNIST:  # moved to saddlepoint.data.mnist
        from . import mnist

        return getattr(mnist, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
