"""LightGBM objectives and estimators from fastloss losses.

Estimators (subclasses of LightGBM's own; every argument but ``loss``, ``loss_options`` and
``hessian`` is LightGBM's)::

    fastloss.lightgbm.LGBMRegressor(loss="huber_loss").fit(X, y).predict(X)
    fastloss.lightgbm.LGBMClassifier(loss="softmax_focal_loss", loss_options={"gamma": 2.0}).fit(X, y).predict_proba(X)

They set the objective, start from the loss's best constant and apply the prediction link
(softmax / sigmoid for classifiers). LightGBM does not save a Dataset's ``init_score`` in the
model, so the estimators add the starting score to the leaves of the first iteration's trees
(what LightGBM's ``boost_from_average`` does for its built-in objectives): the booster, pickled
or saved with ``booster_.save_model``, predicts from the right start with nothing added back.

The objective alone, for ``lgb.train``::

    obj = objective("cross_entropy", label_smoothing=0.1)
    start = obj.base_score(y)
    booster = lgb.train({"objective": obj, "num_class": 10}, lgb.Dataset(X, y, init_score=obj.init_score(y)))
    bake_base_score(booster, start)  # the start now lives in the model (and in its saved file)
    proba = obj.predict(booster, X)  # softmax of the raw scores

It returns ``fl.<loss>_grad_hess`` of the raw scores: the gradient and the Hessian chosen by
``hessian=`` (``"auto"``, ``"booster"``, ``"exact"``; see ``fastloss._gbdt_hessian``: the default
replaces the zero curvature of linear pieces and uses ``multiclass``'s ``K / (K - 1)`` scale for
the softmax family), times the Dataset's / ``fit(sample_weight=...)`` weights. LightGBM hands a multi-class
objective its scores as an (n_samples, n_classes) view of a class-major buffer; the row-wise losses
(cross_entropy, softmax_focal_loss, multiclass_hinge_loss) run on that buffer directly, with the
class axis first (no transposing copy), and return arrays in the same layout. A flat class-major
array of n_samples * n_classes scores is accepted too. Point-wise losses (huber_loss,
smooth_l1_loss, sigmoid_focal_loss, ...) take one score per label, and a row-wise loss handed one
score per label is the binary model (class 0's score fixed at 0). The computation runs in the
scores' dtype (float64 from LightGBM).

LightGBM is imported only when an estimator is first used: it stays an optional dependency.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._gbdt import GradHessObjective

__all__ = ["LGBMClassifier", "LGBMRegressor", "LightGBMObjective", "bake_base_score", "objective"]  # noqa: F822


class LightGBMObjective(GradHessObjective):
    """``fobj(preds, train_data)`` for ``lgb.train`` and ``fobj(y_true, y_pred, weight, group)`` for
    the scikit-learn estimators (which pass as many arguments as the signature names)."""

    def softmax_factor(self, n_classes: int) -> float:
        return n_classes / (n_classes - 1.0)  # multiclass: K / (K - 1) p (1 - p) w

    def init_score(self, y: Any, sample_weight: Any = None, *, n_classes: int | None = None) -> np.ndarray:
        """``base_score`` repeated for every sample, as ``lgb.Dataset(init_score=...)`` takes it:
        shape (n,) for point-wise losses and for a row-wise loss with ``n_classes=2`` (LightGBM's
        binary model), else (n, n_classes)."""
        n = np.asarray(y).size
        if self.spec.rowwise and n_classes == 2:
            return np.full(n, self.binary_base_score(y, sample_weight))
        start = self.base_score(y, sample_weight, n_classes=n_classes)
        return np.tile(np.asarray(start, dtype=np.float64), (n, 1)) if self.spec.rowwise else np.full(n, start)

    def predict(self, booster: Any, data: Any, **kwargs: Any) -> np.ndarray:
        """``link(booster.predict(data, raw_score=True))``: class probabilities for the softmax and
        sigmoid losses, the raw scores for regression and hinge losses. A booster trained on
        ``init_score`` predicts from its start only after ``bake_base_score``."""
        return self.link(booster.predict(data, raw_score=True, **kwargs))

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
        if scores.size == n and n:
            return self.binary_rows(scores, labels, weight)
        if scores.ndim == 1:  # flat, class-major
            if n == 0 or scores.size % n:
                raise ValueError(
                    f"{self.loss} is a multi-class loss: LightGBM must give n_classes >= 2 scores per sample "
                    f"(set num_class), got {scores.size} scores for {n} samples"
                )
            grad, hess = self.rows(scores.reshape(-1, n), labels, weight, axis=0)
            return grad.reshape(-1), hess.reshape(-1)
        # (n, K) scores: a Fortran-ordered view of the (K, n) buffer; the class axis first keeps it.
        grad, hess = self.rows(scores.T, labels, weight, axis=0)
        return grad.T, hess.T


def objective(loss: str, *, reuse_outputs: bool = True, hessian: str = "auto", **opts: Any) -> LightGBMObjective:
    """A custom LightGBM objective computing ``fastloss.<loss>_grad_hess(scores, labels, **opts)``.

    Pass it as ``params["objective"]`` of ``lgb.train`` (with ``num_class`` for a multi-class loss)
    or as ``LGBMClassifier/LGBMRegressor(objective=...)``. ``hessian``: ``"auto"`` (default),
    ``"booster"`` or ``"exact"`` (module docstring). ``base_score(y)`` / ``init_score(y)`` give the
    starting score, ``bake_base_score`` keeps it in the model, ``predict(booster, X)`` applies the
    link. The returned arrays are written again by the next call (``reuse_outputs=False``: fresh
    arrays each call); LightGBM copies them first."""
    return LightGBMObjective(loss, reuse_outputs=reuse_outputs, hessian=hessian, **opts)


def bake_base_score(booster: Any, base_score: Any) -> None:
    """Add ``base_score`` (a float, or one value per class) to every leaf of the first iteration's
    trees of a LightGBM ``Booster`` trained with that ``init_score``, in place: its predictions, and
    those of its saved model, then include the start. (LightGBM folds ``boost_from_average`` into
    the first trees the same way; a Dataset's ``init_score`` it never saves.)"""
    per_iteration = booster.num_model_per_iteration()
    start = np.broadcast_to(np.asarray(base_score, dtype=np.float64).reshape(-1), (per_iteration,))
    if booster.num_trees() < per_iteration:
        raise ValueError(f"the booster has {booster.num_trees()} trees, fewer than one iteration's {per_iteration}")
    for tree in booster.dump_model(num_iteration=1)["tree_info"][:per_iteration]:
        t = tree["tree_index"]
        for leaf in range(tree["num_leaves"]):
            booster.set_leaf_output(t, leaf, booster.get_leaf_output(t, leaf) + float(start[t]))


def __getattr__(name: str) -> Any:
    if name in ("LGBMClassifier", "LGBMRegressor"):
        from . import _lgb_estimators

        return getattr(_lgb_estimators, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    """The lazily imported estimators too (``dir``, tab completion and the API reference see them)."""
    return sorted(set(globals()) | set(__all__))
