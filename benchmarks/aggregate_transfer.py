"""One aggregate over several `learned-rl transfer` runs of the same rule: the A2C-normalised
scores of every task of every run, pooled into one interquartile mean with a 95% stratified
bootstrap interval (the statistics `transfer` reports for one suite).

Use it when a suite's tasks had to be run as separate `transfer` commands, for example when each
test task's hyperparameters are chosen on a different validation task, or when suites were run at
different budgets. Each run keeps its own protocol (its `transfer.json` records it); this script
only pools the per-seed scores. A task on which A2C did not beat the random policy has no score,
and then no aggregate is printed, as in `transfer`.

Run: `.venv/bin/python benchmarks/aggregate_transfer.py RUN_DIR [RUN_DIR ...] [--seed 0]`.
Prints a markdown table (task, rule return, A2C return, random return, A2C-normalised score, the
run it came from, the point chosen on validation) and the aggregate.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from learned_rl import iqm, stratified_bootstrap_ci


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="+", help="directories written by `learned-rl transfer` (each holds transfer.json)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the bootstrap resampling")
    args = ap.parse_args()
    reports = []
    for d in args.runs:
        path = Path(d) / "transfer.json"
        if not path.is_file():
            print(f"error: {path} does not exist (not a transfer run directory)", file=sys.stderr)
            return 2
        try:
            report = json.loads(path.read_text())
        except json.JSONDecodeError:
            report = None
        if not isinstance(report, dict) or "rule" not in report or "tasks" not in report:
            print(f"error: {path} is not a transfer report (unreadable JSON, or no rule and tasks)", file=sys.stderr)
            return 2
        reports.append((d, report))
    rules = sorted({r["rule"] for _, r in reports})
    if len(rules) > 1:
        print(f"error: the runs are of different rules ({', '.join(rules)}); pool one rule at a time", file=sys.stderr)
        return 2
    print(f"| task | rule return | A2C return | random return | A2C-normalised | run | chosen on validation |")
    print("|---|---|---|---|---|---|---|")
    groups, missing, seen = [], [], set()
    for d, r in reports:
        chosen = r.get("validation", {}).get("chosen")
        where = ", ".join(r["validation"]["tasks"]) if chosen else ""
        point = (", ".join(f"{k} {v:g}" for k, v in chosen.items()) + f" (on {where})") if chosen else "–"
        for task, e in r["tasks"].items():
            if task in seen:
                print(f"error: {task} is in more than one run; pool each task once", file=sys.stderr)
                return 2
            seen.add(task)
            norm = f"{e['normalized']:.3f} ± {e['normalized_stderr']:.3f}" if e["normalized"] is not None else "n/a"
            print(f"| {task} | {e['rule_return']:.2f} ± {e['rule_return_stderr']:.2f} | {e['a2c_return']:.2f} ± {e['a2c_return_stderr']:.2f} | "
                  f"{e['random_return']:.2f} | {norm} | {d} | {point} |")
            if e["normalized"] is None:
                missing.append(task)
            else:
                groups.append(np.asarray(e["normalized_scores"], np.float64))
    print()
    if missing:
        print(f"No aggregate: A2C does not beat the random policy on {', '.join(missing)}.")
        return 0
    est, lo, hi = stratified_bootstrap_ci(groups, iqm, seed=args.seed)
    above_random = sum(float(np.mean(g)) > 0 for g in groups)
    at_a2c = sum(float(np.mean(g)) >= 1 for g in groups)
    print(f"{rules[0]}: IQM of A2C-normalised scores {est:.3f} [{lo:.3f}, {hi:.3f}] (95% stratified bootstrap) over "
          f"{len(groups)} tasks; mean score above the random policy's on {above_random}, at or above A2C on {at_a2c}.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
