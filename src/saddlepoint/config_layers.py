"""The layering rule and the component checks of :mod:`saddlepoint.config`, read from the registries' facts.

One rule, whichever way a preset arrives (``--set data.name=ring``, ``--config configs/ring.yaml``,
``saddlepoint.train(dict)``, a sweep's base config): when a later layer names another model, loss or
optimizer, the keys of that section in EARLIER layers that the new choice does not accept are dropped and
recorded; keys in the layer that names it, or later, are all validated (an unknown one is an error naming
the valid ones).

What a choice accepts comes from its registry: a model's builder keywords
(:func:`saddlepoint.models.accepted_options`), a loss's declared ``options`` fact, an optimizer's
hyper-parameters (``saddlepoint.optim.accepted_hyper_parameters`` when the package provides it, else the
class's ``defaults``; a wrapper with an ``inner`` optimizer also takes the inner one's). Registries are
imported when a config is built, not when this module is imported.
"""

from __future__ import annotations

import copy
import inspect
from typing import Any

from . import checks
from .config import DEFAULT_MODEL_OPTIONS, Config, as_list, is_none_word, parse_value
from .errors import ConfigError

#: keys of a named section that every choice takes
COMMON_KEYS = {"model": ("name", "z_dim"), "loss": ("name", "penalty"), "optim": ("name",)}


# ---------------------------------------------------------------------------------- the loss section
def _penalty_names(value: Any, key: str) -> list[str]:
    if value is None or is_none_word(value):
        return []
    names = as_list(value, key)
    if names is None or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"{key}: expected a penalty name, a list of names or a mapping name → options, "
                          f"got {value!r}")
    return names


def _merge_penalty(loss: Any, name: Any, options: Any, key: str) -> None:
    """Enable penalty ``name`` and merge ``options`` (a mapping, or None for its defaults) into its settings."""
    if not isinstance(name, str):
        raise ConfigError(f"{key}: penalty names must be strings, got {name!r}")
    if options is not None and not isinstance(options, dict):
        raise ConfigError(f"{key}.{name}: expected a mapping of options (e.g. {{weight: 10}}), got {options!r}")
    settings = loss.penalty.setdefault(name, {})
    for option, value in (options or {}).items():
        settings[option] = parse_value(value)


def apply_loss_layer(loss: Any, updates: dict[str, Any], prefix: str) -> None:
    """``penalty`` first (a name or list replaces the set of penalties, a mapping merges), then
    ``<penalty>_weight`` / ``<penalty>: {options}`` (merged; they enable the penalty), then the rest."""
    ordered = sorted(updates.items(), key=lambda item: item[0] != "penalty")
    for name, value in ordered:
        key = f"{prefix}{name}"
        if isinstance(value, str) and value.strip().startswith("{"):  # a YAML mapping on the command line
            value = parse_value(value)
        if name == "name":
            loss.name = checks.string(key, str(value) if isinstance(value, (int, float)) else value)
        elif name == "penalty" and isinstance(value, dict):
            for penalty, options in value.items():
                _merge_penalty(loss, penalty, options, key)
        elif name == "penalty":
            names = _penalty_names(value, key)
            loss.penalty = {n: loss.penalty.get(n, {}) for n in names}
        elif name.endswith("_weight") and name != "_weight":
            if value is not None and not is_none_word(value):  # null: an unset weight in older config files
                _merge_penalty(loss, name[: -len("_weight")], {"weight": value}, f"{prefix}penalty")
        elif isinstance(value, dict):
            _merge_penalty(loss, name, value, f"{prefix}penalty")
        else:
            loss.extra[name] = parse_value(value)



def _is_penalty_key(key: str, value: Any) -> bool:
    return key.endswith("_weight") or isinstance(value, dict)


def accepted_keys(section: str, name: Any, given: dict[str, Any]) -> set[str] | None:
    """The option keys component ``name`` of ``section`` accepts (besides the common keys); None: any.
    ``given`` is the section's merged settings (an optimizer's accepted keys may depend on ``base``/``inner``)."""
    if section == "model":
        from .models import accepted_options

        return accepted_options(name)
    if section == "loss":
        from .losses import LOSSES

        LOSSES.get(name, key="loss.name")
        return set(LOSSES.facts(name).get("options", {}))
    return _optimizer_accepts(name, given, depth=0)


def _optimizer_accepts(name: Any, given: dict[str, Any], depth: int) -> set[str] | None:
    from . import optim

    hook = getattr(optim, "accepted_hyper_parameters", None)
    if hook is not None:
        found = hook(name, given)
        return None if found is None else set(found)
    cls = optim.OPTIMIZERS.get(name, "optim.name")
    own = getattr(cls, "accepted_hyper_parameters", None)
    if callable(own):
        found = own(given)
        return None if found is None else set(found)
    keys = set(getattr(cls, "defaults", {}))
    if "inner" in keys and depth < 3:  # a wrapper (lookahead) passes the rest to the optimizer it wraps
        inner = given.get("inner", cls.defaults.get("inner"))
        if isinstance(inner, str) and inner in optim.OPTIMIZERS and optim.OPTIMIZERS.get(inner) is not cls:
            rest = _optimizer_accepts(inner, given, depth + 1)
            return None if rest is None else keys | rest
        return None
    return keys


