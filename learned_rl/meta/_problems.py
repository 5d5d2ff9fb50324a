"""Inner problems: what a learned rule is meta-trained *on*, apart from how its meta-gradient is
estimated (the split of learned_optimization's truncated steps and gradient estimators).

An inner problem owns a population of inner runs and says what they score; an estimator
(`_estimators.py`: truncated backprop; `_es.py`: evolution strategies) turns that into a
meta-gradient for `meta_train`. Two kinds of problem:

- `AbstractTruncatedProblem`: runs that advance by unrolls of a few inner updates, each with a
  differentiable meta-loss (`member_loss`) and host-free bookkeeping between unrolls (`advance`).
  `LPGLifetimes` is LPG's: lifetimes with their hyperparameter bandits and meta-critics.
- `AbstractFitnessProblem`: whole inner runs scored by a fitness per task (`fitness(rule, key)`).
  `TrainingRuns` trains a fresh agent with the rule on each task (LPO's problem);
  `FitnessFunction` wraps any ``(rule, key) -> fitness`` (tests, custom meta-objectives).
"""

from __future__ import annotations

import abc
import dataclasses
import warnings
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, PRNGKeyArray

from .._agent import AgentConfig, make_agent, resolve_torso
from .._learner import DIFFERENTIABLE_ADAM_EPS_ROOT, OPTIMIZERS, LearnerState, TrainConfig, apply_overrides, default_config_for, late_return, train
from .._learner import init as learner_init
from .._learner import run as learner_run
from .._returns import normalize
from .._rollout import collect
from ..rules._base import advantages_and_targets, apply_gradients, batched, batched_value, categorical_log_prob_entropy
from ..rules._lpg import LPG
from ._bandit import BanditState, bandit_init, bandit_probs, bandit_sample, bandit_update
from ._sharding import constrain_population


class AbstractInnerProblem(eqx.Module):
    """A population of inner problems a rule is meta-trained on.

    - `tasks`: the bound task list (static; empty until `bind`).
    - `bind(tasks, rule)`: this problem with the tasks and what it derives from them and the rule.
    - `validate(rule, tasks)`: `ValueError`/`TypeError` for what it cannot run, before compiling.
    - `init(rule, tasks, *, key)`: the population's state (may be empty).
    - `population_size()` / `population_axes(state)`: the population axis that sharding splits.
    """

    tasks: eqx.AbstractVar[tuple]

    def bind(self, tasks: list, rule=None) -> "AbstractInnerProblem":
        return dataclasses.replace(self, tasks=tuple(tasks))

    def validate(self, rule, tasks: list) -> None:
        """Raise for a rule or task set this problem cannot run (before any compilation)."""

    @abc.abstractmethod
    def init(self, rule, tasks: list, *, key: PRNGKeyArray) -> Any: ...

    def population_size(self) -> int | None:
        return None

    def population_axes(self, state) -> Any:
        return False


class AbstractTruncatedProblem(AbstractInnerProblem):
    """Inner runs advanced by unrolls with a differentiable meta-loss, grouped (one group per task:
    tasks differ in shapes), each group a batch of members along a leading axis.

    - `members(state)`: the groups, a tuple of batched member states.
    - `member_loss(meta_params, rule_static, group, member, *, key, remat)`: one member's meta-loss
      after one unroll, and ``(new member, metrics)``; differentiable in `meta_params`.
    - `member_finite(new_members)`: ``[N]`` booleans, whether each member is still finite.
    - `advance(rule, state, new, healthy, aux, *, keys)`: the next state from every group's new
      members (restarts, bandits: no gradient) and the step's metrics; `aux[g]` holds group g's
      metrics already averaged over its healthy members.
    - `group_weights()`: the weight of each group in the meta-gradient.
    - `env_steps_per_unroll()`: environment steps of one unroll of the whole population.
    """

    @abc.abstractmethod
    def members(self, state) -> tuple: ...

    @abc.abstractmethod
    def member_loss(self, meta_params, rule_static, group: int, member, *, key: PRNGKeyArray, remat: bool = True): ...

    @abc.abstractmethod
    def member_finite(self, members) -> Array: ...

    @abc.abstractmethod
    def advance(self, rule, state, new: tuple, healthy: tuple, aux: tuple, *, keys) -> tuple[Any, dict[str, Array]]: ...

    @abc.abstractmethod
    def group_weights(self) -> tuple[float, ...]: ...

    @abc.abstractmethod
    def env_steps_per_unroll(self) -> int: ...


class AbstractFitnessProblem(AbstractInnerProblem):
    """Whole inner runs scored by a fitness per task (higher is better).

    - `fitness(rule, *, key)`: ``[len(tasks)]`` fitnesses of one rule; pure JAX, and its randomness
      comes only from `key` (so members given one key share common random numbers).
    - `env_steps_per_fitness()`: environment steps of one `fitness` call.
    """

    @abc.abstractmethod
    def fitness(self, rule, *, key: PRNGKeyArray) -> Float[Array, " T"]: ...

    @abc.abstractmethod
    def env_steps_per_fitness(self) -> int: ...

    def init(self, rule, tasks, *, key):
        return None


