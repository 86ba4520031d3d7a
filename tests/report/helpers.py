"""Helpers shared by the report tests."""

RING = {
    "data": {"name": "ring"},
    "model": {"name": "mlp", "z_dim": 2, "width": 32, "depth": 2},
    "train": {"steps": 20, "batch_size": 64, "ema": 0.0},
    "eval": {"samples": 200, "every": 10},
    "log": {"every": 5, "progress": "none"},
}
