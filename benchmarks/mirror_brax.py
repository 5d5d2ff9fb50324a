"""Mirror-learning rules side by side on Brax (and other continuous) tasks.

    python benchmarks/mirror_brax.py --rules ppo,dpo[,lpo:PATH] --envs hopper,reacher --seeds 3 \
        --steps 500000 [--out runs/mirror_brax] [--num-envs B] [--rollout-len T] [--seed K]

Each rule (built by `learned_rl._registry.make_rule`, so every CLI rule name works, including
``lpo:PATH`` once it is registered) is trained on each environment with its documented default
config for the task's family (`rule.default_config(task)`, for Brax: `learned_rl.baselines.ppo.PPO_DEFAULTS
["brax"]`), the budget set by `--steps`, and `--seeds` seeds vmapped in one compiled program
(`learned_rl._experiment.run_seeds`, seed i uses ``fold_in(PRNGKey(K), i)``, so every rule sees
the same seeds and, since they share the task and the config, the same initial agents and levels).

An env name without a slash is a Brax env (``hopper`` = ``brax/hopper``, options allowed:
``hopper?backend=positional``); names with a slash or gymnax ids (``Pendulum-v1``) are used as is.

Prints a markdown table (final return ± standard error over seeds, wall time with compile) and
writes, per env, ``OUT/<env>/{summary.json,metrics.csv,curves.png,config.json}`` (plus
``<rule>.partial.json`` as soon as each rule finishes) and ``OUT/results.md``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def task_name(env: str) -> str:
    if "/" in env or "-" in env:
        return env
    return f"brax/{env}"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rules", default="ppo,dpo")
    p.add_argument("--envs", default="inverted_pendulum,reacher,hopper")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=None, help="env steps per seed (default: the family default)")
    p.add_argument("--num-envs", type=int, default=None)
    p.add_argument("--rollout-len", type=int, default=None)
    p.add_argument("--out", default="runs/mirror_brax")
    args = p.parse_args(argv)

    import jax

    from learned_rl import tasks
    from learned_rl._experiment import run_seeds, summarize, write_json, write_run
    from learned_rl._registry import make_rule

    rule_names = [r.strip() for r in args.rules.split(",") if r.strip()]
    env_names = [e.strip() for e in args.envs.split(",") if e.strip()]
    rules = {name: make_rule(name) for name in rule_names}  # fail early on a bad rule name
    out = Path(args.out)
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, {os.cpu_count()} CPUs; seeds {args.seeds}")

    table: dict[str, dict[str, dict]] = {}
    steps_of: dict[str, int] = {}
    backend_of: dict[str, str | None] = {}
    t_all = time.time()
    for env in env_names:
        task = tasks.make(task_name(env))
        backend_of[env] = getattr(task.env, "backend", None)
        results = []
        for name, rule in rules.items():
            config = rule.default_config(task)
            changes = {}
            if args.num_envs:
                changes["num_envs"] = args.num_envs
            if args.rollout_len:
                changes["rollout_len"] = args.rollout_len
            if args.steps:
                changes["total_steps"] = args.steps
            config = config.replace(**changes)
            r = run_seeds(rule, task, config, num_seeds=args.seeds, seed=args.seed, rule_name=name, progress=False)
            results.append(r)
            steps_of[env] = config.num_updates * config.steps_per_update
            # written at once, so a run that dies (or stalls) later keeps this rule's result
            part = out / env.replace("/", "_").replace("?", "_").replace("&", "_").replace("=", "-")
            part.mkdir(parents=True, exist_ok=True)
            write_json(part / f"{name.replace(':', '_').replace('/', '_')}.partial.json", summarize(task, r))
            print(f"  {env} / {name}: {r.wall_time:.0f} s", flush=True)
        safe = env.replace("/", "_").replace("?", "_").replace("&", "_").replace("=", "-")
        extra = {"backend": getattr(task.env, "backend", None), "seeds": args.seeds, "seed": args.seed}
        summary = write_run(out / safe, task, results, extra)
        table[env] = summary["results"]

    lines = [
        "| env | backend | env steps per seed | " + " | ".join(rule_names) + " | wall time (s) |",
        "|---|---|---|" + "---|" * len(rule_names) + "---|",
    ]
    for env in env_names:
        backend = backend_of[env] or "–"
        cells = [f"{table[env][n]['final_return_mean']:.1f} ± {table[env][n]['final_return_stderr']:.1f}" for n in rule_names]
        wall = " / ".join(f"{table[env][n]['wall_time_s']:.0f}" for n in rule_names)
        lines.append(f"| {env} | {backend} | {steps_of[env]:,} | " + " | ".join(cells) + f" | {wall} |")
    lines.append(
        f"\nFinal return: mean episode return over the last 10% of training, mean ± standard error over "
        f"{args.seeds} seeds. Total wall time {time.time() - t_all:.0f} s."
    )
    text = "\n".join(lines)
    print()
    print(text)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
