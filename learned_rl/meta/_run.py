"""`learned-rl meta-train lpg|lpo`: a meta-training run directory with checkpoints, metrics and plots.

One runner for every rule kind and estimator: `lpg` (truncated meta-gradients or evolution
strategies over whole lifetimes) and `lpo` (a PPO drift meta-trained by evolution strategies), both
built from their typed preset (`_presets.py`). Which metrics go into a CSV row and the plot, and
what the saved rule records, follow the estimator (`_reporting`, `_finish`), not the rule kind.

Files in the run directory:

- `checkpoint.eqx`: the full `MetaState` (rule, Adam state, every lifetime, bandits, step), written
  atomically right after the first meta-step, then every `checkpoint_every` seconds (at a logging
  boundary) and at the end; its header also keeps the metrics of a logging window not yet written
  to `metrics.csv`, so a resume from any checkpoint writes the same rows;
- `checkpoint.prev.eqx`: the checkpoint before the newest one. A newest checkpoint that is missing
  or fails its checksum is named in a one-line notice and the run resumes from this one;
- `rule.eqx`: the learned rule (loadable with `learned_rl.load_rule`), written at the end;
- `metrics.csv`: one row per `log_every` meta-steps;
- `curves.png`: truncated meta-gradients: meta-objective, lifetime returns per task, bandit arm
  probabilities; evolution strategies: fitness (mean, max, min over the population and the
  unperturbed mean rule), σ and the norm of the ES step.

`resume=True` continues from `checkpoint.eqx` (or `checkpoint.prev.eqx`, see above). Meta-step i
always uses ``fold_in(key, i)``, so a resumed run writes the same rule and metrics as an
uninterrupted one. On a directory with no checkpoint yet (a run killed while compiling) it starts
from the beginning with a one-line notice; a directory holding another run's files is refused.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import numpy as np

from .. import tasks as task_registry
from .._checkpoint import CheckpointError, load, read_header, save
from .._io import write_csv, write_json
from .._memory import RunTooLarge
from .._registry import rule_file
from .._rules_io import load_rule, save_rule
from ._meta_train import meta_init, meta_train
from ._presets import LPGPreset, LPOPreset, get_lpo_preset, get_preset
from ._problems import LPGLifetimes
from ._sharding import check_divisible, host_copy, is_writer, population_mesh

STATE_KIND = "lpg-meta-state"  # the lpg kind's checkpoint kind; lpo uses "lpo-meta-state"


def _jsonable(x):
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    return x


def _rows(history: list[tuple[int, dict]], est) -> dict[str, Any]:
    """Aggregate the per-step metrics of one logging window into one CSV row."""
    step = history[-1][0]
    ms = [m for _, m in history]
    row: dict[str, Any] = {"step": step, "env_steps": step * est.env_steps_per_estimate()}
    for k in ("meta_loss", "critic_loss", "grad_norm"):
        row[k] = float(np.mean([m[k] for m in ms]))
    row["skipped"] = int(np.sum([m["skipped"] for m in ms]))
    row["agent_resets"] = int(np.sum([m["agent_resets"] for m in ms]))  # diverged lifetimes restarted
    for t in est.tasks:
        n = t.name
        row[f"lifetime_return/{n}"] = float(np.mean([m[f"lifetime_return/{n}"] for m in ms]))
        ended = float(np.sum([m[f"lifetimes_ended/{n}"] for m in ms]))
        fsum = float(np.sum([m[f"final_return_sum/{n}"] for m in ms]))
        row[f"final_return/{n}"] = fsum / ended if ended else float("nan")
        row[f"critic_loss/{n}"] = float(np.mean([m[f"critic_loss/{n}"] for m in ms]))
        if all(f"task_grad_norm/{n}" in m for m in ms):  # the task's meta-gradient norm, unweighted
            row[f"task_grad_norm/{n}"] = float(np.mean([m[f"task_grad_norm/{n}"] for m in ms]))
        probs = ms[-1][f"arm_probs/{n}"]
        for (lr, a), p in zip(est.problem.arms_for(t), probs):
            row[f"arm_prob/{n}/lr{lr:g}_ay{a:g}"] = float(p)
    return row


def _plot(path: Path, rows: list[dict[str, Any]], est) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not rows:
        return
    steps = np.array([r["step"] for r in rows])
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    axes[0].plot(steps, [r["meta_loss"] for r in rows], label="meta-loss")
    axes[0].plot(steps, [r["critic_loss"] for r in rows], label="meta-critic loss")
    axes[0].set_xlabel("meta-step")
    axes[0].set_title("meta-objective")
    axes[0].legend()
    for t in est.tasks:
        axes[1].plot(steps, [r[f"lifetime_return/{t.name}"] for r in rows], label=t.name)
    axes[1].set_xlabel("meta-step")
    axes[1].set_title("lifetime return (EMA over the population)")
    axes[1].legend(fontsize=7)
    for i, t in enumerate(est.tasks):
        arms = est.problem.arms_for(t)
        probs = np.array([[r[f"arm_prob/{t.name}/lr{lr:g}_ay{a:g}"] for lr, a in arms] for r in rows])
        best = np.argmax(probs[-1])
        lr, a = arms[best]
        axes[2].plot(steps, probs[:, best], label=f"{t.name}: lr {lr:g}, α_y {a:g}")
    axes[2].set_ylim(0, 1)
    axes[2].set_xlabel("meta-step")
    axes[2].set_title("bandit: probability of each task's leading arm")
    axes[2].legend(fontsize=7)
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _read_rows(path: Path, upto_step: int) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    with open(path) as f:
        rows = [
            {k: (float(v) if k not in ("step", "env_steps", "skipped", "agent_resets", "nan_members") else int(float(v))) for k, v in r.items()}
            for r in csv.DictReader(f)
        ]
    return [r for r in rows if r["step"] <= upto_step]


def _write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    if rows:
        write_csv(path, rows)


def _es_rows(history: list[tuple[int, dict]], est) -> dict[str, Any]:
    """One CSV row (means over the logging window) of an evolution-strategies run."""
    step = history[-1][0]
    ms = [m for _, m in history]
    row: dict[str, Any] = {"step": step, "env_steps": step * est.env_steps_per_estimate()}
    row["skipped"] = int(np.sum([m["skipped"] for m in ms]))
    keys = ["meta_loss", "grad_norm", "fitness_mean", "fitness_max", "fitness_min", "fitness_std", "sigma", "param_norm"]
    keys += [k for k in ("center_fitness",) if k in ms[-1]]
    keys += sorted(k for k in ms[-1] if "/" in k)
    for k in keys:
        row[k] = float(np.mean([m[k] for m in ms]))
    row["nan_members"] = int(np.sum([m["nan_members"] for m in ms]))
    return row


def _es_plot(path: Path, rows: list[dict[str, Any]], est) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not rows:
        return
    g = np.array([r["step"] for r in rows])
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    ax = axes[0]
    ax.fill_between(g, [r["fitness_min"] for r in rows], [r["fitness_max"] for r in rows], alpha=0.2, label="population min–max")
    ax.plot(g, [r["fitness_mean"] for r in rows], label="population mean")
    if "center_fitness" in rows[0]:
        ax.plot(g, [r["center_fitness"] for r in rows], label="mean rule (unperturbed)")
    ax.set_title("fitness: final return of an inner run" + (f" ({est.tasks[0].name})" if len(est.tasks) == 1 else ""))
    ax.legend(fontsize=8)
    axes[1].plot(g, [r["sigma"] for r in rows])
    axes[1].set_title("σ")
    axes[2].plot(g, [r["grad_norm"] for r in rows], label="ES gradient norm")
    axes[2].plot(g, [r["param_norm"] for r in rows], label="meta-parameter norm")
    axes[2].set_yscale("log")
    axes[2].legend(fontsize=8)
    for a in axes:
        a.set_xlabel("generation")
        a.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _finish(rule, state, est, preset):
    """The rule to save and what its metadata records about how it was meta-trained: under
    truncated meta-gradients on LPG lifetimes, the bandits' preferred arm (set on the rule); under
    evolution strategies, the strategy, population and the members' training runs."""
    extra: dict[str, Any] = {}
    if isinstance(est.problem, LPGLifetimes):
        lr, alpha = est.problem.preferred_arm(state.estimator_state)
        records = est.problem.family_records(state.estimator_state)
        # the rule's own learning rate is the lookup-table agents' SGD rate: set only from their arm
        rule = (rule.with_arm(lr, alpha) if "tabular" in records else rule.with_arm(alpha_y=alpha)).with_families(records)
        extra["preferred_arm"] = {"learning_rate": lr, "alpha_y": alpha}
        extra["families"] = records
    else:
        cfg = est.problem.configs[0]
        extra.update(
            estimator=type(est).__name__, strategy=getattr(est, "strategy", "openes"), population=est.population,
            inner_env_steps=cfg.num_updates * cfg.steps_per_update, generations=int(state.step),
        )
        if est.problem.horizons:
            extra["horizons"] = list(est.problem.horizons)
    if rule.temporal and isinstance(preset, LPGPreset):
        extra["lifetime_range"] = list(preset.lifetime_range())  # the N a TA-LPG rule was meta-trained on
    return rule, extra


