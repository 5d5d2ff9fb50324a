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


def summarize_trace(directory: str, top: int = 12) -> None:
    """Print what one traced `train` call executed: XLA:CPU's thunks (one trace event per executed
    fusion, dot, copy, ...) grouped by how often each instruction ran (an instruction in the rollout
    loop runs once per env step, one in the minibatch loop once per minibatch step, ...), and within
    the minibatch group their time by kind. The tracer adds a few µs to every thunk, so counts are
    exact but times are inflated (most for the cheap thunks), and it keeps at most 1M events, so a
    long call is cut short: trace a short run (``--steps 20480``)."""
    import collections
    import glob
    import gzip
    import json

    path = sorted(glob.glob(os.path.join(directory, "**", "perfetto_trace.json.gz"), recursive=True))[-1]
    with gzip.open(path) as f:
        d = json.load(f)
    events = [e for e in (d["traceEvents"] if isinstance(d, dict) else d) if e.get("ph") == "X" and e.get("dur") is not None]
    # the program's execution: the longest thunk-executor span (its events carry the thunks)
    run = max((e for e in events if e["name"] == "ThunkExecutor::Execute"), key=lambda e: e["dur"])
    t0, t1 = run["ts"], run["ts"] + run["dur"]
    skip = ("$", "end: ", "CommonPjRt", "PjitFunction", "Allocate", "Parse", "Handle", "ThunkExecutor", "Threadpool")
    thunks = [e for e in events if t0 <= e["ts"] <= t1 and not e["name"].startswith(skip)]
    runs = collections.Counter(e["name"] for e in thunks)
    time = collections.Counter()
    for e in thunks:
        time[e["name"]] += e["dur"]
    groups = collections.defaultdict(list)
    for name, n in runs.items():
        groups[n].append(name)
    total = len(thunks)
    print(f"\ntrace: {total:,} thunk executions of {len(runs)} instructions in {(t1 - t0) / 1e3:.0f} ms (traced)")
    print(f"{'ran':>8} {'instructions':>12} {'executions':>11} {'share':>6}  kinds")
    for n in sorted(groups, key=lambda n: -n * len(groups[n]))[:top]:
        kinds = collections.Counter(name.split(".")[0] for name in groups[n])
        print(f"{n:>7}x {len(groups[n]):>12} {n * len(groups[n]):>11,} {n * len(groups[n]) / total:>6.0%}  "
              + ", ".join(f"{k} {c}" for k, c in kinds.most_common(4)))
    # the minibatch loop: the largest group of instructions that ran the same (smaller) number of times
    mb = max((n for n in groups if len(groups[n]) >= 20), key=lambda n: len(groups[n]))
    by_kind = collections.Counter()
    for name in groups[mb]:
        by_kind[name.split(".")[0]] += time[name]
    t_mb = sum(by_kind.values())
    print(f"\nthe {len(groups[mb])} instructions that ran {mb}x (the minibatch step): {t_mb / mb:.0f} µs per step (traced), by kind:")
    for k, v in by_kind.most_common(8):
        print(f"  {k:<38}{v / t_mb:>6.0%}")


if __name__ == "__main__":
    main()
