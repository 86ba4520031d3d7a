"""Game-optimizer benchmarks (not part of the tests): prints tables and writes benchmarks/results/optim.json.

1. **Step time** of every registered method (``saddlepoint.optim.OPTIMIZERS.names()``) ÷ simultaneous Adam, on
   (a) the 2-D MLP GAN (ring, ``build_models("mlp", (2,), 2)``, batch 256) and (b) DCGAN-28 (``dcgan28``,
   scale 1, MNIST t10k, batch 64), non-saturating loss; second-order methods also on the minimax loss (zero-sum:
   CG instead of GMRES) and with ``hvp: fd``. Every variant has its own copy of the same initial models and sees
   the same batches; the variants step round-robin (the order rotated every round), and a partner simultaneous-Adam
   runner steps right next to every variant step, so machine load hits both sides of each ratio alike; before each
   round the script waits (``--quiet-wait``) until other processes use < 0.25 cores. Reported: median seconds per
   step, ratio to Adam (median over rounds of the ratio to the adjacent Adam step; the ratio of medians too), the
   optimizer's ``counts`` per step
   (closure calls, gradients, second-derivative products) and, for CGD/ACGD, the Krylov iterations
   (``opt.last_solve``), checked against the method's paper count of products.
2. **Product costs** on DCGAN-28 (and the MLP): one mixed product D_xy·v and one full Hessian-vector product,
   exact (double backprop through a cached gradient-with-graph, whose extra cost is reported separately and
   amortised) and by finite differences, ÷ one gradient (forward + backward of L_D w.r.t. all parameters).
3. **Finite-difference accuracy**: relative error of fd mixed products and HVPs against exact ones
   (``GameDerivatives`` modes "fd" and "exact", same dtype, same batch and dropout masks), for relative steps
   eps_rel 1e-1 … 1e-7, float32 and float64, on small MLPs (ReLU, LeakyReLU, tanh, softplus) and on DCGAN-28
   (LeakyReLU, and the same network with softplus).
4. ``--cgds``: our ACGD ÷ the ``CGDs`` package's ACGD (PyPI; NOT a project dependency: install it with
   ``pip install --target /tmp/cgds_pkg CGDs --no-deps``; ``--cgds-path`` points there) on DCGAN-28, batch 64,
   minimax loss, same lr/beta/eps and the same tolerance: CGDs stops CG when ‖r‖² < tol·‖b‖² (squared residual,
   relative to the squared right-hand side), we stop when ‖r‖ ≤ tol·‖b‖, so their tol τ is our tol √τ (their
   atol α is our atol √α). Our ACGD runs once per ``--cgds-krylov`` variant (cg, cr: conjugate residuals;
   "+cold": ``warm_start: false``), each on its own copy of the models; all step in turn on the same batch
   (order rotated every step), and the ratio is reported both as median ÷ median and as the median of the
   per-step ratios to the adjacent CGDs step.

    python benchmarks/bench_optim.py [--quick] [--cgds] [--threads 2]

``--quick`` (≤ 2 minutes on an idle 2-core machine): fewer rounds, DCGAN-28 second-order methods only on the
minimax loss with a capped iteration count, fd accuracy on fewer steps, no CGDs comparison.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--quick", action="store_true", help="a subset that runs in about two minutes")
ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2, the machine's cores)")
ap.add_argument("--cgds", action="store_true", help="also compare ACGD with the CGDs package's ACGD")
ap.add_argument("--cgds-path", default="/tmp/cgds_pkg", help="directory holding the CGDs package (pip --target)")
ap.add_argument("--cgds-krylov", default="cg+fwd,cr+cold+fwd,cr+cold",
                help="our ACGD variants timed next to CGDs (comma-separated optim.krylov cg | cr, '+cold': "
                "warm_start false, '+fwd': forward_mode true, without it false; 'cg+fwd' are the defaults)")
ap.add_argument("--cgds-settings", default="1e-4:1e-8,1e-6:1e-8,1e-4:1e-5",
                help="comma-separated CGDs_tol:eps pairs for --cgds (their atol 1e-20)")
ap.add_argument("--parts", default="steps,products,dyx,fd,cgds", help="comma-separated subset of the parts to run")
ap.add_argument("--quiet-wait", type=float, default=300.0,
                help="before each timed round, wait up to this many seconds for other processes to go quiet")
ap.add_argument("--merge", action="store_true",
                help="keep the results of the parts not run from the existing --out file")
ap.add_argument("--variants", default="",
                help="part 1 only: time just these variant labels (comma-separated, e.g. 'sga,sga hvp=fd'; 'adam' "
                "always runs as the baseline); with --merge their rows replace the old ones and the rest are kept")
ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "optim.json"))
args = ap.parse_args()
for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[var] = str(args.threads)

import torch  # noqa: E402
from torch import Tensor, nn  # noqa: E402

from saddlepoint.data import build_dataset  # noqa: E402
from saddlepoint.games.gan import GANClosure  # noqa: E402
from saddlepoint.games.tangents import ChainRecorder  # noqa: E402
from saddlepoint.losses import LOSSES  # noqa: E402
from saddlepoint.models import build_models  # noqa: E402
from saddlepoint.optim import OPTIMIZERS, build  # noqa: E402
from saddlepoint.optim.derivatives import GameDerivatives, default_fd_eps, flatten  # noqa: E402

torch.set_num_threads(args.threads)
PARTS = set(args.parts.split(","))
KRYLOV = [k.strip() for k in args.cgds_krylov.split(",") if k.strip()]
QUICK = args.quick
ONLY = {x.strip() for x in args.variants.split(",") if x.strip()}
SECOND_ORDER = ("consensus", "sga", "cgd", "acgd", "newton", "follow-ridge", "gdn", "complete-newton")
#: the Newton-type methods: ``last_solve`` holds one solve per player ("newton") or per role (the others)
NEWTON_TYPE = ("newton", "follow-ridge", "gdn", "complete-newton")


def log(*a: Any) -> None:
    print(*a, flush=True)


def load() -> float:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except OSError:
        return float("nan")


def _cpu_jiffies() -> tuple[int, int]:
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields[:8]) - idle, sum(fields[:8])


def others_busy(interval: float = 0.5) -> float:
    """Cores kept busy by other processes, sampled while this one sleeps (nan where /proc is missing)."""
    try:
        b0, t0 = _cpu_jiffies()
        time.sleep(interval)
        b1, t1 = _cpu_jiffies()
    except (OSError, ValueError, IndexError):
        return float("nan")
    return (b1 - b0) / max(t1 - t0, 1) * (os.cpu_count() or 1)


QUIET_WAITS: list[float] = []


def wait_quiet(limit: float = args.quiet_wait, threshold: float = 0.25) -> float:
    """Wait (up to ``limit`` seconds) until other processes use < ``threshold`` cores; return their load."""
    t0 = time.perf_counter()
    busy = others_busy()
    while busy >= threshold and time.perf_counter() - t0 < limit:
        busy = others_busy(2.0)
    QUIET_WAITS.append(time.perf_counter() - t0)
    return busy


def median(xs: Sequence[float]) -> float:
    return float(statistics.median(xs)) if xs else float("nan")


# ----------------------------------------------------------------------------- problems
@dataclass
class Problem:
    name: str
    G: nn.Module
    D: nn.Module
    batches: list[tuple[Tensor, Tensor]]


def make_problem(name: str, n_batches: int, seed: int = 0) -> Problem:
    torch.manual_seed(seed)
    if name == "mlp":
        G, D = build_models("mlp", (2,), 2)
        data, batch = build_dataset("ring"), 256
    elif name == "dcgan28":
        G, D = build_models("dcgan28", (1, 28, 28), 100, scale=1.0)
        data, batch = build_dataset("mnist-t10k", resolution=28), 64
    else:
        raise ValueError(name)
    data_gen, noise_gen = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed + 1)
    batches = [(data.sample(batch, data_gen), torch.randn(batch, G.z_dim, generator=noise_gen))
               for _ in range(n_batches)]
    return Problem(name, G, D, batches)


def closure_for(G: nn.Module, D: nn.Module, loss_fn: Callable, real: Tensor, z: Tensor) -> Callable[[], list[Tensor]]:
    """As the trainer's (``saddlepoint.training.loop.Trainer.closure_for``), without penalties."""

    def closure() -> list[Tensor]:
        fake = G(z)
        d_fake = D(fake)
        d_real = D(real)
        loss_g, loss_d = loss_fn(d_real, d_fake)
        return [loss_g, loss_d]

    return closure


