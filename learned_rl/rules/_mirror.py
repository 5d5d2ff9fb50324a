"""Mirror learning: one policy objective ``E[r·A − f(r, A)]`` with pluggable drift functions f.

`r = π_new(a|s) / π_old(a|s)` and A is the advantage. A valid drift satisfies, for every A,
``f ≥ 0``, ``f(1, A) = 0`` and ``∂f/∂r(1, A) = 0`` (Kuba et al. 2022; Lu et al. 2022).

PPO's clipped objective is this objective with `ClipDrift`:
``min(rA, clip(r, 1−ε, 1+ε)A) = rA − relu((r − clip(r, 1−ε, 1+ε))·A)``.
"""

from __future__ import annotations

import abc
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from .._defaults import PPO_DEFAULTS, family_default
from .._learner import TrainConfig
from .._returns import normalize
from ._base import AbstractUpdateRule, advantages_and_targets, apply_gradients, batched, batched_value, concrete, log_prob_entropy


class AbstractDrift(eqx.Module, strict=True):
    """A drift function f(r, A). Implement `__call__(log_ratio, advantage)`; the log-ratio is
    passed (rather than r) so that drifts needing log r never compute ``log(exp(·))``.

    `temporal`: a temporally-aware drift (TA-LPO) is called as ``drift(log_ratio, advantage,
    fraction)`` with n/N, the fraction of the agent's training budget spent (see
    `learned_rl.Progress`); other drifts are called with two arguments only."""

    name: eqx.AbstractClassVar[str]
    temporal: ClassVar[bool] = False

    @abc.abstractmethod
    def __call__(self, log_ratio: Float[Array, "..."], advantage: Float[Array, "..."]) -> Float[Array, "..."]:
        ...


class ClipDrift(AbstractDrift):
    """PPO-clip as a drift: ``relu((r − clip(r, 1−ε, 1+ε))·A)``."""

    name: ClassVar[str] = "clip"
    epsilon: float = 0.2

    def __check_init__(self):
        if concrete(self.epsilon) and not 0 < self.epsilon < 1:
            raise ValueError(f"ClipDrift.epsilon must be in (0, 1), got {self.epsilon}")

    def __call__(self, log_ratio, advantage):
        r = jnp.exp(log_ratio)
        return jax.nn.relu((r - jnp.clip(r, 1.0 - self.epsilon, 1.0 + self.epsilon)) * advantage)


ACTIVE_DRIFT = 1e-6  # f(r, A) above this counts as an active drift (`drift_activity`)


def drift_values(drift: AbstractDrift, log_ratio: Float[Array, "..."], advantage: Float[Array, "..."], fraction=None) -> Float[Array, "..."]:
    """f(r, A) per sample (a temporal drift also gets `fraction`, n/N)."""
    if drift.temporal:
        if fraction is None:
            raise ValueError(f"a temporal drift ({type(drift).__name__}) needs the fraction n/N of the training budget spent")
        return drift(log_ratio, advantage, fraction)
    return drift(log_ratio, advantage)


def mirror_objective(
    drift: AbstractDrift, log_ratio: Float[Array, "..."], advantage: Float[Array, "..."], fraction=None
) -> Float[Array, ""]:
    """The mirror-learning objective to *maximise*: ``mean(r·A − f(r, A))`` (a temporal drift
    also gets `fraction`, n/N)."""
    return jnp.mean(jnp.exp(log_ratio) * advantage - drift_values(drift, log_ratio, advantage, fraction))


