"""float16 autocast with one dynamic loss scaler for every game optimizer (saddlepoint.optim.amp), and the
trainer's use of it (the last three tests).

On CPU: torch 2.13 autocasts Linear/Conv/ConvTranspose to float16 (checked below), so the fp16 path runs
here; tolerances against float32 are stated at each test with the values measured when they were written.
"""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from saddlepoint.config import build_config
from saddlepoint.errors import ConfigError
from saddlepoint.optim import OPTIMIZERS, LossScaler, attach_scaler, build

from .toy_games import tree_equal, without

#: the optimizers that declare support for fp16 loss scaling (the others are refused by the trainer)
SCALED = [n for n in OPTIMIZERS.names() if getattr(OPTIMIZERS.get(n), "supports_loss_scaling", True)]


def game(seed: int = 0, batchnorm: bool = False) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(seed)
    G = nn.Sequential(nn.Linear(2, 16), *( [nn.BatchNorm1d(16)] if batchnorm else []), nn.Tanh(), nn.Linear(16, 2))
    D = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 1))
    return G, D


REAL = torch.randn(32, 2, generator=torch.Generator().manual_seed(1)) + 2.0
Z = torch.randn(32, 2, generator=torch.Generator().manual_seed(2))


def closure_for(G: nn.Module, D: nn.Module, fp16: bool, multiplier: float = 1.0):
    """Non-saturating GAN losses of the tiny game; models under fp16 autocast, losses in float32."""

    def closure():
        with torch.autocast("cpu", dtype=torch.float16, enabled=fp16):
            fake = G(Z)
            d_fake, d_real = D(fake), D(REAL)
        if fp16:
            assert d_fake.dtype == torch.float16  # autocast is really on
        d_fake, d_real = d_fake.float(), d_real.float()
        loss_d = nn.functional.softplus(-d_real).mean() + nn.functional.softplus(d_fake).mean()
        loss_g = nn.functional.softplus(-d_fake).mean()
        return [multiplier * loss_g, multiplier * loss_d]

    return closure


def flat_params(*modules: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for m in modules for p in m.parameters()])


def run(name: str, fp16: bool, steps: int, scaler: LossScaler | None = None, **hp):
    G, D = game()
    opt = build(name, [list(G.parameters()), list(D.parameters())], **hp)
    if fp16:
        attach_scaler(opt, scaler or LossScaler())
    for _ in range(steps):
        opt.step(closure_for(G, D, fp16))
    return G, D, opt


def test_cpu_autocast_float16_covers_the_model_layers():
    with torch.autocast("cpu", dtype=torch.float16):
        x = torch.randn(2, 1, 8, 8)
        y = nn.Conv2d(1, 2, 3)(x)
        assert y.dtype == torch.float16
        assert nn.ConvTranspose2d(2, 1, 4, 2, 1)(y).dtype == torch.float16
        assert nn.Linear(4, 3)(torch.randn(2, 4)).dtype == torch.float16


def test_fp16_training_matches_float32():
    """Adam, 10 steps: measured relative parameter difference 1.8e-5 (limit 5e-4) while the parameters
    moved by 2.8e-2; it is not 0, so the models really ran in float16."""
    G32, D32, _ = run("adam", False, 10, lr=1e-3)
    G16, D16, opt = run("adam", True, 10, lr=1e-3)
    ref, got = flat_params(G32, D32), flat_params(G16, D16)
    diff = float((got - ref).norm() / ref.norm())
    assert 0 < diff < 5e-4, diff
    assert opt.scaler.skipped == 0 and opt.scaler.scale == 2.0**16
    # the moved distance is much larger than the difference: training did happen
    G0, D0 = game()
    assert float((ref - flat_params(G0, D0)).norm() / ref.norm()) > 20 * diff


@pytest.mark.parametrize("name", SCALED)
def test_every_optimizer_steps_under_the_scaler(name):
    """5 steps under fp16 + scaler (default hyper-parameters): finite parameters, steps applied, close to
    float32 with as many applied steps (the batch is fixed). Consensus skips its first step at 2**16 (its
    double backward overflows float16) and goes on at 2**15; SGA (whose products take the cross gradients
    ∇_D L_G and ∇_G L_D) skips at 2**16 and 2**15 and goes on at 2**14. Measured relative differences
    ≤ 1.3e-5 (ACGD; printed with -s); limit 5e-4."""
    G16, D16, opt = run(name, True, 5)
    # methods that differentiate twice may overflow float16 at the first scales (2**16 .. 2**14)
    assert opt.scaler.skipped <= (3 if opt.requires_double_backward else 1)
    G32, D32, _ = run(name, False, 5 - opt.scaler.skipped)
    got, ref = flat_params(G16, D16), flat_params(G32, D32)
    assert torch.isfinite(got).all()
    diff = float((got - ref).norm() / ref.norm())
    print(f"{name}: skipped {opt.scaler.skipped}, relative difference {diff:.2e}")
    assert diff < 5e-4
    G0, D0 = game()
    assert not torch.equal(got, flat_params(G0, D0))
    assert all(map(lambda v: v == v and abs(v) < float("inf"), opt.last_grad_norms))


