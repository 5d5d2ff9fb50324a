"""Default training configs per task family, for every rule: `A2C_DEFAULTS` (the actor-critic
recipe, which LPG also trains its agents with) and `PPO_DEFAULTS` (PPO's, which DPO and LPO share).

They live in the core layer so that hand-written baselines (`learned_rl.baselines`) and learned
rules (`learned_rl.rules`) reach them alike; the tables below are documented with the rules that
own them (`learned_rl.baselines.a2c`, `learned_rl.baselines.ppo`). `RECIPES` holds named
configurations of published codebases (PureJaxRL's Brax and MinAtar PPO), whole `TrainConfig`s
with the update's hyperparameters, for runs at those codebases' scale.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ._agent import AgentConfig
from ._learner import TrainConfig

A2C_DEFAULTS: dict[str, TrainConfig] = {
    "tabular": TrainConfig(
        total_steps=1_000_000, num_envs=64, rollout_len=20, optimizer="sgd",
        learning_rate=40.0, max_grad_norm=0.5, agent=AgentConfig(torso="tabular"),
    ),
    "random_gridworld": TrainConfig(
        total_steps=2_000_000, num_envs=64, rollout_len=20, optimizer="adam",
        learning_rate=5e-4, max_grad_norm=1.0, agent=AgentConfig(hidden=(64, 64), activation="relu"),
    ),
    "classic": TrainConfig(
        total_steps=500_000, num_envs=16, rollout_len=8, optimizer="rmsprop",
        learning_rate=7e-4, max_grad_norm=0.5, agent=AgentConfig(hidden=(64, 64), activation="tanh"),
    ),
    "minatar": TrainConfig(
        total_steps=5_000_000, num_envs=64, rollout_len=20, optimizer="adam",
        learning_rate=5e-4, max_grad_norm=1.0, agent=AgentConfig(torso="cnn"),
    ),
}
A2C_DEFAULTS["chain"] = A2C_DEFAULTS["tabular"].replace(total_steps=200_000)
# the line toys: the classic-control recipe at a toy's budget
A2C_DEFAULTS["line"] = A2C_DEFAULTS["classic"].replace(total_steps=300_000)
# Continuous actions (Gaussian policy). Not tuned: the classic-control recipe plus observation and
# reward normalisation; Brax uses more envs per update.
A2C_DEFAULTS["continuous"] = A2C_DEFAULTS["classic"].replace(
    total_steps=300_000, normalize_obs=True, normalize_reward=True
)
A2C_DEFAULTS["brax"] = TrainConfig(
    total_steps=3_000_000, num_envs=64, rollout_len=8, optimizer="rmsprop",
    learning_rate=7e-4, max_grad_norm=0.5, agent=AgentConfig(hidden=(64, 64), activation="tanh"),
    normalize_obs=True, normalize_reward=True,
)
A2C_DEFAULTS["bsuite"] = A2C_DEFAULTS["classic"]
A2C_DEFAULTS["misc"] = A2C_DEFAULTS["classic"]


def default_family(task) -> str:
    """The defaults table row of a task: its family, except that gymnax's continuous-action
    classic-control tasks (Pendulum-v1, MountainCarContinuous-v0) use the ``continuous`` row."""
    if task.family == "classic" and task.continuous_actions:
        return "continuous"
    return task.family


def family_default(defaults: dict[str, TrainConfig], task, rule_name: str, agent: dict[str, Any] | None = None) -> TrainConfig:
    """Look up a task family's default config; vector-observation chains use the MLP config.
    `agent`: `AgentConfig` fields replaced in it (``{"torso": "mlp"}``)."""
    fam = default_family(task)
    if fam == "chain" and task.obs_kind != "index":
        cfg = defaults["random_gridworld"].replace(total_steps=defaults["chain"].total_steps)
    elif fam not in defaults:
        raise ValueError(
            f"{rule_name} has no default config for task family {fam!r} (task {task.name!r})"
        )
    else:
        cfg = defaults[fam]
    return cfg.replace(agent=dataclasses.replace(cfg.agent, **agent)) if agent else cfg


PPO_DEFAULTS: dict[str, TrainConfig] = {
    "classic": TrainConfig(
        total_steps=500_000, num_envs=4, rollout_len=128, optimizer="adam",
        learning_rate=2.5e-4, max_grad_norm=0.5, anneal_lr=True,
        agent=AgentConfig(hidden=(64, 64), activation="tanh"),
    ),
    "tabular": A2C_DEFAULTS["tabular"].replace(learning_rate=20.0),
    "chain": A2C_DEFAULTS["chain"].replace(learning_rate=20.0),
    "random_gridworld": A2C_DEFAULTS["random_gridworld"],
    "minatar": TrainConfig(
        total_steps=5_000_000, num_envs=64, rollout_len=128, optimizer="adam",
        learning_rate=5e-4, max_grad_norm=0.5, anneal_lr=True, agent=AgentConfig(torso="cnn"),
    ),
}
PPO_DEFAULTS["continuous"] = TrainConfig(
    total_steps=300_000, num_envs=16, rollout_len=32, optimizer="adam",
    learning_rate=1e-3, max_grad_norm=0.5, anneal_lr=True,
    agent=AgentConfig(hidden=(64, 64), activation="tanh"),
    normalize_obs=True, normalize_reward=True,
)
PPO_DEFAULTS["brax"] = TrainConfig(
    total_steps=3_000_000, num_envs=64, rollout_len=32, optimizer="adam",
    learning_rate=3e-4, max_grad_norm=0.5, anneal_lr=True,
    agent=AgentConfig(hidden=(64, 64), activation="tanh"),
    normalize_obs=True, normalize_reward=True,
)
PPO_DEFAULTS["bsuite"] = PPO_DEFAULTS["classic"]
PPO_DEFAULTS["misc"] = PPO_DEFAULTS["classic"]
PPO_DEFAULTS["line"] = PPO_DEFAULTS["classic"].replace(total_steps=300_000)


# ------------------------------------------------------------------ recipes

@dataclasses.dataclass(frozen=True)
class Recipe:
    """A named training configuration of a published codebase, offered beside the CPU-sized family
    defaults above (``--recipe NAME`` of `train`, `compare` and `sweep`).

    - `config`: the whole `TrainConfig` (its `total_steps` is the codebase's budget; ``--steps``
      replaces it).
    - `rule`: the update's hyperparameters, set on every rule that has each field (the
      mirror-learning rules: PPO, DPO, LPO); a rule that lacks one cannot use the recipe.
    - `families`: the task families (`default_family`) it was written for.
    - `source`: where the values come from.
    """

    name: str
    families: tuple[str, ...]
    config: TrainConfig
    rule: dict[str, Any]
    source: str

    def check_task(self, task) -> None:
        fam = default_family(task)
        if fam not in self.families:
            raise ValueError(f"recipe {self.name!r} is for {'/'.join(self.families)} tasks; {task.name!r} is a {fam} task")


_PPO_UPDATE = dict(gamma=0.99, gae_lambda=0.95, vf_coef=0.5, clip_value=0.2, num_epochs=4)
RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        Recipe(
            name="purejaxrl-brax",
            families=("brax",),
            config=TrainConfig(
                total_steps=50_000_000, num_envs=2048, rollout_len=10, optimizer="adam", learning_rate=3e-4,
                max_grad_norm=0.5, anneal_lr=False, normalize_obs=True, normalize_reward=True,
                agent=AgentConfig(hidden=(256, 256), activation="tanh"),
            ),
            rule=dict(_PPO_UPDATE, num_minibatches=32, ent_coef=0.0),
            source="PureJaxRL's continuous-action PPO and its DPO re-implementation (ppo_continuous_action.py, "
                   "dpo_continuous_action.py): 2048 envs x 10 steps, 32 minibatches x 4 epochs, Adam 3e-4, "
                   "entropy 0, 2x256 tanh, normalised observations and rewards, 50M steps",
        ),
        Recipe(
            name="purejaxrl-minatar",
            families=("minatar",),
            config=TrainConfig(
                total_steps=10_000_000, num_envs=64, rollout_len=128, optimizer="adam", learning_rate=5e-3,
                max_grad_norm=0.5, anneal_lr=True, agent=AgentConfig(torso="mlp", hidden=(64, 64), activation="relu"),
            ),
            rule=dict(_PPO_UPDATE, num_minibatches=8, ent_coef=0.01),
            source="PureJaxRL's PPO for gymnax MinAtar (examples/brax_minatar.ipynb): 64 envs x 128 steps, "
                   "8 minibatches x 4 epochs, Adam 5e-3 annealed, entropy 0.01, 2x64 ReLU MLP on the flattened "
                   "observation, 10M steps",
        ),
    )
}


def get_recipe(name: str) -> Recipe:
    """The recipe called `name`, or a one-line `ValueError` naming the known ones."""
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r} (known: {', '.join(RECIPES)})")
    return RECIPES[name]
