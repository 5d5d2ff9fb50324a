"""When does a mirror-learning drift act? PPO and DPO on one task over a grid of update sizes:
minibatches per epoch, epochs, learning rate and envs. For each point it reports the final return
and, after each update (on the whole batch, averaged over the run and over seeds), the fraction of
samples where the drift acts (f(r, A) > `ACTIVE_DRIFT`), the fraction with |r − 1| > ε, and
KL(π_old ‖ π). The two rules run on the same seeds, so their returns are paired.

Run: `.venv/bin/python benchmarks/drift_regime.py [--task CartPole-v1] [--steps 100000] [--seeds 2]
[--seed 500] [--points MB,EPOCHS,LR,ENVS;...] [--out FILE.json]`. `--points` replaces the grid
(for example the task's default and one binding point, with more seeds); a point may also be
``default`` (the task family's PPO default as it is) or a recipe's name (``purejaxrl-minatar``:
a published codebase's whole configuration, `learned_rl._defaults.RECIPES`). Prints a markdown table
with the paired difference DPO − PPO (mean ± standard error over seeds); `--out` also writes the
figures as JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import time

import math

import numpy as np

from learned_rl import tasks
from learned_rl._defaults import RECIPES
from learned_rl._experiment import apply_recipe, drift_activity_summary, run_seeds, summarize
from learned_rl.baselines import PPO
from learned_rl.rules import DPODrift

# (minibatches, epochs, learning rate, envs): the task's PPO default first, then larger updates
GRID = [(mb, ep, lr, envs) for envs in (4, 16) for mb, ep in ((4, 4), (16, 4), (32, 10)) for lr in (2.5e-4, 1e-3, 3e-3)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--task", default="CartPole-v1")
    ap.add_argument("--steps", type=int, default=100_000)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--seed", type=int, default=500)
    ap.add_argument("--points", default=None, help="MB,EPOCHS,LR,ENVS points separated by ';' (default: the built-in grid)")
    ap.add_argument("--out", default=None, help="write the figures as JSON here")
    args = ap.parse_args()
    grid = GRID
    if args.points:
        grid = []
        for p in args.points.split(";"):
            if p == "default" or p in RECIPES:
                grid.append(p)
                continue
            try:
                a, b, c, d = p.split(",")
                grid.append((int(a), int(b), float(c), int(d)))
            except ValueError:
                raise SystemExit(f"error: --points must be MB,EPOCHS,LR,ENVS, 'default' or a recipe ({', '.join(RECIPES)}) separated by ';', got {p!r}") from None
    task = tasks.make(args.task)
    base = PPO().default_config(task)
    rows = []
    start = time.time()
    for point in grid:
        rules = {"ppo": PPO(), "dpo": PPO(drift=DPODrift())}
        if isinstance(point, tuple):
            mb, ep, lr, envs = point
            cfg = base.replace(learning_rate=lr, num_envs=envs)
            rules = {n: dataclasses.replace(r, num_minibatches=mb, num_epochs=ep) for n, r in rules.items()}
            configs = {n: cfg for n in rules}
        elif point == "default":
            configs = {n: base for n in rules}
        else:
            made = {n: apply_recipe(RECIPES[point], r, task, n) for n, r in rules.items()}
            rules, configs = {n: m[0] for n, m in made.items()}, {n: m[1] for n, m in made.items()}
        mb, ep = rules["ppo"].num_minibatches, rules["ppo"].num_epochs
        lr, envs = configs["ppo"].learning_rate, configs["ppo"].num_envs
        row = {"point": point if isinstance(point, str) else "grid", "minibatches": mb, "epochs": ep, "learning_rate": lr, "envs": envs}
        for name, rule in rules.items():
            cfg = configs[name].replace(total_steps=args.steps)
            res = run_seeds(rule, task, cfg, num_seeds=args.seeds, seed=args.seed, rule_name=name, progress=False)
            s = summarize(task, res)
            act = {k: float(np.mean(v)) for k, v in drift_activity_summary(res.metrics).items()}
            row[name] = {"final_returns": s["final_returns"], "final_return_mean": s["final_return_mean"], **act}
        diff = np.asarray(row["dpo"]["final_returns"]) - np.asarray(row["ppo"]["final_returns"])
        row["dpo_minus_ppo"] = [float(diff.mean()), float(diff.std(ddof=1) / math.sqrt(len(diff))) if len(diff) > 1 else float("nan")]
        rows.append(row)
        p, d = row["ppo"], row["dpo"]
        print(f"mb {mb:>2} ep {ep:>2} lr {lr:.1e} envs {envs:>2}: ppo {p['final_return_mean']:7.1f} clip {p['clip_fraction']:.3f} kl {p['approx_kl']:.1e} | "
              f"dpo {d['final_return_mean']:7.1f} active {d['drift_active']:.3f} kl {d['approx_kl']:.1e}  ({time.time() - start:.0f} s)", flush=True)
    header = (
        f"{task.name}, {args.steps:,} env steps, {args.seeds} seeds from {args.seed} (paired), {platform.machine()} CPU with "
        f"{os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}. Drift figures: after each update, on the whole batch, averaged over the run."
    )
    print("\n" + header + "\n")
    print("| point | minibatches × epochs | lr | envs | PPO return | PPO \\|r−1\\|>ε | PPO KL | DPO return | DPO drift active | DPO \\|r−1\\|>ε | DPO KL | DPO − PPO (paired) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        p, d = r["ppo"], r["dpo"]
        print(f"| {r['point']} | {r['minibatches']} × {r['epochs']} | {r['learning_rate']:g} | {r['envs']} | {p['final_return_mean']:.2f} | {p['clip_fraction']:.3f} | "
              f"{p['approx_kl']:.1e} | {d['final_return_mean']:.2f} | {d['drift_active']:.3f} | {d['clip_fraction']:.3f} | {d['approx_kl']:.1e} | "
              f"{r['dpo_minus_ppo'][0]:+.2f} ± {r['dpo_minus_ppo'][1]:.2f} |")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"header": header, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
