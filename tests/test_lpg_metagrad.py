"""Where LPG's meta-gradient flows: every part of the meta-network gets a gradient that agrees with
finite differences (float64), the y path is not cut, the agent's own update is the paper's, and
the pieces of the estimator around it (meta-critic, bandit, long K, LPG-V) behave."""

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from learned_rl import tasks
from learned_rl import collect, make_agent, reset_envs
from learned_rl._learner import TrainConfig, make_optimizer
from learned_rl._rules_io import load_rule, save_rule
from learned_rl.meta import TruncatedMetaGradient
from learned_rl.rules._base import batched, categorical_log_prob_entropy
from learned_rl.rules._lpg import LPG, LPGNetwork

NO_BETAS = (0.0, 0.0, 0.0, 0.0)


def _f64(tree):
    return jax.tree.map(lambda x: x.astype(jnp.float64) if eqx.is_inexact_array(x) else x, tree)


@functools.lru_cache(maxsize=None)
def _default_setup():
    return _setup()


def _setup(task="gridworld/dense", variant="y", **kw):
    """A tiny float64 estimator (one lifetime), its state and `f(params) -> (meta_loss, grads)`.
    Call inside ``jax.enable_x64(True)``."""
    ts = [tasks.make(task)]
    base = dict(lifetimes_per_task=1, inner_steps=3, num_envs=16, rollout_len=20, lifetime_updates=50,
                learning_rates=(20.0,), alpha_ys=(1.0,), betas=NO_BETAS)
    est = TruncatedMetaGradient(**{**base, **kw}).bind(ts)
    rule = _f64(LPG(LPGNetwork(8, 4, inputs=variant, key=jax.random.PRNGKey(0))))
    state = _f64(est.init(rule, ts, key=jax.random.PRNGKey(1)))
    params, static = eqx.partition(rule, eqx.is_inexact_array)
    estimate = eqx.filter_jit(lambda p: est.estimate(p, static, state, key=jax.random.PRNGKey(2))[:2])
    return params, estimate


def _part_direction(params, part: str, seed=0):
    """A random direction that is non-zero only on `network.<part>`."""
    def pick(path, x):
        on = f".network.{part}" in jax.tree_util.keystr(path)
        d = jax.random.normal(jax.random.PRNGKey(seed + x.size), x.shape, x.dtype)
        return d if on else jnp.zeros_like(x)

    return jax.tree_util.tree_map_with_path(pick, params)


def _analytic_and_fd(params, estimate, v, eps=1e-5):
    _, grads = estimate(params)
    an = float(sum(jnp.sum(g * d) for g, d in zip(jax.tree.leaves(grads), jax.tree.leaves(v))))
    plus = estimate(jax.tree.map(lambda p, d: p + eps * d, params, v))[0]
    minus = estimate(jax.tree.map(lambda p, d: p - eps * d, params, v))[0]
    return an, float((plus - minus) / (2 * eps))


@pytest.mark.parametrize("part", ["y_head", "phi", "pi_head", "core"])
def test_meta_gradient_of_each_part_matches_finite_differences_float64(part):
    """With every regulariser off (β = 0), each part of the meta-network gets a non-zero
    meta-gradient that matches central finite differences. The ŷ head's gradient exists only
    through η → ŷ_k → y(θ_{k+1}) → φ(y) → π̂_{k+1}: a stop-gradient on y inside the inner loss makes
    it exactly zero, and it is too small to show in a whole-network check."""
    with jax.enable_x64(True):
        params, estimate = _default_setup()  # one compiled estimate shared by the four parts
        assert jax.tree.leaves(params)[0].dtype == jnp.float64
        v = _part_direction(params, part)
        an, fd = _analytic_and_fd(params, estimate, v)
        assert abs(an) > 1e-12, (part, an)
        np.testing.assert_allclose(an, fd, rtol=1e-4, atol=1e-13)


def test_network_honours_float64():
    with jax.enable_x64(True):
        net = _f64(LPGNetwork(8, 4, key=jax.random.PRNGKey(0)))
        T = 5
        r = jnp.linspace(-1, 1, T)
        y = jax.nn.softmax(jnp.ones((T, 4)))
        pi_hat, y_hat = net(r, jnp.zeros(T), jnp.zeros(T), 0.99, jnp.full(T, 0.2), y, y)
        assert pi_hat.dtype == jnp.float64 and y_hat.dtype == jnp.float64


