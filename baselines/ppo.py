"""PPO as mirror learning: the objective ``E[r·A − f(r, A)]`` with the drift `ClipDrift(ε)`.

Swapping the drift (`PPO(drift=DPODrift())`, `PPO(drift=LPODrift(...))`) gives DPO and LPO with
everything else unchanged: GAE, epochs × minibatches, per-minibatch advantage normalisation, value
loss and entropy bonus.

Default hyperparameters per task family (`PPO.default_config(task)`, see `PPO_DEFAULTS`):

| family | envs × steps | epochs × minibatches | optimiser | lr | agent |
|---|---|---|---|---|---|
| classic control, bsuite, misc | 4 × 128 | 4 × 4 | Adam, annealed | 2.5e-4 | MLP 64-64 tanh |
| tabular grid worlds, chains | 64 × 20 | 4 × 4 | SGD (clip 0.5) | 20 | lookup tables |
| random grid worlds | 64 × 20 | 4 × 4 | Adam | 5e-4 | MLP 64-64 ReLU |
| MinAtar | 64 × 128 | 4 × 8 | Adam, annealed | 5e-4 | MinAtar CNN |
| continuous classic control (Pendulum-v1, MountainCarContinuous-v0) | 16 × 32 | 4 × 4 | Adam, annealed | 1e-3 | MLP 64-64 tanh, Gaussian; obs + reward normalisation |
| Brax | 64 × 32 | 4 × 4 | Adam, annealed | 3e-4 | MLP 64-64 tanh, Gaussian; obs + reward normalisation |

The classic-control defaults are PureJaxRL's CartPole PPO (γ 0.99, λ 0.95, ε 0.2, entropy 0.01,
value coefficient 0.5, max grad norm 0.5). The tabular learning rate was picked by a sweep on
`gridworld/dense` (1M steps, 2 seeds): lr 5/20/40 reached 0.56/0.77/0.76 of the optimal return.

Continuous actions use the agent's Gaussian head (state-independent log-std; the rollout clips
samples to the action bounds and the log-probability is of the unclipped sample), so the same
objective, drifts included, runs unchanged. The `continuous` row was picked on Pendulum-v1
(200k steps, 2 seeds): lr 1e-3 with observation and reward normalisation reached about −200
(−1,200 at the start); lr 3e-4 reached about −1,030, and lr 1e-3 without normalisation about
−1,070; entropy 0.01 vs 0 made no clear difference (−180 vs −205), so the entropy bonus stays
0.01 for every family. The `brax` row is a CPU-sized version of PureJaxRL's Brax PPO (2048 × 10,
4 × 32, 2×256 nets, lr 3e-4): the same optimiser, normalisation and minibatch size (512 here,
640 there), with 64 envs and 64-64 networks so that a run fits a CPU (CleanRL's MuJoCo PPO uses
64-64 networks too). It is not tuned per environment.
"""

from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp

from learned_rl._agent import AgentConfig
from learned_rl._learner import TrainConfig
from learned_rl._returns import gae, normalize
from learned_rl.rules._base import (
    AbstractUpdateRule,
    apply_gradients,
    batched,
    batched_value,
    log_prob_entropy,
)
from learned_rl.rules._mirror import AbstractDrift, ClipDrift, mirror_objective

from .a2c import A2C_DEFAULTS, family_default

import equinox as eqx

PPO_DEFAULTS: dict[str, TrainConfig] = {
    "classic": TrainConfig(
        total_steps=500_000, num_envs=4, rollout_len=128, optimizer="adam",
        learning_rate=2.5e-4, max_grad_norm=0.5, anneal_lr=True,
        agent=AgentConfig(hidden=(64, 64), activation="tanh"),
    ),
    "tabular": A2C_DEFAULTS["tabular"].replace(learning_rate=20.0),
    "chain": A2C_DEFAULTS["chain"].replace(learning_rate=20.0),
    "random_gridworld": A2C_DEFAULTS["random_gridworld"],
    "minatar": TrainConfig(
        total_steps=5_000_000, num_envs=64, rollout_len=128, optimizer="adam",
        learning_rate=5e-4, max_grad_norm=0.5, anneal_lr=True, agent=AgentConfig(torso="cnn"),
    ),
}
PPO_DEFAULTS["continuous"] = TrainConfig(
    total_steps=300_000, num_envs=16, rollout_len=32, optimizer="adam",
    learning_rate=1e-3, max_grad_norm=0.5, anneal_lr=True,
    agent=AgentConfig(hidden=(64, 64), activation="tanh"),
    normalize_obs=True, normalize_reward=True,
)
PPO_DEFAULTS["brax"] = TrainConfig(
    total_steps=3_000_000, num_envs=64, rollout_len=32, optimizer="adam",
    learning_rate=3e-4, max_grad_norm=0.5, anneal_lr=True,
    agent=AgentConfig(hidden=(64, 64), activation="tanh"),
    normalize_obs=True, normalize_reward=True,
)
PPO_DEFAULTS["bsuite"] = PPO_DEFAULTS["classic"]
PPO_DEFAULTS["misc"] = PPO_DEFAULTS["classic"]


