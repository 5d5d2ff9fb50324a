"""Transfer suites, statistics helpers, analysis tools and the demo's code path (tiny budgets)."""

from __future__ import annotations

import json
import math

import jax
import numpy as np
import pytest

from learned_rl import tasks
from learned_rl._cli import main
from learned_rl._stats import iqm, normalized_score, stderr, stratified_bootstrap_ci


# ----------------------------------------------------------------------------- statistics


def test_iqm_by_hand():
    # 8 values: drop 2 from each end, mean of the middle 4
    assert iqm([10, 1, 2, 3, 4, 5, 6, 100]) == pytest.approx((3 + 4 + 5 + 6) / 4)
    # 5 values: drop 1 from each end
    assert iqm([5, 1, 3, 2, 4]) == pytest.approx(3.0)
    # fewer than 4 values: plain mean
    assert iqm([1.0, 2.0, 6.0]) == pytest.approx(3.0)
    with pytest.raises(ValueError):
        iqm([1.0, float("nan"), 2.0, 3.0])
    with pytest.raises(ValueError):
        iqm([])


def test_stderr_and_normalized_score_by_hand():
    assert stderr([1.0, 2.0, 3.0, 4.0]) == pytest.approx(np.std([1, 2, 3, 4], ddof=1) / 2.0)
    assert stderr([3.0]) == 0.0
    np.testing.assert_allclose(normalized_score([2.0, 4.0, 6.0], low=2.0, high=6.0), [0.0, 0.5, 1.0])
    with pytest.raises(ValueError, match="coincide"):
        normalized_score([1.0], low=3.0, high=3.0)


def test_stratified_bootstrap_ci():
    # constant groups: every resample gives the same statistic
    est, lo, hi = stratified_bootstrap_ci([[1.0, 1.0], [1.0, 1.0, 1.0]], num_resamples=50)
    assert est == lo == hi == 1.0
    # the interval contains the estimate, is ordered, and is reproducible with the seed
    groups = [[0.1, 0.5, 0.9], [1.0, 1.2, 0.8, 1.1], [0.0, 0.3]]
    a = stratified_bootstrap_ci(groups, num_resamples=500, seed=3)
    b = stratified_bootstrap_ci(groups, num_resamples=500, seed=3)
    assert a == b
    est, lo, hi = a
    assert lo <= est <= hi and lo < hi
    assert est == pytest.approx(iqm(np.concatenate(groups)))
    # stratified: a resample never mixes groups, so with one distinct value per group the
    # bootstrap distribution of the mean is a single point
    est, lo, hi = stratified_bootstrap_ci([[2.0] * 3, [4.0] * 3], statistic=np.mean, num_resamples=100)
    assert lo == hi == est == 3.0
    with pytest.raises(ValueError):
        stratified_bootstrap_ci([[1.0], []])


def test_random_policy_returns_reproducible_and_below_optimum():
    """Random-policy returns (the 0 of the A2C normalisation) are finite, reproducible with the key,
    and below each level's optimal return."""
    from learned_rl._transfer import random_policy_returns

    task = tasks.make("chain/short")
    params = jax.vmap(task.sample_params)(jax.random.split(jax.random.PRNGKey(0), 3))
    r1 = random_policy_returns(task, params, num_envs=16, num_steps=400, key=jax.random.PRNGKey(1))
    r2 = random_policy_returns(task, params, num_envs=16, num_steps=400, key=jax.random.PRNGKey(1))
    np.testing.assert_array_equal(r1, r2)
    assert r1.shape == (3,) and np.all(np.isfinite(r1))
    opt = np.asarray([task.optimal_return(jax.tree.map(lambda x: x[i], params)) for i in range(3)])
    assert np.all(r1 < opt)


# ----------------------------------------------------------------------------- transfer / analyse / demo