class Evaluator:
    """Re-evaluates a closure with the RNG state and buffers of its first call (what the optimizers' step
    framework guarantees), for using :class:`GameDerivatives` directly."""

    def __init__(self, closure: Callable[[], list[Tensor]], buffers: Sequence[Tensor]) -> None:
        self.closure, self.buffers = closure, list(buffers)
        self.rng = torch.get_rng_state()
        self.saved = [b.detach().clone() for b in self.buffers]

    def __call__(self) -> list[Tensor]:
        torch.set_rng_state(self.rng)
        with torch.no_grad():
            for b, s in zip(self.buffers, self.saved):
                b.copy_(s)
        return list(self.closure())


# ----------------------------------------------------------------------------- part 1: step times
@dataclass
class Variant:
    label: str
    method: str
    loss: str = "ns"
    hp: dict[str, Any] = field(default_factory=dict)


def variants_for(problem: str) -> list[Variant]:
    """Every registered method with its defaults (first-order: simultaneous), plus second-order variants."""
    out = []
    dcgan = problem == "dcgan28"
    # a practical tolerance on DCGAN-28 (the default 1e-5 takes 40-100 Krylov iterations per step there)
    solve = {"tol": 1e-2} if dcgan else {}
    cap = {"max_iter": 10} if (dcgan and QUICK) else {}
    for name in OPTIMIZERS.names():
        if name in ("cgd", "acgd"):
            if not (dcgan and QUICK):
                out.append(Variant(f"{name} ns", name, "ns", {**solve, **cap}))
            out.append(Variant(f"{name} minimax", name, "minimax", {**solve, **cap}))
        else:
            out.append(Variant(name, name, "ns"))
    if not QUICK:
        if dcgan:
            out.append(Variant("acgd minimax tol 1e-3", "acgd", "minimax", {"tol": 1e-3}))
        out.append(Variant("consensus hvp=fd", "consensus", "ns", {"hvp": "fd"}))
        out.append(Variant("sga hvp=fd", "sga", "ns", {"hvp": "fd"}))
        out.append(Variant("cgd minimax hvp=fd", "cgd", "minimax", {**solve, "hvp": "fd"}))
        for name in ("cgd", "acgd"):  # D_yx·u by double backpropagation instead of the (default) forward pass
            out.append(Variant(f"{name} minimax forward_mode=false", name, "minimax",
                               {**solve, "forward_mode": False}))
    return out


