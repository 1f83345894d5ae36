"""The native CPU backend: the SIMD kernels of ``fastloss._C`` (csrc/cpu) on the canonical problem."""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from .. import _arrays, _spec
from .._problem import ClassTargetOutOfRange, Problem, TargetOutOfDomain

try:
    _C = importlib.import_module("fastloss._C")

    _NATIVE_ERROR = None
except ImportError as exc:  # the pure-NumPy install still works
    _C = None
    _NATIVE_ERROR = exc


def check_table(module: Any, name: str) -> None:
    """A compiled module built from another version of _spec.py would run the wrong losses with the
    wrong parameters: refuse it at import instead."""
    built = getattr(module, "loss_table_signature", None)
    if built != _spec.table_signature():
        raise ImportError(
            f"fastloss.{name} was built from a different loss table than python/fastloss/_spec.py "
            f"(a stale build): rebuild it (pip install .).\n  built:  {built}\n  _spec: {_spec.table_signature()}"
        )


if _C is not None:
    check_table(_C, "_C")


def kernel_arguments(prob: Problem) -> tuple[Any, dict[str, Any]]:
    """(the class vector, or the point-wise per-element vectors, as _C takes them; LossParams fields)."""
    weight, params = prob.spec.kernel_params(prob.opts)
    if prob.spec.broadcast_names:  # point-wise per-element vectors travel where class weights would
        math = _arrays.loss_dtype(prob.dtype)
        weight = tuple(
            np.ascontiguousarray(v, dtype=math).reshape(-1) if isinstance(v, np.ndarray) else None
            for v in (prob.opts[name] for name in prob.spec.broadcast_names)
        )
    return weight, params


class NativeBackend:
    name = "native"
    # The kernels check float targets' domain inside their one pass (_C.TargetOutOfDomain), which
    # saves the front end's NumPy pass over them (2x for sigmoid_focal_loss_with_grad).
    checks_float_targets = True
    checks_class_targets = True  # fastloss_rowwise validates them before writing anything

    def run(self, prob: Problem):
        loss_out = None
        if prob.need_loss and prob.reduction == "none":
            shape = prob.x.shape[::2] if prob.spec.rowwise else prob.x.shape
            loss_out = np.empty(shape, dtype=_arrays.loss_dtype(prob.dtype))
        grad_out = prob.grad_out
        if prob.need_grad and grad_out is None:
            grad_out = np.empty_like(prob.x)
        weight, params = kernel_arguments(prob)
        args = (prob.spec.cpp_id, prob.x, _arrays.DTYPE_CODES[prob.dtype], prob.target, weight, params, prob.row_scale,
                prob.grad_scale, loss_out, grad_out if prob.need_grad else None, prob.need_loss)
        try:
            total = _C.rowwise(*args, False)[0] if prob.spec.rowwise else _C.pointwise(*args)
        except _C.TargetOutOfDomain:
            raise TargetOutOfDomain from None
        except ValueError as exc:  # dispatch.cpp's range check of class indices says "out of range"
            if prob.spec.rowwise and not prob.soft and "out of range" in str(exc):
                raise ClassTargetOutOfRange(str(exc)) from None
            raise
        return (loss_out if prob.reduction == "none" else total), (grad_out if prob.need_grad else None)
