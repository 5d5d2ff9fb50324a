"""The `learned-rl` command line (also `python -m learned_rl`).

Every error a user can cause (an unknown task or rule, a bad number) is reported as one line on
stderr with exit code 2, and nothing is written to the output directory.

The one module allowed to import our own modules inside functions: each command imports what it
runs only once its arguments are parsed, because importing the experiment layer imports gymnax,
which starts the XLA backend, and `meta-train --distributed` must call
`jax.distributed.initialize()` before that (`tests/test_layers.py` names this exemption).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


TRACK_HELP = "write the training metrics as TensorBoard event files under OUT/tensorboard as the run goes (needs the track extra)"


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump
        raise _UserError(f"{self.prog}: {message}")


class _UserError(Exception):
    pass


def _positive_int(name):
    def parse(s):
        try:
            v = int(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, got {s!r}") from None
        if v <= 0:
            raise argparse.ArgumentTypeError(f"{name} must be positive, got {v}")
        return v

    return parse


def _nonneg_int(s):
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"seed must be an integer, got {s!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"seed must be non-negative, got {v}")
    return v


RECIPE_HELP = (
    "start from a published codebase's configuration instead of the CPU-sized family default: purejaxrl-brax | "
    "purejaxrl-minatar (PPO, DPO and LPO rules; --steps and --set apply on top)"
)


DEMO_TASK = "chain/short"  # not in the shipped rule's meta-training set (lpg-tabular)


SET_HELP = (
    "replace a hyperparameter of the rule (num_minibatches, num_epochs, gamma, gae_lambda, ent_coef, ...) or of its "
    "TrainConfig (learning_rate, num_envs, rollout_len, optimizer, max_grad_norm, anneal_lr, ...) or of its agent "
    "(agent.torso, agent.hidden=[256,256], agent.activation, ...); repeatable"
)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("learned-rl")
    except PackageNotFoundError:  # run from a source tree that is not installed
        return "unknown (not installed)"


def _build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="learned-rl", description="Discover and compare reinforcement-learning update rules.")
    p.add_argument("--version", action="version", version=f"learned-rl {_version()}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sub.add_parser("tasks", help="list tasks and named task sets")

    t = sub.add_parser("train", help="train fresh agents with an update rule (seeds vmapped)")
    t.add_argument("--rule", required=True, help="a2c | ppo | dpo | lpg:PATH_OR_PRETRAINED | lpg-v:PATH_OR_PRETRAINED | lpo:PATH_OR_PRETRAINED")
    t.add_argument("--task", required=True, help="a task name (see `learned-rl tasks`)")
    t.add_argument("--steps", type=_positive_int("--steps"), default=None, help="env steps per seed (default: the rule's default for the task family)")
    t.add_argument("--seeds", type=_positive_int("--seeds"), default=3, help="number of seeds, vmapped (default 3)")
    t.add_argument("--seed", type=_nonneg_int, default=0, help="base seed (default 0)")
    t.add_argument("--out", default=None, help="output directory (default runs/<rule>-<task>)")
    t.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help=SET_HELP)
    t.add_argument("--recipe", default=None, metavar="NAME", help=RECIPE_HELP)
    t.add_argument("--track", choices=["tensorboard"], default=None, help=TRACK_HELP)
    t.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    m = sub.add_parser("meta-train", help="meta-train a learned rule (writes rule.eqx, checkpoints, metrics.csv, curves.png)")
    m.add_argument("kind", choices=["lpg", "lpo"], help="lpg (truncated meta-gradients, or ES with --estimator es) | lpo (a PPO drift, evolution strategies)")
    m.add_argument("--tasks", default=None, help="a task set (lpg-tabular, ...), a task, or comma-separated tasks")
    m.add_argument("--task", default=None, help="lpo: the meta-training task (same as --tasks)")
    m.add_argument("--preset", default="cpu", help="lpg: cpu (default) | paper | groove-bench; lpo: cpu (default) | paper")
    m.add_argument("--meta-steps", type=_positive_int("--meta-steps"), default=None, help="meta-steps (ES: generations; default: the preset's)")
    m.add_argument("--steps", type=_positive_int("--steps"), default=None, help=argparse.SUPPRESS)  # the old name of --meta-steps
    m.add_argument("--temporal", action="store_true", help="a temporally-aware rule: TA-LPG (the meta-network reads n/N and log N) or TA-LPO (the drift reads [x, (n/N)x])")
    m.add_argument("--estimator", choices=["tmg", "tes", "es"], default=None, help="lpg: tmg (truncated meta-gradients, default) | tes (truncated ES on the same unrolls) | es (evolution strategies over whole lifetimes)")
    m.add_argument("--es-strategy", default=None, metavar="NAME", help="ES: openes (ours, default) | evosax's snes, pgpe, cma_es, open_es")
    m.add_argument("--generations", type=_positive_int("--generations"), default=None, help="ES: generations (the same as --meta-steps)")
    m.add_argument("--population", type=_positive_int("--population"), default=None, help="ES: population (default: lpo 32, lpg 16)")
    m.add_argument("--inner-env-steps", type=_positive_int("--inner-env-steps"), default=None, help="lpo: env steps of each member's training run (default 100000)")
    m.add_argument("--inner-steps", type=_positive_int("--inner-steps"), default=None, help=argparse.SUPPRESS)  # the old name of --inner-env-steps
    m.add_argument("--variant", choices=["y", "v"], default=None, help="lpg: y (LPG, default: the rule learns what to predict) | v (LPG-V: a TD(λ) value instead of y; only π̂ is meta-learned)")
    m.add_argument("--seed", type=_nonneg_int, default=0)
    m.add_argument("--out", default=None, help="run directory (default runs/meta-<kind>-<tasks>)")
    m.add_argument("--resume", action="store_true", help="continue from DIR/checkpoint.eqx")
    m.add_argument("--init-rule", default=None, metavar="PATH_OR_PRETRAINED", help="start from a saved rule's meta-parameters (warm start), e.g. lpg_tabular")
    m.add_argument("--max-minutes", type=float, default=None, help="stop after this many minutes (compilation included) with a checkpoint and rule.eqx; --resume continues")
    m.add_argument("--checkpoint-every", type=float, default=180.0, help="seconds between checkpoints (default 180)")
    m.add_argument("--snapshot-every", type=int, default=None, metavar="N", help="also write the rule every N meta-steps (ES: generations) to OUT/snapshots/rule_STEP.eqx, to choose the step to keep on held-out tasks")
    m.add_argument("--devices", default=None, help="split the population (LPG lifetimes, ES members) over N devices or 'all' (default: one device)")
    m.add_argument("--distributed", action="store_true", help="several hosts: call jax.distributed.initialize() first (run the same command on every host; use with --devices all)")
    m.add_argument("--coordinator", default=None, metavar="HOST:PORT", help="with --distributed: process 0's address (omit on Slurm, Open MPI or TPU pods: detected automatically)")
    m.add_argument("--num-processes", type=_positive_int("--num-processes"), default=None, help="with --distributed: number of processes (hosts)")
    m.add_argument("--process-id", type=_nonneg_int, default=None, help="with --distributed: this process's index, 0 .. N-1")
    m.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="override a preset field, e.g. --set lifetimes_per_task=8 --set learning_rates=[10,20] (repeatable)")
    m.add_argument("--track", choices=["tensorboard"], default=None, help="write each metrics.csv row as TensorBoard scalars under OUT/tensorboard/meta as the run goes (needs the track extra)")
    m.add_argument("--no-progress", action="store_true")

    c = sub.add_parser("compare", help="train several rules on one task and compare them")
    c.add_argument("--task", required=True)
    c.add_argument("--rules", required=True, help="comma-separated: a2c,ppo,dpo,lpg:PATH_OR_PRETRAINED,lpo:PATH_OR_PRETRAINED")
    c.add_argument("--steps", type=_positive_int("--steps"), default=None)
    c.add_argument("--seeds", type=_positive_int("--seeds"), default=3)
    c.add_argument("--seed", type=_nonneg_int, default=0)
    c.add_argument("--out", default=None, help="output directory (default runs/compare-<task>)")
    c.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help=SET_HELP + " (applied to every rule that has the field)")
    c.add_argument("--recipe", default=None, metavar="NAME", help=RECIPE_HELP)
    c.add_argument("--track", choices=["tensorboard"], default=None, help=TRACK_HELP)
    c.add_argument("--no-progress", action="store_true")

    sw = sub.add_parser("sweep", help="train a grid of hyperparameters × seeds as one compiled program")
    sw.add_argument("--rule", required=True, help="a2c | ppo | dpo | lpg:... | lpo:...")
    sw.add_argument("--task", required=True)
    sw.add_argument("--set", action="append", default=[], metavar="FIELD=V1,V2,...", required=True,
                    help="a swept field and its values: learning_rate, or a float field of the rule (gamma, gae_lambda, ent_coef, "
                         "vf_coef, drift.epsilon, drift.alpha, drift.beta, ...); repeat for a grid")
    sw.add_argument("--steps", type=_positive_int("--steps"), default=None, help="env steps per run (default: the rule's default)")
    sw.add_argument("--recipe", default=None, metavar="NAME", help=RECIPE_HELP)
    sw.add_argument("--seeds", type=_positive_int("--seeds"), default=3, help="seeds per point (default 3)")
    sw.add_argument("--seed", type=_nonneg_int, default=0)
    sw.add_argument("--out", default=None, help="output directory (default runs/sweep-<rule>-<task>)")
    sw.add_argument("--no-progress", action="store_true")

    tr = sub.add_parser("transfer", help="compare a rule with A2C on every task of a suite (A2C-normalised returns, IQM)")
    tr.add_argument("--rule", required=True, help="lpg:PATH_OR_PRETRAINED (or any rule but a2c)")
    tr.add_argument("--suite", required=True, help="lpg-random | lpg-chain | minatar | a task set | NAME,NAME,...")
    tr.add_argument("--seeds", type=_positive_int("--seeds"), default=3)
    tr.add_argument("--seed", type=_nonneg_int, default=0)
    tr.add_argument("--steps", type=_positive_int("--steps"), default=None, help="env steps per seed (default: each family's default)")
    tr.add_argument("--validate", default=None, metavar="TASKS",
                    help="choose the rule's hyperparameters on these tasks (never test tasks) and seeds before the test runs")
    tr.add_argument("--grid", action="append", default=[], metavar="FIELD=V1,V2,...",
                    help="with --validate: the values to choose from (learning_rate, or a float field of the rule such as alpha_y); repeat for a grid")
    tr.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help=SET_HELP + " (applied to every rule that has the field, A2C included, in validation and test runs)")
    tr.add_argument("--validation-seeds", type=_positive_int("--validation-seeds"), default=None, help="seeds per validation point (default --seeds)")
    tr.add_argument("--validation-seed", type=_nonneg_int, default=None, help="base seed of the validation runs (default --seed + 1)")
    tr.add_argument("--validation-steps", type=_positive_int("--validation-steps"), default=None, help="env steps per validation run (default --steps)")
    tr.add_argument("--out", default=None, help="output directory (default runs/transfer-<rule>-<suite>)")
    tr.add_argument("--no-progress", action="store_true")

    se = sub.add_parser("select", help="choose one of several rules (a run's snapshots) on validation tasks, against A2C and the random policy")
    se.add_argument("--rules", required=True, help="comma-separated lpg:PATH_OR_PRETRAINED / lpo:... names; a directory (lpg:runs/NAME/snapshots) stands for every rule file in it")
    se.add_argument("--validate", required=True, metavar="TASKS", help="the validation tasks (a task set, a task, or NAME,NAME,...); never the tasks the chosen rule is then reported on")
    se.add_argument("--seeds", type=_positive_int("--seeds"), default=3)
    se.add_argument("--seed", type=_nonneg_int, default=0)
    se.add_argument("--steps", type=_positive_int("--steps"), default=None, help="env steps per seed (default: each family's default)")
    se.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help=SET_HELP + " (applied to every rule that has the field, A2C included)")
    se.add_argument("--out", default=None, help="output directory (default runs/select)")
    se.add_argument("--no-progress", action="store_true")

    an = sub.add_parser("analyse", help="analysis plots: what y predicts (LPG), drift functions (PPO/DPO/LPO)")
    an_sub = an.add_subparsers(dest="analysis", required=True, parser_class=_Parser)
    ap = an_sub.add_parser("predictions", help="regress an LPG agent's y(s) on the true values of its policy")
    ap.add_argument("--rule", required=True, help="lpg:PATH_OR_PRETRAINED")
    ap.add_argument("--task", default="gridworld/dense", help="a tabular task")
    ap.add_argument("--steps", type=_positive_int("--steps"), default=None)
    ap.add_argument("--seed", type=_nonneg_int, default=0)
    ap.add_argument("--out", default="runs/analyse-predictions")
    ad = an_sub.add_parser("drift", help="plot f(r, A) of mirror-learning rules")
    ad.add_argument("--rules", default="ppo,dpo", help="comma-separated: ppo,dpo,lpo:PATH_OR_PRETRAINED")
    ad.add_argument("--out", default="runs/analyse-drift")

    ev = sub.add_parser("evaluate", help="evaluation episodes of the agents a train or compare run saved (sampled and greedy)")
    ev.add_argument("run_dir", help="a run directory written by `train` or `compare` (holds agents.eqx)")
    ev.add_argument("--episodes", type=_positive_int("--episodes"), default=16, help="episodes per seed (default 16)")
    ev.add_argument("--seed", type=_nonneg_int, default=0, help="evaluation seed (default 0)")
    ev.add_argument("--max-steps", type=_positive_int("--max-steps"), default=None, help="episode cap (default: the environment's)")

    d = sub.add_parser("demo", help="the main demo: the shipped LPG rule vs A2C on a task it was not meta-trained on")
    d.add_argument("--rule", default="lpg:lpg_tabular")
    d.add_argument("--task", default=DEMO_TASK)
    d.add_argument("--steps", type=_positive_int("--steps"), default=None)
    d.add_argument("--seeds", type=_positive_int("--seeds"), default=10, help="seeds per rule, vmapped (default 10: chain outcomes vary a lot per seed)")
    d.add_argument("--seed", type=_nonneg_int, default=0)
    d.add_argument("--out", default="runs/demo")
    d.add_argument("--no-progress", action="store_true")
    return p


def _cmd_tasks(args) -> int:
    from . import tasks

    print("Tasks:")
    for name in tasks.list_tasks():
        print(f"  {name}")
    print("\nTask sets:")
    for name, members in tasks.TASK_SETS.items():
        print(f"  {name}: {', '.join(members)}")
    print("\nAny gymnax id (e.g. CartPole-v1, Breakout-MinAtar) is also accepted.")
    return 0


def _out_dir(args, default: str) -> Path:
    out = Path(args.out) if args.out else Path(default)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {str(out)!r} exists and is not a directory")
    return out


def _print_table(summary) -> None:
    rows = summary["results"]
    has_norm = any("normalized_return" in r for r in rows.values())
    w = max(12, 2 + max(len(n) for n in rows))
    head = f"{'rule':<{w}}{'final return':>22}" + (f"{'fraction of optimal':>22}" if has_norm else "") + f"{'seeds':>7}{'env steps':>12}{'time (s)':>10}"
    print(f"\nTask: {summary['task']}")
    print(head)
    print("-" * len(head))
    for name, r in rows.items():
        line = f"{name:<{w}}{r['final_return_mean']:>13.3f} ± {r['final_return_stderr']:<6.3f}"
        if has_norm:
            line += f"{r.get('normalized_return', float('nan')):>13.3f} ± {r.get('normalized_return_stderr', float('nan')):<6.3f}"
        line += f"{r['seeds']:>7}{r['env_steps']:>12}{r['wall_time_s']:>10.1f}"
        print(line)


def _cmd_train(args) -> int:
    return _cmd_compare(args, command="train", rules=[args.rule], default_out=f"runs/{args.rule.replace(':', '-').replace('/', '_')}-{args.task.replace('/', '_')}")


def _cmd_compare(args, command: str = "compare", rules: list[str] | None = None, default_out: str | None = None) -> int:
    from ._experiment import compare
    from ._tracking import make_tracker

    rules = rules or [r.strip() for r in args.rules.split(",") if r.strip()]
    out = _out_dir(args, default_out or f"runs/compare-{args.task.replace('/', '_')}")
    tracker = make_tracker(args.track, out)
    try:
        _, _, summary = compare(
            args.task, rules, steps=args.steps, seeds=args.seeds, seed=args.seed, out=out, progress=not args.no_progress,
            extra_config={"command": command, "seed": args.seed, **({"track": args.track} if args.track else {})}, sets=_parse_sets(args.set),
            callback=tracker, recipe=args.recipe,
        )
    finally:
        if tracker is not None:
            tracker.close()
    _print_table(summary)
    for name, why in summary.get("skipped", {}).items():
        print(f"{name}: not run ({why})")
    print(f"\nWrote {out}/config.json, metrics.csv, summary.json, curves.png, results.md, agents.eqx" + (", tensorboard/" if tracker else ""))
    return 0


def _parse_grid(items: list[str], flag: str = "--set") -> dict[str, list[float]]:
    """``--set FIELD=V1,V2,...`` of `sweep` (``--grid`` of `transfer`): each field's values as numbers."""
    grid: dict[str, list[float]] = {}
    for item in items:
        field, eq, raw = item.partition("=")
        field = field.strip()
        if not eq or not field:
            raise ValueError(f"{flag} expects FIELD=V1,V2,..., got {item!r}")
        if field in grid:
            raise ValueError(f"{flag} {field} given twice")
        try:
            values = [float(v) for v in raw.split(",")]
        except ValueError:
            raise ValueError(f"{flag} {field}: values must be numbers separated by commas, got {raw!r}") from None
        if len(set(values)) != len(values):
            raise ValueError(f"{flag} {field}: repeated values in {raw!r}")
        grid[field] = values
    return grid


