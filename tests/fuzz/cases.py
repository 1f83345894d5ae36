"""One adversarial call per seed, built only from the public API and the loss table.

``build_case(seed)`` picks the seed's entry point (``targets.choose``: stable under added losses)
and draws the call from a random stream seeded by (seed, entry point name). The core losses' four
forms are built here; the LM heads and the torch/JAX adapters in ``adapter_cases``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

import fastloss
import ml_dtypes
import numpy as np
from fastloss import _backends

from . import targets

FLOAT_DTYPES = {"float32": np.float32, "float64": np.float64, "float16": np.float16,
                "bfloat16": ml_dtypes.bfloat16}
BAD_INPUT_DTYPES = (np.int32, np.bool_, np.complex64, np.object_, np.str_, np.longdouble, np.uint8)
INT_TARGETS = (np.int64, np.int32, np.int16, np.int8, np.uint8, np.uint16, np.uint32, np.uint64)
# Positive option values at the ends of every range: float32's and float64's maxima and minimum
# normals, subnormals; drawn for temperatures, thresholds, exponents, margins (signed for these).
EXTREME_POSITIVE = (1e-300, 5e-324, 1e-310, 1.1754943508222875e-38, 1e-40, 1e-4, 1e4, 1e30, 3.4e38, 1e300,
                    1.7976931348623157e308)


@dataclass
class Case:
    seed: int
    func: str  # public function name
    spec: Any
    dtype: str
    isa: str | None
    threads: int
    build: Callable[[], tuple[tuple, dict]]  # fresh (args, kwargs) on every call
    notes: list[str] = field(default_factory=list)
    kind: str = "core"  # targets.EntryPoint.kind: which comparison applies (compare.outcome)

    def describe(self) -> str:
        return f"seed={self.seed} {self.func} dtype={self.dtype} isa={self.isa} threads={self.threads} " + "; ".join(
            self.notes)


def _finite_max(dtype) -> float:
    return float(ml_dtypes.finfo(dtype).max) if dtype is ml_dtypes.bfloat16 else float(np.finfo(dtype).max)


def _special_values(rng, x: np.ndarray, dtype, notes: list[str], name: str = "x") -> None:
    """Sprinkle adversarial values into x (float64 before rounding to the dtype)."""
    if x.size == 0:
        return
    kind = rng.integers(0, 10)
    flat = x.reshape(-1)
    n = max(1, int(rng.integers(1, 1 + max(1, flat.size // 4))))
    idx = rng.integers(0, flat.size, n)
    big = _finite_max(dtype)
    choices = {
        0: ("nan", np.nan), 1: ("+inf", np.inf), 2: ("-inf", -np.inf), 3: ("max", big), 4: ("-max", -big),
        5: ("huge", big / 4), 6: ("subnormal", 1e-310 if dtype is np.float64 else 1e-40), 7: ("zero", -0.0),
    }
    if kind in choices:
        what, value = choices[kind]
        if kind == 6 and rng.random() < 0.5:
            what, value = "min normal", float(np.finfo(np.float64 if dtype is np.float64 else np.float32).tiny)
        flat[idx] = value
        notes.append(f"{name} has {what}")
    elif kind == 8:
        flat[:] = rng.choice([1.0, 2.0, big], 1)[0]
        notes.append(f"{name} all tied")
    elif kind == 9:
        x *= float(rng.choice([1e-3, 30.0, 1e4]))
        notes.append(f"{name} scaled")


def _array_like(rng, base: np.ndarray, notes: list[str], name: str, allow_weird: bool = True) -> Any:
    """base in a random memory layout: C order, transposed, strided, negative strides, Fortran,
    misaligned, read-only, broadcast, or a list."""
    kind = int(rng.integers(0, 12)) if allow_weird else 0
    if kind == 1 and base.ndim >= 2:  # a transposed view of the transposed data: same values
        notes.append(f"{name} via transpose")
        return np.ascontiguousarray(np.swapaxes(base, -1, -2)).swapaxes(-1, -2)
    if kind == 2 and base.ndim >= 1:
        notes.append(f"{name} strided")
        big = np.repeat(base, 2, axis=-1)
        return big[..., ::2]
    if kind == 3 and base.ndim >= 1:
        notes.append(f"{name} negative stride")
        return np.flip(np.ascontiguousarray(np.flip(base, -1)), -1)
    if kind == 4:
        notes.append(f"{name} Fortran order")
        return np.asfortranarray(base)
    if kind in (5, 6) and base.dtype.kind != "O":
        off = int(rng.integers(1, base.itemsize)) if base.itemsize > 1 else 0
        notes.append(f"{name} misaligned by {off}")
        buf = bytearray(base.nbytes + off)
        arr = np.frombuffer(buf, dtype=base.dtype, offset=off, count=base.size).reshape(base.shape)
        arr[...] = base
        return arr
    if kind == 7:
        notes.append(f"{name} read-only")
        arr = base.copy()
        arr.flags.writeable = False
        return arr
    if kind == 8 and base.ndim >= 1 and base.shape[0] > 1:
        notes.append(f"{name} broadcast rows")
        return np.broadcast_to(base[:1], base.shape)
    if kind == 9 and base.dtype.kind in "iufb" and base.dtype != ml_dtypes.bfloat16 and base.size < 64:
        notes.append(f"{name} as list")
        return base.tolist()
    return base.copy()


def _shape(rng, rowwise: bool, notes: list[str]) -> tuple[tuple[int, ...], int]:
    """(shape, axis)."""
    ndim = int(rng.choice([1, 2, 2, 2, 3, 4])) if rowwise else int(rng.choice([0, 1, 1, 2, 3]))
    dims = [int(rng.choice([1, 2, 3, 5, 8, 16, 17, 33, 40])) for _ in range(ndim)]
    if rng.random() < 0.05 and ndim:
        dims[int(rng.integers(0, ndim))] = 0
        notes.append("empty dim")
    if rowwise and ndim and rng.random() < 0.15:
        dims[-1] = int(rng.choice([1, 31, 32, 64, 129, 300]))
    axis = -1
    if rowwise and ndim:
        axis = int(rng.integers(-ndim, ndim)) if rng.random() < 0.4 else -1
    if np.prod(dims) > 20000:
        dims = [min(d, 16) for d in dims]
    return tuple(dims), axis


_STRING_CHOICES: dict[tuple[str, str], tuple[str, ...]] = {}


def _string_choices(spec, name: str, default: str) -> tuple[str, ...]:
    """The allowed values of a string option, from the front end's own error message."""
    key = (spec.name, name)
    if key not in _STRING_CHOICES:
        found = (default,)
        try:
            x = np.zeros((2, 3), np.float32)
            t = np.zeros(2, np.int64) if spec.rowwise else np.zeros((2, 3), np.float32)
            with fastloss.use_backend("numpy"):
                getattr(fastloss, spec.name)(x, t, **{name: "__no_such_value__"})
        except Exception as exc:  # noqa: BLE001 - only the message is wanted
            quoted = re.findall(r"'([A-Za-z_][A-Za-z0-9_]*)'", str(exc))
            found = tuple(dict.fromkeys([default] + [q for q in quoted if q != "__no_such_value__"]))
        _STRING_CHOICES[key] = found
    return _STRING_CHOICES[key]


