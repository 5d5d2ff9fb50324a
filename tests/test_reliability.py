"""Reliability of meta-training: kill -9 and resume, divergence and NaN guards, bad input, bitwise
determinism, compiling once, and the population split across (forced CPU) devices.

Subprocess runs share one persistent compilation cache (a temporary directory), so only the first
one compiles the meta-step. The two subprocess tests (kill -9 and resume; 4 forced CPU devices, LPG
lifetimes and an ES population) take about 30 s each on 2 CPU cores and run in the default suite.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
import numpy as np
import pytest

from learned_rl import tasks
from learned_rl._checkpoint import CheckpointError, load, read_header
from learned_rl._cli import main
from learned_rl.meta import MetaTrainConfig, TruncatedMetaGradient, meta_train
from learned_rl.meta._meta_train import meta_init
from learned_rl.meta._presets import build, get_preset
from learned_rl.meta._run import STATE_KIND, run_meta_train
from learned_rl.rules._lpg import LPG, LPGNetwork

TINY = dict(hidden_size=8, prediction_dim=4, lifetimes_per_task=2, num_envs=4, rollout_len=8, lifetime_updates=12, inner_steps=3, learning_rates=(10.0, 20.0), alpha_ys=(0.5,))
TINY_SETS = [a for k, v in TINY.items() for a in ("--set", f"{k}={json.dumps(list(v) if isinstance(v, tuple) else v)}")]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

def fast_jit(f):
    """jit without XLA's backend optimisations: these tiny test programs compile several times
    faster (the same trick as tests/test_tasks.py)."""
    return eqx.filter_jit(f, compiler_options={"xla_backend_optimization_level": 0})


# -- compile/trace events, to check that bad input is refused before JAX compiles anything
_EVENTS: list[str] = []
_RECORDING = [False]


def _listener(event, duration, **kwargs):
    if _RECORDING[0] and event in ("/jax/core/compile/backend_compile_duration", "/jax/core/compile/jaxpr_trace_duration"):
        _EVENTS.append(event)


jax.monitoring.register_event_duration_secs_listener(_listener)


def _raises_before_compiling(exc, match, fn):
    _EVENTS.clear()
    _RECORDING[0] = True
    try:
        with pytest.raises(exc, match=match):
            fn()
    finally:
        _RECORDING[0] = False
    assert not _EVENTS, f"compiled/traced before raising: {_EVENTS}"


@pytest.fixture(scope="module")
def cache_env(tmp_path_factory):
    env = dict(os.environ)
    env.update(
        JAX_COMPILATION_CACHE_DIR=str(tmp_path_factory.mktemp("jax-cache")),
        JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
        JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0",
        PYTHONPATH=ROOT + os.pathsep + env.get("PYTHONPATH", ""),
        # the tiny programs compile several times faster unoptimised; every run of a test shares it
        XLA_FLAGS=(env.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip(),
    )
    return env


def _cli(*args):
    return [sys.executable, "-m", "learned_rl", *args]


# --------------------------------------------------------------------------------- crash safety


def test_kill_9_then_resume_equals_uninterrupted_run(tmp_path, cache_env):
    steps = 60
    common = ["meta-train", "lpg", "--tasks", "chain/short", "--meta-steps", str(steps), "--seed", "3", "--no-progress", "--checkpoint-every", "0.01", *TINY_SETS]
    full, part = tmp_path / "full", tmp_path / "part"
    r = subprocess.run(_cli(*common, "--out", str(full)), env=cache_env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr

    # start again, kill -9 as soon as a checkpoint exists
    proc = subprocess.Popen(_cli(*common, "--out", str(part)), env=cache_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    ckpt = part / "checkpoint.eqx"
    deadline = time.time() + 600
    while not ckpt.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, f"the run ended before it could be killed: {proc.stderr.read()}"
    assert not (part / "rule.eqx").exists()
    header, _ = read_header(ckpt)  # the last checkpoint is complete and its checksum holds
    assert header["kind"] == STATE_KIND and header["config"]["seed"] == 3

    # a resumed run writes the same bytes as the uninterrupted one (CPU, same seed and config)
    r = subprocess.run(_cli(*common, "--out", str(part), "--resume"), env=cache_env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert (part / "metrics.csv").read_bytes() == (full / "metrics.csv").read_bytes()
    assert (part / "rule.eqx").read_bytes() == (full / "rule.eqx").read_bytes()
    assert (part / "checkpoint.eqx").read_bytes() == (full / "checkpoint.eqx").read_bytes()
    rows = (full / "metrics.csv").read_text().splitlines()
    assert len(rows) == 1 + steps // 10 and "agent_resets" in rows[0]


def _tiny_run_dir(tmp_path):
    out = tmp_path / "run"
    meta = run_meta_train("lpg", "chain/short", steps=2, out=out, progress=False, log_every=1, checkpoint_every=0.0, preset_overrides=TINY)
    return out, meta


def test_nan_meta_gradient_never_reaches_params_or_checkpoint_and_bad_checkpoints_are_refused(tmp_path, capsys, monkeypatch):
    # a NaN meta-gradient on every step: every step is skipped, counted, and neither the
    # meta-parameters nor the checkpoint ever change (and the meta-step compiles once)
    traces = []
    real = TruncatedMetaGradient.estimate

    def nan_estimate(self, meta_params, rule_static, state, *, key):
        traces.append(1)
        loss, grads, state, metrics = real(self, meta_params, rule_static, state, key=key)
        return loss, jax.tree.map(lambda g: g * jnp.nan, grads), state, metrics

    monkeypatch.setattr(TruncatedMetaGradient, "estimate", nan_estimate)
    out, meta = _tiny_run_dir(tmp_path)
    monkeypatch.setattr(TruncatedMetaGradient, "estimate", real)
    assert len(traces) == 1, f"the meta-step was traced {len(traces)} times for 2 steps"
    assert meta["skipped_steps"] == 2
    rows = (out / "metrics.csv").read_text().splitlines()
    assert [r.split(",")[rows[0].split(",").index("skipped")] for r in rows[1:]] == ["1", "1"]
    ts = [tasks.make("chain/short")]
    p = get_preset("cpu", steps=2, **TINY)
    k_rule, k_meta = jax.random.split(jax.random.PRNGKey(0))
    rule0, est, cfg = build(p, ts, key=k_rule)
    like = eqx.filter_eval_shape(meta_init, rule0, ts, est, cfg, key=k_meta)
    _, saved = load(out / "checkpoint.eqx", lambda c: like, kind=STATE_KIND)
    assert int(saved.step) == 2 and int(saved.skipped) == 2
    from learned_rl._rules_io import load_rule

    for a, b, c in zip(jax.tree.leaves(eqx.filter(rule0, eqx.is_inexact_array)), jax.tree.leaves(eqx.filter(saved.rule, eqx.is_inexact_array)), jax.tree.leaves(eqx.filter(load_rule(out / "rule.eqx"), eqx.is_inexact_array))):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)

    # bad checkpoints: one line on stderr naming the file and what is wrong, exit 2, never used
    # (with no older checkpoint to fall back on: test_resume_falls_back_... covers that)
    (out / "checkpoint.prev.eqx").unlink()
    ckpt = out / "checkpoint.eqx"
    good = ckpt.read_bytes()
    args = ["meta-train", "lpg", "--tasks", "chain/short", "--meta-steps", "4", "--out", str(out), "--resume", "--no-progress", *TINY_SETS]
    cases = [
        (good[:-100], [], "truncated"),
        (good[:-9] + bytes([good[-9] ^ 0xFF]) + good[-8:], [], "checksum"),
        (b"", [], "not a learned-rl file"),
        (good, ["--seed", "1"], "seed"),
        (good, ["--set", "hidden_size=16"], "preset.hidden_size"),
        (good, ["--tasks", "chain/long"], "tasks"),
    ]
    for data, extra, needle in cases:
        ckpt.write_bytes(data)
        before = sorted(p.name for p in out.iterdir())
        assert main([*args, *extra]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(ckpt) in err[0] and needle in err[0], (needle, err)
        assert sorted(p.name for p in out.iterdir()) == before and ckpt.read_bytes() == data
    # a checkpoint whose arrays do not fit its config is refused too
    ckpt.write_bytes(good)
    with pytest.raises(CheckpointError, match="do not match its config"):
        load(ckpt, lambda c: jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape + (1,), s.dtype) if isinstance(s, jax.ShapeDtypeStruct) else s, like), kind=STATE_KIND)


# --------------------------------------------------------------------------------- numerical guards


def test_diverged_lifetime_is_reset_counted_and_left_out_of_the_meta_gradient():
    ts = [tasks.make("chain/short")]
    est = TruncatedMetaGradient(**{**{k: v for k, v in TINY.items() if k not in ("hidden_size", "prediction_dim")}, "lifetimes_per_task": 3, "lifetime_updates": 40}).bind(ts)
    rule = LPG(LPGNetwork(8, 4, key=jax.random.PRNGKey(0)))
    params, static = eqx.partition(rule, eqx.is_inexact_array)
    state = fast_jit(lambda r, k: est.init(r, ts, key=k))(rule, jax.random.PRNGKey(1))
    g = state.groups[0]
    # each lifetime's agent optimiser runs at its bandit arm's learning rate (this was a silent
    # no-op with optax 0.2's InjectStatefulHyperparamsState)
    arm_lrs = np.asarray([lr for lr, _ in est.problem.arms], np.float32)[np.asarray(g.arm)]
    np.testing.assert_array_equal(np.asarray(optax.tree_utils.tree_get(g.learner.opt_state, "learning_rate")), arm_lrs)
    # lifetime 1: NaN agent weights; lifetime 2: an infinite learning rate (it blows up in its first update)
    agent = jax.tree.map(lambda x: x.at[1].set(jnp.nan) if eqx.is_inexact_array(x) else x, g.learner.agent)
    lr = g.learner.opt_state
    lr = optax.tree_utils.tree_set(lr, learning_rate=jnp.array([10.0, 10.0, jnp.inf], jnp.float32))
    # full-length lifetimes (the staggered first ones never reach the bandit; see test_lpg_metagrad)
    g = eqx.tree_at(lambda l: (l.learner.agent, l.learner.opt_state, l.staggered), g, (agent, lr, jnp.zeros_like(g.staggered)))
    state = eqx.tree_at(lambda s: s.groups, state, (g,))
    key = jax.random.PRNGKey(2)
    loss, grads, new, metrics = fast_jit(lambda p, s: est.estimate(p, static, s, key=key))(params, state)

    assert int(metrics["agent_resets"]) == 2 and int(metrics["agent_resets/chain/short"]) == 2
    assert np.isfinite(float(loss)) and all(np.all(np.isfinite(x)) for x in jax.tree.leaves(grads))
    assert float(sum(jnp.sum(jnp.abs(x)) for x in jax.tree.leaves(grads))) > 0
    lts = new.groups[0]
    np.testing.assert_array_equal(lts.age[1:], [0, 0])  # both restarted as fresh lifetimes
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(eqx.filter(lts, eqx.is_inexact_array)))
    assert int(jnp.sum(new.bandits[0].counts)) >= 2  # the diverged lifetimes were reported to the bandit

    # the meta-gradient is exactly lifetime 0's: the diverged ones contributed nothing
    ks = jax.random.split(jax.random.split(key, 2)[0], 3)
    lt0 = jax.tree.map(lambda x: x[0], state.groups[0])
    (l0, _), g0 = fast_jit(eqx.filter_value_and_grad(lambda p: est.problem.member_loss(p, static, 0, lt0, key=ks[0]), has_aux=True))(params)
    np.testing.assert_allclose(float(loss), float(l0), rtol=1e-5)
    for a, b in zip(jax.tree.leaves(grads), jax.tree.leaves(g0)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-7)


# --------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "args, needle",
    [
        (["meta-train", "lpx", "--tasks", "chain/short"], "invalid choice"),
        (["meta-train", "lpg", "--tasks", "chain/shrt"], "chain/short"),
        (["meta-train", "lpg", "--tasks", "chain/short", "--preset", "tpu-pod"], "Unknown preset 'tpu-pod'"),
        (["meta-train", "lpg", "--tasks", "chain/short", "--bogus"], "unrecognized arguments"),
        (["meta-train", "lpg", "--tasks", "chain/short", "--meta-steps", "0"], "--meta-steps must be positive"),
        (["meta-train", "lpg", "--tasks", "chain/short", "--meta-steps", "-3"], "--meta-steps must be positive"),
        (["meta-train", "lpg", "--tasks", "chain/short", "--set", "lifetimes_per_task=0"], "'lifetimes_per_task' must be a positive integer"),
        (["meta-train", "lpg", "--tasks", "chain/short", "--set", "num_envs=-4"], "'num_envs' must be a positive integer"),
        (["meta-train", "lpg", "--tasks", "chain/short", "--set", "hidden_size=big"], "'hidden_size' must be a positive integer"),
        (["meta-train", "lpg", "--tasks", "chain/short", "--set", "inner_steps=20", "--set", "lifetime_updates=10"], "longer than a lifetime"),
        (["meta-train", "lpg", "--tasks", "chain/short", "--set", "bogus=1"], "unknown preset fields ['bogus']"),
        (["meta-train", "lpg", "--tasks", "chain/short", "--set", "cell=rnn"], "'lstm' or 'gru'"),
        (["meta-train", "lpg", "--tasks", "chain/short", "--set", "regularizer=l2"], "'paper' or 'logits'"),
        (["meta-train", "lpg", "--tasks", "chain/short", "--set", "variant=q"], "'y' or 'v'"),
        (["meta-train", "lpg", "--tasks", "chain/short", "--variant", "q"], "invalid choice"),
        (["meta-train", "lpo", "--task", "chain/short", "--variant", "v"], "--variant is an lpg option"),
        (["train", "--rule", "lpg-v:lpg_tabular", "--task", "chain/short"], "not LPG-V"),
        (["meta-train", "lpg", "--tasks", "chain/short", "--set", 'task_weights={"chain/long": 2}'], "not meta-trained on: ['chain/long']"),
        (["meta-train", "lpg", "--tasks", "chain/short", "--set", 'task_weights={"chain/short": -1}'], "map task names to positive numbers"),
        (["meta-train", "lpg", "--tasks", "chain/short", "--set", "meta_lr"], "FIELD=VALUE"),
        (["meta-train", "lpg", "--tasks", "chain/short", "--devices", "0"], "devices must be a positive integer"),
        (["meta-train", "lpg", "--tasks", "chain/short", "--devices", "many"], "devices must be a positive integer or 'all'"),
        (["meta-train", "lpg", "--tasks", "chain/short", "--devices", "64"], "only"),
        (["meta-train", "lpg", "--tasks", "chain/short", "--checkpoint-every", "0"], "--checkpoint-every must be positive"),
        (["meta-train", "lpo", "--task", "chain/short", "--snapshot-every", "-2"], "--snapshot-every must be a positive number"),
        (["meta-train", "lpg", "--tasks", "chain/short", "--coordinator", "h:1"], "need --distributed"),
        (["meta-train", "lpg", "--tasks", "chain/short", "--distributed", "--num-processes", "2"], "or none (auto-detect)"),
        (["meta-train", "lpg", "--tasks", "chain/short", "--distributed", "--coordinator", "h:1", "--num-processes", "2", "--process-id", "2"], "must be less than"),
        (["meta-train", "lpg", "--tasks", "Pendulum-v1", *TINY_SETS], "continuous actions"),
        (["train", "--rule", "lpo:lpg_tabular", "--task", "chain/short"], "expected 'lpo'"),
    ],
)
def test_bad_meta_train_input_is_one_line_and_writes_nothing(tmp_path, capsys, args, needle):
    out = tmp_path / "out"
    assert main([*args, "--out", str(out)]) == 2
    lines = [l for l in capsys.readouterr().err.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in lines[0], lines
    assert needle in lines[0], lines
    assert not out.exists()


def test_bad_python_api_input_raises_before_any_compilation():
    from learned_rl.baselines import A2C

    ts = [tasks.make("chain/short")]
    pend = [tasks.make("Pendulum-v1")]
    kw = {k: v for k, v in TINY.items() if k not in ("hidden_size", "prediction_dim")}
    est = TruncatedMetaGradient(**kw).bind(ts)
    est_p = TruncatedMetaGradient(**kw).bind(pend)
    rule = LPG(LPGNetwork(8, 4, key=jax.random.PRNGKey(0)))
    cfg = MetaTrainConfig(steps=1)
    key = jax.random.PRNGKey(0)
    cases = [
        (ValueError, "steps must be a positive integer", lambda: MetaTrainConfig(steps=0)),
        (ValueError, "devices must be a positive integer", lambda: MetaTrainConfig(devices=0)),
        (ValueError, "devices must be a positive integer or 'all'", lambda: MetaTrainConfig(devices="two")),
        (ValueError, "only 1", lambda: meta_train(rule, ts, est, MetaTrainConfig(steps=1, devices=len(jax.devices()) + 1), key=key)),
        (ValueError, "at least one task", lambda: meta_train(rule, [], est, cfg, key=key)),
        (TypeError, "learned rule with a network", lambda: meta_train(A2C(), ts, est, cfg, key=key)),
        (ValueError, "continuous actions", lambda: meta_train(rule, pend, est_p, cfg, key=key)),
        (ValueError, "longer than a lifetime", lambda: TruncatedMetaGradient(inner_steps=10, lifetime_updates=5)),
        (ValueError, "num_envs must be a positive integer", lambda: TruncatedMetaGradient(num_envs=0)),
        (ValueError, "unknown rule kind 'lpx'", lambda: run_meta_train("lpx", "chain/short", out="/nonexistent/x")),
        (ValueError, "Unknown preset 'tpu-pod'", lambda: run_meta_train("lpg", "chain/short", preset="tpu-pod", out="/nonexistent/x")),
        (ValueError, "gridworld/dense", lambda: run_meta_train("lpg", "gridworld/dens", out="/nonexistent/x")),
        (ValueError, "'lifetime_updates' must be a positive integer", lambda: run_meta_train("lpg", "chain/short", preset_overrides={"lifetime_updates": -1}, out="/nonexistent/x")),
        (ValueError, "longer than a lifetime", lambda: run_meta_train("lpg", "chain/short", preset_overrides={"inner_steps": 50, "lifetime_updates": 5}, out="/nonexistent/x")),
        (ValueError, "devices must be a positive integer", lambda: run_meta_train("lpg", "chain/short", devices=-1, out="/nonexistent/x")),
        (ValueError, "'gamma' must be a positive number at most 1", lambda: get_preset("cpu", gamma=1.5)),
    ]
    for exc, match, fn in cases:
        _raises_before_compiling(exc, match, fn)


# --------------------------------------------------------------------------------- several devices


_DEVICES_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import equinox as eqx, jax, numpy as np
    from jax.sharding import PartitionSpec
    from learned_rl import tasks
    from learned_rl.meta import MetaTrainConfig, TruncatedMetaGradient, meta_train
    from learned_rl.rules._lpg import LPG, LPGNetwork

    assert len(jax.devices()) == 4
    ts = [tasks.make("chain/short")]
    kw = dict(lifetimes_per_task=4, num_envs=4, rollout_len=8, lifetime_updates=12, inner_steps=3, learning_rates=(10.0, 20.0), alpha_ys=(0.5,))
    traces = []
    real = TruncatedMetaGradient.estimate
    def counting(self, *a, **k):
        traces.append(1)
        return real(self, *a, **k)
    TruncatedMetaGradient.estimate = counting
    rule = LPG(LPGNetwork(8, 4, key=jax.random.PRNGKey(0)))
    out = {}
    for devices in (None, 4):
        del traces[:]
        r, st, hist = meta_train(rule, ts, TruncatedMetaGradient(**kw), MetaTrainConfig(steps=4, meta_lr=1e-3, devices=devices), key=jax.random.PRNGKey(1))
        age = st.estimator_state.groups[0].age
        out[str(devices)] = dict(
            params=[np.asarray(x).tolist() for x in jax.tree.leaves(eqx.filter(r, eqx.is_inexact_array))],
            meta_loss=hist["meta_loss"].tolist(), grad_norm=hist["grad_norm"].tolist(),
            traces=len(traces), skipped=int(st.skipped),
            spec=[str(a) for a in getattr(age.sharding, "spec", ())], num_devices=len(age.sharding.device_set),
            shard_shape=list(age.addressable_shards[0].data.shape),
        )
    # the ES population (8 members, each a real PPO run with an LPO drift) split over 4 devices
    from learned_rl.meta import EvolutionStrategies
    from learned_rl.rules._lpo import make_lpo
    lpo = make_lpo(key=jax.random.PRNGKey(2), width=8)
    for devices in (None, 4):
        es = EvolutionStrategies(population=8, sigma=0.05, inner_env_steps=2560, eval_center=False)
        r, st, hist = meta_train(lpo, ts, es, MetaTrainConfig(steps=2, meta_lr=0.02, devices=devices), key=jax.random.PRNGKey(3))
        out["es-" + str(devices)] = dict(
            params=[np.asarray(x).tolist() for x in jax.tree.leaves(eqx.filter(r, eqx.is_inexact_array))],
            fitness=hist["fitness_mean"].tolist(), fitness_std=hist["fitness_std"].tolist(),
            grad_norm=hist["grad_norm"].tolist(), skipped=int(st.skipped),
        )
    errors = []
    for bad in (dict(kw, lifetimes_per_task=2), kw):
        try:
            meta_train(rule, ts, TruncatedMetaGradient(**bad), MetaTrainConfig(steps=1, devices=4 if bad is not kw else 8), key=jax.random.PRNGKey(1))
        except ValueError as e:
            errors.append(str(e))
    out["errors"] = errors
    print("RESULT " + json.dumps(out))
    """
)