def _section_of(layer: Any, section: str) -> dict[str, Any] | None:
    node = layer.get(section) if isinstance(layer, dict) else None
    return node if isinstance(node, dict) else None


def _droppable(section: str, key: str, value: Any) -> bool:
    if key in COMMON_KEYS[section]:
        return False
    return not (section == "loss" and _is_penalty_key(key, value))


def _default_name(section: str) -> str:
    return getattr(Config(), section).name


def drop_superseded(layers: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """``(layers without the superseded keys, {dotted key: dropped value})``; the input is not modified."""
    layers = [copy.deepcopy(layer) for layer in layers]
    dropped: dict[str, Any] = {}
    for section in COMMON_KEYS:
        in_effect: list[Any] = []
        current, last = _default_name(section), -1
        for i, layer in enumerate(layers):
            node = _section_of(layer, section)
            if node is not None and "name" in node:
                current, last = node["name"], i
            in_effect.append(current)
        if last < 0:
            continue
        merged: dict[str, Any] = {}
        for layer in layers:
            merged.update(_section_of(layer, section) or {})
        accepted: set[str] | None = None
        looked_up = False
        for i in range(last):
            node = _section_of(layers[i], section)
            if not node or in_effect[i] == current:
                continue
            for key in list(node):
                if not _droppable(section, key, node[key]):
                    continue
                if not looked_up:
                    accepted, looked_up = accepted_keys(section, current, merged), True
                if accepted is not None and key not in accepted:
                    dropped[f"{section}.{key}"] = node.pop(key)
    return layers, dropped


def _builder_defaults(name: str) -> dict[str, Any]:
    from .models import MODELS

    params = list(inspect.signature(MODELS.get(name, key="model.name")).parameters.values())[2:]
    return {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}


def _given_keys(layers: list[dict[str, Any]], section: str) -> set[str]:
    keys: set[str] = set()
    for layer in layers:
        keys.update(_section_of(layer, section) or {})
    return keys


def _check_model(config: Any, layers: list[dict[str, Any]]) -> None:
    model = config.model
    accepted = accepted_keys("model", model.name, model.extra)
    defaults = _builder_defaults(model.name)
    given = _given_keys(layers, "model")
    for key, value in list(model.extra.items()):
        if value is None:  # an unset option (older config files list every option)
            del model.extra[key]
            continue
        if accepted is not None and key not in accepted:
            if key in DEFAULT_MODEL_OPTIONS and key not in given:  # the default job's option, not this model's
                del model.extra[key]
                continue
            valid = ", ".join(["name", "z_dim", *sorted(accepted)])
            raise ConfigError(f"unknown config key 'model.{key}' for model {model.name!r}; valid keys here: {valid}")
        model.extra[key] = checks.like(f"model.{key}", value, defaults.get(key))


def _check_loss(config: Any) -> None:
    from .losses import LOSSES, penalty_options

    loss = config.loss
    LOSSES.get(loss.name, key="loss.name")
    declared = LOSSES.facts(loss.name).get("options", {})
    unknown = sorted(set(loss.extra) - set(declared))
    if unknown:
        valid = ", ".join(["loss.name", "loss.penalty", "loss.<penalty>_weight", "loss.<penalty>.<option>",
                           *(f"loss.{k}" for k in sorted(declared))])
        raise ConfigError(f"unknown config key 'loss.{unknown[0]}' for loss {loss.name!r}; valid keys here: {valid}")
    loss.extra = checks.options("loss", loss.extra, declared)
    loss.penalty = {name: penalty_options(name, options) for name, options in loss.penalty.items()}


def _check_optim(config: Any) -> None:
    optim = config.optim
    hp = optim.hyper_parameters()
    accepted = accepted_keys("optim", optim.name, hp)
    if accepted is None:
        return
    explicit = [k for k in optim.extra] + [k for k in ("scheme", "hvp") if getattr(optim, k) is not None]
    for key in explicit:
        if key not in accepted:
            raise ConfigError(f"optim.{key}: not a hyper-parameter of optimizer {optim.name!r}; "
                              f"valid: name, {', '.join(sorted(accepted))}")


def validate_components(config: Any, layers: list[dict[str, Any]]) -> None:
    """Check each named section's options against its chosen component (in place: fills penalty and loss
    option defaults, removes unset model options)."""
    _check_model(config, layers)
    _check_loss(config)
    _check_optim(config)