def _reporting(est):
    """How a run's metrics become CSV rows and curves.png: by the kind of estimate (truncated
    meta-gradients on LPG lifetimes, or evolution strategies), not by the rule's kind.
    Returns `(row, plot, progress-bar key)`."""
    if isinstance(est.problem, LPGLifetimes):
        return _rows, _plot, "meta_loss"
    return _es_rows, _es_plot, "fitness_mean"


def _build(get_preset_fn):
    """A kind's builder: its named preset with the overrides, then `preset.build` (the one typed
    config path: the same preset object builds the run and is written to config.json)."""

    def build_fn(preset: str, steps, overrides, task_objs, key):
        p = get_preset_fn(preset, steps=steps, **(overrides or {}))
        rule, est, cfg = p.build(task_objs, key=key)
        est.validate(rule, task_objs)
        return p, rule, est, cfg

    return build_fn


# kind -> (build, checkpoint kind)
_KINDS = {
    "lpg": (_build(get_preset), STATE_KIND),
    "lpo": (_build(get_lpo_preset), "lpo-meta-state"),
}


def warm_start(kind: str, rule, ref: str):
    """`rule` with the meta-parameters of the saved rule `ref` (a path or a shipped name), and a
    JSON-able record of where they came from. Raises `ValueError` if `ref` is another kind of rule
    or has another architecture than `rule`."""
    path = rule_file(kind, ref)
    loaded = load_rule(path, kind=kind)
    new_p, _ = eqx.partition(loaded, eqx.is_inexact_array)
    old_p, static = eqx.partition(rule, eqx.is_inexact_array)
    # the meta-parameters must match leaf for leaf (path and shape); static agent settings such as
    # the recorded regime may differ and are the preset's
    new_l = jax.tree_util.tree_leaves_with_path(new_p)
    old_l = jax.tree_util.tree_leaves_with_path(old_p)
    same = len(new_l) == len(old_l) and all(
        jax.tree_util.keystr(pa) == jax.tree_util.keystr(pb) and a.shape == b.shape for (pa, a), (pb, b) in zip(new_l, old_l)
    )
    if not same:
        raise ValueError(f"--init-rule {ref}: its architecture differs from the preset's (choose the preset it was trained with, or --set its sizes)")
    header, _ = read_header(path)
    params = jax.tree.unflatten(jax.tree.structure(old_p), [a for _, a in new_l])
    return eqx.combine(params, static), {"ref": ref, "sha256": header["sha256"]}