ADVERSARIAL_SCALARS = (0.0, -1.0, 1e-30, 1e30, np.inf, -np.inf, np.nan, 10**400, -(10**30), True, "1.0", None,
                       np.float32(0.5), np.array(0.5), np.array([0.5, 0.5]), 1 + 2j, [1.0])


def _option_value(rng, spec, opt, classes: int, notes: list[str]) -> Any:
    d = opt.default
    name = opt.name
    r = rng.random()
    if r < 0.4:
        return d
    if r < 0.43:
        v = ADVERSARIAL_SCALARS[int(rng.integers(0, len(ADVERSARIAL_SCALARS)))]
        notes.append(f"{name}={v!r:.40}")
        return v
    if name == "ignore_index":
        v = int(rng.choice([-100, -1, 0, 1, classes - 1, classes, 2**31, 2**53 + 1, 2**63 - 1, -(2**63), 2**70]))
        notes.append(f"ignore_index={v}")
        return v
    if isinstance(d, bool):
        return bool(rng.integers(0, 2))
    if isinstance(d, str):
        return str(rng.choice(_string_choices(spec, name, d)))
    if d is None or name in ("weight", "alpha", "pos_weight"):
        k = rng.integers(0, 4)
        if k == 0:
            return None
        if k == 1 and name != "weight":
            return float(rng.uniform(0.05, 0.95))
        vec = rng.uniform(0.0, 3.0, classes)
        if rng.random() < 0.1:
            vec = vec.astype(np.float32)
        if rng.random() < 0.1 and classes:
            vec[0] = 0.0
        notes.append(f"{name} per-class")
        return vec
    if isinstance(d, (int, float)) and not isinstance(d, bool) and r > 0.88 and opt.spec.type == "f64":
        v = float(rng.choice(EXTREME_POSITIVE))  # the ends of the float ranges
        if opt.spec.check == "any_float" and rng.random() < 0.5:
            v = -v
        notes.append(f"{name}={v!r}")
        return v
    if isinstance(d, (int, float)):
        v = float(rng.choice([0.0, 0.1, 0.5, 1.0, 2.0, 3.0, 5.0, 0.3, 1e-4]))
        if isinstance(d, int) and not isinstance(d, bool):
            return int(v) if v == int(v) else d
        return v
    return d


