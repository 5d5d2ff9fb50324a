"""Update rules: the abstract interface, mirror learning (the rule and its drifts), and LPG."""

from ._base import AbstractUpdateRule as AbstractUpdateRule
from ._lpg import LPG as LPG, LPGNetwork as LPGNetwork
from ._mirror import (
    AbstractDrift as AbstractDrift,
    ClipDrift as ClipDrift,
    DPODrift as DPODrift,
    LPODrift as LPODrift,
    MirrorLearning as MirrorLearning,
    mirror_objective as mirror_objective,
)
