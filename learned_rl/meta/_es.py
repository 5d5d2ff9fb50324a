"""Evolution strategies as a meta-gradient estimator (OpenAI-ES; Salimans et al. 2017).

`EvolutionStrategies` perturbs the rule's meta-parameters η (its inexact-array leaves, flattened to
one vector of D numbers) with antithetic Gaussian noise, scores every population member with its
inner problem's fitness (`AbstractFitnessProblem`; by default `TrainingRuns`: the final return of
one whole training run per task, `learned_rl.train`), and returns

    g = −1 / (n σ) · Σ_i w_i ε_i,        w = centred ranks of the fitnesses (in [−½, ½]),

the ES estimate of the gradient of the meta-loss −E[fitness] (n = members with a finite fitness).
`meta_train` applies it with its own optimiser (Adam), exactly as it applies LPG's truncated
meta-gradient: one meta-training loop for every estimator and problem.

- Antithetic pairs: member i and member i + P/2 use +ε_i and −ε_i (P must be even).
- Centred ranks with tied fitnesses sharing their average rank (a generation where every member
  reaches the same return gives a zero gradient, not an artefact of the sort order). With several
  tasks, ranks are computed per task and averaged. ``ranking="antithetic"`` ranks each pair
  against its twin instead (±½; GROOVE's shaping), which needs no population-wide comparison.
- Common random numbers: every member of a generation is scored with the same key (the same level,
  agent initialisation and environment noise), so fitness differences come from the perturbation.
- σ decays per generation: ``σ_g = max(σ_min, σ · decay^g)``; the learning rate and its decay
  belong to `MetaTrainConfig` (the meta-optimiser).
- Non-finite fitness (a diverged inner run): the member is excluded from the ranks (weight 0) and
  counted in ``nan_members``. If more than `max_nan_fraction` of a task's members are non-finite,
  the gradient is NaN, so `meta_train` skips the generation and counts it in ``skipped``.
- The population is one `jax.vmap` over members: a leading axis of size P that can be sharded.

This OpenAI-ES is kept beside evosax's (`_evosax.py`: SNES, PGPE, CMA-ES, evosax's Open_ES)
because it returns a gradient for `meta_train`'s Adam and has the shaping and σ schedule above;
a test shows that it and evosax's Open_ES give the same update on a known quadratic.
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Float

from .._learner import late_return as _late_return
from ._estimators import AbstractMetaEstimator
from ._problems import AbstractFitnessProblem, FitnessFunction, TrainingRuns, renamed_argument
from ._sharding import constrain_population


def centered_ranks(fitness: Float[Array, " P"]) -> Float[Array, " P"]:
    """Centred ranks in [−½, ½] of the finite entries of `fitness`; ties share their average rank;
    non-finite entries get 0 (excluded). With one finite entry its rank is 0."""
    finite = jnp.isfinite(fitness)
    f = jnp.where(finite, fitness, 0.0)
    both = finite[:, None] & finite[None, :]
    less = jnp.sum(both & (f[None, :] < f[:, None]), axis=1)
    equal = jnp.sum(both & (f[None, :] == f[:, None]), axis=1)
    rank = less + 0.5 * (equal - 1)  # 0 .. n−1, average rank for ties
    n = jnp.sum(finite)
    centred = rank / jnp.maximum(n - 1, 1) - 0.5
    return jnp.where(finite & (n > 1), centred, 0.0)


def antithetic_ranks(fitness: Float[Array, " P"]) -> Float[Array, " P"]:
    """GROOVE's shaping: each antithetic pair (member i and i + P/2) ranked against its twin,
    ``w = ±½`` (the better twin +½, ties 0); a pair with a non-finite member gets 0."""
    half = fitness.shape[0] // 2
    a, b = fitness[:half], fitness[half:]
    ok = jnp.isfinite(a) & jnp.isfinite(b)
    w = jnp.where(ok, 0.5 * jnp.sign(jnp.where(ok, a - b, 0.0)), 0.0)
    return jnp.concatenate([w, -w])


def es_gradient(noise: Float[Array, "P D"], weights: Float[Array, " P"], sigma, num: Array | int) -> Float[Array, " D"]:
    """The ES estimate of ∇ E[fitness]: ``Σ_i w_i ε_i / (num · σ)`` (ascent direction)."""
    return weights @ noise / (jnp.maximum(num, 1) * sigma)


def late_return(metrics: dict[str, Array], fraction: float) -> Array:
    """In JAX: a run's final return (`learned_rl._learner.late_return`) from its metrics."""
    return _late_return(metrics["return_sum"], metrics["episodes"], fraction)


