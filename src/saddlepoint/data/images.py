"""Image datasets from user files and scikit-learn: ``folder``, ``npz``, ``digits``.

All images end up float32 N×C×H×W in [-1, 1] (uint8 ``x`` → ``x / 127.5 − 1``), converted to the
model's ``resolution``/``channels`` (see :func:`saddlepoint.data.base.convert_images`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import DataError
from .base import (
    DATASETS,
    Dataset,
    ImageDataset,
    PointDataset,
    apply_limit,
    convert_images,
    uint8_to_unit,
)

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"})
_GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})


# --------------------------------------------------------------------------------------------------
# folder


def list_images(root: Path) -> tuple[list[Path], list[int] | None, list[str] | None]:
    """Image files under ``root`` (recursive, hidden entries skipped), sorted by relative path.

    Labels come from the first-level sub-folder names (sorted, numbered from 0) when every image lies
    in a sub-folder; otherwise there are no labels.
    """
    found: list[tuple[str, ...]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        rel = Path(dirpath).relative_to(root).parts
        for f in filenames:
            if not f.startswith(".") and os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS:
                found.append((*rel, f))
    found.sort()
    files = [root.joinpath(*parts) for parts in found]
    if found and all(len(parts) >= 2 for parts in found):
        classes = sorted({parts[0] for parts in found})
        index = {c: i for i, c in enumerate(classes)}
        return files, [index[parts[0]] for parts in found], classes
    return files, None, None


def _load_image(path: Path, channels: int | None, resolution: int | None) -> np.ndarray:
    """One image as uint8 H×W×C (C = 1 or 3), converted and resized with Pillow."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            if resolution is not None and im.format == "JPEG":
                im.draft("L" if channels == 1 else "RGB", (resolution, resolution))  # fast JPEG downscale
            im.load()
            grey = im.mode in _GREY_MODES if channels is None else channels == 1
            if im.mode.startswith("I") or im.mode == "F":
                a = np.asarray(im)
                if a.dtype != np.uint8:
                    a = np.asarray(im, dtype=np.float64)
                    if im.mode.startswith("I;16") or a.max() > 255:
                        a = a / 257.0
                    a = np.clip(np.rint(a), 0, 255).astype(np.uint8)
                img = Image.fromarray(a, "L")
            else:
                img = im
            img = img.convert("L" if grey else "RGB")
            if resolution is not None and img.size != (resolution, resolution):
                w, h = img.size
                if w != h:
                    s = min(w, h)
                    left, top = (w - s) // 2, (h - s) // 2
                    img = img.crop((left, top, left + s, top + s))
                img = img.resize((resolution, resolution), Image.Resampling.BILINEAR)
            arr = np.asarray(img, dtype=np.uint8)
    except DataError:
        raise
    except Exception as exc:  # Pillow raises many types for corrupt files (OSError, SyntaxError, ...)
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{path}: cannot read image ({msg})") from None
    return arr[:, :, None] if arr.ndim == 2 else arr


