"""Which Hessian a boosting objective hands the booster: ``hessian="auto" | "exact" | "booster"``.

A tree's leaf value is the Newton step ``-sum(g) / (sum(h) + lambda)`` and its splits need
``sum(h) >= min_child_weight``, so a Hessian that is 0 wherever the loss is linear (L1, Huber's
and smooth-L1's tails, hinge) blocks every split and a booster stops after one tree. The boosters'
built-ins replace it:

- ``"booster"``, the boosters' own practice. LightGBM's ``huber`` and ``l1`` and XGBoost's
  ``reg:absoluteerror`` hand the tree a constant Hessian of 1 (times the weight) (LightGBM
  ``src/objective/regression_objective.hpp``, ``RegressionHuberLoss`` / ``RegressionL1loss``;
  XGBoost ``src/objective/regression_obj.cu``, ``MeanAbsoluteError``); smooth-L1 gets its
  quadratic piece's ``1/beta``, hinge losses and log-cosh 1 (its largest curvature). For the L1 loss both built-ins then re-fit each
  leaf to the median of its residuals, a line search the custom-objective interface does not
  offer, so with ``"booster"`` a custom L1 / Huber objective moves each leaf by at most
  ``learning_rate`` (L1) or ``learning_rate * delta`` (Huber) per round. For the softmax family
  (cross_entropy, softmax_focal_loss) each booster scales the diagonal: XGBoost ``multi:softprob``
  uses ``max(2 p (1 - p) w, 1e-16)`` (``src/objective/multiclass_obj.cu``), LightGBM
  ``multiclass`` uses ``K / (K - 1) p (1 - p) w`` (``src/objective/multiclass_objective.hpp``,
  "from the Friedman GBDT paper"); here the factor multiplies the loss's exact diagonal (clipped at
  0 below for the focal loss, whose diagonal can be negative), so ``cross_entropy`` reproduces the
  built-in objective and the boosters' default learning rates fit.
- ``"auto"`` (default): the softmax family as ``"booster"``; for the losses with linear pieces the
  curvature of the loss's sharp quadratic majoriser at the current margin, the weight of
  iteratively reweighted least squares (Huber 1981, *Robust Statistics* 7.8; de Leeuw & Lange 2009,
  "Sharp quadratic majorization in one dimension"): ``psi(e) / e`` for a residual ``e``, i.e.
  Huber ``min(1, delta / |e|)``, smooth-L1 ``min(1 / beta, 1 / |e|)``, L1 ``1 / max(|e|, mean |e|)``
  (capped at the mean residual's curvature, see ``L1_FLOOR_FRACTION``), hinge
  ``1 / (2 |margin - y s|)``, log-cosh ``tanh(e) / e`` (its exact ``1 - tanh(e)**2`` falls as
  ``4 exp(-2 |e|)``: 1e-9 at a residual of 10, and no split passes ``min_child_weight``), with ``|e|`` floored at ``FLOOR_FRACTION`` of its mean (a residual
  at 0 would pin its leaf). A Newton step on the majoriser cannot increase the loss, and its leaf
  value is a reweighted mean of the residuals that approaches the leaf's median (L1) or Huber
  estimate in a few rounds, which is the built-ins' leaf re-fit done by the boosting rounds. The
  multi-class hinge (a maximum over classes) keeps the constant 1. Everything else is exact.
- ``mse_loss`` (``e**2``, g = 2e, h = 2) is handed over as the boosters' ``e**2 / 2`` (g = e,
  h = 1: XGBoost ``reg:squarederror``, LightGBM ``regression``) except with ``"exact"``: the same
  minimiser, and XGBoost's ``reg_lambda = 1`` and ``min_child_weight = 1`` weigh as they do there.
- ``"exact"``: the true diagonal of ``fl.<loss>_grad_hess`` (0 on linear pieces).
"""

from __future__ import annotations

from typing import Any

import numpy as np