@pytest.mark.parametrize("name", SCALED)
def test_overflow_skips_the_step_exactly_and_halves_the_scale(name):
    """A scale of 2**40 overflows float16 in backward: the step is undone bit for bit (parameters,
    BatchNorm buffers, the whole optimizer state incl. Adam's step count), the scale halves."""
    G, D = game(batchnorm=True)
    opt = build(name, [list(G.parameters()), list(D.parameters())], buffers=[*G.buffers(), *D.buffers()])
    scaler = LossScaler()
    attach_scaler(opt, scaler)
    for _ in range(2):  # populate the state (moments, counts, warm starts)
        opt.step(closure_for(G, D, True))
    for _ in range(4):  # methods that differentiate twice may skip at the first scales (2**16 .. 2**14)
        if not opt.last_step_skipped:
            break
        opt.step(closure_for(G, D, True))
    assert not opt.last_step_skipped
    params, buffers = flat_params(G, D), [b.clone() for b in [*G.buffers(), *D.buffers()]]
    state, norms, steps = opt.state_dict(), list(opt.last_grad_norms), opt.step_count
    scaler.scale = 2.0**40
    losses = opt.step(closure_for(G, D, True))
    assert opt.last_step_skipped
    assert all(abs(v) < 10 for v in losses)  # the unscaled, finite losses are still reported
    assert torch.equal(flat_params(G, D), params)
    assert all(torch.equal(a, b) for a, b in zip([*G.buffers(), *D.buffers()], buffers))
    after = opt.state_dict()
    assert after["scaler"]["scale"] == 2.0**39 and after["scaler"]["skipped"] == state["scaler"]["skipped"] + 1
    assert after["scaler"]["clean_steps"] == 0
    # the cost counters do include the skipped work; everything else is as before
    assert tree_equal(without(after, "scaler", "counts"), without(state, "scaler", "counts"))
    assert opt.step_count == steps and opt.last_grad_norms == norms


def test_huge_loss_multiplier_skips_and_the_scale_recovers():
    G, D = game()
    opt = build("adam", [list(G.parameters()), list(D.parameters())])
    attach_scaler(opt, LossScaler())
    before = flat_params(G, D)
    opt.step(closure_for(G, D, True, multiplier=1e6))  # 1e6 · 2**16 · dL/dD(x) > 65504
    assert opt.last_step_skipped and torch.equal(flat_params(G, D), before)
    skipped = 1
    while opt.last_step_skipped:
        opt.step(closure_for(G, D, True, multiplier=1e6))
        skipped += opt.last_step_skipped
        assert skipped < 30
    assert opt.scaler.scale == 2.0**16 / 2**skipped
    assert not torch.equal(flat_params(G, D), before)


def test_growth_after_clean_steps():
    scaler = LossScaler(init_scale=2.0**10, growth_interval=3)
    G, D, opt = run("adam", True, 7, scaler=scaler)
    assert scaler.scale == 2.0**12 and scaler.clean_steps == 1 and scaler.skipped == 0
    scaler.update(found_inf=True)
    assert scaler.scale == 2.0**11 and scaler.clean_steps == 0
    for _ in range(2):
        scaler.update(found_inf=False)
    assert scaler.scale == 2.0**11
    scaler.update(found_inf=False)
    assert scaler.scale == 2.0**12
    with pytest.raises(ConfigError):
        LossScaler(growth_interval=0)
    with pytest.raises(ConfigError):
        LossScaler(init_scale=float("inf"))


