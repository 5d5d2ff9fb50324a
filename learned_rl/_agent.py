"""The agent: a torso, a policy head (categorical, or Gaussian for continuous actions), an optional
prediction head y and an optional value head.

One `Agent` class serves every update rule. Which heads exist is decided by the rule
(`AbstractUpdateRule.prediction_dim`, `AbstractUpdateRule.needs_value`), and which torso is used is
decided by the task's observation kind:

- ``"tabular"``: the observation is an integer state index, and every head is a lookup table
  (``weight[index]``), never a dense layer on a one-hot vector. Tables start at zero, so the initial
  policy is uniform and the initial prediction is uniform over the m bins.
- ``"mlp"``: the observation is flattened and passed through tanh/ReLU dense layers. On a task with
  integer-index observations (``torso="mlp"`` chosen explicitly) the index is one-hot encoded
  first, so the same task can be learned by a lookup table and by a network.
- ``"cnn"``: MinAtar-style: a 3×3 convolution with 16 channels, ReLU, flatten, dense 128, ReLU.

For the MLP and CNN torsos the value head has its own torso (a separate critic), as in PureJaxRL
and GROOVE; the prediction head y shares the policy's torso.

Continuous actions (`task.continuous_actions`): the policy head is a `GaussianHead`, a diagonal
Gaussian with a state-dependent mean (a dense layer) and a **state-independent** log standard
deviation (one learned parameter per action dimension, initialised to 0), as in PureJaxRL and
CleanRL. Samples are *not* squashed: the rollout clips the sampled action to the action space's
bounds before the environment sees it, and the log-probability is that of the unclipped sample
(PureJaxRL's ``ClipAction`` choice). A tanh squash would need a Jacobian correction in every
log-probability and makes the entropy intractable; clipping keeps the log-probability exact and
the entropy in closed form, at the cost of a policy that can put mass outside the bounds.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal, NamedTuple

import distrax
import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

TorsoKind = Literal["auto", "tabular", "mlp", "cnn"]


@dataclasses.dataclass(frozen=True)
class AgentConfig:
    """How to build an agent.

    **Arguments:**

    - `torso`: ``"auto"`` picks ``"tabular"`` for integer-index observations, ``"cnn"`` for image
      observations of MinAtar tasks and ``"mlp"`` otherwise.
    - `hidden`: widths of the MLP torso's layers.
    - `activation`: ``"tanh"`` or ``"relu"`` for the MLP torso.
    - `cnn_channels`, `cnn_hidden`: sizes of the MinAtar CNN torso.
    """

    torso: TorsoKind = "auto"
    hidden: tuple[int, ...] = (64, 64)
    activation: Literal["tanh", "relu"] = "tanh"
    cnn_channels: int = 16
    cnn_hidden: int = 128

    def __post_init__(self):
        if self.torso not in ("auto", "tabular", "mlp", "cnn"):
            raise ValueError(f"AgentConfig.torso must be auto|tabular|mlp|cnn, got {self.torso!r}")
        if self.activation not in ("tanh", "relu"):
            raise ValueError(f"AgentConfig.activation must be tanh|relu, got {self.activation!r}")
        if not self.hidden or any(int(h) <= 0 for h in self.hidden):
            raise ValueError(f"AgentConfig.hidden must be positive widths, got {self.hidden!r}")
        if self.cnn_channels <= 0 or self.cnn_hidden <= 0:
            raise ValueError("AgentConfig.cnn_channels and cnn_hidden must be positive")


class AgentOutput(NamedTuple):
    """What the agent outputs for one observation.

    - `logits`: the categorical policy's logits ``[A]``; for a Gaussian policy, the mean of the
      action distribution ``[act_dim]`` (also available as `mean`).
    - `y_logits`: the prediction head's m logits (or `None`).
    - `value`: the value estimate (or `None`).
    - `log_std`: the Gaussian policy's log standard deviation ``[act_dim]``; `None` for a
      categorical policy (this is how helpers tell the two apart).
    """

    logits: Float[Array, " A"]
    y_logits: Float[Array, " m"] | None
    value: Float[Array, ""] | None
    log_std: Float[Array, " A"] | None = None

    @property
    def mean(self) -> Float[Array, " A"]:
        return self.logits

    @property
    def is_gaussian(self) -> bool:
        return self.log_std is not None


def _householder_q(a: Float[Array, "n m"]) -> Float[Array, "n m"]:
    """The Q factor (n × m, n ≥ m) of ``a = QR`` with diag(R) ≥ 0, by Householder reflections in
    plain jnp ops.

    Why not `jnp.linalg.qr`: under `vmap` (several seeds, LPG lifetimes, ES members) it becomes one
    batched LAPACK custom call, which jaxlib's CPU runtime splits over the intra-op thread pool
    with a *blocking* wait inside a pool thread. On a 2-core machine both pool threads can end up
    waiting for work queued behind them, and the program hangs with the CPU idle (seen with
    jax 0.10.2: `ParallelBatchMap` in `lapack_sgeqrf_ffi` in every stalled run). Plain matrix
    ops batch like any other op. For a full-rank `a` the factorisation with diag(R) > 0 is
    unique, so this gives the same matrix as `jax.nn.initializers.orthogonal` up to rounding.
    """
    n, m = a.shape
    rows = jnp.arange(n)

    def reflect(j, carry):
        r, vs = carry
        x = jnp.where(rows >= j, r[:, j], 0.0)
        xj = x[j]
        sign = jnp.where(xj >= 0, 1.0, -1.0)
        v = x.at[j].add(sign * jnp.linalg.norm(x))
        v = v / jnp.maximum(jnp.linalg.norm(v), jnp.finfo(a.dtype).tiny)
        r = r - 2.0 * jnp.outer(v, v @ r)
        return r, vs.at[j].set(v)

    r, vs = jax.lax.fori_loop(0, m, reflect, (a, jnp.zeros((m, n), a.dtype)))

    def apply(i, q):  # Q = H_0 H_1 ... H_{m-1} applied to the first m columns of I
        v = vs[m - 1 - i]
        return q - 2.0 * jnp.outer(v, v @ q)

    q = jax.lax.fori_loop(0, m, apply, jnp.eye(n, m, dtype=a.dtype))
    d = jnp.diagonal(r)[:m]
    return q * jnp.where(d >= 0, 1.0, -1.0)[None, :]


def orthogonal_init(key: PRNGKeyArray, shape: tuple[int, int], scale: float = 1.0, dtype=jnp.float32) -> Array:
    """A scaled (semi-)orthogonal ``[out, in]`` matrix, distributed as
    ``jax.nn.initializers.orthogonal(scale)(key, shape)`` (the same Gaussian draw and the same
    sign convention), computed without LAPACK so that it is safe under `vmap` on CPU (see
    `_householder_q`)."""
    rows, cols = shape
    tall = rows >= cols
    a = jax.random.normal(key, (rows, cols) if tall else (cols, rows), dtype)
    q = _householder_q(a)
    return scale * (q if tall else q.T)


def _orthogonal_linear(
    in_size: int, out_size: int, scale: float, *, key: PRNGKeyArray
) -> eqx.nn.Linear:
    lin = eqx.nn.Linear(in_size, out_size, key=key)
    w = orthogonal_init(key, (out_size, in_size), scale)
    return eqx.tree_at(lambda l: (l.weight, l.bias), lin, (w, jnp.zeros(out_size)))


class GaussianHead(eqx.Module):
    """A diagonal Gaussian policy head: ``mean = W·features + b`` and a state-independent
    ``log_std`` parameter (one per action dimension)."""

    mean: eqx.nn.Linear
    log_std: Float[Array, " A"]

    def __init__(self, in_size: int, action_dim: int, *, key: PRNGKeyArray, init_log_std: float = 0.0):
        self.mean = _orthogonal_linear(in_size, action_dim, 0.01, key=key)
        self.log_std = jnp.full((action_dim,), init_log_std, jnp.float32)

    def __call__(self, feats: Array) -> tuple[Array, Array]:
        return self.mean(feats), self.log_std


class Table(eqx.Module):
    """A lookup table: `Table(n, d)(i) = weight[i]`."""

    weight: Float[Array, "n d"]

    def __init__(self, num_rows: int, num_cols: int):
        self.weight = jnp.zeros((num_rows, num_cols))

    def __call__(self, index: Array) -> Array:
        return self.weight[index]


class IndexTorso(eqx.Module):
    """Passes an integer state index through unchanged; the heads are tables."""

    num_states: int = eqx.field(static=True)

    def __call__(self, obs: Array) -> Array:
        return jnp.asarray(obs, jnp.int32).reshape(())


class MLPTorso(eqx.Module):
    """Dense layers on the flattened observation; with `one_hot` = n > 0 the observation is an
    integer index, one-hot encoded over n states first."""

    layers: tuple[eqx.nn.Linear, ...]
    activation: str = eqx.field(static=True)
    one_hot: int = eqx.field(static=True, default=0)

    def __init__(self, in_size: int, hidden: tuple[int, ...], activation: str, *, key: PRNGKeyArray, one_hot: int = 0):
        keys = jax.random.split(key, len(hidden))
        sizes = (in_size, *hidden)
        self.layers = tuple(
            _orthogonal_linear(sizes[i], sizes[i + 1], math.sqrt(2), key=keys[i])
            for i in range(len(hidden))
        )
        self.activation = activation
        self.one_hot = int(one_hot)

    def __call__(self, obs: Array) -> Array:
        act = jnp.tanh if self.activation == "tanh" else jax.nn.relu
        layers = self.layers
        if self.one_hot and not layers:
            x = jax.nn.one_hot(jnp.asarray(obs, jnp.int32).reshape(()), self.one_hot, dtype=jnp.float32)
        elif self.one_hot:
            # the first layer on a one-hot vector is its weight's column for the index: read that
            # column instead of multiplying by n − 1 zeros (the same values; the gradient's sums
            # over a batch may add in another order)
            first = layers[0]
            x = act(first.weight[:, jnp.asarray(obs, jnp.int32).reshape(())] + first.bias)
            layers = layers[1:]
        else:
            x = jnp.ravel(obs).astype(jnp.float32)
        for layer in layers:
            x = act(layer(x))
        return x


class CNNTorso(eqx.Module):
    """MinAtar torso: Conv(3×3, C) → ReLU → flatten → Dense(hidden) → ReLU. Input is H×W×C."""

    conv: eqx.nn.Conv2d
    dense: eqx.nn.Linear

    def __init__(self, obs_shape: tuple[int, ...], channels: int, hidden: int, *, key: PRNGKeyArray):
        h, w, c = obs_shape
        k1, k2 = jax.random.split(key)
        self.conv = eqx.nn.Conv2d(c, channels, kernel_size=3, padding=1, key=k1)
        self.dense = _orthogonal_linear(h * w * channels, hidden, math.sqrt(2), key=k2)

    def __call__(self, obs: Array) -> Array:
        # The 3×3 "same" convolution as one matrix product over the 9 shifted copies of the frame
        # (the same sums as `self.conv(x)`, which gives the same numbers to float rounding): on a
        # CPU, XLA's convolution of a vmapped batch is the slow part of acting and of the update,
        # and `benchmarks/cnn_torso.py` measures the two side by side.
        x = obs.astype(jnp.float32)
        h, w, c = x.shape
        padded = jnp.pad(x, ((1, 1), (1, 1), (0, 0)))
        patches = jnp.concatenate([padded[i : i + h, j : j + w, :] for i in range(3) for j in range(3)], axis=-1)
        kernel = jnp.transpose(self.conv.weight, (2, 3, 1, 0)).reshape(9 * c, -1)  # (kh, kw, C) × channels
        x = jax.nn.relu(patches @ kernel + self.conv.bias.reshape(-1))  # H × W × channels
        return jax.nn.relu(self.dense(jnp.ravel(jnp.transpose(x, (2, 0, 1)))))


class Agent(eqx.Module):
    """Policy (categorical, or a diagonal Gaussian when `continuous`), optional prediction y
    (m logits; softmax gives y ∈ Δ^m) and optional value. Call it on a single observation;
    `jax.vmap` it over a batch.

    For a continuous agent `num_actions` is the action dimension and `action_low`/`action_high`
    are the bounds the rollout clips sampled actions to (per dimension).
    """

    torso: eqx.Module
    policy_head: eqx.Module
    prediction_head: eqx.Module | None
    value_torso: eqx.Module | None
    value_head: eqx.Module | None
    num_actions: int = eqx.field(static=True)
    prediction_dim: int = eqx.field(static=True)
    obs_ndim: int = eqx.field(static=True)
    continuous: bool = eqx.field(static=True, default=False)
    action_low: tuple[float, ...] | None = eqx.field(static=True, default=None)
    action_high: tuple[float, ...] | None = eqx.field(static=True, default=None)

    def act(self, obs: Array, *, key: PRNGKeyArray) -> tuple[Array, Array]:
        """Sample actions for a batch of observations ``[B, ...]``: `(action, log_prob)`, the
        Gaussian sample unclipped. This is what `collect` calls (see `UniformPolicy`)."""
        return sample_action(jax.vmap(self)(obs), key=key)

    def __call__(self, obs: Array) -> AgentOutput:
        feats = self.torso(obs)
        log_std = None
        if self.continuous:
            logits, log_std = self.policy_head(feats)
        else:
            logits = self.policy_head(feats)
        y_logits = None if self.prediction_head is None else self.prediction_head(feats)
        value = None
        if self.value_head is not None:
            vfeats = feats if self.value_torso is None else self.value_torso(obs)
            value = self.value_head(vfeats).reshape(())
        return AgentOutput(logits, y_logits, value, log_std)

    def value(self, obs: Array) -> Float[Array, ""]:
        """The value head alone (cheaper than a full call for MLP/CNN agents)."""
        if self.value_head is None:
            raise ValueError("this agent has no value head")
        vfeats = self.torso(obs) if self.value_torso is None else self.value_torso(obs)
        return self.value_head(vfeats).reshape(())


def resolve_torso(config: AgentConfig, obs_kind: str, family: str) -> str:
    """The torso kind that `make_agent` will build for a task."""
    if config.torso != "auto":
        if config.torso == "tabular" and obs_kind != "index":
            raise ValueError("a tabular torso needs a task with integer-index observations")
        if obs_kind == "index" and config.torso == "cnn":
            raise ValueError("task has integer-index observations; torso 'cnn' needs images (use 'tabular', or 'mlp' on one-hot indices)")
        if config.torso == "cnn" and obs_kind != "image":
            raise ValueError("a cnn torso needs a task with H×W×C image observations")
        return config.torso
    if obs_kind == "index":
        return "tabular"
    if obs_kind == "image" and family == "minatar":
        return "cnn"
    return "mlp"


def make_agent(
    task,
    config: AgentConfig = AgentConfig(),
    *,
    prediction_dim: int = 0,
    value: bool = True,
    key: PRNGKeyArray,
) -> Agent:
    """Build an `Agent` for a `learned_rl.tasks.Task`.

    **Arguments:**

    - `task`: a `learned_rl.tasks.Task` (its observation kind, shape and action count are used).
    - `config`: an `AgentConfig`.
    - `prediction_dim`: m, the size of the prediction head y; 0 for no prediction head.
    - `value`: whether to build a value head.
    - `key`: a PRNG key.

    **Returns:** an `Agent`.
    """
    if prediction_dim < 0:
        raise ValueError(f"prediction_dim must be >= 0, got {prediction_dim}")
    kind = resolve_torso(config, task.obs_kind, task.family)
    continuous = bool(task.continuous_actions)
    if continuous and kind == "tabular":
        raise ValueError(f"task {task.name!r}: continuous actions need an mlp or cnn torso")
    A = task.num_actions
    kt, kp, ky, kvt, kv = jax.random.split(key, 5)
    if kind == "tabular":
        n = int(task.num_states)
        return Agent(
            torso=IndexTorso(n),
            policy_head=Table(n, A),
            prediction_head=Table(n, prediction_dim) if prediction_dim else None,
            value_torso=None,
            value_head=Table(n, 1) if value else None,
            num_actions=A,
            prediction_dim=prediction_dim,
            obs_ndim=len(task.obs_shape),
        )

    def torso(k):
        if kind == "cnn":
            return CNNTorso(task.obs_shape, config.cnn_channels, config.cnn_hidden, key=k)
        if task.obs_kind == "index":  # one-hot state indices
            return MLPTorso(int(task.num_states), tuple(config.hidden), config.activation, key=k, one_hot=int(task.num_states))
        in_size = int(math.prod(task.obs_shape)) if task.obs_shape else 1
        return MLPTorso(in_size, tuple(config.hidden), config.activation, key=k)

    t = torso(kt)
    width = config.cnn_hidden if kind == "cnn" else config.hidden[-1]
    low = high = None
    if continuous:
        low, high = action_bounds(task)
    return Agent(
        torso=t,
        policy_head=GaussianHead(width, A, key=kp) if continuous else _orthogonal_linear(width, A, 0.01, key=kp),
        prediction_head=_orthogonal_linear(width, prediction_dim, 0.01, key=ky)
        if prediction_dim
        else None,
        value_torso=torso(kvt) if value else None,
        value_head=_orthogonal_linear(width, 1, 1.0, key=kv) if value else None,
        num_actions=A,
        prediction_dim=prediction_dim,
        obs_ndim=len(task.obs_shape),
        continuous=continuous,
        action_low=low,
        action_high=high,
    )


AGENT_FAMILIES = ("tabular", "mlp", "cnn")


def agent_family(agent: Agent) -> str:
    """The agent family of a built agent, by its torso: ``"tabular"`` (lookup tables), ``"mlp"`` or
    ``"cnn"``. Learned rules record their agent hyperparameters per family."""
    if isinstance(agent.torso, IndexTorso):
        return "tabular"
    return "cnn" if isinstance(agent.torso, CNNTorso) else "mlp"


class UniformPolicy(eqx.Module):
    """The uniform random policy of a task: uniform over the `num_actions` actions, or over the
    action box ``[action_low, action_high)`` on continuous tasks. It has no parameters; `collect`
    runs it like an agent (it has the same `act`, `continuous` and bounds), which is how the
    transfer suites' random-policy baseline is measured."""

    num_actions: int = eqx.field(static=True)
    continuous: bool = eqx.field(static=True, default=False)
    action_low: tuple[float, ...] | None = eqx.field(static=True, default=None)
    action_high: tuple[float, ...] | None = eqx.field(static=True, default=None)

    @classmethod
    def for_task(cls, task) -> "UniformPolicy":
        if task.continuous_actions:
            low, high = action_bounds(task)
            return cls(task.num_actions, True, low, high)
        return cls(task.num_actions)

    def act(self, obs: Array, *, key: PRNGKeyArray) -> tuple[Array, Array]:
        """`(action, log_prob)` for a batch of observations ``[B, ...]`` (only B is read)."""
        n = obs.shape[0]
        if self.continuous:
            low = jnp.asarray(self.action_low, jnp.float32)
            high = jnp.asarray(self.action_high, jnp.float32)
            action = jax.random.uniform(key, (n, self.num_actions), minval=low, maxval=high)
            return action, jnp.full((n,), -jnp.sum(jnp.log(high - low)))
        action = jax.random.randint(key, (n,), 0, self.num_actions)
        return action, jnp.full((n,), -math.log(self.num_actions), jnp.float32)


