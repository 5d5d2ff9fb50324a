"""The LPG training environments (tasks/) and the task registry."""

from __future__ import annotations

import functools
import itertools
import math

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from learned_rl import tasks
from learned_rl.tasks.chain import DelayedChain, chain_dims
from learned_rl.tasks.gridworld import ACTION_DELTAS_9, GridWorld, gridworld_dims, parse_layout
from learned_rl.tasks.random_gridworld import random_gridworld_dims

OUR_TASKS = tasks.resolve("lpg-all")

# Every rollout below runs through ONE compiled program per task (compiling is the slow
# part on CPU): `B_LEVELS` levels x `B_KEYS` keys per level, `CHUNK` steps per call.
B_LEVELS, B_KEYS, CHUNK = 8, 2, 64
# one representative per environment class is also stepped without vmap, call by call
UNBATCHED_CHECK = {"gridworld/long_dense", "random_gridworld/small_sparse", "chain/long_noisy",
                   "chain/distractor"}


# Compiling, not running, dominates these tests on CPU. XLA's backend optimisation level 0
# compiles the test programs ~4x faster; they run a little slower, which does not matter here.
fast_jit = functools.partial(jax.jit, compiler_options={"xla_backend_optimization_level": 0})


@functools.lru_cache(maxsize=None)
def get_task(name: str) -> tasks.Task:
    return tasks.make(name)


@functools.lru_cache(maxsize=None)
def chunk_program(name: str):
    """jit(vmap over levels (vmap over keys with a shared level (scan of env.step)))."""
    env = get_task(name).env

    def single(fresh, carry, reset_key, step_keys, actions, level):
        start = env.reset(reset_key, level)
        obs, state = jax.tree.map(lambda a, b: jnp.where(fresh, a, b), start, carry)

        def body(c, x):
            obs, state = c
            key, action = x
            obs2, state2, r, term, trunc, info = env.step(key, state, action, level)
            out = dict(
                obs=obs2, reward=r, terminated=term, truncated=trunc,
                final_obs=info["final_observation"], time=state2.time,
            )
            return (obs2, state2), out

        first_obs = obs
        carry, traj = jax.lax.scan(body, (obs, state), (step_keys, actions))
        return carry, traj, first_obs

    over_keys = jax.vmap(single, in_axes=(None, 0, 0, 0, 0, None))  # shared level
    return fast_jit(jax.vmap(over_keys, in_axes=(None, 0, 0, 0, 0, 0)))  # batch of levels


def np_keys(rng: np.random.Generator, *shape: int) -> np.ndarray:
    """Raw uint32 PRNG keys (`jax.random.PRNGKey` layout) drawn with numpy (no compilation)."""
    return rng.integers(0, 2**32, size=shape + (2,), dtype=np.uint32)


def run(name: str, levels, steps: int, seed: int = 0, actions: np.ndarray | None = None):
    """Roll out `levels` (batched, leading dim B_LEVELS) for `steps` (a multiple of CHUNK).

    Actions are uniformly random unless given (`[B_LEVELS, B_KEYS, steps]`).
    Returns numpy trajectories `[B_LEVELS, B_KEYS, steps, ...]` and the inputs used.
    """
    task = get_task(name)
    rng = np.random.default_rng(seed)
    if actions is None:
        actions = rng.integers(0, task.num_actions, size=(B_LEVELS, B_KEYS, steps))
    actions = np.asarray(actions, np.int32)
    reset_keys = np_keys(rng, B_LEVELS, B_KEYS)
    step_keys = np_keys(rng, B_LEVELS, B_KEYS, steps)
    template = jax.eval_shape(task.env.reset, jax.random.PRNGKey(0), task.default_params)
    carry = jax.tree.map(lambda x: np.zeros((B_LEVELS, B_KEYS) + x.shape, x.dtype), template)
    program = chunk_program(name)
    chunks = []
    for t0 in range(0, steps, CHUNK):
        sl = slice(t0, t0 + CHUNK)
        carry, traj, first_obs = program(
            np.bool_(t0 == 0), carry, reset_keys, step_keys[:, :, sl], actions[:, :, sl], levels
        )
        traj = jax.tree.map(np.asarray, traj)
        traj["prev_obs"] = np.concatenate(
            [np.asarray(first_obs)[:, :, None], traj["obs"][:, :, :-1]], axis=2
        )
        chunks.append(traj)
    traj = {k: np.concatenate([c[k] for c in chunks], axis=2) for k in chunks[0]}
    return traj, dict(actions=actions, reset_keys=reset_keys, step_keys=step_keys)


