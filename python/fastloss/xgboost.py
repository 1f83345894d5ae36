"""XGBoost objectives and estimators from fastloss losses.

Estimators (subclasses of XGBoost's own; every argument but ``loss``, ``loss_options`` and
``hessian`` is XGBoost's)::

    model = fastloss.xgboost.XGBClassifier(loss="softmax_focal_loss", loss_options={"gamma": 2.0})
    model.fit(X, y).predict_proba(X)
    fastloss.xgboost.XGBRegressor(loss="huber_loss", loss_options={"delta": 5.0}).fit(X, y).predict(X)

They set the objective, start from the loss's best constant (``base_score``, stored in the model,
so a saved and loaded model, or a plain ``xgb.XGBClassifier`` loading the file, predicts the same)
and keep XGBoost's prediction link (``binary:logistic`` / ``multi:softprob``: sigmoid / softmax of
the margins; identity for regression).

The objective alone, for ``xgb.train``::

    obj = objective("softmax_focal_loss", gamma=2.0)
    params = {"num_class": 10, "base_score": obj.base_score(y)}  # margins: the start, kept in the model
    booster = xgb.train(params, xgb.DMatrix(X, y), 100, obj=obj)
    proba = obj.predict(booster, X)  # the link applied to the margins

It returns ``fl.<loss>_grad_hess`` of the raw margins times the DMatrix / ``fit(sample_weight=...)``
weights, with the Hessian chosen by ``hessian=`` (``"auto"``, ``"booster"``, ``"exact"``; see
``fastloss._gbdt_hessian``: the default replaces the zero curvature of linear pieces and uses
``multi:softprob``'s ``max(2 p (1 - p), 1e-16)`` scale for the softmax family). Row-wise losses
(cross_entropy, softmax_focal_loss, multiclass_hinge_loss) take the (n_samples, n_classes) margins
XGBoost gives a multi-class custom objective (a flat sample-major array of that size is accepted
too) and the labels as class indices, or one margin per sample for a binary model (class 0's
margin fixed at 0); point-wise losses (huber_loss, smooth_l1_loss, sigmoid_focal_loss, hinge_loss,
...) take margins of the labels' shape (binary classification: one margin per sample; the labels
0/1). The computation runs in the margins' dtype (float32 from XGBoost).

XGBoost is imported only when an estimator is first used: it stays an optional dependency.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._gbdt import GradHessObjective

__all__ = ["XGBClassifier", "XGBRegressor", "XGBoostObjective", "objective"]  # noqa: F822 - module __getattr__

XGB_SOFTMAX_FLOOR = 1e-16  # multi:softprob's eps (src/objective/multiclass_obj.cu)


class XGBoostObjective(GradHessObjective):
    """``obj(predt, dtrain)`` for ``xgb.train`` and ``obj(y_true, y_pred, sample_weight=None)`` for
    the scikit-learn estimators (XGBoost passes ``sample_weight`` by keyword when it has weights)."""

    softmax_floor = XGB_SOFTMAX_FLOOR

    def softmax_factor(self, n_classes: int) -> float:
        return 2.0  # multi:softprob: h = max(2 p (1 - p) w, eps)

    def __call__(self, a: Any, b: Any, sample_weight: Any = None) -> tuple[np.ndarray, np.ndarray]:
        if hasattr(b, "get_label") and hasattr(b, "get_weight"):  # xgb.train: (predt, dtrain)
            margins, labels, weight = a, b.get_label(), b.get_weight()
        else:  # scikit-learn API: (y_true, y_pred[, sample_weight])
            labels, margins, weight = a, b, sample_weight
        margins = np.asarray(margins)
        if not self.spec.rowwise:
            return self.points(margins, labels, weight)
        n = np.asarray(labels).size
        if margins.size == n and n:
            return self.binary_rows(margins, labels, weight)
        if margins.ndim == 1:
            if n == 0 or margins.size % n:
                raise ValueError(
                    f"{self.loss} is a multi-class loss: XGBoost must give n_classes >= 2 margins per sample "
                    f"(set num_class), got {margins.size} margins for {n} samples"
                )
            grad, hess = self.rows(margins.reshape(n, -1), labels, weight, axis=-1)
            return grad.reshape(-1), hess.reshape(-1)
        return self.rows(margins, labels, weight, axis=-1)

    def predict(self, booster: Any, data: Any, **kwargs: Any) -> np.ndarray:
        """``link(booster.predict(data, output_margin=True))``: class probabilities for the softmax
        and sigmoid losses, the margins for regression and hinge losses. ``data``: a DMatrix or
        anything ``xgb.DMatrix`` takes; ``kwargs`` go to ``Booster.predict``."""
        import xgboost as xgb

        if not isinstance(data, xgb.DMatrix):
            data = xgb.DMatrix(data)
        return self.link(booster.predict(data, output_margin=True, **kwargs))


def objective(loss: str, *, reuse_outputs: bool = True, hessian: str = "auto", **opts: Any) -> XGBoostObjective:
    """A custom XGBoost objective computing ``fastloss.<loss>_grad_hess(margins, labels, **opts)``.

    Pass it as ``xgb.train(..., obj=objective(...))`` or ``XGBClassifier/XGBRegressor(objective=
    objective(...))``. Multi-class losses need ``num_class`` in ``xgb.train``'s params (the
    classifier sets it itself). ``hessian``: ``"auto"`` (default), ``"booster"`` or ``"exact"``
    (module docstring). ``base_score(y)`` gives the starting margin(s) for ``params["base_score"]``,
    ``predict(booster, X)`` the linked prediction. The returned arrays are written again by the
    next call (``reuse_outputs=False``: fresh arrays each call); XGBoost copies them first."""
    return XGBoostObjective(loss, reuse_outputs=reuse_outputs, hessian=hessian, **opts)


def __getattr__(name: str) -> Any:
    if name in ("XGBClassifier", "XGBRegressor"):
        from . import _xgb_estimators

        return getattr(_xgb_estimators, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    """The lazily imported estimators too (``dir``, tab completion and the API reference see them)."""
    return sorted(set(globals()) | set(__all__))
