"""Discriminator-driven sampling on a run: eval.refine rows in summary, report and comparison; sample --refine."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import saddlepoint
from saddlepoint.cli import main
from saddlepoint.config import build_config
from saddlepoint.errors import ConfigError
from saddlepoint.experiments.compare import load_runs
from saddlepoint.training.refined import load_pair

from .helpers import ring_config

REFINE = {"drs": {"d_steps": 5, "pilot": 500, "percentile": 50.0}, "mh": {"k": 3, "calib_samples": 200}}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("refined") / "ring"
    cfg = ring_config(eval={"metrics": ["modes"], "refine": REFINE})
    return saddlepoint.train(cfg, out=out)


def test_eval_refine_forms_and_errors():
    assert build_config({"eval": {"refine": "drs"}}).eval.refine == {"drs": {}}
    assert build_config({"eval": {"refine": ["rejection", "mh"]}}).eval.refine == {"drs": {}, "mh": {}}
    assert build_config({"eval": {"refine": {"mh": {"k": 7}}}}).eval.refine == {"mh": {"k": 7}}
    assert build_config({"eval": {"refine": "none"}}).eval.refine == {}
    for bad, key in (("nope", "eval.refine"), ({"mh": {"q": 1}}, "eval.refine.mh"), ({"mh": {"k": "x"}}, "mh.k")):
        with pytest.raises(ConfigError, match=key):
            build_config({"eval": {"refine": bad}})


def test_summary_has_a_row_per_sampler(run):
    summary = json.loads((run / "summary.json").read_text())
    refined = summary["refined"]
    assert [row["label"] for row in refined.values()] == ["G + DRS", "G + MH"]
    for row in refined.values():
        assert set(row["metrics"]) == set(summary["metrics"]) == {"modes", "hq", "kl"}
        assert row["cost"]["g_per_sample"] >= 1 and 0 <= row["cost"]["acceptance_rate"] <= 1
    assert sorted(p.name.split("-")[0] for p in (run / "refine").glob("*.pt")) == ["d", "drs", "mh"]
    assert "Discriminator-driven sampling" in (run / "report.html").read_text()


def test_comparison_rows(run):
    rows = load_runs([run])
    assert [r.config["sampler"] for r in rows] == ["G", "G + DRS", "G + MH"]
    assert rows[1].metrics == json.loads((run / "summary.json").read_text())["refined"]["drs"]["metrics"]


def test_load_pair_and_python_api(run):
    G, D, cfg, dataset = load_pair(run)
    assert not D.training and D(torch.zeros(3, 2)).shape == (3,)
    a = saddlepoint.sample(run, 20, seed=1, refine="drs", options=REFINE["drs"])
    b = saddlepoint.refine_run(run, "drs", 20, seed=1, options=REFINE["drs"])
    assert torch.equal(a, b.samples) and b.info["reused_calibration"]


def test_cli_sample_refine(run, tmp_path, capsys):
    out = tmp_path / "s.npy"
    assert main(["sample", str(run), "--n", "30", "--refine", "mh", "--set", "refine.k=3",
                 "--set", "refine.calib_samples=200", "--out", str(out)]) == 0
    assert np.load(out).shape == (30, 2)
    assert "refine mh: acceptance" in capsys.readouterr().out
    assert main(["sample", str(run), "--refine", "mh", "--set", "refine.k=zero"]) == 2
    assert main(["sample", str(run), "--refine", "drs", "--set", "refine.nope=1"]) == 2
    assert main(["sample", str(run), "--set", "refine.k=3"]) == 2
    assert main(["sample", str(run), "--refine", "nope"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 4 and all(line.startswith("error: ") for line in err)
    assert "refine.k" in err[0] and "nope" in err[1] and "--refine" in err[2] and "unknown sampler" in err[3]


def test_cli_list_samplers(capsys):
    assert main(["list", "samplers"]) == 0
    assert {"drs", "mh", "ddls"} <= set(capsys.readouterr().out.split())
