"""Typed configuration: dataclasses with defaults, YAML files, dotted ``--set key=value`` overrides.

Every value is checked; unknown keys and wrong types raise :class:`ConfigError` naming the dotted key.

The three sections that name a component — ``model``, ``loss``, ``optim`` — extend one way: a few keys
every choice takes (``name``; ``model.z_dim``; ``loss.penalty``; ``optim.lr``/``scheme``/``hvp``) and an
open mapping of the chosen component's own options (``model.width``, ``optim.beta1``, ...), validated
against what the registry says the chosen name accepts. Penalties take open option mappings too:
``loss.penalty: {gp: {weight: 10, one_sided: true}}``; ``loss.penalty: [gp]``, ``loss.gp_weight`` and
``loss.gp.one_sided`` are accepted spellings of the same settings.

Layers (the dataset's preset, ``--config`` files, ``--set`` overrides, the Python API's dict, a sweep's
grid point) apply in order, later ones winning. When a later layer names another model, loss or optimizer,
the earlier layers' keys of that section that the new choice does not accept are dropped, and recorded
in ``Config.dropped`` (written to ``config.yaml`` under ``dropped:``); keys in the layer that names the
new choice, or later, are validated and fail loudly (:mod:`saddlepoint.config_layers`).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import yaml

from . import checks
from .errors import ConfigError


@dataclass
class DataConfig:
    name: str = "mnist-t10k"
    root: str | None = None
    limit: int | None = None
    channels: int | None = None


def _option_attribute(obj: Any, key: str) -> Any:
    """Attribute access to a section's open options (``cfg.model.width``); None when not set."""
    if key.startswith("_"):
        raise AttributeError(key)
    return obj.__dict__.get("extra", {}).get(key)


#: the default job's model options (applied when the chosen model takes them)
DEFAULT_MODEL_OPTIONS: dict[str, Any] = {"scale": 0.5}


@dataclass
class ModelConfig:
    name: str = "dcgan28"
    z_dim: int = 64
    #: the chosen model's options (builder keywords: ``scale``, ``width``, ``depth``, ``spectral_norm``, ...)
    extra: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_MODEL_OPTIONS))

    def options(self) -> dict[str, Any]:
        """The model's options that are set (keywords for :func:`saddlepoint.models.build_models`)."""
        return {k: v for k, v in self.extra.items() if v is not None}

    __getattr__ = _option_attribute


@dataclass
class LossConfig:
    name: str = "ns"
    #: active penalties in order: name → options (``weight`` and the penalty's declared options, filled)
    penalty: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: the chosen loss's declared options
    extra: dict[str, Any] = field(default_factory=dict)

    def options(self) -> dict[str, Any]:
        """The loss's options (keywords for :func:`saddlepoint.losses.build_loss`)."""
        return dict(self.extra)

    def __getattr__(self, key: str) -> Any:
        # ``loss.<penalty>_weight``, the older spelling: the active penalty's weight, else None
        if key.endswith("_weight") and not key.startswith("_"):
            return self.__dict__.get("penalty", {}).get(key[: -len("_weight")], {}).get("weight")
        return _option_attribute(self, key)


@dataclass
class OptimConfig:
    name: str = "adam"
    lr: float | list[float] | None = 1e-3  # None: the method's own default
    # None: in GAN training, the method's ``gan_scheme`` (alternating for the first-order methods, D
    # first), else the method's default (simultaneous)
    scheme: str | None = None
    hvp: str | None = None  # None: the method's default (exact)
    #: the chosen optimizer's further hyper-parameters (``beta1``, ``base``, ``tol``, ...)
    extra: dict[str, Any] = field(default_factory=dict)

    def hyper_parameters(self) -> dict[str, Any]:
        """The keyword arguments for :func:`saddlepoint.optim.build` (unset values left to the method)."""
        hp: dict[str, Any] = dict(self.extra)
        for key in ("lr", "scheme", "hvp"):
            if getattr(self, key) is not None:
                hp[key] = getattr(self, key)
        return hp

    options = hyper_parameters
    __getattr__ = _option_attribute


