"""LPG training environments (gymnax 1.x) and the task registry.

``tasks.make(name)`` returns a :class:`Task`; ``tasks.resolve("lpg-all")``
expands a named task set; ``tasks.list_tasks()`` lists every name.
See :mod:`learned_rl.tasks.gridworld`, :mod:`learned_rl.tasks.random_gridworld`, :mod:`learned_rl.tasks.chain`,
:mod:`learned_rl.tasks.line`
for the environment semantics and :mod:`learned_rl.tasks.registry` for the registry.
"""

from .chain import ChainParams as ChainParams
from .chain import ChainState as ChainState
from .chain import DelayedChain as DelayedChain
from .chain import make_chain as make_chain
from .gridworld import GridWorld as GridWorld
from .gridworld import GridWorldParams as GridWorldParams
from .gridworld import GridWorldState as GridWorldState
from .gridworld import make_gridworld as make_gridworld
from .line import LineParams as LineParams
from .line import LineState as LineState
from .line import LineWorld as LineWorld
from .line import make_line as make_line
from .random_gridworld import RandomGridWorld as RandomGridWorld
from .random_gridworld import RandomGridWorldParams as RandomGridWorldParams
from .random_gridworld import RandomGridWorldState as RandomGridWorldState
from .random_gridworld import make_random_gridworld as make_random_gridworld
from .registry import TASK_SETS as TASK_SETS
from .registry import Task as Task
from .registry import TaskProvider as TaskProvider
from .registry import list_tasks as list_tasks
from .registry import make as make
from .registry import register_provider as register_provider
from .registry import resolve as resolve

__all__ = [
    "TASK_SETS",
    "ChainParams",
    "ChainState",
    "DelayedChain",
    "GridWorld",
    "GridWorldParams",
    "GridWorldState",
    "LineParams",
    "LineState",
    "LineWorld",
    "RandomGridWorld",
    "RandomGridWorldParams",
    "RandomGridWorldState",
    "Task",
    "TaskProvider",
    "list_tasks",
    "make",
    "make_chain",
    "make_gridworld",
    "make_line",
    "make_random_gridworld",
    "register_provider",
    "resolve",
]
