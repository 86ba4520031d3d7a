"""The one 8-run ring sweep the sweep and compare tests share."""

import pytest

from saddlepoint.experiments import sweep

from .helpers import BASE, GRID


@pytest.fixture(scope="session")
def ring_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "ring"
    result = sweep(BASE, GRID, seeds=2, workers=2, out=out, log=None)
    return out, result


