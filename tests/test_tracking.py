"""Progress callbacks, TensorBoard tracking and the memory check of a run: the chunks a callback
sees are the run's metrics, the event files read back to the same numbers, a missing writer is a
one-line error, and so is a run too large for the machine."""

from __future__ import annotations

import sys

import jax
import numpy as np
import pytest

from learned_rl import TensorBoardTracker, read_scalars, run_seeds, tasks
from learned_rl._cli import main
from learned_rl.baselines import PPO

TASK = "CartPole-v1"


@pytest.fixture(scope="module")
def tiny():
    task = tasks.make(TASK)
    rule = PPO()
    return rule, task, rule.default_config(task).replace(total_steps=16 * 512)


def test_callback_chunks_are_the_runs_metrics(tiny):
    rule, task, config = tiny
    seen = []
    result = run_seeds(rule, task, config, num_seeds=2, seed=3, progress=False, callback=lambda name, m: seen.append((name, m)))
    assert len(seen) > 1 and {n for n, _ in seen} == {"ppo"}
    for k, v in result.metrics.items():
        joined = np.concatenate([m[k] for _, m in seen], axis=-1)
        np.testing.assert_array_equal(joined, v, err_msg=k)
    # the callback changes nothing: the same seed without it gives the same numbers
    again = run_seeds(rule, task, config, num_seeds=2, seed=3, progress=False)
    np.testing.assert_array_equal(again.metrics["return_sum"], result.metrics["return_sum"])


