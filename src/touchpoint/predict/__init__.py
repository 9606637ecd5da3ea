"""Customer value predictions: purchase models (BG/NBD, MBG/NBD, Pareto/NBD), the Gamma-Gamma spend
model, customer lifetime value, next purchase and replenishment, and propensity scores.

>>> from touchpoint.predict import MODELS
>>> sorted(MODELS)
['bg_nbd', 'mbg_nbd', 'pareto_nbd']
"""

from touchpoint.predict.base import FitReport, Model, ModelMismatch, ModelNotFitted
from touchpoint.predict.bgnbd import BetaGeoModel, ModifiedBetaGeoModel
from touchpoint.predict.gammagamma import GammaGammaModel
from touchpoint.predict.paretonbd import ParetoNBDModel
from touchpoint.predict.purchase import PurchaseModel

#: Purchase models by their CLI/API name.
MODELS: dict[str, type[PurchaseModel]] = {
    "bg_nbd": BetaGeoModel,
    "mbg_nbd": ModifiedBetaGeoModel,
    "pareto_nbd": ParetoNBDModel,
}

__all__ = [
    "MODELS",
    "BetaGeoModel",
    "FitReport",
    "GammaGammaModel",
    "Model",
    "ModelMismatch",
    "ModelNotFitted",
    "ModifiedBetaGeoModel",
    "ParetoNBDModel",
    "PurchaseModel",
]
