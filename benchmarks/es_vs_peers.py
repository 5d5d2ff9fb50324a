"""An LPO evolution-strategies generation here against what a user would write instead: rejax's
PPO with the same learned drift in its actor loss, vmapped over an evosax OpenAI-ES population.
Side by side, A B A B, on the same task, population and budget; the ratio pair by pair.

Each generation: the strategy asks for `--population` drift networks, every member trains one PPO
agent for `--inner-env-steps` env steps on CartPole-v1 (4 envs x 128 steps, 4 epochs x 4
minibatches, MLP 64-64 tanh, Adam 2.5e-4 without annealing, clip 0.2, GAE 0.95, entropy 0.01,
value 0.5, grad norm 0.5, as `vs_peers.py`'s ``cartpole`` case), and the strategy is told the
fitnesses. The drift is LPO's (`learned_rl.rules.LPODrift`: 8 features of (r, A), Dense 128 tanh,
Dense 1, no biases, added to PPO's clip drift), written for rejax's flax actor in this file.

- ours: `learned-rl meta-train lpo`'s generation (`make_meta_step` on the LPO preset with our
  OpenAI-ES, the centre not evaluated; fitness is the mean return of the training episodes that
  end in the last 10% of the run, which costs nothing extra);
- peer: one jitted function of evosax 0.3's ``Open_ES`` ask, ``jax.vmap`` of rejax's
  ``PPO.train`` over the members, and tell. rejax's periodic evaluation is replaced by a no-op
  (as in `vs_peers.py`; a real run would need evaluation episodes for its fitness, which would
  only add to the peer's time), and the fitness told is the members' final critic value at the
  initial state, a stand-in that costs one forward pass.

Each side compiles once (its first generation, compile included, is timed too), then the two
alternate for `--repeats` generations. Installs nothing itself: ``pip install -e '.[bench]'``
brings rejax; evosax is a core dependency.

    python benchmarks/es_vs_peers.py --population 16 --inner-env-steps 20000 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import optax

from learned_rl.rules import ClipDrift, LPODrift
from vs_peers import _FiveTuple, _spec


def ours(population: int, inner_steps: int, spec: dict):
    """A `() -> None` that runs one of our LPO ES generations (state carried across calls)."""
    from learned_rl import tasks
    from learned_rl.meta import make_meta_step, meta_init
    from learned_rl.meta._presets import get_lpo_preset

    overrides = dict(num_envs=spec["num_envs"], rollout_len=spec["num_steps"], num_epochs=spec["num_epochs"],
                     num_minibatches=spec["num_minibatches"], learning_rate=spec["lr"], max_grad_norm=0.5, anneal_lr=False)
    preset = get_lpo_preset("cpu", es_strategy="openes", population=population, inner_env_steps=inner_steps,
                            eval_center=False, overrides=overrides)
    task = [tasks.make(spec["ours"])]
    rule, est, cfg = preset.build(task, key=jax.random.PRNGKey(0))
    step = make_meta_step(est, cfg)
    box = [meta_init(rule, task, est, cfg, key=jax.random.PRNGKey(1))]

    def run():
        box[0], m = step(box[0])
        jax.block_until_ready(m)

    return run, est.env_steps_per_estimate()


def _drift(w, log_ratio, advantage, eps):
    """LPO's drift with PPO's clip drift under it, for one member's weights `w`: its features and
    the clip drift are the library's, the network is two matrix products on the feature array."""
    nn = (jnp.tanh(LPODrift.features(log_ratio, advantage) @ w["hidden"]) @ w["out"])[..., 0]
    return jax.nn.relu(ClipDrift(eps)(log_ratio, advantage) + nn - 1e-4)


def _strong(tree):
    """evosax's state holds Python scalars and weakly typed arrays; fixed types keep the jitted
    generation from compiling again on its next call."""
    return jax.tree.map(lambda x: jnp.asarray(x, jnp.result_type(x)), tree)


