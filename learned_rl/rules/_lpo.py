"""LPO (Lu et al. 2022): PPO's mirror objective with a learned drift, `MirrorLearning(drift=LPODrift(...))`.

An LPO rule *is* a `MirrorLearning` rule (PPO's machinery) whose drift is an `LPODrift`; its only inexact-array leaves are the
drift network's weights, so those are exactly its meta-parameters (what `EvolutionStrategies`
perturbs). These helpers build such a rule and (de)serialise its config for `save_rule`/`load_rule`.
"""

from __future__ import annotations

from typing import Any

import jax

from ._mirror import LPODrift, MirrorLearning

_PPO_FIELDS = ("gamma", "gae_lambda", "ent_coef", "vf_coef", "clip_value", "num_epochs", "num_minibatches")
_DRIFT_FIELDS = ("width", "ppo_init", "epsilon", "temporal")


def make_lpo(drift: LPODrift | None = None, *, key=None, width: int = 128, ppo_init: bool = True, temporal: bool = False, **ppo_kwargs):
    """A mirror-learning rule with an `LPODrift`: `drift` if given, else a fresh one (zero output layer, so with
    `ppo_init` it is exactly PPO-clip up to the 1e-4 shift; `temporal`: TA-LPO). `ppo_kwargs` go to `MirrorLearning`."""
    if drift is None:
        drift = LPODrift(width, ppo_init, key=jax.random.PRNGKey(0) if key is None else key, temporal=temporal)
    if not isinstance(drift, LPODrift):
        raise TypeError(f"make_lpo needs an LPODrift, got {type(drift).__name__}")
    return MirrorLearning(drift=drift, **ppo_kwargs)


def is_lpo(rule) -> bool:
    """Whether `rule` is a mirror-learning rule with a learned (`LPODrift`) drift."""
    return isinstance(getattr(rule, "drift", None), LPODrift)


def lpo_config(rule) -> dict[str, Any]:
    """The JSON-able config that rebuilds an LPO rule's structure."""
    if not is_lpo(rule):
        raise TypeError(f"not an LPO rule: {type(rule).__name__} without an LPODrift")
    d = rule.drift
    cfg: dict[str, Any] = {"width": int(d.hidden.out_features), "ppo_init": bool(d.ppo_init), "epsilon": float(d.epsilon)}
    if d.temporal:
        cfg["temporal"] = True  # written only when set: an older rule's config is unchanged
    for f in _PPO_FIELDS:
        v = getattr(rule, f)
        cfg[f] = None if v is None else (int(v) if f in ("num_epochs", "num_minibatches") else float(v))
    return cfg


def lpo_from_config(config: dict[str, Any], *, key=None):
    """An LPO rule with this config (fresh drift weights from `key`)."""
    unknown = set(config) - set(_PPO_FIELDS) - set(_DRIFT_FIELDS)
    if unknown:
        raise ValueError(f"LPO config has unknown fields {sorted(unknown)}")
    drift = LPODrift(
        int(config.get("width", 128)),
        bool(config.get("ppo_init", True)),
        key=jax.random.PRNGKey(0) if key is None else key,
        epsilon=float(config.get("epsilon", 0.2)),
        temporal=bool(config.get("temporal", False)),
    )
    return make_lpo(drift, **{f: config[f] for f in _PPO_FIELDS if f in config})
