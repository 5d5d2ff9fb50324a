"""ES throughput per strategy: env steps per second of one meta-training generation, every inner
update included, for our OpenAI-ES and evosax's SNES, PGPE, CMA-ES and Open_ES on the same
fitness problem (LPO: whole PPO training runs; or LPG: whole lifetimes).

Each strategy's meta-step is compiled first (compile time reported apart); then the strategies run
one generation each in turn, round after round (A B C D E A B C D E ...), so a slow minute of the
machine hits every strategy alike; the table gives each strategy's median over rounds and its
ratio to ours (`openes`), which is what to compare across machines.

Run: `.venv/bin/python benchmarks/es_strategies.py [--kind lpo] [--task CartPole-v1]
      [--population 16] [--inner-env-steps 20000] [--rounds 3] [--strategies openes,snes,pgpe,cma_es,open_es]`
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import jax
import numpy as np

from learned_rl import tasks
from learned_rl.meta import make_meta_step, meta_init
from learned_rl.meta._presets import ES_STRATEGIES, get_lpo_preset, get_preset


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kind", choices=["lpo", "lpg"], default="lpo", help="lpo: whole PPO runs with an LPO drift; lpg: whole LPG lifetimes")
    ap.add_argument("--task", default="CartPole-v1")
    ap.add_argument("--population", type=int, default=16)
    ap.add_argument("--inner-env-steps", "--inner-steps", dest="inner_steps", type=int, default=20_000, help="lpo: env steps per member run; lpg: sets lifetime_updates = this / (16 envs × 20 steps)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--strategies", default=",".join(ES_STRATEGIES))
    args = ap.parse_args()
    names = args.strategies.split(",")
    task = [tasks.make(args.task)]
    steps = {}
    compiled = {}
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, jax {jax.__version__}, {jax.devices()[0].platform}")
    for name in names:
        if args.kind == "lpo":
            p = get_lpo_preset("cpu", es_strategy=name, population=args.population, inner_env_steps=args.inner_steps, eval_center=False)
        else:
            p = get_preset("cpu", estimator="es", es_strategy=name, population=args.population, lifetime_updates=max(5, args.inner_steps // 320))
        rule, est, cfg = p.build(task, key=jax.random.PRNGKey(0))
        step = make_meta_step(est, cfg)
        state = meta_init(rule, task, est, cfg, key=jax.random.PRNGKey(1))
        t0 = time.perf_counter()
        state, m = step(state)
        jax.block_until_ready(m)
        compiled[name] = (step, state, est.env_steps_per_estimate(), time.perf_counter() - t0)
        steps[name] = []
    for _ in range(args.rounds):
        for name in names:
            step, state, n, c = compiled[name]
            t0 = time.perf_counter()
            state, m = step(state)
            jax.block_until_ready(m)
            steps[name].append(time.perf_counter() - t0)
            compiled[name] = (step, state, n, c)
    base = float(np.median(steps[names[0]]))
    print(f"{args.kind} on {args.task}, population {args.population}, {compiled[names[0]][2]:,} env steps per generation, {args.rounds} rounds\n")
    print(f"| strategy | first call (compile + 1 generation) | generation (median) | env steps/s | time vs {names[0]} |")
    print("|---|---|---|---|---|")
    for name in names:
        _, _, n, c = compiled[name]
        t = float(np.median(steps[name]))
        print(f"| {name} | {c:.1f} s | {t:.2f} s | {n / t:,.0f} | {t / base:.2f} |")


if __name__ == "__main__":
    main()
