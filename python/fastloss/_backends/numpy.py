"""The NumPy backend: the float64 reference (``_reference``) run on the canonical problem."""

from __future__ import annotations

import numpy as np

from .. import _arrays
from .._problem import Problem


class NumpyBackend:
    name = "numpy"
    checks_class_targets = False
    checks_float_targets = False  # the front end checks them in NumPy before the call

    def run(self, prob: Problem):
        # inf, nan and underflow are part of the math here (a mean over no rows, exp(-1e4)), not
        # errors, whatever np.seterr the caller has set.
        with np.errstate(all="ignore"):
            return self._run(prob)

    def _run(self, prob: Problem):
        x = _arrays.to_float64(prob.x, prob.dtype)
        if prob.spec.rowwise:
            outer, C, inner = x.shape
            x2 = np.moveaxis(x, 1, 2).reshape(-1, C)  # (M, C), M = outer*inner
            t = prob.target.reshape(-1) if not prob.soft else np.moveaxis(
                _arrays.to_float64(prob.target, prob.dtype), 1, 2).reshape(-1, C)
            loss, grad = prob.spec.reference(x2, t, **prob.opts)
        else:
            loss, grad = prob.spec.reference(x, _arrays.to_float64(prob.target, prob.dtype), **prob.opts)
        if prob.need_grad:
            scale = prob.grad_scale if prob.row_scale is None else prob.row_scale.reshape(-1)
            # a reference may return its gradient divided by a constant factor (mse_loss: 2 e would overflow)
            scale = scale * getattr(prob.spec.reference, "grad_factor", 1.0)
            grad = grad * (scale[:, None] if np.ndim(scale) and prob.spec.rowwise else scale)
            if prob.spec.rowwise:
                grad = np.moveaxis(grad.reshape(outer, inner, C), 2, 1)
                ignored = prob.ignored
                if ignored is not None:  # exactly 0 even when the scale is inf (mean over nothing)
                    grad = np.where(ignored[:, None, :], 0.0, grad)
            out = prob.grad_out if prob.grad_out is not None else np.empty_like(prob.x)
            out[...] = _arrays.from_float64(grad, prob.dtype)
            grad = out
        if prob.reduction == "none":
            shape = prob.x.shape[::2] if prob.spec.rowwise else prob.x.shape
            loss = loss.reshape(shape).astype(_arrays.loss_dtype(prob.dtype))
        else:
            loss = float(np.sum(loss))
        return loss, (grad if prob.need_grad else None)
