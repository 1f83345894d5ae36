"""The canonical problem every backend runs, and the validation that builds it, for any device.

A call is validated here once (input dtype, class axis, target kind and domain, ``grad_output``),
and the reduction is folded into gradient scales; the result is a ``Problem``: arrays in the
canonical layout (row-wise (outer, C, inner), point-wise (n,)) plus the loss's options.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _arrays
from ._registry import REDUCTIONS, LossSpec


@dataclass
class Layout:
    """Where the class axis sits: the input viewed as (outer, C, inner); pointwise: (n,)."""

    shape: tuple[int, ...]
    outer: int
    classes: int
    inner: int
    axis: int | None  # None for pointwise losses

    @property
    def loss_shape(self) -> tuple[int, ...]:
        if self.axis is None:
            return self.shape
        return self.shape[: self.axis] + self.shape[self.axis + 1 :]


def layout(spec: LossSpec, shape: tuple[int, ...], axis: Any) -> Layout:
    n = math.prod(shape)
    if not spec.rowwise:
        return Layout(shape, 1, 1, n, None)
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"axis must be an integer, got {axis!r}")
    if len(shape) == 0:
        raise ValueError(f"{spec.input_name} must have a class axis, got a 0-d array")
    if not -len(shape) <= axis < len(shape):
        raise ValueError(f"axis {axis} is out of range for {spec.input_name} of shape {shape}")
    a = int(axis) % len(shape)
    if shape[a] == 0:
        raise ValueError(f"{spec.input_name} has 0 classes along axis {axis} (shape {shape})")
    return Layout(shape, math.prod(shape[:a]), shape[a], math.prod(shape[a + 1 :]), a)


def check_reduction(reduction: Any, spec: LossSpec | None = None) -> str:
    allowed = REDUCTIONS if spec is None else spec.reductions
    if reduction not in allowed:
        raise ValueError(f"reduction must be one of {allowed}, got {reduction!r}")
    return reduction


def check_input(spec: LossSpec, x: _arrays.HostArray) -> None:
    if not x.is_float:
        raise TypeError(
            f"{spec.input_name} must be a floating-point array (float32, float64, float16 or "
            f"bfloat16), got dtype {x.dtype}"
        )


def target_kind(spec: LossSpec, t: _arrays.HostArray, lay: Layout, opts: dict) -> bool:
    """Validate the target's dtype and shape; returns True for soft (probability) targets."""
    kind = "f" if t.is_float else t.data.dtype.kind
    if spec.logit_targets:  # float logits of the input's shape; they travel as soft targets do
        if kind != "f":
            raise TypeError(f"target must hold float logits of {spec.input_name}'s shape, got dtype {t.dtype}")
        if t.data.shape != lay.shape:
            raise ValueError(f"target must have {spec.input_name}'s shape {lay.shape}, got {t.data.shape}")
        return True
    if spec.rowwise:
        if kind == "f" and spec.soft_targets:
            if t.data.shape != lay.shape:
                if t.data.shape == lay.loss_shape:
                    raise TypeError(
                        f"target holds floats (dtype {t.dtype}) of the class indices' shape {lay.loss_shape}: "
                        "class indices must be integers (cast them: .astype(np.int64) / .long()); float "
                        f"targets are probabilities of {spec.input_name}'s shape {lay.shape}"
                    )
                raise ValueError(
                    f"soft target must have {spec.input_name}'s shape {lay.shape}, got {t.data.shape}"
                    f"{_axis_hint(spec, t.data.shape, lay, probabilities=True)}"
                )
            if opts["ignore_index"] != -100:
                raise ValueError(
                    f"ignore_index={opts['ignore_index']} cannot be used with soft (probability) targets"
                )
            return True
        if kind not in "iu":
            allowed = "integer class indices or float probabilities" if spec.soft_targets else "integer class indices"
            raise TypeError(f"target must hold {allowed}, got dtype {t.dtype}")
        if t.data.shape != lay.loss_shape:
            raise ValueError(
                f"target must have shape {lay.loss_shape} ({spec.input_name}'s shape {lay.shape} "
                f"without axis {lay.axis}), got {t.data.shape}{_axis_hint(spec, t.data.shape, lay)}"
            )
        return False
    if kind not in "fiub":
        raise TypeError(f"target must be a float, integer or bool array, got dtype {t.dtype}")
    if t.data.shape != lay.shape:
        raise ValueError(f"target must have {spec.input_name}'s shape {lay.shape}, got {t.data.shape}")
    return False


def _axis_hint(spec: LossSpec, target_shape: tuple[int, ...], lay: Layout, probabilities: bool = False) -> str:
    """A hint when the target fits another class axis, e.g. (N, C, H, W) logits with the default axis."""
    shape = lay.shape
    for a in range(len(shape)):
        if a != lay.axis and (shape == target_shape if probabilities else shape[:a] + shape[a + 1:] == target_shape):
            return f"; the classes seem to be along axis {a}: pass axis={a}"
    return ""


def first_bad(values: np.ndarray, bad: np.ndarray) -> str:
    idx = np.unravel_index(int(np.argmax(bad)), bad.shape)
    value = values[idx]
    where = f"[{', '.join(map(str, idx))}]" if idx else ""
    return f"target{where} = {getattr(value, 'item', lambda: value)()!r}"


