"""Setup from a config: the thread default, the wait policy, the optimizer's injected collaborators."""

import os
import subprocess
import sys

import pytest
import torch

import saddlepoint.system as system
from saddlepoint.config import build_config
from saddlepoint.training import setup
from saddlepoint.training.setup import configure_threads

from .helpers import ring_config


@pytest.fixture
def threads(monkeypatch):
    """Restore torch's thread count afterwards; no OMP_NUM_THREADS and two cores unless a test says so."""
    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(system, "cpu_quota", lambda *a, **k: None)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    yield
    torch.set_num_threads(before)


def test_train_threads_wins(threads):
    torch.set_num_threads(1)
    assert configure_threads(2) == 2 == torch.get_num_threads()
    assert configure_threads(1) == 1 == torch.get_num_threads()


def test_unset_keeps_torchs_count_within_the_cores(threads):
    torch.set_num_threads(2)
    assert configure_threads(None) == 2  # the default job's count on two cores: the same numbers as before
    torch.set_num_threads(1)
    assert configure_threads(None) == 1  # never raised above what torch (or the caller) chose


def test_omp_num_threads_is_honoured(threads, monkeypatch):
    torch.set_num_threads(2)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert configure_threads(None) == 1 == torch.get_num_threads()


def test_a_cgroup_quota_caps_the_default(threads, monkeypatch):
    torch.set_num_threads(2)
    monkeypatch.setattr(system, "cpu_quota", lambda *a, **k: 1.0)
    assert configure_threads(None) == 1 == torch.get_num_threads()
    torch.set_num_threads(2)
    monkeypatch.setattr(system, "cpu_quota", lambda *a, **k: 1.5)  # a started core counts as one
    assert configure_threads(None) == 2
    monkeypatch.setattr(system, "cpu_quota", lambda *a, **k: 1.0)
    assert configure_threads(2) == 2  # train.threads is obeyed even above the quota


def test_setup_applies_the_thread_default(threads, monkeypatch, tmp_path):
    torch.set_num_threads(2)
    monkeypatch.setattr(system, "cpu_quota", lambda *a, **k: 1.0)
    setup(build_config(ring_config()), tmp_path)
    assert torch.get_num_threads() == 1


@pytest.mark.parametrize("given, expected", [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_openmp_threads_wait_passively_unless_told_otherwise(given, expected):
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if given is not None:
        env["OMP_WAIT_POLICY"] = given
    code = "import os, saddlepoint; print(os.environ['OMP_WAIT_POLICY'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == expected


def test_the_optimizer_gets_its_collaborators_injected(tmp_path):
    trainer = setup(build_config(ring_config(optim={"name": "lookahead", "inner": "adam"},
                                             train={"amp": "fp16"})), tmp_path)
    assert trainer.opt.scaler is not None and trainer.opt.inner.scaler is trainer.opt.scaler
    assert trainer.opt.reduce is None  # one process: nothing to average
    plain = setup(build_config(ring_config()), tmp_path)
    assert plain.opt.scaler is None
