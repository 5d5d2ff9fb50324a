"""What the restored y path costs, and what a longer truncation K costs, measured side by side.

Run: `.venv/bin/python benchmarks/lpg_metagrad.py [--ks 5,10,20] [--steps 10] [--rounds 3]`.

For each K it builds the `cpu` preset's estimator on `lpg-tabular` (5 tasks × 4 lifetimes × 16
envs × 20 steps) twice: with the current `LPG.update` (targets outside the agent's gradient, the y path
kept), and with the update as it was before (the meta-network inside the inner loss on
stop-gradient'ed inputs: the y path cut; written out below, for this comparison only). The two
run alternately, A B A B, `--rounds` times, each round timing `--steps` meta-steps after the
compiled program's first call, and the script prints the median seconds per meta-step of each and
their ratio. Each K's compile time and peak memory come from a fresh subprocess (`--case`). It also
prints, for the restored gradient at initialisation, the ŷ head's share of the meta-gradient's norm
and the mean cosine between estimates from 4 independent populations (a signal-to-noise proxy).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time


def _cut_update(self, agent, opt_state, optimizer, traj, *, key):
    """The pre-fix LPG update: the network inside the inner loss on stop-gradient'ed inputs."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    from learned_rl.rules._base import apply_gradients, batched, categorical_log_prob_entropy

    sg = jax.lax.stop_gradient

    def loss(a):
        out = batched(a, traj.obs)
        nxt = batched(a, traj.next_obs)
        logp, _ = categorical_log_prob_entropy(out.logits, traj.action)
        pi_hat, yhl = jax.vmap(self.network, in_axes=(1, 1, 1, None, 1, 1, 1), out_axes=(1, 1))(
            traj.reward, traj.terminated.astype(traj.reward.dtype), traj.done.astype(traj.reward.dtype), self.gamma,
            sg(jnp.exp(logp)), sg(jax.nn.softmax(out.y_logits)), sg(jax.nn.softmax(nxt.y_logits)))
        log_y = jax.nn.log_softmax(out.y_logits)
        kl = jnp.sum(jnp.exp(log_y) * (log_y - jax.nn.log_softmax(yhl)), -1)
        return -jnp.mean(logp * pi_hat) + self.alpha_y * jnp.mean(kl), self.target_metrics(pi_hat, yhl)

    grads, m = eqx.filter_grad(loss, has_aux=True)(agent)
    agent, opt_state = apply_gradients(agent, grads, opt_state, optimizer)
    return agent, opt_state, m


def _build(k: int, impl: str):
    import jax

    from learned_rl import tasks
    from learned_rl.meta import make_meta_step, meta_init
    from learned_rl.meta._presets import build, get_preset
    from learned_rl.rules._lpg import LPG

    LPG.update = _cut_update if impl == "cut" else _FIXED
    ts = [tasks.make(n) for n in tasks.resolve("lpg-tabular")]
    rule, est, cfg = build(get_preset("cpu", inner_steps=k), ts, key=jax.random.PRNGKey(0))
    state = meta_init(rule, ts, est, cfg, key=jax.random.PRNGKey(1))
    step = make_meta_step(est, cfg)
    return step, state, est


def _time(step, state, steps):
    import jax

    t = time.perf_counter()
    for _ in range(steps):
        state, m = step(state)
    jax.block_until_ready(m)
    return (time.perf_counter() - t) / steps, state


def gradient_stats(k: int, seeds: int = 4) -> dict:
    """What a longer K does to the (restored) meta-gradient at initialisation: the ŷ head's share of
    its norm, and the mean cosine between estimates from independent populations (seeds), a
    signal-to-noise proxy."""
    import equinox as eqx
    import jax
    import numpy as np

    from learned_rl import tasks
    from learned_rl.meta._presets import build, get_preset
    from learned_rl.rules._lpg import LPG

    LPG.update = _FIXED
    ts = [tasks.make(n) for n in tasks.resolve("lpg-tabular")]
    rule, est, _ = build(get_preset("cpu", inner_steps=k), ts, key=jax.random.PRNGKey(0))
    params, static = eqx.partition(rule, eqx.is_inexact_array)
    f = eqx.filter_jit(lambda s, kk: est.estimate(params, static, s, key=kk)[1])
    flat, share = [], []
    for i in range(seeds):
        g = f(est.init(rule, ts, key=jax.random.PRNGKey(100 + i)), jax.random.PRNGKey(200 + i))
        v = np.concatenate([np.ravel(x) for x in jax.tree.leaves(g)])
        vy = np.concatenate([np.ravel(x) for x in jax.tree.leaves(g.network.y_head)])
        flat.append(v / np.linalg.norm(v))
        share.append(np.linalg.norm(vy) / np.linalg.norm(v))
    cos = [float(flat[i] @ flat[j]) for i in range(seeds) for j in range(i + 1, seeds)]
    return {"y_head_share": float(np.mean(share)), "cosine": float(np.mean(cos))}


def run_case(k: int, impl: str) -> dict:
    import jax

    step, state, est = _build(k, impl)
    t = time.perf_counter()
    state, m = step(state)
    jax.block_until_ready(m)
    return {"k": k, "impl": impl, "compile_plus_first_s": round(time.perf_counter() - t, 1),
            "env_steps_per_meta_step": est.env_steps_per_estimate(),
            "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ks", default="5,10,20")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--case", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.case:
        k, impl = args.case.split(":")
        print(json.dumps(run_case(int(k), impl)))
        return
    import jax

    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, jax {jax.__version__} on {jax.devices()[0].platform}")
    for k in [int(x) for x in args.ks.split(",")]:
        mem = {}
        for impl in ("cut", "fixed"):
            out = subprocess.run([sys.executable, __file__, "--case", f"{k}:{impl}"], capture_output=True, text=True)
            mem[impl] = json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else {"error": out.stderr[-500:]}
        progs = {impl: _build(k, impl) for impl in ("cut", "fixed")}
        states = {impl: progs[impl][0](progs[impl][1])[0] for impl in progs}  # compile + first call
        times = {"cut": [], "fixed": []}
        for _ in range(args.rounds):
            for impl in ("cut", "fixed"):
                dt, states[impl] = _time(progs[impl][0], states[impl], args.steps)
                times[impl].append(dt)
        med = {i: statistics.median(v) for i, v in times.items()}
        env = mem["fixed"].get("env_steps_per_meta_step", 0)
        gs = gradient_stats(k)
        print(
            f"K={k:>2}: ŷ head {gs['y_head_share']:.3f} of the meta-gradient norm, mean cosine between independent estimates {gs['cosine']:.3f}"
        )
        print(
            f"K={k:>2}: {env} env steps/meta-step | y path cut: {med['cut']:.3f} s/meta-step, compile+first {mem['cut'].get('compile_plus_first_s')} s, "
            f"peak {mem['cut'].get('peak_rss_gb')} GB | restored: {med['fixed']:.3f} s/meta-step, compile+first {mem['fixed'].get('compile_plus_first_s')} s, "
            f"peak {mem['fixed'].get('peak_rss_gb')} GB | restored/cut time ratio {med['fixed'] / med['cut']:.2f} "
            f"(per round: {', '.join(f'{f / c:.2f}' for f, c in zip(times['fixed'], times['cut']))})"
        )


from learned_rl.rules._lpg import LPG as _LPG  # noqa: E402

_FIXED = _LPG.update

if __name__ == "__main__":
    main()
