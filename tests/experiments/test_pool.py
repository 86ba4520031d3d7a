"""The worker pool: every task done once, one worker per slot, a dead worker replaced with its exit code."""

import pytest

from saddlepoint.errors import UserError
from saddlepoint.experiments.pool import WorkerPool

from .helpers import pool_init, pool_init_fails, pool_task


def run(pool, tasks):
    done, died = {}, {}
    try:
        pool.run(pool_task, tasks, lambda t, r: done.__setitem__(t, r), lambda t, code: died.__setitem__(t, code))
    finally:
        pool.close()
    return done, died


def test_tasks_run_in_at_most_size_workers_with_the_initializer():
    done, died = run(WorkerPool(2, pool_init, (3,)), [1, 2, 3, 4, 5])
    assert not died and {t: r[0] for t, r in done.items()} == {1: 1, 2: 4, 3: 9, 4: 16, 5: 25}
    assert len({r[1] for r in done.values()}) <= 2  # workers are reused
    assert {r[2] for r in done.values()} == {"3"}  # each ran the initializer


def test_a_dead_worker_is_reported_with_its_exit_code_and_replaced():
    done, died = run(WorkerPool(2, pool_init, (1,)), [1, "die", 2, 3])
    assert died == {"die": 9}
    assert {t: r[0] for t, r in done.items()} == {1: 1, 2: 4, 3: 9}


def test_workers_that_cannot_start_are_one_clear_error():
    with pytest.raises(UserError, match="exit at start-up"):
        run(WorkerPool(1, pool_init_fails, (1,)), [1, 2])
