"""Transfer suites: train a (learned) rule and A2C on every task of a suite and report the
A2C-normalised return per task plus an aggregate (interquartile mean with a stratified bootstrap
confidence interval).

Hyperparameters for a new agent family or task family (the protocol of `transfer(validate=...)`):
the rule's hyperparameters (a grid of `run_sweep`'s fields: ``learning_rate``, ``alpha_y``, ...)
are chosen on *validation* tasks, with seeds the test runs never use, and only then is the rule run
on the test tasks with the chosen point. A validation task may not be a test task. Each point's
score is its mean final return on each validation task, scaled to [0, 1] across the grid
(0 the worst point, 1 the best; a task where every point ties gives each 0.5), averaged over the
validation tasks; the highest score wins (the first point among ties). A2C keeps its defaults.

Normalisation, per task: ``score = (R − R_random) / (R_A2C − R_random)``, where R is a seed's final
return, R_A2C the mean final return of A2C's seeds and R_random the mean return of a uniform random
policy on the same levels. 0 is random, 1 is A2C. A task on which A2C does not beat random by two
standard errors (of A2C's seeds and of the random policy's levels) at the run's budget is reported
with its raw returns and no score, and then the suite reports **no aggregate**: a suite whose
baseline does not learn cannot tell a good rule from a bad one (raise the budget).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import tasks as task_registry
from ._agent import UniformPolicy
from ._experiment import apply_point, check_grid, compare, run_sweep, sweep_points, write_sweep
from ._io import atomic_write, write_json
from ._learner import apply_overrides, check_sets, default_config_for
from ._registry import make_rule
from ._rollout import collect, reset_envs
from ._stats import iqm, normalized_score, stderr, stratified_bootstrap_ci


def random_policy_returns(task, env_params, *, num_envs: int = 32, num_steps: int = 4000, key=None) -> np.ndarray:
    """Mean episode return of a uniform random policy (`UniformPolicy`) on each level of a batch of
    `env_params` (leading axis = levels), from `num_envs` × `num_steps` steps per level of the one
    rollout scan (`collect`): uniform over the actions, or over the action box on continuous
    tasks. Only episodes that end within the budget count; a level with no finished episode gives
    NaN."""
    policy = UniformPolicy.for_task(task)
    key = jax.random.PRNGKey(0) if key is None else key

    def one_level(params, k):
        k_reset, k_run = jax.random.split(k)
        carry = reset_envs(task.env, params, num_envs, key=k_reset)
        _, _, stats = collect(policy, task.env, params, carry, num_steps, key=k_run)
        return jnp.where(stats.count > 0, stats.return_sum / jnp.maximum(stats.count, 1.0), jnp.nan)

    num_levels = jax.tree.leaves(env_params)[0].shape[0]
    keys = jax.random.split(key, num_levels)
    return np.asarray(jax.jit(jax.vmap(one_level))(env_params, keys))


def _slug(name: str) -> str:
    return name.replace("/", "_").replace(":", "-")


def grid_scores(means: np.ndarray) -> np.ndarray:
    """``[points]`` scores from ``[tasks, points]`` mean returns: each task's returns scaled to
    [0, 1] across the points (NaN, a point whose runs finished no episode, counts as the worst;
    a task where every point ties gives each 0.5), averaged over the tasks."""
    means = np.asarray(means, dtype=np.float64)
    lo, hi = np.nanmin(np.where(np.isnan(means), np.inf, means), axis=1, keepdims=True), np.nanmax(np.where(np.isnan(means), -np.inf, means), axis=1, keepdims=True)
    spread = hi - lo
    scaled = np.where(np.isfinite(spread) & (spread > 0), (means - lo) / np.where(spread > 0, spread, 1.0), 0.5)
    scaled = np.where(np.isnan(means), 0.0, scaled)
    return scaled.mean(axis=0)


def choose_on_validation(rule_name: str, tasks: list, grid: dict[str, list[float]], *, seeds: int, seed: int, steps: int | None,
                         out: Path, progress: bool = True, sets: dict[str, Any] | None = None) -> dict[str, Any]:
    """Sweep `grid` (`run_sweep`, one program per task) for the rule on every validation task,
    writing each sweep to ``out/<task>/``, and choose the point with the best `grid_scores`.
    Returns the record `transfer` keeps: tasks, seeds, grid, every point's returns and score, and
    the chosen point (`all_tied` when every point scored the same: the choice is then the grid's
    first point and carries no information), with the random policy's return on each validation
    task and, per point and task, whether it beats that by two standard errors. `sets` are fixed
    overrides (``--set``) applied before the grid's values."""
    base = make_rule(rule_name)
    sweeps, random = {}, {}
    for t in tasks:
        rule, config, _ = apply_overrides(base, default_config_for(base, t, sets, prefix="--set "), sets or {}, prefix="--set ")
        if steps is not None:
            config = config.replace(total_steps=steps)
        result = run_sweep(rule, t, config, grid, num_seeds=seeds, seed=seed, rule_name=rule_name, progress=progress)
        sweeps[t.name] = write_sweep(out / _slug(t.name), t, result, {"command": "transfer (validation)", "seed": seed})
        levels = jax.tree.map(lambda x: x[0], result.state.env_params)  # every point trains on the same levels
        rand = random_policy_returns(t, levels, key=jax.random.PRNGKey(seed))
        rand = rand[np.isfinite(rand)]
        random[t.name] = [float(np.mean(rand)) if rand.size else float("nan"), stderr(rand) if rand.size > 1 else 0.0]
    points = sweep_points(grid)
    means = np.array([[row["final_return_mean"] for row in sweeps[n]["points"]] for n in sweeps])
    scores = grid_scores(means)
    best = int(np.argmax(scores))
    ties = bool(np.all(scores == scores[best]))
    def beats_random(n, i):
        row = sweeps[n]["points"][i]
        return bool(row["final_return_mean"] - random[n][0] > 2.0 * float(np.hypot(row["final_return_stderr"], random[n][1])))

    rows = [{"point": p, "score": float(scores[i]),
             "returns": {n: [sweeps[n]["points"][i]["final_return_mean"], sweeps[n]["points"][i]["final_return_stderr"]] for n in sweeps},
             "beats_random": {n: beats_random(n, i) for n in sweeps}} for i, p in enumerate(points)]
    return {
        "tasks": list(sweeps), "seeds": seeds, "seed": seed, "env_steps": {n: sw["env_steps"] for n, sw in sweeps.items()},
        "grid": grid, "random_return": random, "points": rows, "chosen": points[best], "all_tied": ties,
        "chosen_beats_random_on": [n for n in sweeps if rows[best]["beats_random"][n]],
    }


