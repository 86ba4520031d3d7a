"""The scalar minimax games (local-minimax, non-minimax, sin-minimax): their derivatives at the equilibrium against
the closed forms in saddlepoint.games.analytic, and `saddlepoint game NAME` on them (float64)."""

from __future__ import annotations

import json
import math

import pytest
import torch

from saddlepoint.games import GAMES, DiracGAN, build_game, run_game

# (name, f_xx, f_xy, f_yy) at the equilibrium
CLOSED_FORMS = [("local-minimax", -6.0, 4.0, -2.0), ("non-minimax", 6.0, 4.0, 2.0), ("sin-minimax", 6.0, 0.0, -1.0)]


@pytest.mark.parametrize("name,fxx,fxy,fyy", CLOSED_FORMS)
def test_equilibrium_is_stationary_with_the_documented_hessian(name, fxx, fxy, fyy):
    game = build_game(name, {})
    x_star, y_star = (float(e) for e in game.equilibrium())

    point = (torch.tensor([x_star], dtype=torch.float64), torch.tensor([y_star], dtype=torch.float64))
    grads = torch.autograd.functional.jacobian(lambda x, y: game.f(x, y).sum(), point)
    assert all(abs(float(g)) < 1e-12 for g in grads)
    hess = torch.autograd.functional.hessian(lambda x, y: game.f(x, y).sum(), point)
    assert float(hess[0][0]) == pytest.approx(fxx, abs=1e-12)
    assert float(hess[0][1]) == pytest.approx(fxy, abs=1e-12)
    assert float(hess[1][1]) == pytest.approx(fyy, abs=1e-12)
    schur = fxx - fxy**2 / fyy
    # strict local minimax ⇔ f_yy < 0 and S > 0; local Nash additionally needs f_xx > 0
    assert (fyy < 0 and schur > 0) == (name != "non-minimax")
    assert (fxx > 0) == (name != "local-minimax")


def test_losses_and_start():
    game = build_game("local-minimax", {"x0": 0.5, "y0": -2.0})
    f, minus_f = (t.detach() for t in game.losses())
    assert float(f) == pytest.approx(-3 * 0.25 + 4 * 0.5 * -2.0 - 4.0) and float(minus_f) == -float(f)
    assert game.distance() == pytest.approx(math.hypot(0.5, 2.0))
    assert build_game("sin-minimax", {}).equilibrium()[1].item() == pytest.approx(math.pi / 2)
    assert {"local-minimax", "non-minimax", "sin-minimax"} <= set(GAMES.names())


@pytest.mark.parametrize("name,optimizer,diverged", [
    ("local-minimax", "sgd", True), ("local-minimax", "follow-ridge", False),
    ("non-minimax", "sgd", False), ("non-minimax", "follow-ridge", True),
])
def test_game_runner(tmp_path, name, optimizer, diverged):
    """`saddlepoint game NAME`: GDA leaves the local minimax and converges to the non-minimax; FTR the reverse."""
    options = {"steps": 400, "optim.name": optimizer, "optim.lr": 0.05}
    if optimizer == "follow-ridge":
        options.update({"optim.damping": 0.0, "optim.adapt_damping": False})
    out = run_game(name, options, tmp_path / "run")
    summary = json.loads((out / "summary.json").read_text())
    final = summary["final_distance"]
    if diverged:
        assert summary["diverged"] or final > 1e3 * summary["initial_distance"]
    else:
        assert final < 1e-6 * summary["initial_distance"]
    assert (out / "trajectory.png").exists()


def test_dirac_declares_its_logits():
    game = DiracGAN(theta0=0.5, psi0=0.2)
    losses = game.losses()
    assert set(losses.outputs) == {0, 1}
    assert torch.equal(losses.outputs[0][0].detach(), torch.tensor([0.1], dtype=torch.float64))
