"""Named LPG meta-training presets, as typed `LPGPreset` objects: the meta-network, the lifetimes,
the bandit, the meta-critic and the meta-optimiser in one frozen dataclass, with `build`.

- ``cpu`` (default): sized for 2 CPU cores. A 64-unit LSTM, m = 8, K = 5, 4 lifetimes per task of
  16 envs × 20 steps, lifetimes of 3,125 agent updates (1M env steps: the budget the tabular grid
  worlds are evaluated at, in the envs × steps the saved rule then trains with), agent learning
  rates 5–40, meta-lr 1e-3.
- ``paper``: the paper's sizes (LSTM 256, m = 30, K = 5, 64 envs × 20 steps, ~2,400-update
  lifetimes, 960 lifetimes in all, meta-lr 1e-4, β = (0.01, 0.001, 0.001, 0.001)) for accelerators.
- ``gpu``: the ``cpu`` sizes (a ``cpu``-preset rule warm-starts it) with 64 lifetimes per task: the
  paper's 960 lifetimes on the 15 ``lpg-all`` tasks, for one accelerator.
- ``groove-bench``: the sizes of the public JAX LPG reference used by `benchmarks/lpg_meta.py`
  (GRU 256, m = 8, 8 lifetimes × 64 envs × 20 steps, K = 5).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

from .._learner import CONFIG_FIELDS, OPTIMIZERS, TrainConfig, apply_overrides
from ..rules._lpg import LPG
from ..rules._lpo import make_lpo
from ._es import EvolutionStrategies
from ._estimators import TruncatedES, TruncatedMetaGradient
from ._evosax import STRATEGIES as EVOSAX_STRATEGIES
from ._evosax import EvosaxStrategy
from ._meta_train import MetaTrainConfig
from ._problems import LPGLifetimes, TrainingRuns, renamed_argument

ES_STRATEGIES = ("openes", *EVOSAX_STRATEGIES)  # --es-strategy: ours, then evosax's


def _is_real(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


class Preset:
    """What both kinds of preset share: a frozen dataclass of named fields, replaced by name
    (`--set`), written to JSON (fields in `LATER` only when they differ from their default, so an
    older run's config.json still matches on --resume) and read back."""

    LATER: ClassVar[tuple[str, ...]] = ()
    KIND: ClassVar[str] = ""
    # old field name -> new one: `replace` takes the old name with a notice, `from_json` silently
    RENAMED: ClassVar[dict[str, str]] = {}

    @classmethod
    def upgrade_json(cls, data: dict[str, Any]) -> dict[str, Any]:
        """A config.json preset written under old field names, under the current ones."""
        return {cls.RENAMED.get(k, k): v for k, v in data.items()}

    @classmethod
    def _renamed(cls, overrides: dict[str, Any]) -> dict[str, Any]:
        out = dict(overrides)
        for old, new in cls.RENAMED.items():
            if old in out:
                out[new] = renamed_argument(f"{cls.KIND}preset", old, out.pop(old), new, out.get(new), error=ValueError)
        return out

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    def replace(self, **overrides):
        """This preset with some fields replaced (`None` values are ignored); unknown fields raise."""
        overrides = self._renamed(overrides)
        unknown = set(overrides) - set(self.field_names())
        if unknown:
            raise ValueError(f"unknown {self.KIND}preset fields {sorted(unknown)} (fields: {', '.join(self.field_names())})")
        return dataclasses.replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def to_json(self) -> dict[str, Any]:
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            default = f.default_factory() if f.default is dataclasses.MISSING else f.default
            if f.name in self.LATER and v == default:
                continue
            out[f.name] = list(v) if isinstance(v, tuple) else (dict(v) if isinstance(v, dict) else v)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]):
        """The preset a config.json holds (a ``null`` there is the field's value, not "keep the
        default" as in `replace`)."""
        data = cls.upgrade_json(data)
        unknown = set(data) - set(cls.field_names())
        if unknown:
            raise ValueError(f"unknown {cls.KIND}preset fields {sorted(unknown)} (fields: {', '.join(cls.field_names())})")
        return dataclasses.replace(cls(), **data)


