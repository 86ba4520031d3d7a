"""TensorBoard event files next to ``metrics.jsonl`` (``log.tensorboard: true``).

The training loop hands every record it writes to ``metrics.jsonl`` to :meth:`TensorBoardLogger.log`;
numeric fields become scalars under readable tags (``loss/G``, ``grad_norm/D``, ``D/real``, ``cost/grad_evals``,
``eval/<metric>``). ``tensorboard --logdir RUN_DIR`` (or a folder of runs) shows them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigError

#: record field → TensorBoard tag
TAGS = {
    "loss_g": "loss/G",
    "loss_d": "loss/D",
    "grad_norm_g": "grad_norm/G",
    "grad_norm_d": "grad_norm/D",
    "d_real": "D/real",
    "d_fake": "D/fake",
    "grad_evals": "cost/grad_evals",
    "hvps": "cost/hvps",
}
#: record fields that are not scalars to plot
SKIP = {"step", "time", "final", "event", "player", "what"}


def tag_for(key: str) -> str:
    return TAGS.get(key, f"eval/{key}")


class TensorBoardLogger:
    """A thin wrapper of ``torch.utils.tensorboard.SummaryWriter`` writing into ``run_dir``.

    ``start_step``: when resuming, events at or after this step left by the interrupted run are discarded
    by TensorBoard (``purge_step``), so curves do not double back.
    """

    def __init__(self, run_dir: str | Path, start_step: int = 0, flush_secs: int = 30) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError("log.tensorboard: needs the tensorboard package (pip install tensorboard)") from None
        self.run_dir = Path(run_dir)
        self.writer = SummaryWriter(log_dir=str(self.run_dir), purge_step=start_step or None, flush_secs=flush_secs)

    def log(self, record: Mapping[str, Any]) -> None:
        """Add every finite numeric field of a metrics.jsonl record as a scalar at ``record["step"]``."""
        step = record.get("step")
        if not isinstance(step, int) or "event" in record:
            return
        for key, value in record.items():
            if key in SKIP or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if not math.isfinite(float(value)):
                continue
            self.writer.add_scalar(tag_for(key), float(value), global_step=step)

    def log_image(self, tag: str, path: str | Path, step: int) -> None:
        """Add a PNG (e.g. a samples grid or scatter plot) as an image at ``step``."""
        import numpy as np
        from PIL import Image

        with Image.open(path) as img:
            self.writer.add_image(tag, np.asarray(img.convert("RGB")), global_step=step, dataformats="HWC")

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()

    def __enter__(self) -> TensorBoardLogger:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def read_scalars(run_dir: str | Path) -> dict[str, list[tuple[int, float]]]:
    """The scalars in a directory's event files (``{tag: [(step, value), ...]}``), for tests and tools."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags().get("scalars", [])}
