"""GAN training end to end: every loss × first-order optimizer × scheme, mode coverage, determinism."""

import json

import pytest
import torch

from saddlepoint.config import build_config
from saddlepoint.losses import LOSSES
from saddlepoint.train import setup
from saddlepoint.train import train as train_run

FIRST_ORDER = ["sgd", "momentum", "nesterov", "adam", "rmsprop"]
LR = {"sgd": 0.02, "momentum": 0.01, "nesterov": 0.01, "adam": 1e-3, "rmsprop": 1e-3}


def ring_config(**over):
    cfg = {
        "data": {"name": "ring"},
        "model": {"name": "mlp", "z_dim": 2, "width": 32, "depth": 2},
        "train": {"steps": 6, "batch_size": 32, "ema": 0.0},
        "eval": {"samples": 200},
        "log": {"every": 3, "progress": "none"},
    }
    for section, values in over.items():
        cfg.setdefault(section, {}).update(values) if isinstance(values, dict) else cfg.update({section: values})
    return cfg


@pytest.mark.parametrize("scheme", ["alternating", "simultaneous"])
@pytest.mark.parametrize("optimizer", FIRST_ORDER)
def test_every_loss_trains_with_every_first_order_optimizer(optimizer, scheme, tmp_path):
    assert set(LOSSES.names()) == {"minimax", "ns", "wgan", "lsgan", "hinge"}
    for loss in LOSSES.names():
        cfg = build_config(ring_config(loss={"name": loss}, optim={"name": optimizer, "lr": LR[optimizer],
                                                                    "scheme": scheme}))
        trainer = setup(cfg, tmp_path)
        trainer.out = tmp_path / f"{loss}"
        (trainer.out / "samples").mkdir(parents=True)
        before = [p.detach().clone() for p in [*trainer.G.parameters(), *trainer.D.parameters()]]
        trainer.run()
        after = list(trainer.G.parameters()) + list(trainer.D.parameters())
        assert not torch.equal(before[-2], after[-2])  # D's last weight moved
        assert any(not torch.equal(a, b) for a, b in zip(before, after))
        records = [json.loads(x) for x in (trainer.out / "metrics.jsonl").read_text().splitlines()]
        logged = [r for r in records if "loss_g" in r]
        assert [r["step"] for r in logged] == [3, 6]
        assert all(torch.isfinite(torch.tensor([r["loss_g"], r["loss_d"]])).all() for r in logged)
        # each step costs one gradient per player (n_critic = 1)
        assert logged[-1]["grad_evals"] == 2 * 6


def test_n_critic_and_penalties(tmp_path):
    cfg = build_config(ring_config(loss={"name": "wgan", "penalty": ["gp", "clip"]},
                                   optim={"name": "rmsprop", "lr": 5e-4}, train={"n_critic": 3, "steps": 4}))
    trainer = setup(cfg, tmp_path)
    trainer.out = tmp_path
    (tmp_path / "samples").mkdir(exist_ok=True)
    trainer.run()
    # 3 D updates and 1 G update per step
    assert trainer.opt.counts["grad"] == 4 * (3 + 1)
    for p in trainer.D.parameters():  # weight clipping applied after D's updates
        assert p.abs().max() <= 0.01 + 1e-7


RING_PRESET = {
    "seed": 0,
    "data": {"name": "ring"},
    "model": {"name": "mlp", "z_dim": 2, "width": 128, "depth": 3},
    "loss": {"name": "ns"},
    "optim": {"name": "adam", "lr": 1e-3, "beta1": 0.5, "scheme": "simultaneous"},
    "train": {"steps": 3000, "batch_size": 256, "ema": 0.0},
    "eval": {"samples": 2500},
    "log": {"every": 500, "progress": "none"},
}


def test_ring_covers_modes_and_is_deterministic(tmp_path):
    runs = [train_run(RING_PRESET, tmp_path / f"run{k}") for k in range(2)]
    summaries = [json.loads((r / "summary.json").read_text()) for r in runs]
    metrics = [s["metrics"] for s in summaries]
    assert metrics[0] == metrics[1]
    logs = [(r / "metrics.jsonl").read_text().splitlines() for r in runs]
    strip = [[{k: v for k, v in json.loads(x).items() if k != "time"} for x in log] for log in logs]
    assert strip[0] == strip[1]
    # count samples within 3σ of each centre independently of the metric code
    from saddlepoint.data import build_dataset
    from saddlepoint.train.checkpoint import load_checkpoint

    ring = build_dataset("ring")
    ckpt = load_checkpoint(runs[0] / "checkpoints" / "last.pt")
    trainer = setup(build_config(ckpt["config"]), runs[0])
    trainer.load_state(ckpt)
    samples = trainer.generate(2500).double()
    dist = torch.cdist(samples, ring.centers.double())
    covered = sum(int((dist[:, k] < 3 * ring.std).any()) for k in range(8))
    assert covered >= 6, metrics[0]
    assert metrics[0]["modes"] == covered


ALL_OPTIMIZERS = ["sgd", "momentum", "nesterov", "adam", "rmsprop", "extragradient", "past-extragradient",
                  "optimistic", "lookahead", "consensus", "sga", "cgd", "acgd"]


def test_every_registered_optimizer_is_covered():
    from saddlepoint.optim import OPTIMIZERS

    assert set(OPTIMIZERS.names()) == set(ALL_OPTIMIZERS)


@pytest.mark.parametrize("optimizer", ALL_OPTIMIZERS)
def test_every_optimizer_trains_a_batchnorm_generator_with_a_penalty(optimizer, tmp_path):
    """Integration: any method as optim.name, BatchNorm in G, a gradient penalty in D's loss."""
    cfg = build_config(ring_config(model={"batchnorm": True}, loss={"name": "wgan", "penalty": ["gp"]},
                                   optim={"name": optimizer, "lr": 1e-3}, train={"steps": 3}))
    trainer = setup(cfg, tmp_path)
    trainer.out = tmp_path
    (tmp_path / "samples").mkdir(exist_ok=True)
    bn = [m for m in trainer.G.modules() if isinstance(m, torch.nn.BatchNorm1d)][0]
    G0 = [p.detach().clone() for p in trainer.G.parameters()]
    trainer.run()
    assert bn.num_batches_tracked.item() == 3  # one BatchNorm update per step, however many closure calls
    assert any(not torch.equal(a, b) for a, b in zip(G0, trainer.G.parameters()))
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "completed"
    if optimizer in ("consensus", "sga", "cgd", "acgd"):
        assert summary["hvps"] > 0


@pytest.mark.parametrize("optimizer", ["extragradient", "consensus", "acgd"])
def test_image_gan_with_batchnorm_and_dropout(optimizer, tmp_path):
    cfg = build_config({"data": {"name": "mnist-t10k", "limit": 128}, "model": {"name": "dcgan28", "z_dim": 8,
                        "scale": 0.125}, "optim": {"name": optimizer, "lr": 1e-3},
                        "train": {"steps": 2, "batch_size": 8, "ema": 0.5}, "log": {"progress": "none"}})
    run = train_run(cfg, tmp_path / "run")
    assert json.loads((run / "summary.json").read_text())["status"] == "completed"
