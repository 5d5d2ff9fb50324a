"""Brax tasks behind the gymnax protocol: names and options, time-limit truncation with
bootstrapping from the pre-reset observation, and PPO/DPO updates on Brax trajectories.

Compiling a brax environment step takes 20–60 s on 2 CPU cores, so the fast tests compile one
(`brax/inverted_pendulum`, one `collect`) and everything else is marked slow."""

import equinox as eqx
import jax
import numpy as np
import pytest

from learned_rl import tasks
from learned_rl.baselines import PPO
from learned_rl import collect
from learned_rl._learner import init, make_optimizer, update_step
from learned_rl._registry import make_rule
from learned_rl.rules import DPODrift
from learned_rl.tasks.brax_tasks import BRAX_DEFAULT_BACKEND, BRAX_ENVS, parse_name

EP_LEN = 15  # a fresh agent drops the pole after 10–50 steps, so both kinds of episode end occur
T = 30


def test_names_options_and_errors():
    assert tasks.resolve("brax") == [f"brax/{e}" for e in BRAX_ENVS]
    assert set(tasks.resolve("brax")) <= set(tasks.list_tasks())
    assert len(BRAX_ENVS) == 10 and set(BRAX_DEFAULT_BACKEND) == set(BRAX_ENVS)
    assert parse_name("brax/hopper?backend=positional&episode_length=7") == (
        "hopper", {"backend": "positional", "episode_length": 7}
    )
    t = tasks.make("brax/reacher?backend=positional&episode_length=7")
    assert t.family == "brax" and t.continuous_actions and t.obs_kind == "vector"
    assert t.env.backend == "positional" and t.env.episode_length == 7
    assert t.obs_shape == (11,) and t.num_actions == 2 and t.env.observation_size == 11
    assert tasks.make("brax/reacher", backend="generalized").env.backend == "generalized"
    assert tasks.make("brax/reacher").env.backend == BRAX_DEFAULT_BACKEND["reacher"]
    with pytest.raises(ValueError, match="Did you mean: brax/hopper"):
        tasks.make("brax/hoper")
    with pytest.raises(ValueError, match="unknown brax backend 'warp'"):
        tasks.make("brax/hopper", backend="warp")
    with pytest.raises(ValueError, match="swimmer only supports the generalized"):
        tasks.make("brax/swimmer?backend=spring")
    with pytest.raises(ValueError, match="episode_length"):
        tasks.make("brax/hopper", episode_length=0)
    with pytest.raises(ValueError, match="key=value"):
        tasks.make("brax/hopper?spring")


@pytest.fixture(scope="module")
def pendulum_rollout():
    """16 inverted pendulums with a 15-step time limit, 30 steps of a fresh PPO agent (with the
    Brax defaults: observation and reward normalisation), as one compiled `collect`."""
    task = tasks.make("brax/inverted_pendulum", episode_length=EP_LEN)
    rule = PPO()
    cfg = rule.default_config(task).replace(num_envs=16, rollout_len=T, total_steps=16 * T * 10)
    state = init(rule, task, cfg, key=jax.random.PRNGKey(0))
    carry, traj, stats = eqx.filter_jit(
        lambda s: collect(s.agent, task.env, s.env_params, s.env, T, key=jax.random.PRNGKey(1))
    )(state)
    return task, rule, cfg, state, carry, traj, stats


