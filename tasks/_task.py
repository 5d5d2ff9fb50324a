"""`Task`: an environment with its task distribution and metadata (the bottom of the task layer:
the registry and every environment provider build these)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from gymnax.environments.environment import Environment

FAMILIES = ("tabular", "random_gridworld", "chain", "line", "classic", "minatar", "bsuite", "misc")


@dataclasses.dataclass(frozen=True, eq=False)
class Task:
    """An environment plus its task distribution and metadata.

    Compared and hashed by identity (``eq=False``), so a ``Task`` can be a
    static argument of ``jax.jit``.
    """

    name: str
    family: str
    env: Environment
    default_params: Any
    sample_params: Callable[[Any], Any]
    num_actions: int
    obs_shape: tuple[int, ...]
    num_states: int | None
    continuous_actions: bool
    optimal_return: Callable[[Any], float] | None

    @property
    def obs_kind(self) -> str:
        """``"index"`` (tabular int32 index), ``"image"`` (3-D) or ``"vector"``."""
        if self.num_states is not None:
            return "index"
        return "image" if len(self.obs_shape) == 3 else "vector"
