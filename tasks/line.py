"""One-dimensional control toys, as gymnax 1.x environments.

The grid worlds and delayed chains reward only some transitions. Classic control rewards every
step: CartPole pays ``+1`` per step until the pole falls (only termination carries information),
Acrobot and MountainCar pay ``-1`` per step until the goal is reached. A learned rule that has
never met such rewards may read a constant ``+1`` as "every action was good". The first three toys
give meta-training that reward structure at the cost of a grid world; the fourth, ``line/cross``,
gives it Freeway's: a rare positive reward, paid again and again within one long episode.

Dynamics (both variants)
    A point on the integer line: position ``x`` (starts at 0) and velocity ``v`` (starts at 0).
    Two actions push by ``+1`` or ``-1``; which action pushes which way is drawn per level
    (``flip``) and is **not** observable, so every lifetime has to find out. With probability
    ``kick_prob`` a random kick of ``+1`` or ``-1`` is added as well. Then
    ``v <- clip(v + push + kick, -max_speed, max_speed)`` and ``x <- x + v``.

``line/balance`` (the CartPole-like toy)
    Reward ``+1`` on every step, the last one included. The episode terminates when
    ``|x| > bound``; it is truncated after ``max_steps`` (200) steps, so returns lie in
    ``[1, 200]``. A random policy falls off within a few tens of steps; a policy that pushes
    against the motion stays on nearly always (the kicks can still throw it off).

``line/escape`` (the Acrobot/MountainCar-like toy)
    Reward ``-1`` on every step. Reaching ``x >= bound`` on the level's goal side terminates the
    episode; the other end is a wall (``x`` is clipped, ``v`` set to 0). Truncated after
    ``max_steps`` (100) steps, so returns lie in ``[-100, -5]``. The goal side is drawn per level
    and is not observable.

``line/swing`` (the Acrobot-like toy: a goal that needs pumping)
    Gravity pulls the point back to the centre: ``v <- clip(v + push + kick - gravity * sign(x),
    -max_speed, max_speed)`` with ``gravity`` 2, stronger than a push, so no constant action gets
    far. Reward ``-1`` on every step; reaching ``|x| >= bound`` (bound 30–36, either side)
    terminates; truncated after ``max_steps`` (200). A policy has to push along its velocity to
    swing higher, as Acrobot's has to pump energy; the speed limit (8) bounds the swing, so the
    goal is reachable only by pumping well. A random policy reaches it in about one episode in
    ten (return about ``-190``), pushing along the velocity in about 20–80 steps.

``line/cross`` (the Freeway-like toy: a sparse reward paid again and again)
    The point starts at 0 with a wall behind it (``x`` clipped at 0, ``v`` set to 0 there), and
    ``max_speed`` is 1. Reaching ``x >= bound`` (bound 16–24) pays ``+1`` and puts the point back
    at 0 at rest; the episode goes on. Every other step pays 0, and with probability ``hit_prob``
    (0.03) a step on the way throws the point back to 0 at rest, as a car sends Freeway's chicken
    back to the start. Nothing terminates; episodes are truncated after ``max_steps`` (400). A
    random policy crosses about once in an episode or less; pushing towards the goal on every step
    crosses about every 15–25 steps. As in Freeway, the reward is positive, rare under a random
    policy, and separated by long stretches of zeros that only a value that bootstraps can bridge.

``line/escape0`` and ``line/swing0`` (the goal step pays 0, as in Acrobot)
    ``escape`` and ``swing`` with one change: the step that reaches the goal pays ``0`` instead of
    ``-1`` (``LineConfig.goal_reward``), as Acrobot's does. In ``escape`` and ``swing`` the best event
    of a lifetime, reaching the goal, ends the episode on a reward of ``-1``, while in ``balance`` the
    worst one, falling off, ends it on ``+1``; in these two variants a good episode ends on the larger
    reward, as in Acrobot or Catch. ``docs/lpg_all.md`` meta-trains on both kinds.

``line/balance0`` (the falling step pays 0)
    ``balance`` with one change: the step that leaves the line pays ``0`` instead of ``+1``
    (``LineConfig.fall_reward``), so the worst event of a lifetime ends the episode on its smallest
    reward, as a miss does in Catch. CartPole pays ``+1`` there, as ``balance`` does.

No variant reports an optimal return: the kicks make the exact optimum a dynamic program
that nothing here needs, so results on these tasks are raw returns.

Levels (one per lifetime)
    :class:`LineParams`: ``bound`` uniform in ``[min_bound, max_bound]`` (balance 4–8, escape
    10–20, swing 30–36, cross 16–24), ``flip`` and ``goal_side`` uniform. ``default_params`` are the sample for ``jax.random.PRNGKey(0)``.

Observation
    ``float32 [3]``: ``x / max_bound``, ``v / max_speed``, and ``time / max_steps``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces

__all__ = ["LINE_CONFIGS", "LineConfig", "LineParams", "LineState", "LineWorld", "make_line"]


@struct.dataclass
class LineState(environment.EnvState):
    """``time``, ``position`` and ``velocity``."""

    position: jax.Array  # int32 []
    velocity: jax.Array  # int32 []


@struct.dataclass(kw_only=True)
class LineParams(environment.EnvParams):
    bound: jax.Array  # int32 [], |x| > bound ends a balance episode; x >= bound on the goal side an escape one
    flip: jax.Array  # int32 [], 1: action 0 pushes +1 (else -1)
    goal_side: jax.Array  # int32 [], +1 or -1 (escape only)


@dataclasses.dataclass(frozen=True)
class LineConfig:
    mode: str  # "balance", "escape" or "swing"
    max_steps: int
    kick_prob: float
    min_bound: int = 4
    max_bound: int = 8
    max_speed: int = 3
    gravity: int = 0  # pull towards the centre per step (swing)
    hit_prob: float = 0.0  # chance per step of being thrown back to the start (cross)
    goal_reward: float = -1.0  # escape, swing: the reward of the step that reaches the goal (Acrobot's is 0)
    fall_reward: float = 1.0  # balance: the reward of the step that leaves the line (CartPole's is +1)


LINE_CONFIGS: dict[str, LineConfig] = {
    "balance": LineConfig(mode="balance", max_steps=200, kick_prob=0.3),
    "escape": LineConfig(mode="escape", max_steps=100, kick_prob=0.3, min_bound=10, max_bound=20),
    "swing": LineConfig(mode="swing", max_steps=200, kick_prob=0.05, min_bound=30, max_bound=36, max_speed=8, gravity=2),
    "cross": LineConfig(mode="cross", max_steps=400, kick_prob=0.0, min_bound=16, max_bound=24, max_speed=1, hit_prob=0.03),
    "escape0": LineConfig(mode="escape", max_steps=100, kick_prob=0.3, min_bound=10, max_bound=20, goal_reward=0.0),
    "swing0": LineConfig(mode="swing", max_steps=200, kick_prob=0.05, min_bound=30, max_bound=36, max_speed=8, gravity=2, goal_reward=0.0),
    "balance0": LineConfig(mode="balance", max_steps=200, kick_prob=0.3, fall_reward=0.0),
}
_MODES = ("balance", "escape", "swing", "cross")


class LineWorld(environment.Environment[LineState, LineParams]):
    """A point on a line, pushed left or right (see the module docstring).

    **Arguments:**

    - `config`: a :class:`LineConfig` (the variant).
    - `env_name`: the name reported by `.name`.
    """

    def __init__(self, config: LineConfig, env_name: str = "LineWorld"):
        super().__init__()
        if config.mode not in _MODES:
            raise ValueError(f"mode must be one of {', '.join(_MODES)}, got {config.mode!r}")
        if config.gravity < 0:
            raise ValueError(f"gravity must be >= 0, got {config.gravity}")
        if not 1 <= config.min_bound <= config.max_bound:
            raise ValueError(f"need 1 <= min_bound <= max_bound, got {config.min_bound}, {config.max_bound}")
        if not 0.0 <= config.kick_prob <= 1.0:
            raise ValueError(f"kick_prob must lie in [0, 1], got {config.kick_prob}")
        if not 0.0 <= config.hit_prob <= 1.0:
            raise ValueError(f"hit_prob must lie in [0, 1], got {config.hit_prob}")
        if config.max_speed < 1 or config.max_steps < 1:
            raise ValueError("max_speed and max_steps must be >= 1")
        self.config = config
        self._name = env_name
        self._default_params = self.sample_params(jax.random.PRNGKey(0))

    num_states = None
    obs_shape = (3,)

    @property
    def name(self) -> str:
        return self._name

    @property
    def num_actions(self) -> int:
        return 2

    def action_space(self, params: Any = None) -> spaces.Discrete:
        return spaces.Discrete(2)

    def observation_space(self, params: Any = None) -> spaces.Box:
        return spaces.Box(-2.0, 2.0, self.obs_shape, jnp.float32)

    def state_space(self, params: Any = None) -> spaces.Dict:
        c = self.config
        return spaces.Dict(
            {
                "position": spaces.Discrete(2 * (c.max_bound + c.max_speed) + 1),
                "velocity": spaces.Discrete(2 * c.max_speed + 1),
                "time": spaces.Discrete(c.max_steps + 1),
            }
        )

    @property
    def default_params(self) -> LineParams:
        """The level sampled with ``jax.random.PRNGKey(0)``."""
        return self._default_params

    def sample_params(self, key: jax.Array) -> LineParams:
        """Sample a level: bound, push direction and goal side (jittable, vmappable)."""
        c = self.config
        k_bound, k_flip, k_side = jax.random.split(key, 3)
        return LineParams(
            bound=jax.random.randint(k_bound, (), c.min_bound, c.max_bound + 1, jnp.int32),
            flip=jax.random.bernoulli(k_flip).astype(jnp.int32),
            goal_side=jnp.where(jax.random.bernoulli(k_side), 1, -1).astype(jnp.int32),
            max_steps_in_episode=jnp.asarray(c.max_steps, jnp.int32),
        )

    def get_obs(self, state: LineState, params: Any = None, key: Any = None) -> jax.Array:
        c = self.config
        return jnp.stack(
            [
                state.position / c.max_bound,
                state.velocity / c.max_speed,
                state.time / c.max_steps,
            ]
        ).astype(jnp.float32)

    def reset_env(self, key: jax.Array, params: LineParams) -> tuple[jax.Array, LineState]:
        zero = jnp.asarray(0, jnp.int32)
        state = LineState(time=zero, position=zero, velocity=zero)
        return self.get_obs(state), state

    def step_env(
        self,
        key: jax.Array,
        state: LineState,
        action: int | float | jax.Array,
        params: LineParams,
    ) -> tuple[jax.Array, LineState, jax.Array, jax.Array, dict[str, Any]]:
        c = self.config
        action = jnp.clip(jnp.asarray(action, jnp.int32), 0, 1)
        push = jnp.where((action == 0) == (params.flip == 1), 1, -1)
        u = jax.random.uniform(key, (2,))
        kick = jnp.where(u[0] < c.kick_prob, jnp.where(u[1] < 0.5, 1, -1), 0)
        pull = c.gravity * jnp.sign(state.position)
        velocity = jnp.clip(state.velocity + push + kick - pull, -c.max_speed, c.max_speed)
        position = state.position + velocity
        if c.mode == "escape":
            # the far end (opposite the goal) is a wall: stop there
            signed = position * params.goal_side
            at_wall = signed < -params.bound
            position = jnp.where(at_wall, -params.bound * params.goal_side, position)
            velocity = jnp.where(at_wall, 0, velocity)
            terminated = position * params.goal_side >= params.bound
            reward = jnp.where(terminated, c.goal_reward, -1.0).astype(jnp.float32)
        elif c.mode == "cross":
            # a wall behind the start; crossing pays +1 and starts over, as does a hit on the way
            at_wall = position < 0
            position = jnp.where(at_wall, 0, position)
            velocity = jnp.where(at_wall, 0, velocity)
            crossed = position >= params.bound
            hit = (jax.random.uniform(jax.random.fold_in(key, 1)) < c.hit_prob) & (position > 0)
            restart = crossed | hit
            position = jnp.where(restart, 0, position)
            velocity = jnp.where(restart, 0, velocity)
            terminated = jnp.asarray(False)
            reward = crossed.astype(jnp.float32)
        elif c.mode == "swing":
            terminated = jnp.abs(position) >= params.bound
            reward = jnp.where(terminated, c.goal_reward, -1.0).astype(jnp.float32)
        else:
            terminated = jnp.abs(position) > params.bound
            reward = jnp.where(terminated, c.fall_reward, 1.0).astype(jnp.float32)
        new_state = LineState(time=state.time + 1, position=position.astype(jnp.int32), velocity=velocity.astype(jnp.int32))
        info = {"discount": 1.0 - terminated.astype(jnp.float32)}
        return self.get_obs(new_state), new_state, reward, terminated, info


def make_line(variant: str, **overrides: Any) -> LineWorld:
    """``line/<variant>``; keywords override :class:`LineConfig` fields (``kick_prob``, ...)."""
    if variant not in LINE_CONFIGS:
        raise ValueError(f"Unknown line variant {variant!r}. Known: {', '.join(LINE_CONFIGS)}")
    try:
        config = dataclasses.replace(LINE_CONFIGS[variant], **overrides)
    except TypeError as err:
        raise ValueError(f"line/{variant}: {err}") from None
    return LineWorld(config, env_name=f"line/{variant}")