def test_transfer_writes_wellformed_files(tmp_path):
    out = tmp_path / "tr"
    rc = main(["transfer", "--rule", "lpg:lpg_tabular", "--suite", "chain/short", "--seeds", "2", "--steps", "6400", "--out", str(out), "--no-progress"])
    assert rc == 0
    report = json.loads((out / "transfer.json").read_text())
    assert report["rule"] == "lpg:lpg_tabular" and set(report["tasks"]) == {"chain/short"}
    e = report["tasks"]["chain/short"]
    for k in ("rule_return", "a2c_return", "random_return", "env_steps"):
        assert math.isfinite(e[k])
    if e["normalized"] is not None:
        s = normalized_score(json.loads((out / "chain_short" / "summary.json").read_text())["results"]["lpg:lpg_tabular"]["final_returns"], e["random_return"], e["a2c_return"])
        assert e["normalized"] == pytest.approx(float(np.mean(s)))
        assert report["aggregate"]["ci95"][0] <= report["aggregate"]["iqm"] <= report["aggregate"]["ci95"][1]
    assert (out / "transfer.md").read_text().startswith("# Transfer")
    assert (out / "transfer.png").stat().st_size > 0
    assert (out / "chain_short" / "curves.png").exists()


@pytest.mark.parametrize(
    "argv, msg",
    [
        (["transfer", "--rule", "lpg:no_such_rule", "--suite", "chain/short"], "no_such_rule"),
        (["transfer", "--rule", "lpg:lpg_tabular", "--suite", "no-such-suite"], "Unknown task"),
        (["transfer", "--rule", "a2c", "--suite", "chain/short"], "a2c"),
        (["transfer", "--rule", "lpg:lpg_tabular", "--suite", "chain/short", "--seeds", "1"], "2 seeds"),
        (["analyse", "predictions", "--rule", "a2c"], "no prediction vector"),
        (["analyse", "predictions", "--rule", "lpg:lpg_tabular", "--task", "CartPole-v1"], "tabular"),
        (["analyse", "drift", "--rules", "ppo,a2c"], "no drift"),
        (["demo", "--rule", "lpg:missing.eqx"], "missing.eqx"),
    ],
)
def test_bad_input_one_line_error_nothing_written(tmp_path, capsys, argv, msg):
    out = tmp_path / "out"
    rc = main(argv + ["--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("error:") and len(err.strip().splitlines()) == 1 and msg in err
    assert not out.exists()


def test_corrupt_rule_file_is_rejected(tmp_path, capsys):
    bad = tmp_path / "rule.eqx"
    bad.write_bytes(b"not a checkpoint at all")
    rc = main(["transfer", "--rule", f"lpg:{bad}", "--suite", "chain/short", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and str(bad) in err and not (tmp_path / "o").exists()


def test_drift_analysis(tmp_path):
    from learned_rl._analysis import drift_curves

    data = drift_curves(["ppo", "dpo"], out=tmp_path)
    r = np.asarray(data["ratio"])
    for name in ("ppo", "dpo"):
        for a, f in data["drift"][name].items():
            f = np.asarray(f)
            assert np.all(f >= -1e-7)  # a drift is non-negative
            assert abs(f[np.argmin(abs(r - 1.0))]) < 1e-6  # and zero at r = 1
    # PPO-clip with A = 1 at r = 2: f = (r − (1 + ε))·A = 0.8
    assert np.asarray(data["drift"]["ppo"]["1.0"])[-1] == pytest.approx(0.8, abs=1e-5)
    assert (tmp_path / "drift.png").stat().st_size > 0


def test_policy_state_values_on_a_chain_policy():
    """Monte-Carlo values of a fixed (uniform) policy are finite exactly where states were
    visited; the R² helper gives 1 for an exact linear relation and 0 for a constant feature."""
    from learned_rl._agent import AgentConfig, make_agent
    from learned_rl._analysis import _linear_r2, policy_state_values

    task = tasks.make("gridworld/dense")
    agent = make_agent(task, AgentConfig(torso="tabular"), prediction_dim=4, value=False, key=jax.random.PRNGKey(0))
    v, n = policy_state_values(agent, task, task.default_params, gamma=0.9, num_envs=8, num_steps=300, key=jax.random.PRNGKey(0))
    assert v.shape == (task.num_states,) and np.all(np.isfinite(v[n > 0])) and np.all(np.isnan(v[n == 0]))
    # R² of an exact linear relation is 1; of a constant feature is 0
    X = np.random.default_rng(0).normal(size=(40, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 3.0
    assert _linear_r2(X, y)[0] == pytest.approx(1.0) and _linear_r2(X, y)[1] == pytest.approx(1.0)
    assert _linear_r2(np.ones((40, 1)), y)[0] == pytest.approx(0.0, abs=1e-9)


def test_demo_code_path(tmp_path, capsys):
    out = tmp_path / "demo"
    rc = main(["demo", "--steps", "6400", "--seeds", "2", "--out", str(out), "--no-progress"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "lpg:lpg_tabular" in text and "a2c" in text
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["results"]) == {"lpg:lpg_tabular", "a2c"}
    assert (out / "curves.png").exists() and (out / "results.md").exists()


# ----------------------------------------------------------------------------- hyperparameters chosen on validation tasks


def test_grid_scores_by_hand():
    from learned_rl._transfer import grid_scores

    means = np.array([[1.0, 3.0, 2.0], [10.0, 10.0, 10.0], [np.nan, 0.0, 4.0]])
    # task 1 scaled 0, 1, .5; task 2 ties (.5 each); task 3: NaN is the worst (0), then 0, 1
    assert grid_scores(means) == pytest.approx([(0 + 0.5 + 0) / 3, (1 + 0.5 + 0) / 3, (0.5 + 0.5 + 1) / 3])


def test_transfer_chooses_on_validation_tasks_then_runs_the_test_tasks_with_the_choice(tmp_path):
    """A learning rate too small to move a lookup table in 6,400 steps against a working one: the
    protocol must pick the working one on the validation task (listed second, so neither the first
    point nor a tie decides), and the test run must use it, A2C keeping its defaults. A fixed
    `--set` reaches every run, validation and test, the rule's and A2C's."""
    from learned_rl import make_rule

    out = tmp_path / "tr"
    rc = main(["transfer", "--rule", "lpg:lpg_tabular", "--suite", "chain/long", "--validate", "chain/short", "--grid", "learning_rate=0.01,10",
               "--seeds", "2", "--steps", "6400", "--out", str(out), "--no-progress", "--set", "max_grad_norm=1.0"])
    assert rc == 0
    report = json.loads((out / "transfer.json").read_text())
    val = report["validation"]
    assert val["tasks"] == ["chain/short"] and val["seed"] == 1 and val["seeds"] == 2 and not val["all_tied"]
    sweep = json.loads((out / "validation" / "chain_short" / "sweep.json").read_text())
    returns = [p["final_return_mean"] for p in sweep["points"]]
    assert returns[1] > returns[0] + 0.5, returns  # the working rate learns the short chain, the tiny one does not
    assert val["chosen"] == {"learning_rate": 10.0} and [p["score"] for p in val["points"]] == [0.0, 1.0]
    assert abs(val["random_return"]["chain/short"][0]) < 0.2  # the chain's random policy: about 0
    assert [p["beats_random"]["chain/short"] for p in val["points"]] == [False, True] and val["chosen_beats_random_on"] == ["chain/short"]
    config = json.loads((out / "chain_long" / "config.json").read_text())
    assert config["tuned"] == {"lpg:lpg_tabular": {"learning_rate": 10.0}}
    assert config["rules"]["lpg:lpg_tabular"]["learning_rate"] == 10.0
    a2c_default = make_rule("a2c").default_config(tasks.make("chain/long")).learning_rate
    assert config["rules"]["a2c"]["learning_rate"] == a2c_default
    assert config["rules"]["a2c"]["max_grad_norm"] == config["rules"]["lpg:lpg_tabular"]["max_grad_norm"] == 1.0
    assert json.loads((out / "validation" / "chain_short" / "config.json").read_text())["config"]["max_grad_norm"] == 1.0
    assert report["sets"] == {"max_grad_norm": 1.0}
    md = (out / "transfer.md").read_text()
    assert "Hyperparameters chosen on validation tasks: learning_rate = 10" in md and "(chosen)" in md


@pytest.mark.parametrize(
    "extra, msg",
    [
        (["--validate", "chain/short", "--grid", "learning_rate=1,10"], "both a validation and a test task"),
        (["--validate", "chain/long"], "needs both"),
        (["--grid", "learning_rate=1,10"], "needs both"),
        (["--validate", "chain/long", "--grid", "no_such_field=1,2"], "no_such_field"),
        (["--validate", "chain/long", "--grid", "learning_rate=1,x"], "--grid learning_rate"),
        (["--validate", "chain/long", "--grid", "learning_rate=1,10", "--validation-seed", "0"], "validation seed"),
        (["--validate", "no/such_task", "--grid", "learning_rate=1,10"], "Unknown task"),
        (["--set", "bogus=1"], "neither lpg:lpg_tabular nor a2c nor their TrainConfig has the fields ['bogus']"),
        (["--set", "agent.hidden=[0]"], "agent.hidden: expected a list of positive integers"),
    ],
)
def test_transfer_validation_bad_input_one_line_error_nothing_written(tmp_path, capsys, extra, msg):
    out = tmp_path / "out"
    rc = main(["transfer", "--rule", "lpg:lpg_tabular", "--suite", "chain/short", "--seeds", "2", "--steps", "640", "--out", str(out)] + extra)
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error:") and len(err.strip().splitlines()) == 1 and msg in err, err
    assert not out.exists()


def test_aggregate_transfer_pools_the_scores_of_several_runs(tmp_path):
    """`benchmarks/aggregate_transfer.py` pools the per-seed scores of each run's tasks into one
    IQM with the stratified bootstrap interval `transfer` uses, refuses runs of different rules
    or a task pooled twice, and gives no aggregate when a task has no score."""
    import sys
    from pathlib import Path

    def run_dir(name, rule, tasks_):
        d = tmp_path / name
        d.mkdir()
        entries = {t: {"rule_return": 1.0, "rule_return_stderr": 0.1, "a2c_return": 2.0, "a2c_return_stderr": 0.1, "random_return": 0.0,
                       "normalized": None if s is None else float(np.mean(s)), "normalized_stderr": None if s is None else stderr(s),
                       "normalized_scores": s} for t, s in tasks_.items()}
        (d / "transfer.json").write_text(json.dumps({"rule": rule, "tasks": entries}))
        return str(d)

    import contextlib
    import importlib.util
    import io
    import types

    spec = importlib.util.spec_from_file_location("aggregate_transfer", Path(__file__).resolve().parents[1] / "benchmarks" / "aggregate_transfer.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)

    def run(*a):  # the script's main() in this process, as `python benchmarks/aggregate_transfer.py ...` runs it
        out, err = io.StringIO(), io.StringIO()
        argv, sys.argv = sys.argv, ["aggregate_transfer.py", *a]
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                rc = mod.main()
        finally:
            sys.argv = argv
        return types.SimpleNamespace(returncode=rc, stdout=out.getvalue(), stderr=err.getvalue())
    a = run_dir("a", "lpg:x", {"t1": [0.1, 0.5, 0.9], "t2": [1.2, 1.0, 0.8]})
    b = run_dir("b", "lpg:x", {"t3": [-0.1, 0.0, 0.4]})
    r = run(a, b, "--seed", "3")
    assert r.returncode == 0, r.stderr
    est, lo, hi = stratified_bootstrap_ci([[0.1, 0.5, 0.9], [1.2, 1.0, 0.8], [-0.1, 0.0, 0.4]], iqm, seed=3)
    assert f"IQM of A2C-normalised scores {est:.3f} [{lo:.3f}, {hi:.3f}]" in r.stdout and "over 3 tasks" in r.stdout
    assert "above the random policy's on 3, at or above A2C on 1" in r.stdout
    c = run_dir("c", "lpg:y", {"t4": [0.5, 0.5]})
    d = run_dir("d", "lpg:x", {"t5": None})
    assert run(a, c).returncode == 2 and "different rules" in run(a, c).stderr
    assert run(a, a).returncode == 2
    assert "No aggregate: A2C does not beat the random policy on t5" in run(a, d).stdout
    assert run(str(tmp_path / "nothing")).returncode == 2
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "transfer.json").write_text('{"rule": "lpg:x", "tas')
    r = run(a, str(tmp_path / "broken"))
    assert r.returncode == 2 and "is not a transfer report" in r.stderr


# ----------------------------------------------------------------------------- choosing a rule on validation tasks


def _untrained_rule_dir(tmp_path):
    from learned_rl import LPG, LPGNetwork, save_rule

    d = tmp_path / "snapshots"
    d.mkdir()
    for i in (2, 1):
        save_rule(d / f"rule_{i:06d}.eqx", LPG(LPGNetwork(8, 4, key=jax.random.PRNGKey(i))))
    return d


def test_expand_rule_names_lists_a_directory_in_file_order(tmp_path):
    from learned_rl._transfer import expand_rule_names

    d = _untrained_rule_dir(tmp_path)
    assert expand_rule_names([f"lpg:{d}", "lpg:lpg_tabular", "a2c"]) == [f"lpg:{d}/rule_000001.eqx", f"lpg:{d}/rule_000002.eqx", "lpg:lpg_tabular", "a2c"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no .eqx"):
        expand_rule_names([f"lpg:{tmp_path / 'empty'}"])


@pytest.mark.parametrize(
    "extra, msg",
    [
        (["--rules", "a2c,lpg:lpg_tabular"], "baseline"),
        (["--rules", "lpg:lpg_tabular,lpg:lpg_tabular"], "duplicate"),
        (["--rules", "lpg:lpg_tabular", "--seeds", "1"], "2 seeds"),
        (["--rules", "lpg:no_such_rule"], "no_such_rule"),
        (["--rules", "lpg:lpg_tabular", "--validate", "no/such_task"], "Unknown task"),
        (["--rules", "lpg:lpg_tabular", "--set", "bogus=1"], "bogus"),
        (["--rules", "lpg:lpg_tabular", "--validate", "Pendulum-v1"], "continuous"),
    ],
)
def test_select_bad_input_one_line_error_nothing_written(tmp_path, capsys, extra, msg):
    out = tmp_path / "out"
    argv = ["select", "--validate", "chain/short", "--seeds", "2", "--steps", "640", "--out", str(out)]
    if "--validate" in extra:
        argv = ["select", "--seeds", "2", "--steps", "640", "--out", str(out)]
    rc = main(argv + extra)
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error:") and len(err.strip().splitlines()) == 1 and msg in err, err
    assert not out.exists()


@pytest.mark.slow
def test_select_chooses_the_trained_rule_over_untrained_ones(tmp_path):
    """Two untrained meta-networks (a snapshot directory) against the shipped tabular rule, on two
    tasks where A2C beats the random policy at this budget: the trained rule is chosen, and the
    files hold the scores the choice was made from."""
    d = _untrained_rule_dir(tmp_path)
    out = tmp_path / "sel"
    rc = main(["select", "--rules", f"lpg:{d},lpg:lpg_tabular", "--validate", "chain/short,gridworld/dense", "--steps", "51200", "--seeds", "2",
               "--seed", "5", "--out", str(out), "--no-progress"])
    assert rc == 0
    report = json.loads((out / "select.json").read_text())
    assert report["chosen"] == "lpg:lpg_tabular"
    assert [r["rule"] for r in report["ranking"]] == [f"lpg:{d}/rule_000001.eqx", f"lpg:{d}/rule_000002.eqx", "lpg:lpg_tabular"]
    best = report["ranking"][-1]
    assert best["tasks_above_random"] == 2 and all(r["iqm"] < best["iqm"] for r in report["ranking"][:-1])
    e = report["tasks"]["gridworld/dense"]["lpg:lpg_tabular"]
    s = normalized_score(json.loads((out / "gridworld_dense" / "summary.json").read_text())["results"]["lpg:lpg_tabular"]["final_returns"], e["random_return"], e["a2c_return"])
    assert e["normalized"] == pytest.approx(float(np.mean(s)))
    assert "**(chosen)**" in (out / "select.md").read_text()