def _cmd_sweep(args) -> int:
    from ._defaults import get_recipe
    from ._experiment import apply_recipe, run_sweep, write_sweep
    from ._registry import make_rule
    from .tasks import make as make_task

    grid = _parse_grid(args.set)
    task = make_task(args.task)
    rule = make_rule(args.rule)
    rule.check_task(task)
    if args.recipe is not None:
        rule, config = apply_recipe(get_recipe(args.recipe), rule, task, args.rule)
    else:
        config = rule.default_config(task)
    if args.steps is not None:
        config = config.replace(total_steps=args.steps)
    out = _out_dir(args, f"runs/sweep-{args.rule.replace(':', '-').replace('/', '_')}-{args.task.replace('/', '_')}")
    result = run_sweep(rule, task, config, grid, num_seeds=args.seeds, seed=args.seed, rule_name=args.rule, progress=not args.no_progress)
    summary = write_sweep(out, task, result, {"command": "sweep", "seed": args.seed, **({"recipe": args.recipe} if args.recipe else {})})
    print(f"\nSweep of {args.rule} on {task.name}: {len(result.points)} points × {args.seeds} seeds in one program, {result.wall_time:.1f} s")
    names = list(grid)
    print("  ".join(f"{n:>14}" for n in names) + f"{'final return':>24}")
    for r in summary["points"]:
        mark = "  <- best" if r["point"] == summary["best"] else ""
        print("  ".join(f"{r['point'][n]:>14g}" for n in names) + f"{r['final_return_mean']:>15.2f} ± {r['final_return_stderr']:<6.2f}{mark}")
    print(f"\nWrote {out}/config.json, sweep.json, results.md, sweep.png")
    return 0


