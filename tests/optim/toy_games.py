"""Small games shared by the optimizer tests (float64)."""

from __future__ import annotations

import copy
import io
import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from saddlepoint.optim import build
from saddlepoint.optim.derivatives import flatten

DT = torch.float64


def orthogonal(n: int, seed: int) -> Tensor:
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=torch.Generator().manual_seed(seed), dtype=DT))
    return q


def well_conditioned(n: int, seed: int) -> Tensor:
    """Q diag(1 … 2) Q'ᵀ: singular values between 1 and 2."""
    s = torch.linspace(1.0, 2.0, n, dtype=DT)
    return orthogonal(n, seed) @ torch.diag(s) @ orthogonal(n, seed + 1).T


def z_of(game) -> Tensor:
    return torch.cat(game.flat())


def run(game, name: str, steps: int, **hp) -> list[float]:
    opt = build(name, game.players, **hp)
    dist = [game.distance()]
    for _ in range(steps):
        opt.step(game.losses)
        dist.append(game.distance())
    return dist


class SmoothGAN:
    """A float64 MLP GAN with smooth activations (and optional BatchNorm in G)."""

    def __init__(self, loss: str = "minimax", bn: bool = False, seed: int = 0) -> None:
        torch.manual_seed(seed)
        g_layers: list[nn.Module] = [nn.Linear(2, 6)]
        if bn:
            g_layers.append(nn.BatchNorm1d(6))
        g_layers += [nn.Tanh(), nn.Linear(6, 2)]
        self.G = nn.Sequential(*g_layers).to(DT)
        self.D = nn.Sequential(nn.Linear(2, 6), nn.Softplus(), nn.Linear(6, 1)).to(DT)
        self.z = torch.randn(16, 2, dtype=DT)
        self.real = torch.randn(16, 2, dtype=DT) + 1.0
        self.loss = loss
        self.players = [list(self.G.parameters()), list(self.D.parameters())]
        self.buffers = list(self.G.buffers())

    def losses(self) -> list[Tensor]:
        d_fake = self.D(self.G(self.z)).squeeze(1)
        d_real = self.D(self.real).squeeze(1)
        loss_d = F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
        loss_g = -F.softplus(d_fake).mean() if self.loss == "minimax" else F.softplus(-d_fake).mean()
        return [loss_g, loss_d]

    def flat(self) -> Tensor:
        return flatten([p.detach() for ps in self.players for p in ps])


HP = {
    "consensus": {"lr": 0.05, "gamma": 0.5},
    "sga": {"lr": 0.05, "align": True},
    "cgd": {"lr": 0.05, "tol": 1e-13, "max_iter": 200},
    "acgd": {"lr": 0.01, "tol": 1e-13, "max_iter": 200},
}


# ---------------------------------------------------------------------------------------- extrapolation and lookahead
def bilinear(sigmas, seed=0):
    """f(x, y) = xᵀAy, A = U diag(σ) Vᵀ; player 0 (x) minimises f, player 1 (y) minimises −f."""
    g = torch.Generator().manual_seed(seed)
    n = len(sigmas)
    U, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=DT))
    V, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=DT))
    A = U @ torch.diag(torch.tensor(sigmas, dtype=DT)) @ V.T
    x = torch.randn(n, generator=g, dtype=DT).requires_grad_()
    y = torch.randn(n, generator=g, dtype=DT).requires_grad_()

    def closure():
        f = x @ A @ y
        return [f, -f]

    return A, U, V, x, y, closure


def direction_norms(U, V, x, y):
    """In the singular basis, (a_k, b_k) = (u_kᵀx, v_kᵀy) evolves on its own: its norm per k."""
    a, b = U.T @ x.detach(), V.T @ y.detach()
    return torch.sqrt(a**2 + b**2)


def total_norm(x, y):
    return math.hypot(float(x.detach().norm()), float(y.detach().norm()))