class PPO(AbstractUpdateRule):
    """Proximal policy optimisation written as mirror learning with a pluggable `drift`."""

    name: ClassVar[str] = "ppo"
    action_kinds: ClassVar[frozenset[str]] = frozenset({"discrete", "continuous"})
    prediction_dim: ClassVar[int] = 0
    needs_value: ClassVar[bool] = True
    drift: AbstractDrift = ClipDrift(0.2)
    gamma: float = 0.99
    gae_lambda: float = 0.95
    ent_coef: float = 0.01
    vf_coef: float = 0.5
    clip_value: float | None = 0.2
    num_epochs: int = eqx.field(default=4, static=True)
    num_minibatches: int = eqx.field(default=4, static=True)

    def __check_init__(self):
        if self.num_epochs <= 0 or self.num_minibatches <= 0:
            raise ValueError("PPO: num_epochs and num_minibatches must be positive")
        if not 0 <= self.gamma <= 1 or not 0 <= self.gae_lambda <= 1:
            raise ValueError("PPO: gamma and gae_lambda must be in [0, 1]")

    def _batch(self, agent, traj):
        """Advantages and value targets under the behaviour agent, flattened to ``[N]``."""
        value = batched_value(agent, traj.obs)
        next_v = batched_value(agent, traj.next_obs) * (1.0 - traj.terminated)
        adv = gae(traj.reward, value, next_v, traj.done, self.gamma, self.gae_lambda)
        batch = {
            "obs": traj.obs,
            "action": traj.action,
            "log_prob": traj.log_prob,
            "adv": adv,
            "target": adv + value,
            "value": value,
        }
        n = traj.reward.size
        return jax.tree.map(lambda x: x.reshape((n, *x.shape[2:])), jax.lax.stop_gradient(batch))

    def _minibatch_loss(self, agent, mb):
        out = batched(agent, mb["obs"])
        logp, entropy = log_prob_entropy(out, mb["action"])
        log_ratio = logp - mb["log_prob"]
        adv = normalize(mb["adv"])
        objective = mirror_objective(self.drift, log_ratio, adv)
        if self.clip_value is None:
            v_loss = 0.5 * jnp.mean((out.value - mb["target"]) ** 2)
        else:
            v_clipped = mb["value"] + jnp.clip(out.value - mb["value"], -self.clip_value, self.clip_value)
            v_loss = 0.5 * jnp.mean(
                jnp.maximum((out.value - mb["target"]) ** 2, (v_clipped - mb["target"]) ** 2)
            )
        ent = jnp.mean(entropy)
        loss = -objective + self.vf_coef * v_loss - self.ent_coef * ent
        approx_kl = jnp.mean((jnp.exp(log_ratio) - 1) - log_ratio)
        return loss, {"loss": loss, "policy_objective": objective, "value_loss": v_loss, "entropy": ent, "approx_kl": approx_kl}

    def loss(self, agent, traj, *, key):
        """The PPO loss on the whole trajectory as one minibatch (the first gradient step)."""
        return self._minibatch_loss(agent, self._batch(agent, traj))

    def update(self, agent, opt_state, optimizer, traj, *, key):
        batch = self._batch(agent, traj)
        n = traj.reward.size
        if n % self.num_minibatches:
            raise ValueError(
                f"PPO: batch size {n} (num_envs × rollout_len) is not divisible by "
                f"num_minibatches={self.num_minibatches}"
            )
        grad_fn = eqx.filter_grad(self._minibatch_loss, has_aux=True)

        def minibatch_step(carry, mb):
            agent, opt_state = carry
            grads, metrics = grad_fn(agent, mb)
            agent, opt_state = apply_gradients(agent, grads, opt_state, optimizer)
            return (agent, opt_state), metrics

        def epoch(carry, k):
            perm = jax.random.permutation(k, n)
            mbs = jax.tree.map(
                lambda x: x[perm].reshape((self.num_minibatches, n // self.num_minibatches, *x.shape[1:])),
                batch,
            )
            return jax.lax.scan(minibatch_step, carry, mbs)

        (agent, opt_state), metrics = jax.lax.scan(
            epoch, (agent, opt_state), jax.random.split(key, self.num_epochs)
        )
        return agent, opt_state, jax.tree.map(jnp.mean, metrics)

    def default_config(self, task) -> TrainConfig:
        return family_default(PPO_DEFAULTS, task, "PPO")