@dataclass
class TrainConfig:
    steps: int = 2500
    batch_size: int = 32
    n_critic: int = 1
    ema: float = 0.999
    threads: int | None = None
    device: str = "cpu"
    sample_every: int = 0
    # accelerator and data-parallel options (docs/distributed.md)
    amp: str = "none"  # none | bf16 | fp16: autocast around the models' forward passes
    channels_last: bool = False  # image models and batches in channels-last memory format
    compile: bool = False  # torch.compile the models
    sync_bn: bool | None = None  # synchronised BatchNorm across ranks; None: on when world size > 1
    # DiffAugment policy (saddlepoint.data.augment): "color,translation,cutout", a list, or none ([]: off)
    augment: list[str] = field(default_factory=list)


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
    # discriminator-driven samplers evaluated beside G at the end of training: name → options
    # (``eval.refine: drs``, ``[drs, mh]`` or ``{drs: {percentile: 90}}``; see saddlepoint.refine)
    refine: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class LogConfig:
    every: int = 50
    progress: str = "auto"
    tensorboard: bool = False
    report: bool = True  # write report.html at the end of train/resume
    # gradient health (saddlepoint.training.health): a warning when a player's smallest layer gradient norm stays
    # below grad_low, or its largest above grad_high, for grad_patience consecutive logs
    grad_low: float = 1e-7
    grad_high: float = 1e4
    grad_patience: int = 5


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
    #: earlier layers' keys dropped because a later layer named another component (dotted key → value);
    #: a record, it does not change the run
    dropped: dict[str, Any] = field(default_factory=dict)


#: the sections that name a component and take that component's options in ``extra``
NAMED_SECTIONS = ("model", "loss", "optim")

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