def drift_activity(drift_value: Float[Array, "..."], log_ratio: Float[Array, "..."], epsilon: float) -> dict[str, Array]:
    """How much a drift acts on a batch: ``drift_active`` (fraction of samples with
    f(r, A) > `ACTIVE_DRIFT`), ``drift_mean`` (mean f), ``clip_fraction`` (fraction with
    |r − 1| > ε) and ``approx_kl`` (mean of (r − 1) − log r, an estimate of KL(π_old ‖ π)).

    PPO's clip and LPO's drift are exactly 0 inside their trust region; DPO's is smooth and
    positive wherever r has moved with A (about ((r−1)A)³ / 3α² there), so the threshold counts a
    DPO sample only once its drift is no longer negligible (|r − 1|·|A| above about 0.02)."""
    r = jnp.exp(log_ratio)
    return {
        "drift_active": jnp.mean((drift_value > ACTIVE_DRIFT).astype(jnp.float32)),
        "drift_mean": jnp.mean(drift_value),
        "clip_fraction": jnp.mean((jnp.abs(r - 1.0) > epsilon).astype(jnp.float32)),
        "approx_kl": jnp.mean((r - 1.0) - log_ratio),
    }


class DPODrift(AbstractDrift):
    """Discovered Policy Optimisation's closed-form drift (Lu et al. 2022):

    - A ≥ 0: ``relu((r − 1)·A − α·tanh((r − 1)·A / α))``
    - A < 0: ``relu(log(r)·A − β·tanh(log(r)·A / β))`` (uses the log-ratio directly)
    """

    name: ClassVar[str] = "dpo"
    alpha: float = 2.0
    beta: float = 0.6

    def __check_init__(self):
        if concrete(self.alpha, self.beta) and not (self.alpha > 0 and self.beta > 0):
            raise ValueError("DPODrift: alpha and beta must be positive")

    def __call__(self, log_ratio, advantage):
        pos = (jnp.exp(log_ratio) - 1.0) * advantage
        neg = log_ratio * advantage
        f_pos = jax.nn.relu(pos - self.alpha * jnp.tanh(pos / self.alpha))
        f_neg = jax.nn.relu(neg - self.beta * jnp.tanh(neg / self.beta))
        return jnp.where(advantage >= 0, f_pos, f_neg)


class LPODrift(AbstractDrift):
    """LPO's learned drift: features x = ``[log r, (log r)², 1−r, (1−r)²]`` and the same four
    times A, then Dense(128, no bias) → tanh → Dense(1, no bias); ``f = relu(NN(x) − 1e-4)``, or
    with `ppo_init` ``f = relu(f_clip(r, A) + NN(x) − 1e-4)``.

    Every feature is 0 at r = 1 and the network has no biases, so NN = 0 there; the −1e-4 shift
    keeps f ≡ 0 near r = 1, so f(1, A) = 0 and ∂f/∂r(1, A) = 0 for any weights.

    `temporal` (TA-LPO; Jackson et al. 2024): the network reads ``[x, (n/N)·x]``, 16 features,
    where n/N is the fraction of the agent's training budget spent. Every feature is still 0 at
    r = 1, so the drift conditions hold exactly at every n.
    """

    name: ClassVar[str] = "lpo"
    hidden: eqx.nn.Linear
    out: eqx.nn.Linear
    ppo_init: bool = eqx.field(static=True, default=True)
    epsilon: float = 0.2
    temporal: bool = eqx.field(static=True, default=False)

    def __init__(self, width: int = 128, ppo_init: bool = True, *, key, zero_output: bool = True, epsilon: float = 0.2, temporal: bool = False):
        k1, k2 = jax.random.split(key)
        self.temporal = bool(temporal)
        self.hidden = eqx.nn.Linear(16 if self.temporal else 8, width, use_bias=False, key=k1)
        out = eqx.nn.Linear(width, 1, use_bias=False, key=k2)
        # the ES mean starts at zero output, so generation 0 is PPO (with ppo_init)
        self.out = eqx.tree_at(lambda l: l.weight, out, jnp.zeros_like(out.weight)) if zero_output else out
        self.ppo_init = ppo_init
        self.epsilon = epsilon

    @staticmethod
    def features(log_ratio, advantage):
        one_minus_r = 1.0 - jnp.exp(log_ratio)
        base = jnp.stack([log_ratio, log_ratio**2, one_minus_r, one_minus_r**2], axis=-1)
        return jnp.concatenate([base, base * advantage[..., None]], axis=-1)

    def __call__(self, log_ratio, advantage, fraction=None):
        x = self.features(log_ratio, advantage)
        if self.temporal:
            if fraction is None:
                raise ValueError("a temporal LPODrift (TA-LPO) needs the fraction n/N of the training budget spent")
            x = jnp.concatenate([x, jnp.asarray(fraction, x.dtype) * x], axis=-1)
        flat = x.reshape(-1, x.shape[-1])
        nn = jax.vmap(lambda v: self.out(jnp.tanh(self.hidden(v)))[0])(flat).reshape(log_ratio.shape)
        f = nn - 1e-4
        if self.ppo_init:
            f = f + ClipDrift(self.epsilon)(log_ratio, advantage)
        return jax.nn.relu(f)


