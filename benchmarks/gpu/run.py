"""One GPU run, prepared to the minute: LPG meta-training on the whole LPG distribution, the
rule's transfer to unseen tasks against A2C, and a many-seed PPO sweep timing, each stage inside
its share of a wall-clock budget, writing what it finished to `--out` as it goes.

    bash benchmarks/gpu/run.sh OUT_DIR [--budget-min 8.5] [flags of this script]

`run.sh` installs the wheels carried in `.whl/` (nothing from the network; see docs/performance.md, A GPU
section) and runs this script. `--tiny` shrinks every stage to seconds on a CPU (the test suite's
dry run). Stages, in order:

1. ``meta``: `learned-rl meta-train lpg` on ``--tasks`` (default ``lpg-all``: tabular grid worlds
   with lookup-table agents, random grid worlds and the distractor chain with MLP agents, the other
   chains with tables) with ``--preset`` and ``--set`` overrides, warm-started from
   ``--init-rule``, stopped at its share of the budget (``max_seconds``) with its rule written.
2. ``transfer``: the new rule and A2C, paired seeds that meta-training never used, on each task
   of ``--eval-tasks`` at ``--eval-steps`` env steps, with the random policy's return beside them;
   a task whose A2C does not beat the random policy gets no normalised score.
3. ``sweep``: PPO on CartPole-v1 with ``--sweep-seeds`` vmapped seeds: compile and run time, env
   steps per second.

Outputs (at most 8 files, so that a remote machine can hand them all back): ``log.txt``,
``results.json`` (every stage's figures, rewritten after each stage), ``results.md``,
``lpg_all_gpu.eqx`` (the rule), ``meta_metrics.csv`` and ``meta_curves.png``. Run directories
(checkpoints, per-task compare runs) go to ``--work`` (default: a new temporary directory).
``--stages transfer --rule PATH`` evaluates an existing rule instead of meta-training one.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

DEFAULT_EVAL = "random_gridworld/small,random_gridworld/dense,Breakout-MinAtar,SpaceInvaders-MinAtar,Asterix-MinAtar,Freeway-MinAtar,CartPole-v1,Acrobot-v1"


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="output directory (created)")
    p.add_argument("--budget-min", type=float, default=8.5, help="wall-clock budget of the whole script, minutes (default 8.5)")
    p.add_argument("--meta-share", type=float, default=0.55, help="share of the budget for meta-training (default 0.55)")
    p.add_argument("--tasks", default="lpg-all", help="meta-training tasks (default lpg-all)")
    p.add_argument("--preset", default="gpu", help="LPG preset (default gpu)")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="preset overrides, as meta-train --set")
    p.add_argument("--init-rule", default="lpg_tabular", help="warm start (a shipped rule or file; 'none' for random meta-parameters)")
    p.add_argument("--resume-from", default=None, help="a meta-training run directory to continue (its checkpoint) instead of a fresh run")
    p.add_argument("--eval-tasks", default=DEFAULT_EVAL, help="comma-separated transfer tasks")
    p.add_argument("--eval-steps", type=int, default=2_000_000, help="env steps per seed on each transfer task")
    p.add_argument("--eval-seeds", type=int, default=5, help="seeds per rule on each transfer task")
    p.add_argument("--eval-seed", type=int, default=1000, help="base seed of the transfer runs (meta-training never uses 1000+)")
    p.add_argument("--sweep-seeds", type=int, default=2048, help="PPO CartPole vmapped seeds")
    p.add_argument("--sweep-steps", type=int, default=100_000, help="env steps per seed of the sweep")
    p.add_argument("--stages", default="meta,transfer,sweep", help="which stages to run")
    p.add_argument("--rule", default=None, help="rules the transfer stage evaluates besides the one meta-trained (comma-separated files or shipped names)")
    p.add_argument("--work", default=None, help="scratch directory for run directories (default: a new temporary one)")
    p.add_argument("--tiny", action="store_true", help="seconds-sized stages (CPU dry run)")
    return p.parse_args(argv)


class Outputs:
    """The output directory, the log and results.json, and the budget's clock."""

    def __init__(self, out: Path, budget_s: float):
        self.out = out
        self.start = time.time()
        self.budget_s = budget_s
        self.results: dict = {"stages": {}}
        out.mkdir(parents=True, exist_ok=True)
        self.log_file = open(out / "log.txt", "a", buffering=1)

    def elapsed(self) -> float:
        return time.time() - self.start

    def left(self) -> float:
        return self.budget_s - self.elapsed()

    def log(self, msg: str) -> None:
        line = f"[{self.elapsed():7.1f}s] {msg}"
        print(line, flush=True)
        self.log_file.write(line + "\n")

    def save(self) -> None:
        tmp = self.out / "results.json.tmp"
        tmp.write_text(json.dumps(self.results, indent=1, default=float))
        os.replace(tmp, self.out / "results.json")
        (self.out / "results.md").write_text(markdown(self.results))


