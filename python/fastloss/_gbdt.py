"""What the XGBoost and LightGBM objectives share: a loss's ``*_grad_hess`` on a booster's margins.

A booster hands a custom objective raw margins (no link function applied), the labels and the
sample weights, and takes back the gradient and the Hessian diagonal of each margin. Point-wise
losses see margins and labels of one shape; row-wise losses (cross_entropy, softmax_focal_loss,
multiclass_hinge_loss, ...) see one row of class margins per sample and the label as the class
index. The layouts differ by library and are undone in ``xgboost.py`` / ``lightgbm.py``; this
module neither imports nor needs either library.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._registry import BY_NAME


class GradHessObjective:
    """``fl.<loss>_grad_hess`` with fixed options, on (margins, labels, weights) of a booster.

    ``reuse_outputs`` (default True): the (grad, hess) arrays of one call are written again by the
    next call of the same shape, instead of two fresh arrays per boosting round (at 1M x 10 float32
    that is 80 MB of new pages, and their page faults, each round). XGBoost and LightGBM copy the
    arrays before the objective is called again; a caller who keeps them across calls passes False.
    """

    def __init__(self, loss: str, *, reuse_outputs: bool = True, **opts: Any):
        if loss not in BY_NAME:
            raise ValueError(f"loss must be one of {sorted(BY_NAME)}, got {loss!r}")
        self.loss = loss
        self.spec = BY_NAME[loss]
        bad = set(opts) - set(self.spec.defaults()) - {"axis"} | ({"reduction", "axis"} & set(opts))
        if bad:
            raise TypeError(f"{loss} objective got unexpected option(s) {sorted(bad)}")
        self.opts = opts
        self.reuse_outputs = bool(reuse_outputs)
        self._outputs: tuple[np.ndarray, np.ndarray] | None = None
        import fastloss

        self._fn = getattr(fastloss, f"{loss}_grad_hess")

    def __repr__(self) -> str:
        opts = "".join(f", {k}={v!r}" for k, v in self.opts.items())
        return f"{type(self).__name__}({self.loss!r}{opts})"

    def _out(self, like: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """The output pair for margins ``like`` (C-contiguous, its shape and dtype), or None."""
        if not self.reuse_outputs or like.dtype not in (np.float32, np.float64):
            return None
        o = self._outputs
        if o is None or o[0].shape != like.shape or o[0].dtype != like.dtype:
            o = self._outputs = (np.empty(like.shape, like.dtype), np.empty(like.shape, like.dtype))
        return o

    @staticmethod
    def _weights(weight: Any, n: int) -> np.ndarray | None:
        if weight is None:
            return None
        w = np.asarray(weight, dtype=np.float64).reshape(-1)
        if w.size == 0:  # XGBoost's DMatrix without weights
            return None
        if w.size != n:
            raise ValueError(f"got {w.size} sample weights for {n} samples")
        return w

    def rows(self, margins: np.ndarray, labels: Any, weight: Any, axis: int) -> tuple[np.ndarray, np.ndarray]:
        """Row-wise loss on margins with the class axis ``axis`` (one row per sample)."""
        n = margins.shape[0 if axis == -1 else 1]
        y = np.asarray(labels).reshape(-1)
        if y.size != n:
            raise ValueError(f"got {y.size} labels for {n} samples")
        t = y.astype(np.int64)
        if y.dtype.kind == "f" and not np.array_equal(t, y):
            raise ValueError(f"{self.loss} needs class indices as labels, got {y[t != y][:3]}")
        return self._fn(margins, t, sample_weight=self._weights(weight, n), axis=axis, out=self._out(margins),
                        **self.opts)

    def points(self, margins: np.ndarray, labels: Any, weight: Any) -> tuple[np.ndarray, np.ndarray]:
        """Point-wise loss: one label per margin (several outputs per sample share its weight)."""
        y = np.asarray(labels)
        if y.size != margins.size:
            raise ValueError(f"got {y.size} labels for {margins.size} predictions")
        y = y.reshape(margins.shape)
        n = margins.shape[0] if margins.ndim else 1
        w = self._weights(weight, n)
        if w is not None and margins.ndim > 1:
            w = np.broadcast_to(w.reshape((n,) + (1,) * (margins.ndim - 1)), margins.shape)
        return self._fn(margins, y, sample_weight=w, out=self._out(margins), **self.opts)
