"""``fastloss.lightgbm.LGBMClassifier`` / ``LGBMRegressor``: LightGBM's estimators with a fastloss loss.

The parent's ``fit`` runs with ``objective`` set to the fastloss objective (restored afterwards:
scikit-learn's ``get_params`` must return what the user passed) and ``init_score`` (and each
``eval_init_score``) set to the loss's best constant; the constant is then added to the leaves of
the first iteration's trees (``fastloss.lightgbm.bake_base_score``), so ``booster_``, its saved
model and a pickled estimator predict from the start. With a custom objective LightGBM's
classifier returns raw scores from ``predict_proba`` and ``predict``; here they give softmax /
sigmoid probabilities and class labels.
"""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np

from . import _gbdt_sklearn
from .lightgbm import LightGBMObjective, bake_base_score

__all__ = ["LGBMClassifier", "LGBMRegressor"]

_DOC = """

    fastloss: ``loss`` (a fastloss loss name, default ``{default}``; one of {losses}),
    ``loss_options`` (a dict of that loss's options, e.g. ``{{"delta": 5.0}}``; separate from
    LightGBM's arguments), ``hessian`` (``"auto"``, ``"booster"``, ``"exact"``, see
    ``fastloss.lightgbm``). ``objective`` must stay None; with a user ``init_score`` the start is
    the user's and nothing is added to the trees."""


def _fit(estimator: Any, parent_fit: Any, obj: LightGBMObjective, start: Any, X: Any, y: Any,
         sample_weight: Any, init_score: Any, eval_set: Any, eval_init_score: Any, kwargs: dict) -> Any:
    ours = init_score is None
    if ours:
        n = np.asarray(y).shape[0]
        init_score = np.tile(np.asarray(start, dtype=np.float64), (n, 1)) if np.ndim(start) else np.full(n, start)
        if eval_set is not None and eval_init_score is None:
            sets = eval_set if isinstance(eval_set, list) else [eval_set]
            sizes = [np.asarray(v[1]).shape[0] for v in sets]
            eval_init_score = [np.tile(np.asarray(start, dtype=np.float64), (k, 1)) if np.ndim(start)
                               else np.full(k, start) for k in sizes]
    estimator._objective = obj  # LightGBM trains on _objective, copied from objective in __init__ only
    with _gbdt_sklearn.fit_params(estimator, objective=obj):
        parent_fit(X, y, sample_weight=sample_weight, init_score=init_score, eval_set=eval_set,
                   eval_init_score=eval_init_score, **kwargs)
    if ours:
        bake_base_score(estimator.booster_, start)
    return estimator


class _BoosterParams:
    def _process_params(self, stage: str) -> dict[str, Any]:
        with _gbdt_sklearn.booster_params_only(self):
            params = super()._process_params(stage)  # type: ignore[misc]
        # LightGBM with a custom objective cannot train once its pre-filter has dropped every feature
        # (tiny data: "num_features() > 0"); its built-ins can. Unfiltered features never split
        # either, so the model is the same.
        params.setdefault("feature_pre_filter", False)
        return params


class LGBMRegressor(_BoosterParams, lgb.LGBMRegressor):
    __doc__ = "LightGBM's ``LGBMRegressor`` trained on a fastloss loss." + _DOC.format(
        default='"mse_loss"', losses=_gbdt_sklearn.REGRESSOR_LOSSES)

    def __init__(self, *, loss: str = "mse_loss", loss_options: dict | None = None, hessian: str = "auto",
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _gbdt_sklearn.store_loss_params(self, loss, loss_options, hessian)

    def fit(  # type: ignore[override]
            self, X: Any, y: Any, sample_weight: Any = None, init_score: Any = None, eval_set: Any = None,
            eval_init_score: Any = None, **kwargs: Any) -> LGBMRegressor:
        """LightGBM's ``fit``, from the best constant of the loss on ``y``, kept in the model."""
        _gbdt_sklearn.require_y(self, y)
        obj = _gbdt_sklearn.build_objective(LightGBMObjective, self, _gbdt_sklearn.REGRESSOR_LOSSES)
        start = obj.base_score(np.asarray(y, dtype=np.float64).reshape(-1), sample_weight) if init_score is None \
            else None
        return _fit(self, super().fit, obj, start, X, y, sample_weight, init_score, eval_set, eval_init_score,
                    kwargs)


class LGBMClassifier(_BoosterParams, lgb.LGBMClassifier):
    __doc__ = "LightGBM's ``LGBMClassifier`` trained on a fastloss loss." + _DOC.format(
        default='"cross_entropy"', losses=_gbdt_sklearn.CLASSIFIER_LOSSES) + _gbdt_sklearn.HINGE_NOTE

    def __init__(self, *, loss: str = "cross_entropy", loss_options: dict | None = None, hessian: str = "auto",
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _gbdt_sklearn.store_loss_params(self, loss, loss_options, hessian)

    def fit(  # type: ignore[override]
            self, X: Any, y: Any, sample_weight: Any = None, init_score: Any = None, eval_set: Any = None,
            eval_init_score: Any = None, **kwargs: Any) -> LGBMClassifier:
        """LightGBM's ``fit``, from the best constant margin(s) of the loss on ``y``, kept in the model."""
        _gbdt_sklearn.require_y(self, y)
        obj = _gbdt_sklearn.build_objective(LightGBMObjective, self, _gbdt_sklearn.CLASSIFIER_LOSSES)
        start = None if init_score is not None else _gbdt_sklearn.classifier_start(obj, y, sample_weight, self.loss)[1]
        return _fit(self, super().fit, obj, start, X, y, sample_weight, init_score, eval_set, eval_init_score,
                    kwargs)

    def predict_proba(self, X: Any, raw_score: bool = False, start_iteration: int = 0,
                      num_iteration: int | None = None, pred_leaf: bool = False, pred_contrib: bool = False,
                      validate_features: bool = False, **kwargs: Any) -> Any:
        """Class probabilities: softmax (sigmoid for a binary model) of the raw scores; with
        ``raw_score`` / ``pred_leaf`` / ``pred_contrib``, LightGBM's own output."""
        out = super().predict_proba(X, raw_score=True, start_iteration=start_iteration,
                                    num_iteration=num_iteration, pred_leaf=pred_leaf, pred_contrib=pred_contrib,
                                    validate_features=validate_features, **kwargs)
        if raw_score or pred_leaf or pred_contrib:
            return out
        return _gbdt_sklearn.softmax_or_sigmoid(np.asarray(out))

    def predict(self, X: Any, raw_score: bool = False, start_iteration: int = 0, num_iteration: int | None = None,
                pred_leaf: bool = False, pred_contrib: bool = False, validate_features: bool = False,
                **kwargs: Any) -> Any:
        """Class labels (the arg-max of ``predict_proba``); with ``raw_score`` / ``pred_leaf`` /
        ``pred_contrib``, LightGBM's own output."""
        out = self.predict_proba(X, raw_score=raw_score, start_iteration=start_iteration,
                                 num_iteration=num_iteration, pred_leaf=pred_leaf, pred_contrib=pred_contrib,
                                 validate_features=validate_features, **kwargs)
        if raw_score or pred_leaf or pred_contrib:
            return out
        return self.classes_[np.argmax(out, axis=1)]
