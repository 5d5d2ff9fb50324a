"""LPG (Oh et al. 2020): a learned update rule, and its LPG-V ablation.

`LPGNetwork` reads an agent's trajectory *backwards* and outputs, for every step, a policy target
π̂_t (a scalar) and a prediction target ŷ_t ∈ Δ^m. `LPG` is the update rule built on it: the agent
minimises

    L(θ) = −E[ log π_θ(a_t|s_t) · π̂_t ]  +  α_y · E[ KL( y_θ(s_t) ‖ ŷ_t ) ],

which is the paper's update ``Δθ ∝ E[∇log π·π̂ − α_y ∇KL(y‖ŷ)]`` (the paper's sign convention: a
positive π̂ *raises* the probability of the action taken).

Network inputs per step: ``[r_t, d_t, γ, π(a_t|s_t), φ(y(s_t)), φ(y(s_{t+1}))]``, where d_t is the
*termination* flag (1 where the episode terminated, 0 on truncation, so a truncated step looks like a
bootstrapping step) and φ is Dense(16) → ReLU → Dense(1), shared between both y's. The recurrent
core runs from t = T−1 down to 0 and its state is reset to zero after every episode end (terminated
or truncated), so π̂_t and ŷ_t depend only on steps t..end-of-episode within the trajectory.

Where the gradients go (`LPG.update`). π̂ and ŷ are computed from the current agent θ_k *outside*
the agent's gradient and enter the agent loss as constants, so the agent's own update is
``∇_θ L(θ; π̂, ŷ)`` with π̂, ŷ fixed. Nothing inside that gradient is stop-gradient'ed, so the
meta-gradient through K updates keeps the path

    η → ŷ_k → (KL update) → y(θ_{k+1}) → φ(y) → π̂_{k+1} → policy → meta-loss,

which is how the rule learns *what to predict*. (A `stop_gradient` on y inside the inner loss would
also cut this path: it blocks every order of differentiation.) The π(a|s) input is not
stop-gradient'ed either (`stop_pi_input=False`, the default), so the meta-gradient is the exact
derivative of the meta-objective, which the tests check against finite differences part by part.
DiscoRL stops the gradient through its policy input; with ``stop_pi_input=True`` we do too, and
the meta-gradient then leaves out the path θ_k → π(a|s) → π̂_k (on a tiny grid-world probe that
path is about 4e-4 of the whole directional derivative).

LPG-V (``variant="v"``, the paper's ablation): the agent has a value head v trained by TD(λ)
instead of y, the meta-network reads ``[r, d, γ, π(a|s), v(s), v(s')]`` and outputs only π̂, and
the agent minimises ``−E[log π·π̂] + α_y · ½ E[(v(s) − G^λ)²]``. Only π̂ is meta-learned.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Any, ClassVar, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from .._agent import AGENT_FAMILIES, agent_family, resolve_torso
from .._defaults import A2C_DEFAULTS, family_default
from .._learner import DIFFERENTIABLE_ADAM_EPS_ROOT, OPTIMIZERS
from ._base import AbstractUpdateRule, advantages_and_targets, apply_gradients, batched, batched_value, categorical_log_prob_entropy, concrete

CellKind = Literal["lstm", "gru"]
Variant = Literal["y", "v"]
VARIANTS = ("y", "v")


class LPGNetwork(eqx.Module):
    """The meta-network: embedding φ, a backward LSTM/GRU core, and the π̂ and ŷ heads.

    **Arguments:**

    - `hidden_size`: width of the recurrent core (paper: 256).
    - `prediction_dim`: m, the size of y and ŷ (paper: 30). With ``inputs="v"`` it is ignored
      (there is no y, no φ and no ŷ head).
    - `cell`: ``"lstm"`` (default, as in the paper) or ``"gru"`` (as in GROOVE).
    - `embed_size`: width of φ's hidden layer (paper: 16).
    - `inputs`: ``"y"`` (LPG: φ(y(s)), φ(y(s')) are inputs, ŷ is an output) or ``"v"`` (LPG-V: the
      agent's values v(s), v(s') are inputs, π̂ the only output).
    - `temporal`: TA-LPG (Jackson et al. 2024): every step's input also holds n/N (agent updates so
      far over the lifetime's total) and log N, so the rule can depend on where in its lifetime
      the agent is.
    - `key`: a PRNG key.
    """

    phi: eqx.nn.MLP | None
    core: eqx.Module
    pi_head: eqx.nn.Linear
    y_head: eqx.nn.Linear | None
    hidden_size: int = eqx.field(static=True)
    prediction_dim: int = eqx.field(static=True)
    cell: str = eqx.field(static=True)
    inputs: str = eqx.field(static=True)
    temporal: bool = eqx.field(static=True)

    def __init__(
        self,
        hidden_size: int = 256,
        prediction_dim: int = 30,
        cell: CellKind = "lstm",
        embed_size: int = 16,
        inputs: Variant = "y",
        temporal: bool = False,
        *,
        key: PRNGKeyArray,
    ):
        if hidden_size <= 0 or (inputs == "y" and prediction_dim <= 0) or embed_size <= 0:
            raise ValueError("LPGNetwork: hidden_size, prediction_dim and embed_size must be positive")
        if cell not in ("lstm", "gru"):
            raise ValueError(f"LPGNetwork: cell must be 'lstm' or 'gru', got {cell!r}")
        if inputs not in VARIANTS:
            raise ValueError(f"LPGNetwork: inputs must be 'y' or 'v', got {inputs!r}")
        k1, k2, k3, k4 = jax.random.split(key, 4)
        if inputs == "y":
            self.phi = eqx.nn.MLP(prediction_dim, 1, embed_size, depth=1, activation=jax.nn.relu, key=k1)
            self.y_head = eqx.nn.Linear(hidden_size, prediction_dim, key=k4)
        else:
            self.phi = None
            self.y_head = None
        Cell = eqx.nn.LSTMCell if cell == "lstm" else eqx.nn.GRUCell
        self.core = Cell(8 if temporal else 6, hidden_size, key=k2)
        self.pi_head = eqx.nn.Linear(hidden_size, 1, key=k3)
        self.hidden_size = hidden_size
        self.prediction_dim = prediction_dim if inputs == "y" else 0
        self.cell = cell
        self.inputs = inputs
        self.temporal = bool(temporal)

    @property
    def embed_size(self) -> int:
        return self.phi.width_size if self.phi is not None else 16

    def _zero_state(self, dtype):
        h = jnp.zeros(self.hidden_size, dtype)
        return (h, h) if self.cell == "lstm" else h

    def __call__(
        self,
        reward: Float[Array, " T"],
        terminated: Float[Array, " T"],
        done: Float[Array, " T"],
        gamma: float | Float[Array, ""],
        pi_a: Float[Array, " T"],
        y: Float[Array, "T m"] | Float[Array, " T"],
        y_next: Float[Array, "T m"] | Float[Array, " T"],
        progress: tuple[Array, Array] | None = None,
    ) -> tuple[Float[Array, " T"], Float[Array, "T m"] | None]:
        """Run over one environment's trajectory (vmap for a batch).

        **Arguments:** per-step reward, termination flag, episode-end flag (terminated or
        truncated; resets the core), discount γ, π(a_t|s_t), and y(s_t), y(s_{t+1}) (probabilities,
        ``[T, m]``; for ``inputs="v"`` the values v(s_t), v(s_{t+1}), ``[T]``), and for a temporal
        network `progress` = ``(n/N, log N)`` (scalars, the same for every step of the rollout).

        **Returns:** `(pi_hat[T], y_hat_logits[T, m])`, ŷ = softmax(y_hat_logits);
        `y_hat_logits` is None for ``inputs="v"``.

        The computation runs in the dtype of its inputs (float64 under ``jax_enable_x64``).
        """
        T = reward.shape[0]
        if self.inputs == "y":
            f_y = jax.vmap(self.phi)(y)[:, 0]
            f_yn = jax.vmap(self.phi)(y_next)[:, 0]
        else:
            f_y, f_yn = y, y_next
        const = lambda v: jnp.broadcast_to(jnp.asarray(v, reward.dtype), (T,))
        cols = [reward, terminated, const(gamma), pi_a, f_y, f_yn]
        if self.temporal:
            if progress is None:
                raise ValueError("a temporal LPG network needs progress=(n/N, log N)")
            cols += [const(progress[0]), const(progress[1])]
        x = jnp.stack(cols, axis=-1)
        x = x.astype(jnp.result_type(x.dtype, self.pi_head.weight.dtype))
        zero = self._zero_state(x.dtype)

        def step(state, inp):
            x_t, done_t = inp
            state = jax.tree.map(lambda z, s: jnp.where(done_t > 0, z, s), zero, state)
            state = self.core(x_t, state)
            h = state[0] if self.cell == "lstm" else state
            return state, h

        _, hs = jax.lax.scan(step, zero, (x, done), reverse=True)
        pi_hat = jax.vmap(self.pi_head)(hs)[:, 0]
        y_hat_logits = jax.vmap(self.y_head)(hs) if self.y_head is not None else None
        return pi_hat, y_hat_logits


@dataclasses.dataclass(frozen=True)
class FamilyArm:
    """The agent hyperparameters a rule was meta-trained with for one agent family (``"tabular"``,
    ``"mlp"``, ``"cnn"``): the optimiser, its gradient clipping, the bandit's arm tables and the arm
    the bandits preferred (`learning_rate`, `alpha_y`; `alpha_y` None: the rule's own α_y)."""

    family: str
    optimizer: str
    learning_rate: float
    alpha_y: float | None
    max_grad_norm: float | None
    learning_rates: tuple[float, ...] = ()
    alpha_ys: tuple[float, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out = {"optimizer": self.optimizer, "learning_rate": self.learning_rate, "alpha_y": self.alpha_y, "max_grad_norm": self.max_grad_norm}
        if self.learning_rates:
            out["learning_rates"] = list(self.learning_rates)
        if self.alpha_ys:
            out["alpha_ys"] = list(self.alpha_ys)
        return out

    @classmethod
    def from_json(cls, family: str, d: dict[str, Any]) -> "FamilyArm":
        if family not in AGENT_FAMILIES:
            raise ValueError(f"LPG config: unknown agent family {family!r} (families: {', '.join(AGENT_FAMILIES)})")
        if not isinstance(d, dict):
            raise ValueError(f"LPG config: families.{family} must be an object, got {d!r}")
        known = {"optimizer", "learning_rate", "alpha_y", "max_grad_norm", "learning_rates", "alpha_ys"}
        if set(d) - known:
            raise ValueError(f"LPG config: families.{family} has unknown fields {sorted(set(d) - known)}")
        opt = d.get("optimizer")
        if opt not in OPTIMIZERS:
            raise ValueError(f"LPG config: families.{family}.optimizer must be adam|sgd|rmsprop, got {opt!r}")
        try:
            lr = float(d["learning_rate"])
            alpha = None if d.get("alpha_y") is None else float(d["alpha_y"])
            clip = None if d.get("max_grad_norm") is None else float(d["max_grad_norm"])
            lrs = tuple(float(x) for x in d.get("learning_rates", ()))
            alphas = tuple(float(x) for x in d.get("alpha_ys", ()))
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"LPG config: families.{family} needs a numeric learning_rate (and numeric alpha_y, max_grad_norm), got {d!r}") from None
        if not lr > 0 or (alpha is not None and alpha < 0) or (clip is not None and not clip > 0):
            raise ValueError(f"LPG config: families.{family} has a non-positive learning_rate or max_grad_norm, or a negative alpha_y: {d!r}")
        return cls(family, opt, lr, alpha, clip, lrs, alphas)


def _families(records: dict[str, dict]) -> tuple[FamilyArm, ...]:
    """Family records in the canonical order of `AGENT_FAMILIES` (a saved rule reads back equal)."""
    fams = [FamilyArm.from_json(k, v) for k, v in records.items()]
    return tuple(sorted(fams, key=lambda f: AGENT_FAMILIES.index(f.family)))


_NOTICED: set[str] = set()


def _notice_once(msg: str) -> None:
    if msg not in _NOTICED:
        _NOTICED.add(msg)
        print(f"notice: {msg}", file=sys.stderr, flush=True)


class LPG(AbstractUpdateRule):
    """The learned policy-gradient update rule. Its inexact-array leaves (the `network`) are the
    meta-parameters; `gamma`, `alpha_y` and `learning_rate` (the agent's SGD learning rate on
    tabular tasks) are agent hyperparameters: the bandit sets α_y and the learning rate per lifetime
    during meta-training, and the saved rule records the arm chosen for it.

    `ent_coef` (default None: the paper's update, which has none) adds an entropy bonus to the
    agent's loss, ``-ent_coef * H(pi)``, as A2C's has: a transfer-time hyperparameter, like the
    learning rate, for agents whose policy the learned targets let collapse (choose it on
    validation tasks, ``transfer --validate ... --grid ent_coef=0,0.01``). Meta-training leaves it
    unset; while unset it is no leaf of the rule, so rule files and checkpoints keep their layout.

    `num_envs`, `rollout_len` and `lifetime_updates` record the regime the rule was meta-trained
    in (envs × steps per agent update, agent updates per lifetime; 0 = not recorded). On tabular
    tasks `default_config` trains agents in that regime, so `train`/`compare` with ``lpg:NAME``
    evaluate a rule the way it was trained.

    `families` records, per agent family the rule was meta-trained on (lookup tables, MLPs, CNNs),
    the optimiser, clipping, arm tables and preferred arm (`FamilyArm`). `default_config` trains
    agents of a recorded family with its optimiser and arm, and the agent loss uses the family's
    α_y; `learning_rate` and `alpha_y` are the lookup-table family's (and the fallback). A rule
    without records (saved before they existed) counts as meta-trained on lookup tables only.
    Training an agent of a family the rule never met is allowed, with a one-line notice.

    The agent it trains has a categorical policy and an m-dimensional prediction head y and no
    value head (``variant="y"``, LPG), or a value head and no y (``variant="v"``, LPG-V; the
    variant is the network's `inputs`).
    """

    # the CLI's name: lpg, or lpg-v for the variant with a value head (a property on instances)
    name: ClassVar[str] = property(lambda self: "lpg-v" if self.variant == "v" else "lpg")  # type: ignore[assignment]
    network: LPGNetwork
    gamma: float = 0.99
    alpha_y: float = 0.5
    learning_rate: float = 20.0
    num_envs: int = eqx.field(static=True, default=0)
    rollout_len: int = eqx.field(static=True, default=0)
    lifetime_updates: int = eqx.field(static=True, default=0)
    td_lambda: float = eqx.field(static=True, default=0.95)
    stop_pi_input: bool = eqx.field(static=True, default=False)
    families: tuple[FamilyArm, ...] = eqx.field(static=True, default=())
    ent_coef: float | None = None

    def __check_init__(self):
        if self.ent_coef is not None and concrete(self.ent_coef) and not (np.isfinite(self.ent_coef) and self.ent_coef >= 0):
            raise ValueError(f"LPG.ent_coef must be a finite number >= 0, got {self.ent_coef!r}")

    @property
    def variant(self) -> str:
        return self.network.inputs

    @property
    def prediction_dim(self) -> int:
        return self.network.prediction_dim

    @property
    def needs_value(self) -> bool:
        return self.variant == "v"

    @property
    def temporal(self) -> bool:  # TA-LPG: the network reads n/N and log N
        return self.network.temporal

    @property
    def recorded_families(self) -> tuple[str, ...]:
        """The agent families this rule was meta-trained on (``("tabular",)`` for a rule saved
        before families were recorded)."""
        return tuple(f.family for f in self.families) or ("tabular",)

    def family_arm(self, family: str) -> FamilyArm | None:
        """The record of one agent family, or None."""
        return next((f for f in self.families if f.family == family), None)

    def nearest_arm(self, family: str) -> FamilyArm | None:
        """The record a `family` agent is trained with: its own, else for a neural family the rule
        never met (a CNN) the record of a neural family it did meet (an MLP), else None."""
        rec = self.family_arm(family)
        if rec is None and family != "tabular":
            rec = next((f for f in self.families if f.family != "tabular"), None)
        return rec

    def alpha_y_for(self, agent):
        """α_y for this agent: its family's recorded arm (or the nearest one, `nearest_arm`) where
        it has one, else `alpha_y`."""
        rec = self.nearest_arm(agent_family(agent)) if self.families else None
        return self.alpha_y if rec is None or rec.alpha_y is None else rec.alpha_y

    def with_families(self, records: dict[str, dict]) -> "LPG":
        """This rule recording, per agent family, the agent hyperparameters it was meta-trained
        with (`FamilyArm.from_json` of each ``records[family]``)."""
        return dataclasses.replace(self, families=_families(records))

    def _progress(self, progress):
        if not self.temporal:
            return None
        if progress is None:
            raise ValueError("a temporal (TA-LPG) rule needs progress=Progress(n, N); learned_rl.train passes it")
        return (progress.fraction, progress.log_horizon)

    def targets(self, agent, traj, progress=None):
        """The meta-network's outputs on a trajectory: `(pi_hat[T, B], y_hat_logits[T, B, m])`
        (`y_hat_logits` is None for LPG-V).

        Differentiable in the meta-parameters and in the agent's outputs (π(a|s) with a
        `stop_gradient` if `stop_pi_input`; see the module docstring). `update` calls this outside
        the agent's gradient, so the agent treats the targets as constants.
        """
        out = batched(agent, traj.obs)
        logp, _ = categorical_log_prob_entropy(out.logits, traj.action)
        if self.variant == "y":
            y = jax.nn.softmax(out.y_logits)
            y_next = jax.nn.softmax(batched(agent, traj.next_obs).y_logits)
        else:
            y, y_next = out.value, batched_value(agent, traj.next_obs)
        return jax.vmap(self.network, in_axes=(1, 1, 1, None, 1, 1, 1, None), out_axes=(1, 1))(
            traj.reward,
            traj.terminated.astype(traj.reward.dtype),
            traj.done.astype(traj.reward.dtype),
            self.gamma,
            jax.lax.stop_gradient(jnp.exp(logp)) if self.stop_pi_input else jnp.exp(logp),
            y,
            y_next,
            self._progress(progress),
        )

    def agent_loss(self, agent, traj, pi_hat, y_hat_logits):
        """The agent's loss for given targets (held constant by the caller). Returns
        `(loss, metrics)`."""
        out = batched(agent, traj.obs)
        logp, entropy = categorical_log_prob_entropy(out.logits, traj.action)
        pg = -jnp.mean(logp * pi_hat)
        metrics = {"pg_loss": pg, "entropy": jnp.mean(entropy)}
        if self.ent_coef is not None:  # the paper's update has no entropy term
            pg = pg - self.ent_coef * metrics["entropy"]
        if self.variant == "y":
            log_y = jax.nn.log_softmax(out.y_logits)
            log_y_hat = jax.nn.log_softmax(y_hat_logits)
            aux = jnp.mean(jnp.sum(jnp.exp(log_y) * (log_y - log_y_hat), axis=-1))
            metrics["kl_y"] = aux
            metrics["y_entropy"] = jnp.mean(-jnp.sum(jnp.exp(log_y) * log_y, axis=-1))
        else:
            v = out.value
            _, target = advantages_and_targets(agent, traj, v, self.gamma, self.td_lambda)
            aux = 0.5 * jnp.mean((v - target) ** 2)
            metrics["value_loss"] = aux
        loss = pg + self.alpha_y_for(agent) * aux
        metrics["loss"] = loss
        return loss, metrics

    @staticmethod
    def target_metrics(pi_hat, y_hat_logits) -> dict[str, Array]:
        """Summaries of the targets that the meta-regularisers use (they depend on the
        meta-parameters): E[π̂²], E[‖ŷ‖²] (probabilities, the paper's form) and
        E[(mean_m ŷ-logits)²] (the logit form)."""
        m = {"pi_hat_sq": jnp.mean(pi_hat**2), "pi_hat_mean": jnp.mean(pi_hat)}
        if y_hat_logits is not None:
            m["y_hat_sq"] = jnp.mean(jnp.sum(jax.nn.softmax(y_hat_logits) ** 2, axis=-1))
            m["y_hat_logit_mean_sq"] = jnp.mean(jnp.mean(y_hat_logits, axis=-1) ** 2)
        else:
            m["y_hat_sq"] = m["y_hat_logit_mean_sq"] = jnp.zeros((), pi_hat.dtype)
        return m

    def loss(self, agent, traj, *, key, progress=None):
        """The agent's loss with the targets held constant (its gradient is the agent's update
        direction). For the meta-gradient use `update`, which keeps the targets differentiable
        in the meta-parameters. A temporal rule needs `progress`."""
        pi_hat, y_hat_logits = jax.lax.stop_gradient(self.targets(agent, traj, progress))
        loss, metrics = self.agent_loss(agent, traj, pi_hat, y_hat_logits)
        return loss, {**metrics, **self.target_metrics(pi_hat, y_hat_logits)}

    def update(self, agent, opt_state, optimizer, traj, *, key, progress=None):
        """One agent step: targets from the current agent (outside the agent's gradient), then
        ``∇_θ L(θ; π̂, ŷ)`` with the targets constant. The step equals the one `loss` gives; the
        difference is only in the meta-gradient, which here flows through π̂ and ŷ into η and
        through y(θ_k) into earlier updates."""
        pi_hat, y_hat_logits = self.targets(agent, traj, progress)
        grads, metrics = eqx.filter_grad(lambda a: self.agent_loss(a, traj, pi_hat, y_hat_logits), has_aux=True)(agent)
        agent, opt_state = apply_gradients(agent, grads, opt_state, optimizer)
        return agent, opt_state, {**metrics, **self.target_metrics(pi_hat, y_hat_logits)}

    def default_config(self, task, agent=None):
        """Agent defaults for training with a learned LPG rule: A2C's per-family defaults, with the
        optimiser, clipping and preferred learning rate of the agent family the rule recorded
        (lookup tables: SGD at the rule's `learning_rate`), in the envs × steps of its
        meta-training regime where it records one. The family is that of the agent built, with
        `agent`'s fields (``{"torso": "mlp"}``) where given. A neural family the rule was never
        meta-trained on (a CNN) is trained as the neural family it met (`nearest_arm`: optimiser,
        clipping, learning rate, α_y and regime); with none met it keeps A2C's optimiser. Either
        way it prints a one-line notice."""
        self.check_task(task)
        cfg = family_default(A2C_DEFAULTS, task, "LPG", agent)
        fam = resolve_torso(cfg.agent, task.obs_kind, task.family)
        rec = self.nearest_arm(fam)
        regime = {"num_envs": self.num_envs, "rollout_len": self.rollout_len} if self.num_envs and self.rollout_len else {}
        if fam == "tabular" and cfg.optimizer == "sgd":
            cfg = cfg.replace(learning_rate=float(self.learning_rate), **regime)
        elif rec is not None:
            cfg = cfg.replace(
                optimizer=rec.optimizer, learning_rate=float(rec.learning_rate), max_grad_norm=rec.max_grad_norm,
                adam_eps_root=DIFFERENTIABLE_ADAM_EPS_ROOT if rec.optimizer == "adam" else 0.0, **regime,  # as in its meta-training lifetimes
            )
        if fam not in self.recorded_families:
            how = f"as its {rec.family} agents" if rec is not None else "with A2C's optimiser"
            _notice_once(
                f"this LPG rule was meta-trained on {'/'.join(self.recorded_families)} agents only; task {task.name!r} trains "
                f"a {fam} agent {how} ({cfg.optimizer}, lr {cfg.learning_rate:g}, {cfg.num_envs} envs × {cfg.rollout_len} steps)"
            )
        return cfg

    def with_arm(self, learning_rate=None, alpha_y=None) -> "LPG":
        """This rule with other agent hyperparameters (the same meta-parameters): a bandit arm's
        learning rate (the lookup-table agents' SGD rate) and/or α_y, each a number or an array
        (traced inside a meta-step). A given α_y applies to every agent family (it replaces the
        families' recorded α_y)."""
        def value(v, old):  # numbers (Python or NumPy) are stored as floats, as before; arrays as they are
            return old if v is None else (v if isinstance(v, jax.Array) else float(v))
        fams = self.families if alpha_y is None else tuple(dataclasses.replace(f, alpha_y=None) for f in self.families)
        return dataclasses.replace(self, learning_rate=value(learning_rate, self.learning_rate), alpha_y=value(alpha_y, self.alpha_y), families=fams)

    def overridable(self, fields) -> "LPG":
        """A given `alpha_y` applies to every agent family: the families' recorded α_y are dropped
        (as `with_arm` does), so ``--set alpha_y=...`` and a swept α_y are the ones used. A given
        `ent_coef` starts from 0.0 where it was unset."""
        rule = self
        if "ent_coef" in fields and rule.ent_coef is None:  # a float to replace (or sweep)
            rule = dataclasses.replace(rule, ent_coef=0.0)
        if "alpha_y" in fields and any(f.alpha_y is not None for f in rule.families):
            rule = dataclasses.replace(rule, families=tuple(dataclasses.replace(f, alpha_y=None) for f in rule.families))
        return rule

    def with_regime(self, num_envs: int, rollout_len: int, lifetime_updates: int) -> "LPG":
        """This rule recording the meta-training regime it is trained for."""
        return dataclasses.replace(self, num_envs=int(num_envs), rollout_len=int(rollout_len), lifetime_updates=int(lifetime_updates))

    def config(self) -> dict:
        """The JSON-able config that rebuilds this rule's structure (see `save_rule`)."""
        cfg = {
            "hidden_size": self.network.hidden_size,
            "prediction_dim": self.network.prediction_dim,
            "cell": self.network.cell,
            "embed_size": self.network.embed_size,
            "gamma": float(self.gamma),
            "alpha_y": float(self.alpha_y),
            "learning_rate": float(self.learning_rate),
        }
        if self.stop_pi_input:
            cfg["stop_pi_input"] = True
        if self.ent_coef is not None:
            cfg["ent_coef"] = float(self.ent_coef)
        if self.temporal:
            cfg["temporal"] = True
        if self.variant != "y":
            cfg["variant"] = self.variant
            cfg["td_lambda"] = float(self.td_lambda)
        if self.num_envs:
            cfg["regime"] = {"num_envs": self.num_envs, "rollout_len": self.rollout_len, "lifetime_updates": self.lifetime_updates}
        if self.families:
            cfg["families"] = {f.family: f.to_json() for f in self.families}
        return cfg

    @classmethod
    def from_config(cls, config: dict, *, key=None) -> "LPG":
        """A rule with this config (random network weights from `key`). Configs written before
        the `variant` and `regime` fields existed load as LPG with no recorded regime."""
        known = {"hidden_size", "prediction_dim", "cell", "embed_size", "gamma", "alpha_y", "learning_rate", "variant", "td_lambda", "regime", "stop_pi_input", "temporal", "families", "ent_coef"}
        unknown = set(config) - known
        if unknown:
            raise ValueError(f"LPG config has unknown fields {sorted(unknown)}")
        variant = config.get("variant", "y")
        if variant not in VARIANTS:
            raise ValueError(f"LPG config: variant must be 'y' or 'v', got {variant!r}")
        regime = config.get("regime") or {}
        if set(regime) - {"num_envs", "rollout_len", "lifetime_updates"}:
            raise ValueError(f"LPG config: regime has unknown fields {sorted(set(regime) - {'num_envs', 'rollout_len', 'lifetime_updates'})}")
        families = config.get("families") or {}
        if not isinstance(families, dict):
            raise ValueError(f"LPG config: families must map agent families to their arms, got {families!r}")
        fams = _families(families)
        key = jax.random.PRNGKey(0) if key is None else key
        net = LPGNetwork(
            int(config.get("hidden_size", 256)),
            int(config.get("prediction_dim", 30)),
            config.get("cell", "lstm"),
            int(config.get("embed_size", 16)),
            variant,
            bool(config.get("temporal", False)),
            key=key,
        )
        return cls(
            net,
            float(config.get("gamma", 0.99)),
            float(config.get("alpha_y", 0.5)),
            float(config.get("learning_rate", 20.0)),
            int(regime.get("num_envs", 0)),
            int(regime.get("rollout_len", 0)),
            int(regime.get("lifetime_updates", 0)),
            float(config.get("td_lambda", 0.95)),
            bool(config.get("stop_pi_input", False)),
            fams,
            None if config.get("ent_coef") is None else float(config["ent_coef"]),
        )
