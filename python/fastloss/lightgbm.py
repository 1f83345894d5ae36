"""LightGBM objectives from fastloss losses: ``fastloss.lightgbm.objective(loss, **opts)``.

The returned callable works in both of LightGBM's APIs::

    booster = lgb.train({"objective": objective("cross_entropy", label_smoothing=0.1), "num_class": 10}, dtrain)
    model = lgb.LGBMClassifier(objective=objective("softmax_focal_loss", gamma=2.0))

It returns ``fl.<loss>_grad_hess`` of the raw scores: the gradient and the exact diagonal of the
Hessian, times the Dataset's / ``fit(sample_weight=...)`` weights. LightGBM hands a multi-class
objective its scores as an (n_samples, n_classes) view of a class-major buffer; the row-wise losses
(cross_entropy, softmax_focal_loss, multiclass_hinge_loss) run on that buffer directly, with the
class axis first (no transposing copy), and return arrays in the same layout. A flat class-major
array of n_samples * n_classes scores is accepted too. Point-wise losses (huber_loss,
smooth_l1_loss, sigmoid_focal_loss, ...) take one score per label. The computation runs in the
scores' dtype (float64 from LightGBM).

LightGBM itself is not imported here: it stays an optional dependency.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._gbdt import GradHessObjective

__all__ = ["LightGBMObjective", "objective"]


class LightGBMObjective(GradHessObjective):
    """``fobj(preds, train_data)`` for ``lgb.train`` and ``fobj(y_true, y_pred, weight, group)`` for
    the scikit-learn estimators (which pass as many arguments as the signature names)."""

    def __call__(self, a: Any, b: Any, weight: Any = None, group: Any = None) -> tuple[np.ndarray, np.ndarray]:
        del group  # ranking groups play no part in these losses
        if hasattr(b, "get_label") and hasattr(b, "get_weight"):  # lgb.train: (preds, train_data)
            scores, labels, weight = a, b.get_label(), b.get_weight()
        else:  # scikit-learn API: (y_true, y_pred, weight, group)
            labels, scores = a, b
        scores = np.asarray(scores)
        if not self.spec.rowwise:
            return self.points(scores, labels, weight)
        n = np.asarray(labels).size
        if scores.ndim == 1:  # flat, class-major
            if n == 0 or scores.size % n or scores.size == n:
                raise ValueError(
                    f"{self.loss} is a multi-class loss: LightGBM must give n_classes >= 2 scores per sample "
                    f"(set num_class), got {scores.size} scores for {n} samples"
                )
            grad, hess = self.rows(scores.reshape(-1, n), labels, weight, axis=0)
            return grad.reshape(-1), hess.reshape(-1)
        # (n, K) scores: a Fortran-ordered view of the (K, n) buffer; the class axis first keeps it.
        grad, hess = self.rows(scores.T, labels, weight, axis=0)
        return grad.T, hess.T


def objective(loss: str, *, reuse_outputs: bool = True, **opts: Any) -> LightGBMObjective:
    """A custom LightGBM objective computing ``fastloss.<loss>_grad_hess(scores, labels, **opts)``.

    Pass it as ``params["objective"]`` of ``lgb.train`` (with ``num_class`` for a multi-class loss)
    or as ``LGBMClassifier/LGBMRegressor(objective=...)``. The returned arrays are written again by
    the next call (``reuse_outputs=False``: fresh arrays each call); LightGBM copies them first."""
    return LightGBMObjective(loss, reuse_outputs=reuse_outputs, **opts)
