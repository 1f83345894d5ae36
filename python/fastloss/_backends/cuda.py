"""The CUDA backend: the front end's stages for CuPy arrays and CUDA torch tensors, whose results
are arrays of the same library on the same device, computed on the caller's current stream.

The front end (``_api._call``) validates with ``_problem`` as for CPU data; this module supplies
the device-specific stages: ``adapt`` (describe the caller's CUDA array), ``options`` (class
vectors may be device arrays) and ``run`` (buffers, device-side "mean", the kernel job). The loss's
kernel parameters come from the spec (``LossSpec.kernel_params``). Buffers are allocated and
converted by the caller's library, on its device and current stream; ``fastloss._cuda`` enqueues
the kernels on that stream and returns.

No host synchronisation in the hot path:

- A "mean" whose denominator depends on the targets (``sum w_t`` over non-ignored rows, or their
  count) is computed on the device by a small kernel and read there by the loss kernels;
  ``grad_output`` may be a device scalar. The reduced loss comes back as a 0-d device array.
- Bad targets (a class index out of range that is not ``ignore_index``, a point-wise target
  outside its domain) cannot raise at the faulty call without waiting for the kernel. The kernel
  writes NaN into that row's loss and gradient and records the loss and a bad flat index in
  pinned host memory; **the next fastloss CUDA call raises ValueError** for it, as does
  ``check_errors()``, which first synchronises the devices fastloss has used. Setting
  ``FASTLOSS_CUDA_SYNC_CHECKS=1`` makes every call wait for its stream and raise at once, with
  the CPU path's exact message (for debugging; it costs a synchronisation per call).
- ``FASTLOSS_CUDA_CLUSTER=0`` turns off the Hopper thread-block-cluster plan for long rows (the
  two-kernel split plan runs instead); tests use it to cover both.
- Class weights given as device arrays are not checked for finiteness (that would need a
  synchronisation); host weights are checked as on the CPU and uploaded.

Data is never moved between devices: every array argument must be on the input's device and
from the input's library; plain Python scalars and host class-weight vectors are allowed.
"""

from __future__ import annotations

import importlib
import numbers
import os
from typing import Any

import numpy as np

from .. import _arrays, _problem, _spec
from .._arrays import device as ca
from .._registry import LOSSES, LossSpec, check_broadcast_shape
from .cpu import check_table

try:
    _cuda = importlib.import_module("fastloss._cuda")

    _CUDA_ERROR = None
except ImportError as exc:  # a CPU-only build: the front end says so when CUDA data comes in
    _cuda = None
    _CUDA_ERROR = exc
if _cuda is not None:
    check_table(_cuda, "_cuda")

_REDUCTION_CODES = {"none": 0, "sum": 1, "mean": 2, "batchmean": 2}  # 2: divide by the denominator
_used_devices: set[int] = set()


def _sync_checks() -> bool:
    return os.environ.get("FASTLOSS_CUDA_SYNC_CHECKS", "") not in ("", "0")


def describe() -> str:
    """One line for show_config: how the CUDA module was built and which devices it sees."""
    if _cuda is None:
        return f"not built ({_CUDA_ERROR})"
    if getattr(_cuda, "emulated", False):
        return "emulated on the host CPU (a test build, FASTLOSS_CUDA_EMULATOR=ON: csrc/cuda/emu); no GPU is used"
    v = _cuda.versions()
    runtime = f"{v['runtime'] // 1000}.{v['runtime'] % 1000 // 10}"
    devices = _cuda.device_names()
    return (
        f"built (architectures {v['architectures']}, CUDA runtime {runtime}); "
        f"{len(devices)} device(s){': ' + ', '.join(devices) if devices else ''}"
    )


def check_errors() -> None:
    """Wait for the devices fastloss has used, then raise ValueError for any bad target a kernel
    reported since the last check (see the module docstring)."""
    if _cuda is None:
        return
    for device in sorted(_used_devices):
        _cuda.synchronize(device)
    _raise_reported()


