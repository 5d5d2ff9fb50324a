"""Learned rules shipped with the package.

`load("lpg_tabular")` returns the LPG rule meta-trained on `lpg-tabular` (see the README for the
command that produced it, its cost and its results).
"""

from __future__ import annotations

from pathlib import Path

_DIR = Path(__file__).parent


def available() -> list[str]:
    """Names of the shipped rules."""
    return sorted(p.stem for p in _DIR.glob("*.eqx"))


def path(name: str) -> Path:
    """The file of a shipped rule. Unknown names raise `ValueError` listing the available ones."""
    p = _DIR / f"{name}.eqx"
    if not p.is_file():
        raise ValueError(f"Unknown pretrained rule {name!r}. Available: {', '.join(available()) or 'none'}")
    return p


def load(name: str):
    """Load a shipped rule by name."""
    from .._rules_io import load_rule

    return load_rule(path(name))