PREV_CHECKPOINT = "checkpoint.prev.eqx"
_RUN_FILES = {"config.json"}  # what a run writes before its first checkpoint


def _config_mismatch(saved: dict[str, Any], run_config: dict[str, Any]) -> list[str]:
    """The fields in which a saved run config differs from this run's (the meta-step count may).
    A saved preset written under a field's old name is read under its new one."""
    preset_cls = LPOPreset if run_config.get("kind") == "lpo" else LPGPreset
    if isinstance(saved.get("preset"), dict):
        saved = {**saved, "preset": preset_cls.upgrade_json(saved["preset"])}
    return [
        k for k in set(saved) | set(run_config)
        if k != "preset" and saved.get(k) != run_config.get(k)
    ] + [
        f"preset.{k}" for k in set(saved.get("preset", {})) | set(run_config["preset"])
        if k != "steps" and saved.get("preset", {}).get(k) != run_config["preset"].get(k)
    ]


def _notice(msg: str) -> None:
    if is_writer():
        print(f"notice: {msg}", file=sys.stderr, flush=True)


def _resume_checkpoint(out: Path, ckpt: Path, prev: Path, run_config: dict[str, Any]):
    """Which checkpoint a resume continues from: `(path, header)`, or `(None, None)` to start from
    the beginning (the directory holds this run but no checkpoint yet). Raises `CheckpointError`
    for another run's directory or when no checkpoint can be read; reads nothing else."""
    if not ckpt.exists() and not prev.exists():
        files = sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) if out.is_dir() else []
        if "config.json" in files:
            try:
                saved = json.loads((out / "config.json").read_text())
            except (OSError, json.JSONDecodeError):
                raise CheckpointError(f"{out}/config.json: unreadable; this directory is not a resumable run") from None
            saved = {k: v for k, v in saved.items() if k != "env_steps_per_meta_step"} if isinstance(saved, dict) else {}
            mismatch = _config_mismatch(saved, run_config)
            if mismatch:
                raise CheckpointError(f"{out}/config.json: another run's directory ({', '.join(sorted(mismatch))} differ); choose another --out")
        others = [f for f in files if f not in _RUN_FILES]
        if others:
            raise CheckpointError(f"{ckpt}: no such file, and {out} holds other files ({', '.join(others)}); choose another --out")
        _notice(f"{out} has no checkpoint yet (the run stopped before its first one); starting from the beginning")
        return None, None
    try:
        path, (header, _) = ckpt, read_header(ckpt)
    except CheckpointError as e:
        try:
            path, (header, _) = prev, read_header(prev)
        except CheckpointError as e_prev:
            if not prev.exists():
                raise e from None
            raise CheckpointError(f"{e}; {prev.name} is unusable too ({str(e_prev).split(': ', 1)[-1]})") from None
        _notice(f"{e}; resuming from {prev.name} instead")
    mismatch = _config_mismatch(header.get("config", {}), run_config)
    if mismatch:
        raise CheckpointError(f"{path}: saved with a different config ({', '.join(sorted(mismatch))} differ)")
    return path, header


