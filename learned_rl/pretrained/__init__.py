"""Learned rules shipped with the package.

`load("lpg_tabular")` returns the LPG rule meta-trained on `lpg-tabular`; `load("lpo_<task>")`
(e.g. ``lpo_gridworld_dense``) returns an LPO rule: PPO with a drift meta-trained by evolution
strategies on that task (the task name with ``/`` and ``-`` replaced by ``_``); ``ta_lpo_<task>``
a temporally-aware LPO rule (TA-LPO; its drift also reads n/N), and ``ta_lpg_tabular`` a
temporally-aware LPG rule meta-trained by evolution strategies over whole lifetimes, and ``lpg_mlp``
the LPG rule fine-tuned from ``lpg_tabular`` with MLP agents trained by Adam (one-hot
``gridworld/dense``, ``random_gridworld/small``), and ``lpg_mix`` the LPG rule fine-tuned from
``lpg_mlp`` with lookup tables and one-hot MLPs in one run (best on lookup tables), and ``lpg_v_tabular``
the LPG-V ablation (a TD(λ) value instead of y) meta-trained exactly as ``lpg_tabular``, and
``lpg_line`` the LPG rule fine-tuned from ``lpg_mlp`` with MLP agents on its tasks and the line toys
(a reward on every step; it learns CartPole-v1), and ``lpg_swing`` ``lpg_line`` fine-tuned further with
``line/swing`` and a larger policy-entropy weight in the meta-objective (it learns Acrobot-v1), and ``lpo_pendulum`` / ``ta_lpo_pendulum`` the LPO / TA-LPO drifts
meta-trained on Pendulum-v1 where PPO's clip binds (32 minibatches × 10 epochs, lr 1e-3, 16 envs;
use them there, on continuous actions). See docs/rules.md and docs/lpg_all.md for the commands
that produced them, their cost and their results.
"""

from __future__ import annotations

from pathlib import Path

from .._rules_io import load_rule

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
    return load_rule(path(name))
