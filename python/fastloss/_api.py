"""The one front end, for every device: bind -> validate -> canonical problem -> backend -> wrap.

Every public loss function is generated here from its registry entry, so all losses share one
implementation of argument checking, reductions, ``grad_output``, ``out=`` and array interop. The
stages that differ by device (array views, where buffers live, how "mean" is divided) are
``_Host`` here and ``_backends.cuda`` for CUDA data; validation is ``_problem``'s, shared.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from . import _arrays, _backends, _docstrings, _fast, _grad_hess, _problem
from ._registry import LOSSES, LossSpec, check_broadcast_shape

FORMS = ("loss", "grad", "with_grad", "grad_hess")


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


class _Host:
    """The front end's CPU stages: host views of the caller's arrays, options validated on the host,
    and the Problem run by the selected CPU backend (numpy or native)."""

    adapt = staticmethod(_arrays.as_host)

    @staticmethod
    def options(spec: LossSpec, args: dict[str, Any], lay: _problem.Layout, x: Any) -> dict[str, Any]:
        opts = {o.name: o.check(o.name, args[o.name], lay.classes) for o in spec.options}
        for name in spec.broadcast_names:
            if isinstance(opts[name], np.ndarray):
                check_broadcast_shape(name, opts[name], lay.shape, spec.input_name)
        return opts

    @staticmethod
    def run(spec, form, args, x, t, lay, opts, reduction, soft) -> Any:
        backend = _backends.current()
        # grad_output before the targets, on every backend: the same error first whichever raises it
        need_grad = form != "loss"
        grad_scale, row_scale = 1.0, None
        if need_grad:
            if reduction == "none":
                grad_scale, row_scale = _problem.row_scale(args["grad_output"], lay, x.dtype)
            else:
                grad_scale = _problem.scalar(args["grad_output"], "grad_output")
        x3 = np.ascontiguousarray(x.data).reshape((lay.outer, lay.classes, lay.inner) if spec.rowwise else (-1,))
        if soft:
            target = np.ascontiguousarray(
                t.data if t.dtype == x.dtype else _arrays.from_float64(_arrays.to_float64(t.data, t.dtype), x.dtype)
            ).reshape(x3.shape)
        elif spec.rowwise:
            target = _problem.class_target(t.data, lay, opts["ignore_index"], not backend.checks_class_targets)
        else:
            target = _problem.elementwise_target(spec, t, x.dtype, not backend.checks_float_targets, opts)

        denominator = _problem.reduction_denominator(spec, reduction, target, soft, opts, lay)
        with np.errstate(divide="ignore", invalid="ignore"):
            grad_scale = float(np.float64(grad_scale) / denominator)
        grad_out, out = _grad_destination(args.get("out"), x, t, x3) if need_grad else (None, None)

        prob = _problem.Problem(
            spec=spec, x=x3, dtype=x.dtype, target=target, soft=soft, opts=opts, reduction=reduction,
            grad_scale=grad_scale, row_scale=row_scale, need_loss=form != "grad", need_grad=need_grad,
            grad_out=grad_out,
        )
        try:
            loss, grad = backend.run(prob) if x3.size else _nothing_to_compute(prob)
        except _problem.ClassTargetOutOfRange:
            _problem.class_target(t.data, lay, opts["ignore_index"])  # raises, naming the index in t's shape
            raise
        except _problem.TargetOutOfDomain:
            _problem.raise_bad_target(spec, target.reshape(t.data.shape), x.dtype)  # index in the caller's shape

        results = []
        if form != "grad":
            ldtype = _arrays.loss_dtype(x.dtype)
            if reduction == "none":
                results.append(_arrays.wrap(np.asarray(loss).reshape(lay.loss_shape),
                                            "float64" if ldtype is np.float64 else "float32", x))
            else:
                with np.errstate(divide="ignore", invalid="ignore"):
                    value = np.float64(loss) / denominator if denominator != 1.0 else loss
                results.append(_arrays.wrap_scalar(float(value), ldtype, x))
        if need_grad:
            if out is not None:
                if grad_out is None:  # the caller's out is not C-contiguous: copy the result in
                    out.data[...] = grad.reshape(x.data.shape)
                results.append(out.source)
            else:
                results.append(_arrays.wrap(grad.reshape(x.data.shape), x.dtype, x))
        return results[0] if len(results) == 1 else tuple(results)


def _nothing_to_compute(prob: _problem.Problem) -> tuple[Any, Any]:
    """An empty input (no rows, or rows of 0 elements): every backend's answer, without calling one
    (a backend would size per-class buffers by C, which an empty batch may have in the billions)."""
    shape = prob.x.shape[::2] if prob.spec.rowwise else prob.x.shape
    loss = np.zeros(shape, _arrays.loss_dtype(prob.dtype)) if prob.reduction == "none" else 0.0
    grad = (prob.grad_out if prob.grad_out is not None else np.empty_like(prob.x)) if prob.need_grad else None
    return loss, grad


def _stages(spec: LossSpec, args: dict[str, Any]):
    """The device's stages (_Host, or the CUDA backend); data is never moved between devices."""
    devices = {name: _arrays.device_of(args[name]) for name in (spec.input_name, "target")}
    if set(devices.values()) == {"cpu"}:
        return _Host
    if len(set(devices.values())) > 1:
        raise ValueError(f"{spec.input_name} and target are on different devices: {devices}")
    from ._backends import cuda

    return cuda.stages(spec, devices[spec.input_name])


