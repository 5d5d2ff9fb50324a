"""Temporally-aware rules (TA-LPG, TA-LPO), evolution strategies over whole lifetimes, and the ES
strategies behind the one meta-training loop (ours and evosax's)."""

import json
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from learned_rl import AbstractUpdateRule, LPG, TrainConfig, load_rule, pretrained, save_rule, train
from learned_rl import tasks
from learned_rl._checkpoint import load, save
from learned_rl._cli import main
from learned_rl.meta import AbstractTruncatedProblem, EvolutionStrategies, FitnessFunction, MetaTrainConfig, TruncatedBackprop, TruncatedES, make_meta_step, meta_init
from learned_rl.meta._es import antithetic_ranks
from learned_rl.meta._evosax import EvosaxStrategy
from learned_rl.meta._presets import ES_STRATEGIES, get_preset, make_es
from learned_rl.meta._problems import LPGLifetimes
from learned_rl.rules import LPODrift, mirror_objective

TARGET = jnp.array([1.0, -2.0, 0.5, 3.0, 0.0, 1.5])
TASK = [tasks.make("chain/short")]


class Point(eqx.Module):
    w: jax.Array


def _quadratic(rule, key):
    return -jnp.sum((rule.w - TARGET) ** 2)


# ---------------------------------------------------------------------------------------- TA-LPO


@pytest.mark.parametrize("fraction", [0.0, 0.3, 0.7, 1.0])
def test_ta_lpo_drift_conditions_hold_exactly_at_every_n(fraction):
    """f ≥ 0, f(1, A) = 0 and ∂f/∂r(1, A) = 0 for a temporal drift with random (non-zero)
    weights, at several n/N, and the drift does depend on n/N away from r = 1."""
    d = LPODrift(32, ppo_init=False, key=jax.random.PRNGKey(0), zero_output=False, temporal=True)
    adv = jnp.linspace(-3, 3, 13)
    log_r = jnp.log(jnp.linspace(0.5, 1.5, 21))[:, None] * jnp.ones_like(adv)
    f = d(log_r, jnp.broadcast_to(adv, log_r.shape), fraction)
    assert jnp.all(f >= 0)
    np.testing.assert_array_equal(np.asarray(d(jnp.zeros_like(adv), adv, fraction)), 0.0)
    dfdr = jax.vmap(jax.grad(lambda r, a: d(jnp.log(r), a, fraction)))(jnp.ones_like(adv), adv)
    np.testing.assert_array_equal(np.asarray(dfdr), 0.0)
    other = d(log_r, jnp.broadcast_to(adv, log_r.shape), 1.0 - fraction if fraction != 0.5 else 0.0)
    assert float(jnp.max(jnp.abs(other - f))) > 1e-3 or fraction == 0.5
    with pytest.raises(ValueError, match="needs the fraction"):
        mirror_objective(d, log_r, log_r)


def test_ta_lpo_rule_file_round_trips_and_its_drift_is_drawn_at_three_points_of_training(tmp_path):
    from learned_rl._analysis import drift_curves
    from learned_rl.rules._lpo import make_lpo

    rule = make_lpo(LPODrift(16, ppo_init=True, key=jax.random.PRNGKey(2), zero_output=False, temporal=True))
    save_rule(tmp_path / "ta.eqx", rule)
    back = load_rule(tmp_path / "ta.eqx")
    assert back.temporal and back.drift.hidden.in_features == 16
    data = drift_curves(["ppo", f"lpo:{tmp_path / 'ta.eqx'}"], out=tmp_path / "d")
    names = list(data["drift"])
    assert names[0] == "ppo" and [n.rsplit("=", 1)[1] for n in names[1:]] == ["0", "0.5", "1"]
    a0, a1 = (np.asarray(data["drift"][n]["2.0"]) for n in (names[1], names[3]))
    assert np.abs(a0 - a1).max() > 0  # the drift changes over training
    old = load_rule(pretrained.path("lpo_cartpole"))  # written before temporal drifts existed
    assert not old.temporal and old.drift.hidden.in_features == 8