def _unknown_sets(rules: list, task, sets: dict[str, Any]) -> list[str]:
    """The ``--set`` fields that none of `rules` (nor its TrainConfig or agent) has on `task`; a
    bad value of a known field raises here, before anything runs."""
    used: set[str] = set()
    for r in rules:
        used.update(apply_overrides(r, default_config_for(r, task, sets, prefix="--set "), sets, prefix="--set ")[2])
    return sorted(set(sets) - used)


def random_returns_of_run(task, results: list, *, seed: int) -> np.ndarray:
    """The random policy's returns (`random_policy_returns`) on the levels of the A2C runs of a
    `compare` run's `results`, keyed by `seed`: what `score_against_a2c` compares with."""
    a2c = next(r for r in results if r.rule_name == "a2c")
    return random_policy_returns(task, a2c.state.env_params, key=jax.random.PRNGKey(seed))


def score_against_a2c(task, rule_name: str, results: list, summary: dict[str, Any], *, seed: int,
                      random_returns: np.ndarray | None = None) -> tuple[dict[str, Any], np.ndarray | None]:
    """One task's record of a `compare` run that holds `rule_name` and ``"a2c"``: both rules'
    returns, the random policy's on the same levels, whether A2C beats it by two standard errors,
    whether the rule does, and the rule's A2C-normalised scores per seed (None, with the reason,
    where A2C does not beat random). Returns ``(record, scores or None)``. `random_returns`: the
    run's `random_returns_of_run`, where several rules of one run are scored (computed if None)."""
    rule_res = summary["results"][rule_name]
    a2c_res = summary["results"]["a2c"]
    rand = random_returns_of_run(task, results, seed=seed) if random_returns is None else np.asarray(random_returns)
    rand_mean = float(np.nanmean(rand)) if np.any(np.isfinite(rand)) else float("nan")
    rand_se = stderr(rand[np.isfinite(rand)]) if np.sum(np.isfinite(rand)) > 1 else 0.0
    entry: dict[str, Any] = {
        "rule_return": rule_res["final_return_mean"],
        "rule_return_stderr": rule_res["final_return_stderr"],
        "a2c_return": a2c_res["final_return_mean"],
        "a2c_return_stderr": a2c_res["final_return_stderr"],
        "random_return": rand_mean,
        "random_return_stderr": rand_se,
        "env_steps": rule_res["env_steps"],
        "wall_time_s": rule_res["wall_time_s"] + a2c_res["wall_time_s"],
    }
    entry["a2c_beats_random"] = bool(a2c_res["final_return_mean"] - rand_mean > 2.0 * float(np.hypot(a2c_res["final_return_stderr"], rand_se)))
    entry["rule_beats_random"] = bool(rule_res["final_return_mean"] - rand_mean > 2.0 * float(np.hypot(rule_res["final_return_stderr"], rand_se)))
    try:
        scores = normalized_score(rule_res["final_returns"], rand_mean, a2c_res["final_return_mean"])
        if not entry["a2c_beats_random"]:
            raise ValueError("A2C does not beat the random policy by two standard errors at this budget")
    except ValueError as e:
        entry["normalized"] = None
        entry["not_normalized_because"] = str(e)
        return entry, None
    entry["normalized_scores"] = [float(x) for x in scores]
    entry["normalized"] = float(np.mean(scores))
    entry["normalized_stderr"] = stderr(scores)
    return entry, np.asarray(scores, dtype=np.float64)


