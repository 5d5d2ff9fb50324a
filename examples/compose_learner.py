"""Compose a learner from the library's parts and train it against A2C.

The rule below is REINFORCE with a learned baseline, written in a dozen lines from parts the
library exports: `batched` (the agent on [T, B] observations), `log_prob_entropy` (categorical or
Gaussian, whichever the agent has), `gae` (λ-returns), and the `AbstractUpdateRule` interface that
every learner (A2C, PPO, LPG, LPO) implements. Because it is an update rule like any other, `train`,
`jit` and `vmap` work on it unchanged.

    python examples/compose_learner.py                 # gridworld/dense, 300k steps, 4 seeds
    python examples/compose_learner.py --steps 20000   # a quick look
"""

import argparse
from typing import ClassVar

import jax
import jax.numpy as jnp

from learned_rl import tasks
from learned_rl.baselines import A2C
from learned_rl import AbstractUpdateRule, final_return, gae, train
from learned_rl.rules import batched, batched_value, log_prob_entropy


class ReinforceWithBaseline(AbstractUpdateRule):
    """−log π(a|s)·(G_λ − V(s)) + ½·(V(s) − G_λ)², with G_λ the λ-return (λ = 1: Monte Carlo)."""

    name: ClassVar[str] = "reinforce"
    action_kinds: ClassVar[frozenset[str]] = frozenset({"discrete", "continuous"})
    needs_value: ClassVar[bool] = True  # the agent gets a value head
    gamma: float = 0.99
    lam: float = 1.0

    def loss(self, agent, traj, *, key):
        out = batched(agent, traj.obs)  # policy and value on every [T, B] step
        next_v = batched_value(agent, traj.next_obs) * (1.0 - traj.terminated)  # bootstrap on truncation only
        v = jax.lax.stop_gradient(out.value)
        adv = gae(traj.reward, v, jax.lax.stop_gradient(next_v), traj.done, self.gamma, self.lam)
        logp, _ = log_prob_entropy(out, traj.action)
        pg = -jnp.mean(logp * adv)
        value_loss = 0.5 * jnp.mean((out.value - (adv + v)) ** 2)
        return pg + value_loss, {"pg_loss": pg, "value_loss": value_loss}

    def default_config(self, task):
        return A2C().default_config(task)  # the same agent, optimiser and budget as A2C


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="gridworld/dense")
    p.add_argument("--steps", type=int, default=300_000)
    p.add_argument("--seeds", type=int, default=4)
    args = p.parse_args(argv)

    task = tasks.make(args.task)
    keys = jax.random.split(jax.random.PRNGKey(0), args.seeds)  # the same levels for both rules
    for rule in (ReinforceWithBaseline(), A2C()):
        config = rule.default_config(task).replace(total_steps=args.steps)
        _, metrics = jax.jit(jax.vmap(lambda k: train(rule, task, config, key=k)))(keys)
        returns = final_return(metrics)  # one per seed
        print(f"{rule.name:>10}: final return {returns.mean():.3f} over {args.seeds} seeds ({args.steps:,} steps each)")


if __name__ == "__main__":
    main()