def test_temporal_rules_get_the_real_progress_in_train():
    """`train` tells a temporal rule n (updates done) and N (the run's updates); non-temporal
    rules are called without it."""

    class Recorder(AbstractUpdateRule):
        name: ClassVar[str] = "recorder"
        temporal: ClassVar[bool] = True

        def loss(self, agent, traj, *, key, progress=None):
            return jnp.zeros(()), {"fraction": progress.fraction, "horizon": progress.horizon, "log_n": progress.log_horizon}

        def default_config(self, task):
            return TrainConfig(total_steps=7 * 4 * 5, num_envs=4, rollout_len=5)

        def update(self, agent, opt_state, optimizer, traj, *, key, progress):
            _, m = self.loss(agent, traj, key=key, progress=progress)
            return agent, opt_state, m

    rule = Recorder()
    cfg = rule.default_config(TASK[0])
    _, m = train(rule, TASK[0], cfg, key=jax.random.PRNGKey(0))
    np.testing.assert_allclose(np.asarray(m["fraction"]), np.arange(7) / 7, rtol=1e-6)
    assert set(np.asarray(m["horizon"]).tolist()) == {7}
    np.testing.assert_allclose(np.asarray(m["log_n"]), np.log(7), rtol=1e-6)


# ---------------------------------------------------------------------------------------- TA-LPG


def test_ta_lpg_reads_progress_round_trips_and_old_rules_load_unchanged(tmp_path):
    rule = LPG.from_config({"hidden_size": 8, "prediction_dim": 4, "temporal": True}, key=jax.random.PRNGKey(1))
    assert rule.temporal and rule.network.core.input_size == 8
    T = 6
    args = (jnp.linspace(0, 1, T), jnp.zeros(T), jnp.zeros(T), 0.99, jnp.full(T, 0.5), jnp.full((T, 4), 0.25), jnp.full((T, 4), 0.25))
    early = rule.network(*args, (0.0, jnp.log(100.0)))
    late = rule.network(*args, (0.9, jnp.log(100.0)))
    longer = rule.network(*args, (0.0, jnp.log(1000.0)))
    assert float(jnp.max(jnp.abs(early[0] - late[0]))) > 1e-4 and float(jnp.max(jnp.abs(early[0] - longer[0]))) > 1e-4
    with pytest.raises(ValueError, match="needs progress"):
        rule.network(*args)
    save_rule(tmp_path / "ta.eqx", rule)
    back = load_rule(tmp_path / "ta.eqx")
    assert back.temporal and back.config()["temporal"] is True
    for a, b in zip(jax.tree.leaves(eqx.filter(rule, eqx.is_inexact_array)), jax.tree.leaves(eqx.filter(back, eqx.is_inexact_array))):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    old = load_rule(pretrained.path("lpg_tabular"))  # written before temporal rules existed
    assert not old.temporal and "temporal" not in old.config() and old.network.core.input_size == 6


def test_ta_lpg_lifetimes_have_log_uniform_lengths_and_the_meta_gradient_reaches_the_temporal_inputs():
    """With a temporal preset, lifetime lengths N are drawn from the recorded range (multiples of
    K), each lifetime's updates are told its own N, and the truncated meta-gradient reaches the
    core's weights on the n/N and log N inputs (they matter to the meta-loss)."""
    p = get_preset("cpu", temporal=True, hidden_size=8, prediction_dim=4, lifetimes_per_task=8, num_envs=4, rollout_len=8,
                   lifetime_updates=48, inner_steps=3, learning_rates=(10.0,), alpha_ys=(0.5,))
    assert p.lifetime_range() == (6, 48)
    rule, est, _ = p.build(TASK, key=jax.random.PRNGKey(0))
    assert isinstance(est.problem, LPGLifetimes) and est.problem.min_lifetime_updates == 6
    state = eqx.filter_jit(lambda r, k: est.init(r, TASK, key=k))(rule, jax.random.PRNGKey(2))
    n = np.asarray(state.groups[0].length)
    assert np.all((n >= 6) & (n <= 48) & (n % 3 == 0)) and len(set(n.tolist())) > 1
    params, static = eqx.partition(rule, eqx.is_inexact_array)
    _, grads, _, _ = eqx.filter_jit(lambda p_, s: est.estimate(p_, static, s, key=jax.random.PRNGKey(3)))(params, state)
    w = np.asarray(grads.network.core.weight_ih)  # [4 · hidden, 8]: columns 6, 7 are n/N and log N
    assert np.all(np.isfinite(w)) and np.abs(w[:, 6]).max() > 0 and np.abs(w[:, 7]).max() > 0


