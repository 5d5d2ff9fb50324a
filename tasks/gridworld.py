"""Tabular grid worlds of LPG (Oh et al., 2020), as gymnax 1.x environments.

The agent walks on a grid that holds a fixed set of *objects*. Each object is
written ``[reward, termination probability, respawn probability]``.

Layout
    The grid is given as a layout string (``'.'`` = free cell, ``'#'`` = wall).
    The border of the grid is an implicit wall: the layout lists only the
    playable area, so an ``11x11`` grid world has 121 free cells.
    ``gridworld/long_dense`` uses the classic four-rooms layout (Sutton et al.,
    1999) inside an 11x11 area: interior walls split it into four rooms that
    are connected by four one-cell doorways (104 free cells).
    Free cells are numbered row-major; this number is the *cell index*.
    ``7x9`` (``longer_horizon``) means 7 rows and 9 columns.

Actions
    ``num_actions=5`` (default, as in GROOVE): up, down, left, right, stay.
    ``num_actions=9``: additionally up-left, up-right, down-left, down-right.
    A move whose target cell is a wall or outside the grid leaves the agent
    where it is (only the target cell is checked; diagonals may pass corners).

Levels (one per lifetime)
    Object *positions* are fixed for a lifetime and stored in
    :class:`GridWorldParams` (``object_cells``: distinct free cells, sampled
    uniformly by :meth:`GridWorld.sample_params`). Object rewards and
    probabilities are also stored in the params as fixed-shape arrays, so a
    batch of levels is one ``jax.vmap`` over params. ``default_params`` are
    the sample for ``jax.random.PRNGKey(0)`` (reproducible).

Episodes
    At reset the agent starts on a uniformly random free cell that does not
    hold an object, and every object is present.
    One step, in this order:

    1. The agent moves (see *Actions*).
    2. If the new cell holds a *present* object (this includes staying on a
       cell where an object has just respawned), the agent receives its
       reward, the object is removed, and the episode terminates with the
       object's termination probability.
    3. Every object that was absent at the *start* of the step respawns at
       its fixed position, independently, with its respawn probability.
       A just-collected object can therefore not reappear in the same step.
       An object may respawn under the agent; it is then collected on the
       next step if the agent stays (or comes back).

    Episodes are truncated after ``max_steps_in_episode`` steps
    (``state.time`` counts steps; gymnax's ``is_truncated`` does the rest).

Observation
    An ``int32`` scalar state index
    ``cell_index * 2**num_objects + presence_bitmask`` where bit ``k`` of the
    bitmask is set iff object ``k`` is present. Hence
    ``num_states = num_free_cells * 2**num_objects``.

Optimal return
    :meth:`GridWorld.optimal_return` computes the *exact* optimal expected
    (undiscounted) episode return by finite-horizon dynamic programming over
    position x presence mask x remaining steps, with the exact termination and
    respawn probabilities, averaged over the uniform start distribution. The
    independent per-object respawns are applied as one expectation per
    bitmask axis (cost ``O(K 2^K)`` per cell, never a ``2^K x 2^K`` matrix);
    ``gridworld/longer_horizon`` (7 objects, 2000 steps) takes about a second.
    :meth:`GridWorld.solve` also returns the value of every state and,
    optionally, a greedy optimal policy table indexed by ``[time, obs]``.
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

__all__ = [
    "ACTION_DELTAS_5",
    "ACTION_DELTAS_9",
    "FOUR_ROOMS_11x11",
    "GRIDWORLD_CONFIGS",
    "GridWorld",
    "GridWorldConfig",
    "GridWorldParams",
    "GridWorldState",
    "ObjectSpec",
    "gridworld_dims",
    "make_gridworld",
    "move_table",
    "open_layout",
    "parse_layout",
]

ObjectSpec = tuple[float, float, float]
"""``(reward, termination probability on collection, per-step respawn probability)``."""

# (row delta, column delta); row 0 is the top of the grid.
ACTION_DELTAS_5: tuple[tuple[int, int], ...] = (
    (-1, 0),  # 0 up
    (1, 0),  # 1 down
    (0, -1),  # 2 left
    (0, 1),  # 3 right
    (0, 0),  # 4 stay
)
ACTION_DELTAS_9: tuple[tuple[int, int], ...] = ACTION_DELTAS_5 + (
    (-1, -1),  # 5 up-left
    (-1, 1),  # 6 up-right
    (1, -1),  # 7 down-left
    (1, 1),  # 8 down-right
)

# Sutton et al.'s four-rooms map without its outer wall (11x11, 104 free cells).
FOUR_ROOMS_11x11 = """\
.....#.....
.....#.....
...........
.....#.....
.....#.....
#.####.....
.....###.##
.....#.....
.....#.....
...........
.....#....."""


