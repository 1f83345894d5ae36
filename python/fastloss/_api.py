"""The generic front end: validate -> normalise arrays -> pick backend -> call -> wrap result.

Every public loss function is generated here from its registry entry, so all losses share one
implementation of argument checking, reductions, ``grad_output``, ``out=`` and array interop.
"""

from __future__ import annotations

import inspect
import math
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _arrays, _backends
from ._registry import LOSSES, REDUCTIONS, LossSpec

FORMS = ("loss", "grad", "with_grad")


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


def _layout(spec: LossSpec, shape: tuple[int, ...], axis: Any) -> Layout:
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


def _check_input(spec: LossSpec, x: _arrays.HostArray) -> None:
    if not x.is_float:
        raise TypeError(
            f"{spec.input_name} must be a floating-point array (float32, float64, float16 or "
            f"bfloat16), got dtype {x.dtype}"
        )


def _target_kind(spec: LossSpec, t: _arrays.HostArray, lay: Layout, opts: dict) -> bool:
    """Validate the target's dtype and shape; returns True for soft (probability) targets."""
    kind = "f" if t.is_float else t.data.dtype.kind
    if spec.rowwise:
        if kind == "f" and spec.soft_targets:
            if t.data.shape != lay.shape:
                raise ValueError(
                    f"soft target must have {spec.input_name}'s shape {lay.shape}, got {t.data.shape}"
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
                f"without axis {lay.axis}), got {t.data.shape}"
            )
        return False
    if kind not in "fiub":
        raise TypeError(f"target must be a float, integer or bool array, got dtype {t.dtype}")
    if t.data.shape != lay.shape:
        raise ValueError(f"target must have {spec.input_name}'s shape {lay.shape}, got {t.data.shape}")
    return False


def _first_bad(values: np.ndarray, bad: np.ndarray) -> str:
    idx = np.unravel_index(int(np.argmax(bad)), bad.shape)
    value = values[idx]
    return f"target[{', '.join(map(str, idx))}] = {getattr(value, 'item', lambda: value)()!r}"


def _class_target(t: np.ndarray, lay: Layout, ignore_index: int, check: bool = True) -> np.ndarray:
    """Class indices as contiguous int64 (outer, inner), each in [0, C) or == ignore_index.

    ``check=False`` leaves the range check to a backend that does it in its kernel (a NumPy pass
    here costs a third of the time of a C=10 cross-entropy)."""
    if not check:
        return np.ascontiguousarray(t, dtype=np.int64).reshape(lay.outer, lay.inner)
    if t.dtype.kind == "u" and t.dtype.itemsize == 8 and t.size and t.max() > np.iinfo(np.int64).max:
        raise ValueError(f"target value {t.max()} is out of range [0, {lay.classes})")
    t64 = np.ascontiguousarray(t, dtype=np.int64)
    bad = ((t64 < 0) | (t64 >= lay.classes)) & (t64 != ignore_index)
    if bad.any():
        raise ValueError(
            f"{_first_bad(t, bad)} is out of range [0, {lay.classes}) and is not ignore_index={ignore_index}"
        )
    return t64.reshape(lay.outer, lay.inner)


def _elementwise_target(spec: LossSpec, t: _arrays.HostArray, dtype: str, check_floats: bool) -> np.ndarray:
    """Target values checked against the loss's domain, in the input's storage dtype, flat.

    Float targets already in the input's dtype are passed through untouched when the backend
    checks their domain itself inside its one pass (``check_floats=False``)."""
    if t.is_float:
        if t.dtype == dtype and (not check_floats or spec.target_values is None):
            return np.ascontiguousarray(t.data).reshape(-1)
        y = _arrays.to_float64(t.data, t.dtype)
        bad = _bad_float_targets(spec, y)
        if bad.any():
            raise ValueError(f"{_first_bad(y, bad)} is not {_target_rule(spec)}")
        out = t.data if t.dtype == dtype else _arrays.from_float64(y, dtype)
    elif spec.target_values is None:
        raise TypeError(f"target must be a floating-point array for {spec.name}, got dtype {t.dtype}")
    else:
        bad = ~np.isin(t.data, spec.target_values)
        if bad.any():
            raise ValueError(f"{_first_bad(t.data, bad)} is not in {set(spec.target_values)}")
        out = _arrays.from_float64(t.data.astype(np.float64), dtype)
    return np.ascontiguousarray(out).reshape(-1)


def _target_rule(spec: LossSpec) -> str:
    if spec.target_range is not None:
        return f"in [{spec.target_range[0]}, {spec.target_range[1]}]"
    return f"in {set(spec.target_values)}"


def _bad_float_targets(spec: LossSpec, y: np.ndarray) -> np.ndarray:
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
    bad = _bad_float_targets(spec, y)
    raise ValueError(f"{_first_bad(y, bad)} is not {_target_rule(spec)}")


