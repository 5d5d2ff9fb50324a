"""Experiments: run S seeds of a rule on a task (vmapped, compiled once, with progress), write
the run directory (config.json, metrics.csv, summary.json, curves.png), and `compare` several
rules on one task (what `train`, `compare`, `demo` and `transfer` run)."""

from __future__ import annotations

import dataclasses
import itertools
import math
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._defaults import Recipe, get_recipe
from ._evaluate import save_agents
from ._io import atomic_write, write_csv, write_json
from ._learner import AGENT_FIELDS, CONFIG_FIELDS, LearnerState, TrainConfig, apply_overrides, check_sets, default_config_for, final_return, init, learning_curve, run, settable_rule_fields
from ._memory import RunTooLarge as RunTooLarge
from ._memory import check_memory, compiled_bytes, gib, tree_bytes
from ._registry import make_rule
from .tasks import make as make_task

# per-update bookkeeping of the episodes that ended (not a scalar metric to average on its own)
EPISODE_KEYS = ("env_steps", "return_sum", "length_sum", "episodes")
NUM_CHUNKS = 20  # progress granularity: the run is compiled once and executed in this many chunks


def seed_keys(seed: int, num_seeds: int) -> jax.Array:
    """Key of seed index i is ``fold_in(PRNGKey(seed), i)``: adding seeds never changes old ones."""
    base = jax.random.PRNGKey(seed)
    return jax.vmap(lambda i: jax.random.fold_in(base, i))(jnp.arange(num_seeds))


@dataclasses.dataclass
class RunResult:
    """The outcome of `run_seeds`: per-update metrics with a leading seed axis, the final states,
    and the wall time (compile included) in seconds."""

    rule_name: str
    config: TrainConfig
    metrics: dict[str, np.ndarray]
    state: LearnerState
    wall_time: float


def _init_within_memory(init_all, *args, runs: int, desc: str):
    """`init_all(*args)`, after checking that its learner states (twice: the chunks return new ones)
    fit in memory, from their shapes alone."""
    state_bytes = tree_bytes(eqx.filter_eval_shape(init_all, *args))
    check_memory(2 * state_bytes, desc, f"{gib(state_bytes)} of learner states, twice", runs=runs)
    return init_all(*args)


def run_seeds(
    rule,
    task,
    config: TrainConfig,
    *,
    num_seeds: int = 1,
    seed: int = 0,
    rule_name: str | None = None,
    progress: bool = True,
    callback: Callable[[str, dict[str, np.ndarray]], Any] | None = None,
) -> RunResult:
    """Train `num_seeds` fresh agents (vmapped over seeds) and return their metrics.

    The whole run is one compiled program executed in `NUM_CHUNKS` chunks so that a progress bar
    can advance; the chunks compute exactly what `train` computes. `callback(rule_name, metrics)`
    is called on the host after each chunk with that chunk's per-update metrics (numpy arrays
    ``[seeds, updates]``, ``env_steps`` among them): for logging and experiment tracking
    (`TensorBoardTracker`), outside the compiled program.
    """
    if num_seeds <= 0:
        raise ValueError(f"number of seeds must be positive, got {num_seeds}")
    name = rule_name or rule.name
    start = time.time()

    @eqx.filter_jit
    def init_all(rule, keys):
        return jax.vmap(lambda k: init(rule, task, config, key=k))(keys)

    def run_chunk(chunk, stop_at):
        return eqx.filter_jit(lambda rule, states: jax.vmap(lambda s: run(rule, task, config, s, chunk, stop_at=stop_at))(states))

    states = _init_within_memory(init_all, rule, seed_keys(seed, num_seeds), runs=num_seeds, desc=f"{name} on {task.name}")
    states, metrics = _run_chunked(rule, run_chunk, states, config, runs=num_seeds, desc=f"{name} on {task.name}", progress=progress,
                                   callback=None if callback is None else (lambda m: callback(name, m)))
    for k, v in metrics.items():
        if not np.all(np.isfinite(v)) and k in ("loss",):
            raise FloatingPointError(f"{name} on {task.name}: non-finite {k} during training")
    return RunResult(name, config, metrics, states, time.time() - start)


