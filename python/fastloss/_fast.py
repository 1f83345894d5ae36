"""The front end's fast path: the common call, checked with a few attribute reads, straight to the
native kernel.

Small calls are dominated by the front end, not the kernel ((64, 10) cross-entropy: ~3 us of
kernel, ~25 us of generic argument handling). The common call -- NumPy arrays or CPU torch tensors,
C-contiguous float32/float64 input, class axis last with int64 class indices (row-wise) or a target
of the input's dtype and shape (point-wise), a scalar ``grad_output``, an ``out`` that is absent,
the input itself, or a plain separate array -- is recognised here and handed to ``fastloss._C``
with precomputed parameters. Everything else, and every call that would raise, returns ``MISS``
and takes the full path (``_api._call``), which computes the same numbers and words the errors:
the fast path never raises on its own.

The "mean" of row-wise losses needs the number of non-ignored rows before the gradient can be
scaled; the native target check counts them (``divide_by_valid_rows``), so no NumPy pass over the
targets is made here. Class-weighted means (sum of w_t) take the full path.
"""

from __future__ import annotations

import sys
from typing import Any, Callable

import numpy as np

from . import _arrays, _backends
from ._registry import LossSpec

MISS = object()
ENABLED = True  # tests that patch fastloss._C's functions turn the fast path off (it binds them once)

_DTYPES = {np.dtype(t): (_arrays.DTYPE_CODES[np.dtype(t).name], t) for t in (np.float32, np.float64)}
_INT64 = np.dtype(np.int64)
_PLAIN = (int, float, str)  # option values compared with the defaults by value


def torch_view(x: Any) -> np.ndarray | None:
    """A CPU torch tensor's NumPy view when it is one the fast path takes (no grad, contiguous)."""
    torch = sys.modules.get("torch")
    if (torch is None or type(x) is not torch.Tensor or x.requires_grad or not x.is_contiguous() or x.is_cuda
            or x.is_neg()):  # a lazily negated view: its memory holds -x
        return None
    if x.dtype is not torch.float32 and x.dtype is not torch.float64 and x.dtype is not torch.int64:
        return None
    return x.numpy()


def scalar_array(value: float, dtype: np.dtype) -> np.ndarray:
    """A reduced loss as a 0-d array of the loss dtype (torch.from_numpy of it is the cheapest way to
    a 0-d tensor: 1.3 us against torch.tensor's 3.8)."""
    return np.array(value, _DTYPES[dtype][1])


CORES: dict[tuple[str, str], Callable[..., Any]] = {}
"""(loss, form) -> the NumPy-level fast path: (x, t, grad_output, out, reduction, axis, option values)
-> MISS, or the results as NumPy (a Python float for a reduced loss). fastloss.torch calls it too."""


def make(spec: LossSpec, form: str) -> Callable[..., Any] | None:
    """The fast path of ``spec``'s ``form``, or None (no native backend; the grad_hess form)."""
    native = _backends._BACKENDS.get("native")
    if native is None or form not in ("loss", "grad", "with_grad") or spec.broadcast_names:
        return None  # per-element option arrays (BCE's weights) take the full path
    kernel = _backends._C.rowwise if spec.rowwise else _backends._C.pointwise
    rowwise, cpp_id = spec.rowwise, spec.cpp_id
    need_loss, need_grad = form != "grad", form != "loss"
    defaults = tuple(o.default for o in spec.options)
    default_vector, default_params = spec.kernel_params(
        {o.name: o.check(o.name, o.default, None) for o in spec.options})
    weighted_mean = spec.mean_over == "target_weight"
    current = _backends.current

    def core(x, t, grad_output, out, reduction, axis, values):
        info = _DTYPES.get(x.dtype)
        if info is None or not x.flags.c_contiguous or not x.flags.aligned or not t.flags.c_contiguous:
            return MISS
        if current() is not native:
            return MISS
        if type(grad_output) is not float and type(grad_output) is not int:
            return MISS
        if reduction != "mean" and reduction != "sum" and reduction != "none":
            return MISS
        if all(v is d or (type(v) is type(d) and type(v) in _PLAIN and v == d) for v, d in zip(values, defaults)):
            vector, params = default_vector, default_params
        else:
            try:
                classes = x.shape[-1] if rowwise and x.ndim else None
                opts = {o.name: o.check(o.name, v, classes) for o, v in zip(spec.options, values)}
            except (TypeError, ValueError):
                return MISS
            vector, params = spec.kernel_params(opts)
        dtype, ltype = info
        shape = x.shape
        if rowwise:
            nd = len(shape)
            if nd == 0 or type(axis) is not int or (axis != -1 and axis != nd - 1):
                return MISS
            classes = shape[-1]
            if classes == 0 or t.dtype != _INT64 or t.shape != shape[:-1]:
                return MISS
            rows = x.size // classes
            x_k, t_k = x.reshape(rows, classes, 1), t.reshape(rows, 1)
            loss_shape = shape[:-1]
        else:
            if t.dtype != x.dtype or t.shape != shape:
                return MISS
            x_k, t_k = x.reshape(-1), t.reshape(-1)
            loss_shape = shape
        g = None
        if need_grad:
            if out is None:
                g = np.empty_like(x)
            elif out is x:
                g = x
            elif (type(out) is np.ndarray and out.dtype == x.dtype and out.shape == shape and out.flags.c_contiguous
                  and out.flags.writeable and not np.may_share_memory(out, x) and not np.may_share_memory(out, t)):
                g = out
            else:
                return MISS
        if type(grad_output) is int and not -(2**1023) < grad_output < 2**1023:
            return MISS  # too large for a float: the full path raises
        scale = float(grad_output)
        divide_rows = False
        if reduction == "mean":
            if rowwise:
                if weighted_mean and vector is not None:
                    return MISS
                divide_rows = True
            else:
                if x.size == 0:
                    return MISS
                scale = scale / x.size
        loss_out = np.empty(loss_shape, ltype) if need_loss and reduction == "none" else None
        args = (cpp_id, x_k, dtype, t_k, vector, params, None, scale, loss_out,
                g.reshape(x_k.shape) if g is not None else None, need_loss)
        try:
            if rowwise:
                total, valid = kernel(*args, divide_rows)
                if divide_rows and valid == 0:
                    return MISS  # the full path gives nan (0/0) with its own float semantics
            else:
                total, valid = kernel(*args), x.size
        except ValueError:  # bad targets: the full path raises with the index in the caller's shape
            return MISS
        loss = None
        if need_loss:
            loss = loss_out if reduction == "none" else total / valid if reduction == "mean" else total
        return loss, g

    CORES[(spec.name, form)] = core

    def fast(x, t, grad_output, out, reduction, axis, values):
        if not ENABLED:
            return MISS
        if type(x) is np.ndarray and type(t) is np.ndarray:
            result = core(x, t, grad_output, out, reduction, axis, values)
            if result is MISS:
                return MISS
            loss, g = result
            if need_loss and reduction != "none":
                loss = _DTYPES[x.dtype][1](loss)
        else:
            xv, tv = torch_view(x), torch_view(t)
            if xv is None or tv is None or out is not None:
                return MISS
            result = core(xv, tv, grad_output, None, reduction, axis, values)
            if result is MISS:
                return MISS
            loss, g = result
            torch = sys.modules["torch"]
            if need_loss:
                loss = torch.from_numpy(loss if reduction == "none" else scalar_array(loss, xv.dtype))
            if need_grad:
                g = torch.from_numpy(g)
        if not need_grad:
            return loss
        if not need_loss:
            return g
        return loss, g

    return fast