def _raise_reported() -> None:
    reported = _cuda.take_error()
    if reported is not None:
        loss_id, index = reported
        rowwise = 0 <= loss_id < len(LOSSES) and LOSSES[loss_id].rowwise
        name = LOSSES[loss_id].name if 0 <= loss_id < len(LOSSES) else f"loss #{loss_id}"
        what = "a class index out of range that is not ignore_index" if rowwise else "a target outside its domain"
        raise ValueError(
            f"an earlier CUDA call of {name} found {what} (flat index {index} of its "
            f"{'rows' if rowwise else 'elements'}); its loss and gradient hold NaN there. "
            "Set FASTLOSS_CUDA_SYNC_CHECKS=1 to raise at the faulty call."
        )


# ---- preparing the device problem ---------------------------------------------------------------


def _same_place(a: ca.DeviceArray, x: ca.DeviceArray, name: str, input_name: str) -> None:
    if a.lib is not x.lib:
        raise TypeError(f"{name} is a {a.lib.name} array but {input_name} is a {x.lib.name} array")
    if a.device != x.device:
        raise ValueError(f"{name} is on cuda:{a.device} but {input_name} is on cuda:{x.device}")


def _device_arg(value: Any, name: str, x: ca.DeviceArray, input_name: str) -> ca.DeviceArray | None:
    """value as a DeviceArray on x's device and library; None for host values."""
    if not ca.is_device_array(value):
        return None
    d = ca.describe(value, name)
    _same_place(d, x, name, input_name)
    return d


def _options(spec: LossSpec, args: dict, lay: _problem.Layout, x: ca.DeviceArray) -> dict:
    """Validated options, class vectors as device arrays of the math dtype."""
    math = "float64" if x.dtype == "float64" else "float32"
    opts = {}
    for o in spec.options:
        value = args[o.name]
        vector_option = o.spec.type in _spec.VECTOR_TYPES
        d = _device_arg(value, o.name, x, spec.input_name) if vector_option else None
        if d is not None and o.spec.type == "broadcast_vector":  # per-element: the input's shape or (C,)
            if not (d.is_float or d.data.dtype.kind in "iub"):
                raise TypeError(f"{o.name} must hold real numbers, got dtype {d.dtype}")
            check_broadcast_shape(o.name, np.empty(d.shape, dtype=np.uint8), lay.shape, spec.input_name)
            opts[o.name] = x.lib.convert(d, math)
        elif d is not None:
            kind = "f" if d.is_float else d.data.dtype.kind
            if kind not in "fiu":
                raise TypeError(f"{o.name} must hold real numbers, got dtype {d.dtype}")
            if d.shape != (lay.classes,):
                raise ValueError(f"{o.name} must have shape ({lay.classes},) (one value per class), got {d.shape}")
            opts[o.name] = x.lib.convert(d, math)
        else:
            checked = o.check(o.name, value, lay.classes)
            if o.spec.type == "broadcast_vector" and isinstance(checked, np.ndarray):
                check_broadcast_shape(o.name, checked, lay.shape, spec.input_name)
                checked = np.ascontiguousarray(checked)  # the kernel reads it flat, in C order
            opts[o.name] = x.lib.upload(checked, math, x.device) if isinstance(checked, np.ndarray) else checked
    return opts


def _placeholders(opts: dict) -> dict:
    """opts with device vectors replaced by empty NumPy arrays: what LossSpec.kernel_params and
    the host denominators read (the vectors themselves travel as device pointers)."""
    return {k: np.empty(0) if not (v is None or isinstance(v, (numbers.Real, str, bool))) else v
            for k, v in opts.items()}


def _target(spec: LossSpec, t: ca.DeviceArray, x: ca.DeviceArray, soft: bool) -> Any:
    if spec.rowwise and not soft:
        return x.lib.convert(t, "int64")
    if not spec.rowwise and not t.is_float and spec.target_values is None:  # as _problem.elementwise_target
        raise TypeError(f"target must be a floating-point array for {spec.name}, got dtype {t.dtype}")
    return x.lib.convert(t, x.dtype)  # soft targets and point-wise targets: the input's dtype


