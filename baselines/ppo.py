"""PPO as mirror learning: the objective ``E[r·A − f(r, A)]`` with the drift `ClipDrift(ε)`.

Swapping the drift (`PPO(drift=DPODrift())`, `PPO(drift=LPODrift(...))`) gives DPO and LPO with
everything else unchanged: GAE, epochs × minibatches, per-minibatch advantage normalisation, value
loss and entropy bonus.

Default hyperparameters per task family (`PPO.default_config(task)`, see `PPO_DEFAULTS`):

| family | envs × steps | epochs × minibatches | optimiser | lr | agent |
|---|---|---|---|---|---|
| classic control, bsuite, misc | 4 × 128 | 4 × 4 | Adam, annealed | 2.5e-4 | MLP 64-64 tanh |
| tabular grid worlds, chains | 64 × 20 | 4 × 4 | SGD (clip 0.5) | 20 | lookup tables |
| random grid worlds | 64 × 20 | 4 × 4 | Adam | 5e-4 | MLP 64-64 ReLU |
| MinAtar | 64 × 128 | 4 × 4 | Adam, annealed | 5e-4 | MinAtar CNN |
| continuous classic control (Pendulum-v1, MountainCarContinuous-v0) | 16 × 32 | 4 × 4 | Adam, annealed | 1e-3 | MLP 64-64 tanh, Gaussian; obs + reward normalisation |
| Brax | 64 × 32 | 4 × 4 | Adam, annealed | 3e-4 | MLP 64-64 tanh, Gaussian; obs + reward normalisation |

The classic-control defaults are PureJaxRL's CartPole PPO (γ 0.99, λ 0.95, ε 0.2, entropy 0.01,
value coefficient 0.5, max grad norm 0.5). The tabular learning rate was picked by a sweep on
`gridworld/dense` (1M steps, 2 seeds): lr 5/20/40 reached 0.56/0.77/0.76 of the optimal return.

Continuous actions use the agent's Gaussian head (state-independent log-std; the rollout clips
samples to the action bounds and the log-probability is of the unclipped sample), so the same
objective, drifts included, runs unchanged. The `continuous` row was picked on Pendulum-v1
(200k steps, 2 seeds): lr 1e-3 with observation and reward normalisation reached about −200
(−1,200 at the start); lr 3e-4 reached about −1,030, and lr 1e-3 without normalisation about
−1,070; entropy 0.01 vs 0 made no clear difference (−180 vs −205), so the entropy bonus stays
0.01 for every family. The `brax` row is a CPU-sized version of PureJaxRL's Brax PPO (2048 × 10,
4 × 32, 2×256 nets, lr 3e-4): the same optimiser, normalisation and minibatch size (512 here,
640 there), with 64 envs and 64-64 networks so that a run fits a CPU (CleanRL's MuJoCo PPO uses
64-64 networks too). It is not tuned per environment.

PureJaxRL's own Brax and MinAtar configurations, whole, are the recipes ``purejaxrl-brax`` and
``purejaxrl-minatar`` (`learned_rl._defaults.RECIPES`, ``--recipe NAME``).
"""

from __future__ import annotations

from learned_rl._defaults import PPO_DEFAULTS as PPO_DEFAULTS
from learned_rl.rules._mirror import MirrorLearning


class PPO(MirrorLearning):
    """Proximal policy optimisation (clip): `MirrorLearning` with its default drift `ClipDrift(0.2)`.

    ``PPO(drift=DPODrift())`` is DPO (what the registry's ``dpo`` builds); learned LPO rules are
    `MirrorLearning`s with an `LPODrift` (`learned_rl.rules._lpo.make_lpo`), so the rules layer
    never imports the baselines. Its `name` follows the drift (``ppo``, ``dpo``, ``lpo``).
    """