def _run_chunked(head, make_chunk, states, config: TrainConfig, *, runs: int, desc: str, progress: bool, callback=None):
    """Advance batched learner states through the whole run in `NUM_CHUNKS` compiled chunks (one
    program, so a progress bar can advance): `make_chunk(chunk, stop_at)` builds the jitted step,
    called as `step(head, states)`. Returns the final states and the metrics, each ``[..., U]``
    (the updates of every chunk joined, the overrun of the last one dropped). `callback(metrics)`
    gets each chunk's metrics, the overrun dropped, as soon as the chunk is done.

    The step is compiled ahead of time, so that its memory (XLA's analysis of the compiled program,
    plus the metrics every chunk leaves on the host) is checked against the machine before it runs
    (`check_memory`); the executable is the one `jit` would have built."""
    U = config.num_updates
    chunk = math.ceil(U / min(NUM_CHUNKS, U))
    num_chunks = math.ceil(U / chunk)
    step = make_chunk(chunk, U).lower(head, states).compile()
    program = compiled_bytes(step.compiled)
    if program is not None:  # the outputs are the new states and one chunk's metrics
        host = max(step.compiled.memory_analysis().output_size_in_bytes - tree_bytes(states), 0) * num_chunks
        check_memory(program + host, desc, f"{gib(program)} for the compiled program, {gib(host)} of metrics", runs=runs)
    pieces = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=config.total_steps * runs, desc=desc, unit="step", unit_scale=True, leave=False)
    for _ in range(num_chunks):
        states, m = step(head, states)
        m = jax.device_get(m)
        active = np.asarray(m.pop("active"))
        pieces.append((m, active))
        if callback is not None:
            done = np.flatnonzero(active.reshape(-1, active.shape[-1])[0])
            callback({k: np.take(np.asarray(v), done, axis=active.ndim - 1) for k, v in m.items()})
        if bar is not None:
            bar.update(int(active.sum()) * config.steps_per_update)
    if bar is not None:
        bar.close()
    keep = np.concatenate([a.reshape(-1, a.shape[-1])[0] for _, a in pieces])
    axis = pieces[0][1].ndim - 1
    metrics = {k: np.take(np.concatenate([np.asarray(m[k]) for m, _ in pieces], axis=axis), np.flatnonzero(keep), axis=axis) for k in pieces[0][0]}
    return states, metrics


def optimal_returns(task, state: LearnerState) -> np.ndarray | None:
    """The exact optimal return of each seed's level, where the task knows it."""
    if task.optimal_return is None:
        return None
    params = jax.device_get(state.env_params)
    n = jax.tree.leaves(state.agent)[0].shape[0]
    return np.array(
        [float(task.optimal_return(jax.tree.map(lambda x: x[i], params))) for i in range(n)]
    )


def summarize(task, result: RunResult) -> dict[str, Any]:
    """The `summary.json` entry of one rule."""
    finals = final_return(result.metrics, result.config.final_fraction)
    n = len(finals)
    out: dict[str, Any] = {
        "final_return_mean": float(np.nanmean(finals)),
        "final_return_stderr": float(np.nanstd(finals, ddof=1) / math.sqrt(n)) if n > 1 else 0.0,
        "final_returns": [float(x) for x in finals],
        "seeds": n,
        "env_steps": int(result.config.num_updates * result.config.steps_per_update),
        "wall_time_s": round(result.wall_time, 2),
    }
    activity = drift_activity_summary(result.metrics)
    if activity:
        out["drift_activity"] = activity
    opt = optimal_returns(task, result.state)
    if opt is not None:
        frac = finals / opt
        out["optimal_return"] = [float(x) for x in opt]
        out["normalized_return"] = float(np.nanmean(frac))
        out["normalized_return_stderr"] = float(np.nanstd(frac, ddof=1) / math.sqrt(n)) if n > 1 else 0.0
    return out


DRIFT_FIGURES = ("drift_active_after", "clip_fraction_after", "approx_kl_after", "drift_mean_after")


def drift_activity_summary(metrics: dict[str, np.ndarray]) -> dict[str, list[float]]:
    """For a mirror-learning rule, each figure of `DRIFT_FIGURES` (after each update: the fraction
    of samples where the drift acts, the clip fraction, the KL, the mean drift) averaged over seeds
    and over the first, middle and last third of the run; empty for other rules."""
    out = {}
    for k in DRIFT_FIGURES:
        if k in metrics:
            thirds = np.array_split(np.asarray(metrics[k], np.float64), 3, axis=-1)
            out[k.removesuffix("_after")] = [float(np.mean(t)) if t.size else float("nan") for t in thirds]
    return out


