"""The sampler registry, the common sampler machinery and the result every sampler returns.

A *sampler* draws from a trained pair (G, D) instead of G alone: it uses the discriminator's logit
d(x) = log D(x) − log(1 − D(x)), which for the optimal discriminator of a fixed G,
D*(x) = p_data(x) / (p_data(x) + p_G(x)), equals log p_data(x) − log p_G(x) (Goodfellow et al. 2014,
Prop. 1). Families (one file each, each registered in :data:`SAMPLERS` with its facts):

* ``drs`` — Discriminator Rejection Sampling (Azadi et al. 2019), :mod:`.drs`;
* ``mh`` — Metropolis–Hastings GAN, an independence chain over G's proposals (Turner et al. 2019), :mod:`.mh`;
* ``ddls`` — Discriminator-Driven Latent Sampling, Langevin dynamics on z (Che et al. 2020), :mod:`.ddls`.

Facts: ``label`` (the row name beside G: "G + DRS"), ``paper`` (citation), ``exact`` (samples follow p_data
when d is the exact log density ratio), ``needs_real`` (real samples are needed at sampling time, not only for
calibration), ``needs_calibration`` (the default options calibrate D before sampling; see :mod:`.calibrate`),
``summary`` (one line).

Every sampler is batched and seeded: the same options, weights and ``seed`` give the same samples (all
randomness comes from one ``torch.Generator``). Its cost is counted: G and D evaluations (one network
application to one sample; a Langevin step's backward pass is included in its evaluation) during sampling and,
apart, during the one-time preparation (calibration, pilot set).
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from .. import checks
from ..checks import Option
from ..errors import ConfigError
from ..registry import Registry
from . import calibrate

#: ``real(n, generator) -> Tensor``: n real samples drawn with ``generator`` (e.g. ``Dataset.sample``)
RealFn = Callable[[int, torch.Generator], Tensor]

SAMPLERS: Registry[type[Sampler]] = Registry("sampler")
"""``name → Sampler subclass``; facts: ``label``, ``paper``, ``exact``, ``needs_real``, ``needs_calibration``,
``summary``."""

#: options every sampler has
COMMON_OPTIONS: dict[str, Option] = {
    "batch_size": Option(1000, checks.positive_int, "samples (or chains) processed together"),
}


@dataclass
class RefineResult:
    """The samples of a refined sampler and what they cost.

    ``proposed``: generator samples drawn while sampling; ``accepted``: proposals accepted (DRS: kept,
    MH: moves of the chains, DDLS: every chain); ``g_evals``/``d_evals``: network evaluations while sampling;
    ``setup_g_evals``/``setup_d_evals``: those of the one-time preparation (0 when it was reused from disk).
    """

    sampler: str
    samples: Tensor
    proposed: int
    accepted: int
    g_evals: int
    d_evals: int
    setup_g_evals: int = 0
    setup_d_evals: int = 0
    wall_time: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.samples.shape[0])

    @property
    def acceptance_rate(self) -> float:
        """Accepted / proposed (DRS: kept share of G's samples; MH: share of proposals the chains moved to)."""
        return self.accepted / max(1, self.proposed)

    @property
    def g_per_sample(self) -> float:
        """Generator evaluations per kept sample (sampling only)."""
        return self.g_evals / max(1, self.n)

    @property
    def d_per_sample(self) -> float:
        """Discriminator evaluations per kept sample (sampling only)."""
        return self.d_evals / max(1, self.n)

    def cost(self) -> dict[str, Any]:
        """The cost as a flat JSON-ready mapping."""
        return {"n": self.n, "proposed": self.proposed, "accepted": self.accepted,
                "acceptance_rate": self.acceptance_rate, "g_evals": self.g_evals, "d_evals": self.d_evals,
                "g_per_sample": self.g_per_sample, "d_per_sample": self.d_per_sample,
                "setup_g_evals": self.setup_g_evals, "setup_d_evals": self.setup_d_evals,
                "wall_time": self.wall_time}


@dataclass
class Counts:
    """Running G and D evaluation counts."""

    g: int = 0
    d: int = 0


@contextlib.contextmanager
def eval_mode(*modules: nn.Module) -> Iterator[None]:
    """Put ``modules`` in eval mode (BatchNorm running statistics, no dropout) and restore their modes."""
    modes = [m.training for m in modules]
    try:
        for m in modules:
            m.eval()
        yield
    finally:
        for m, mode in zip(modules, modes):
            m.train(mode)


def progress_bar(total: int, name: str, enabled: bool | None) -> Any:
    """A tqdm bar on stderr over ``total`` samples; ``enabled`` None: only when stderr is a terminal."""
    from tqdm import tqdm

    if enabled is None:
        enabled = sys.stderr.isatty()
    return tqdm(total=total, desc=f"refine {name}", unit="sample", disable=not enabled, leave=False,
                dynamic_ncols=True)


def module_device(module: nn.Module) -> tuple[torch.device, torch.dtype]:
    """The device and floating dtype of ``module``'s first floating parameter or buffer (CPU and the default
    dtype if it has none)."""
    for t in (*module.parameters(), *module.buffers()):
        if t.is_floating_point():
            return t.device, t.dtype
    return torch.device("cpu"), torch.get_default_dtype()


class Sampler:
    """A discriminator-driven sampler over a trained generator ``G`` (z → x) and discriminator ``D`` (x → logit).

    ``options``: validated against :attr:`OPTIONS` (defaults filled; an unknown name or a wrong type is a
    :class:`ConfigError` naming ``refine.<key>``). ``real``: ``real(n, generator)`` drawing real samples, needed
    for calibration and by MH's chain start. ``cache_dir``: where the calibrated D and the preparation are saved
    and reused (:func:`.calibrate.load_cached`). ``z_dim``: the latent size (default ``G.z_dim``); latents are
    standard normal, as in training.

    Subclasses declare :attr:`OPTIONS`, :attr:`SETUP_KEYS` (the options the one-time preparation depends on),
    optionally :meth:`setup_extra` (e.g. the DRS pilot set) and implement :meth:`draw`.
    """

    name: ClassVar[str] = ""
    OPTIONS: ClassVar[Mapping[str, Option]] = COMMON_OPTIONS
    SETUP_KEYS: ClassVar[tuple[str, ...]] = calibrate.CALIBRATION_KEYS

    def __init__(self, G: nn.Module, D: nn.Module, options: Mapping[str, Any] | None = None, *,
                 real: RealFn | None = None, z_dim: int | None = None,
                 cache_dir: str | Path | None = None) -> None:
        self.options = check_options(self.name, options)
        self.G, self.D = G, D
        z_dim = getattr(G, "z_dim", None) if z_dim is None else z_dim
        if z_dim is None:
            raise ValueError(f"refine {self.name}: the generator has no z_dim attribute; pass z_dim")
        self.z_dim = checks.positive_int("model.z_dim", z_dim)
        self.real = real
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.device, self.dtype = module_device(G)
        self.score: nn.Module = D  # the (calibrated) logit used while sampling; set by prepare()
        self.state: dict[str, Any] | None = None
        self.setup = Counts()
        self.cache_path: Path | None = None
        self.reused = False

    # ------------------------------------------------------------------------------------------ helpers
    def latent(self, n: int, generator: torch.Generator) -> Tensor:
        """n standard-normal latents drawn with ``generator`` (on the CPU, then moved to G's device and dtype)."""
        return torch.randn(n, self.z_dim, generator=generator).to(self.device, self.dtype)

    def draw_real(self, n: int, generator: torch.Generator) -> Tensor:
        if self.real is None:
            raise ConfigError(f"refine {self.name}: needs real samples (pass real=dataset.sample)")
        return self.real(n, generator).to(self.device)

    @torch.no_grad()
    def logits(self, x: Tensor, counts: Counts) -> Tensor:
        """The (calibrated) logit of every row of ``x`` in float64; counted as ``len(x)`` D evaluations."""
        counts.d += x.shape[0]
        return self.score(x).reshape(-1).to(torch.float64)

    @torch.no_grad()
    def generate(self, z: Tensor, counts: Counts) -> Tensor:
        counts.g += z.shape[0]
        return self.G(z)

    # ------------------------------------------------------------------------------------- preparation
    def prepare(self) -> Sampler:
        """Calibrate D (and run any sampler-specific preparation) once; reuse what ``cache_dir`` holds for the
        same weights and setup options. Returns ``self``."""
        if self.state is not None:
            return self
        counts = Counts()
        with eval_mode(self.G, self.D):
            tuned, reused_d = calibrate.tuned_discriminator(self.G, self.D, self.options, real=self.real,
                                                            latent=self.latent, counts=counts,
                                                            directory=self.cache_dir)
            tuned.eval()
            setup_options = {k: self.options[k] for k in self.SETUP_KEYS}
            key = calibrate.fingerprint(self.G, self.D, sampler=self.name, options=setup_options)
            state = calibrate.load_cached(self.cache_dir, self.name, key)
            if state is not None and not self.valid_extra(state.get("extra") or {}):
                state = None  # saved by an older version: prepare again
            self.reused = state is not None and (reused_d or self.options["d_steps"] == 0)
            if state is None:
                cal = calibrate.fit_calibration(self.G, tuned, self.options, real=self.real, latent=self.latent,
                                                counts=counts)
                self.score = calibrate.RefinedDiscriminator(tuned, cal)
                state = {"format": calibrate.FORMAT, "calibration": cal.state_dict(),
                         "extra": self.setup_extra(counts)}
                self.cache_path = calibrate.save_cached(self.cache_dir, self.name, key, state)
            else:
                cal = calibrate.Calibration.from_state(state["calibration"])
                self.score = calibrate.RefinedDiscriminator(tuned, cal)
                self.cache_path = calibrate.cache_file(self.cache_dir, self.name, key)
        self.setup = counts
        self.state = state
        return self

    def setup_extra(self, counts: Counts) -> dict[str, Any]:
        """Sampler-specific preparation saved with the calibration (plain numbers and tensors)."""
        return {}

    def valid_extra(self, extra: Mapping[str, Any]) -> bool:
        """Whether a saved :meth:`setup_extra` result holds what this version needs."""
        return True

    # ---------------------------------------------------------------------------------------- sampling
    def sample(self, n: int, seed: int = 0, progress: bool | None = None) -> RefineResult:
        """``n`` refined samples drawn with ``torch.Generator().manual_seed(seed)``; ``progress``: a tqdm bar
        (None: when stderr is a terminal)."""
        n = checks.positive_int("refine.n", n)
        seed = checks.integer("seed", seed)
        self.prepare()
        generator = torch.Generator().manual_seed(seed)
        counts = Counts()
        t0 = time.perf_counter()
        bar = progress_bar(n, self.name, progress)
        try:
            with eval_mode(self.G, self.score):
                samples, proposed, accepted, info = self.draw(n, generator, counts, bar)
        finally:
            bar.close()
        setup, self.setup = self.setup, Counts()  # the preparation is paid once, by the first call
        info = {**info, "reused_calibration": self.reused,
                "calibration_file": None if self.cache_path is None else str(self.cache_path)}
        return RefineResult(self.name, samples.detach().cpu(), proposed, accepted, counts.g, counts.d,
                            setup.g, setup.d, time.perf_counter() - t0, info)

    def draw(self, n: int, generator: torch.Generator, counts: Counts,
             bar: Any) -> tuple[Tensor, int, int, dict[str, Any]]:
        """Return (samples, proposed, accepted, info); count evaluations in ``counts``; advance ``bar``."""
        raise NotImplementedError


def real_sampler(dataset: Any) -> RealFn:
    """``real(n, generator)`` drawing n samples of ``dataset`` as a function of the generator alone: uniformly
    with replacement from a fixed set (``images`` or ``points``), else ``dataset.sample`` (an on-the-fly
    mixture). ``Dataset.sample`` of a fixed set reads an epoch stream whose position is the dataset's state, so
    the same seed would not give the same draws (and sampling would move a training stream)."""
    fixed = getattr(dataset, "images", None)
    if fixed is None:
        fixed = getattr(dataset, "points", None)
    if fixed is None:
        return dataset.sample

    def real(n: int, generator: torch.Generator) -> Tensor:
        idx = torch.randint(len(fixed), (n,), generator=generator, device=generator.device)
        return fixed[idx.to(fixed.device)]

    return real


def check_options(name: str, options: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validate the ``refine.*`` options of sampler ``name`` (defaults filled in)."""
    cls = SAMPLERS.get(name, "refine")
    return checks.options("refine", options, cls.OPTIONS)


def refine_setting(value: Any, current: Mapping[str, Any] | None = None, key: str = "eval.refine"
                   ) -> dict[str, dict[str, Any]]:
    """The ``eval.refine`` setting as a mapping sampler name → the options given (validated, defaults not
    filled): none/``[]`` → {}; a name, a list or ``"drs,mh"`` → each with its defaults; a mapping name →
    options (None: defaults) is merged into ``current`` (so ``--set eval.refine.drs.k=...`` adds to a preset)."""
    from ..config import as_list, is_none_word, merge_option

    if value is None or is_none_word(value):
        return {}
    if isinstance(value, Mapping):
        out = {k: dict(v) for k, v in (current or {}).items()}
        for name, options in value.items():
            if options is not None and not isinstance(options, Mapping):
                raise checks.fail(f"{key}.{name}", "a mapping of sampler options", options)
            out[name] = merge_option(out.get(name), dict(options or {}))
    else:
        names = as_list(value, key)
        if names is None or not all(isinstance(n, str) for n in names):
            raise checks.fail(key, "a sampler name, a list of names or a mapping name → options", value)
        out = {n: {} for n in names}
    checked = {}
    for name, options in out.items():
        canonical = SAMPLERS.canonical(name, key)
        cls = SAMPLERS.get(canonical)
        checks.options(f"{key}.{canonical}", options, cls.OPTIONS)
        checked[canonical] = dict(options)
    return checked


def declared_options(name: str) -> dict[str, Option]:
    """The options sampler ``name`` declares (name → :class:`~saddlepoint.checks.Option`)."""
    return dict(SAMPLERS.get(name, "refine").OPTIONS)


def build_sampler(name: str, G: nn.Module, D: nn.Module, options: Mapping[str, Any] | None = None, *,
                  real: RealFn | None = None, z_dim: int | None = None,
                  cache_dir: str | Path | None = None) -> Sampler:
    """The sampler ``name`` (``drs``, ``mh``, ``ddls`` or an alias) over (G, D) with ``options``."""
    cls = SAMPLERS.get(name, "refine")
    return cls(G, D, options, real=real, z_dim=z_dim, cache_dir=cache_dir)


def refine(name: str, G: nn.Module, D: nn.Module, n: int, *, seed: int = 0,
           options: Mapping[str, Any] | None = None, real: RealFn | None = None, z_dim: int | None = None,
           cache_dir: str | Path | None = None, progress: bool | None = None) -> RefineResult:
    """``n`` samples of G refined by D with sampler ``name``: :func:`build_sampler` then ``sample``."""
    sampler = build_sampler(name, G, D, options, real=real, z_dim=z_dim, cache_dir=cache_dir)
    return sampler.sample(n, seed=seed, progress=progress)

