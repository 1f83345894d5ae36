"""fastloss for JAX: every loss as a ``jax.custom_vjp`` function that works under ``jax.jit``.

``fastloss.jax.<loss>(input, target, **options)`` takes the options, defaults and layout of
``fastloss.<loss>`` (class axis ``axis``, default -1; ``reduction`` default "mean"). The forward
runs ONE fused pass of the fastloss kernel, which returns the loss and the gradient for
``grad_output = 1``; the gradient is the residual and the backward only scales it by the cotangent
(per loss element for ``reduction="none"``, broadcast along the class axis). Only the loss is
computed when JAX does not differentiate. Class-weight arrays may be traced values; every other
option is static. Targets get a gradient only for the losses of ``input - target`` (``_spec``'s
``difference``: huber, smooth L1, MSE, L1, log-cosh); class weights never do.

Why ``jax.pure_callback`` and not an XLA FFI custom call: an FFI handler is C++ compiled against
the XLA FFI headers, which ship inside jaxlib. Building it with fastloss would make jax a build
dependency of every fastloss wheel (and pin the wheel to jaxlib's FFI ABI), and vendoring XLA's
headers into this repository is not allowed here. A host callback runs exactly the same compiled
kernel on the same zero-copy NumPy views; what it costs is a fixed per-call dispatch (tens of
microseconds) and the fact that XLA cannot fuse across it, which is small next to a memory-bound
pass over a large logits array. CPU only: arrays on an accelerator would be copied to the host.

``vmap_method``: with ``reduction="none"`` and no array options a batched call is the same loss on
a bigger array, so the callback sees the batch as extra leading axes ("broadcast_all"; the class
axis is normalised to count from the end). A reduction, or class weights that are not batched,
would mix up the batch, so those run once per batch element ("sequential").
"""

from __future__ import annotations

import functools
import numbers
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import _api, _docstrings, _problem
from ._registry import LOSSES, LossSpec

__all__ = [spec.name for spec in LOSSES]


def _is_array(value: Any) -> bool:
    """Class weights (arrays, lists) travel as operands; scalars, strings and None are static."""
    return not isinstance(value, (numbers.Number, str, type(None)))


def _loss_struct(spec: LossSpec, x: jax.Array, reduction: str, axis: int | None) -> jax.ShapeDtypeStruct:
    """The loss's shape and dtype: float32 for 16-bit inputs (fastloss's rule), else the input's."""
    dtype = jnp.float64 if x.dtype == jnp.float64 else jnp.float32
    if reduction != "none":
        shape: tuple[int, ...] = ()
    elif spec.rowwise:
        a = axis % x.ndim
        shape = x.shape[:a] + x.shape[a + 1 :]
    else:
        shape = x.shape
    return jax.ShapeDtypeStruct(shape, dtype)


def _host_call(spec: LossSpec, options: dict, need_grad: bool, x, target, arrays: dict):
    """The fastloss kernel on the host, as a ``jax.pure_callback``: (loss,) or (loss, grad)."""
    loss_struct = _loss_struct(spec, x, options["reduction"], options.get("axis"))
    shapes = (loss_struct, jax.ShapeDtypeStruct(x.shape, x.dtype)) if need_grad else (loss_struct,)
    batch_as_rows = options["reduction"] == "none" and not arrays
    function = _api.FUNCTIONS[f"{spec.name}_with_grad" if need_grad else spec.name]

    def on_host(x, target, arrays):
        result = function(np.asarray(x), np.asarray(target), **options, **arrays)
        results = result if need_grad else (result,)
        return tuple(np.asarray(r, dtype=s.dtype) for r, s in zip(results, shapes))

    return jax.pure_callback(
        on_host, shapes, x, target, arrays, vmap_method="broadcast_all" if batch_as_rows else "sequential"
    )


@functools.cache
def _differentiable(spec: LossSpec, static: tuple[tuple[str, Any], ...]):
    """The custom_vjp function of one loss with one set of static options."""
    options = dict(static)
    reduction, axis = options["reduction"], options.get("axis")

    @jax.custom_vjp
    def loss(x, target, arrays):
        return _host_call(spec, options, False, x, target, arrays)[0]

    def forward(x, target, arrays):
        value, grad = _host_call(spec, options, True, x, target, arrays)
        return value, (grad, jnp.zeros((), target.dtype))  # the zero carries the target's dtype

    def backward(residuals, cotangent):
        grad, target_zero = residuals
        if reduction == "none" and spec.rowwise:
            cotangent = jnp.expand_dims(cotangent, axis)
        grad_input = grad * cotangent.astype(grad.dtype)
        # Losses of input - target (_spec's ``difference``): d/dtarget = -d/dinput.
        differentiable_target = spec.difference and jnp.issubdtype(target_zero.dtype, jnp.floating)
        grad_target = (-grad_input).astype(target_zero.dtype) if differentiable_target else None
        return grad_input, grad_target, None

    loss.defvjp(forward, backward)
    return loss


def _check_static_options(spec: LossSpec, x: jax.Array, given: dict) -> None:
    """Reject bad options at trace time, with fastloss's messages; data is checked in the kernel call."""
    try:
        if given["reduction"] not in spec.reductions:
            raise ValueError(f"reduction must be one of {spec.reductions}, got {given['reduction']!r}")
        classes = _problem.layout(spec, x.shape, given["axis"]).classes if spec.rowwise else None
        for option in spec.options:
            if not _is_array(given[option.name]):
                option.check(option.name, given[option.name], classes)
    except (ValueError, TypeError) as exc:
        raise type(exc)(f"{spec.name}: {exc}") from None


def _make(spec: LossSpec):
    signature = _api._signature(spec, "loss")

    def loss_function(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        given = dict(bound.arguments)
        x, target = jnp.asarray(given.pop(spec.input_name)), jnp.asarray(given.pop("target"))
        _check_static_options(spec, x, given)
        if spec.rowwise and isinstance(given["axis"], int) and 0 <= given["axis"] < x.ndim:
            given["axis"] -= x.ndim  # counted from the end, so batching can prepend axes
        arrays = {k: jnp.asarray(v) for k, v in given.items() if _is_array(v)}
        static = tuple(sorted((k, v) for k, v in given.items() if k not in arrays))
        return _differentiable(spec, static)(x, target, arrays)

    loss_function.__signature__ = signature  # type: ignore[attr-defined]
    loss_function.__name__ = loss_function.__qualname__ = spec.name
    loss_function.__module__ = __name__
    loss_function.__doc__ = (
        f"{spec.name} for JAX (jit, grad, vmap): fastloss.{spec.name}'s loss with a custom VJP.\n\n"
        + _docstrings.docstring(spec, "loss", spec.name).split("\nExample\n", 1)[0].split("\n", 1)[1]
    )
    return loss_function


globals().update({spec.name: _make(spec) for spec in LOSSES})
