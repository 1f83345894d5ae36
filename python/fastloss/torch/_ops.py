"""The autograd plumbing shared by every drop-in, generic over the loss table.

Eager mode (the common case) runs a plain ``torch.autograd.Function`` that calls the core fused
kernel directly: the forward computes the loss and the gradient for ``grad_output = 1`` in one pass
and saves the gradient; the backward hands it out as it is when ``grad_output`` is a CPU scalar 1
(``loss.backward()``), else scales it once. Under ``torch.compile`` tracing the same work goes
through ``torch.library`` custom ops (``torch.ops.fastloss.*``) with fake implementations, so
``fullgraph=True`` traces without graph breaks; the custom op's dispatch costs ~80 us a call in
eager mode, which is why eager mode does not use it.

The custom ops carry every loss's options in one ``float[]`` in the order of the generated
``LossParams`` fields (``_spec.kernel_params``, NaN for None, a choice as its index): PyTorch's
Python dispatch of a custom op costs time quadratic in the number of schema arguments.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch
from torch import Tensor

from .. import _api, _spec
from .._registry import BY_NAME, LossSpec

# Point-wise losses of e = input - target (_spec's ``difference``): d/dtarget = -d/dinput, so the
# target gets a gradient too.
DIFFERENCE_LOSSES = tuple(spec.name for spec in BY_NAME.values() if spec.difference)

_FIELDS = _spec.kernel_params()  # (name, kernel type) of every scalar option, LossParams order
_CHOICES = {o.name: o.choices for loss in _spec.LOSSES for o in loss.options if o.type == "choice"}
_SCHEMA_ARGS = "Tensor target, Tensor? vector, str loss, str reduction, float scale, int axis, float[] options"
_NO_GRADS = (None,) * _SCHEMA_ARGS.count(",")  # one per argument after `target`: none differentiable


def _vector_option(spec: LossSpec) -> str | None:
    """The name of the loss's per-class option (class weights, focal alpha), if it has one."""
    return next((o.name for o in spec.options if o.spec.type == "class_vector"), None)


def _pack(options: dict[str, Any]) -> list[float]:
    packed = []
    for name, kind in _FIELDS:
        value = options.get(name)
        if isinstance(value, float) and math.isnan(value):
            raise ValueError(f"{name} must be finite, got nan")
        if kind == "choice" and value is not None:
            value = _CHOICES[name].index(value) if value in _CHOICES[name] else math.inf  # inf: rejected later
        packed.append(math.nan if value is None else float(value))
    return packed


def _unpack(spec: LossSpec, packed: list[float], vector: Tensor | None) -> dict[str, Any]:
    """The loss's own options back from the packed list (an option left out takes its default)."""
    given = {name: None if math.isnan(v) else v for (name, _kind), v in zip(_FIELDS, packed)}
    options = {}
    for o in spec.options:
        value = given.get(o.name)
        if o.spec.type == "class_vector" and (vector is not None or not o.spec.vector_or_scalar):
            value = vector
        elif value is None:
            value = o.default
        elif o.spec.type == "choice":
            value = _CHOICES[o.name][int(value)] if value in range(len(_CHOICES[o.name])) else value
        elif o.spec.type == "bool":
            value = bool(value)
        elif o.spec.type == "i64":
            value = int(value)
        options[o.name] = value
    return options


def _core_call(form: str, input: Tensor, target: Tensor, spec: LossSpec, options: dict, reduction: str,
               scale: float, axis: int, out: Tensor | None = None):
    """``fastloss.<loss>[_with_grad]`` on the tensors; the loss as PyTorch returns it."""
    if spec.rowwise:
        options = {**options, "axis": axis}
    if form == "loss":
        return _loss_tensor(_api.FUNCTIONS[spec.name](input, target, reduction=reduction, **options), input, scale)
    value, grad = _api.FUNCTIONS[f"{spec.name}_with_grad"](
        input, target, grad_output=scale, out=out, reduction=reduction, **options)
    return _loss_tensor(value, input, scale), grad


def _loss_tensor(value: Tensor, input: Tensor, scale: float) -> Tensor:
    """The loss in the input's dtype, as PyTorch returns it (fastloss gives float32 for 16-bit)."""
    value = value * scale if scale != 1.0 else value
    return value.to(device=input.device, dtype=input.dtype)