def layout_fields(spec: LossSpec, lay: _problem.Layout, x: ca.DeviceArray, target: Any, weight: Any, opts: dict,
                  soft: bool) -> dict:
    """The kernel job's fields that say where the data is: rows and class vector, or the elements,
    their target domain and per-element vectors (shared by every form)."""
    if spec.rowwise:
        return {"outer": lay.outer, "classes": lay.classes, "inner": lay.inner, "class_weight": _ptr(weight),
                "target": 0 if soft else _ptr(target), "soft_target": _ptr(target) if soft else 0,
                "allow_cluster": int(os.environ.get("FASTLOSS_CUDA_CLUSTER", "1") != "0")}
    vectors = [opts[name] for name in spec.broadcast_names]
    device_vector = [v is not None and not isinstance(v, numbers.Real) for v in vectors]
    return dict(n=x.size, target=_ptr(target), **_target_domain(spec, opts),
                vectors=[_ptr(v) if dv else 0 for v, dv in zip(vectors, device_vector)],
                vector_periods=[int(np.prod(v.shape)) if dv else 0 for v, dv in zip(vectors, device_vector)])


def _target_domain(spec: LossSpec, opts: dict) -> dict:
    if spec.rowwise or not spec.checks_domain(opts):
        return {"target_lo": 0.0, "target_hi": 0.0, "target_integral": 0, "check_target": 0}
    lo, hi = spec.target_range if spec.target_range is not None else (min(spec.target_values), max(spec.target_values))
    return {"target_lo": float(lo), "target_hi": float(hi), "target_integral": int(spec.target_range is None),
            "check_target": 1}


def _grad_scale(args: dict, reduction: str, lay: _problem.Layout, x: ca.DeviceArray, math: str) -> tuple[float, Any, Any]:
    """(host factor, device scalar grad_output or None, per-loss device scales or None)."""
    go = args["grad_output"]
    d = _device_arg(go, "grad_output", x, "the input")
    if d is None:
        if reduction == "none":
            host, row = _problem.row_scale(go, lay, x.dtype)
            if row is not None:
                raise ValueError(
                    f"grad_output is a host array but the input is on cuda:{x.device}; "
                    "fastloss never moves data between devices"
                )
            return host, None, None
        return _problem.scalar(go, "grad_output"), None, None
    if d.size == 1 and (reduction != "none" or d.shape == ()):
        return 1.0, x.lib.convert(d, "float64"), None
    if reduction != "none":
        raise ValueError(f"grad_output must be a scalar for this reduction, got shape {d.shape}")
    if d.shape != lay.loss_shape:
        raise ValueError(f"grad_output must have the loss's shape {lay.loss_shape}, got {d.shape}")
    return 1.0, None, x.lib.convert(d, math)


def _grad_destination(out: Any, x: ca.DeviceArray, t: ca.DeviceArray, input_name: str):
    """(the caller's out as a DeviceArray or None, True when out is the input itself)."""
    if out is None:
        return None, False
    o = _device_arg(out, "out", x, input_name)
    if o is None:
        raise ValueError(f"out must be on the input's device cuda:{x.device}, got a host array")
    if o.dtype != x.dtype or o.shape != x.shape:
        raise ValueError(
            f"out must have the input's shape {x.shape} and dtype {x.dtype}, got shape {o.shape} and dtype {o.dtype}"
        )
    if o.same_array(x):
        return o, True
    for other, name in ((x, "the input"), (t, "target")):
        if o.overlaps(other):
            raise ValueError(f"out overlaps {name}; only out=input (the very same array) may alias")
    return o, False


def _ptr(a: Any) -> int:
    if a is None:
        return 0
    return a.data_ptr() if hasattr(a, "data_ptr") else a.data.ptr


class _Stages:
    """The front end's stages for CUDA data (see _api._call)."""

    def __init__(self, spec: LossSpec, device: str):
        if _cuda is None:
            raise RuntimeError(
                f"{spec.input_name} is on {device} but this fastloss has no CUDA support ({_CUDA_ERROR}); "
                "data is never moved between devices silently. GPU users build fastloss from source with "
                "nvcc on PATH (see the README's CUDA section)"
            )
        _raise_reported()
        self._x: ca.DeviceArray | None = None

    def adapt(self, obj: Any, name: str) -> ca.DeviceArray:
        a = ca.describe(obj, name)
        if self._x is None:
            self._x = a
        else:
            _same_place(a, self._x, name, "the input")
        return a

    @staticmethod
    def options(spec: LossSpec, args: dict, lay: _problem.Layout, x: ca.DeviceArray) -> dict:
        return _options(spec, args, lay, x)

    def run(self, *args: Any) -> Any:
        return _run(*args)

    def run_grad_hess(self, *args: Any) -> Any:
        from .cuda_grad_hess import run_grad_hess

        return run_grad_hess(*args)