def paper_products(method: str, hp: dict[str, Any], solve: dict[str, Any]) -> int | None:
    """Second-derivative products per step allowed by the method's paper (REFERENCES.md, "Game optimizers")."""
    if method == "consensus":
        return 1  # Mescheder et al. 2017: one Jᵀξ
    if method == "sga":
        return 2  # Balduzzi et al. 2018: Jξ and Jᵀξ
    if method in NEWTON_TYPE:
        return newton_paper_products(method, hp, solve)
    if method not in ("cgd", "acgd"):
        return 0
    k = int(solve.get("iterations", 0))
    warm = bool(hp.get("warm_start", method == "acgd"))
    if solve.get("zero_sum", True):
        # 2 for the right-hand side, 2 per CG iteration, 1 to recover the other step, 2 for a warm-start residual
        return 3 + 2 * k + (2 if warm else 0)
    # GMRES on the block system (the CGDs package's GACGD): 2 per iteration, 2 per explicit residual
    restart = int(hp.get("restart", 20))
    return 2 * k + 2 * ((max(k, 1) - 1) // restart + (1 if warm else 0))


def newton_paper_products(method: str, hp: dict[str, Any], solve: dict[str, Any]) -> int | None:
    """Products per step of the Newton-type methods' references for the same Krylov iterations: a damped solve
    costs k (direct system; Martens 2010, one curvature product per CG iteration) or 1 + 2k (normal equations, the
    Follow-the-Ridge and min-max-2nd-order codes); Follow-the-Ridge and GDN add 1 for G_yx·Δx (the papers'
    equation; their codes spend two gradients instead) and Follow-the-Ridge's adaptive damping 1 (the code's H·c).
    Complete Newton: none (its code multiplies by the Hessian of one loss, one product, where a general-sum M·v
    takes one per player)."""
    if method == "complete-newton":
        return None
    defaults = OPTIMIZERS.get(method).defaults
    normal = hp.get("system", defaults["system"]) == "normal"
    solves = [v for v in solve.values() if isinstance(v, dict)]
    total = sum((1 + 2 * int(v.get("iterations", 0)) if normal else int(v.get("iterations", 0)))
                for v in solves if v.get("products", 0))
    if method in ("follow-ridge", "gdn"):
        total += 1 + (1 if method == "follow-ridge" and hp.get("adapt_damping", defaults["adapt_damping"]) else 0)
    return total


def krylov_iterations(solve: dict[str, Any]) -> int:
    """Krylov iterations of a Newton-type step, over its solves."""
    return sum(int(v.get("iterations", 0)) for v in solve.values() if isinstance(v, dict))


class Runner:
    def __init__(self, variant: Variant, problem: Problem) -> None:
        self.v = variant
        self.G, self.D = copy.deepcopy(problem.G), copy.deepcopy(problem.D)
        self.loss_fn = LOSSES.get(variant.loss)
        self.opt = build(variant.method, [list(self.G.parameters()), list(self.D.parameters())],
                         buffers=[*self.G.buffers(), *self.D.buffers()], **variant.hp)
        self.times: list[float] = []
        self.counts: list[dict[str, int]] = []
        self.solves: list[dict[str, Any]] = []
        self.first: dict[str, Any] = {}
        self.failed: str | None = None
        self.pair_adam: list[float] = []  # the partner Adam step timed next to each of this variant's steps

    def step(self, real: Tensor, z: Tensor, seed: int, record: bool) -> None:
        if self.failed:
            return
        closure: Callable[[], Any] = closure_for(self.G, self.D, self.loss_fn, real, z)
        if self.opt.wants_pushforward:  # forward_mode: the trainer's closure, which declares G's samples
            closure = GANClosure(self.G, self.D, self.loss_fn, [], real, z, {}, pushforward=True)
        torch.manual_seed(seed)  # same dropout masks for every variant in a round
        before = dict(self.opt.counts)
        t0 = time.perf_counter()
        try:
            losses = self.opt.step(closure)
        except Exception as exc:  # record, keep benchmarking the others
            self.failed = f"{type(exc).__name__}: {exc}"
            return
        dt = time.perf_counter() - t0
        delta = {k: self.opt.counts[k] - before.get(k, 0) for k in self.opt.counts}
        solve = dict(getattr(self.opt, "last_solve", {}) or {})
        if not all(math.isfinite(x) for x in losses):
            self.failed = f"non-finite losses {losses}"
        if not self.first:
            self.first = {"seconds": dt, "counts": delta, "solve": solve}
        if record:
            self.times.append(dt)
            self.counts.append(delta)
            self.solves.append(solve)

    def summary(self, adam: float | None) -> dict[str, Any]:
        out: dict[str, Any] = {"method": self.v.method, "loss": self.v.loss, "hp": self.v.hp}
        if self.failed:
            out["failed"] = self.failed
        if not self.times:
            return out
        med, mean = median(self.times), statistics.fmean(self.times)
        out.update(seconds_median=med, seconds_mean=mean, seconds=self.times, steps=len(self.times))
        if adam:
            out.update(ratio_of_medians=med / adam, ratio_of_means=mean / adam)
        if len(self.pair_adam) == len(self.times):
            pairs = [t / a for t, a in zip(self.times, self.pair_adam)]
            out.update(ratio_to_adam=median(pairs), paired_ratios=pairs)
        keys = sorted({k for c in self.counts for k in c})
        out["counts_per_step"] = {k: median([c.get(k, 0) for c in self.counts]) for k in keys}
        out["counts_per_step_max"] = {k: max(c.get(k, 0) for c in self.counts) for k in keys}
        out["first_step"] = self.first
        if self.v.method in ("cgd", "acgd"):
            its = [int(s.get("iterations", 0)) for s in self.solves]
            out["solver"] = "CG" if self.solves and self.solves[-1].get("zero_sum") else "GMRES"
            out["iterations"] = its
            out["iterations_median"] = median(its)
            out["converged"] = [bool(s.get("converged", True)) for s in self.solves]
        if self.v.method in NEWTON_TYPE:
            its = [krylov_iterations(s) for s in self.solves]
            out["iterations"] = its
            out["iterations_median"] = median(its)
        if self.v.method in SECOND_ORDER:
            bounds = [paper_products(self.v.method, self.v.hp, s) for s in self.solves]
            used = [c.get("hvp", 0) for c in self.counts]
            out["paper_products_per_step"] = bounds
            out["products_per_step"] = used
            out["within_paper_count"] = all(u <= b for u, b in zip(used, bounds) if b is not None)
        return out


def part_steps(problem_name: str) -> dict[str, Any]:
    dcgan = problem_name == "dcgan28"
    warmup, rounds = (1, 2) if QUICK and dcgan else (2, 5) if QUICK else (2, 9) if dcgan else (3, 15)
    problem = make_problem(problem_name, warmup + rounds)
    runners = [Runner(v, problem) for v in variants_for(problem_name) if not ONLY or v.label in ONLY | {"adam"}]
    # a second simultaneous-Adam runner steps right next to every variant step (before it in even rounds, after
    # it in odd ones): the ratio of each adjacent pair sees the same machine load, even when load comes in bursts
    partner = Runner(Variant("adam (partner)", "adam"), problem)
    log(f"\n[steps] {problem_name}: {len(runners)} variants, {warmup} warm-up + {rounds} timed rounds")
    loads = []
    others = []
    for r in range(warmup + rounds):
        others.append(wait_quiet())
        t0 = time.perf_counter()
        real, z = problem.batches[r]
        shift = r % len(runners)
        order = runners[shift:] + runners[:shift]
        if r % 2:
            order = order[::-1]
        for runner in order:
            n_before = len(runner.times)
            for x in ((partner, runner) if r % 2 == 0 else (runner, partner)):
                x.step(real, z, seed=1000 + r, record=r >= warmup)
            if len(runner.times) > n_before:
                runner.pair_adam.append(partner.times[-1])
        loads.append(load())
        log(f"  round {r + 1}/{warmup + rounds}: {time.perf_counter() - t0:.1f} s, other processes before it "
            f"{others[-1]:.2f} cores, load average after {loads[-1]:.2f}")
    adam = next(x for x in runners if x.v.label == "adam")
    adam_med = median(adam.times)
    table = {x.v.label: x.summary(adam_med) for x in runners}
    return {"problem": problem_name, "warmup_rounds": warmup, "timed_rounds": rounds, "load_per_round": loads,
            "other_processes_cores_before_round": others,
            "adam_seconds_median": adam_med, "partner_adam_seconds_median": median(partner.times),
            "variants": table}


def print_steps(res: dict[str, Any]) -> None:
    log(f"\n{res['problem']}: step time ÷ simultaneous Adam ({res['adam_seconds_median'] * 1e3:.1f} ms); ÷Adam: "
        f"median over {res['timed_rounds']} rounds of the ratio to the Adam step timed next to it")
    log(f"  {'variant':24s} {'ms':>9s} {'÷Adam':>7s} {'med÷med':>7s} {'closure':>7s} {'grad':>5s} {'prod':>6s} "
        f"{'iters':>6s} {'≤paper':>6s}")
    for label, s in res["variants"].items():
        if "seconds_median" not in s:
            log(f"  {label:24s} FAILED {s.get('failed')}")
            continue
        c = s["counts_per_step"]
        its = f"{s['iterations_median']:.0f}" if "iterations_median" in s else ""
        ok = "" if "within_paper_count" not in s else ("yes" if s["within_paper_count"] else "NO")
        log(f"  {label:24s} {s['seconds_median'] * 1e3:9.1f} {s['ratio_to_adam']:7.2f} "
            f"{s['ratio_of_medians']:7.2f} {c.get('closure', 0):7.0f} {c.get('grad', 0):5.0f} "
            f"{c.get('hvp', 0):6.0f} {its:>6s} {ok:>6s}")


# ----------------------------------------------------------------------------- part 2: product costs
def part_products(problem_name: str, reps: int) -> dict[str, Any]:
    problem = make_problem(problem_name, 1)
    G, D = problem.G, problem.D
    real, z = problem.batches[0]
    buffers = [*G.buffers(), *D.buffers()]
    torch.manual_seed(7)
    ev = Evaluator(closure_for(G, D, LOSSES.get("ns"), real, z), buffers)
    pg, pd = list(G.parameters()), list(D.parameters())
    allp = pg + pd
    gen = torch.Generator().manual_seed(3)
    v_d = [torch.randn(p.shape, generator=gen) for p in pd]
    u_g = [torch.randn(p.shape, generator=gen) for p in pg]
    w = [torch.randn(p.shape, generator=gen) for p in allp]

    # Every forward pass updates BatchNorm's running statistics in place, which invalidates the graphs of earlier
    # evaluations (their double backward saves them); so the exact products are timed in their own group, on a
    # gradient-with-graph taken just before (as within one optimizer step), after the self-contained operations.
    d_fd = GameDerivatives([pg, pd], ev(), evaluate=ev, mode="fd")
    full_fd = GameDerivatives([allp], [ev()[1]], evaluate=lambda: [ev()[1]], mode="fd")

    def hvp_fresh() -> None:
        g = torch.autograd.grad(ev()[1], allp, create_graph=True)
        torch.autograd.grad(g, allp, w)

    ops: dict[str, Callable[[], Any]] = {
        "forward": lambda: ev(),
        "gradient": lambda: torch.autograd.grad(ev()[1], allp),
        "gradient_with_graph": lambda: torch.autograd.grad(ev()[1], allp, create_graph=True),
        "gradient_D_only": lambda: torch.autograd.grad(ev()[1], pd),
        "gradient_G_only": lambda: torch.autograd.grad(ev()[0], pg),
        "hvp_exact_fresh": hvp_fresh,
        "mixed_fd_Dxy_v": lambda: d_fd.mixed(1, 0, 1, v_d),
        "mixed_fd_Dyx_u": lambda: d_fd.mixed(1, 1, 0, u_g),
        "hvp_fd": lambda: full_fd.mixed(0, 0, 0, w),
    }
    names = list(ops)
    exact_names = ["mixed_exact_Dxy_v", "mixed_exact_Dyx_u", "hvp_exact_second_backward"]
    times: dict[str, list[float]] = {k: [] for k in names + exact_names}
    warm = 1 if QUICK else 2

    def timed(key: str, fn: Callable[[], Any], keep: bool) -> None:
        t0 = time.perf_counter()
        fn()
        if keep:
            times[key].append(time.perf_counter() - t0)

    for r in range(warm + reps):
        wait_quiet()
        keep = r >= warm
        for k in names[r % len(names):] + names[: r % len(names)]:
            timed(k, ops[k], keep)
        d_ex = GameDerivatives([pg, pd], ev(), mode="exact")
        d_ex.prepare(1, [0, 1])  # ∇L_D w.r.t. both players with graph, cached
        pair = [("mixed_exact_Dxy_v", partial(d_ex.mixed, 1, 0, 1, v_d)),  # ∇_G(∇_D L_D · v)
                ("mixed_exact_Dyx_u", partial(d_ex.mixed, 1, 1, 0, u_g))]  # ∇_D(∇_G L_D · u)
        for k, fn in (pair if r % 2 == 0 else pair[::-1]):
            timed(k, fn, keep)
        full_ex = GameDerivatives([allp], [ev()[1]], mode="exact")
        full_ex.prepare(0, [0])
        timed("hvp_exact_second_backward", partial(full_ex.mixed, 0, 0, 0, w), keep)
    med = {k: median(v) for k, v in times.items()}
    g = med["gradient"]
    ratio = {k: v / g for k, v in med.items()}
    mixed = 0.5 * (med["mixed_exact_Dxy_v"] + med["mixed_exact_Dyx_u"])
    graph_extra = med["gradient_with_graph"] - med["gradient"]
    amortised = {f"k={k}": (mixed + max(graph_extra, 0.0) / k) / g for k in (1, 10, 40)}
    return {
        "problem": problem_name,
        "unit": "one gradient = forward (closure) + one backward pass of L_D w.r.t. all parameters, no graph",
        "reps": reps,
        "seconds_median": med,
        "ratio_to_gradient": ratio,
        "mixed_exact_mean_of_both_directions": mixed / g,
        "mixed_fd_mean_of_both_directions": 0.5 * (med["mixed_fd_Dxy_v"] + med["mixed_fd_Dyx_u"]) / g,
        "graph_extra_over_gradient": graph_extra / g,
        "mixed_exact_amortised_with_graph_extra_over_k_products": amortised,
        "hvp_exact_full_fresh": med["hvp_exact_fresh"] / g,
        "hvp_fd": med["hvp_fd"] / g,
    }


def print_products(res: dict[str, Any]) -> None:
    r = res["ratio_to_gradient"]
    log(f"\n{res['problem']}: cost ÷ one gradient ({res['seconds_median']['gradient'] * 1e3:.1f} ms; "
        f"{res['unit']})")
    for k, v in r.items():
        log(f"  {k:28s} {v:6.2f}   ({res['seconds_median'][k] * 1e3:8.1f} ms)")
    log("  exact mixed product amortised (graph extra spread over k products): "
        + ", ".join(f"{k}: {v:.2f}" for k, v in res["mixed_exact_amortised_with_graph_extra_over_k_products"].items()))


# ----------------------------------------------------------------------------- part 2b: D_yx·u alternatives
def part_dyx(reps: int) -> dict[str, Any]:
    """D_yx·u = ∇_D(∇_G L_D·u) on DCGAN-28 five ways, ÷ one gradient. The generator reaches every loss only through
    its samples x̃ = G(z), so D_yx·u = ∇_D⟨∇_x̃ L_D, J_G u⟩ with the image-space tangent J_G u independent of D:
    (a) today's product, a backward pass through the graph of ∇_G L_D; (b) J_G u reverse-over-reverse through G's
    backward graph; (c) J_G u by forward mode (``torch.func.jvp``, primal recomputed; what ``forward_mode`` uses
    when G is not a chain of standard layers); (d) by ``torch.func.linearize`` (tangent only; its tracing is paid
    once per point, reported separately); (e) by the tangent-only pass over the recorded forward pass
    (:mod:`saddlepoint.games.tangents`, what ``forward_mode`` uses on DCGAN-28; its set-up — G's forward with
    the recording hooks, the checks and the first product, which builds the per-layer caches — is reported next
    to a plain forward of G). All agree (relative difference printed)."""
    from torch.func import functional_call, jvp, linearize

    problem = make_problem("dcgan28", 1)
    G, D = problem.G, problem.D
    real, z = problem.batches[0]
    loss_fn = LOSSES.get("ns")
    pg, pd = list(G.parameters()), list(D.parameters())
    u = [torch.randn(p.shape, generator=torch.Generator().manual_seed(3)) for p in pg]
    names = [n for n, _ in G.named_parameters()]
    buffers = {n: b.detach().clone() for n, b in G.named_buffers()}

    def loss_d(fake: Tensor) -> Tensor:
        torch.manual_seed(11)  # the same dropout masks in D for every evaluation
        return loss_fn(D(real), D(fake))[1]

    def gradient() -> Any:
        return torch.autograd.grad(loss_d(G(z)), pg + pd)

    g_graph = torch.autograd.grad(loss_d(G(z)), pg, create_graph=True)
    fake = G(z)
    leaf = fake.detach().requires_grad_(True)
    grad_image = torch.autograd.grad(loss_d(leaf), leaf, create_graph=True)[0]
    w = torch.zeros_like(fake, requires_grad=True)
    g_w = torch.autograd.grad(fake, pg, w, create_graph=True)

    def g_of(ps: dict[str, Tensor]) -> Tensor:
        return functional_call(G, (ps, {n: b.clone() for n, b in buffers.items()}), (z,))

    params = {n: p.detach() for n, p in G.named_parameters()}
    tangent = dict(zip(names, u, strict=True))
    t0 = time.perf_counter()
    _, lin = linearize(g_of, params)
    linearize_first = time.perf_counter() - t0

    def through_image(t: Tensor) -> Any:
        return torch.autograd.grad(grad_image, pd, t, retain_graph=True)

    def chain_setup() -> Any:
        with ChainRecorder(G) as recorder:
            out = G(z)
        linear = recorder.linearize(z, out, pg)
        assert linear is not None, recorder.problem
        linear.jvp(u)
        return linear

    def g_forward() -> Any:
        with torch.no_grad():
            return G(z)

    chain = chain_setup()

    ops: dict[str, Callable[[], Any]] = {
        "gradient": gradient,
        "a_current": lambda: torch.autograd.grad(g_graph, pd, u, retain_graph=True),
        "b_reverse_over_reverse_G": lambda: through_image(torch.autograd.grad(g_w, w, u, retain_graph=True)[0]),
        "c_forward_mode_jvp": lambda: through_image(jvp(g_of, (params,), (tangent,))[1]),
        "d_linearized": lambda: through_image(lin(tangent)),
        "d_linearize_tracing": lambda: linearize(g_of, params),
        "e_chain_tangent": lambda: through_image(chain.jvp(u)),
        "e_chain_setup": chain_setup,
        "g_forward": g_forward,
    }
    ref = flatten(ops["a_current"]())
    agreement = {k: float((flatten(ops[k]()) - ref).norm() / ref.norm())
                 for k in ("b_reverse_over_reverse_G", "c_forward_mode_jvp", "d_linearized", "e_chain_tangent")}
    times: dict[str, list[float]] = {k: [] for k in ops}
    keys = list(ops)
    for r in range(reps + 1):
        wait_quiet()
        for k in keys[r % len(keys):] + keys[: r % len(keys)]:
            t = time.perf_counter()
            ops[k]()
            if r:
                times[k].append(time.perf_counter() - t)
    grad_s = median(times["gradient"])
    return {"problem": "dcgan28", "reps": reps, "relative_difference_to_current": agreement,
            "linearize_first_call_seconds": linearize_first,
            "seconds_median": {k: median(v) for k, v in times.items()},
            "ratio_to_gradient": {k: median(v) / grad_s for k, v in times.items()}}


def print_dyx(res: dict[str, Any]) -> None:
    log(f"\nD_yx·u on DCGAN-28 ÷ one gradient ({res['seconds_median']['gradient'] * 1e3:.1f} ms):")
    for k, v in res["ratio_to_gradient"].items():
        diff = res["relative_difference_to_current"].get(k)
        log(f"  {k:28s} {v:6.2f}" + (f"   (relative difference to a_current {diff:.1e})" if diff is not None else ""))


# ----------------------------------------------------------------------------- part 3: fd accuracy
def swap_activations(module: nn.Module, factory: Callable[[], nn.Module]) -> nn.Module:
    for name, child in module.named_children():
        if isinstance(child, (nn.ReLU, nn.LeakyReLU)):
            setattr(module, name, factory())
        else:
            swap_activations(child, factory)
    return module


def fd_models(quick: bool) -> list[tuple[str, Callable[[], tuple[nn.Module, nn.Module]], str]]:
    def mlp(act: str) -> Callable[[], tuple[nn.Module, nn.Module]]:
        def make() -> tuple[nn.Module, nn.Module]:
            torch.manual_seed(0)
            base = "relu" if act == "softplus" else act
            G, D = build_models("mlp", (2,), 2, depth=2, width=64, activation=base)
            if act == "softplus":
                swap_activations(G, nn.Softplus)
                swap_activations(D, nn.Softplus)
            return G, D
        return make

    def dcgan(smooth: bool) -> Callable[[], tuple[nn.Module, nn.Module]]:
        def make() -> tuple[nn.Module, nn.Module]:
            torch.manual_seed(0)
            G, D = build_models("dcgan28", (1, 28, 28), 100, scale=1.0)
            if smooth:
                swap_activations(G, nn.Softplus)
                swap_activations(D, nn.Softplus)
            return G, D
        return make

    out = [(f"mlp-{a}", mlp(a), "mlp") for a in ("relu", "leaky_relu", "tanh", "softplus")]
    out.append(("dcgan28-leaky_relu", dcgan(False), "dcgan28"))
    if not quick:
        out.append(("dcgan28-softplus", dcgan(True), "dcgan28"))
    return out


def part_fd() -> dict[str, Any]:
    eps_list = [1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7]
    dtypes = [torch.float32, torch.float64]
    n_dirs = 2
    products = {
        "mixed_Dxy": (1, 0, 1),  # ∇_G(∇_D L_D · v): the CGD coupling block
        "hvp_D": (1, 1, 1),  # D's own Hessian of L_D
        "hvp_G": (0, 0, 0),  # G's own Hessian of L_G
    }
    rows: list[dict[str, Any]] = []
    for label, make, kind in fd_models(QUICK):
        for dtype in dtypes:
            eps_here = eps_list
            if QUICK and kind == "dcgan28":
                if dtype == torch.float64:
                    continue
                eps_here = [1e-1, 1e-3, 1e-5]
            G, D = make()
            G, D = G.to(dtype), D.to(dtype)
            problem = make_problem("mlp" if kind == "mlp" else "dcgan28", 1)
            real, z = (t.to(dtype) for t in problem.batches[0])
            torch.manual_seed(11)
            ev = Evaluator(closure_for(G, D, LOSSES.get("ns"), real, z), [*G.buffers(), *D.buffers()])
            players = [list(G.parameters()), list(D.parameters())]
            exact = GameDerivatives(players, ev(), mode="exact")
            exact.prepare(0, [0])
            exact.prepare(1, [0, 1])
            gen = torch.Generator().manual_seed(5)
            t0 = time.perf_counter()
            dirs, refs = {}, {}
            for pname, (k, a, b) in products.items():  # every exact product before any new evaluation
                dirs[pname] = [[torch.randn(p.shape, generator=gen, dtype=torch.float64).to(dtype)
                                for p in players[b]] for _ in range(1 if QUICK and kind == "dcgan28" else n_dirs)]
                refs[pname] = [flatten(exact.mixed(k, a, b, v)).double() for v in dirs[pname]]
            del exact
            for pname, (k, a, b) in products.items():
                for eps in [*eps_here, None]:
                    fd = GameDerivatives(players, ev(), evaluate=ev, mode="fd", eps_rel=eps)
                    errs = []
                    for v, ref in zip(dirs[pname], refs[pname]):
                        got = flatten(fd.mixed(k, a, b, v)).double()
                        errs.append(float(torch.linalg.vector_norm(got - ref) / torch.linalg.vector_norm(ref)))
                    rows.append({"model": label, "dtype": str(dtype).replace("torch.", ""), "product": pname,
                                 "eps_rel": eps if eps is not None else default_fd_eps(dtype),
                                 "default_eps": eps is None, "rel_error_median": median(errs), "rel_errors": errs})
            log(f"  fd accuracy {label} {dtype}: {time.perf_counter() - t0:.1f} s")
    return {"eps_rel": eps_list, "directions": n_dirs, "reference": "exact (double backprop) product in the same "
            "dtype, same batch, noise and dropout masks; error = ‖fd − exact‖ / ‖exact‖, median over random "
            "N(0, 1) directions", "rows": rows}


def print_fd(res: dict[str, Any]) -> None:
    eps_list = res["eps_rel"]
    log("\nfinite-difference relative error ‖fd − exact‖/‖exact‖ (median over directions)")
    log(f"  {'model':20s} {'dtype':8s} {'product':10s} " + " ".join(f"{e:>8.0e}" for e in eps_list)
        + f" {'default':>16s}")
    keys = []
    for r in res["rows"]:
        key = (r["model"], r["dtype"], r["product"])
        if key not in keys:
            keys.append(key)
    for key in keys:
        rs = [r for r in res["rows"] if (r["model"], r["dtype"], r["product"]) == key]
        by_eps = {r["eps_rel"]: r["rel_error_median"] for r in rs if not r["default_eps"]}
        default = next((r for r in rs if r["default_eps"]), None)
        cells = " ".join(f"{by_eps[e]:8.1e}" if e in by_eps else f"{'':8s}" for e in eps_list)
        d = f"{default['rel_error_median']:8.1e}@{default['eps_rel']:.0e}" if default else ""
        log(f"  {key[0]:20s} {key[1]:8s} {key[2]:10s} {cells} {d:>16s}")


# ----------------------------------------------------------------------------- part 4: CGDs package
def part_cgds(settings: list[tuple[float, float, float]], warmup: int, steps: int) -> dict[str, Any]:
    sys.path.insert(0, args.cgds_path)
    info: dict[str, Any] = {"path": args.cgds_path}
    try:
        import CGDs  # type: ignore[import-not-found]
        from CGDs import acgd as cgds_acgd  # type: ignore[import-not-found]
        from CGDs import cgd_utils  # type: ignore[import-not-found]
    except Exception as exc:
        info["error"] = f"cannot import CGDs from {args.cgds_path}: {type(exc).__name__}: {exc}"
        return info
    info["version"] = _dist_version()

    # count their products and CG iterations without touching their arithmetic
    tally = {"hvp": 0, "iters": 0}
    hvp_orig, gcg_orig = cgd_utils.Hvp_vec, cgds_acgd.general_conjugate_gradient

    def hvp_counted(*a: Any, **k: Any) -> Tensor:
        tally["hvp"] += 1
        return hvp_orig(*a, **k)

    def gcg_counted(*a: Any, **k: Any) -> Any:
        x, it = gcg_orig(*a, **k)
        tally["iters"] = it
        return x, it

    cgd_utils.Hvp_vec = hvp_counted
    cgds_acgd.Hvp_vec = hvp_counted
    cgds_acgd.general_conjugate_gradient = gcg_counted

    lr, beta = 1e-3, 0.99
    info.update(krylov=KRYLOV)
    info.update(model="dcgan28 scale 1", batch=64, loss="minimax (zero-sum; CGDs ACGD takes one loss f = L_D, "
                "G maximises it, D minimises it)", lr=lr, beta=beta,
                eps_note="eps 1e-8 is our default, 1e-5 the CGDs default; both sides use the same in each run",
                tolerance_conversion="CGDs: ‖r‖² < tol·‖b‖² or ‖r‖² < atol; ours: ‖r‖ ≤ max(tol·‖b‖, atol) → "
                "our tol = √(their tol), our atol = √(their atol)", runs=[])
    for their_tol, their_atol, eps in settings:
        problem = make_problem("dcgan28", warmup + steps, seed=0)
        th_g, th_d = copy.deepcopy(problem.G), copy.deepcopy(problem.D)
        ours_models, ours_opts = {}, {}
        for kr in KRYLOV:
            og, od = copy.deepcopy(problem.G), copy.deepcopy(problem.D)
            ours_models[kr] = (og, od)
            ours_opts[kr] = build("acgd", [list(og.parameters()), list(od.parameters())],
                                  buffers=[*og.buffers(), *od.buffers()], lr=lr, beta=beta, eps=eps,
                                  tol=math.sqrt(their_tol), atol=math.sqrt(their_atol), max_iter=1000,
                                  zero_sum=True, krylov=kr.split("+")[0], warm_start="+cold" not in kr,
                                  forward_mode="+fwd" in kr)
        theirs = CGDs.ACGD(max_params=th_g.parameters(), min_params=th_d.parameters(), lr_max=lr, lr_min=lr,
                           eps=eps, beta=beta, tol=their_tol, atol=their_atol)
        loss_fn = LOSSES.get("minimax")
        rec: dict[str, Any] = {"date": time.strftime("%Y-%m-%d"), "krylov": list(KRYLOV), "closure": "GANClosure",
                               "eps": eps, "cgds_tol": their_tol, "cgds_atol": their_atol,
                               "our_tol": math.sqrt(their_tol), "our_atol": math.sqrt(their_atol),
                               "cgds_seconds": [], "cgds_iterations": [], "cgds_products": []}
        for kr in KRYLOV:
            for key in ("seconds", "iterations", "products", "grads"):
                rec[f"{kr}_{key}"] = []
        who_order = [*KRYLOV, "cgds"]
        log(f"\n[cgds] their tol {their_tol:g} (ours {math.sqrt(their_tol):g}), eps {eps:g}")
        try:
            for s in range(warmup + steps):
                wait_quiet()
                real, z = problem.batches[s]
                shift = s % len(who_order)  # rotate the order every step
                for who in who_order[shift:] + who_order[:shift]:
                    torch.manual_seed(2000 + s)  # same dropout masks for all
                    if who != "cgds":
                        ours, (ours_g, ours_d) = ours_opts[who], ours_models[who]
                        c0 = dict(ours.counts)
                        t0 = time.perf_counter()
                        ours.step(GANClosure(ours_g, ours_d, loss_fn, [], real, z, {},  # the trainer's
                                             pushforward=ours.wants_pushforward))
                        dt = time.perf_counter() - t0
                        sample = [dt, int(ours.last_solve.get("iterations", 0)), ours.counts["hvp"] - c0["hvp"]]
                        if s >= warmup:
                            rec[f"{who}_grads"].append(ours.counts["grad"] - c0["grad"])
                    else:
                        tally.update(hvp=0, iters=0)
                        t0 = time.perf_counter()
                        theirs.zero_grad()
                        _, loss_d = closure_for(th_g, th_d, loss_fn, real, z)()
                        theirs.step(loss_d)
                        dt = time.perf_counter() - t0
                        sample = [dt, int(tally["iters"]), int(tally["hvp"])]
                    if s >= warmup:
                        for key, value in zip(("seconds", "iterations", "products"), sample):
                            rec[f"{who}_{key}"].append(value)
                its = ", ".join(f"{kr} {ours_opts[kr].last_solve.get('iterations')}" for kr in KRYLOV)
                log(f"  step {s + 1}/{warmup + steps}: ours {its} it, CGDs {tally['iters']} it, load {load():.2f}")
        except Exception as exc:
            rec["error"] = f"{type(exc).__name__}: {exc}"
        if rec["cgds_seconds"]:
            rec["cgds_seconds_median"] = median(rec["cgds_seconds"])
        for kr in KRYLOV:
            if rec[f"{kr}_seconds"] and rec["cgds_seconds"]:
                rec[f"ratio_{kr}_to_cgds"] = median(rec[f"{kr}_seconds"]) / median(rec["cgds_seconds"])
                # each step's ratio to the CGDs step timed next to it (same batch, same round)
                rec[f"paired_ratio_{kr}_to_cgds"] = median(
                    [a / b for a, b in zip(rec[f"{kr}_seconds"], rec["cgds_seconds"], strict=True)])
                rec[f"{kr}_seconds_median"] = median(rec[f"{kr}_seconds"])
        info["runs"].append(rec)
    cgd_utils.Hvp_vec, cgds_acgd.Hvp_vec, cgds_acgd.general_conjugate_gradient = hvp_orig, hvp_orig, gcg_orig
    return info


def _dist_version() -> str:
    for p in Path(args.cgds_path).glob("CGDs-*.dist-info"):
        return p.name[len("CGDs-"): -len(".dist-info")]
    return "unknown"


def print_cgds(res: dict[str, Any]) -> None:
    if "error" in res:
        log(f"\nCGDs comparison not run: {res['error']}")
        return
    log(f"\nACGD ÷ CGDs {res.get('version')} ACGD (DCGAN-28, batch 64, minimax, lr {res['lr']}, beta {res['beta']})")
    for r in res["runs"]:
        if "cgds_seconds_median" not in r:
            log(f"  tol {r['cgds_tol']:g}: {r.get('error', 'no timed steps')}")
            continue
        log(f"  eps {r['eps']:g}, CGDs tol {r['cgds_tol']:g} = our tol {r['our_tol']:g}: CGDs "
            f"{r['cgds_seconds_median']:.2f} s ({median(r['cgds_iterations']):.0f} it, "
            f"{median(r['cgds_products']):.0f} products)" + (f"  [{r['error']}]" if "error" in r else ""))
        for kr in res.get("krylov", ["cg"]):
            if f"ratio_{kr}_to_cgds" in r:
                log(f"    ours, krylov {kr}: {r[f'{kr}_seconds_median']:.2f} s ({median(r[f'{kr}_iterations']):.0f} "
                    f"it, {median(r[f'{kr}_products']):.0f} products): ratio of medians "
                    f"{r[f'ratio_{kr}_to_cgds']:.2f}, median paired ratio {r[f'paired_ratio_{kr}_to_cgds']:.2f}")


# ----------------------------------------------------------------------------- main
def git_state() -> dict[str, Any]:
    try:
        root = Path(__file__).resolve().parent.parent
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "src"], cwd=root, capture_output=True,
                               text=True).stdout.strip()
        return {"commit": head, "src_modified": bool(dirty)}
    except OSError:
        return {}


