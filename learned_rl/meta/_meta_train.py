"""The one meta-training loop: `meta_train(rule, tasks, estimator, config, *, key)`.

It reads like optimistix's entry points: the rule (whose inexact-array leaves are the
meta-parameters), the task distribution and a pluggable meta-gradient estimator go in; a trained
rule comes out. The loop applies Adam (with global-norm clipping) to the estimator's gradients,
skips any step whose loss or gradient is not finite (and counts it), and is deterministic: step i
uses the key ``fold_in(key, i)``, so a resumed run equals an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, PRNGKeyArray

from .._memory import check_memory, compiled_bytes, gib, tree_bytes
from ._estimators import AbstractMetaEstimator
from ._sharding import check_divisible, constrain, parse_devices, place, population_mesh, use_mesh


@dataclasses.dataclass(frozen=True)
class MetaTrainConfig:
    """Outer-loop configuration.

    **Arguments:**

    - `steps`: meta-steps (meta-parameter updates).
    - `meta_lr`: Adam learning rate.
    - `max_grad_norm`: global-norm clipping of the meta-gradient.
    - `adam_eps`: Adam's ε.
    - `lr_decay`: multiply the learning rate by this every step (1.0: constant, the default);
      `lr_min`: never below this (used by evolution strategies).
    - `devices`: where the estimator's population (LPG lifetimes, ES members) runs: ``None`` (the
      default device), ``N`` (the first N of `jax.devices()`) or ``"all"`` (every device, on every
      host after `jax.distributed.initialize()`). The population is split along its leading axis
      with a `jax.sharding.Mesh`; it must be divisible by the number of devices (see `_sharding.py`).
    """

    steps: int = 1000
    meta_lr: float = 1e-4
    max_grad_norm: float = 1.0
    adam_eps: float = 1e-8
    lr_decay: float = 1.0
    lr_min: float = 0.0
    devices: int | str | None = None

    def __post_init__(self):
        if not isinstance(self.steps, (int, np.integer)) or isinstance(self.steps, bool) or self.steps <= 0:
            raise ValueError(f"MetaTrainConfig.steps must be a positive integer, got {self.steps!r}")
        if not self.meta_lr > 0:
            raise ValueError(f"MetaTrainConfig.meta_lr must be positive, got {self.meta_lr!r}")
        if not self.max_grad_norm > 0:
            raise ValueError(f"MetaTrainConfig.max_grad_norm must be positive, got {self.max_grad_norm!r}")
        if not 0 < self.lr_decay <= 1:
            raise ValueError(f"MetaTrainConfig.lr_decay must be in (0, 1], got {self.lr_decay!r}")
        if not 0 <= self.lr_min <= self.meta_lr:
            raise ValueError(f"MetaTrainConfig.lr_min must be in [0, meta_lr], got {self.lr_min!r}")
        try:
            object.__setattr__(self, "devices", parse_devices(self.devices))
        except ValueError as e:
            raise ValueError(f"MetaTrainConfig.{e}") from None


class MetaState(eqx.Module):
    """Everything meta-training carries: the rule, the meta-optimiser state, the estimator state,
    the base key, the step counter and the count of skipped (non-finite) steps."""

    rule: Any
    opt_state: Any
    estimator_state: Any
    key: PRNGKeyArray
    step: Array
    skipped: Array


def meta_optimizer(config: MetaTrainConfig, estimator: AbstractMetaEstimator | None = None) -> optax.GradientTransformation:
    """How the loop turns an estimator's output into a meta-parameter update: clipping and Adam
    for a gradient; for an estimator that ran its own update (``output == "step"``), that step
    (η ← η − output)."""
    if estimator is not None and estimator.output == "step":
        return optax.scale(-1.0)
    lr = config.meta_lr
    if config.lr_decay != 1.0:  # a schedule only when asked: a constant rate keeps the state layout
        lr = optax.exponential_decay(config.meta_lr, 1, config.lr_decay, end_value=config.lr_min or None)
    return optax.chain(optax.clip_by_global_norm(config.max_grad_norm), optax.adam(lr, eps=config.adam_eps))


def meta_init(rule, tasks: list, estimator: AbstractMetaEstimator, config: MetaTrainConfig, *, key: PRNGKeyArray) -> MetaState:
    """The initial `MetaState`."""
    estimator.validate(rule, tasks)
    k_est, k_run = jax.random.split(key)
    # one compiled program instead of hundreds of eagerly dispatched (and compiled) small ops
    est_state = eqx.filter_jit(lambda r, k: estimator.init(r, tasks, key=k))(rule, k_est)
    opt_state = meta_optimizer(config, estimator).init(eqx.filter(rule, eqx.is_inexact_array))
    return MetaState(rule, opt_state, est_state, k_run, jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))


def make_meta_step(estimator: AbstractMetaEstimator, config: MetaTrainConfig) -> Callable:
    """A compiled function `MetaState -> (MetaState, metrics)` doing one meta-step.

    With `config.devices` naming several devices, the estimator's population axis is split across
    them (inputs placed by `meta_train`; outputs constrained to the same layout, so every step
    reuses one compiled program)."""
    opt = meta_optimizer(config, estimator)
    mesh = population_mesh(config.devices)

    @eqx.filter_jit
    def step(state: MetaState):
        params, static = eqx.partition(state.rule, eqx.is_inexact_array)
        key = jax.random.fold_in(state.key, state.step)
        with use_mesh(mesh):
            loss, grads, est_state, metrics = estimator.estimate(params, static, state.estimator_state, key=key)
        updates, opt_state = opt.update(grads, state.opt_state, params)
        new_params = eqx.apply_updates(params, updates)
        finite = jnp.isfinite(loss) & jnp.all(
            jnp.stack([jnp.all(jnp.isfinite(g)) for g in jax.tree.leaves(grads)])
        )
        keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(finite, a, b), new, old)
        new_params = keep(new_params, params)
        opt_state = keep(opt_state, state.opt_state)
        # a non-finite step may leave diverged agents behind; keep the old estimator state then
        est_state = keep(est_state, state.estimator_state)
        rule = eqx.combine(new_params, static)
        metrics = {
            **metrics,
            "meta_loss": loss,
            "grad_norm": optax.tree.norm(grads),
            "skipped": (~finite).astype(jnp.int32),
        }
        new = MetaState(rule, opt_state, est_state, state.key, state.step + 1, state.skipped + (~finite))
        return constrain(new, state_layout(estimator, new), mesh), metrics

    return step


def state_layout(estimator: AbstractMetaEstimator, state: MetaState) -> MetaState:
    """Which parts of a `MetaState` are split across devices (a prefix of booleans): the
    estimator's population leaves; the rule, optimiser state, key and counters are replicated."""
    return MetaState(False, False, estimator.population_axes(state.estimator_state), False, False, False)


