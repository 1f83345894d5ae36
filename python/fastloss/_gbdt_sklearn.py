"""What the boosters' scikit-learn subclasses share: which losses each task takes, the objective
built from ``loss`` / ``loss_options`` / ``hessian``, the labels as class indices, and the
parameters set for ``fit`` only (``get_params`` must show what the user passed, scikit-learn's rule)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

CLASSIFIER_LOSSES = ("cross_entropy", "softmax_focal_loss", "multiclass_hinge_loss",
                     "binary_cross_entropy_with_logits", "sigmoid_focal_loss", "hinge_loss")
BINARY_ONLY = ("binary_cross_entropy_with_logits", "sigmoid_focal_loss", "hinge_loss")
REGRESSOR_LOSSES = ("mse_loss", "l1_loss", "huber_loss", "smooth_l1_loss", "log_cosh_loss")
FASTLOSS_PARAMS = frozenset({"loss", "loss_options", "hessian"})  # ours: never passed to the booster


def build_objective(cls: type, estimator: Any, losses: tuple[str, ...], parent_objective: Any = None) -> Any:
    """``cls(loss, hessian=..., **loss_options)`` after checking the estimator's loss arguments
    (``objective`` must be left at the parent's default, ``parent_objective``)."""
    if estimator.objective is not None and estimator.objective != parent_objective:
        raise ValueError(f"{type(estimator).__name__} sets the objective from loss=...; got objective="
                         f"{estimator.objective!r} (use the booster's own estimator for that)")
    if estimator.loss not in losses:
        raise ValueError(f"loss must be one of {losses} for {type(estimator).__name__}, got {estimator.loss!r}")
    options = estimator.loss_options if estimator.loss_options is not None else {}
    if not isinstance(options, dict):
        raise TypeError(f"loss_options must be a dict or None, got {type(options).__name__}")
    return cls(estimator.loss, hessian=estimator.hessian, reuse_outputs=True, **options)


HINGE_NOTE = """
    Hinge losses give no probabilities: ``predict_proba`` is then sigmoid / softmax of the margins,
    a score whose arg-max is the hinge model's class."""


def store_loss_params(estimator: Any, loss: str, loss_options: dict | None, hessian: str) -> None:
    """The fastloss ``__init__`` arguments, stored unchanged (scikit-learn's rule for ``__init__``)."""
    estimator.loss = loss
    estimator.loss_options = loss_options
    estimator.hessian = hessian


def classifier_start(obj: Any, y: Any, sample_weight: Any, loss: str) -> tuple[int, Any]:
    """(number of classes, best constant): a list of margins for > 2 classes, the one binary
    margin for 2, 0.0 for a single class."""
    t, n_classes = class_indices(y)
    check_classes(loss, n_classes)
    if n_classes > 2:
        return n_classes, obj.base_score(t, sample_weight, n_classes=n_classes)
    if n_classes == 2:
        return n_classes, obj.binary_base_score(t, sample_weight)
    return n_classes, 0.0


def require_y(estimator: Any, y: Any) -> None:
    if y is None:  # the starting score is computed from y before the parent's own check
        raise ValueError(f"{type(estimator).__name__} requires y to be passed, but the target y is None")


def class_indices(y: Any) -> tuple[np.ndarray, int]:
    """Labels as indices into their sorted unique values (the boosters' encoding), and the count."""
    classes, t = np.unique(np.asarray(y).reshape(-1), return_inverse=True)
    return t, classes.size


def check_classes(loss: str, n_classes: int) -> None:
    if loss in BINARY_ONLY and n_classes > 2:
        raise ValueError(f"loss={loss!r} is a binary loss (one margin per sample); y has {n_classes} classes: "
                         "use cross_entropy, softmax_focal_loss or multiclass_hinge_loss")


@contextlib.contextmanager
def fit_params(estimator: Any, **values: Any) -> Iterator[None]:
    """Set attributes for the duration of the parent's ``fit``, then restore the user's."""
    saved = {k: getattr(estimator, k) for k in values}
    try:
        for k, v in values.items():
            setattr(estimator, k, v)
        yield
    finally:
        for k, v in saved.items():
            setattr(estimator, k, v)


@contextlib.contextmanager
def booster_params_only(estimator: Any) -> Iterator[None]:
    """``get_params`` without the fastloss parameters while the parent builds the booster's
    parameters from it (LightGBM would read ``loss`` as its alias of ``objective``)."""
    everything = estimator.get_params
    estimator.get_params = lambda deep=True: {k: v for k, v in everything(deep).items()
                                             if k not in FASTLOSS_PARAMS}
    try:
        yield
    finally:
        del estimator.get_params


def softmax_or_sigmoid(margins: np.ndarray) -> np.ndarray:
    """Class probabilities (n, K) from (n, K) margins (softmax) or (n,) binary margins (sigmoid)."""
    m = np.asarray(margins, dtype=np.float64)
    if m.ndim == 2 and m.shape[1] > 1:
        e = np.exp(m - m.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    p = 0.5 * (1.0 + np.tanh(0.5 * m.reshape(-1)))
    return np.stack([1.0 - p, p], axis=1)