def _loss_shape(input: Tensor, reduction: str, rowwise: bool, axis: int) -> tuple[int, ...]:
    if reduction != "none":
        return ()
    if not rowwise:
        return tuple(input.shape)
    return tuple(input.shape[:axis]) + tuple(input.shape[axis + 1 :])


def _refuse_double_backward() -> None:
    # The engine runs a backward with grad mode on exactly when create_graph=True.
    if torch.is_grad_enabled():
        raise RuntimeError(
            "fastloss.torch: double backward (create_graph=True) is not supported: the gradient "
            "comes from a fused kernel and has no graph of its own; use the torch.nn.functional "
            "loss where second derivatives are needed"
        )


def _scaled(grad: Tensor, grad_loss: Tensor, reduction: str, rowwise: bool, axis: int, in_place: bool) -> Tensor:
    """grad * grad_output, grad_output broadcast along the class dim for reduction="none".

    ``loss.backward()`` on a scalar loss passes grad_output = 1; the saved gradient is then handed
    out as it is (in eager mode on CPU, where reading the value costs nothing), which saves a full
    pass over it. That is safe: autograd only writes into a gradient nothing else holds.
    """
    if (
        grad_loss.numel() == 1
        and grad_loss.device.type == "cpu"
        and not torch.compiler.is_compiling()
        and grad_loss.item() == 1.0
    ):
        return grad
    scale = grad_loss.unsqueeze(axis) if reduction == "none" and rowwise else grad_loss
    scale = scale.to(grad.dtype)
    return grad.mul_(scale) if in_place else grad * scale


# ---- eager mode: plain autograd Functions ------------------------------------------------------


class _Fused(torch.autograd.Function):
    """Forward: loss and gradient in one fused pass; backward: the saved gradient, scaled."""

    @staticmethod
    def forward(ctx, input, target, spec, options, reduction, scale, axis, in_place):
        value, grad = _core_call("with_grad", input.detach(), target.detach(), spec, options, reduction, scale,
                                 axis, out=input if in_place else None)
        if in_place:
            ctx.mark_dirty(input)
        # The gradient is a fresh tensor no one else sees: kept on ctx, without save_for_backward's
        # version bookkeeping (in place, the input holds it, and autograd checks that buffer).
        ctx.grad = grad
        ctx.meta = (reduction, spec.rowwise, axis, in_place)
        return value if not in_place else (value, input)

    @staticmethod
    def backward(ctx, grad_loss, *_unused):
        _refuse_double_backward()
        reduction, rowwise, axis, in_place = ctx.meta
        grad = _scaled(ctx.grad, grad_loss, reduction, rowwise, axis, in_place=in_place)
        grad_target = -grad if ctx.needs_input_grad[1] else None
        return grad, grad_target, None, None, None, None, None, None


# ---- torch.compile: custom ops -----------------------------------------------------------------


@torch.library.custom_op("fastloss::loss", mutates_args=(), schema=f"(Tensor input, {_SCHEMA_ARGS}) -> Tensor")
def _loss_op(input, target, vector, loss, reduction, scale, axis, options):
    spec = BY_NAME[loss]
    return _core_call("loss", input, target, spec, _unpack(spec, options, vector), reduction, scale, axis)


@torch.library.custom_op(
    "fastloss::loss_with_grad", mutates_args=(), schema=f"(Tensor input, {_SCHEMA_ARGS}) -> (Tensor, Tensor)"
)
def _loss_with_grad_op(input, target, vector, loss, reduction, scale, axis, options):
    spec = BY_NAME[loss]
    return _core_call("with_grad", input, target, spec, _unpack(spec, options, vector), reduction, scale, axis)


@_loss_op.register_fake
def _loss_fake(input, target, vector, loss, reduction, scale, axis, options):
    return input.new_empty(_loss_shape(input, reduction, BY_NAME[loss].rowwise, axis))


@_loss_with_grad_op.register_fake
def _loss_with_grad_fake(input, target, vector, loss, reduction, scale, axis, options):
    return _loss_fake(input, target, vector, loss, reduction, scale, axis, options), input.new_empty(input.shape)


def _setup_context(ctx, inputs, output):
    loss, reduction, _scale, axis = inputs[3:7]
    ctx.save_for_backward(output[1])
    ctx.meta = (reduction, BY_NAME[loss].rowwise, axis)


