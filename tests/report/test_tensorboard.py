"""TensorBoard event files next to metrics.jsonl."""

import pytest

from saddlepoint.report import html as H


def test_tensorboard_events_next_to_metrics(ring_run):
    pytest.importorskip("tensorboard")
    from saddlepoint.report.tensorboard import TensorBoardLogger, read_scalars

    records = H.read_records(ring_run)
    with TensorBoardLogger(ring_run) as tb:
        for rec in records:
            tb.log(rec)
        tb.log({"step": 3, "event": "diverged", "player": "G"})  # events are not scalars
    assert list(ring_run.glob("events.out.tfevents.*"))
    scalars = read_scalars(ring_run)
    logged = [r for r in records if "loss_g" in r]
    assert [s for s, _ in scalars["loss/G"]] == [r["step"] for r in logged]
    assert [v for _, v in scalars["grad_norm/D"]] == pytest.approx([r["grad_norm_d"] for r in logged], rel=1e-6)
    assert scalars["cost/grad_evals"][-1] == (20, 40.0)
    assert [s for s, _ in scalars["eval/kl"]] == [10, 20]
