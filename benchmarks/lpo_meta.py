"""Quality of a meta-trained LPO drift: train fresh PPO agents with the learned drift (LPO), with
PPO's clip drift and with DPO's drift, on the meta-training task and on other tasks, with seeds
that meta-training never used, and print a markdown table of final returns (mean ± standard
error over seeds) plus the paired difference LPO − PPO (same seeds, so the same levels and
initialisations for every rule), and a second table of how much each rule's drift acted: the
fraction of samples with an active drift after each update, averaged over seeds and over the
first / middle / last third of the run (`learned_rl.rules.drift_activity`).

Run: `.venv/bin/python benchmarks/lpo_meta.py [--rule lpo_gridworld_dense [--rule PATH ...]] [--seeds 5]
      [--seed 1000] [--runs gridworld/dense:100000,CartPole-v1:100000,...]`

Several `--rule`s (e.g. an LPO and a TA-LPO drift) each get a column and a paired difference
against PPO; a temporally-aware drift is labelled TA-LPO.

Each rule runs its seeds as one vmapped program. Every rule uses PPO's per-family default config
with the budget replaced.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time

import equinox as eqx
import jax
import numpy as np

from learned_rl import tasks
from learned_rl.baselines import PPO
from learned_rl import train
from learned_rl._experiment import DRIFT_FIGURES, drift_activity_summary, seed_keys
from learned_rl._learner import final_return
from learned_rl._registry import make_rule
from learned_rl.rules import DPODrift
from learned_rl.rules._mirror import ACTIVE_DRIFT

DEFAULT_RUNS = "gridworld/dense:100000,gridworld/dense:1000000,CartPole-v1:100000,Acrobot-v1:100000"


def finals(rule, task, config, keys) -> tuple[np.ndarray, dict[str, list[float]]]:
    """Final return per seed, and `drift_activity_summary` of the run (seeds vmapped)."""
    def one(r, k):
        m = train(r, task, config, key=k)[1]
        return {n: m[n] for n in ("return_sum", "episodes", *DRIFT_FIGURES) if n in m}

    m = jax.device_get(eqx.filter_jit(jax.vmap(one, in_axes=(None, 0)))(rule, keys))
    return final_return(m, config.final_fraction), drift_activity_summary(m)


def mean_se(x):
    x = np.asarray(x, np.float64)
    return float(np.mean(x)), float(np.std(x, ddof=1) / math.sqrt(len(x))) if len(x) > 1 else 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rule", action="append", default=None, help="a pretrained LPO name or a rule.eqx path (repeatable; default lpo_gridworld_dense)")
    ap.add_argument("--runs", default=DEFAULT_RUNS, help="comma-separated TASK:ENV_STEPS")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1000, help="base seed (meta-training used PRNGKey(0)'s stream)")
    args = ap.parse_args()
    names = args.rule or ["lpo_gridworld_dense"]
    rules = {"PPO (clip)": PPO(), "DPO": PPO(drift=DPODrift())}
    learned = []
    for n in names:
        r = make_rule(f"lpo:{n}")
        label = f"{'TA-LPO' if r.temporal else 'LPO'} ({os.path.basename(n)})"
        rules[label] = r
        learned.append(label)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, jax {jax.__version__}")
    print(f"rules: {', '.join(names)}; {args.seeds} seeds (base seed {args.seed}); final return = mean return of episodes ending in the last 10% of updates\n")
    print(f"| task | env steps | {' | '.join(rules)} | {' | '.join(f'{l} − PPO (paired)' for l in learned)} | wall time |")
    print("|---|---|" + "---|" * (len(rules) + len(learned)) + "---|")
    keys = seed_keys(args.seed, args.seeds)
    activity = []
    for spec in args.runs.split(","):
        name, steps = spec.rsplit(":", 1)
        task = tasks.make(name)
        t0 = time.time()
        res, act = {}, {}
        for label, rule in rules.items():
            config = rule.default_config(task).replace(total_steps=int(steps))
            res[label], act[label] = finals(rule, task, config, keys)
        activity.append((name, act))
        cells = [f"{m:.2f} ± {s:.2f}" for m, s in (mean_se(res[l]) for l in rules)]
        diffs = [f"{d:+.2f} ± {ds:.2f}" for d, ds in (mean_se(res[l] - res["PPO (clip)"]) for l in learned)]
        print(f"| {name} | {config.num_updates * config.steps_per_update:,} | {' | '.join(cells)} | {' | '.join(diffs)} | {time.time() - t0:.0f} s |", flush=True)
    print(f"\nDrift active after each update (fraction of samples with f(r, A) > {ACTIVE_DRIFT:g}), first / middle / last third of the run:\n")
    print(f"| task | {' | '.join(rules)} |")
    print("|---|" + "---|" * len(rules))
    for name, act in activity:
        print(f"| {name} | {' | '.join(' / '.join(f'{x:.3f}' for x in act[l]['drift_active']) for l in rules)} |")


if __name__ == "__main__":
    main()
