"""The ring run the report tests read (trained once for the package)."""

import pytest

from saddlepoint.training import train

from .helpers import RING


@pytest.fixture(scope="package")
def ring_run(tmp_path_factory):
    return train(RING, tmp_path_factory.mktemp("run") / "ring")
