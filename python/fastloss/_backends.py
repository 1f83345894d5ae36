"""CPU backends behind the front end, and the choice between them.

A backend receives one canonical ``Problem`` (already validated, contiguous, reduction folded into
gradient scales) and returns ``(loss, grad)``:

- ``loss``: for ``reduction="none"`` the per-row / per-element loss array (float64 for float64
  inputs, float32 otherwise); for "mean"/"sum" the *unnormalised* sum of those losses as a Python
  float, summed in a fixed order so it does not depend on the thread count.
- ``grad``: the gradient, written into ``problem.grad_out`` (which may be ``problem.x`` itself).

``numpy`` (always there) runs ``_reference``; ``native`` runs the compiled ``fastloss._C``.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _arrays
from ._registry import LossSpec

try:
    from . import _C  # type: ignore[attr-defined]

    _NATIVE_ERROR = None
except ImportError as exc:  # the pure-NumPy install still works
    _C = None
    _NATIVE_ERROR = exc


@dataclass
class Problem:
    spec: LossSpec
    x: np.ndarray  # rowwise (outer, C, inner), pointwise (n,); C-contiguous storage of `dtype`
    dtype: str
    target: np.ndarray  # rowwise: int64 (outer, inner) or soft (outer, C, inner); pointwise (n,)
    soft: bool
    opts: dict[str, Any]  # validated loss options (class vectors as float64 (C,))
    reduction: str
    grad_scale: float  # multiplies every gradient element: grad_output, or grad_output / D
    row_scale: np.ndarray | None  # "none" with an array grad_output: one scale per loss element
    need_loss: bool
    need_grad: bool
    grad_out: np.ndarray | None  # C-contiguous, x's shape and storage dtype; may be x itself

    @property
    def ignored(self) -> np.ndarray | None:
        """Mask of ignored rows (outer, inner), or None when the loss has no ignore_index."""
        if "ignore_index" not in self.opts or self.soft:
            return None
        return self.target == self.opts["ignore_index"]


class TargetOutOfDomain(Exception):
    """Raised by a backend whose kernel found a float target outside the loss's domain."""


class ClassTargetOutOfRange(ValueError):
    """Raised by a backend whose kernel found a class index out of range (not ignore_index)."""


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
        weight, params = native_params(prob)
        kernel = _C.rowwise if prob.spec.rowwise else _C.pointwise
        try:
            total = kernel(
                prob.spec.cpp_id, prob.x, prob.dtype, prob.target, weight, params,
                prob.row_scale, prob.grad_scale, loss_out, grad_out if prob.need_grad else None,
                prob.need_loss,
            )
        except _C.TargetOutOfDomain:
            raise TargetOutOfDomain from None
        except ValueError as exc:  # dispatch.cpp's range check of class indices says "out of range"
            if prob.spec.rowwise and not prob.soft and "out of range" in str(exc):
                raise ClassTargetOutOfRange(str(exc)) from None
            raise
        return (loss_out if prob.reduction == "none" else total), (grad_out if prob.need_grad else None)


def native_params(prob: Problem) -> tuple[np.ndarray | None, dict[str, float]]:
    """The class-weight vector and the flat scalar parameters of csrc/fastloss/params.h."""
    o = prob.opts
    weight = o.get("weight")
    alpha = o.get("alpha", 1.0)
    if prob.spec.name == "softmax_focal_loss":
        weight, alpha = (alpha, 1.0) if isinstance(alpha, np.ndarray) else (None, 1.0 if alpha is None else alpha)
    params = {
        "ignore_index": float(o.get("ignore_index", -100)),
        "label_smoothing": o.get("label_smoothing", 0.0),
        "z_loss": o.get("z_loss", 0.0),
        "softcap": o.get("softcap") or 0.0,
        "gamma": o.get("gamma", 0.0),
        "alpha": float(alpha),
        "margin": o.get("margin", 0.0),
        "squared": float(o.get("squared", False)),
        "weston_watkins": float(o.get("variant") == "weston_watkins"),
        "delta": o.get("delta", 0.0),
        "beta": o.get("beta", 0.0),
        "soft_target": float(prob.soft),
    }
    return weight, params


# ---- selection and control ---------------------------------------------------------------------

_BACKENDS = {"numpy": NumpyBackend()}
if _C is not None:
    _BACKENDS["native"] = NativeBackend()

_override: contextvars.ContextVar[str | None] = contextvars.ContextVar("fastloss_backend", default=None)


def available() -> tuple[str, ...]:
    return tuple(_BACKENDS)


def _requested() -> str | None:
    name = _override.get() or os.environ.get("FASTLOSS_BACKEND") or None
    if name is not None and name not in ("numpy", "native"):
        raise ValueError(f"FASTLOSS_BACKEND must be 'numpy' or 'native', got {name!r}")
    return name


def current() -> NumpyBackend | NativeBackend:
    """The requested backend (an explicit request that cannot be met raises), else the best."""
    name = _requested()
    if name == "native" and _C is None:
        raise RuntimeError(f"backend 'native' was requested but fastloss._C failed to import: {_NATIVE_ERROR}")
    return _BACKENDS[name or ("native" if _C is not None else "numpy")]


@contextlib.contextmanager
def use_backend(name: str):
    """Run the calls inside the ``with`` block on backend ``name`` ('numpy' or 'native')."""
    if name not in ("numpy", "native"):
        raise ValueError(f"backend must be 'numpy' or 'native', got {name!r}")
    token = _override.set(name)
    try:
        current()
        yield
    finally:
        _override.reset(token)


def _default_threads() -> int:
    env = os.environ.get("OMP_NUM_THREADS", "")
    return int(env) if env.isdigit() and int(env) > 0 else (os.cpu_count() or 1)


_threads = _default_threads()


def set_num_threads(n: int) -> None:
    """Threads used by the CPU kernels (default: OMP_NUM_THREADS, else all cores)."""
    global _threads
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"num_threads must be a positive integer, got {n!r}")
    _threads = int(n)
    if _C is not None:
        _C.set_num_threads(_threads)


def get_num_threads() -> int:
    return _C.get_num_threads() if _C is not None else _threads


if _C is not None:
    _C.set_num_threads(_threads)