def _class_target(rng, shape_wo_axis, classes: int, ignore: Any, notes: list[str]) -> np.ndarray:
    dt = INT_TARGETS[int(rng.integers(0, len(INT_TARGETS)))] if rng.random() < 0.3 else np.int64
    hi = min(classes, int(np.iinfo(dt).max) + 1)
    t = rng.integers(0, max(hi, 1), size=shape_wo_axis).astype(dt)
    r = rng.random()
    if t.size and r < 0.1 and isinstance(ignore, (int, np.integer)) and not isinstance(ignore, bool):
        try:
            t.reshape(-1)[0] = np.array(ignore).astype(dt)
            notes.append("a target == ignore_index")
        except (OverflowError, ValueError):
            pass
    elif t.size and r < 0.15:
        bad = int(rng.choice([-1, classes, -100, 2**40]))
        try:
            t.reshape(-1)[-1] = bad
            notes.append(f"target {bad}")
        except OverflowError:
            pass
    elif t.size and r < 0.18 and dt == np.uint64:
        t.reshape(-1)[0] = np.uint64(2**64 - 100)
        notes.append("uint64 target >= 2^63")
    if r > 0.97:
        notes.append("float class target")
        t = t.astype(np.float64)
    return t


def _pointwise_target(rng, spec, shape, dtype, notes: list[str]) -> np.ndarray:
    values = getattr(spec, "target_values", None)
    lo_hi = getattr(spec, "target_range", None)
    r = rng.random()
    if values is not None and r < 0.5:
        t = rng.choice(np.array(values, dtype=np.float64), size=shape)
        k = rng.integers(0, 3)
        if k == 1 and all(float(v).is_integer() for v in values):
            t = t.astype(np.int64 if min(values) < 0 else np.int8)
        elif k == 2 and set(values) <= {0.0, 1.0}:
            t = t.astype(bool)
        else:
            t = t.astype(dtype)
    elif lo_hi is not None:
        t = rng.uniform(lo_hi[0], min(lo_hi[1], lo_hi[0] + 2.0), size=shape).astype(dtype)
    else:
        t = rng.standard_normal(shape).astype(dtype)
    if np.size(t) and rng.random() < 0.08 and t.dtype.kind == "f":
        v = float(rng.choice([np.nan, np.inf, -0.5, 1.5, 1e30]))
        t.reshape(-1)[0] = v
        notes.append(f"target {v}")
    elif t.dtype.kind == "f" and rng.random() < 0.15:
        _special_values(rng, t, FLOAT_DTYPES.get(str(t.dtype), np.float64), notes, "target")
    return t