def broadcast_level(level):
    return jax.tree.map(lambda x: np.broadcast_to(np.asarray(x), (B_LEVELS,) + np.shape(x)), level)


def _short_episodes(task: tasks.Task, levels):
    """Grid worlds have long episodes: shorten them so auto-reset shows up in 64 steps."""
    if task.family in ("tabular", "random_gridworld"):
        steps = np.array([17, 20, 23, 64, 20, 31, 20, 5])[:B_LEVELS]
        return levels.replace(max_steps_in_episode=jnp.asarray(steps, jnp.int32))
    return levels


def _allowed_rewards(task: tasks.Task) -> set[float]:
    if task.family == "chain":
        return {-1.0, 1.0} if task.env.noisy else {-1.0, 0.0, 1.0}
    return {0.0} | {float(r) for r, _, _ in task.env.objects}


def _check_tabular_transitions(env: GridWorld, levels, traj, actions):
    """Every transition follows the documented grid-world rules (checked in numpy)."""
    K = env.num_objects
    M = 2**K
    cells = np.asarray(levels.object_cells)[:, None, None, :]  # [B, 1, 1, K]
    rewards = np.asarray(levels.object_rewards)[:, None, None, :]
    terms = np.asarray(levels.object_term_probs)[:, None, None, :]
    bits = 1 << np.arange(K)
    prev_cell, prev_mask = np.divmod(traj["prev_obs"], M)
    fin_cell, fin_mask = np.divmod(traj["final_obs"], M)
    prev_present = (prev_mask[..., None] & bits) > 0
    fin_present = (fin_mask[..., None] & bits) > 0
    np.testing.assert_array_equal(fin_cell, env.move_np[prev_cell, actions])
    hit = prev_present & (cells == fin_cell[..., None])
    assert np.all(hit.sum(-1) <= 1)
    np.testing.assert_allclose(traj["reward"], (hit * rewards).sum(-1))
    assert not np.any(fin_present & hit)  # collected objects are gone (no same-step respawn)
    assert np.all(fin_present[prev_present & ~hit])  # other present objects stay
    assert not np.any(traj["terminated"] & ((hit * terms).sum(-1) == 0))
    # reset observations: all objects present, agent not on an object
    done = traj["terminated"] | traj["truncated"]
    obs_cell, obs_mask = np.divmod(traj["obs"], M)
    assert np.all(obs_mask[done] == M - 1)
    assert not np.any((cells == obs_cell[..., None]).any(-1) & done)


def _check_random_gridworld_transitions(env, traj, actions):
    H, W = env.grid_shape
    prev, fin, obs = traj["prev_obs"], traj["final_obs"], traj["obs"]
    prev_agent = prev[..., -1].reshape(prev.shape[:3] + (H * W,)).argmax(-1)
    fin_agent = fin[..., -1].reshape(fin.shape[:3] + (H * W,)).argmax(-1)
    r, c = np.divmod(prev_agent, W)
    deltas = np.asarray(ACTION_DELTAS_9)[actions]
    expected = np.clip(r + deltas[..., 0], 0, H - 1) * W + np.clip(c + deltas[..., 1], 0, W - 1)
    np.testing.assert_array_equal(fin_agent, expected)
    # the reward is that of the object type found on the agent's new cell
    objects_prev = prev[..., :-1].reshape(prev.shape[:3] + (H * W, -1))
    found = np.take_along_axis(objects_prev, fin_agent[..., None, None], axis=3)[..., 0, :]
    type_reward = np.zeros(env.num_types)
    for (rew, _, _), t in zip(env.objects, env.type_ids):
        type_reward[t] = rew
    np.testing.assert_allclose(traj["reward"], found @ type_reward)
    # reset observations show every object and the agent on distinct cells
    done = traj["terminated"] | traj["truncated"]
    assert np.all(obs[done].sum(axis=(1, 2, 3)) == env.num_objects + 1)


