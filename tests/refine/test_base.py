"""The sampler contract, over every registered sampler: seeded, costed, validated, cached."""

from __future__ import annotations

import pytest
import torch

from saddlepoint.data import DATASETS
from saddlepoint.errors import ConfigError
from saddlepoint.models import MODELS
from saddlepoint.refine import SAMPLERS, build_sampler, check_options, declared_options, refine

NAMES = SAMPLERS.registered()
#: small settings so that every sampler runs in well under a second
SMALL = {"drs": {"pilot": 500, "d_steps": 5, "calib_samples": 200, "batch_size": 256, "percentile": 50.0},
         "mh": {"k": 5, "calib_samples": 200, "batch_size": 64},
         "ddls": {"steps": 5, "batch_size": 64}}


@pytest.fixture(scope="module")
def pair():
    torch.manual_seed(0)
    G, D = MODELS.get("mlp")((2,), 2, depth=2, width=16)
    return G, D, DATASETS.get("ring")()


def run(name, pair, seed=0, n=100, cache_dir=None, **extra):
    G, D, data = pair
    return refine(name, G, D, n, seed=seed, options={**SMALL[name], **extra}, real=data.sample,
                  cache_dir=cache_dir, progress=False)


def test_every_sampler_has_small_settings_and_facts():
    assert set(NAMES) == set(SMALL)
    for name in NAMES:
        facts = SAMPLERS.facts(name)
        assert {"paper", "exact", "needs_real", "needs_calibration", "summary"} <= set(facts)


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_samples(name, pair):
    a, b, c = run(name, pair, seed=3), run(name, pair, seed=3), run(name, pair, seed=4)
    assert a.samples.shape == (100, 2) and torch.isfinite(a.samples).all()
    assert torch.equal(a.samples, b.samples)
    assert not torch.equal(a.samples, c.samples)


@pytest.mark.parametrize("name", NAMES)
def test_costs_are_reported(name, pair):
    r = run(name, pair)
    assert r.g_evals >= r.n and r.d_evals >= r.n
    assert 0 <= r.acceptance_rate <= 1 and r.proposed >= r.n
    assert r.g_per_sample == pytest.approx(r.g_evals / r.n)
    cost = r.cost()
    assert {"acceptance_rate", "g_per_sample", "d_per_sample", "setup_g_evals", "setup_d_evals"} <= set(cost)


@pytest.mark.parametrize("name", NAMES)
def test_calibration_is_saved_and_reused(name, pair, tmp_path):
    first = run(name, pair, cache_dir=tmp_path)
    files = list(tmp_path.glob(f"{name}-*.pt"))
    assert len(files) == 1
    assert len(list(tmp_path.glob("d-*.pt"))) == int(SMALL[name].get("d_steps", 0) > 0)  # D's continued training
    second = run(name, pair, cache_dir=tmp_path)
    assert second.info["reused_calibration"] and not first.info["reused_calibration"]
    assert second.setup_g_evals == second.setup_d_evals == 0
    assert torch.equal(first.samples, second.samples)
    run(name, pair, cache_dir=tmp_path, calib_seed=1)  # another setup: another file
    assert len(list(tmp_path.glob(f"{name}-*.pt"))) == 2


def test_damaged_calibration_file_is_recomputed(pair, tmp_path):
    first = run("mh", pair, cache_dir=tmp_path)
    (path,) = tmp_path.glob("mh-*.pt")
    path.write_bytes(b"not a checkpoint")
    again = run("mh", pair, cache_dir=tmp_path)
    assert not again.info["reused_calibration"]
    assert torch.equal(first.samples, again.samples)


@pytest.mark.parametrize("name", NAMES)
def test_unknown_option_is_a_config_error(name):
    with pytest.raises(ConfigError, match=r"refine: unknown option\(s\) nope"):
        check_options(name, {"nope": 1})


@pytest.mark.parametrize(("name", "key"), [(n, k) for n in NAMES for k in declared_options(n)])
def test_wrong_type_is_a_config_error(name, key):
    with pytest.raises(ConfigError, match=rf"refine\.{key}"):
        check_options(name, {key: [1, 2]})


def test_defaults_and_invalid_values(pair):
    assert check_options("drs", None)["percentile"] == 95.0
    assert check_options("mh", {"k": 3.0})["k"] == 3
    with pytest.raises(ConfigError, match="refine.calibration"):
        check_options("ddls", {"calibration": "isotonic"})  # no gradient through an isotonic map
    with pytest.raises(ConfigError, match="refine.percentile"):
        check_options("drs", {"percentile": 101})
    with pytest.raises(ConfigError, match="unknown sampler 'nope'"):
        build_sampler("nope", *pair[:2])


def test_aliases_resolve():
    assert SAMPLERS.canonical("mh-gan") == "mh" and SAMPLERS.canonical("rejection") == "drs"


def test_real_samples_required_for_calibration(pair):
    G, D, _ = pair
    with pytest.raises(ConfigError, match="refine.calibration"):
        refine("mh", G, D, 10, options={"k": 2}, progress=False)


def test_real_sampler_depends_on_the_generator_only():
    from saddlepoint.data.base import ImageDataset
    from saddlepoint.refine import real_sampler

    images = torch.arange(20.0).reshape(20, 1, 1, 1)
    data = ImageDataset(images, torch.zeros(20, dtype=torch.long), name="toy")
    real = real_sampler(data)
    a = real(8, torch.Generator().manual_seed(0))
    data.sample(5, torch.Generator().manual_seed(1))  # moving the dataset's own stream changes nothing
    assert torch.equal(a, real(8, torch.Generator().manual_seed(0)))
    assert a.shape == (8, 1, 1, 1) and set(a.reshape(-1).tolist()) <= set(range(20))
