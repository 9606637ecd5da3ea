"""Marketing-mix model: ROMI per channel, budget plan and investment case.

Importing this package is cheap: JAX and NumPyro load only when a model is fitted
(:mod:`touchpoint.mmm.engine`).
"""

from touchpoint.mmm.config import MMMConfig
from touchpoint.mmm.dataset import MMMData, from_file, from_warehouse
from touchpoint.mmm.model import MMMResult, fit
from touchpoint.mmm.simulate import simulate

__all__ = ["MMMConfig", "MMMData", "MMMResult", "fit", "from_file", "from_warehouse", "simulate"]