def build_case(seed: int) -> Case:
    ep = targets.choose(seed)
    if ep.kind != "core":
        from .adapter_cases import build_adapter_case

        return build_adapter_case(seed, ep)
    rng = targets.case_rng(seed, ep.name)
    spec = next(s for s in fastloss.LOSSES if s.name == ep.loss)
    form = ep.form
    func = ep.name
    dtype = str(rng.choice(list(FLOAT_DTYPES)))
    isas = _backends._C.available_isas() if _backends._C is not None else [None]
    isa = isas[int(rng.integers(0, len(isas)))]
    threads = int(rng.choice([1, 2]))
    case_seed = int(rng.integers(0, 2**63))
    case = Case(seed, func, spec, dtype, isa, threads, build=lambda: ((), {}))

    def build() -> tuple[tuple, dict]:
        r = np.random.default_rng(case_seed)
        notes: list[str] = []
        shape, axis = _shape(r, spec.rowwise, notes)
        np_dtype = FLOAT_DTYPES[dtype]
        x = r.standard_normal(shape) * float(r.choice([1.0, 3.0]))
        _special_values(r, x, np_dtype, notes)
        x = x.astype(np_dtype)
        if r.random() < 0.03:
            bad = BAD_INPUT_DTYPES[int(r.integers(0, len(BAD_INPUT_DTYPES)))]
            x = x.astype(np.float64).astype(bad)
            notes.append(f"input dtype {np.dtype(bad)}")
        classes = shape[axis] if (spec.rowwise and len(shape)) else (shape[-1] if len(shape) else 1)
        opts = {o.name: _option_value(r, spec, o, classes, notes) for o in spec.options}
        kwargs = {k: v for k, v in opts.items() if not _is_default(v, spec_default(spec, k))}
        if spec.rowwise and axis != -1:
            kwargs["axis"] = axis
        if spec.rowwise:
            soft = getattr(spec, "soft_targets", False) and r.random() < 0.3
            if spec.logit_targets and len(shape):  # a teacher's logits, of the input's shape
                t = 2.0 * r.standard_normal(shape)
                notes.append("logit target")
                if r.random() < 0.3:
                    _special_values(r, t, np_dtype, notes, "target")
                t = t.astype(np_dtype)
            elif soft and len(shape):
                p = r.random(shape)
                t = (p / np.maximum(p.sum(axis=axis, keepdims=True), 1e-300)).astype(np_dtype)
                kwargs.pop("ignore_index", None) if r.random() < 0.8 else None
                notes.append("soft target")
            else:
                wo = tuple(d for i, d in enumerate(shape) if i != (axis % len(shape))) if len(shape) else ()
                t = _class_target(r, wo, classes, opts.get("ignore_index", -100), notes)
                if r.random() < 0.02:
                    t = np.array(7)
                    notes.append("0-d target")
        else:
            t = _pointwise_target(r, spec, shape, np_dtype, notes)
        if form == "_grad_hess":  # unreduced: sample_weight and an out pair instead
            _grad_hess_kwargs(r, kwargs, spec, shape, axis, np_dtype, notes)
        else:
            reduction = str(r.choice(["none", "mean", "sum", "mean", "none"]))
            if r.random() < 0.02:
                reduction = "batchmean" if r.random() < 0.5 else "avg"
            if reduction != "mean" or r.random() < 0.3:
                kwargs["reduction"] = reduction
            if form:
                _grad_kwargs(r, kwargs, reduction, spec, shape, axis, np_dtype, notes)
        xa = _array_like(r, x, notes, "x") if isinstance(x, np.ndarray) else x
        ta = _array_like(r, t, notes, "target") if isinstance(t, np.ndarray) else t
        if isinstance(kwargs.get("out"), str):
            kwargs["out"] = xa
        elif isinstance(kwargs.get("out"), tuple) and any(isinstance(o, str) for o in kwargs["out"]):
            kwargs["out"] = tuple(xa if isinstance(o, str) else o for o in kwargs["out"])
        case.notes = notes
        return (xa, ta), kwargs

    case.build = build
    build()  # fills case.notes
    return case


def _is_default(value: Any, default: Any) -> bool:
    if value is default:
        return True
    return type(value) is type(default) and not isinstance(value, np.ndarray) and value == default


