"""The MinAtar CNN torso: its convolution as one matrix product over shifted frames (what
`CNNTorso` computes) against `equinox.nn.Conv2d` (XLA's convolution), side by side.

Both compute the same sums (`tests/test_learner.py::test_cnn_torso_is_the_convolution_it_holds`
checks them equal to float rounding, forward and per parameter). Three measurements, each
alternating the two implementations (A B A B ..., later calls only, the median reported):

- ``act``: the torso's forward pass on a rollout's observations, 20 steps of the envs in a scan
  (acting);
- ``grad``: its gradient on one rollout batch (the update);
- ``train``: a whole training run (`learned_rl.train`, A2C or an LPG rule, MinAtar defaults and
  `--seeds` vmapped), the `CNNTorso.__call__` of each implementation swapped in before it is traced.

    python benchmarks/cnn_torso.py --task Breakout-MinAtar --seeds 2 --repeats 3
    python benchmarks/cnn_torso.py --rule lpg:lpg_swing --steps 64000
"""

from __future__ import annotations

import argparse
import statistics
import time


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="Breakout-MinAtar")
    p.add_argument("--rule", default="a2c", help="a2c | lpg:NAME (the CNN agent either way)")
    p.add_argument("--steps", type=int, default=128_000, help="env steps of each training run")
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)

    import equinox as eqx
    import jax
    import jax.numpy as jnp

    from learned_rl import load_rule, tasks, train
    from learned_rl._agent import CNNTorso
    from learned_rl.baselines import A2C

    task = tasks.make(args.task)
    if task.obs_kind != "image":
        raise SystemExit(f"{args.task} has no image observations: the CNN torso does not apply")
    ours = CNNTorso.__call__

    def conv2d(self, obs):  # the same layer through XLA's convolution
        x = jax.nn.relu(self.conv(jnp.transpose(obs.astype(jnp.float32), (2, 0, 1))))
        return jax.nn.relu(self.dense(jnp.ravel(x)))

    impls = {"conv2d": conv2d, "matmul (ours)": ours}
    rule = A2C() if args.rule == "a2c" else load_rule(args.rule.removeprefix("lpg:"))
    config = rule.default_config(task).replace(total_steps=args.steps)
    h, w, c = task.obs_shape
    n, b = args.seeds, config.num_envs
    torsos = jax.vmap(lambda k: CNNTorso(task.obs_shape, config.agent.cnn_channels, config.agent.cnn_hidden, key=k))(
        jax.random.split(jax.random.PRNGKey(0), n))
    obs = jax.random.bernoulli(jax.random.PRNGKey(1), 0.1, (config.rollout_len, n, b, h, w, c)).astype(jnp.float32)

    def programs(call):
        fwd = lambda t, x: call(t, x)
        act = jax.jit(lambda ts, o: jax.lax.scan(lambda s, ob: (s, jnp.sum(jax.vmap(lambda t, oo: jax.vmap(lambda x: fwd(t, x))(oo))(ts, ob))), 0, o)[1])
        loss = lambda t, o: jnp.mean(jax.vmap(lambda x: fwd(t, x))(o) ** 2)
        grad = jax.jit(jax.vmap(eqx.filter_grad(loss)))
        flat = obs.transpose(1, 0, 2, 3, 4, 5).reshape(n, -1, h, w, c)
        keys = jax.random.split(jax.random.PRNGKey(2), n)
        run = jax.jit(jax.vmap(lambda k: train(rule, task, config, key=k)[1]))
        return {"act": lambda: act(torsos, obs), "grad": lambda: grad(torsos, flat), "train": lambda: run(keys)}

    compiled = {}
    for name, call in impls.items():  # trace each with its own __call__ in place
        CNNTorso.__call__ = call
        progs = programs(call)
        t0 = time.perf_counter()
        for f in progs.values():
            jax.block_until_ready(f())
        print(f"{name}: traced, compiled and ran once in {time.perf_counter() - t0:.1f} s")
        compiled[name] = progs
    CNNTorso.__call__ = ours
    print(f"\n{args.task}, {args.rule}, {n} seeds × {b} envs × {config.rollout_len} steps; train: {args.steps:,} env steps per seed "
          f"({config.num_updates} updates); median of {args.repeats} later calls, A B alternated")
    print(f"{'part':<8}" + "".join(f"{k:>18}" for k in impls) + f"{'conv2d / ours':>16}")
    for part in ("act", "grad", "train"):
        times = {k: [] for k in impls}
        for _ in range(args.repeats):
            for k in impls:
                t0 = time.perf_counter()
                jax.block_until_ready(compiled[k][part]())
                times[k].append(time.perf_counter() - t0)
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"{part:<8}" + "".join(f"{med[k]:>16.3f} s" for k in impls) + f"{med['conv2d'] / med['matmul (ours)']:>15.2f}×")


if __name__ == "__main__":
    main()
