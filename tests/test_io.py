"""Atomic writes: the old file or the new one, never a torn one, and no temporary file left behind."""

import os

import pytest
import torch

from saddlepoint.errors import UserError
from saddlepoint.io import atomic_torch_save, atomic_write, atomic_write_bytes, atomic_write_text


def test_text_bytes_and_torch(tmp_path):
    atomic_write_text(tmp_path / "deep" / "a.txt", "héllo\n")
    assert (tmp_path / "deep" / "a.txt").read_text(encoding="utf-8") == "héllo\n"
    atomic_write_bytes(tmp_path / "b.bin", b"\x00\x01")
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    atomic_torch_save({"w": torch.arange(3)}, tmp_path / "c.pt")
    assert torch.equal(torch.load(tmp_path / "c.pt", weights_only=True)["w"], torch.arange(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.bin", "c.pt", "deep"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "keep.txt"
    atomic_write_text(path, "old")
    with pytest.raises(RuntimeError), atomic_write(path) as fh:
        fh.write(b"new, half written")
        raise RuntimeError("crash mid-write")
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["keep.txt"]
    with pytest.raises(AttributeError):
        atomic_torch_save(object(), path, save=lambda obj, fh: (fh.write(b"partial"), obj.missing))
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["keep.txt"]


def test_an_unwritable_place_is_a_user_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="cannot write"):
        atomic_write_text(tmp_path / "file" / "below.txt", "y")
