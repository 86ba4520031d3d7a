"""Analytic two-player games with known equilibria, for testing and visualising game optimizers.

Every game is a :class:`Game`: player parameter lists (``players``; player 0 is x / the generator),
a ``losses()`` closure body returning one loss per player (player i minimises ``losses()[i]``), and its
equilibrium. Everything is float64.

* ``bilinear`` — f(x, y) = xᵀAy + bᵀx + cᵀy, x minimises f, y maximises it (losses f, −f).
  A is a seeded standard-normal dim×dim matrix, b, c seeded normal vectors (``bias: false`` drops
  them). The equilibrium solves Ay + b = 0, Aᵀx + c = 0. Simultaneous GDA spirals out at
  √(1 + η²σ²) per step per singular value σ of A.
* ``quadratic`` — the strongly convex–concave f = ½xᵀPx + xᵀAy − ½yᵀQy with P, Q = BBᵀ/dim + μI
  (seeded B) and seeded A; equilibrium 0. Every linear method has a linear rate given by the spectral
  radius of its iteration matrix.
* ``dirac`` — DiracGAN (Mescheder, Geiger & Nowozin 2018, "Which training methods for GANs actually
  converge?", §2.2): data at 0, generator G = θ (a Dirac at θ), discriminator D(x) = ψx; the losses are
  the project's (``saddlepoint.losses.LOSSES``, applied to the logits d_real = D(0), d_fake = D(θ)),
  with an optional penalty from ``saddlepoint.losses.build_penalty`` (e.g. ``r1``: γ/2·ψ² here).
  Equilibrium (θ, ψ) = (0, 0). Unregularised gradient descent does not converge to it; R1/R2 make it
  converge (their Theorems 3.3 and 4.1). The losses declare the logits (Gauss–Newton curvature,
  :class:`~saddlepoint.optim.newton.DeclaredLosses`).
* Scalar minimax games (Wang, Zhang & Ba 2020, "On solving minimax optimization locally: a follow-the-ridge
  approach", §5: their g₁, g₂ and a non-quadratic one), x minimises f, y maximises it (losses f, −f), start
  (``x0``, ``y0``):

  - ``local-minimax`` — f = −3x² + 4xy − y²: the origin is a strict local minimax (f_yy = −2 < 0 and the Schur
    complement S = f_xx − f_xy² / f_yy = −6 + 8 = 2 > 0) but not a local Nash equilibrium (f_xx = −6 < 0).
    Simultaneous GDA diverges from it (double eigenvalue 1 + 2η), Follow-the-Ridge converges, and the literal
    per-player Newton step diverges for every step size (``saddlepoint.optim.newton``);
  - ``non-minimax`` — f = 3x² + 4xy + y²: the origin is a stationary point that is no local minimax (f_yy = 2 > 0,
    S = −2); simultaneous GDA converges to it (double eigenvalue 1 − 2η), Follow-the-Ridge is repelled;
  - ``sin-minimax`` — f = (x² + 1)(2 + sin y): local minimax (a local Nash point too) at (0, π/2), where
    f_xx = 6, f_xy = 0, f_yy = −1.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from .. import checks
from ..errors import ConfigError
from ..registry import Registry

DTYPE = torch.float64


def _str_or_none(key: str, value: Any) -> str | None:
    if value is None or (isinstance(value, str) and value.lower() in ("none", "")):
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{key}: expected a name or none, got {value!r}")
    return value


class Game:
    """Base class. Subclasses set ``options`` (name → (checker, default)) and build the game."""

    #: option name → (checker(key, value) -> value, default)
    options: dict[str, tuple[Callable[[str, Any], Any], Any]] = {}
    #: step size the runner uses when ``optim.lr`` is not given
    default_lr: float = 0.1
    #: axis labels of the trajectory plot (first coordinate of each player)
    labels: tuple[str, str] = ("x[0] (player 0)", "y[0] (player 1)")

    def __init__(self, seed: int = 0, **options: Any) -> None:
        unknown = set(options) - set(self.options)
        if unknown:
            raise ConfigError(
                f"game: unknown option(s) {', '.join(sorted(unknown))}; valid: {', '.join(sorted(self.options))}"
            )
        self.opts = {k: check(k, options.get(k, default)) for k, (check, default) in self.options.items()}
        self.generator = torch.Generator().manual_seed(int(seed))
        self.players: list[list[Tensor]] = []
        self.buffers: list[Tensor] = []

    def randn(self, *shape: int) -> Tensor:
        return torch.randn(*shape, generator=self.generator, dtype=DTYPE)

    def losses(self) -> list[Tensor]:
        raise NotImplementedError

    def equilibrium(self) -> list[Tensor]:
        """The equilibrium, one flat tensor per player."""
        raise NotImplementedError

    def flat(self) -> list[Tensor]:
        return [torch.cat([p.detach().reshape(-1) for p in params]) for params in self.players]

    def distance(self) -> float:
        """Euclidean distance of the current point to the equilibrium."""
        sq = sum(float(torch.sum((p - e) ** 2)) for p, e in zip(self.flat(), self.equilibrium(), strict=True))
        return math.sqrt(sq)

    def point(self) -> list[float]:
        """First coordinate of every player (for 2-D trajectory plots)."""
        return [float(p[0]) for p in self.flat()]


def _param(values: Tensor) -> Tensor:
    return nn.Parameter(values.clone().to(DTYPE))


class BilinearGame(Game):
    """f = xᵀAy + bᵀx + cᵀy; losses (f, −f). The start is the equilibrium plus a seeded N(0, I) offset
    unless ``x0``/``y0`` are given (Python API)."""

    options = {"dim": (checks.positive_int, 2), "bias": (checks.boolean, True)}

    def __init__(
        self,
        seed: int = 0,
        *,
        A: Tensor | None = None,
        b: Tensor | None = None,
        c: Tensor | None = None,
        x0: Tensor | None = None,
        y0: Tensor | None = None,
        **options: Any,
    ) -> None:
        super().__init__(seed, **options)
        dim = self.opts["dim"] if A is None else A.shape[0]
        self.A = self.randn(dim, dim) if A is None else A.to(DTYPE)
        bias = self.opts["bias"]
        n, m = self.A.shape
        self.b = (self.randn(n) if bias else torch.zeros(n, dtype=DTYPE)) if b is None else b.to(DTYPE)
        self.c = (self.randn(m) if bias else torch.zeros(m, dtype=DTYPE)) if c is None else c.to(DTYPE)
        x_eq, y_eq = self.equilibrium()
        x = x_eq + self.randn(n) if x0 is None else x0
        y = y_eq + self.randn(m) if y0 is None else y0
        self.x, self.y = _param(x), _param(y)
        self.players = [[self.x], [self.y]]

    def losses(self) -> list[Tensor]:
        f = self.x @ self.A @ self.y + self.b @ self.x + self.c @ self.y
        return [f, -f]

    def equilibrium(self) -> list[Tensor]:
        # ∇_x f = Ay + b = 0, ∇_y f = Aᵀx + c = 0 (least-squares solution if A is singular)
        y = torch.linalg.lstsq(self.A, -self.b.unsqueeze(1)).solution.squeeze(1)
        x = torch.linalg.lstsq(self.A.T, -self.c.unsqueeze(1)).solution.squeeze(1)
        return [x, y]


class QuadraticGame(Game):
    """f = ½xᵀPx + xᵀAy − ½yᵀQy, P, Q = BBᵀ/dim + μI; losses (f, −f); equilibrium 0."""

    options = {"dim": (checks.positive_int, 2), "mu": (checks.positive, 0.5)}

    def __init__(
        self,
        seed: int = 0,
        *,
        P: Tensor | None = None,
        A: Tensor | None = None,
        Q: Tensor | None = None,
        **options: Any,
    ) -> None:
        super().__init__(seed, **options)
        dim, mu = self.opts["dim"], self.opts["mu"]
        if P is None:
            B = self.randn(dim, dim)
            P = B @ B.T / dim + mu * torch.eye(dim, dtype=DTYPE)
        if Q is None:
            C = self.randn(dim, dim)
            Q = C @ C.T / dim + mu * torch.eye(dim, dtype=DTYPE)
        self.P, self.Q = P.to(DTYPE), Q.to(DTYPE)
        self.A = (self.randn(self.P.shape[0], self.Q.shape[0]) if A is None else A).to(DTYPE)
        self.x = _param(self.randn(self.P.shape[0]))
        self.y = _param(self.randn(self.Q.shape[0]))
        self.players = [[self.x], [self.y]]

    def losses(self) -> list[Tensor]:
        f = 0.5 * self.x @ self.P @ self.x + self.x @ self.A @ self.y - 0.5 * self.y @ self.Q @ self.y
        return [f, -f]

    def equilibrium(self) -> list[Tensor]:
        return [torch.zeros_like(self.x.detach()), torch.zeros_like(self.y.detach())]

    def jacobian(self) -> Tensor:
        """The game Jacobian M of ξ(z) = M z (z = (x, y)): [[P, A], [−Aᵀ, Q]]."""
        return torch.cat(
            [torch.cat([self.P, self.A], 1), torch.cat([-self.A.T, self.Q], 1)],
            0,
        )


class DiracDiscriminator(nn.Module):
    """D(x) = ψ·x for 1-D samples x of shape (N, 1); returns logits of shape (N,)."""

    def __init__(self, psi: float) -> None:
        super().__init__()
        self.psi = nn.Parameter(torch.tensor([psi], dtype=DTYPE))

    def forward(self, x: Tensor) -> Tensor:
        return x.reshape(x.shape[0], -1)[:, 0] * self.psi


class DiracGAN(Game):
    """DiracGAN with the project's losses and penalties; players [θ (G), ψ (D)]."""

    options = {
        "loss": (lambda k, v: _str_or_none(k, v) or "ns", "ns"),
        "penalty": (_str_or_none, None),
        "penalty_weight": (lambda k, v: checks.number(k, v, none=True), None),
        "theta0": (checks.number, 1.0),
        "psi0": (checks.number, 1.0),
    }
    default_lr = 0.1
    labels = ("θ (generator)", "ψ (discriminator)")

    def __init__(self, seed: int = 0, **options: Any) -> None:
        super().__init__(seed, **options)
        from ..losses import LOSSES, build_penalty

        self.loss_fn = LOSSES.get(self.opts["loss"], "loss")
        name = self.opts["penalty"]
        self.penalty = None if name is None else build_penalty(name, self.opts["penalty_weight"])
        self.theta = nn.Parameter(torch.tensor([self.opts["theta0"]], dtype=DTYPE))
        self.D = DiracDiscriminator(self.opts["psi0"])
        self.players = [[self.theta], [self.D.psi]]
        self.real = torch.zeros(1, 1, dtype=DTYPE)

    def losses(self) -> list[Tensor]:
        from ..optim.newton import DeclaredLosses

        fake = self.theta.reshape(1, 1)
        d_real, d_fake = self.D(self.real), self.D(fake)
        loss_g, loss_d = self.loss_fn(d_real, d_fake)
        if self.penalty is not None:
            loss_d = loss_d + self.penalty(self.D, self.real, fake)
        return DeclaredLosses([loss_g, loss_d], outputs={0: [d_fake], 1: [d_real, d_fake]})

    def after_step(self) -> None:
        if self.penalty is not None:
            self.penalty.after_step(self.D)

    def equilibrium(self) -> list[Tensor]:
        return [torch.zeros(1, dtype=DTYPE), torch.zeros(1, dtype=DTYPE)]


