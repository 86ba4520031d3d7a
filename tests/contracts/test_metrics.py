"""Contract suite over every registered metric: the facts it declares at registration hold.

Parametrised over ``METRICS.registered()``, so a new metric registered with its facts is covered with no
edit here: its facts are well formed; on a dataset of a kind it declares, the samples equal to the real
data score better on its primary key than clearly wrong samples (noise for images, points far from
every mode); it emits exactly the keys whose direction it declares; ``check_metrics`` rejects it on data
of other kinds and, if it needs logits, with a feature network that has none.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from saddlepoint.config import EvalConfig
from saddlepoint.data import build_dataset
from saddlepoint.errors import ConfigError
from saddlepoint.metrics import METRICS, check_metrics, direction, evaluate_metrics, is_better
from saddlepoint.metrics.evaluate import DIRECTIONS, KINDS, NEEDS

NAMES = METRICS.registered()
N_SAMPLES = 200
CFG = EvalConfig(cache_dir="none", kid_subsets=10, kid_subset_size=100, is_splits=2, prdc_k=3)


class PooledFeatures(nn.Module):
    """A feature network without logits: per-channel mean and standard deviation."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x.mean(dim=(2, 3)), x.std(dim=(2, 3))], dim=1)


@pytest.fixture(scope="module")
def datasets() -> dict[str, list[Any]]:
    """Small datasets of each kind, in order of preference."""
    return {
        "points": [build_dataset("ring"), build_dataset("grid")],
        "images": [build_dataset("mnist-t10k", limit=400), build_dataset("stacked-mnist", limit=400)],
    }


def fitting(name: str, kind: str, datasets: dict[str, list[Any]]) -> Any:
    """The first dataset of ``kind`` that ``check_metrics`` accepts for metric ``name``."""
    for ds in datasets[kind]:
        try:
            check_metrics([name], ds, CFG)
        except ConfigError:
            continue
        return ds
    pytest.fail(f"metric {name!r} declares kind {kind!r} but accepts none of the test datasets of that kind")


def real_and_wrong(ds: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Samples equal to the real data, and clearly wrong samples of the same shape."""
    g = torch.Generator().manual_seed(0)
    if ds.kind == "images":
        real = ds.images[:N_SAMPLES]
        return real, torch.rand(real.shape, generator=g) * 2 - 1
    real = ds.sample(N_SAMPLES, g)
    return real, real + 10.0  # far from every mode


@pytest.mark.parametrize("name", NAMES)
def test_facts_are_well_formed(name: str) -> None:
    facts = METRICS.facts(name)
    assert facts["best"] and all(way in DIRECTIONS for way in facts["best"].values())
    assert facts["needs"] in NEEDS
    assert facts["kinds"] and set(facts["kinds"]) <= set(KINDS)
    if facts["primary"] is not None:
        assert direction(facts["primary"]) in ("min", "max")
    for key, way in facts["best"].items():
        assert direction(key) == way  # one direction per key across all metrics


@pytest.mark.parametrize("name", NAMES)
def test_real_data_beats_wrong_samples_and_keys_are_declared(name: str, datasets: dict[str, list[Any]]) -> None:
    facts = METRICS.facts(name)
    for kind in facts["kinds"]:
        ds = fitting(name, kind, datasets)
        real, wrong = real_and_wrong(ds)
        good = evaluate_metrics([name], real, ds, CFG)
        bad = evaluate_metrics([name], wrong, ds, CFG)
        assert set(good) == set(facts["best"]) == set(bad)  # every emitted key has a declared direction
        primary = facts["primary"]
        if primary is not None:
            assert is_better(primary, good[primary], bad[primary]), (kind, good, bad)
        for key, way in facts["best"].items():  # no declared direction says the wrong samples are better
            if way is not None:
                assert not is_better(key, bad[key], good[key]), (kind, key, good, bad)


@pytest.mark.parametrize("name", NAMES)
def test_other_kinds_are_rejected_before_training(name: str, datasets: dict[str, list[Any]]) -> None:
    for kind in set(KINDS) - set(METRICS.fact(name, "kinds")):
        for ds in datasets[kind]:
            with pytest.raises(ConfigError, match=name):
                check_metrics([name], ds, CFG)


@pytest.mark.parametrize("name", NAMES)
def test_needs_are_checked_before_training(name: str, datasets: dict[str, list[Any]]) -> None:
    facts = METRICS.facts(name)
    if facts["needs"] is None:
        pytest.skip(f"{name} does not use the feature network")
    ds = fitting(name, facts["kinds"][0], datasets)
    if facts["needs"] == "logits":
        with pytest.raises(ConfigError, match=f"'{name}' needs class logits"):
            check_metrics([name], ds, CFG, features=PooledFeatures())
    else:
        check_metrics([name], ds, CFG, features=PooledFeatures())
        out = evaluate_metrics([name], ds.images[:N_SAMPLES], ds, CFG, features=PooledFeatures())
        assert set(out) == set(facts["best"])
