"""Sweeps as one program: every point of a grid × seeds in one compiled, vmapped run, each point
the same training as an ordinary run with those hyperparameters (jit and vmap agree), and the
`sweep` command's outputs and errors."""

from __future__ import annotations

import json

import equinox as eqx
import jax
import numpy as np
import pytest

from learned_rl import tasks
from learned_rl._cli import main
from learned_rl._experiment import run_seeds, run_sweep, sweep_points
from learned_rl.baselines import PPO
from learned_rl.rules import DPODrift


def test_each_sweep_point_is_the_ordinary_run_with_its_hyperparameters():
    task = tasks.make("CartPole-v1")
    rule = PPO(drift=DPODrift())
    cfg = rule.default_config(task).replace(total_steps=3 * 4 * 128)  # annealed Adam: per-run rates anneal too
    grid = {"learning_rate": [3e-4, 3e-3], "gamma": [0.9, 0.99], "drift.alpha": [2.0, 0.5]}
    res = run_sweep(rule, task, cfg, grid, num_seeds=2, seed=11, progress=False)
    assert [tuple(p.values()) for p in res.points] == [tuple(p.values()) for p in sweep_points(grid)] and len(res.points) == 8
    assert res.metrics["return_sum"].shape[:2] == (8, 2)
    for i in (0, 5):  # two points, against runs built the ordinary way
        p = res.points[i]
        single = PPO(drift=DPODrift(alpha=p["drift.alpha"]), gamma=p["gamma"])
        one = run_seeds(single, task, cfg.replace(learning_rate=p["learning_rate"]), num_seeds=2, seed=11, progress=False)
        swept = jax.tree.map(lambda x: x[i], eqx.filter(res.state.agent, eqx.is_inexact_array))
        for a, b in zip(jax.tree.leaves(swept), jax.tree.leaves(eqx.filter(one.state.agent, eqx.is_inexact_array))):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-5, atol=2e-6)
        np.testing.assert_allclose(res.metrics["approx_kl_after"][i], one.metrics["approx_kl_after"], rtol=1e-3, atol=1e-7)
    # the points differ: the hyperparameters reached the program
    assert not np.allclose(res.metrics["approx_kl_after"][0], res.metrics["approx_kl_after"][7])


def test_sweep_rejects_what_cannot_vary_inside_one_program():
    task = tasks.make("CartPole-v1")
    rule, cfg = PPO(), PPO().default_config(task).replace(total_steps=1024)
    for grid, needle in [({"num_minibatches": [2.0, 4.0]}, "not a float hyperparameter"), ({"bogus": [1.0]}, "has no field 'bogus'"),
                         ({"gamma": [0.9, 1.5]}, "gamma and gae_lambda must be in"), ({"drift.epsilon": [0.2, 1.2]}, "epsilon must be in"),
                         ({"learning_rate": [1e-3, -1.0]}, "learning_rate must be positive"), ({}, "at least one field")]:
        with pytest.raises(ValueError, match=needle):
            run_sweep(rule, task, cfg, grid, num_seeds=1, progress=False)


def test_sweep_command(tmp_path, capsys):
    out = tmp_path / "sw"
    argv = ["sweep", "--rule", "a2c", "--task", "chain/short", "--set", "learning_rate=5,40", "--set", "ent_coef=0.0,0.05", "--seeds", "2", "--steps", "6400", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    s = json.loads((out / "sweep.json").read_text())
    assert len(s["points"]) == 4 and s["best"] in [r["point"] for r in s["points"]] and all(len(r["final_returns"]) == 2 for r in s["points"])
    assert (out / "sweep.png").stat().st_size > 0 and "(best)" in (out / "results.md").read_text()
    capsys.readouterr()
    for sets, needle in [(["gamma=0.9,abc"], "values must be numbers"), (["gamma=0.9,0.9"], "repeated values"), (["gamma"], "FIELD=V1,V2")]:
        bad = tmp_path / "bad"
        assert main(["sweep", "--rule", "a2c", "--task", "chain/short", "--out", str(bad), *[x for s_ in sets for x in ("--set", s_)]]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and needle in err[0], err
        assert not bad.exists()


def test_rules_build_inside_vmap_over_traced_hyperparameters():
    """`PPO(gamma=g)`, `DPODrift(alpha=a)` and `A2C(gae_lambda=l)` can be built from traced values
    (their checks run on concrete values only), and a vmapped loss over gammas matches the loop."""
    import jax
    import jax.numpy as jnp
    import pytest

    from learned_rl.baselines import A2C, PPO
    from learned_rl.rules import ClipDrift, DPODrift

    gammas = jnp.asarray([0.9, 0.99])
    names = jax.vmap(lambda g: jnp.asarray(PPO(gamma=g, drift=DPODrift(alpha=g + 1.0, beta=g)).gamma))(gammas)
    assert jnp.allclose(names, gammas)
    assert jax.vmap(lambda e: ClipDrift(e).epsilon)(jnp.asarray([0.1, 0.3])).shape == (2,)
    assert jax.vmap(lambda lam: A2C(gae_lambda=lam).gae_lambda)(jnp.asarray([0.9, 0.95])).shape == (2,)
    with pytest.raises(ValueError, match="gamma and gae_lambda"):
        PPO(gamma=1.5)  # concrete values are still checked
    with pytest.raises(ValueError, match="alpha and beta"):
        DPODrift(alpha=-1.0)


def test_alpha_y_given_by_set_sweep_or_point_reaches_a_rule_with_recorded_family_arms():
    """`lpg_mlp` records α_y 0.1 for MLP agents; an α_y given by --set, a tuned point or a sweep
    must be the one its updates use (not silently replaced by the family's record)."""
    from learned_rl import make_rule
    from learned_rl._agent import make_agent
    from learned_rl._experiment import apply_point
    from learned_rl._learner import apply_overrides

    task = tasks.make("CartPole-v1")
    rule = make_rule("lpg:lpg_mlp")
    cfg = rule.default_config(task).replace(total_steps=2 * 16 * 20)
    agent = make_agent(task, cfg.agent, prediction_dim=rule.network.prediction_dim, key=jax.random.PRNGKey(0))
    recorded = rule.alpha_y_for(agent)
    assert recorded == 0.1
    set_rule, _, used = apply_overrides(rule, cfg, {"alpha_y": 0.7})
    point_rule, _ = apply_point(rule, cfg, {"alpha_y": 0.7})
    assert used == ["alpha_y"] and set_rule.alpha_y_for(agent) == 0.7 and point_rule.alpha_y_for(agent) == 0.7
    res = run_sweep(rule, task, cfg, {"alpha_y": [0.1, 1.0]}, num_seeds=1, progress=False)
    assert not np.allclose(res.metrics["loss"][0], res.metrics["loss"][1])  # the swept value reached the program