def markdown(results: dict) -> str:
    lines = ["# GPU run results", ""]
    env = results.get("environment", {})
    if env:
        lines += [f"Machine: {env.get('device', '?')}; jax {env.get('jax', '?')}; {env.get('date', '')}", ""]
    meta = results["stages"].get("meta")
    if meta:
        lines += ["## LPG meta-training", "", "| field | value |", "|---|---|"]
        for k in ("tasks", "preset", "overrides", "init_rule", "meta_steps", "env_steps", "compile_and_first_s", "s_per_meta_step", "env_steps_per_s", "wall_s", "families"):
            if k in meta:
                lines.append(f"| {k} | {json.dumps(meta[k]) if isinstance(meta[k], (dict, list)) else meta[k]} |")
        lines.append("")
    tr = results["stages"].get("transfer")
    if tr and "tasks" in tr:
        rules = tr["rules"]
        lines += [f"## Transfer ({tr['steps']:,} env steps per seed, {tr['seeds']} seeds from {tr['seed']})", "",
                  "| task | " + " | ".join(rules) + " | A2C | random | A2C-normalised (" + ", ".join(rules) + ") | wall s |",
                  "|---|" + "---|" * (len(rules) + 4)]
        for name, e in tr["tasks"].items():
            norm = ", ".join("—" if e["rules"][r]["normalized"] is None else f"{e['rules'][r]['normalized']:.2f} ± {e['rules'][r]['normalized_stderr']:.2f}" for r in rules)
            cells = " | ".join(f"{e['rules'][r]['return']:.2f} ± {e['rules'][r]['return_stderr']:.2f}" for r in rules)
            lines.append(f"| {name} | {cells} | {e['a2c_return']:.2f} ± {e['a2c_return_stderr']:.2f} | {e['random_return']:.2f} | {norm} | {e['wall_time_s']:.0f} |")
        for r, a in (tr.get("aggregate") or {}).items():
            lines += ["", f"{r}: IQM of A2C-normalised scores {a['iqm']:.2f} (95% CI {a['ci95'][0]:.2f}–{a['ci95'][1]:.2f}) over {a['tasks_normalized']} tasks."]
        if tr.get("no_aggregate_because"):
            lines += ["", f"No aggregate: {tr['no_aggregate_because']}."]
        if tr.get("not_run"):
            lines += ["", f"Not run (budget): {', '.join(tr['not_run'])}."]
        lines.append("")
    sw = results["stages"].get("sweep")
    if sw:
        lines += ["## PPO CartPole-v1 sweep", "", f"{sw['seeds']} vmapped seeds × {sw['steps_per_seed']} env steps: compile + run {sw['wall_s']:.1f} s, "
                  f"{sw['env_steps_per_s']:,.0f} env steps/s; final return {sw['final_return_mean']:.1f} (mean over seeds).", ""]
    for name, st in results["stages"].items():
        if "error" in st:
            lines += [f"Stage {name} failed: {st['error']}", ""]
    return "\n".join(lines)


def stage_meta(s: Outputs, args, seconds: float) -> Path | None:
    from learned_rl._cli import _parse_sets
    from learned_rl.meta._run import run_meta_train

    overrides = _parse_sets(args.set)
    work = Path(args.resume_from) if args.resume_from else Path(args.work) / "meta_run"
    init = None if args.init_rule in ("none", "") or args.resume_from else args.init_rule
    s.log(f"meta: {args.tasks}, preset {args.preset}, overrides {overrides}, init {init}, {seconds:.0f} s, run dir {work}")
    t0 = time.time()
    steps_before = 0
    steps = overrides.pop("steps", None)
    meta = run_meta_train(
        "lpg", args.tasks, preset=args.preset, steps=steps, out=work, resume=bool(args.resume_from), progress=False,
        log_every=10, checkpoint_every=60.0, preset_overrides=overrides, init_rule=init, max_seconds=seconds,
    )
    wall = time.time() - t0
    rows = (work / "metrics.csv").read_text().splitlines() if (work / "metrics.csv").exists() else []
    st = {
        "tasks": meta["tasks"], "preset": args.preset, "overrides": overrides, "init_rule": init,
        "meta_steps": meta["meta_steps"], "env_steps": meta["env_steps"], "wall_s": round(wall, 1),
        "families": meta.get("families"), "metrics_rows": max(0, len(rows) - 1),
    }
    cfg = json.loads((work / "config.json").read_text())
    per_step = cfg.get("env_steps_per_meta_step")
    st.update(meta.get("timing", {}))
    st["env_steps_per_meta_step"] = per_step
    steps_done = meta["meta_steps"] - steps_before
    if st.get("s_per_meta_step"):
        st["env_steps_per_s"] = round(per_step / st["s_per_meta_step"])
    s.results["stages"]["meta"] = st
    for src, dst in (("rule.eqx", "lpg_all_gpu.eqx"), ("metrics.csv", "meta_metrics.csv"), ("curves.png", "meta_curves.png")):
        if (work / src).exists():
            shutil.copy(work / src, s.out / dst)
    s.log(f"meta: {steps_done} meta-steps in {wall:.0f} s; rule at {s.out / 'lpg_all_gpu.eqx'}")
    return s.out / "lpg_all_gpu.eqx"


