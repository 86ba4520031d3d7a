"""``saddlepoint game NAME``: run any registered optimizer on an analytic game and plot it.

Options (a flat dict of already-typed values, as ``--set KEY=VALUE`` gives them):

* ``steps`` (int, 200), ``seed`` (int, 0: the game's random matrices and start),
* ``optim.name`` (default ``sgd``: simultaneous GDA), ``optim.lr`` (default: the game's, 0.1),
  ``optim.<hp>`` any hyper-parameter of that optimizer (checked by :func:`saddlepoint.optim.build`),
* the game's own options: bilinear ``dim``, ``bias``; quadratic ``dim``, ``mu``; dirac ``loss``,
  ``penalty``, ``penalty_weight``, ``theta0``, ``psi0``.

Writes ``trajectory.jsonl`` (one object per iteration: ``step``, ``distance`` to the equilibrium,
``losses``, ``point`` = the first coordinate of each player), ``trajectory.png`` (the path of the first
coordinates with the equilibrium marked), ``distance.png`` (distance vs iteration, log scale) and
``summary.json``. A run stops early if the iterate becomes non-finite or its distance exceeds 1e12
(``summary.json``: ``"diverged": true``).
"""

from __future__ import annotations

import json
import math
import pathlib
from typing import Any

import torch

from ..errors import ConfigError
from .analytic import GAMES, Game

RUNNER_KEYS = {"steps": 200, "seed": 0}
DIVERGED = 1e12


def _finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _split_options(name: str, options: dict[str, object]) -> tuple[dict, dict, dict]:
    cls = GAMES.get(name, "game")
    runner, game, optim = dict(RUNNER_KEYS), {}, {}
    valid = sorted([*RUNNER_KEYS, *cls.options, "optim.name", "optim.lr", "optim.<hyper-parameter>"])
    for key, value in options.items():
        if key in RUNNER_KEYS:
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"{key}: expected a non-negative integer, got {value!r}")
            runner[key] = value
        elif key in cls.options:
            game[key] = value
        elif key.startswith("optim.") and len(key) > len("optim."):
            optim[key[len("optim.") :]] = value
        else:
            raise ConfigError(f"unknown option {key!r} for game {name}; valid: {', '.join(valid)}")
    return runner, game, optim


def build_game(name: str, options: dict[str, object] | None = None, seed: int = 0) -> Game:
    """The registered game ``name`` with its options (ConfigError on unknown ones)."""
    return GAMES.get(name, "game")(seed=seed, **(options or {}))


def run_game(name: str, options: dict[str, object], out: pathlib.Path) -> pathlib.Path:
    """Run ``optim.name`` on game ``name`` for ``steps`` iterations; write the trajectory and plots
    into ``out`` (created) and return it."""
    from ..optim import build

    runner, game_opts, optim = _split_options(name, dict(options))
    torch.manual_seed(runner["seed"])
    game = build_game(name, game_opts, seed=runner["seed"])
    opt_name = optim.pop("name", "sgd")
    if not isinstance(opt_name, str):
        raise ConfigError(f"optim.name: expected a name, got {opt_name!r}")
    optim.setdefault("lr", game.default_lr)
    opt = (
        build(opt_name, game.players, buffers=game.buffers, **optim)
        if game.buffers
        else build(opt_name, game.players, **optim)
    )
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)

    records: list[dict[str, Any]] = []
    diverged = False
    steps = runner["steps"]
    for step in range(steps + 1):
        dist = game.distance()
        point = game.point()
        if not math.isfinite(dist) or dist > DIVERGED:
            diverged = True
            records.append(
                {
                    "step": step,
                    "distance": _finite_or_none(dist),
                    "losses": None,
                    "point": [_finite_or_none(p) for p in point],
                }
            )
            break
        if step < steps:
            losses = opt.step(game.losses)
            after = getattr(game, "after_step", None)
            if after is not None:
                after()
        else:
            losses = [float(v.detach()) for v in game.losses()]
        records.append(
            {
                "step": step,
                "distance": dist,
                "losses": [_finite_or_none(float(v)) for v in losses],
                "point": point,
            }
        )

    with open(out / "trajectory.jsonl", "w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec) + "\n")
    equilibrium = [float(e[0]) for e in game.equilibrium()]
    _plot_trajectory(records, equilibrium, out / "trajectory.png", f"{name} · {opt_name}", game.labels)
    _plot_distance(records, out / "distance.png", f"{name} · {opt_name}")
    summary = {
        "game": name,
        "options": {k: v for k, v in options.items()},
        "optimizer": opt_name,
        "steps": records[-1]["step"],
        "initial_distance": records[0]["distance"],
        "final_distance": records[-1]["distance"],
        "diverged": diverged,
        "equilibrium": [e.tolist() for e in game.equilibrium()],
        "counts": dict(opt.counts),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
    return out


def _figure():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot(1, 1, 1)


def _plot_trajectory(
    records: list[dict], equilibrium: list[float], path: pathlib.Path, title: str, labels: tuple[str, str]
) -> None:
    pts = [r["point"] for r in records if r["point"] and all(p is not None for p in r["point"])]
    fig, ax = _figure()
    if pts:
        xs, ys = [p[0] for p in pts], [p[1] if len(p) > 1 else 0.0 for p in pts]
        ax.plot(xs, ys, "-", lw=1.0, color="tab:blue", label="iterates")
        ax.plot(xs[0], ys[0], "o", color="tab:green", label="start")
        ax.plot(xs[-1], ys[-1], "s", color="tab:red", label="end")
    ax.plot(
        equilibrium[0],
        equilibrium[1] if len(equilibrium) > 1 else 0.0,
        "*",
        ms=14,
        color="black",
        label="equilibrium",
    )
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    ax.set_title(title)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)


def _plot_distance(records: list[dict], path: pathlib.Path, title: str) -> None:
    steps = [r["step"] for r in records if r["distance"] is not None]
    dist = [max(r["distance"], 1e-300) for r in records if r["distance"] is not None]
    fig, ax = _figure()
    ax.semilogy(steps, dist, "-", color="tab:blue")
    ax.set_xlabel("iteration")
    ax.set_ylabel("distance to equilibrium")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