def class_target(t: np.ndarray, lay: Layout, ignore_index: int, check: bool = True) -> np.ndarray:
    """Class indices as contiguous int64 (outer, inner), each in [0, C) or == ignore_index.

    ``check=False`` leaves the range check to a backend that does it in its kernel (a NumPy pass
    here costs a third of the time of a C=10 cross-entropy)."""
    if t.dtype.kind == "u" and t.dtype.itemsize == 8 and t.size:  # values >= 2**63 would wrap in int64
        too_big = t > np.iinfo(np.int64).max
        if too_big.any():
            raise ValueError(f"{first_bad(t, too_big)} is out of range [0, {lay.classes})")
    t64 = np.asarray(t, dtype=np.int64)
    if check:
        bad = ((t64 < 0) | (t64 >= lay.classes)) & (t64 != ignore_index)
        if bad.any():
            raise ValueError(
                f"{first_bad(t, bad)} is out of range [0, {lay.classes}) and is not ignore_index={ignore_index}"
            )
    return np.ascontiguousarray(t64).reshape(lay.outer, lay.inner)


def elementwise_target(spec: LossSpec, t: _arrays.HostArray, dtype: str, check_floats: bool,
                       opts: dict | None = None) -> np.ndarray:
    """Target values checked against the loss's domain, in the input's storage dtype, flat.

    Float targets already in the input's dtype are passed through untouched when the backend
    checks their domain itself inside its one pass (``check_floats=False``)."""
    if t.is_float:
        if t.dtype == dtype and (not check_floats or not spec.checks_domain(opts or {})):
            return np.ascontiguousarray(t.data).reshape(-1)
        y = _arrays.to_float64(t.data, t.dtype)
        bad = bad_float_targets(spec, y) if spec.checks_domain(opts or {}) else np.zeros(y.shape, dtype=bool)
        if bad.any():
            raise ValueError(f"{first_bad(y, bad)} is not {target_rule(spec)}")
        out = t.data if t.dtype == dtype else _arrays.from_float64(y, dtype)
    elif spec.target_values is None:
        raise TypeError(f"target must be a floating-point array for {spec.name}, got dtype {t.dtype}")
    else:
        bad = ~np.isin(t.data, spec.target_values)
        if bad.any():
            raise ValueError(f"{first_bad(t.data, bad)} is not in {set(spec.target_values)}")
        out = _arrays.from_float64(t.data.astype(np.float64), dtype)
    return np.ascontiguousarray(out).reshape(-1)


def target_rule(spec: LossSpec) -> str:
    if spec.target_range is not None:
        return f"in [{spec.target_range[0]}, {spec.target_range[1]}]"
    return f"in {set(spec.target_values)}"


def bad_float_targets(spec: LossSpec, y: np.ndarray) -> np.ndarray:
    """NaN targets are allowed (they propagate, as in PyTorch); other values must be in domain."""
    if spec.target_values is None and spec.target_range is None:
        return np.zeros(y.shape, dtype=bool)
    if spec.target_range is not None:
        lo, hi = spec.target_range
        return (y < lo) | (y > hi)
    return ~np.isin(y, spec.target_values) & ~np.isnan(y)


def raise_bad_target(spec: LossSpec, target: np.ndarray, dtype: str) -> None:
    """For backends that found an out-of-domain float target inside their kernel."""
    y = _arrays.to_float64(target, dtype)
    bad = bad_float_targets(spec, y)
    raise ValueError(f"{first_bad(y, bad)} is not {target_rule(spec)}")


def reduction_denominator(spec: LossSpec, reduction: str, target: np.ndarray, soft: bool, opts: dict,
                          lay: Layout) -> float:
    """What the summed loss (and the gradient) is divided by: "mean"'s rule, "batchmean"'s
    input.shape[0] (PyTorch's kl_div: the sum for a 0-d input), 1 for "sum" and "none"."""
    if reduction == "mean":
        return mean_denominator(spec, target, soft, opts, lay)
    if reduction == "batchmean":
        return float(lay.shape[0]) if lay.shape else 1.0
    return 1.0


def mean_denominator(spec: LossSpec, target: np.ndarray, soft: bool, opts: dict, lay: Layout) -> float:
    if spec.mean_over == "elements" or soft:
        return float(target.size if not soft else lay.outer * lay.inner)
    valid = target != opts["ignore_index"]
    if spec.mean_over == "target_weight" and opts.get("weight") is not None:
        # clip: unchecked out-of-range targets (see _class_target) make the kernel raise anyway
        return float(np.sum(np.take(opts["weight"], target[valid], mode="clip")))
    return float(np.count_nonzero(valid))


def _real(value: Any, name: str) -> float | None:
    """A Python real number as a float (None for anything else); huge ints are an error."""
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)):
        try:
            return float(value)
        except OverflowError:
            raise ValueError(f"{name} must be finite, got {value!r}") from None
    if isinstance(value, (numbers.Number, str, bytes, bool, np.bool_)):
        raise TypeError(f"{name} must be a real number or array, got {value!r}")
    return None


def _real_array(value: Any, name: str) -> np.ndarray:
    arr = _arrays.host_values(value, name)
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    return arr


def scalar(value: Any, name: str) -> float:
    real = _real(value, name)
    if real is not None:
        return real
    arr = _real_array(value, name)
    if arr.size != 1:
        raise ValueError(f"{name} must be a scalar for this reduction, got shape {arr.shape}")
    return float(arr.reshape(()))


def row_scale(grad_output: Any, lay: Layout, dtype: str) -> tuple[float, np.ndarray | None]:
    """reduction="none": a scalar grad_output scales everything, an array scales each loss."""
    real = _real(grad_output, "grad_output")
    if real is not None:
        return real, None
    g = _real_array(grad_output, "grad_output")
    if g.shape == ():
        return float(g), None
    if g.shape != lay.loss_shape:
        raise ValueError(f"grad_output must have the loss's shape {lay.loss_shape}, got {g.shape}")
    shape = (lay.outer, lay.inner) if lay.axis is not None else (-1,)
    return 1.0, np.ascontiguousarray(g, dtype=_arrays.loss_dtype(dtype)).reshape(shape)


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