def population_metrics(fit: Float[Array, "P T"], tasks, center: Float[Array, " T"] | None = None) -> tuple[Array, dict[str, Array]]:
    """Each task's mean fitness over its finite members ``[T]``, and the metrics every ES
    estimator reports: fitness mean/max/min/std over the population (averaged over tasks), per
    task the mean and max, and the unperturbed mean's fitness when `center` is given."""
    finite = jnp.isfinite(fit)
    n_finite = jnp.maximum(jnp.sum(finite, axis=0), 1)
    mean_fit = jnp.sum(jnp.where(finite, fit, 0.0), 0) / n_finite
    metrics: dict[str, Array] = {
        "fitness_mean": jnp.mean(mean_fit),
        "fitness_max": jnp.mean(jnp.max(jnp.where(finite, fit, -jnp.inf), 0)),
        "fitness_min": jnp.mean(jnp.min(jnp.where(finite, fit, jnp.inf), 0)),
        "fitness_std": jnp.mean(jnp.sqrt(jnp.sum(jnp.where(finite, (fit - mean_fit) ** 2, 0.0), 0) / n_finite)),
    }
    for j, t in enumerate(tasks):
        metrics[f"fitness_mean/{t.name}"] = mean_fit[j]
        metrics[f"fitness_max/{t.name}"] = jnp.max(jnp.where(finite[:, j], fit[:, j], -jnp.inf))
    if center is not None:
        metrics["center_fitness"] = jnp.mean(center)
        for j, t in enumerate(tasks):
            metrics[f"center_fitness/{t.name}"] = center[j]
    return mean_fit, metrics


RANKINGS = {"centered": centered_ranks, "antithetic": antithetic_ranks}


class ESState(eqx.Module):
    """The estimator's state: generations done (σ decays with it) and non-finite members seen."""

    generation: Array
    nan_members: Array


