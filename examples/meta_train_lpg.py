"""Meta-train LPG briefly, save the rule, and transfer it to a task it never saw.

LPG's meta-network (a backward LSTM over the agent's trajectory) outputs a policy target π̂ and a
prediction target ŷ; truncated meta-gradients through K agent updates train it on the five tabular
grid worlds. The learned rule then trains fresh agents on a delayed-chain MDP, next to A2C.

A few hundred meta-steps are far from the shipped rule's 8,000 (`lpg_tabular`, 73.5 min on 2 CPU
cores); expect a rule that has begun to learn, not one that matches A2C.

    python examples/meta_train_lpg.py                        # 300 meta-steps, a few minutes on a CPU
    python examples/meta_train_lpg.py --meta-steps 20 --lifetime-updates 50
"""

import argparse
from pathlib import Path

import jax

from learned_rl import tasks
from learned_rl.baselines import A2C
from learned_rl import LPG, LPGNetwork, MetaTrainConfig, TruncatedMetaGradient, final_return, load_rule, meta_train, save_rule, train


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--meta-steps", type=int, default=300)
    p.add_argument("--tasks", default="lpg-tabular", help="meta-training tasks: a task set or NAME,NAME")
    p.add_argument("--num-envs", type=int, default=16, help="envs per agent update")
    p.add_argument("--rollout-len", type=int, default=20, help="steps per agent update")
    p.add_argument("--lifetime-updates", type=int, default=300, help="agent updates per lifetime")
    p.add_argument("--hidden", type=int, default=32, help="the meta-network's LSTM width")
    p.add_argument("--eval-task", default="chain/short")
    p.add_argument("--eval-steps", type=int, default=200_000)
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--out", default="runs/example-lpg/rule.eqx")
    args = p.parse_args(argv)

    train_tasks = [tasks.make(n) for n in tasks.resolve(args.tasks)]
    rule = LPG(LPGNetwork(hidden_size=args.hidden, prediction_dim=8, key=jax.random.PRNGKey(0)), learning_rate=10.0, alpha_y=0.5)
    rule = rule.with_regime(args.num_envs, args.rollout_len, args.lifetime_updates)  # evaluation trains agents the same way
    estimator = TruncatedMetaGradient(
        inner_steps=5, lifetimes_per_task=2, num_envs=args.num_envs, rollout_len=args.rollout_len,
        lifetime_updates=args.lifetime_updates, learning_rates=(10.0,), alpha_ys=(0.5,),  # one agent arm
    )
    rule, state, history = meta_train(rule, train_tasks, estimator, MetaTrainConfig(steps=args.meta_steps, meta_lr=1e-3), key=jax.random.PRNGKey(1))
    print(f"meta-trained {int(state.step)} steps; meta-loss {float(history['meta_loss'][0]):.3f} -> {float(history['meta_loss'][-1]):.3f}")

    path = save_rule(Path(args.out), rule)
    rule = load_rule(path)  # the file round-trips: this is what `--rule lpg:PATH` loads
    task = tasks.make(args.eval_task)
    keys = jax.random.split(jax.random.PRNGKey(2), args.seeds)
    for label, r in ((f"lpg ({path})", rule), ("a2c", A2C())):
        config = r.default_config(task).replace(total_steps=args.eval_steps)
        _, metrics = jax.jit(jax.vmap(lambda k: train(r, task, config, key=k)))(keys)
        print(f"{args.eval_task}: {label} final return {final_return(metrics).mean():.3f} ({args.seeds} seeds)")
    print(f"the same from the command line: learned-rl compare --task {args.eval_task} --rules lpg:{path},a2c")


if __name__ == "__main__":
    main()
