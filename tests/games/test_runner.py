"""The ``saddlepoint game`` runner (saddlepoint.games.runner): outputs, convergence and divergence, option
checking."""

from __future__ import annotations

import json
import math
import pathlib

import pytest

from saddlepoint.errors import ConfigError
from saddlepoint.games import DiracGAN, build_game, run_game


def _read(out: pathlib.Path) -> list[dict]:
    return [json.loads(line) for line in (out / "trajectory.jsonl").read_text().splitlines()]


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("bilinear", {"optim.name": "cgd", "steps": 30, "dim": 3, "seed": 2, "optim.lr": 0.5}),
        ("quadratic", {"optim.name": "extragradient", "steps": 20, "mu": 0.3}),
        ("dirac", {"optim.name": "sgd", "steps": 25, "loss": "ns", "penalty": "r1", "penalty_weight": 1.0}),
        ("dirac", {"optim.name": "acgd", "steps": 10, "loss": "wgan", "optim.hvp": "fd"}),
    ],
)
def test_run_game_writes_trajectory_and_plots(tmp_path: pathlib.Path, name: str, options: dict) -> None:
    out = run_game(name, options, tmp_path / "run")
    assert out == tmp_path / "run"
    records = _read(out)
    assert [r["step"] for r in records] == list(range(options["steps"] + 1))
    for r in records:
        assert set(r) == {"step", "distance", "losses", "point"}
        assert len(r["losses"]) == 2 and len(r["point"]) == 2
        assert math.isfinite(r["distance"])
    for png in ("trajectory.png", "distance.png"):
        data = (out / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
    summary = json.loads((out / "summary.json").read_text())
    assert summary["final_distance"] == records[-1]["distance"]
    assert summary["diverged"] is False


def test_run_game_converges_with_cgd_and_stops_on_divergence(tmp_path: pathlib.Path) -> None:
    out = run_game("bilinear", {"optim.name": "cgd", "optim.lr": 1.0, "steps": 60, "seed": 3}, tmp_path / "cgd")
    records = _read(out)
    assert records[-1]["distance"] < 1e-3 * records[0]["distance"]
    out = run_game("bilinear", {"optim.lr": 3.0, "steps": 500}, tmp_path / "gda")  # sgd: spirals out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["diverged"] is True and summary["steps"] < 500


def test_unknown_or_bad_options_are_config_errors(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown option 'dimm'.*valid: .*dim"):
        run_game("bilinear", {"dimm": 3}, tmp_path / "a")
    with pytest.raises(ConfigError, match="'loss'"):
        run_game("quadratic", {"loss": "ns"}, tmp_path / "b")
    with pytest.raises(ConfigError, match="unknown game 'pong'"):
        run_game("pong", {}, tmp_path / "c")
    with pytest.raises(ConfigError, match="unknown hyper-parameter"):
        run_game("bilinear", {"optim.name": "cgd", "optim.gamma": 1.0}, tmp_path / "d")
    with pytest.raises(ConfigError, match="steps"):
        run_game("bilinear", {"steps": -1}, tmp_path / "e")
    with pytest.raises(ConfigError, match="dim"):
        run_game("bilinear", {"dim": "three"}, tmp_path / "f")
    with pytest.raises(ConfigError, match="unknown loss"):
        run_game("dirac", {"loss": "vanilla"}, tmp_path / "g")
    with pytest.raises(ConfigError, match="unknown optimizer"):
        run_game("dirac", {"optim.name": "lbfgs"}, tmp_path / "h")
    assert not (tmp_path / "a").exists()
    assert isinstance(build_game("dirac", {"loss": "minimax"}), DiracGAN)
