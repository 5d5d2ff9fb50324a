"""Saving and loading learned rules (`rule.eqx`): a JSON header with the rule's config, then its
leaves. `load_rule` rebuilds the rule's structure from the header and checks the file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import equinox as eqx

from ._checkpoint import CheckpointError, load, read_header, save
from .rules._lpg import LPG
from .rules._lpo import is_lpo, lpo_config, lpo_from_config

RULE_KINDS = ("lpg", "lpo")


def _builder(kind: str):
    """`config -> rule` for a rule kind (random weights; the file's leaves replace them)."""
    if kind == "lpg":
        return LPG.from_config
    if kind == "lpo":
        return lpo_from_config
    raise CheckpointError(f"unknown rule kind {kind!r} (known: {', '.join(RULE_KINDS)})")


def rule_kind(rule) -> str | None:
    """``"lpg"`` for an LPG rule, ``"lpo"`` for a PPO rule with a learned `LPODrift`, else None."""
    if isinstance(rule, LPG):
        return "lpg"
    if is_lpo(rule):
        return "lpo"
    return None


def save_rule(path: str | os.PathLike, rule, *, metadata: dict[str, Any] | None = None) -> Path:
    """Atomically save a learned rule (LPG, or LPO: PPO with an `LPODrift`) with its config (and
    optional metadata) in the header."""
    kind = rule_kind(rule)
    if kind is None:
        raise TypeError(f"save_rule: {type(rule).__name__} is not a learned rule kind ({', '.join(RULE_KINDS)})")
    if kind == "lpo":
        rule_config = lpo_config(rule)
    else:
        rule_config = rule.config()
    config = {"rule": rule_config, "metadata": metadata or {}}
    return save(path, rule, kind=kind, config=config)


def load_rule(path: str | os.PathLike, *, kind: str | None = None):
    """Load a rule saved by `save_rule` (or by `learned-rl meta-train`).

    **Arguments:**

    - `path`: the `.eqx` file.
    - `kind`: if given, the rule kind expected (``"lpg"`` or ``"lpo"``); another kind raises
      `CheckpointError`.

    Raises `CheckpointError` (a `ValueError`) naming the file for a missing, truncated, corrupt or
    mismatched file.
    """
    header, _ = read_header(path)
    found = header.get("kind")
    if kind is not None and found != kind:
        raise CheckpointError(f"{path}: holds a {found!r} rule, expected {kind!r}")
    if found not in RULE_KINDS:
        raise CheckpointError(f"{path}: holds a {found!r}, not a learned rule")
    build = _builder(found)
    _, rule = load(path, lambda cfg: eqx.filter_eval_shape(lambda: build(cfg["rule"])), kind=found)
    return rule
