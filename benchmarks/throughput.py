"""Throughput benchmark: raw environment stepping per task family, and training speed of A2C and PPO.

Run: `.venv/bin/python benchmarks/throughput.py [--quick]`. Prints one line per figure.
Compile time and run time are reported separately (a first call includes compilation; later calls
with a new key reuse the compiled program).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import jax

from learned_rl import tasks
from learned_rl.baselines import A2C, PPO
from learned_rl import final_return, train


def raw_stepping(name: str, num_envs: int = 256, steps: int = 1000) -> float:
    task = tasks.make(name)
    env, params = task.env, task.default_params

    @jax.jit
    def run(key):
        k0, k1 = jax.random.split(key)
        obs, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(k0, num_envs), params)

        def step(s, k):
            ka, ks = jax.random.split(k)
            a = jax.random.randint(ka, (num_envs,), 0, task.num_actions)
            _, s, r, *_ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(jax.random.split(ks, num_envs), s, a, params)
            return s, r.sum()

        _, rs = jax.lax.scan(step, state, jax.random.split(k1, steps))
        return rs.sum()

    jax.block_until_ready(run(jax.random.PRNGKey(0)))
    t = time.perf_counter()
    jax.block_until_ready(run(jax.random.PRNGKey(1)))
    return num_envs * steps / (time.perf_counter() - t)


def timed_training(rule, task_name: str, config=None, seeds: int = 1):
    task = tasks.make(task_name)
    config = config or rule.default_config(task)
    if seeds == 1:
        f = jax.jit(lambda k: train(rule, task, config, key=k))
        keys = [jax.random.PRNGKey(0), jax.random.PRNGKey(1)]
    else:
        f = jax.jit(jax.vmap(lambda k: train(rule, task, config, key=k)))
        keys = [jax.random.split(jax.random.PRNGKey(0), seeds), jax.random.split(jax.random.PRNGKey(1), seeds)]
    t = time.perf_counter()
    jax.block_until_ready(f(keys[0]))
    first = time.perf_counter() - t
    t = time.perf_counter()
    _, m = jax.block_until_ready(f(keys[1]))
    later = time.perf_counter() - t
    return config, first, later, final_return(m)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true", help="skip the 8-seed PPO run")
    args = p.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, jax {jax.__version__} on {jax.devices()[0].platform}")
    print("\n# raw env stepping, random actions, 256 envs x 1000 steps (compiled; compile excluded)")
    for name in ["gridworld/dense", "gridworld/long_dense", "random_gridworld/dense", "chain/short", "chain/distractor", "CartPole-v1", "Breakout-MinAtar"]:
        print(f"{name:<26} {raw_stepping(name) / 1e6:8.2f} M env steps/s")

    print("\n# training (first call = compile + run; later call = run only, new key)")
    cfg, first, later, fin = timed_training(A2C(), "gridworld/dense")
    print(f"A2C gridworld/dense ({cfg.num_envs}x{cfg.rollout_len}, {cfg.total_steps} steps): first {first:.1f} s, later {later:.1f} s = {cfg.total_steps / later / 1e3:.0f}k env steps/s, final return {float(fin):.2f}")
    cfg, first, later, fin = timed_training(PPO(), "CartPole-v1")
    print(f"PPO CartPole-v1 ({cfg.num_envs}x{cfg.rollout_len}, {cfg.total_steps} steps): first {first:.1f} s, later {later:.1f} s = {cfg.total_steps / later / 1e3:.0f}k env steps/s, final return {float(fin):.1f}")
    if not args.quick:
        cfg, first, later, fin = timed_training(PPO(), "CartPole-v1", seeds=8)
        print(f"PPO CartPole-v1, 8 seeds vmapped: first {first:.1f} s, later {later:.1f} s = {8 * cfg.total_steps / later / 1e3:.0f}k env steps/s, mean final return {float(fin.mean()):.1f}")


if __name__ == "__main__":
    main()
