"""Cores and threads: the affinity mask, the cgroup quota and OMP_NUM_THREADS."""

import os

from saddlepoint import system


def test_available_cores_honours_affinity_and_quota(monkeypatch):
    affinity = len(os.sched_getaffinity(0))
    assert 1 <= system.available_cores() <= affinity
    monkeypatch.setattr(system, "cpu_quota", lambda: 1.5)  # 1.5 cores: 2 threads' worth, rounded up
    assert system.available_cores() == min(affinity, 2)
    monkeypatch.setattr(system, "cpu_quota", lambda: 0.2)
    assert system.available_cores() == 1


def test_cpu_quota_reads_cgroup_v2_and_v1(tmp_path):
    assert system.cpu_quota(tmp_path) is None
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert system.cpu_quota(tmp_path) is None
    (tmp_path / "cpu.max").write_text("50000 100000\n")
    assert system.cpu_quota(tmp_path) == 0.5
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("25000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert system.cpu_quota(tmp_path) == 0.25


def test_default_threads(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    cores = system.available_cores()
    assert system.default_threads() == cores and system.default_threads(processes=cores * 4) == 1
    assert system.default_threads(3) == 3  # train.threads wins
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert system.default_threads() == 1 and system.omp_threads() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "lots")
    assert system.omp_threads() is None and system.default_threads() == cores
