"""The hyperparameter-balancing bandit of LPG (Oh et al. 2020), as a pytree with pure functions.

One bandit per training task. Its arms are agent hyperparameter combinations (learning rate × α_y).
When a lifetime starts it samples an arm from

    softmax( (mean of that arm's last `window` final returns + bonus / √trials) / temperature ),

and when the lifetime ends its final return is pushed into that arm. An arm never tried has mean 0
and counts as one trial for the bonus. Returns are divided by the task's `return_scale` first (we
use the optimal return of the task's default level where it is known, else 1), so that the paper's
temperature 0.1 and bonus 0.2 mean the same thing on every task.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray


class BanditState(eqx.Module):
    """Per-arm ring buffers of the last `window` (scaled) final returns, and trial counts."""

    returns: Float[Array, "arms window"]
    counts: Int[Array, " arms"]
    return_scale: Float[Array, ""]


def bandit_init(num_arms: int, window: int = 10, return_scale: float = 1.0) -> BanditState:
    if num_arms <= 0 or window <= 0:
        raise ValueError("bandit: num_arms and window must be positive")
    if not return_scale > 0:
        raise ValueError(f"bandit: return_scale must be positive, got {return_scale}")
    return BanditState(jnp.zeros((num_arms, window)), jnp.zeros(num_arms, jnp.int32), jnp.asarray(return_scale, jnp.float32))


def bandit_probs(state: BanditState, temperature: float = 0.1, bonus: float = 0.2) -> Float[Array, " arms"]:
    """The arm probabilities."""
    window = state.returns.shape[1]
    filled = jnp.minimum(state.counts, window)
    mask = jnp.arange(window)[None, :] < filled[:, None]
    mean = jnp.sum(jnp.where(mask, state.returns, 0.0), axis=1) / jnp.maximum(filled, 1)
    score = mean + bonus / jnp.sqrt(jnp.maximum(state.counts, 1).astype(jnp.float32))
    return jax.nn.softmax(score / temperature)


def bandit_sample(state: BanditState, *, key: PRNGKeyArray, temperature: float = 0.1, bonus: float = 0.2) -> Int[Array, ""]:
    """Sample an arm index."""
    return jax.random.categorical(key, jnp.log(bandit_probs(state, temperature, bonus)))


def bandit_update(state: BanditState, arm: Int[Array, ""], final_return: Float[Array, ""], valid=True) -> BanditState:
    """Push a lifetime's final return into its arm (a no-op where `valid` is False)."""
    window = state.returns.shape[1]
    slot = state.counts[arm] % window
    value = final_return / state.return_scale
    returns = state.returns.at[arm, slot].set(jnp.where(valid, value, state.returns[arm, slot]))
    counts = state.counts.at[arm].add(jnp.where(valid, 1, 0))
    return BanditState(returns, counts, state.return_scale)