def test_brax_truncation_and_bootstrapping(pendulum_rollout):
    task, rule, cfg, state, carry, traj, stats = pendulum_rollout
    term, trunc = np.asarray(traj.terminated), np.asarray(traj.truncated)
    obs, next_obs = np.asarray(traj.obs), np.asarray(traj.next_obs)
    assert traj.action.shape == (T, 16, 1) and obs.shape == (T, 16, 4)
    assert not np.any(term & trunc)
    # the time limit: an episode is truncated exactly when it reaches EP_LEN steps without falling
    length = np.zeros(16, int)
    for t in range(T):
        length += 1
        np.testing.assert_array_equal(trunc[t], (length == EP_LEN) & ~term[t])
        length[term[t] | trunc[t]] = 0
    assert trunc.sum() > 0 and term.sum() > 0  # both kinds of episode end happen in this rollout
    # next_obs is the true next observation: the next obs where the episode goes on, and the
    # pre-reset observation (not the reset one) where it ended
    done = term | trunc
    same = np.all(np.isclose(next_obs[:-1], obs[1:]), axis=-1)
    np.testing.assert_array_equal(same, ~done[:-1])
    # bootstrapping: with λ = 0 the advantage is r + γ·V(next_obs) − V(obs) on truncation and
    # r − V(obs) on termination
    r0 = PPO(gae_lambda=0.0)
    batch = eqx.filter_jit(r0._batch)(state.agent, traj)
    adv = np.asarray(batch["adv"]).reshape(T, 16)
    v = np.asarray(jax.vmap(jax.vmap(state.agent.value))(traj.obs))
    v_next = np.asarray(jax.vmap(jax.vmap(state.agent.value))(traj.next_obs))
    rew = np.asarray(traj.reward)
    want = rew + 0.99 * v_next * (1 - term) - v
    np.testing.assert_allclose(adv, want, rtol=1e-4, atol=1e-5)
    assert np.any(np.abs(v_next[trunc]) > 1e-6)  # the bootstrap term is really there
    # episode statistics use raw rewards (inverted pendulum: +1 per step)
    assert float(stats.count) == done.sum()
    assert float(stats.return_sum) == pytest.approx(float(stats.length_sum))
    # the observation normaliser has seen this rollout
    assert float(carry.obs_norm.count) == T * 16


@pytest.mark.parametrize("rule_name", ["ppo", pytest.param("dpo", marks=pytest.mark.slow)])
def test_ppo_and_dpo_updates_on_brax_trajectories(pendulum_rollout, rule_name):
    task, _, cfg, state, carry, traj, _ = pendulum_rollout
    rule = make_rule(rule_name)
    opt = make_optimizer(cfg, rule.num_epochs * rule.num_minibatches)

    @eqx.filter_jit
    def three_updates(agent, opt_state):
        def body(carry, k):
            agent, opt_state = carry
            agent, opt_state, m = rule.update(agent, opt_state, opt, traj, key=k)
            return (agent, opt_state), m["loss"]

        (agent, _), losses = jax.lax.scan(body, (agent, opt_state), jax.random.split(jax.random.PRNGKey(0), 3))
        return agent, losses

    agent, losses = three_updates(state.agent, state.opt_state)
    assert np.all(np.isfinite(np.asarray(losses)))
    assert not np.allclose(np.asarray(agent.policy_head.log_std), np.asarray(state.agent.policy_head.log_std)) or \
        not np.allclose(np.asarray(agent.policy_head.mean.weight), np.asarray(state.agent.policy_head.mean.weight))


@pytest.mark.slow
@pytest.mark.parametrize("drift", [None, DPODrift()], ids=["ppo", "dpo"])
def test_hopper_training_steps_with_default_config(drift):
    task = tasks.make("brax/hopper")
    assert task.env.backend == BRAX_DEFAULT_BACKEND["hopper"] and task.env.episode_length == 1000
    rule = PPO() if drift is None else PPO(drift=drift)
    cfg = rule.default_config(task)
    assert cfg.normalize_obs and cfg.normalize_reward
    state = init(rule, task, cfg, key=jax.random.PRNGKey(0))
    run = eqx.filter_jit(
        lambda s: jax.lax.scan(lambda s, _: update_step(rule, task, cfg, s), s, None, length=3)
    )
    state, m = run(state)
    assert np.all(np.isfinite(np.asarray(m["loss"])))
    assert int(state.update) == 3 and float(state.obs_norm.count) == 3 * cfg.steps_per_update
    assert np.isfinite(np.asarray(state.obs_norm.var)).all()
