"""Named LPG meta-training presets, as typed `LPGPreset` objects: the meta-network, the lifetimes,
the bandit, the meta-critic and the meta-optimiser in one frozen dataclass, with `build`.

- ``cpu`` (default): sized for 2 CPU cores. A 64-unit LSTM, m = 8, K = 5, 4 lifetimes per task of
  16 envs × 20 steps, lifetimes of 3,125 agent updates (1M env steps: the budget the tabular grid
  worlds are evaluated at, in the envs × steps the saved rule then trains with), agent learning
  rates 5–40, meta-lr 1e-3.
- ``paper``: the paper's sizes (LSTM 256, m = 30, K = 5, 64 envs × 20 steps, ~2,400-update
  lifetimes, 960 lifetimes in all, meta-lr 1e-4, β = (0.01, 0.001, 0.001, 0.001)) for accelerators.
- ``groove-bench``: the sizes of the public JAX LPG reference used by `benchmarks/lpg_meta.py`
  (GRU 256, m = 8, 8 lifetimes × 64 envs × 20 steps, K = 5).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

from ..rules._lpg import LPG
from ._estimators import TruncatedMetaGradient
from ._meta_train import MetaTrainConfig
from ._problems import LPGLifetimes


def _is_real(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


class Preset:
    """What both kinds of preset share: a frozen dataclass of named fields, replaced by name
    (`--set`), written to JSON (fields in `LATER` only when they differ from their default, so an
    older run's config.json still matches on --resume) and read back."""

    LATER: ClassVar[tuple[str, ...]] = ()
    KIND: ClassVar[str] = ""

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    def replace(self, **overrides):
        """This preset with some fields replaced (`None` values are ignored); unknown fields raise."""
        unknown = set(overrides) - set(self.field_names())
        if unknown:
            raise ValueError(f"unknown {self.KIND}preset fields {sorted(unknown)} (fields: {', '.join(self.field_names())})")
        return dataclasses.replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def to_json(self) -> dict[str, Any]:
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name in self.LATER and v == f.default:
                continue
            out[f.name] = list(v) if isinstance(v, tuple) else (dict(v) if isinstance(v, dict) else v)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]):
        return cls().replace(**data)


@dataclasses.dataclass(frozen=True)
class LPGPreset(Preset):
    """Everything an LPG meta-training run is built from, typed and validated on construction
    (`ValueError` naming the field). The CLI sets any field with ``--set FIELD=VALUE``; the run's
    `config.json` holds `to_json()` and `--resume` compares it with the resumed run's.

    - the rule: `hidden_size`, `prediction_dim`, `cell` (lstm | gru), `gamma`, `variant` (y: LPG,
      v: LPG-V);
    - the lifetimes (`LPGLifetimes`): `inner_steps` K, `lifetimes_per_task`, `num_envs`,
      `rollout_len`, `lifetime_updates`, the bandit's arms `learning_rates` × `alpha_ys` and its
      `bandit_temperature`, `bandit_bonus`, `bandit_window`, the agents' `agent_hidden` (MLP
      tasks) and `agent_max_grad_norm`, the meta-critic's `critic_lr` / `critic_lr_tabular` and
      `gae_lambda`, the meta-loss's `betas` and `regularizer` (logits | paper), `task_weights`
      (task name -> weight);
    - the meta-optimiser (`MetaTrainConfig`): `meta_lr`, `max_grad_norm`, `steps`.
    """

    hidden_size: int = 64
    prediction_dim: int = 8
    cell: str = "lstm"
    inner_steps: int = 5
    lifetimes_per_task: int = 4
    num_envs: int = 16
    rollout_len: int = 20
    lifetime_updates: int = 3125
    learning_rates: tuple[float, ...] = (5.0, 10.0, 20.0, 40.0)
    alpha_ys: tuple[float, ...] = (0.1, 0.5, 1.0)
    betas: tuple[float, ...] = (0.01, 0.001, 0.001, 0.001)
    gamma: float = 0.99
    meta_lr: float = 1e-3
    max_grad_norm: float = 1.0
    steps: int = 6000
    task_weights: dict = dataclasses.field(default_factory=dict)
    variant: str = "y"
    regularizer: str = "logits"
    # settable since the typed presets; a run's config.json names them only when they differ from
    # these defaults, so the config of a run written before them still matches on --resume
    gae_lambda: float = 0.95
    critic_lr: float = 1e-3
    critic_lr_tabular: float = 0.05
    agent_hidden: tuple[int, ...] = (64, 64)
    agent_max_grad_norm: float = 0.5
    bandit_temperature: float = 0.1
    bandit_bonus: float = 0.2
    bandit_window: int = 10

    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {"variant": ("y", "v"), "regularizer": ("paper", "logits"), "cell": ("lstm", "gru")}
    LATER: ClassVar[tuple[str, ...]] = ("gae_lambda", "critic_lr", "critic_lr_tabular", "agent_hidden", "agent_max_grad_norm", "bandit_temperature", "bandit_bonus", "bandit_window")

    def __post_init__(self):
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, list):  # from JSON
                object.__setattr__(self, f.name, value := tuple(value))
            _check_field(f.name, value, f.default if f.default is not dataclasses.MISSING else f.default_factory())
        if self.inner_steps > self.lifetime_updates:
            raise ValueError(f"K (inner_steps={self.inner_steps}) is longer than a lifetime (lifetime_updates={self.lifetime_updates})")

    def build(self, tasks: list, *, key):
        """`(rule, estimator, meta_config)` for these tasks."""
        rule = LPG.from_config(
            {
                "hidden_size": self.hidden_size, "prediction_dim": self.prediction_dim, "cell": self.cell,
                "gamma": self.gamma, "variant": self.variant,
                "regime": {"num_envs": self.num_envs, "rollout_len": self.rollout_len, "lifetime_updates": self.lifetime_updates},
            },
            key=key,
        )
        names = [t.name for t in tasks]
        unknown = sorted(set(self.task_weights) - set(names))
        if unknown:
            raise ValueError(f"preset field 'task_weights' names tasks that are not meta-trained on: {unknown} (tasks: {', '.join(names)})")
        problem = LPGLifetimes(
            **{k: getattr(self, k) for k in ESTIMATOR_FIELDS},
            gae_lambda=self.gae_lambda, critic_lr=self.critic_lr, critic_lr_tabular=self.critic_lr_tabular,
            agent_hidden=tuple(int(h) for h in self.agent_hidden), agent_max_grad_norm=self.agent_max_grad_norm,
            bandit_temperature=self.bandit_temperature, bandit_bonus=self.bandit_bonus, bandit_window=self.bandit_window,
            task_weights=tuple(float(self.task_weights.get(n, 1.0)) for n in names) if self.task_weights else (),
        )
        est = TruncatedMetaGradient(problem).bind(tasks)
        cfg = MetaTrainConfig(steps=int(self.steps), meta_lr=float(self.meta_lr), max_grad_norm=float(self.max_grad_norm))
        return rule, est, cfg


