"""The ``*_grad_hess`` form on CPU data: gradient and diagonal Hessian of the unreduced loss.

``_api`` binds and validates the arguments as for the other forms, then hands the call here:
``sample_weight`` travels as the kernels' per-loss ``row_scale`` (it multiplies both outputs), the
two outputs are fresh arrays or the caller's ``out=(grad, hess)`` pair, and the backend is the
selected one: the NumPy reference (``_reference_hess``) or the native kernels, which write the
Hessian in the same pass as the gradient.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _arrays, _backends, _problem, _reference_hess
from ._registry import LossSpec


def reference(spec: LossSpec):
    """The loss's NumPy (grad, hess) function; a loss without one has no Hessian yet."""
    fn = getattr(_reference_hess, spec.name, None)
    if fn is None:
        raise NotImplementedError(f"{spec.name} has no grad_hess yet (no _reference_hess.{spec.name})")
    return fn


def sample_weights(value: Any, lay: _problem.Layout, dtype: str) -> np.ndarray | None:
    """One weight per loss element (rows of a row-wise loss, elements of a point-wise one)."""
    if value is None:
        return None
    w = _arrays.host_values(value, "sample_weight")
    if w.dtype.kind not in "fiub":
        raise TypeError(f"sample_weight must hold real numbers, got dtype {w.dtype}")
    if w.shape != lay.loss_shape:
        raise ValueError(f"sample_weight must have the loss's shape {lay.loss_shape} (one weight per "
                         f"{'row' if lay.axis is not None else 'element'}), got {w.shape}")
    shape = (lay.outer, lay.inner) if lay.axis is not None else (-1,)
    return np.ascontiguousarray(w, dtype=_arrays.loss_dtype(dtype)).reshape(shape)


def destinations(out: Any, x: _arrays.HostArray, t: _arrays.HostArray) -> tuple | None:
    """``out=(grad, hess)``: two writable arrays of the input's shape and dtype that overlap
    nothing (the Hessian pass reads the input after the gradient is written, so no in-place)."""
    if out is None:
        return None
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise ValueError(f"out must be a pair (grad, hess) of arrays, got {type(out).__name__}")
    pair = []
    for name, o in zip(("out[0]", "out[1]"), out):
        h = _arrays.as_host(o, name)
        if h.dtype != x.dtype or h.data.shape != x.data.shape:
            raise ValueError(f"{name} must have the input's shape {x.data.shape} and dtype {x.dtype}, "
                             f"got shape {h.data.shape} and dtype {h.dtype}")
        if not h.data.flags.writeable:
            raise ValueError(f"{name} is not writable")
        for other, what in ((x.data, "the input"), (t.data, "target")):
            if _overlap(h.data, other):
                raise ValueError(f"{name} overlaps {what}; grad_hess cannot run in place")
        pair.append(h)
    if _overlap(pair[0].data, pair[1].data):
        raise ValueError("out[0] and out[1] overlap")
    return tuple(pair)


def _overlap(a: np.ndarray, b: np.ndarray) -> bool:
    """Shared memory, or the same start address: an empty array overlaps nothing by NumPy's rule, yet
    ``out=(x, ...)`` with an empty x is the same mistake as with a full one (the same error, any size)."""
    return bool(np.may_share_memory(a, b)) or a.__array_interface__["data"][0] == b.__array_interface__["data"][0]


def run_host(spec: LossSpec, args: dict[str, Any], x: _arrays.HostArray, t: _arrays.HostArray,
             lay: _problem.Layout, opts: dict[str, Any], soft: bool) -> tuple[Any, Any]:
    backend = _backends.current()
    ref = reference(spec)
    native = backend.name == "native" and spec.native_grad_hess
    # the native kernels check the targets in their pass; the NumPy reference (which the native
    # backend runs too for a loss without a native Hessian) does not, so they are checked here
    kernel_checks_classes = native and backend.checks_class_targets
    kernel_checks_floats = native and backend.checks_float_targets
    x3 = np.ascontiguousarray(x.data).reshape((lay.outer, lay.classes, lay.inner) if spec.rowwise else (-1,))
    # the arguments before the target values: every backend names the same first mistake (the native
    # kernels check targets in their pass, after these)
    weights = sample_weights(args["sample_weight"], lay, x.dtype)
    outs = destinations(args["out"], x, t)
    if soft:
        target = np.ascontiguousarray(
            t.data if t.dtype == x.dtype else _arrays.from_float64(_arrays.to_float64(t.data, t.dtype), x.dtype)
        ).reshape(x3.shape)
    elif spec.rowwise:
        target = _problem.class_target(t.data, lay, opts["ignore_index"], not kernel_checks_classes)
    else:
        target = _problem.elementwise_target(spec, t, x.dtype, not kernel_checks_floats, opts)
    direct = outs is not None and all(o.data.flags.c_contiguous for o in outs)
    grad = outs[0].data.reshape(x3.shape) if direct else np.empty_like(x3)
    hess = outs[1].data.reshape(x3.shape) if direct else np.empty_like(x3)
    prob = _problem.Problem(
        spec=spec, x=x3, dtype=x.dtype, target=target, soft=soft, opts=opts, reduction="none",
        grad_scale=1.0, row_scale=weights, need_loss=False, need_grad=True, grad_out=grad,
    )
    try:
        if native:
            _native_with_weights(prob, hess)
        else:
            _numpy(prob, hess, ref)
    except _problem.ClassTargetOutOfRange:
        _problem.class_target(t.data, lay, opts["ignore_index"])
        raise
    except _problem.TargetOutOfDomain:
        _problem.raise_bad_target(spec, target.reshape(t.data.shape), x.dtype)
    if outs is not None:
        if not direct:
            outs[0].data[...] = grad.reshape(x.data.shape)
            outs[1].data[...] = hess.reshape(x.data.shape)
        return outs[0].source, outs[1].source
    return (_arrays.wrap(grad.reshape(x.data.shape), x.dtype, x),
            _arrays.wrap(hess.reshape(x.data.shape), x.dtype, x))


