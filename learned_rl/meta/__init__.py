"""Meta-training: inner problems, estimators, the hyperparameter bandit, and the one meta-training loop."""

from ._bandit import BanditState as BanditState, bandit_init as bandit_init, bandit_probs as bandit_probs, bandit_sample as bandit_sample, bandit_update as bandit_update
from ._estimators import AbstractMetaEstimator as AbstractMetaEstimator, TruncatedBackprop as TruncatedBackprop, TruncatedES as TruncatedES, TruncatedMetaGradient as TruncatedMetaGradient
from ._problems import AbstractFitnessProblem as AbstractFitnessProblem, AbstractInnerProblem as AbstractInnerProblem, AbstractTruncatedProblem as AbstractTruncatedProblem
from ._problems import FitnessFunction as FitnessFunction, LPGLifetimes as LPGLifetimes, TrainingRuns as TrainingRuns
from ._meta_train import MetaState as MetaState, MetaTrainConfig as MetaTrainConfig, make_meta_step as make_meta_step, meta_init as meta_init, meta_train as meta_train
from ._es import ESState as ESState, EvolutionStrategies as EvolutionStrategies, centered_ranks as centered_ranks
from ._evosax import EvosaxStrategy as EvosaxStrategy
from ._sharding import constrain_population as constrain_population

