"""The `learned-rl` command line (also `python -m learned_rl`).

Every error a user can cause (an unknown task or rule, a bad number) is reported as one line on
stderr with exit code 2, and nothing is written to the output directory.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


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


def _build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="learned-rl", description="Discover and compare reinforcement-learning update rules.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sub.add_parser("tasks", help="list tasks and named task sets")

    t = sub.add_parser("train", help="train fresh agents with an update rule (seeds vmapped)")
    t.add_argument("--rule", required=True, help="a2c | ppo | dpo | lpg:PATH_OR_PRETRAINED")
    t.add_argument("--task", required=True, help="a task name (see `learned-rl tasks`)")
    t.add_argument("--steps", type=_positive_int("--steps"), default=None, help="env steps per seed (default: the rule's default for the task family)")
    t.add_argument("--seeds", type=_positive_int("--seeds"), default=3, help="number of seeds, vmapped (default 3)")
    t.add_argument("--seed", type=_nonneg_int, default=0, help="base seed (default 0)")
    t.add_argument("--out", default=None, help="output directory (default runs/<rule>-<task>)")
    t.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    m = sub.add_parser("meta-train", help="meta-train a learned rule (writes rule.eqx, checkpoints, metrics.csv, curves.png)")
    m.add_argument("kind", choices=["lpg"], help="the learned rule to meta-train")
    m.add_argument("--tasks", required=True, help="a task set (lpg-tabular, ...), a task, or comma-separated tasks")
    m.add_argument("--preset", default="cpu", help="cpu (default) | paper | groove-bench")
    m.add_argument("--steps", type=_positive_int("--steps"), default=None, help="meta-steps (default: the preset's)")
    m.add_argument("--seed", type=_nonneg_int, default=0)
    m.add_argument("--out", default=None, help="run directory (default runs/meta-<kind>-<tasks>)")
    m.add_argument("--resume", action="store_true", help="continue from DIR/checkpoint.eqx")
    m.add_argument("--checkpoint-every", type=float, default=180.0, help="seconds between checkpoints (default 180)")
    m.add_argument("--no-progress", action="store_true")

    c = sub.add_parser("compare", help="train several rules on one task and compare them")
    c.add_argument("--task", required=True)
    c.add_argument("--rules", required=True, help="comma-separated: a2c,ppo,dpo,lpg:PATH_OR_PRETRAINED")
    c.add_argument("--steps", type=_positive_int("--steps"), default=None)
    c.add_argument("--seeds", type=_positive_int("--seeds"), default=3)
    c.add_argument("--seed", type=_nonneg_int, default=0)
    c.add_argument("--out", default=None, help="output directory (default runs/compare-<task>)")
    c.add_argument("--no-progress", action="store_true")

    d = sub.add_parser("demo", help="the main demo: compare A2C and PPO on a grid world")
    d.add_argument("--task", default="gridworld/dense")
    d.add_argument("--steps", type=_positive_int("--steps"), default=None)
    d.add_argument("--seeds", type=_positive_int("--seeds"), default=3)
    d.add_argument("--seed", type=_nonneg_int, default=0)
    d.add_argument("--out", default="runs/demo")
    d.add_argument("--no-progress", action="store_true")
    return p


def _cmd_tasks(args) -> int:
    import tasks

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


def compare(task_name: str, rule_names: list[str], *, steps, seeds: int, seed: int, out: Path, progress: bool, extra_config=None):
    """Validate everything, then train each rule (S vmapped seeds each) and write one run
    directory: config.json, metrics.csv, summary.json, curves.png and results.md.

    A rule that cannot run on the task (e.g. a categorical-policy rule on continuous actions) is
    reported in `summary.json` under ``"skipped"`` and in results.md, not crashed on; an unknown
    rule name or a broken rule file is an error before anything runs.
    """
    import tasks

    from ._experiment import run_seeds, write_results_md, write_run
    from ._registry import make_rule

    if not rule_names:
        raise ValueError("no rules given")
    if len(set(rule_names)) != len(rule_names):
        raise ValueError(f"duplicate rules in {','.join(rule_names)}")
    task = tasks.make(task_name)
    plans, skipped = [], {}
    for name in rule_names:
        rule = make_rule(name)
        try:
            config = rule.default_config(task)
            if steps is not None:
                config = config.replace(total_steps=steps)
            if task.continuous_actions:
                raise ValueError(f"{name} has a categorical policy; task {task.name!r} has continuous actions")
        except ValueError as e:
            if len(rule_names) == 1:
                raise
            skipped[name] = str(e)
            continue
        plans.append((name, rule, config))
    if not plans:
        raise ValueError(f"no rule can run on {task.name!r}: " + "; ".join(f"{k}: {v}" for k, v in skipped.items()))
    results = [
        run_seeds(rule, task, config, num_seeds=seeds, seed=seed, rule_name=name, progress=progress)
        for name, rule, config in plans
    ]
    summary = write_run(out, task, results, extra_config)
    if skipped:
        summary["skipped"] = skipped
        from ._experiment import write_json

        write_json(out / "summary.json", summary)
    write_results_md(out / "results.md", summary)
    return task, results, summary


def _print_table(summary) -> None:
    rows = summary["results"]
    has_norm = any("normalized_return" in r for r in rows.values())
    head = f"{'rule':<12}{'final return':>22}" + (f"{'fraction of optimal':>22}" if has_norm else "") + f"{'seeds':>7}{'env steps':>12}{'time (s)':>10}"
    print(f"\nTask: {summary['task']}")
    print(head)
    print("-" * len(head))
    for name, r in rows.items():
        line = f"{name:<12}{r['final_return_mean']:>13.3f} ± {r['final_return_stderr']:<6.3f}"
        if has_norm:
            line += f"{r.get('normalized_return', float('nan')):>13.3f} ± {r.get('normalized_return_stderr', float('nan')):<6.3f}"
        line += f"{r['seeds']:>7}{r['env_steps']:>12}{r['wall_time_s']:>10.1f}"
        print(line)


def _cmd_train(args) -> int:
    out = _out_dir(args, f"runs/{args.rule.replace(':', '-').replace('/', '_')}-{args.task.replace('/', '_')}")
    _, _, summary = compare(args.task, [args.rule], steps=args.steps, seeds=args.seeds, seed=args.seed, out=out, progress=not args.no_progress, extra_config={"command": "train", "seed": args.seed})
    _print_table(summary)
    print(f"\nWrote {out}/config.json, metrics.csv, summary.json, curves.png, results.md")
    return 0


def _cmd_compare(args) -> int:
    rules = [r.strip() for r in args.rules.split(",") if r.strip()]
    out = _out_dir(args, f"runs/compare-{args.task.replace('/', '_')}")
    _, _, summary = compare(args.task, rules, steps=args.steps, seeds=args.seeds, seed=args.seed, out=out, progress=not args.no_progress, extra_config={"command": "compare", "seed": args.seed})
    _print_table(summary)
    for name, why in summary.get("skipped", {}).items():
        print(f"{name}: not run ({why})")
    print(f"\nWrote {out}/config.json, metrics.csv, summary.json, curves.png, results.md")
    return 0


def _cmd_demo(args) -> int:
    out = _out_dir(args, "runs/demo")
    print(f"Demo: A2C vs PPO on {args.task}, {args.seeds} seeds each (vmapped).")
    _, _, summary = compare(args.task, ["a2c", "ppo"], steps=args.steps, seeds=args.seeds, seed=args.seed, out=out, progress=not args.no_progress, extra_config={"command": "demo", "seed": args.seed})
    _print_table(summary)
    print(f"\nWrote {out}/config.json, metrics.csv, summary.json, curves.png, results.md")
    return 0


def _cmd_meta_train(args) -> int:
    from .meta._run import run_meta_train

    if not args.checkpoint_every > 0:
        raise ValueError("--checkpoint-every must be positive")
    out = _out_dir(args, f"runs/meta-{args.kind}-{args.tasks.replace('/', '_').replace(',', '+')}")
    meta = run_meta_train(
        args.kind, args.tasks, preset=args.preset, steps=args.steps, seed=args.seed, out=out,
        resume=args.resume, progress=not args.no_progress, checkpoint_every=args.checkpoint_every,
    )
    print(f"Meta-trained {meta['meta_steps']} steps ({meta['env_steps']} env steps) on {', '.join(meta['tasks'])}.")
    print(f"Preferred agent arm: learning rate {meta['preferred_arm']['learning_rate']:g}, alpha_y {meta['preferred_arm']['alpha_y']:g}.")
    print(f"Wrote {out}/rule.eqx, checkpoint.eqx, metrics.csv, curves.png")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
        return {"tasks": _cmd_tasks, "train": _cmd_train, "compare": _cmd_compare, "meta-train": _cmd_meta_train, "demo": _cmd_demo}[args.command](args)
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


if __name__ == "__main__":
    sys.exit(main())
