"""Our PPO against rejax's PPO, side by side, A B A B, on the same config: the ratio pair by pair.

Machines of the same type differ 2-3x from day to day, so a time is only ever compared with the
peer's time measured minutes apart on the same machine. Each case compiles both programs once (the
first call, compile included, is timed too), then alternates ours / rejax's later calls `--repeats`
times and prints every pair's ratio and their median.

Installs nothing itself: ``pip install -e '.[bench]'`` brings rejax (from PyPI) into the same
environment. Cases:

- ``cartpole``: CartPole-v1, 4 envs x 128 steps, 4 epochs x 4 minibatches, MLP 64-64 tanh, Adam
  2.5e-4 (no annealing: rejax has none), clip 0.2, GAE 0.95, entropy 0.01, value 0.5, grad norm
  0.5, 500k steps, one seed;
- ``cartpole<N>`` (``cartpole8``, ``cartpole32``, ``cartpole128``, ...): the same, N seeds vmapped in
  one program (``--cartpole-steps`` steps each: many seeds at 500k steps take minutes per call);
- ``hopper``: Brax hopper at PureJaxRL's size (2048 envs x 10 steps, 4 epochs x 32 minibatches,
  MLP 256-256 tanh, lr 3e-4, observation and reward normalisation), ``--hopper-steps`` steps
  (rejax reaches Brax through its brax2gymnax compat layer).

rejax's periodic evaluation is replaced by a no-op inside the timed call (it would add 128
evaluation episodes); its trained policy is evaluated afterwards, untimed, with rejax's own
`evaluate`. Our return is the mean return of the training episodes that ended in the last 10% of
updates. Both are printed so that "same return" can be checked.

    python benchmarks/vs_peers.py --cases cartpole,cartpole8 --repeats 3
    python benchmarks/vs_peers.py --cases cartpole32,cartpole128 --cartpole-steps 100000 --repeats 2
    python benchmarks/vs_peers.py --cases hopper --hopper-steps 1000000 --repeats 2
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

CASES = ("cartpole", "cartpole<N>", "hopper")
BRAX_BACKEND = "spring"  # our default backend for brax/hopper (tasks/brax_tasks.py); rejax gets the same


def _spec(case: str, hopper_steps: int, cartpole_steps: int = 500_000) -> dict:
    seeds = case[len("cartpole"):]
    if case.startswith("cartpole") and (seeds == "" or (seeds.isdigit() and int(seeds) > 0)):
        return dict(env="CartPole-v1", ours="CartPole-v1", seeds=int(seeds or 1), num_envs=4, num_steps=128,
                    num_epochs=4, num_minibatches=4, total=cartpole_steps, lr=2.5e-4, hidden=(64, 64), normalize=False)
    if case == "hopper":
        return dict(env="brax/hopper", ours="brax/hopper", seeds=1, num_envs=2048, num_steps=10, num_epochs=4,
                    num_minibatches=32, total=hopper_steps, lr=3e-4, hidden=(256, 256), normalize=True)
    raise SystemExit(f"unknown case {case!r} (cases: {', '.join(CASES)})")


def ours(spec: dict):
    """A jitted `keys -> final returns` for our PPO, and what it trains."""
    from learned_rl import tasks
    from learned_rl.baselines import PPO
    from learned_rl import AgentConfig, TrainConfig, final_return, train

    task = tasks.make(spec["ours"])
    rule = PPO(num_epochs=spec["num_epochs"], num_minibatches=spec["num_minibatches"])
    config = TrainConfig(
        total_steps=spec["total"], num_envs=spec["num_envs"], rollout_len=spec["num_steps"], optimizer="adam",
        learning_rate=spec["lr"], max_grad_norm=0.5, anneal_lr=False, agent=AgentConfig(hidden=spec["hidden"], activation="tanh"),
        normalize_obs=spec["normalize"], normalize_reward=spec["normalize"],
    )
    fn = jax.jit(jax.vmap(lambda k: train(rule, task, config, key=k)[1]))

    def run(keys):
        metrics = jax.block_until_ready(fn(keys))
        return metrics

    return run, lambda metrics: float(np.nanmean(final_return(metrics)))


class _FiveTuple:
    """The gymnax-API shim rejax 0.1.3 needs: gymnax 1.x's `step` returns (obs, state, reward,
    terminated, truncated, info); rejax unpacks the older (obs, state, reward, done, info)."""

    def __init__(self, env):
        self._env = env

    def step(self, key, state, action, params=None):
        obs, state, reward, terminated, truncated, info = self._env.step(key, state, action, params)
        return obs, state, reward, jnp.logical_or(terminated, truncated), info

    def __getattr__(self, name):
        if name.startswith("__") or name == "_env":  # copy/deepcopy probe before _env exists
            raise AttributeError(name)
        return getattr(self._env, name)


def rejax_ppo(spec: dict):
    """The same for rejax's PPO (timed call without evaluation; evaluated afterwards)."""
    from rejax import PPO as RejaxPPO
    from rejax.evaluate import evaluate

    config = dict(
        env=spec["env"], num_envs=spec["num_envs"], num_steps=spec["num_steps"], num_epochs=spec["num_epochs"],
        num_minibatches=spec["num_minibatches"], total_timesteps=spec["total"], learning_rate=spec["lr"], max_grad_norm=0.5,
        gamma=0.99, gae_lambda=0.95, clip_eps=0.2, ent_coef=0.01, vf_coef=0.5, eval_freq=spec["total"],
        skip_initial_evaluation=True, agent_kwargs={"activation": "tanh", "hidden_layer_sizes": spec["hidden"]},
    )
    if spec["normalize"]:
        config.update(normalize_observations=True, normalize_rewards=True)
    if spec["env"].startswith("brax/"):
        config["env_params"] = {"backend": BRAX_BACKEND}  # the physics our brax/hopper task uses
    from rejax.compat import create as rejax_env

    env, env_params = rejax_env(config.pop("env"), **config.pop("env_params", {}))
    algo = RejaxPPO.create(env=_FiveTuple(env), env_params=env_params, **config)
    timed = algo.replace(eval_callback=lambda a, ts, rng: jnp.zeros(()))
    fn = jax.jit(jax.vmap(lambda k: timed.train(k)[0]))

    def run(keys):
        return jax.block_until_ready(fn(keys))

    def score(ts):
        first = jax.tree.map(lambda x: x[0], ts)  # the first seed's policy, untimed
        lengths, returns = evaluate(algo.make_act(first), jax.random.PRNGKey(123), algo.env, algo.env_params, 32, algo.env_params.max_steps_in_episode)
        return float(jnp.mean(returns))

    return run, score