def _old_style_update(rule, agent, traj, lr):
    """The agent step as it was computed before the fix: the network inside the inner loss, on
    stop-gradient'ed inputs. Its value (not its meta-gradient) is the paper's update."""
    sg = jax.lax.stop_gradient

    def loss(a):
        out = batched(a, traj.obs)
        nxt = batched(a, traj.next_obs)
        logp, _ = categorical_log_prob_entropy(out.logits, traj.action)
        pi_hat, yhl = jax.vmap(rule.network, in_axes=(1, 1, 1, None, 1, 1, 1), out_axes=(1, 1))(
            traj.reward, traj.terminated.astype(jnp.float32), traj.done.astype(jnp.float32), rule.gamma,
            sg(jnp.exp(logp)), sg(jax.nn.softmax(out.y_logits)), sg(jax.nn.softmax(nxt.y_logits)))
        log_y = jax.nn.log_softmax(out.y_logits)
        kl = jnp.sum(jnp.exp(log_y) * (log_y - jax.nn.log_softmax(yhl)), -1)
        return -jnp.mean(logp * pi_hat) + rule.alpha_y * jnp.mean(kl)

    g = eqx.filter_grad(loss)(agent)
    return jax.tree.map(lambda p, d: p - lr * d, agent, g)


@pytest.mark.parametrize("task", ["gridworld/dense", pytest.param("Breakout-MinAtar", marks=pytest.mark.slow)])  # MinAtar CNN: 18 s
def test_agent_update_is_unchanged_by_the_fix(task):
    t = tasks.make(task)
    rule = LPG(LPGNetwork(16, 4, key=jax.random.PRNGKey(0)), alpha_y=0.7)
    agent = make_agent(t, prediction_dim=4, value=False, key=jax.random.PRNGKey(1))
    # a non-uniform agent, so the targets depend on it
    agent = jax.tree.map(lambda x: x + 0.3 * jax.random.normal(jax.random.PRNGKey(x.size), x.shape) if eqx.is_inexact_array(x) else x, agent)
    carry = reset_envs(t.env, t.default_params, 4, key=jax.random.PRNGKey(2))
    _, traj, _ = collect(agent, t.env, t.default_params, carry, 10, key=jax.random.PRNGKey(3))
    opt = make_optimizer(TrainConfig(optimizer="sgd", learning_rate=0.5, max_grad_norm=None))
    opt_state = opt.init(eqx.filter(agent, eqx.is_inexact_array))
    new, _, _ = rule.update(agent, opt_state, opt, traj, key=jax.random.PRNGKey(4))
    ref = _old_style_update(rule, agent, traj, 0.5)
    moved = 0.0
    for a, b, c in zip(jax.tree.leaves(eqx.filter(new, eqx.is_inexact_array)), jax.tree.leaves(eqx.filter(ref, eqx.is_inexact_array)), jax.tree.leaves(eqx.filter(agent, eqx.is_inexact_array))):
        np.testing.assert_allclose(a, b, atol=1e-6, rtol=1e-6)
        moved = max(moved, float(jnp.max(jnp.abs(a - c))))
    assert moved > 1e-4  # the update did something


def test_staggered_first_lifetimes_stay_out_of_the_bandit():
    """The first lifetime of every slot has a random (short) length; its return must not reach the
    bandit. Only full-length lifetimes after it count."""
    ts = [tasks.make("chain/short")]
    est = TruncatedMetaGradient(lifetimes_per_task=4, inner_steps=3, num_envs=2, rollout_len=4, lifetime_updates=12, learning_rates=(10.0, 20.0), alpha_ys=(0.5,)).bind(ts)
    rule = LPG(LPGNetwork(8, 4, key=jax.random.PRNGKey(0)))
    state = est.init(rule, ts, key=jax.random.PRNGKey(1))
    assert bool(jnp.all(state.groups[0].staggered))
    params, static = eqx.partition(rule, eqx.is_inexact_array)
    step = eqx.filter_jit(lambda s, k: est.estimate(params, static, s, key=k))
    ended = 0
    for i in range(4):  # 12 updates: every staggered lifetime (length 3..12) has ended
        _, _, state, m = step(state, jax.random.PRNGKey(10 + i))
        ended += int(m["lifetimes_ended/chain/short"])
    assert ended == 4
    assert int(jnp.sum(state.bandits[0].counts)) == 0
    assert not bool(jnp.any(state.groups[0].staggered))
    for i in range(4):  # the fresh, full-length lifetimes end by update 24
        _, _, state, m = step(state, jax.random.PRNGKey(20 + i))
    assert int(jnp.sum(state.bandits[0].counts)) == 4


def test_long_truncation_k20_runs_and_keeps_the_y_path():
    with jax.enable_x64(True):
        params, estimate = _setup(inner_steps=20)
        loss, grads = estimate(params)
        assert np.isfinite(float(loss))
        gy = float(jnp.sqrt(sum(jnp.sum(g**2) for g in jax.tree.leaves(grads.network.y_head))))
        assert gy > 0


