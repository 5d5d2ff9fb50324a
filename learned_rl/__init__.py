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
- `run_seeds`, `seed_keys`, `RunResult`: S vmapped seeds of a rule on a task, seeded as the CLI
  seeds them; `compare`, `transfer`: what the CLI's ``compare`` and ``transfer`` run.
- `iqm`, `stderr`, `stratified_bootstrap_ci`, `normalized_score`: the statistics of the reports.
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
from ._returns import gae as gae
from ._rollout import EpisodeStats as EpisodeStats, Trajectory as Trajectory, collect as collect, reset_envs as reset_envs
from .rules import AbstractUpdateRule as AbstractUpdateRule

__version__ = "0.1.0"
from ._checkpoint import CheckpointError as CheckpointError
from ._rules_io import load_rule as load_rule, save_rule as save_rule
from .meta import MetaTrainConfig as MetaTrainConfig, TruncatedMetaGradient as TruncatedMetaGradient, meta_train as meta_train
from .rules import LPG as LPG, LPGNetwork as LPGNetwork
from . import pretrained as pretrained
from ._experiment import RunResult as RunResult, compare as compare, run_seeds as run_seeds, seed_keys as seed_keys
from ._registry import make_rule as make_rule
from ._stats import iqm as iqm, normalized_score as normalized_score, stderr as stderr, stratified_bootstrap_ci as stratified_bootstrap_ci
from ._transfer import transfer as transfer
