"""Rollout collection: vmapped gymnax environments stepped under `lax.scan`, time-major output.

The trajectory keeps both the observation each action was taken in (`obs`) and the true next
observation *before* any auto-reset (`next_obs`, gymnax's ``info["final_observation"]``). A learner
therefore bootstraps from ``V(next_obs)`` on truncation and uses 0 on termination, and never
bootstraps across an episode boundary.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from ._agent import Agent


class Trajectory(eqx.Module):
    """A time-major batch of transitions: every leaf has leading axes ``[T, B]``."""

    obs: Array
    action: Int[Array, "T B"]
    reward: Float[Array, "T B"]
    terminated: Bool[Array, "T B"]
    truncated: Bool[Array, "T B"]
    next_obs: Array
    log_prob: Float[Array, "T B"]  # log π_behaviour(a|s)

    @property
    def done(self) -> Bool[Array, "T B"]:
        return jnp.logical_or(self.terminated, self.truncated)


class EnvCarry(eqx.Module):
    """The state of B parallel environments between rollouts, plus running episode statistics."""

    env_state: Any
    obs: Array
    episode_return: Float[Array, " B"]
    episode_length: Int[Array, " B"]


class EpisodeStats(eqx.Module):
    """Episodes that ended during a rollout: the sum and count of their returns and lengths."""

    return_sum: Float[Array, ""]
    length_sum: Float[Array, ""]
    count: Float[Array, ""]


def reset_envs(env, env_params, num_envs: int, *, key: PRNGKeyArray) -> EnvCarry:
    """Reset `num_envs` copies of `env` (all with the same `env_params`)."""
    keys = jax.random.split(key, num_envs)
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(keys, env_params)
    return EnvCarry(state, obs, jnp.zeros(num_envs), jnp.zeros(num_envs, jnp.int32))


def collect(
    agent: Agent,
    env,
    env_params,
    carry: EnvCarry,
    num_steps: int,
    *,
    key: PRNGKeyArray,
) -> tuple[EnvCarry, Trajectory, EpisodeStats]:
    """Run the agent's policy for `num_steps` steps in every environment.

    **Arguments:**

    - `agent`: the acting `Agent`.
    - `env`, `env_params`: a gymnax environment and the level's `EnvParams` (shared by all envs).
    - `carry`: the `EnvCarry` returned by `reset_envs` or the previous `collect`.
    - `num_steps`: T.
    - `key`: a PRNG key.

    **Returns:** `(carry, trajectory, episode_stats)`, with the trajectory time-major ``[T, B]``.
    """
    agent = jax.lax.stop_gradient(agent)
    num_envs = carry.episode_return.shape[0]

    def step(c: EnvCarry, k):
        k_act, k_env = jax.random.split(k)
        logits = jax.vmap(agent)(c.obs).logits
        action = jax.random.categorical(k_act, logits)
        log_prob = jnp.take_along_axis(
            jax.nn.log_softmax(logits), action[:, None], axis=-1
        )[:, 0]
        env_keys = jax.random.split(k_env, num_envs)
        obs, state, reward, terminated, truncated, info = jax.vmap(
            env.step, in_axes=(0, 0, 0, None)
        )(env_keys, c.env_state, action, env_params)
        reward = reward.astype(jnp.float32)
        done = jnp.logical_or(terminated, truncated)
        ep_ret = c.episode_return + reward
        ep_len = c.episode_length + 1
        transition = Trajectory(
            obs=c.obs,
            action=action,
            reward=reward,
            terminated=terminated,
            truncated=truncated,
            next_obs=info["final_observation"],
            log_prob=log_prob,
        )
        finished = (
            jnp.sum(jnp.where(done, ep_ret, 0.0)),
            jnp.sum(jnp.where(done, ep_len, 0)).astype(jnp.float32),
            jnp.sum(done).astype(jnp.float32),
        )
        new = EnvCarry(
            state, obs, jnp.where(done, 0.0, ep_ret), jnp.where(done, 0, ep_len)
        )
        return new, (transition, finished)

    carry, (traj, (rs, ls, n)) = jax.lax.scan(step, carry, jax.random.split(key, num_steps))
    return carry, traj, EpisodeStats(rs.sum(), ls.sum(), n.sum())
