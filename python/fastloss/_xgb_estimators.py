"""``fastloss.xgboost.XGBClassifier`` / ``XGBRegressor``: XGBoost's estimators with a fastloss loss.

The parent's ``fit`` runs with ``objective`` set to the fastloss objective and ``base_score`` to
the loss's best constant; both are restored afterwards (scikit-learn's ``get_params`` must return
what the user passed). The fitted booster keeps the start: XGBoost stores ``base_score`` in the
model (a margin for regression and multi-class, a probability for its ``binary:logistic`` binary
model, so it is passed as ``sigmoid(margin)`` there), and with a custom objective XGBoost's
classifier trains as ``binary:logistic`` / ``multi:softprob``, so ``predict_proba`` applies
sigmoid / softmax to the margins, and a saved model loads into this class or XGBoost's own.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xgboost as xgb

from . import _gbdt_sklearn
from ._gbdt_start import CLASSIFICATION_BOUND
from .xgboost import XGBoostObjective

__all__ = ["XGBClassifier", "XGBRegressor"]

_DOC = """

    fastloss: ``loss`` (a fastloss loss name, default ``{default}``; one of {losses}),
    ``loss_options`` (a dict of that loss's options, e.g. ``{{"delta": 5.0}}``; separate from
    XGBoost's arguments, which share names such as ``gamma``), ``hessian`` (``"auto"``,
    ``"booster"``, ``"exact"``, see ``fastloss.xgboost``). ``objective`` must stay at XGBoost's default; a
    ``base_score`` given by the user replaces the loss's best constant."""


class _BoosterParams:
    def _wrapper_params(self) -> set[str]:
        return super()._wrapper_params() | _gbdt_sklearn.FASTLOSS_PARAMS  # type: ignore[misc]


class XGBRegressor(_BoosterParams, xgb.XGBRegressor):
    __doc__ = "XGBoost's ``XGBRegressor`` trained on a fastloss loss." + _DOC.format(
        default='"mse_loss"', losses=_gbdt_sklearn.REGRESSOR_LOSSES)

    def __init__(self, *, loss: str = "mse_loss", loss_options: dict | None = None, hessian: str = "auto",
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _gbdt_sklearn.store_loss_params(self, loss, loss_options, hessian)

    def fit(self, X: Any, y: Any, *, sample_weight: Any = None, **kwargs: Any) -> XGBRegressor:
        """XGBoost's ``fit``, from the best constant of the loss on ``y`` (weighted by ``sample_weight``)."""
        _gbdt_sklearn.require_y(self, y)
        obj = _gbdt_sklearn.build_objective(XGBoostObjective, self, _gbdt_sklearn.REGRESSOR_LOSSES,
                                             "reg:squarederror")
        start = self.base_score
        if start is None:
            y_arr = np.asarray(y, dtype=np.float64)
            start = obj.base_score(y_arr.reshape(-1) if y_arr.ndim == 2 and y_arr.shape[1] == 1 else y_arr,
                                   sample_weight)
        with _gbdt_sklearn.fit_params(self, objective=obj, base_score=start):
            return super().fit(X, y, sample_weight=sample_weight, **kwargs)


class XGBClassifier(_BoosterParams, xgb.XGBClassifier):
    __doc__ = "XGBoost's ``XGBClassifier`` trained on a fastloss loss." + _DOC.format(
        default='"cross_entropy"', losses=_gbdt_sklearn.CLASSIFIER_LOSSES) + _gbdt_sklearn.HINGE_NOTE

    def __init__(self, *, loss: str = "cross_entropy", loss_options: dict | None = None, hessian: str = "auto",
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _gbdt_sklearn.store_loss_params(self, loss, loss_options, hessian)

    def fit(self, X: Any, y: Any, *, sample_weight: Any = None, **kwargs: Any) -> XGBClassifier:
        """XGBoost's ``fit``, from the best constant margin(s) of the loss on ``y``."""
        _gbdt_sklearn.require_y(self, y)
        obj = _gbdt_sklearn.build_objective(XGBoostObjective, self, _gbdt_sklearn.CLASSIFIER_LOSSES,
                                             "binary:logistic")
        start = self.base_score
        if start is None:
            n_classes, start = _gbdt_sklearn.classifier_start(obj, y, sample_weight, self.loss)
            if n_classes == 2:  # binary:logistic keeps base_score as a probability
                margin = float(np.clip(start, -CLASSIFICATION_BOUND, CLASSIFICATION_BOUND))
                start = 0.5 * (1.0 + np.tanh(0.5 * margin))
            elif n_classes < 2:
                start = None  # XGBoost's own handling of a single class
        with _gbdt_sklearn.fit_params(self, objective=obj, base_score=start):
            return super().fit(X, y, sample_weight=sample_weight, **kwargs)
