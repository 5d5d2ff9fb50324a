"""Brax environments behind our gymnax-style reset/step protocol: ``tasks.make("brax/<env>")``.

`BraxEnv` wraps one of brax 0.14's environments (ant, halfcheetah, hopper, humanoid,
inverted_pendulum, inverted_double_pendulum, pusher, reacher, swimmer, walker2d) so that it looks
like a gymnax 1.x environment to `learned_rl.collect`:

- ``reset(key, params) -> (obs, state)``;
- ``step(key, state, action, params) -> (obs, state, reward, terminated, truncated, info)``, with
  ``info["final_observation"]`` the true next observation *before* the automatic reset.

Episodes end by **termination** when brax's ``done`` flag is set (hopper, walker2d, ant, humanoid
and the pendulums fall over; halfcheetah, reacher, swimmer and pusher never terminate) and by
**truncation** after ``episode_length`` steps (1000 by default). A step that is both is reported as
terminated only. Learners bootstrap from ``V(final_observation)`` on truncation and not on
termination, so a time limit is never mistaken for a terminal state.

Other choices (documented because sources differ):

- Actions are clipped to brax's action range [-1, 1] inside `step` (PureJaxRL's ``ClipAction``);
  `action_space` reports that Box, and Gaussian agents compute the log-probability of the
  *unclipped* sample.
- Every reset (the first and each automatic one) draws fresh initial noise from the step key, as
  gymnax does; brax's own ``AutoResetWrapper`` instead replays each slot's first initial state.
  This costs one physics initialisation per step (measured in ``benchmarks/brax_throughput.py``).
- Keys: brax splits keys with the old-style API, so typed keys (``jax.random.key``) are converted
  to raw ``uint32[2]`` keys before they reach brax.
- ``observation_size`` in brax runs an un-jitted reset on every access; we compute the observation
  shape once with ``jax.eval_shape`` and cache it.
- The physics backend is chosen per environment (``BRAX_DEFAULT_BACKEND``): the one that stepped
  fastest on 2 CPU cores in ``benchmarks/brax_throughput.py`` (see the table there). Override with
  ``tasks.make("brax/hopper", backend="positional")`` or ``"brax/hopper?backend=positional"``.
  Backends change the physics (brax adjusts time steps and gains per backend), so returns are
  only comparable within one backend.
"""

from __future__ import annotations

import functools
import warnings
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from gymnax.environments import spaces

from ._task import Task

BRAX_ENVS: tuple[str, ...] = (
    "ant",
    "halfcheetah",
    "hopper",
    "humanoid",
    "inverted_pendulum",
    "inverted_double_pendulum",
    "pusher",
    "reacher",
    "swimmer",
    "walker2d",
)
BACKENDS: tuple[str, ...] = ("generalized", "positional", "spring", "mjx")

# Fastest backend per env on 2 CPU cores (benchmarks/brax_throughput.py env: our wrapper, 512 envs
# × 200 steps, random actions; env steps/s):
#   hopper             spring 24,495   positional 13,810
#   reacher            spring 53,690   positional 25,927
#   ant                mjx     7,152   spring      6,208
#   inverted_pendulum  spring 47,940   mjx 38,454   generalized 33,269   positional 16,306 (busy machine)
# Envs that were not measured use spring (fastest on every measured env except ant); swimmer only
# supports generalized.
BRAX_DEFAULT_BACKEND: dict[str, str] = {
    "ant": "mjx",
    "halfcheetah": "spring",
    "hopper": "spring",
    "humanoid": "spring",
    "inverted_pendulum": "spring",
    "inverted_double_pendulum": "spring",
    "pusher": "spring",
    "reacher": "spring",
    "swimmer": "generalized",
    "walker2d": "spring",
}


def _raw_key(key: jax.Array) -> jax.Array:
    """A raw ``uint32[2]`` key for brax (typed keys are unwrapped)."""
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return jax.random.key_data(key)
    return key


def _canon(s):
    """brax envs return Python floats for constant rewards/done flags; make them float32 arrays so
    the state has one structure (and dtype) after reset and after step."""
    return s.replace(reward=jnp.asarray(s.reward, jnp.float32), done=jnp.asarray(s.done, jnp.float32))


class BraxEnvState(eqx.Module):
    """The brax ``State`` of one environment plus the number of steps taken in this episode."""

    brax_state: Any
    time: jax.Array


