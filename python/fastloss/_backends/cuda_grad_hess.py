"""The ``*_grad_hess`` form on CUDA data (csrc/cuda/grad_hess.cu): the job of ``cuda._run`` with a
Hessian pointer, sample weights as the per-loss scale and no reduction. Not run on a GPU yet."""

from __future__ import annotations

from typing import Any

from .. import _arrays, _problem
from .._registry import LossSpec
from . import cuda


def _weights(value: Any, lay: _problem.Layout, x, math: str) -> Any:
    if value is None:
        return None
    d = cuda._device_arg(value, "sample_weight", x, "the input")
    if d is None:
        raise ValueError(f"sample_weight must be on the input's device cuda:{x.device}; "
                         "fastloss never moves data between devices")
    if d.shape != lay.loss_shape:
        raise ValueError(f"sample_weight must have the loss's shape {lay.loss_shape}, got {d.shape}")
    return x.lib.convert(d, math)


def _outputs(out: Any, x, t) -> tuple[Any, Any] | None:
    if out is None:
        return None
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise ValueError(f"out must be a pair (grad, hess) of arrays, got {type(out).__name__}")
    pair = []
    for name, o in zip(("out[0]", "out[1]"), out):
        d = cuda._device_arg(o, name, x, "the input")
        if d is None:
            raise ValueError(f"{name} must be on the input's device cuda:{x.device}, got a host array")
        if d.dtype != x.dtype or d.shape != x.shape:
            raise ValueError(f"{name} must have the input's shape {x.shape} and dtype {x.dtype}, "
                             f"got shape {d.shape} and dtype {d.dtype}")
        for other, what in ((x, "the input"), (t, "target")):
            if d.overlaps(other):
                raise ValueError(f"{name} overlaps {what}; grad_hess cannot run in place")
        pair.append(d)
    if pair[0].overlaps(pair[1]):
        raise ValueError("out[0] and out[1] overlap")
    return pair[0], pair[1]


def run_grad_hess(spec: LossSpec, args: dict, x, t, lay: _problem.Layout, opts: dict, soft: bool) -> Any:
    if not spec.native_grad_hess:
        raise NotImplementedError(
            f"{spec.name}_grad_hess has no CUDA kernel (it runs the NumPy reference on CPU data); data is never "
            "moved between devices")
    math = "float64" if x.dtype == "float64" else "float32"
    placeholders = cuda._placeholders(opts)
    lib, device = x.lib, x.device
    x_c = lib.convert(x, x.dtype)
    target = cuda._target(spec, t, x, soft)
    weights = _weights(args["sample_weight"], lay, x, math)
    outs = _outputs(args["out"], x, t)
    direct = outs is not None and all(o.contiguous for o in outs)
    grad = outs[0].source if direct else lib.empty(x.shape, x.dtype, device)
    hess = outs[1].source if direct else lib.empty(x.shape, x.dtype, device)
    weight, params = spec.kernel_params(placeholders)
    if weight is not None:
        weight = next(opts[name] for name, v in placeholders.items() if v is weight)
    job = {
        "device": device, "stream": lib.stream(device), "loss_id": spec.cpp_id, "dtype": _arrays.DTYPE_CODES[x.dtype],
        "x": cuda._ptr(x_c), "grad": cuda._ptr(grad), "hess": cuda._ptr(hess), "params": params,
        "scale_host": 1.0, "scale_numerator": 0, "row_scale": cuda._ptr(weights), "loss": 0,
        "reduction": 0, "host_denominator": 1.0, "device_denominator": 0, "total": 0,
    }
    job.update(cuda.layout_fields(spec, lay, x, target, weight, opts, soft))
    (cuda._cuda.rowwise if spec.rowwise else cuda._cuda.pointwise)(job)
    cuda._used_devices.add(device)
    if cuda._sync_checks():
        lib.synchronize(device)
        if cuda._cuda.take_error() is not None:
            cuda._raise_exact_target_error(spec, t, lay, opts, x.dtype, soft)
    if outs is not None:
        if not direct:
            lib.copy_into(outs[0].source, grad)
            lib.copy_into(outs[1].source, hess)
        return outs[0].source, outs[1].source
    return grad, hess