def _check_chain_transitions(env: DelayedChain, levels, traj, actions):
    lengths = np.asarray(levels.length)[:, None, None]
    correct = np.asarray(levels.correct_action)[:, None, None]
    n = env.max_len + 1
    if env.distractor:
        at_start = traj["prev_obs"][..., 0] == 1
        branch = np.where(at_start, actions, traj["prev_obs"][..., 1])
        np.testing.assert_array_equal(traj["final_obs"][..., 0], 0)
        np.testing.assert_array_equal(traj["final_obs"][..., 1], branch)
        done = traj["terminated"] | traj["truncated"]
        assert np.all(traj["obs"][done][:, :2] == np.array([1.0, 0.0]))
    else:
        prev_branch, prev_pos = np.divmod(traj["prev_obs"], n)
        branch = np.where(prev_pos == 0, actions, prev_branch)
        np.testing.assert_array_equal(traj["final_obs"], branch * n + prev_pos + 1)
        np.testing.assert_array_equal(traj["terminated"], prev_pos + 1 == lengths)
        assert np.all(traj["obs"][traj["terminated"]] == 0)
    term = traj["terminated"]
    terminal_reward = np.where(branch == correct, 1.0, -1.0)
    np.testing.assert_array_equal(traj["reward"][term], np.broadcast_to(terminal_reward, term.shape)[term])
    assert not traj["truncated"].any()


# --------------------------------------------------------------------------- API
@pytest.mark.parametrize("name", OUR_TASKS)
def test_api_conformance(name: str):
    task = get_task(name)
    env = task.env
    assert task.name == name == env.name
    assert task.num_actions == env.num_actions == env.action_space(task.default_params).n
    assert not task.continuous_actions
    expected_kind = {"tabular": "index", "random_gridworld": "image", "chain": "index"}[task.family]
    assert task.obs_kind == ("vector" if name == "chain/distractor" else expected_kind)
    obs_space = env.observation_space(task.default_params)
    if task.num_states is not None:
        assert task.obs_shape == () and obs_space.n == task.num_states
    else:
        assert tuple(obs_space.shape) == task.obs_shape

    # the task distribution: a batch of levels is one vmap
    levels = fast_jit(jax.vmap(task.sample_params))(jax.random.split(jax.random.PRNGKey(3), B_LEVELS))
    if task.family == "tabular":  # distinct object cells in every level, levels differ
        cells = np.asarray(levels.object_cells)
        assert all(len(set(row)) == len(row) for row in cells)
        assert len({tuple(row) for row in cells}) > 1
        assert cells.min() >= 0 and cells.max() < env.num_free_cells
    if task.family == "chain":
        lengths = np.asarray(levels.length)
        lo, hi = (5, 50) if name.startswith("chain/long") else (5, 30)
        assert lengths.min() >= lo and lengths.max() <= hi and len(set(lengths)) > 1
        assert set(np.asarray(levels.correct_action)) == {0, 1}
    levels = _short_episodes(task, levels)

    traj, inputs = run(name, levels, 2 * CHUNK, seed=1)
    traj_again, _ = run(name, levels, 2 * CHUNK, seed=1)
    for k in traj:  # determinism: same keys and actions, same trajectories
        np.testing.assert_array_equal(traj[k], traj_again[k], err_msg=k)

    obs = traj["obs"]
    assert obs.shape == (B_LEVELS, B_KEYS, 2 * CHUNK) + task.obs_shape
    if task.num_states is not None:
        assert obs.dtype == np.int32
        for o in (obs, traj["final_obs"], traj["prev_obs"]):
            assert o.min() >= 0 and o.max() < task.num_states
    else:
        assert obs.dtype == np.float32
        assert set(np.unique(obs)) <= {0.0, 1.0}
    if task.family == "random_gridworld":  # exactly one agent, objects never overlap
        assert np.all(obs[..., -1].sum(axis=(-1, -2)) == 1)
        assert np.all(obs.sum(axis=-1) <= 1)

    reward = traj["reward"]
    assert reward.dtype == np.float32
    assert set(np.unique(reward)) <= _allowed_rewards(task)
    term, trunc = traj["terminated"], traj["truncated"]
    assert term.dtype == bool and trunc.dtype == bool
    done = term | trunc
    assert done.any(), "the rollout should contain episode ends"

    # auto-reset: obs == final_observation unless done; the state's clock restarts;
    # truncation happens exactly at the level's step limit
    not_done = ~done
    np.testing.assert_array_equal(obs[not_done], traj["final_obs"][not_done])
    np.testing.assert_array_equal(traj["prev_obs"][:, :, 1:], obs[:, :, :-1])
    counter = np.zeros((B_LEVELS, B_KEYS), int)
    limit = np.asarray(levels.max_steps_in_episode)[:, None]
    for t in range(2 * CHUNK):
        counter += 1
        np.testing.assert_array_equal(trunc[:, :, t], counter >= limit)
        np.testing.assert_array_equal(traj["time"][:, :, t], np.where(done[:, :, t], 0, counter))
        counter[done[:, :, t]] = 0

    # the documented dynamics, transition by transition
    if task.family == "tabular":
        _check_tabular_transitions(env, levels, traj, inputs["actions"])
    elif task.family == "random_gridworld":
        _check_random_gridworld_transitions(env, traj, inputs["actions"])
    else:
        _check_chain_transitions(env, levels, traj, inputs["actions"])

    # batched (jit + vmap over levels and keys) == plain unbatched calls
    if name in UNBATCHED_CHECK:
        b, j = 1, 1
        level = jax.tree.map(lambda x: x[b], levels)
        reset, step = fast_jit(env.reset), fast_jit(env.step)
        o, state = reset(inputs["reset_keys"][b, j], level)
        np.testing.assert_array_equal(np.asarray(o), traj["prev_obs"][b, j, 0])
        for t in range(4):
            o, state, r, te, tr, _ = step(
                inputs["step_keys"][b, j, t], state, int(inputs["actions"][b, j, t]), level
            )
            np.testing.assert_array_equal(np.asarray(o), obs[b, j, t])
            assert float(r) == reward[b, j, t]
            assert bool(te) == term[b, j, t] and bool(tr) == trunc[b, j, t]


