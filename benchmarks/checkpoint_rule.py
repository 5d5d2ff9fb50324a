"""Write the LPG rule held in a meta-training run's `checkpoint.eqx` (at whatever step it was saved)
as a rule file, with the arm the bandits prefer at that step, as `meta-train` does at the end.

Run: `.venv/bin/python benchmarks/checkpoint_rule.py --run runs/meta-lpg --out runs/meta-lpg/rule_at_step.eqx`

Used to compare runs at equal meta-steps while one of them is still going (copy the checkpoint
first: a running job replaces it every few minutes).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import equinox as eqx
import jax

from learned_rl import tasks as task_registry
from learned_rl._checkpoint import load
from learned_rl._rules_io import save_rule
from learned_rl.meta._meta_train import meta_init
from learned_rl.meta._presets import LPGPreset, build
from learned_rl.meta._run import STATE_KIND, _finish


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", required=True, help="an lpg meta-training run directory")
    ap.add_argument("--checkpoint", default=None, help="checkpoint file (default RUN/checkpoint.eqx)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    run = Path(args.run)
    cfg_json = json.loads((run / "config.json").read_text())
    if cfg_json.get("kind") != "lpg":
        raise SystemExit(f"error: {run} is not an lpg run")
    names = cfg_json["tasks"]
    ts = [task_registry.make(n) for n in names]
    k_rule, k_meta = jax.random.split(jax.random.PRNGKey(cfg_json["seed"]))
    p = dict(cfg_json["preset"])
    rule, est, mcfg = build(p, ts, key=k_rule)
    like = eqx.filter_eval_shape(meta_init, rule, ts, est, mcfg, key=k_meta)
    _, state = load(args.checkpoint or run / "checkpoint.eqx", lambda c: like, kind=STATE_KIND)
    rule = state.rule
    rule, extra = _finish(rule, state, est, LPGPreset.from_json(p))
    save_rule(args.out, rule, metadata={"tasks": names, "preset": cfg_json["preset_name"], "meta_steps": int(state.step), "seed": cfg_json["seed"], "from_checkpoint_of": str(run), **extra})
    print(f"{args.out}: step {int(state.step)}, arm lr {rule.learning_rate:g}, alpha_y {rule.alpha_y:g}")


if __name__ == "__main__":
    main()
