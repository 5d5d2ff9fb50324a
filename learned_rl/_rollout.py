"""Rollout collection: vmapped gymnax environments stepped under `lax.scan`, time-major output.

The trajectory keeps both the observation each action was taken in (`obs`) and the true next
observation *before* any auto-reset (`next_obs`, gymnax's ``info["final_observation"]``). A learner
therefore bootstraps from ``V(next_obs)`` on truncation and uses 0 on termination, and never
bootstraps across an episode boundary.

Actions are integers ``[T, B]`` for categorical agents and floats ``[T, B, act_dim]`` for Gaussian
agents; a Gaussian sample is clipped to the agent's action bounds before the environment sees it,
and the trajectory stores the *unclipped* sample with its log-probability.

Optional normalisation (owned by the learner; its state lives in `EnvCarry`, hence in
`LearnerState` and in checkpoints):

- **observations**: running mean and variance over every observation the agent has acted on
  (Welford/Chan merges, shared over the batch of environments). Observations are normalised
  ``clip((o − μ)/√(σ² + 1e-8), −10, 10)`` with the statistics as they were at the *start* of the
  rollout, so ``obs`` and ``next_obs`` of one trajectory use the same normalisation; the
  statistics are then updated with the rollout's raw observations. Before any update (μ 0, σ² 1,
  count 0) this is the identity.
- **rewards** (reward scaling as in gym's ``NormalizeReward`` and PureJaxRL): each env keeps a
  discounted return ``R ← γR + r`` (γ = 0.99, reset at episode ends); rewards are divided by the
  running standard deviation of R (statistics frozen during a rollout, updated after it) and
  clipped to ±10. Episode returns in the metrics are always computed from raw rewards.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from ._agent import Agent, UniformPolicy

OBS_CLIP = 10.0
REWARD_CLIP = 10.0
NORM_EPS = 1e-8


class RunningMeanStd(eqx.Module):
    """Running mean and (population) variance of a stream of arrays of shape `mean.shape`,
    merged batch by batch with Chan et al.'s parallel form of Welford's algorithm."""

    mean: Array
    var: Array
    count: Array

    @classmethod
    def create(cls, shape: tuple[int, ...] = ()) -> "RunningMeanStd":
        """Mean 0, variance 1, count 0: normalising with it is the identity (up to ε)."""
        return cls(jnp.zeros(shape, jnp.float32), jnp.ones(shape, jnp.float32), jnp.zeros((), jnp.float32))

    def update(self, batch: Array) -> "RunningMeanStd":
        """Merge a batch ``[N, *shape]`` into the statistics."""
        batch = batch.astype(jnp.float32).reshape((-1, *self.mean.shape))
        n = jnp.asarray(batch.shape[0], jnp.float32)
        b_mean = jnp.mean(batch, axis=0)
        b_var = jnp.mean((batch - b_mean) ** 2, axis=0)
        total = self.count + n
        delta = b_mean - self.mean
        mean = self.mean + delta * (n / total)
        m2 = self.var * self.count + b_var * n + delta**2 * (self.count * n / total)
        return RunningMeanStd(mean, m2 / total, total)


def normalize_obs(stats: RunningMeanStd | None, obs: Array) -> Array:
    """``clip((obs − μ)/√(σ² + ε), −10, 10)``; `obs` unchanged when `stats` is `None`."""
    if stats is None:
        return obs
    z = (obs.astype(jnp.float32) - stats.mean) / jnp.sqrt(stats.var + NORM_EPS)
    return jnp.clip(z, -OBS_CLIP, OBS_CLIP)


class RewardScaler(eqx.Module):
    """Reward scaling: per-env discounted returns and the running variance of them."""

    discounted_return: Float[Array, " B"]
    stats: RunningMeanStd
    gamma: float = eqx.field(static=True, default=0.99)

    def scale(self, reward: Array) -> Array:
        return jnp.clip(reward / jnp.sqrt(self.stats.var + NORM_EPS), -REWARD_CLIP, REWARD_CLIP)


class Trajectory(eqx.Module):
    """A time-major batch of transitions: every leaf has leading axes ``[T, B]``.

    `action` is ``[T, B]`` (int) for categorical agents and ``[T, B, act_dim]`` (float, unclipped)
    for Gaussian agents. With normalisation on, `obs`/`next_obs` are normalised and `reward` is
    scaled (see the module docstring)."""

    obs: Array
    action: Array
    reward: Float[Array, "T B"]
    terminated: Bool[Array, "T B"]
    truncated: Bool[Array, "T B"]
    next_obs: Array
    log_prob: Float[Array, "T B"]  # log π_behaviour(a|s)

    @property
    def done(self) -> Bool[Array, "T B"]:
        return jnp.logical_or(self.terminated, self.truncated)


class EnvCarry(eqx.Module):
    """The state of B parallel environments between rollouts, plus running episode statistics
    and the (optional) observation and reward normalisers. `obs` is the raw observation."""

    env_state: Any
    obs: Array
    episode_return: Float[Array, " B"]
    episode_length: Int[Array, " B"]
    obs_norm: RunningMeanStd | None = None
    reward_norm: RewardScaler | None = None


class EpisodeStats(eqx.Module):
    """Episodes that ended during a rollout: the sum and count of their returns and lengths."""

    return_sum: Float[Array, ""]
    length_sum: Float[Array, ""]
    count: Float[Array, ""]


def reset_envs(
    env,
    env_params,
    num_envs: int,
    *,
    key: PRNGKeyArray,
    normalize_obs: bool = False,
    normalize_reward: bool = False,
    reward_gamma: float = 0.99,
) -> EnvCarry:
    """Reset `num_envs` copies of `env` (all with the same `env_params`), optionally with fresh
    observation/reward normalisers (see the module docstring)."""
    keys = jax.random.split(key, num_envs)
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(keys, env_params)
    obs_norm = reward_norm = None
    if normalize_obs:
        if not jnp.issubdtype(obs.dtype, jnp.floating):
            raise ValueError(
                f"observation normalisation needs float observations, got dtype {obs.dtype} "
                "(integer-index observations are looked up, not normalised)"
            )
        obs_norm = RunningMeanStd.create(tuple(obs.shape[1:]))
    if normalize_reward:
        reward_norm = RewardScaler(jnp.zeros(num_envs), RunningMeanStd.create(()), float(reward_gamma))
    return EnvCarry(state, obs, jnp.zeros(num_envs), jnp.zeros(num_envs, jnp.int32), obs_norm, reward_norm)


def collect(
    agent: Agent | UniformPolicy,
    env,
    env_params,
    carry: EnvCarry,
    num_steps: int,
    *,
    key: PRNGKeyArray,
) -> tuple[EnvCarry, Trajectory, EpisodeStats]:
    """Run the agent's policy for `num_steps` steps in every environment.

    **Arguments:**

    - `agent`: the acting `Agent` (categorical or Gaussian), or a `UniformPolicy`: anything with
        `act(obs_batch, key=)`, `continuous` and (when continuous) `action_low`/`action_high`.
    - `env`, `env_params`: a gymnax environment and the level's `EnvParams` (shared by all envs).
    - `carry`: the `EnvCarry` returned by `reset_envs` or the previous `collect`.
    - `num_steps`: T.
    - `key`: a PRNG key.

    **Returns:** `(carry, trajectory, episode_stats)`, with the trajectory time-major ``[T, B]``.
    """
    agent = jax.lax.stop_gradient(agent)
    num_envs = carry.episode_return.shape[0]
    obs_norm = carry.obs_norm  # frozen for the whole rollout
    reward_norm = carry.reward_norm
    if agent.continuous:
        low = jnp.asarray(agent.action_low, jnp.float32)
        high = jnp.asarray(agent.action_high, jnp.float32)

    def step(c: EnvCarry, k):
        k_act, k_env = jax.random.split(k)
        obs_in = normalize_obs(obs_norm, c.obs)
        action, log_prob = agent.act(obs_in, key=k_act)
        env_action = jnp.clip(action, low, high) if agent.continuous else action
        env_keys = jax.random.split(k_env, num_envs)
        obs, state, reward, terminated, truncated, info = jax.vmap(
            env.step, in_axes=(0, 0, 0, None)
        )(env_keys, c.env_state, env_action, env_params)
        reward = reward.astype(jnp.float32)
        done = jnp.logical_or(terminated, truncated)
        ep_ret = c.episode_return + reward
        ep_len = c.episode_length + 1
        new_norm = c.reward_norm
        train_reward = reward
        disc = jnp.zeros(())
        if reward_norm is not None:
            disc = c.reward_norm.discounted_return * reward_norm.gamma + reward
            train_reward = reward_norm.scale(reward)
            new_norm = RewardScaler(jnp.where(done, 0.0, disc), c.reward_norm.stats, reward_norm.gamma)
        transition = Trajectory(
            obs=obs_in,
            action=action,
            reward=train_reward,
            terminated=terminated,
            truncated=truncated,
            next_obs=normalize_obs(obs_norm, info["final_observation"]),
            log_prob=log_prob,
        )
        finished = (
            jnp.sum(jnp.where(done, ep_ret, 0.0)),
            jnp.sum(jnp.where(done, ep_len, 0)).astype(jnp.float32),
            jnp.sum(done).astype(jnp.float32),
        )
        new = EnvCarry(
            state, obs, jnp.where(done, 0.0, ep_ret), jnp.where(done, 0, ep_len), c.obs_norm, new_norm
        )
        raw = c.obs if obs_norm is not None else jnp.zeros(())
        return new, (transition, finished, raw, disc)

    carry, (traj, (rs, ls, n), raw_obs, disc) = jax.lax.scan(step, carry, jax.random.split(key, num_steps))
    if obs_norm is not None:
        carry = eqx.tree_at(lambda c: c.obs_norm, carry, obs_norm.update(raw_obs.reshape((-1, *obs_norm.mean.shape))))
    if reward_norm is not None:
        carry = eqx.tree_at(
            lambda c: c.reward_norm.stats, carry, carry.reward_norm.stats.update(disc.reshape(-1))
        )
    return carry, traj, EpisodeStats(rs.sum(), ls.sum(), n.sum())
