"""Gradient health (saddlepoint.training.health): per-layer gradient norms at every log and the vanishing/exploding
warning; in a run, the records, the stderr line and the report's plot."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

import saddlepoint as sp
from saddlepoint.training.health import GradientHealth, layer_names, layer_summary

from .helpers import records, ring_config


def test_layers_group_a_modules_tensors_and_norms_add_in_squares():
    net = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1))
    assert layer_names(net) == ["0", "0", "2", "2"]
    summary = layer_summary(torch.tensor([3.0, 4.0, 1.0, 0.0]), layer_names(net))
    assert summary == {"min": 1.0, "median": 3.0, "max": 5.0, "first": 5.0, "last": 1.0, "min_layer": "2",
                       "max_layer": "0"}


def fake_opt(g: list[float], d: list[float]):
    return SimpleNamespace(last_layer_norms=[torch.tensor(g), torch.tensor(d)])


def test_one_warning_after_patience_logs_naming_player_and_layer(capsys):
    G, D = nn.Sequential(nn.Linear(1, 1), nn.Linear(1, 1)), nn.Sequential(nn.Linear(1, 1))
    health = GradientHealth({"G": G, "D": D}, low=1e-6, high=10.0, patience=3)
    fine, vanished = [1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1e-9, 1e-9]
    out = [health.record(fake_opt(vanished if k >= 1 else fine, fine[:2])) for k in range(6)]
    assert ["warning" in e for e in out] == [False, False, False, True, False, False]
    assert out[3]["warning"] == ("gradient health: G's gradients vanishing: layer 1 norm 1.41e-09 < 1e-06 for 3 "
                                 "consecutive logs")
    assert capsys.readouterr().err.count("warning: gradient health") == 1
    health.record(fake_opt(fine, fine[:2]))  # cleared: a later episode warns again
    later = [health.record(fake_opt(fine, [100.0, 0.0])) for _ in range(3)]
    assert "D's gradients exploding: layer 0 norm 100" in later[-1]["warning"]
    assert out[0]["grad_layers"]["G"]["first"] == pytest.approx(math.sqrt(2))
    assert out[3]["grad_layers"]["G"]["min_layer"] == "1"


def test_missing_norms_give_no_entries():
    health = GradientHealth({"G": nn.Linear(1, 1), "D": nn.Linear(1, 1)})
    assert health.record(SimpleNamespace(last_layer_norms=[None, None])) == {}


def test_a_run_logs_layer_norms_warns_and_plots(tmp_path, capsys):
    """A real run with its report (matplotlib figures: the slow part, ≈ 3 s on an idle machine)."""
    cfg = ring_config(log={"every": 2, "grad_high": 1e-6, "grad_patience": 2, "report": True})
    run = sp.train(cfg, out=tmp_path / "run")
    recs = [r for r in records(tmp_path / "run") if "loss_g" in r]
    assert all(set(r["grad_layers"]) == {"G", "D"} for r in recs)
    first = recs[0]["grad_layers"]["G"]
    assert first["min"] <= first["median"] <= first["max"] and first["first"] > 0
    # every layer's norm exceeds 1e-6: both players warn once, at the second log
    assert "warning" not in recs[0] and "G's gradients exploding" in recs[1]["warning"]
    assert "D's gradients exploding" in recs[1]["warning"]
    assert capsys.readouterr().err.count("warning: gradient health") == 2
    html = (tmp_path / "run" / "report.html").read_text()
    assert "per-layer gradient norms" in html and "gradient-health warning" in html
    assert run is not None
