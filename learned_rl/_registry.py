"""Rules by name, as the CLI and `compare` spell them."""

from __future__ import annotations

import difflib
from pathlib import Path

from . import baselines, pretrained
from ._rules_io import load_rule
from .rules import DPODrift

RULE_NAMES = ("a2c", "ppo", "dpo", "lpg:PATH_OR_PRETRAINED", "lpg-v:PATH_OR_PRETRAINED", "lpo:PATH_OR_PRETRAINED")


def make_rule(name: str):
    """Build an update rule from its CLI name: ``a2c``, ``ppo``, ``dpo`` (PPO's objective with the
    DPO drift), ``lpg:PATH_OR_PRETRAINED``, ``lpg-v:PATH_OR_PRETRAINED`` (LPG-V, the ablation with a
    TD(λ) value instead of y; ``lpg:`` loads it too) or ``lpo:PATH_OR_PRETRAINED`` (a `rule.eqx` file, or
    the name of a shipped rule such as ``lpg_tabular`` or ``lpo_gridworld_dense``; an LPO rule is
    PPO with a learned drift).

    Raises `ValueError` with the close matches for an unknown name, and `CheckpointError` (a
    `ValueError`) for a missing or corrupt rule file.
    """
    if not isinstance(name, str):
        raise TypeError(f"rule name must be a string, got {type(name).__name__}")
    key = name.strip()
    low = key.lower()
    if low == "a2c":
        return baselines.A2C()
    if low == "ppo":
        return baselines.PPO()
    if low == "dpo":
        return baselines.PPO(drift=DPODrift())
    if low.startswith("lpg-v:"):
        rule = _load_learned("lpg", key[len("lpg-v:") :])
        if rule.variant != "v":
            raise ValueError(f"{name}: holds an LPG rule (it learns y), not LPG-V; use lpg:{key[len('lpg-v:'):]}")
        return rule
    for kind in ("lpg", "lpo"):
        if low.startswith(kind + ":"):
            return _load_learned(kind, key[len(kind) + 1 :])
    close = difflib.get_close_matches(low, ["a2c", "ppo", "dpo", "lpg", "lpg-v", "lpo"], n=3)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise ValueError(f"Unknown rule {name!r}.{hint} Known rules: {', '.join(RULE_NAMES)}.")


def _load_learned(kind: str, ref: str):
    """A learned rule of `kind` from a shipped name or a file path."""
    return load_rule(rule_file(kind, ref), kind=kind)


def rule_file(kind: str, ref: str) -> Path:
    """The file a learned-rule reference names: a shipped rule's name or a path. Raises
    `ValueError` for an empty reference or a bare name that is neither."""
    example = {"lpg": "lpg:lpg_tabular", "lpo": "lpo:lpo_gridworld_dense"}[kind]
    if not ref:
        raise ValueError(f"{kind}: needs a rule file or a pretrained name, e.g. {example} or {kind}:runs/meta/rule.eqx")
    if ref in pretrained.available():
        return pretrained.path(ref)
    p = Path(ref)
    if not p.exists() and p.suffix != ".eqx" and "/" not in ref:
        raise ValueError(
            f"{kind}:{ref}: no such file and no pretrained rule of that name "
            f"(pretrained: {', '.join(pretrained.available()) or 'none'})"
        )
    return p
