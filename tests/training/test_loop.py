"""The training loop end to end: every loss × first-order optimizer × scheme, penalties, mode coverage,
determinism, the periodic-work table, signals, divergence and a failing final evaluation."""

import json
import signal

import pytest
import torch

from saddlepoint.cli import main
from saddlepoint.config import build_config
from saddlepoint.errors import ConfigError
from saddlepoint.losses import LOSSES
from saddlepoint.optim import OPTIMIZERS
from saddlepoint.training import setup
from saddlepoint.training import train as train_run
from saddlepoint.training.checkpoint import load_checkpoint
from saddlepoint.training.progress import every

from .helpers import RING, records, ring_config, spawn, wait_for

FIRST_ORDER = ["sgd", "momentum", "nesterov", "adam", "rmsprop"]
LR = {"sgd": 0.02, "momentum": 0.01, "nesterov": 0.01, "adam": 1e-3, "rmsprop": 1e-3}


def trainer_in(cfg, out):
    """A trainer writing to ``out`` (created), as ``train`` would have prepared it."""
    (out / "samples").mkdir(parents=True, exist_ok=True)
    return setup(cfg, out)


def test_the_contract_losses_are_registered():
    assert {"minimax", "ns", "wgan", "lsgan", "hinge"} <= set(LOSSES.names())


@pytest.mark.parametrize("scheme", ["alternating", "simultaneous"])
@pytest.mark.parametrize("optimizer", FIRST_ORDER)
def test_every_loss_trains_with_every_first_order_optimizer(optimizer, scheme, tmp_path):
    for loss in LOSSES.names():
        cfg = build_config(ring_config(loss={"name": loss}, optim={"name": optimizer, "lr": LR[optimizer],
                                                                    "scheme": scheme}))
        trainer = trainer_in(cfg, tmp_path / f"{loss}")
        before = [p.detach().clone() for p in [*trainer.G.parameters(), *trainer.D.parameters()]]
        trainer.run()
        after = list(trainer.G.parameters()) + list(trainer.D.parameters())
        assert not torch.equal(before[-2], after[-2])  # D's last weight moved
        assert any(not torch.equal(a, b) for a, b in zip(before, after))
        logged = [r for r in records(trainer.out) if "loss_g" in r]
        assert [r["step"] for r in logged] == [3, 6]
        assert all(torch.isfinite(torch.tensor([r["loss_g"], r["loss_d"]])).all() for r in logged)
        # each step costs one gradient per player (n_critic = 1)
        assert logged[-1]["grad_evals"] == 2 * 6


def test_n_critic_and_penalties(tmp_path):
    cfg = build_config(ring_config(loss={"name": "wgan", "penalty": ["gp", "clip"]},
                                   optim={"name": "rmsprop", "lr": 5e-4}, train={"n_critic": 3, "steps": 4}))
    trainer = trainer_in(cfg, tmp_path)
    trainer.run()
    # 3 D updates and 1 G update per step
    assert trainer.opt.counts["grad"] == 4 * (3 + 1)
    for p in trainer.D.parameters():  # weight clipping applied after D's updates
        assert p.abs().max() <= 0.01 + 1e-7


RING_PRESET = {
    "seed": 0,
    "data": {"name": "ring"},
    "model": {"name": "mlp", "z_dim": 2, "width": 128, "depth": 3},
    "loss": {"name": "ns"},
    "optim": {"name": "adam", "lr": 1e-3, "beta1": 0.5, "scheme": "simultaneous"},
    "train": {"steps": 3000, "batch_size": 256, "ema": 0.0},
    "eval": {"samples": 2500},
    "log": {"every": 500, "progress": "none"},
}


def test_ring_covers_modes_and_is_deterministic(tmp_path):
    runs = [train_run(RING_PRESET, tmp_path / f"run{k}") for k in range(2)]
    summaries = [json.loads((r / "summary.json").read_text()) for r in runs]
    metrics = [s["metrics"] for s in summaries]
    assert metrics[0] == metrics[1]
    logs = [(r / "metrics.jsonl").read_text().splitlines() for r in runs]
    strip = [[{k: v for k, v in json.loads(x).items() if k != "time"} for x in log] for log in logs]
    assert strip[0] == strip[1]
    # count samples within 3σ of each centre independently of the metric code
    from saddlepoint.data import build_dataset

    ring = build_dataset("ring")
    ckpt = load_checkpoint(runs[0] / "checkpoints" / "last.pt")
    trainer = setup(build_config(ckpt["config"]), runs[0])
    trainer.load_state(ckpt)
    samples = trainer.generate(2500).double()
    dist = torch.cdist(samples, ring.centers.double())
    covered = sum(int((dist[:, k] < 3 * ring.std).any()) for k in range(8))
    assert covered >= 6, metrics[0]
    assert metrics[0]["modes"] == covered


