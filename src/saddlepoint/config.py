"""Typed configuration: dataclasses with defaults, YAML files, dotted ``--set key=value`` overrides.

Every value is checked against its annotation; unknown keys and wrong types raise :class:`ConfigError`
naming the dotted key. ``optim`` also accepts further method hyper-parameters (``optim.beta1``,
``optim.tol``, ...), which the chosen optimizer validates when it is built.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import yaml

from .errors import ConfigError


@dataclass
class DataConfig:
    name: str = "mnist-t10k"
    root: str | None = None
    limit: int | None = None
    channels: int | None = None


@dataclass
class ModelConfig:
    name: str = "dcgan28"
    z_dim: int = 64
    # architecture options; None leaves the model's own default. A model takes the ones it has.
    scale: float | None = 0.5  # DCGAN channel multiplier (1.0 = the standard widths)
    width: int | None = None  # MLP hidden units
    depth: int | None = None
    activation: str | None = None
    batchnorm: bool | None = None
    spectral_norm: bool | None = None
    dropout: float | None = None
    init: str | None = None

    def options(self) -> dict[str, Any]:
        """The architecture options that are set."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in ("name", "z_dim") or value is None:
                continue
            out[f.name] = value
        return out


@dataclass
class LossConfig:
    name: str = "ns"
    penalty: list[str] = field(default_factory=list)
    gp_weight: float | None = None
    dragan_weight: float | None = None
    r1_weight: float | None = None
    r2_weight: float | None = None
    clip_weight: float | None = None


@dataclass
class OptimConfig:
    name: str = "adam"
    lr: float | list[float] | None = 1e-3  # None: the method's own default
    # None: in GAN training, the method's ``gan_scheme`` (alternating for the first-order methods, D
    # first), else the method's default (simultaneous)
    scheme: str | None = None
    hvp: str | None = None  # None: the method's default (exact)
    extra: dict[str, Any] = field(default_factory=dict)

    def hyper_parameters(self) -> dict[str, Any]:
        """The keyword arguments for :func:`saddlepoint.optim.build` (unset values left to the method)."""
        hp: dict[str, Any] = dict(self.extra)
        for key in ("lr", "scheme", "hvp"):
            if getattr(self, key) is not None:
                hp[key] = getattr(self, key)
        return hp


@dataclass
class TrainConfig:
    steps: int = 3500
    batch_size: int = 32
    n_critic: int = 1
    ema: float = 0.999
    threads: int | None = None
    device: str = "cpu"
    sample_every: int = 0
    # accelerator and data-parallel options (docs/distributed.md)
    amp: str = "none"  # none | bf16 | fp16: autocast around the models' forward passes
    channels_last: bool = False  # image models and batches in channels-last memory format
    compile: bool = False  # torch.compile the models (measured slower on this CPU)
    sync_bn: bool | None = None  # synchronised BatchNorm across ranks; None: on when world size > 1


@dataclass
class EvalConfig:
    every: int = 0
    metrics: list[str] = field(default_factory=list)
    samples: int = 2500
    # feature network for fid/kid/prdc/is: None or "auto" (MNIST classifier for grey and Stacked-MNIST
    # images, Inception if inception_path is set), "mnist", "inception", or a TorchScript file path
    features: str | None = None
    inception_path: str | None = None  # local TorchScript (or torchvision state-dict) Inception-v3
    cache_dir: str | None = None  # real-data statistics cache; None: $SADDLEPOINT_CACHE or ~/.cache; "none": off
    real_samples: int = 10000  # reference images (a fixed seeded subset when the data set is larger)
    prdc_k: int = 5
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    is_splits: int = 10


@dataclass
class LogConfig:
    every: int = 50
    progress: str = "auto"
    tensorboard: bool = False
    report: bool = True  # write report.html at the end of train/resume


@dataclass
class CheckpointConfig:
    every: int = 0
    keep: int = 3


@dataclass
class Config:
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    log: LogConfig = field(default_factory=LogConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)


#: sections whose unknown keys are collected in ``extra`` instead of being rejected
_OPEN_SECTIONS = {OptimConfig}

#: allowed values of enumerated string keys
CHOICES: dict[str, tuple[str, ...]] = {
    "optim.scheme": ("alternating", "simultaneous"),
    "optim.hvp": ("exact", "fd"),
    "train.device": ("auto", "cpu", "cuda"),
    "log.progress": ("auto", "bar", "lines", "none"),
}


# ---------------------------------------------------------------------------------- coercion
def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is list:
        return f"list of {_type_name(typing.get_args(tp)[0])}"
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Convert ``value`` (from YAML or a command-line string) to annotation ``tp`` or raise."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        if isinstance(value, str) and value.strip().lower() in ("none", "null", "~") and type(None) in args:
            return None
        errors = []
        # try non-list alternatives first so "1e-4" becomes a float, "[1,2]" a list
        for arg in sorted((a for a in args if a is not type(None)), key=lambda a: typing.get_origin(a) is list):
            try:
                return _coerce(value, arg, key)
            except ConfigError as exc:
                errors.append(exc)
        raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")
    if origin is list:
        (item,) = typing.get_args(tp)
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                try:
                    value = yaml.safe_load(text)
                except yaml.YAMLError:
                    raise ConfigError(f"{key}: malformed list {text!r}") from None
            else:
                value = [v.strip() for v in text.split(",") if v.strip()]
        if isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, list):
            if item is str and isinstance(value, str):
                return [value]
            raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")
        return [_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "yes", "on", "1", "false", "no", "off", "0"):
            return value.strip().lower() in ("true", "yes", "on", "1")
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                number = float(value.strip().replace("_", ""))
            except ValueError:
                number = None
            if number is not None and number.is_integer():
                return int(number)
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    if tp is Any:
        return value
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    raise ConfigError(f"{key}: unsupported type {tp}")


