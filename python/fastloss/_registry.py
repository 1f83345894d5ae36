"""The one table of losses.

The public API, the backends, the tests and the benchmarks all iterate ``LOSSES``; adding a loss
means one entry here (plus its reference function, its math header and a line in losses.def).

Each option carries its own validator so that every front end rejects bad values with the same
message, naming the argument and the value.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from . import _reference

ROWWISE = "rowwise"  # softmax family: one loss per row along the class axis
POINTWISE = "pointwise"  # one loss per element, target has the input's shape

REDUCTIONS = ("none", "mean", "sum")


def _fmt(value: Any) -> str:
    return repr(value) if not isinstance(value, np.ndarray) else f"array of shape {value.shape}"


def _finite_float(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {_fmt(value)}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return value


def any_float(name, value, num_classes=None):
    return _finite_float(name, value)


def nonneg_float(name, value, num_classes=None):
    value = _finite_float(name, value)
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return value


def positive_float(name, value, num_classes=None):
    value = _finite_float(name, value)
    if value <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return value


def unit_interval(name, value, num_classes=None):
    value = _finite_float(name, value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    return value


def optional_positive_float(name, value, num_classes=None):
    return None if value is None else positive_float(name, value)


def integer(name, value, num_classes=None):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {_fmt(value)}")
    return int(value)


def boolean(name, value, num_classes=None):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {_fmt(value)}")
    return bool(value)


def choice(*allowed: str) -> Callable:
    def check(name, value, num_classes=None):
        if value not in allowed:
            raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        return value

    return check


def class_vector(name, value, num_classes=None):
    """None or a 1-D array of one float per class; returned as float64 (C,)."""
    if value is None:
        return None
    from ._arrays import host_values  # late: _arrays imports nothing of ours at module level

    arr = host_values(value, name)
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if arr.ndim != 1 or (num_classes is not None and arr.shape[0] != num_classes):
        raise ValueError(
            f"{name} must have shape ({num_classes},) (one value per class), got {arr.shape}"
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {arr}")
    return arr


def scalar_or_class_vector(name, value, num_classes=None):
    if value is None or isinstance(value, numbers.Real) and not isinstance(value, bool):
        return None if value is None else _finite_float(name, value)
    return class_vector(name, value, num_classes)


@dataclass(frozen=True)
class Option:
    name: str
    default: Any
    check: Callable[..., Any]
    doc: str


@dataclass(frozen=True)
class LossSpec:
    name: str
    kind: str  # ROWWISE | POINTWISE
    input_name: str  # first positional argument's name, as in DESIGN.md 1.1
    options: tuple[Option, ...]
    reference: Callable  # _reference function, see its module docstring
    mean_over: str  # "target_weight" | "valid_rows" | "rows" | "elements"
    formula: str
    soft_targets: bool = False  # rowwise: float targets with the input's shape are allowed
    target_values: tuple[float, ...] | None = None  # pointwise: allowed integer/bool target values
    target_range: tuple[float, float] | None = None  # pointwise: allowed float target interval
    cpp_id: int = field(default=-1)  # index in csrc/fastloss/losses.def

    @property
    def rowwise(self) -> bool:
        return self.kind == ROWWISE

    def defaults(self) -> dict[str, Any]:
        out = {o.name: o.default for o in self.options}
        if self.rowwise:
            out["axis"] = -1
        out["reduction"] = "mean"
        return out


_IGNORE = Option("ignore_index", -100, integer, "target value whose rows give 0 loss and 0 gradient")


LOSSES: tuple[LossSpec, ...] = (
    LossSpec(
        name="cross_entropy",
        kind=ROWWISE,
        input_name="logits",
        options=(
            Option("weight", None, class_vector, "per-class weights w (C,)"),
            _IGNORE,
            Option("label_smoothing", 0.0, unit_interval, "eps: mass spread uniformly over classes"),
            Option("z_loss", 0.0, nonneg_float, "coefficient of the z-loss term lse**2"),
            Option("softcap", None, optional_positive_float, "z = softcap*tanh(x/softcap) if set"),
        ),
        reference=_reference.cross_entropy,
        mean_over="target_weight",
        soft_targets=True,
        formula=(
            "l_i = (1-eps)*w_t*(lse - z_t) + (eps/C)*sum_c w_c*(lse - z_c) + z_loss*lse**2, "
            "lse = logsumexp(z); soft targets: l_i = -sum_c w_c*q_c*log p_c + z_loss*lse**2, "
            "q = (1-eps)*y + eps/C"
        ),
    ),
    LossSpec(
        name="softmax_focal_loss",
        kind=ROWWISE,
        input_name="logits",
        options=(
            Option("alpha", None, scalar_or_class_vector, "None, a scalar, or per-class (C,)"),
            Option("gamma", 2.0, nonneg_float, "focusing exponent"),
            _IGNORE,
        ),
        reference=_reference.softmax_focal_loss,
        mean_over="valid_rows",
        formula="l_i = -alpha_t*(1-p_t)**gamma*log p_t",
    ),
    LossSpec(
        name="sigmoid_focal_loss",
        kind=POINTWISE,
        input_name="logits",
        options=(
            Option("alpha", 0.25, any_float, "weight of positives; alpha < 0 disables the term"),
            Option("gamma", 2.0, nonneg_float, "focusing exponent"),
        ),
        reference=_reference.sigmoid_focal_loss,
        mean_over="elements",
        target_values=(0, 1),
        target_range=(0.0, 1.0),
        formula=(
            "p = sigmoid(x); ce = BCEWithLogits(x, y); p_t = p*y + (1-p)*(1-y); "
            "l = ce*(1-p_t)**gamma*(alpha*y + (1-alpha)*(1-y)) (alpha term only if alpha >= 0)"
        ),
    ),
    LossSpec(
        name="hinge_loss",
        kind=POINTWISE,
        input_name="scores",
        options=(
            Option("margin", 1.0, any_float, "margin"),
            Option("squared", False, boolean, "square each hinge"),
        ),
        reference=_reference.hinge_loss,
        mean_over="elements",
        target_values=(-1, 0, 1),
        formula="l = max(0, margin - y*s) (squared if squared); y in {-1, +1}, 0/False means -1",
    ),
    LossSpec(
        name="multiclass_hinge_loss",
        kind=ROWWISE,
        input_name="scores",
        options=(
            Option("margin", 1.0, any_float, "margin"),
            Option("squared", False, boolean, "square each hinge term"),
            Option(
                "variant",
                "crammer_singer",
                choice("crammer_singer", "weston_watkins"),
                "crammer_singer (max over wrong classes) or weston_watkins (sum)",
            ),
            Option("weight", None, class_vector, "per-class weights w (C,), applied as w_t"),
            _IGNORE,
        ),
        reference=_reference.multiclass_hinge_loss,
        mean_over="valid_rows",
        formula=(
            "crammer_singer: l_i = w_t*max(0, margin + max_{j!=t} s_j - s_t); "
            "weston_watkins: l_i = w_t*sum_{j!=t} max(0, margin + s_j - s_t) (terms squared if squared)"
        ),
    ),
    LossSpec(
        name="huber_loss",
        kind=POINTWISE,
        input_name="input",
        options=(Option("delta", 1.0, positive_float, "threshold between quadratic and linear"),),
        reference=_reference.huber_loss,
        mean_over="elements",
        formula="e = x - y; l = 0.5*e**2 if |e| < delta else delta*(|e| - 0.5*delta)",
    ),
    LossSpec(
        name="smooth_l1_loss",
        kind=POINTWISE,
        input_name="input",
        options=(Option("beta", 1.0, nonneg_float, "threshold; beta=0 is L1"),),
        reference=_reference.smooth_l1_loss,
        mean_over="elements",
        formula="e = x - y; l = 0.5*e**2/beta if |e| < beta else |e| - 0.5*beta",
    ),
)

# cpp_id follows table order; csrc/fastloss/losses.def lists the losses in the same order.
LOSSES = tuple(
    LossSpec(**{**spec.__dict__, "cpp_id": i}) for i, spec in enumerate(LOSSES)
)
BY_NAME: dict[str, LossSpec] = {spec.name: spec for spec in LOSSES}
