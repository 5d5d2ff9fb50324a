"""Our aggregate statistics against rliable's (Agarwal et al., 2021) on the same scores.

`learned_rl.iqm` and `learned_rl.stratified_bootstrap_ci` (numpy only) are what `transfer`,
`compare` and `evaluate` report. rliable is the field's reference implementation of the same
statistics. This script computes both on the same score matrices and prints, per case:

- the IQM point estimate of each (they should agree to float rounding: both drop ``floor(n/4)``
  scores from each end of the pooled runs);
- the 95% percentile interval of each, from a stratified bootstrap (runs resampled within each
  task), and the gap between the two intervals' ends as a fraction of the interval's width;
- the same gap between two of *our* intervals with different bootstrap seeds, which is the Monte
  Carlo error that any gap should be compared with.

Cases: synthetic normalised scores (normal, skewed, with outliers; several tasks × runs shapes) and,
with ``--transfer FILE``, the per-task scores of a `transfer.json` that `learned-rl transfer` wrote.

Installs nothing itself: ``pip install -e '.[bench]'`` brings rliable (with ``pandas<3``: rliable
1.2.0 pulls the newest pandas, with which its dependency arch 7.2 fails to import).

    python benchmarks/vs_rliable.py --reps 2000
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from learned_rl import iqm, stratified_bootstrap_ci


def synthetic_cases(seed: int) -> dict[str, np.ndarray]:
    """Score matrices [runs, tasks]."""
    rng = np.random.default_rng(seed)
    skewed = rng.lognormal(mean=-0.5, sigma=1.0, size=(10, 5))
    outliers = rng.normal(0.6, 0.2, size=(5, 15))
    outliers[rng.integers(0, 5, 6), rng.integers(0, 15, 6)] = rng.choice([-3.0, 4.0], 6)
    return {
        "normal, 5 runs x 5 tasks": rng.normal(0.8, 0.3, size=(5, 5)),
        "normal, 3 runs x 15 tasks": rng.normal(0.5, 0.4, size=(3, 15)),
        "log-normal, 10 runs x 5 tasks": skewed,
        "outliers, 5 runs x 15 tasks": outliers,
        "two tasks apart, 10 runs x 2 tasks": np.stack([rng.normal(0.0, 0.1, 10), rng.normal(1.0, 0.1, 10)], axis=1),
    }


def transfer_case(path: str) -> dict[str, np.ndarray]:
    """The rule's per-seed normalised scores of a transfer.json, one column per task with a score."""
    data = json.load(open(path))
    columns = [np.asarray(t["normalized_scores"], float) for t in data.get("tasks", {}).values() if t.get("normalized_scores")]
    if not columns:
        raise SystemExit(f"{path}: no per-task scores")
    return {f"{path}": np.stack(columns, axis=1)}


def ours(matrix: np.ndarray, reps: int, seed: int) -> tuple[float, float, float]:
    return stratified_bootstrap_ci([matrix[:, j] for j in range(matrix.shape[1])], num_resamples=reps, seed=seed)


def theirs(matrix: np.ndarray, reps: int) -> tuple[float, float, float]:
    from rliable import library, metrics

    point, interval = library.get_interval_estimates({"rule": matrix}, lambda x: np.array([metrics.aggregate_iqm(x)]), reps=reps)
    return float(point["rule"][0]), float(interval["rule"][0, 0]), float(interval["rule"][1, 0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=2000, help="bootstrap resamples (both implementations)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the synthetic scores and of our bootstrap")
    ap.add_argument("--transfer", action="append", default=[], metavar="FILE", help="also a transfer.json's scores (repeatable)")
    args = ap.parse_args()
    from importlib.metadata import version

    np.random.seed(args.seed)  # rliable's bootstrap draws from numpy's global generator
    cases = synthetic_cases(args.seed)
    for f in args.transfer:
        cases.update(transfer_case(f))
    print(f"rliable {version('rliable')}, {args.reps} resamples, 95% percentile intervals\n")
    print("| case | IQM ours | IQM rliable | CI ours | CI rliable | end gap / width | ours, seed+1 vs seed: gap / width |")
    print("|---|---|---|---|---|---|---|")
    worst = 0.0
    for name, m in cases.items():
        p, lo, hi = ours(m, args.reps, args.seed)
        _, lo2, hi2 = ours(m, args.reps, args.seed + 1)
        q, rlo, rhi = theirs(m, args.reps)
        assert abs(iqm(m.ravel()) - p) == 0.0
        width = hi - lo
        gap = max(abs(lo - rlo), abs(hi - rhi)) / width
        mc = max(abs(lo - lo2), abs(hi - hi2)) / width
        worst = max(worst, abs(p - q))
        print(f"| {name} | {p:.4f} | {q:.4f} | [{lo:.4f}, {hi:.4f}] | [{rlo:.4f}, {rhi:.4f}] | {gap:.3f} | {mc:.3f} |")
    print(f"\nlargest IQM difference: {worst:.2e}")


if __name__ == "__main__":
    main()