def main() -> None:
    t_start = time.perf_counter()
    result: dict[str, Any] = {
        "command": " ".join(["python benchmarks/bench_optim.py", *sys.argv[1:]]),
        "quick": QUICK,
        "threads": args.threads,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": str(torch.__version__),
        "machine": platform.machine(),
        "git": git_state(),
        "methods": OPTIMIZERS.names(),
        "load_at_start": load(),
        "notes": [
            "ratio_to_adam: median over the timed rounds of (step time ÷ the simultaneous-Adam step timed right "
            "next to it); ratio_of_medians: median step ÷ median step of the 'adam' variant; step times include "
            "the closure's forward passes; Adam uses the ns loss in every ratio",
            "first-order methods at their defaults (simultaneous scheme); lookahead: inner adam, k 5, alpha 0.5",
            "second-order on DCGAN-28: tol 1e-2 (relative residual norm; the CGDs package's 'tol 1e-4'), "
            "the default 1e-5 on the MLP; ns loss → GMRES (general sum), minimax loss → CG (zero-sum)",
            "counts per step are the medians of the optimizer's counts deltas: closure calls, gradients "
            "(backward passes of a loss), second-derivative products",
        ],
    }
    out = Path(args.out)
    if args.merge and out.exists():
        previous = json.loads(out.read_text(encoding="utf-8"))
        kept = {k: v for k, v in previous.items() if k in ("steps", "products", "dyx", "fd_accuracy", "cgds")}
        result = {**kept, **result, "merged_parts_from_run": previous.get("command")}

    def save() -> None:  # after every part, so an interrupted run keeps what it measured
        result["load_at_end"] = load()
        result["seconds_total"] = time.perf_counter() - t_start
        result["seconds_waiting_for_quiet"] = sum(QUIET_WAITS)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")

    if "steps" in PARTS:
        previous_steps = result.get("steps", {}) if ONLY else {}
        result["steps"] = {}
        for name in ("mlp", "dcgan28"):
            res = part_steps(name)
            print_steps(res)
            if name in previous_steps:  # --variants with --merge: replace those rows, keep the others
                kept = previous_steps[name]
                kept["variants"].update({k: v for k, v in res["variants"].items() if k in ONLY})
                kept.setdefault("remeasured", []).append({
                    "variants": sorted(ONLY), "date": time.strftime("%Y-%m-%d"), "command": result["command"],
                    "git": result["git"], "adam_seconds_median": res["adam_seconds_median"],
                    "timed_rounds": res["timed_rounds"]})
                res = kept
            result["steps"][name] = res
            save()
    if "products" in PARTS:
        result["products"] = {}
        for name in ("dcgan28", "mlp"):
            res = part_products(name, 2 if QUICK else 9)
            result["products"][name] = res
            print_products(res)
        save()
    if "dyx" in PARTS:
        result["dyx"] = part_dyx(3 if QUICK else 9)
        print_dyx(result["dyx"])
        save()
    if "fd" in PARTS:
        log("\n[fd accuracy]")
        result["fd_accuracy"] = part_fd()
        print_fd(result["fd_accuracy"])
        save()
    if "cgds" in PARTS and args.cgds and not QUICK:
        settings = [(float(t), 1e-20, float(e)) for t, e in (x.split(":") for x in args.cgds_settings.split(","))]
        earlier = result.get("cgds", {}).get("runs", []) if args.merge else []
        result["cgds"] = part_cgds(settings, warmup=2, steps=6)
        result["cgds"]["runs"] = [*earlier, *result["cgds"].get("runs", [])]  # --merge: earlier runs kept
        print_cgds(result["cgds"])
    elif "cgds" in PARTS and "cgds" not in result:
        result["cgds"] = {"skipped": "run with --cgds (and without --quick) to compare with the CGDs package"}
    save()
    log(f"\nwrote {out} ({result['seconds_total']:.0f} s)")

if __name__ == "__main__":
    main()
