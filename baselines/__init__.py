"""Hand-written baselines, as update rules under `learned_rl.AbstractUpdateRule`."""

from .a2c import A2C as A2C, A2C_DEFAULTS as A2C_DEFAULTS
from .ppo import PPO as PPO, PPO_DEFAULTS as PPO_DEFAULTS
