"""Meta-gradient estimators: interchangeable ways to turn an inner problem into a meta-gradient.

An estimator takes an inner problem (`_problems.py`: a population of agent lifetimes, of whole
training runs, ...) and returns an estimate of the gradient of the meta-loss with respect to the
rule's meta-parameters (its inexact-array leaves). `meta_train` only applies those gradients, so
any estimator runs on any problem of the kind it needs without a second meta-training loop:

- `TruncatedBackprop(problem)`: backpropagation through one unroll of an `AbstractTruncatedProblem`
  (LPG's truncated meta-gradient: `TruncatedMetaGradient(...)` = it on `LPGLifetimes(...)`).
- `TruncatedES(problem)`: antithetic evolution strategies on one unroll of the same truncated
  problems (ES over truncated lifetimes: no backpropagation through the inner updates).
- `EvolutionStrategies(problem)` (`_es.py`): antithetic OpenAI-ES on an `AbstractFitnessProblem`.
- `EvosaxStrategy(problem, strategy=...)` (`_evosax.py`): evosax's SNES, PGPE, CMA-ES or Open_ES
  on an `AbstractFitnessProblem`. These own their update (ask/tell), so they declare
  ``output = "step"`` and `meta_train` applies the step they chose instead of running its Adam.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, PRNGKeyArray

from ._problems import AbstractInnerProblem, AbstractTruncatedProblem, LPGLifetimes, _all_finite_rows
from ._problems import Lifetime as Lifetime
from ._problems import TMGState as TMGState
from ._sharding import constrain_population


class AbstractMetaEstimator(eqx.Module):
    """Estimates ∇_η of a meta-loss for a rule with meta-parameters η, on an inner `problem`.

    - `init(rule, tasks, *, key)` builds the estimator's state (its problem's population).
    - `estimate(meta_params, rule_static, state, *, key)` returns
      `(meta_loss, grads, state, metrics)`, where `grads` has the structure of `meta_params`
      (``eqx.filter(rule, eqx.is_inexact_array)``) and `metrics` is a dict of arrays.

    Both must be pure JAX functions of arrays (the estimator's own fields are static config).
    Everything `meta_train` and the `meta-train` runner use is declared here: `problem`, `tasks`
    (the problem's, empty until `bind`), `bind`, `validate`, `env_steps_per_estimate`,
    `population_size`, `population_axes` and `output`.

    `output` says what `grads` is. ``"gradient"`` (the default): an estimate of ∇η of the
    meta-loss, which `meta_train` applies with its optimiser (`meta_optimizer`: global-norm
    clipping and Adam from the `MetaTrainConfig`). ``"step"``: the estimator ran its own update
    (an ask/tell strategy such as CMA-ES, whose mean and covariance update is not a gradient step)
    and returns ``η − η_new``; `meta_train` then sets η ← η − grads and its learning rate is not
    used. Either way the loop's checkpoints, NaN skip and sharding are the same.
    """

    problem: eqx.AbstractVar[AbstractInnerProblem]
    output: ClassVar[str] = "gradient"

    @property
    def tasks(self) -> tuple:
        return self.problem.tasks

    def bind(self, tasks: list, rule=None) -> "AbstractMetaEstimator":
        """This estimator with its problem bound to the tasks (and the rule, where the problem
        derives configs from it). `meta_train` binds an unbound estimator."""
        return dataclasses.replace(self, problem=self.problem.bind(tasks, rule))

    @abc.abstractmethod
    def env_steps_per_estimate(self) -> int:
        """Environment steps one `estimate` takes (every inner update included), once bound."""

    def init(self, rule, tasks: list, *, key: PRNGKeyArray) -> Any:
        return self.problem.init(rule, tasks, key=key)

    @abc.abstractmethod
    def estimate(self, meta_params, rule_static, state, *, key: PRNGKeyArray) -> tuple[Array, Any, Any, dict[str, Array]]: ...

    def validate(self, rule, tasks: list) -> None:
        """Raise `ValueError` for a rule or task set this estimator cannot handle (before any
        compilation)."""
        self.problem.validate(rule, tasks)

    def population_size(self) -> int | None:
        """The length of the population axis (independent inner problems: lifetimes, ES members)
        that `MetaTrainConfig(devices=...)` splits across devices; None if there is none.
        `meta_train` checks it is divisible by the number of devices (see `_sharding.py`)."""
        return self.problem.population_size()

    def population_axes(self, state) -> Any:
        """Which parts of `state` carry the population as their leading axis, as a pytree prefix of
        booleans (e.g. ``MyState(lifetimes=True, counters=False)``). Those leaves are stored split
        across devices; False keeps the whole state replicated. Arrays created inside `estimate`
        are split with `_sharding.constrain_population`."""
        return self.problem.population_axes(state)


class TruncatedBackprop(AbstractMetaEstimator):
    """The meta-gradient of one unroll of a truncated problem, by backpropagation through it.

    Each member's gradient is computed separately (one `vmap` of `value_and_grad` per group), so
    a member whose meta-loss, meta-gradient or state becomes non-finite is left out of the mean;
    the problem's `advance` then restarts it. The meta-gradient is the mean over groups (weighted
    by the problem's `group_weights`) of each group's mean over its finite members; only a step
    with no finite member at all returns a NaN gradient (which `meta_train` then skips).

    `checkpoint_inner`: rematerialise each inner update on the backward pass (`jax.checkpoint`),
    so memory grows with the unroll length by one inner state per update.
    """

    problem: AbstractTruncatedProblem
    checkpoint_inner: bool = eqx.field(static=True, default=True)

    def env_steps_per_estimate(self) -> int:
        return self.problem.env_steps_per_unroll()

    def estimate(self, meta_params, rule_static, state, *, key):
        problem = self.problem
        members = problem.members(state)
        keys = jax.random.split(key, 2 * len(members))
        rule = eqx.combine(meta_params, rule_static)

        def masked_mean(x, ok, n):
            ok = ok.reshape(ok.shape + (1,) * (x.ndim - 1))
            return jnp.sum(jnp.where(ok, x, 0), axis=0) / jnp.maximum(n, 1).astype(x.dtype)

        news, healthies, auxs = [], [], []
        group_losses, group_grads, group_ok = [], [], []
        for i, group in enumerate(members):
            N = jax.tree.leaves(group)[0].shape[0]
            old = constrain_population(group)
            ks = constrain_population(jax.random.split(keys[2 * i], N))

            def one(mp, m, k, i=i):
                return problem.member_loss(mp, rule_static, i, m, key=k, remat=self.checkpoint_inner)

            # one gradient per member, so a diverged member can be left out of the mean
            (l, (new, aux)), g = jax.vmap(
                lambda m, k: eqx.filter_value_and_grad(one, has_aux=True)(meta_params, m, k)
            )(old, ks)
            healthy = jnp.isfinite(l) & _all_finite_rows(g, N) & problem.member_finite(new)
            n_ok = jnp.sum(healthy)
            group_losses.append(masked_mean(l, healthy, n_ok))
            group_grads.append(jax.tree.map(lambda x: masked_mean(x, healthy, n_ok), g))
            group_ok.append(n_ok > 0)
            news.append(new)
            healthies.append(healthy)
            auxs.append({k: masked_mean(v, healthy, n_ok) for k, v in aux.items()})

        new_state, metrics = problem.advance(rule, state, tuple(news), tuple(healthies), tuple(auxs), keys=tuple(keys[2 * i + 1] for i in range(len(members))))
        for task, g in zip(getattr(problem, "tasks", ()) or (), group_grads):  # each task's share, before weighting
            metrics[f"task_grad_norm/{task.name}"] = optax.global_norm(g)
        ok = jnp.stack(group_ok)
        w = list(problem.group_weights())
        w_ok = jnp.where(ok, jnp.asarray(w, jnp.float32), 0.0)  # weights of groups with a finite member
        total = jnp.sum(w_ok)
        scale = jnp.where(total > 0, 1.0 / jnp.where(total > 0, total, 1.0), jnp.nan)  # no finite member: NaN, skipped
        loss = jnp.sum(jnp.where(ok, w_ok * jnp.stack(group_losses), 0.0)) * scale  # a failed group may have a NaN loss
        grads = jax.tree.map(lambda *gs: sum(jnp.where(o, wi * x, 0) for o, wi, x in zip(group_ok, w, gs)) * scale.astype(gs[0].dtype), *group_grads)
        return loss, grads, new_state, metrics


class TruncatedMetaGradient(TruncatedBackprop):
    """LPG's estimator: `TruncatedBackprop` on `LPGLifetimes(**lifetime_fields)` (or on `problem`).

    K agent updates with the rule, then an actor-critic meta-objective on a fresh rollout of the
    updated agent, differentiated through all K updates; see `LPGLifetimes` for the meta-loss,
    the bandit and the lifetimes' fields (`inner_steps`, `lifetimes_per_task`, `learning_rates`,
    ...), which may be given here directly."""

    def __init__(self, problem: AbstractTruncatedProblem | None = None, *, checkpoint_inner: bool = True, **lifetime_fields):
        if problem is None:
            problem = LPGLifetimes(**lifetime_fields)
        elif lifetime_fields:
            raise TypeError("TruncatedMetaGradient: give a problem or its fields, not both")
        self.problem = problem
        self.checkpoint_inner = checkpoint_inner


class TruncatedES(AbstractMetaEstimator):
    """Antithetic evolution strategies on one unroll of a truncated problem (learned_optimization's
    truncated ES): no backpropagation through the inner updates, so memory does not grow with K.

    Every member (an LPG lifetime, say) draws its own perturbation ε_i and runs the unroll twice
    from the same state with the same key (common random numbers): once with η + σε_i and once
    with η − σε_i. The estimate is the mean over members of ``(L⁺_i − L⁻_i) / (2σ) · ε_i``
    (groups weighted by the problem's `group_weights`, as in `TruncatedBackprop`); a member whose
    loss or new state is not finite is left out, and the problem restarts it. Members then continue
    from their η + σε_i unroll. The estimate is unbiased for the gradient of the Gaussian-smoothed
    one-unroll meta-loss; like truncated backprop it ignores the effect of η on earlier unrolls
    (PES would add it, by accumulating each member's perturbations).
    """

    problem: AbstractTruncatedProblem
    sigma: float = eqx.field(static=True, default=0.01)

    def __check_init__(self):
        if not (self.sigma > 0 and jnp.isfinite(self.sigma)):
            raise ValueError(f"TruncatedES.sigma must be positive, got {self.sigma!r}")

    def env_steps_per_estimate(self) -> int:
        return 2 * self.problem.env_steps_per_unroll()

    def estimate(self, meta_params, rule_static, state, *, key):
        problem = self.problem
        members = problem.members(state)
        keys = jax.random.split(key, 3 * len(members))
        rule = eqx.combine(meta_params, rule_static)
        flat, unravel = ravel_pytree(meta_params)
        news, healthies, auxs, group_losses, group_grads, group_ok = [], [], [], [], [], []
        for i, group in enumerate(members):
            N = jax.tree.leaves(group)[0].shape[0]
            old = constrain_population(group)
            ks = constrain_population(jax.random.split(keys[3 * i], N))
            eps = constrain_population(jax.random.normal(keys[3 * i + 2], (N, flat.size), flat.dtype))

            def one(m, k, e, i=i):
                loss_p, (new, aux) = problem.member_loss(unravel(flat + self.sigma * e), rule_static, i, m, key=k, remat=False)
                loss_m, _ = problem.member_loss(unravel(flat - self.sigma * e), rule_static, i, m, key=k, remat=False)
                return loss_p, loss_m, new, aux

            lp, lm, new, aux = jax.vmap(one)(old, ks, eps)
            healthy = jnp.isfinite(lp) & jnp.isfinite(lm) & problem.member_finite(new)
            n_ok = jnp.sum(healthy)
            denom = jnp.maximum(n_ok, 1).astype(flat.dtype)
            coef = jnp.where(healthy, (lp - lm) / (2 * self.sigma), 0.0)
            group_grads.append(coef @ jnp.where(healthy[:, None], eps, 0.0) / denom)
            group_losses.append(jnp.sum(jnp.where(healthy, 0.5 * (lp + lm), 0.0)) / denom)
            group_ok.append(n_ok > 0)
            news.append(new)
            healthies.append(healthy)
            auxs.append({k: jnp.sum(jnp.where(healthy, v, 0.0), axis=0) / denom for k, v in aux.items()})
        new_state, metrics = problem.advance(rule, state, tuple(news), tuple(healthies), tuple(auxs), keys=tuple(keys[3 * i + 1] for i in range(len(members))))
        ok = jnp.stack(group_ok)
        w = jnp.where(ok, jnp.asarray(problem.group_weights(), jnp.float32), 0.0)
        total = jnp.sum(w)
        scale = jnp.where(total > 0, 1.0 / jnp.where(total > 0, total, 1.0), jnp.nan)  # no finite member: NaN, skipped
        loss = jnp.sum(jnp.where(ok, w * jnp.stack(group_losses), 0.0)) * scale
        grad = jnp.sum(jnp.where(ok[:, None], w[:, None] * jnp.stack(group_grads), 0.0), axis=0) * scale
        return loss, unravel(grad), new_state, metrics
