"""Default training configs per task family, for every rule: `A2C_DEFAULTS` (the actor-critic
recipe, which LPG also trains its agents with) and `PPO_DEFAULTS` (PPO's, which DPO and LPO share).

They live in the core layer so that hand-written baselines (`learned_rl.baselines`) and learned
rules (`learned_rl.rules`) reach them alike; the tables below are documented with the rules that
own them (`learned_rl.baselines.a2c`, `learned_rl.baselines.ppo`).
"""

from __future__ import annotations

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


def family_default(defaults: dict[str, TrainConfig], task, rule_name: str) -> TrainConfig:
    """Look up a task family's default config; vector-observation chains use the MLP config."""
    fam = default_family(task)
    if fam == "chain" and task.obs_kind != "index":
        return defaults["random_gridworld"].replace(total_steps=defaults["chain"].total_steps)
    if fam not in defaults:
        raise ValueError(
            f"{rule_name} has no default config for task family {fam!r} (task {task.name!r})"
        )
    return defaults[fam]


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
