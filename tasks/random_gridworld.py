"""Random grid worlds of LPG (Oh et al., 2020), as gymnax 1.x environments.

Like the tabular grid worlds (:mod:`learned_rl.tasks.gridworld`), but objects are placed
at random every episode, so the agent has to *see* them.

Grid and actions
    An open ``H x W`` grid (``5x7`` = 5 rows, 7 columns); the border is an
    implicit wall. Actions as in :mod:`learned_rl.tasks.gridworld`: ``num_actions=5``
    (default: up, down, left, right, stay) or ``9`` (adds diagonals); moving
    off the grid = stay.

Objects
    Written ``[reward, termination probability, respawn probability]``.
    Objects with identical triples form one *object type*; types are numbered
    in order of first appearance in the configuration.

Episodes
    At reset the agent and all objects are placed on distinct uniformly random
    cells, and every object is present. One step, in this order (the same as
    the tabular grid worlds):

    1. The agent moves.
    2. If the new cell holds a present object, the agent receives its reward,
       the object is removed, and the episode terminates with the object's
       termination probability.
    3. Every object that was absent at the *start* of the step respawns,
       independently, with its respawn probability, at a uniformly random
       *free* cell: one that holds neither the agent nor a present object.
       Objects respawning in the same step get distinct cells (a uniformly
       random ordered sample of the free cells, assigned in object order).
       A just-collected object cannot reappear in the same step, and an
       object never reappears under the agent (unlike the tabular worlds,
       where objects have fixed cells).

    Episodes are truncated after ``max_steps_in_episode`` steps.

Observation
    ``float32 [H, W, num_types + 1]`` binary tensor: channel ``t`` marks the
    present objects of type ``t``; the last channel marks the agent.

Levels
    There is nothing fixed per lifetime: :meth:`RandomGridWorld.sample_params`
    returns the default params (object properties and the step limit, stored as
    fixed-shape arrays so a batch of params vmaps like the other tasks).
    The optimal return is not known (``None`` in the registry).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces

from .gridworld import ObjectSpec, move_table

__all__ = [
    "RANDOM_GRIDWORLD_CONFIGS",
    "RandomGridWorld",
    "RandomGridWorldConfig",
    "RandomGridWorldParams",
    "RandomGridWorldState",
    "make_random_gridworld",
    "object_types",
    "random_gridworld_dims",
]


def object_types(objects: Sequence[ObjectSpec]) -> tuple[int, ...]:
    """Type id of every object: equal triples share a type, numbered by first appearance."""
    seen: dict[tuple[float, float, float], int] = {}
    ids = []
    for obj in objects:
        key = tuple(float(x) for x in obj)
        ids.append(seen.setdefault(key, len(seen)))  # type: ignore[arg-type]
    return tuple(ids)


@struct.dataclass
class RandomGridWorldState(environment.EnvState):
    """``time``, agent cell ``agent`` (row-major index), object cells and presence."""

    agent: jax.Array  # int32 []
    object_cells: jax.Array  # int32 [K]; meaningless while the object is absent
    present: jax.Array  # bool [K]


@struct.dataclass(kw_only=True)
class RandomGridWorldParams(environment.EnvParams):
    object_rewards: jax.Array  # float32 [K]
    object_term_probs: jax.Array  # float32 [K]
    object_respawn_probs: jax.Array  # float32 [K]


class RandomGridWorld(environment.Environment[RandomGridWorldState, RandomGridWorldParams]):
    """LPG random grid world (see the module docstring for the semantics).

    **Arguments:**

    - `height`, `width`: grid size (rows, columns).
    - `objects`: sequence of `(reward, term_prob, respawn_prob)` triples.
    - `max_steps`: episode length limit (truncation).
    - `num_actions`: 5 (4 moves + stay) or 9 (adds diagonals).
    - `env_name`: the name reported by `.name`.
    """

    def __init__(
        self,
        height: int,
        width: int,
        objects: Sequence[ObjectSpec],
        max_steps: int,
        num_actions: int = 5,
        env_name: str = "RandomGridWorld",
    ):
        super().__init__()
        self.height, self.width = int(height), int(width)
        self.objects: tuple[ObjectSpec, ...] = tuple(
            (float(r), float(t), float(p)) for r, t, p in objects
        )
        if not 0 < len(self.objects) < self.height * self.width - 1:
            raise ValueError("need at least one object and room for all of them")
        self.type_ids = object_types(self.objects)
        self.num_types = max(self.type_ids) + 1
        self.max_steps = int(max_steps)
        self._num_actions = int(num_actions)
        self._name = env_name
        free = np.ones((self.height, self.width), bool)
        self._move_flat = jnp.asarray(move_table(free, self._num_actions).reshape(-1))
        self._type_onehot = jnp.asarray(np.eye(self.num_types, dtype=np.float32)[list(self.type_ids)])

    @property
    def grid_shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    @property
    def num_cells(self) -> int:
        return self.height * self.width

    @property
    def num_objects(self) -> int:
        return len(self.objects)

    @property
    def obs_shape(self) -> tuple[int, int, int]:
        return (self.height, self.width, self.num_types + 1)

    # --------------------------------------------------------- gymnax protocol
    @property
    def name(self) -> str:
        return self._name

    @property
    def num_actions(self) -> int:
        return self._num_actions

    def action_space(self, params: Any = None) -> spaces.Discrete:
        return spaces.Discrete(self._num_actions)

    def observation_space(self, params: Any = None) -> spaces.Box:
        return spaces.Box(0.0, 1.0, self.obs_shape, jnp.float32)

    def state_space(self, params: Any = None) -> spaces.Dict:
        return spaces.Dict(
            {
                "agent": spaces.Discrete(self.num_cells),
                "object_cells": spaces.Box(0, self.num_cells - 1, (self.num_objects,), jnp.int32),
                "present": spaces.Box(0, 1, (self.num_objects,), jnp.bool_),
                "time": spaces.Discrete(self.max_steps + 1),
            }
        )

    @property
    def default_params(self) -> RandomGridWorldParams:
        spec = np.asarray(self.objects, dtype=np.float32)
        return RandomGridWorldParams(
            object_rewards=jnp.asarray(spec[:, 0]),
            object_term_probs=jnp.asarray(spec[:, 1]),
            object_respawn_probs=jnp.asarray(spec[:, 2]),
            max_steps_in_episode=jnp.asarray(self.max_steps, jnp.int32),
        )

    def sample_params(self, key: jax.Array) -> RandomGridWorldParams:
        """The task distribution has a single level (objects move every episode)."""
        del key
        return self.default_params

    def get_obs(
        self, state: RandomGridWorldState, params: Any = None, key: Any = None
    ) -> jax.Array:
        # one-hot comparisons only (no scatters: cheap to compile under vmap; no matmul: batched
        # tiny matmuls are slow on CPU)
        cells = jnp.arange(self.num_cells)
        on_cell = (cells[:, None] == state.object_cells[None, :]) & state.present[None, :]
        objects = jnp.any(on_cell[:, :, None] & (self._type_onehot[None, :, :] > 0), axis=1).astype(jnp.float32)
        agent = (cells == state.agent).astype(jnp.float32)[:, None]
        return jnp.concatenate([objects, agent], axis=1).reshape(self.obs_shape)

    def reset_env(
        self, key: jax.Array, params: RandomGridWorldParams
    ) -> tuple[jax.Array, RandomGridWorldState]:
        # distinct uniformly random cells, one uniform number per pick (random-number generation
        # and top-k sorts dominated the step time on CPU when every cell got a score)
        u = jax.random.uniform(key, (self.num_objects + 1,))
        cells = _distinct_picks(u, jnp.zeros(self.num_cells, bool))
        state = RandomGridWorldState(
            time=jnp.asarray(0, jnp.int32),
            agent=cells[0],
            object_cells=cells[1:],
            present=jnp.ones(self.num_objects, bool),
        )
        return self.get_obs(state), state

    def step_env(
        self,
        key: jax.Array,
        state: RandomGridWorldState,
        action: int | float | jax.Array,
        params: RandomGridWorldParams,
    ) -> tuple[jax.Array, RandomGridWorldState, jax.Array, jax.Array, dict[str, Any]]:
        K, N = self.num_objects, self.num_cells
        # one random draw per step: termination, K respawn coins, K placement numbers
        u = jax.random.uniform(key, (1 + 2 * K,))
        u_term, u_respawn, u_place = u[0], u[1 : 1 + K], u[1 + K :]
        action = jnp.clip(jnp.asarray(action, jnp.int32), 0, self._num_actions - 1)
        agent = self._move_flat[state.agent * self._num_actions + action]
        hit = state.present & (state.object_cells == agent)
        reward = jnp.sum(jnp.where(hit, params.object_rewards, 0.0)).astype(jnp.float32)
        term_prob = jnp.sum(jnp.where(hit, params.object_term_probs, 0.0))
        terminated = u_term < term_prob

        respawn = (~state.present) & (u_respawn < params.object_respawn_probs)
        present = state.present & ~hit
        # Free cells: neither the agent nor a present object. K successive uniform picks without
        # replacement among them form a uniformly random ordered sample; the i-th respawning
        # object (in object order) takes the i-th pick. This has the same distribution as
        # placing the respawning objects one after another.
        all_cells = jnp.arange(N)
        occupied = jnp.any(
            (all_cells[:, None] == state.object_cells[None, :]) & present[None, :], axis=1
        ) | (all_cells == agent)
        free_cells = _distinct_picks(u_place, occupied)
        rank = jnp.cumsum(respawn) - 1
        object_cells = jnp.where(respawn, free_cells[rank], state.object_cells).astype(jnp.int32)
        present = present | respawn

        new_state = RandomGridWorldState(
            time=state.time + 1, agent=agent, object_cells=object_cells, present=present
        )
        info = {"discount": 1.0 - terminated.astype(jnp.float32)}
        return self.get_obs(new_state), new_state, reward, terminated, info


def _distinct_picks(u: jax.Array, blocked: jax.Array) -> jax.Array:
    """``u.shape[0]`` distinct cells: pick i is uniform among the cells neither blocked nor picked
    before (the ``floor(u_i · n_free)``-th allowed cell, for ``u_i`` uniform in [0, 1))."""
    picks = []
    for i in range(u.shape[0]):
        free = ~blocked
        n_free = jnp.sum(free)
        r = jnp.minimum(jnp.floor(u[i] * n_free), n_free - 1)
        c = jnp.argmax(jnp.cumsum(free) > r).astype(jnp.int32)
        picks.append(c)
        blocked = blocked | (jnp.arange(blocked.shape[0]) == c)
    return jnp.stack(picks)


@dataclasses.dataclass(frozen=True)
class RandomGridWorldConfig:
    height: int
    width: int
    objects: tuple[ObjectSpec, ...]
    max_steps: int


RANDOM_GRIDWORLD_CONFIGS: dict[str, RandomGridWorldConfig] = {
    "dense": RandomGridWorldConfig(
        11, 11, ((1.0, 0.0, 0.05),) * 2 + ((-1.0, 0.5, 0.1), (-1.0, 0.0, 0.5)), 500
    ),
    "long_horizon": RandomGridWorldConfig(
        11, 11, ((1.0, 0.0, 0.01),) * 2 + ((-1.0, 0.5, 1.0),) * 2, 1000
    ),
    "small": RandomGridWorldConfig(
        5, 7, ((1.0, 0.0, 0.05),) * 2 + ((-1.0, 0.5, 0.1),) * 2, 500
    ),
    "small_sparse": RandomGridWorldConfig(
        5, 7, ((1.0, 1.0, 1.0),) + ((-1.0, 1.0, 1.0),) * 2, 50
    ),
    "very_dense": RandomGridWorldConfig(11, 11, ((1.0, 0.0, 1.0),), 2000),
}


def random_gridworld_dims(variant: str) -> dict[str, Any]:
    """Sizes of ``random_gridworld/<variant>`` without building the environment."""
    cfg = RANDOM_GRIDWORLD_CONFIGS[variant]
    num_types = max(object_types(cfg.objects)) + 1
    return {
        "grid_shape": (cfg.height, cfg.width),
        "num_objects": len(cfg.objects),
        "num_types": num_types,
        "obs_shape": (cfg.height, cfg.width, num_types + 1),
        "max_steps": cfg.max_steps,
    }


def make_random_gridworld(variant: str, num_actions: int = 5) -> RandomGridWorld:
    """Build ``random_gridworld/<variant>``."""
    try:
        cfg = RANDOM_GRIDWORLD_CONFIGS[variant]
    except KeyError:
        raise ValueError(
            f"unknown random grid world {variant!r}; "
            f"choose from {sorted(RANDOM_GRIDWORLD_CONFIGS)}"
        ) from None
    return RandomGridWorld(
        cfg.height,
        cfg.width,
        cfg.objects,
        cfg.max_steps,
        num_actions=num_actions,
        env_name=f"random_gridworld/{variant}",
    )