_MIRROR_NAMES = {"clip": "ppo", "dpo": "dpo", "lpo": "lpo"}


class MirrorLearning(AbstractUpdateRule):
    """The mirror-learning rule: PPO's machinery (GAE, epochs × minibatches, per-minibatch advantage
    normalisation, clipped value loss, entropy bonus) around the objective ``E[r·A − f(r, A)]`` with
    a pluggable `drift` f. With `ClipDrift` it is PPO-clip (`learned_rl.baselines.PPO`); with
    `DPODrift` it is DPO, with `LPODrift` LPO. Per-family defaults: `PPO_DEFAULTS`.

    Every update reports how much the drift acted (`drift_activity`): ``drift_active``,
    ``drift_mean``, ``clip_fraction`` and ``approx_kl`` averaged over its minibatch steps (the first
    of which sees r = 1), and the same four on the whole batch after the last step, suffixed
    ``_after`` (advantages normalised over the whole batch). The clip fraction counts
    |r − 1| > ε with the drift's ε (PPO's 0.2 for drifts without one, such as DPO's)."""

    # the CLI's name, from the drift: ppo (clip), dpo, lpo, or mirror:<drift> (a property on instances)
    name: ClassVar[str] = property(lambda self: _MIRROR_NAMES.get(self.drift.name, f"mirror:{self.drift.name}"))  # type: ignore[assignment]
    action_kinds: ClassVar[frozenset[str]] = frozenset({"discrete", "continuous"})
    prediction_dim: ClassVar[int] = 0
    needs_value: ClassVar[bool] = True
    drift: AbstractDrift = ClipDrift(0.2)
    gamma: float = 0.99
    gae_lambda: float = 0.95
    ent_coef: float = 0.01
    vf_coef: float = 0.5
    clip_value: float | None = 0.2
    num_epochs: int = eqx.field(default=4, static=True)
    num_minibatches: int = eqx.field(default=4, static=True)

    def __check_init__(self):
        if self.num_epochs <= 0 or self.num_minibatches <= 0:
            raise ValueError(f"{type(self).__name__}: num_epochs and num_minibatches must be positive")
        if concrete(self.gamma, self.gae_lambda) and (not 0 <= self.gamma <= 1 or not 0 <= self.gae_lambda <= 1):
            raise ValueError(f"{type(self).__name__}: gamma and gae_lambda must be in [0, 1]")

    def _batch(self, agent, traj):
        """Advantages and value targets under the behaviour agent, flattened to ``[N]``."""
        value = batched_value(agent, traj.obs)
        adv, target = advantages_and_targets(agent, traj, value, self.gamma, self.gae_lambda)
        batch = {
            "obs": traj.obs,
            "action": traj.action,
            "log_prob": traj.log_prob,
            "adv": adv,
            "target": target,
            "value": value,
        }
        n = traj.reward.size
        return jax.tree.map(lambda x: x.reshape((n, *x.shape[2:])), jax.lax.stop_gradient(batch))

    @property
    def temporal(self) -> bool:  # TA-LPO: the drift reads n/N
        return self.drift.temporal

    def _fraction(self, progress):
        if not self.temporal:
            return None
        if progress is None:
            raise ValueError("a temporal (TA-LPO) rule needs progress=Progress(n, N); learned_rl.train passes it")
        return progress.fraction

    def _minibatch_loss(self, agent, mb, fraction=None):
        out = batched(agent, mb["obs"])
        logp, entropy = log_prob_entropy(out, mb["action"])
        log_ratio = logp - mb["log_prob"]
        adv = normalize(mb["adv"])
        drift = drift_values(self.drift, log_ratio, adv, fraction)
        objective = jnp.mean(jnp.exp(log_ratio) * adv - drift)
        if self.clip_value is None:
            v_loss = 0.5 * jnp.mean((out.value - mb["target"]) ** 2)
        else:
            v_clipped = mb["value"] + jnp.clip(out.value - mb["value"], -self.clip_value, self.clip_value)
            v_loss = 0.5 * jnp.mean(
                jnp.maximum((out.value - mb["target"]) ** 2, (v_clipped - mb["target"]) ** 2)
            )
        ent = jnp.mean(entropy)
        loss = -objective + self.vf_coef * v_loss - self.ent_coef * ent
        activity = jax.lax.stop_gradient(drift_activity(drift, log_ratio, self.clip_epsilon))
        return loss, {"loss": loss, "policy_objective": objective, "value_loss": v_loss, "entropy": ent, **activity}

    @property
    def clip_epsilon(self) -> float:
        """The ε of ``clip_fraction``: the drift's own, or PPO's 0.2."""
        return getattr(self.drift, "epsilon", 0.2)

    def activity_after(self, agent, batch, fraction=None) -> dict[str, Array]:
        """`drift_activity` of `agent` on a whole flattened batch (see `_batch`), keys suffixed
        ``_after``: how far an update has moved the policy, and how much of the batch the drift
        then acts on."""
        logp, _ = log_prob_entropy(batched(agent, batch["obs"]), batch["action"])
        log_ratio = logp - batch["log_prob"]
        adv = normalize(batch["adv"])
        act = drift_activity(drift_values(self.drift, log_ratio, adv, fraction), log_ratio, self.clip_epsilon)
        return {f"{k}_after": v for k, v in act.items()}

    def loss(self, agent, traj, *, key, progress=None):
        """The PPO loss on the whole trajectory as one minibatch (the first gradient step)."""
        return self._minibatch_loss(agent, self._batch(agent, traj), self._fraction(progress))

    def update(self, agent, opt_state, optimizer, traj, *, key, progress=None):
        fraction = self._fraction(progress)
        batch = self._batch(agent, traj)
        n = traj.reward.size
        if n % self.num_minibatches:
            raise ValueError(
                f"{type(self).__name__}: batch size {n} (num_envs × rollout_len) is not divisible by "
                f"num_minibatches={self.num_minibatches}"
            )
        grad_fn = eqx.filter_grad(self._minibatch_loss, has_aux=True)

        def minibatch_step(carry, mb):
            agent, opt_state = carry
            grads, metrics = grad_fn(agent, mb, fraction)
            agent, opt_state = apply_gradients(agent, grads, opt_state, optimizer)
            return (agent, opt_state), metrics

        def epoch(carry, k):
            perm = jax.random.permutation(k, n)
            mbs = jax.tree.map(
                lambda x: x[perm].reshape((self.num_minibatches, n // self.num_minibatches, *x.shape[1:])),
                batch,
            )
            return jax.lax.scan(minibatch_step, carry, mbs)

        (agent, opt_state), metrics = jax.lax.scan(
            epoch, (agent, opt_state), jax.random.split(key, self.num_epochs)
        )
        after = jax.lax.stop_gradient(self.activity_after(agent, batch, fraction))
        return agent, opt_state, {**jax.tree.map(jnp.mean, metrics), **after}

    def default_config(self, task, agent=None) -> TrainConfig:
        return family_default(PPO_DEFAULTS, task, type(self).__name__, agent)