@DATASETS.register("folder")
def build_folder(
    *, root: str | None = None, resolution: int | None = None, channels: int | None = None,
    limit: int | None = None,
) -> ImageDataset:
    """One image per file (PNG/JPEG/BMP/GIF/WEBP) anywhere under the directory ``data.root``.

    Files are taken in sorted relative-path order (``limit`` keeps the first N); class sub-folders give
    labels (see :func:`list_images`). Images are converted with Pillow: greyscale to grey, anything else
    to RGB (``channels`` forces one; a mix of grey and colour files becomes RGB), centre-cropped to a
    square and resized bilinearly (antialiased) to ``resolution``. Without a resolution all images must
    share one size. (10,000 CIFAR-10 JPEGs load in about 1.5 s.)
    """
    if not root:
        raise DataError("data.root: not set; the folder dataset needs a directory of images")
    base = Path(root).expanduser()
    if not base.exists():
        raise DataError(f"data.root: directory {base} does not exist")
    if not base.is_dir():
        raise DataError(f"data.root: {base} is not a directory")
    files, labels, classes = list_images(base)
    if not files:
        raise DataError(
            f"data.root: no images in {base} (looked for {', '.join(sorted(IMAGE_EXTENSIONS))}, recursively)"
        )
    n = apply_limit(len(files), limit)
    files = files[:n]
    # sequential: small images decode in ~0.1 ms and a thread pool was 2x slower here (GIL contention)
    arrays = [_load_image(p, channels, resolution) for p in files]
    if resolution is None:
        h, w = arrays[0].shape[:2]
        for f, a in zip(files, arrays, strict=True):
            if a.shape[:2] != (h, w):
                raise DataError(
                    f"data.root: images differ in size ({files[0]} is {w}×{h}, {f} is {a.shape[1]}×"
                    f"{a.shape[0]}); the model must set a resolution"
                )
    c = max(a.shape[2] for a in arrays)
    if c == 3:
        arrays = [np.repeat(a, 3, axis=2) if a.shape[2] == 1 else a for a in arrays]
    x = uint8_to_unit(torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous())
    y = None if labels is None else torch.tensor(labels[:n], dtype=torch.long)
    return ImageDataset(x, y, name="folder", classes=classes)


# --------------------------------------------------------------------------------------------------
# npz / npy


def _load_arrays(path: Path) -> dict[str, np.ndarray]:
    try:
        loaded: Any = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            return {"x": loaded}
        with loaded:
            return {k: np.asarray(loaded[k]) for k in loaded.files}
    except Exception as exc:  # zipfile.BadZipFile, ValueError (pickles, bad header), OSError, EOFError
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{path}: cannot read as .npz/.npy ({msg})") from None


_LABEL_KEYS = ("y", "labels")
_EXTRA_KEYS = ("centers", "std")


def _pick(arrays: dict[str, np.ndarray], path: Path) -> tuple[str, np.ndarray]:
    for k in ("x", "images"):
        if k in arrays:
            return k, arrays[k]
    rest = [k for k in arrays if k not in _LABEL_KEYS + _EXTRA_KEYS]
    if len(rest) == 1:
        return rest[0], arrays[rest[0]]
    raise DataError(
        f"{path}: no array named 'x' or 'images', and {len(rest)} other arrays ({', '.join(rest) or 'none'})"
    )


def _to_nchw(x: np.ndarray, where: str) -> np.ndarray:
    if x.ndim == 3:
        return x[:, None]
    if x.ndim == 4:
        first, last = x.shape[1] in (1, 3), x.shape[3] in (1, 3)
        if first:  # N×C×H×W (also chosen when both axes could be channels)
            return x
        if last:
            return np.moveaxis(x, 3, 1)
    raise DataError(
        f"{where}: array of shape {x.shape} is not N×2, N×H×W, N×H×W×C or N×C×H×W with C = 1 or 3"
    )


def _scale_images(x: np.ndarray, lo: float, hi: float) -> torch.Tensor:
    """uint8 → x/127.5 − 1; other integers within 0..255 likewise; floats in [0, 1] → 2x − 1; floats
    in [-1, 1] kept; anything else min-max scaled to [-1, 1]. ``lo``/``hi``: range of the whole file."""
    if x.dtype == np.uint8:
        return uint8_to_unit(x)
    if x.dtype == np.bool_:
        x = x.astype(np.float32)
    if x.dtype.kind in "iu" and lo >= 0 and hi <= 255:
        return uint8_to_unit(x.astype(np.uint8))
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    if lo >= 0 and hi <= 1:
        return t.mul_(2.0).sub_(1.0)
    if lo >= -1 and hi <= 1:
        return t
    if hi == lo:
        return torch.zeros_like(t)
    return t.sub_(lo).mul_(2.0 / (hi - lo)).sub_(1.0).clamp_(-1.0, 1.0)


