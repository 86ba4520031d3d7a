"""The world: identities in one process; sharding, averaging, gathering and the handshake of a torchrun
rank (exercised in a one-rank gloo group here; two ranks in test_distributed.py)."""

import pytest
import torch

from saddlepoint.errors import UserError
from saddlepoint.training import distributed
from saddlepoint.training.world import Torchrun, World, join, rank_seed

torch_dist = pytest.importorskip("torch.distributed")


def test_one_process_is_the_identity():
    world = World()
    assert world.main and world.size == 1 and world.reduce() is None
    a, b = torch.randn(4, 2), torch.randn(4, 3)
    assert all(x is y for x, y in zip(world.shard(a, b), (a, b)))
    losses, aux = [1.5, 2.5], {"d_real": 0.25}
    assert world.average(losses, aux, True) == (losses, aux, True)
    assert torch.equal(world.sample_rows(5, lambda lo, hi: torch.arange(lo, hi)), torch.arange(5))
    assert world.on_main(lambda: 3, 0) == 3 and world.agree(lambda: "path") == "path"
    G = torch.nn.Sequential(torch.nn.BatchNorm1d(3))
    assert world.prepare_models(G, G, None) == (G, G)
    state = torch.get_rng_state()
    world.reseed(0, 5)  # rank 0 keeps the single-process stream
    assert torch.equal(state, torch.get_rng_state())


def test_join_outside_torchrun_is_one_process(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert type(join("cpu", None)) is World


def test_rank_seeds_differ_by_rank_and_step():
    seeds = {rank_seed(0, r, s) for r in range(3) for s in range(3)}
    assert len(seeds) == 9


@pytest.fixture
def one_rank_group(tmp_path):
    if not torch_dist.is_available() or not torch_dist.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available")
    store = torch_dist.FileStore(str(tmp_path / "store"), 1)
    torch_dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        yield Torchrun(distributed.DistInfo(world=1, rank=0, local_rank=0, local_world=1, backend="gloo"))
    finally:
        torch_dist.destroy_process_group()


def test_a_torchrun_rank_shards_averages_and_gathers(one_rank_group):
    world = one_rank_group
    assert world.main and world.reduce() is not None
    world.check_batch(7)
    real = torch.arange(8.0).view(4, 2)
    assert torch.equal(world.shard(real)[0], real)
    losses, aux, stop = world.average([1.0, 2.0], {"b": 4.0, "a": 3.0}, False)
    assert losses == [1.0, 2.0] and aux == {"a": 3.0, "b": 4.0} and stop is False
    assert world.average([0.0], {}, True)[2] is True
    world.device(torch.device("cpu"))
    received = []
    rows = world.sample_rows(5, lambda lo, hi: torch.arange(lo, hi).float().unsqueeze(1),
                             [(lambda x: 2 * x, received.append)])
    assert torch.equal(rows.squeeze(1), torch.arange(5.0)) and torch.equal(received[0], 2 * rows)
    G = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    G, _ = world.prepare_models(G, torch.nn.Linear(1, 1), None)
    assert isinstance(G[1], distributed.SyncBatchNorm)
    assert world.agree(lambda: "run") == "run"

    def fails():
        raise UserError("--out x: already holds a run")

    with pytest.raises(UserError, match="already holds a run"):
        world.agree(fails)


def test_sync_batchnorm_declares_it_has_no_local_tangents():
    assert distributed.SyncBatchNorm.supports_forward_tangents is False
