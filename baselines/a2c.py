"""A2C: advantage actor-critic with GAE, an entropy bonus and a value loss.

Default hyperparameters per task family (`A2C.default_config(task)`, see `A2C_DEFAULTS`):

| family | envs × steps | optimiser | lr | clip | agent |
|---|---|---|---|---|---|
| tabular grid worlds, chains | 64 × 20 | SGD | 40 | 0.5 | lookup tables |
| random grid worlds | 64 × 20 | Adam | 5e-4 | 1.0 | MLP 64-64 ReLU |
| classic control, bsuite, misc | 16 × 8 | RMSprop | 7e-4 | 0.5 | MLP 64-64 tanh |
| MinAtar | 64 × 20 | Adam | 5e-4 | 1.0 | MinAtar CNN |
| continuous classic control (Pendulum, MountainCarContinuous) | 16 × 8 | RMSprop | 7e-4 | 0.5 | MLP 64-64 tanh, Gaussian; obs + reward normalisation |
| Brax | 64 × 8 | RMSprop | 7e-4 | 0.5 | MLP 64-64 tanh, Gaussian; obs + reward normalisation |

The two continuous rows are untuned (the classic recipe with normalisation); PPO is the tuned
baseline there.

Tabular agents follow GROOVE's recipe (SGD, learning rate 40, gradients clipped to global norm
0.5, on lookup tables). A sweep on `gridworld/dense` (1M steps, 2 seeds) confirmed it: lr 40 with
clipping reached 0.58 of the optimal return; lr 5/10/20 without clipping reached 0.49/0.55/0.31,
and lr 40 without clipping collapsed. Loss hyperparameters
(γ 0.99, λ 0.95, entropy 0.01, value coefficient 0.5) are GROOVE's A2C.
"""

from __future__ import annotations

from typing import ClassVar

import jax.numpy as jnp

from learned_rl._defaults import A2C_DEFAULTS as A2C_DEFAULTS
from learned_rl._defaults import family_default
from learned_rl._learner import TrainConfig
from learned_rl._returns import normalize
from learned_rl.rules._base import (
    AbstractUpdateRule,
    advantages_and_targets,
    batched,
    concrete,
    log_prob_entropy,
)


class A2C(AbstractUpdateRule):
    """Advantage actor-critic.

    Loss: ``−mean(log π(a|s)·Â) + vf_coef·½·mean((V(s) − (Â + V(s)))²) − ent_coef·mean(H(π))``,
    with Â from GAE(γ, λ). Bootstraps on truncation, not on termination.
    """

    name: ClassVar[str] = "a2c"
    action_kinds: ClassVar[frozenset[str]] = frozenset({"discrete", "continuous"})
    prediction_dim: ClassVar[int] = 0
    needs_value: ClassVar[bool] = True
    gamma: float = 0.99
    gae_lambda: float = 0.95
    ent_coef: float = 0.01
    vf_coef: float = 0.5
    normalize_advantages: bool = False

    def __check_init__(self):
        if concrete(self.gamma, self.gae_lambda) and (not 0 <= self.gamma <= 1 or not 0 <= self.gae_lambda <= 1):
            raise ValueError("A2C: gamma and gae_lambda must be in [0, 1]")

    def loss(self, agent, traj, *, key):
        out = batched(agent, traj.obs)
        value = out.value
        adv, target = advantages_and_targets(agent, traj, value, self.gamma, self.gae_lambda)
        if self.normalize_advantages:
            adv = normalize(adv)
        logp, entropy = log_prob_entropy(out, traj.action)
        pg_loss = -jnp.mean(logp * adv)
        v_loss = 0.5 * jnp.mean((value - target) ** 2)
        ent = jnp.mean(entropy)
        loss = pg_loss + self.vf_coef * v_loss - self.ent_coef * ent
        return loss, {"loss": loss, "pg_loss": pg_loss, "value_loss": v_loss, "entropy": ent}

    def default_config(self, task, agent=None) -> TrainConfig:
        return family_default(A2C_DEFAULTS, task, "A2C", agent)