# ------------------------------------------------------------ specific dynamics
def test_sparse_gridworld_truncates_at_max_steps():
    task = get_task("gridworld/sparse")
    traj, _ = run("gridworld/sparse", broadcast_level(task.default_params), 2 * CHUNK, seed=2)
    term = traj["terminated"].reshape(-1, 2 * CHUNK)
    trunc = traj["truncated"].reshape(-1, 2 * CHUNK)
    n_truncated_first = 0
    for b in range(term.shape[0]):
        first_end = int(np.argmax(term[b] | trunc[b]))
        assert (term[b] | trunc[b])[first_end]
        if not term[b, first_end]:
            assert first_end == 49 and trunc[b, first_end]  # the 50th step
            n_truncated_first += 1
        else:
            assert first_end <= 49 and not trunc[b, :first_end].any()
    assert n_truncated_first > term.shape[0] // 2  # random walks rarely hit one of two cells
    # both objects terminate the episode: rewards come exactly with termination
    np.testing.assert_array_equal(traj["reward"] != 0, traj["terminated"])


@pytest.mark.parametrize("name", ["chain/short", "chain/long", "chain/short_noisy", "chain/distractor"])
def test_chain_first_action_decides_terminal_reward(name: str):
    task = get_task(name)
    env: DelayedChain = task.env
    levels = jax.vmap(task.sample_params)(jax.random.split(jax.random.PRNGKey(1), B_LEVELS))
    correct = np.asarray(levels.correct_action)
    # key 0 of each level starts with the correct action, key 1 with the wrong one
    first = np.stack([correct, 1 - correct], axis=1)  # [B_LEVELS, B_KEYS]
    actions = np.random.default_rng(0).integers(0, 2, size=(B_LEVELS, B_KEYS, CHUNK))
    actions[:, :, 0] = first
    traj, _ = run(name, levels, CHUNK, seed=3, actions=actions)
    lengths = np.asarray(levels.length)
    for b in range(B_LEVELS):
        L = lengths[b]
        for j, expected in enumerate([1.0, -1.0]):
            r, term, trunc = (traj[k][b, j] for k in ("reward", "terminated", "truncated"))
            assert term[L - 1] and not term[: L - 1].any() and not trunc[:L].any()
            assert r[L - 1] == expected
            if env.noisy:
                assert set(np.unique(r[: L - 1])) <= {-1.0, 1.0}
            else:
                assert r[: L - 1].sum() == 0 and r[:L].sum() == expected  # the return is +-1
            if not env.distractor:
                assert traj["final_obs"][b, j, L - 1] == first[b, j] * (env.max_len + 1) + L
    assert task.optimal_return(task.default_params) == 1.0


