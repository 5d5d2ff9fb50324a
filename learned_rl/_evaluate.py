"""Trained agents apart from training: `save_agents` / `load_agents` (a run directory's
`agents.eqx`, one agent per seed and rule, with the level it trained on and its observation
normaliser), and `evaluate` (evaluation episodes with the policy sampled or greedy), which
`learned-rl evaluate RUN_DIR` runs."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import PRNGKeyArray

from ._agent import Agent, make_agent
from ._checkpoint import CheckpointError, load, save
from ._io import write_json
from ._learner import TrainConfig
from ._rollout import RunningMeanStd, normalize_obs
from ._stats import iqm, stratified_bootstrap_ci
from .tasks import make as make_task

AGENTS_FILE = "agents.eqx"
DEFAULT_MAX_STEPS = 10_000  # an episode's cap where the environment names none


def _max_steps(task, env_params) -> int:
    steps = getattr(env_params, "max_steps_in_episode", None)
    if steps is None:
        steps = getattr(task.default_params, "max_steps_in_episode", None)
    try:
        return int(np.max(np.asarray(steps))) if steps is not None else DEFAULT_MAX_STEPS
    except (TypeError, ValueError):
        return DEFAULT_MAX_STEPS


def evaluate(
    agent: Agent,
    task,
    *,
    env_params=None,
    obs_norm: RunningMeanStd | None = None,
    episodes: int = 16,
    greedy: bool = False,
    max_steps: int | None = None,
    key: PRNGKeyArray,
) -> jax.Array:
    """The returns of `episodes` evaluation episodes of one agent, run in parallel from fresh
    resets: the first episode of each of `episodes` environments. Nothing is learned.

    - `env_params`: the level (default: the task's default level); a grid-world agent should be
      evaluated on the level it trained on (`load_agents` returns it).
    - `obs_norm`: the observation normaliser the agent trained with (frozen here), if any.
    - `greedy`: the most probable action (categorical) or the mean (Gaussian, clipped to the
      action bounds) instead of a sample.
    - `max_steps`: the episode cap (default: the environment's ``max_steps_in_episode``, else
      10,000); an episode still running at the cap counts with the return it has reached.

    Pure JAX: `jax.vmap` it over agents (seeds), levels and keys. Returns ``[episodes]``.
    """
    if episodes <= 0:
        raise ValueError(f"evaluate: episodes must be positive, got {episodes}")
    env = task.env
    params = task.default_params if env_params is None else env_params
    cap = int(max_steps) if max_steps is not None else _max_steps(task, params)
    k_reset, k_run = jax.random.split(key)
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(k_reset, episodes), params)
    low = jnp.asarray(agent.action_low, jnp.float32) if agent.continuous else None
    high = jnp.asarray(agent.action_high, jnp.float32) if agent.continuous else None

    def act(obs, k):
        x = normalize_obs(obs_norm, obs)
        if not greedy:
            action, _ = agent.act(x, key=k)
        else:
            out = jax.vmap(agent)(x)
            action = out.logits if agent.continuous else jnp.argmax(out.logits, axis=-1)
        return jnp.clip(action, low, high) if agent.continuous else action

    def cond(c):
        t, _, _, _, done, _ = c
        return jnp.logical_and(t < cap, ~jnp.all(done))

    def body(c):
        t, obs, state, ret, done, k = c
        k, k_act, k_env = jax.random.split(k, 3)
        action = act(obs, k_act)
        obs2, state2, reward, terminated, truncated, _ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
            jax.random.split(k_env, episodes), state, action, params
        )
        ret = ret + jnp.where(done, 0.0, reward.astype(jnp.float32))
        done = done | terminated | truncated
        return t + 1, obs2, state2, ret, done, k

    init = (jnp.zeros((), jnp.int32), obs, state, jnp.zeros(episodes, jnp.float32), jnp.zeros(episodes, bool), k_run)
    return jax.lax.while_loop(cond, body, init)[3]


# ------------------------------------------------------------------ a run's agents on disk


def save_agents(out: Path, task, results) -> Path:
    """Write `out/agents.eqx`: for each rule of `results` (`RunResult`s of one task) the final
    agents of its seeds, the level each trained on and its observation normaliser."""
    tree, config = {}, {"task": task.name, "rules": {}}
    for r in results:
        st = r.state
        agent = st.agent
        seeds = int(jax.tree.leaves(agent)[0].shape[0])
        tree[r.rule_name] = {"agent": agent, "env_params": st.env_params, "obs_norm": st.env.obs_norm}
        config["rules"][r.rule_name] = {
            "train_config": r.config.to_dict(), "seeds": seeds,
            "prediction_dim": int(agent.prediction_dim), "value": agent.value_head is not None,
        }
    return save(Path(out) / AGENTS_FILE, tree, kind="agents", config=config)


def _skeleton(config: dict[str, Any]):
    task = make_task(config["task"])
    tree = {}
    for name, c in config["rules"].items():
        cfg = TrainConfig.from_dict(c["train_config"])
        keys = jax.random.split(jax.random.PRNGKey(0), int(c["seeds"]))

        def one(k, cfg=cfg, c=c):
            agent = make_agent(task, cfg.agent, prediction_dim=int(c["prediction_dim"]), value=bool(c["value"]), key=k)
            obs, _ = task.env.reset(k, task.default_params)
            norm = RunningMeanStd.create(tuple(obs.shape)) if cfg.normalize_obs else None
            return {"agent": agent, "env_params": task.sample_params(k), "obs_norm": norm}

        tree[name] = eqx.filter_eval_shape(jax.vmap(one), keys)
    return tree


def load_agents(run_dir: str | Path) -> tuple[Any, dict[str, dict[str, Any]]]:
    """`(task, {rule: {"agent", "env_params", "obs_norm", "config"}})` from a run directory's
    `agents.eqx` (each leaf with a leading seed axis). A missing, truncated or corrupt file is a
    `CheckpointError` naming it."""
    path = Path(run_dir) / AGENTS_FILE
    if Path(run_dir).is_dir() and not path.exists():
        raise CheckpointError(f"{run_dir}: no {AGENTS_FILE} (written by `learned-rl train` and `compare`)")
    header, tree = load(path, _skeleton, kind="agents")
    task = make_task(header["config"]["task"])
    out = {}
    for name, c in header["config"]["rules"].items():
        out[name] = {**tree[name], "config": TrainConfig.from_dict(c["train_config"])}
    return task, out


def evaluate_run(run_dir: str | Path, *, episodes: int = 16, seed: int = 0, max_steps: int | None = None) -> dict[str, Any]:
    """Evaluate every rule's agents in a run directory, sampled and greedy, and write
    `evaluation.json` there. Per rule and mode: the mean return of each seed (over `episodes`
    episodes), their mean ± standard error, and the IQM over seeds with a 95% bootstrap CI."""
    task, rules = load_agents(run_dir)
    report: dict[str, Any] = {"task": task.name, "episodes": episodes, "seed": seed, "rules": {}}
    for i, (name, r) in enumerate(rules.items()):
        seeds = int(jax.tree.leaves(r["agent"])[0].shape[0])
        keys = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(seed), i), seeds)
        entry = {}
        for greedy in (False, True):
            run = eqx.filter_jit(
                jax.vmap(lambda a, p, n, k: evaluate(a, task, env_params=p, obs_norm=n, episodes=episodes, greedy=greedy, max_steps=max_steps, key=k))
            )
            per_seed = np.asarray(run(r["agent"], r["env_params"], r["obs_norm"], keys)).mean(axis=1)
            _, lo, hi = stratified_bootstrap_ci([per_seed], iqm) if seeds > 1 else (None, float("nan"), float("nan"))
            entry["greedy" if greedy else "sampled"] = {
                "per_seed": [float(x) for x in per_seed], "mean": float(per_seed.mean()),
                "stderr": float(per_seed.std(ddof=1) / math.sqrt(seeds)) if seeds > 1 else 0.0,
                "iqm": float(iqm(per_seed)), "iqm_ci95": [float(lo), float(hi)],
            }
        report["rules"][name] = entry
    write_json(Path(run_dir) / "evaluation.json", report)
    return report