@DATASETS.register("npz")
def build_npz(
    *, root: str | None = None, resolution: int | None = None, channels: int | None = None,
    limit: int | None = None,
) -> Dataset:
    """Arrays from the ``.npz``/``.npy`` file ``data.root``.

    Data: key ``x``, else ``images``, else the only other array (a ``.npy`` holds just the data).
    Shapes: N×2 → a :class:`PointDataset` of those points (optional ``centers`` K×2 and scalar ``std``
    arrays are exposed for the mode metrics; values used as they are); N×H×W, N×H×W×C or N×C×H×W
    (C = 1 or 3; N×C×H×W wins when both could be channels) → images. Image values: uint8 (and other
    integers within 0..255) → x/127.5 − 1; floats within [0, 1] → 2x − 1; floats within [-1, 1] kept
    as they are; anything else min-max scaled to [-1, 1]. Optional labels: ``y`` or ``labels``.
    """
    if not root:
        raise DataError("data.root: not set; the npz dataset needs a .npz or .npy file")
    path = Path(root).expanduser()
    if not path.exists():
        raise DataError(f"data.root: file {path} does not exist")
    if path.is_dir():
        raise DataError(f"data.root: {path} is a directory; the npz dataset needs a .npz or .npy file")
    arrays = _load_arrays(path)
    key, x = _pick(arrays, path)
    where = f"{path}[{key}]"
    if x.dtype.kind not in "uifb":
        raise DataError(f"{where}: expected a numeric array, got dtype {x.dtype}")
    if x.ndim == 0 or len(x) == 0 or x.size == 0:
        raise DataError(f"{where}: array is empty (shape {x.shape})")
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        raise DataError(f"{where}: array holds NaN or infinite values")
    lo, hi = (float(x.min()), float(x.max())) if x.ndim > 2 else (0.0, 0.0)
    n = apply_limit(len(x), limit)
    x = x[:n]
    y = None
    for k in _LABEL_KEYS:
        if k in arrays:
            lab = arrays[k]
            if lab.ndim != 1 or lab.dtype.kind not in "iub":
                raise DataError(
                    f"{path}[{k}]: labels must be a 1-D integer array, got {lab.dtype} {lab.shape}"
                )
            if len(lab) != len(arrays[key]):
                raise DataError(f"{path}[{k}]: {len(lab)} labels for {len(arrays[key])} samples")
            y = torch.from_numpy(lab[:n].astype(np.int64))
            break
    if x.ndim == 2:
        if x.shape[1] != 2:
            raise DataError(f"{where}: 2-D data must be N×2 points, got shape {x.shape}")
        centers = arrays.get("centers")
        if centers is not None and (centers.ndim != 2 or centers.shape[1] != 2):
            raise DataError(f"{path}[centers]: must be K×2, got shape {centers.shape}")
        std = arrays.get("std")
        if std is not None and std.size != 1:
            raise DataError(f"{path}[std]: must be a scalar, got shape {std.shape}")
        return PointDataset(
            None if centers is None else torch.from_numpy(centers.astype(np.float64)),
            None if std is None else float(std.reshape(())),
            points=torch.from_numpy(x.astype(np.float32)),
            name="npz",
        )
    images = _scale_images(_to_nchw(x, where), lo, hi).contiguous()
    images = convert_images(images, resolution, channels, where=where)
    return ImageDataset(images, y, name="npz")


# --------------------------------------------------------------------------------------------------
# digits


@DATASETS.register("digits")
def build_digits(
    *, root: str | None = None, resolution: int | None = None, channels: int | None = None,
    limit: int | None = None,
) -> ImageDataset:
    """scikit-learn's ``load_digits``: 1,797 greyscale 8×8 digits, values 0..16 → x/8 − 1, labels 0..9."""
    from sklearn.datasets import load_digits

    d = load_digits()
    n = apply_limit(len(d.images), limit)
    x = torch.from_numpy(d.images[:n].astype(np.float32)).div_(8.0).sub_(1.0).unsqueeze(1)
    x = convert_images(x, resolution, channels, where="digits")
    return ImageDataset(x, torch.from_numpy(d.target[:n].astype(np.int64)), name="digits")