def windowed(values: np.ndarray, num_points: int) -> np.ndarray:
    """``[seeds, updates]`` averaged over `num_points` equal windows of updates: ``[seeds, P]``."""
    U = values.shape[-1]
    edges = np.linspace(0, U, min(num_points, U) + 1).round().astype(int)
    return np.stack([values[:, a:b].mean(axis=1) for a, b in zip(edges[:-1], edges[1:])], axis=1)


def curve_rows(result: RunResult, num_points: int = 50) -> list[dict[str, Any]]:
    """`metrics.csv` rows: one per (seed, log point), with every scalar metric window-averaged."""
    steps, curve = learning_curve(result.metrics, num_points)
    U = result.metrics["return_sum"].shape[-1]
    P = len(steps)
    edges = np.linspace(0, U, P + 1).round().astype(int)
    extra = sorted(k for k in result.metrics if k not in EPISODE_KEYS)
    rows = []
    for s in range(curve.shape[0]):
        for p in range(P):
            a, b = edges[p], edges[p + 1]
            row = {"rule": result.rule_name, "seed": s, "env_steps": int(steps[p]), "mean_return": float(curve[s, p])}
            row["episodes"] = int(result.metrics["episodes"][s, a:b].sum())
            for k in extra:
                row[k] = float(np.mean(result.metrics[k][s, a:b]))
            rows.append(row)
    return rows


