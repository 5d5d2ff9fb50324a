"""`AbstractUpdateRule`: the one interface every learner (A2C, PPO, LPG, LPO, DPO) implements."""

from __future__ import annotations

import abc
from typing import Any, ClassVar

import equinox as eqx
import jax
import optax
from jaxtyping import Array, Float, PRNGKeyArray

from .._agent import Agent
from .._agent import categorical_log_prob_entropy as categorical_log_prob_entropy
from .._agent import gaussian_log_prob_entropy as gaussian_log_prob_entropy
from .._agent import log_prob_entropy as log_prob_entropy
from .._returns import gae
from .._rollout import Trajectory


def concrete(*values) -> bool:
    """Whether every value is known now (not a tracer): hyperparameter checks in `__check_init__`
    run on concrete values only, so a rule can be built inside `jax.vmap` over a traced
    hyperparameter (a sweep). `learned_rl.run_sweep` checks every point concretely first."""
    return not any(isinstance(v, jax.core.Tracer) for v in values)


def apply_gradients(agent: Agent, grads: Agent, opt_state, optimizer: optax.GradientTransformation):
    """One optimiser step on the agent's inexact-array leaves. Returns `(agent, opt_state)`."""
    params = eqx.filter(agent, eqx.is_inexact_array)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return eqx.apply_updates(agent, updates), opt_state


class AbstractUpdateRule(eqx.Module):
    """An update rule maps an agent and a trajectory to a new agent.

    Hand-written rules (A2C, PPO) and learned rules (LPG, LPO) are the same kind of object; a
    learned rule's inexact-array leaves *are* its meta-parameters.

    Subclasses implement `loss`. The default `update` takes one gradient step on it; rules that
    reuse a batch (PPO's epochs × minibatches) override `update`.

    Class attributes:

    - `name`: the rule's name in the CLI and in result files.
    - `prediction_dim`: m, the size of the agent's prediction head y (0: no head).
    - `needs_value`: whether the agent needs a value head.
    - `action_kinds`: the action spaces the rule can train a policy for, a subset of
      ``{"discrete", "continuous"}``. `check_task` turns it into a one-line error, and `compare`
      (so ``train``, ``compare``, ``transfer``) reports a rule that cannot run on a task as skipped.
    - `temporal`: whether the rule is temporally aware (TA-LPG, TA-LPO). The inner loop then calls
      ``update(..., key=key, progress=progress)`` with a `learned_rl.Progress` (agent updates so
      far n, lifetime N); rules that are not temporal are called without it. A rule may make this
      a property of its parts (LPG: its network; mirror learning: its drift).
    """

    name: eqx.AbstractClassVar[str]
    prediction_dim: ClassVar[int] = 0
    needs_value: ClassVar[bool] = False
    action_kinds: ClassVar[frozenset[str]] = frozenset({"discrete"})
    temporal: ClassVar[bool] = False

    def check_task(self, task) -> None:
        """Raise `ValueError` (one line) if this rule cannot train agents on `task`."""
        kind = "continuous" if task.continuous_actions else "discrete"
        if kind not in self.action_kinds:
            policy = "a categorical policy" if kind == "continuous" else "a continuous policy"
            raise ValueError(f"{self.name} trains {policy} only; task {task.name!r} has {kind} actions")

    @abc.abstractmethod
    def loss(
        self, agent: Agent, traj: Trajectory, *, key: PRNGKeyArray
    ) -> tuple[Float[Array, ""], dict[str, Array]]:
        """The agent's loss on a trajectory, and a dict of scalar metrics."""

    def update(
        self,
        agent: Agent,
        opt_state: Any,
        optimizer: optax.GradientTransformation,
        traj: Trajectory,
        *,
        key: PRNGKeyArray,
    ) -> tuple[Agent, Any, dict[str, Array]]:
        """Update the agent on one trajectory. Returns `(agent, opt_state, metrics)`."""
        grads, metrics = eqx.filter_grad(lambda a: self.loss(a, traj, key=key), has_aux=True)(agent)
        agent, opt_state = apply_gradients(agent, grads, opt_state, optimizer)
        return agent, opt_state, metrics

    @abc.abstractmethod
    def default_config(self, task, agent: dict[str, Any] | None = None) -> Any:
        """The documented default `TrainConfig` of this rule for the task's family.

        `agent` holds the `AgentConfig` fields a run sets (``{"torso": "mlp"}`` from ``--set
        agent.torso=mlp``); the config is for that agent. A rule whose defaults depend on the agent
        class (LPG's per-family optimiser) chooses them for it. A rule written without this
        argument is called without it, and the fields are applied to its config afterwards."""

    def overridable(self, fields) -> "AbstractUpdateRule":
        """This rule prepared so that a value given for each of `fields` (top-level names, set by
        ``--set``, a sweep or a tuned point) is the one its updates use. The identity, except in
        rules that keep a field's value in more than one place (LPG's per-family α_y)."""
        return self


# `log_prob_entropy(out, action)` (re-exported above from `learned_rl._agent`) dispatches on the
# policy type of an `AgentOutput`: categorical logits or a diagonal Gaussian. Rules that should work
# with both action kinds (A2C, PPO and its DPO/LPO drifts) use it; `categorical_log_prob_entropy`
# stays for rules that are categorical by construction (LPG).


def batched(agent: Agent, obs: Array):
    """Apply the agent to observations with any leading axes (``[T, B]``, ``[N]``, ...)."""
    lead = obs.shape[: obs.ndim - agent.obs_ndim]
    flat = obs.reshape((-1, *obs.shape[len(lead):]))
    out = jax.vmap(agent)(flat)
    return jax.tree.map(lambda x: x.reshape((*lead, *x.shape[1:])), out)


def batched_value(agent: Agent, obs: Array) -> Array:
    """The agent's value head on observations with any leading axes."""
    lead = obs.shape[: obs.ndim - agent.obs_ndim]
    flat = obs.reshape((-1, *obs.shape[len(lead):]))
    return jax.vmap(agent.value)(flat).reshape(lead)


def advantages_and_targets(agent: Agent, traj: Trajectory, value: Array, gamma: float, lam: float) -> tuple[Array, Array]:
    """GAE(γ, λ) advantages of `traj` and the value targets ``Â + V``, both without gradient.

    `value` is ``V(s_t)`` ``[T, B]`` (computed by the caller, often in the same pass as the policy);
    the bootstrap is `agent`'s value head on the true next observations, zero where the episode
    terminated and kept where it was only truncated. The one value-target set-up of every rule with
    a value head (A2C, the mirror-learning rules, LPG-V) and of LPG's meta-critic.
    """
    value = jax.lax.stop_gradient(value)
    next_value = jax.lax.stop_gradient(batched_value(agent, traj.next_obs)) * (1.0 - traj.terminated)
    adv = gae(traj.reward, value, next_value, traj.done, gamma, lam)
    return adv, adv + value
