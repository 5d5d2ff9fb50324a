"""Plug a custom drift function into mirror learning and train it against PPO.

Mirror learning (Kuba et al. 2022) maximises ``E[r·A − f(r, A)]``: PPO is one drift f (the clip
drift), DPO another (a closed form), LPO a learned one. Any `AbstractDrift` slots into
`learned_rl.baselines.PPO(drift=...)`. The one below is a quadratic trust region, f = c·(r − 1)²·|A|: it is a
valid drift (f ≥ 0, f(1, A) = 0, ∂f/∂r(1, A) = 0), which the script checks numerically before it
trains.

    python examples/custom_drift.py                    # CartPole-v1, 200k steps, 4 seeds
    python examples/custom_drift.py --steps 20000
"""

import argparse
from typing import ClassVar

import jax
import jax.numpy as jnp

from learned_rl import tasks
from learned_rl.baselines import PPO
from learned_rl import final_return, train
from learned_rl.rules import AbstractDrift


class QuadraticDrift(AbstractDrift):
    name: ClassVar[str] = "quadratic"
    c: float = 2.0

    def __call__(self, log_ratio, advantage):
        r = jnp.exp(log_ratio)
        return self.c * (r - 1.0) ** 2 * jnp.abs(advantage)


def check_drift(drift, advantages=(-2.0, -0.5, 0.5, 2.0)):
    """The three mirror-learning conditions, on a grid of ratios and advantages."""
    A = jnp.asarray(advantages)
    log_r = jnp.log(jnp.linspace(0.5, 2.0, 31))[:, None]
    assert bool(jnp.all(drift(log_r, A) >= 0)), "f must be non-negative"
    assert bool(jnp.allclose(drift(jnp.zeros_like(A), A), 0.0)), "f(1, A) must be 0"
    slope = jax.vmap(jax.grad(lambda lr, a: drift(lr, a)))(jnp.zeros_like(A), A)  # d/d log r = d/dr at r = 1
    assert bool(jnp.allclose(slope, 0.0, atol=1e-6)), "df/dr(1, A) must be 0"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="CartPole-v1")
    p.add_argument("--steps", type=int, default=200_000)
    p.add_argument("--seeds", type=int, default=4)
    args = p.parse_args(argv)

    drift = QuadraticDrift()
    check_drift(drift)
    task = tasks.make(args.task)
    keys = jax.random.split(jax.random.PRNGKey(0), args.seeds)
    for label, rule in (("quadratic drift", PPO(drift=drift)), ("ppo (clip drift)", PPO())):
        config = rule.default_config(task).replace(total_steps=args.steps)
        _, metrics = jax.jit(jax.vmap(lambda k: train(rule, task, config, key=k)))(keys)
        print(f"{label:>17}: final return {final_return(metrics).mean():.1f} over {args.seeds} seeds ({args.steps:,} steps each)")


if __name__ == "__main__":
    main()