_FEWER = "fewer lifetimes or envs per task (for LPG: --set lifetimes_per_task=N or num_envs=N), or fewer tasks"


def meta_train(
    rule,
    tasks: list,
    estimator: AbstractMetaEstimator,
    config: MetaTrainConfig,
    *,
    key: PRNGKeyArray,
    state: MetaState | None = None,
    callback: Callable[[MetaState, dict[str, Any]], None] | None = None,
):
    """Meta-train `rule` on `tasks` with `estimator`.

    **Arguments:**

    - `rule`: a learned update rule (e.g. `LPG`); its inexact-array leaves are meta-trained.
    - `tasks`: a list of `learned_rl.tasks.Task` (see `tasks.resolve`).
    - `estimator`: an `AbstractMetaEstimator` (e.g. `TruncatedMetaGradient`).
    - `config`: a `MetaTrainConfig`.
    - `key`: a PRNG key.
    - `state`: continue from this `MetaState` (e.g. a checkpoint) instead of starting afresh.
    - `callback`: called on the host after every step with `(state, metrics)`; if it returns
      True, meta-training stops after that step (a time budget, say).

    A run whose meta-state (from its shapes, before allocating it) or whose compiled meta-step (by
    XLA's memory analysis, before it runs) would not fit in what the device can still take is
    refused with a one-line `RunTooLarge` (a `ValueError`).

    **Returns:** `(rule, state, metrics)`, with `metrics` a dict of arrays stacked over steps.
    """
    if not tasks:
        raise ValueError("meta_train needs at least one task")
    if not estimator.tasks:
        estimator = estimator.bind(tasks, rule)
    mesh = population_mesh(config.devices)  # ValueError: more devices than the machine has
    check_divisible(estimator.population_size(), mesh, f"{type(estimator).__name__} population")
    desc = f"meta-train ({type(estimator).__name__} on {len(tasks)} task{'s' * (len(tasks) > 1)})"
    if state is None:
        estimator.validate(rule, tasks)  # bad input fails before anything is traced
        # the meta-state (rule, optimiser, every lifetime) from shapes alone, before allocating it
        state_bytes = tree_bytes(eqx.filter_eval_shape(meta_init, rule, tasks, estimator, config, key=key))
        check_memory(2 * state_bytes, desc, f"{gib(state_bytes)} of meta-state, twice", hint=_FEWER)
        state = meta_init(rule, tasks, estimator, config, key=key)
    state = place(state, state_layout(estimator, state), mesh)
    # compiled ahead of time, so that XLA's memory analysis of the meta-step is checked before it
    # runs; the executable is the one jit would have built
    step = make_meta_step(estimator, config).lower(state).compile()
    program = compiled_bytes(step.compiled)
    if program is not None:  # its arguments (the meta-state) are already allocated
        need = program - step.compiled.memory_analysis().argument_size_in_bytes
        check_memory(need, desc, f"{gib(need)} for the compiled meta-step beyond its meta-state", hint=_FEWER)
    history: list[dict[str, Any]] = []
    while int(state.step) < config.steps:
        state, metrics = step(state)
        metrics = jax.device_get(metrics)
        history.append(metrics)
        if callback is not None and callback(state, metrics) is True:
            break
    stacked = {k: np.stack([np.asarray(h[k]) for h in history]) for k in history[0]} if history else {}
    return state.rule, state, stacked