def _cmd_evaluate(args) -> int:
    from ._evaluate import evaluate_run

    rep = evaluate_run(args.run_dir, episodes=args.episodes, seed=args.seed, max_steps=args.max_steps)
    print(f"\nTask: {rep['task']}, {rep['episodes']} evaluation episodes per seed")
    head = f"{'rule':<24}{'sampled':>20}{'greedy':>20}{'greedy IQM [95% CI]':>30}"
    print(head)
    print("-" * len(head))
    for name, r in rep["rules"].items():
        s, g = r["sampled"], r["greedy"]
        ci = f"{g['iqm']:.2f} [{g['iqm_ci95'][0]:.2f}, {g['iqm_ci95'][1]:.2f}]"
        print(f"{name:<24}{s['mean']:>12.2f} ± {s['stderr']:<5.2f}{g['mean']:>12.2f} ± {g['stderr']:<5.2f}{ci:>30}")
    print(f"\nWrote {args.run_dir}/evaluation.json")
    return 0


def _cmd_demo(args) -> int:
    from ._experiment import compare
    from ._registry import make_rule

    out = _out_dir(args, "runs/demo")
    make_rule(args.rule)  # a bad rule fails before anything runs
    where = " (it was meta-trained on the lpg-tabular grid worlds only)" if args.rule == "lpg:lpg_tabular" else ""
    print(f"Demo: the learned rule {args.rule} trains fresh agents on {args.task}{where},")
    print(f"compared with A2C (tuned defaults); {args.seeds} seeds each, vmapped.")
    _, _, summary = compare(args.task, [args.rule, "a2c"], steps=args.steps, seeds=args.seeds, seed=args.seed, out=out, progress=not args.no_progress, extra_config={"command": "demo", "seed": args.seed})
    _print_table(summary)
    print(f"\nWrote {out}/config.json, metrics.csv, summary.json, curves.png (learning curves), results.md")
    return 0


