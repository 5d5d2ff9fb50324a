"""Return and advantage estimators: pure functions on time-major ``[T, B]`` arrays."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float


def gae(
    reward: Float[Array, "T B"],
    value: Float[Array, "T B"],
    next_value: Float[Array, "T B"],
    done: Bool[Array, "T B"],
    gamma: float,
    lam: float,
) -> Float[Array, "T B"]:
    """Generalised advantage estimation.

    `next_value[t]` is the value of the true next observation of step t, already multiplied by 0
    where the episode *terminated* (and kept where it was only truncated). `done[t]` (terminated or
    truncated) cuts the recursion, so no advantage leaks across an episode boundary.

    **Returns:** advantages with the shape of `reward`.
    """
    if not (reward.shape == value.shape == next_value.shape == done.shape):
        raise ValueError(
            f"gae: shapes differ: reward {reward.shape}, value {value.shape}, "
            f"next_value {next_value.shape}, done {done.shape}"
        )
    delta = reward + gamma * next_value - value
    not_done = 1.0 - done.astype(delta.dtype)

    def back(adv_next, xs):
        d, nd = xs
        adv = d + gamma * lam * nd * adv_next
        return adv, adv

    _, adv = jax.lax.scan(back, jnp.zeros_like(delta[0]), (delta, not_done), reverse=True)
    return adv


def normalize(x: Array, eps: float = 1e-8) -> Array:
    """Zero-mean, unit-variance normalisation over all elements."""
    return (x - x.mean()) / (x.std() + eps)
