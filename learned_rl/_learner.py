"""The one inner-training loop, used by every update rule.

`train(rule, task, config, *, key)` is a pure JAX function: it can be `jax.jit`-compiled as a whole
run and `jax.vmap`-ed over seeds. `init` and `run` are its two halves, for callers that want to run
a compiled chunk at a time (the CLI does this to show progress).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from typing import Any, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, PRNGKeyArray

from ._agent import Agent, AgentConfig, make_agent
from ._rollout import EnvCarry, collect, reset_envs


OPTIMIZERS = ("adam", "sgd", "rmsprop")  # TrainConfig.optimizer
# Adam's eps_root where a meta-gradient flows through Adam steps (LPG's lifetimes, and agents trained
# with a rule meta-trained that way): d√v/dv is infinite at v = 0 (see TrainConfig.adam_eps_root)
DIFFERENTIABLE_ADAM_EPS_ROOT = 1e-8


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Inner-training configuration.

    **Arguments:**

    - `total_steps`: environment steps per run (summed over the parallel envs).
    - `num_envs`: parallel environments B.
    - `rollout_len`: steps T per environment between updates.
    - `optimizer`: ``"adam"``, ``"sgd"`` or ``"rmsprop"``.
    - `learning_rate`: the optimiser's learning rate (an array leaf of the optimiser state, via
      `optax.inject_hyperparams`, so it can be changed per run without recompiling).
    - `max_grad_norm`: global-norm gradient clipping; `None` for none.
    - `anneal_lr`: anneal the learning rate linearly to 0 over the run.
    - `agent`: an `AgentConfig`.
    - `final_fraction`: the final return of a run is the mean return of the episodes that end in
      this last fraction of its updates.
    - `normalize_obs`: normalise observations with running statistics (see `learned_rl._rollout`);
      the statistics are part of the `LearnerState` (``state.obs_norm``), so checkpoints keep them.
      On in the Brax and continuous-control family defaults, off elsewhere.
    - `normalize_reward`: scale rewards by the running standard deviation of a discounted return
      (γ = `reward_norm_gamma`); episode-return metrics stay unscaled.
    - `adam_eps_root`: Adam's constant inside the square root of its denominator (optax's
      `eps_root`). 0 (the default) is plain Adam; LPG's meta-training lifetimes use 1e-8, because
      the derivative of √v at v = 0 is infinite and a meta-gradient through an Adam step turns it
      into NaN wherever a parameter's gradient is exactly zero (a dead ReLU unit, say).
    """

    total_steps: int = 500_000
    num_envs: int = 4
    rollout_len: int = 128
    optimizer: Literal["adam", "sgd", "rmsprop"] = "adam"
    learning_rate: float = 2.5e-4
    max_grad_norm: float | None = 0.5
    anneal_lr: bool = False
    agent: AgentConfig = AgentConfig()
    final_fraction: float = 0.1
    normalize_obs: bool = False
    normalize_reward: bool = False
    reward_norm_gamma: float = 0.99
    adam_eps_root: float = 0.0

    def __post_init__(self):
        for name in ("total_steps", "num_envs", "rollout_len"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v <= 0:
                raise ValueError(f"TrainConfig.{name} must be a positive integer, got {v!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"TrainConfig.optimizer must be adam|sgd|rmsprop, got {self.optimizer!r}")
        if not (self.learning_rate > 0 and np.isfinite(self.learning_rate)):
            raise ValueError(f"TrainConfig.learning_rate must be positive, got {self.learning_rate!r}")
        if self.max_grad_norm is not None and not self.max_grad_norm > 0:
            raise ValueError(f"TrainConfig.max_grad_norm must be positive or None, got {self.max_grad_norm!r}")
        if not 0 < self.final_fraction <= 1:
            raise ValueError(f"TrainConfig.final_fraction must be in (0, 1], got {self.final_fraction!r}")
        for name in ("normalize_obs", "normalize_reward"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ValueError(f"TrainConfig.{name} must be a bool, got {getattr(self, name)!r}")
        if not (0 <= self.adam_eps_root < 1):
            raise ValueError(f"TrainConfig.adam_eps_root must be in [0, 1), got {self.adam_eps_root!r}")
        if not 0 <= self.reward_norm_gamma <= 1:
            raise ValueError(f"TrainConfig.reward_norm_gamma must be in [0, 1], got {self.reward_norm_gamma!r}")
        if self.total_steps // (self.num_envs * self.rollout_len) > 2**31 - 1:
            raise ValueError(
                f"TrainConfig.total_steps ({self.total_steps}) is {self.total_steps // (self.num_envs * self.rollout_len)} agent updates, "
                f"more than the training loop can count (2^31 - 1)"
            )
        if self.total_steps < self.num_envs * self.rollout_len:
            raise ValueError(
                f"TrainConfig.total_steps ({self.total_steps}) is less than one rollout "
                f"(num_envs × rollout_len = {self.num_envs * self.rollout_len})"
            )

    @property
    def steps_per_update(self) -> int:
        return self.num_envs * self.rollout_len

    @property
    def num_updates(self) -> int:
        return self.total_steps // self.steps_per_update

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        d = dict(d)
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown TrainConfig fields: {sorted(unknown)}")
        if "agent" in d and isinstance(d["agent"], dict):
            a = dict(d["agent"])
            if "hidden" in a:
                a["hidden"] = tuple(a["hidden"])
            d["agent"] = AgentConfig(**a)
        return cls(**d)


def make_optimizer(config: TrainConfig, grad_steps_per_update: int = 1, *, learning_rate=None) -> optax.GradientTransformation:
    """The agent optimiser of a `TrainConfig`: optional global-norm clipping, then the optimiser
    with its learning rate injected as a state leaf (``opt_state[-1].hyperparams``; read or set it
    with `optax.tree_utils.tree_get`/`tree_set`). `learning_rate` (a number or an array, which may
    be traced) replaces ``config.learning_rate`` in the state that `init` builds; the update reads
    the rate from the state, so runs that differ only in it share one compiled update.

    `anneal_lr` multiplies every step by a factor that falls linearly from 1 to 0 over the run's
    gradient steps (the three optimisers' steps are linear in the rate, so this is the rate
    annealed linearly to 0), and the state keeps the base rate: a per-run rate anneals too."""
    base = {
        "adam": functools.partial(optax.adam, eps=1e-5, eps_root=config.adam_eps_root),
        "sgd": optax.sgd,
        "rmsprop": functools.partial(optax.rmsprop, decay=0.99, eps=1e-5),
    }[config.optimizer]
    lr: Any = config.learning_rate if learning_rate is None else learning_rate
    parts = [optax.inject_hyperparams(base)(learning_rate=lr)]
    if config.anneal_lr:
        parts.append(optax.scale_by_schedule(optax.linear_schedule(1.0, 0.0, config.num_updates * grad_steps_per_update)))
    if config.max_grad_norm is not None:
        parts.insert(0, optax.clip_by_global_norm(config.max_grad_norm))
    return optax.chain(*parts)


class LearnerState(eqx.Module):
    """Everything one inner-training run carries between updates.

    The observation normaliser and reward scaler (when the config turns them on) live in the
    environment carry, `env.obs_norm` / `env.reward_norm`, so they travel with the environments
    through `collect` and are saved with the state; `obs_norm` is a shortcut."""

    agent: Agent
    opt_state: Any
    env_params: Any
    env: EnvCarry
    key: PRNGKeyArray
    update: Array

    @property
    def obs_norm(self):
        """The observation normaliser's `RunningMeanStd` (or `None`)."""
        return self.env.obs_norm


class Progress(eqx.Module):
    """How far through its training budget an agent is, for temporally-aware rules (TA-LPG, TA-LPO;
    Jackson et al. 2024): `update` n (agent updates done before this one) of `horizon` N (the
    lifetime's total updates). A rule with ``temporal = True`` receives it as
    ``rule.update(..., progress=Progress(n, N))``; other rules never see it."""

    update: Array
    horizon: Array

    @property
    def fraction(self) -> Array:
        """n / N, in [0, 1)."""
        return self.update.astype(jnp.float32) / jnp.maximum(self.horizon, 1).astype(jnp.float32)

    @property
    def log_horizon(self) -> Array:
        """log N."""
        return jnp.log(jnp.maximum(self.horizon, 1).astype(jnp.float32))


def _grad_steps(rule) -> int:
    return int(getattr(rule, "num_epochs", 1)) * int(getattr(rule, "num_minibatches", 1))


def init(rule, task, config: TrainConfig, *, key: PRNGKeyArray, env_params=None, learning_rate=None) -> LearnerState:
    """Sample a level from the task distribution (unless `env_params` is given), build the agent
    and its optimiser state, and reset the environments. `learning_rate` (optional, may be traced:
    a bandit arm's rate, say) is this run's agent learning rate in place of
    ``config.learning_rate`` (see `make_optimizer`)."""
    k_level, k_agent, k_env, k_run = jax.random.split(key, 4)
    if env_params is None:
        env_params = task.sample_params(k_level)
    agent = make_agent(
        task,
        config.agent,
        prediction_dim=rule.prediction_dim,
        value=rule.needs_value,
        key=k_agent,
    )
    optimizer = make_optimizer(config, _grad_steps(rule), learning_rate=learning_rate)
    opt_state = optimizer.init(eqx.filter(agent, eqx.is_inexact_array))
    carry = reset_envs(
        task.env,
        env_params,
        config.num_envs,
        key=k_env,
        normalize_obs=config.normalize_obs,
        normalize_reward=config.normalize_reward,
        reward_gamma=config.reward_norm_gamma,
    )
    return LearnerState(agent, opt_state, env_params, carry, k_run, jnp.zeros((), jnp.int32))


def update_step(rule, task, config: TrainConfig, state: LearnerState, *, horizon=None) -> tuple[LearnerState, dict[str, Array]]:
    """One rollout and one rule update. Returns the new state and this update's metrics.
    `horizon`: the lifetime's total updates N that a temporal rule is told (default
    `config.num_updates`)."""
    new, metrics, _ = update_step_with_trajectory(rule, task, config, state, horizon=horizon)
    return new, metrics


def update_step_with_trajectory(rule, task, config: TrainConfig, state: LearnerState, *, horizon=None):
    """`update_step`, also returning the trajectory the update was computed on (the LPG
    meta-critic trains on every rollout of a meta-step). Returns `(state, metrics, trajectory)`."""
    optimizer = make_optimizer(config, _grad_steps(rule))
    key, k_roll, k_upd = jax.random.split(state.key, 3)
    carry, traj, stats = collect(
        state.agent, task.env, state.env_params, state.env, config.rollout_len, key=k_roll
    )
    if rule.temporal:  # declared by every rule (`AbstractUpdateRule.temporal`)
        n = config.num_updates if horizon is None else horizon
        progress = Progress(state.update, jnp.asarray(n, jnp.int32))
        agent, opt_state, metrics = rule.update(state.agent, state.opt_state, optimizer, traj, key=k_upd, progress=progress)
    else:
        agent, opt_state, metrics = rule.update(state.agent, state.opt_state, optimizer, traj, key=k_upd)
    new = LearnerState(agent, opt_state, state.env_params, carry, key, state.update + 1)
    metrics = {
        **metrics,
        "env_steps": (state.update + 1) * config.steps_per_update,
        "return_sum": stats.return_sum,
        "length_sum": stats.length_sum,
        "episodes": stats.count,
    }
    return new, metrics, traj


def run(rule, task, config: TrainConfig, state: LearnerState, num_updates: int, *, stop_at: int | None = None, remat: bool = False, with_trajectory: bool = False, horizon=None):
    """`num_updates` updates under `lax.scan`: the one update loop (`train`, the CLI's chunked
    runs, LPG's meta-gradient unrolls). Returns `(state, metrics)`, every metric with a leading
    axis of length `num_updates`, or `(state, metrics, trajectories)` with `with_trajectory`.

    - `stop_at`: an update that would go past this many updates in all leaves the state as it is
      (a chunked run whose last chunk overruns the budget); ``metrics["active"]`` says which did.
    - `remat`: rematerialise each update on the backward pass (`jax.checkpoint`), so
      differentiating through the loop keeps one state per update, not its intermediates.
    - `horizon`: the lifetime's total updates N told to a temporal rule (`Progress`); default
      `config.num_updates`. May be a traced integer (LPG lifetimes of sampled lengths).
    """

    def body(s, _):
        new, m, traj = update_step_with_trajectory(rule, task, config, s, horizon=horizon)
        if stop_at is not None:
            active = s.update < stop_at
            new = jax.tree.map(lambda a, b: jnp.where(active, a, b), new, s)
            m = {**m, "active": active}
        return new, ((m, traj) if with_trajectory else m)

    if remat:
        body = jax.checkpoint(body)
    state, out = jax.lax.scan(body, state, None, length=num_updates)
    return (state, *out) if with_trajectory else (state, out)


def train(rule, task, config: TrainConfig, *, key: PRNGKeyArray):
    """Train one fresh agent on `task` with `rule`.

    **Arguments:**

    - `rule`: an `AbstractUpdateRule` (A2C, PPO, LPG, ...).
    - `task`: a `learned_rl.tasks.Task`; a level is sampled from its distribution with `key`.
    - `config`: a `TrainConfig` (use `rule.default_config(task)` for the documented defaults).
    - `key`: a PRNG key. The same key gives the same result.

    **Returns:** `(state, metrics)`: the final `LearnerState` and a dict of per-update metrics
    (``env_steps``, ``return_sum``, ``episodes``, ``length_sum`` and the rule's loss metrics).
    Use `learning_curve` and `final_return` to summarise them.

    Pure JAX: `jax.jit(lambda k: train(rule, task, config, key=k))` compiles the whole run and
    `jax.vmap` over keys trains several seeds at once.
    """
    state = init(rule, task, config, key=key)
    return run(rule, task, config, state, config.num_updates)


# ----------------------------------------------------------------------------- host-side summaries


def learning_curve(metrics: dict[str, Any], num_points: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Average the returns of episodes that ended in each of `num_points` equal windows of updates.

    Works on metrics with leading axes ``[..., U]`` (e.g. ``[seeds, U]``). Windows with no finished
    episode carry the previous window's value forward (NaN before the first finished episode).

    **Returns:** `(env_steps[P], mean_return[..., P])`.
    """
    rs = np.asarray(metrics["return_sum"], np.float64)
    n = np.asarray(metrics["episodes"], np.float64)
    steps = np.asarray(metrics["env_steps"])
    steps = steps.reshape(-1, steps.shape[-1])[0]
    U = rs.shape[-1]
    P = max(1, min(num_points, U))
    edges = np.linspace(0, U, P + 1).round().astype(int)
    rsum = np.stack([rs[..., a:b].sum(-1) for a, b in zip(edges[:-1], edges[1:])], -1)
    cnt = np.stack([n[..., a:b].sum(-1) for a, b in zip(edges[:-1], edges[1:])], -1)
    with np.errstate(invalid="ignore", divide="ignore"):
        curve = np.where(cnt > 0, rsum / np.maximum(cnt, 1), np.nan)
    for p in range(1, P):
        curve[..., p] = np.where(np.isnan(curve[..., p]), curve[..., p - 1], curve[..., p])
    return steps[edges[1:] - 1], curve


def late_return(return_sum, episodes, fraction: float = 0.1):
    """The one "final return" of a training run: the mean return of the episodes that ended in the
    last `fraction` of updates (the last axis). If none ended there, the window grows backwards
    by ``U // 20`` updates at a time until one did; NaN if no episode ended at all.

    Array-agnostic: NumPy in, NumPy out (float64 on the host: `final_return`, the run summaries);
    JAX in, JAX out (inside a program: evolution strategies' fitness)."""
    xp = np if isinstance(return_sum, np.ndarray) and isinstance(episodes, np.ndarray) else jnp
    U = return_sum.shape[-1]
    start = U - max(1, int(round(U * fraction)))
    starts = [*range(start, 0, -max(1, U // 20)), 0]  # the window's start, widening until 0
    sums = xp.stack([xp.sum(return_sum[..., s:], -1) for s in starts], -1)
    counts = xp.stack([xp.sum(episodes[..., s:], -1) for s in starts], -1)
    first = xp.argmax(counts > 0, -1)[..., None]  # the narrowest window with an episode
    r = xp.take_along_axis(sums, first, -1)[..., 0]
    n = xp.take_along_axis(counts, first, -1)[..., 0]
    return xp.where(n > 0, r / xp.maximum(n, 1e-30), xp.nan)


def final_return(metrics: dict[str, Any], fraction: float = 0.1) -> np.ndarray:
    """`late_return` of host metrics (per leading index), in float64."""
    rs = np.asarray(metrics["return_sum"], np.float64)
    n = np.asarray(metrics["episodes"], np.float64)
    return np.asarray(late_return(rs, n, fraction), np.float64)


# ------------------------------------------------------------------ hyperparameter overrides

CONFIG_FIELDS = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.name not in ("total_steps", "agent"))
AGENT_FIELDS = tuple(f"agent.{f.name}" for f in dataclasses.fields(AgentConfig))  # the agent's build, e.g. agent.torso


def settable_rule_fields(rule) -> dict[str, Any]:
    """A rule's scalar hyperparameters (numbers, booleans, None): what ``--set`` may replace."""
    out = {}
    for f in dataclasses.fields(rule):
        v = getattr(rule, f.name)
        if v is None or isinstance(v, (bool, int, float)):
            out[f.name] = v
    return out


def check_sets(sets: dict[str, Any]) -> None:
    """A one-line `ValueError` for ``--set`` fields that other flags own: `total_steps` is
    ``--steps``, and the agent is set field by field (``agent.torso``, ...), not whole."""
    if "total_steps" in sets or "agent" in sets:
        raise ValueError("--set cannot set total_steps (use --steps) or agent as a whole (set agent.torso, agent.hidden, ... one by one)")


def _check_kind(name: str, v: Any, current: Any, prefix: str) -> None:
    """A one-line `ValueError` unless `v` has the kind of the field's `current` value (an integer
    for an integer field; a number for a float field, or null where None is allowed)."""
    ok = (
        (v is None and current is None) or (isinstance(current, bool) and isinstance(v, bool))
        or (isinstance(current, int) and not isinstance(current, bool) and isinstance(v, int) and not isinstance(v, bool))
        or ((isinstance(current, float) or current is None) and isinstance(v, (int, float)) and not isinstance(v, bool))
        or (isinstance(current, str) and isinstance(v, str))
    )
    if not ok:
        raise ValueError(f"{prefix}{name}: expected a value like {current!r}, got {v!r}")


def agent_fields(sets: dict[str, Any], *, prefix: str = "") -> dict[str, Any]:
    """The `AgentConfig` fields among `sets` (its ``agent.FIELD`` entries), checked and by field
    name: ``{"agent.torso": "mlp", "agent.hidden": [32, 32]}`` gives ``{"torso": "mlp", "hidden":
    (32, 32)}``. `hidden` must be a non-empty list of positive integers."""
    base, out = AgentConfig(), {}
    for k, v in sets.items():
        if k not in AGENT_FIELDS:
            continue
        name = k.removeprefix("agent.")
        current = getattr(base, name)
        if isinstance(current, tuple):  # hidden widths
            if not (isinstance(v, list) and v and all(isinstance(h, int) and not isinstance(h, bool) and h > 0 for h in v)):
                raise ValueError(f"{prefix}{k}: expected a list of positive integers like {list(current)!r}, got {v!r}")
            v = tuple(v)
        else:
            _check_kind(k, v, current, prefix)
        out[name] = v
    return out


def default_config_for(rule, task, sets: dict[str, Any] | None = None, *, prefix: str = "") -> "TrainConfig":
    """`rule.default_config(task)` for the agent that `sets`' ``agent.FIELD`` entries build, so
    that a rule whose defaults depend on the agent class (LPG's per-family optimiser) picks them
    for that agent (``--set agent.torso=mlp`` on MinAtar: the MLP family's, not the CNN's). The
    other entries of `sets` are `apply_overrides`' to apply."""
    agent = agent_fields(sets or {}, prefix=prefix)
    if agent and "agent" in inspect.signature(rule.default_config).parameters:
        return rule.default_config(task, agent=agent)
    return rule.default_config(task)


def apply_overrides(rule, config: "TrainConfig", sets: dict[str, Any], *, prefix: str = ""):
    """`(rule, config, used)` with each ``FIELD: value`` of `sets` applied where the field exists
    (``--set`` of `train`/`compare`, the LPO preset's `overrides`):
    a `TrainConfig` field (not `total_steps`, which is ``--steps``), a field of its `AgentConfig`
    as ``agent.FIELD`` (``agent.torso``, ``agent.hidden``: a list of widths, ...; start from
    `default_config_for` so the rule's defaults suit that agent) or a scalar field of the rule
    (``num_minibatches``, ``gamma``, ``ent_coef``, ...). A value must have the field's kind (an
    integer for an integer field; a number for a float field, or null where None is allowed); the
    rule's and the config's own checks then run. `used` names the fields applied."""
    rule_fields = settable_rule_fields(rule)
    rule_sets, cfg_sets = {}, {}
    agent_sets = agent_fields(sets, prefix=prefix)
    for k, v in sets.items():
        if k in CONFIG_FIELDS:
            cfg_sets[k] = v
            _check_kind(k, v, getattr(config, k), prefix)
        elif k in rule_fields:
            rule_sets[k] = v
            _check_kind(k, v, rule_fields[k], prefix)
    if rule_sets:
        rule = dataclasses.replace(rule.overridable(set(rule_sets)), **{k: float(v) if isinstance(rule_fields[k], float) else v for k, v in rule_sets.items()})
    if cfg_sets:
        config = config.replace(**{k: float(v) if isinstance(getattr(config, k), float) else v for k, v in cfg_sets.items()})
    if agent_sets:
        config = config.replace(agent=dataclasses.replace(config.agent, **agent_sets))
    return rule, config, sorted(rule_sets) + sorted(cfg_sets) + sorted(f"agent.{k}" for k in agent_sets)
