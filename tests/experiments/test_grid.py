"""Grid parsing, run names and the worker plan."""


import pytest

from saddlepoint.errors import ConfigError
from saddlepoint.experiments import parse_grid, sweep
from saddlepoint.experiments.sweep import plan_workers, run_name, split_values

from .helpers import BASE


def test_grid_parsing_names_and_worker_plan():
    assert parse_grid(["optim.lr=[1e-4,4e-4],1e-3", "loss.name=ns"]) == {
        "optim.lr": ["[1e-4,4e-4]", "1e-3"], "loss.name": ["ns"]}
    assert split_values("a, b ,[1,2]") == ["a", "b", "[1,2]"]
    assert run_name({"optim.lr": [1e-4, 4e-4], "data.root": "/x y/z"}, 3) == \
        "optim.lr=_0.0001_0.0004___data.root=_x_y_z__seed=3"
    assert len(run_name({"model.name": "m" * 400}, 0)) <= 150
    assert plan_workers(4, 10, cores=2) == (2, 1, "--workers 4 exceeds the 2 available cores; using 2 worker processes")
    assert plan_workers(2, 10, cores=8)[:2] == (2, 4)
    assert plan_workers(3, 10, cores=8)[:2] == (3, 2)  # 3 × 2 ≤ 8
    assert plan_workers(4, 1, cores=8)[:2] == (1, 2)  # one run: one process, threads for 4 workers
    with pytest.raises(ConfigError):
        sweep(BASE, {"optim.scheme": ["sideways"]}, out="/nonexistent/never", log=None)
