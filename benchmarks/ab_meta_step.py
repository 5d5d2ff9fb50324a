"""An LPG meta-step of this working tree against the same meta-step of another revision, side by
side: A B A B, each side a fresh subprocess (compile, then timed meta-steps), and the ratio of
every pair.

Run: `.venv/bin/python benchmarks/ab_meta_step.py --base HEAD~1 [--case cpu-mix] [--steps 10] [--rounds 3]`.

The base revision is checked out with `git worktree` into a temporary directory and imported from
there (`PYTHONPATH`); this tree is imported as installed. Both sides build the same preset on the
same tasks with the same keys, so the script also prints how far apart their meta-losses and
meta-parameters are after the timed steps (0 when the change is bitwise neutral; float rounding
where it changes the order of sums).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = {  # case: (preset, tasks, overrides)
    "cpu": ("cpu", "lpg-tabular", {}),
    "cpu-mix": ("cpu", "gridworld/dense,gridworld/long_horizon,gridworld/long_dense,random_gridworld/small", {"task_torsos": {"gridworld/dense": "mlp"}}),
    "cpu-onehot": ("cpu", "gridworld/dense,gridworld/long_horizon", {"index_torso": "mlp"}),
}

CHILD = r"""
import json, sys, time
import jax, equinox as eqx, numpy as np
from learned_rl import tasks
from learned_rl.meta import make_meta_step, meta_init
from learned_rl.meta._presets import build, get_preset
preset, spec, over, steps, dump = json.loads(sys.argv[1])
ts = [tasks.make(n) for n in tasks.resolve(spec)]
rule, est, cfg = build(get_preset(preset, **over), ts, key=jax.random.PRNGKey(0))
state = meta_init(rule, ts, est, cfg, key=jax.random.PRNGKey(1))
step = make_meta_step(est, cfg)
t = time.perf_counter()
state, m = step(state)
jax.block_until_ready(m)
first = time.perf_counter() - t
t = time.perf_counter()
losses = []
for _ in range(steps):
    state, m = step(state)
    losses.append(m["meta_loss"])
jax.block_until_ready(m)
per = (time.perf_counter() - t) / steps
np.savez(dump, losses=np.asarray(losses), *[np.asarray(x) for x in jax.tree.leaves(eqx.filter(state.rule, eqx.is_inexact_array))])
print(json.dumps({"first_s": first, "s_per_step": per}))
"""


def run_side(path: Path | None, case: str, steps: int, dump: str) -> dict:
    preset, spec, over = CASES[case]
    env = dict(os.environ)
    if path is not None:
        env["PYTHONPATH"] = str(path) + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, "-c", CHILD, json.dumps([preset, spec, over, steps, dump])], capture_output=True, text=True, env=env, cwd=tempfile.gettempdir())
    if out.returncode != 0:
        raise SystemExit(f"{'base' if path else 'this tree'} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", default="HEAD", help="the revision to compare with (default HEAD: the last commit against the working tree)")
    ap.add_argument("--case", default="cpu-mix", help=f"one of {', '.join(CASES)}")
    ap.add_argument("--steps", type=int, default=10, help="timed meta-steps per side and round")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if args.case not in CASES:
        ap.error(f"unknown case {args.case!r}; cases: {', '.join(CASES)}")
    import numpy as np

    rev = subprocess.run(["git", "rev-parse", "--short", args.base], capture_output=True, text=True, cwd=ROOT, check=True).stdout.strip()
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
          f"case {args.case}: {CASES[args.case][1]}; base {rev} (A) against this tree (B)")
    with tempfile.TemporaryDirectory() as tmp:
        wt = Path(tmp) / "base"
        subprocess.run(["git", "worktree", "add", "--detach", "-f", str(wt), rev], capture_output=True, cwd=ROOT, check=True)
        try:
            ratios, firsts = [], []
            for r in range(args.rounds):
                a = run_side(wt, args.case, args.steps, str(Path(tmp) / "a.npz"))
                b = run_side(None, args.case, args.steps, str(Path(tmp) / "b.npz"))
                ratios.append(a["s_per_step"] / b["s_per_step"])
                firsts.append(a["first_s"] / b["first_s"])
                print(f"round {r}: A {a['s_per_step']:.3f} s/meta-step (compile+first {a['first_s']:.1f} s), "
                      f"B {b['s_per_step']:.3f} s/meta-step (compile+first {b['first_s']:.1f} s): A/B {ratios[-1]:.2f}")
            za, zb = np.load(Path(tmp) / "a.npz"), np.load(Path(tmp) / "b.npz")
            dl = float(np.max(np.abs(za["losses"] - zb["losses"])))
            dp = max(float(np.max(np.abs(za[k] - zb[k]))) for k in za.files if k != "losses")
            same = all(np.array_equal(za[k], zb[k]) for k in za.files)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(wt)], capture_output=True, cwd=ROOT)
    print(f"median A/B per meta-step {statistics.median(ratios):.2f} (> 1: this tree is faster); compile+first step A/B "
          f"{statistics.median(firsts):.2f}")
    print(f"after {args.steps + 1} meta-steps: " + ("bitwise identical" if same else f"max |Δ meta-loss| {dl:.2e}, max |Δ meta-parameter| {dp:.2e}"))


if __name__ == "__main__":
    main()
