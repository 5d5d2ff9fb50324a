"""One sweep program against the same grid run point after point. `run_sweep` trains every point ×
seed of a grid in one compiled, vmapped program; the alternative a user writes is a loop of
`run_seeds` calls, one per point (each compiled on its own, since a Python-float hyperparameter
is part of the program). Both run alternately (A B A B) in one process, compile included, since
that is the time a user waits; the ratio is loop / sweep.

Run: `.venv/bin/python benchmarks/sweep_vs_loop.py [--task CartPole-v1] [--rule ppo] [--steps 50000]
[--seeds 4] [--rounds 2]`. The grid: learning rate {1e-4, 3e-4, 1e-3} × gamma {0.99, 0.995}.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import time

import jax
import numpy as np

from learned_rl import make_rule, run_seeds, tasks
from learned_rl._experiment import run_sweep, sweep_points

GRID = {"learning_rate": [1e-4, 3e-4, 1e-3], "gamma": [0.99, 0.995]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--task", default="CartPole-v1")
    ap.add_argument("--rule", default="ppo")
    ap.add_argument("--steps", type=int, default=50_000)
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    task, rule = tasks.make(args.task), make_rule(args.rule)
    cfg = rule.default_config(task).replace(total_steps=args.steps)
    points = sweep_points(GRID)

    def sweep():
        res = run_sweep(rule, task, cfg, GRID, num_seeds=args.seeds, progress=False)
        jax.block_until_ready(res.state)
        return res

    def loop():
        out = []
        for p in points:
            r = run_seeds(dataclasses.replace(rule, gamma=p["gamma"]), task, cfg.replace(learning_rate=p["learning_rate"]), num_seeds=args.seeds, progress=False)
            jax.block_until_ready(r.state)
            out.append(r)
        return out

    times = {"sweep": [], "loop": []}
    for _ in range(args.rounds):
        for name, fn in (("sweep", sweep), ("loop", loop)):
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
            print(f"{name}: {times[name][-1]:.1f} s", flush=True)
    ratios = [lp / sw for sw, lp in zip(times["sweep"], times["loop"])]
    print(f"\n{args.rule} on {args.task}, {len(points)} points × {args.seeds} seeds × {args.steps:,} env steps; {platform.machine()} CPU, "
          f"{os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}")
    print(f"sweep (one program): {', '.join(f'{x:.1f}' for x in times['sweep'])} s; loop of runs: {', '.join(f'{x:.1f}' for x in times['loop'])} s")
    print(f"loop / sweep: {', '.join(f'{r:.2f}' for r in ratios)} (mean {np.mean(ratios):.2f})")


if __name__ == "__main__":
    main()