class ScalarMinimax(Game):
    """f(x, y) with scalar players; x minimises f, y maximises it: losses (f, −f). Start (``x0``, ``y0``)."""

    options = {"x0": (checks.number, 1.0), "y0": (checks.number, 1.0)}
    labels = ("x (player 0, min)", "y (player 1, max)")
    #: the equilibrium (x, y)
    point_star: tuple[float, float] = (0.0, 0.0)

    def __init__(self, seed: int = 0, **options: Any) -> None:
        super().__init__(seed, **options)
        self.x = _param(torch.tensor([float(self.opts["x0"])], dtype=DTYPE))
        self.y = _param(torch.tensor([float(self.opts["y0"])], dtype=DTYPE))
        self.players = [[self.x], [self.y]]

    def f(self, x: Tensor, y: Tensor) -> Tensor:
        raise NotImplementedError

    def losses(self) -> list[Tensor]:
        f = self.f(self.x, self.y).sum()
        return [f, -f]

    def equilibrium(self) -> list[Tensor]:
        return [torch.tensor([v], dtype=DTYPE) for v in self.point_star]


class LocalMinimax(ScalarMinimax):
    """f = −3x² + 4xy − y² (Wang et al. 2020, g₁): a strict local minimax at 0 that is not a local Nash
    equilibrium."""

    def f(self, x: Tensor, y: Tensor) -> Tensor:
        return -3 * x**2 + 4 * x * y - y**2


class NonMinimax(ScalarMinimax):
    """f = 3x² + 4xy + y² (Wang et al. 2020, g₂): a stationary point at 0 that is not a local minimax."""

    def f(self, x: Tensor, y: Tensor) -> Tensor:
        return 3 * x**2 + 4 * x * y + y**2


class SinMinimax(ScalarMinimax):
    """f = (x² + 1)(2 + sin y): local minimax at (0, π/2)."""

    options = {"x0": (checks.number, 0.5), "y0": (checks.number, 1.0)}
    point_star = (0.0, math.pi / 2)

    def f(self, x: Tensor, y: Tensor) -> Tensor:
        return (x**2 + 1) * (2 + torch.sin(y))


GAMES: Registry[type[Game]] = Registry("game")
GAMES.register("bilinear")(BilinearGame)
GAMES.register("quadratic")(QuadraticGame)
GAMES.register("dirac")(DiracGAN)
GAMES.register("local-minimax")(LocalMinimax)
GAMES.register("non-minimax")(NonMinimax)
GAMES.register("sin-minimax")(SinMinimax)