def stage_transfer(s: Outputs, args, rule_paths: list[Path], deadline: float) -> None:
    import jax
    import numpy as np

    from learned_rl import tasks as task_registry
    from learned_rl._experiment import compare
    from learned_rl._stats import iqm, normalized_score, stderr, stratified_bootstrap_ci
    from learned_rl._transfer import random_policy_returns

    names = [n for n in args.eval_tasks.split(",") if n]
    for n in names:
        task_registry.make(n)  # unknown names fail before anything runs
    rules = {(p.parent.name if p.stem == "rule" else p.stem): f"lpg:{p}" for p in rule_paths}
    st = {"rules": list(rules), "steps": args.eval_steps, "seeds": args.eval_seeds, "seed": args.eval_seed, "tasks": {}, "not_run": []}
    s.results["stages"]["transfer"] = st
    groups: dict[str, list] = {r: [] for r in rules}
    per_task_s = None
    for n in names:
        if per_task_s is not None and time.time() + per_task_s > deadline:
            st["not_run"].append(n)
            continue
        t0 = time.time()
        task, results, summary = compare(n, [*rules.values(), "a2c"], steps=args.eval_steps, seeds=args.eval_seeds, seed=args.eval_seed,
                                         out=Path(args.work) / "transfer" / n.replace("/", "_"), progress=False)
        res = {r.rule_name: r for r in results}
        a = summary["results"]["a2c"]
        rand = np.asarray(random_policy_returns(task, res["a2c"].state.env_params, key=jax.random.PRNGKey(args.eval_seed)))
        rand_mean, rand_se = float(np.nanmean(rand)), stderr(rand[np.isfinite(rand)])
        beats = a["final_return_mean"] - rand_mean > 2.0 * float(np.hypot(a["final_return_stderr"], rand_se))
        e = {"a2c_return": a["final_return_mean"], "a2c_return_stderr": a["final_return_stderr"], "a2c_returns": a["final_returns"],
             "random_return": rand_mean, "random_return_stderr": rand_se, "a2c_beats_random": bool(beats),
             "env_steps": a["env_steps"], "wall_time_s": 0.0, "rules": {}}
        for short, name in rules.items():
            r = summary["results"][name]
            er = {"return": r["final_return_mean"], "return_stderr": r["final_return_stderr"], "returns": r["final_returns"], "normalized": None}
            if beats:
                sc = normalized_score(r["final_returns"], rand_mean, a["final_return_mean"])
                er.update(normalized=float(np.mean(sc)), normalized_stderr=stderr(sc))
                groups[short].append(sc)
            e["rules"][short] = er
        e["wall_time_s"] = time.time() - t0
        st["tasks"][n] = e
        per_task_s = max(per_task_s or 0.0, e["wall_time_s"])
        weak = [t for t, x in st["tasks"].items() if not x["a2c_beats_random"]]
        st["aggregate"] = {}
        for short, g in groups.items():
            if g and not weak:
                est, lo, hi = stratified_bootstrap_ci(g, iqm, seed=args.eval_seed)
                st["aggregate"][short] = {"iqm": est, "ci95": [lo, hi], "tasks_normalized": len(g)}
        if weak:
            st["no_aggregate_because"] = f"A2C does not beat the random policy by two standard errors on {', '.join(weak)}"
        s.save()
        s.log(f"transfer: {n}: " + ", ".join(f"{k} {v['return']:.2f}" for k, v in e["rules"].items()) + f", A2C {e['a2c_return']:.2f}, random {rand_mean:.2f} ({e['wall_time_s']:.0f} s)")
    s.save()


