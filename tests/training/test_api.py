"""The training API: saddlepoint.train/resume/sample/load_generator as plain functions, exact resume."""

import inspect
import json

import pytest
import torch

import saddlepoint as sp
from saddlepoint.training import load_generator, resume
from saddlepoint.training import train as train_run

from .helpers import SMALL_IMAGES, assert_trees_equal, final_state, ring_config, with_optim


def test_the_package_functions_are_plain_functions():
    for name in ("train", "resume", "sample", "load_generator"):
        fn = getattr(sp, name)
        assert inspect.isfunction(fn), name
        assert fn is getattr(__import__("saddlepoint.training.api", fromlist=[name]), name)
    from saddlepoint import train

    assert train is sp.train


@pytest.mark.parametrize(
    "optim",
    [
        {"name": "adam", "lr": 2e-4, "scheme": "alternating"},
        {"name": "extragradient", "lr": 2e-4},
        {"name": "acgd", "lr": 1e-3},
    ],
)
def test_resume_is_bit_identical(optim, tmp_path):
    steps = 6
    straight = train_run({**with_optim(SMALL_IMAGES, **optim), "train": {**SMALL_IMAGES["train"], "steps": steps}},
                         tmp_path / "straight")
    half = train_run({**with_optim(SMALL_IMAGES, **optim), "train": {**SMALL_IMAGES["train"], "steps": steps // 2}},
                     tmp_path / "half")
    resume(half, {"train": {"steps": steps}})
    a, b = final_state(straight), final_state(half)
    assert a["step"] == b["step"] == steps
    for key in ("G", "D", "ema", "optimizer", "rng", "data_gen", "noise_gen", "dataset"):
        assert_trees_equal(a[key], b[key], key)
    # the log of the resumed run agrees with the straight one at every logged step (times aside); the
    # interrupted run also logged its last step, 3
    logs = []
    for run in (straight, half):
        records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        logs.append({r["step"]: {k: v for k, v in r.items() if k != "time"} for r in records if "loss_g" in r})
    assert set(logs[0]) <= set(logs[1]) and len(logs[0]) == 3
    assert all(logs[0][s] == logs[1][s] for s in logs[0])


def test_load_generator_builds_no_optimizer(tmp_path, monkeypatch):
    run = sp.train(ring_config(train={"steps": 3, "ema": 0.5}), tmp_path / "run")
    import importlib

    import saddlepoint.optim as optim

    setup_module = importlib.import_module("saddlepoint.training.setup")  # the attribute is the function

    def refuse(*args, **kwargs):
        raise AssertionError("an optimizer was built")

    monkeypatch.setattr(optim, "build", refuse)
    monkeypatch.setattr(setup_module, "build_optimizer", refuse)
    G, cfg, dataset = load_generator(run)
    assert not G.training and cfg.train.steps == 3 and dataset.kind == "points"
    ckpt = final_state(run)
    assert_trees_equal(G.state_dict(), ckpt["ema"]["module"])
    raw, _, _ = load_generator(run, ema=False)
    assert_trees_equal(raw.state_dict(), ckpt["G"])
    # sample: the same noise, the same points as the trainer's generator
    points = sp.sample(run, n=5, seed=3)
    z = torch.randn(5, G.z_dim, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert torch.equal(points, G(z))
    assert points.shape == (5, 2)


def test_load_generator_of_a_missing_run_is_a_user_error(tmp_path):
    from saddlepoint.errors import UserError

    with pytest.raises(UserError, match="does not exist"):
        load_generator(tmp_path / "nothing")
