"""The line toys (`line/balance`, `line/escape`, `line/swing`, `line/cross`, `line/escape0`, `line/swing0`, `line/balance0`): documented dynamics, levels, and the gap
between a random and a sensible policy that makes them worth meta-training on."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from learned_rl import tasks
from learned_rl._transfer import random_policy_returns
from learned_rl.tasks.line import LINE_CONFIGS

NAMES = tasks.resolve("line")
LEVELS, STEPS = 16, 240


def test_registry_names_family_and_defaults():
    from learned_rl._agent import resolve_torso
    from learned_rl.baselines import A2C

    assert NAMES == ["line/balance", "line/escape", "line/swing", "line/cross", "line/escape0", "line/swing0", "line/balance0"]
    for name in NAMES:
        task = tasks.make(name)
        assert task.family == "line" and task.obs_kind == "vector" and task.obs_shape == (3,)
        assert task.num_actions == 2 and task.optimal_return is None
        assert resolve_torso(A2C().default_config(task).agent, task.obs_kind, task.family) == "mlp"
    assert tasks.make("line/escape", kick_prob=0.0).env.config.kick_prob == 0.0
    with pytest.raises(ValueError, match="kick_prob"):
        tasks.make("line/balance", kick_prob=2.0)
    with pytest.raises(ValueError, match="hit_prob"):
        tasks.make("line/cross", hit_prob=-0.1)
    with pytest.raises(ValueError, match="gravity"):
        tasks.make("line/swing", gravity=-1)
    with pytest.raises(ValueError, match="mode"):
        tasks.make("line/swing", mode="fall")
    with pytest.raises(ValueError, match="Unknown task"):
        tasks.make("line/sideways")


@functools.lru_cache(maxsize=None)
def _rollout(name: str, policy: str):
    """LEVELS levels, STEPS steps each, actions random or from a policy that knows the level."""
    task = tasks.make(name)
    env = task.env
    levels = jax.vmap(task.sample_params)(jax.random.split(jax.random.PRNGKey(7), LEVELS))

    def one(level, key):
        k_reset, k_run = jax.random.split(key)
        obs, state = env.reset(k_reset, level)

        def body(carry, k):
            obs, state = carry
            k_act, k_step = jax.random.split(k)
            if policy == "random":
                action = jax.random.bernoulli(k_act).astype(jnp.int32)
            else:
                if name.endswith("balance"):  # push against the motion
                    want = -jnp.sign(2 * state.velocity + state.position)
                elif name.endswith("escape"):  # towards the goal
                    want = level.goal_side
                elif name.endswith("cross"):  # towards the goal, always
                    want = jnp.asarray(1)
                else:  # swing: along the velocity (at rest, towards the centre)
                    want = jnp.where(state.velocity != 0, jnp.sign(state.velocity), -jnp.sign(state.position))
                want = jnp.where(want == 0, 1, want)
                action = jnp.where((want == 1) == (level.flip == 1), 0, 1)
            obs2, state2, r, term, trunc, info = env.step(k_step, state, action, level)
            out = dict(pos=state.position, vel=state.velocity, action=action, key=k_step, reward=r,
                       term=term, trunc=trunc, pos2=info["final_observation"], time=state.time)
            return (obs2, state2), out

        _, traj = jax.lax.scan(body, (obs, state), jax.random.split(k_run, STEPS))
        return traj

    traj = jax.jit(jax.vmap(one))(levels, jax.random.split(jax.random.PRNGKey(8), LEVELS))
    return task, jax.tree.map(np.asarray, levels), jax.tree.map(np.asarray, traj)


def _episode_returns(traj) -> np.ndarray:
    done = traj["term"] | traj["trunc"]
    out = []
    for lv in range(done.shape[0]):
        total = 0.0
        for t in range(done.shape[1]):
            total += traj["reward"][lv, t]
            if done[lv, t]:
                out.append(total)
                total = 0.0
    return np.asarray(out)


@pytest.mark.parametrize("name", ["line/balance", "line/escape", "line/swing", "line/cross", "line/escape0", "line/swing0", "line/balance0"])
def test_transitions_follow_the_documented_dynamics(name):
    task, levels, traj = _rollout(name, "random")
    cfg = LINE_CONFIGS[name.split("/")[1]]
    assert set(np.unique(levels.flip)) == {0, 1} and set(np.unique(levels.goal_side)) == {-1, 1}
    assert levels.bound.min() >= cfg.min_bound and levels.bound.max() <= cfg.max_bound
    # the step's own draws, from the key that `env.step` splits for `step_env`
    step_keys = jax.vmap(jax.vmap(lambda k: jax.random.split(k)[0]))(jnp.asarray(traj["key"]))
    kick_u = np.asarray(jax.vmap(jax.vmap(lambda k: jax.random.uniform(k, (2,))))(step_keys))
    hit_u = np.asarray(jax.vmap(jax.vmap(lambda k: jax.random.uniform(jax.random.fold_in(k, 1))))(step_keys))
    for lv in range(LEVELS):
        bound, flip, side = int(levels.bound[lv]), int(levels.flip[lv]), int(levels.goal_side[lv])
        for t in range(STEPS - 1):
            x, v, a = int(traj["pos"][lv, t]), int(traj["vel"][lv, t]), int(traj["action"][lv, t])
            push = 1 if (a == 0) == (flip == 1) else -1
            u = kick_u[lv, t]
            kick = (1 if u[1] < 0.5 else -1) if u[0] < cfg.kick_prob else 0
            v2 = int(np.clip(v + push + kick - cfg.gravity * np.sign(x), -cfg.max_speed, cfg.max_speed))
            x2 = x + v2
            if cfg.mode == "escape":
                if x2 * side < -bound:
                    x2, v2 = -bound * side, 0
                term = x2 * side >= bound
                assert traj["reward"][lv, t] == (cfg.goal_reward if term else -1.0)
            elif cfg.mode == "swing":
                term = abs(x2) >= bound
                assert traj["reward"][lv, t] == (cfg.goal_reward if term else -1.0)
            elif cfg.mode == "cross":
                if x2 < 0:
                    x2, v2 = 0, 0
                crossed = x2 >= bound
                hit = hit_u[lv, t] < cfg.hit_prob and x2 > 0
                if crossed or hit:
                    x2, v2 = 0, 0
                term = False
                assert traj["reward"][lv, t] == float(crossed)
            else:
                term = abs(x2) > bound
                assert traj["reward"][lv, t] == (cfg.fall_reward if term else 1.0)
            assert bool(traj["term"][lv, t]) == term, (lv, t)
            final = traj["pos2"][lv, t]
            np.testing.assert_allclose(final, [x2 / cfg.max_bound, v2 / cfg.max_speed, (traj["time"][lv, t] + 1) / cfg.max_steps], rtol=1e-6)
            done = traj["term"][lv, t] | traj["trunc"][lv, t]
            assert bool(traj["trunc"][lv, t]) == (traj["time"][lv, t] + 1 >= cfg.max_steps)
            nxt = (0, 0) if done else (x2, v2)  # auto-reset to the start
            assert (int(traj["pos"][lv, t + 1]), int(traj["vel"][lv, t + 1])) == nxt, (lv, t)
    if cfg.mode != "cross":  # an episode ended, so its last step's reward was checked
        assert traj["term"].any()


@pytest.mark.parametrize("name, random_below, sensible_above", [("line/balance", 20.0, 150.0), ("line/escape", -25.0, -12.0), ("line/swing", -170.0, -100.0), ("line/cross", 1.5, 10.0)])
def test_a_sensible_policy_beats_the_random_one_by_far(name, random_below, sensible_above):
    _, _, random = _rollout(name, "random")
    _, _, sensible = _rollout(name, "sensible")
    if name == "line/cross":  # no episode ends within STEPS: the reward rate times an episode's length
        per_episode = lambda traj: np.asarray([traj["reward"].mean() * LINE_CONFIGS["cross"].max_steps])
    else:
        per_episode = _episode_returns
    assert per_episode(random).mean() < random_below
    assert per_episode(sensible).mean() > sensible_above
    task = tasks.make(name)
    levels = jax.vmap(task.sample_params)(jax.random.split(jax.random.PRNGKey(1), 8))
    assert np.mean(random_policy_returns(task, levels, num_envs=8, num_steps=1000, key=jax.random.PRNGKey(0))) < random_below


def test_a2c_learns_balance():
    from learned_rl import run_seeds
    from learned_rl._learner import final_return
    from learned_rl.baselines import A2C

    task = tasks.make("line/balance")
    rule = A2C()
    config = rule.default_config(task).replace(total_steps=60_000)
    result = run_seeds(rule, task, config, num_seeds=2, seed=0, progress=False)
    final = final_return(result.metrics)
    assert final.min() > 5 * 7.5, final  # the random policy survives about 7.5 steps
