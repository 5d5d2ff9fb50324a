"""Brax throughput on CPU: (a) environment stepping per physics backend, (b) PPO/DPO training.

    python benchmarks/brax_throughput.py env   [--envs hopper,reacher] [--backends spring,positional]
                                               [--num-envs 512] [--steps 200]
    python benchmarks/brax_throughput.py train [--env hopper] [--backend positional] [--rules ppo,dpo]
                                               [--updates 20]

(a) steps `--num-envs` copies of each environment with uniform random actions through our
`tasks.make("brax/<env>")` wrapper (auto-reset with fresh initial noise, truncation at 1000 steps)
for `--steps` steps under one `lax.scan`, and prints compile time and env steps/s; `--raw` adds a
row per env that calls brax's own `env.step` with no reset logic, to show the wrapper's overhead.

(b) trains with `learned_rl.train`'s update step at the PureJaxRL-sized configuration
(2048 envs × 10 steps, 4 epochs × 32 minibatches, actor and critic 2×256 tanh, observation and
reward normalisation) and prints compile time (first call of a compiled chunk of updates) and env
steps/s including training (later calls).

Timings include nothing but the compiled calls (`block_until_ready`). Run one at a time: the
machine has 2 cores.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import equinox as eqx
import jax
import jax.numpy as jnp


def bench_env(env_name: str, backend: str, num_envs: int, steps: int, raw: bool = False) -> tuple[float, float]:
    from learned_rl import tasks
    task = tasks.make(f"brax/{env_name}", backend=backend)
    env = task.env
    A = task.num_actions

    if raw:
        benv = env.brax_env

        def run(key):
            s = jax.vmap(benv.reset)(jax.random.split(key, num_envs))

            def body(s, k):
                a = jax.random.uniform(k, (num_envs, A), minval=-1, maxval=1)
                s = jax.vmap(benv.step)(s, a)
                return s, s.reward.sum()

            s, r = jax.lax.scan(body, s, jax.random.split(key, steps))
            return r.sum()
    else:

        def run(key):
            obs, st = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key, num_envs), None)

            def body(st, k):
                ka, ks = jax.random.split(k)
                a = jax.random.uniform(ka, (num_envs, A), minval=-1, maxval=1)
                obs, st, r, term, trunc, info = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
                    jax.random.split(ks, num_envs), st, a, None
                )
                return st, r.sum() + term.sum()

            st, r = jax.lax.scan(body, st, jax.random.split(key, steps))
            return r.sum()

    f = jax.jit(run)
    t0 = time.perf_counter()
    f(jax.random.PRNGKey(0)).block_until_ready()
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    f(jax.random.PRNGKey(1)).block_until_ready()
    run_s = time.perf_counter() - t0
    return compile_s, num_envs * steps / run_s


def bench_train(env_name: str, backend: str | None, rule_name: str, updates: int, num_envs: int, num_minibatches: int):
    from learned_rl import tasks
    from learned_rl._agent import AgentConfig
    from learned_rl._learner import init, update_step
    from learned_rl._registry import make_rule

    opts = {} if backend is None else {"backend": backend}
    task = tasks.make(f"brax/{env_name}", **opts)
    rule = dataclasses.replace(make_rule(rule_name), num_epochs=4, num_minibatches=num_minibatches)
    config = rule.default_config(task).replace(
        num_envs=num_envs, rollout_len=10, total_steps=num_envs * 10 * 1000, learning_rate=3e-4,
        agent=AgentConfig(hidden=(256, 256), activation="tanh"), normalize_obs=True, normalize_reward=True,
    )

    @eqx.filter_jit
    def chunk(state):
        return jax.lax.scan(lambda s, _: update_step(rule, task, config, s), state, None, length=updates)

    state = eqx.filter_jit(lambda k: init(rule, task, config, key=k))(jax.random.PRNGKey(0))
    t0 = time.perf_counter()
    state, m = chunk(state)
    jax.block_until_ready(m)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    state, m = chunk(state)
    jax.block_until_ready(m)
    second = time.perf_counter() - t0
    sps = updates * config.steps_per_update / second
    loss = float(jnp.mean(m["loss"]))
    return first - second, sps, loss, config, task.env.backend


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="part", required=True)
    e = sub.add_parser("env")
    e.add_argument("--envs", default="hopper,inverted_pendulum,reacher,ant,halfcheetah")
    e.add_argument("--backends", default="spring,positional,generalized,mjx")
    e.add_argument("--num-envs", type=int, default=512)
    e.add_argument("--steps", type=int, default=200)
    e.add_argument("--raw", action="store_true", help="also time brax's own step without reset logic")
    t = sub.add_parser("train")
    t.add_argument("--env", default="hopper")
    t.add_argument("--backend", default=None, help="default: the env's default backend")
    t.add_argument("--rules", default="ppo,dpo")
    t.add_argument("--updates", type=int, default=20, help="updates per timed call")
    t.add_argument("--num-envs", type=int, default=2048)
    t.add_argument("--num-minibatches", type=int, default=32)
    args = p.parse_args(argv)

    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, {os.cpu_count()} CPUs")
    if args.part == "env":
        print(f"\n{args.num_envs} envs × {args.steps} steps, uniform random actions\n")
        print("| env | backend | compile (s) | env steps/s |")
        print("|---|---|---|---|")
        for env_name in args.envs.split(","):
            for backend in args.backends.split(","):
                if env_name == "swimmer" and backend != "generalized":
                    continue
                try:
                    c, sps = bench_env(env_name, backend, args.num_envs, args.steps)
                    print(f"| {env_name} | {backend} | {c:.1f} | {sps:,.0f} |", flush=True)
                except Exception as ex:  # a backend that fails on this machine is reported, not fatal
                    print(f"| {env_name} | {backend} | failed: {type(ex).__name__}: {str(ex)[:80]} | – |", flush=True)
                if args.raw:
                    c, sps = bench_env(env_name, backend, args.num_envs, args.steps, raw=True)
                    print(f"| {env_name} | {backend} (raw brax step, no reset) | {c:.1f} | {sps:,.0f} |", flush=True)
    else:
        print()
        print("| env | backend | rule | envs × steps | epochs × minibatches | compile (s) | env steps/s (with training) | loss |")
        print("|---|---|---|---|---|---|---|---|")
        for rule_name in args.rules.split(","):
            c, sps, loss, cfg, backend = bench_train(
                args.env, args.backend, rule_name, args.updates, args.num_envs, args.num_minibatches
            )
            print(
                f"| {args.env} | {backend} | {rule_name} | {cfg.num_envs} × {cfg.rollout_len} | 4 × {args.num_minibatches} "
                f"| {c:.1f} | {sps:,.0f} | {loss:.3f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