# ---------------------------------------------------------------------------------------- truncated ES


class _QuadraticUnrolls(AbstractTruncatedProblem):
    """A truncated problem whose one-unroll meta-loss is a known quadratic of η (members count
    their unrolls), so truncated ES and truncated backprop must agree on its gradient."""

    n: int = eqx.field(static=True, default=4000)
    tasks: tuple = eqx.field(static=True, default=())

    def init(self, rule, tasks, *, key):
        return (jnp.zeros((self.n,), jnp.int32),)

    def members(self, state):
        return state

    def member_loss(self, meta_params, rule_static, group, member, *, key, remat=True):
        w = eqx.combine(meta_params, rule_static).w
        return jnp.sum(jnp.arange(1.0, 7.0) * (w - TARGET) ** 2), (member + 1, {"unrolls": member.astype(jnp.float32)})

    def member_finite(self, members):
        return jnp.ones(members.shape, bool)

    def advance(self, rule, state, new, healthy, aux, *, keys):
        return tuple(new), {"mean_unrolls": aux[0]["unrolls"]}

    def group_weights(self):
        return (1.0,)

    def env_steps_per_unroll(self):
        return 0


def test_truncated_es_agrees_with_truncated_backprop_on_a_known_unroll_loss():
    prob = _QuadraticUnrolls().bind(TASK)
    rule = Point(jnp.array([0.5, 0.0, 0.0, 1.0, -1.0, 0.0]))
    params, static = eqx.partition(rule, eqx.is_inexact_array)
    state = prob.init(rule, TASK, key=jax.random.PRNGKey(0))
    _, g_bp, s_bp, _ = TruncatedBackprop(prob).estimate(params, static, state, key=jax.random.PRNGKey(1))
    loss, g_es, s_es, m = TruncatedES(prob, sigma=0.05).estimate(params, static, state, key=jax.random.PRNGKey(1))
    a, b = np.asarray(g_bp.w), np.asarray(g_es.w)
    assert a @ b / (np.linalg.norm(a) * np.linalg.norm(b)) > 0.99 and abs(np.linalg.norm(b) / np.linalg.norm(a) - 1) < 0.05
    assert int(s_es[0][0]) == int(s_bp[0][0]) == 1  # members advanced by one unroll
    p = get_preset("cpu", estimator="tes", sigma=0.05, hidden_size=8, prediction_dim=4, lifetimes_per_task=2, num_envs=4, rollout_len=8,
                   lifetime_updates=12, inner_steps=3, learning_rates=(10.0,), alpha_ys=(0.5,))
    lpg, est, _ = p.build(TASK, key=jax.random.PRNGKey(0))
    assert isinstance(est, TruncatedES) and isinstance(est.problem, LPGLifetimes)
    st = eqx.filter_jit(lambda r, k: est.init(r, TASK, key=k))(lpg, jax.random.PRNGKey(2))
    lp, ls = eqx.partition(lpg, eqx.is_inexact_array)
    loss, grads, _, metrics = eqx.filter_jit(lambda p_, s: est.estimate(p_, ls, s, key=jax.random.PRNGKey(3)))(lp, st)
    flat = np.concatenate([np.ravel(x) for x in jax.tree.leaves(grads)])
    assert np.isfinite(float(loss)) and np.all(np.isfinite(flat)) and np.abs(flat).max() > 0 and "critic_loss" in metrics


# ---------------------------------------------------------------------------------------- ES strategies


def test_evosax_open_es_and_ours_give_the_same_update_on_a_quadratic():
    """Our OpenAI-ES gradient, applied by plain SGD, moves the mean exactly where evosax 0.3's
    Open_ES (same noise, centred ranks, SGD) moves it."""
    from evosax.algorithms import Open_ES
    import optax

    P, sigma, lr = 8, 0.1, 0.05
    ours = EvolutionStrategies(population=P, sigma=sigma, fitness_fn=_quadratic, eval_center=False).bind(TASK)
    mean = jnp.array([0.3, -0.1, 0.2, 0.0, 0.5, -0.4])
    key = jax.random.PRNGKey(7)
    _, grads, _, _ = ours.estimate(Point(mean), Point(None), ours.init(Point(mean), TASK, key=key), key=key)
    k_noise, _ = jax.random.split(key)  # the key our estimate draws its noise with
    es = Open_ES(P, mean, optimizer=optax.sgd(lr), std_schedule=optax.constant_schedule(sigma))
    st = es.init(key, mean, es.default_params)
    pop, st = es.ask(k_noise, st, es.default_params)
    loss = jax.vmap(lambda w: -_quadratic(Point(w), None))(pop)  # evosax minimises
    st, _ = es.tell(key, pop, loss, st, es.default_params)
    np.testing.assert_allclose(np.asarray(mean - lr * grads.w), np.asarray(st.mean), rtol=1e-5, atol=1e-6)
    assert float(jnp.linalg.norm(grads.w)) > 0


