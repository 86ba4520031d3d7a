import os
from pathlib import Path

import pytest
import torch
from hypothesis import settings

# keep tests deterministic and polite on a 2-core machine
torch.set_num_threads(1)
os.environ.setdefault("MPLBACKEND", "Agg")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO.parent / "shared" / "data").resolve()


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data not available")
    return SHARED_DATA

# real-data feature statistics go to a per-session temporary cache, never to ~/.cache
_CACHE = Path(os.environ.get("TMPDIR", "/tmp")) / f"saddlepoint-test-cache-{os.getpid()}"
os.environ.setdefault("SADDLEPOINT_CACHE", str(_CACHE))

# property tests explore a fixed sequence of examples, so CI outcomes do not depend on luck
settings.register_profile("deterministic", derandomize=True)
settings.load_profile("deterministic")