ALL_OPTIMIZERS = ["sgd", "momentum", "nesterov", "adam", "rmsprop", "extragradient", "past-extragradient",
                  "optimistic", "lookahead", "consensus", "sga", "cgd", "acgd"]


def test_every_registered_optimizer_is_covered():
    assert set(ALL_OPTIMIZERS) <= set(OPTIMIZERS.names())  # the ones CONTRACTS.md names; more run below too


@pytest.mark.parametrize("optimizer", OPTIMIZERS.names())
def test_every_optimizer_trains_a_batchnorm_generator_with_a_penalty(optimizer, tmp_path):
    """Integration: any method as optim.name, BatchNorm in G, a gradient penalty in D's loss."""
    cfg = build_config(ring_config(model={"batchnorm": True}, loss={"name": "wgan", "penalty": ["gp"]},
                                   optim={"name": optimizer, "lr": 1e-3}, train={"steps": 3}))
    trainer = trainer_in(cfg, tmp_path)
    bn = [m for m in trainer.G.modules() if isinstance(m, torch.nn.BatchNorm1d)][0]
    G0 = [p.detach().clone() for p in trainer.G.parameters()]
    trainer.run()
    # one BatchNorm update per batch drawn (two for stochastic Hamiltonian descent), however many closure calls
    assert bn.num_batches_tracked.item() == 3 * (2 if trainer.opt.wants_independent_batches else 1)
    assert any(not torch.equal(a, b) for a, b in zip(G0, trainer.G.parameters()))
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "completed"
    if optimizer in ("consensus", "sga", "cgd", "acgd") or trainer.opt.requires_double_backward:
        assert summary["hvps"] > 0


@pytest.mark.parametrize("optimizer", ["extragradient", "consensus", "acgd"])
def test_image_gan_with_batchnorm_and_dropout(optimizer, tmp_path):
    cfg = build_config({"data": {"name": "mnist-t10k", "limit": 128}, "model": {"name": "dcgan28", "z_dim": 8,
                        "scale": 0.125}, "optim": {"name": optimizer, "lr": 1e-3},
                        "train": {"steps": 2, "batch_size": 8, "ema": 0.5}, "log": {"progress": "none"}})
    run = train_run(cfg, tmp_path / "run")
    assert json.loads((run / "summary.json").read_text())["status"] == "completed"


@pytest.mark.parametrize("name", ["hamiltonian", "extragradient"])
@pytest.mark.parametrize("independent", [True, False])
def test_two_independent_batches(name, independent, tmp_path):
    """Stochastic Hamiltonian descent (Loizou et al. 2020, eq. 8) and extragradient's fresh sample for the update
    (Gidel et al. 2019, Alg. 2): the trainer draws two batches (data and noise) and the step is the one of the pair
    of closures on them; ``independent_batches: false`` draws one."""
    cfg = build_config(ring_config(optim={"name": name, "lr": 0.01, "independent_batches": independent}))
    trainer, twin = trainer_in(cfg, tmp_path / "a"), trainer_in(cfg, tmp_path / "b")
    trainer.game_step()
    batches = [twin.batch() for _ in range(2 if independent else 1)]  # what the trainer drew, in its order
    closures = [twin.closure_for(*b, {}) for b in batches]
    twin.opt.step(tuple(closures) if independent else closures[0])
    assert torch.equal(trainer.data_gen.get_state(), twin.data_gen.get_state())
    assert torch.equal(trainer.noise_gen.get_state(), twin.noise_gen.get_state())
    for a, b in zip([*trainer.G.parameters(), *trainer.D.parameters()], [*twin.G.parameters(), *twin.D.parameters()]):
        assert torch.equal(a, b)
    assert trainer.opt.counts["closure"] == (2 if independent or name == "extragradient" else 1)


def test_schedules_of_the_periodic_table():
    assert [s for s in range(1, 11) if every(3, last=10)(s)] == [3, 6, 9, 10]
    assert [s for s in range(1, 11) if every(5, before=10)(s)] == [5]
    assert not any(every(0)(s) for s in range(1, 11))


