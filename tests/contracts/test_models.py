"""Contract suite over every registered model: the builder contract and the ``resolution`` fact hold.

Parametrised over ``MODELS.registered()``: a model registered with its facts is covered with no edit.
"""

from __future__ import annotations

import pytest
import torch

from saddlepoint.errors import ConfigError
from saddlepoint.models import MODELS, build_models, native_resolution

NAMES = MODELS.registered()
SMALL = {"scale": 0.125, "width": 16}  # options a builder does not name are dropped


def native_shape(name: str) -> tuple[int, ...]:
    r = native_resolution(name)
    return (2,) if r is None else (1, r, r)


@pytest.mark.parametrize("name", NAMES)
def test_resolution_fact(name: str) -> None:
    r = MODELS.fact(name, "resolution")
    assert "resolution" in MODELS.facts(name)  # declared, even when None
    assert r is None or (isinstance(r, int) and r > 0)
    if r is not None:
        for other in (r // 2, r + 4):
            with pytest.raises(ConfigError, match="model.name"):
                build_models(name, (1, other, other), 4, **SMALL)


@pytest.mark.parametrize("name", NAMES)
def test_builds_players_of_the_declared_shape(name: str) -> None:
    shape = native_shape(name)
    torch.manual_seed(0)
    G, D = build_models(name, shape, 4, **SMALL)
    assert G.z_dim == 4 and tuple(G.sample_shape) == shape
    G.eval()
    D.eval()
    x = G(torch.randn(3, 4))
    assert x.shape == (3, *shape) and D(x).shape == (3,)
    assert all(torch.isfinite(p).all() for p in [*G.parameters(), *D.parameters()])
    torch.manual_seed(0)
    G2, D2 = build_models(name, shape, 4, **SMALL)  # the same seed gives the same players
    for a, b in zip([*G.state_dict().values(), *D.state_dict().values()],
                    [*G2.state_dict().values(), *D2.state_dict().values()], strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("name", NAMES)
def test_bad_z_dim_is_a_config_error(name: str) -> None:
    with pytest.raises(ConfigError, match="model.z_dim"):
        build_models(name, native_shape(name), 0, **SMALL)
