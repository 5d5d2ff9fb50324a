"""evosax's evolution strategies as meta-gradient estimators: `EvosaxStrategy`.

`EvosaxStrategy(problem, strategy="cma_es")` runs one generation of an evosax 0.3 strategy per
meta-step on any `AbstractFitnessProblem` (`TrainingRuns`: whole LPO or LPG lifetimes):

1. the strategy's mean is set to the rule's meta-parameters η (flattened), so `meta_train` and the
   strategy agree on where the search is;
2. ``ask`` samples the population (sharded over devices like any population);
3. every member is scored by the problem with one key (common random numbers);
4. ``tell`` updates the strategy's state (mean, step size, covariance, momentum, ...);
5. the estimate's output is ``η − mean_new`` with ``output = "step"``, so `meta_train` moves η to
   the new mean instead of applying its Adam; the rest of the strategy's state is carried in the
   estimator state, so it is checkpointed, resumed bitwise and kept as it was on a skipped step.

Strategies (`STRATEGIES`): ``snes`` (separable NES), ``pgpe`` (with ClipUp), ``cma_es`` (full
covariance: D² memory, so refused above `CMA_ES_MAX_DIMS` meta-parameters), and ``open_es``
(evosax's OpenAI-ES, equal to our `EvolutionStrategies` with a plain SGD meta-optimiser, which a
test checks on a quadratic). evosax minimises, so it is told the negated fitness; a non-finite
member is told NaN, which evosax ranks last. With several tasks, members are scored by their mean
centred rank over the tasks (tasks with different return ranges weigh alike). If more than
`max_nan_fraction` of the members are non-finite the output is NaN and `meta_train` skips the
generation.
"""

from __future__ import annotations

from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree
from jaxtyping import Array

from ._es import centered_ranks, population_metrics
from ._estimators import AbstractMetaEstimator
from ._problems import AbstractFitnessProblem
from ._sharding import constrain_population

# our name -> evosax 0.3's class name
STRATEGIES = {"snes": "SNES", "pgpe": "PGPE", "cma_es": "CMA_ES", "open_es": "Open_ES"}
# CMA-ES keeps a D² covariance and decomposes it every generation (O(D³)): on 2 CPU cores one generation of
# the strategy alone took 1.3 s at D = 1,200, 5.9 s at D = 5,000, and over 200 s at D = 19,000 (the cpu LPG network)
CMA_ES_MAX_DIMS = 5_000


def _typed(x):
    if isinstance(x, bool):
        return jnp.asarray(x, bool)
    if isinstance(x, int):
        return jnp.asarray(x, jnp.int32)
    if isinstance(x, float):
        return jnp.asarray(x, jnp.float32)
    return jnp.asarray(x)


class EvosaxState(eqx.Module):
    """The strategy's own state (an evosax pytree), generations done and non-finite members seen."""

    strategy: Any
    generation: Array
    nan_members: Array


