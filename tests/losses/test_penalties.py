"""Discriminator penalties against hand-computed values and gradients."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from saddlepoint.errors import ConfigError
from saddlepoint.losses import LOSSES, FunctionPenalty, Penalty, build_penalties, build_penalty, penalty_options
from saddlepoint.models import build_models

from .helpers import t

# ----------------------------------------------------------------------------- penalties


class LinearCritic(nn.Module):
    """D(x) = Σ w·x + b over the non-batch dims: ∇_x D = w for every sample."""

    def __init__(self, w: Tensor, b: float = 0.3) -> None:
        super().__init__()
        self.w = nn.Parameter(w.clone())
        self.b = nn.Parameter(torch.tensor(b, dtype=w.dtype))

    def forward(self, x: Tensor) -> Tensor:
        return (x * self.w).reshape(x.shape[0], -1).sum(1) + self.b


class SquareCritic(nn.Module):
    """D(x_i) = Σ x_i²: ∇ = 2 x_i, so per-sample norms 2‖x_i‖ differ between samples."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones((), dtype=torch.float64))

    def forward(self, x: Tensor) -> Tensor:
        return self.scale * x.square().flatten(1).sum(1)


class Recorder(nn.Module):
    """A linear critic that remembers its input."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.inner = LinearCritic(torch.ones(shape, dtype=torch.float64))
        self.seen: list[Tensor] = []

    def forward(self, x: Tensor) -> Tensor:
        self.seen.append(x.detach().clone())
        return self.inner(x)


def images(n: int = 5, shape: tuple[int, ...] = (3, 4, 4)) -> Tensor:
    return torch.randn(n, *shape, dtype=torch.float64)


def test_penalty_defaults_and_options() -> None:
    assert build_penalty("gp").weight == 10.0
    assert build_penalty("dragan").weight == 10.0
    assert build_penalty("r1").weight == 10.0
    assert build_penalty("r2").weight == 10.0
    assert build_penalty("clip").weight == 0.01
    assert build_penalty("gp", 5).weight == 5.0
    assert isinstance(build_penalty("r1"), Penalty)
    gp = build_penalty("gp", one_sided=True, target=2.0)
    assert gp.one_sided and gp.target == 2.0
    with pytest.raises(ConfigError, match="loss.penalty: unknown penalty 'wgan-gp'"):
        build_penalty("wgan-gp")
    with pytest.raises(ConfigError, match="one_sided"):
        build_penalty("r1", one_sided=True)
    with pytest.raises(ConfigError, match="loss.gp_weight"):
        build_penalty("gp", -1.0)
    with pytest.raises(ConfigError, match="loss.gp_weight"):
        build_penalty("gp", True)
    with pytest.raises(ConfigError, match="loss.r1_weight"):
        build_penalty("r1", float("nan"))
    with pytest.raises(ConfigError, match="loss.clip_weight"):
        build_penalty("clip", 0.0)
    with pytest.raises(ConfigError, match="one_sided"):
        build_penalty("gp", one_sided="yes")


def test_gradient_penalties_on_a_linear_critic_with_unit_free_numbers() -> None:
    # w = 0.5 everywhere on 1×4×4: ‖w‖ = √(16 · 0.25) = 2 for every sample
    D = LinearCritic(torch.full((1, 4, 4), 0.5, dtype=torch.float64))
    real, fake = images(6, (1, 4, 4)), images(6, (1, 4, 4))
    assert build_penalty("gp")(D, real, fake).item() == pytest.approx(10 * (2 - 1) ** 2, rel=1e-12)  # 10
    assert build_penalty("dragan")(D, real, fake).item() == pytest.approx(10.0, rel=1e-12)
    assert build_penalty("r1")(D, real, fake).item() == pytest.approx(10 / 2 * 2**2, rel=1e-12)  # 20
    assert build_penalty("r2")(D, real, fake).item() == pytest.approx(20.0, rel=1e-12)
    assert build_penalty("gp", target=3.0)(D, real, fake).item() == pytest.approx(10.0, rel=1e-12)
    assert build_penalty("gp", 1.0, one_sided=True)(D, real, fake).item() == pytest.approx(1.0, rel=1e-12)
    # a whole-batch norm would give √6 · 2 and 10 · (2√6 − 1)² ≈ 155; a channel-axis norm 0.5 per pixel


def test_gradient_penalties_on_a_random_linear_critic() -> None:
    w = torch.randn(3, 4, 4, dtype=torch.float64) * 0.2
    norm = math.sqrt(sum(v * v for v in w.flatten().tolist()))
    D = LinearCritic(w)
    real, fake = images(), images()
    assert build_penalty("gp", 7.0)(D, real, fake).item() == pytest.approx(7 * (norm - 1) ** 2, rel=1e-12)
    assert build_penalty("dragan", 3.0)(D, real, fake).item() == pytest.approx(3 * (norm - 1) ** 2, rel=1e-12)
    assert build_penalty("r1", 4.0)(D, real, fake).item() == pytest.approx(2 * norm**2, rel=1e-12)
    assert build_penalty("r2", 4.0)(D, real, fake).item() == pytest.approx(2 * norm**2, rel=1e-12)
    one_sided = build_penalty("gp", one_sided=True)(D, real, fake).item()
    assert one_sided == pytest.approx(10 * max(0.0, norm - 1) ** 2, abs=1e-12)
    if norm < 1:  # the usual case for this w: ‖w‖ ≈ 0.2 · √48 ≈ 1.4 or less
        assert one_sided == 0.0


def test_gp_gradient_wrt_weights_matches_hand_formula() -> None:
    # gp(w) = λ(‖w‖ − 1)²  ⇒  ∂gp/∂w = 2λ(‖w‖ − 1) w/‖w‖, ∂gp/∂b = 0
    w = torch.randn(2, 3, 3, dtype=torch.float64)
    norm = w.norm().item()
    D = LinearCritic(w)
    pen = build_penalty("gp", 10.0)(D, images(4, (2, 3, 3)), images(4, (2, 3, 3)))
    g_w, g_b = torch.autograd.grad(pen, [D.w, D.b], allow_unused=True)
    expected = 2 * 10.0 * (norm - 1) * w / norm
    torch.testing.assert_close(g_w, expected, rtol=1e-12, atol=1e-12)
    assert g_b is None or g_b.item() == 0.0


def test_penalty_second_derivatives_on_linear_critic() -> None:
    # r1 = γ/2 ‖w‖²: Hessian γ I; gp: Hessian 2λ[(1 − 1/‖w‖) I + w wᵀ/‖w‖³]
    w = torch.randn(1, 3, 3, dtype=torch.float64)
    v = torch.randn_like(w)
    norm = w.norm()
    for name, weight in [("r1", 4.0), ("gp", 10.0), ("dragan", 10.0)]:
        D = LinearCritic(w)
        pen = build_penalty(name, weight)(D, images(3, (1, 3, 3)), images(3, (1, 3, 3)))
        (g,) = torch.autograd.grad(pen, D.w, create_graph=True)
        (hv,) = torch.autograd.grad((g * v).sum(), D.w)
        if name == "r1":
            expected = weight * v
        else:
            expected = 2 * weight * ((1 - 1 / norm) * v + w * (w * v).sum() / norm**3)
        torch.testing.assert_close(hv, expected, rtol=1e-10, atol=1e-12)


def test_per_sample_norms_when_samples_differ() -> None:
    # D(x) = Σ x²: ∇D(x_i) = 2 x_i.  x_1 = (3, 4): 2‖x_1‖ = 10;  x_2 = (0.3, 0.4): 2‖x_2‖ = 1.
    real = torch.tensor([[[[3.0, 4.0]]], [[[0.3, 0.4]]]], dtype=torch.float64)  # 2×1×1×2
    D = SquareCritic()
    # real == fake pins the interpolate x̂ = x whatever ε is
    gp = build_penalty("gp")(D, real, real.clone()).item()
    assert gp == pytest.approx(10 * ((10 - 1) ** 2 + (1 - 1) ** 2) / 2, rel=1e-12)  # 405
    # (a whole-batch norm √(10² + 1²) would give 10 · (√101 − 1)² ≈ 819.0)
    assert gp != pytest.approx(10 * (math.sqrt(101) - 1) ** 2, rel=1e-3)
    # R1 = γ/2 · E‖2x_i‖² = 5 · (100 + 1)/2
    assert build_penalty("r1")(D, real, real).item() == pytest.approx(252.5, rel=1e-12)
    # R2 uses the fakes only: (1, 0) and (0, 2) give ‖2x‖² = 4, 16 → 5 · 10
    fake = torch.tensor([[[[1.0, 0.0]]], [[[0.0, 2.0]]]], dtype=torch.float64)
    assert build_penalty("r2")(D, real, fake).item() == pytest.approx(50.0, rel=1e-12)
    assert build_penalty("r1")(D, real, fake).item() == pytest.approx(252.5, rel=1e-12)
    # one-sided gp: max(0, 10 − 1)² and max(0, 1 − 1)²
    assert build_penalty("gp", one_sided=True)(D, real, real).item() == pytest.approx(405.0, rel=1e-12)


def test_gp_uses_one_coefficient_per_sample() -> None:
    D = Recorder((2, 3, 3))
    real, fake = images(8, (2, 3, 3)), images(8, (2, 3, 3))
    build_penalty("gp")(D, real, fake)
    (x_hat,) = D.seen
    eps = (x_hat - fake) / (real - fake)  # x̂ = ε x + (1 − ε) x̃
    per_sample = eps.flatten(1)
    torch.testing.assert_close(per_sample, per_sample[:, :1].expand_as(per_sample), rtol=1e-8, atol=1e-8)
    assert ((per_sample >= 0) & (per_sample <= 1)).all()
    assert per_sample[:, 0].std() > 0.05  # different samples, different ε


def test_dragan_perturbation() -> None:
    D = Recorder((2, 3, 3))
    real = images(16, (2, 3, 3)) * 3 + 1
    build_penalty("dragan")(D, real, images(16, (2, 3, 3)))
    (x_p,) = D.seen
    delta = x_p - real
    bound = 0.5 * real.std(correction=0).item()  # α · 0.5 · std(x) · u with α, u ∈ [0, 1)
    assert (delta >= 0).all() and (delta <= bound).all()
    per_sample_max = delta.flatten(1).max(1).values
    assert per_sample_max.std() > 0.01 * bound  # α differs between samples
    assert delta.flatten(1).std(1).min() > 0  # u differs within a sample


def test_penalties_ignore_generator_graph() -> None:
    G, D = build_models("mlp", (2,), 2, width=16, depth=2, activation="tanh")
    real = torch.randn(8, 2)
    fake = G(torch.randn(8, 2))
    for name in ("gp", "dragan", "r1", "r2"):
        pen = build_penalty(name)(D, real, fake)
        grads = torch.autograd.grad(pen, list(G.parameters()), allow_unused=True)
        assert all(g is None for g in grads), name
        assert any(p.grad is None for p in D.parameters())  # nothing accumulated


@pytest.mark.parametrize(
    "name,model",
    [(name, "mlp") for name in ("gp", "dragan", "r1", "r2", "clip")] + [("gp", "dcgan28"), ("r1", "dcgan28")],
)
def test_double_backward_through_penalties(name: str, model: str) -> None:
    """Gradient of (loss + penalty) wrt D's parameters with graph, then a Hessian-vector product."""
    shape = (2,) if model == "mlp" else (1, 28, 28)
    opts = {"activation": "leaky_relu", "width": 32} if model == "mlp" else {"width": 0.125}
    _, D = build_models(model, shape, 4, **opts)
    real, fake = torch.randn(2, *shape), torch.randn(2, *shape)
    loss_d = LOSSES.get("wgan")(D(real), D(fake))[1] + build_penalty(name)(D, real, fake)
    params = list(D.parameters())
    grads = torch.autograd.grad(loss_d, params, create_graph=True)
    v = [torch.randn_like(g) for g in grads]
    dot = sum((g * u).sum() for g, u in zip(grads, v, strict=True) if g.requires_grad)
    hvp = [h for h in torch.autograd.grad(dot, params, allow_unused=True) if h is not None]
    assert all(torch.isfinite(h).all() for h in hvp)
    if name != "clip":  # the wgan loss is linear in D's last layer, the penalty is not
        assert sum(h.abs().sum() for h in hvp) > 0


