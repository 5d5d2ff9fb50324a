"""Saved agents and evaluation apart from training: `train` writes agents.eqx, `load_agents`
gives back exactly the trained agents, `evaluate` runs episodes (sampled or greedy) that show what
training learned, vmapped and per seed alike, and `learned-rl evaluate` reports them."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from learned_rl import evaluate, load_agents, make_agent, tasks
from learned_rl._cli import main
from learned_rl._experiment import run_seeds
from learned_rl._agent import AgentConfig
from learned_rl.baselines import PPO


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    assert main(["train", "--rule", "ppo", "--task", "CartPole-v1", "--steps", "40960", "--seeds", "2", "--seed", "7", "--out", str(out), "--no-progress"]) == 0
    return out


def test_saved_agents_are_the_trained_agents(trained):
    task, rules = load_agents(trained)
    assert task.name == "CartPole-v1" and set(rules) == {"ppo"}
    r = rules["ppo"]
    # training again with the same seed gives the same agents, leaf for leaf
    again = run_seeds(PPO(), task, r["config"], num_seeds=2, seed=7, progress=False).state.agent
    for a, b in zip(jax.tree.leaves(r["agent"]), jax.tree.leaves(again)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_evaluation_shows_what_training_learned_and_vmap_agrees(trained):
    task, rules = load_agents(trained)
    r = rules["ppo"]
    key = jax.random.PRNGKey(0)
    keys = jax.random.split(key, 2)
    run = jax.jit(jax.vmap(lambda a, k: evaluate(a, task, episodes=8, greedy=True, key=k)))
    batched = np.asarray(run(r["agent"], keys))
    for i in range(2):  # one seed at a time gives the same returns
        agent_i = jax.tree.map(lambda x: x[i], r["agent"])
        np.testing.assert_allclose(np.asarray(evaluate(agent_i, task, episodes=8, greedy=True, key=keys[i])), batched[i], rtol=1e-6)
    fresh = make_agent(task, AgentConfig(hidden=(64, 64), activation="tanh"), value=True, key=key)
    untrained = np.asarray(evaluate(fresh, task, episodes=8, key=key))
    assert batched.mean() > 3 * untrained.mean() and untrained.mean() < 60
    # the episode cap: no CartPole episode under a random policy lasts 5 steps, so every return is 5
    capped = np.asarray(evaluate(fresh, task, episodes=8, max_steps=5, key=key))
    np.testing.assert_array_equal(capped, 5.0)


def test_evaluate_command_and_bad_run_directories(trained, tmp_path, capsys):
    assert main(["evaluate", str(trained), "--episodes", "4"]) == 0
    rep = json.loads((trained / "evaluation.json").read_text())
    g, s = rep["rules"]["ppo"]["greedy"], rep["rules"]["ppo"]["sampled"]
    assert len(g["per_seed"]) == 2 and g["iqm_ci95"][0] <= g["iqm"] <= g["iqm_ci95"][1] and s["mean"] > 20
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path)]) == 2
    assert "no agents.eqx" in capsys.readouterr().err
    bad = tmp_path / "bad"
    bad.mkdir()
    data = (trained / "agents.eqx").read_bytes()
    (bad / "agents.eqx").write_bytes(data[: len(data) // 2])
    assert main(["evaluate", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "truncated or corrupt" in err[0]