def transfer(rule_name: str, suite: str, *, seeds: int, seed: int = 0, steps: int | None = None, out: Path, progress: bool = True,
             validate: str | None = None, grid: dict[str, list[float]] | None = None, validation_seeds: int | None = None,
             validation_seed: int | None = None, validation_steps: int | None = None, sets: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run `compare(task, [rule_name, "a2c"])` on every task of `suite` (a task set, a task, or a
    comma-separated list) into ``out/<task>/``, then write ``out/transfer.json``, ``transfer.md``
    and ``transfer.png``. Everything is validated before any training starts.

    With `validate` (tasks, as `suite`) and `grid` (``{field: [values]}`` of `run_sweep`'s
    fields), the rule's hyperparameters are first chosen on the validation tasks
    (`choose_on_validation`, written to ``out/validation/``) with `validation_seeds` seeds
    (default `seeds`) of base `validation_seed` (default ``seed + 1``, so its keys are never the
    test runs'), at `validation_steps` env steps (default `steps`); the test tasks then run the
    rule with the chosen point, and A2C with its defaults.

    `sets` (``--set FIELD=VALUE``) apply everywhere, as `compare`'s do: to every rule that has the
    field (``alpha_y``: the rule only) and to every run's `TrainConfig` and agent
    (``agent.torso=mlp``: the rule's agents and A2C's alike, so both learn with the same agent
    class), in validation and test runs."""
    if rule_name == "a2c":
        raise ValueError("transfer compares a rule against A2C; pick another rule than a2c")
    if seeds < 2:
        raise ValueError(f"transfer needs at least 2 seeds for standard errors, got {seeds}")
    if (validate is None) != (grid is None):
        raise ValueError("choosing hyperparameters on validation tasks needs both the tasks (--validate) and a grid (--grid)")
    rule = make_rule(rule_name)  # unknown rule or broken file: fail before anything runs
    a2c = make_rule("a2c")
    names = task_registry.resolve(suite)
    task_objs = [task_registry.make(n) for n in names]
    sets = dict(sets or {})
    check_sets(sets)
    val_tasks: list = []
    if validate is not None:
        validation_seeds = seeds if validation_seeds is None else validation_seeds
        validation_seed = seed + 1 if validation_seed is None else validation_seed
        if validation_seeds < 1:
            raise ValueError(f"validation needs at least 1 seed, got {validation_seeds}")
        if validation_seed == seed:
            raise ValueError(f"the validation seed must differ from the test seed ({seed}): hyperparameters are never chosen on test seeds")
        val_names = task_registry.resolve(validate)
        shared = sorted(set(val_names) & set(names))
        if shared:
            raise ValueError(f"{', '.join(shared)} is both a validation and a test task: hyperparameters are never chosen on test tasks")
        val_tasks = [task_registry.make(n) for n in val_names]
        for t in val_tasks:
            rule.check_task(t)
        check_grid(rule, grid)
        val_rule, val_config, _ = apply_overrides(rule, default_config_for(rule, val_tasks[0], sets, prefix="--set "), sets, prefix="--set ")
        for p in sweep_points(grid):  # every point is a valid rule and config before anything runs
            apply_point(val_rule, val_config, p)
    runnable, skipped = [], {}
    for t in task_objs:
        try:  # each rule's declared capability (its action kinds)
            rule.check_task(t)
            a2c.check_task(t)
        except ValueError as e:
            skipped[t.name] = str(e)
        else:
            runnable.append(t)
    if not runnable:
        raise ValueError(f"{rule_name} cannot run on any task of {suite!r}: " + "; ".join(skipped.values()))
    unknown = _unknown_sets([rule, a2c], runnable[0], sets)  # a bad field or value fails before anything runs
    if unknown:
        raise ValueError(f"--set: neither {rule_name} nor a2c nor their TrainConfig has the fields {unknown}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    validation = None
    if val_tasks:
        validation = choose_on_validation(rule_name, val_tasks, grid, seeds=validation_seeds, seed=validation_seed,
                                          steps=steps if validation_steps is None else validation_steps, out=out / "validation", progress=progress,
                                          sets=sets)
    tuned = {rule_name: validation["chosen"]} if validation else None
    per_task: dict[str, Any] = {}
    groups = []
    for t in runnable:
        _, results, summary = compare(t.name, [rule_name, "a2c"], steps=steps, seeds=seeds, seed=seed, out=out / _slug(t.name), progress=progress,
                                      extra_config={"command": "transfer", "seed": seed}, tuned=tuned, sets=sets)
        entry, scores = score_against_a2c(t, rule_name, results, summary, seed=seed)
        if scores is not None:
            groups.append(scores)
        per_task[t.name] = entry

    report: dict[str, Any] = {"rule": rule_name, "suite": suite, "seeds": seeds, "seed": seed, "tasks": per_task, "skipped": skipped,
                              **({"sets": sets} if sets else {})}
    if validation:
        report["validation"] = validation
    weak = [n for n, e in per_task.items() if not e["a2c_beats_random"]]
    if weak:  # a suite whose baseline does not learn cannot rank rules: no aggregate
        report["aggregate"] = None
        report["no_aggregate_because"] = (
            f"A2C does not beat the random policy by two standard errors on {', '.join(weak)} at this budget (raise --steps)"
        )
    elif groups:
        est, lo, hi = stratified_bootstrap_ci(groups, iqm, seed=seed)
        report["aggregate"] = {
            "iqm": est,
            "ci95": [lo, hi],
            "tasks_normalized": len(groups),
            "tasks_rule_at_least_a2c": int(sum(np.mean(g) >= 1.0 for g in groups)),
        }
    write_json(out / "transfer.json", report)
    _write_md(out / "transfer.md", report)
    _plot(out / "transfer.png", report)
    return report


def expand_rule_names(names: list[str]) -> list[str]:
    """Rule names with every ``lpg:DIR``, ``lpg-v:DIR`` or ``lpo:DIR`` that names a directory (a
    meta-training run's ``snapshots/``, say) replaced by one name per ``*.eqx`` file in it, in file
    name order (snapshot files sort by meta-step)."""
    out: list[str] = []
    for name in names:
        kind, sep, path = name.strip().partition(":")
        if sep and kind.lower() in ("lpg", "lpg-v", "lpo") and Path(path).is_dir():
            files = sorted(Path(path).glob("*.eqx"))
            if not files:
                raise ValueError(f"{name}: the directory holds no .eqx rule files")
            out += [f"{kind}:{f}" for f in files]
        else:
            out.append(name.strip())
    return out


def select(rule_names: list[str], validate: str, *, seeds: int, seed: int, steps: int | None = None, out: Path, progress: bool = True,
           sets: dict[str, Any] | None = None) -> dict[str, Any]:
    """Choose one of several rules (a meta-training run's snapshots, say) on validation tasks:
    `compare` every rule and A2C on every task of `validate` (same seeds, into ``out/<task>/``),
    score each rule per task against A2C and the random policy (`score_against_a2c`), and write
    ``out/select.json`` and ``select.md``.

    The choice: the rule above the random policy (by two standard errors) on the most validation
    tasks, and among those the highest IQM of its A2C-normalised scores over every task and seed
    (the first listed among ties). No rule is chosen when A2C does not beat the random policy on
    some validation task (the scores there mean nothing; raise `steps`). A directory in
    `rule_names` stands for every rule file in it (`expand_rule_names`). Use tasks and seeds the
    final evaluation never uses: a rule chosen on its test tasks is not judged where it was not
    trained."""
    names = expand_rule_names(rule_names)
    if not names:
        raise ValueError("select needs at least one rule")
    if any(n.lower() == "a2c" for n in names):
        raise ValueError("select scores rules against A2C; a2c is the baseline, not a candidate")
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate rules in {','.join(names)}")
    if seeds < 2:
        raise ValueError(f"select needs at least 2 seeds for standard errors, got {seeds}")
    rules = [make_rule(n) for n in names]  # an unknown rule or a broken file fails before anything runs
    val_names = task_registry.resolve(validate)
    val_tasks = [task_registry.make(n) for n in val_names]
    sets = dict(sets or {})
    check_sets(sets)
    candidates = [*rules, make_rule("a2c")]
    for r in candidates:
        for t in val_tasks:
            r.check_task(t)
    unknown = _unknown_sets(candidates, val_tasks[0], sets)
    if unknown:
        raise ValueError(f"--set: no rule, not A2C and no TrainConfig has the fields {unknown}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    per_task: dict[str, dict[str, Any]] = {}
    scores: dict[str, list[np.ndarray]] = {n: [] for n in names}
    weak: list[str] = []
    for t in val_tasks:
        tn = t.name
        _, results, summary = compare(tn, [*names, "a2c"], steps=steps, seeds=seeds, seed=seed, out=out / _slug(tn), progress=progress,
                                      extra_config={"command": "select", "seed": seed}, sets=sets)
        per_task[tn] = {}
        rand = random_returns_of_run(t, results, seed=seed)  # the same levels for every rule
        for n in names:
            entry, sc = score_against_a2c(t, n, results, summary, seed=seed, random_returns=rand)
            per_task[tn][n] = entry
            if sc is not None:
                scores[n].append(sc)
        if not next(iter(per_task[tn].values()))["a2c_beats_random"]:
            weak.append(tn)
    rows = []
    for i, n in enumerate(names):
        above = sum(per_task[tn][n]["rule_beats_random"] for tn in val_names)
        row: dict[str, Any] = {"rule": n, "tasks_above_random": int(above)}
        if not weak:
            est, lo, hi = stratified_bootstrap_ci(scores[n], iqm, seed=seed)
            row.update(iqm=est, ci95=[lo, hi], mean=float(np.mean(np.concatenate(scores[n]))))
        rows.append(row)
    report: dict[str, Any] = {"rules": names, "validate": val_names, "seeds": seeds, "seed": seed, "steps": steps,
                              **({"sets": sets} if sets else {}), "tasks": per_task, "ranking": rows}
    if weak:
        report["chosen"] = None
        report["not_chosen_because"] = f"A2C does not beat the random policy by two standard errors on {', '.join(weak)} at this budget (raise --steps)"
    else:
        best = max(range(len(rows)), key=lambda i: (rows[i]["tasks_above_random"], rows[i]["iqm"], -i))
        report["chosen"] = names[best]
    write_json(out / "select.json", report)
    _write_select_md(out / "select.md", report)
    return report


def _write_select_md(path: Path, report: dict[str, Any]) -> None:
    tasks = report["validate"]
    lines = [f"# Choosing a rule on {', '.join(tasks)} ({report['seeds']} seeds of base seed {report['seed']})", "",
             *([f"Every run with {', '.join(f'{k}={v}' for k, v in report['sets'].items())} (--set).", ""] if report.get("sets") else []),
             "Per task: the rule's mean final return ± standard error, then its A2C-normalised score (0 random, 1 A2C); "
             "(≤ random): not above the random policy by two standard errors.", "",
             "| rule | " + " | ".join(tasks) + " | tasks above random | IQM [95% CI] |",
             "|---|" + "---|" * (len(tasks) + 2)]
    first = {tn: next(iter(report["tasks"][tn].values())) for tn in tasks}
    lines.append("| A2C | " + " | ".join(f"{first[tn]['a2c_return']:.3f} ± {first[tn]['a2c_return_stderr']:.3f}" for tn in tasks) + " | | |")
    lines.append("| random policy | " + " | ".join(f"{first[tn]['random_return']:.3f}" for tn in tasks) + " | | |")
    for row in report["ranking"]:
        n = row["rule"]
        cells = []
        for tn in tasks:
            e = report["tasks"][tn][n]
            c = f"{e['rule_return']:.3f} ± {e['rule_return_stderr']:.3f}"
            if e["normalized"] is not None:
                c += f" ({e['normalized']:.2f})"
            cells.append(c + ("" if e["rule_beats_random"] else " (≤ random)"))
        agg = f"{row['iqm']:.3f} [{row['ci95'][0]:.3f}, {row['ci95'][1]:.3f}]" if "iqm" in row else "n/a"
        mark = " **(chosen)**" if n == report["chosen"] else ""
        lines.append(f"| {n}{mark} | " + " | ".join(cells) + f" | {row['tasks_above_random']} of {len(tasks)} | {agg} |")
    lines.append("")
    if report["chosen"] is None:
        lines.append(f"No rule chosen: {report['not_chosen_because']}.")
    else:
        lines.append(f"Chosen: `{report['chosen']}` (above the random policy on the most validation tasks, then the highest IQM).")
    atomic_write(path, "\n".join(lines) + "\n")


def _write_md(path: Path, report: dict[str, Any]) -> None:
    lines = [
        f"# Transfer: {report['rule']} vs A2C on {report['suite']} ({report['seeds']} seeds)",
        "",
        *([f"Every run with {', '.join(f'{k}={v}' for k, v in report['sets'].items())} (--set).", ""] if report.get("sets") else []),
        "| task | env steps | rule return | A2C return | random return | A2C-normalised (rule) |",
        "|---|---|---|---|---|---|",
    ]
    for name, e in report["tasks"].items():
        norm = f"{e['normalized']:.3f} ± {e['normalized_stderr']:.3f}" if e["normalized"] is not None else f"n/a ({e['not_normalized_because']})"
        lines.append(
            f"| {name} | {e['env_steps']:,} | {e['rule_return']:.3f} ± {e['rule_return_stderr']:.3f} | "
            f"{e['a2c_return']:.3f} ± {e['a2c_return_stderr']:.3f} | {e['random_return']:.3f} | {norm} |"
        )
    agg = report.get("aggregate")
    lines.append("")
    if agg:
        lines.append(
            f"Aggregate A2C-normalised return: IQM {agg['iqm']:.3f}, 95% stratified-bootstrap CI "
            f"[{agg['ci95'][0]:.3f}, {agg['ci95'][1]:.3f}] over {agg['tasks_normalized']} tasks; the rule matches or "
            f"beats A2C (mean score ≥ 1) on {agg['tasks_rule_at_least_a2c']} of them."
        )
    elif report.get("no_aggregate_because"):
        lines.append(f"No aggregate: {report['no_aggregate_because']}.")
    else:
        lines.append("No task could be normalised (A2C never beat the random policy).")
    lines.append("")
    lines.append("Score = (return − random) / (A2C − random): 0 is a uniform random policy, 1 is A2C.")
    for name, why in report["skipped"].items():
        lines.append(f"- {name}: not run ({why})")
    val = report.get("validation")
    if val:
        fields = list(val["grid"])
        chosen = ", ".join(f"{k} = {v:g}" for k, v in val["chosen"].items())
        lines += ["", f"## Hyperparameters chosen on validation tasks: {chosen}", "",
                  f"The rule ran every test task with {chosen}, chosen before any test run on {', '.join(val['tasks'])} "
                  f"({val['seeds']} seeds of base seed {val['seed']}; the test seeds are of base seed {report['seed']}). "
                  "Score: each validation task's mean final return scaled to [0, 1] across the grid, averaged over the tasks. "
                  + ("A2C ran with its defaults and the --set values above." if report.get("sets") else "A2C ran with its defaults.")
                  + (" Every point tied on every validation task, so the choice is the grid's first point and says nothing." if val["all_tied"] else "")
                  + ("" if val["chosen_beats_random_on"] else " **The chosen point does not beat the random policy on any validation task.**"), "",
                  "| " + " | ".join(fields) + " | " + " | ".join(val["tasks"]) + " | score |",
                  "|" + "---|" * (len(fields) + len(val["tasks"]) + 1),
                  "| random policy |" + " |" * (len(fields) - 1) + " " + " | ".join(f"{val['random_return'][n][0]:.3f}" for n in val["tasks"]) + " | |"]
        for row in val["points"]:
            mark = " (chosen)" if row["point"] == val["chosen"] else ""
            lines.append("| " + " | ".join(f"{row['point'][k]:g}" for k in fields) + " | "
                         + " | ".join(f"{m:.3f} ± {se:.3f}" + ("" if row["beats_random"][n] else " (≤ random)") for n, (m, se) in ((n, row["returns"][n]) for n in val["tasks"]))
                         + f" | {row['score']:.3f}{mark} |")
    atomic_write(path, "\n".join(lines) + "\n")


def _plot(path: Path, report: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    items = [(n, e) for n, e in report["tasks"].items() if e["normalized"] is not None]
    fig, ax = plt.subplots(figsize=(max(4.0, 0.9 * len(items) + 2), 4.0))
    if items:
        x = np.arange(len(items))
        ax.bar(x, [e["normalized"] for _, e in items], yerr=[e["normalized_stderr"] for _, e in items], capsize=3, color="tab:blue")
        ax.set_xticks(x, [n for n, _ in items], rotation=30, ha="right", fontsize=8)
        ax.axhline(1.0, color="k", ls="--", lw=1, label="A2C")
        ax.axhline(0.0, color="gray", ls=":", lw=1, label="random")
        agg = report.get("aggregate")
        if agg:
            ax.axhspan(agg["ci95"][0], agg["ci95"][1], color="tab:orange", alpha=0.2, label=f"IQM {agg['iqm']:.2f} (95% CI)")
        ax.legend(fontsize=8)
    ax.set_ylabel("A2C-normalised return")
    ax.set_title(f"{report['rule']} on {report['suite']}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


__all__ = ["choose_on_validation", "expand_rule_names", "grid_scores", "random_policy_returns", "random_returns_of_run", "score_against_a2c", "select",
           "transfer"]
