"""Meta-training throughput with the population on 1 and on N devices (`MetaTrainConfig.devices`).

On a CPU the devices are forced with ``XLA_FLAGS=--xla_force_host_platform_device_count=N`` (set by
this script before JAX starts). They share the machine's cores, so on a small CPU the figures show
the *overhead* of sharding (partitioned programs, all-reduces, more threads than cores), not a
speed-up; on several GPUs each device runs its slice of the population in parallel.

    python benchmarks/meta_sharding.py                            # cpu preset, gridworld/dense, 1 and 4 devices
    python benchmarks/meta_sharding.py --devices 1,2,4 --steps 20 --tasks lpg-tabular
    python benchmarks/meta_sharding.py --set lifetimes_per_task=8 --set num_envs=32

Each configuration runs in its own process (so the forced device count and the compilation cache
are fresh); the first meta-step (compilation) is timed separately from the next `--steps`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.abspath(__file__)


def _worker(args) -> None:
    import platform
    import time

    import jax

    from learned_rl import tasks as task_registry
    from learned_rl.meta._meta_train import make_meta_step, meta_init, state_layout
    from learned_rl.meta._presets import build, get_preset
    from learned_rl.meta._sharding import check_divisible, place, population_mesh

    ts = [task_registry.make(n) for n in task_registry.resolve(args.tasks)]
    p = get_preset(args.preset, **json.loads(args.sets))
    rule, est, cfg = build(p, ts, key=jax.random.PRNGKey(0))
    import dataclasses

    cfg = dataclasses.replace(cfg, devices=args.worker)
    mesh = population_mesh(cfg.devices)
    check_divisible(est.population_size(), mesh)
    state = meta_init(rule, ts, est, cfg, key=jax.random.PRNGKey(1))
    state = place(state, state_layout(est, state), mesh)
    step = make_meta_step(est, cfg)
    t = time.perf_counter()
    state, m = step(state)
    jax.block_until_ready(state)
    first = time.perf_counter() - t
    t = time.perf_counter()
    for _ in range(args.steps):
        state, m = step(state)
    jax.block_until_ready(state)
    dt = time.perf_counter() - t
    print(json.dumps({
        "devices": args.worker,
        "visible_devices": len(jax.devices()),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, jax {jax.__version__} {jax.devices()[0].platform}",
        "population": est.population_size() * len(ts),
        "first_step_s": first,
        "steps": args.steps,
        "steps_per_s": args.steps / dt,
        "env_steps_per_s": args.steps * est.env_steps_per_estimate() / dt,
        "env_steps_per_meta_step": est.env_steps_per_estimate(),
        "meta_loss": float(m["meta_loss"]),
    }))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--tasks", default="gridworld/dense")
    ap.add_argument("--devices", default="1,4", help="comma-separated device counts")
    ap.add_argument("--steps", type=int, default=10, help="timed meta-steps after the first")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="preset override (JSON value)")
    ap.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--sets", default="{}", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker is not None:
        return _worker(args)
    from learned_rl._cli import _parse_sets

    sets = _parse_sets(args.set)
    rows = []
    for n in [int(x) for x in args.devices.split(",")]:
        env = dict(os.environ)
        flags = [f for f in env.get("XLA_FLAGS", "").split() if "force_host_platform_device_count" not in f]
        env["XLA_FLAGS"] = " ".join(flags + [f"--xla_force_host_platform_device_count={n}"])
        cmd = [sys.executable, HERE, "--worker", str(n), "--preset", args.preset, "--tasks", args.tasks, "--steps", str(args.steps), "--sets", json.dumps(sets)]
        r = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if r.returncode:
            sys.exit(f"worker for {n} devices failed:\n{r.stderr[-3000:]}")
        rows.append(json.loads(r.stdout.strip().splitlines()[-1]))
        print(f"[{n} device(s) done]", file=sys.stderr, flush=True)
    print(f"machine: {rows[0]['machine']}")
    print(f"preset {args.preset} {sets or ''} on {args.tasks}: population {rows[0]['population']} lifetimes, "
          f"{rows[0]['env_steps_per_meta_step']:,} env steps per meta-step; {args.steps} timed meta-steps\n")
    print(f"{'devices':>8}{'first step (s)':>16}{'meta-steps/s':>14}{'env steps/s':>14}{'vs 1 device':>13}")
    base = rows[0]["steps_per_s"]
    for r in rows:
        print(f"{r['devices']:>8}{r['first_step_s']:>16.1f}{r['steps_per_s']:>14.3f}{r['env_steps_per_s']:>14,.0f}{r['steps_per_s'] / base:>12.2f}x")


if __name__ == "__main__":
    main()
