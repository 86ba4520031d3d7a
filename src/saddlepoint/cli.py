"""Command line: ``saddlepoint train|resume|eval|sample|fid|game|sweep|compare|list`` (see CONTRACTS.md).

Exit codes: 0 success · 2 bad input (one ``error:`` line) · 3 training diverged · 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from .errors import DivergenceError, Interrupted, UserError
from .experiments.cli import add_compare_parser, add_sweep_parser, cmd_compare, cmd_sweep


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad arguments as one ``error:`` line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        raise UserError(f"{self.prog}: {message}")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="saddlepoint", description="Train GANs as two-player games.")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)

    t = sub.add_parser("train", help="train a GAN (no arguments: DCGAN on the bundled MNIST t10k)")
    t.add_argument("--config", help="YAML file (see configs/)")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="dotted override")
    t.add_argument("--out", help="run directory (default: runs/<data>-<loss>-<optim>-<time>)")

    r = sub.add_parser("resume", help="continue a run from its last checkpoint")
    r.add_argument("run_dir")
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    r.add_argument("--force", action="store_true", help="resume even if the configuration changed")

    e = sub.add_parser("eval", help="evaluate a run's generator")
    e.add_argument("run_dir")
    e.add_argument("--metrics", help="comma-separated metric names")
    e.add_argument("--samples", type=int)
    e.add_argument("--ema", action=argparse.BooleanOptionalAction, default=True)
    e.add_argument("--refine", metavar="SAMPLERS", help="discriminator-driven samplers evaluated beside G, "
                   "e.g. drs,mh (default: the run's eval.refine; none: off)")

    s = sub.add_parser("sample", help="draw samples from a run's generator")
    s.add_argument("run_dir")
    s.add_argument("--n", type=int, default=64)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", help="FILE.png or FILE.npy")
    s.add_argument("--ema", action=argparse.BooleanOptionalAction, default=True)
    s.add_argument("--refine", metavar="SAMPLER", help="discriminator-driven sampling: drs | mh | ddls "
                   "(saddlepoint list samplers)")
    s.add_argument("--set", action="append", default=[], metavar="refine.KEY=VALUE", help="a sampler option")

    f = sub.add_parser("fid", help="FID (and KID, IS) between two image sets, as pytorch-fid computes it")
    f.add_argument("a", help="a folder of images, an .npz/.npy image array, an .npz of mu/sigma, or a run directory")
    f.add_argument("b", nargs="?", help="the other side (same kinds); omit with --save-stats")
    f.add_argument("--features", default="inception", help="inception (default) | mnist | a TorchScript file")
    f.add_argument("--inception-path", help="a local Inception-v3 file instead of the one of the inception extra")
    f.add_argument("--metrics", default="fid", help="comma-separated: fid (default), kid, is (the Inception Score "
                   "of A; needs a network with logits)")
    f.add_argument("--samples", type=int, default=5000, help="samples drawn from a run directory's generator")
    f.add_argument("--seed", type=int, default=0, help="seed of a run directory's samples")
    f.add_argument("--save-stats", metavar="FILE.npz", help="write A's mu and sigma (pytorch-fid's format)")
    f.add_argument("--no-cache", action="store_true", help="do not read or write the statistics cache")

    g = sub.add_parser("game", help="run an optimizer on an analytic game")
    g.add_argument("name")
    g.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    g.add_argument("--out")

    add_sweep_parser(sub)
    add_compare_parser(sub)

    ls = sub.add_parser("list", help="list registered names")
    ls.add_argument("kind", nargs="?", choices=sorted(_registries()))
    return p


def _registries() -> dict[str, Any]:
    return {
        "datasets": ("saddlepoint.data", "DATASETS"),
        "models": ("saddlepoint.models", "MODELS"),
        "losses": ("saddlepoint.losses", "LOSSES"),
        "penalties": ("saddlepoint.losses", "PENALTIES"),
        "optimizers": ("saddlepoint.optim", "OPTIMIZERS"),
        "metrics": ("saddlepoint.metrics", "METRICS"),
        "games": ("saddlepoint.games", "GAMES"),
        "samplers": ("saddlepoint.refine", "SAMPLERS"),
        "augmentations": ("saddlepoint.data.augment", "AUGMENTATIONS"),
    }


def _registry(kind: str):
    import importlib

    module, attr = _registries()[kind]
    return getattr(importlib.import_module(module), attr)


# ---------------------------------------------------------------------------------- commands
def _secondary_rank() -> bool:
    """Under torchrun, ranks other than 0 print nothing (rank 0 alone writes the run directory)."""
    import os

    return os.environ.get("RANK", "0") != "0" and os.environ.get("WORLD_SIZE", "1") != "1"


def cmd_train(args: argparse.Namespace) -> int:
    from .config import build_config, nest, parse_sets, read_yaml
    from .training import train

    layers = [read_yaml(args.config)] if args.config else []
    layers.append(nest(parse_sets(args.set)))
    cfg = build_config(*layers, dataset_defaults=True)
    out = train(cfg, args.out)
    if _secondary_rank():
        return 0
    summary = json.loads((out / "summary.json").read_text())
    metrics = summary.get("metrics") or {}
    if metrics:
        print(f"metrics: {json.dumps(metrics)}")
    print(f"run directory: {out}")
    print(f"samples: {out / summary['samples']}")
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    from .config import nest, parse_sets
    from .training import resume

    out = resume(args.run_dir, nest(parse_sets(args.set)), force=args.force)
    if _secondary_rank():
        return 0
    summary = json.loads((out / "summary.json").read_text())
    print(f"run directory: {out}")
    print(f"samples: {out / summary['samples']}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from .training import load_generator
    from .training.sampling import generate, render

    if args.n < 1:
        raise UserError("--n: must be at least 1")
    options = _refine_options(args.set)
    if options and not args.refine:
        raise UserError("--set refine.*: sampler options need --refine")
    stem = f"sample_{args.refine}_seed{args.seed}" if args.refine else f"sample_seed{args.seed}"
    out = Path(args.out) if args.out else Path(args.run_dir) / "samples" / f"{stem}.png"
    if out.suffix not in (".png", ".npy"):
        raise UserError(f"--out {out}: expected a .png or .npy file name")
    if args.refine:
        from .refine import real_sampler, refine
        from .training.refined import load_pair

        G, D, _, dataset = load_pair(args.run_dir, ema=args.ema)
        result = refine(args.refine, G, D, args.n, seed=args.seed, options=options, real=real_sampler(dataset),
                        cache_dir=Path(args.run_dir) / "refine")
        samples = result.samples
        print(f"refine {args.refine}: acceptance {result.acceptance_rate:.3f}, {result.g_per_sample:.1f} G and "
              f"{result.d_per_sample:.1f} D evaluations per sample (setup: {result.setup_g_evals} G, "
              f"{result.setup_d_evals} D)")
    else:
        G, _, dataset = load_generator(args.run_dir, ema=args.ema)
        z = torch.randn(args.n, G.z_dim, generator=torch.Generator().manual_seed(args.seed))
        samples = generate(G, z, next(G.parameters()).device)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.suffix == ".npy":
            np.save(out, samples.numpy())
        else:
            render(samples, out, dataset, f"{args.n} samples")
    except OSError as exc:
        raise UserError(f"--out {out}: cannot write ({exc.strerror or exc})") from None
    print(f"samples: {out}")
    return 0


def _refine_options(pairs: list[str]) -> dict[str, Any]:
    """``--set refine.KEY=VALUE`` pairs → ``{KEY: value}`` (YAML-typed); other keys are errors."""
    from .config import parse_sets, parse_value

    options = {}
    for key, value in parse_sets(pairs).items():
        if not key.startswith("refine.") or key.count(".") != 1:
            raise UserError(f"--set {key}: sample takes refine.KEY=VALUE options only")
        options[key.split(".", 1)[1]] = parse_value(value)
    return options


def cmd_eval(args: argparse.Namespace) -> int:
    from .io import atomic_write_text
    from .metrics import default_metrics, evaluate_metrics
    from .training import load_generator
    from .training.sampling import eval_noise, generate

    G, cfg, dataset = load_generator(args.run_dir, ema=args.ema)
    names = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else (
        cfg.eval.metrics or default_metrics(dataset, cfg.eval))
    if not names:
        raise UserError("--metrics: no metric given and none is computed by default for this dataset")
    n = args.samples or cfg.eval.samples
    if n < 1:
        raise UserError("--samples: must be at least 1")
    samples = generate(G, eval_noise(n, G.z_dim, cfg.seed), next(G.parameters()).device)
    results = evaluate_metrics(names, samples, dataset, cfg.eval)
    refined = _eval_refined(args, cfg, dataset, names, n, G)
    summary_path = Path(args.run_dir) / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    summary.setdefault("eval", {})["ema" if args.ema else "raw"] = {"samples": n, **results,
                                                                     **({"refined": refined} if refined else {})}
    atomic_write_text(summary_path, json.dumps(summary, indent=2) + "\n")
    print(json.dumps(results))
    for row in refined.values():
        print(f"{row['label']}: {json.dumps(row['metrics'])} (acceptance {row['cost']['acceptance_rate']:.3f}, "
              f"{row['cost']['g_per_sample']:.1f} G evaluations per sample)")
    return 0


def _eval_refined(args: argparse.Namespace, cfg: Any, dataset: Any, names: list[str], n: int, G: Any) -> dict:
    """The rows of the samplers of ``--refine`` (else ``eval.refine``) beside G, with ``names`` on ``n`` samples."""
    import dataclasses

    from .refine import refine_setting
    from .training.refined import load_pair, refined_metrics

    samplers = refine_setting(args.refine, key="--refine") if args.refine is not None else cfg.eval.refine
    if not samplers:
        return {}
    D = load_pair(args.run_dir, ema=args.ema).D
    eval_cfg = dataclasses.replace(cfg.eval, metrics=names, samples=n, refine=samplers)
    return refined_metrics(dataclasses.replace(cfg, eval=eval_cfg), dataset, G, D, Path(args.run_dir),
                           next(G.parameters()).device)


def cmd_fid(args: argparse.Namespace) -> int:
    from .metrics.standalone import Side, compare, load_side, save_stats
    from .metrics.stats import default_cache_dir

    def side(path: str) -> Side:
        if (Path(path) / "checkpoints").is_dir():  # a run directory: its (EMA) generator's samples
            from .training import sample

            if args.samples < 2:
                raise UserError("--samples: at least 2 for a run directory")
            return Side(path, images=sample(path, n=args.samples, seed=args.seed))
        return load_side(path)

    cache = None if args.no_cache else default_cache_dir()
    options = {"features": args.features, "inception_path": args.inception_path, "cache_dir": cache}
    if args.save_stats:
        print(f"statistics: {save_stats(side(args.a), args.save_stats, **options)}")
        if args.b is None:
            return 0
    if args.b is None:
        raise UserError("fid: give two sides (A B), or --save-stats FILE.npz with one")
    names = [m.strip() for m in args.metrics.split(",") if m.strip()]
    unknown = sorted(set(names) - {"fid", "kid", "is"})
    if unknown or not names:
        raise UserError(f"--metrics: {', '.join(unknown) or 'none given'}; valid: fid, kid, is")
    results = compare(side(args.a), side(args.b), kid_metric="kid" in names, inception_score_of_a="is" in names,
                      **options)
    if "fid" not in names:
        results.pop("fid")
    for key, value in results.items():
        print(f"{key}: {value:.6g}")
    return 0


def cmd_game(args: argparse.Namespace) -> int:
    from .config import parse_sets, parse_value
    from .games import run_game

    options = {k: parse_value(v) for k, v in parse_sets(args.set).items()}
    out = Path(args.out) if args.out else Path("runs") / f"game-{args.name}"
    run_game(args.name, options, out)
    print(f"output: {out}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    kinds = [args.kind] if args.kind else sorted(_registries())
    for kind in kinds:
        names = _registry(kind).names()
        print(f"{kind}: {', '.join(names)}" if not args.kind else "\n".join(names))
    return 0


COMMANDS = {
    "train": cmd_train,
    "resume": cmd_resume,
    "eval": cmd_eval,
    "sample": cmd_sample,
    "fid": cmd_fid,
    "game": cmd_game,
    "list": cmd_list,
    "sweep": cmd_sweep,
    "compare": cmd_compare,
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
            argv = ["train", *argv]
        args = _parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except DivergenceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except OSError as exc:  # unwritable or full output directory, vanished files, ...
        where = f" {exc.filename}" if exc.filename else ""
        print(f"error: cannot access{where}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except Interrupted as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