def _cmd_transfer(args) -> int:
    from ._transfer import transfer

    slug = f"{args.rule}-{args.suite}".replace(":", "-").replace("/", "_").replace(",", "+")
    out = _out_dir(args, f"runs/transfer-{slug}")
    grid = _parse_grid(args.grid, "--grid") if args.grid else None
    report = transfer(args.rule, args.suite, seeds=args.seeds, seed=args.seed, steps=args.steps, out=out, progress=not args.no_progress,
                      validate=args.validate, grid=grid, validation_seeds=args.validation_seeds, validation_seed=args.validation_seed,
                      validation_steps=args.validation_steps, sets=_parse_sets(args.set))
    print((out / "transfer.md").read_text())
    print(f"Wrote {out}/transfer.json, transfer.md, transfer.png and one compare run per task.")
    return 0 if report else 1


def _cmd_select(args) -> int:
    from ._transfer import select

    out = _out_dir(args, "runs/select")
    rules = [r.strip() for r in args.rules.split(",") if r.strip()]
    report = select(rules, args.validate, seeds=args.seeds, seed=args.seed, steps=args.steps, out=out, progress=not args.no_progress, sets=_parse_sets(args.set))
    print((out / "select.md").read_text())
    print(f"Wrote {out}/select.json, select.md and one compare run per validation task.")
    return 0