def test_clip() -> None:
    clip = build_penalty("clip")
    D = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 1))
    with torch.no_grad():
        D[0].weight.copy_(torch.tensor([[0.5, -0.5, 0.005]] * 4))
    x = torch.randn(4, 3)
    zero = clip(D, x, x)
    assert zero.dim() == 0 and zero.item() == 0.0
    clip.after_step(D)
    for p in D.parameters():
        assert p.abs().max() <= 0.01
    assert D[0].weight[0].tolist() == pytest.approx([0.01, -0.01, 0.005])
    assert torch.all(D[1].weight == 0.01)  # BatchNorm scale 1 → c (WGAN clips every parameter)
    clip5 = build_penalty("clip", 0.05)
    D[0].weight.data.fill_(1.0)
    clip5.after_step(D)
    assert torch.all(D[0].weight == 0.05)
    # the base penalty's after_step does nothing
    before = [p.clone() for p in D.parameters()]
    build_penalty("gp").after_step(D)
    assert all(torch.equal(a, b) for a, b in zip(before, D.parameters(), strict=True))


def test_penalties_on_flat_samples() -> None:
    # samples of shape (N,) (e.g. DiracGAN): D(x) = 3x has |∇| = 3 per sample
    D = LinearCritic(torch.tensor(3.0, dtype=torch.float64), b=0.0)
    x, y = t([0.5, -1.0, 2.0]), t([1.0, 0.0, -1.0])
    assert build_penalty("gp")(D, x, y).item() == pytest.approx(10 * (3 - 1) ** 2)
    assert build_penalty("r1")(D, x, y).item() == pytest.approx(5 * 9)
    assert build_penalty("dragan")(D, x, y).item() == pytest.approx(40.0)


