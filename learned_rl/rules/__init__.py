"""Update rules: the abstract interface, mirror learning (the rule and its drifts), and LPG."""

from ._base import (
    AbstractUpdateRule as AbstractUpdateRule,
    advantages_and_targets as advantages_and_targets,
    batched as batched,
    batched_value as batched_value,
    log_prob_entropy as log_prob_entropy,
)
from ._lpg import LPG as LPG, LPGNetwork as LPGNetwork
from ._mirror import (
    AbstractDrift as AbstractDrift,
    ClipDrift as ClipDrift,
    DPODrift as DPODrift,
    LPODrift as LPODrift,
    MirrorLearning as MirrorLearning,
    drift_activity as drift_activity,
    drift_values as drift_values,
    mirror_objective as mirror_objective,
)
from ._lpo import is_lpo as is_lpo, make_lpo as make_lpo
