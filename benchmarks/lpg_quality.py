"""Quality of a learned LPG rule: train fresh agents with it on tasks and compare the fraction of
the optimal return with A2C (tuned defaults) and with the untrained rule (same architecture and
agent hyperparameters, random meta-network weights), at the same number of env steps.

Run: `.venv/bin/python benchmarks/lpg_quality.py [--rule lpg_tabular] [--tasks lpg-tabular] [--seeds 5] [--steps N]
[--also lpg-v:PATH,lpg:OTHER]` (`--also`: more rules, one column each, e.g. LPG-V or an older rule).
Prints a markdown table (mean ± standard error over seeds). Levels are sampled per seed from each
task's distribution; every rule sees the same levels (same seeds).
"""

from __future__ import annotations

import argparse
import os
import platform

import jax

from learned_rl import tasks
from learned_rl.baselines import A2C
from learned_rl._experiment import run_seeds, summarize
from learned_rl._registry import make_rule
from learned_rl.rules._lpg import LPG


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rule", default="lpg_tabular", help="a pretrained name or a rule.eqx path")
    ap.add_argument("--tasks", default="lpg-tabular")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=None, help="env steps per run (default: A2C's default for the family)")
    ap.add_argument("--also", default="", help="comma-separated extra rules (CLI names), one column each")
    args = ap.parse_args()
    learned = make_rule(f"lpg:{args.rule}")
    extra = [(n, make_rule(n)) for n in args.also.split(",") if n.strip()]
    untrained = LPG.from_config(learned.config(), key=jax.random.PRNGKey(12345))
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, jax {jax.__version__}")
    print(f"rule: {args.rule} (agent lr {learned.learning_rate:g}, alpha_y {learned.alpha_y:g}); {args.seeds} seeds\n")
    print("| task | env steps | A2C | LPG (learned) | LPG (untrained) |" + "".join(f" {n} |" for n, _ in extra))
    print("|---|---|---|---|---|" + "---|" * len(extra))
    for name in tasks.resolve(args.tasks):
        task = tasks.make(name)
        cells = []
        steps = None
        for rule in (A2C(), learned, untrained, *(r for _, r in extra)):
            cfg = rule.default_config(task)
            if args.steps:
                cfg = cfg.replace(total_steps=args.steps)
            res = run_seeds(rule, task, cfg, num_seeds=args.seeds, seed=100, progress=False)
            s = summarize(task, res)
            steps = s["env_steps"]
            if "normalized_return" in s:
                cells.append(f"{s['normalized_return']:.3f} ± {s['normalized_return_stderr']:.3f}")
            else:
                cells.append(f"{s['final_return_mean']:.2f} ± {s['final_return_stderr']:.2f} (return)")
        print(f"| {name} | {steps:,} | " + " | ".join(cells) + " |", flush=True)
    print("\nCells: fraction of the optimal return (exact DP optimum of each seed's level) where known, else the return.")


if __name__ == "__main__":
    main()
