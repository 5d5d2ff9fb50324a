"""One LPG rule, one index-observation task, two agent families: a lookup table and an MLP reading
the one-hot state index, each beside A2C with the same agent. The observations are the same, so a
gap between the table and the MLP comes from the function approximator, not from what the agent
sees.

Run: `.venv/bin/python benchmarks/lpg_agents.py [--rule lpg_tabular] [--task gridworld/dense]
[--steps 1000000] [--seeds 3] [--seed 300] [--no-a2c]`. Prints a markdown table: fraction of the optimal return
(exact DP optimum of each seed's level), the return, and the policy's entropy at the first and last
update (mean over seeds).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import jax
import numpy as np

from learned_rl import tasks
from learned_rl._agent import AgentConfig
from learned_rl._experiment import run_seeds, summarize
from learned_rl._registry import make_rule
from learned_rl.baselines import A2C


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rule", default="lpg_tabular", help="a pretrained name or a rule.eqx path")
    ap.add_argument("--task", default="gridworld/dense", help="a task with integer-index observations")
    ap.add_argument("--steps", type=int, default=1_000_000)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=300)
    ap.add_argument("--no-a2c", action="store_true", help="skip the A2C rows (they do not depend on the rule)")
    args = ap.parse_args()
    task = tasks.make(args.task)
    if task.obs_kind != "index":
        raise SystemExit(f"error: {args.task} does not have integer-index observations")
    lpg = make_rule(f"lpg:{args.rule}")
    a2c = A2C()
    mlp = AgentConfig(torso="mlp", hidden=(64, 64), activation="relu")
    table = lpg.default_config(task).replace(total_steps=args.steps)  # the rule's table regime
    a2c_table = a2c.default_config(task).replace(total_steps=args.steps)
    a2c_mlp = a2c.default_config(tasks.make("random_gridworld/small")).replace(total_steps=args.steps, agent=mlp)  # A2C's MLP recipe
    cases = [
        (f"LPG ({args.rule}), table, SGD {table.learning_rate:g}", lpg, table),
        (f"LPG ({args.rule}), one-hot MLP, Adam 3e-4", lpg, table.replace(agent=mlp, optimizer="adam", learning_rate=3e-4, max_grad_norm=1.0)),
        (f"LPG ({args.rule}), one-hot MLP, SGD 1", lpg, table.replace(agent=mlp, optimizer="sgd", learning_rate=1.0, max_grad_norm=0.5)),
        ("A2C, table, SGD 40", a2c, a2c_table),
        ("A2C, one-hot MLP, Adam 5e-4", a2c, a2c_mlp),
    ]
    if args.no_a2c:
        cases = cases[:3]
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, jax {jax.__version__}; {args.task}, {args.steps:,} env steps, seeds {args.seed}..{args.seed + args.seeds - 1}\n")
    print("| rule, agent, optimiser | envs × steps | fraction of optimal | return | policy entropy first → last | wall s |")
    print("|---|---|---|---|---|---|")
    for name, rule, cfg in cases:
        t = time.time()
        res = run_seeds(rule, task, cfg, num_seeds=args.seeds, seed=args.seed, progress=False)
        s = summarize(task, res)
        ent = np.asarray(res.metrics["entropy"]).mean(0)
        print(
            f"| {name} | {cfg.num_envs} × {cfg.rollout_len} | {s['normalized_return']:.3f} ± {s['normalized_return_stderr']:.3f} "
            f"| {s['final_return_mean']:.2f} ± {s['final_return_stderr']:.2f} | {ent[0]:.2f} → {ent[-1]:.2f} | {time.time() - t:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