def ogda_spectral_radius(h):
    """OGDA on one singular direction, z = a + i b, h = ησ: the gradient step −ηg is multiplication
    by i h, so z_{t+1} = z_t + 2ih z_t − ih z_{t−1}; characteristic roots of λ² − (1 + 2ih)λ + ih."""
    return max(abs(r) for r in np.roots([1.0, -(1 + 2j * h), 1j * h]))


def nonlinear_game(seed=0):
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(4, 3, generator=g, dtype=DT)
    p0 = torch.randn(4, generator=g, dtype=DT).requires_grad_()
    p1 = torch.randn(3, generator=g, dtype=DT).requires_grad_()
    q1 = torch.randn(2, generator=g, dtype=DT).requires_grad_()

    def make_closure(a, b, c):
        def closure():
            f = torch.tanh(a) @ W @ torch.sin(b) + 0.3 * (c**2).sum() * torch.tanh(a).sum()
            return [f + 0.05 * (a**2).sum(), -f + 0.05 * (b**2).sum() + 0.1 * (c**2).sum()]

        return closure

    return [p0], [p1, q1], make_closure


def serialise(state):
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def bn_setup(seed=0):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(2, 4), nn.BatchNorm1d(4)).to(DT)
    w = torch.randn(4, dtype=DT, requires_grad=True)
    data = torch.randn(32, 2, dtype=DT)

    def make_closure(module, v):
        def closure():
            h = module(data)
            f = (h @ v).pow(2).mean() + 0.1 * (h.mean(0) ** 2).sum()
            return [f, -f + 0.5 * (v**2).sum()]

        return closure

    return net, w, make_closure


def round_trip(name, warmup, hp, with_bn=False):
    if with_bn:
        net_a, w_a, make_closure = bn_setup(2)
        net_b, w_b = copy.deepcopy(net_a), w_a.detach().clone().requires_grad_()
        players_a, players_b = [net_a, [w_a]], [net_b, [w_b]]
        closure_a, closure_b = make_closure(net_a, w_a), make_closure(net_b, w_b)
        extra_a = {"buffers": list(net_a.buffers())}
        extra_b = {"buffers": list(net_b.buffers())}
    else:
        pa0, pa1, make_closure = nonlinear_game()
        players_a = [pa0, pa1]
        closure_a = make_closure(pa0[0], pa1[0], pa1[1])
        extra_a = extra_b = {}
    opt_a = build(name, players_a, **extra_a, **hp)
    for _ in range(warmup):
        opt_a.step(closure_a)
    state = serialise(opt_a.state_dict())
    if with_bn:
        net_b.load_state_dict(net_a.state_dict())
        w_b.data.copy_(w_a.detach())
        tensors_a = list(net_a.parameters()) + [w_a] + list(net_a.buffers())
        tensors_b = list(net_b.parameters()) + [w_b] + list(net_b.buffers())
    else:
        pb0 = [p.detach().clone().requires_grad_() for p in pa0]
        pb1 = [p.detach().clone().requires_grad_() for p in pa1]
        players_b = [pb0, pb1]
        closure_b = make_closure(pb0[0], pb1[0], pb1[1])
        tensors_a, tensors_b = pa0 + pa1, pb0 + pb1
    opt_b = build(name, players_b, **extra_b, **hp)
    opt_b.load_state_dict(state)
    for _ in range(3):
        assert opt_a.step(closure_a) == opt_b.step(closure_b)
        for p, q in zip(tensors_a, tensors_b, strict=True):
            assert torch.equal(p, q)
    assert opt_a.counts == opt_b.counts


def tree_equal(a: Any, b: Any) -> bool:
    """Bit-identical state trees (tensors with torch.equal, everything else with ==)."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(tree_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(tree_equal(x, y) for x, y in zip(a, b))
    return a == b


def without(tree: dict, *keys: str) -> dict:
    """A state dict without ``keys``, at every level that holds a wrapped optimizer's state dict."""
    return {k: (without(v, *keys) if isinstance(v, dict) and "method" in v else v)
            for k, v in tree.items() if k not in keys}