def _time(run, keys):
    t = time.perf_counter()
    out = run(keys)
    return time.perf_counter() - t, out


def bench(case: str, repeats: int, hopper_steps: int, cartpole_steps: int = 500_000) -> dict:
    spec = _spec(case, hopper_steps, cartpole_steps)
    keys = jax.random.split(jax.random.PRNGKey(0), spec["seeds"])
    runs = {"ours": ours(spec), "rejax": rejax_ppo(spec)}
    first, later, score = {}, {n: [] for n in runs}, {}
    for name, (run, sc) in runs.items():  # first calls (compile + run)
        first[name], out = _time(run, keys)
        score[name] = sc(out)
    for _ in range(repeats):  # A B A B
        for name, (run, _) in runs.items():
            later[name].append(_time(run, keys)[0])
    ratios = [r / o for o, r in zip(later["ours"], later["rejax"])]
    print(f"\n{case}: {spec['env']}, {spec['seeds']} seed(s), {spec['num_envs']} x {spec['num_steps']}, {spec['total']:,} steps")
    print(f"  first call (compile + run): ours {first['ours']:.1f} s, rejax {first['rejax']:.1f} s, rejax/ours {first['rejax'] / first['ours']:.2f}")
    for i, (o, r) in enumerate(zip(later["ours"], later["rejax"])):
        print(f"  pair {i + 1}: ours {o:.2f} s, rejax {r:.2f} s, rejax/ours {r / o:.2f}")
    print(f"  median rejax/ours (later calls): {statistics.median(ratios):.2f}  (> 1: ours is faster)")
    print(f"  return: ours {score['ours']:.1f} (training episodes, last 10%), rejax {score['rejax']:.1f} (32 evaluation episodes, seed 0)")
    return {"case": case, "first": first, "later": later, "median_ratio": statistics.median(ratios), "return": score}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", default="cartpole,cartpole8", help=f"comma-separated: {', '.join(CASES)}")
    p.add_argument("--repeats", type=int, default=3, help="A B pairs of later calls per case")
    p.add_argument("--hopper-steps", type=int, default=1_000_000)
    p.add_argument("--cartpole-steps", type=int, default=500_000, help="env steps per seed of the CartPole cases")
    args = p.parse_args(argv)
    try:
        import rejax  # noqa: F401
    except ImportError:
        raise SystemExit("vs_peers needs rejax: pip install -e '.[bench]'") from None
    print(f"devices: {jax.devices()}; jax {jax.__version__}")
    for case in args.cases.split(","):
        bench(case.strip(), args.repeats, args.hopper_steps, args.cartpole_steps)


if __name__ == "__main__":
    main()
