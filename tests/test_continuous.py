"""Continuous actions: the Gaussian policy, observation/reward normalisation, and PPO/DPO/A2C on
gymnax's continuous classic-control tasks."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from learned_rl import tasks
from learned_rl.baselines import A2C, PPO
from learned_rl import _checkpoint, collect, final_return, learning_curve, train
from learned_rl._agent import AgentOutput, gaussian_log_prob_entropy, log_prob_entropy, sample_action
from learned_rl._learner import TrainConfig, init, make_optimizer
from learned_rl._rollout import RunningMeanStd, normalize_obs
from learned_rl.rules import DPODrift


@pytest.fixture(scope="module")
def pendulum():
    return tasks.make("Pendulum-v1")


def test_gaussian_log_prob_and_entropy_match_hand_computed():
    mean = np.array([[0.3, -1.2], [2.0, 0.0]], np.float32)
    log_std = np.array([-0.5, 0.7], np.float32)
    action = np.array([[0.1, 0.4], [-1.0, 3.0]], np.float32)
    logp, ent = gaussian_log_prob_entropy(jnp.asarray(mean), jnp.asarray(log_std), jnp.asarray(action))
    std = np.exp(log_std)
    want = np.sum(
        -((action - mean) ** 2) / (2 * std**2) - np.log(std) - 0.5 * math.log(2 * math.pi), axis=-1
    )
    want_ent = np.sum(0.5 * np.log(2 * math.pi * math.e * std**2))
    np.testing.assert_allclose(np.asarray(logp), want, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(ent), [want_ent, want_ent], rtol=1e-5)
    # one dimension by hand: N(0.1; 0.3, e^-1) ... as a plain density
    d0 = math.exp(-((0.1 - 0.3) ** 2) / (2 * math.exp(-1.0))) / math.sqrt(2 * math.pi * math.exp(-1.0))
    d1 = math.exp(-((0.4 + 1.2) ** 2) / (2 * math.exp(1.4))) / math.sqrt(2 * math.pi * math.exp(1.4))
    assert abs(float(logp[0]) - math.log(d0 * d1)) < 1e-5


def test_log_prob_dispatches_on_policy_type():
    logits = jnp.array([[1.0, 2.0, 0.5]])
    cat = AgentOutput(logits, None, None)
    logp, ent = log_prob_entropy(cat, jnp.array([1]))
    p = np.exp([1.0, 2.0, 0.5]) / np.exp([1.0, 2.0, 0.5]).sum()
    np.testing.assert_allclose(np.asarray(logp), np.log(p[1]), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(ent), -(p * np.log(p)).sum(), rtol=1e-5)
    gauss = AgentOutput(jnp.zeros((1000, 2)), None, None, jnp.array([0.0, -1.0]))
    a, lp = sample_action(gauss, key=jax.random.PRNGKey(0))
    assert a.shape == (1000, 2) and a.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(lp), np.asarray(log_prob_entropy(gauss, a)[0]), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(a).std(0), [1.0, math.exp(-1)], rtol=0.1)


@pytest.fixture(scope="module")
def pend_run(pendulum):
    """A fresh PPO learner on Pendulum with the `continuous` defaults (16 envs, observation and
    reward normalisation) and one compiled `collect` of 32 steps, run twice."""
    rule = PPO()
    cfg = rule.default_config(pendulum)
    state = init(rule, pendulum, cfg, key=jax.random.PRNGKey(0))
    run = eqx.filter_jit(lambda s, k: collect(s.agent, pendulum.env, s.env_params, s.env, cfg.rollout_len, key=k))
    carry1, traj1, _ = run(state, jax.random.PRNGKey(2))
    state1 = eqx.tree_at(lambda s: s.env, state, carry1)
    carry2, traj2, _ = run(state1, jax.random.PRNGKey(3))
    return rule, cfg, state, run, (carry1, traj1), (carry2, traj2)


def test_gaussian_agent_rollout_shapes_and_log_probs(pendulum, pend_run):
    _, cfg, state, _, (_, traj), _ = pend_run
    agent = state.agent
    assert agent.continuous and agent.action_low == (-2.0,) and agent.action_high == (2.0,)
    out = agent(jnp.zeros(3))
    assert out.mean.shape == (1,) and out.log_std.shape == (1,) and out.value.shape == ()
    T, B = cfg.rollout_len, cfg.num_envs
    assert traj.action.shape == (T, B, 1) and traj.action.dtype == jnp.float32
    assert traj.log_prob.shape == traj.reward.shape == (T, B)
    outs = jax.vmap(jax.vmap(agent))(traj.obs)
    np.testing.assert_allclose(np.asarray(log_prob_entropy(outs, traj.action)[0]), np.asarray(traj.log_prob), rtol=1e-5, atol=1e-5)
    # stored actions are the unclipped samples (std 1 around ~0: some fall outside ±2)...
    assert np.abs(np.asarray(traj.action)).max() > 2.0
    # ...while the environment saw the clipped ones (Pendulum clips too; both are within bounds)
    assert np.all(np.isfinite(np.asarray(traj.reward)))


def test_running_mean_std_matches_numpy():
    rng = np.random.default_rng(0)
    data = [rng.normal(loc=[3.0, -1.0, 0.0], scale=[2.0, 0.1, 5.0], size=(n, 3)).astype(np.float32) for n in (7, 1, 64, 33)]
    rms = RunningMeanStd.create((3,))
    for batch in data:
        rms = jax.jit(RunningMeanStd.update)(rms, jnp.asarray(batch))
    allx = np.concatenate(data).astype(np.float64)
    np.testing.assert_allclose(np.asarray(rms.mean), allx.mean(0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(rms.var), allx.var(0), rtol=1e-4)
    assert float(rms.count) == len(allx)
    z = normalize_obs(rms, jnp.asarray(allx, jnp.float32))
    np.testing.assert_allclose(np.asarray(z).mean(0), 0.0, atol=1e-3)
    np.testing.assert_allclose(np.asarray(z).std(0), 1.0, rtol=1e-3)
    # the identity before any data, and clipping at ±10
    fresh = RunningMeanStd.create((2,))
    np.testing.assert_allclose(np.asarray(normalize_obs(fresh, jnp.array([0.5, -3.0]))), [0.5, -3.0], rtol=1e-6)
    assert float(normalize_obs(rms, jnp.array([1e6, 0.0, 0.0]))[0]) == 10.0


def test_rollout_updates_obs_statistics_with_what_the_agent_saw(pend_run):
    _, cfg, state, _, (carry1, traj1), (carry2, traj2) = pend_run
    T, B = cfg.rollout_len, cfg.num_envs
    # first rollout: statistics start at the identity, so traj.obs are the raw observations
    raw = np.asarray(traj1.obs, np.float64).reshape(-1, 3)
    np.testing.assert_allclose(np.asarray(carry1.obs_norm.mean), raw.mean(0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(carry1.obs_norm.var), raw.var(0), rtol=1e-3)
    assert float(carry1.obs_norm.count) == T * B
    # second rollout: normalised with the first rollout's statistics
    first_obs = np.asarray(carry1.obs)
    want = (first_obs - np.asarray(carry1.obs_norm.mean)) / np.sqrt(np.asarray(carry1.obs_norm.var) + 1e-8)
    np.testing.assert_allclose(np.asarray(traj2.obs[0]), np.clip(want, -10, 10), rtol=1e-4, atol=1e-4)
    # rewards are scaled by the running std of discounted returns (frozen during a rollout)
    assert float(carry2.reward_norm.stats.count) == 2 * T * B
    scale = 1.0 / math.sqrt(float(carry1.reward_norm.stats.var) + 1e-8)
    np.testing.assert_allclose(np.asarray(traj1.reward), np.clip(np.asarray(traj1.reward), -10, 10))
    assert scale < 0.5  # Pendulum's discounted returns have a large spread
    # ...and the episode-return accumulators are raw: Pendulum's rewards are about −1 to −16 per step
    assert np.all(np.asarray(carry2.episode_return) < -2 * T)


def test_normaliser_state_roundtrips_through_checkpoint(pendulum, pend_run, tmp_path):
    rule, cfg, state, run, (carry1, _), _ = pend_run
    assert cfg.normalize_obs and cfg.normalize_reward
    state = eqx.tree_at(lambda s: s.env, state, carry1)
    assert float(state.obs_norm.count) == cfg.steps_per_update
    path = _checkpoint.save(tmp_path / "learner.eqx", state, kind="learner", config=cfg.to_dict())

    def like(config):
        c = TrainConfig.from_dict(config)
        return eqx.filter_eval_shape(lambda k: init(rule, pendulum, c, key=k), jax.random.PRNGKey(0))

    header, loaded = _checkpoint.load(path, like, kind="learner")
    assert TrainConfig.from_dict(header["config"]) == cfg
    for a, b in zip(jax.tree.leaves(state.env.obs_norm), jax.tree.leaves(loaded.env.obs_norm), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    for a, b in zip(jax.tree.leaves(state.env.reward_norm), jax.tree.leaves(loaded.env.reward_norm), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # and collecting continues identically from the loaded state
    a1 = run(state, jax.random.PRNGKey(5))[0].obs_norm.mean
    a2 = run(loaded, jax.random.PRNGKey(5))[0].obs_norm.mean
    np.testing.assert_array_equal(np.asarray(a1), np.asarray(a2))


def test_defaults_per_family(pendulum):
    assert PPO().default_config(pendulum).normalize_obs
    assert PPO().default_config(tasks.make("MountainCarContinuous-v0")).normalize_reward
    assert A2C().default_config(pendulum).normalize_obs
    # existing tasks keep their configs (normalisation off)
    for name in ("CartPole-v1", "gridworld/dense", "Breakout-MinAtar"):
        c = PPO().default_config(tasks.make(name))
        assert not c.normalize_obs and not c.normalize_reward


@pytest.mark.parametrize("drift", [None, DPODrift()], ids=["ppo", "dpo"])
def test_one_mirror_update_improves_the_surrogate_on_a_fixed_batch(pend_run, drift):
    """A PPO/DPO update on a Gaussian policy raises the probability of positive-advantage actions:
    the mirror objective on the same batch (advantages fixed, behaviour log-probs fixed) goes up."""
    _, cfg, state, _, (_, traj), _ = pend_run
    rule = PPO() if drift is None else PPO(drift=drift)
    opt = make_optimizer(cfg, rule.num_epochs * rule.num_minibatches)

    @eqx.filter_jit
    def go(agent, opt_state):
        batch = rule._batch(agent, traj)
        before = rule._minibatch_loss(agent, batch)[1]
        new, _, metrics = rule.update(agent, opt_state, opt, traj, key=jax.random.PRNGKey(2))
        after = rule._minibatch_loss(new, batch)[1]
        return before, after, metrics

    before, after, metrics = go(state.agent, state.opt_state)
    assert np.isfinite(float(metrics["loss"]))
    assert float(after["policy_objective"]) > float(before["policy_objective"]) + 1e-3
    assert float(after["value_loss"]) < float(before["value_loss"])


def test_a2c_runs_on_continuous_actions(pend_run):
    _, cfg, state, _, (_, traj), _ = pend_run
    rule = A2C()
    opt = make_optimizer(cfg)
    agent, _, m = eqx.filter_jit(lambda a, o: rule.update(a, o, opt, traj, key=jax.random.PRNGKey(0)))(state.agent, state.opt_state)
    assert np.isfinite(float(m["loss"])) and np.isfinite(float(m["entropy"]))
    assert not np.allclose(np.asarray(agent.policy_head.mean.weight), np.asarray(state.agent.policy_head.mean.weight))


def test_ppo_learns_pendulum(pendulum):
    """PPO with the `continuous` defaults: from about −1200 (random) to better than −600 in 150k
    steps on every seed (it reaches about −200 by 200k steps)."""
    rule = PPO()
    cfg = rule.default_config(pendulum).replace(total_steps=150_000)
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    _, m = jax.jit(jax.vmap(lambda k: train(rule, pendulum, cfg, key=k)))(keys)
    _, curve = learning_curve(m, 10)
    start, final = curve[:, 0], final_return(m)
    assert np.all(start < -900), start
    assert np.all(final > -600), final


@pytest.mark.parametrize("drift", [None, DPODrift()], ids=["ppo", "dpo"])
def test_ppo_and_dpo_train_on_mountain_car_continuous(drift):
    """A short run on MountainCarContinuous-v0 (1-D actions in [-1, 1]): the agent carries the
    bounds the rollout clips to, losses are finite, the policy moves and observations are counted."""
    task = tasks.make("MountainCarContinuous-v0")
    rule = PPO() if drift is None else PPO(drift=drift)
    cfg = rule.default_config(task).replace(total_steps=16 * 32 * 4)
    state0 = init(rule, task, cfg, key=jax.random.PRNGKey(0))
    assert state0.agent.continuous and state0.agent.action_low == (-1.0,) and state0.agent.action_high == (1.0,)
    state, m = jax.jit(lambda k: train(rule, task, cfg, key=k))(jax.random.PRNGKey(0))
    assert np.all(np.isfinite(np.asarray(m["loss"]))) and int(state.update) == 4
    w0 = np.asarray(state0.agent.policy_head.mean.weight)
    assert not np.allclose(w0, np.asarray(state.agent.policy_head.mean.weight))
    assert float(state.obs_norm.count) == 4 * cfg.steps_per_update