def _call(spec: LossSpec, form: str, args: dict[str, Any]) -> Any:
    """bind (done by the generated function) -> validate -> canonical problem -> backend -> wrap."""
    stages = _stages(spec, args)
    x = stages.adapt(args[spec.input_name], spec.input_name)
    _problem.check_input(spec, x)
    t = stages.adapt(args["target"], "target")
    lay = _problem.layout(spec, x.shape, args.get("axis", -1))
    opts = stages.options(spec, args, lay, x)
    reduction = _problem.check_reduction(args["reduction"], spec) if form != "grad_hess" else "none"
    soft = _problem.target_kind(spec, t, lay, opts)
    if form == "grad_hess":
        run = _grad_hess.run_host if stages is _Host else stages.run_grad_hess
        return run(spec, args, x, t, lay, opts, soft)
    return stages.run(spec, form, args, x, t, lay, opts, reduction, soft)


# ---- the public functions ----------------------------------------------------------------------


def _signature(spec: LossSpec, form: str) -> inspect.Signature:
    P = inspect.Parameter
    params = [P(spec.input_name, P.POSITIONAL_OR_KEYWORD), P("target", P.POSITIONAL_OR_KEYWORD)]
    if form == "grad_hess":  # of the unreduced loss: sample weights instead of grad_output and reduction
        params += [P("sample_weight", P.KEYWORD_ONLY, default=None), P("out", P.KEYWORD_ONLY, default=None)]
    elif form != "loss":
        params += [P("grad_output", P.KEYWORD_ONLY, default=1.0), P("out", P.KEYWORD_ONLY, default=None)]
    params += [P(name, P.KEYWORD_ONLY, default=d) for name, d in spec.defaults().items()
               if form != "grad_hess" or name != "reduction"]
    return inspect.Signature(params)


def _make(spec: LossSpec, form: str):
    """A real Python function with the signature, so that argument binding costs what a plain call
    costs (``inspect.Signature.bind`` was a quarter of the per-call overhead on small inputs)."""
    sig = _signature(spec, form)
    name = spec.name if form == "loss" else f"{spec.name}_{form}"
    keywords = [p.name for p in sig.parameters.values() if p.kind is p.KEYWORD_ONLY]
    fast = _fast.make(spec, form)
    fast_args = ", ".join([
        spec.input_name, "target", "grad_output" if form != "loss" else "1.0", "out" if form != "loss" else "None",
        "reduction", "axis" if spec.rowwise else "-1", f"({''.join(o.name + ', ' for o in spec.options)})",
    ])
    source = (
        f"def {name}({spec.input_name}, target, *, {', '.join(f'{k}=_d[{k!r}]' for k in keywords)}):\n"
        f"    try:\n"
        + (f"        result = _fast({fast_args})\n"
           f"        if result is not _MISS:\n"
           f"            return result\n" if fast is not None else "")
        + f"        return _call(_spec, _form, {{{', '.join(f'{p!r}: {p}' for p in sig.parameters)}}})\n"
        f"    except (ValueError, TypeError) as exc:\n"
        f"        raise type(exc)(f'{name}: {{exc}}') from None\n"
    )
    defaults = {k: sig.parameters[k].default for k in keywords}
    namespace = {"_call": _call, "_spec": spec, "_form": form, "_d": defaults, "_fast": fast, "_MISS": _fast.MISS}
    exec(source, namespace)  # noqa: S102 - the source is built from the registry's own identifiers
    loss_function = namespace[name]
    loss_function.__module__ = "fastloss"
    loss_function.__doc__ = _docstrings.docstring(spec, form, name)
    return loss_function


FUNCTIONS: dict[str, Any] = {
    (spec.name if form == "loss" else f"{spec.name}_{form}"): _make(spec, form)
    for spec in LOSSES
    for form in FORMS
}