def _backward(ctx, grad_loss, _grad_of_grad):
    _refuse_double_backward()
    (grad,) = ctx.saved_tensors
    grad_input = _scaled(grad, grad_loss, *ctx.meta, in_place=False)
    grad_target = -grad_input if ctx.needs_input_grad[1] else None
    return (grad_input, grad_target) + _NO_GRADS


_loss_with_grad_op.register_autograd(_backward, setup_context=_setup_context)


# ---- the one entry point of the drop-ins -------------------------------------------------------


def apply(
    loss: str,
    input: Tensor,
    target: Tensor,
    reduction: str,
    *,
    vector: Tensor | None = None,
    scale: float = 1.0,
    axis: int = 1,
    inplace_backward: bool = False,
    **options,
) -> Tensor:
    """Run loss ``loss``: the loss alone without autograd, else fused (in place if asked).

    ``options`` are the loss's scalar options by name; ``vector`` its per-class option;
    ``scale`` multiplies the loss and the gradient (multi_margin_loss's 1/C).
    """
    spec = BY_NAME[loss]
    for name, value in (("input", input), ("target", target)):
        if not isinstance(value, Tensor):
            raise TypeError(f"fastloss.torch.{loss}: {name} must be a torch.Tensor, got {type(value).__name__}")
    needs_grad = torch.is_grad_enabled() and (input.requires_grad or target.requires_grad)
    if needs_grad:
        if target.requires_grad and loss not in DIFFERENCE_LOSSES:
            raise NotImplementedError(
                f"fastloss.torch.{loss}: the gradient w.r.t. the target is not implemented; pass target.detach()"
            )
        if vector is not None and vector.requires_grad:
            raise NotImplementedError(f"fastloss.torch.{loss}: the gradient w.r.t. the class weights is not implemented")
        for name in spec.broadcast_names:
            if isinstance(options.get(name), Tensor) and options[name].requires_grad:
                raise NotImplementedError(f"fastloss.torch.{loss}: the gradient w.r.t. {name} is not implemented")
        if inplace_backward and input.is_leaf:
            raise ValueError(
                f"fastloss.torch.{loss}: inplace_backward=True would overwrite a leaf tensor (a parameter or "
                "a user-created tensor) with the gradient; pass logits computed from it instead"
            )
    if torch.compiler.is_compiling():
        if any(isinstance(options.get(name), Tensor) for name in spec.broadcast_names):
            raise NotImplementedError(  # the custom ops' schema carries one class vector, not per-element ones
                f"fastloss.torch.{loss}: per-element tensor options ({', '.join(spec.broadcast_names)}) are not "
                "supported under torch.compile")
        args = (vector, loss, reduction, float(scale), axis, _pack(options))
        if not needs_grad:
            return _loss_op(input, target, *args)
        return _loss_with_grad_op(input, target, *args)[0]
    full = {o.name: options.get(o.name, o.default) for o in spec.options}
    vector_name = _vector_option(spec)
    if vector is not None:
        full[vector_name] = vector
    try:
        if not needs_grad:
            return _core_call("loss", input, target, spec, full, reduction, float(scale), axis)
        if inplace_backward:
            return _Fused.apply(input, target, spec, full, reduction, float(scale), axis, True)[0]
        return _Fused.apply(input, target, spec, full, reduction, float(scale), axis, False)
    except (TypeError, ValueError) as exc:  # name the torch function the user called, not the core one
        message = str(exc).replace(f"{loss}_with_grad: ", "").replace(f"{loss}: ", "")
        raise type(exc)(f"fastloss.torch.{loss}: {message}") from None


def reduction_of(size_average: bool | None, reduce: bool | None, reduction: str) -> str:
    if size_average is not None or reduce is not None:
        return torch.nn._reduction.legacy_get_string(size_average, reduce)
    return reduction


def same_shape_target(input: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """Broadcast as torch.nn.functional does for elementwise losses, with its warning."""
    if input.shape == target.shape:
        return input, target
    warnings.warn(
        f"Using a target size ({target.size()}) that is different to the input size ({input.size()}). "
        "This will likely lead to incorrect results due to broadcasting. "
        "Please ensure they have the same size.",
        stacklevel=3,
    )
    return torch.broadcast_tensors(input, target)


def class_dim(input: Tensor) -> int:
    """PyTorch's class dim: 1 for (N, C, d1, ..., dK), 0 for an unbatched (C,) input."""
    return 0 if input.dim() == 1 else 1


def reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.mean()
    raise ValueError(f"reduction must be one of ('none', 'mean', 'sum'), got {reduction!r}")