def _encode_window(window: list[tuple[int, dict]]) -> list:
    """A logging window's per-step metrics as JSON (dtype, shape and exact values)."""
    out = []
    for step, m in window:
        enc = {}
        for k, v in m.items():
            a = np.asarray(v)
            enc[k] = [a.dtype.str, list(a.shape), a.ravel().tolist()]
        out.append([int(step), enc])
    return out


def _decode_window(data: list) -> list[tuple[int, dict]]:
    return [
        (int(step), {k: np.asarray(vals, dtype=np.dtype(dt)).reshape(shape) for k, (dt, shape, vals) in enc.items()})
        for step, enc in data
    ]


def run_meta_train(
    kind: str,
    tasks_spec: str,
    *,
    preset: str = "cpu",
    steps: int | None = None,
    seed: int = 0,
    out: str | Path = "runs/meta-lpg",
    resume: bool = False,
    progress: bool = True,
    log_every: int = 10,
    checkpoint_every: float = 180.0,
    preset_overrides: dict[str, Any] | None = None,
    devices: int | str | None = None,
    init_rule: str | None = None,
    max_seconds: float | None = None,
    on_row: Callable[[dict[str, Any]], None] | None = None,
    snapshot_every: int | None = None,
) -> dict[str, Any]:
    """Meta-train a learned rule (`kind` ``"lpg"`` or ``"lpo"``) and write the run directory (see
    the module docstring). For lpo, `steps` counts ES generations and `preset_overrides` may set
    the ES fields (``population``, ``inner_env_steps``, ``sigma``, ...). `devices` (``None``, ``N`` or
    ``"all"``) splits the estimator's population across devices (`MetaTrainConfig.devices`); it is
    not part of the run's config, so a run may be resumed on a different number of devices.
    `init_rule` (a rule file or a shipped rule's name, e.g. ``"lpg_tabular"``) starts meta-training
    from that rule's meta-parameters instead of random ones (warm start); its architecture must be
    the preset's. It is part of the run's config (with the file's SHA-256). `max_seconds` stops
    the run after the first meta-step that ends past that many seconds of this call (compilation
    included), with its checkpoint, metrics and rule written as at the end; ``resume=True``
    continues it to `steps`. `on_row` (for example `TensorBoardTracker.log_row`) receives each
    row of `metrics.csv` as it is made, on the process that writes the files; it is not part of the
    run's config. `snapshot_every` (``N``) also writes the rule as it stands every N meta-steps
    (generations) to ``snapshots/rule_STEP.eqx``, with the metadata `rule.eqx` would have at that
    step, so that the step to keep can be chosen afterwards on held-out tasks (a rule's transfer
    can peak long before its meta-training tasks stop improving); it is not part of the run's
    config either.

    Everything is validated before any compilation or file write; bad input raises `ValueError`.
    """
    if kind not in _KINDS:
        raise ValueError(f"meta-train: unknown rule kind {kind!r} (available: {', '.join(_KINDS)})")
    build_fn, state_kind = _KINDS[kind]
    if log_every <= 0:
        raise ValueError("log_every must be positive")
    if max_seconds is not None and not max_seconds > 0:
        raise ValueError(f"max_seconds must be positive, got {max_seconds!r}")
    if snapshot_every is not None and (isinstance(snapshot_every, bool) or not isinstance(snapshot_every, int) or snapshot_every <= 0):
        raise ValueError(f"snapshot_every must be a positive whole number of meta-steps, got {snapshot_every!r}")
    mesh = population_mesh(devices)  # a bad or unavailable device count fails before anything runs
    names = task_registry.resolve(tasks_spec)
    task_objs = [task_registry.make(n) for n in names]
    out = Path(out)
    ckpt = out / "checkpoint.eqx"
    key = jax.random.PRNGKey(seed)
    k_rule, k_meta = jax.random.split(key)
    p, rule, est, cfg = build_fn(preset, steps, preset_overrides, task_objs, k_rule)
    row_fn, plot_fn, postfix_key = _reporting(est)
    run_config = _jsonable({"kind": kind, "tasks": names, "preset_name": preset, "preset": p.to_json(), "seed": seed, "log_every": log_every})
    if init_rule is not None:
        rule, run_config["init_rule"] = warm_start(kind, rule, init_rule)
    cfg = dataclasses.replace(cfg, devices=devices)
    check_divisible(est.population_size(), mesh, f"{kind} population ({type(est).__name__})")

    prev = out / PREV_CHECKPOINT
    state = None
    rows: list[dict[str, Any]] = []
    window: list[tuple[int, dict]] = []
    rotate = [False]  # whether checkpoint.eqx is a good checkpoint of this run (kept as .prev on the next save)
    if resume:
        path, header = _resume_checkpoint(out, ckpt, prev, run_config)
        if path is not None:
            like = eqx.filter_eval_shape(meta_init, rule, task_objs, est, cfg, key=k_meta)
            _, state = load(path, lambda c: like, kind=state_kind)
            rows = _read_rows(out / "metrics.csv", int(state.step))
            window = _decode_window(header.get("pending_metrics", []))
            rotate[0] = path == ckpt
    elif ckpt.exists() or prev.exists():
        raise ValueError(f"{ckpt if ckpt.exists() else prev} exists: pass --resume to continue it, or choose another --out")

    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "config.json", {**run_config, "env_steps_per_meta_step": est.env_steps_per_estimate()})
    start = time.time()
    last_ckpt = [time.time()]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.steps, initial=int(state.step) if state is not None else 0, desc=f"meta-train {kind} on {tasks_spec}", unit="step")

    saved_step = [int(state.step) if state is not None else -1]

    def checkpoint(s):
        if int(s.step) == saved_step[0]:
            return  # already saved (the final call after a checkpoint at the last step)
        saved_step[0] = int(s.step)
        s = host_copy(s)  # several hosts: gather the sharded population (every process calls this)
        if is_writer():
            # rows first: a kill between the two leaves rows past the checkpoint, which a resume
            # drops (it keeps rows up to the checkpoint's step); the other order would lose rows
            _write_rows(out / "metrics.csv", rows)
            if rotate[0] and ckpt.exists():
                os.replace(ckpt, prev)  # a kill from here to the save below: the resume takes prev
            save(ckpt, s, kind=state_kind, config=run_config, extra={"pending_metrics": _encode_window(window)})
            rotate[0] = True
        last_ckpt[0] = time.time()

    step_times: list[float] = []  # when each meta-step of this call ended (compile + first, then per step)

    def new_row():
        rows.append(row_fn(window, est))
        window.clear()
        if on_row is not None and is_writer():
            on_row(rows[-1])

    def callback(s, m):
        step = int(s.step)
        step_times.append(time.time())
        window.append((step, m))
        if bar is not None:
            bar.update(1)
            bar.set_postfix({postfix_key: f"{float(m[postfix_key]):.3f}"})
        if max_seconds is not None and time.time() - start >= max_seconds:
            if step % log_every == 0:  # the window is a full logging row; a partial one stays pending
                new_row()
            return True  # the final checkpoint below keeps a partial window pending for --resume
        if step % log_every == 0 or step == cfg.steps:
            new_row()
            if step % log_every == 0 and (time.time() - last_ckpt[0] >= checkpoint_every or step == cfg.steps):
                checkpoint(s)
                return
        if step == 1:  # right after the first meta-step: a crash after compiling loses nothing
            checkpoint(s)

    overrides = _jsonable({k: v for k, v in (preset_overrides or {}).items() if v is not None})

    def rule_and_metadata(s):
        """The rule held by state `s` and the metadata its rule file records (as at the end of a run)."""
        r, extra = _finish(s.rule, s, est, p)
        meta = {
            "tasks": names,
            "preset": preset,
            **({"preset_overrides": overrides} if overrides else {}),
            "meta_steps": int(s.step),
            "seed": seed,
            "skipped_steps": int(s.skipped),
            **({"init_rule": run_config["init_rule"]} if "init_rule" in run_config else {}),
            "env_steps": int(s.step) * est.env_steps_per_estimate(),
            **extra,
        }
        if rows and "agent_resets" in rows[0]:
            meta["agent_resets"] = int(sum(row["agent_resets"] for row in rows if int(row["step"]) <= int(s.step)))
        return r, meta

    def callback_with_snapshots(s, m):
        stop = callback(s, m)
        step = int(s.step)
        if snapshot_every is not None and step % snapshot_every == 0:
            s = host_copy(s)  # every process calls this; one writes
            if is_writer():
                r, meta = rule_and_metadata(s)
                (out / "snapshots").mkdir(exist_ok=True)
                save_rule(out / "snapshots" / f"rule_{step:06d}.eqx", r, metadata=meta)
        return stop

    try:
        rule, state, _ = meta_train(rule, task_objs, est, cfg, key=k_meta, state=state, callback=callback_with_snapshots)
    except RunTooLarge:
        if created:  # refused before its first step: leave nothing behind
            (out / "config.json").unlink(missing_ok=True)
            out.rmdir()
        raise
    if bar is not None:
        bar.close()
    checkpoint(state)
    rule, meta = rule_and_metadata(state)  # meta_train's rule is state.rule
    if is_writer():
        # the wall time stays out of the file, so the same seed and config give identical bytes
        save_rule(out / "rule.eqx", rule, metadata=meta)
        _write_rows(out / "metrics.csv", rows)
        plot_fn(out / "curves.png", rows, est)
    meta["wall_time_s_this_session"] = round(time.time() - start, 1)
    if step_times:  # not in the rule file: the same seed and config give identical bytes
        meta["timing"] = {"compile_and_first_s": round(step_times[0] - start, 2)}
        if len(step_times) > 1:
            meta["timing"]["s_per_meta_step"] = round((step_times[-1] - step_times[0]) / (len(step_times) - 1), 4)
    return meta
