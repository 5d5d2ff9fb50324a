"""Agent families in LPG: one-hot MLP agents on index observations, per-family optimisers and bandit
arms in the meta-training lifetimes, what a saved rule records per family and how
`LPG.default_config` and the agent loss use it, and a meta-training run stopped by its time
budget."""

from __future__ import annotations

import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from learned_rl import load_rule, save_rule, tasks
from learned_rl._agent import AgentConfig, agent_family, make_agent
from learned_rl.meta import TruncatedMetaGradient
from learned_rl.meta._run import run_meta_train
from learned_rl.rules._lpg import LPG, FamilyArm, LPGNetwork

TINY = dict(lifetimes_per_task=2, num_envs=4, rollout_len=8, lifetime_updates=12, inner_steps=3, learning_rates=(10.0, 20.0), alpha_ys=(0.5,))
RECORDS = {
    "tabular": {"optimizer": "sgd", "learning_rate": 20.0, "alpha_y": 0.5, "max_grad_norm": 0.5, "learning_rates": [10.0, 20.0], "alpha_ys": [0.5, 1.0]},
    "mlp": {"optimizer": "adam", "learning_rate": 3e-4, "alpha_y": 0.1, "max_grad_norm": 1.0, "learning_rates": [1e-4, 3e-4], "alpha_ys": [0.1, 1.0]},
}


def _rule(**kw):
    return LPG(LPGNetwork(8, 4, key=jax.random.PRNGKey(0)), **kw)