def stage_sweep(s: Outputs, args) -> None:
    import numpy as np

    from learned_rl import tasks as task_registry
    from learned_rl._experiment import run_seeds
    from learned_rl._registry import make_rule

    task = task_registry.make("CartPole-v1")
    rule = make_rule("ppo")
    cfg = rule.default_config(task).replace(total_steps=args.sweep_steps)
    t0 = time.time()
    res = run_seeds(rule, task, cfg, num_seeds=args.sweep_seeds, seed=0, rule_name="ppo", progress=False)
    wall = time.time() - t0
    rs, ep = res.metrics["return_sum"], res.metrics["episodes"]
    tail = max(1, rs.shape[1] // 10)
    final = np.sum(rs[:, -tail:], axis=1) / np.maximum(np.sum(ep[:, -tail:], axis=1), 1)
    steps = args.sweep_seeds * cfg.num_updates * cfg.steps_per_update
    s.results["stages"]["sweep"] = {"seeds": args.sweep_seeds, "steps_per_seed": cfg.num_updates * cfg.steps_per_update, "wall_s": wall,
                                    "env_steps_per_s": steps / wall, "final_return_mean": float(np.mean(final))}
    s.save()
    s.log(f"sweep: {args.sweep_seeds} seeds in {wall:.1f} s ({steps / wall:,.0f} env steps/s, compile included)")


def main(argv=None) -> int:
    args = parse(argv)
    if args.tiny:
        args.budget_min = min(args.budget_min, 6.0)
        args.set = ["steps=3", "lifetimes_per_task=1", "num_envs=4", "lifetime_updates=10", "hidden_size=8", "prediction_dim=4", "agent_hidden=[8]", *args.set]
        args.tasks = "chain/short,chain/distractor" if args.tasks == "lpg-all" else args.tasks  # a table and an MLP
        args.preset = "cpu" if args.preset == "gpu" else args.preset
        args.init_rule = "none"
        args.eval_tasks = "chain/distractor" if args.eval_tasks == DEFAULT_EVAL else args.eval_tasks
        args.eval_steps, args.eval_seeds, args.sweep_seeds, args.sweep_steps = 2560, 2, 2, 1024
    if args.work is None:
        import tempfile

        args.work = tempfile.mkdtemp(prefix="learned_rl_gpu_")
    s = Outputs(Path(args.out), 60.0 * args.budget_min)
    import jax

    dev = jax.devices()[0]
    s.results["environment"] = {
        "device": f"{dev.platform}: {getattr(dev, 'device_kind', '?')}", "jax": jax.__version__, "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "argv": sys.argv[1:],
    }
    s.log(f"device {s.results['environment']['device']}, jax {jax.__version__}, budget {args.budget_min} min")
    compiles = s.results["environment"]["compile_s"] = []

    def on_event(event, duration, **kwargs):  # every XLA compilation over a second, in the log
        if event == "/jax/core/compile/backend_compile_duration" and duration > 1.0:
            compiles.append(round(duration, 1))
            s.log(f"compiled a program in {duration:.1f} s")

    jax.monitoring.register_event_duration_secs_listener(on_event)
    s.save()
    stages = args.stages.split(",")
    rule_path = None
    if "meta" in stages:
        try:
            rule_path = stage_meta(s, args, args.meta_share * s.left())
        except Exception as e:  # later stages still run; the error is in results.json
            s.results["stages"]["meta"] = {"error": f"{type(e).__name__}: {e}"}
            s.log(f"meta failed: {type(e).__name__}: {e}")
        s.save()
    from learned_rl._registry import rule_file

    rule_paths = [rule_path] if rule_path is not None and rule_path.exists() else []
    rule_paths += [Path(rule_file("lpg", r)) for r in (args.rule or "").split(",") if r]
    sweep_reserve = 60.0 if "sweep" in stages and not args.tiny else 0.0
    if "transfer" in stages and rule_paths:
        try:
            stage_transfer(s, args, rule_paths, s.start + s.budget_s - sweep_reserve)
        except Exception as e:
            s.results["stages"].setdefault("transfer", {})["error"] = f"{type(e).__name__}: {e}"
            s.log(f"transfer failed: {type(e).__name__}: {e}")
        s.save()
    if "sweep" in stages and s.left() > 0:
        try:
            stage_sweep(s, args)
        except Exception as e:
            s.results["stages"]["sweep"] = {"error": f"{type(e).__name__}: {e}"}
            s.log(f"sweep failed: {type(e).__name__}: {e}")
        s.save()
    s.log(f"done in {s.elapsed():.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
