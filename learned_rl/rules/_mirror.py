"""Mirror learning: one policy objective ``E[r·A − f(r, A)]`` with pluggable drift functions f.

`r = π_new(a|s) / π_old(a|s)` and A is the advantage. A valid drift satisfies, for every A,
``f ≥ 0``, ``f(1, A) = 0`` and ``∂f/∂r(1, A) = 0`` (Kuba et al. 2022; Lu et al. 2022).

PPO's clipped objective is this objective with `ClipDrift`:
``min(rA, clip(r, 1−ε, 1+ε)A) = rA − relu((r − clip(r, 1−ε, 1+ε))·A)``.
"""

from __future__ import annotations

from typing import ClassVar

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float


class AbstractDrift(eqx.Module):
    """A drift function f(r, A). Implement `__call__(log_ratio, advantage)`; the log-ratio is
    passed (rather than r) so that drifts needing log r never compute ``log(exp(·))``."""

    name: eqx.AbstractClassVar[str]

    @abc.abstractmethod
    def __call__(self, log_ratio: Float[Array, "..."], advantage: Float[Array, "..."]) -> Float[Array, "..."]:
        ...


class ClipDrift(AbstractDrift):
    """PPO-clip as a drift: ``relu((r − clip(r, 1−ε, 1+ε))·A)``."""

    name: ClassVar[str] = "clip"
    epsilon: float = 0.2

    def __check_init__(self):
        if not 0 < self.epsilon < 1:
            raise ValueError(f"ClipDrift.epsilon must be in (0, 1), got {self.epsilon}")

    def __call__(self, log_ratio, advantage):
        r = jnp.exp(log_ratio)
        return jax.nn.relu((r - jnp.clip(r, 1.0 - self.epsilon, 1.0 + self.epsilon)) * advantage)


def mirror_objective(
    drift: AbstractDrift, log_ratio: Float[Array, "..."], advantage: Float[Array, "..."]
) -> Float[Array, ""]:
    """The mirror-learning objective to *maximise*: ``mean(r·A − f(r, A))``."""
    r = jnp.exp(log_ratio)
    return jnp.mean(r * advantage - drift(log_ratio, advantage))