def open_layout(height: int, width: int) -> str:
    """Layout string of an empty ``height x width`` grid (walls only on the border)."""
    return "\n".join("." * width for _ in range(height))


def parse_layout(layout: str) -> np.ndarray:
    """Boolean ``[H, W]`` array of free cells from a layout string ('.' free, '#' wall)."""
    rows = [row.strip() for row in layout.strip().splitlines() if row.strip()]
    if not rows or any(len(row) != len(rows[0]) for row in rows):
        raise ValueError("layout rows must be non-empty and of equal length")
    bad = set("".join(rows)) - {".", "#"}
    if bad:
        raise ValueError(f"layout may only contain '.' and '#', got {sorted(bad)}")
    return np.array([[c == "." for c in row] for row in rows], dtype=bool)


def move_table(free: np.ndarray, num_actions: int = 5) -> np.ndarray:
    """``[num_free_cells, num_actions]`` int32 table of the next cell index.

    Cells are the free cells of ``free`` numbered row-major. Moving into a wall
    or off the grid keeps the agent in place.
    """
    deltas = _action_deltas(num_actions)
    height, width = free.shape
    coords = np.argwhere(free)
    index = -np.ones(free.shape, dtype=np.int64)
    index[free] = np.arange(len(coords))
    table = np.empty((len(coords), len(deltas)), dtype=np.int32)
    for c, (row, col) in enumerate(coords):
        for a, (dr, dc) in enumerate(deltas):
            r2, c2 = row + dr, col + dc
            inside = 0 <= r2 < height and 0 <= c2 < width
            table[c, a] = index[r2, c2] if inside and free[r2, c2] else c
    return table


def _action_deltas(num_actions: int) -> tuple[tuple[int, int], ...]:
    if num_actions == 5:
        return ACTION_DELTAS_5
    if num_actions == 9:
        return ACTION_DELTAS_9
    raise ValueError(f"num_actions must be 5 or 9, got {num_actions}")


@struct.dataclass
class GridWorldState(environment.EnvState):
    """``time`` (steps taken), agent ``cell`` index and object ``present`` flags."""

    cell: jax.Array  # int32 []
    present: jax.Array  # bool [K]


@struct.dataclass(kw_only=True)
class GridWorldParams(environment.EnvParams):
    """One level: fixed object positions plus the object properties."""

    object_cells: jax.Array  # int32 [K], distinct free-cell indices
    object_rewards: jax.Array  # float32 [K]
    object_term_probs: jax.Array  # float32 [K]
    object_respawn_probs: jax.Array  # float32 [K]


