"""Analysis tools with a plot each.

- `prediction_semantics`: what the prediction vector y of an LPG agent has come to mean. A fresh
  tabular agent is trained with the rule; then the true discounted state values of its final
  policy are estimated by Monte-Carlo rollouts, and a linear regression from y(s) to V(s) is fitted
  (R², in-sample and 5-fold cross-validated). This is the analysis of the LPG paper's Fig. 4.
- `drift_curves`: the drift f(r, A) of mirror-learning rules (PPO-clip, DPO, a learned LPO), in the
  style of the DPO paper's figures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import tasks as task_registry
from ._experiment import run_seeds
from ._io import write_json
from ._learner import final_return
from ._returns import gae
from ._rollout import collect, reset_envs
from ._registry import make_rule


def _linear_r2(X: np.ndarray, y: np.ndarray, folds: int = 5, seed: int = 0) -> tuple[float, float]:
    """In-sample and k-fold cross-validated R² of least squares ``y ≈ X w + b``."""

    def fit(Xa, ya):
        A = np.concatenate([Xa, np.ones((len(Xa), 1))], axis=1)
        w, *_ = np.linalg.lstsq(A, ya, rcond=None)
        return w

    def predict(w, Xa):
        return np.concatenate([Xa, np.ones((len(Xa), 1))], axis=1) @ w

    ss_tot = float(np.sum((y - y.mean()) ** 2))
    if ss_tot <= 0:
        return float("nan"), float("nan")
    r2_in = 1.0 - float(np.sum((y - predict(fit(X, y), X)) ** 2)) / ss_tot
    idx = np.random.default_rng(seed).permutation(len(y))
    pred = np.empty_like(y)
    for f in range(folds):
        test = idx[f::folds]
        train = np.setdiff1d(idx, test)
        pred[test] = predict(fit(X[train], y[train]), X[test])
    r2_cv = 1.0 - float(np.sum((y - pred) ** 2)) / ss_tot
    return r2_in, r2_cv


def policy_state_values(agent, task, env_params, *, gamma: float, num_envs: int = 64, num_steps: int = 3000, key) -> tuple[np.ndarray, np.ndarray]:
    """Monte-Carlo discounted values of `agent`'s policy per tabular state index.

    Runs the policy for `num_steps` in `num_envs` environments, computes each visit's discounted
    return-to-go (0 after a termination; the value of the truncated tail is not known, so visits in
    the last ``5 / (1 − γ)`` steps are discarded), and averages per state.

    **Returns:** `(values[num_states], visits[num_states])`; unvisited states have value NaN.
    """
    if task.obs_kind != "index":
        raise ValueError(f"prediction analysis needs a tabular task (index observations); {task.name!r} has {task.obs_kind} observations")
    env = task.env

    def run(key):
        k_reset, k_run = jax.random.split(key)
        carry = reset_envs(env, env_params, num_envs, key=k_reset)
        _, traj, _ = collect(agent, env, env_params, carry, num_steps, key=k_run)  # the one env-stepping scan
        # return-to-go g_t = r_t + γ (1 − terminated_t) g_{t+1}: the one backward recursion (GAE
        # with V = 0 and λ = 1, cut only where an episode terminated)
        zero = jnp.zeros_like(traj.reward)
        return traj.obs, gae(traj.reward, zero, zero, traj.terminated, float(gamma), 1.0)

    obs_seq, ret = jax.jit(run)(key)
    keep = num_steps - int(5.0 / (1.0 - gamma))
    if keep <= 0:
        raise ValueError(f"num_steps={num_steps} is too short for gamma={gamma}")
    s = np.asarray(obs_seq[:keep]).reshape(-1)
    g = np.asarray(ret[:keep]).reshape(-1)
    n = int(task.num_states)
    visits = np.bincount(s, minlength=n).astype(float)
    total = np.bincount(s, weights=g, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        values = np.where(visits > 0, total / np.maximum(visits, 1), np.nan)
    return values, visits


def prediction_semantics(rule_name: str, task_name: str, *, steps: int | None = None, seed: int = 0, out: Path, min_visits: int = 20) -> dict[str, Any]:
    """Train one agent with an LPG rule on a tabular task, then relate its y vectors to the true
    state values of its final policy. Writes ``out/predictions.png`` and ``out/predictions.json``."""
    rule = make_rule(rule_name)
    if getattr(rule, "prediction_dim", 0) <= 0:
        raise ValueError(f"rule {rule_name!r} has no prediction vector y (only LPG rules do)")
    task = task_registry.make(task_name)
    if task.obs_kind != "index":
        raise ValueError(f"prediction analysis needs a tabular task; {task_name!r} has {task.obs_kind} observations")
    config = rule.default_config(task)
    if steps is not None:
        config = config.replace(total_steps=steps)
    result = run_seeds(rule, task, config, num_seeds=1, seed=seed, rule_name=rule_name, progress=False)
    state = jax.tree.map(lambda x: x[0], result.state)
    agent = state.agent
    values, visits = policy_state_values(agent, task, state.env_params, gamma=float(rule.gamma), key=jax.random.PRNGKey(seed + 1))
    seen = np.flatnonzero(visits >= min_visits)
    if seen.size < 4:
        raise ValueError(f"only {seen.size} states were visited ≥ {min_visits} times; train longer")
    idx = jnp.asarray(seen, jnp.int32)
    y = np.asarray(jax.nn.softmax(jax.vmap(agent)(idx).y_logits, axis=-1))
    v = values[seen]
    r2_in, r2_cv = _linear_r2(y, v)
    report = {
        "rule": rule_name,
        "task": task.name,
        "env_steps": int(config.num_updates * config.steps_per_update),
        "final_return": float(final_return(result.metrics, config.final_fraction)[0]),
        "states_analysed": int(seen.size),
        "prediction_dim": int(y.shape[1]),
        "y_entropy_mean": float(np.mean(-np.sum(y * np.log(np.maximum(y, 1e-12)), axis=1))),
        "y_spread": float(np.mean(np.std(y, axis=0))),
        "r2_linear": r2_in,
        "r2_linear_cv5": r2_cv,
    }
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "predictions.json", report)
    _plot_predictions(out / "predictions.png", v, y, report)
    return report


def _plot_predictions(path: Path, v: np.ndarray, y: np.ndarray, report: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = np.argsort(v)
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.8), gridspec_kw={"width_ratios": [1, 2, 1.2]})
    axes[0].plot(v[order], np.arange(len(v)), color="tab:green")
    axes[0].set_xlabel("true value V(s) of the final policy")
    axes[0].set_ylabel("states (sorted by V)")
    im = axes[1].imshow(y[order], aspect="auto", origin="lower", cmap="viridis", interpolation="nearest")
    axes[1].set_xlabel("component of y(s)")
    axes[1].set_title("agent's prediction vector y per state")
    fig.colorbar(im, ax=axes[1], fraction=0.04)
    A = np.concatenate([y, np.ones((len(y), 1))], axis=1)
    w, *_ = np.linalg.lstsq(A, v, rcond=None)
    axes[2].scatter(v, A @ w, s=8, alpha=0.7)
    lo, hi = float(np.min(v)), float(np.max(v))
    axes[2].plot([lo, hi], [lo, hi], "k--", lw=1)
    axes[2].set_xlabel("true V(s)")
    axes[2].set_ylabel("linear fit from y(s)")
    axes[2].set_title(f"R² {report['r2_linear']:.2f} (5-fold CV {report['r2_linear_cv5']:.2f})")
    fig.suptitle(f"{report['rule']} on {report['task']} ({report['env_steps']:,} env steps)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def drift_of(rule_name: str):
    """The drift function of a mirror-learning rule (`ppo`, `dpo`, `lpo:...`)."""
    rule = make_rule(rule_name)
    drift = getattr(rule, "drift", None)
    if drift is None:
        raise ValueError(f"rule {rule_name!r} has no drift function (only ppo, dpo and lpo rules do)")
    return drift


TEMPORAL_FRACTIONS = (0.0, 0.5, 1.0)  # where a temporal drift (TA-LPO) is drawn: start, middle, end of training


def drift_curves(rule_names: list[str], *, out: Path, ratios=None, advantages=(-2.0, -1.0, -0.5, 0.5, 1.0, 2.0)) -> dict[str, Any]:
    """Plot f(r, A) against r for several advantages, one column per rule (a temporal drift, TA-LPO,
    gets one column per n/N in `TEMPORAL_FRACTIONS`, named ``"NAME @ n/N=F"``). Writes
    ``out/drift.png`` and ``out/drift.json`` (the sampled values)."""
    if not rule_names:
        raise ValueError("no rules given")
    drifts = {}
    for name in rule_names:
        d = drift_of(name)
        if d.temporal:
            for frac in TEMPORAL_FRACTIONS:
                drifts[f"{name} @ n/N={frac:g}"] = lambda lr, a, d=d, frac=frac: d(lr, a, jnp.float32(frac))
        else:
            drifts[name] = d
    r = np.linspace(0.25, 2.0, 141) if ratios is None else np.asarray(ratios, dtype=float)
    if np.any(r <= 0):
        raise ValueError("probability ratios must be positive")
    logr = jnp.log(jnp.asarray(r, jnp.float32))
    data: dict[str, Any] = {"ratio": r.tolist(), "advantages": list(advantages), "drift": {}}
    for name, d in drifts.items():
        data["drift"][name] = {str(a): np.asarray(jax.vmap(lambda lr: d(lr, jnp.float32(a)))(logr)).tolist() for a in advantages}

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(drifts), figsize=(4.2 * len(drifts), 3.8), squeeze=False)
    cmap = plt.get_cmap("coolwarm")
    for ax, (name, curves) in zip(axes[0], data["drift"].items()):
        for i, a in enumerate(advantages):
            ax.plot(r, curves[str(a)], color=cmap(i / max(1, len(advantages) - 1)), label=f"A = {a:g}")
        ax.axvline(1.0, color="k", lw=0.5)
        ax.set_xlabel("r = π_new / π_old")
        ax.set_title(f"drift f(r, A): {name}")
    axes[0][0].set_ylabel("f(r, A)")
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / "drift.png", dpi=120)
    plt.close(fig)
    write_json(out / "drift.json", data)
    return data


__all__ = ["drift_curves", "drift_of", "policy_state_values", "prediction_semantics"]
