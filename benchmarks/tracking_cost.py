"""What TensorBoard tracking costs a training run. `run_seeds` with a `TensorBoardTracker` callback
(each chunk's per-update metrics written as scalars) against the same run without one, alternately
(A B A B) in one process after a first, compiling call of each; the ratio is tracked / untracked,
per pair.

Run: `.venv/bin/python benchmarks/tracking_cost.py [--task CartPole-v1] [--rule ppo]
[--steps 500000] [--seeds 8] [--rounds 3]`.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

import jax
import numpy as np

from learned_rl import TensorBoardTracker, make_rule, run_seeds, tasks


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--task", default="CartPole-v1")
    ap.add_argument("--rule", default="ppo")
    ap.add_argument("--steps", type=int, default=500_000)
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    task, rule = tasks.make(args.task), make_rule(args.rule)
    cfg = rule.default_config(task).replace(total_steps=args.steps)

    def once(track: bool) -> float:
        with tempfile.TemporaryDirectory() as d:
            tracker = TensorBoardTracker(d) if track else None
            t = time.perf_counter()
            r = run_seeds(rule, task, cfg, num_seeds=args.seeds, progress=False, callback=tracker)
            jax.block_until_ready(r.state)
            if tracker is not None:
                tracker.close()
            return time.perf_counter() - t

    once(False), once(True)  # compile both (the same program: the callback runs on the host)
    times = {"untracked": [], "tracked": []}
    for _ in range(args.rounds):
        for name in times:
            times[name].append(once(name == "tracked"))
            print(f"{name}: {times[name][-1]:.2f} s", flush=True)
    ratios = [t / u for u, t in zip(times["untracked"], times["tracked"])]
    print(f"\n{args.rule} on {args.task}, {args.steps:,} steps × {args.seeds} seeds, {cfg.num_updates} updates; "
          f"{platform.machine()}, {os.cpu_count()} CPUs, jax {jax.__version__}")
    print(f"tracked / untracked per pair: {', '.join(f'{r:.3f}' for r in ratios)} (median {np.median(ratios):.3f})")


if __name__ == "__main__":
    main()
