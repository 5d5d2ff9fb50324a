"""Where an LPG meta-step's time goes: the meta-step cut into nested programs, each compiled and
timed on its own, per task group (one vmapped batch of lifetimes per task).

Run: `.venv/bin/python benchmarks/lpg_profile.py [--case cpu] [--reps 5]`.

Per task, over its lifetimes (vmapped, as in the meta-step):

- `act`: the K + 1 rollouts of a meta-step with the agent as it is (environment steps and the
  agent's forward pass only; no update);
- `forward`: one lifetime's meta-loss without its gradient: K agent updates with the rule (each a
  rollout, the meta-network's backward LSTM over it and the agent's gradient step), the fresh
  rollout, the meta-critic's update and the meta-loss;
- `grad`: the same with its meta-gradient, rematerialising each inner update on the backward pass
  (what meta-training runs); `grad (no remat)`: without rematerialisation.

Then the whole estimate (every task's `grad`, the bandits, the lifetime restarts and the metrics)
and the whole meta-step (the estimate plus the meta-optimiser), each one program. Differences of
these nested programs give the shares: acting = Σ act; inner updates, meta-critic and meta-loss =
Σ forward − Σ act; backward pass = Σ grad − Σ forward; rematerialisation = Σ grad − Σ grad (no
remat), negative where recomputing is faster than storing; bandits, restarts and bookkeeping =
estimate − Σ grad; meta-optimiser = meta-step − estimate. Programs compiled apart can fuse differently from the same code inside one program, so
the shares are estimates; the compile times show what one copy of the program per task costs.

A meta-step's **floor**, per task over its lifetimes, the same transitions as the meta-step's K + 1
rollouts: `env` steps the environments as many times with uniform random actions (no agent);
`agent fwd+bwd` is one forward and backward pass of the agents over those transitions (the gradient
of the sum of their outputs); `meta fwd+bwd` is one forward and backward pass of the meta-network
over them (the gradient of the sum of π̂ and ŷ in the meta-parameters; it reads the agents'
outputs, so it holds one more agent forward pass). The meta-step is reported as a multiple of
Σ env + Σ agent + Σ meta: what is left above 1 is the K inner updates, their second-order backward
pass, the meta-critic and the bookkeeping.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

CASES = {  # case: (preset, tasks, overrides)
    "cpu": ("cpu", "lpg-tabular", {}),
    "cpu-all": ("cpu", "lpg-all", {}),
    "cpu-mix": ("cpu", "gridworld/dense,gridworld/long_horizon,gridworld/long_dense,random_gridworld/small", {"task_torsos": {"gridworld/dense": "mlp"}}),
}


def _timed(fn, *args, reps: int):
    import jax

    t = time.perf_counter()
    out = fn(*args)
    jax.block_until_ready(out)
    first = time.perf_counter() - t
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t)
    return first, statistics.median(times)


def profile(case: str, reps: int) -> dict:
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    from learned_rl import tasks
    from learned_rl._agent import UniformPolicy
    from learned_rl._rollout import collect
    from learned_rl.rules._base import batched
    from learned_rl.meta import make_meta_step, meta_init
    from learned_rl.meta._presets import build, get_preset

    preset, spec, over = CASES[case]
    ts = [tasks.make(n) for n in tasks.resolve(spec)]
    rule, est, cfg = build(get_preset(preset, **over), ts, key=jax.random.PRNGKey(0))
    state = meta_init(rule, ts, est, cfg, key=jax.random.PRNGKey(1))
    problem = est.problem
    params, static = eqx.partition(state.rule, eqx.is_inexact_array)
    members = problem.members(state.estimator_state)
    K, T = problem.inner_steps, problem.rollout_len
    key = jax.random.PRNGKey(2)

    rows = []
    for i, (task, group) in enumerate(zip(problem.tasks, members)):
        n = jax.tree.leaves(group)[0].shape[0]
        keys = jax.random.split(jax.random.fold_in(key, i), n)

        def rollouts(group, keys, policy=None, pick=lambda traj, stats: traj, task=task):
            """The K + 1 rollouts of each lifetime, `pick`(trajectory, episode stats) kept from each;
            `policy` acts instead of the agent (the floor's uniform random actions)."""
            def one(lt, k):
                learner = lt.learner

                def body(carry, kk):
                    carry, traj, stats = collect(learner.agent if policy is None else policy, task.env, learner.env_params, carry, T, key=kk)
                    return carry, pick(traj, stats)

                return jax.lax.scan(body, learner.env, jax.random.split(k, K + 1))[1]

            return jax.vmap(one)(group, keys)

        act = eqx.filter_jit(lambda group, keys, rollouts=rollouts: rollouts(group, keys, pick=lambda traj, stats: stats.return_sum))

        @eqx.filter_jit
        def forward(params, group, keys, i=i):
            return jax.vmap(lambda m, k: problem.member_loss(params, static, i, m, key=k, remat=False)[0])(group, keys)

        def make_grad(remat, i=i):
            @eqx.filter_jit
            def grad(params, group, keys):
                f = lambda mp, m, k: problem.member_loss(mp, static, i, m, key=k, remat=remat)  # noqa: E731
                return jax.vmap(lambda m, k: eqx.filter_value_and_grad(f, has_aux=True)(params, m, k)[1])(group, keys)

            return grad

        uniform = UniformPolicy.for_task(task)
        floor_env = eqx.filter_jit(lambda group, keys, uniform=uniform, rollouts=rollouts: rollouts(group, keys, uniform))
        trajs = eqx.filter_jit(rollouts)(group, keys)  # [lifetimes, K + 1, T, B, ...] under each lifetime's agent

        def output_sum(agent, obs):
            out = batched(agent, obs)
            return sum(jnp.sum(x) for x in jax.tree.leaves(out))

        @eqx.filter_jit
        def floor_agent(group, trajs):
            return jax.vmap(lambda lt, tr: eqx.filter_grad(output_sum)(lt.learner.agent, tr.obs.reshape((-1, *tr.obs.shape[3:]))))(group, trajs)

        @eqx.filter_jit
        def floor_meta(params, group, trajs):
            def targets_sum(mp, agent, tr):
                r = eqx.combine(mp, static)
                pi_hat, y_hat = jax.vmap(lambda t: r.targets(agent, t))(tr)
                return jnp.sum(pi_hat) + (0.0 if y_hat is None else jnp.sum(y_hat))

            return jax.vmap(lambda lt, tr: jax.grad(targets_sum)(params, lt.learner.agent, tr))(group, trajs)

        row = {"task": task.name, "family": problem.family(task), "lifetimes": n}
        for name, fn, args in [("act", act, (group, keys)), ("forward", forward, (params, group, keys)),
                               ("grad", make_grad(True), (params, group, keys)), ("grad_no_remat", make_grad(False), (params, group, keys)),
                               ("floor_env", floor_env, (group, keys)), ("floor_agent", floor_agent, (group, trajs)),
                               ("floor_meta", floor_meta, (params, group, trajs))]:
            row[f"{name}_compile_s"], row[f"{name}_s"] = _timed(fn, *args, reps=reps)
        rows.append(row)

    @eqx.filter_jit
    def estimate(params, est_state, key):
        return est.estimate(params, static, est_state, key=key)

    whole = {}
    whole["estimate_compile_s"], whole["estimate_s"] = _timed(estimate, params, state.estimator_state, key, reps=reps)
    step = make_meta_step(est, cfg)
    whole["meta_step_compile_s"], whole["meta_step_s"] = _timed(step, state, reps=reps)
    return {"case": case, "tasks": spec, "env_steps_per_meta_step": est.env_steps_per_estimate(), "groups": rows, **whole}


def report(r: dict) -> str:
    g = r["groups"]
    s = {k: sum(x[f"{k}_s"] for x in g) for k in ("act", "forward", "grad", "grad_no_remat", "floor_env", "floor_agent", "floor_meta")}
    c = {k: sum(x[f"{k}_compile_s"] for x in g) for k in ("act", "forward", "grad", "grad_no_remat")}
    step = r["meta_step_s"]
    shares = [
        ("acting (K + 1 rollouts, no update)", s["act"]),
        ("inner updates, meta-critic, meta-loss (forward)", s["forward"] - s["act"]),
        ("backward pass through the K updates", s["grad"] - s["forward"]),
        ("bandits, restarts, bookkeeping", r["estimate_s"] - s["grad"]),
        ("meta-optimiser", step - r["estimate_s"]),
    ]
    lines = [f"## {r['case']}: {r['tasks']} ({len(g)} task groups, {r['env_steps_per_meta_step']:,} env steps per meta-step)", "",
             "| task | family | lifetimes | act | forward | grad | grad, no remat | compile of grad |", "|---|---|---|---|---|---|---|---|"]
    for x in g:
        lines.append(f"| {x['task']} | {x['family']} | {x['lifetimes']} | {1e3 * x['act_s']:.1f} ms | {1e3 * x['forward_s']:.1f} ms | "
                     f"{1e3 * x['grad_s']:.1f} ms | {1e3 * x['grad_no_remat_s']:.1f} ms | {x['grad_compile_s']:.1f} s |")
    lines.append(f"| **sum** | | | {1e3 * s['act']:.1f} ms | {1e3 * s['forward']:.1f} ms | {1e3 * s['grad']:.1f} ms | "
                 f"{1e3 * s['grad_no_remat']:.1f} ms | {c['grad']:.1f} s |")
    lines += ["", f"Whole estimate {1e3 * r['estimate_s']:.1f} ms (compile {r['estimate_compile_s']:.1f} s); whole meta-step "
              f"{1e3 * step:.1f} ms (compile and first step {r['meta_step_compile_s']:.1f} s).", "",
              "| part of a meta-step | ms | share |", "|---|---|---|"]
    for name, t in shares:
        lines.append(f"| {name} | {1e3 * t:.1f} | {100 * t / step:.0f}% |")
    lines.append(f"| (inside the backward pass: with rematerialisation minus without) | {1e3 * (s['grad'] - s['grad_no_remat']):+.1f} | "
                 f"{100 * (s['grad'] - s['grad_no_remat']) / step:+.0f}% |")
    floor = s["floor_env"] + s["floor_agent"] + s["floor_meta"]
    lines += ["", "| the floor: the same transitions | ms |", "|---|---|",
              f"| environment steps, uniform random actions | {1e3 * s['floor_env']:.1f} |",
              f"| one forward and backward pass of the agents | {1e3 * s['floor_agent']:.1f} |",
              f"| one forward and backward pass of the meta-network | {1e3 * s['floor_meta']:.1f} |",
              f"| **floor** | **{1e3 * floor:.1f}** |", "",
              f"Whole meta-step = **{step / floor:.1f}× the floor** (estimate alone {r['estimate_s'] / floor:.1f}×)."]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--case", default="cpu", help=f"one of {', '.join(CASES)}")
    ap.add_argument("--reps", type=int, default=5, help="timed calls per program (median)")
    ap.add_argument("--json", default=None, help="also write the raw timings here")
    args = ap.parse_args()
    if args.case not in CASES:
        ap.error(f"unknown case {args.case!r}; cases: {', '.join(CASES)}")
    import jax

    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, jax {jax.__version__} on {jax.devices()[0].platform}, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    r = profile(args.case, args.reps)
    print(report(r))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(r, f, indent=1)


if __name__ == "__main__":
    main()