def renamed_argument(where: str, old: str, old_value, new: str, new_value, *, error: type[Exception] = TypeError):
    """The value of an argument given by its new name or, with a notice, by its old one (both,
    with different values: `error`)."""
    if old_value is None:
        return new_value
    if new_value is not None and new_value != old_value:
        raise error(f"{where}: give {new} or its old name {old}, not both")
    warnings.warn(f"{where}: {old!r} is now {new!r} (the old name still works)", FutureWarning, stacklevel=3)
    return old_value


def return_scales(tasks) -> tuple[float, ...]:
    """Each task's return scale: the absolute optimal return of its default level where the task
    knows it (tabular grid worlds, chains), else 1. The bandit's and ES's normaliser."""
    scales = []
    for t in tasks:
        s = 1.0
        if t.optimal_return is not None:
            s = float(abs(t.optimal_return(t.default_params))) or 1.0
        scales.append(s)
    return tuple(scales)


def log_uniform_int(key, low: int, high: int, multiple: int = 1, shape=()) -> Array:
    """Integers drawn log-uniformly from [low, high], rounded up to a multiple of `multiple`."""
    u = jax.random.uniform(key, shape)
    x = jnp.exp(jnp.log(float(low)) + u * (jnp.log(float(high)) - jnp.log(float(low))))
    x = jnp.ceil(x / multiple) * multiple
    return jnp.clip(x, low, high).astype(jnp.int32)


class Lifetime(eqx.Module):
    """One agent lifetime in the meta-training population (batched over lifetimes of one task)."""

    learner: LearnerState
    critic: Any
    critic_opt: Any
    arm: Array
    age: Array  # agent updates done in this lifetime
    length: Array  # agent updates this lifetime lasts, N (the first is shorter: staggering)
    late_return_sum: Array
    late_return_count: Array
    return_ema: Array
    return_seen: Array
    staggered: Array  # the population's first lifetime in this slot (random length): not reported to the bandit


class TMGState(eqx.Module):
    """Truncated-meta-gradient state: one batch of lifetimes and one bandit per task."""

    groups: tuple[Lifetime, ...]
    bandits: tuple[BanditState, ...]



