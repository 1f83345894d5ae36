"""The starting score of a boosted model: the constant margin that minimises the loss on the data.

A booster starts from one margin for every sample (a margin per class for a multi-class loss) and
adds trees to it. Its built-in objectives start from that loss's best constant (XGBoost's
``base_score`` estimate, LightGBM's ``boost_from_average``); a custom objective starts from 0
unless told otherwise, and the first trees then spend themselves on finding the constant (or never
find it: Huber's and L1's gradients are bounded, so the model crawls by at most the step size per
round). This module finds the constant for any fastloss loss, so both adapters can start there:

- point-wise losses: ``c = argmin_c sum_i w_i l(c, y_i)``: the root of the weighted sum of
  gradients ``G(c) = sum_i w_i dl/dc(c, y_i)`` by bisection. ``G`` rises with ``c`` for the convex
  losses, so the root is the minimiser: the mean for MSE, a weighted median for L1, the Huber
  M-estimate of location for Huber / smooth-L1 (same minimiser: smooth_l1 = huber_beta / beta), the
  log-cosh M-estimate, the log-odds for BCE (times ``pos_weight``), the hinge's and the focal
  loss's best constant logit. Regression losses search ``[min y, max y]`` (every location loss has
  its minimiser there), the classification ones the logits ``[-CLASSIFICATION_BOUND, +...]``.
- row-wise losses: ``b = argmin_b sum_i w_i l(b, t_i)``, which depends on the data only through
  the total weight of each class ``W_k``: one row per class weighted by ``W_k``. Plain
  cross-entropy has the closed form ``b_k = log(W_k / W)`` (log class priors); label smoothing,
  class weights, focal and hinge losses are minimised numerically from there (L-BFGS, SciPy: a
  dependency of both boosters).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._registry import LossSpec

CLASSIFICATION_BOUND = 10.0  # |logit| of a constant start: sigmoid(10) = 0.99995, finite in float32
BINARY_LOSSES = frozenset({"binary_cross_entropy_with_logits", "sigmoid_focal_loss", "hinge_loss"})
PRIOR_FLOOR = 1e-6  # a class with no (weight of) samples starts at log(1e-6), not at -inf
BISECTION_STEPS = 100  # halves the float64 interval to its last bit


def _grad_sum(fn, c: float, y: np.ndarray, w: np.ndarray | None, opts: dict[str, Any]) -> float:
    grad, _ = fn(np.full(y.shape, c), y, sample_weight=w, **opts)
    return float(np.sum(grad))


def pointwise(spec: LossSpec, y: np.ndarray, w: np.ndarray | None, opts: dict[str, Any]) -> float:
    """The best constant margin of a point-wise loss (root of the summed gradient, by bisection)."""
    import fastloss

    fn = getattr(fastloss, f"{spec.name}_grad_hess")
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if y.size == 0:
        raise ValueError("cannot find a starting score without labels (y is empty)")
    if spec.name in BINARY_LOSSES:
        lo, hi = -CLASSIFICATION_BOUND, CLASSIFICATION_BOUND
    else:
        lo, hi = float(np.min(y)), float(np.max(y))
    if _grad_sum(fn, lo, y, w, opts) >= 0:
        return lo
    if _grad_sum(fn, hi, y, w, opts) <= 0:
        return hi
    for _ in range(BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        if _grad_sum(fn, mid, y, w, opts) > 0:
            hi = mid
        else:
            lo = mid
    return 0.5 * (lo + hi)


def class_weights(y: np.ndarray, w: np.ndarray | None, n_classes: int) -> np.ndarray:
    """Total sample weight of each class (labels: class indices)."""
    t = np.asarray(y).reshape(-1).astype(np.int64)
    if t.size and (t.min() < 0 or t.max() >= n_classes):
        raise ValueError(f"labels must be class indices in [0, {n_classes}), got {t.min()}..{t.max()}")
    return np.bincount(t, weights=w, minlength=n_classes).astype(np.float64)


def rowwise(spec: LossSpec, y: np.ndarray, w: np.ndarray | None, n_classes: int,
            opts: dict[str, Any]) -> np.ndarray:
    """The best constant margins (one per class) of a row-wise loss."""
    W = class_weights(y, w, n_classes)
    if W.sum() <= 0:
        return np.zeros(n_classes)
    prior = np.maximum(W / W.sum(), PRIOR_FLOOR)
    start = np.log(prior / prior.sum())
    start -= start.mean()  # softmax ignores a common shift; centred margins print and store well
    plain_ce = spec.name == "cross_entropy" and not any(
        opts.get(k) for k in ("weight", "label_smoothing", "z_loss", "softcap"))
    if plain_ce:
        return start
    from scipy.optimize import minimize

    import fastloss

    loss_fn = getattr(fastloss, spec.name)
    grad_fn = getattr(fastloss, f"{spec.name}_grad_hess")
    present = np.flatnonzero(W > 0)
    targets, row_w = present, W[present] / W.sum()

    def value_and_grad(b: np.ndarray) -> tuple[float, np.ndarray]:
        rows = np.broadcast_to(b, (present.size, n_classes)).copy()
        value = float(np.dot(loss_fn(rows, targets, reduction="none", **opts), row_w))
        grad, _ = grad_fn(rows, targets, sample_weight=row_w, **opts)
        return value, grad.sum(axis=0)

    result = minimize(value_and_grad, start, jac=True, method="L-BFGS-B",
                      bounds=[(-4 * CLASSIFICATION_BOUND, 4 * CLASSIFICATION_BOUND)] * n_classes)
    best = result.x if result.fun <= value_and_grad(start)[0] else start
    return best - best.mean()
