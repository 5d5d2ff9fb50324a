"""Update rules: the abstract interface and the mirror-learning drifts."""

from ._base import AbstractUpdateRule as AbstractUpdateRule
from ._mirror import AbstractDrift as AbstractDrift, ClipDrift as ClipDrift, mirror_objective as mirror_objective