def action_bounds(task) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-dimension bounds of a continuous task's action space (its gymnax ``Box``)."""
    import numpy as np

    space = task.env.action_space(task.default_params)
    A = task.num_actions
    low = np.broadcast_to(np.asarray(space.low, np.float64), (A,))
    high = np.broadcast_to(np.asarray(space.high, np.float64), (A,))
    return tuple(float(x) for x in low), tuple(float(x) for x in high)


# ------------------------------------------------------------------ policy distributions
#
# The policy distributions are distrax's: a categorical over logits, and a diagonal Gaussian
# (`Independent(Normal(μ, σ), 1)`, the same distribution as `MultivariateNormalDiag`, with its
# entropy in closed form). Gaussian samples are not clipped here: the rollout clips the action the
# environment sees to its bounds and keeps the unclipped sample's log-probability.


def policy_distribution(out: AgentOutput) -> distrax.Distribution:
    """The policy of `out` (any leading axes) as a distrax distribution: `Categorical(logits)`
    when ``out.log_std is None``, else a diagonal Gaussian with mean ``out.logits`` and standard
    deviation ``exp(out.log_std)`` (broadcast against the mean)."""
    if out.log_std is None:
        return distrax.Categorical(logits=out.logits)
    return gaussian_distribution(out.logits, out.log_std)


