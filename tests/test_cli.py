"""The `learned-rl` command line: outputs and bad input."""

import csv
import json
import subprocess
import sys

import jax
import numpy as np
import pytest

from learned_rl._cli import main


def _run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "learned_rl", *args], capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.mark.parametrize(
    "args, needle",
    [
        (["train", "--rule", "a3c", "--task", "CartPole-v1"], "Unknown rule 'a3c'. Did you mean: a2c"),
        (["train", "--rule", "a2c", "--task", "gridworld/dens"], "gridworld/dense"),
        (["train", "--rule", "a2c", "--task", "CartPole-v1", "--steps", "-5"], "--steps must be positive"),
        (["train", "--rule", "a2c", "--task", "CartPole-v1", "--seeds", "0"], "--seeds must be positive"),
        (["train", "--rule", "a2c", "--task", "CartPole-v1", "--steps", "10"], "less than one rollout"),
        (["train", "--rule", "a2c", "--task", "CartPole-v1", "--bogus"], "unrecognized arguments"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_input_is_one_line_error_and_writes_nothing(tmp_path, args, needle):
    out = tmp_path / "out"
    r = _run(*args, "--out", str(out)) if args[0] == "train" else _run(*args)
    assert r.returncode == 2, r.stderr
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), r.stderr
    assert "Traceback" not in r.stderr
    assert needle in lines[0]
    assert not out.exists()


def test_tasks_lists_every_task_and_set(capsys):
    assert main(["tasks"]) == 0
    text = capsys.readouterr().out
    for name in ["gridworld/dense", "random_gridworld/small_sparse", "chain/distractor", "lpg-tabular", "lpg-all", "minatar"]:
        assert name in text


def test_train_writes_run_directory(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["train", "--rule", "a2c", "--task", "gridworld/sparse", "--steps", "25600", "--seeds", "2", "--out", str(out), "--no-progress"])
    assert rc == 0
    for f in ["config.json", "metrics.csv", "summary.json", "curves.png"]:
        assert (out / f).stat().st_size > 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["task"] == "gridworld/sparse"
    r = summary["results"]["a2c"]
    assert r["seeds"] == 2 and r["env_steps"] == 25600
    assert len(r["final_returns"]) == 2 and len(r["optimal_return"]) == 2
    assert 0 < r["optimal_return"][0] <= 1.0 and -1.0 <= r["normalized_return"] <= 1.0
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert set(["rule", "seed", "env_steps", "mean_return"]) <= set(rows[0])
    assert {row["seed"] for row in rows} == {"0", "1"}
    assert int(rows[-1]["env_steps"]) == 25600
    config = json.loads((out / "config.json").read_text())
    assert config["rules"]["a2c"]["total_steps"] == 25600
    assert "fraction of optimal" in capsys.readouterr().out


def test_train_with_saved_lpg_rule_and_bad_rule_files(tmp_path, capsys):
    import jax

    from learned_rl import LPG, LPGNetwork, save_rule

    path = save_rule(tmp_path / "rule.eqx", LPG(LPGNetwork(8, 4, key=jax.random.PRNGKey(0))))
    out = tmp_path / "run"
    assert main(["train", "--rule", f"lpg:{path}", "--task", "chain/short", "--steps", "12800", "--seeds", "2", "--out", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["results"][f"lpg:{path}"]["seeds"] == 2
    capsys.readouterr()
    bad = tmp_path / "bad.eqx"
    bad.write_bytes(path.read_bytes()[:-7])
    for rule, needle in [(f"lpg:{bad}", "truncated"), (f"lpg:{tmp_path}/nope.eqx", "no such file"), ("lpg:nonexistent_pretrained", "no pretrained rule")]:
        out2 = tmp_path / "never"
        assert main(["train", "--rule", rule, "--task", "chain/short", "--out", str(out2), "--no-progress"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and needle in err[0], err
        assert not out2.exists()


def test_train_config_round_trips_through_json():
    from learned_rl import TrainConfig

    from learned_rl.baselines import PPO
    from learned_rl import tasks
    cfg = PPO().default_config(tasks.make("Breakout-MinAtar"))
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ValueError, match="unknown TrainConfig fields"):
        TrainConfig.from_dict({"total_steps": 10, "bogus": 1})


def test_compare_writes_results_and_reports_rules_that_cannot_run(tmp_path, capsys):
    out = tmp_path / "cmp"
    # a tabular task keeps this cheap (MLP agents under vmap: test_orthogonal_init_..._no_lapack_call)
    rc = main(["compare", "--task", "chain/short", "--rules", "a2c,dpo", "--steps", "12800", "--seeds", "2", "--out", str(out), "--no-progress"])
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["results"]) == {"a2c", "dpo"}
    md = (out / "results.md").read_text()
    assert "| a2c |" in md and "| dpo |" in md and "wall time" in md and "fraction of optimal" in md
    # the mirror-learning rule reports how much its drift acted; A2C has no drift
    act = summary["results"]["dpo"]["drift_activity"]
    assert set(act) == {"drift_active", "clip_fraction", "approx_kl", "drift_mean"} and all(len(v) == 3 for v in act.values())
    assert "drift_activity" not in summary["results"]["a2c"] and "| dpo | " in md.split("How much each drift acts")[1]
    header = (out / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"drift_active_after", "clip_fraction_after", "approx_kl_after", "drift_active"} <= set(header)
    capsys.readouterr()
    out2 = tmp_path / "cont"
    assert main(["compare", "--task", "CartPole-v1", "--rules", "a2c,a2c", "--out", str(out2)]) == 2
    assert "duplicate rules" in capsys.readouterr().err and not out2.exists()


def test_rules_declare_what_they_run_on_lpg_on_continuous_actions(tmp_path, capsys):
    """LPG's agents are categorical (`LPG.action_kinds`): `train` answers one line and writes
    nothing; `compare` runs the other rules and lists LPG as skipped; `transfer` skips the task."""
    out = tmp_path / "never"
    assert main(["train", "--rule", "lpg:lpg_tabular", "--task", "Pendulum-v1", "--out", str(out), "--no-progress"]) == 2
    err = [l for l in capsys.readouterr().err.splitlines() if l.strip()]
    assert err == ["error: lpg trains a categorical policy only; task 'Pendulum-v1' has continuous actions"]
    assert not out.exists()
    out = tmp_path / "cmp"
    assert main(["compare", "--task", "Pendulum-v1", "--rules", "a2c,lpg:lpg_tabular", "--steps", "256", "--seeds", "2", "--out", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["results"]) == {"a2c"} and "continuous actions" in summary["skipped"]["lpg:lpg_tabular"]
    assert "lpg:lpg_tabular: not run" in capsys.readouterr().out
    assert "| lpg:lpg_tabular |" not in (out / "results.md").read_text() and "lpg:lpg_tabular" in (out / "results.md").read_text()
    assert main(["transfer", "--rule", "lpg:lpg_tabular", "--suite", "Pendulum-v1", "--seeds", "2", "--out", str(tmp_path / "tr")]) == 2
    assert "cannot run on any task" in capsys.readouterr().err


# each task family (the tabular ones, classic control discrete and continuous, MinAtar, Brax) x
# each rule that can run there: `train` on two agent updates writes the run files. Each pair
# compiles its own program (5-20 s on 2 cores), so the default suite runs one pair per family,
# covering every rule (DEFAULT_PAIRS); the whole matrix, Brax included, is in the slow marker.
FAMILY_TASKS = {
    "tabular": "gridworld/sparse", "random_gridworld": "random_gridworld/small_sparse", "chain": "chain/short",
    "classic": "CartPole-v1", "continuous": "Pendulum-v1", "minatar": "Breakout-MinAtar", "brax": "brax/inverted_pendulum",
}
FAMILY_RULES = ["a2c", "ppo", "dpo", "lpo:lpo_cartpole", "lpg:lpg_tabular"]
DEFAULT_PAIRS = {("tabular", "dpo"), ("chain", "lpg:lpg_tabular"), ("random_gridworld", "ppo"), ("classic", "lpo:lpo_cartpole"), ("continuous", "a2c"), ("minatar", "a2c")}


def _family_cases():
    for fam, task in FAMILY_TASKS.items():
        for rule in FAMILY_RULES:
            if fam in ("continuous", "brax") and rule.startswith("lpg"):
                continue  # the test above
            slow = (fam, rule) not in DEFAULT_PAIRS
            yield pytest.param(task, rule, id=f"{fam}-{rule.split(':')[0]}", marks=[pytest.mark.slow] if slow else [])


@pytest.mark.parametrize("task_name, rule_name", list(_family_cases()))
def test_train_runs_every_rule_on_every_family_it_can(task_name, rule_name, tmp_path, capsys):
    assert {f for f, _ in DEFAULT_PAIRS} == set(FAMILY_TASKS) - {"brax"} and {r for _, r in DEFAULT_PAIRS} == set(FAMILY_RULES)
    from learned_rl import tasks
    from learned_rl._registry import make_rule

    cfg = make_rule(rule_name).default_config(tasks.make(task_name))
    steps = 2 * cfg.num_envs * cfg.rollout_len
    out = tmp_path / "run"
    assert main(["train", "--rule", rule_name, "--task", task_name, "--steps", str(steps), "--seeds", "2", "--out", str(out), "--no-progress"]) == 0
    for f in ["config.json", "metrics.csv", "summary.json", "curves.png"]:
        assert (out / f).stat().st_size > 0, f
    r = json.loads((out / "summary.json").read_text())["results"][rule_name]
    assert r["seeds"] == 2 and r["env_steps"] == steps


def test_output_into_a_closed_pipe_ends_quietly():
    """`learned-rl tasks | head -1`: the reader closes the pipe early; no traceback, exit 0."""
    import subprocess
    import sys

    r = subprocess.run(f"{sys.executable} -m learned_rl tasks | head -1", shell=True, capture_output=True, text=True, timeout=120)
    assert r.stdout.strip() == "Tasks:"
    assert "Traceback" not in r.stderr and "BrokenPipe" not in r.stderr, r.stderr


def test_set_replaces_rule_and_config_hyperparameters(tmp_path, capsys):
    """`--set` reaches the rule (num_minibatches) and its TrainConfig (learning_rate), changes what
    is trained, is recorded in config.json, and bad fields or values are one-line errors."""
    base = ["train", "--rule", "ppo", "--task", "CartPole-v1", "--steps", "2048", "--seeds", "2", "--no-progress"]
    assert main([*base, "--out", str(tmp_path / "a")]) == 0
    assert main([*base, "--out", str(tmp_path / "b"), "--set", "num_minibatches=16", "--set", "learning_rate=0.003"]) == 0
    cfg = json.loads((tmp_path / "b" / "config.json").read_text())
    assert cfg["sets"] == {"num_minibatches": 16, "learning_rate": 0.003}
    assert cfg["rule_fields"]["ppo"]["num_minibatches"] == 16 and cfg["rules"]["ppo"]["learning_rate"] == 0.003
    kl = lambda d: np.mean([float(r["approx_kl_after"]) for r in csv.DictReader(open(tmp_path / d / "metrics.csv"))])
    assert kl("b") > 3 * kl("a")  # 16 minibatch steps per epoch at 12× the learning rate move the policy further
    # --steps is checked against the rollout that --set gives (256 = 2 envs × 128), not the default one (4 × 128)
    small = ["train", "--rule", "ppo", "--task", "CartPole-v1", "--steps", "256", "--seeds", "2", "--no-progress", "--set", "num_envs=2"]
    assert main([*small, "--out", str(tmp_path / "c")]) == 0
    capsys.readouterr()
    for sets, needle in [(["bogus=1"], "no rule in ppo and no TrainConfig has the fields ['bogus']"),
                         (["num_minibatches=2.5"], "--set num_minibatches: expected a value like 4"),
                         (["total_steps=10"], "use --steps"), (["learning_rate=-1"], "learning_rate must be positive")]:
        out = tmp_path / "bad"
        assert main([*base, "--out", str(out), *[x for s in sets for x in ("--set", s)]]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and needle in err[0], err
        assert not out.exists()


def test_set_reaches_the_agent_build_field_by_field(tmp_path, capsys):
    """`--set agent.FIELD=VALUE` builds the agent differently (here a one-layer ReLU MLP of 32
    units: its parameters have that shape), is recorded in config.json, and bad values are
    one-line errors that write nothing."""
    from learned_rl import load_agents

    base = ["train", "--rule", "ppo", "--task", "CartPole-v1", "--steps", "1024", "--seeds", "2", "--no-progress"]
    assert main([*base, "--out", str(tmp_path / "a"), "--set", "agent.hidden=[32]", "--set", "agent.activation=relu"]) == 0
    cfg = json.loads((tmp_path / "a" / "config.json").read_text())
    assert list(cfg["rules"]["ppo"]["agent"]["hidden"]) == [32] and cfg["rules"]["ppo"]["agent"]["activation"] == "relu"
    shapes = {tuple(x.shape) for x in jax.tree_util.tree_leaves(load_agents(tmp_path / "a")[1]["ppo"]["agent"]) if hasattr(x, "shape")}
    assert (2, 32, 4) in shapes or (2, 4, 32) in shapes  # 2 seeds, CartPole's 4 inputs into 32 units
    assert not any(64 in s for s in shapes)
    capsys.readouterr()
    for sets, needle in [(["agent.hidden=[0]"], "agent.hidden: expected a list of positive integers"),
                         (["agent.torso=7"], "agent.torso: expected a value like 'auto'"),
                         (["agent.activation=gelu"], "activation must be tanh|relu"),
                         (["agent={}"], "set agent.torso, agent.hidden, ... one by one")]:
        out = tmp_path / "bad"
        assert main([*base, "--out", str(out), *[x for s in sets for x in ("--set", s)]]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and needle in err[0], err
        assert not out.exists()


def test_meta_train_old_count_names_still_work_with_a_notice(tmp_path, capsys):
    """`meta-train --steps` (now --meta-steps) and `--inner-steps` (now --inner-env-steps) keep
    working, print one deprecation notice each, and give the same run as the new names."""
    base = ["meta-train", "lpo", "--task", "chain/short", "--population", "2", "--no-progress"]
    assert main([*base, "--steps", "1", "--inner-steps", "2560", "--out", str(tmp_path / "old")]) == 0
    err = capsys.readouterr().err
    assert "--steps is deprecated; it is --meta-steps" in err and "--inner-steps is deprecated; it is --inner-env-steps" in err, err
    assert main([*base, "--meta-steps", "1", "--inner-env-steps", "2560", "--out", str(tmp_path / "new")]) == 0
    assert "deprecated" not in capsys.readouterr().err
    assert (tmp_path / "old" / "rule.eqx").read_bytes() == (tmp_path / "new" / "rule.eqx").read_bytes()
    assert main([*base, "--meta-steps", "1", "--generations", "2"]) == 2
    assert "they all count meta-steps" in capsys.readouterr().err


def test_recipe_sets_a_published_configuration_then_steps_and_set_apply_on_top(tmp_path, capsys):
    """`--recipe purejaxrl-minatar` trains PPO and DPO with PureJaxRL's MinAtar configuration (an
    MLP on the flattened frame, 64 envs × 128 steps, 8 minibatches, lr 5e-3 annealed): config.json
    holds exactly those values and `--set` overrides one of them; its update moves the policy
    further than the same run with one minibatch at lr 1e-4. A rule without minibatches, a task of
    another family and an unknown name are one-line errors that write nothing."""
    base = ["compare", "--task", "Breakout-MinAtar", "--steps", "8192", "--seeds", "2", "--no-progress", "--recipe", "purejaxrl-minatar"]
    assert main([*base, "--rules", "ppo,dpo", "--out", str(tmp_path / "r"), "--set", "ent_coef=0.02"]) == 0
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())
    assert cfg["recipe"]["name"] == "purejaxrl-minatar"
    for name in ("ppo", "dpo"):
        c, f = cfg["rules"][name], cfg["rule_fields"][name]
        assert (c["num_envs"], c["rollout_len"], c["learning_rate"], c["anneal_lr"], c["total_steps"]) == (64, 128, 5e-3, True, 8192)
        assert c["agent"]["torso"] == "mlp" and c["agent"]["activation"] == "relu" and list(c["agent"]["hidden"]) == [64, 64]
        assert (f["num_minibatches"], f["num_epochs"], f["ent_coef"]) == (8, 4, 0.02)
    assert main([*base, "--rules", "ppo", "--out", str(tmp_path / "s"), "--set", "num_minibatches=1", "--set", "learning_rate=1e-4"]) == 0
    kl = lambda d: np.mean([float(r["approx_kl_after"]) for r in csv.DictReader(open(tmp_path / d / "metrics.csv")) if r["rule"] == "ppo"])
    assert kl("r") > 10 * kl("s")
    capsys.readouterr()
    for args, needle in [
        (["--rules", "ppo,a2c"], "which a2c does not have"),
        (["--rules", "ppo", "--task", "CartPole-v1"], "is for minatar tasks; 'CartPole-v1' is a classic task"),
        (["--rules", "ppo", "--recipe", "purejaxrl-atari"], "unknown recipe 'purejaxrl-atari' (known: purejaxrl-brax, purejaxrl-minatar)"),
    ]:
        out = tmp_path / "bad"
        assert main([*base, *args, "--out", str(out)]) == 2  # a repeated flag's last value counts
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and needle in err[0], err
        assert not out.exists()