@pytest.mark.parametrize("form", ["paper", "logits"])
def test_regularizer_forms(form):
    """The paper's β3·‖ŷ‖² (probabilities) pulls ŷ toward uniform; the logit form penalises only
    the logits' mean, which softmax ignores. With only β3 on, the y head's meta-gradient is the
    regulariser's gradient; it must be non-zero in both forms and differ between them."""
    with jax.enable_x64(True):
        grads = {}
        for f in ("paper", "logits"):
            params, estimate = _setup(betas=(0.0, 0.0, 0.0, 1.0), regularizer=f)
            grads[f] = np.concatenate([np.ravel(x) for x in jax.tree.leaves(estimate(params)[1].network.y_head)])
        assert np.linalg.norm(grads[form]) > 0
        assert np.linalg.norm(grads["paper"] - grads["logits"]) > 1e-3 * np.linalg.norm(grads[form])
    with pytest.raises(ValueError, match="regularizer"):
        TruncatedMetaGradient(regularizer="l2")


def test_lpg_v_meta_gradient_and_rule_file(tmp_path):
    """LPG-V: a value head instead of y, π̂ the only output; its meta-gradient reaches every part
    and the rule file round-trips with its variant."""
    with jax.enable_x64(True):
        params, estimate = _setup(variant="v")
        assert params.network.y_head is None and params.network.phi is None
        for part in ("pi_head", "core"):
            an, fd = _analytic_and_fd(params, estimate, _part_direction(params, part))
            assert abs(an) > 1e-12
            np.testing.assert_allclose(an, fd, rtol=1e-4, atol=1e-13)
    rule = LPG(LPGNetwork(8, 4, inputs="v", key=jax.random.PRNGKey(3)))
    assert rule.needs_value and rule.prediction_dim == 0
    back = load_rule(save_rule(tmp_path / "v.eqx", rule))
    assert back.variant == "v" and back.needs_value
    from learned_rl._registry import make_rule

    assert make_rule(f"lpg-v:{tmp_path / 'v.eqx'}").variant == "v"
    save_rule(tmp_path / "y.eqx", LPG(LPGNetwork(8, 4, key=jax.random.PRNGKey(3))))
    with pytest.raises(ValueError, match="not LPG-V"):
        make_rule(f"lpg-v:{tmp_path / 'y.eqx'}")


def test_lpg_v_agent_learns_its_value():
    """The LPG-V agent's value head is trained by TD(λ): on a fixed trajectory its loss falls."""
    t = tasks.make("gridworld/dense")
    rule = LPG(LPGNetwork(8, 4, inputs="v", key=jax.random.PRNGKey(0)), alpha_y=1.0)
    agent = make_agent(t, prediction_dim=0, value=True, key=jax.random.PRNGKey(1))
    carry = reset_envs(t.env, t.default_params, 8, key=jax.random.PRNGKey(2))
    _, traj, _ = collect(agent, t.env, t.default_params, carry, 50, key=jax.random.PRNGKey(3))
    opt = make_optimizer(TrainConfig(optimizer="sgd", learning_rate=20.0, max_grad_norm=None))
    s = opt.init(eqx.filter(agent, eqx.is_inexact_array))
    first = None
    for i in range(30):
        agent, s, m = rule.update(agent, s, opt, traj, key=jax.random.PRNGKey(i))
        first = float(m["value_loss"]) if first is None else first
    assert float(m["value_loss"]) < 0.5 * first, (first, float(m["value_loss"]))


def test_rule_records_its_regime_and_default_config_uses_it():
    t = tasks.make("gridworld/dense")
    rule = LPG(LPGNetwork(8, 4, key=jax.random.PRNGKey(0)), learning_rate=7.0).with_regime(16, 20, 3125)
    cfg = rule.default_config(t)
    assert (cfg.num_envs, cfg.rollout_len, cfg.learning_rate) == (16, 20, 7.0)
    back = LPG.from_config(rule.config())
    assert (back.num_envs, back.rollout_len, back.lifetime_updates) == (16, 20, 3125)
    # a rule without a recorded regime (files written before it existed) keeps A2C's envs × steps
    old = LPG.from_config({k: v for k, v in rule.config().items() if k != "regime"})
    assert old.default_config(t).num_envs == 64
    # MLP/CNN families keep A2C's optimiser and sizes
    assert rule.default_config(tasks.make("Breakout-MinAtar")).optimizer == "adam"
    with pytest.raises(ValueError, match="unknown fields"):
        LPG.from_config({"regime": {"envs": 3}})


