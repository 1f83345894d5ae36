"""``LossSpec`` objects: the table of ``_spec.py`` joined with validators and reference functions.

The public API, the backends, the tests and the benchmarks all iterate ``LOSSES``. Nothing here
lists losses or options: they come from ``_spec.LOSSES``; a loss's reference function is
``_reference.<name>`` and each option's validator is named in its spec entry.

Each option carries its own validator so that every front end rejects bad values with the same
message, naming the argument and the value.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from . import _reference, _spec
from ._spec import POINTWISE, ROWWISE  # noqa: F401 - re-exported

REDUCTIONS = ("none", "mean", "sum")


def _fmt(value: Any) -> str:
    return repr(value) if not isinstance(value, np.ndarray) else f"array of shape {value.shape}"


def _finite_float(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {_fmt(value)}")
    try:
        value = float(value)
    except OverflowError:  # a Python int beyond float's range
        raise ValueError(f"{name} must be finite, got {value!r}") from None
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
    value = int(value)
    if not -(2**63) <= value < 2**63:  # the kernels compare it with int64 class indices
        raise ValueError(f"{name} must fit in int64, got {value!r}")
    return value


def boolean(name, value, num_classes=None):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {_fmt(value)}")
    return bool(value)


def choice(*allowed: str) -> Callable:
    def check(name, value, num_classes=None):
        if not isinstance(value, str):
            raise TypeError(f"{name} must be one of {allowed}, got {_fmt(value)}")
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


def one_or_two(name, value, num_classes=None):
    value = integer(name, value)
    if value not in (1, 2):
        raise ValueError(f"{name} must be 1 or 2, got {value!r}")
    return value


def scalar_or_class_vector(name, value, num_classes=None):
    if value is None or isinstance(value, numbers.Real) and not isinstance(value, bool):
        return None if value is None else _finite_float(name, value)
    return class_vector(name, value, num_classes)


def broadcast_vector(name, value, num_classes=None):
    """None or an array of reals in its own shape (float32/float64 kept as they are, others as
    float64); its shape is checked against the input's by ``check_broadcast_shape`` (the input is
    not known here). Like the input's own values, NaN or inf in it propagate to the loss (as in
    PyTorch): an input-sized option gets no extra pass over it here."""
    if value is None:
        return None
    from ._arrays import host_values  # late: _arrays imports nothing of ours at module level

    arr = host_values(value, name)
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    return arr if arr.dtype in (np.float32, np.float64) else np.asarray(arr, dtype=np.float64)


def scalar_or_broadcast_vector(name, value, num_classes=None):
    if value is None or isinstance(value, numbers.Real) and not isinstance(value, bool):
        return None if value is None else _finite_float(name, value)
    return broadcast_vector(name, value, num_classes)


def check_broadcast_shape(name: str, value: np.ndarray, shape: tuple[int, ...], input_name: str) -> None:
    """A per-element option has the input's shape or one value per entry of its last axis."""
    if value.shape == tuple(shape) or (len(shape) and value.shape == (shape[-1],)):
        return
    last = f" or ({shape[-1]},) along its last axis" if len(shape) else ""
    raise ValueError(f"{name} must have {input_name}'s shape {tuple(shape)}{last}, got {value.shape}")


VALIDATORS: dict[str, Callable[..., Any]] = {
    "any_float": any_float, "nonneg_float": nonneg_float, "positive_float": positive_float,
    "unit_interval": unit_interval, "optional_positive_float": optional_positive_float, "integer": integer,
    "boolean": boolean, "class_vector": class_vector, "scalar_or_class_vector": scalar_or_class_vector,
    "broadcast_vector": broadcast_vector, "scalar_or_broadcast_vector": scalar_or_broadcast_vector,
    "one_or_two": one_or_two,
}