def _parse_free_value(value: Any) -> Any:
    """A value without a declared type (``optim.*`` extras): YAML-typed, numbers recognised."""
    if not isinstance(value, str):
        return value
    try:
        parsed = yaml.safe_load(value) if value.strip() else value
    except yaml.YAMLError:
        return value
    if isinstance(parsed, str):
        try:
            return float(parsed) if any(c in parsed for c in ".eE") else int(parsed)
        except ValueError:
            return parsed
    return parsed


def _apply(obj: Any, updates: dict[str, Any], prefix: str) -> None:
    if not isinstance(updates, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping, got {updates!r}")
    hints = typing.get_type_hints(type(obj))
    fields = {f.name for f in dataclasses.fields(obj)}
    for name, value in updates.items():
        key = f"{prefix}{name}"
        if not isinstance(name, str):
            raise ConfigError(f"{key}: keys must be strings")
        if name not in fields or (name == "extra" and type(obj) in _OPEN_SECTIONS):
            if type(obj) in _OPEN_SECTIONS:
                obj.extra[name] = _parse_free_value(value)
                continue
            valid = ", ".join(f"{prefix}{f}" for f in sorted(fields))
            raise ConfigError(f"unknown config key {key!r}; valid keys here: {valid}")
        current = getattr(obj, name)
        if dataclasses.is_dataclass(current):
            _apply(current, value, f"{key}.")
            continue
        coerced = _coerce(value, hints[name], key)
        if key in CHOICES and coerced is not None and coerced not in CHOICES[key]:
            raise ConfigError(f"{key}: unknown value {coerced!r}; valid: {', '.join(CHOICES[key])}")
        setattr(obj, name, coerced)


def nest(dotted: dict[str, Any]) -> dict[str, Any]:
    """``{"a.b": 1}`` → ``{"a": {"b": 1}}``."""
    out: dict[str, Any] = {}
    for key, value in dotted.items():
        parts = key.split(".")
        if not all(parts):
            raise ConfigError(f"--set {key}: malformed key")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {key}: {part} is not a section")
        node[parts[-1]] = value
    return out


def parse_sets(pairs: list[str]) -> dict[str, str]:
    """``["optim.lr=1e-4", ...]`` → ``{"optim.lr": "1e-4"}``."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {pair!r}: expected KEY=VALUE")
        out[key.strip()] = value
    return out


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping with the safe loader; errors name the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"config file {path}{where}: invalid YAML") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: expected a mapping at the top level")
    return data


#: datasets whose recommended configuration (``assets/presets/<name>.yaml``, also ``configs/<name>.yaml``) is
#: the starting point of any run on them; the other datasets start from :class:`Config`'s defaults (the
#: default job: an image GAN)
DATASET_PRESETS = ("ring", "grid", "stacked-mnist")
#: sections whose settings belong to the ``name`` they configure: a preset's section is dropped when the
#: user picks another name (e.g. the ring preset's Adam betas when the user asks for ``optim.name: sgd``)
_NAMED_SECTIONS = ("model", "loss", "optim")


def dataset_preset(name: str) -> dict[str, Any] | None:
    """The recommended configuration for dataset ``name`` (None: the package defaults apply)."""
    if name not in DATASET_PRESETS:
        return None
    return read_yaml(Path(__file__).parent / "assets" / "presets" / f"{name}.yaml")


def _chosen(layers: tuple[dict[str, Any], ...], section: str) -> Any:
    """The last ``section.name`` the layers set explicitly (None: not set)."""
    value = None
    for layer in layers:
        node = layer.get(section) if isinstance(layer, dict) else None
        if isinstance(node, dict) and "name" in node:
            value = node["name"]
    return value


def with_dataset_preset(layers: tuple[dict[str, Any], ...]) -> tuple[dict[str, Any], ...]:
    """Put the chosen dataset's preset under the user's layers, without the sections whose ``name`` the
    user changed; the user's keys win everywhere."""
    preset = dataset_preset(_chosen(layers, "data"))
    if preset is None:
        return layers
    for section in _NAMED_SECTIONS:
        chosen = _chosen(layers, section)
        if chosen is not None and chosen != (preset.get(section) or {}).get("name"):
            preset.pop(section, None)
    return (preset, *layers)


def build_config(*layers: dict[str, Any], dataset_defaults: bool = False) -> Config:
    """Defaults, then each layer (nested dicts from YAML, ``nest(--set)`` or the Python API) in order.

    ``dataset_defaults``: start from the chosen dataset's preset (:func:`with_dataset_preset`), as
    ``saddlepoint train``, ``sweep`` and :func:`saddlepoint.train` do."""
    config = Config()
    if dataset_defaults:
        layers = with_dataset_preset(layers)
    for layer in layers:
        if layer:
            _apply(config, layer, "")
    if not 0 <= config.seed < 2**32:
        raise ConfigError(f"seed: expected an integer in [0, 2**32), got {config.seed}")
    return config


def to_dict(config: Config) -> dict[str, Any]:
    """Plain nested dict (``optim.extra`` flattened into ``optim``), as written to config.yaml."""
    data = dataclasses.asdict(config)
    extra = data["optim"].pop("extra")
    data["optim"].update(extra)
    return data


def dump_yaml(config: Config) -> str:
    return yaml.safe_dump(to_dict(config), sort_keys=False)