def _mean_denominator(spec: LossSpec, target: np.ndarray, soft: bool, opts: dict, lay: Layout) -> float:
    if spec.mean_over in ("elements", "rows") or soft:
        return float(target.size if not soft else lay.outer * lay.inner)
    valid = target != opts["ignore_index"]
    if spec.mean_over == "target_weight" and opts.get("weight") is not None:
        # clip: unchecked out-of-range targets (see _class_target) make the kernel raise anyway
        return float(np.sum(np.take(opts["weight"], target[valid], mode="clip")))
    return float(np.count_nonzero(valid))


def _scalar(value: Any, name: str) -> float:
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    arr = _arrays.host_values(value, name)
    if arr.size != 1 or arr.dtype.kind not in "fiu":
        raise ValueError(f"{name} must be a scalar for this reduction, got shape {arr.shape}")
    return float(arr.reshape(()))


def _row_scale(grad_output: Any, lay: Layout, dtype: str) -> tuple[float, np.ndarray | None]:
    """reduction="none": a scalar grad_output scales everything, an array scales each loss."""
    if isinstance(grad_output, numbers.Real) and not isinstance(grad_output, bool):
        return float(grad_output), None
    g = _arrays.host_values(grad_output, "grad_output")
    if g.shape == ():
        return float(g), None
    if g.shape != lay.loss_shape:
        raise ValueError(f"grad_output must have the loss's shape {lay.loss_shape}, got {g.shape}")
    shape = (lay.outer, lay.inner) if lay.axis is not None else (-1,)
    return 1.0, np.ascontiguousarray(g, dtype=_arrays.loss_dtype(dtype)).reshape(shape)


def _same_array(a: np.ndarray, b: np.ndarray) -> bool:
    return (
        a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
        and a.shape == b.shape
        and a.strides == b.strides
    )


def _grad_destination(out: Any, x: _arrays.HostArray, t: _arrays.HostArray, x3: np.ndarray):
    """(the kernel's C-contiguous destination, the caller's out array or None)."""
    if out is None:
        return None, None
    o = _arrays.as_host(out, "out")
    if o.dtype != x.dtype or o.data.shape != x.data.shape:
        raise ValueError(
            f"out must have the input's shape {x.data.shape} and dtype {x.dtype}, "
            f"got shape {o.data.shape} and dtype {o.dtype}"
        )
    if not o.data.flags.writeable:
        raise ValueError("out is not writable")
    if _same_array(o.data, x.data):
        return (x3 if np.shares_memory(x3, x.data) else None), o
    for other, name in ((x.data, "the input"), (t.data, "target")):
        if np.may_share_memory(o.data, other):
            raise ValueError(f"out overlaps {name}; only out=input (the very same array) may alias")
    if o.data.flags.c_contiguous:
        return o.data.reshape(x3.shape), o
    return None, o


def _call(spec: LossSpec, form: str, args: dict[str, Any]) -> Any:
    x_obj, t_obj = args[spec.input_name], args["target"]
    if _arrays.device_of(x_obj) != "cpu" or _arrays.device_of(t_obj) != "cpu":
        return _call_device(spec, form, args)
    x = _arrays.as_host(x_obj, spec.input_name)
    _check_input(spec, x)
    t = _arrays.as_host(t_obj, "target")
    lay = _layout(spec, x.data.shape, args.get("axis", -1))
    opts = {o.name: o.check(o.name, args[o.name], lay.classes) for o in spec.options}
    reduction = args["reduction"]
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    soft = _target_kind(spec, t, lay, opts)
    backend = _backends.current()

    x3 = np.ascontiguousarray(x.data).reshape((lay.outer, lay.classes, lay.inner) if spec.rowwise else (-1,))
    if soft:
        target = np.ascontiguousarray(
            t.data if t.dtype == x.dtype else _arrays.from_float64(_arrays.to_float64(t.data, t.dtype), x.dtype)
        ).reshape(x3.shape)
    elif spec.rowwise:
        target = _class_target(t.data, lay, opts["ignore_index"], not backend.checks_class_targets)
    else:
        target = _elementwise_target(spec, t, x.dtype, not backend.checks_float_targets)

    need_grad = form != "loss"
    grad_scale, row_scale = 1.0, None
    if need_grad:
        if reduction == "none":
            grad_scale, row_scale = _row_scale(args["grad_output"], lay, x.dtype)
        else:
            grad_scale = _scalar(args["grad_output"], "grad_output")
    denominator = _mean_denominator(spec, target, soft, opts, lay) if reduction == "mean" else 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        grad_scale = float(np.float64(grad_scale) / denominator)
    grad_out, out = _grad_destination(args.get("out"), x, t, x3) if need_grad else (None, None)

    prob = _backends.Problem(
        spec=spec, x=x3, dtype=x.dtype, target=target, soft=soft, opts=opts, reduction=reduction,
        grad_scale=grad_scale, row_scale=row_scale, need_loss=form != "grad", need_grad=need_grad,
        grad_out=grad_out,
    )
    try:
        loss, grad = backend.run(prob)
    except _backends.ClassTargetOutOfRange:
        _class_target(t.data, lay, opts["ignore_index"])  # raises, naming the index in t's own shape
        raise
    except _backends.TargetOutOfDomain:
        raise_bad_target(spec, target.reshape(t.data.shape), x.dtype)  # index in the caller's shape

    results = []
    if form != "grad":
        ldtype = _arrays.loss_dtype(x.dtype)
        if reduction == "none":
            results.append(_arrays.wrap(np.asarray(loss).reshape(lay.loss_shape), "float64" if ldtype is np.float64 else "float32", x))
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                value = np.float64(loss) / denominator if reduction == "mean" else loss
            results.append(_arrays.wrap_scalar(float(value), ldtype, x))
    if need_grad:
        if out is not None:
            if grad_out is None:  # the caller's out is not C-contiguous: copy the result in
                out.data[...] = grad.reshape(x.data.shape)
            results.append(out.source)
        else:
            results.append(_arrays.wrap(grad.reshape(x.data.shape), x.dtype, x))
    return results[0] if len(results) == 1 else tuple(results)


