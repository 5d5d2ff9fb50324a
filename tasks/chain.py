"""Delayed chain MDPs of LPG (Oh et al., 2020), as gymnax 1.x environments.

Dynamics
    Two actions. The agent starts at position 0. Its first action chooses a
    *branch* (branch = the action taken at position 0). After that, actions
    have no effect: each step advances the position by one, and the episode
    terminates (``terminated=True``) when the position reaches ``length``,
    i.e. after exactly ``length`` steps. The last step gives the terminal
    reward ``+1`` if the first action was the level's *correct* action and
    ``-1`` otherwise.

Levels (one per lifetime)
    :class:`ChainParams` holds ``length`` (uniform in ``[min_len, max_len]``:
    ``[5, 30]`` for the short chains, ``[5, 50]`` for the long ones) and
    ``correct_action`` (uniform in ``{0, 1}``), both sampled by
    :meth:`DelayedChain.sample_params`. The correct action is fixed for the
    lifetime and is **not** observable; the agent learns it from the delayed
    reward. ``default_params`` are the sample for ``jax.random.PRNGKey(0)``.

Noise (``*_noisy``)
    Every intermediate (non-terminal) step, including the first one, has
    reward ``+1`` or ``-1`` with probability 0.5 each (the probability that an
    intermediate step is noisy is ``params.noise_prob``: 1.0 for the noisy
    variants, 0.0 otherwise, so non-noisy intermediate rewards are 0).
    The noise has zero mean, so the optimal expected return is 1 in all
    variants.

Observation
    Tabular variants: an ``int32`` index ``branch * (max_len + 1) + position``
    (``branch`` is 0 at position 0). The ``+ 1`` makes the terminal
    observation (position ``length <= max_len``) a distinct in-range index, so
    ``num_states = 2 * (max_len + 1)`` (62 for short, 102 for long chains).
    The index is a Markov state.
    Distractor variant (``chain/distractor``, short lengths, no noise):
    ``float32 [22]``: bit 0 = at the start position, bit 1 = branch
    (1 iff the first action was action 1), bits 2..21 = independent fair
    random bits resampled on every reset and every step.

Time limit
    ``max_steps_in_episode = max_len + 1``; episodes always terminate first.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces

__all__ = [
    "CHAIN_CONFIGS",
    "ChainParams",
    "ChainState",
    "DelayedChain",
    "chain_dims",
    "make_chain",
]


@struct.dataclass
class ChainState(environment.EnvState):
    """``time``, ``position`` and ``branch`` (the first action; 0 before it)."""

    position: jax.Array  # int32 []
    branch: jax.Array  # int32 []


@struct.dataclass(kw_only=True)
class ChainParams(environment.EnvParams):
    length: jax.Array  # int32 [], steps until termination
    correct_action: jax.Array  # int32 [], 0 or 1
    noise_prob: jax.Array  # float32 [], prob. that an intermediate reward is +-1


class DelayedChain(environment.Environment[ChainState, ChainParams]):
    """Delayed chain MDP (see the module docstring).

    **Arguments:**

    - `min_len`, `max_len`: range (inclusive) of the per-lifetime chain length.
    - `noisy`: add +-1 noise rewards on intermediate steps.
    - `distractor`: 22-bit vector observation instead of a state index.
    - `num_distractor_bits`: number of random bits of the distractor variant.
    - `env_name`: the name reported by `.name`.
    """

    def __init__(
        self,
        min_len: int,
        max_len: int,
        noisy: bool = False,
        distractor: bool = False,
        num_distractor_bits: int = 20,
        env_name: str = "DelayedChain",
    ):
        super().__init__()
        if not 1 <= min_len <= max_len:
            raise ValueError(f"need 1 <= min_len <= max_len, got {min_len}, {max_len}")
        self.min_len, self.max_len = int(min_len), int(max_len)
        self.noisy = bool(noisy)
        self.distractor = bool(distractor)
        self.num_distractor_bits = int(num_distractor_bits)
        self._name = env_name
        self._default_params = self.sample_params(jax.random.PRNGKey(0))

    @property
    def num_states(self) -> int | None:
        """``2 * (max_len + 1)`` for index observations, ``None`` for the distractor."""
        return None if self.distractor else 2 * (self.max_len + 1)

    @property
    def obs_shape(self) -> tuple[int, ...]:
        return (2 + self.num_distractor_bits,) if self.distractor else ()

    # --------------------------------------------------------- gymnax protocol
    @property
    def name(self) -> str:
        return self._name

    @property
    def num_actions(self) -> int:
        return 2

    def action_space(self, params: Any = None) -> spaces.Discrete:
        return spaces.Discrete(2)

    def observation_space(self, params: Any = None) -> spaces.Discrete | spaces.Box:
        if self.distractor:
            return spaces.Box(0.0, 1.0, self.obs_shape, jnp.float32)
        return spaces.Discrete(self.num_states)  # type: ignore[arg-type]

    def state_space(self, params: Any = None) -> spaces.Dict:
        return spaces.Dict(
            {
                "position": spaces.Discrete(self.max_len + 1),
                "branch": spaces.Discrete(2),
                "time": spaces.Discrete(self.max_len + 2),
            }
        )

    @property
    def default_params(self) -> ChainParams:
        """The level sampled with ``jax.random.PRNGKey(0)``."""
        return self._default_params

    def sample_params(self, key: jax.Array) -> ChainParams:
        """Sample a level: chain length and correct first action (jittable, vmappable)."""
        u = jax.random.uniform(key, (2,))
        num_lengths = self.max_len - self.min_len + 1
        offset = jnp.minimum(jnp.floor(u[0] * num_lengths).astype(jnp.int32), num_lengths - 1)
        return ChainParams(
            length=self.min_len + offset,
            correct_action=(u[1] < 0.5).astype(jnp.int32),
            noise_prob=jnp.asarray(1.0 if self.noisy else 0.0, jnp.float32),
            max_steps_in_episode=jnp.asarray(self.max_len + 1, jnp.int32),
        )

    def get_obs(self, state: ChainState, params: Any = None, key: Any = None) -> jax.Array:
        if not self.distractor:
            return (state.branch * (self.max_len + 1) + state.position).astype(jnp.int32)
        relevant = jnp.stack(
            [state.position == 0, (state.position > 0) & (state.branch == 1)]
        ).astype(jnp.float32)
        noise = jax.random.uniform(key, (self.num_distractor_bits,)) < 0.5
        return jnp.concatenate([relevant, noise.astype(jnp.float32)])

    def reset_env(self, key: jax.Array, params: ChainParams) -> tuple[jax.Array, ChainState]:
        zero = jnp.asarray(0, jnp.int32)
        state = ChainState(time=zero, position=zero, branch=zero)
        return self.get_obs(state, key=key), state

    def step_env(
        self,
        key: jax.Array,
        state: ChainState,
        action: int | float | jax.Array,
        params: ChainParams,
    ) -> tuple[jax.Array, ChainState, jax.Array, jax.Array, dict[str, Any]]:
        key_reward, key_obs = jax.random.split(key)
        action = jnp.clip(jnp.asarray(action, jnp.int32), 0, 1)
        branch = jnp.where(state.position == 0, action, state.branch)
        position = state.position + 1
        terminated = position >= params.length
        final_reward = jnp.where(branch == params.correct_action, 1.0, -1.0)
        u = jax.random.uniform(key_reward, (2,))
        noise = jnp.where(u[0] < params.noise_prob, jnp.where(u[1] < 0.5, 1.0, -1.0), 0.0)
        reward = jnp.where(terminated, final_reward, noise).astype(jnp.float32)
        new_state = ChainState(time=state.time + 1, position=position, branch=branch)
        info = {"discount": 1.0 - terminated.astype(jnp.float32)}
        obs = self.get_obs(new_state, key=key_obs)
        return obs, new_state, reward, terminated, info

    def optimal_return(self, params: ChainParams) -> float:
        """Optimal expected episode return: always 1 (the noise has zero mean)."""
        del params
        return 1.0


CHAIN_CONFIGS: dict[str, dict[str, Any]] = {
    "short": dict(min_len=5, max_len=30),
    "short_noisy": dict(min_len=5, max_len=30, noisy=True),
    "long": dict(min_len=5, max_len=50),
    "long_noisy": dict(min_len=5, max_len=50, noisy=True),
    "distractor": dict(min_len=5, max_len=30, distractor=True),
}


def chain_dims(variant: str) -> dict[str, Any]:
    """Sizes of ``chain/<variant>`` without building the environment."""
    cfg = CHAIN_CONFIGS[variant]
    distractor = cfg.get("distractor", False)
    return {
        "length_range": (cfg["min_len"], cfg["max_len"]),
        "num_states": None if distractor else 2 * (cfg["max_len"] + 1),
        "obs_shape": (22,) if distractor else (),
        "max_steps": cfg["max_len"] + 1,
    }


def make_chain(variant: str, **kwargs: Any) -> DelayedChain:
    """Build ``chain/<variant>``; keyword arguments override the configuration."""
    try:
        cfg = CHAIN_CONFIGS[variant]
    except KeyError:
        raise ValueError(
            f"unknown chain {variant!r}; choose from {sorted(CHAIN_CONFIGS)}"
        ) from None
    return DelayedChain(**{**cfg, **kwargs}, env_name=f"chain/{variant}")
