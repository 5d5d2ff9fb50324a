"""Mirror-learning drifts: the three drift conditions, DPO's closed form, and DPO training."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from learned_rl import pretrained
from learned_rl.rules import ClipDrift, DPODrift, LPODrift, drift_activity
from learned_rl.rules._lpo import is_lpo, make_lpo

R = jnp.concatenate([jnp.linspace(0.05, 3.0, 60), jnp.array([1.0])])
A = jnp.linspace(-4.0, 4.0, 17)
LPO_RANDOM = LPODrift(ppo_init=False, zero_output=False, key=jax.random.PRNGKey(0))
LPO_PPO_INIT = LPODrift(ppo_init=True, zero_output=False, key=jax.random.PRNGKey(1))


@pytest.mark.parametrize("drift", [ClipDrift(0.2), DPODrift(), LPO_RANDOM, LPO_PPO_INIT, LPODrift(key=jax.random.PRNGKey(2))], ids=["clip", "dpo", "lpo-random", "lpo-ppo-init-random", "lpo-zero"])
def test_drift_conditions(drift):
    f = _check_drift(drift)
    if drift is LPO_RANDOM:
        assert float(jnp.max(f)) > 0  # a random network really does drift away from r = 1


def _check_drift(drift):
    """f ≥ 0 on the (r, A) grid, f(1, A) = 0 and ∂f/∂r(1, A) = 0; returns f on the grid."""
    rr, aa = jnp.meshgrid(R, A, indexing="ij")
    f = drift(jnp.log(rr), aa)
    assert bool(jnp.all(f >= 0))
    np.testing.assert_allclose(drift(jnp.zeros_like(A), A), 0.0, atol=0)
    dfdr = jax.vmap(jax.grad(lambda r, a: drift(jnp.log(r), a)), (None, 0))(1.0, A)
    np.testing.assert_allclose(dfdr, 0.0, atol=1e-7)
    return f


def test_shipped_lpo_drifts_satisfy_the_conditions_and_were_meta_trained():
    """Every shipped LPO and TA-LPO drift (a temporal one at n/N = 0, 0.5 and 1)."""
    names = [n for n in pretrained.available() if n.startswith(("lpo_", "ta_lpo_"))]
    assert names, "no shipped LPO rule in learned_rl/pretrained"
    assert any(n.startswith("ta_lpo_") for n in names), "no shipped TA-LPO rule"
    rr, aa = jnp.meshgrid(R, A, indexing="ij")
    clip = make_lpo(ppo_init=True).drift(jnp.log(rr), aa)
    for n in names:
        rule = pretrained.load(n)
        assert is_lpo(rule) and rule.temporal == n.startswith("ta_")
        drifts = [lambda lr, a, p=p: rule.drift(lr, a, p) for p in (0.0, 0.5, 1.0)] if rule.temporal else [rule.drift]
        for d in drifts:
            f = _check_drift(d)
            # it really was meta-trained: it differs from PPO-clip somewhere on the grid
            assert float(jnp.max(jnp.abs(f - clip))) > 1e-3


def test_dpo_matches_hand_computed_values():
    d = DPODrift(alpha=2.0, beta=0.6)
    # A >= 0: x = (r-1)A = 1.5*2 = 3 -> 3 - 2 tanh(1.5)
    np.testing.assert_allclose(d(jnp.log(2.5), 2.0), 3 - 2 * np.tanh(1.5), rtol=1e-6)
    # A < 0: x = log(0.5) * -1 = 0.6931 -> x - 0.6 tanh(x / 0.6)
    x = np.log(0.5) * -1.0
    np.testing.assert_allclose(d(jnp.log(0.5), -1.0), x - 0.6 * np.tanh(x / 0.6), rtol=1e-6)
    # A < 0 and r > 1: log(r)·A < 0 -> no drift
    np.testing.assert_allclose(d(jnp.log(1.5), -1.0), 0.0)
    # LPO with a zero output layer and PPO init is exactly PPO-clip (minus the 1e-4 shift)
    lpo = LPODrift(key=jax.random.PRNGKey(0))
    lr, a = jnp.log(jnp.array([0.5, 1.5, 2.0])), jnp.array([1.0, 1.0, -2.0])
    np.testing.assert_allclose(lpo(lr, a), jax.nn.relu(ClipDrift(0.2)(lr, a) - 1e-4), rtol=1e-6)


def test_drift_activity_by_hand():
    log_r = jnp.log(jnp.array([1.0, 1.5, 0.5, 1.1]))
    adv = jnp.array([1.0, 1.0, -1.0, 1.0])
    f = ClipDrift(0.2)(log_r, adv)  # 0, (1.5 − 1.2)·1, (0.5 − 0.8)·(−1), 0 (inside the clip)
    act = drift_activity(f, log_r, 0.2)
    np.testing.assert_allclose([act["drift_active"], act["drift_mean"], act["clip_fraction"]], [0.5, 0.15, 0.5], rtol=1e-6)
    r = np.array([1.0, 1.5, 0.5, 1.1])
    np.testing.assert_allclose(act["approx_kl"], np.mean(r - 1 - np.log(r)), rtol=1e-5)


@pytest.mark.parametrize("drift", [ClipDrift(0.2), DPODrift(), LPODrift(key=jax.random.PRNGKey(0))], ids=["ppo", "dpo", "lpo"])
def test_update_reports_how_much_its_drift_acts(drift):
    """At the behaviour policy (the first minibatch step, or an update that barely moves) every
    activity figure is 0; a large step moves r past ε and into the drift."""
    from learned_rl import tasks
    from learned_rl._learner import TrainConfig, init, update_step
    from learned_rl.rules import MirrorLearning

    task = tasks.make("CartPole-v1")
    rule = MirrorLearning(drift=drift)
    key = jax.random.PRNGKey(0)
    figures = ("drift_active", "drift_mean", "clip_fraction", "approx_kl")
    for lr, moved in [(1e-9, False), (0.05, True)]:
        cfg = TrainConfig(total_steps=4 * 64 * 8, num_envs=8, rollout_len=64, learning_rate=lr)
        state = init(rule, task, cfg, key=key)
        _, m = update_step(rule, task, cfg, state)
        after = {k: float(m[f"{k}_after"]) for k in figures}
        if moved:
            assert after["clip_fraction"] > 0.05 and after["drift_active"] > 0.05 and after["drift_mean"] > 0 and after["approx_kl"] > 1e-3, after
            assert 0 < float(m["clip_fraction"]) < 1 and float(m["approx_kl"]) > 0  # averaged over the minibatch steps
        else:
            assert after["clip_fraction"] == after["drift_active"] == 0.0 and 0 <= after["drift_mean"] < 1e-12 and abs(after["approx_kl"]) < 1e-6, after
    # the whole-batch loss is the first minibatch step: r = 1 exactly
    from learned_rl._rollout import collect

    _, traj, _ = collect(state.agent, task.env, state.env_params, state.env, 16, key=key)
    _, m0 = rule.loss(state.agent, traj, key=key)
    assert all(float(m0[k]) == 0.0 for k in figures), m0


def test_es_benchmark_peer_drift_is_lpo_drift():
    """`benchmarks/es_vs_peers.py` times rejax with its own copy of LPO's drift: it must be the
    same function of (r, A) as `LPODrift`, or the benchmark compares unlike work."""
    import importlib.util
    import pathlib
    import sys

    bench = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"
    sys.path.insert(0, str(bench))
    try:
        spec = importlib.util.spec_from_file_location("es_vs_peers", bench / "es_vs_peers.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(bench))
    drift = LPODrift(128, True, key=jax.random.PRNGKey(3), zero_output=False)
    w = {"hidden": drift.hidden.weight.T, "out": drift.out.weight.T}
    log_ratio = 0.3 * jax.random.normal(jax.random.PRNGKey(4), (256,))
    adv = jax.random.normal(jax.random.PRNGKey(5), (256,))
    ours, peer = drift(log_ratio, adv), mod._drift(w, log_ratio, adv, drift.epsilon)
    assert float(jnp.max(ours)) > 0.1  # the network's part acts, not only the clip
    np.testing.assert_allclose(peer, ours, rtol=1e-5, atol=1e-6)


@pytest.mark.slow  # two rules × 2 seeds × 400k Pendulum steps: about 3 minutes on one core
def test_shipped_lpo_pendulum_beats_ppo_where_ppo_over_steps():
    """`lpo_pendulum`, meta-trained on Pendulum-v1 at 32 minibatches × 10 epochs and lr 1e-3 (a regime in
    which PPO's updates grow until a fifth of the samples end past the clip), holds a tighter trust region
    than PPO's clip and ends ahead of it on seeds its meta-training never used (10 seeds from 1000:
    −165.8 against −261.8, docs/mirror_drift.md)."""
    from learned_rl import final_return, make_rule, run_seeds, tasks
    from learned_rl._learner import apply_overrides

    task = tasks.make("Pendulum-v1")
    regime = {"num_minibatches": 32, "num_epochs": 10, "learning_rate": 1e-3, "num_envs": 16}
    out = {}
    for name in ("ppo", "lpo:lpo_pendulum"):
        rule = make_rule(name)
        rule, cfg, _ = apply_overrides(rule, rule.default_config(task).replace(total_steps=400_000), regime)
        res = run_seeds(rule, task, cfg, num_seeds=2, seed=1000, progress=False)
        out[name] = (float(np.mean(final_return(res.metrics))), float(np.mean(res.metrics["approx_kl_after"])))
    (ppo_ret, ppo_kl), (lpo_ret, lpo_kl) = out["ppo"], out["lpo:lpo_pendulum"]
    assert lpo_kl < 0.5 * ppo_kl, out
    assert lpo_ret > ppo_ret + 30.0, out