def test_periodic_table_on_a_run(tmp_path):
    """Logging, evaluation (not at the last step: the final evaluation is there), samples and checkpoints
    on their schedules, one metrics.jsonl record per step at most (plus the final evaluation's)."""
    cfg = build_config(ring_config(train={"steps": 6, "sample_every": 4}, log={"every": 3},
                                   eval={"every": 2, "samples": 200}, checkpoint={"every": 5, "keep": 5}))
    trainer = trainer_in(cfg, tmp_path)
    trainer.run()
    recs = records(tmp_path)
    assert [r["step"] for r in recs if not r.get("final")] == [2, 3, 4, 6]
    assert [r["step"] for r in recs if "modes" in r] == [2, 4, 6] and recs[-1]["final"]
    assert all("loss_g" in r for r in recs if not r.get("final"))
    assert (tmp_path / "samples" / "step_00000004.png").is_file()
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("step_*.pt")) == ["step_00000005.pt",
                                                                                  "step_00000006.pt"]


def test_sigterm_checkpoints_and_exits_130(tmp_path):
    out = tmp_path / "run"
    proc = spawn("train", *RING, "--set", "train.steps=100000", "--out", str(out))
    wait_for(out / "metrics.jsonl", proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.strip().startswith("error: interrupted")
    ckpt = load_checkpoint(out / "checkpoints" / "last.pt")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["steps"] == ckpt["step"] > 0
    assert main(["resume", str(out), "--set", f"train.steps={ckpt['step'] + 5}"]) == 0
    assert json.loads((out / "summary.json").read_text())["status"] == "completed"


def test_divergence_exits_3_and_keeps_last_good_checkpoint(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *RING, "--set", "train.steps=4", "--set", "optim.name=sgd", "--out", str(out)]) == 0
    good = (out / "checkpoints" / "last.pt").read_bytes()
    capsys.readouterr()
    code = main(["resume", str(out), "--force", "--set", "optim.lr=1e30", "--set", "train.steps=50",
                 "--set", "checkpoint.every=1"])
    assert code == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: training diverged at step")
    assert "player" in err[0]
    # the last checkpoint is a good one: loadable, finite, from before the divergence
    ckpt = load_checkpoint(out / "checkpoints" / "last.pt")
    diverged_at = int(err[0].split("at step ")[1].split(":")[0])
    assert 4 <= ckpt["step"] < diverged_at
    assert all(torch.isfinite(t).all() for part in ("G", "D") for t in ckpt[part].values())
    assert good != (out / "checkpoints" / "last.pt").read_bytes() or ckpt["step"] == 4
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "diverged" and "diverged" in summary["error"]
    last = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["event"] == "diverged" and last["player"] in ("G", "D")


def failing_metrics(exc):
    def evaluate_metrics(*args, **kwargs):
        raise exc

    return evaluate_metrics


def test_the_run_survives_a_failing_final_evaluation(tmp_path, monkeypatch):
    """The final checkpoint and summary are written before the final evaluation: an exception in a
    metric loses no trained weights, and the summary reports the error."""
    import saddlepoint.training.evaluation as evaluation

    monkeypatch.setattr(evaluation, "evaluate_metrics", failing_metrics(RuntimeError("metric exploded")))
    out = tmp_path / "run"
    with pytest.raises(RuntimeError, match="metric exploded"):
        train_run(ring_config(train={"steps": 4}), out)
    assert load_checkpoint(out / "checkpoints" / "last.pt")["step"] == 4
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 4 and summary["status"] == "completed"
    assert summary["error"] == "final evaluation failed: metric exploded"
    assert [r["step"] for r in records(out)] == [3, 4]  # the training records, no final one


def test_a_failing_final_evaluation_is_one_error_line_from_the_cli(tmp_path, monkeypatch, capsys):
    import saddlepoint.training.evaluation as evaluation

    monkeypatch.setattr(evaluation, "evaluate_metrics", failing_metrics(ConfigError("eval.metrics: no luck")))
    out = tmp_path / "run"
    assert main(["train", *RING, "--set", "train.steps=3", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: final evaluation failed: eval.metrics: no luck")
    assert "last.pt" in err[0]
    assert load_checkpoint(out / "checkpoints" / "last.pt")["step"] == 3
    assert "no luck" in json.loads((out / "summary.json").read_text())["error"]
    # the trained generator is there to evaluate again
    monkeypatch.undo()
    assert main(["eval", str(out), "--metrics", "modes", "--samples", "100"]) == 0


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit.script
def test_metric_needs_are_rejected_before_training(tmp_path, capsys):
    """``is`` needs logits; a feature network without them is refused before anything is trained."""
    net = torch.jit.script(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(28 * 28, 8)))
    path = tmp_path / "features.pt"
    net.save(str(path))
    out = tmp_path / "run"
    code = main(["train", "--set", "data.limit=64", "--set", "train.steps=2", "--set", "log.progress=none",
                 "--set", "eval.metrics=[is]", "--set", f"eval.features={path}", "--out", str(out)])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: eval.metrics") and "logits" in err[0]
    assert not (out / "checkpoints").exists() and not (out / "metrics.jsonl").exists()
