"""Choose the agent hyperparameters (SGD learning rate × α_y) of a learned LPG rule on held-out seeds.

Rules meta-trained before the regime was recorded chose their arm in lifetimes (16 envs, ~500
updates) unlike the evaluation runs (64 envs, 1M steps); rules from the current `cpu` preset are
meta-trained in the evaluation regime, and this script then serves to check the bandit's choice or
to sweep one hyperparameter (e.g. α_y at a fixed learning rate). This script trains fresh agents with each arm on
each task, on seeds that `lpg_quality.py` does not use (default base seed 500; lpg_quality uses
100), and prints the fraction of optimal per arm and task and its mean over tasks.

Run: `.venv/bin/python benchmarks/lpg_arms.py --rule PATH_OR_NAME [--tasks lpg-tabular] [--seeds 3]
[--learning-rates 5,10,20,40] [--alpha-ys 0.1,0.5,1] [--write OUT.eqx]`

`--write` saves a copy of the rule with the arm of the best mean (the meta-parameters are
unchanged) and records the selection (arms, seeds, table) in its metadata under `arm_selection`.
"""

from __future__ import annotations

import argparse
import os
import platform

import jax
import numpy as np

from learned_rl import tasks
from learned_rl._checkpoint import read_header
from learned_rl._experiment import run_seeds, summarize
from learned_rl._registry import rule_file
from learned_rl._rules_io import load_rule, save_rule


def _floats(text: str) -> list[float]:
    try:
        out = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise SystemExit(f"error: expected comma-separated numbers, got {text!r}")
    if not out or min(out) < 0:
        raise SystemExit(f"error: expected non-negative numbers, got {text!r}")
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rule", default="lpg_tabular", help="a pretrained name or a rule.eqx path")
    ap.add_argument("--tasks", default="lpg-tabular")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=500, help="base seed (lpg_quality.py uses 100)")
    ap.add_argument("--learning-rates", default="5,10,20,40")
    ap.add_argument("--alpha-ys", default="0.5")
    ap.add_argument("--write", default=None, metavar="OUT.eqx")
    args = ap.parse_args()
    if args.seeds <= 0:
        raise SystemExit("error: --seeds must be positive")
    path = rule_file("lpg", args.rule)
    rule = load_rule(path, kind="lpg")
    arms = [(lr, ay) for lr in _floats(args.learning_rates) for ay in _floats(args.alpha_ys)]
    names = tasks.resolve(args.tasks)
    task_objs = [tasks.make(n) for n in names]
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, jax {jax.__version__}")
    print(f"rule: {args.rule} (stored arm: lr {rule.learning_rate:g}, alpha_y {rule.alpha_y:g}); seeds {args.seed}..{args.seed + args.seeds - 1}\n")
    print("| arm (lr, α_y) | " + " | ".join(n.split("/")[-1] for n in names) + " | mean |")
    print("|---|" + "---|" * (len(names) + 1))
    table = {}
    for lr, ay in arms:
        r = rule.with_arm(lr, ay)
        scores = []
        for name, task in zip(names, task_objs):
            s = summarize(task, run_seeds(r, task, r.default_config(task), num_seeds=args.seeds, seed=args.seed, progress=False))
            if "normalized_return" not in s:
                raise SystemExit(f"error: {name} has no known optimal return; choose tabular tasks")
            scores.append(s["normalized_return"])
        table[f"{lr:g},{ay:g}"] = [round(x, 4) for x in scores]
        print(f"| {lr:g}, {ay:g} | " + " | ".join(f"{x:.3f}" for x in scores) + f" | {np.mean(scores):.3f} |", flush=True)
    best = max(table, key=lambda k: np.mean(table[k]))
    lr, ay = (float(x) for x in best.split(","))
    print(f"\nbest mean: lr {lr:g}, alpha_y {ay:g}")
    if args.write:
        header, _ = read_header(path)
        meta = dict(header["config"].get("metadata", {}))
        meta["arm_selection"] = {
            "command": "python benchmarks/lpg_arms.py " + " ".join(
                f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k != "write" and v is not None
            ),
            "tasks": names, "seeds": args.seeds, "base_seed": args.seed,
            "fraction_of_optimal": table, "chosen": {"learning_rate": lr, "alpha_y": ay},
        }
        print(f"wrote {save_rule(args.write, rule.with_arm(lr, ay), metadata=meta)}")


if __name__ == "__main__":
    main()
