"""LPG meta-training throughput: compile time, seconds per meta-step, env steps/s (agent updates
plus meta-rollouts, with the meta-gradient) and peak memory, for each preset.

Run: `.venv/bin/python benchmarks/lpg_meta.py [--presets cpu,groove-bench,paper] [--steps 10]`.
Each preset runs in a fresh subprocess so that its peak RSS is its own.

- `cpu`: the default preset on `lpg-tabular` (5 tasks × 4 lifetimes × 16 envs × 20 steps, K = 5).
- `groove-bench`: exactly the public JAX LPG reference sizes (GRU 256, m = 8, 8 lifetimes × 64 envs
  × 20 steps, K = 5) on `gridworld/dense`: 61,440 env steps per meta-step.
- `cpu-all`: the `cpu` preset on `lpg-all` (15 tasks: lookup-table agents on the tabular grid
  worlds and chains, MLP agents trained by Adam on the random grid worlds and the distractor chain).
- `gpu`: the `gpu` preset (the `cpu` sizes, 64 lifetimes per task) on `lpg-all`: 960 lifetimes.
- `paper`: the paper's per-lifetime sizes (LSTM 256, m = 30, 64 envs × 20 steps, K = 5) on
  `lpg-tabular`, but with 1 lifetime per task instead of 192: the full 960-lifetime population does
  not fit a CPU; its time per meta-step scales linearly with the number of lifetimes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

CASES = {  # case: (preset, tasks, overrides)
    "cpu": ("cpu", "lpg-tabular", {}),
    "cpu-all": ("cpu", "lpg-all", {}),
    "gpu": ("gpu", "lpg-all", {}),
    "groove-bench": ("groove-bench", "gridworld/dense", {}),
    "paper": ("paper", "lpg-tabular", {"lifetimes_per_task": 1}),
}


def run_case(name: str, steps: int) -> dict:
    import jax

    from learned_rl import tasks
    from learned_rl.meta import make_meta_step, meta_init
    from learned_rl.meta._presets import build, get_preset

    preset, task_spec, over = CASES[name]
    ts = [tasks.make(n) for n in tasks.resolve(task_spec)]
    p = get_preset(preset, **over)
    rule, est, cfg = build(p, ts, key=jax.random.PRNGKey(0))
    state = meta_init(rule, ts, est, cfg, key=jax.random.PRNGKey(1))
    step = make_meta_step(est, cfg)
    t = time.perf_counter()
    state, m = step(state)
    jax.block_until_ready(m)
    compile_and_first = time.perf_counter() - t
    t = time.perf_counter()
    for _ in range(steps):
        state, m = step(state)
    jax.block_until_ready(m)
    per_step = (time.perf_counter() - t) / steps
    env_steps = est.env_steps_per_estimate()
    return {
        "preset": name,
        "tasks": task_spec,
        "lifetimes": len(ts) * est.problem.lifetimes_per_task,
        "env_steps_per_meta_step": env_steps,
        "compile_plus_first_step_s": round(compile_and_first, 1),
        "s_per_meta_step": round(per_step, 3),
        "meta_steps_per_s": round(1 / per_step, 2),
        "env_steps_per_s": round(env_steps / per_step),
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--presets", default="cpu,groove-bench,paper", help=f"cases: {', '.join(CASES)}")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--case", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.steps)))
        return
    import jax

    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, jax {jax.__version__} on {jax.devices()[0].platform}")
    for name in args.presets.split(","):
        out = subprocess.run([sys.executable, __file__, "--case", name, "--steps", str(args.steps)], capture_output=True, text=True)
        if out.returncode != 0:
            print(f"{name}: failed\n{out.stderr[-2000:]}")
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"{r['preset']:<13} {r['tasks']:<16} {r['lifetimes']:>3} lifetimes, {r['env_steps_per_meta_step']:>7} env steps/meta-step: "
            f"compile+first {r['compile_plus_first_step_s']:>6.1f} s, {r['s_per_meta_step']:.3f} s/meta-step "
            f"({r['meta_steps_per_s']:.2f} meta-steps/s, {r['env_steps_per_s'] / 1e3:.0f}k env steps/s), peak RSS {r['peak_rss_gb']:.2f} GB"
        )


if __name__ == "__main__":
    main()