def peer(population: int, inner_steps: int, spec: dict, width: int = 128):
    """The same generation written with rejax and evosax."""
    from evosax.algorithms import Open_ES
    from flax import struct
    from rejax import PPO as RejaxPPO
    from rejax.compat import create as rejax_env

    class DriftPPO(RejaxPPO):
        drift: dict = struct.field(pytree_node=True, default=None)

        def update_actor(self, ts, batch):
            def loss(params):
                log_prob, entropy = self.actor.apply(params, batch.trajectories.obs, batch.trajectories.action, method="log_prob_entropy")
                log_ratio = log_prob - batch.trajectories.log_prob
                adv = (batch.advantages - batch.advantages.mean()) / (batch.advantages.std() + 1e-8)
                objective = jnp.exp(log_ratio) * adv - _drift(self.drift, log_ratio, adv, self.clip_eps)
                return -objective.mean() - self.ent_coef * entropy.mean()

            grads = jax.grad(loss)(ts.actor_ts.params)
            return ts.replace(actor_ts=ts.actor_ts.apply_gradients(grads=grads))

    env, env_params = rejax_env(spec["env"])
    algo = DriftPPO.create(
        env=_FiveTuple(env), env_params=env_params, num_envs=spec["num_envs"], num_steps=spec["num_steps"],
        num_epochs=spec["num_epochs"], num_minibatches=spec["num_minibatches"], total_timesteps=inner_steps,
        learning_rate=spec["lr"], max_grad_norm=0.5, gamma=0.99, gae_lambda=0.95, clip_eps=0.2, ent_coef=0.01, vf_coef=0.5,
        eval_freq=inner_steps, skip_initial_evaluation=True,
        agent_kwargs={"activation": "tanh", "hidden_layer_sizes": spec["hidden"]},
    ).replace(eval_callback=lambda a, ts, rng: jnp.zeros(()))
    k1, _ = jax.random.split(jax.random.PRNGKey(0))
    mean = {"hidden": jax.random.uniform(k1, (8, width), minval=-8**-0.5, maxval=8**-0.5), "out": jnp.zeros((width, 1))}
    es = Open_ES(population, mean, optimizer=optax.sgd(0.02), std_schedule=optax.constant_schedule(0.03))
    es_params = es.default_params
    obs0, _ = env.reset(jax.random.PRNGKey(2), env_params)

    def member(w, key):
        ts = algo.replace(drift=w).train(key)[0]
        return algo.critic.apply(ts.critic_ts.params, obs0[None])[0]

    @jax.jit
    def generation(state, key):
        k_ask, k_train, k_tell = jax.random.split(key, 3)
        pop, state = es.ask(k_ask, state, es_params)
        fitness = jax.vmap(member, in_axes=(0, None))(pop, k_train)  # common random numbers, as ours
        state, _ = es.tell(k_tell, pop, -fitness, state, es_params)
        return _strong(state), fitness

    box = [_strong(es.init(jax.random.PRNGKey(1), mean, es_params)), jax.random.PRNGKey(3)]

    def run():
        box[1], k = jax.random.split(box[1])
        box[0], f = generation(box[0], k)
        jax.block_until_ready(f)

    return run


def _time(run) -> float:
    t = time.perf_counter()
    run()
    return time.perf_counter() - t


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--population", type=int, default=16)
    p.add_argument("--inner-env-steps", type=int, default=20_000, help="env steps of each member's PPO run")
    p.add_argument("--repeats", type=int, default=3, help="A B pairs of later generations")
    args = p.parse_args(argv)
    try:
        import rejax  # noqa: F401
    except ImportError:
        raise SystemExit("es_vs_peers needs rejax: pip install -e '.[bench]'") from None
    spec = _spec("cartpole", 0)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, jax {jax.__version__}, {jax.devices()[0].platform}")
    run_ours, env_steps = ours(args.population, args.inner_env_steps, spec)
    runs = {"ours": run_ours, "rejax+evosax": peer(args.population, args.inner_env_steps, spec)}
    first = {name: _time(run) for name, run in runs.items()}
    later = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, run in runs.items():
            later[name].append(_time(run))
    ratios = [r / o for o, r in zip(later["ours"], later["rejax+evosax"])]
    print(f"\nLPO ES generation on CartPole-v1: population {args.population} x one {args.inner_env_steps:,}-step PPO run "
          f"({env_steps:,} env steps per generation here)")
    print(f"  first generation (compile + run): ours {first['ours']:.1f} s, rejax+evosax {first['rejax+evosax']:.1f} s")
    for i, (o, r) in enumerate(zip(later["ours"], later["rejax+evosax"])):
        print(f"  pair {i + 1}: ours {o:.2f} s, rejax+evosax {r:.2f} s, peer/ours {r / o:.2f}")
    print(f"  median peer/ours (later generations): {statistics.median(ratios):.2f}  (> 1: ours is faster)")
    print(f"  ours: {env_steps / statistics.median(later['ours']):,.0f} env steps/s, every PPO update included")
    return {"first": first, "later": later, "median_ratio": statistics.median(ratios)}


if __name__ == "__main__":
    main()
