"""LPG (Oh et al. 2020): a learned update rule.

`LPGNetwork` reads an agent's trajectory *backwards* and outputs, for every step, a policy target
π̂_t (a scalar) and a prediction target ŷ_t ∈ Δ^m. `LPG` is the update rule built on it: the agent
minimises

    L(θ) = −E[ log π_θ(a_t|s_t) · π̂_t ]  +  α_y · E[ KL( y_θ(s_t) ‖ ŷ_t ) ],

which is the paper's update ``Δθ ∝ E[∇log π·π̂ − α_y ∇KL(y‖ŷ)]`` (the paper's sign convention: a
positive π̂ *raises* the probability of the action taken). The agent's π(a|s), y(s) and y(s') enter
the network with `stop_gradient`, so the agent gradient flows only through the log π and KL terms.

Network inputs per step: ``[r_t, d_t, γ, π(a_t|s_t), φ(y(s_t)), φ(y(s_{t+1}))]``, where d_t is the
*termination* flag (1 where the episode terminated, 0 on truncation, so a truncated step looks like a
bootstrapping step) and φ is Dense(16) → ReLU → Dense(1), shared between both y's. The recurrent
core runs from t = T−1 down to 0 and its state is reset to zero after every episode end (terminated
or truncated), so π̂_t and ŷ_t depend only on steps t..end-of-episode within the trajectory.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ._base import AbstractUpdateRule, batched, categorical_log_prob_entropy

CellKind = Literal["lstm", "gru"]


class LPGNetwork(eqx.Module):
    """The meta-network: embedding φ, a backward LSTM/GRU core, and the π̂ and ŷ heads.

    **Arguments:**

    - `hidden_size`: width of the recurrent core (paper: 256).
    - `prediction_dim`: m, the size of y and ŷ (paper: 30).
    - `cell`: ``"lstm"`` (default, as in the paper) or ``"gru"`` (as in GROOVE).
    - `embed_size`: width of φ's hidden layer (paper: 16).
    - `key`: a PRNG key.
    """

    phi: eqx.nn.MLP
    core: eqx.Module
    pi_head: eqx.nn.Linear
    y_head: eqx.nn.Linear
    hidden_size: int = eqx.field(static=True)
    prediction_dim: int = eqx.field(static=True)
    cell: str = eqx.field(static=True)

    def __init__(
        self,
        hidden_size: int = 256,
        prediction_dim: int = 30,
        cell: CellKind = "lstm",
        embed_size: int = 16,
        *,
        key: PRNGKeyArray,
    ):
        if hidden_size <= 0 or prediction_dim <= 0 or embed_size <= 0:
            raise ValueError("LPGNetwork: hidden_size, prediction_dim and embed_size must be positive")
        if cell not in ("lstm", "gru"):
            raise ValueError(f"LPGNetwork: cell must be 'lstm' or 'gru', got {cell!r}")
        k1, k2, k3, k4 = jax.random.split(key, 4)
        self.phi = eqx.nn.MLP(prediction_dim, 1, embed_size, depth=1, activation=jax.nn.relu, key=k1)
        Cell = eqx.nn.LSTMCell if cell == "lstm" else eqx.nn.GRUCell
        self.core = Cell(6, hidden_size, key=k2)
        self.pi_head = eqx.nn.Linear(hidden_size, 1, key=k3)
        self.y_head = eqx.nn.Linear(hidden_size, prediction_dim, key=k4)
        self.hidden_size = hidden_size
        self.prediction_dim = prediction_dim
        self.cell = cell

    def _zero_state(self):
        h = jnp.zeros(self.hidden_size)
        return (h, h) if self.cell == "lstm" else h

    def __call__(
        self,
        reward: Float[Array, " T"],
        terminated: Float[Array, " T"],
        done: Float[Array, " T"],
        gamma: float | Float[Array, ""],
        pi_a: Float[Array, " T"],
        y: Float[Array, "T m"],
        y_next: Float[Array, "T m"],
    ) -> tuple[Float[Array, " T"], Float[Array, "T m"]]:
        """Run over one environment's trajectory (vmap for a batch).

        **Arguments:** per-step reward, termination flag, episode-end flag (terminated or
        truncated; resets the core), discount γ, π(a_t|s_t), y(s_t) and y(s_{t+1}) (probabilities).

        **Returns:** `(pi_hat[T], y_hat_logits[T, m])`; ŷ = softmax(y_hat_logits).
        """
        T = reward.shape[0]
        phi_y = jax.vmap(self.phi)(y)[:, 0]
        phi_yn = jax.vmap(self.phi)(y_next)[:, 0]
        x = jnp.stack(
            [reward, terminated, jnp.broadcast_to(gamma, (T,)), pi_a, phi_y, phi_yn], axis=-1
        ).astype(jnp.float32)
        zero = self._zero_state()

        def step(state, inp):
            x_t, done_t = inp
            state = jax.tree.map(lambda z, s: jnp.where(done_t > 0, z, s), zero, state)
            state = self.core(x_t, state)
            h = state[0] if self.cell == "lstm" else state
            return state, h

        _, hs = jax.lax.scan(step, zero, (x, done.astype(jnp.float32)), reverse=True)
        pi_hat = jax.vmap(self.pi_head)(hs)[:, 0]
        y_hat_logits = jax.vmap(self.y_head)(hs)
        return pi_hat, y_hat_logits


class LPG(AbstractUpdateRule):
    """The learned policy-gradient update rule. Its inexact-array leaves (the `network`) are the
    meta-parameters; `gamma`, `alpha_y` and `learning_rate` (the agent's SGD learning rate on
    tabular tasks) are agent hyperparameters: the bandit sets α_y and the learning rate per lifetime
    during meta-training, and the saved rule records the arm the bandits preferred.

    The agent it trains has a categorical policy and an m-dimensional prediction head y, and no
    value head.
    """

    name: ClassVar[str] = "lpg"
    needs_value: ClassVar[bool] = False
    network: LPGNetwork
    gamma: float = 0.99
    alpha_y: float = 0.5
    learning_rate: float = 20.0

    @property
    def prediction_dim(self) -> int:
        return self.network.prediction_dim

    def targets(self, agent, traj):
        """The meta-network's outputs on a trajectory, plus the agent quantities the loss needs.

        **Returns:** `(pi_hat[T, B], y_hat_logits[T, B, m], logp[T, B], entropy[T, B], y_logits[T, B, m])`.
        """
        out = batched(agent, traj.obs)
        y_next_logits = batched(agent, traj.next_obs).y_logits
        logp, entropy = categorical_log_prob_entropy(out.logits, traj.action)
        sg = jax.lax.stop_gradient
        pi_hat, y_hat_logits = jax.vmap(self.network, in_axes=(1, 1, 1, None, 1, 1, 1), out_axes=(1, 1))(
            traj.reward,
            traj.terminated.astype(jnp.float32),
            traj.done.astype(jnp.float32),
            self.gamma,
            sg(jnp.exp(logp)),
            sg(jax.nn.softmax(out.y_logits)),
            sg(jax.nn.softmax(y_next_logits)),
        )
        return pi_hat, y_hat_logits, logp, entropy, out.y_logits

    def loss(self, agent, traj, *, key):
        pi_hat, y_hat_logits, logp, entropy, y_logits = self.targets(agent, traj)
        log_y = jax.nn.log_softmax(y_logits)
        log_y_hat = jax.nn.log_softmax(y_hat_logits)
        kl = jnp.sum(jnp.exp(log_y) * (log_y - log_y_hat), axis=-1)
        pg = -jnp.mean(logp * pi_hat)
        kl_mean = jnp.mean(kl)
        loss = pg + self.alpha_y * kl_mean
        y_hat = jnp.exp(log_y_hat)
        return loss, {
            "loss": loss,
            "pg_loss": pg,
            "kl_y": kl_mean,
            "entropy": jnp.mean(entropy),
            "y_entropy": jnp.mean(-jnp.sum(jnp.exp(log_y) * log_y, axis=-1)),
            # the meta-regularisers use these (they depend on the meta-parameters)
            "pi_hat_sq": jnp.mean(pi_hat**2),
            "y_hat_sq": jnp.mean(jnp.sum(y_hat**2, axis=-1)),
            "pi_hat_mean": jnp.mean(pi_hat),
        }

    def default_config(self, task):
        """Agent defaults for training with a learned LPG rule: A2C's per-family defaults, with the
        rule's own SGD learning rate on tabular tasks (lookup-table agents)."""
        from baselines.a2c import A2C_DEFAULTS, family_default

        cfg = family_default(A2C_DEFAULTS, task, "LPG")
        if cfg.optimizer == "sgd":
            cfg = cfg.replace(learning_rate=float(self.learning_rate))
        return cfg

    def with_arm(self, learning_rate: float, alpha_y: float) -> "LPG":
        """This rule with other agent hyperparameters (the same meta-parameters)."""
        return eqx.tree_at(lambda r: (r.learning_rate, r.alpha_y), self, (float(learning_rate), float(alpha_y)))

    def config(self) -> dict:
        """The JSON-able config that rebuilds this rule's structure (see `save_rule`)."""
        return {
            "hidden_size": self.network.hidden_size,
            "prediction_dim": self.network.prediction_dim,
            "cell": self.network.cell,
            "embed_size": self.network.phi.width_size,
            "gamma": float(self.gamma),
            "alpha_y": float(self.alpha_y),
            "learning_rate": float(self.learning_rate),
        }

    @classmethod
    def from_config(cls, config: dict, *, key=None) -> "LPG":
        """A rule with this config (random network weights from `key`)."""
        known = {"hidden_size", "prediction_dim", "cell", "embed_size", "gamma", "alpha_y", "learning_rate"}
        unknown = set(config) - known
        if unknown:
            raise ValueError(f"LPG config has unknown fields {sorted(unknown)}")
        key = jax.random.PRNGKey(0) if key is None else key
        net = LPGNetwork(
            int(config.get("hidden_size", 256)),
            int(config.get("prediction_dim", 30)),
            config.get("cell", "lstm"),
            int(config.get("embed_size", 16)),
            key=key,
        )
        return cls(net, float(config.get("gamma", 0.99)), float(config.get("alpha_y", 0.5)), float(config.get("learning_rate", 20.0)))