def test_chain_noise_is_balanced():
    task = get_task("chain/long_noisy")
    traj, _ = run("chain/long_noisy", broadcast_level(task.default_params), 2 * CHUNK, seed=4)
    r = traj["reward"][~traj["terminated"]]
    assert set(np.unique(r)) == {-1.0, 1.0}
    assert abs(r.mean()) < 4 / math.sqrt(r.size)


def test_respawned_object_is_not_collected_in_the_same_step():
    # 1x3 corridor, object with respawn prob. 1 in the middle; the agent starts at an end.
    env = GridWorld("...", [(1.0, 0.0, 1.0)], max_steps=10)
    params = env.sample_params(jax.random.PRNGKey(0)).replace(object_cells=jnp.array([1], jnp.int32))
    reset, step = fast_jit(env.reset), fast_jit(env.step)
    obs, state = reset(jax.random.PRNGKey(0), params)
    toward = 3 if int(state.cell) == 0 else 2  # right or left
    rewards, masks = [], []
    for t, a in enumerate([toward, 4, 4, 4, 4]):
        obs, state, r, term, trunc, _ = step(jax.random.PRNGKey(t), state, a, params)
        rewards.append(float(r))
        masks.append(int(obs) % 2)
    # collect, respawn under the agent (not collected), collect, ...
    assert rewards == [1.0, 0.0, 1.0, 0.0, 1.0]
    assert masks == [0, 1, 0, 1, 0]
    # and the DP agrees: from an end, 10 steps -> 1 + 4 pickups on steps 3, 5, 7, 9 = 5
    assert env.optimal_return(params) == pytest.approx(5.0, abs=1e-12)


# ------------------------------------------------------------------ optimal return
def _brute_force_values(env: GridWorld, params, horizon: int) -> dict[tuple[int, int], float]:
    """Expectimax over the explicitly enumerated outcomes, independent of `GridWorld.solve`.

    Returns the value of every (cell, presence mask) with `horizon` steps left.
    """
    free = env.free_mask
    H, W = free.shape
    coords = [tuple(rc) for rc in np.argwhere(free)]
    deltas = ACTION_DELTAS_9[: env.num_actions]
    obj_rc = [coords[int(c)] for c in np.asarray(params.object_cells)]
    props = [
        (float(r), float(p), float(q))
        for r, p, q in zip(
            np.asarray(params.object_rewards, np.float64).tolist(),
            np.asarray(params.object_term_probs, np.float64).tolist(),
            np.asarray(params.object_respawn_probs, np.float64).tolist(),
        )
    ]
    K = len(obj_rc)

    def step_target(rc, d):
        r, c = rc[0] + d[0], rc[1] + d[1]
        return (r, c) if 0 <= r < H and 0 <= c < W and free[r, c] else rc

    @functools.lru_cache(maxsize=None)
    def value(rc, present: tuple[bool, ...], n: int) -> float:
        if n == 0:
            return 0.0
        best = -math.inf
        for d in deltas:
            nrc = step_target(rc, d)
            reward, p_term, after = 0.0, 0.0, list(present)
            for k in range(K):
                if present[k] and obj_rc[k] == nrc:
                    reward, p_term = props[k][0], props[k][1]
                    after[k] = False
            expected_next = 0.0
            for outcome in itertools.product([False, True], repeat=K):
                prob, nxt = 1.0, list(after)
                for k in range(K):
                    if present[k]:  # present at the start of the step: cannot respawn
                        prob *= 0.0 if outcome[k] else 1.0
                    else:
                        prob *= props[k][2] if outcome[k] else 1.0 - props[k][2]
                        nxt[k] = nxt[k] or outcome[k]
                if prob > 0.0:
                    expected_next += prob * value(nrc, tuple(nxt), n - 1)
            best = max(best, reward + (1.0 - p_term) * expected_next)
        return best

    out = {}
    for cell, rc in enumerate(coords):
        for mask in range(2**K):
            present = tuple(bool((mask >> k) & 1) for k in range(K))
            out[(cell, mask)] = value(rc, present, horizon)
    return out


