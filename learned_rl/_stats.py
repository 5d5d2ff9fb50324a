"""Statistics for reporting results: standard errors, the interquartile mean, stratified bootstrap
confidence intervals and baseline-normalised scores. Plain numpy, so the numbers can be checked by
hand (see tests/test_transfer.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np


def stderr(x) -> float:
    """Standard error of the mean (ddof = 1) over the finite entries; 0 for fewer than 2."""
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    if x.size < 2:
        return 0.0
    return float(np.std(x, ddof=1) / math.sqrt(x.size))


def iqm(x) -> float:
    """Interquartile mean: the mean of the middle half of the sorted values.

    ``floor(n/4)`` values are dropped from each end (the convention of `scipy.stats.trim_mean`
    with proportion 0.25, as used by rliable). NaNs are an error: a score that is NaN means a run
    failed, and silently dropping it would flatter the aggregate.
    """
    x = np.sort(np.asarray(x, dtype=float).ravel())
    if x.size == 0:
        raise ValueError("iqm of an empty set")
    if not np.all(np.isfinite(x)):
        raise ValueError("iqm: scores contain NaN or Inf")
    cut = x.size // 4
    return float(np.mean(x[cut : x.size - cut]))


def stratified_bootstrap_ci(
    groups: Sequence[Sequence[float]],
    statistic: Callable[[np.ndarray], float] = iqm,
    *,
    num_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Point estimate and percentile bootstrap interval of `statistic` over pooled groups.

    Each group (e.g. the seeds of one task) is resampled with replacement on its own, so every
    resample keeps every task with its number of runs (the stratified bootstrap of Agarwal et al.,
    2021). **Returns:** ``(estimate, low, high)``.
    """
    if not groups or any(len(g) == 0 for g in groups):
        raise ValueError("stratified_bootstrap_ci needs non-empty groups")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if num_resamples <= 0:
        raise ValueError("num_resamples must be positive")
    arrays = [np.asarray(g, dtype=float) for g in groups]
    point = statistic(np.concatenate(arrays))
    rng = np.random.default_rng(seed)
    stats = np.empty(num_resamples)
    for i in range(num_resamples):
        stats[i] = statistic(np.concatenate([a[rng.integers(0, a.size, a.size)] for a in arrays]))
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(stats, [tail, 1.0 - tail])
    return float(point), float(low), float(high)


def normalized_score(value, low: float, high: float):
    """``(value − low) / (high − low)``: 0 at the `low` reference (e.g. a uniform random policy) and
    1 at the `high` reference (e.g. A2C). Raises `ValueError` when the references coincide (the
    baseline did not beat random, so the normalisation is meaningless)."""
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"normalized_score: non-finite reference ({low}, {high})")
    if abs(high - low) < 1e-8 * max(1.0, abs(high), abs(low)):
        raise ValueError(f"normalized_score: references coincide ({low} and {high})")
    return (np.asarray(value, dtype=float) - low) / (high - low)