@pytest.mark.slow  # a subprocess on 4 forced CPU devices: 35 s on 2 cores
def test_population_split_over_4_cpu_devices_matches_one_device(cache_env):
    env = dict(cache_env)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4").strip()
    r = subprocess.run([sys.executable, "-c", _DEVICES_SCRIPT], env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(next(l for l in r.stdout.splitlines() if l.startswith("RESULT "))[7:])
    one, four = out["None"], out["4"]
    assert four["spec"] == ["population"] and four["num_devices"] == 4 and four["shard_shape"] == [1]
    assert one["num_devices"] == 1
    # one compiled meta-step per run, sharded or not
    assert one["traces"] == 1 and four["traces"] == 1
    assert one["skipped"] == four["skipped"] == 0
    np.testing.assert_allclose(four["meta_loss"], one["meta_loss"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(four["grad_norm"], one["grad_norm"], rtol=1e-4, atol=1e-6)
    for a, b in zip(four["params"], one["params"]):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)
    es1, es4 = out["es-None"], out["es-4"]
    assert es1["skipped"] == es4["skipped"] == 0 and min(es1["grad_norm"]) > 0
    assert max(es1["fitness_std"]) > 0  # the members differ, so ranks (and the gradient) mean something
    np.testing.assert_allclose(es4["fitness"], es1["fitness"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(es4["grad_norm"], es1["grad_norm"], rtol=1e-4, atol=1e-6)
    for a, b in zip(es4["params"], es1["params"]):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)
    assert "population (2) is not divisible by the number of devices (4)" in out["errors"][0]
    assert "devices=8 but only 4" in out["errors"][1]


@pytest.mark.slow  # three subprocesses: 30 s on 2 cores
def test_two_processes_with_jax_distributed_match_one_process(tmp_path, cache_env):
    """Two "hosts" (processes on this machine, one CPU device each, gloo collectives) split the
    lifetimes with `--distributed --devices all`; process 0 writes the files, which match a
    one-process run."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    common = ["meta-train", "lpg", "--tasks", "chain/short", "--meta-steps", "4", "--no-progress", *TINY_SETS]
    one = subprocess.run(_cli(*common, "--out", str(tmp_path / "one")), env=cache_env, capture_output=True, text=True, timeout=600)
    assert one.returncode == 0, one.stderr[-2000:]
    procs = [
        subprocess.Popen(
            _cli(*common, "--out", str(tmp_path / "two"), "--devices", "all", "--distributed", "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(i)),
            env=cache_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for i in range(2)
    ]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-2000:]
    a = np.genfromtxt(tmp_path / "one" / "metrics.csv", delimiter=",", names=True)
    b = np.genfromtxt(tmp_path / "two" / "metrics.csv", delimiter=",", names=True)
    assert a.dtype.names == b.dtype.names
    for k in a.dtype.names:
        np.testing.assert_allclose(b[k], a[k], rtol=1e-5, atol=1e-7, err_msg=k)
    from learned_rl import load_rule

    ra, rb = load_rule(tmp_path / "one" / "rule.eqx"), load_rule(tmp_path / "two" / "rule.eqx")
    for x, y in zip(jax.tree.leaves(eqx.filter(ra, eqx.is_inexact_array)), jax.tree.leaves(eqx.filter(rb, eqx.is_inexact_array))):
        np.testing.assert_allclose(np.asarray(y), np.asarray(x), rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- resume that always resumes


def test_resume_falls_back_to_the_previous_checkpoint_and_replays_its_pending_metrics(tmp_path, capsys):
    """A newest checkpoint that fails its checksum is named in a notice and the run resumes from
    checkpoint.prev.eqx; here that is the checkpoint written right after the first meta-step, in
    the middle of a logging window, so the resumed run must also replay that window's metrics to
    write the same rows and bytes as an uninterrupted run."""
    kw = dict(progress=False, log_every=5, preset_overrides=TINY)
    run_meta_train("lpg", "chain/short", steps=10, out=tmp_path / "full", **kw)
    part = tmp_path / "part"
    run_meta_train("lpg", "chain/short", steps=10, out=part, checkpoint_every=1e9, **kw)
    prev_header, _ = read_header(part / "checkpoint.prev.eqx")
    assert [s for s, _ in prev_header["pending_metrics"]] == [1]  # the first checkpoint: after meta-step 1
    ckpt = part / "checkpoint.eqx"
    data = bytearray(ckpt.read_bytes())
    data[-5] ^= 0xFF
    ckpt.write_bytes(bytes(data))
    (part / "rule.eqx").unlink()
    capsys.readouterr()
    run_meta_train("lpg", "chain/short", steps=10, out=part, resume=True, **kw)
    err = [l for l in capsys.readouterr().err.splitlines() if l.strip()]
    assert len(err) == 1 and err[0].startswith("notice:") and "checksum" in err[0] and "checkpoint.prev.eqx" in err[0], err
    for name in ("rule.eqx", "checkpoint.eqx", "metrics.csv"):
        assert (part / name).read_bytes() == (tmp_path / "full" / name).read_bytes(), name


def test_resume_before_the_first_checkpoint_starts_from_the_beginning(tmp_path, capsys):
    args = ["meta-train", "lpg", "--tasks", "chain/short", "--meta-steps", "2", "--no-progress", *TINY_SETS]
    full = tmp_path / "full"
    assert main([*args, "--out", str(full)]) == 0
    # a run killed while compiling leaves config.json and nothing else
    part = tmp_path / "part"
    part.mkdir()
    (part / "config.json").write_bytes((full / "config.json").read_bytes())
    capsys.readouterr()
    assert main([*args, "--out", str(part), "--resume"]) == 0
    err = [l for l in capsys.readouterr().err.splitlines() if l.strip()]
    assert len(err) == 1 and "no checkpoint yet" in err[0] and "starting from the beginning" in err[0], err
    for name in ("rule.eqx", "checkpoint.eqx", "metrics.csv"):
        assert (part / name).read_bytes() == (full / name).read_bytes(), name
    # a directory that does not exist yet: the same
    assert main([*args, "--out", str(tmp_path / "new"), "--resume"]) == 0
    assert (tmp_path / "new" / "rule.eqx").exists()


@pytest.mark.parametrize("what", ["other_config", "other_files"])
def test_resume_refuses_another_runs_directory_and_writes_nothing(tmp_path, capsys, what):
    out = tmp_path / "other"
    out.mkdir()
    if what == "other_config":
        assert main(["meta-train", "lpg", "--tasks", "chain/short", "--meta-steps", "1", "--no-progress", "--out", str(tmp_path / "src"), *TINY_SETS]) == 0
        (out / "config.json").write_bytes((tmp_path / "src" / "config.json").read_bytes())
        extra, needle = ["--seed", "5"], "another run's directory (seed differ)"
    else:
        (out / "notes.txt").write_text("not a run")
        extra, needle = [], "holds other files (notes.txt)"
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    assert main(["meta-train", "lpg", "--tasks", "chain/short", "--meta-steps", "2", "--no-progress", "--out", str(out), "--resume", *extra, *TINY_SETS]) == 2
    err = [l for l in capsys.readouterr().err.splitlines() if l.strip()]
    assert len(err) == 1 and err[0].startswith("error:") and needle in err[0], err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