def _check_field(name: str, value, default) -> None:
    """A field must have its default's kind: sizes are positive integers, rates positive finite
    numbers (γ and λ in (0, 1]; the bandit's bonus may be 0), choices one of theirs, tuples
    non-empty lists of non-negative numbers (`betas` four of them, `agent_hidden` positive
    integers), `task_weights` task names mapped to positive numbers."""
    bad = f"preset field {name!r}"
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{bad} must be true or false, got {value!r}")
    elif isinstance(default, int):
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"{bad} must be a positive integer, got {value!r}")
    elif isinstance(default, float):
        at_most_1 = name in ("gamma", "gae_lambda")
        low_ok = name == "bandit_bonus" and _is_real(value) and value == 0
        if not _is_real(value) or (value <= 0 and not low_ok) or (at_most_1 and value > 1):
            raise ValueError(f"{bad} must be a {'non-negative' if name == 'bandit_bonus' else 'positive'} number{' at most 1' if at_most_1 else ''}, got {value!r}")
    elif name in LPGPreset.CHOICES:
        if value not in LPGPreset.CHOICES[name]:
            raise ValueError(f"{bad} must be {' or '.join(map(repr, LPGPreset.CHOICES[name]))}, got {value!r}")
    elif isinstance(default, dict):
        ok = isinstance(value, dict) and all(isinstance(k, str) and _is_real(w) and w > 0 for k, w in value.items())
        if not ok:
            raise ValueError(f'{bad} must map task names to positive numbers, e.g. {{"gridworld/long_dense": 3}}, got {value!r}')
    elif isinstance(default, tuple):
        if not isinstance(value, (list, tuple)) or not value or not all(_is_real(x) and x >= 0 for x in value):
            raise ValueError(f"{bad} must be a non-empty list of non-negative numbers, got {value!r}")
        if name == "betas" and len(value) != len(default):
            raise ValueError(f"{bad} must have {len(default)} entries, got {len(value)}")
        if name == "agent_hidden" and not all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in value):
            raise ValueError(f"{bad} must be a non-empty list of positive integers, got {value!r}")


def build(preset: LPGPreset | dict[str, Any], tasks: list, *, key):
    """`(rule, estimator, meta_config)` for a preset (or the `preset` dict of a run's config.json)."""
    if isinstance(preset, dict):
        preset = LPGPreset.from_json(preset)
    return preset.build(tasks, key=key)


PRESETS: dict[str, LPGPreset] = {
    "cpu": LPGPreset(),
    "paper": LPGPreset(
        hidden_size=256, prediction_dim=30, cell="lstm",
        inner_steps=5, lifetimes_per_task=192, num_envs=64, rollout_len=20, lifetime_updates=2400,
        learning_rates=(20.0, 40.0, 80.0, 160.0, 320.0), alpha_ys=(0.1, 0.5, 1.0),
        betas=(0.01, 0.001, 0.001, 0.001), gamma=0.99, meta_lr=1e-4, max_grad_norm=1.0, steps=100_000,
    ),
    "groove-bench": LPGPreset(
        hidden_size=256, prediction_dim=8, cell="gru",
        inner_steps=5, lifetimes_per_task=8, num_envs=64, rollout_len=20, lifetime_updates=2400,
        learning_rates=(20.0, 40.0, 80.0), alpha_ys=(0.1, 0.5, 1.0),
        betas=(0.05, 0.001, 0.005, 0.001), gamma=0.99, meta_lr=1e-4, max_grad_norm=1.0, steps=1000,
    ),
}

ESTIMATOR_FIELDS = ("inner_steps", "lifetimes_per_task", "num_envs", "rollout_len", "lifetime_updates", "learning_rates", "alpha_ys", "betas", "regularizer")


def get_preset(name: str, **overrides) -> LPGPreset:
    """A preset by name, with overrides (`None` values are ignored). Unknown names or fields, and
    values of the wrong kind, raise `ValueError`."""
    if name not in PRESETS:
        raise ValueError(f"Unknown preset {name!r}. Known presets: {', '.join(PRESETS)}")
    return PRESETS[name].replace(**overrides)