class GridWorld(environment.Environment[GridWorldState, GridWorldParams]):
    """Tabular LPG grid world (see the module docstring for the semantics).

    **Arguments:**

    - `layout`: layout string ('.' free, '#' wall); the border is implicit.
    - `objects`: sequence of `(reward, term_prob, respawn_prob)` triples.
    - `max_steps`: episode length limit (truncation).
    - `num_actions`: 5 (4 moves + stay) or 9 (adds diagonals).
    - `env_name`: the name reported by `.name`.
    """

    def __init__(
        self,
        layout: str,
        objects: Sequence[ObjectSpec],
        max_steps: int,
        num_actions: int = 5,
        env_name: str = "GridWorld",
    ):
        super().__init__()
        self.free_mask = parse_layout(layout)
        self.coords = np.argwhere(self.free_mask).astype(np.int32)  # [C, 2]
        self.objects: tuple[ObjectSpec, ...] = tuple(
            (float(r), float(t), float(p)) for r, t, p in objects
        )
        if len(self.objects) == 0:
            raise ValueError("a grid world needs at least one object")
        if len(self.objects) >= len(self.coords):
            raise ValueError("need more free cells than objects")
        for _, term, resp in self.objects:
            if not (0.0 <= term <= 1.0 and 0.0 <= resp <= 1.0):
                raise ValueError(f"probabilities must be in [0, 1]: {objects}")
        self.max_steps = int(max_steps)
        self._num_actions = int(num_actions)
        self._name = env_name
        self.move_np = move_table(self.free_mask, self._num_actions)
        self._move_flat = jnp.asarray(self.move_np.reshape(-1))
        self._bit_values = jnp.asarray(1 << np.arange(self.num_objects), jnp.int32)
        self._default_params = self.sample_params(jax.random.PRNGKey(0))

    # ------------------------------------------------------------------ sizes
    @property
    def grid_shape(self) -> tuple[int, int]:
        """``(rows, columns)`` of the playable area."""
        return tuple(self.free_mask.shape)  # type: ignore[return-value]

    @property
    def num_free_cells(self) -> int:
        return int(self.coords.shape[0])

    @property
    def num_objects(self) -> int:
        return len(self.objects)

    @property
    def num_states(self) -> int:
        """Number of observation indices: ``num_free_cells * 2**num_objects``."""
        return self.num_free_cells * 2**self.num_objects

    # --------------------------------------------------------- gymnax protocol
    @property
    def name(self) -> str:
        return self._name

    @property
    def num_actions(self) -> int:
        return self._num_actions

    def action_space(self, params: GridWorldParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(self._num_actions)

    def observation_space(self, params: GridWorldParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(self.num_states)

    def state_space(self, params: GridWorldParams | None = None) -> spaces.Dict:
        return spaces.Dict(
            {
                "cell": spaces.Discrete(self.num_free_cells),
                "present": spaces.Box(0, 1, (self.num_objects,), jnp.bool_),
                "time": spaces.Discrete(self.max_steps + 1),
            }
        )

    @property
    def default_params(self) -> GridWorldParams:
        """The level sampled with ``jax.random.PRNGKey(0)``."""
        return self._default_params

    def sample_params(self, key: jax.Array) -> GridWorldParams:
        """Sample a level: distinct uniformly random free cells for the objects.

        Jittable and vmappable (a batch of keys gives a batch of levels).
        """
        # distinct uniformly random free cells: the K largest of C iid uniforms
        _, cells = jax.lax.top_k(jax.random.uniform(key, (self.num_free_cells,)), self.num_objects)
        cells = cells.astype(jnp.int32)
        spec = np.asarray(self.objects, dtype=np.float32)
        return GridWorldParams(
            object_cells=cells,
            object_rewards=jnp.asarray(spec[:, 0]),
            object_term_probs=jnp.asarray(spec[:, 1]),
            object_respawn_probs=jnp.asarray(spec[:, 2]),
            max_steps_in_episode=jnp.asarray(self.max_steps, jnp.int32),
        )

    def get_obs(self, state: GridWorldState, params: Any = None, key: Any = None) -> jax.Array:
        mask = jnp.sum(jnp.where(state.present, self._bit_values, 0))
        return (state.cell * (2**self.num_objects) + mask).astype(jnp.int32)

    def reset_env(
        self, key: jax.Array, params: GridWorldParams
    ) -> tuple[jax.Array, GridWorldState]:
        # Uniform over the free cells without an object: draw a rank j and take the
        # j-th such cell. (One random draw and comparisons instead of scatters keep
        # the program small, which makes it cheap to compile under vmap.)
        cells = jnp.arange(self.num_free_cells)
        available = ~jnp.any(cells[:, None] == params.object_cells[None, :], axis=1)
        num_available = self.num_free_cells - self.num_objects
        j = jnp.minimum(
            jnp.floor(jax.random.uniform(key) * num_available).astype(jnp.int32),
            num_available - 1,
        )
        rank = jnp.cumsum(available) - 1
        cell = jnp.argmax(available & (rank == j)).astype(jnp.int32)
        state = GridWorldState(
            time=jnp.asarray(0, jnp.int32),
            cell=cell,
            present=jnp.ones(self.num_objects, bool),
        )
        return self.get_obs(state), state

    def step_env(
        self,
        key: jax.Array,
        state: GridWorldState,
        action: int | float | jax.Array,
        params: GridWorldParams,
    ) -> tuple[jax.Array, GridWorldState, jax.Array, jax.Array, dict[str, Any]]:
        u = jax.random.uniform(key, (self.num_objects + 1,))  # termination, respawns
        # 1. move (into a wall or off the grid = stay); out-of-range actions are clipped
        action = jnp.clip(jnp.asarray(action, jnp.int32), 0, self._num_actions - 1)
        cell = self._move_flat[state.cell * self._num_actions + action]
        # 2. collect a present object on the new cell (objects are on distinct cells)
        hit = state.present & (params.object_cells == cell)
        reward = jnp.sum(jnp.where(hit, params.object_rewards, 0.0)).astype(jnp.float32)
        term_prob = jnp.sum(jnp.where(hit, params.object_term_probs, 0.0))
        terminated = u[0] < term_prob
        # 3. objects absent at the start of the step respawn independently
        respawn = (~state.present) & (u[1:] < params.object_respawn_probs)
        present = (state.present & ~hit) | respawn
        new_state = GridWorldState(time=state.time + 1, cell=cell, present=present)
        info = {"discount": 1.0 - terminated.astype(jnp.float32)}
        return self.get_obs(new_state), new_state, reward, terminated, info

    # -------------------------------------------------------------- helpers
    def decode_obs(self, obs: int | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Host-side inverse of the observation: ``(row, col)`` and presence flags."""
        obs = int(obs)
        cell, mask = divmod(obs, 2**self.num_objects)
        present = np.array([(mask >> k) & 1 for k in range(self.num_objects)], bool)
        return self.coords[cell], present

    def render(self, params: GridWorldParams, state: GridWorldState | None = None) -> str:
        """ASCII picture: '#' wall, 'A' agent, digits objects (absent ones lowercase 'o')."""
        grid = np.where(self.free_mask, ".", "#").astype(object)
        present = (
            np.ones(self.num_objects, bool) if state is None else np.asarray(state.present)
        )
        for k, c in enumerate(np.asarray(params.object_cells)):
            r, col = self.coords[int(c)]
            grid[r, col] = str(k % 10) if present[k] else "o"
        if state is not None:
            r, col = self.coords[int(state.cell)]
            grid[r, col] = "A"
        return "\n".join("".join(row) for row in grid)

    # ------------------------------------------------------- exact solution
    def solve(
        self, params: GridWorldParams, *, return_policy: bool = False
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Exact finite-horizon dynamic programming (host side, float64).

        **Arguments:**

        - `params`: one (unbatched) level.
        - `return_policy`: also return a greedy optimal policy table.

        **Returns:**

        `(values, policy)`. `values[s]` is the optimal expected return from the
        observation index `s` with the full horizon `max_steps_in_episode`
        ahead. `policy` (or `None`) is an int8 array `[H, num_states]`:
        `policy[t, s]` is an optimal action at observation `s` after `t` steps
        (i.e. with `H - t` steps left).
        """
        K = self.num_objects
        M = 2**K
        C = self.num_free_cells
        cells = np.asarray(params.object_cells, dtype=np.int64)
        rewards = np.asarray(params.object_rewards, dtype=np.float64)
        terms = np.asarray(params.object_term_probs, dtype=np.float64)
        rhos = np.asarray(params.object_respawn_probs, dtype=np.float64)
        horizon = int(np.asarray(params.max_steps_in_episode))
        if cells.shape != (K,):
            raise ValueError("solve() takes one unbatched level")
        if len(set(cells.tolist())) != K:
            raise ValueError("object cells must be distinct")
        # Arrays are mask-major ([M, ...]) so each bit's slices are contiguous blocks.
        masks = np.arange(M)
        has_bit = ((masks[:, None] >> np.arange(K)[None, :]) & 1).astype(bool)  # [M, K]
        # column j: the mask with bit j cleared (object j has just been collected)
        cleared_index = masks[:, None] & ~(1 << np.arange(K))[None, :]  # [M, K]
        random_bits = [k for k in range(K) if rhos[k] > 0.0]
        pickup_reward = rewards[None, :]
        pickup_continue = (1.0 - terms)[None, :]

        def respawn_expectation(v: np.ndarray) -> np.ndarray:
            """In place: E over independent respawns of the absent bits; `v` is [M, n].

            One pass per bit axis: entries with bit k = 0 become a (1 - rho_k, rho_k)
            mixture of bit k = 0 and bit k = 1; entries with bit k = 1 stay.
            """
            for k in random_bits:
                view = v.reshape(M >> (k + 1), 2, (1 << k) * v.shape[1])
                view[:, 0] *= 1.0 - rhos[k]
                view[:, 0] += rhos[k] * view[:, 1]
            return v

        values = np.zeros((M, C))
        policy = np.zeros((horizon, C * M), np.int8) if return_policy else None
        for steps_left in range(1, horizon + 1):
            # Columns 0..C-1: arriving on cell c with mask m and collecting nothing.
            # Column C + j: arriving on object j's cell and collecting it: bit j is
            # cleared before the respawn expectation. Bit j was set at the start of the
            # step, so it must not respawn; the expectation leaves it alone because the
            # bit-j slices of that column are equal (mixing equal values changes nothing).
            stacked = np.concatenate([values, values[cleared_index, cells[None, :]]], axis=1)
            expected = respawn_expectation(stacked)
            arrive = expected[:, :C]
            pickup = pickup_reward + pickup_continue * expected[:, C:]  # [M, K]
            arrive[:, cells] = np.where(has_bit, pickup, arrive[:, cells])  # distinct cells
            q = arrive[:, self.move_np]  # [M, C, A]
            values = q.max(axis=2)
            if policy is not None:
                policy[horizon - steps_left] = q.argmax(axis=2).T.reshape(C * M)
        values = values.T  # [C, M]: observation index = cell * M + mask
        return values.reshape(C * M), policy

    def start_states(self, params: GridWorldParams) -> np.ndarray:
        """Observation indices of the (uniform) start distribution."""
        K = self.num_objects
        cells = np.setdiff1d(np.arange(self.num_free_cells), np.asarray(params.object_cells))
        return cells * 2**K + (2**K - 1)

    def optimal_return(self, params: GridWorldParams) -> float:
        """Exact optimal expected episode return (undiscounted) of a level."""
        values, _ = self.solve(params)
        return float(values[self.start_states(params)].mean())


@dataclasses.dataclass(frozen=True)
class GridWorldConfig:
    """Static configuration of a named tabular grid world."""

    layout: str
    objects: tuple[ObjectSpec, ...]
    max_steps: int


GRIDWORLD_CONFIGS: dict[str, GridWorldConfig] = {
    "dense": GridWorldConfig(
        open_layout(11, 11),
        ((1.0, 0.0, 0.05),) * 2 + ((-1.0, 0.5, 0.1), (-1.0, 0.0, 0.5)),
        500,
    ),
    "sparse": GridWorldConfig(
        open_layout(13, 13), ((1.0, 1.0, 0.0), (-1.0, 1.0, 0.0)), 50
    ),
    "long_horizon": GridWorldConfig(
        open_layout(11, 11), ((1.0, 0.0, 0.01),) * 2 + ((-1.0, 0.5, 1.0),) * 2, 1000
    ),
    "longer_horizon": GridWorldConfig(
        open_layout(7, 9), ((1.0, 0.1, 0.01),) * 2 + ((-1.0, 0.8, 1.0),) * 5, 2000
    ),
    "long_dense": GridWorldConfig(FOUR_ROOMS_11x11, ((1.0, 0.0, 0.005),) * 4, 2000),
}


def gridworld_dims(variant: str) -> dict[str, Any]:
    """Sizes of ``gridworld/<variant>`` without building the environment (host side)."""
    cfg = GRIDWORLD_CONFIGS[variant]
    free = parse_layout(cfg.layout)
    num_free, num_objects = int(free.sum()), len(cfg.objects)
    return {
        "grid_shape": tuple(free.shape),
        "num_free_cells": num_free,
        "num_objects": num_objects,
        "num_states": num_free * 2**num_objects,
        "max_steps": cfg.max_steps,
    }


def make_gridworld(variant: str, num_actions: int = 5) -> GridWorld:
    """Build ``gridworld/<variant>`` (``dense``, ``sparse``, ``long_horizon``, ...)."""
    try:
        cfg = GRIDWORLD_CONFIGS[variant]
    except KeyError:
        raise ValueError(
            f"unknown grid world {variant!r}; choose from {sorted(GRIDWORLD_CONFIGS)}"
        ) from None
    return GridWorld(
        cfg.layout,
        cfg.objects,
        cfg.max_steps,
        num_actions=num_actions,
        env_name=f"gridworld/{variant}",
    )