@dataclass(frozen=True)
class Option:
    name: str
    default: Any
    check: Callable[..., Any]
    doc: str
    spec: _spec.Opt  # the table's entry: kernel type, choices, None's kernel value

    def kernel_value(self, value: Any) -> Any:
        """The validated value as the native LossParams field holds it (class vectors excluded)."""
        kind = self.spec.type
        if value is None:
            return self.spec.none_as
        if kind == "choice":
            return self.spec.choices.index(value)
        if kind == "bool":
            return bool(value)
        if kind == "i64":
            return int(value)
        return float(value)


@dataclass(frozen=True)
class LossSpec:
    name: str
    kind: str  # ROWWISE | POINTWISE
    input_name: str  # first positional argument's name, as in DESIGN.md 1.1
    options: tuple[Option, ...]
    reference: Callable  # _reference function, see its module docstring
    mean_over: str  # "target_weight" | "valid_rows" | "elements"
    formula: str
    soft_targets: bool  # rowwise: float targets with the input's shape are allowed
    logit_targets: bool  # rowwise: the target is always float logits of the input's shape
    native_grad_hess: bool  # False: *_grad_hess runs the NumPy reference
    target_values: tuple[float, ...] | None  # pointwise: allowed integer/bool target values
    target_range: tuple[float, float] | None  # pointwise: allowed float target interval
    cpp_id: int  # LossId of the generated C++ table: the position in _spec.LOSSES
    difference: bool = False  # pointwise loss of input - target: the target's gradient is -grad
    extra_reductions: tuple[str, ...] = ()  # e.g. kl_div's "batchmean"
    domain_unless: str | None = None  # a bool option that lifts the target domain when true

    @property
    def rowwise(self) -> bool:
        return self.kind == ROWWISE

    @property
    def reductions(self) -> tuple[str, ...]:
        return REDUCTIONS + self.extra_reductions

    @property
    def broadcast_names(self) -> tuple[str, ...]:
        """The per-element array options, in the order the kernel receives them."""
        return tuple(o.name for o in self.options if o.spec.type == "broadcast_vector")

    def checks_domain(self, opts: dict[str, Any]) -> bool:
        """Whether this call's targets have a domain (kl_div with log_target=True has none)."""
        if self.target_values is None and self.target_range is None:
            return False
        return not (self.domain_unless and opts.get(self.domain_unless))

    def defaults(self) -> dict[str, Any]:
        out = {o.name: o.default for o in self.options}
        if self.rowwise:
            out["axis"] = -1
        out["reduction"] = "mean"
        return out

    def kernel_params(self, opts: dict[str, Any]) -> tuple[np.ndarray | None, dict[str, Any]]:
        """(the class vector or None, the LossParams fields of this loss) from validated options."""
        vector, params = None, {}
        for o in self.options:
            value = opts[o.name]
            if o.spec.type in _spec.VECTOR_TYPES and (value is None or isinstance(value, np.ndarray)):
                if o.spec.type == "class_vector":
                    vector = value if vector is None else vector
                if not o.spec.vector_or_scalar:
                    continue
                value = None if isinstance(value, np.ndarray) else value
            params[o.name] = o.kernel_value(value)
        return vector, params


def _option(opt: _spec.Opt) -> Option:
    check = VALIDATORS[opt.check] if opt.type != "choice" else choice(*opt.choices)
    return Option(opt.name, opt.default, check, opt.doc, opt)


def _loss(cpp_id: int, loss: _spec.Loss) -> LossSpec:
    return LossSpec(
        name=loss.name, kind=loss.kind, input_name=loss.input_name,
        options=tuple(_option(o) for o in loss.options), reference=getattr(_reference, loss.name),
        mean_over=loss.mean_over, formula=loss.formula, soft_targets=loss.soft_targets,
        logit_targets=loss.logit_targets, native_grad_hess=loss.native_grad_hess,
        target_values=loss.target_values, target_range=loss.target_range, cpp_id=cpp_id,
        difference=loss.difference, extra_reductions=loss.extra_reductions, domain_unless=loss.domain_unless,
    )


LOSSES: tuple[LossSpec, ...] = tuple(_loss(i, loss) for i, loss in enumerate(_spec.LOSSES))
BY_NAME: dict[str, LossSpec] = {spec.name: spec for spec in LOSSES}