def plot_curves(path: Path, task_name: str, results: list[RunResult], num_points: int = 50) -> None:
    """All rules on one plot: mean ± standard error over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    drifting = [r for r in results if "drift_active_after" in r.metrics]
    if drifting:
        fig, (ax, ax2) = plt.subplots(2, 1, figsize=(6.4, 6.8), sharex=True, height_ratios=(3, 2))
    else:
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for r in results:
        steps, curve = learning_curve(r.metrics, num_points)
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # windows before any episode ended
            mean = np.nanmean(curve, axis=0)
            n = np.sum(np.isfinite(curve), axis=0)
            se = np.nanstd(curve, axis=0, ddof=1) / np.sqrt(np.maximum(n, 1)) if curve.shape[0] > 1 else np.zeros_like(mean)
        ax.plot(steps, mean, label=f"{r.rule_name} ({curve.shape[0]} seeds)")
        ax.fill_between(steps, mean - se, mean + se, alpha=0.25)
    ax.set_ylabel("mean episode return")
    ax.set_title(task_name)
    ax.grid(alpha=0.3)
    ax.legend()
    if drifting:  # how much each mirror-learning rule's drift acts, after each update
        for i, r in enumerate(drifting):
            steps, _ = learning_curve(r.metrics, num_points)
            color = f"C{results.index(r)}"
            for key, style in (("drift_active_after", "-"), ("clip_fraction_after", ":")):
                w = windowed(np.asarray(r.metrics[key]), len(steps)).mean(axis=0)
                label = f"{r.rule_name}: {'drift active' if style == '-' else '|r − 1| > ε'}"
                ax2.plot(steps[: len(w)], w, style, color=color, label=label)
        ax2.set_ylabel("fraction of samples")
        ax2.set_xlabel("environment steps")
        ax2.grid(alpha=0.3)
        ax2.legend(fontsize=7)
    else:
        ax.set_xlabel("environment steps")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_run(out: Path, task, results: list[RunResult], extra_config: dict[str, Any] | None = None, skipped: dict[str, str] | None = None) -> dict[str, Any]:
    """Write config.json, metrics.csv, summary.json, curves.png and agents.eqx (the final agents,
    `learned_rl.load_agents`) for one or more rules; `skipped` (rule -> why it could not run) goes
    into summary.json."""
    out.mkdir(parents=True, exist_ok=True)
    config = {
        "task": task.name,
        "rules": {r.rule_name: r.config.to_dict() for r in results},
        **(extra_config or {}),
    }
    write_json(out / "config.json", config)
    rows = [row for r in results for row in curve_rows(r)]
    write_csv(out / "metrics.csv", rows)
    summary = {"task": task.name, "results": {r.rule_name: summarize(task, r) for r in results}}
    if skipped:
        summary["skipped"] = skipped
    write_json(out / "summary.json", summary)
    plot_curves(out / "curves.png", task.name, results)
    save_agents(out, task, results)
    return summary


def write_results_md(path: Path, summary: dict[str, Any]) -> None:
    """A markdown table: final return ± standard error, fraction of optimal (where known), seeds,
    env steps and wall time (compile included) per rule."""
    rows = summary["results"]
    has_norm = any("normalized_return" in r for r in rows.values())
    lines = [f"# {summary['task']}", ""]
    head = "| rule | final return | " + ("fraction of optimal | " if has_norm else "") + "seeds | env steps | wall time (s) |"
    lines += [head, "|" + "---|" * (head.count("|") - 1)]
    for name, r in rows.items():
        cell = f"| {name} | {r['final_return_mean']:.3f} ± {r['final_return_stderr']:.3f} | "
        if has_norm:
            cell += f"{r['normalized_return']:.3f} ± {r['normalized_return_stderr']:.3f} | " if "normalized_return" in r else "– | "
        cell += f"{r['seeds']} | {r['env_steps']:,} | {r['wall_time_s']:.1f} |"
        lines.append(cell)
    active = {n: r["drift_activity"] for n, r in rows.items() if "drift_activity" in r}
    if active:
        lines += ["", "How much each drift acts after an update (first / middle / last third of the run):", ""]
        lines += ["| rule | drift active | \\|r − 1\\| > ε | KL(π_old ‖ π) |", "|---|---|---|---|"]
        fmt = lambda xs, f: " / ".join(format(x, f) for x in xs)
        for name, a in active.items():
            lines.append(f"| {name} | {fmt(a['drift_active'], '.3f')} | {fmt(a['clip_fraction'], '.3f')} | {fmt(a['approx_kl'], '.2e')} |")
    for name, why in summary.get("skipped", {}).items():
        lines.append(f"\n{name}: not run ({why})")
    lines.append("\nFinal return: mean episode return over the last 10% of training, averaged over seeds (± standard error).")
    atomic_write(path, "\n".join(lines) + "\n")


def apply_recipe(recipe: Recipe, rule, task, rule_name: str):
    """`(rule, config)`: the recipe's `TrainConfig` and its update hyperparameters on `rule`, or a
    one-line `ValueError` when the recipe is not for the task's family or the rule lacks one of
    the fields it sets (A2C and LPG have no minibatches or epochs)."""
    recipe.check_task(task)
    missing = sorted(set(recipe.rule) - set(settable_rule_fields(rule)))
    if missing:
        raise ValueError(f"recipe {recipe.name!r} sets {', '.join(missing)}, which {rule_name} does not have "
                         "(a recipe configures the mirror-learning rules: ppo, dpo, lpo)")
    rule, config, _ = apply_overrides(rule, recipe.config, recipe.rule, prefix=f"recipe {recipe.name}: ")
    return rule, config


def compare(task_name: str, rule_names: list[str], *, steps, seeds: int, seed: int, out: Path, progress: bool, extra_config=None, sets: dict[str, Any] | None = None,
            callback: Callable[[str, dict[str, np.ndarray]], Any] | None = None, tuned: dict[str, dict[str, float]] | None = None,
            recipe: str | None = None):
    """Validate everything, then train each rule (S vmapped seeds each) and write one run
    directory: config.json, metrics.csv, summary.json, curves.png, agents.eqx and results.md.

    A rule that cannot run on the task (`rule.check_task`: LPG on continuous actions, say) is
    reported in `summary.json` under ``"skipped"`` and in results.md, not crashed on; an unknown
    rule name or a broken rule file is an error before anything runs.

    `sets` (``--set FIELD=VALUE``) replaces hyperparameters of every rule that has the field, or of
    every rule's `TrainConfig` (`learned_rl._learner.apply_overrides`); a field no rule and no
    config has is an error. `tuned` maps a rule name to one point of `run_sweep`'s fields
    (``{"learning_rate": 3e-4, "alpha_y": 0.5}``) applied to that rule only, after `sets` (how
    `transfer` uses hyperparameters chosen on validation tasks). `callback` is `run_seeds`'s, for
    every rule. `recipe` (``--recipe NAME``, one of `learned_rl._defaults.RECIPES`) replaces every
    rule's default config and update hyperparameters with a published codebase's (`apply_recipe`);
    `steps` and `sets` then apply on top of it.
    """
    if not rule_names:
        raise ValueError("no rules given")
    if len(set(rule_names)) != len(rule_names):
        raise ValueError(f"duplicate rules in {','.join(rule_names)}")
    task = make_task(task_name)
    rec = get_recipe(recipe) if recipe is not None else None
    if rec is not None:
        rec.check_task(task)
    sets = dict(sets or {})
    check_sets(sets)
    plans, skipped, used = [], {}, set()
    for name in rule_names:
        rule = make_rule(name)
        try:
            rule.check_task(task)  # the rule's declared capability (action kinds)
            config = default_config_for(rule, task, sets, prefix="--set ")
        except ValueError as e:
            if len(rule_names) == 1:
                raise
            skipped[name] = str(e)
            continue
        if rec is not None:  # a rule the recipe cannot configure is an error, not a skipped rule
            rule, config = apply_recipe(rec, rule, task, name)
        rule, config, applied = apply_overrides(rule, config, sets, prefix="--set ")  # a bad value is an error, not a skipped rule
        if steps is not None:  # after the overrides: a budget is checked against the rollout they set
            config = config.replace(total_steps=steps)
        used.update(applied)
        if tuned and name in tuned:  # one grid point (`run_sweep`'s fields), for this rule only
            check_grid(rule, {k: [v] for k, v in tuned[name].items()})
            rule, config = apply_point(rule, config, tuned[name])
        plans.append((name, rule, config))
    if not plans:
        raise ValueError(f"no rule can run on {task.name!r}: " + "; ".join(f"{k}: {v}" for k, v in skipped.items()))
    unknown = sorted(set(sets) - used)
    if unknown:
        raise ValueError(f"--set: no rule in {','.join(rule_names)} and no TrainConfig has the fields {unknown} (config fields: {', '.join(CONFIG_FIELDS + AGENT_FIELDS)})")
    if rec is not None:
        extra_config = {**(extra_config or {}), "recipe": {"name": rec.name, "source": rec.source}}
    if sets:
        extra_config = {**(extra_config or {}), "sets": sets, "rule_fields": {n: settable_rule_fields(r) for n, r, _ in plans}}
    if tuned:
        unknown = sorted(set(tuned) - set(rule_names))
        if unknown:
            raise ValueError(f"tuned hyperparameters for {unknown}, which are not among the rules {','.join(rule_names)}")
        extra_config = {**(extra_config or {}), "tuned": tuned}
    results = [
        run_seeds(rule, task, config, num_seeds=seeds, seed=seed, rule_name=name, progress=progress, callback=callback)
        for name, rule, config in plans
    ]
    summary = write_run(out, task, results, extra_config, skipped)
    write_results_md(out / "results.md", summary)
    return task, results, summary


# ------------------------------------------------------------------ sweeps as one program

SWEEP_CONFIG_FIELDS = ("learning_rate",)  # TrainConfig fields a sweep varies inside one program


def _getter(path: str):
    parts = path.split(".")

    def get(obj):
        for p in parts:
            obj = getattr(obj, p)
        return obj

    return get


def _replace_path(rule, path: str, value):
    """`rule` with the field at `path` (``gamma`` or ``drift.alpha``) replaced through the
    constructors, so every check of the rule and its parts runs on the value."""
    head, _, rest = path.partition(".")
    if not rest:
        return dataclasses.replace(rule, **{head: value})
    return dataclasses.replace(rule, **{head: _replace_path(getattr(rule, head), rest, value)})


def check_grid(rule, grid: dict[str, list[float]]) -> list[str]:
    """The rule's paths among `grid`'s fields (the others are `SWEEP_CONFIG_FIELDS`), after checking
    that each names a float hyperparameter of the rule, or a one-line `ValueError`."""
    if not grid or any(not isinstance(v, (list, tuple)) or not v for v in grid.values()):
        raise ValueError("a sweep needs at least one field with at least one value")
    rule_paths = [p for p in grid if p not in SWEEP_CONFIG_FIELDS]
    for path in rule_paths:
        try:
            current = _getter(path)(rule.overridable({path.partition(".")[0]}))
        except AttributeError:
            raise ValueError(f"sweep: {type(rule).__name__} has no field {path!r} (sweepable: learning_rate and the rule's float fields)") from None
        if isinstance(current, bool) or not isinstance(current, float):
            raise ValueError(f"sweep: {path!r} is {current!r}, not a float hyperparameter; only floats vary inside one program "
                             f"(a field that changes the program's shape, such as num_minibatches, needs separate runs)")
    return rule_paths


def apply_point(rule, config: TrainConfig, point: dict[str, float]):
    """`(rule, config)` with one grid point's values: ``learning_rate`` in the config, every other
    field (``alpha_y``, ``drift.alpha``, ...) in the rule, through the constructors so that every
    check of the rule, its parts and the config runs on the value."""
    rule = rule.overridable({path.partition(".")[0] for path in point if path not in SWEEP_CONFIG_FIELDS})
    for path, value in point.items():
        if path in SWEEP_CONFIG_FIELDS:
            config = config.replace(**{path: float(value)})
        else:
            rule = _replace_path(rule, path, float(value))
    return rule, config


def sweep_points(grid: dict[str, list[float]]) -> list[dict[str, float]]:
    """The cartesian product of a grid ``{field: [values]}``, the last field varying fastest."""
    names = list(grid)
    return [dict(zip(names, combo)) for combo in itertools.product(*(grid[n] for n in names))]


@dataclasses.dataclass
class SweepResult:
    """`run_sweep`'s outcome: the grid's points, metrics with leading axes ``[points, seeds]``,
    the final states and the wall time (compile included)."""

    rule_name: str
    config: TrainConfig
    points: list[dict[str, float]]
    metrics: dict[str, np.ndarray]
    state: LearnerState
    wall_time: float


def run_sweep(rule, task, config: TrainConfig, grid: dict[str, list[float]], *, num_seeds: int = 1, seed: int = 0,
              rule_name: str | None = None, progress: bool = True) -> SweepResult:
    """Train every point of a hyperparameter grid × `num_seeds` seeds as one compiled program.

    `grid` maps a field to its values: ``learning_rate`` (the `TrainConfig`'s; with `anneal_lr`
    each run anneals from its own rate), or a float hyperparameter of the rule, also inside its
    parts (``gamma``, ``gae_lambda``, ``ent_coef``, ``vf_coef``, ``drift.epsilon``,
    ``drift.alpha``, ...). Each point is first built and checked as an ordinary rule; inside the
    program the values are arrays, one per point, vmapped like the seeds. Fields that change the
    program's shape (``num_minibatches``, ``num_envs``, ...) cannot vary inside one program: run
    them as separate sweeps. Every point uses the same seeds (`seed_keys`), so points are paired.
    """
    if num_seeds <= 0:
        raise ValueError(f"number of seeds must be positive, got {num_seeds}")
    rule_paths = check_grid(rule, grid)
    rule = rule.overridable({path.partition(".")[0] for path in rule_paths})
    points = sweep_points(grid)
    for p in points:  # every point is an ordinary, checked rule and config
        apply_point(rule, config, p)
    name = rule_name or rule.name
    values = {path: jnp.asarray([float(p[path]) for p in points], jnp.float32) for path in rule_paths}
    lrs = jnp.asarray([float(p.get("learning_rate", config.learning_rate)) for p in points], jnp.float32)
    keys = seed_keys(seed, num_seeds)
    start = time.time()

    def point_rule(vals):
        r = rule
        for path in rule_paths:
            r = eqx.tree_at(_getter(path), r, vals[path])
        return r

    @eqx.filter_jit
    def init_all(vals, lrs):
        return jax.vmap(lambda v, lr: jax.vmap(lambda k: init(point_rule(v), task, config, key=k, learning_rate=lr))(keys))(vals, lrs)

    def make_chunk(chunk, stop_at):
        return eqx.filter_jit(
            lambda vals, states: jax.vmap(lambda v, st: jax.vmap(lambda s: run(point_rule(v), task, config, s, chunk, stop_at=stop_at))(st))(vals, states)
        )

    states = _init_within_memory(init_all, values, lrs, runs=len(points) * num_seeds, desc=f"sweep {name} on {task.name}")
    states, metrics = _run_chunked(values, make_chunk, states, config, runs=len(points) * num_seeds,
                                   desc=f"sweep {name} on {task.name}", progress=progress)
    return SweepResult(name, config, points, metrics, states, time.time() - start)


def summarize_sweep(task, result: SweepResult) -> dict[str, Any]:
    """Per point: the final return of each seed, their mean ± standard error and (mirror-learning
    rules) the drift activity; and the best point by mean final return."""
    rows = []
    for i, p in enumerate(result.points):
        m = {k: v[i] for k, v in result.metrics.items()}
        finals = final_return(m, result.config.final_fraction)
        row = {"point": p, "final_returns": [float(x) for x in finals], "final_return_mean": float(np.nanmean(finals)),
               "final_return_stderr": float(np.nanstd(finals, ddof=1) / math.sqrt(len(finals))) if len(finals) > 1 else 0.0}
        activity = drift_activity_summary(m)
        if activity:
            row["drift_activity"] = activity
        rows.append(row)
    best = int(np.nanargmax([r["final_return_mean"] for r in rows]))
    return {"task": task.name, "rule": result.rule_name, "seeds": len(rows[0]["final_returns"]),
            "env_steps": int(result.config.num_updates * result.config.steps_per_update),
            "wall_time_s": round(result.wall_time, 2), "points": rows, "best": rows[best]["point"]}


def plot_sweep(path: Path, summary: dict[str, Any]) -> None:
    """Final return against the first swept field (log axis for positive values spanning 10× or
    more), one line per value of the other fields, with standard-error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = summary["points"]
    names = list(rows[0]["point"])
    x_name, others = names[0], names[1:]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    groups: dict[tuple, list] = {}
    for r in rows:
        groups.setdefault(tuple(r["point"][o] for o in others), []).append(r)
    for key, rs in groups.items():
        xs = [r["point"][x_name] for r in rs]
        label = ", ".join(f"{o}={v:g}" for o, v in zip(others, key)) or None
        ax.errorbar(xs, [r["final_return_mean"] for r in rs], yerr=[r["final_return_stderr"] for r in rs], marker="o", capsize=3, label=label)
    xs_all = [r["point"][x_name] for r in rows]
    if min(xs_all) > 0 and max(xs_all) >= 10 * min(xs_all):
        ax.set_xscale("log")
    ax.set_xlabel(x_name)
    ax.set_ylabel(f"final return ({summary['seeds']} seeds)")
    ax.set_title(f"{summary['rule']} on {summary['task']}, {summary['env_steps']:,} env steps")
    ax.grid(alpha=0.3)
    if others:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_sweep(out: Path, task, result: SweepResult, extra_config: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write config.json, sweep.json, results.md (one row per point, the best marked) and
    sweep.png for a sweep."""
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "config.json", {"task": task.name, "rule": result.rule_name, "config": result.config.to_dict(),
                                     "grid": {k: sorted({p[k] for p in result.points}) for k in result.points[0]}, **(extra_config or {})})
    summary = summarize_sweep(task, result)
    write_json(out / "sweep.json", summary)
    names = list(result.points[0])
    lines = [f"# {result.rule_name} on {task.name}: sweep", "",
             f"{summary['seeds']} seeds per point (the same seeds at every point), {summary['env_steps']:,} env steps per run, "
             f"{len(result.points)} points in one program ({summary['wall_time_s']:.1f} s, compile included).", ""]
    head = "| " + " | ".join(names) + " | final return | drift active |"
    lines += [head, "|" + "---|" * (len(names) + 2)]
    for r in summary["points"]:
        act = r.get("drift_activity", {}).get("drift_active")
        mark = " (best)" if r["point"] == summary["best"] else ""
        lines.append("| " + " | ".join(f"{r['point'][n]:g}" for n in names) + f" | {r['final_return_mean']:.2f} ± {r['final_return_stderr']:.2f}{mark} | "
                     + (" / ".join(f"{a:.3f}" for a in act) if act else "–") + " |")
    lines.append("\nFinal return: mean episode return over the last 10% of training (± standard error over seeds). "
                 "Drift active: fraction of samples where a mirror-learning drift acts, first / middle / last third of the run.")
    atomic_write(out / "results.md", "\n".join(lines) + "\n")
    plot_sweep(out / "sweep.png", summary)
    return summary
