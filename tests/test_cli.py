"""The `learned-rl` command line: outputs and bad input."""

import csv
import json
import subprocess
import sys

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
