"""Time to write (and read back) a meta-training checkpoint, and its size, per LPG preset.

The checkpoint is the whole `MetaState` (rule, Adam state, every lifetime's agent, optimiser,
environments and meta-critic, the bandits), written by `learned_rl._checkpoint.save`: serialise the
leaves, SHA-256 them, write a temporary file, fsync, rename. The state's shapes come from
`eqx.filter_eval_shape(meta_init, ...)` and its arrays are filled with zeros, which costs the same
to write as real values (the format is raw arrays, not compressed) and avoids running the paper
preset's initialisation on a CPU.

    python benchmarks/checkpoint_io.py                       # cpu and paper presets, lpg-tabular
    python benchmarks/checkpoint_io.py --presets cpu --tasks gridworld/dense --repeats 5
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from learned_rl import tasks as task_registry
from learned_rl._checkpoint import load, save
from learned_rl.meta._meta_train import meta_init
from learned_rl.meta._presets import build, get_preset


def zeros_like_state(preset: str, task_names: list[str]):
    ts = [task_registry.make(n) for n in task_names]
    p = get_preset(preset)

    def make(key):
        rule, est, cfg = build(p, ts, key=key)
        return meta_init(rule, ts, est, cfg, key=key)

    shapes = eqx.filter_eval_shape(make, jax.random.PRNGKey(0))
    return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype) if isinstance(s, jax.ShapeDtypeStruct) else s, shapes), shapes


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", default="cpu,paper")
    ap.add_argument("--tasks", default="lpg-tabular")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--dir", default=None, help="where to write (default: a temporary directory)")
    args = ap.parse_args()
    names = task_registry.resolve(args.tasks)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, jax {jax.__version__} {jax.devices()[0].platform}")
    print(f"tasks: {args.tasks} ({len(names)}); median of {args.repeats} writes/reads\n")
    print(f"{'preset':<8}{'leaves':>8}{'size (MB)':>12}{'write (s)':>12}{'write MB/s':>12}{'read+check (s)':>16}")
    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        for preset in args.presets.split(","):
            state, shapes = zeros_like_state(preset, names)
            state = jax.block_until_ready(state)
            path = Path(d) / f"checkpoint-{preset}.eqx"
            writes, reads = [], []
            for _ in range(args.repeats):
                t = time.perf_counter()
                save(path, state, kind="lpg-meta-state", config={"preset": preset})
                writes.append(time.perf_counter() - t)
                t = time.perf_counter()
                _, back = load(path, lambda c: shapes, kind="lpg-meta-state")
                jax.block_until_ready(back)
                reads.append(time.perf_counter() - t)
            size = path.stat().st_size / 1e6
            w = statistics.median(writes)
            n = len(jax.tree.leaves(state))
            print(f"{preset:<8}{n:>8}{size:>12.2f}{w:>12.3f}{size / w:>12.1f}{statistics.median(reads):>16.3f}", flush=True)
            np.testing.assert_equal(len(jax.tree.leaves(back)), n)
            del state, back


if __name__ == "__main__":
    main()