def test_mlp_agent_on_one_hot_indices():
    task = tasks.make("gridworld/dense")
    agent = make_agent(task, AgentConfig(torso="mlp", hidden=(16,), activation="relu"), prediction_dim=4, value=False, key=jax.random.PRNGKey(0))
    assert agent_family(agent) == "mlp" and agent.torso.one_hot == task.num_states
    assert agent.torso.layers[0].weight.shape == (16, task.num_states)
    out = jax.vmap(agent)(jnp.arange(3, dtype=jnp.int32))
    assert out.logits.shape == (3, task.num_actions) and out.y_logits.shape == (3, 4)
    # each index reads its own column of the first layer: the features differ between states
    feats = jax.vmap(agent.torso)(jnp.arange(3, dtype=jnp.int32))
    assert not np.allclose(feats[0], feats[1])
    np.testing.assert_allclose(feats[2], jax.nn.relu(agent.torso.layers[0].weight[:, 2] + agent.torso.layers[0].bias), rtol=1e-6)
    # reading the column is the dense layer on the one-hot vector: the same features exactly, and
    # the same gradient to float rounding (a batch with repeated states sums in another order)
    torso = agent.torso
    obs = jnp.asarray([0, 5, 5, 17, task.num_states - 1, 5], jnp.int32)

    def dense(m, o):
        x = jax.nn.one_hot(o, m.one_hot, dtype=jnp.float32)
        for layer in m.layers:
            x = jax.nn.relu(layer(x))
        return x

    assert jnp.array_equal(jax.vmap(torso)(obs), jax.vmap(lambda o: dense(torso, o))(obs))
    w = jax.random.normal(jax.random.PRNGKey(1), (obs.shape[0], 16))
    g_col = eqx.filter_grad(lambda m: jnp.sum(w * jax.vmap(m)(obs)))(torso)
    g_dense = eqx.filter_grad(lambda m: jnp.sum(w * jax.vmap(lambda o: dense(m, o))(obs)))(torso)
    for a, b in zip(jax.tree.leaves(g_col), jax.tree.leaves(g_dense)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert float(jnp.abs(g_col.layers[0].weight[:, 5]).sum()) > 0 and float(jnp.abs(g_col.layers[0].weight[:, 6]).sum()) == 0
    assert agent_family(make_agent(task, AgentConfig(), key=jax.random.PRNGKey(0))) == "tabular"
    assert agent_family(make_agent(tasks.make("Breakout-MinAtar"), AgentConfig(), key=jax.random.PRNGKey(0))) == "cnn"
    with pytest.raises(ValueError, match="cnn"):
        make_agent(task, AgentConfig(torso="cnn"), key=jax.random.PRNGKey(0))


def test_lifetimes_train_each_family_with_its_optimiser_and_arms():
    ts = [tasks.make("chain/short"), tasks.make("chain/distractor")]  # lookup table; MLP (22-bit vectors)
    est = TruncatedMetaGradient(**TINY, neural_learning_rates=(1e-4, 1e-3, 3e-3)).bind(ts)
    prob = est.problem
    assert [prob.family(t) for t in ts] == ["tabular", "mlp"]
    assert prob._train_config(ts[0]).optimizer == "sgd" and prob._train_config(ts[0]).max_grad_norm == 0.5
    assert prob._train_config(ts[1]).optimizer == "adam" and prob._train_config(ts[1]).max_grad_norm == 1.0
    assert prob.arms_for(ts[0]) == [(10.0, 0.5), (20.0, 0.5)]
    assert prob.arms_for(ts[1]) == [(1e-4, 0.5), (1e-3, 0.5), (3e-3, 0.5)]
    rule = _rule()
    state = est.init(rule, ts, key=jax.random.PRNGKey(1))
    assert [b.counts.shape[0] for b in state.bandits] == [2, 3]  # one bandit per task over its family's arms
    for g, t in zip(state.groups, ts):  # every lifetime's optimiser runs at its arm's learning rate
        lrs = np.asarray([lr for lr, _ in prob.arms_for(t)], np.float32)[np.asarray(g.arm)]
        np.testing.assert_allclose(np.asarray(optax.tree_utils.tree_get(g.learner.opt_state, "learning_rate")), lrs)
    # index observations into one-hot MLPs: the same chain becomes an MLP lifetime
    est2 = TruncatedMetaGradient(**TINY, index_torso="mlp").bind(ts[:1])
    assert est2.problem.family(ts[0]) == "mlp" and est2.problem._train_config(ts[0]).agent.torso == "mlp"
    records = prob.family_records(state)
    assert set(records) == {"tabular", "mlp"} and records["mlp"]["optimizer"] == "adam"
    assert records["mlp"]["learning_rate"] in (1e-4, 1e-3, 3e-3) and records["tabular"]["learning_rate"] in (10.0, 20.0)
    with pytest.raises(ValueError, match="index_torso"):
        TruncatedMetaGradient(**TINY, index_torso="cnn")
    with pytest.raises(ValueError, match="neural_learning_rates"):
        TruncatedMetaGradient(**TINY, neural_learning_rates=(0.0,))


def test_task_torsos_mix_families_in_one_run():
    """`task_torsos` gives index-observation tasks their own torso, so one run trains lookup tables
    on some tasks and one-hot MLPs on others, with each family's optimiser and arms."""
    from learned_rl.meta._presets import get_preset

    ts = [tasks.make("chain/short"), tasks.make("chain/long"), tasks.make("chain/distractor")]
    preset = get_preset("cpu", **TINY, task_torsos={"chain/long": "mlp"})
    assert preset.to_json()["task_torsos"] == {"chain/long": "mlp"} and "task_torsos" not in get_preset("cpu").to_json()
    _, est, _ = preset.build(ts, key=jax.random.PRNGKey(0))
    prob = est.problem
    assert [prob.family(t) for t in ts] == ["tabular", "mlp", "mlp"]
    assert [prob._train_config(t).optimizer for t in ts] == ["sgd", "adam", "adam"]
    assert prob._train_config(ts[1]).agent.torso == "mlp" and prob._train_config(ts[0]).agent.torso == "tabular"
    # the override wins over index_torso both ways
    _, est2, _ = get_preset("cpu", **TINY, index_torso="mlp", task_torsos={"chain/short": "tabular"}).build(ts[:2], key=jax.random.PRNGKey(0))
    assert [est2.problem.family(t) for t in ts[:2]] == ["tabular", "mlp"]
    for over, needle in [({"chain/short": "cnn"}, 'map task names to "tabular" or "mlp"'), ({"chain/nope": "mlp"}, "not meta-trained on"),
                         ({"chain/distractor": "tabular"}, "index-observation tasks only")]:
        with pytest.raises(ValueError, match=needle):
            get_preset("cpu", **TINY, task_torsos=over).build(ts, key=jax.random.PRNGKey(0))


def test_rule_records_families_round_trip_and_default_config_uses_them(tmp_path, capsys):
    rule = _rule(learning_rate=20.0, alpha_y=0.5).with_families(RECORDS)
    assert rule.recorded_families == ("tabular", "mlp")
    save_rule(tmp_path / "r.eqx", rule)
    back = load_rule(tmp_path / "r.eqx")
    assert back.families == rule.families and back.config() == rule.config()
    cfg = back.default_config(tasks.make("random_gridworld/small"))  # a recorded neural family
    assert (cfg.optimizer, cfg.learning_rate, cfg.max_grad_norm) == ("adam", 3e-4, 1.0)
    assert capsys.readouterr().err == ""
    tab = back.default_config(tasks.make("gridworld/dense"))
    assert (tab.optimizer, tab.learning_rate) == ("sgd", 20.0)
    # a neural family it never met (CNN): trained as the MLPs it met (optimiser, clipping, lr,
    # α_y), with a one-line notice, once
    cnn = back.default_config(tasks.make("Breakout-MinAtar"))
    back.default_config(tasks.make("Breakout-MinAtar"))
    assert cnn.agent.torso == "cnn" and (cnn.optimizer, cnn.learning_rate, cnn.max_grad_norm) == ("adam", 3e-4, 1.0)
    assert cnn.adam_eps_root > 0 and back.nearest_arm("cnn").family == "mlp" and back.nearest_arm("tabular").family == "tabular"
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("notice:") and "cnn agent as its mlp agents" in err[0] and "tabular/mlp" in err[0]
    agent = make_agent(tasks.make("Breakout-MinAtar"), cnn.agent, prediction_dim=4, value=False, key=jax.random.PRNGKey(0))
    assert back.alpha_y_for(agent) == RECORDS["mlp"]["alpha_y"] != back.alpha_y
    # a rule that met lookup tables only keeps A2C's optimiser on a neural agent, and says so
    from learned_rl.baselines import A2C

    tab_only = _rule(learning_rate=20.0).with_families({"tabular": RECORDS["tabular"]})
    cartpole = tasks.make("CartPole-v1")
    assert tab_only.nearest_arm("mlp") is None
    got, a2c = tab_only.default_config(cartpole), A2C().default_config(cartpole)
    assert (got.optimizer, got.learning_rate, got.num_envs) == (a2c.optimizer, a2c.learning_rate, a2c.num_envs)
    assert "mlp agent with A2C's optimiser" in capsys.readouterr().err
    # a rule saved before families were recorded counts as meta-trained on lookup tables
    old = _rule()
    assert old.recorded_families == ("tabular",) and "families" not in old.config()
    assert LPG.from_config(old.config()).families == ()
    for bad, needle in [({"rnn": RECORDS["mlp"]}, "unknown agent family"), ({"mlp": {**RECORDS["mlp"], "optimizer": "lbfgs"}}, "optimizer"),
                        ({"mlp": {**RECORDS["mlp"], "learning_rate": -1}}, "non-positive"), ({"mlp": {"optimizer": "adam"}}, "numeric"),
                        ({"mlp": {**RECORDS["mlp"], "momentum": 0.9}}, "unknown fields")]:
        with pytest.raises(ValueError, match=needle):
            LPG.from_config({**rule.config(), "families": bad})


def test_default_config_follows_the_agent_a_run_sets(tmp_path, capsys):
    """``--set agent.torso=mlp`` on MinAtar gives an LPG rule's recorded MLP arm (optimiser, lr,
    clipping, regime), not A2C's CNN defaults, and no "never met" notice; A2C keeps its own
    optimiser with the MLP built. The CLI's config.json holds the same values."""
    from learned_rl._cli import main
    from learned_rl._learner import default_config_for
    from learned_rl._registry import make_rule

    rule = _rule(learning_rate=20.0, alpha_y=0.5).with_families(RECORDS)
    breakout = tasks.make("Breakout-MinAtar")
    capsys.readouterr()
    cfg = default_config_for(rule, breakout, {"agent.torso": "mlp", "learning_rate": 1e-2})
    assert cfg.agent.torso == "mlp" and (cfg.optimizer, cfg.learning_rate, cfg.max_grad_norm) == ("adam", 3e-4, 1.0)
    assert capsys.readouterr().err == ""
    cnn = default_config_for(rule, breakout, {"learning_rate": 1e-2})  # no agent field: the family's own (CNN, never met)
    assert cnn.agent.torso == "cnn" and (cnn.optimizer, cnn.learning_rate) == ("adam", 3e-4)  # trained as its MLPs
    capsys.readouterr()
    a2c = default_config_for(make_rule("a2c"), breakout, {"agent.torso": "mlp", "agent.hidden": [32]})
    assert (a2c.agent.torso, a2c.agent.hidden, a2c.learning_rate) == ("mlp", (32,), 5e-4)

    class OldStyle(type(make_rule("a2c"))):  # a rule written before the `agent` argument
        def default_config(self, task):
            return super().default_config(task)
    assert default_config_for(OldStyle(), breakout, {"agent.torso": "mlp"}).agent.torso == "cnn"  # apply_overrides sets it later
    with pytest.raises(ValueError, match="agent.hidden: expected a list"):
        default_config_for(rule, breakout, {"agent.hidden": 3})

    save_rule(tmp_path / "r.eqx", rule)
    out = tmp_path / "run"
    assert main(["train", "--rule", f"lpg:{tmp_path / 'r.eqx'}", "--task", "Breakout-MinAtar", "--set", "agent.torso=mlp",
                 "--steps", "4096", "--seeds", "1", "--no-progress", "--out", str(out)]) == 0
    assert "notice" not in capsys.readouterr().err
    saved = next(iter(json.loads((out / "config.json").read_text())["rules"].values()))
    assert (saved["optimizer"], saved["learning_rate"], saved["agent"]["torso"]) == ("adam", 3e-4, "mlp")


def test_agent_loss_uses_the_agent_familys_alpha_y():
    task = tasks.make("chain/short")
    rule = _rule(alpha_y=0.5).with_families(RECORDS)
    key = jax.random.PRNGKey(0)
    mlp = make_agent(task, AgentConfig(torso="mlp", hidden=(8,)), prediction_dim=4, value=False, key=key)
    table = make_agent(task, AgentConfig(), prediction_dim=4, value=False, key=key)
    assert rule.alpha_y_for(mlp) == 0.1 and rule.alpha_y_for(table) == 0.5
    assert rule.with_arm(alpha_y=0.7).alpha_y_for(mlp) == 0.7  # an explicit α_y applies to every family

    from learned_rl._learner import TrainConfig, init
    from learned_rl._rollout import collect

    st = init(rule, task, TrainConfig(total_steps=64, num_envs=4, rollout_len=8, agent=AgentConfig(torso="mlp", hidden=(8,))), key=key)
    _, traj, _ = collect(st.agent, task.env, st.env_params, st.env, 8, key=key)
    pi_hat, yl = rule.targets(st.agent, traj)
    loss, m = rule.agent_loss(st.agent, traj, pi_hat, yl)
    np.testing.assert_allclose(float(loss), float(m["pg_loss"] + 0.1 * m["kl_y"]), rtol=1e-6)


def test_meta_train_stops_at_its_time_budget_and_saves_family_records(tmp_path):
    out = tmp_path / "run"
    sets = {**TINY, "hidden_size": 8, "prediction_dim": 4, "agent_hidden": [8]}
    meta = run_meta_train("lpg", "chain/short,chain/distractor", steps=10_000, out=out, progress=False, log_every=2,
                          preset_overrides=sets, max_seconds=1e-3)
    assert meta["meta_steps"] == 1  # the budget ran out during the first (compiling) step
    assert (out / "checkpoint.eqx").exists() and (out / "rule.eqx").exists()
    rule = load_rule(out / "rule.eqx")
    assert set(rule.recorded_families) == {"tabular", "mlp"}
    assert rule.family_arm("mlp").optimizer == "adam" and rule.learning_rate in TINY["learning_rates"]
    assert meta["timing"]["compile_and_first_s"] > 0
    # --resume continues it (to 3 meta-steps here)
    meta2 = run_meta_train("lpg", "chain/short,chain/distractor", steps=3, out=out, progress=False, log_every=2, preset_overrides=sets, resume=True)
    assert meta2["meta_steps"] == 3
    rows = (out / "metrics.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["2", "3"] and any(c.startswith("arm_prob/chain/distractor/lr0.0001_") for c in rows[0].split(","))
    assert {"task_grad_norm/chain/short", "task_grad_norm/chain/distractor"} <= set(rows[0].split(","))
    with pytest.raises(ValueError, match="max_seconds"):
        run_meta_train("lpg", "chain/short", out=tmp_path / "x", progress=False, max_seconds=0)


def test_meta_gradient_through_adam_lifetimes_is_finite():
    """An MLP lifetime trained by Adam: the meta-gradient through its K Adam steps stays finite
    (with eps_root = 0 the derivative of √v at v = 0 made it NaN wherever a parameter's gradient
    is exactly zero, and every such lifetime was reset each meta-step)."""
    from learned_rl.meta import MetaTrainConfig
    from learned_rl.meta._meta_train import make_meta_step, meta_init

    ts = [tasks.make("chain/distractor")]
    est = TruncatedMetaGradient(**{**TINY, "lifetime_updates": 50}).bind(ts)
    assert est.problem._train_config(ts[0]).adam_eps_root > 0
    cfg = MetaTrainConfig(steps=2)
    state = meta_init(_rule(), ts, est, cfg, key=jax.random.PRNGKey(1))
    step = make_meta_step(est, cfg)
    for _ in range(2):
        state, m = step(state)
        assert float(m["agent_resets"]) == 0 and int(m["skipped"]) == 0
        assert np.isfinite(float(m["grad_norm"])) and float(m["grad_norm"]) > 0


def test_each_tasks_meta_gradient_norm_is_reported_before_weighting():
    """`task_grad_norm/<task>`: the norm of each task's own meta-gradient, the same whatever the task
    weights; the combined (equal-weight) gradient is their mean, so its norm is at most theirs."""
    from learned_rl.meta import MetaTrainConfig
    from learned_rl.meta._meta_train import make_meta_step, meta_init

    ts = [tasks.make("chain/short"), tasks.make("chain/long")]
    out = {}
    for w in ((), (1.0, 3.0)):
        est = TruncatedMetaGradient(**TINY, task_weights=w).bind(ts)
        cfg = MetaTrainConfig(steps=1)
        state = meta_init(_rule(), ts, est, cfg, key=jax.random.PRNGKey(1))
        _, m = make_meta_step(est, cfg)(state)
        out[w] = {k: float(v) for k, v in m.items() if k.startswith("task_grad_norm/") or k == "grad_norm"}
    plain, weighted = out[()], out[(1.0, 3.0)]
    norms = [plain[f"task_grad_norm/{t.name}"] for t in ts]
    assert all(np.isfinite(n) and n > 0 for n in norms)
    assert all(abs(plain[k] - weighted[k]) <= 1e-6 * plain[k] for k in plain if k != "grad_norm")
    assert plain["grad_norm"] <= np.mean(norms) * (1 + 1e-5) and plain["grad_norm"] != weighted["grad_norm"]