@dataclasses.dataclass(frozen=True)
class LPGPreset(Preset):
    """Everything an LPG meta-training run is built from, typed and validated on construction
    (`ValueError` naming the field). The CLI sets any field with ``--set FIELD=VALUE``; the run's
    `config.json` holds `to_json()` and `--resume` compares it with the resumed run's.

    - the rule: `hidden_size`, `prediction_dim`, `cell` (lstm | gru), `gamma`, `variant` (y: LPG,
      v: LPG-V);
    - the lifetimes (`LPGLifetimes`): `inner_steps` K, `lifetimes_per_task`, `num_envs`,
      `rollout_len`, `lifetime_updates`, the bandit's arms `learning_rates` × `alpha_ys` and its
      `bandit_temperature`, `bandit_bonus`, `bandit_window`, the agents' `agent_hidden` (MLP
      tasks) and `agent_max_grad_norm`, the meta-critic's `critic_lr` / `critic_lr_tabular` and
      `gae_lambda`, the meta-loss's `betas` and `regularizer` (logits | paper), `task_weights`
      (task name -> weight);
    - the meta-optimiser (`MetaTrainConfig`): `meta_lr`, `max_grad_norm`, `steps`;
    - agent families (later fields): `index_torso` (tabular: lookup tables on index
      observations; mlp: one-hot indices into an MLP), `task_torsos` (task name -> tabular | mlp:
      the index torso of the named tasks, so one run trains tables on some tasks and networks on
      others), and for network agents (MLP, CNN) their
      `neural_optimizer`, bandit arms `neural_learning_rates` (× `alpha_ys`) and
      `neural_max_grad_norm`; lookup tables train by SGD with `learning_rates` and
      `agent_max_grad_norm`;
    - temporal awareness and the estimator (later fields): `temporal` (TA-LPG: the meta-network
      reads n/N and log N), `min_lifetime_updates` (lifetime lengths N are drawn log-uniformly
      from [it, `lifetime_updates`]; 0: fixed lengths, or for a temporal rule
      ``max(K, lifetime_updates // 8)``, see `lifetime_range`), `estimator` (``tmg``: truncated
      meta-gradients on `LPGLifetimes`; ``tes``: truncated ES on the same lifetimes, `TruncatedES`
      with `sigma`; ``es``: evolution strategies over whole lifetimes, `TrainingRuns`), and for
      ``es`` `es_strategy`, `population`, `sigma`, `ranking`, `es_learning_rate` (see `make_es`).

    Under ``es`` there is no bandit: every lifetime trains with the middle arm (the middle of
    `learning_rates` and of `alpha_ys`), the fitness of a member is its lifetime's final return
    divided by the task's optimal return (where known), one N per generation drawn from four
    geometric steps over `lifetime_range` (for a rule whose range is not a single length), and
    antithetic pairs share the level, the initial agent and every environment's noise.
    """

    hidden_size: int = 64
    prediction_dim: int = 8
    cell: str = "lstm"
    inner_steps: int = 5
    lifetimes_per_task: int = 4
    num_envs: int = 16
    rollout_len: int = 20
    lifetime_updates: int = 3125
    learning_rates: tuple[float, ...] = (5.0, 10.0, 20.0, 40.0)
    alpha_ys: tuple[float, ...] = (0.1, 0.5, 1.0)
    betas: tuple[float, ...] = (0.01, 0.001, 0.001, 0.001)
    gamma: float = 0.99
    meta_lr: float = 1e-3
    max_grad_norm: float = 1.0
    steps: int = 6000
    task_weights: dict = dataclasses.field(default_factory=dict)
    variant: str = "y"
    regularizer: str = "logits"
    # settable since the typed presets; a run's config.json names them only when they differ from
    # these defaults, so the config of a run written before them still matches on --resume
    gae_lambda: float = 0.95
    critic_lr: float = 1e-3
    critic_lr_tabular: float = 0.05
    agent_hidden: tuple[int, ...] = (64, 64)
    agent_max_grad_norm: float = 0.5
    bandit_temperature: float = 0.1
    bandit_bonus: float = 0.2
    bandit_window: int = 10
    temporal: bool = False
    min_lifetime_updates: int = 0
    estimator: str = "tmg"
    es_strategy: str = "openes"
    population: int = 16
    sigma: float = 0.03
    ranking: str = "antithetic"
    es_learning_rate: float | None = None
    index_torso: str = "tabular"
    neural_optimizer: str = "adam"
    neural_learning_rates: tuple[float, ...] = (1e-4, 3e-4, 1e-3)
    neural_max_grad_norm: float = 1.0
    task_torsos: dict = dataclasses.field(default_factory=dict)

    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {
        "index_torso": ("tabular", "mlp"), "neural_optimizer": OPTIMIZERS,
        "variant": ("y", "v"), "regularizer": ("paper", "logits"), "cell": ("lstm", "gru"), "estimator": ("tmg", "es", "tes"),
        "es_strategy": ES_STRATEGIES, "ranking": ("centered", "antithetic"),
    }
    LATER: ClassVar[tuple[str, ...]] = (
        "gae_lambda", "critic_lr", "critic_lr_tabular", "agent_hidden", "agent_max_grad_norm", "bandit_temperature", "bandit_bonus", "bandit_window",
        "temporal", "min_lifetime_updates", "estimator", "es_strategy", "population", "sigma", "ranking", "es_learning_rate",
        "index_torso", "neural_optimizer", "neural_learning_rates", "neural_max_grad_norm", "task_torsos",
    )

    def __post_init__(self):
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, list):  # from JSON
                object.__setattr__(self, f.name, value := tuple(value))
            if value is not None or f.name != "es_learning_rate":
                _check_field(f.name, value, f.default if f.default is not dataclasses.MISSING else f.default_factory())
        if self.inner_steps > self.lifetime_updates:
            raise ValueError(f"K (inner_steps={self.inner_steps}) is longer than a lifetime (lifetime_updates={self.lifetime_updates})")
        if self.min_lifetime_updates and not self.inner_steps <= self.min_lifetime_updates <= self.lifetime_updates:
            raise ValueError(
                f"preset field 'min_lifetime_updates' must be 0 or in [K={self.inner_steps}, lifetime_updates={self.lifetime_updates}], got {self.min_lifetime_updates}"
            )
        if self.es_learning_rate is not None and not (_is_real(self.es_learning_rate) and self.es_learning_rate > 0):
            raise ValueError(f"preset field 'es_learning_rate' must be a positive number or null, got {self.es_learning_rate!r}")
        if self.estimator == "es" and self.task_weights:
            raise ValueError("preset field 'task_weights' weighs truncated meta-gradients (estimator 'tmg'); ES ranks each task alike")

    def lifetime_range(self) -> tuple[int, int]:
        """The (shortest, longest) lifetime N in agent updates: `min_lifetime_updates` to
        `lifetime_updates`; with ``min_lifetime_updates=0``, a temporal rule's shortest is
        ``max(K, lifetime_updates // 8)`` and a non-temporal rule's lifetimes all last
        `lifetime_updates`."""
        hi = self.lifetime_updates
        if self.min_lifetime_updates:
            return self.min_lifetime_updates, hi
        return (max(self.inner_steps, hi // 8), hi) if self.temporal else (hi, hi)

    def es_horizons(self) -> tuple[int, ...]:
        """The lifetimes ES draws from: four geometric steps over `lifetime_range` (one if it is a
        single length)."""
        lo, hi = self.lifetime_range()
        if lo == hi:
            return ()
        return tuple(sorted({int(round(lo * (hi / lo) ** (i / 3))) for i in range(4)}))

    def build(self, tasks: list, *, key):
        """`(rule, estimator, meta_config)` for these tasks."""
        mid = lambda xs: float(sorted(xs)[len(xs) // 2])
        rule_config = {
            "hidden_size": self.hidden_size, "prediction_dim": self.prediction_dim, "cell": self.cell,
            "gamma": self.gamma, "variant": self.variant, "temporal": self.temporal,
            "regime": {"num_envs": self.num_envs, "rollout_len": self.rollout_len, "lifetime_updates": self.lifetime_updates},
        }
        if self.estimator == "es":  # no bandit: the middle arm (under tmg the bandit sets both per lifetime)
            rule_config.update(learning_rate=mid(self.learning_rates), alpha_y=mid(self.alpha_ys))
        rule = LPG.from_config(rule_config, key=key)
        cfg = MetaTrainConfig(steps=int(self.steps), meta_lr=float(self.meta_lr), max_grad_norm=float(self.max_grad_norm))
        if self.estimator == "es":
            problem = TrainingRuns(
                inner_env_steps=self.lifetime_updates * self.num_envs * self.rollout_len, horizons=self.es_horizons(), normalize=True,
            )
            est = make_es(
                problem, strategy=self.es_strategy, population=self.population, sigma=self.sigma, ranking=self.ranking,
                learning_rate=self.es_learning_rate,
            )
            est.validate(rule, tasks)
            return rule, est.bind(tasks, rule), cfg
        names = [t.name for t in tasks]
        unknown = sorted(set(self.task_weights) - set(names))
        if unknown:
            raise ValueError(f"preset field 'task_weights' names tasks that are not meta-trained on: {unknown} (tasks: {', '.join(names)})")
        unknown = sorted(set(self.task_torsos) - set(names))
        if unknown:
            raise ValueError(f"preset field 'task_torsos' names tasks that are not meta-trained on: {unknown} (tasks: {', '.join(names)})")
        not_index = sorted(t.name for t in tasks if t.name in self.task_torsos and t.obs_kind != "index")
        if not_index:
            raise ValueError(f"preset field 'task_torsos' chooses the torso of index-observation tasks only; {not_index} observe vectors or images")
        lo, hi = self.lifetime_range()
        problem = LPGLifetimes(
            **{k: getattr(self, k) for k in ESTIMATOR_FIELDS},
            min_lifetime_updates=lo if lo < hi else 0,
            gae_lambda=self.gae_lambda, critic_lr=self.critic_lr, critic_lr_tabular=self.critic_lr_tabular,
            agent_hidden=tuple(int(h) for h in self.agent_hidden), agent_max_grad_norm=self.agent_max_grad_norm,
            bandit_temperature=self.bandit_temperature, bandit_bonus=self.bandit_bonus, bandit_window=self.bandit_window,
            index_torso=self.index_torso, neural_optimizer=self.neural_optimizer,
            neural_learning_rates=tuple(float(x) for x in self.neural_learning_rates), neural_max_grad_norm=self.neural_max_grad_norm,
            task_weights=tuple(float(self.task_weights.get(n, 1.0)) for n in names) if self.task_weights else (),
            task_torsos=tuple(sorted(self.task_torsos.items())),
        )
        est = (TruncatedES(problem, sigma=self.sigma) if self.estimator == "tes" else TruncatedMetaGradient(problem)).bind(tasks)
        return rule, est, cfg


def _check_field(name: str, value, default) -> None:
    """A field must have its default's kind: sizes are positive integers, rates positive finite
    numbers (γ and λ in (0, 1]; the bandit's bonus may be 0), choices one of theirs, tuples
    non-empty lists of non-negative numbers (`betas` four of them, `agent_hidden` positive
    integers), `task_weights` task names mapped to positive numbers."""
    bad = f"preset field {name!r}"
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{bad} must be true or false, got {value!r}")
    elif isinstance(default, int):
        if not isinstance(value, int) or isinstance(value, bool) or value < (0 if name == "min_lifetime_updates" else 1):
            raise ValueError(f"{bad} must be a {'non-negative' if name == 'min_lifetime_updates' else 'positive'} integer, got {value!r}")
    elif isinstance(default, float):
        at_most_1 = name in ("gamma", "gae_lambda")
        low_ok = name == "bandit_bonus" and _is_real(value) and value == 0
        if not _is_real(value) or (value <= 0 and not low_ok) or (at_most_1 and value > 1):
            raise ValueError(f"{bad} must be a {'non-negative' if name == 'bandit_bonus' else 'positive'} number{' at most 1' if at_most_1 else ''}, got {value!r}")
    elif name in LPGPreset.CHOICES:
        if value not in LPGPreset.CHOICES[name]:
            raise ValueError(f"{bad} must be {' or '.join(map(repr, LPGPreset.CHOICES[name]))}, got {value!r}")
    elif name == "task_torsos":
        if not (isinstance(value, dict) and all(isinstance(k, str) and v in ("tabular", "mlp") for k, v in value.items())):
            raise ValueError(f'{bad} must map task names to "tabular" or "mlp", e.g. {{"gridworld/dense": "mlp"}}, got {value!r}')
    elif isinstance(default, dict):
        ok = isinstance(value, dict) and all(isinstance(k, str) and _is_real(w) and w > 0 for k, w in value.items())
        if not ok:
            raise ValueError(f'{bad} must map task names to positive numbers, e.g. {{"gridworld/long_dense": 3}}, got {value!r}')
    elif isinstance(default, tuple):
        if not isinstance(value, (list, tuple)) or not value or not all(_is_real(x) and x >= 0 for x in value):
            raise ValueError(f"{bad} must be a non-empty list of non-negative numbers, got {value!r}")
        if name == "betas" and len(value) != len(default):
            raise ValueError(f"{bad} must have {len(default)} entries, got {len(value)}")
        if name == "agent_hidden" and not all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in value):
            raise ValueError(f"{bad} must be a non-empty list of positive integers, got {value!r}")


def build(preset: LPGPreset | dict[str, Any], tasks: list, *, key):
    """`(rule, estimator, meta_config)` for a preset (or the `preset` dict of a run's config.json)."""
    if isinstance(preset, dict):
        preset = LPGPreset.from_json(preset)
    return preset.build(tasks, key=key)


PRESETS: dict[str, LPGPreset] = {
    "cpu": LPGPreset(),
    "paper": LPGPreset(
        hidden_size=256, prediction_dim=30, cell="lstm",
        inner_steps=5, lifetimes_per_task=192, num_envs=64, rollout_len=20, lifetime_updates=2400,
        learning_rates=(20.0, 40.0, 80.0, 160.0, 320.0), alpha_ys=(0.1, 0.5, 1.0),
        betas=(0.01, 0.001, 0.001, 0.001), gamma=0.99, meta_lr=1e-4, max_grad_norm=1.0, steps=100_000,
    ),
    # the cpu preset's rule and lifetimes (so a cpu-preset rule warm-starts it) with the paper's
    # 960 lifetimes: 64 per task of the 15 lpg-all tasks, for one accelerator
    "gpu": LPGPreset(lifetimes_per_task=64),
    "groove-bench": LPGPreset(
        hidden_size=256, prediction_dim=8, cell="gru",
        inner_steps=5, lifetimes_per_task=8, num_envs=64, rollout_len=20, lifetime_updates=2400,
        learning_rates=(20.0, 40.0, 80.0), alpha_ys=(0.1, 0.5, 1.0),
        betas=(0.05, 0.001, 0.005, 0.001), gamma=0.99, meta_lr=1e-4, max_grad_norm=1.0, steps=1000,
    ),
}

ESTIMATOR_FIELDS = ("inner_steps", "lifetimes_per_task", "num_envs", "rollout_len", "lifetime_updates", "learning_rates", "alpha_ys", "betas", "regularizer")


def get_preset(name: str, **overrides) -> LPGPreset:
    """A preset by name, with overrides (`None` values are ignored). Unknown names or fields, and
    values of the wrong kind, raise `ValueError`."""
    if name not in PRESETS:
        raise ValueError(f"Unknown preset {name!r}. Known presets: {', '.join(PRESETS)}")
    return PRESETS[name].replace(**overrides)


def make_es(problem, *, strategy: str = "openes", population: int, sigma: float, sigma_decay: float = 1.0, sigma_min: float = 0.0,
            ranking: str = "centered", learning_rate: float | None = None, max_nan_fraction: float = 0.5, eval_center: bool = True):
    """The evolution-strategies estimator named `strategy` on a fitness `problem`: ``openes`` is
    ours (`EvolutionStrategies`: a gradient for meta_train's Adam, σ decay, `ranking`); ``snes``,
    ``pgpe``, ``cma_es`` and ``open_es`` are evosax's (`EvosaxStrategy`: they own their update,
    `learning_rate` is their mean's; σ decay and `ranking` are ours only)."""
    if strategy == "openes":
        return EvolutionStrategies(
            problem, population=population, sigma=sigma, sigma_decay=sigma_decay, sigma_min=sigma_min,
            max_nan_fraction=max_nan_fraction, eval_center=eval_center, ranking=ranking,
        )
    if strategy not in EVOSAX_STRATEGIES:
        raise ValueError(f"unknown ES strategy {strategy!r} (choose from {', '.join(ES_STRATEGIES)})")
    return EvosaxStrategy(
        problem, strategy=strategy, population=population, sigma=sigma, learning_rate=learning_rate,
        max_nan_fraction=max_nan_fraction, eval_center=eval_center,
    )


@dataclasses.dataclass(frozen=True)
class LPOPreset(Preset):
    """Everything an LPO meta-training run is built from: the drift (`width`, `ppo_init`), the ES
    (`population`, `sigma`, `sigma_decay`, `sigma_min`, `max_nan_fraction`, `eval_center`), its
    inner problem (`TrainingRuns`: `inner_env_steps`, `seeds_per_member`, `final_fraction`) and the
    meta-optimiser (`meta_lr`, `lr_decay`, `lr_min`, `max_grad_norm`, `steps`). Later fields:
    `temporal` (TA-LPO: the drift reads ``[x, (n/N)·x]``), `es_strategy` (``openes``: ours, or
    evosax's ``snes``, ``pgpe``, ``cma_es``, ``open_es``; see `make_es`), `es_learning_rate` (the
    evosax strategies' mean learning rate; None: evosax's default), `ranking` (ours: centered |
    antithetic), `horizons` and `normalize` (`TrainingRuns`), `overrides` (field -> value: the
    inner runs' hyperparameters, of the rule such as ``num_minibatches`` and ``num_epochs`` or of
    its `TrainConfig` such as ``learning_rate`` and ``num_envs``, as ``train --set`` takes them;
    use the same values when training with the resulting rule). Values are checked where they are
    used (`EvolutionStrategies`, `EvosaxStrategy`, `TrainingRuns`, `MetaTrainConfig`) when `build`
    runs, before anything compiles. The CLI sets any field with ``--set FIELD=VALUE`` (the ES
    fields also as flags); a run's config.json holds `to_json()`."""

    width: int = 128
    ppo_init: bool = True
    population: int = 32
    sigma: float = 0.03
    sigma_decay: float = 0.999
    sigma_min: float = 0.01
    inner_env_steps: int | None = 100_000
    seeds_per_member: int = 1
    meta_lr: float = 0.02
    lr_decay: float = 0.999
    lr_min: float = 0.005
    max_grad_norm: float = 1e6
    steps: int = 150
    # named in a run's config.json only when they differ from these defaults (runs written before
    # they were settable still match on --resume)
    eval_center: bool = True
    final_fraction: float = 0.1
    max_nan_fraction: float = 0.5
    temporal: bool = False
    es_strategy: str = "openes"
    es_learning_rate: float | None = None
    ranking: str = "centered"
    horizons: tuple[int, ...] = ()
    normalize: bool = False
    overrides: dict = dataclasses.field(default_factory=dict)

    LATER: ClassVar[tuple[str, ...]] = (
        "eval_center", "final_fraction", "max_nan_fraction", "temporal", "es_strategy", "es_learning_rate", "ranking", "horizons", "normalize",
        "overrides",
    )

    RENAMED: ClassVar[dict[str, str]] = {"inner_steps": "inner_env_steps"}

    def __post_init__(self):
        for f in ("horizons",):
            if isinstance(getattr(self, f), list):  # from JSON
                object.__setattr__(self, f, tuple(getattr(self, f)))
    KIND: ClassVar[str] = "LPO "

    def build(self, tasks: list, *, key):
        """`(rule, estimator, meta_config)`: a mirror-learning rule with a fresh `LPODrift` (zero
        output layer: generation 0 is PPO when `ppo_init`), the ES strategy (`make_es`) on
        `TrainingRuns`, and the `MetaTrainConfig`."""
        rule = make_lpo(key=key, width=int(self.width), ppo_init=bool(self.ppo_init), temporal=bool(self.temporal))
        if not isinstance(self.overrides, dict):
            raise ValueError(f"preset field 'overrides' must map field names to values, got {self.overrides!r}")
        cfg_sets = {k: v for k, v in self.overrides.items() if k in CONFIG_FIELDS}
        rule_sets = {k: v for k, v in self.overrides.items() if k not in cfg_sets}
        rule, _, used = apply_overrides(rule, TrainConfig(), rule_sets, prefix="preset field 'overrides' ")
        unknown = sorted(set(self.overrides) - set(cfg_sets) - set(used))
        if unknown:
            raise ValueError(f"preset field 'overrides': {unknown} are neither fields of the rule nor of TrainConfig (TrainConfig: {', '.join(CONFIG_FIELDS)})")
        problem = TrainingRuns(
            inner_env_steps=self.inner_env_steps, seeds_per_member=self.seeds_per_member, final_fraction=self.final_fraction,
            horizons=tuple(self.horizons), normalize=bool(self.normalize), config_overrides=tuple(sorted(cfg_sets.items())),
        )
        est = make_es(
            problem, strategy=self.es_strategy, population=self.population, sigma=self.sigma, sigma_decay=self.sigma_decay,
            sigma_min=self.sigma_min, ranking=self.ranking, learning_rate=self.es_learning_rate,
            max_nan_fraction=self.max_nan_fraction, eval_center=self.eval_center,
        )
        est.validate(rule, tasks)
        est = est.bind(tasks, rule)
        cfg = MetaTrainConfig(
            steps=int(self.steps), meta_lr=float(self.meta_lr), max_grad_norm=float(self.max_grad_norm),
            lr_decay=float(self.lr_decay), lr_min=float(self.lr_min),
        )
        return rule, est, cfg


LPO_PRESETS: dict[str, LPOPreset] = {
    # CPU scale (2 cores): 32 members × one 100k-step PPO run each per generation.
    "cpu": LPOPreset(),
    # The LPO paper's ES sizes (population 64, 1,000+ generations) with each task's default budget.
    "paper": LPOPreset(population=64, inner_env_steps=None, meta_lr=0.03, steps=1000),
}


def get_lpo_preset(name: str, **overrides) -> LPOPreset:
    """An LPO preset by name, with overrides (`None` values are ignored). Unknown names or fields
    raise `ValueError`; the values are checked when the estimator is built."""
    if name not in LPO_PRESETS:
        raise ValueError(f"Unknown LPO preset {name!r}. Known presets: {', '.join(LPO_PRESETS)}")
    return LPO_PRESETS[name].replace(**overrides)


def build_lpo(preset: LPOPreset | dict[str, Any], tasks: list, *, key):
    """`(rule, estimator, meta_config)` for an LPO preset (or the `preset` dict of a config.json)."""
    if isinstance(preset, dict):
        preset = LPOPreset.from_json(preset)
    return preset.build(tasks, key=key)