class EvolutionStrategies(AbstractMetaEstimator):
    """OpenAI-ES over a rule's meta-parameters, on any `AbstractFitnessProblem`.

    **Arguments** (all static):

    - `problem`: what a member's fitness is: `TrainingRuns` (the default: the final return of a
      whole training run per task) or any other fitness problem (`FitnessFunction(fn)`, ...).
    - `population`: P members per generation, even and ≥ 2 (antithetic pairs).
    - `sigma`, `sigma_decay`, `sigma_min`: the perturbation scale and its per-generation decay.
    - `max_nan_fraction`: skip the generation if more than this fraction of members is non-finite.
    - `eval_center`: also score the unperturbed mean (reported as ``center_fitness``; not used by
      the gradient).
    - `ranking`: ``"centered"`` (centred ranks over the population, per task) or ``"antithetic"``
      (each pair against its twin, `antithetic_ranks`).

    For the default problem its fields may be given here directly: `inner_env_steps` (old name
    `inner_steps`, still accepted),
    `seeds_per_member`, `final_fraction` (see `TrainingRuns`), and `fitness_fn` (a
    ``(rule, key) -> fitness`` function, i.e. ``problem=FitnessFunction(fitness_fn)``).
    """

    problem: AbstractFitnessProblem
    population: int = eqx.field(static=True)
    sigma: float = eqx.field(static=True)
    sigma_decay: float = eqx.field(static=True)
    sigma_min: float = eqx.field(static=True)
    max_nan_fraction: float = eqx.field(static=True)
    eval_center: bool = eqx.field(static=True)
    ranking: str = eqx.field(static=True)

    def __init__(
        self,
        problem: AbstractFitnessProblem | None = None,
        *,
        population: int = 32,
        sigma: float = 0.03,
        sigma_decay: float = 1.0,
        sigma_min: float = 0.0,
        max_nan_fraction: float = 0.5,
        eval_center: bool = True,
        ranking: str = "centered",
        inner_env_steps: int | None = None,
        seeds_per_member: int = 1,
        final_fraction: float = 0.1,
        fitness_fn: Callable | None = None,
        tasks: tuple = (),
        inner_steps: int | None = None,
    ):
        inner_env_steps = renamed_argument("EvolutionStrategies", "inner_steps", inner_steps, "inner_env_steps", inner_env_steps)
        if problem is None:
            problem = FitnessFunction(fitness_fn, tasks=tuple(tasks)) if fitness_fn is not None else TrainingRuns(
                inner_env_steps=inner_env_steps, seeds_per_member=seeds_per_member, final_fraction=final_fraction, tasks=tuple(tasks)
            )
        elif fitness_fn is not None or inner_env_steps is not None or seeds_per_member != 1 or final_fraction != 0.1 or tasks:
            raise TypeError("EvolutionStrategies: give a problem or the default problem's fields, not both")
        self.problem = problem
        self.population = population
        self.sigma = sigma
        self.sigma_decay = sigma_decay
        self.sigma_min = sigma_min
        self.max_nan_fraction = max_nan_fraction
        self.eval_center = eval_center
        self.ranking = ranking

    def __check_init__(self):
        if self.ranking not in RANKINGS:
            raise ValueError(f"EvolutionStrategies.ranking must be one of {', '.join(RANKINGS)}, got {self.ranking!r}")
        P = self.population
        if not isinstance(P, (int, np.integer)) or isinstance(P, bool) or P <= 0:
            raise ValueError(f"EvolutionStrategies.population must be a positive integer, got {P!r}")
        if P % 2:
            raise ValueError(f"EvolutionStrategies.population must be even (antithetic pairs), got {P}")
        if not (np.isfinite(self.sigma) and self.sigma > 0):
            raise ValueError(f"EvolutionStrategies.sigma must be positive, got {self.sigma!r}")
        if not 0 < self.sigma_decay <= 1:
            raise ValueError(f"EvolutionStrategies.sigma_decay must be in (0, 1], got {self.sigma_decay!r}")
        if not 0 <= self.sigma_min <= self.sigma:
            raise ValueError(f"EvolutionStrategies.sigma_min must be in [0, sigma={self.sigma}], got {self.sigma_min!r}")
        if not 0 <= self.max_nan_fraction < 1:
            raise ValueError(f"EvolutionStrategies.max_nan_fraction must be in [0, 1), got {self.max_nan_fraction!r}")

    # ------------------------------------------------------------------ configuration

    def validate(self, rule, tasks):
        if not tasks:
            raise ValueError("EvolutionStrategies needs at least one task")
        leaves = jax.tree.leaves(eqx.filter(rule, eqx.is_inexact_array))
        if not leaves:
            raise TypeError(f"EvolutionStrategies: {type(rule).__name__} has no meta-parameters (inexact-array leaves)")
        self.problem.validate(rule, tasks)

    def init(self, rule, tasks, *, key):
        self.validate(rule, tasks)
        return ESState(jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))

    def population_size(self) -> int:
        return self.population  # the members axis (ESState itself is replicated)

    def population_axes(self, state):
        return False

    def current_sigma(self, generation) -> Array:
        return jnp.maximum(self.sigma_min, self.sigma * jnp.asarray(self.sigma_decay, jnp.float32) ** generation)

    def fitness(self, rule, *, key) -> Float[Array, " T"]:
        """Fitness of one rule on every bound task (the problem's)."""
        return self.problem.fitness(rule, key=key)

    # ------------------------------------------------------------------ one estimate

    def estimate(self, meta_params, rule_static, state: ESState, *, key):
        est = self
        P, half = est.population, est.population // 2
        flat, unravel = ravel_pytree(meta_params)
        k_noise, k_env = jax.random.split(key)
        sigma = est.current_sigma(state.generation)
        eps = jax.random.normal(k_noise, (half, flat.size), flat.dtype)
        noise = jnp.concatenate([eps, -eps])  # [P, D]: member i and i + P/2 are a pair

        def member_fitness(vec):
            return est.fitness(eqx.combine(unravel(vec), rule_static), key=k_env)

        members = constrain_population(flat[None, :] + sigma * noise)  # split over devices if sharded
        fit = jax.vmap(member_fitness)(members)  # [P, T]
        finite = jnp.isfinite(fit)
        n_finite = jnp.sum(finite, axis=0)  # [T]
        weights = jnp.mean(jax.vmap(RANKINGS[est.ranking], in_axes=1, out_axes=1)(fit), axis=1)  # [P]
        if est.ranking == "antithetic":  # members of pairs with both twins finite
            n_used = 2 * jnp.sum(finite[:half] & finite[half:], axis=0)
        else:
            n_used = n_finite
        ascent = es_gradient(noise, weights, sigma, jnp.min(n_used))
        too_many = jnp.any(P - n_finite > est.max_nan_fraction * P)
        grad_vec = jnp.where(too_many, jnp.nan, -ascent)
        grads = unravel(grad_vec)
        center = est.fitness(eqx.combine(meta_params, rule_static), key=k_env) if est.eval_center else None
        mean_fit, metrics = population_metrics(fit, est.tasks, center)
        loss = jnp.where(too_many, jnp.nan, -jnp.mean(mean_fit))
        metrics.update(sigma=sigma, nan_members=jnp.sum(~finite), param_norm=jnp.linalg.norm(flat))
        new_state = ESState(state.generation + 1, state.nan_members + jnp.sum(~finite))
        return loss, grads, new_state, metrics

    def env_steps_per_estimate(self) -> int:
        return self.problem.env_steps_per_fitness() * (self.population + (1 if self.eval_center else 0))