def _cmd_analyse(args) -> int:
    from ._analysis import drift_curves, prediction_semantics

    if args.analysis == "predictions":
        out = _out_dir(args, "runs/analyse-predictions")
        r = prediction_semantics(args.rule, args.task, steps=args.steps, seed=args.seed, out=out)
        print(f"{r['rule']} on {r['task']} ({r['env_steps']:,} env steps, final return {r['final_return']:.3f}):")
        print(f"  {r['states_analysed']} states; y has {r['prediction_dim']} components, mean entropy {r['y_entropy_mean']:.3f}")
        print(f"  linear regression y(s) -> V(s): R² {r['r2_linear']:.3f} (5-fold cross-validated {r['r2_linear_cv5']:.3f})")
        print(f"Wrote {out}/predictions.png, predictions.json")
    else:
        out = _out_dir(args, "runs/analyse-drift")
        rules = [r.strip() for r in args.rules.split(",") if r.strip()]
        drift_curves(rules, out=out)
        print(f"Wrote {out}/drift.png, drift.json ({', '.join(rules)})")
    return 0


def _parse_sets(items: list[str]) -> dict:
    """``--set FIELD=VALUE`` pairs; VALUE is read as JSON (numbers, lists), else as a string."""
    import json

    out = {}
    for item in items:
        field, eq, raw = item.partition("=")
        if not eq or not field.strip():
            raise ValueError(f"--set expects FIELD=VALUE, got {item!r}")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out[field.strip()] = value
    return out