@pytest.mark.parametrize("name", ["adam", "lookahead", "acgd"])
def test_scaler_state_round_trips_through_the_optimizer_state(name):
    scaler = LossScaler(init_scale=2.0**12, growth_interval=2)
    G, D, opt = run(name, True, 3, scaler=scaler)
    scaler.scale = 2.0**20  # the next step overflows and is skipped: the restored run must too
    saved = opt.state_dict()
    assert saved["scaler"] == {"scale": 2.0**20, "clean_steps": 1, "skipped": 0, "growth_interval": 2}
    G2, D2 = game()
    G2.load_state_dict(G.state_dict())
    D2.load_state_dict(D.state_dict())
    opt2 = build(name, [list(G2.parameters()), list(D2.parameters())])
    attach_scaler(opt2, LossScaler(growth_interval=2))
    opt2.load_state_dict(saved)
    assert opt2.scaler.scale == 2.0**20 and opt2.scaler.clean_steps == 1
    for _ in range(6):
        opt.step(closure_for(G, D, True))
        opt2.step(closure_for(G2, D2, True))
        assert opt.last_step_skipped == opt2.last_step_skipped
    assert scaler.skipped >= 1
    assert torch.equal(flat_params(G, D), flat_params(G2, D2))
    assert opt2.scaler.state_dict() == scaler.state_dict()


# ----------------------------------------------------------------------------- the trainer
# (the training package is imported here only: the optimizer tests above do not depend on it)
def train_run(config: dict, out):
    from saddlepoint.training import train

    return train(config, out=out)


def resume(run_dir, overrides: dict):
    from saddlepoint.training import resume as resume_run

    return resume_run(run_dir, overrides)


def setup(cfg, out):
    from saddlepoint.training import setup as setup_trainer

    return setup_trainer(cfg, out)


def ring(optim: str = "adam", steps: int = 4, **train) -> dict:
    return {
        "seed": 5,
        "data": {"name": "ring"},
        "model": {"name": "mlp", "z_dim": 2, "depth": 2, "width": 16, "batchnorm": True},
        "optim": {"name": optim},
        "train": {"steps": steps, "batch_size": 16, "ema": 0.9, "amp": "fp16", **train},
        "eval": {"samples": 64},
        "log": {"every": 1, "progress": "none", "report": False},
    }


def test_trainer_fp16_logs_the_scale_and_resumes_bit_identically(tmp_path):
    straight = train_run(ring(steps=4), out=tmp_path / "straight")
    train_run(ring(steps=2), out=tmp_path / "split")
    resume(tmp_path / "split", {"train": {"steps": 4}})
    a = torch.load(straight / "checkpoints" / "last.pt", weights_only=False)
    b = torch.load(tmp_path / "split" / "checkpoints" / "last.pt", weights_only=False)
    assert a["optimizer"]["scaler"] == {"scale": 2.0**16, "clean_steps": 4, "skipped": 0, "growth_interval": 2000}
    assert tree_equal(a["G"], b["G"]) and tree_equal(a["D"], b["D"]) and tree_equal(a["ema"], b["ema"])
    assert tree_equal(a["optimizer"], b["optimizer"])
    records = [json.loads(x) for x in (straight / "metrics.jsonl").read_text().splitlines()]
    assert [r["amp_scale"] for r in records if "loss_g" in r and not r.get("final")] == [2.0**16] * 4


def test_trainer_skipped_step_leaves_parameters_and_ema_alone(tmp_path):
    trainer = setup(build_config(ring(steps=3)), tmp_path)
    trainer.game_step()
    params = flat_params(trainer.G, trainer.D)
    ema_params = [t.clone() for t in trainer.ema.module.state_dict().values()]
    ema = trainer.ema.state_dict()
    trainer.opt.scaler.scale = 2.0**40
    losses, _ = trainer.game_step()
    assert trainer.opt.last_step_skipped
    trainer.check_finite(losses)  # a skip is not divergence
    assert torch.equal(flat_params(trainer.G, trainer.D), params)
    assert all(torch.equal(a, b) for a, b in zip(trainer.ema.module.state_dict().values(), ema_params))
    assert trainer.ema.state_dict()["updates"] == ema["updates"] == 1
    assert trainer.opt.scaler.scale == 2.0**39


def test_trainer_fp16_second_order_and_refusals(tmp_path):
    train_run(ring("acgd", steps=2), out=tmp_path / "acgd")  # fp16 with a second-order method
    ckpt = torch.load(tmp_path / "acgd" / "checkpoints" / "last.pt", weights_only=False)
    assert ckpt["step"] == 2 and "scaler" in ckpt["optimizer"]
    bad = ring("acgd", steps=2)
    bad["train"]["amp"] = "bf16"
    with pytest.raises(ConfigError, match="bf16 is not supported with the second-order"):
        train_run(bad, out=tmp_path / "no")


@pytest.mark.parametrize("name", [n for n in OPTIMIZERS.names() if n not in SCALED])
def test_trainer_refuses_fp16_for_optimizers_without_loss_scaling(name, tmp_path):
    with pytest.raises(ConfigError, match="fp16 is not supported with the optimizer"):
        train_run(ring(name, steps=2), out=tmp_path / "no")
    assert not (tmp_path / "no" / "checkpoints").exists()
