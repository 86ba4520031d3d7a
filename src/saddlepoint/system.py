"""What the machine lends this process: CPU cores (affinity mask, cgroup CPU quota) and the thread default.

Light (standard library only): sweep workers call it before torch starts its thread pools.
"""

from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path

__all__ = ["available_cores", "cpu_quota", "default_threads", "omp_threads"]

CGROUP_ROOT = Path("/sys/fs/cgroup")


def _cgroup_dirs(root: Path) -> list[Path]:
    """This process's cgroup v2 directory and its ancestors (innermost first), then the root."""
    dirs: list[Path] = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            hierarchy, _, rel = line.partition("::")
            if hierarchy == "0" and rel.startswith("/"):
                path = root / rel.lstrip("/")
                while path != root and root in path.parents:
                    dirs.append(path)
                    path = path.parent
    dirs.append(root)
    return dirs


def cpu_quota(root: Path = CGROUP_ROOT) -> float | None:
    """The tightest cgroup CPU quota in cores (v2 ``cpu.max``, or v1 ``cpu.cfs_quota_us``), None if unlimited."""
    quotas: list[float] = []
    for directory in _cgroup_dirs(root):
        with contextlib.suppress(OSError, ValueError):
            quota, period = (directory / "cpu.max").read_text().split()[:2]
            if quota != "max" and int(period) > 0:
                quotas.append(int(quota) / int(period))
    with contextlib.suppress(OSError, ValueError):
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        if quota_us > 0 and period_us > 0:
            quotas.append(quota_us / period_us)
    return min(quotas) if quotas else None


def available_cores() -> int:
    """CPU cores this process may use: its affinity mask, capped by the cgroup CPU quota (rounded up)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    quota = cpu_quota()
    if quota is not None:
        cores = min(cores, max(1, math.ceil(quota - 1e-9)))
    return max(1, cores)


def omp_threads() -> int | None:
    """``OMP_NUM_THREADS`` when it is set to a positive integer, else None."""
    text = os.environ.get("OMP_NUM_THREADS", "").strip()
    if text.isdigit() and int(text) > 0:
        return int(text)
    return None


def default_threads(threads: int | None = None, processes: int = 1) -> int:
    """Intra-op threads for one of ``processes`` processes sharing this machine: ``threads`` if given (the
    ``train.threads`` key), else ``OMP_NUM_THREADS`` if set, else :func:`available_cores` // ``processes``."""
    if threads:
        return int(threads)
    omp = omp_threads()
    if omp is not None:
        return omp
    return max(1, available_cores() // max(1, processes))