class LPGLifetimes(AbstractTruncatedProblem):
    """LPG's inner problem: a population of agent lifetimes trained by the rule, K agent updates
    per unroll, each unroll scored by an actor-critic meta-objective on a fresh rollout of the
    updated agent. `TruncatedBackprop` differentiates that meta-loss through the K updates
    (`TruncatedMetaGradient(...)` builds the pair).

    The meta-loss of one lifetime is, with ``regularizer="paper"``,

        −E[log π_θK(a|s) · Â] − β0 H(π_θK) − β1 H(y_θK) + β2 E[π̂²] + β3 E[‖ŷ‖²]

    (‖ŷ‖² on probabilities), and with ``regularizer="logits"`` (DiscoRL's form)

        −E[log π_θK(a|s) · Â] − β0 H(π_θK) + β1 E[(mean_m y-logits_θK)²] + β2 E[π̂²] + β3 E[(mean_m ŷ-logits)²].

    Both of the paper's y terms are optimal at a *uniform* y / ŷ, so they pull against the signal
    that teaches the rule what to predict; the logit form only bounds the logits' common offset,
    which softmax ignores, and leaves the shape of y and ŷ to the meta-gradient. For LPG-V (no y)
    the y terms are absent. π̂ and ŷ are the rule's outputs during the K updates.

    Â = normalised GAE(γ, λ) from a meta-critic V_ψ that belongs to the lifetime, is used only for
    meta-training, and takes one Adam step per meta-step on the TD(λ) errors of all K + 1 rollouts
    of the meta-step (the K the agent learned from and the fresh one); its loss is reported as
    ``critic_loss``. Â comes from the critic before that step.

    Lifetimes are grouped by task (one vmapped batch per task, since tasks differ in observation
    shapes); each restarts with a new level from its task distribution and a new bandit arm
    (learning rate × α_y) when its `lifetime_updates` are done. Each lifetime's first length is
    drawn uniformly from [K, lifetime_updates], so the population is staggered; these first,
    shortened lifetimes are not reported to the bandit (their final return would credit an arm
    for a lifetime it did not live), only the full-length ones after them.

    Lifetime lengths: every lifetime lasts `lifetime_updates` agent updates, or, with
    `min_lifetime_updates` > 0, a length N drawn per lifetime log-uniformly from
    [`min_lifetime_updates`, `lifetime_updates`] (rounded up to a multiple of K). A temporally-aware
    rule (TA-LPG) is told its lifetime's n/N and log N at every update (`learned_rl.Progress`).

    `inner_steps` K may be anything up to `lifetime_updates`; `member_loss(..., remat=True)` (what
    `TruncatedBackprop(checkpoint_inner=True)` asks for) rematerialises each inner update on the
    backward pass (`jax.checkpoint`), so memory grows with K by one agent state per update, not by
    every intermediate of the update.

    The meta-gradient is the mean over tasks of each task's mean over its lifetimes, weighted by
    `task_weights` (one positive weight per task, in the order of `tasks`; empty = equal weights).
    The preset field ``task_weights`` (``--set 'task_weights={"gridworld/long_dense": 3}'``) maps
    task names to weights; unnamed tasks weigh 1.

    Divergence: a lifetime whose meta-loss, meta-gradient, agent or meta-critic becomes non-finite
    during a step is left out of that step's meta-gradient (each lifetime's gradient is computed
    separately and the mean is taken over the finite ones), reported to its bandit as ended, and
    restarted as a fresh lifetime; ``agent_resets`` counts these events. Only a step with no finite
    lifetime at all returns a NaN gradient (which `meta_train` then skips).

    Sharding: the lifetimes of each task are the population axis (`population_size` =
    `lifetimes_per_task`), split across devices by `MetaTrainConfig(devices=...)`.
    """

    inner_steps: int = eqx.field(static=True, default=5)
    lifetimes_per_task: int = eqx.field(static=True, default=2)
    num_envs: int = eqx.field(static=True, default=16)
    rollout_len: int = eqx.field(static=True, default=20)
    lifetime_updates: int = eqx.field(static=True, default=300)
    min_lifetime_updates: int = eqx.field(static=True, default=0)
    learning_rates: tuple[float, ...] = eqx.field(static=True, default=(10.0, 20.0, 40.0, 80.0))
    alpha_ys: tuple[float, ...] = eqx.field(static=True, default=(0.1, 0.5, 1.0))
    agent_max_grad_norm: float = eqx.field(static=True, default=0.5)
    betas: tuple[float, float, float, float] = eqx.field(static=True, default=(0.01, 0.001, 0.001, 0.001))
    gae_lambda: float = eqx.field(static=True, default=0.95)
    critic_lr_tabular: float = eqx.field(static=True, default=0.05)
    critic_lr: float = eqx.field(static=True, default=1e-3)
    bandit_temperature: float = eqx.field(static=True, default=0.1)
    bandit_bonus: float = eqx.field(static=True, default=0.2)
    bandit_window: int = eqx.field(static=True, default=10)
    agent_hidden: tuple[int, ...] = eqx.field(static=True, default=(64, 64))
    index_torso: str = eqx.field(static=True, default="tabular")
    neural_optimizer: str = eqx.field(static=True, default="adam")
    neural_learning_rates: tuple[float, ...] = eqx.field(static=True, default=(1e-4, 3e-4, 1e-3))
    neural_max_grad_norm: float = eqx.field(static=True, default=1.0)
    task_torsos: tuple[tuple[str, str], ...] = eqx.field(static=True, default=())
    tasks: tuple = eqx.field(static=True, default=())
    return_scales: tuple[float, ...] = eqx.field(static=True, default=())
    task_weights: tuple[float, ...] = eqx.field(static=True, default=())
    regularizer: str = eqx.field(static=True, default="logits")

    def __check_init__(self):
        if self.regularizer not in ("paper", "logits"):
            raise ValueError(f"LPGLifetimes.regularizer must be 'paper' or 'logits', got {self.regularizer!r}")
        for name in ("inner_steps", "lifetimes_per_task", "num_envs", "rollout_len", "lifetime_updates", "bandit_window"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v <= 0:
                raise ValueError(f"LPGLifetimes.{name} must be a positive integer, got {v!r}")
        if self.inner_steps > self.lifetime_updates:
            raise ValueError(
                f"LPGLifetimes: K (inner_steps={self.inner_steps}) is longer than a lifetime "
                f"(lifetime_updates={self.lifetime_updates})"
            )
        m = self.min_lifetime_updates
        if not isinstance(m, (int, np.integer)) or isinstance(m, bool) or m < 0 or (m and not self.inner_steps <= m <= self.lifetime_updates):
            raise ValueError(
                f"LPGLifetimes.min_lifetime_updates must be 0 (fixed lengths) or in [K={self.inner_steps}, "
                f"lifetime_updates={self.lifetime_updates}], got {m!r}"
            )
        if not self.learning_rates or not self.alpha_ys or min(self.learning_rates) <= 0 or min(self.alpha_ys) < 0:
            raise ValueError("LPGLifetimes: learning_rates must be positive and alpha_ys non-negative")
        if not self.neural_learning_rates or min(self.neural_learning_rates) <= 0:
            raise ValueError(f"LPGLifetimes.neural_learning_rates must be positive, got {self.neural_learning_rates!r}")
        if self.index_torso not in ("tabular", "mlp"):
            raise ValueError(f"LPGLifetimes.index_torso must be 'tabular' or 'mlp', got {self.index_torso!r}")
        if not all(len(p) == 2 and p[1] in ("tabular", "mlp") for p in self.task_torsos):
            raise ValueError(f"LPGLifetimes.task_torsos must be (task name, 'tabular' | 'mlp') pairs, got {self.task_torsos!r}")
        if self.neural_optimizer not in OPTIMIZERS:
            raise ValueError(f"LPGLifetimes.neural_optimizer must be adam|rmsprop|sgd, got {self.neural_optimizer!r}")
        if self.task_weights and ((self.tasks and len(self.task_weights) != len(self.tasks)) or not all(np.isfinite(w) and w > 0 for w in self.task_weights)):
            raise ValueError(
                f"LPGLifetimes.task_weights must hold one positive weight per task ({len(self.tasks)} tasks), got {self.task_weights!r}"
            )

    def population_size(self) -> int:
        return self.lifetimes_per_task

    def population_axes(self, state) -> "TMGState":
        return TMGState(True, False)  # every lifetime leaf has the lifetime axis; bandits do not

    # ------------------------------------------------------------------ configuration per task

    @property
    def arms(self) -> list[tuple[float, float]]:
        """The lookup-table agents' arms (learning rate × α_y); see `arms_for` for a task's."""
        return [(lr, a) for lr in self.learning_rates for a in self.alpha_ys]

    def family(self, task) -> str:
        """The agent family a lifetime of `task` trains: ``"tabular"`` (lookup tables; index
        observations unless `task_torsos` or `index_torso` say ``"mlp"``), ``"cnn"`` (MinAtar images) or ``"mlp"``."""
        return resolve_torso(self._agent_config(task), task.obs_kind, task.family)

    def family_setup(self, family: str) -> dict:
        """A family's agent optimiser, clipping and bandit arm table: SGD with `learning_rates` and
        `agent_max_grad_norm` for lookup tables; `neural_optimizer` with `neural_learning_rates`
        and `neural_max_grad_norm` for networks. α_y arms are shared."""
        if family == "tabular":
            return {"optimizer": "sgd", "learning_rates": tuple(self.learning_rates), "alpha_ys": tuple(self.alpha_ys), "max_grad_norm": self.agent_max_grad_norm}
        return {"optimizer": self.neural_optimizer, "learning_rates": tuple(self.neural_learning_rates), "alpha_ys": tuple(self.alpha_ys), "max_grad_norm": self.neural_max_grad_norm}

    def arms_for(self, task) -> list[tuple[float, float]]:
        """The bandit arms (learning rate × α_y) of `task`'s agent family."""
        setup = self.family_setup(self.family(task))
        return [(lr, a) for lr in setup["learning_rates"] for a in setup["alpha_ys"]]

    def bind(self, tasks: list, rule=None) -> "LPGLifetimes":
        """Attach the task list (static) and each task's bandit return scale."""
        return dataclasses.replace(self, tasks=tuple(tasks), return_scales=return_scales(tasks))

    def arm_probs(self, state: "TMGState") -> list[np.ndarray]:
        """Each task's bandit probabilities over its `arms_for(task)` (host numbers)."""
        return [np.asarray(bandit_probs(b, self.bandit_temperature, self.bandit_bonus)) for b in state.bandits]

    def preferred_arms(self, state: "TMGState") -> dict[str, tuple[float, float]]:
        """Per agent family, the (learning rate, α_y) arm with the highest bandit probability
        averaged over that family's tasks: what a meta-trained rule is saved with."""
        probs = self.arm_probs(state)
        out = {}
        for fam in dict.fromkeys(self.family(t) for t in self.tasks):
            idx = [i for i, t in enumerate(self.tasks) if self.family(t) == fam]
            arms = self.arms_for(self.tasks[idx[0]])
            out[fam] = arms[int(np.argmax(np.mean([probs[i] for i in idx], axis=0)))]
        return out

    def preferred_arm(self, state: "TMGState") -> tuple[float, float]:
        """The preferred arm of the lookup-table family if it was meta-trained on, else of the
        first family (see `preferred_arms`)."""
        arms = self.preferred_arms(state)
        return arms.get("tabular", next(iter(arms.values())))

    def family_records(self, state: "TMGState") -> dict[str, dict]:
        """What a saved rule records per agent family it was meta-trained on: the optimiser, the
        clipping, the arm tables and the preferred arm."""
        return {
            fam: {**self.family_setup(fam), "learning_rate": lr, "alpha_y": a}
            for fam, (lr, a) in self.preferred_arms(state).items()
        }

    def validate(self, rule, tasks):
        for t in tasks:
            if t.continuous_actions:
                raise ValueError(f"task {t.name!r} has continuous actions; LPG agents are categorical")
        if not isinstance(rule, LPG):
            raise TypeError(f"LPGLifetimes needs a learned rule with a network (an LPG rule), got {type(rule).__name__}")

    def _agent_config(self, task) -> AgentConfig:
        if task.obs_kind == "index":
            torso = dict(self.task_torsos).get(task.name, self.index_torso)
            return AgentConfig(torso="tabular") if torso == "tabular" else AgentConfig(torso="mlp", hidden=self.agent_hidden, activation="relu")
        return AgentConfig(hidden=self.agent_hidden, activation="relu")

    def _train_config(self, task) -> TrainConfig:
        setup = self.family_setup(self.family(task))
        return TrainConfig(
            total_steps=self.lifetime_updates * self.num_envs * self.rollout_len,
            num_envs=self.num_envs,
            rollout_len=self.rollout_len,
            optimizer=setup["optimizer"],
            learning_rate=float(setup["learning_rates"][0]),  # each lifetime's arm replaces it
            max_grad_norm=setup["max_grad_norm"],
            agent=self._agent_config(task),
            adam_eps_root=DIFFERENTIABLE_ADAM_EPS_ROOT if setup["optimizer"] == "adam" else 0.0,  # a finite meta-gradient where a gradient is 0
        )

    def _critic_optimizer(self, task):
        return optax.adam(self.critic_lr_tabular if self.family(task) == "tabular" else self.critic_lr)

    # ------------------------------------------------------------------ lifetimes

    def _fresh_length(self, key) -> Array:
        """A new lifetime's length N: `lifetime_updates`, or drawn log-uniformly (see the class)."""
        if not self.min_lifetime_updates:
            return jnp.asarray(self.lifetime_updates, jnp.int32)
        return log_uniform_int(jax.random.fold_in(key, 1), self.min_lifetime_updates, self.lifetime_updates, self.inner_steps)

    def _new_lifetime(self, rule, task, bandit: BanditState, length, *, key, staggered: bool = False) -> Lifetime:
        k_arm, k_learner, k_critic = jax.random.split(key, 3)
        cfg = self._train_config(task)
        arm = bandit_sample(bandit, key=k_arm, temperature=self.bandit_temperature, bonus=self.bandit_bonus)
        lrs = jnp.asarray([lr for lr, _ in self.arms_for(task)], jnp.float32)
        learner = learner_init(rule, task, cfg, key=k_learner, learning_rate=lrs[arm])
        critic = make_agent(task, cfg.agent, prediction_dim=0, value=True, key=k_critic)
        critic_opt = self._critic_optimizer(task).init(eqx.filter(critic, eqx.is_inexact_array))
        z = jnp.zeros((), jnp.float32)
        return Lifetime(learner, critic, critic_opt, arm, jnp.zeros((), jnp.int32), jnp.asarray(length, jnp.int32), z, z, z, jnp.zeros((), bool), jnp.asarray(staggered))

    def init(self, rule, tasks, *, key):
        est = self if self.tasks else self.bind(tasks)
        groups, bandits = [], []
        for i, task in enumerate(est.tasks):
            bandit = bandit_init(len(est.arms_for(task)), est.bandit_window, est.return_scales[i])
            k_len, k_new = jax.random.split(jax.random.fold_in(key, i))
            if est.min_lifetime_updates:  # sampled lengths stagger the population by themselves
                lengths = log_uniform_int(k_len, est.min_lifetime_updates, est.lifetime_updates, est.inner_steps, (est.lifetimes_per_task,))
            else:
                lengths = jax.random.randint(k_len, (est.lifetimes_per_task,), est.inner_steps, est.lifetime_updates + 1)
            keys = jax.random.split(k_new, est.lifetimes_per_task)
            groups.append(jax.vmap(lambda k, n: est._new_lifetime(rule, task, bandit, n, key=k, staggered=True))(keys, lengths))
            bandits.append(bandit)
        return TMGState(tuple(groups), tuple(bandits))

    # ------------------------------------------------------------------ the meta-loss of one lifetime

    def member_loss(self, meta_params, rule_static, group: int, lt: Lifetime, *, key, remat: bool = True):
        """The meta-loss of one lifetime of task `group` after K updates with the rule, and the
        lifetime advanced by them (bookkeeping without gradient) with the metrics of the step."""
        task = self.tasks[group]
        rule = eqx.combine(meta_params, rule_static)
        alphas = jnp.asarray([a for _, a in self.arms_for(task)], jnp.float32)
        rule = rule.with_arm(alpha_y=alphas[lt.arm])
        cfg = self._train_config(task)
        K = self.inner_steps

        learner, m, inner_trajs = learner_run(rule, task, cfg, lt.learner, K, remat=remat, with_trajectory=True, horizon=lt.length)

        # fresh rollout of the updated agent (the environments continue)
        k_roll, key = jax.random.split(key)
        carry, traj, stats = collect(learner.agent, task.env, learner.env_params, learner.env, self.rollout_len, key=k_roll)
        learner = LearnerState(learner.agent, learner.opt_state, learner.env_params, carry, learner.key, learner.update)

        # meta-critic: TD(λ) on all K + 1 rollouts; the meta-loss uses the last one's advantages
        all_trajs = jax.lax.stop_gradient(jax.tree.map(lambda a, b: jnp.concatenate([a, b[None]], axis=0), inner_trajs, traj))

        def critic_loss_fn(critic):
            def one(tr):
                v = batched_value(critic, tr.obs)
                adv, target = advantages_and_targets(critic, tr, v, rule.gamma, self.gae_lambda)
                return 0.5 * jnp.mean((v - target) ** 2), adv

            losses, advs = jax.vmap(one)(all_trajs)
            return jnp.mean(losses), advs[-1]

        (critic_loss, adv), cgrads = jax.value_and_grad(critic_loss_fn, has_aux=True)(lt.critic)
        critic, critic_opt = apply_gradients(lt.critic, cgrads, lt.critic_opt, self._critic_optimizer(task))
        adv = jax.lax.stop_gradient(normalize(adv))

        out = batched(learner.agent, traj.obs)
        logp, entropy = categorical_log_prob_entropy(out.logits, traj.action)
        b0, b1, b2, b3 = self.betas
        pg = -jnp.mean(logp * adv)
        meta_loss = pg - b0 * jnp.mean(entropy) + b2 * jnp.mean(m["pi_hat_sq"])
        if out.y_logits is not None:
            log_y = jax.nn.log_softmax(out.y_logits)
            y_entropy = -jnp.sum(jnp.exp(log_y) * log_y, axis=-1)
            if self.regularizer == "paper":
                meta_loss = meta_loss - b1 * jnp.mean(y_entropy) + b3 * jnp.mean(m["y_hat_sq"])
            else:
                meta_loss = meta_loss + b1 * jnp.mean(jnp.mean(out.y_logits, axis=-1) ** 2) + b3 * jnp.mean(m["y_hat_logit_mean_sq"])
        else:
            y_entropy = jnp.zeros_like(entropy)

        # lifetime bookkeeping (no gradient)
        sg = jax.lax.stop_gradient
        age = lt.age + K
        late = age > lt.length - jnp.maximum(K, lt.length // 5)
        rs = sg(jnp.sum(m["return_sum"]) + stats.return_sum)
        n = sg(jnp.sum(m["episodes"]) + stats.count)
        mean_ret = rs / jnp.maximum(n, 1.0)
        ema = jnp.where(n > 0, jnp.where(lt.return_seen, 0.9 * lt.return_ema + 0.1 * mean_ret, mean_ret), lt.return_ema)
        new_lt = Lifetime(
            sg(learner),
            critic,
            critic_opt,
            lt.arm,
            age,
            lt.length,
            lt.late_return_sum + jnp.where(late, rs, 0.0),
            lt.late_return_count + jnp.where(late, n, 0.0),
            ema,
            lt.return_seen | (n > 0),
            lt.staggered,
        )
        aux = {
            "meta_pg_loss": pg,
            "critic_loss": critic_loss,
            "entropy": jnp.mean(entropy),
            "y_entropy": jnp.mean(y_entropy),
            "pi_hat_sq": jnp.mean(m["pi_hat_sq"]),
            "lifetime_return": ema,
        }
        return meta_loss, (new_lt, aux)

    # ------------------------------------------------------------------ one estimate

    def member_finite(self, lts: Lifetime) -> Array:
        """[N] booleans: whether each lifetime's agent, optimiser and meta-critic are finite."""
        n = lts.age.shape[0]
        return _all_finite_rows((lts.learner.agent, lts.learner.opt_state, lts.critic, lts.critic_opt), n)

    def members(self, state: TMGState) -> tuple[Lifetime, ...]:
        return state.groups

    def group_weights(self) -> tuple[float, ...]:
        return tuple(float(x) for x in self.task_weights) or (1.0,) * len(self.tasks)

    def advance(self, rule, state: TMGState, new: tuple, healthy: tuple, aux: tuple, *, keys) -> tuple[TMGState, dict[str, Array]]:
        """After one unroll: report every lifetime that ended (or diverged) to its task's bandit,
        restart it as a fresh lifetime with a new arm, and name the step's metrics by task."""
        groups, bandits, metrics = [], [], {}
        for i, task in enumerate(self.tasks):
            old, lts, ok = state.groups[i], new[i], healthy[i]
            N = ok.shape[0]
            ended = lts.age >= lts.length
            reset = ended | ~ok

            def final_return(x: Lifetime):
                return jnp.where(x.late_return_count > 0, x.late_return_sum / jnp.maximum(x.late_return_count, 1.0), x.return_ema)

            # a diverged lifetime reports its last finite estimate (from before this step)
            final = jnp.where(ok, final_return(lts), final_return(old))
            bandit = state.bandits[i]

            def push(b, x):
                arm, f, e = x
                return bandit_update(b, arm, f, e), None

            bandit, _ = jax.lax.scan(push, bandit, (old.arm, final, reset & jnp.isfinite(final) & ~old.staggered))
            k_new = constrain_population(jax.random.split(keys[i], N))
            arrays, static = eqx.partition(lts, eqx.is_array)

            def restart(arrays, k_new=k_new, reset=reset, bandit=bandit, static=static, task=task):
                fresh = jax.vmap(lambda k: self._new_lifetime(rule, task, bandit, self._fresh_length(k), key=k))(k_new)
                fresh = eqx.filter(fresh, eqx.is_array)
                return jax.tree.map(lambda f, o: jnp.where(reset.reshape((-1,) + (1,) * (o.ndim - 1)), f, o), fresh, arrays)

            # fresh lifetimes (new agents, critics, levels) are built only on a step where one ends:
            # building them costs as much as a tenth of a meta-step with network agents
            arrays = jax.lax.cond(jnp.any(reset), restart, lambda a: a, arrays)
            lts = eqx.combine(arrays, static)
            groups.append(constrain_population(lts))
            bandits.append(bandit)
            name = task.name
            for k, v in aux[i].items():
                metrics[f"{k}/{name}"] = v
            metrics[f"final_return_sum/{name}"] = jnp.sum(jnp.where(ended & ok, final, 0.0))
            metrics[f"lifetimes_ended/{name}"] = jnp.sum(ended & ok)
            metrics[f"agent_resets/{name}"] = jnp.sum(~ok)
            metrics[f"arm_probs/{name}"] = bandit_probs(bandit, self.bandit_temperature, self.bandit_bonus)
        metrics["critic_loss"] = jnp.mean(jnp.stack([metrics[f"critic_loss/{t.name}"] for t in self.tasks]))
        metrics["agent_resets"] = sum(metrics[f"agent_resets/{t.name}"] for t in self.tasks)
        return TMGState(tuple(groups), tuple(bandits)), metrics

    def env_steps_per_unroll(self) -> int:
        return len(self.tasks) * self.lifetimes_per_task * (self.inner_steps + 1) * self.num_envs * self.rollout_len


def _all_finite_rows(tree, n: int) -> Array:
    """[n] booleans: whether every inexact-array leaf of `tree` is finite in row i of its leading axis."""
    rows = [jnp.all(jnp.isfinite(x.reshape(n, -1)), axis=1) for x in jax.tree.leaves(tree) if eqx.is_inexact_array(x) and x.ndim >= 1 and x.shape[0] == n]
    return jnp.all(jnp.stack(rows), axis=0) if rows else jnp.ones((n,), bool)


@dataclasses.dataclass(frozen=True)
class _NoFields:
    """A rule with no hyperparameters: `apply_overrides` then touches the `TrainConfig` only."""


class TrainingRuns(AbstractFitnessProblem):
    """Whole training runs (whole lifetimes): the fitness of a rule on a task is the final return
    (`late_return`) of a fresh agent trained with it from scratch. LPO's inner problem, and LPG's
    for evolution strategies over whole lifetimes.

    **Arguments** (all static):

    - `inner_env_steps`: env steps of each run (the rule's default config for the task family, with
      `total_steps` replaced); `None` keeps the default budget. (Its old name `inner_steps` still
      works, with a notice: LPG's `inner_steps` is K, agent updates.)
    - `seeds_per_member`: runs per fitness (their keys depend only on the fitness key); fitness is
      their mean.
    - `final_fraction`: fitness is the mean return of episodes ending in this last fraction of the
      run's updates.
    - `horizons`: lifetimes of several lengths: a tuple of agent-update counts N, one drawn
      uniformly per fitness call from its key (so every member of a generation, sharing the key,
      lives the same N: common random numbers; a geometric tuple is a log-uniform draw). A
      temporally-aware rule is told its N. Empty: every run lasts `inner_env_steps`.
    - `normalize`: divide each task's fitness by its return scale (the optimal return of its
      default level where the task knows it, else 1), so tasks of different return ranges weigh
      alike.
    - `config_overrides`: ``(field, value)`` pairs replacing fields of each run's `TrainConfig`
      (`learning_rate`, `num_envs`, ...; see `learned_rl._learner.apply_overrides`). The rule's own
      hyperparameters (`num_minibatches`, ...) are the rule's: set them on the rule.
    """

    inner_env_steps: int | None = eqx.field(static=True)
    seeds_per_member: int = eqx.field(static=True)
    final_fraction: float = eqx.field(static=True)
    horizons: tuple[int, ...] = eqx.field(static=True)
    normalize: bool = eqx.field(static=True)
    config_overrides: tuple[tuple[str, Any], ...] = eqx.field(static=True)
    tasks: tuple = eqx.field(static=True)
    configs: tuple = eqx.field(static=True)
    scales: tuple[float, ...] = eqx.field(static=True)

    def __init__(
        self,
        inner_env_steps: int | None = None,
        seeds_per_member: int = 1,
        final_fraction: float = 0.1,
        horizons: tuple[int, ...] = (),
        normalize: bool = False,
        config_overrides: tuple[tuple[str, Any], ...] = (),
        tasks: tuple = (),
        configs: tuple = (),
        scales: tuple[float, ...] = (),
        *,
        inner_steps: int | None = None,
    ):
        self.inner_env_steps = renamed_argument("TrainingRuns", "inner_steps", inner_steps, "inner_env_steps", inner_env_steps)
        self.seeds_per_member = seeds_per_member
        self.final_fraction = final_fraction
        self.horizons = horizons
        self.normalize = normalize
        self.config_overrides = config_overrides
        self.tasks = tasks
        self.configs = configs
        self.scales = scales

    def __check_init__(self):
        s = self.seeds_per_member
        if not isinstance(s, (int, np.integer)) or isinstance(s, bool) or s <= 0:
            raise ValueError(f"TrainingRuns.seeds_per_member must be a positive integer, got {s!r}")
        n = self.inner_env_steps
        if n is not None and (not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n <= 0):
            raise ValueError(f"TrainingRuns.inner_env_steps must be a positive integer or None, got {n!r}")
        if not 0 < self.final_fraction <= 1:
            raise ValueError(f"TrainingRuns.final_fraction must be in (0, 1], got {self.final_fraction!r}")
        if not all(isinstance(h, (int, np.integer)) and not isinstance(h, bool) and h > 0 for h in self.horizons):
            raise ValueError(f"TrainingRuns.horizons must be positive agent-update counts, got {self.horizons!r}")

    def bind(self, tasks: list, rule=None) -> "TrainingRuns":
        """Attach the task list, each task's return scale and, given the rule, each task's inner
        `TrainConfig` (static); without it the configs are derived from the rule inside `fitness`."""
        configs = tuple(self._config(rule, t) for t in tasks) if rule is not None else ()
        return dataclasses.replace(self, tasks=tuple(tasks), configs=configs, scales=return_scales(tasks))

    def _config(self, rule, task) -> TrainConfig:
        cfg = default_config_for(rule, task, dict(self.config_overrides or {}), prefix="TrainingRuns.config_overrides ")
        if not isinstance(cfg, TrainConfig):
            raise TypeError(f"{type(rule).__name__}.default_config must return a TrainConfig")
        if self.inner_env_steps is not None:
            cfg = cfg.replace(total_steps=int(self.inner_env_steps))  # re-validated: ≥ one rollout
        if self.config_overrides:
            sets = dict(self.config_overrides)
            _, cfg, used = apply_overrides(_NoFields(), cfg, sets, prefix="TrainingRuns.config_overrides ")
            if set(sets) - set(used):
                raise ValueError(f"TrainingRuns.config_overrides: {sorted(set(sets) - set(used))} are not TrainConfig fields")
        return cfg

    def validate(self, rule, tasks):
        for t in tasks:
            self._config(rule, t)  # raises ValueError for an unsupported family or a tiny budget

    def fitness(self, rule, *, key):
        if not self.tasks:
            raise ValueError("TrainingRuns: no tasks bound (call bind(tasks) or use meta_train)")
        configs = self.configs or tuple(self._config(rule, t) for t in self.tasks)
        # one N for every member given this key (an unbatched index: lax.switch runs one branch)
        which = jax.random.randint(jax.random.fold_in(key, 10_007), (), 0, len(self.horizons)) if self.horizons else None
        out = []
        for i, (task, cfg) in enumerate(zip(self.tasks, configs)):
            keys = jax.random.split(jax.random.fold_in(key, i), self.seeds_per_member)

            def mean_final(cfg, task=task):
                def final(k):
                    m = train(rule, task, cfg, key=k)[1]
                    return late_return(m["return_sum"], m["episodes"], self.final_fraction)

                return jnp.mean(jax.vmap(final)(keys))

            if self.horizons:
                branches = [lambda c=self._with_horizon(cfg, n): mean_final(c) for n in self.horizons]
                ret = jax.lax.switch(which, branches)
            else:
                ret = mean_final(cfg)
            if self.normalize:
                ret = ret / (self.scales[i] if self.scales else return_scales([task])[0])
            out.append(ret)
        return jnp.stack(out)

    @staticmethod
    def _with_horizon(cfg: TrainConfig, updates: int) -> TrainConfig:
        return cfg.replace(total_steps=int(updates) * cfg.steps_per_update)

    def env_steps_per_fitness(self) -> int:
        def run_steps(c):
            if self.horizons:  # the expected length of a drawn lifetime
                return int(round(np.mean([n for n in self.horizons]) * c.steps_per_update))
            return c.num_updates * c.steps_per_update

        return self.seeds_per_member * sum(run_steps(c) for c in self.configs)


class FitnessFunction(AbstractFitnessProblem):
    """Any ``fn(rule, key) -> fitness`` (a scalar, or one value per task) as an inner problem: for
    tests (a known quadratic) and custom meta-objectives. It steps no environment."""

    fn: Callable = eqx.field(static=True)
    tasks: tuple = eqx.field(static=True)

    def __init__(self, fn: Callable, *, tasks: tuple = ()):
        if not callable(fn):
            raise TypeError(f"FitnessFunction needs a function (rule, key) -> fitness, got {fn!r}")
        self.fn = fn
        self.tasks = tuple(tasks)

    def fitness(self, rule, *, key):
        return jnp.broadcast_to(jnp.asarray(self.fn(rule, key), jnp.float32), (max(1, len(self.tasks)),))

    def env_steps_per_fitness(self) -> int:
        return 0