TINY_CASES = [
    # layout, objects, num_actions, object cells, horizon
    ("...\n...", [(1.0, 0.5, 0.3), (-1.0, 0.2, 0.6)], 5, [0, 4], 4),
    ("...\n...", [(1.0, 0.0, 0.5), (0.5, 1.0, 0.25)], 9, [5, 1], 4),
    ("..#\n...", [(1.0, 0.25, 0.75), (2.0, 0.5, 0.1)], 5, [2, 4], 5),
    ("...\n.#.\n...", [(1.0, 0.1, 0.2), (-0.5, 0.0, 0.9), (0.7, 0.3, 0.4)], 9, [0, 4, 7], 4),
]


@pytest.mark.parametrize("case", range(len(TINY_CASES)))
def test_dp_matches_brute_force_expectimax(case: int):
    layout, objects, num_actions, cells, horizon = TINY_CASES[case]
    env = GridWorld(layout, objects, max_steps=horizon, num_actions=num_actions)
    params = env.sample_params(jax.random.PRNGKey(0)).replace(
        object_cells=jnp.asarray(cells, jnp.int32)
    )
    values, policy = env.solve(params, return_policy=True)
    brute = _brute_force_values(env, params, horizon)
    M = 2**env.num_objects
    for (cell, mask), v in brute.items():
        assert values[cell * M + mask] == pytest.approx(v, abs=1e-9)
    starts = [c for c in range(env.num_free_cells) if c not in cells]
    expected = np.mean([brute[(c, M - 1)] for c in starts])
    assert env.optimal_return(params) == pytest.approx(expected, abs=1e-9)
    assert policy.shape == (horizon, env.num_states)


def test_dp_matches_monte_carlo_of_the_env():
    env = GridWorld(
        "...\n...\n...",
        [(1.0, 0.3, 0.4), (-1.0, 0.5, 0.6), (0.5, 0.0, 0.3)],
        max_steps=8,
        num_actions=5,
    )
    params = env.sample_params(jax.random.PRNGKey(0)).replace(
        object_cells=jnp.asarray([2, 4, 6], jnp.int32)
    )
    values, policy = env.solve(params, return_policy=True)
    target = env.optimal_return(params)
    policy = jnp.asarray(policy, jnp.int32)
    H = 8

    def episode(key):
        key_reset, key_roll = jax.random.split(key)
        obs, state = env.reset(key_reset, params)

        def body(carry, k):
            obs, state, alive, ret = carry
            a = policy[state.time, obs]
            obs, state, r, term, trunc, _ = env.step(k, state, a, params)
            ret = ret + jnp.where(alive, r, 0.0)
            alive = alive & ~(term | trunc)
            return (obs, state, alive, ret), None

        init = (obs, state, jnp.asarray(True), jnp.asarray(0.0))
        (_, _, alive, ret), _ = jax.lax.scan(body, init, jax.random.split(key_roll, H))
        return ret, alive

    N = 40_000
    returns, alive = fast_jit(jax.vmap(episode))(jax.random.split(jax.random.PRNGKey(42), N))
    returns = np.asarray(returns, np.float64)
    assert not np.asarray(alive).any()  # every episode ended within H steps
    stderr = returns.std() / math.sqrt(N)
    assert abs(returns.mean() - target) < 4 * stderr + 1e-3, (returns.mean(), target, stderr)