def _cmd_meta_train(args) -> int:
    if not args.checkpoint_every > 0:
        raise ValueError("--checkpoint-every must be positive")
    if args.snapshot_every is not None and args.snapshot_every <= 0:
        raise ValueError(f"--snapshot-every must be a positive number of meta-steps, got {args.snapshot_every}")
    if args.tasks is not None and args.task is not None and args.tasks != args.task:
        raise ValueError("give either --task or --tasks, not both")
    spec = args.tasks if args.tasks is not None else args.task
    if spec is None:
        raise ValueError(f"meta-train {args.kind}: --{'task' if args.kind == 'lpo' else 'tasks'} is required")
    sets = _parse_sets(args.set)
    overrides: dict = {}
    # one name per count: --meta-steps (or ES's --generations) for meta-steps, --inner-env-steps for
    # the env steps of an LPO member's run; the old names work, with a notice
    for old_flag, new_flag, attr in (("--steps", "--meta-steps", "steps"), ("--inner-steps", "--inner-env-steps", "inner_steps")):
        if getattr(args, attr) is not None:
            print(f"notice: meta-train {old_flag} is deprecated; it is {new_flag} (it still works)", file=sys.stderr)
    given = {f: v for f, v in (("--meta-steps", args.meta_steps), ("--generations", args.generations), ("--steps", args.steps)) if v is not None}
    if len(set(given.values())) > 1:
        raise ValueError(f"give one of {', '.join(given)}: they all count meta-steps")
    steps = next(iter(given.values()), None)
    if args.inner_steps is not None and args.inner_env_steps is not None and args.inner_steps != args.inner_env_steps:
        raise ValueError("give --inner-env-steps or its old name --inner-steps, not both")
    inner_env_steps = args.inner_env_steps if args.inner_env_steps is not None else args.inner_steps
    if args.kind == "lpo":
        if args.variant is not None or args.estimator is not None:
            raise ValueError(f"{'--variant' if args.variant is not None else '--estimator'} is an lpg option (meta-train lpg); lpo always uses ES")
        overrides = {"population": args.population, "inner_env_steps": inner_env_steps}
        es = True
    else:
        es = (args.estimator or sets.get("estimator", "tmg")) == "es"
        if inner_env_steps is not None:
            raise ValueError("--inner-env-steps is an lpo option (meta-train lpo); lpg lifetimes last lifetime_updates (--set lifetime_updates=N)")
        if not es:
            for flag, v in (("--generations", args.generations), ("--population", args.population), ("--es-strategy", args.es_strategy)):
                if v is not None:
                    raise ValueError(f"{flag} is an ES option: meta-train lpg --estimator es (or meta-train lpo)")
        overrides = {"variant": args.variant, "estimator": args.estimator, "population": args.population}
    overrides.update(es_strategy=args.es_strategy, temporal=True if args.temporal else None)
    dist = (args.coordinator, args.num_processes, args.process_id)
    if not args.distributed and any(v is not None for v in dist):
        raise ValueError("--coordinator, --num-processes and --process-id need --distributed")
    if args.distributed and any(v is not None for v in dist) and any(v is None for v in dist):
        raise ValueError("--distributed: give all of --coordinator, --num-processes and --process-id, or none (auto-detect)")
    if args.process_id is not None and args.num_processes is not None and args.process_id >= args.num_processes:
        raise ValueError(f"--process-id {args.process_id} must be less than --num-processes {args.num_processes}")
    overrides = {**{k: v for k, v in overrides.items() if v is not None}, **sets} or None
    out = _out_dir(args, f"runs/meta-{args.kind}-{spec.replace('/', '_').replace(',', '+')}")
    if args.distributed:
        import os

        import jax

        if "JAX_CPU_COLLECTIVES_IMPLEMENTATION" not in os.environ:
            # CPU processes need a collectives backend for cross-host all-reduces (no effect on GPU)
            jax.config.update("jax_cpu_collectives_implementation", "gloo")
        # before any JAX computation; afterwards jax.devices() lists every host's devices
        jax.distributed.initialize(coordinator_address=args.coordinator, num_processes=args.num_processes, process_id=args.process_id)
    from ._tracking import make_tracker
    from .meta._run import run_meta_train  # after jax.distributed.initialize (see the module docstring)

    tracker = make_tracker(args.track, out, resume=args.resume)
    try:
        meta = run_meta_train(
            args.kind, spec, preset=args.preset, steps=steps, seed=args.seed, out=out,
            resume=args.resume, progress=not args.no_progress, checkpoint_every=args.checkpoint_every,
            log_every=1 if es else 10, preset_overrides=overrides, devices=args.devices,
            init_rule=args.init_rule, max_seconds=None if args.max_minutes is None else 60.0 * args.max_minutes,
            on_row=None if tracker is None else tracker.log_row, snapshot_every=args.snapshot_every,
        )
    finally:
        if tracker is not None:
            tracker.close()
    unit = "generations" if es else "steps"
    print(f"Meta-trained {meta['meta_steps']} {unit} ({meta['env_steps']} env steps) on {', '.join(meta['tasks'])}.")
    if "families" in meta:
        for fam, r in meta["families"].items():
            print(f"Preferred agent arm ({fam} agents, {r['optimizer']}): learning rate {r['learning_rate']:g}, alpha_y {r['alpha_y']:g}.")
    elif "preferred_arm" in meta:
        print(f"Preferred agent arm: learning rate {meta['preferred_arm']['learning_rate']:g}, alpha_y {meta['preferred_arm']['alpha_y']:g}.")
    print(f"Wrote {out}/rule.eqx, checkpoint.eqx, metrics.csv, curves.png" + (", tensorboard/" if tracker else ""))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
        return {"tasks": _cmd_tasks, "train": _cmd_train, "compare": _cmd_compare, "meta-train": _cmd_meta_train, "demo": _cmd_demo, "evaluate": _cmd_evaluate, "sweep": _cmd_sweep, "transfer": _cmd_transfer, "select": _cmd_select, "analyse": _cmd_analyse}[args.command](args)
    except _UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError, FloatingPointError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `learned-rl tasks | head`: the reader left; stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush does not raise again
        return 0


if __name__ == "__main__":
    sys.exit(main())