def _call_device(spec: LossSpec, form: str, args: dict[str, Any]) -> Any:
    devices = {name: _arrays.device_of(args[name]) for name in (spec.input_name, "target")}
    if len(set(devices.values())) > 1:
        raise ValueError(f"{spec.input_name} and target are on different devices: {devices}")
    try:
        from . import _cuda_api
    except ImportError as exc:
        raise RuntimeError(
            f"{spec.input_name} is on {devices[spec.input_name]} but this fastloss has no CUDA "
            f"support ({exc}); data is never moved between devices silently"
        ) from None
    return _cuda_api.call(spec, form, args)


# ---- the public functions ----------------------------------------------------------------------


def _signature(spec: LossSpec, form: str) -> inspect.Signature:
    P = inspect.Parameter
    params = [P(spec.input_name, P.POSITIONAL_OR_KEYWORD), P("target", P.POSITIONAL_OR_KEYWORD)]
    if form != "loss":
        params += [P("grad_output", P.KEYWORD_ONLY, default=1.0), P("out", P.KEYWORD_ONLY, default=None)]
    params += [P(name, P.KEYWORD_ONLY, default=d) for name, d in spec.defaults().items()]
    return inspect.Signature(params)


_RETURNS = {
    "loss": "the loss: a scalar for reduction 'mean'/'sum', per-sample/element for 'none'",
    "grad": "d(loss)/d({x}) * grad_output, with {x}'s shape and dtype (written into `out` if given)",
    "with_grad": "(loss, grad) computed in one fused pass over the data",
}


def _docstring(spec: LossSpec, form: str) -> str:
    opts = "\n".join(f"    {o.name} (default {o.default!r}): {o.doc}" for o in spec.options)
    axis = "    axis (default -1): the class axis\n" if spec.rowwise else ""
    extra = (
        "    grad_output: scalar for 'mean'/'sum', the loss's shape (or a scalar) for 'none'\n"
        "    out: receives the gradient; out=input computes it in place\n"
        if form != "loss" else ""
    )
    return (
        f"{spec.name}{'' if form == 'loss' else '_' + form}: {_RETURNS[form].format(x=spec.input_name)}.\n\n"
        f"    {spec.formula}\n\n{opts}\n{axis}{extra}"
        "    reduction (default 'mean'): 'none' | 'mean' | 'sum'\n"
    )


def _make(spec: LossSpec, form: str):
    """A real Python function with the signature, so that argument binding costs what a plain call
    costs (``inspect.Signature.bind`` was a quarter of the per-call overhead on small inputs)."""
    sig = _signature(spec, form)
    name = spec.name if form == "loss" else f"{spec.name}_{form}"
    keywords = [p.name for p in sig.parameters.values() if p.kind is p.KEYWORD_ONLY]
    source = (
        f"def {name}({spec.input_name}, target, *, {', '.join(f'{k}=_d[{k!r}]' for k in keywords)}):\n"
        f"    try:\n"
        f"        return _call(_spec, _form, {{{', '.join(f'{p!r}: {p}' for p in sig.parameters)}}})\n"
        f"    except (ValueError, TypeError) as exc:\n"
        f"        raise type(exc)(f'{name}: {{exc}}') from None\n"
    )
    defaults = {k: sig.parameters[k].default for k in keywords}
    namespace = {"_call": _call, "_spec": spec, "_form": form, "_d": defaults}
    exec(source, namespace)  # noqa: S102 - the source is built from the registry's own identifiers
    loss_function = namespace[name]
    loss_function.__module__ = "fastloss"
    loss_function.__doc__ = _docstring(spec, form)
    return loss_function


FUNCTIONS: dict[str, Any] = {
    (spec.name if form == "loss" else f"{spec.name}_{form}"): _make(spec, form)
    for spec in LOSSES
    for form in FORMS
}
