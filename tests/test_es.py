"""Evolution strategies (`EvolutionStrategies`) and LPO: ES maths, a known quadratic through
`meta_train`, NaN fitness, the drift conditions of the shipped LPO rule, rule files, the CLI."""

import csv
import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from learned_rl import tasks
from learned_rl import load_rule, pretrained, save_rule
from learned_rl._cli import main
from learned_rl._registry import make_rule
from learned_rl.meta import MetaTrainConfig, meta_train
from learned_rl.meta._es import ESState, EvolutionStrategies, centered_ranks, es_gradient, late_return
from learned_rl.meta._run import run_meta_train
from learned_rl.rules import LPODrift
from learned_rl.rules._lpo import is_lpo, make_lpo

TARGET = jnp.array([1.0, -2.0, 0.5, 3.0, 0.0])


class Point(eqx.Module):
    """A stand-in 'rule' whose meta-parameters are a vector w (its only inexact-array leaf)."""

    w: jax.Array
    scale: float = 1.0  # a non-array leaf: not a meta-parameter


def _quadratic(rule, key):
    return -jnp.sum((rule.w - TARGET) ** 2)


TASK = [tasks.make("chain/short")]  # only names the fitness in metrics when fitness_fn is given


def _hand_ranks(f):
    """Centred ranks by hand (average rank for ties, non-finite excluded with weight 0)."""
    f = np.asarray(f, np.float64)
    fin = np.isfinite(f)
    out = np.zeros_like(f)
    idx = np.flatnonzero(fin)
    n = len(idx)
    for i in idx:
        less = sum(f[j] < f[i] for j in idx)
        eq = sum(f[j] == f[i] for j in idx)
        out[i] = (less + 0.5 * (eq - 1)) / max(n - 1, 1) - 0.5
    return out if n > 1 else np.zeros_like(f)


def test_centered_ranks_and_es_gradient_match_hand_computed():
    f = jnp.array([3.0, 1.0, 2.0, 2.0])
    np.testing.assert_allclose(centered_ranks(f), [0.5, -0.5, 0.0, 0.0])
    np.testing.assert_allclose(centered_ranks(jnp.array([1.0, jnp.nan, 3.0, -jnp.inf])), [-0.5, 0.0, 0.5, 0.0])
    np.testing.assert_allclose(centered_ranks(jnp.full(6, 7.0)), 0.0)  # all tied: no direction
    rng = np.random.default_rng(0)
    f = rng.normal(size=10)
    np.testing.assert_allclose(centered_ranks(jnp.asarray(f)), _hand_ranks(f), atol=1e-6)
    noise, w = rng.normal(size=(4, 3)), np.array([0.5, -0.5, 1 / 6, -1 / 6])
    expected = sum(w[i] * noise[i] for i in range(4)) / (4 * 0.1)
    np.testing.assert_allclose(es_gradient(jnp.asarray(noise), jnp.asarray(w), 0.1, 4), expected, rtol=1e-5)