def _numpy(prob: _problem.Problem, hess_out: np.ndarray, ref) -> None:
    with np.errstate(all="ignore"):
        x = _arrays.to_float64(prob.x, prob.dtype)
        if prob.spec.rowwise:
            outer, C, inner = x.shape
            x2 = np.moveaxis(x, 1, 2).reshape(-1, C)
            t = prob.target.reshape(-1) if not prob.soft else np.moveaxis(
                _arrays.to_float64(prob.target, prob.dtype), 1, 2).reshape(-1, C)
            grad, hess = ref(x2, t, **prob.opts)
            if prob.row_scale is not None:
                w = prob.row_scale.reshape(-1, 1).astype(np.float64)
                grad, hess = grad * w, hess * w
            grad = np.moveaxis(grad.reshape(outer, inner, C), 2, 1)
            hess = np.moveaxis(hess.reshape(outer, inner, C), 2, 1)
            ignored = prob.ignored
            if ignored is not None:  # exactly 0 whatever the weight (inf, nan)
                grad = np.where(ignored[:, None, :], 0.0, grad)
                hess = np.where(ignored[:, None, :], 0.0, hess)
        else:
            grad, hess = ref(x, _arrays.to_float64(prob.target, prob.dtype), **prob.opts)
            if prob.row_scale is not None:
                w = prob.row_scale.astype(np.float64)
                grad, hess = grad * w, hess * w
        prob.grad_out[...] = _arrays.from_float64(grad, prob.dtype)
        hess_out[...] = _arrays.from_float64(hess, prob.dtype)


def _native_with_weights(prob: _problem.Problem, hess_out: np.ndarray) -> None:
    """The native kernels fold a row's weight into their coefficients, where an infinite weight makes
    inf - inf = NaN of a finite product; a non-finite weight is therefore applied afterwards, as
    IEEE's w * grad and w * hess (ignored rows stay exactly 0, as in the NumPy path)."""
    w = prob.row_scale
    if w is None or np.all(np.isfinite(w)):
        _native(prob, hess_out)
        return
    bad = ~np.isfinite(w)
    prob.row_scale = np.where(bad, 1.0, w).astype(w.dtype)
    _native(prob, hess_out)
    factor = np.where(bad, w, 1.0).astype(np.float64)
    factor = factor[:, None, :] if prob.spec.rowwise else factor
    ignored = prob.ignored
    for out in (prob.grad_out, hess_out):
        with np.errstate(all="ignore"):
            scaled = _arrays.to_float64(out, prob.dtype) * factor
            if ignored is not None:
                scaled = np.where(ignored[:, None, :], 0.0, scaled)
        out[...] = _arrays.from_float64(scaled, prob.dtype)


def _native(prob: _problem.Problem, hess_out: np.ndarray) -> None:
    from ._backends.cpu import _C, kernel_arguments

    weight, params = kernel_arguments(prob)
    kernel = _C.rowwise if prob.spec.rowwise else _C.pointwise
    try:
        kernel(prob.spec.cpp_id, prob.x, _arrays.DTYPE_CODES[prob.dtype], prob.target, weight, params,
               prob.row_scale, 1.0, None, prob.grad_out, False, hess_out=hess_out)
    except _C.TargetOutOfDomain:
        raise _problem.TargetOutOfDomain from None
    except ValueError as exc:
        if prob.spec.rowwise and not prob.soft and "out of range" in str(exc):
            raise _problem.ClassTargetOutOfRange(str(exc)) from None
        raise