@pytest.mark.parametrize("name", tasks.TASK_SETS["lpg-tabular"])
def test_tabular_optimal_return_beats_random_policy(name: str):
    task = get_task(name)
    params = task.default_params
    opt = task.optimal_return(params)
    assert math.isfinite(opt) and opt > 0
    H = int(params.max_steps_in_episode)
    steps = -(-H // CHUNK) * CHUNK
    traj, _ = run(name, broadcast_level(params), steps, seed=5)
    done = (traj["terminated"] | traj["truncated"]).reshape(-1, steps)
    reward = traj["reward"].reshape(-1, steps)
    first_end = done.argmax(axis=1)
    assert done[np.arange(len(done)), first_end].all() and np.all(first_end < H)
    random_returns = [reward[i, : first_end[i] + 1].sum() for i in range(len(done))]
    assert opt >= np.mean(random_returns)


def test_layouts_and_dims_helpers():
    env = get_task("gridworld/long_dense").env
    assert env.grid_shape == (11, 11) and env.num_free_cells == 104  # four rooms
    assert parse_layout("..\n.#").tolist() == [[True, True], [True, False]]
    assert get_task("gridworld/longer_horizon").env.grid_shape == (7, 9)
    for name in OUR_TASKS:
        family, variant = name.split("/")
        task = get_task(name)
        if family == "gridworld":
            dims = gridworld_dims(variant)
            assert dims["num_states"] == task.num_states and dims["grid_shape"] == task.env.grid_shape
        elif family == "random_gridworld":
            dims = random_gridworld_dims(variant)
            assert dims["obs_shape"] == task.obs_shape
        else:
            dims = chain_dims(variant)
            assert dims["num_states"] == task.num_states and dims["obs_shape"] == task.obs_shape
        assert dims["max_steps"] == int(task.default_params.max_steps_in_episode)


# ------------------------------------------------------------------------ registry
def test_registry_gymnax_ids():
    cp = tasks.make("CartPole-v1")
    assert (cp.family, cp.num_actions, cp.obs_shape, cp.obs_kind) == ("classic", 2, (4,), "vector")
    assert not cp.continuous_actions and cp.num_states is None
    assert cp.sample_params(jax.random.PRNGKey(0)) is cp.default_params
    br = tasks.make("Breakout-MinAtar")
    assert (br.family, br.num_actions, br.obs_shape, br.obs_kind) == ("minatar", 3, (10, 10, 4), "image")
    pe = tasks.make("Pendulum-v1")
    assert pe.continuous_actions and pe.num_actions == 1 and pe.family == "classic"
    assert tasks.make("Catch-bsuite").family == "bsuite"
    fl = tasks.make("FrozenLake-misc")
    assert fl.family == "misc" and fl.obs_kind == "index" and fl.num_states == 16
    obs, _ = cp.env.reset(jax.random.PRNGKey(0), cp.default_params)
    assert obs.shape == (4,)


def test_registry_names_and_errors():
    names = tasks.list_tasks()
    assert len(OUR_TASKS) == len(set(OUR_TASKS)) == 15
    assert set(OUR_TASKS) <= set(names) and set(gymnax.registered_envs) <= set(names)
    with pytest.raises(ValueError, match=r"Unknown task 'gridworld/dens'\. Did you mean: gridworld/dense"):
        tasks.make("gridworld/dens")
    with pytest.raises(ValueError, match="learned-rl tasks"):
        tasks.make("no-such-thing-at-all")
    with pytest.raises(ValueError, match="Did you mean: brax/ant"):
        tasks.make("brax/antt")
    with pytest.raises(ValueError, match="Did you mean: lpg-tabular"):
        tasks.resolve("lpg-tabularr")
    with pytest.raises(ValueError, match="Did you mean: CartPole-v1"):
        tasks.resolve("chain/short,CartPole-v2")
    nine = tasks.make("gridworld/dense", num_actions=9)
    assert nine.num_actions == 9 and nine.env.action_space().n == 9
    with pytest.raises(ValueError):
        tasks.make("gridworld/dense", num_actions=7)


def test_task_sets_resolve():
    assert tasks.resolve("lpg-all") == (
        tasks.TASK_SETS["lpg-tabular"] + tasks.TASK_SETS["lpg-random"] + tasks.TASK_SETS["lpg-chain"]
    )
    for set_name, family in [("lpg-tabular", "tabular"), ("lpg-random", "random_gridworld"),
                             ("lpg-chain", "chain")]:
        names = tasks.resolve(set_name)
        assert len(names) == 5 and all(get_task(n).family == family for n in names)
    assert tasks.resolve("gridworld/sparse") == ["gridworld/sparse"]
    assert tasks.resolve("chain/short, Breakout-MinAtar,chain/short") == ["chain/short", "Breakout-MinAtar"]
    assert tasks.resolve("lpg-chain,chain/long") == tasks.TASK_SETS["lpg-chain"]
    minatar = tasks.resolve("minatar")
    assert {"Asterix-MinAtar", "Breakout-MinAtar", "Freeway-MinAtar", "SpaceInvaders-MinAtar"} <= set(minatar)
    assert all(tasks.make(n).family == "minatar" for n in minatar)