def test_antithetic_ranks_compare_each_pair_with_its_twin():
    f = jnp.array([3.0, 1.0, jnp.nan, 2.0, 2.0, 5.0, 0.0, 2.0])
    np.testing.assert_array_equal(np.asarray(antithetic_ranks(f)), [0.5, -0.5, 0.0, 0.0, -0.5, 0.5, 0.0, 0.0])


@pytest.mark.parametrize("strategy", ES_STRATEGIES)
def test_every_es_strategy_descends_resumes_bitwise_and_skips_nan_generations(strategy, tmp_path):
    """Each strategy behind the one loop: it descends a quadratic; 1 step, a checkpoint written
    and read back, then 2 more equal 3 steps bitwise; non-finite members are counted and a
    generation where most are non-finite is skipped with the rule and strategy state kept."""
    fit = FitnessFunction(_quadratic, tasks=TASK)
    est = make_es(fit, strategy=strategy, population=16, sigma=0.2, learning_rate=None if strategy in ("snes", "cma_es") else 0.05, eval_center=False)
    cfg = MetaTrainConfig(steps=60, meta_lr=0.05)
    rule = Point(jnp.zeros(6))
    step = make_meta_step(est, cfg)
    s0 = meta_init(rule, TASK, est, cfg, key=jax.random.PRNGKey(0))
    s = s0
    for _ in range(60):
        s, m = step(s)
    before = float(jnp.sum((rule.w - TARGET) ** 2))
    after = float(jnp.sum((s.rule.w - TARGET) ** 2))
    assert after < 0.1 * before, (strategy, before, after)
    assert int(s.skipped) == 0

    a = s0
    for _ in range(3):
        a, _ = step(a)
    b, _ = step(s0)
    save(tmp_path / "ck.eqx", b, kind="test", config={})
    _, b = load(tmp_path / "ck.eqx", lambda c: eqx.filter_eval_shape(meta_init, rule, TASK, est, cfg, key=jax.random.PRNGKey(0)), kind="test")
    for _ in range(2):
        b, _ = step(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))

    flaky = FitnessFunction(lambda r, k: jnp.where(r.w[0] > 0.1, jnp.nan, _quadratic(r, k)), tasks=TASK)
    bad = make_es(flaky, strategy=strategy, population=16, sigma=0.2, max_nan_fraction=0.5, eval_center=False)
    bstep = make_meta_step(bad, cfg)
    st = meta_init(Point(jnp.zeros(6)), TASK, bad, cfg, key=jax.random.PRNGKey(1))
    st1, m1 = bstep(st)
    assert 0 < int(m1["nan_members"]) < 16 and int(st1.skipped) == 0  # some members diverged: left out
    hopeless = eqx.tree_at(lambda s_: s_.rule.w, st1, jnp.full(6, 5.0))  # every member non-finite
    st2, m2 = bstep(hopeless)
    assert int(m2["skipped"]) == 1 and int(st2.skipped) == 1
    np.testing.assert_array_equal(np.asarray(st2.rule.w), np.asarray(hopeless.rule.w))
    for x, y in zip(jax.tree.leaves(st2.estimator_state), jax.tree.leaves(hopeless.estimator_state)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


_SHARDED_STRATEGIES = """
import json, jax, jax.numpy as jnp, equinox as eqx, numpy as np
from learned_rl import tasks
from learned_rl.meta import FitnessFunction, MetaTrainConfig, meta_train
from learned_rl.meta._presets import ES_STRATEGIES, make_es
class Point(eqx.Module):
    w: jax.Array
T = jnp.arange(6.0) / 3
fit = FitnessFunction(lambda r, k: -jnp.sum((r.w - T) ** 2) + 0.01 * jax.random.normal(k), tasks=(tasks.make("chain/short"),))
out = {"devices": len(jax.devices())}
for name in ES_STRATEGIES:
    est = make_es(fit, strategy=name, population=16, sigma=0.2, eval_center=False)
    for devices in (None, 4):
        r, st, h = meta_train(Point(jnp.zeros(6)), [tasks.make("chain/short")], est, MetaTrainConfig(steps=5, meta_lr=0.05, devices=devices), key=jax.random.PRNGKey(0))
        out[f"{name}-{devices}"] = {"w": np.asarray(r.w).tolist(), "fitness": h["fitness_mean"].tolist(), "skipped": int(st.skipped)}
print("RESULT " + json.dumps(out))
"""


def test_every_es_strategy_splits_its_population_over_4_devices_like_one():
    import os
    import subprocess
    import sys

    env = dict(os.environ)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4").strip()
    r = subprocess.run([sys.executable, "-c", _SHARDED_STRATEGIES], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(next(line for line in r.stdout.splitlines() if line.startswith("RESULT "))[7:])
    assert out["devices"] == 4
    for name in ES_STRATEGIES:
        one, four = out[f"{name}-None"], out[f"{name}-4"]
        assert one["skipped"] == four["skipped"] == 0
        np.testing.assert_allclose(four["fitness"], one["fitness"], rtol=1e-5, atol=1e-6, err_msg=name)
        np.testing.assert_allclose(four["w"], one["w"], rtol=1e-5, atol=1e-6, err_msg=name)
        assert one["w"] != [0.0] * 6


def test_bad_strategy_settings_are_one_line_errors():
    fit = FitnessFunction(_quadratic, tasks=TASK)
    with pytest.raises(ValueError, match="unknown ES strategy 'cmaes'"):
        make_es(fit, strategy="cmaes", population=8, sigma=0.1)
    with pytest.raises(ValueError, match="even"):
        make_es(fit, strategy="pgpe", population=7, sigma=0.1)
    big = LPG.from_config({"hidden_size": 64, "prediction_dim": 8}, key=jax.random.PRNGKey(0))  # the cpu preset: ~19k
    with pytest.raises(ValueError, match="covariance"):
        EvosaxStrategy(fit, strategy="cma_es", population=8).validate(big, TASK)


# ---------------------------------------------------------------------------------------- ES over LPG lifetimes, CLI


def test_cli_meta_train_ta_lpg_by_es_over_whole_lifetimes_and_train_with_it(tmp_path, capsys):
    """`meta-train lpg --temporal --estimator es --es-strategy NAME` writes the run directory; the
    rule records that it is temporal, the lifetimes it was meta-trained on and the strategy, and
    `train --rule lpg:PATH` evaluates it with the run's real N."""
    sets = ["--set", "hidden_size=8", "--set", "prediction_dim=4", "--set", "num_envs=4", "--set", "rollout_len=8",
            "--set", "lifetime_updates=40", "--set", "inner_steps=4", "--set", "learning_rates=[20]", "--set", "alpha_ys=[0.5]"]
    out = tmp_path / "ta-lpg"
    assert main(["meta-train", "lpg", "--tasks", "chain/short", "--temporal", "--estimator", "es", "--es-strategy", "snes",
                 "--population", "4", "--meta-steps", "2", "--out", str(out), "--no-progress", *sets]) == 0
    assert "Meta-trained 2 generations" in capsys.readouterr().out
    rule = load_rule(out / "rule.eqx")
    meta = json.loads((out / "rule.eqx").read_bytes().split(b"\n", 1)[0])["config"]["metadata"]
    assert rule.temporal and meta["strategy"] == "snes" and meta["lifetime_range"] == [5, 40] and meta["horizons"] == [5, 10, 20, 40]
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["preset"]["estimator"] == "es" and cfg["preset"]["temporal"] is True
    assert main(["train", "--rule", f"lpg:{out / 'rule.eqx'}", "--task", "chain/short", "--steps", "2560", "--seeds", "2", "--out", str(tmp_path / "t"), "--no-progress"]) == 0
    assert (tmp_path / "t" / "summary.json").exists()