def spec_default(spec, name: str) -> Any:
    for o in spec.options:
        if o.name == name:
            return o.default
    return None


def _grad_kwargs(r, kwargs, reduction, spec, shape, axis, np_dtype, notes) -> None:
    k = r.integers(0, 16)
    loss_shape = (tuple(d for i, d in enumerate(shape) if i != axis % len(shape)) if spec.rowwise and len(shape)
                  else shape)
    if k == 1:
        kwargs["grad_output"] = float(r.choice([0.0, -2.5, 1e30, np.inf, -np.inf, np.nan, 1e-310, 1e300, -1.7e308]))
    elif k == 2:
        kwargs["grad_output"] = [10**400, 1 + 2j, "2", None, True, np.float16(3)][int(r.integers(0, 6))]
    elif k in (3, 4) and reduction == "none":
        g = r.standard_normal(loss_shape)
        if r.random() < 0.3 and g.size:
            g.reshape(-1)[0] = float(r.choice([np.inf, np.nan, 0.0]))
        g = g.astype(r.choice([np.float64, np.float32, np.float16]))
        if r.random() < 0.1:
            g = g.astype(np.complex64) if r.random() < 0.5 else g.astype(str)
        kwargs["grad_output"] = _array_like(r, g, notes, "grad_output")
    elif k == 5:
        kwargs["grad_output"] = np.ones((2, 2))
    if k != 0 and "grad_output" in kwargs:
        notes.append(f"grad_output={kwargs['grad_output']!r:.40}")
    j = r.integers(0, 14)
    if j == 1:
        kwargs["out"] = "x"
        notes.append("out=x")
    elif j in (2, 3):
        kwargs["out"] = _array_like(r, np.zeros(shape, np_dtype), notes, "out")
    elif j == 4:
        if r.random() < 0.5:
            kwargs["out"] = np.zeros(shape, np.float64 if np_dtype is not np.float64 else np.float32)
            notes.append("out wrong dtype")
        else:
            kwargs["out"] = np.zeros(shape + (1,), np_dtype)
            notes.append("out wrong shape")


def _loss_shape(spec, shape, axis) -> tuple[int, ...]:
    return (tuple(d for i, d in enumerate(shape) if i != axis % len(shape)) if spec.rowwise and len(shape)
            else shape)


def _grad_hess_kwargs(r, kwargs, spec, shape, axis, np_dtype, notes) -> None:
    """sample_weight (one per loss element, extreme values included) and out=(grad, hess)."""
    k = r.integers(0, 10)
    loss_shape = _loss_shape(spec, shape, axis)
    if k in (1, 2, 3):
        w = r.uniform(0.0, 3.0, loss_shape)
        if r.random() < 0.4:
            _special_values(r, w, np_dtype, notes, "sample_weight")
        kwargs["sample_weight"] = _array_like(r, w.astype(r.choice([np.float64, np.float32])), notes,
                                              "sample_weight")
        notes.append("sample_weight")
    elif k == 4:
        kwargs["sample_weight"] = [np.ones(3), "w", 2.0, np.ones(loss_shape + (2,))][int(r.integers(0, 4))]
        notes.append(f"sample_weight={kwargs['sample_weight']!r:.40}")
    j = r.integers(0, 12)
    if j in (1, 2, 3):
        kwargs["out"] = tuple(_array_like(r, np.zeros(shape, np_dtype), notes, f"out[{i}]") for i in range(2))
    elif j == 4:
        kwargs["out"] = ("x", np.zeros(shape, np_dtype))
        notes.append("out=(x, fresh)")
    elif j == 5:
        o = np.zeros(shape, np_dtype)
        kwargs["out"] = (o, o)
        notes.append("out=(o, o)")
    elif j == 6:
        kwargs["out"] = [np.zeros(shape, np.float64 if np_dtype is not np.float64 else np.float32),
                         np.zeros(shape + (1,), np_dtype), np.zeros(shape, np_dtype)][int(r.integers(0, 3))]
        notes.append("out not a pair of the input's shape and dtype")