def test_estimate_is_antithetic_centred_rank_openai_es():
    est = EvolutionStrategies(population=8, sigma=0.1, fitness_fn=_quadratic, eval_center=False).bind(TASK)
    rule = Point(jnp.zeros(5))
    params, static = eqx.partition(rule, eqx.is_inexact_array)
    key = jax.random.PRNGKey(3)
    loss, grads, state, m = est.estimate(params, static, ESState(jnp.array(0), jnp.array(0)), key=key)
    # by hand: the same noise, antithetic pairs (i, i + 4), centred ranks, g = −Σ w ε / (P σ)
    k_noise, _ = jax.random.split(key)
    eps = np.asarray(jax.random.normal(k_noise, (4, 5)))
    noise = np.concatenate([eps, -eps])
    fit = np.array([-np.sum((0.1 * n - np.asarray(TARGET)) ** 2) for n in noise])
    expected = -(_hand_ranks(fit) @ noise) / (8 * 0.1)
    np.testing.assert_allclose(grads.w, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(loss, -fit.mean(), rtol=1e-5)
    assert int(state.generation) == 1 and int(m["nan_members"]) == 0
    np.testing.assert_allclose(m["fitness_max"], fit.max(), rtol=1e-5)


def test_es_descends_a_quadratic_through_meta_train():
    est = EvolutionStrategies(population=16, sigma=0.1, sigma_decay=0.99, sigma_min=0.02, fitness_fn=_quadratic)
    rule = Point(jnp.zeros(5))
    cfg = MetaTrainConfig(steps=300, meta_lr=0.05, max_grad_norm=1e6, lr_decay=0.995, lr_min=0.005)
    new, state, hist = meta_train(rule, TASK, est, cfg, key=jax.random.PRNGKey(0))
    d0 = float(jnp.linalg.norm(rule.w - TARGET))
    d1 = float(jnp.linalg.norm(new.w - TARGET))
    assert d1 < 0.1 * d0, (d0, d1)
    assert hist["center_fitness"][0] < -10  # ‖target‖² = 14.25 at the start
    assert hist["center_fitness"][-1] > -0.1 and int(state.skipped) == 0
    assert new.scale == 1.0  # non-array leaves are not meta-parameters
    assert hist["sigma"][-1] < hist["sigma"][0]


def test_bad_es_config_is_rejected_before_compiling():
    for kw, needle in [
        (dict(population=7), "even"),
        (dict(population=0), "positive"),
        (dict(sigma=0.0), "sigma must be positive"),
        (dict(sigma_decay=1.5), "sigma_decay"),
        (dict(seeds_per_member=0), "seeds_per_member"),
        (dict(inner_env_steps=-3), "inner_env_steps"),
    ]:
        with pytest.raises(ValueError, match=needle):
            EvolutionStrategies(**kw)
    with pytest.raises(ValueError, match="less than one rollout"):
        EvolutionStrategies(inner_env_steps=10).validate(make_lpo(), TASK)
    with pytest.raises(ValueError, match="lr_decay"):
        MetaTrainConfig(lr_decay=0.0)


def test_nan_fitness_is_excluded_and_a_bad_generation_is_skipped():
    # members whose first coordinate went up are 'diverged' (NaN fitness): they get weight 0
    def flaky(rule, key):
        return jnp.where(rule.w[0] > 0.05, jnp.nan, _quadratic(rule, key))

    est = EvolutionStrategies(population=16, sigma=0.1, fitness_fn=flaky, eval_center=False).bind(TASK)
    params, static = eqx.partition(Point(jnp.zeros(5)), eqx.is_inexact_array)
    key = jax.random.PRNGKey(1)
    loss, grads, state, m = est.estimate(params, static, ESState(jnp.array(0), jnp.array(0)), key=key)
    eps = np.asarray(jax.random.normal(jax.random.split(key)[0], (8, 5)))
    noise = np.concatenate([eps, -eps])
    fit = np.array([np.nan if 0.1 * n[0] > 0.05 else -np.sum((0.1 * n - np.asarray(TARGET)) ** 2) for n in noise])
    nan = int(np.isnan(fit).sum())
    assert 0 < nan <= 8 and int(m["nan_members"]) == nan == int(state.nan_members)
    expected = -(_hand_ranks(fit) @ noise) / ((16 - nan) * 0.1)
    np.testing.assert_allclose(grads.w, expected, rtol=1e-5, atol=1e-6)
    assert np.isfinite(float(loss))

    # every member diverges: NaN gradient, so meta_train skips and counts the generation
    est_bad = EvolutionStrategies(population=4, sigma=0.1, fitness_fn=lambda r, k: jnp.nan * jnp.sum(r.w))
    rule = Point(jnp.ones(5))
    new, state, hist = meta_train(rule, TASK, est_bad, MetaTrainConfig(steps=2, meta_lr=0.1), key=jax.random.PRNGKey(0))
    assert int(state.skipped) == 2 and list(hist["skipped"]) == [1, 1]
    np.testing.assert_array_equal(new.w, rule.w)


def test_late_return_matches_host_final_return():
    from learned_rl import final_return

    rng = np.random.default_rng(0)
    n = (rng.random((3, 40)) < 0.5).astype(float)
    n[:, -1] = 1.0  # an episode ends in the last 10% of every run
    m = {"return_sum": rng.normal(size=(3, 40)) * n, "episodes": n}
    got = np.asarray(late_return({k: jnp.asarray(v) for k, v in m.items()}, 0.1))
    np.testing.assert_allclose(got, final_return(m, 0.1), rtol=1e-5)
    n2 = np.zeros((1, 40)); n2[0, 3] = 2.0  # none in the window: the whole run's mean
    np.testing.assert_allclose(late_return({"return_sum": jnp.asarray(n2 * 1.5), "episodes": jnp.asarray(n2)}, 0.1), [1.5])
    assert np.isnan(late_return({"return_sum": jnp.zeros(10), "episodes": jnp.zeros(10)}, 0.1))


# ----------------------------------------------------------------------------- LPO rules and drifts

def test_lpo_rule_file_round_trip_and_registry(tmp_path):
    drift = LPODrift(16, True, zero_output=False, key=jax.random.PRNGKey(0))
    rule = make_lpo(drift, ent_coef=0.02)
    p = save_rule(tmp_path / "rule.eqx", rule, metadata={"note": "x"})
    back = load_rule(p)
    assert is_lpo(back) and back.ent_coef == 0.02 and back.drift.ppo_init and back.drift.hidden.out_features == 16
    for a, b in zip(jax.tree.leaves(rule), jax.tree.leaves(back)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    lr, adv = jnp.log(jnp.array([0.5, 1.3, 2.0])), jnp.array([1.0, -1.0, 2.0])
    np.testing.assert_array_equal(rule.drift(lr, adv), back.drift(lr, adv))
    # the rule's meta-parameters are exactly the drift's weights
    leaves = jax.tree.leaves(eqx.filter(back, eqx.is_inexact_array))
    assert sum(x.size for x in leaves) == 16 * 8 + 16
    assert is_lpo(make_rule(f"lpo:{p}"))
    with pytest.raises(ValueError, match="expected 'lpg'"):
        make_rule(f"lpg:{p}")
    with pytest.raises(ValueError, match="no pretrained rule"):
        make_rule("lpo:nope")
    for name in (n for n in pretrained.available() if n.startswith(("lpo_", "ta_lpo_"))):
        assert is_lpo(make_rule(f"lpo:{name}"))


# ----------------------------------------------------------------------------- CLI and resume

TINY = ["--task", "chain/short", "--population", "2", "--inner-env-steps", "2560", "--no-progress"]


def test_cli_meta_train_lpo_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys):
    for args, needle in [
        ([*TINY[:2], "--population", "3"], "even"),
        (["--task", "chain/shrt"], "chain/short"),
        (["--tasks", "chain/short", "--population", "4", "--inner-env-steps", "10"], "less than one rollout"),
        ([], "--task is required"),
        (["--task", "chain/short", "--preset", "gpu"], "Unknown LPO preset"),
        (["--task", "chain/short", "--generations", "0"], "--generations must be positive"),
        (["--task", "chain/short", "--es-strategy", "cmaes"], "unknown ES strategy 'cmaes'"),
        (["--task", "chain/short", "--estimator", "tmg"], "--estimator is an lpg option"),
    ]:
        never = tmp_path / "never"
        assert main(["meta-train", "lpo", *args, "--out", str(never), "--no-progress"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and needle in err[0], err
        assert not never.exists()
    for args, needle in [
        (["--population", "4"], "--population is an ES option"),
        (["--es-strategy", "snes"], "--es-strategy is an ES option"),
        (["--estimator", "es", "--es-strategy", "cmaes"], "'es_strategy' must be"),
        (["--estimator", "es", "--inner-env-steps", "100"], "--inner-env-steps is an lpo option"),
    ]:
        assert main(["meta-train", "lpg", "--tasks", "chain/short", *args, "--out", str(tmp_path / "never")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and needle in err[0], err
        assert not (tmp_path / "never").exists()


def test_cli_meta_train_lpo_writes_well_formed_files(tmp_path, capsys):
    full = tmp_path / "full"
    assert main(["meta-train", "lpo", *TINY, "--generations", "2", "--out", str(full)]) == 0
    assert "Meta-trained 2 generations" in capsys.readouterr().out
    for f in ["rule.eqx", "checkpoint.eqx", "metrics.csv", "curves.png", "config.json"]:
        assert (full / f).stat().st_size > 0
    rows = list(csv.DictReader(open(full / "metrics.csv")))
    assert [r["step"] for r in rows] == ["1", "2"]
    assert {"fitness_mean", "fitness_max", "fitness_min", "center_fitness", "sigma", "nan_members", "skipped"} <= set(rows[0])
    for r in rows:
        assert float(r["fitness_min"]) <= float(r["fitness_mean"]) <= float(r["fitness_max"])
        assert int(r["skipped"]) == 0 and int(r["nan_members"]) == 0
    assert float(rows[1]["sigma"]) < float(rows[0]["sigma"])
    config = json.loads((full / "config.json").read_text())
    assert config["kind"] == "lpo" and config["preset"]["population"] == 2 and config["preset"]["inner_env_steps"] == 2560
    assert is_lpo(load_rule(full / "rule.eqx", kind="lpo"))
    assert main(["meta-train", "lpo", *TINY, "--generations", "3", "--out", str(full)]) == 2  # exists, no --resume
    assert "--resume" in capsys.readouterr().err


@pytest.mark.slow
def test_lpo_resume_equals_uninterrupted_and_learned_drift_trains_agents(tmp_path):
    over = dict(population=2, inner_env_steps=2560, eval_center=False)
    kw = dict(progress=False, log_every=1, preset_overrides=over)
    run_meta_train("lpo", "chain/short", steps=3, out=tmp_path / "full", **kw)
    run_meta_train("lpo", "chain/short", steps=1, out=tmp_path / "part", checkpoint_every=0.0, **kw)
    run_meta_train("lpo", "chain/short", steps=3, out=tmp_path / "part", resume=True, **kw)
    a, b = load_rule(tmp_path / "full" / "rule.eqx"), load_rule(tmp_path / "part" / "rule.eqx")
    for x, y in zip(jax.tree.leaves(eqx.filter(a, eqx.is_inexact_array)), jax.tree.leaves(eqx.filter(b, eqx.is_inexact_array))):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    rows = [list(csv.DictReader(open(tmp_path / d / "metrics.csv"))) for d in ("full", "part")]
    assert rows[0] == rows[1] and len(rows[0]) == 3
    with pytest.raises(ValueError, match="different config"):
        run_meta_train("lpo", "chain/short", steps=4, out=tmp_path / "part", resume=True, progress=False, log_every=1, preset_overrides={**over, "population": 4})
    out = tmp_path / "train"
    path = tmp_path / "full" / "rule.eqx"
    assert main(["train", "--rule", f"lpo:{path}", "--task", "chain/short", "--steps", "12800", "--seeds", "2", "--out", str(out), "--no-progress"]) == 0
    assert json.loads((out / "summary.json").read_text())["results"][f"lpo:{path}"]["seeds"] == 2


def test_old_name_of_an_es_members_env_steps_still_works(tmp_path):
    """`inner_steps`, the old name of `inner_env_steps` (env steps of an ES member's run; LPG's
    `inner_steps` is K), is accepted with a notice; an old LPO run's config.json still resumes."""
    from learned_rl.meta import TrainingRuns
    from learned_rl.meta._presets import LPOPreset, get_lpo_preset
    from learned_rl.meta._run import _config_mismatch

    with pytest.warns(FutureWarning, match="inner_env_steps"):
        es = EvolutionStrategies(population=2, inner_steps=2560)
    assert es.problem.inner_env_steps == 2560
    with pytest.warns(FutureWarning, match="inner_env_steps"):
        assert TrainingRuns(inner_steps=5120).inner_env_steps == 5120
    with pytest.raises(TypeError, match="not both"):
        TrainingRuns(inner_steps=5120, inner_env_steps=2560)
    with pytest.warns(FutureWarning, match="inner_env_steps"):
        p = get_lpo_preset("cpu", inner_steps=2560)
    assert p == get_lpo_preset("cpu", inner_env_steps=2560) and "inner_steps" not in p.to_json()
    with pytest.raises(ValueError, match="not both"):
        get_lpo_preset("cpu", inner_steps=2560, inner_env_steps=5120)
    old = {**p.to_json(), "inner_steps": 2560}
    del old["inner_env_steps"]
    run = {"kind": "lpo", "tasks": ["chain/short"], "preset": p.to_json()}
    assert _config_mismatch({**run, "preset": old}, run) == []
    assert _config_mismatch({**run, "preset": {**old, "inner_steps": 5120}}, run) == ["preset.inner_env_steps"]
    assert LPOPreset.from_json(old) == p
    paper = get_lpo_preset("paper")  # its members run each task's default budget: a null in JSON
    assert paper.inner_env_steps is None and LPOPreset.from_json(json.loads(json.dumps(paper.to_json()))) == paper
