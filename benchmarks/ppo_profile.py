"""Where PPO's time goes: the rollouts alone, the updates alone, and the whole training run.

The config is `benchmarks/vs_peers.py`'s CartPole case (PureJaxRL's: 4 envs x 128 steps, 4 epochs x
4 minibatches, MLP 64-64 tanh, 500k steps). Each part runs as its own compiled program for the
same number of iterations as a training run (`lax.scan`), later calls only, A B C A B C:

- ``rollout``: `collect` of 128 steps x 4 envs with a fixed agent (acting and env stepping);
- ``update``: `PPO.update` (GAE, 4 x 4 minibatch gradient steps, Adam) on a fixed trajectory;
- ``train``: the real thing, both interleaved.

``--trace DIR`` also writes a perfetto/TensorBoard trace of one later `train` call
(`jax.profiler.trace`) and prints its thunks summed by kind, and ``--dump DIR`` the optimised HLO of the training program
(``XLA_FLAGS=--xla_dump_to``, set before JAX starts).

    python benchmarks/ppo_profile.py --repeats 3
    python benchmarks/ppo_profile.py --seeds 8
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="CartPole-v1")
    p.add_argument("--steps", type=int, default=500_000)
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--trace", default=None, help="write a jax.profiler trace of one train call here")
    p.add_argument("--dump", default=None, help="dump the optimised HLO here (XLA_FLAGS)")
    args = p.parse_args(argv)
    if args.dump:
        if "jax" in sys.modules:
            raise SystemExit("--dump must be set before JAX starts")
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + f" --xla_dump_to={args.dump} --xla_dump_hlo_as_text").strip()

    import equinox as eqx
    import jax

    from learned_rl import tasks
    from learned_rl.baselines import PPO
    from learned_rl import AgentConfig, TrainConfig, collect, final_return, train
    from learned_rl._learner import _grad_steps, init, make_optimizer

    task = tasks.make(args.task)
    rule = PPO()
    config = TrainConfig(
        total_steps=args.steps, num_envs=4, rollout_len=128, optimizer="adam", learning_rate=2.5e-4,
        max_grad_norm=0.5, anneal_lr=False, agent=AgentConfig(hidden=(64, 64), activation="tanh"),
    )
    U = config.num_updates
    keys = jax.random.split(jax.random.PRNGKey(0), args.seeds)
    optimizer = make_optimizer(config, _grad_steps(rule))

    def rollouts(key):
        s = init(rule, task, config, key=key)

        def body(carry, k):
            carry, traj, stats = collect(s.agent, task.env, s.env_params, carry, config.rollout_len, key=k)
            return carry, stats.count
        return jax.lax.scan(body, s.env, jax.random.split(key, U))[1]

    def updates(key):
        s = init(rule, task, config, key=key)
        _, traj, _ = collect(s.agent, task.env, s.env_params, s.env, config.rollout_len, key=key)

        def body(c, k):
            agent, opt_state = c
            agent, opt_state, m = rule.update(agent, opt_state, optimizer, traj, key=k)
            return (agent, opt_state), m["loss"]
        return jax.lax.scan(body, (s.agent, s.opt_state), jax.random.split(key, U))[1]

    def whole(key):
        return train(rule, task, config, key=key)[1]

    progs = {name: eqx.filter_jit(jax.vmap(f)) for name, f in (("rollout", rollouts), ("update", updates), ("train", whole))}
    first, later = {}, {n: [] for n in progs}
    for name, f in progs.items():
        t = time.perf_counter()
        out = jax.block_until_ready(f(keys))
        first[name] = time.perf_counter() - t
        if name == "train":
            ret = float(final_return(out).mean())
    for _ in range(args.repeats):
        for name, f in progs.items():
            t = time.perf_counter()
            jax.block_until_ready(f(keys))
            later[name].append(time.perf_counter() - t)
    med = {n: statistics.median(v) for n, v in later.items()}
    print(f"PPO on {args.task}: {args.seeds} seed(s), {U} updates of 4 x 128 steps, 4 x 4 minibatches; jax {jax.__version__}, {jax.devices()[0].platform}")
    print(f"{'part':<9}{'first call':>12}{'later (median)':>16}{'share of train':>16}")
    for n in progs:
        print(f"{n:<9}{first[n]:>11.2f}s{med[n]:>15.2f}s{med[n] / med['train']:>15.0%}")
    print(f"rollout + update = {(med['rollout'] + med['update']) / med['train']:.0%} of train; final return {ret:.1f}")
    if args.trace:
        with jax.profiler.trace(args.trace, create_perfetto_trace=True):
            jax.block_until_ready(progs["train"](keys))
        print(f"trace written under {args.trace} (open with perfetto or TensorBoard)")
        summarize_trace(args.trace)


def summarize_trace(directory: str, top: int = 15) -> None:
    """Print where one traced `train` call spent its time: XLA:CPU's thunks (one event per executed
    fusion, dot, copy, ...) summed by kind, and the share of the program's wall time that no thunk
    covers (dispatch between thunks: the loop's per-iteration overhead)."""
    import collections
    import glob
    import gzip
    import json
    import re

    path = sorted(glob.glob(os.path.join(directory, "**", "perfetto_trace.json.gz"), recursive=True))[-1]
    with gzip.open(path) as f:
        d = json.load(f)
    events = [e for e in (d["traceEvents"] if isinstance(d, dict) else d) if e.get("ph") == "X"]
    run = max((e for e in events if e["name"].startswith("CommonPjRtLoadedExecutable::Execute")), key=lambda e: e.get("dur", 0))
    t0, t1 = run["ts"], run["ts"] + run["dur"]
    skip = ("$", "CommonPjRt", "PjitFunction", "end: ", "Allocate", "Parse", "Handle", "while", "ThunkExecutor", "Threadpool")
    thunks = [e for e in events if t0 <= e["ts"] <= t1 and not e["name"].startswith(skip) and e.get("dur") is not None]
    # thunks run on several threads; the union of their intervals is the time some thunk was running
    spans = sorted((e["ts"], e["ts"] + e["dur"]) for e in thunks)
    busy, end = 0.0, t0
    for a, b in spans:
        if b > end:
            busy += b - max(a, end)
            end = b
    kind = collections.Counter()
    count = collections.Counter()
    for e in thunks:
        k = re.sub(r"[._]\d+$", "", e["name"])
        kind[k] += e["dur"]
        count[k] += 1
    total = t1 - t0
    print(f"\ntrace of one train call: {total / 1e3:.1f} ms; {len(thunks):,} thunk executions "
          f"({len(thunks) / max(total, 1) * 1e3:.0f} per ms, mean {sum(kind.values()) / max(len(thunks), 1):.1f} µs); "
          f"some thunk running {busy / total:.0%} of the time, none {1 - busy / total:.0%}")
    print(f"{'thunk kind':<40}{'executions':>12}{'total ms':>10}{'share':>8}{'mean µs':>9}")
    for k, v in kind.most_common(top):
        print(f"{k[:39]:<40}{count[k]:>12,}{v / 1e3:>10.1f}{v / total:>8.0%}{v / count[k]:>9.2f}")


if __name__ == "__main__":
    main()
