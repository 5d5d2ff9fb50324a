"""Rules by name, as the CLI and `compare` spell them."""

from __future__ import annotations

import difflib
from pathlib import Path

RULE_NAMES = ("a2c", "ppo", "dpo", "lpg:PATH_OR_PRETRAINED")


def make_rule(name: str):
    """Build an update rule from its CLI name: ``a2c``, ``ppo``, ``dpo`` (PPO's objective with the
    DPO drift) or ``lpg:PATH_OR_PRETRAINED``
    (a `rule.eqx` file, or the name of a shipped rule such as ``lpg_tabular``).

    Raises `ValueError` with the close matches for an unknown name, and `CheckpointError` (a
    `ValueError`) for a missing or corrupt rule file.
    """
    import baselines

    if not isinstance(name, str):
        raise TypeError(f"rule name must be a string, got {type(name).__name__}")
    key = name.strip()
    low = key.lower()
    if low == "a2c":
        return baselines.A2C()
    if low == "ppo":
        return baselines.PPO()
    if low == "dpo":
        from .rules import DPODrift

        return baselines.PPO(drift=DPODrift())
    if low.startswith("lpg:"):
        from . import pretrained
        from ._rules_io import load_rule

        ref = key[4:]
        if not ref:
            raise ValueError("lpg: needs a rule file or a pretrained name, e.g. lpg:lpg_tabular or lpg:runs/meta/rule.eqx")
        if ref in pretrained.available():
            return pretrained.load(ref)
        p = Path(ref)
        if not p.exists() and p.suffix != ".eqx" and "/" not in ref:
            raise ValueError(
                f"lpg:{ref}: no such file and no pretrained rule of that name "
                f"(pretrained: {', '.join(pretrained.available()) or 'none'})"
            )
        return load_rule(p, kind="lpg")
    close = difflib.get_close_matches(low, ["a2c", "ppo", "dpo", "lpg"], n=3)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise ValueError(f"Unknown rule {name!r}.{hint} Known rules: {', '.join(RULE_NAMES)}.")
