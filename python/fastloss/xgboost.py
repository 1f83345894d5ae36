"""XGBoost objectives from fastloss losses: ``fastloss.xgboost.objective(loss, **opts)``.

The returned callable works in both of XGBoost's APIs::

    booster = xgb.train(params, dtrain, obj=objective("softmax_focal_loss", gamma=2.0))  # + num_class
    model = xgb.XGBClassifier(objective=objective("softmax_focal_loss", gamma=2.0))

It returns ``fl.<loss>_grad_hess`` of the raw margins: the gradient and the exact diagonal of the
Hessian, times the DMatrix / ``fit(sample_weight=...)`` weights. Row-wise losses (cross_entropy,
softmax_focal_loss, multiclass_hinge_loss) take the (n_samples, n_classes) margins XGBoost gives a
multi-class custom objective (a flat sample-major array of that size is accepted too) and the labels
as class indices; point-wise losses (huber_loss, smooth_l1_loss, sigmoid_focal_loss, hinge_loss,
...) take margins of the labels' shape (binary classification: one margin per sample; the labels
0/1). The computation runs in the margins' dtype (float32 from XGBoost).

XGBoost itself is not imported here: it stays an optional dependency.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._gbdt import GradHessObjective

__all__ = ["XGBoostObjective", "objective"]


class XGBoostObjective(GradHessObjective):
    """``obj(predt, dtrain)`` for ``xgb.train`` and ``obj(y_true, y_pred, sample_weight=None)`` for
    the scikit-learn estimators (XGBoost passes ``sample_weight`` by keyword when it has weights)."""

    def __call__(self, a: Any, b: Any, sample_weight: Any = None) -> tuple[np.ndarray, np.ndarray]:
        if hasattr(b, "get_label") and hasattr(b, "get_weight"):  # xgb.train: (predt, dtrain)
            margins, labels, weight = a, b.get_label(), b.get_weight()
        else:  # scikit-learn API: (y_true, y_pred[, sample_weight])
            labels, margins, weight = a, b, sample_weight
        margins = np.asarray(margins)
        if not self.spec.rowwise:
            return self.points(margins, labels, weight)
        n = np.asarray(labels).size
        if margins.ndim == 1:
            if n == 0 or margins.size % n or margins.size == n:
                raise ValueError(
                    f"{self.loss} is a multi-class loss: XGBoost must give n_classes >= 2 margins per sample "
                    f"(set num_class), got {margins.size} margins for {n} samples"
                )
            grad, hess = self.rows(margins.reshape(n, -1), labels, weight, axis=-1)
            return grad.reshape(-1), hess.reshape(-1)
        return self.rows(margins, labels, weight, axis=-1)


def objective(loss: str, *, reuse_outputs: bool = True, **opts: Any) -> XGBoostObjective:
    """A custom XGBoost objective computing ``fastloss.<loss>_grad_hess(margins, labels, **opts)``.

    Pass it as ``xgb.train(..., obj=objective(...))`` or ``XGBClassifier/XGBRegressor(objective=
    objective(...))``. Multi-class losses need ``num_class`` in ``xgb.train``'s params (the
    classifier sets it itself). The returned arrays are written again by the next call
    (``reuse_outputs=False``: fresh arrays each call); XGBoost copies them first."""
    return XGBoostObjective(loss, reuse_outputs=reuse_outputs, **opts)