def gaussian_distribution(mean: Float[Array, "... A"], log_std: Float[Array, "... A"]) -> distrax.Distribution:
    """The diagonal Gaussian N(μ, diag σ²) over the last axis, σ = exp(log_std) broadcast to μ."""
    return distrax.Independent(distrax.Normal(mean, jnp.broadcast_to(jnp.exp(log_std), mean.shape)), 1)


def gaussian_log_prob_entropy(
    mean: Float[Array, "... A"], log_std: Float[Array, "... A"], action: Float[Array, "... A"]
) -> tuple[Float[Array, "..."], Float[Array, "..."]]:
    """log N(a; μ, diag σ²) summed over the action dimensions, and the Gaussian's entropy
    ``Σ (log σ + ½ log 2πe)``. `log_std` broadcasts against `mean`."""
    d = gaussian_distribution(mean, log_std)
    return d.log_prob(action), d.entropy()


def categorical_log_prob_entropy(logits: Array, action: Array) -> tuple[Array, Array]:
    """log π(a|s) and H(π(·|s)) from logits ``[..., A]`` and integer actions ``[...]``."""
    d = distrax.Categorical(logits=logits)
    return d.log_prob(action.astype(jnp.int32)), d.entropy()


def log_prob_entropy(out: AgentOutput, action: Array) -> tuple[Array, Array]:
    """log π(a|s) and H(π(·|s)) for either policy type, from an `AgentOutput` with any leading
    axes: categorical (integer actions ``[...]``) when ``out.log_std is None``, otherwise a diagonal
    Gaussian (float actions ``[..., act_dim]``)."""
    d = policy_distribution(out)
    return d.log_prob(action.astype(jnp.int32) if out.log_std is None else action), d.entropy()


def sample_action(out: AgentOutput, *, key: PRNGKeyArray) -> tuple[Array, Array]:
    """Sample an action from the policy of `out` (any leading axes). Returns `(action,
    log_prob)`; Gaussian samples are unclipped (the rollout clips what the environment sees)."""
    return policy_distribution(out).sample_and_log_prob(seed=key)
