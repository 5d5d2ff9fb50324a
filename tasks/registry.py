"""Task registry: ``make(name)`` for our LPG tasks, every gymnax id, and named task sets.

A :class:`Task` bundles a gymnax 1.x environment with its *task distribution*
(``sample_params``: one level per lifetime; a batch of levels is one
``jax.vmap`` over keys) and the metadata an agent needs (action count,
observation shape, tabular state count, optimal return if known).

Names
    - ``gridworld/{dense,sparse,long_horizon,longer_horizon,long_dense}``
      (family ``tabular``; keyword ``num_actions=5|9``),
    - ``random_gridworld/{dense,long_horizon,small,small_sparse,very_dense}``
      (family ``random_gridworld``; keyword ``num_actions=5|9``),
    - ``chain/{short,short_noisy,long,long_noisy,distractor}`` (family ``chain``;
      keywords override :class:`~tasks.chain.DelayedChain` arguments),
    - ``line/{balance,escape,swing,cross,escape0,swing0,balance0}`` (family ``line``: a reward on
      every step, as in classic control, except ``cross``, whose rare rewards are Freeway's kind;
      keywords override :class:`~tasks.line.LineConfig` fields),
    - every id in ``gymnax.registered_envs`` (families ``classic``,
      ``minatar``, ``bsuite``, ``misc``; keywords go to ``gymnax.make``).
      Their ``sample_params`` returns ``default_params``. For continuous
      actions (``spaces.Box``) ``num_actions`` is the action dimension.
      A gymnax env with a ``Discrete`` observation space (``FrozenLake-misc``)
      is reported as tabular (``num_states`` = the number of observations).

Extension point
    Names with a registered *prefix* (``brax/<env>``) are handled by a
    :class:`TaskProvider` (see :func:`register_provider`). The ``brax/``
    provider (:mod:`learned_rl.tasks.brax_tasks`, family ``brax``) builds every brax
    0.14 environment; options go in the name (``brax/hopper?backend=spring``)
    or as keywords (``backend``, ``episode_length``, brax constructor
    arguments). brax itself is imported only when a brax task is built.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable
from typing import Any

import gymnax
from gymnax.environments import spaces
from gymnax.environments.environment import Environment

from ._task import FAMILIES as FAMILIES
from ._task import Task as Task
from .brax_tasks import BRAX_ENVS, brax_task_names, make_brax_task  # does not import brax itself
from .chain import CHAIN_CONFIGS, make_chain
from .gridworld import GRIDWORLD_CONFIGS, make_gridworld
from .line import LINE_CONFIGS, make_line
from .random_gridworld import RANDOM_GRIDWORLD_CONFIGS, make_random_gridworld

__all__ = [
    "TASK_SETS",
    "Task",
    "TaskProvider",
    "list_tasks",
    "make",
    "register_provider",
    "resolve",
]

# --------------------------------------------------------------- our tasks
def _our_task(prefix: str, family: str, make_env: Callable[..., Environment], variant: str) -> Callable[..., Task]:
    """A factory for one of our environments. The env class provides `num_states` (``None`` for
    non-tabular observations), `obs_shape` (``()`` for index observations), `sample_params` and,
    where the optimum is known, `optimal_return`."""

    def factory(**kwargs: Any) -> Task:
        env = make_env(variant, **kwargs)
        num_states = getattr(env, "num_states", None)
        return Task(
            name=f"{prefix}/{variant}",
            family=family,
            env=env,
            default_params=env.default_params,
            sample_params=env.sample_params,
            num_actions=env.num_actions,
            obs_shape=() if num_states is not None else tuple(env.obs_shape),
            num_states=num_states,
            continuous_actions=False,
            optimal_return=getattr(env, "optimal_return", None),
        )

    return factory


_OUR_TASKS: dict[str, Callable[..., Task]] = {
    **{f"gridworld/{v}": _our_task("gridworld", "tabular", make_gridworld, v) for v in GRIDWORLD_CONFIGS},
    **{
        f"random_gridworld/{v}": _our_task("random_gridworld", "random_gridworld", make_random_gridworld, v)
        for v in RANDOM_GRIDWORLD_CONFIGS
    },
    **{f"chain/{v}": _our_task("chain", "chain", make_chain, v) for v in CHAIN_CONFIGS},
    **{f"line/{v}": _our_task("line", "line", make_line, v) for v in LINE_CONFIGS},
}

# ------------------------------------------------------------ gymnax tasks
_CLASSIC = {
    "CartPole-v1",
    "Pendulum-v1",
    "Acrobot-v1",
    "MountainCar-v0",
    "MountainCarContinuous-v0",
}


def _gymnax_family(env_id: str) -> str:
    if env_id in _CLASSIC:
        return "classic"
    for suffix, family in (("-MinAtar", "minatar"), ("-bsuite", "bsuite"), ("-misc", "misc")):
        if env_id.endswith(suffix):
            return family
    return "misc"


def _gymnax_task(env_id: str, **kwargs: Any) -> Task:
    env, default_params = gymnax.make(env_id, **kwargs)
    action_space = env.action_space(default_params)
    obs_space = env.observation_space(default_params)
    continuous = isinstance(action_space, spaces.Box)
    if continuous:
        shape = tuple(action_space.shape)
        num_actions = int(shape[0]) if shape else 1
    else:
        num_actions = int(action_space.n)
    if isinstance(obs_space, spaces.Discrete):
        obs_shape: tuple[int, ...] = ()
        num_states: int | None = int(obs_space.n)
    else:
        obs_shape = tuple(int(d) for d in obs_space.shape)
        num_states = None
    return Task(
        name=env_id,
        family=_gymnax_family(env_id),
        env=env,
        default_params=default_params,
        sample_params=lambda key: default_params,
        num_actions=num_actions,
        obs_shape=obs_shape,
        num_states=num_states,
        continuous_actions=continuous,
        optimal_return=None,
    )


# ------------------------------------------------------- prefix providers
@dataclasses.dataclass(frozen=True)
class TaskProvider:
    """Handles every task name that starts with ``prefix`` (e.g. ``"brax/"``).

    ``make(name, **kwargs)`` builds the task (or raises ``ValueError``) and
    ``names()`` lists the names to show in :func:`list_tasks`.
    """

    prefix: str
    make: Callable[..., Task]
    names: Callable[[], list[str]]


_PROVIDERS: dict[str, TaskProvider] = {}


def register_provider(provider: TaskProvider, *, overwrite: bool = False) -> None:
    """Register (or with ``overwrite=True`` replace) the provider of a name prefix."""
    if provider.prefix in _PROVIDERS and not overwrite:
        raise ValueError(f"a provider for {provider.prefix!r} is already registered")
    _PROVIDERS[provider.prefix] = provider


register_provider(TaskProvider("brax/", make_brax_task, brax_task_names))


def _provider_for(name: str) -> TaskProvider | None:
    for prefix, provider in _PROVIDERS.items():
        if name.startswith(prefix):
            return provider
    return None


# ---------------------------------------------------------------- public API
def list_tasks() -> list[str]:
    """All task names: our 15 LPG tasks and the line toys, gymnax ids, then provider names."""
    names = list(_OUR_TASKS) + list(gymnax.registered_envs)
    for provider in _PROVIDERS.values():
        names += provider.names()
    return names


def _unknown(name: str, *, with_sets: bool = False) -> ValueError:
    candidates = list_tasks() + (list(TASK_SETS) if with_sets else [])
    close = difflib.get_close_matches(name, candidates, n=3)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    return ValueError(
        f"Unknown task {name!r}.{hint} Run `learned-rl tasks` to list all tasks."
    )


def make(name: str, **kwargs: Any) -> Task:
    """Build the task ``name``; keyword arguments go to its environment factory."""
    if name in _OUR_TASKS:
        return _OUR_TASKS[name](**kwargs)
    if name in gymnax.registered_envs:
        return _gymnax_task(name, **kwargs)
    provider = _provider_for(name)
    if provider is not None:
        return provider.make(name, **kwargs)
    raise _unknown(name)


TASK_SETS: dict[str, list[str]] = {
    "lpg-tabular": [f"gridworld/{v}" for v in GRIDWORLD_CONFIGS],
    "lpg-random": [f"random_gridworld/{v}" for v in RANDOM_GRIDWORLD_CONFIGS],
    "lpg-chain": [f"chain/{v}" for v in CHAIN_CONFIGS],
    "minatar": [
        "Asterix-MinAtar",
        "Breakout-MinAtar",
        "Freeway-MinAtar",
        "SpaceInvaders-MinAtar",
        # gymnax 1.0.1 ships a working Seaquest (checked: reset/step under jit).
        "Seaquest-MinAtar",
    ],
}
TASK_SETS["brax"] = [f"brax/{e}" for e in BRAX_ENVS]
TASK_SETS["lpg-all"] = TASK_SETS["lpg-tabular"] + TASK_SETS["lpg-random"] + TASK_SETS["lpg-chain"]
TASK_SETS["line"] = [f"line/{v}" for v in LINE_CONFIGS]


def _check_name(name: str) -> None:
    """Raise the same ``ValueError`` as :func:`make` would for an unknown name."""
    if name in _OUR_TASKS or name in gymnax.registered_envs:
        return
    provider = _provider_for(name)
    if provider is not None:
        if name not in provider.names():
            provider.make(name)  # raises the provider's own ValueError
        return
    raise _unknown(name, with_sets=True)


def resolve(name_or_set: str) -> list[str]:
    """Task names of a set name, a task name, or a comma-separated list of either.

    Duplicates are dropped (first occurrence kept). Unknown names raise
    ``ValueError`` listing close matches.
    """
    out: list[str] = []
    parts = [p.strip() for p in name_or_set.split(",") if p.strip()]
    if not parts:
        raise ValueError("empty task name")
    for part in parts:
        if part in TASK_SETS:
            names = TASK_SETS[part]
        else:
            _check_name(part)
            names = [part]
        out += [n for n in names if n not in out]
    return out