class EvosaxStrategy(AbstractMetaEstimator):
    """One evosax strategy generation per meta-step (see the module docstring).

    **Arguments** (all static):

    - `problem`: an `AbstractFitnessProblem` (e.g. `TrainingRuns`).
    - `strategy`: ``"snes"``, ``"pgpe"``, ``"cma_es"`` or ``"open_es"``.
    - `population`: members per generation (even for ``pgpe`` and ``open_es``: antithetic).
    - `sigma`: the initial search scale (evosax's ``std_init``; ``open_es``: its constant std).
    - `learning_rate`: the mean's learning rate for strategies with one (``open_es``: SGD;
      ``pgpe``: ClipUp with max speed 2 × it; ``snes``: SGD on the natural gradient); `None`
      keeps evosax's default. CMA-ES has none.
    - `max_nan_fraction`, `eval_center`: as in `EvolutionStrategies`.
    """

    problem: AbstractFitnessProblem
    strategy: str = eqx.field(static=True, default="cma_es")
    population: int = eqx.field(static=True, default=32)
    sigma: float = eqx.field(static=True, default=0.03)
    learning_rate: float | None = eqx.field(static=True, default=None)
    max_nan_fraction: float = eqx.field(static=True, default=0.5)
    eval_center: bool = eqx.field(static=True, default=True)

    output: ClassVar[str] = "step"

    def __check_init__(self):
        if self.strategy not in STRATEGIES:
            raise ValueError(f"unknown ES strategy {self.strategy!r} (evosax strategies: {', '.join(STRATEGIES)}; ours: openes)")
        P = self.population
        if not isinstance(P, (int, np.integer)) or isinstance(P, bool) or P < 2:
            raise ValueError(f"EvosaxStrategy.population must be an integer ≥ 2, got {P!r}")
        if self.strategy in ("pgpe", "open_es") and P % 2:
            raise ValueError(f"EvosaxStrategy({self.strategy!r}).population must be even (antithetic pairs), got {P}")
        if not (np.isfinite(self.sigma) and self.sigma > 0):
            raise ValueError(f"EvosaxStrategy.sigma must be positive, got {self.sigma!r}")
        if self.learning_rate is not None and not (np.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise ValueError(f"EvosaxStrategy.learning_rate must be positive or None, got {self.learning_rate!r}")
        if not 0 <= self.max_nan_fraction < 1:
            raise ValueError(f"EvosaxStrategy.max_nan_fraction must be in [0, 1), got {self.max_nan_fraction!r}")

    # ------------------------------------------------------------------ the evosax objects

    def algorithm(self, solution: Array):
        """The evosax strategy object for a flat solution vector (cheap: a Python object).
        evosax is imported here, not at module level: importing it creates JAX arrays, which
        starts the XLA backend, and `import learned_rl` (so the CLI) must not (see `_cli.py`)."""
        from evosax import algorithms as evosax_algorithms
        from evosax.core.optimizer import clipup
        cls = getattr(evosax_algorithms, STRATEGIES[self.strategy])
        P, lr = self.population, self.learning_rate
        if self.strategy == "open_es":
            return cls(P, solution, optimizer=optax.sgd(1e-3 if lr is None else lr), std_schedule=optax.constant_schedule(self.sigma))
        if self.strategy == "pgpe" and lr is not None:
            return cls(P, solution, optimizer=clipup(learning_rate=lr, max_velocity=2 * lr))
        if self.strategy == "snes" and lr is not None:
            return cls(P, solution, optimizer=optax.sgd(lr))
        return cls(P, solution)

    def algorithm_params(self, algo):
        params = algo.default_params
        if hasattr(params, "std_init"):  # an evosax params dataclass: the field is per strategy
            params = params.replace(std_init=self.sigma)
        return params

    # ------------------------------------------------------------------ the estimator interface

    def validate(self, rule, tasks):
        if not tasks:
            raise ValueError("EvosaxStrategy needs at least one task")
        leaves = jax.tree.leaves(eqx.filter(rule, eqx.is_inexact_array))
        if not leaves:
            raise TypeError(f"EvosaxStrategy: {type(rule).__name__} has no meta-parameters (inexact-array leaves)")
        dims = sum(x.size for x in leaves)
        if self.strategy == "cma_es" and dims > CMA_ES_MAX_DIMS:
            raise ValueError(
                f"cma_es keeps a {dims} × {dims} covariance ({dims} meta-parameters, at most {CMA_ES_MAX_DIMS}); "
                "use snes, pgpe or openes for a rule this large"
            )
        self.problem.validate(rule, tasks)

    def init(self, rule, tasks, *, key):
        self.validate(rule, tasks)
        flat, _ = ravel_pytree(eqx.filter(rule, eqx.is_inexact_array))
        algo = self.algorithm(flat)
        state = algo.init(key, flat, self.algorithm_params(algo))
        # Python scalars in evosax's state (best fitness, generation counter) become typed arrays,
        # so every generation's state has the same structure (one compiled meta-step)
        state = jax.tree.map(_typed, state)
        return EvosaxState(state, jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))

    def population_size(self) -> int:
        return self.population

    def population_axes(self, state):
        return False  # the strategy state is replicated; members are split inside `estimate`

    def env_steps_per_estimate(self) -> int:
        return self.problem.env_steps_per_fitness() * (self.population + (1 if self.eval_center else 0))

    def estimate(self, meta_params, rule_static, state: EvosaxState, *, key):
        flat, unravel = ravel_pytree(meta_params)
        algo = self.algorithm(flat)
        params = self.algorithm_params(algo)
        k_ask, k_env, k_tell = jax.random.split(key, 3)
        st = state.strategy.replace(mean=flat)  # the loop's η is the search's mean
        pop, st = algo.ask(k_ask, st, params)  # [P, D]
        pop = constrain_population(pop)

        def member_fitness(vec):
            return self.problem.fitness(eqx.combine(unravel(vec), rule_static), key=k_env)

        fit = jax.vmap(member_fitness)(pop)  # [P, T]
        finite = jnp.isfinite(fit)
        ok = jnp.all(finite, axis=1)
        n_ok = jnp.sum(ok)
        P = self.population
        if fit.shape[1] == 1:
            score = fit[:, 0]
        else:
            score = jnp.mean(jax.vmap(centered_ranks, in_axes=1, out_axes=1)(fit), axis=1)
        told = jnp.where(ok, -score, jnp.nan)  # evosax minimises and ranks NaN last
        new, _ = algo.tell(k_tell, pop, told, st, params)
        too_many = P - n_ok > self.max_nan_fraction * P
        step = jnp.where(too_many, jnp.nan, flat - new.mean)
        center = self.problem.fitness(eqx.combine(meta_params, rule_static), key=k_env) if self.eval_center else None
        mean_fit, metrics = population_metrics(fit, self.tasks, center)
        loss = jnp.where(too_many, jnp.nan, -jnp.mean(mean_fit))
        std = getattr(new, "std", None)
        metrics.update(
            sigma=jnp.mean(std) if std is not None else jnp.asarray(self.sigma, jnp.float32),
            nan_members=jnp.sum(~ok), param_norm=jnp.linalg.norm(flat),
        )
        new_state = EvosaxState(new, state.generation + 1, state.nan_members + jnp.sum(~ok))
        return loss, unravel(step), new_state, metrics