def stages(spec: LossSpec, device: str) -> _Stages:
    return _Stages(spec, device)


def _run(spec: LossSpec, form: str, args: dict[str, Any], x: ca.DeviceArray, t: ca.DeviceArray,
         lay: _problem.Layout, opts: dict, reduction: str, soft: bool) -> Any:
    """Run one validated loss call on CUDA inputs; see the module docstring for the contract."""
    math = "float64" if x.dtype == "float64" else "float32"
    placeholders = _placeholders(opts)
    need_loss, need_grad = form != "grad", form != "loss"

    lib, device = x.lib, x.device
    x_c = lib.convert(x, x.dtype)
    target = _target(spec, t, x, soft)
    host_scale, numerator, row_scale = (1.0, None, None)
    if need_grad:
        host_scale, numerator, row_scale = _grad_scale(args, reduction, lay, x, math)
    out, in_place = _grad_destination(args.get("out"), x, t, spec.input_name) if need_grad else (None, False)

    host_den, device_den = 1.0, 0
    if reduction == "mean":
        if spec.mean_over == "elements" or soft:
            host_den = _problem.mean_denominator(spec, t, soft, placeholders, lay)
        else:
            device_den = 2 if spec.mean_over == "target_weight" and opts.get("weight") is not None else 1
            host_den = float("nan")
    elif reduction == "batchmean":
        host_den = _problem.reduction_denominator(spec, reduction, t, soft, placeholders, lay)

    grad = None
    if need_grad:
        if in_place and x.contiguous:
            grad = out.source  # the kernels read each row (or element) before overwriting it
        elif out is not None and out.contiguous:
            grad = out.source
        else:
            grad = lib.empty(x.shape, x.dtype, device)
    ldtype = "float64" if x.dtype == "float64" else "float32"
    loss = None
    if need_loss:
        loss = lib.empty(lay.loss_shape if reduction == "none" else (), ldtype, device)

    weight, params = spec.kernel_params(placeholders)
    if weight is not None:
        weight = next(opts[name] for name, v in placeholders.items() if v is weight)
    if reduction in ("mean", "batchmean") and not device_den:
        with np.errstate(divide="ignore", invalid="ignore"):
            host_scale = float(np.float64(host_scale) / host_den)  # as the CPU path folds it
    job = {
        "device": device, "stream": lib.stream(device), "loss_id": spec.cpp_id, "dtype": _arrays.DTYPE_CODES[x.dtype],
        "x": _ptr(x_c), "grad": _ptr(grad), "params": params,
        "scale_host": host_scale, "scale_numerator": _ptr(numerator), "row_scale": _ptr(row_scale),
        "loss": _ptr(loss) if reduction == "none" else 0,
        "reduction": _REDUCTION_CODES[reduction], "host_denominator": float(host_den),
        "device_denominator": device_den, "total": _ptr(loss) if reduction != "none" else 0,
    }
    job.update(layout_fields(spec, lay, x, target, weight, opts, soft))
    (_cuda.rowwise if spec.rowwise else _cuda.pointwise)(job)
    _used_devices.add(device)
    if _sync_checks():
        lib.synchronize(device)
        if _cuda.take_error() is not None:
            _raise_exact_target_error(spec, t, lay, opts, x.dtype, soft)

    results = []
    if need_loss:
        results.append(loss)
    if need_grad:
        if out is not None and grad is not out.source:
            lib.copy_into(out.source, grad)
            grad = out.source
        results.append(grad)
    return results[0] if len(results) == 1 else tuple(results)


def _raise_exact_target_error(spec: LossSpec, t: ca.DeviceArray, lay, opts: dict, dtype: str, soft: bool) -> None:
    """Error path only: re-check the targets on the host to raise the CPU path's exact message."""
    host = _arrays.as_host(t.lib.to_host(t.source), "target")
    if spec.rowwise and not soft:
        _problem.class_target(host.data, lay, opts["ignore_index"])
    elif not spec.rowwise:
        _problem.elementwise_target(spec, host, dtype, True, opts)
    raise ValueError(f"{spec.name}: a CUDA kernel found a target out of range")
