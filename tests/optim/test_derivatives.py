"""Flat vectors, exact and finite-difference second-derivative products (saddlepoint.optim.derivatives),
against dense linear algebra in float64."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from saddlepoint.optim.derivatives import GameDerivatives, flatten, unflatten

DT = torch.float64


def _mlp(sizes: list[int], act: type[nn.Module], bn: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            if bn:
                layers.append(nn.BatchNorm1d(b))
            layers.append(act())
    return nn.Sequential(*layers).to(DT)


class TinyGAN:
    """G: 2→5→3, D: 3→6→1 (tanh or softplus); players [G, D]; losses (ns G loss, D loss)."""

    def __init__(self, act: type[nn.Module] = nn.Tanh, bn_g: bool = False, bn_d: bool = False) -> None:
        torch.manual_seed(0)
        self.G = _mlp([2, 5, 3], act, bn_g)
        self.D = _mlp([3, 6, 1], act, bn_d)
        self.z = torch.randn(8, 2, dtype=DT)
        self.real = torch.randn(8, 3, dtype=DT)
        self.players = [list(self.G.parameters()), list(self.D.parameters())]
        self.names = [[n for n, _ in self.G.named_parameters()], [n for n, _ in self.D.named_parameters()]]

    def losses_with(self, g_params: dict, d_params: dict) -> list[Tensor]:
        fake = functional_call(self.G, g_params, (self.z,))
        d_fake = functional_call(self.D, d_params, (fake,)).squeeze(1)
        d_real = functional_call(self.D, d_params, (self.real,)).squeeze(1)
        loss_g = F.softplus(-d_fake).mean()
        loss_d = F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
        return [loss_g, loss_d]

    def losses(self) -> list[Tensor]:
        return self.losses_with(dict(self.G.named_parameters()), dict(self.D.named_parameters()))

    def flat_loss(self, k: int):
        shapes = [[p.shape for p in params] for params in self.players]
        ng = sum(p.numel() for p in self.players[0])

        def fn(theta: Tensor) -> Tensor:
            g = unflatten(theta[:ng], [torch.empty(s) for s in shapes[0]])
            d = unflatten(theta[ng:], [torch.empty(s) for s in shapes[1]])
            return self.losses_with(dict(zip(self.names[0], g, strict=True)), dict(zip(self.names[1], d, strict=True)))[
                k
            ]

        return fn

    def dense_hessians(self) -> list[Tensor]:
        theta = flatten([p.detach() for ps in self.players for p in ps]).clone()
        return [torch.autograd.functional.hessian(self.flat_loss(k), theta) for k in range(2)]


def _blocks(game: TinyGAN) -> list[slice]:
    ng = sum(p.numel() for p in game.players[0])
    nd = sum(p.numel() for p in game.players[1])
    return [slice(0, ng), slice(ng, ng + nd)]


def _rand_like(params: list[Tensor], gen: torch.Generator) -> list[Tensor]:
    return [torch.randn(p.shape, generator=gen, dtype=DT) for p in params]


@pytest.mark.parametrize("bn", [False, True])
def test_exact_products_equal_dense_hessian(bn: bool) -> None:
    game = TinyGAN(nn.Tanh, bn_g=bn, bn_d=bn)
    for m in (game.G, game.D):
        m.train()
    hess = game.dense_hessians()
    blocks = _blocks(game)
    counts = {"grad": 0, "hvp": 0, "closure": 0}
    d = GameDerivatives(game.players, game.losses(), counts=counts)
    gen = torch.Generator().manual_seed(1)
    n_products = 0
    for k in range(2):
        for a in range(2):
            for b in range(2):
                v = _rand_like(game.players[b], gen)
                got = flatten(d.mixed(k, a, b, v))
                want = hess[k][blocks[a], blocks[b]] @ flatten(v)
                n_products += 1
                assert torch.allclose(got, want, rtol=0, atol=1e-10 * max(1.0, float(want.abs().max())))
    # the graph of each loss's gradient is built once and reused by every later product
    assert counts["hvp"] == n_products
    assert counts["grad"] == 4  # (k, b) pairs, each one backward with create_graph

    # whole-field products: J[i, j] = ∂²f_i/∂θ_i∂θ_j
    J = torch.cat([torch.cat([hess[i][blocks[i], blocks[j]] for j in range(2)], 1) for i in range(2)], 0)
    v = [_rand_like(game.players[i], gen) for i in range(2)]
    fv = flatten([t for vi in v for t in vi])
    jt, jv = d.field_vjp_jvp(v)
    assert torch.allclose(flatten([t for x in jt for t in x]), J.T @ fv, atol=1e-10)
    assert torch.allclose(flatten([t for x in jv for t in x]), J @ fv, atol=1e-10)
    assert torch.allclose(flatten([t for x in d.field_vjp(v) for t in x]), J.T @ fv, atol=1e-10)
    # SGA's antisymmetric part, one product per player
    before = counts["hvp"]
    at = d.field_antisymmetric(v)
    assert counts["hvp"] - before == 2
    assert torch.allclose(flatten([t for x in at for t in x]), 0.5 * (J.T - J) @ fv, atol=1e-10)


def test_fd_products_agree_with_exact_on_smooth_network() -> None:
    game = TinyGAN(nn.Softplus)
    counts = {"grad": 0, "hvp": 0, "closure": 0}

    def evaluate() -> list[Tensor]:
        counts["closure"] += 1
        return game.losses()

    exact = GameDerivatives(game.players, game.losses())
    gen = torch.Generator().manual_seed(2)
    cases = [(0, 0, 1), (1, 1, 0), (1, 1, 1), (0, 0, 0)]
    vs = [_rand_like(game.players[b], gen) for _, _, b in cases]
    field_v = [_rand_like(game.players[i], gen) for i in range(2)]
    # exact first: finite differences move the parameters (and restore them), which invalidates
    # graphs built before
    wants = [flatten(exact.mixed(k, a, b, v)) for (k, a, b), v in zip(cases, vs, strict=True)]
    field_want = exact.field_vjp_jvp(field_v)

    before = [p.detach().clone() for ps in game.players for p in ps]
    fd = GameDerivatives(game.players, game.losses(), evaluate=evaluate, mode="fd", counts=counts)
    for (k, a, b), v, want in zip(cases, vs, wants, strict=True):
        got = flatten(fd.mixed(k, a, b, v))
        rel = float(torch.linalg.vector_norm(got - want) / torch.linalg.vector_norm(want))
        assert rel < 1e-4, (k, a, b, rel)
    assert counts["hvp"] == 4 and counts["closure"] == 8
    # parameters are restored exactly after the perturbations
    after = [p.detach() for ps in game.players for p in ps]
    assert all(torch.equal(x, y) for x, y in zip(before, after, strict=True))
    for got, want in zip(fd.field_vjp_jvp(field_v), field_want, strict=True):
        g, w = flatten([t for x in got for t in x]), flatten([t for x in want for t in x])
        assert float(torch.linalg.vector_norm(g - w) / torch.linalg.vector_norm(w)) < 1e-4
    before = dict(counts)
    g = flatten([t for x in fd.field_antisymmetric(field_v) for t in x])
    w = 0.5 * (flatten([t for x in field_want[0] for t in x]) - flatten([t for x in field_want[1] for t in x]))
    assert float(torch.linalg.vector_norm(g - w) / torch.linalg.vector_norm(w)) < 1e-4
    assert counts["hvp"] - before["hvp"] == 2 and counts["closure"] - before["closure"] == 4
    # a gradient requested after a perturbation is taken from a fresh evaluation at the same point
    fresh = fd.grad(0, 1)
    ref = torch.autograd.grad(game.losses()[0], game.players[1])
    assert all(torch.allclose(x, y, atol=1e-14) for x, y in zip(fresh, ref, strict=True))


@pytest.mark.parametrize("mode", ["exact", "fd"])
def test_antisymmetric_part_three_player_general_sum(mode: str) -> None:
    """(Aᵀv)_i = ½∇_i Σ_{j≠i}⟨v_j, ∇_j(f_j − f_i)⟩ equals ½(Jᵀ − J)v for quadratic losses f_i = ½θᵀQ_iθ + c_iᵀθ
    (J's row block i is row block i of Q_i), n products for n players."""
    gen = torch.Generator().manual_seed(3)
    sizes = [2, 3, 4]
    dim = sum(sizes)
    cuts = [0, 2, 5, 9]
    qs = [(lambda m: m + m.T)(torch.randn(dim, dim, generator=gen, dtype=DT)) for _ in range(3)]
    cs = [torch.randn(dim, generator=gen, dtype=DT) for _ in range(3)]
    xs = [nn.Parameter(torch.randn(n, generator=gen, dtype=DT)) for n in sizes]

    def losses() -> list[Tensor]:
        theta = torch.cat(xs)
        return [0.5 * theta @ q @ theta + c @ theta for q, c in zip(qs, cs, strict=True)]

    J = torch.cat([qs[i][cuts[i] : cuts[i + 1]] for i in range(3)], 0)
    v = [[torch.randn(n, generator=gen, dtype=DT)] for n in sizes]
    counts = {"grad": 0, "hvp": 0, "closure": 0}
    d = GameDerivatives([[x] for x in xs], losses(), evaluate=losses, mode=mode, counts=counts)
    got = flatten([t for x in d.field_antisymmetric(v) for t in x])
    want = 0.5 * (J.T - J) @ torch.cat([x[0] for x in v])
    assert torch.allclose(got, want, rtol=0, atol=(1e-12 if mode == "exact" else 1e-7) * float(want.abs().max()))
    assert counts["hvp"] == 3
