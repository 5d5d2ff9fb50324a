"""The shared agent, rollout, returns and training loop."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from learned_rl import tasks
from learned_rl.baselines import A2C, PPO
from learned_rl import TrainConfig, collect, final_return, gae, learning_curve, make_agent, reset_envs, train
from learned_rl._experiment import run_seeds, seed_keys
from learned_rl.rules import ClipDrift, mirror_objective


def test_gae_matches_hand_computation():
    gamma, lam = 0.9, 0.8
    r = jnp.array([[1.0], [2.0], [3.0]])
    v = jnp.array([[0.5], [0.4], [0.3]])
    nv = jnp.array([[0.4], [0.0], [0.7]])  # step 1 terminated: its next value is already 0
    done = jnp.array([[False], [True], [False]])
    adv = np.asarray(gae(r, v, nv, done, gamma, lam))[:, 0]
    d2 = 3.0 + 0.9 * 0.7 - 0.3
    d1 = 2.0 + 0.0 - 0.4  # the recursion is cut after a done step
    d0 = 1.0 + 0.9 * 0.4 - 0.5
    np.testing.assert_allclose(adv, [d0 + gamma * lam * d1, d1, d2], rtol=1e-6)


def test_gae_bootstraps_on_truncation_not_termination():
    r = jnp.zeros((1, 2))
    v = jnp.zeros((1, 2))
    done = jnp.array([[True, True]])
    # env 0 truncated (next value kept), env 1 terminated (next value zeroed by the caller)
    nv = jnp.array([[5.0, 0.0]])
    adv = gae(r, v, nv, done, 0.5, 1.0)
    np.testing.assert_allclose(adv, [[2.5, 0.0]])


def test_rollout_next_obs_is_pre_reset_observation():
    task = tasks.make("CartPole-v1")
    agent = make_agent(task, key=jax.random.PRNGKey(0))
    carry = reset_envs(task.env, task.default_params, 8, key=jax.random.PRNGKey(1))
    carry, traj, stats = jax.jit(lambda c: collect(agent, task.env, task.default_params, c, 200, key=jax.random.PRNGKey(2)))(carry)
    assert traj.obs.shape == (200, 8, 4) and traj.action.shape == (200, 8)
    done = np.asarray(traj.done)
    assert done.sum() > 0 and stats.count == done.sum()
    # where not done, next_obs[t] == obs[t+1]; where done, obs[t+1] is a fresh reset
    same = np.all(np.isclose(traj.next_obs[:-1], traj.obs[1:]), axis=-1)
    assert np.all(same[~done[:-1]])
    assert not np.any(same[done[:-1]])
    # a random CartPole policy scores about 20 per episode
    assert 10 < float(stats.return_sum / stats.count) < 40


def test_clip_drift_is_ppo_clip_objective():
    key1, key2 = jax.random.split(jax.random.PRNGKey(0))
    log_r = jax.random.normal(key1, (1000,)) * 0.5
    adv = jax.random.normal(key2, (1000,))
    r = jnp.exp(log_r)
    ppo = jnp.mean(jnp.minimum(r * adv, jnp.clip(r, 0.8, 1.2) * adv))
    np.testing.assert_allclose(mirror_objective(ClipDrift(0.2), log_r, adv), ppo, rtol=1e-6)
    grid_r = jnp.linspace(0.2, 3.0, 57)[:, None]
    grid_a = jnp.linspace(-3, 3, 13)[None, :]
    f = ClipDrift(0.2)(jnp.log(grid_r), grid_a)
    assert jnp.all(f >= 0)
    np.testing.assert_allclose(ClipDrift(0.2)(jnp.zeros(13), grid_a[0]), 0.0)
    dfdr = jax.vmap(jax.grad(lambda r, a: ClipDrift(0.2)(jnp.log(r), a), argnums=0), (None, 0))(1.0, grid_a[0])
    np.testing.assert_allclose(dfdr, 0.0)


def test_agent_gradients_are_nonzero_and_tabular_is_lookup():
    task = tasks.make("gridworld/dense")
    agent = make_agent(task, prediction_dim=8, key=jax.random.PRNGKey(0))
    out = agent(jnp.int32(5))
    assert out.logits.shape == (task.num_actions,) and out.y_logits.shape == (8,) and out.value.shape == ()
    assert agent.policy_head.weight.shape == (task.num_states, task.num_actions)
    g = eqx.filter_grad(lambda a: a(jnp.int32(5)).logits[0] + a(jnp.int32(5)).value)(agent)
    assert float(jnp.abs(g.policy_head.weight).sum()) > 0
    # only row 5 of the table gets gradient
    assert float(jnp.abs(g.policy_head.weight[jnp.arange(task.num_states) != 5]).sum()) == 0.0


def test_same_seed_same_metrics_and_vmap_matches_single_runs():
    # a tabular task keeps this cheap (MLP agents under vmap: test_orthogonal_init_..._no_lapack_call)
    task = tasks.make("gridworld/sparse")
    rule = A2C()
    cfg = rule.default_config(task).replace(total_steps=64 * 20 * 30)
    a = run_seeds(rule, task, cfg, num_seeds=2, seed=7, progress=False)
    b = run_seeds(rule, task, cfg, num_seeds=2, seed=7, progress=False)
    for k in a.metrics:
        np.testing.assert_array_equal(a.metrics[k], b.metrics[k])
    c = run_seeds(rule, task, cfg, num_seeds=2, seed=8, progress=False)
    assert not np.array_equal(a.metrics["loss"], c.metrics["loss"])
    # seed index 1 of the vmapped, chunked run == one whole-run jitted `train` with that key
    key = seed_keys(7, 2)[1]
    _, m = jax.jit(lambda k: train(rule, task, cfg, key=k))(key)
    np.testing.assert_allclose(a.metrics["loss"][1], m["loss"], rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(a.metrics["env_steps"][1], m["env_steps"])


def test_ppo_solves_cartpole_within_500k_steps():
    task = tasks.make("CartPole-v1")
    rule = PPO()
    cfg = rule.default_config(task)
    assert cfg.total_steps == 500_000 and cfg.num_envs == 4 and cfg.rollout_len == 128
    _, m = jax.jit(lambda k: train(rule, task, cfg, key=k))(jax.random.PRNGKey(0))
    assert final_return(m) >= 475
    steps, curve = learning_curve(m, 10)
    assert curve[0] < 200  # it really learned, from a poor start


def test_train_config_rejects_bad_values():
    for bad in [dict(total_steps=0), dict(num_envs=-1), dict(learning_rate=0.0), dict(optimizer="lamb"), dict(total_steps=10, num_envs=4, rollout_len=8), dict(total_steps=10**14, num_envs=1, rollout_len=1)]:
        with pytest.raises(ValueError):
            TrainConfig(**bad)


def test_a2c_clearly_beats_random_policy_on_gridworld_dense():
    task = tasks.make("gridworld/dense")
    rule = A2C()
    cfg = rule.default_config(task).replace(total_steps=64 * 20 * 250)
    res = run_seeds(rule, task, cfg, num_seeds=2, seed=0, progress=False)
    learned = final_return(res.metrics)

    def random_policy_return(key):
        # the untrained tabular agent (zero tables) acts uniformly at random; same level as `init`
        params = task.sample_params(jax.random.split(key, 4)[0])
        agent = make_agent(task, key=key)
        carry = reset_envs(task.env, params, 64, key=key)
        stats = collect(agent, task.env, params, carry, 2000, key=key)[2]
        return stats.return_sum / stats.count

    rnd = np.asarray(jax.jit(jax.vmap(random_policy_return))(seed_keys(0, 2)))
    assert np.all(learned > rnd + 10), (learned, rnd)


@pytest.mark.parametrize("name", [pytest.param("random_gridworld/small", marks=pytest.mark.slow), "chain/distractor", pytest.param("Breakout-MinAtar", marks=pytest.mark.slow)])  # MinAtar 100 s, random grid 15 s on 2 cores (the CLI family tests train there)
def test_both_baselines_run_on_every_observation_kind(name):
    """Image observations (MLP on flattened grids), vector chains (MLP) and MinAtar (CNN)."""
    task = tasks.make(name)
    for rule in (A2C(), PPO()):
        cfg = rule.default_config(task).replace(total_steps=rule.default_config(task).steps_per_update * 3)
        _, m = jax.jit(lambda k: train(rule, task, cfg, key=k))(jax.random.PRNGKey(0))
        assert m["loss"].shape == (3,) and np.all(np.isfinite(m["loss"]))


def test_training_compiles_once_for_all_chunks(monkeypatch):
    import learned_rl._experiment as ex
    import learned_rl._learner as learner

    traces = []
    real = learner.update_step_with_trajectory  # the body of the one update loop, `learner.run`

    def counting(*a, **k):
        traces.append(1)
        return real(*a, **k)

    monkeypatch.setattr(learner, "update_step_with_trajectory", counting)
    task = tasks.make("chain/short")
    rule = A2C()
    cfg = rule.default_config(task).replace(total_steps=64 * 20 * 40)
    res = ex.run_seeds(rule, task, cfg, num_seeds=2, progress=False)
    assert res.metrics["loss"].shape == (2, 40)  # 20 chunks of 2 updates ran
    assert len(traces) <= 2, f"update step traced {len(traces)} times for 20 chunks"


def test_orthogonal_init_matches_jax_and_vmapped_training_has_no_lapack_call():
    # the same matrices as jax's initializer (same draw, same sign convention), orthogonal rows/cols
    from learned_rl._agent import orthogonal_init

    for shape in [(64, 4), (4, 64), (64, 64), (7, 3), (1, 64)]:
        k = jax.random.PRNGKey(3)
        w = np.asarray(orthogonal_init(k, shape, 1.5))
        np.testing.assert_allclose(w, np.asarray(jax.nn.initializers.orthogonal(1.5)(k, shape)), atol=1e-5)
        small = min(shape)
        gram = w @ w.T if shape[0] == small else w.T @ w
        np.testing.assert_allclose(gram, 2.25 * np.eye(small), atol=1e-5)
    # several seeds of an MLP/CNN agent in one program: a batched LAPACK QR here used to hang the
    # CPU runtime on 2 cores (see `learned_rl._agent._householder_q`); no LAPACK call may remain
    for name in ("CartPole-v1", "Breakout-MinAtar"):
        task = tasks.make(name)
        rule = PPO()
        cfg = rule.default_config(task)
        cfg = cfg.replace(total_steps=2 * cfg.num_envs * cfg.rollout_len)
        keys = jax.random.split(jax.random.PRNGKey(0), 4)
        hlo = jax.jit(jax.vmap(lambda k: train(rule, task, cfg, key=k)[1])).lower(keys).as_text()
        assert "lapack" not in hlo.lower() and "geqrf" not in hlo.lower(), name


def test_a_per_run_learning_rate_is_the_config_learning_rate_and_vmaps():
    """`init(..., learning_rate=lr)` (how a bandit arm sets a lifetime's rate, traced) trains exactly
    as a config with that rate, and a vmapped batch of rates matches the single runs."""
    from learned_rl._learner import init as learner_init, run as learner_run
    task = tasks.make("gridworld/dense")
    rule = A2C()
    cfg = TrainConfig(total_steps=4 * 8 * 3, num_envs=4, rollout_len=8, optimizer="sgd", learning_rate=1.0)
    key = jax.random.PRNGKey(3)

    def final_agent(c, lr=None):
        s = learner_init(rule, task, c, key=key, learning_rate=lr)
        return eqx.filter(learner_run(rule, task, c, s, 3)[0].agent, eqx.is_inexact_array)

    by_config = [final_agent(cfg.replace(learning_rate=lr)) for lr in (0.5, 3.0)]
    by_run = [final_agent(cfg, jnp.float32(lr)) for lr in (0.5, 3.0)]
    batched = eqx.filter_jit(jax.vmap(lambda lr: final_agent(cfg, lr)))(jnp.array([0.5, 3.0], jnp.float32))
    for i in range(2):
        for a, b, c in zip(jax.tree.leaves(by_config[i]), jax.tree.leaves(by_run[i]), jax.tree.leaves(batched)):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
            np.testing.assert_allclose(a, c[i], rtol=1e-5, atol=1e-6)
    assert not all(np.allclose(a, b) for a, b in zip(jax.tree.leaves(by_config[0]), jax.tree.leaves(by_config[1])))
    # annealed: a per-run rate anneals from itself, exactly as a config with that rate does
    ann = cfg.replace(anneal_lr=True)
    for a, b in zip(jax.tree.leaves(final_agent(ann.replace(learning_rate=3.0))), jax.tree.leaves(final_agent(ann, jnp.float32(3.0)))):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert not all(np.allclose(a, b) for a, b in zip(jax.tree.leaves(final_agent(ann, jnp.float32(3.0))), jax.tree.leaves(by_run[1])))


def test_uniform_policy_runs_through_collect():
    """The random-policy baseline is `collect` with a `UniformPolicy`: every action appears, the
    log-probabilities are the uniform ones, and on a box the actions stay inside it."""
    from learned_rl import UniformPolicy
    for name in ("gridworld/dense", "Pendulum-v1"):
        task = tasks.make(name)
        pol = UniformPolicy.for_task(task)
        carry = reset_envs(task.env, task.default_params, 8, key=jax.random.PRNGKey(0))
        _, traj, stats = collect(pol, task.env, task.default_params, carry, 200, key=jax.random.PRNGKey(1))
        a = np.asarray(traj.action)
        if task.continuous_actions:
            low, high = pol.action_low[0], pol.action_high[0]
            assert a.min() >= low and a.max() < high and a.std() > 0.8 * (high - low) / np.sqrt(12)  # a uniform on [l, h) has std (h − l)/√12
            np.testing.assert_allclose(traj.log_prob, -np.log(high - low) * task.num_actions, rtol=1e-6)
        else:
            assert sorted(np.unique(a)) == list(range(task.num_actions))
            np.testing.assert_allclose(traj.log_prob, -np.log(task.num_actions), rtol=1e-6)
        assert float(stats.count) > 0


def test_cnn_torso_is_the_convolution_it_holds():
    """The MinAtar torso computes its 3×3 convolution as one matrix product over shifted frames;
    on a vmapped batch of seeds and observations it gives the numbers of `eqx.nn.Conv2d` itself,
    forward and per parameter (conv weight, conv bias, dense), to float rounding."""
    from learned_rl._agent import CNNTorso

    def reference(t, obs):  # the layer as equinox computes it
        x = jax.nn.relu(t.conv(jnp.transpose(obs.astype(jnp.float32), (2, 0, 1))))
        return jax.nn.relu(t.dense(jnp.ravel(x)))

    torsos = jax.vmap(lambda k: CNNTorso((10, 10, 4), 16, 32, key=k))(jax.random.split(jax.random.PRNGKey(0), 2))
    obs = jax.random.bernoulli(jax.random.PRNGKey(1), 0.2, (2, 8, 10, 10, 4)).astype(jnp.float32)
    ours = jax.vmap(lambda t, o: jax.vmap(t)(o))(torsos, obs)
    ref = jax.vmap(lambda t, o: jax.vmap(lambda x: reference(t, x))(o))(torsos, obs)
    assert ours.shape == (2, 8, 32) and float(jnp.max(jnp.abs(ref))) > 0.1
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-6)

    def grads(f):
        loss = lambda t, o: jnp.sum(jnp.sin(jax.vmap(lambda x: f(t, x))(o)))
        return jax.vmap(eqx.filter_grad(loss))(torsos, obs)

    g, g_ref = grads(lambda t, x: t(x)), grads(reference)
    for part in (lambda t: t.conv.weight, lambda t: t.conv.bias, lambda t: t.dense.weight, lambda t: t.dense.bias):
        assert float(jnp.max(jnp.abs(part(g_ref)))) > 1e-3
        np.testing.assert_allclose(part(g), part(g_ref), rtol=1e-4, atol=1e-6)