def is_none_word(value: Any) -> bool:
    return isinstance(value, str) and value.strip().lower() in ("none", "null", "~")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Convert ``value`` (from YAML or a command-line string) to annotation ``tp`` or raise."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if type(None) in args and (value is None or is_none_word(value)):
            return None
        # try non-list alternatives first so "1e-4" becomes a float, "[1,2]" a list
        for arg in sorted((a for a in args if a is not type(None)), key=lambda a: typing.get_origin(a) is list):
            try:
                return _coerce(value, arg, key)
            except ConfigError:
                pass
        raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")
    if origin is list:
        (item,) = typing.get_args(tp)
        value = as_list(value, key)
        if value is None:
            raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")
        return [_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if tp is bool:
        return checks.boolean(key, value, parse=True)
    if tp is int:
        return checks.integer(key, value, parse=True)
    if tp is float:
        return checks.number(key, value, parse=True)
    if tp is str:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        return checks.string(key, value)
    if tp is Any:
        return value
    if origin is dict:
        return checks.mapping(key, value)
    raise ConfigError(f"{key}: unsupported type {tp}")


def as_list(value: Any, key: str) -> list[Any] | None:
    """A list from a list, a tuple, ``"[a, b]"`` (YAML) or ``"a,b"``; a lone string is a list of one."""
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
    return value if isinstance(value, list) else None


def parse_value(value: Any) -> Any:
    """A value without a declared type (component options): YAML-typed, numbers recognised (``"1e-4"``)."""
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


def merge_option(current: Any, value: Any) -> Any:
    """A component option's new value: a mapping (``optim.zo: {q: 10}``, ``--set optim.zo.q=10``) is merged into
    the mapping already set, key by key, its leaves typed like other option values; anything else replaces."""
    if not isinstance(value, dict):
        return parse_value(value)
    merged = dict(current) if isinstance(current, dict) else {}
    for key, item in value.items():
        merged[key] = merge_option(merged.get(key), item)
    return merged


def _apply(obj: Any, updates: dict[str, Any], prefix: str) -> None:
    if not isinstance(updates, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {updates!r}")
    if not all(isinstance(name, str) for name in updates):
        bad = next(name for name in updates if not isinstance(name, str))
        raise ConfigError(f"{prefix}{bad}: keys must be strings")
    if isinstance(obj, LossConfig):
        from .config_layers import apply_loss_layer

        apply_loss_layer(obj, updates, prefix)
        return
    hints = typing.get_type_hints(type(obj))
    fields = {f.name for f in dataclasses.fields(obj)}
    open_section = isinstance(obj, (ModelConfig, OptimConfig))
    for name, value in updates.items():
        key = f"{prefix}{name}"
        if name not in fields or (open_section and name == "extra"):
            if open_section:
                obj.extra[name] = merge_option(obj.extra.get(name), value)
                continue
            valid = ", ".join(f"{prefix}{f}" for f in sorted(fields))
            raise ConfigError(f"unknown config key {key!r}; valid keys here: {valid}")
        current = getattr(obj, name)
        if dataclasses.is_dataclass(current):
            _apply(current, value, f"{key}.")
            continue
        if name == "dropped":
            obj.dropped.update(checks.mapping(key, value))
            continue
        if key == "eval.refine":
            from .refine import refine_setting  # imports torch: only when a sampler is asked for

            obj.refine = {} if value in (None, "", [], {}) else refine_setting(value, obj.refine, key)
            continue
        if key == "train.augment":
            from .data.augment import parse_policy  # imports torch: only when augmentation is asked for

            obj.augment = parse_policy(value, key)
            continue
        coerced = _coerce(value, hints[name], key)
        if key in CHOICES and coerced is not None:
            coerced = checks.choice(key, coerced, CHOICES[key])
        setattr(obj, name, coerced)


# ---------------------------------------------------------------------------------- layers from text
def nest(dotted: dict[str, Any]) -> dict[str, Any]:
    """``{"a.b": 1}`` → ``{"a": {"b": 1}}``. A deeper key under a list of names (``loss.penalty=gp`` then
    ``loss.penalty.gp.weight=5``) turns the names into a mapping name → options."""
    out: dict[str, Any] = {}
    for key, value in dotted.items():
        parts = key.split(".")
        if not all(parts):
            raise ConfigError(f"--set {key}: malformed key")
        node = out
        for part in parts[:-1]:
            child = node.get(part)
            if child is not None and not isinstance(child, dict):
                names = as_list(child, key) if isinstance(child, (str, list, tuple)) else None
                if names is None or not all(isinstance(n, str) for n in names):
                    raise ConfigError(f"--set {key}: {part} is not a section")
                node[part] = {n: {} for n in names}
            node = node.setdefault(part, {})
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


# ---------------------------------------------------------------------------------- presets
#: datasets whose recommended configuration (``assets/presets/<name>.yaml``; the 2-D and Stacked-MNIST ones also
#: ``configs/<name>.yaml``) is the starting point of any run on them; the other datasets start from :class:`Config`'s
#: defaults. ``mnist-t10k`` is the default data: its preset adds the default job's FID curve to those defaults.
DATASET_PRESETS = ("ring", "grid", "stacked-mnist", "mnist-t10k")


def dataset_preset(name: Any) -> dict[str, Any] | None:
    """The recommended configuration for dataset ``name`` (None: the package defaults apply)."""
    if name not in DATASET_PRESETS:
        return None
    return read_yaml(Path(__file__).parent / "assets" / "presets" / f"{name}.yaml")


def chosen(layers: tuple[dict[str, Any], ...] | list[dict[str, Any]], section: str) -> Any:
    """The last ``section.name`` the layers set explicitly (None: not set)."""
    value = None
    for layer in layers:
        node = layer.get(section) if isinstance(layer, dict) else None
        if isinstance(node, dict) and "name" in node:
            value = node["name"]
    return value


def with_dataset_preset(layers: tuple[dict[str, Any], ...]) -> tuple[dict[str, Any], ...]:
    """Put the chosen dataset's preset under the user's layers (the layering rule then drops the preset's
    keys that a model, loss or optimizer the user names does not take)."""
    preset = dataset_preset(chosen(layers, "data") or DataConfig.name)
    return layers if preset is None else (preset, *layers)


# ---------------------------------------------------------------------------------- building
def build_config(*layers: dict[str, Any], dataset_defaults: bool = False) -> Config:
    """Defaults, then each layer (nested dicts from YAML, ``nest(--set)`` or the Python API) in order.

    ``dataset_defaults``: start from the chosen dataset's preset (:func:`with_dataset_preset`), as
    ``saddlepoint train``, ``sweep`` and :func:`saddlepoint.train` do. Keys of earlier layers that a later
    layer's model, loss or optimizer does not take are dropped and recorded in ``Config.dropped``."""
    from .config_layers import drop_superseded, validate_components

    layers = tuple(layer for layer in layers if layer)
    if dataset_defaults:
        layers = with_dataset_preset(layers)
    kept, dropped = drop_superseded(list(layers))
    config = Config()
    for layer in kept:
        if layer:
            _apply(config, layer, "")
    if not 0 <= config.seed < 2**32:
        raise ConfigError(f"seed: expected an integer in [0, 2**32), got {config.seed}")
    validate_components(config, kept)
    config.dropped.update(dropped)
    return config


def dropped_keys(config: Config) -> dict[str, Any]:
    """The keys the layering dropped (dotted key → the dropped value), for the run directory's record."""
    return dict(config.dropped)


def to_dict(config: Config) -> dict[str, Any]:
    """Plain nested dict (each named section's ``extra`` flattened into it), as written to config.yaml."""
    data = dataclasses.asdict(config)
    for section in NAMED_SECTIONS:
        extra = data[section].pop("extra")
        data[section].update(extra)
    return data


def dump_yaml(config: Config) -> str:
    return yaml.safe_dump(to_dict(config), sort_keys=False)


# ---------------------------------------------------------------------------------- what changes a run
#: config keys (``x.`` = the whole section) that do not change what a run computes: logging, checkpoints,
#: sample grids, the record of dropped keys, and the thread count (which a run left unset anyway follows
#: from the machine). Used by sweeps (is a finished run the one asked for?) and by resume.
RUN_INVARIANT_KEYS: tuple[str, ...] = ("train.threads", "train.sample_every", "log.", "checkpoint.", "dropped.")
#: what ``saddlepoint resume`` may change besides: how long the run goes on and what is evaluated on the way
#: (the trajectory up to the checkpoint is the same)
RESUMABLE_KEYS: tuple[str, ...] = (*RUN_INVARIANT_KEYS, "train.steps", "eval.")


def is_run_invariant(key: str, allowed: tuple[str, ...] = RUN_INVARIANT_KEYS) -> bool:
    """Whether dotted ``key`` is covered by ``allowed`` (exact keys, or ``section.`` for a whole section)."""
    for entry in allowed:
        stem = entry.rstrip(".")
        if key == stem or key.startswith(stem + "."):
            return True
    return False


def config_differences(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested config dicts."""
    diffs: list[str] = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            diffs += config_differences(a, b, f"{prefix}{key}.")
        elif a != b:
            diffs.append(f"{prefix}{key}")
    return diffs


def run_changes(old: Config | dict[str, Any], new: Config | dict[str, Any],
                allowed: tuple[str, ...] = RUN_INVARIANT_KEYS) -> list[str]:
    """The dotted keys whose differences DO change a run (those outside ``allowed``); resume passes
    :data:`RESUMABLE_KEYS`."""
    old = to_dict(old) if isinstance(old, Config) else old
    new = to_dict(new) if isinstance(new, Config) else new
    return [k for k in config_differences(old, new) if not is_run_invariant(k, allowed)]
