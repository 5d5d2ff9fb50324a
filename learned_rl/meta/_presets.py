"""Named LPG meta-training presets: sizes of the meta-network, the population and the lifetimes.

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
from typing import Any

from ..rules._lpg import LPG
from ._estimators import TruncatedMetaGradient
from ._meta_train import MetaTrainConfig

PRESETS: dict[str, dict[str, Any]] = {
    "cpu": dict(
        hidden_size=64, prediction_dim=8, cell="lstm",
        inner_steps=5, lifetimes_per_task=4, num_envs=16, rollout_len=20, lifetime_updates=3125,
        learning_rates=(5.0, 10.0, 20.0, 40.0), alpha_ys=(0.1, 0.5, 1.0),
        betas=(0.01, 0.001, 0.001, 0.001), gamma=0.99, meta_lr=1e-3, max_grad_norm=1.0, steps=6000,
        task_weights={},
    ),
    "paper": dict(
        hidden_size=256, prediction_dim=30, cell="lstm",
        inner_steps=5, lifetimes_per_task=192, num_envs=64, rollout_len=20, lifetime_updates=2400,
        learning_rates=(20.0, 40.0, 80.0, 160.0, 320.0), alpha_ys=(0.1, 0.5, 1.0),
        betas=(0.01, 0.001, 0.001, 0.001), gamma=0.99, meta_lr=1e-4, max_grad_norm=1.0, steps=100_000,
        task_weights={},
    ),
    "groove-bench": dict(
        hidden_size=256, prediction_dim=8, cell="gru",
        inner_steps=5, lifetimes_per_task=8, num_envs=64, rollout_len=20, lifetime_updates=2400,
        learning_rates=(20.0, 40.0, 80.0), alpha_ys=(0.1, 0.5, 1.0),
        betas=(0.05, 0.001, 0.005, 0.001), gamma=0.99, meta_lr=1e-4, max_grad_norm=1.0, steps=1000,
        task_weights={},
    ),
}

ESTIMATOR_FIELDS = ("inner_steps", "lifetimes_per_task", "num_envs", "rollout_len", "lifetime_updates", "learning_rates", "alpha_ys", "betas", "regularizer")

# Fields every preset shares (and a preset may override): `variant` "y" (LPG) or "v" (LPG-V,
# `meta-train lpg --variant v`); `regularizer` "logits" or "paper" (see `TruncatedMetaGradient`).
COMMON = dict(variant="y", regularizer="logits")
CHOICES = {"variant": ("y", "v"), "regularizer": ("paper", "logits"), "cell": ("lstm", "gru")}


def get_preset(name: str, **overrides) -> dict[str, Any]:
    """A preset by name, with overrides. Unknown names or fields raise `ValueError`."""
    if name not in PRESETS:
        raise ValueError(f"Unknown preset {name!r}. Known presets: {', '.join(PRESETS)}")
    p = {**COMMON, **PRESETS[name]}
    unknown = set(overrides) - set(p)
    if unknown:
        raise ValueError(f"unknown preset fields {sorted(unknown)} (fields: {', '.join(p)})")
    overrides = {k: v for k, v in overrides.items() if v is not None}
    for k, v in overrides.items():
        _check_field(k, v, p[k])
    p.update(overrides)
    if p["inner_steps"] > p["lifetime_updates"]:
        raise ValueError(f"K (inner_steps={p['inner_steps']}) is longer than a lifetime (lifetime_updates={p['lifetime_updates']})")
    return p


def _is_real(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _check_field(name: str, value, default) -> None:
    """Overrides must have the default's kind: sizes are positive integers, rates positive finite
    numbers (γ in (0, 1]), `cell` lstm or gru, tuples non-empty lists of non-negative numbers."""
    bad = f"preset field {name!r}"
    if isinstance(default, int):
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"{bad} must be a positive integer, got {value!r}")
    elif isinstance(default, float):
        if not _is_real(value) or value <= 0 or (name == "gamma" and value > 1):
            raise ValueError(f"{bad} must be a positive number{' at most 1' if name == 'gamma' else ''}, got {value!r}")
    elif name in CHOICES:
        if value not in CHOICES[name]:
            raise ValueError(f"{bad} must be {' or '.join(map(repr, CHOICES[name]))}, got {value!r}")
    elif isinstance(default, dict):
        ok = isinstance(value, dict) and all(isinstance(k, str) and _is_real(w) and w > 0 for k, w in value.items())
        if not ok:
            raise ValueError(f'{bad} must map task names to positive numbers, e.g. {{"gridworld/long_dense": 3}}, got {value!r}')
    elif isinstance(default, tuple):
        if not isinstance(value, (list, tuple)) or not value or not all(_is_real(x) and x >= 0 for x in value):
            raise ValueError(f"{bad} must be a non-empty list of non-negative numbers, got {value!r}")
        if name == "betas" and len(value) != len(default):
            raise ValueError(f"{bad} must have {len(default)} entries, got {len(value)}")


def build(preset: dict[str, Any], tasks: list, *, key):
    """`(rule, estimator, meta_config)` for a preset dict."""
    rule = LPG.from_config(
        {
            "hidden_size": preset["hidden_size"], "prediction_dim": preset["prediction_dim"], "cell": preset["cell"],
            "gamma": preset["gamma"], "variant": preset.get("variant", "y"),
            "regime": {k: preset[k] for k in ("num_envs", "rollout_len", "lifetime_updates")},
        },
        key=key,
    )
    est = TruncatedMetaGradient(**{k: (tuple(preset[k]) if isinstance(preset[k], list) else preset[k]) for k in ESTIMATOR_FIELDS}).bind(tasks)
    weights = dict(preset.get("task_weights") or {})
    names = [t.name for t in tasks]
    unknown = sorted(set(weights) - set(names))
    if unknown:
        raise ValueError(f"preset field 'task_weights' names tasks that are not meta-trained on: {unknown} (tasks: {', '.join(names)})")
    if weights:
        est = dataclasses.replace(est, problem=dataclasses.replace(est.problem, task_weights=tuple(float(weights.get(n, 1.0)) for n in names)))
    cfg = MetaTrainConfig(steps=int(preset["steps"]), meta_lr=float(preset["meta_lr"]), max_grad_norm=float(preset["max_grad_norm"]))
    return rule, est, cfg