class BraxEnv:
    """A brax environment with gymnax 1.x's reset/step protocol (see the module docstring).

    **Arguments:**

    - `env_name`: a brax environment name (`BRAX_ENVS`).
    - `backend`: ``"generalized"``, ``"positional"``, ``"spring"`` or ``"mjx"``; ``None`` for the
      per-env default `BRAX_DEFAULT_BACKEND`.
    - `episode_length`: steps after which an episode is truncated.
    - `**env_kwargs`: passed to the brax environment's constructor (e.g.
      ``terminate_when_unhealthy=False``).
    """

    def __init__(self, env_name: str, backend: str | None = None, episode_length: int = 1000, **env_kwargs: Any):
        import brax.envs

        if env_name not in BRAX_ENVS:
            raise ValueError(f"unknown brax environment {env_name!r}; known: {', '.join(BRAX_ENVS)}")
        backend = BRAX_DEFAULT_BACKEND[env_name] if backend is None else backend
        if backend not in BACKENDS:
            raise ValueError(f"unknown brax backend {backend!r}; known: {', '.join(BACKENDS)}")
        if env_name == "swimmer" and backend != "generalized":
            raise ValueError(f"brax swimmer only supports the generalized backend, got {backend!r}")
        if isinstance(episode_length, bool) or not isinstance(episode_length, int) or episode_length <= 0:
            raise ValueError(f"episode_length must be a positive integer, got {episode_length!r}")
        try:
            with warnings.catch_warnings():  # brax warns on every construction that it is unmaintained
                warnings.filterwarnings("ignore", message="Brax System", category=UserWarning)
                self.brax_env = brax.envs.get_environment(env_name, backend=backend, **env_kwargs)
        except TypeError as e:
            raise ValueError(f"brax/{env_name}: bad environment argument ({e})") from None
        self.env_name = env_name
        self.backend = backend
        self.episode_length = int(episode_length)
        self.action_size = int(self.brax_env.action_size)
        shape = jax.eval_shape(self.brax_env.reset, jax.random.PRNGKey(0)).obs.shape
        self.obs_shape: tuple[int, ...] = tuple(int(d) for d in shape)

    # gymnax-style metadata -------------------------------------------------------------------
    @property
    def name(self) -> str:
        return f"brax/{self.env_name}"

    @property
    def observation_size(self) -> int:
        """Cached (brax's own property runs an un-jitted reset on every access)."""
        return self.obs_shape[0]

    @property
    def default_params(self) -> None:
        return None

    def action_space(self, params=None) -> spaces.Box:
        return spaces.Box(-1.0, 1.0, (self.action_size,), jnp.float32)

    def observation_space(self, params=None) -> spaces.Box:
        return spaces.Box(-jnp.inf, jnp.inf, self.obs_shape, jnp.float32)

    @property
    def num_actions(self) -> int:
        return self.action_size

    # protocol ------------------------------------------------------------------------------------
    @functools.partial(jax.jit, static_argnums=0)
    def reset(self, key: jax.Array, params=None) -> tuple[jax.Array, BraxEnvState]:
        s = _canon(self.brax_env.reset(_raw_key(key)))
        return s.obs, BraxEnvState(s, jnp.zeros((), jnp.int32))

    @functools.partial(jax.jit, static_argnums=0)
    def step(self, key: jax.Array, state: BraxEnvState, action: jax.Array, params=None):
        action = jnp.clip(jnp.asarray(action, jnp.float32).reshape(self.action_size), -1.0, 1.0)
        s = _canon(self.brax_env.step(state.brax_state, action))
        time = state.time + 1
        terminated = s.done > 0.5
        truncated = jnp.logical_and(time >= self.episode_length, jnp.logical_not(terminated))
        done = jnp.logical_or(terminated, truncated)
        r = _canon(self.brax_env.reset(_raw_key(key)))
        # brax's state carries dicts of metrics whose keys are the same after reset and step
        s_next = jax.tree.map(lambda a, b: jnp.where(done, a, b), r, s)
        obs = jnp.where(done, r.obs, s.obs)
        info = {"final_observation": s.obs, "terminated": terminated, "truncated": truncated}
        new = BraxEnvState(s_next, jnp.where(done, 0, time))
        return obs, new, s.reward, terminated, truncated, info

    def __repr__(self) -> str:
        return f"BraxEnv({self.env_name!r}, backend={self.backend!r}, episode_length={self.episode_length})"


def _parse_value(v: str) -> Any:
    low = v.lower()
    if low in ("true", "false"):
        return low == "true"
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return v


def parse_name(name: str) -> tuple[str, dict[str, Any]]:
    """``"brax/hopper?backend=spring&episode_length=500"`` -> ``("hopper", {...})``."""
    if not name.startswith("brax/"):
        raise ValueError(f"not a brax task name: {name!r}")
    rest = name[len("brax/"):]
    env_name, _, query = rest.partition("?")
    kwargs: dict[str, Any] = {}
    for part in filter(None, query.split("&")):
        k, eq, v = part.partition("=")
        if not eq or not k:
            raise ValueError(f"bad option {part!r} in task name {name!r} (expected key=value)")
        kwargs[k] = _parse_value(v)
    return env_name, kwargs


def brax_task_names() -> list[str]:
    return [f"brax/{e}" for e in BRAX_ENVS]


def make_brax_task(name: str, **kwargs: Any):
    """Build the `learned_rl.tasks.Task` for ``brax/<env>[?key=value&...]``; keyword arguments override the
    query string (``backend``, ``episode_length`` and brax constructor arguments)."""
    import difflib

    env_name, opts = parse_name(name)
    if env_name not in BRAX_ENVS:
        close = difflib.get_close_matches(f"brax/{env_name}", brax_task_names(), n=3)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ValueError(f"Unknown task {name!r}.{hint} Run `learned-rl tasks` to list all tasks.")
    opts.update(kwargs)
    env = BraxEnv(env_name, **opts)
    return Task(
        name=name,
        family="brax",
        env=env,
        default_params=None,
        sample_params=lambda key: None,
        num_actions=env.action_size,
        obs_shape=env.obs_shape,
        num_states=None,
        continuous_actions=True,
        optimal_return=None,
    )
