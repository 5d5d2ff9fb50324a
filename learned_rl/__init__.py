"""learned-rl: discover reinforcement-learning algorithms in JAX.

Public API (implementation lives in private modules):

- `Agent`, `AgentConfig`, `make_agent`: the one agent used by every rule.
- `Trajectory`, `collect`, `reset_envs`: rollouts.
- `AbstractUpdateRule`: the update-rule interface (A2C and PPO live in `baselines`).
- `TrainConfig`, `train`, `init`, `run`: the one training loop.
- `learning_curve`, `final_return`: summaries of training metrics.
- `LPG`, `LPGNetwork`: the learned policy-gradient rule; `meta_train`, `TruncatedMetaGradient`,
  `MetaTrainConfig`: meta-training (more in `learned_rl.meta`).
- `load_rule`, `save_rule`, `pretrained.load(name)`: learned-rule files; `make_rule(name)`: a
  rule by the name the CLI uses (``a2c``, ``ppo``, ``dpo``, ``lpg:NAME_OR_PATH``, ``lpo:...``).
- `run_meta_train`: what ``learned-rl meta-train`` runs (presets, checkpoints, ``--resume``).
- `run_sweep`, `sweep_points`, `SweepResult`, `write_sweep`: a hyperparameter grid × seeds as one
  compiled program (what ``learned-rl sweep`` runs).
- `run_seeds`, `seed_keys`, `RunResult`: S vmapped seeds of a rule on a task, seeded as the CLI
  seeds them; `compare`, `transfer`, `select`: what the CLI's ``compare``, ``transfer`` and ``select`` run.
- `evaluate`: evaluation episodes of a trained agent (sampled or greedy), apart from training;
  `load_agents(run_dir)`: the agents `train` and `compare` save (`agents.eqx`), `evaluate_run`:
  what ``learned-rl evaluate RUN_DIR`` runs.
- `iqm`, `stderr`, `stratified_bootstrap_ci`, `normalized_score`: the statistics of the reports.
- `RECIPES`, `Recipe`, `apply_recipe`: published training configurations (``--recipe NAME``).
"""

from ._agent import Agent as Agent, AgentConfig as AgentConfig, AgentOutput as AgentOutput, make_agent as make_agent, UniformPolicy as UniformPolicy
from ._learner import (
    LearnerState as LearnerState,
    Progress as Progress,
    TrainConfig as TrainConfig,
    final_return as final_return,
    init as init,
    learning_curve as learning_curve,
    make_optimizer as make_optimizer,
    run as run,
    train as train,
)
from ._defaults import RECIPES as RECIPES, Recipe as Recipe
from ._returns import gae as gae
from ._rollout import EpisodeStats as EpisodeStats, Trajectory as Trajectory, collect as collect, reset_envs as reset_envs
from .rules import AbstractUpdateRule as AbstractUpdateRule

__version__ = "0.1.0"
from ._checkpoint import CheckpointError as CheckpointError
from ._rules_io import load_rule as load_rule, save_rule as save_rule
from .meta import MetaTrainConfig as MetaTrainConfig, TruncatedMetaGradient as TruncatedMetaGradient, meta_train as meta_train
from .rules import LPG as LPG, LPGNetwork as LPGNetwork
from . import pretrained as pretrained
from ._stats import iqm as iqm, normalized_score as normalized_score, stderr as stderr, stratified_bootstrap_ci as stratified_bootstrap_ci

# The experiment layer imports the tasks, and importing gymnax starts the XLA backend, which
# `learned-rl meta-train --distributed` must initialise first (jax.distributed.initialize): its
# public names are imported on first use.
_EXPERIMENT = {
    "RunResult": "_experiment", "compare": "_experiment", "run_seeds": "_experiment", "seed_keys": "_experiment",
    "run_sweep": "_experiment", "apply_recipe": "_experiment", "sweep_points": "_experiment", "SweepResult": "_experiment", "write_sweep": "_experiment",
    "make_rule": "_registry", "transfer": "_transfer", "select": "_transfer", "run_meta_train": "meta._run",
    "evaluate": "_evaluate", "evaluate_run": "_evaluate", "load_agents": "_evaluate", "save_agents": "_evaluate",
    "TensorBoardTracker": "_tracking", "read_scalars": "_tracking",
}


def __getattr__(name: str):
    if name not in _EXPERIMENT:
        raise AttributeError(f"module 'learned_rl' has no attribute {name!r}")
    from . import _evaluate, _experiment, _registry, _tracking, _transfer
    from .meta import _run

    mods = {"_experiment": _experiment, "_registry": _registry, "_transfer": _transfer, "_evaluate": _evaluate, "_tracking": _tracking, "meta._run": _run}
    value = getattr(mods[_EXPERIMENT[name]], name)
    globals()[name] = value
    return value


def __dir__():
    return sorted([*globals(), *_EXPERIMENT])