def test_meta_train_cli_variant_v_writes_an_lpg_v_rule_with_its_regime(tmp_path):
    from learned_rl._cli import main

    out = tmp_path / "v"
    sets = ["--set", "hidden_size=8", "--set", "prediction_dim=4", "--set", "lifetimes_per_task=2", "--set", "num_envs=4",
            "--set", "rollout_len=8", "--set", "lifetime_updates=12", "--set", "inner_steps=3", "--set", "learning_rates=[10,20]", "--set", "alpha_ys=[0.5]"]
    assert main(["meta-train", "lpg", "--tasks", "chain/short", "--variant", "v", "--meta-steps", "2", "--out", str(out), "--no-progress", *sets]) == 0
    rule = load_rule(out / "rule.eqx")
    assert rule.variant == "v" and rule.needs_value
    assert (rule.num_envs, rule.rollout_len, rule.lifetime_updates) == (4, 8, 12)
    assert rule.default_config(tasks.make("chain/short")).num_envs == 4


def test_presets_are_typed_every_field_is_settable_and_round_trips():
    """One config path: a preset is a typed object; every field of the lifetimes problem and the
    ES is a preset field (so `--set` reaches it), the object `build`s the run, and its JSON (what
    config.json holds) reads back to the same object. Fields added later stay out of the JSON at
    their defaults, so an older run's config.json still matches on --resume."""
    import dataclasses
    import json

    from learned_rl.meta import LPGLifetimes, TrainingRuns
    from learned_rl.meta._es import EvolutionStrategies
    from learned_rl.meta._presets import LPOPreset, get_lpo_preset
    from learned_rl.meta._presets import LPGPreset, get_preset

    ts = [tasks.make("chain/short")]
    p = get_preset("cpu", critic_lr=0.01, agent_hidden=[32], bandit_window=5, gae_lambda=0.9, task_weights={"chain/short": 2.0})
    assert LPGPreset.from_json(json.loads(json.dumps(p.to_json()))) == p
    _, est, cfg = p.build(ts, key=jax.random.PRNGKey(0))
    prob = est.problem
    assert (prob.critic_lr, prob.agent_hidden, prob.bandit_window, prob.gae_lambda, prob.task_weights) == (0.01, (32,), 5, 0.9, (2.0,))
    assert cfg.steps == p.steps and cfg.meta_lr == p.meta_lr
    settable = {f.name for f in dataclasses.fields(LPGLifetimes)} - {"tasks", "return_scales"}
    assert settable <= set(LPGPreset.field_names()), settable - set(LPGPreset.field_names())
    assert set(get_preset("cpu").to_json()) == set(LPGPreset.field_names()) - set(LPGPreset.LATER)
    with pytest.raises(ValueError, match="'critic_lr' must be a positive number"):
        get_preset("cpu", critic_lr=0)

    q = get_lpo_preset("cpu", final_fraction=0.2, max_nan_fraction=0.25, population=4, inner_env_steps=2560)
    assert LPOPreset.from_json(json.loads(json.dumps(q.to_json()))) == q
    _, est, _ = q.build([tasks.make("CartPole-v1")], key=jax.random.PRNGKey(0))
    assert isinstance(est, EvolutionStrategies) and isinstance(est.problem, TrainingRuns)
    assert (est.problem.final_fraction, est.max_nan_fraction, est.population) == (0.2, 0.25, 4)
    es_fields = {f.name for f in dataclasses.fields(EvolutionStrategies)} | {f.name for f in dataclasses.fields(TrainingRuns)}
    # config_overrides is the TrainConfig half of the preset's `overrides`
    assert es_fields - {"problem", "tasks", "configs", "scales", "config_overrides"} <= set(LPOPreset.field_names()), es_fields - set(LPOPreset.field_names())
    # `overrides`: the inner runs' hyperparameters, the rule's on the rule and the config's on each run's TrainConfig
    o = get_lpo_preset("cpu", population=4, inner_env_steps=20480, overrides={"num_minibatches": 8, "num_epochs": 10, "learning_rate": 1e-3, "num_envs": 16})
    assert LPOPreset.from_json(json.loads(json.dumps(o.to_json()))) == o and "overrides" not in q.to_json()
    rule, est, _ = o.build([tasks.make("CartPole-v1")], key=jax.random.PRNGKey(0))
    assert (rule.num_minibatches, rule.num_epochs) == (8, 10)
    run_cfg = est.problem.configs[0]
    assert (run_cfg.learning_rate, run_cfg.num_envs, run_cfg.total_steps) == (1e-3, 16, 20480)
    for bad, needle in [({"bogus": 1}, "neither fields of the rule nor of TrainConfig"), ({"num_epochs": 2.5}, "num_epochs: expected a value like 4"),
                        ({"learning_rate": -1.0}, "learning_rate must be positive")]:
        with pytest.raises(ValueError, match=needle):
            get_lpo_preset("cpu", overrides=bad).build([tasks.make("CartPole-v1")], key=jax.random.PRNGKey(0))