HESSIANS = ("auto", "exact", "booster")
SOFTMAX_FAMILY = frozenset({"cross_entropy", "softmax_focal_loss"})
LINEAR_PIECES = frozenset({"huber_loss", "smooth_l1_loss", "l1_loss", "hinge_loss", "multiclass_hinge_loss",
                           "log_cosh_loss"})  # log-cosh: linear in the limit, its curvature 4 e^-2|e|
FLOOR_FRACTION = 0.01
# L1: 1 / max(|e|, mean |e|). With a small floor a leaf's many small residuals dominate sum(h) and its
# step falls far short of the leaf's median residual (LightGBM, 20k synthetic rows: MAE 55 vs the
# built-in's 38; with the mean as floor 36; benchmarks/gbdt_defaults.py)
L1_FLOOR_FRACTION = 1.0


def check(hessian: Any) -> str:
    if hessian not in HESSIANS:
        raise ValueError(f"hessian must be one of {HESSIANS}, got {hessian!r}")
    return hessian


def replaces(loss: str, hessian: str, opts: dict[str, Any]) -> bool:
    """Whether the exact diagonal is replaced for this loss and choice."""
    if hessian == "exact":
        return False
    if loss in SOFTMAX_FAMILY:
        return True
    return loss in LINEAR_PIECES and not opts.get("squared", False)


def _floored(a: np.ndarray, fraction: float = FLOOR_FRACTION) -> np.ndarray:
    a = np.abs(a)
    floor = fraction * float(np.mean(a)) if a.size else 0.0
    return np.maximum(a, max(floor, np.finfo(a.dtype).tiny))


def constant(loss: str, opts: dict[str, Any]) -> float:
    """The boosters' constant Hessian for a loss with linear pieces."""
    if loss == "smooth_l1_loss" and opts.get("beta", 1.0) > 0:
        return 1.0 / opts.get("beta", 1.0)
    return 1.0


def majoriser(loss: str, margins: np.ndarray, labels: np.ndarray, opts: dict[str, Any]) -> np.ndarray:
    """Curvature of the sharp quadratic majoriser at the current margins (point-wise losses)."""
    if loss == "hinge_loss":
        y = np.where(labels == 0, -1.0, labels).astype(margins.dtype)
        return 0.5 / _floored(opts.get("margin", 1.0) - y * margins)
    e = _floored(margins - labels)
    if loss == "huber_loss":
        return np.minimum(1.0, opts.get("delta", 1.0) / e)
    if loss == "log_cosh_loss":
        r = margins - labels
        small = np.abs(r) < 1e-4
        return np.where(small, 1.0 - r * r / 3.0, np.tanh(r) / np.where(small, 1.0, r))
    if loss == "smooth_l1_loss" and opts.get("beta", 1.0) > 0:
        return np.minimum(1.0 / opts.get("beta", 1.0), 1.0 / e)
    return 1.0 / _floored(margins - labels, L1_FLOOR_FRACTION)  # l1_loss, smooth_l1_loss with beta = 0


def pointwise(loss: str, hessian: str, hess: np.ndarray, margins: np.ndarray, labels: np.ndarray,
              weight: np.ndarray | None, opts: dict[str, Any]) -> None:
    """Replace ``hess`` in place for a point-wise loss with linear pieces."""
    if hessian == "booster":
        h = np.full(hess.shape, constant(loss, opts), hess.dtype)
    else:
        h = majoriser(loss, margins, labels, opts)
    hess[...] = h if weight is None else h * weight


def rowwise(loss: str, hessian: str, factor: float, floor: float, hess: np.ndarray,
            weight: np.ndarray | None) -> None:
    """Replace ``hess`` in place for a row-wise loss (``weight`` broadcast against ``hess``)."""
    if loss == "multiclass_hinge_loss":
        hess[...] = 1.0 if weight is None else weight
        return
    np.maximum(hess, 0.0, out=hess)
    hess *= factor
    if floor:
        np.maximum(hess, floor, out=hess)