def test_penalty_shape_mismatch_is_an_error() -> None:
    D = LinearCritic(torch.ones(1, 2, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="differ in shape"):
        build_penalty("gp")(D, images(4, (1, 2, 2)), images(3, (1, 2, 2)))


# ----------------------------------------------------------------------------- options from the config
def config_penalties(*pairs: str) -> list[Penalty]:
    from saddlepoint.config import build_config, nest, parse_sets

    return build_penalties(build_config(nest(parse_sets(list(pairs)))).loss)


@pytest.mark.parametrize("norm", [0.5, 0.25])
def test_gp_one_sided_option_changes_the_penalty_by_hand(norm: float) -> None:
    # D(x) = w·x + b with w = c everywhere on 1×4×4: ∇_x D = w, ‖∇D‖ = √16 · c = 4c for every sample, so with
    # ‖∇D‖ < 1 the two-sided penalty is λ (‖∇D‖ − 1)² and the one-sided one λ max(0, ‖∇D‖ − 1)² = 0
    D = LinearCritic(torch.full((1, 4, 4), norm / 4, dtype=torch.float64))
    real, fake = images(6, (1, 4, 4)), images(6, (1, 4, 4))
    (two_sided,) = config_penalties("loss.penalty=gp")
    (one_sided,) = config_penalties("loss.penalty=gp", "loss.gp.one_sided=true")
    assert two_sided.options == {"one_sided": False, "target": 1.0} and one_sided.one_sided is True
    assert two_sided(D, real, fake).item() == pytest.approx(10 * (norm - 1) ** 2, rel=1e-12)
    assert one_sided(D, real, fake).item() == 0.0
    # above the target both sides agree: ‖∇D‖ = 2
    D2 = LinearCritic(torch.full((1, 4, 4), 0.5, dtype=torch.float64))
    assert one_sided(D2, real, fake).item() == pytest.approx(10.0, rel=1e-12)


@pytest.mark.parametrize("pairs", [
    ("loss.penalty.gp.one_sided=true", "loss.penalty.gp.weight=5"),
    ("loss.penalty=gp", "loss.gp.one_sided=true", "loss.gp_weight=5"),
    ("loss.penalty=[gp]", "loss.penalty.gp.one_sided=yes", "loss.gp.weight=5.0"),
    ("loss.penalty={gp: {weight: 5, one_sided: true}}",),
])
def test_every_spelling_of_penalty_options_gives_the_same_penalty(pairs: tuple[str, ...]) -> None:
    (gp,) = config_penalties(*pairs)
    assert (gp.name, gp.weight, gp.one_sided, gp.target) == ("gp", 5.0, True, 1.0)


def test_penalty_option_errors_name_the_key_and_the_valid_options() -> None:
    with pytest.raises(ConfigError, match=r"loss.penalty.gp: unknown option\(s\) one_sidd; valid: weight, one_sided"):
        config_penalties("loss.gp.one_sidd=true")
    with pytest.raises(ConfigError, match="loss.penalty.gp.one_sided: expected true or false"):
        config_penalties("loss.gp.one_sided=maybe")
    with pytest.raises(ConfigError, match="loss.penalty.r1: unknown option"):
        config_penalties("loss.penalty.r1.one_sided=true")
    with pytest.raises(ConfigError, match="loss.penalty.dragan.scale: expected a non-negative number"):
        config_penalties("loss.penalty.dragan.scale=-1")


def test_build_penalties_accepts_names_and_mappings() -> None:
    assert [p.name for p in build_penalties(["gp", "r1"])] == ["gp", "r1"]
    (gp,) = build_penalties({"gp": {"weight": 2.0, "target": 0.5}})
    assert (gp.weight, gp.target, gp.one_sided) == (2.0, 0.5, False)
    assert penalty_options("clip") == {"weight": 0.01}
    assert penalty_options("gp", {"one_sided": True}) == {"weight": 10.0, "one_sided": True, "target": 1.0}


def test_a_penalty_registered_as_a_function() -> None:
    def sq(D: nn.Module, real: Tensor, fake: Tensor, *, power: float) -> Tensor:
        return D(real).abs().pow(power).mean()

    penalty = FunctionPenalty("toy-unregistered", sq, 3.0, **{})
    D = LinearCritic(torch.full((1, 2, 2), 0.5, dtype=torch.float64), b=0.0)
    real = torch.ones(4, 1, 2, 2, dtype=torch.float64)  # D(real) = 4 · 0.5 = 2
    penalty.options = {"power": 2.0}
    assert penalty(D, real, real).item() == pytest.approx(3.0 * 4.0)