def test_tensorboard_events_read_back_to_the_metrics(tiny, tmp_path):
    rule, task, config = tiny
    tracker = TensorBoardTracker(tmp_path / "tb")
    result = run_seeds(rule, task, config, num_seeds=2, seed=0, progress=False, callback=tracker)
    tracker.close()
    scalars = read_scalars(tmp_path / "tb" / "ppo")
    m = result.metrics
    steps, _ = scalars["train/loss"]
    np.testing.assert_array_equal(steps, m["env_steps"].mean(axis=0).round().astype(int))
    assert np.all(np.diff(steps) > 0)
    np.testing.assert_allclose(scalars["train/loss"][1], m["loss"].mean(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(scalars["train/clip_fraction"][1], m["clip_fraction"].mean(axis=0), rtol=1e-5, atol=1e-6)
    ended = m["episodes"].sum(axis=0) > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        expect = np.nanmean(np.where(m["episodes"] > 0, m["return_sum"] / np.maximum(m["episodes"], 1), np.nan), axis=0)[ended]
    ret_steps, ret = scalars["return/mean"]
    np.testing.assert_array_equal(ret_steps, steps[ended])
    np.testing.assert_allclose(ret, expect, rtol=1e-5)
    assert ret[-1] > ret[0]  # CartPole's episode return rises within these 16 updates


def test_cli_track_writes_events_for_every_rule(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["compare", "--task", "chain/short", "--rules", "a2c,lpg:lpg_tabular", "--steps", "2560", "--seeds", "2", "--out", str(out), "--track", "tensorboard", "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    import json

    summary = json.loads((out / "summary.json").read_text())["results"]
    for rule, rule_dir in (("a2c", "a2c"), ("lpg:lpg_tabular", "lpg_lpg_tabular")):
        scalars = read_scalars(out / "tensorboard" / rule_dir)
        steps = scalars["train/loss"][0]
        assert len(steps) >= 2 and steps[-1] == summary[rule]["env_steps"], (rule, steps)


def test_missing_tracker_library_is_one_line_and_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # as if the track extra were not installed
    out = tmp_path / "run"
    rc = main(["train", "--rule", "a2c", "--task", "chain/short", "--steps", "2560", "--out", str(out), "--track", "tensorboard", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "pip install 'learned-rl[track]'" in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()
    assert main(["train", "--rule", "a2c", "--task", "chain/short", "--track", "wandb"]) == 2


def _room_for_the_first_check_only(monkeypatch, later_bytes: int) -> list:
    """Patch the free-memory figure: the machine's real one for the first check (the shapes), then
    `later_bytes` (the compiled program). Returns the list that counts the calls."""
    import learned_rl._memory as M

    real = M.available_memory
    calls: list = []

    def shrinking():
        calls.append(1)
        have, what = real()
        return (have, what) if len(calls) == 1 else (later_bytes, what)

    monkeypatch.setattr(M, "available_memory", shrinking)
    return calls


def test_a_run_too_large_for_memory_is_refused_before_it_starts(tmp_path, capsys, monkeypatch):
    """A million CartPole seeds need ~200 GiB of learner states alone: refused in one line, with the
    estimate and the machine's figure, before anything is allocated or written."""
    out = tmp_path / "run"
    rc = main(["train", "--rule", "ppo", "--task", "CartPole-v1", "--seeds", "1000000", "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert "GiB of learner states" in err and "available RAM" in err and "would fit" in err, err
    assert not out.exists()

    # the second check: XLA's memory analysis of the compiled chunk, against a machine that has
    # room for the states but not for the program
    import learned_rl._experiment as E

    calls = _room_for_the_first_check_only(monkeypatch, 1 << 20)
    task = tasks.make("CartPole-v1")
    with pytest.raises(E.RunTooLarge, match="for the compiled program"):
        run_seeds(PPO(), task, PPO().default_config(task).replace(total_steps=2048), num_seeds=2, progress=False)
    assert len(calls) == 2


def test_a_meta_training_run_too_large_for_memory_is_refused_before_it_starts(tmp_path, capsys, monkeypatch):
    """Meta-training checks its meta-state from shapes before allocating it, then XLA's analysis of
    the compiled meta-step before running it: each refusal is one line and leaves no checkpoint."""
    out = tmp_path / "meta"
    rc = main(["meta-train", "lpg", "--tasks", "lpg-tabular", "--set", "lifetimes_per_task=2000000", "--meta-steps", "1", "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert "GiB of meta-state" in err and "available RAM" in err and "lifetimes_per_task" in err, err
    assert not out.exists()

    import learned_rl._memory as M
    from learned_rl.meta import meta_train
    from learned_rl.meta._presets import get_preset

    calls = _room_for_the_first_check_only(monkeypatch, 1 << 10)
    task = tasks.make("chain/short")
    preset = get_preset("cpu", hidden_size=8, prediction_dim=4, lifetimes_per_task=2, num_envs=2, rollout_len=4, inner_steps=2, lifetime_updates=4, steps=1)
    rule, est, cfg = preset.build([task], key=jax.random.PRNGKey(0))
    with pytest.raises(M.RunTooLarge, match="for the compiled meta-step"):
        meta_train(rule, [task], est, cfg, key=jax.random.PRNGKey(1))
    assert len(calls) == 2


def test_meta_train_track_writes_every_metrics_row(tmp_path, capsys):
    """`meta-train --track tensorboard`: each metrics.csv row reads back from the event files, at
    its meta-step; a resumed run adds the rows of its new steps, and what an interrupted run had
    logged past its last checkpoint is purged, not read twice."""
    import csv

    out = tmp_path / "meta"
    tiny = ["--set", "hidden_size=8", "--set", "prediction_dim=4", "--set", "lifetimes_per_task=2", "--set", "num_envs=4",
            "--set", "rollout_len=8", "--set", "lifetime_updates=12", "--set", "inner_steps=3", "--no-progress"]
    run = ["meta-train", "lpg", "--tasks", "chain/short", "--out", str(out), "--track", "tensorboard", *tiny]
    assert main([*run, "--meta-steps", "20"]) == 0, capsys.readouterr().err
    # a run killed after its last checkpoint (step 20) had logged step 30 already
    interrupted = TensorBoardTracker(out / "tensorboard")
    interrupted.log_row({"step": 30, "meta_loss": 999.0, "critic_loss": 999.0, "lifetime_return/chain/short": 999.0})
    interrupted.close()
    assert main([*run, "--meta-steps", "30", "--resume"]) == 0, capsys.readouterr().err
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert [int(r["step"]) for r in rows] == [10, 20, 30]
    scalars = read_scalars(out / "tensorboard" / "meta")
    for col in ("meta_loss", "critic_loss", "lifetime_return/chain/short"):
        steps, values = scalars[f"meta/{col}"]
        np.testing.assert_array_equal(steps, [10, 20, 30])
        np.testing.assert_allclose(values, [float(r[col]) for r in rows], rtol=1e-6, err_msg=col)
    assert "meta/step" not in scalars
