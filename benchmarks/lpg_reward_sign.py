"""Does a learned rule follow Catch's reward, or something else about its last step?

`Catch-bsuite` pays one reward per episode, on its last step: +1 if the paddle is under the ball,
−1 if not. This script trains fresh agents with a rule on Catch with that last reward remapped
(caught → C, missed → M) for several pairs (C, M), and reports the fraction of balls caught at the
end of training, inferred from the final return (`return = C·p + M·(1 − p)`). A rule that follows
the reward catches more where catching pays more (C > M) and fewer where it pays less; a rule
that reads the sign of the last reward backwards does the opposite. The random policy catches
about one ball in five (its return on the unmapped task is about −0.59).

Run: `.venv/bin/python benchmarks/lpg_reward_sign.py --rule lpg:lpg_swing [--pairs 1:-1,-1:1,1:0,0:-1]
[--steps 300000] [--seeds 3] [--seed 900]`
"""

from __future__ import annotations

import argparse
import dataclasses
import platform

import jax
import jax.numpy as jnp
import numpy as np
from gymnax.environments import environment

from learned_rl import tasks
from learned_rl._experiment import run_seeds
from learned_rl._learner import final_return
from learned_rl._registry import make_rule


class RemappedLastReward(environment.Environment):
    """An environment whose positive rewards become `win` and negative ones `loss` (zero stays)."""

    def __init__(self, env: environment.Environment, win: float, loss: float):
        super().__init__()
        self.env, self.win, self.loss = env, float(win), float(loss)

    @property
    def default_params(self):
        return self.env.default_params

    def step_env(self, key, state, action, params):
        obs, state, reward, done, info = self.env.step_env(key, state, action, params)
        reward = jnp.where(reward > 0, self.win, jnp.where(reward < 0, self.loss, 0.0)).astype(jnp.float32)
        return obs, state, reward, done, info

    def reset_env(self, key, params):
        return self.env.reset_env(key, params)

    def get_obs(self, state, params=None, key=None):
        return self.env.get_obs(state)

    def action_space(self, params=None):
        return self.env.action_space(params)

    def observation_space(self, params):
        return self.env.observation_space(params)

    @property
    def num_actions(self) -> int:
        return self.env.num_actions

    @property
    def name(self) -> str:
        return f"Catch[{self.win:g},{self.loss:g}]"


def _pairs(text: str) -> list[tuple[float, float]]:
    try:
        out = [tuple(float(v) for v in p.split(":")) for p in text.split(",") if p.strip()]
    except ValueError:
        raise SystemExit(f"error: --pairs takes CAUGHT:MISSED pairs, comma-separated, got {text!r}")
    if not out or any(len(p) != 2 or p[0] == p[1] for p in out):
        raise SystemExit(f"error: --pairs takes CAUGHT:MISSED pairs with CAUGHT != MISSED, got {text!r}")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rule", default="lpg:lpg_swing", help="a rule name as the CLI takes it (lpg:NAME_OR_PATH, a2c, ...)")
    ap.add_argument("--pairs", default="1:-1,-1:1,1:0,0:-1", help="CAUGHT:MISSED rewards, comma-separated (1:-1 is Catch itself)")
    ap.add_argument("--steps", type=int, default=300_000)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=900)
    args = ap.parse_args()
    pairs = _pairs(args.pairs)
    if args.steps <= 0 or args.seeds <= 0:
        raise SystemExit("error: --steps and --seeds must be positive")
    try:
        rule = make_rule(args.rule)
    except (ValueError, FileNotFoundError) as e:
        raise SystemExit(f"error: {e}")
    base = tasks.make("Catch-bsuite")
    print(f"{args.rule} on Catch-bsuite with its last reward remapped; {args.steps} env steps, {args.seeds} seeds from {args.seed}; "
          f"{platform.machine()}, jax {jax.__version__}\n")
    print("| caught → | missed → | final return per seed | fraction caught per seed | mean fraction caught |")
    print("|---|---|---|---|---|")
    for win, loss in pairs:
        task = dataclasses.replace(base, env=RemappedLastReward(base.env, win, loss), name=f"Catch-bsuite[{win:g},{loss:g}]")
        config = dataclasses.replace(rule.default_config(task), total_steps=args.steps)
        result = run_seeds(rule, task, config, num_seeds=args.seeds, seed=args.seed, rule_name=args.rule, progress=False)
        ret = final_return(result.metrics)
        caught = (ret - loss) / (win - loss)
        print(f"| {win:g} | {loss:g} | {', '.join(f'{r:.3f}' for r in ret)} | {', '.join(f'{c:.2f}' for c in caught)} | {caught.mean():.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
