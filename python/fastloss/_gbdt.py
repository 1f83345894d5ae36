"""What the XGBoost and LightGBM objectives share: a loss's ``*_grad_hess`` on a booster's margins.

A booster hands a custom objective raw margins (no link function applied), the labels and the
sample weights, and takes back the gradient and the Hessian diagonal of each margin. Point-wise
losses see margins and labels of one shape; row-wise losses (cross_entropy, softmax_focal_loss,
multiclass_hinge_loss, ...) see one row of class margins per sample and the label as the class
index. The layouts differ by library and are undone in ``xgboost.py`` / ``lightgbm.py``; this
module neither imports nor needs either library.

Besides the (grad, hess) call, an objective knows what a booster needs around it: the Hessian the
booster's defaults are tuned for (``hessian=``, see ``_gbdt_hessian``), the data's best starting
score (``base_score``, see ``_gbdt_start``) and the prediction link (``link``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _gbdt_hessian, _gbdt_start
from ._registry import BY_NAME

SOFTMAX_LINK = frozenset({"cross_entropy", "softmax_focal_loss"})
SIGMOID_LINK = frozenset({"binary_cross_entropy_with_logits", "sigmoid_focal_loss"})


class GradHessObjective:
    """``fl.<loss>_grad_hess`` with fixed options, on (margins, labels, weights) of a booster.

    ``reuse_outputs`` (default True): the (grad, hess) arrays of one call are written again by the
    next call of the same shape, instead of two fresh arrays per boosting round (at 1M x 10 float32
    that is 80 MB of new pages, and their page faults, each round). XGBoost and LightGBM copy the
    arrays before the objective is called again; a caller who keeps them across calls passes False.

    ``hessian``: ``"auto"`` (default), ``"booster"`` or ``"exact"``, see ``_gbdt_hessian``.

    A row-wise loss handed one margin per sample (a booster's binary classification) is the
    two-class loss with class 0's margin fixed at 0: softmax([0, m]) = [1 - sigmoid(m), sigmoid(m)].
    """

    # the booster's scale and floor of the softmax-family Hessian (hessian="booster" / "auto")
    def softmax_factor(self, n_classes: int) -> float:
        return 1.0

    softmax_floor = 0.0

    def __init__(self, loss: str, *, reuse_outputs: bool = True, hessian: str = "auto", **opts: Any):
        if loss not in BY_NAME:
            raise ValueError(f"loss must be one of {sorted(BY_NAME)}, got {loss!r}")
        self.loss = loss
        self.spec = BY_NAME[loss]
        bad = set(opts) - set(self.spec.defaults()) - {"axis"} | ({"reduction", "axis"} & set(opts))
        if bad:
            raise TypeError(f"{loss} objective got unexpected option(s) {sorted(bad)}")
        self.opts = opts
        self.hessian = _gbdt_hessian.check(hessian)
        self._replace = _gbdt_hessian.replaces(loss, self.hessian, opts)
        self.reuse_outputs = bool(reuse_outputs)
        self._outputs: tuple[np.ndarray, np.ndarray] | None = None
        self._bind()

    def _bind(self) -> None:
        import fastloss

        self._fn = getattr(fastloss, f"{self.loss}_grad_hess")

    def __getstate__(self) -> dict[str, Any]:  # pickled to Dask workers and with the estimators
        state = dict(self.__dict__)
        state.pop("_fn")
        state["_outputs"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._bind()

    def __repr__(self) -> str:
        opts = "".join(f", {k}={v!r}" for k, v in self.opts.items())
        hess = f", hessian={self.hessian!r}" if self.hessian != "auto" else ""
        return f"{type(self).__name__}({self.loss!r}{opts}{hess})"

    # ---- starting score and link --------------------------------------------------------------

    def base_score(self, y: Any, sample_weight: Any = None, *, n_classes: int | None = None) -> Any:
        """The constant margin minimising the loss on labels ``y`` (weights ``sample_weight``).

        Point-wise losses: a float (the mean for MSE, weighted median for L1, Huber M-estimate,
        log-odds for BCE, ...). Row-wise losses: a list of ``n_classes`` margins (default:
        ``max(y) + 1``), the log class priors for cross-entropy, centred; with ``n_classes=2`` and a
        booster that keeps one margin per sample, use ``binary_base_score``."""
        y = np.asarray(y)
        w = self._weights(sample_weight, y.size)
        if not self.spec.rowwise:
            return _gbdt_start.pointwise(self.spec, y, w, self.opts)
        k = int(np.max(y)) + 1 if n_classes is None and y.size else int(n_classes or 0)
        if k < 2:
            raise ValueError(f"{self.loss} needs n_classes >= 2, got {k}")
        return [float(v) for v in _gbdt_start.rowwise(self.spec, y, w, k, self.opts)]

    def binary_base_score(self, y: Any, sample_weight: Any = None) -> float:
        """The one starting margin of a binary problem (labels 0/1), for any classification loss:
        a row-wise loss's class-1 margin minus its class-0 margin."""
        if not self.spec.rowwise:
            return self.base_score(y, sample_weight)
        b = self.base_score(y, sample_weight, n_classes=2)
        return b[1] - b[0]

    def link(self, margins: Any) -> np.ndarray:
        """The prediction from raw margins: softmax over the class axis (last) for cross-entropy and
        softmax focal (sigmoid when there is one margin per sample), sigmoid for BCE and sigmoid
        focal, the margins themselves for regression and hinge losses (no probabilities)."""
        m = np.asarray(margins, dtype=np.float64)
        if self.loss in SOFTMAX_LINK and m.ndim == 2:
            e = np.exp(m - m.max(axis=1, keepdims=True))
            return e / e.sum(axis=1, keepdims=True)
        if self.loss in SOFTMAX_LINK or self.loss in SIGMOID_LINK:
            return 0.5 * (1.0 + np.tanh(0.5 * m))  # sigmoid without overflow
        return m

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

    @staticmethod
    def _classes(labels: Any, n: int, loss: str) -> np.ndarray:
        y = np.asarray(labels).reshape(-1)
        if y.size != n:
            raise ValueError(f"got {y.size} labels for {n} samples")
        t = y.astype(np.int64)
        if y.dtype.kind == "f" and not np.array_equal(t, y):
            raise ValueError(f"{loss} needs class indices as labels, got {y[t != y][:3]}")
        return t

    def rows(self, margins: np.ndarray, labels: Any, weight: Any, axis: int) -> tuple[np.ndarray, np.ndarray]:
        """Row-wise loss on margins with the class axis ``axis`` (one row per sample)."""
        n = margins.shape[0 if axis == -1 else 1]
        t = self._classes(labels, n, self.loss)
        w = self._weights(weight, n)
        grad, hess = self._fn(margins, t, sample_weight=w, axis=axis, out=self._out(margins), **self.opts)
        if self._replace:
            k = margins.shape[axis]
            wb = None if w is None else (w[:, None] if axis == -1 else w[None, :])
            _gbdt_hessian.rowwise(self.loss, self.hessian, self.softmax_factor(k), self.softmax_floor, hess, wb)
        return grad, hess

    def binary_rows(self, margins: np.ndarray, labels: Any, weight: Any) -> tuple[np.ndarray, np.ndarray]:
        """A row-wise loss on one margin per sample: the two-class loss on margins (0, m)."""
        m = margins.reshape(-1)
        t = self._classes(labels, m.size, self.loss)
        if t.size and (t.min() < 0 or t.max() > 1):
            raise ValueError(f"{self.loss} got one margin per sample (a binary model) but labels outside {{0, 1}}: "
                             f"{np.unique(t)[:5]}; set num_class for a multi-class model")
        pair = np.zeros((m.size, 2), margins.dtype)
        pair[:, 1] = m
        w = self._weights(weight, m.size)
        grad, hess = self._fn(pair, t, sample_weight=w, **self.opts)
        if self._replace and self.loss not in SOFTMAX_LINK:  # binary softmax: the boosters' binary Hessian is exact
            _gbdt_hessian.rowwise(self.loss, self.hessian, 1.0, 0.0, hess, None if w is None else w[:, None])
        elif self._replace:
            np.maximum(hess, 0.0, out=hess)
        return grad[:, 1].reshape(margins.shape), hess[:, 1].reshape(margins.shape)

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
        grad, hess = self._fn(margins, y, sample_weight=w, out=self._out(margins), **self.opts)
        if self._replace:
            _gbdt_hessian.pointwise(self.loss, self.hessian, hess, margins, y, w, self.opts)
        if self.loss == "mse_loss" and self.hessian != "exact":
            grad *= 0.5  # the boosters' 1/2 e**2 (g = e, h = 1): reg_lambda and min_child_weight are tuned for it
            hess *= 0.5
        return grad, hess
