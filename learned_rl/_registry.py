"""Rules by name, as the CLI and `compare` spell them."""

from __future__ import annotations

import difflib

RULE_NAMES = ("a2c", "ppo")


def make_rule(name: str):
    """Build an update rule from its CLI name (``a2c``, ``ppo``).

    Raises `ValueError` with the close matches for an unknown name.
    """
    import baselines

    if not isinstance(name, str):
        raise TypeError(f"rule name must be a string, got {type(name).__name__}")
    key = name.strip().lower()
    if key == "a2c":
        return baselines.A2C()
    if key == "ppo":
        return baselines.PPO()
    close = difflib.get_close_matches(key, RULE_NAMES, n=3)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise ValueError(f"Unknown rule {name!r}.{hint} Known rules: {', '.join(RULE_NAMES)}.")
