"""Experiment tracking: training metrics to TensorBoard event files as a run goes.

`TensorBoardTracker(log_dir)` is a `run_seeds` / `compare` callback. After each compiled chunk it
writes, per rule (one event-file directory per rule under `log_dir`) and per agent update, at the
update's env-step count:

- ``return/mean``: the mean return of the episodes that ended in that update, averaged over the
  seeds that ended one (updates where none did are skipped), and ``return/episodes``;
- ``train/<metric>``: every other per-update metric (loss, entropy, the drift activity of
  mirror-learning rules, ...), averaged over seeds.

`log_row(row)` writes one row of a meta-training run's `metrics.csv` (`meta-train --track
tensorboard`): every number in it at the row's meta-step, under ``meta/<column>`` in `log_dir`/meta.
A tracker made with ``resume=True`` (``--resume``) purges, at its first row, what an interrupted
run wrote at that meta-step and after (it logged past its last checkpoint, and the resumed run
writes those steps again), so no meta-step appears twice.

The writer is tensorboardX (the ``track`` extra): it writes the event-file format without
TensorFlow or PyTorch.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from ._experiment import EPISODE_KEYS

TRACKERS = ("tensorboard",)


def _writer_class():
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        raise ValueError("--track tensorboard needs tensorboardX: pip install 'learned-rl[track]'") from None
    return SummaryWriter


class TensorBoardTracker:
    """Write each chunk's per-update metrics as TensorBoard scalars; `close()` flushes them."""

    def __init__(self, log_dir: str | Path, *, resume: bool = False):
        self.log_dir = Path(log_dir)
        self.resume = resume
        self._writer_cls = _writer_class()
        self._writers: dict[str, Any] = {}

    def writer(self, rule_name: str, purge_step: int | None = None):
        """The writer of `rule_name`'s directory; made on first use, then with `purge_step` (events
        an earlier writer logged at that step or later are dropped by TensorBoard and `read_scalars`)."""
        if rule_name not in self._writers:
            sub = re.sub(r"[^\w.+-]+", "_", rule_name)
            self._writers[rule_name] = self._writer_cls(logdir=str(self.log_dir / sub), flush_secs=30, purge_step=purge_step)
        return self._writers[rule_name]

    def __call__(self, rule_name: str, metrics: dict[str, np.ndarray]) -> None:
        w = self.writer(rule_name)
        flat = {k: np.asarray(v, np.float64).reshape(-1, np.shape(v)[-1]) for k, v in metrics.items()}  # [runs, updates]
        steps = flat["env_steps"].mean(axis=0).round().astype(np.int64)
        episodes = flat["episodes"]
        with np.errstate(invalid="ignore", divide="ignore"):
            per_run = np.where(episodes > 0, flat["return_sum"] / np.maximum(episodes, 1), np.nan)
        ended = episodes.sum(axis=0)
        others = sorted(k for k in flat if k not in EPISODE_KEYS and not k.startswith("_"))
        for u, step in enumerate(steps):
            step = int(step)
            if ended[u] > 0:
                w.add_scalar("return/mean", float(np.nanmean(per_run[:, u])), step)
            w.add_scalar("return/episodes", float(ended[u]), step)
            for k in others:
                w.add_scalar(f"train/{k}", float(np.mean(flat[k][:, u])), step)

    def log_row(self, row: dict[str, Any], name: str = "meta") -> None:
        """One logging row of a meta-training run: each finite number but ``step`` as
        ``meta/<column>`` at ``row["step"]``."""
        step = int(row["step"])
        w = self.writer(name, purge_step=step if self.resume else None)
        for k, v in row.items():
            if k != "step" and isinstance(v, (int, float, np.number)) and not isinstance(v, bool) and np.isfinite(v):
                w.add_scalar(f"meta/{k}", float(v), step)

    def close(self) -> None:
        for w in self._writers.values():
            w.close()


def make_tracker(kind: str | None, out: Path, *, resume: bool = False):
    """The tracker a ``--track KIND`` names, writing under `out`/KIND (None: no tracking)."""
    if kind is None:
        return None
    if kind not in TRACKERS:
        raise ValueError(f"unknown tracker {kind!r} (choose from {', '.join(TRACKERS)})")
    return TensorBoardTracker(out / "tensorboard", resume=resume)


def read_scalars(log_dir: str | Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every scalar in the event files under `log_dir` (one rule's directory): ``{tag: (steps,
    values)}`` in the order written. Reads the TFRecord framing and tensorboardX's event protos,
    without TensorBoard; a truncated last record (a run still writing) is ignored, and a session
    restart at step s (a writer's `purge_step`) drops what was written before it at steps ≥ s, as
    TensorBoard does."""
    import struct

    from tensorboardX.proto import event_pb2

    out: dict[str, tuple[list[int], list[float]]] = {}
    files = sorted(Path(log_dir).glob("events.out.tfevents.*"))
    if not files:
        raise ValueError(f"no TensorBoard event files in {log_dir}")
    for f in files:
        data = f.read_bytes()
        pos = 0
        while pos + 12 <= len(data):
            (n,) = struct.unpack("<Q", data[pos : pos + 8])
            if pos + 12 + n + 4 > len(data):
                break
            event = event_pb2.Event.FromString(data[pos + 12 : pos + 12 + n])
            pos += 12 + n + 4
            if event.HasField("session_log") and event.session_log.status == event_pb2.SessionLog.START:
                for steps, values in out.values():
                    keep = [i for i, st in enumerate(steps) if st < event.step]
                    steps[:], values[:] = [steps[i] for i in keep], [values[i] for i in keep]
            for v in event.summary.value:
                steps, values = out.setdefault(v.tag, ([], []))
                steps.append(int(event.step))
                values.append(float(v.simple_value))
    return {k: (np.asarray(s), np.asarray(v)) for k, (s, v) in out.items()}
