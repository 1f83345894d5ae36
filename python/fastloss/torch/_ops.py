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
from torch.fx.experimental.symbolic_shapes import guard_or_false

from .. import _api, _fast, _spec
from .._registry import BY_NAME, LossSpec


def _negated_input_grad(grad_input, **_):
    """Losses of e = input - target: d/dtarget = -d/dinput."""
    return -grad_input


def _soft_cross_entropy_target_grad(grad_input, input, target, options, reduction, axis, grad_loss):
    """Soft-target cross-entropy: dl/dy_c = -(1-eps)*w_c*log p_c (p = softmax of the capped logits).

    Computed from the logits in the backward (an extra pass, made only when the target needs it)."""
    if target.dtype != input.dtype or target.shape != input.shape:
        return None  # class indices: no gradient
    z = input.detach().to(torch.float64 if input.dtype == torch.float64 else torch.float32)
    cap = options["softcap"]
    if cap is not None:
        z = cap * torch.tanh(z / cap)
    g = torch.log_softmax(z, dim=axis) * -(1.0 - options["label_smoothing"])
    shape = [1] * z.dim()
    shape[axis] = z.shape[axis]
    if options["weight"] is not None:
        g = g * options["weight"].to(g.dtype).reshape(shape)
    if reduction == "none":
        g = g * grad_loss.unsqueeze(axis)
    else:
        g = g * (grad_loss / (z.numel() // z.shape[axis]) if reduction == "mean" else grad_loss)
    return g.to(target.dtype)


# The losses whose target gets a gradient, and how (the others refuse a target that requires grad).
# Point-wise losses of e = input - target (_spec's ``difference``) take -d/dinput.
TARGET_GRADIENTS = {
    **{spec.name: _negated_input_grad for spec in BY_NAME.values() if spec.difference},
    "cross_entropy": _soft_cross_entropy_target_grad,
}

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
        # value != value, not math.isnan: under torch.compile(dynamic=True) a float option is a
        # symbolic float, which math.isnan cannot take without a graph break.
        if isinstance(value, float) and value != value:  # noqa: PLR0124 - the NaN test, see above
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
    input, target = input.detach(), target.detach()  # the kernels compute the gradient; autograd is ours
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
    def forward(ctx, input, target, spec, values, reduction, scale, axis, in_place):
        result = _fast_with_grad(input, target, spec, values, reduction, scale, axis, in_place)
        if result is None:
            result = _core_call("with_grad", input.detach(), target.detach(), spec,
                                dict(zip(_NAMES[spec.name], values)), reduction, scale, axis,
                                out=input.detach() if in_place else None)
        value, grad = result
        # No zero-filled, input-sized gradient for the outputs nobody differentiates (the dirtied input).
        ctx.set_materialize_grads(False)
        if in_place:
            ctx.mark_dirty(input)
        # save_for_backward, not an attribute: the engine drops saved tensors as soon as this node's
        # backward returns (without retain_graph), so AccumulateGrad can adopt the gradient as x.grad
        # instead of copying it (16M elements: 48 -> 15 ms forward+backward).
        ctx.save_for_backward(grad)
        ctx.meta = (reduction, spec.rowwise, axis, in_place)
        if target.requires_grad:
            ctx.for_target = (spec.name, input, target, dict(zip(_NAMES[spec.name], values)))
        return value if not in_place else (value, input)

    @staticmethod
    def backward(ctx, grad_loss, *_unused):
        _refuse_double_backward()
        if grad_loss is None:
            return (None,) * 8
        reduction, rowwise, axis, in_place = ctx.meta
        (grad,) = ctx.saved_tensors
        grad = _scaled(grad, grad_loss, reduction, rowwise, axis, in_place=in_place)
        grad_target = None
        if ctx.needs_input_grad[1]:
            name, input, target, options = ctx.for_target
            grad_target = TARGET_GRADIENTS[name](grad_input=grad, input=input, target=target, options=options,
                                                 reduction=reduction, axis=axis, grad_loss=grad_loss)
        return grad, grad_target, None, None, None, None, None, None


_VIEWABLE = (torch.float32, torch.float64, torch.int64)


def _fast_with_grad(input, target, spec, values, reduction, scale, axis, in_place):
    """The core's NumPy-level fast path on the tensors' memory, or None where it does not apply."""
    core = _fast.CORES.get((spec.name, "with_grad")) if _fast.ENABLED else None
    if (scale != 1.0 or core is None or input.is_cuda or input.dtype not in _VIEWABLE
            or target.dtype not in _VIEWABLE or not input.is_contiguous() or not target.is_contiguous()
            or input.is_neg() or target.is_neg()):  # lazily negated views: their memory holds -x
        return None
    x, t = input.detach().numpy(), target.detach().numpy()
    result = core(x, t, 1.0, x if in_place else None, reduction, axis, values)
    if result is _fast.MISS:
        return None
    loss, grad = result
    value = torch.from_numpy(loss if reduction == "none" else _fast.scalar_array(loss, x.dtype))
    return value, input if in_place else torch.from_numpy(grad)


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
    # The gradient output is not differentiated: no zero-filled, input-sized tensor for it.
    ctx.mark_non_differentiable(output[1])
    ctx.set_materialize_grads(False)


def _backward(ctx, grad_loss, _grad_of_grad):
    _refuse_double_backward()
    if grad_loss is None:
        return (None, None) + _NO_GRADS
    (grad,) = ctx.saved_tensors
    grad_input = _scaled(grad, grad_loss, *ctx.meta, in_place=False)
    grad_target = -grad_input if ctx.needs_input_grad[1] else None  # apply() allows only e = x - y losses
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
    if type(input) is not Tensor or type(target) is not Tensor:
        for name, value in (("input", input), ("target", target)):
            if not isinstance(value, Tensor):
                raise TypeError(f"fastloss.torch.{loss}: {name} must be a torch.Tensor, got {type(value).__name__}")
    needs_grad = (input.requires_grad or target.requires_grad) and torch.is_grad_enabled()
    if needs_grad:
        compiling = torch.compiler.is_compiling()
        target_rule = TARGET_GRADIENTS.get(loss)
        if target.requires_grad and (target_rule is None or inplace_backward
                                     or (compiling and target_rule is not _negated_input_grad)):
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
    values = _option_values(spec, options, vector)
    try:
        if not needs_grad:
            return _core_call("loss", input, target, spec, dict(zip(_NAMES[loss], values)), reduction,
                              float(scale), axis)
        if inplace_backward:
            return _Fused.apply(input, target, spec, values, reduction, float(scale), axis, True)[0]
        return _Fused.apply(input, target, spec, values, reduction, float(scale), axis, False)
    except (TypeError, ValueError) as exc:  # name the torch function the user called, not the core one
        message = str(exc).replace(f"{loss}_with_grad: ", "").replace(f"{loss}: ", "")
        raise type(exc)(f"fastloss.torch.{loss}: {message}") from None


_NAMES = {spec.name: tuple(o.name for o in spec.options) for spec in BY_NAME.values()}
_SLOTS = {spec.name: tuple((o.name, o.default, o.spec.type == "class_vector") for o in spec.options)
          for spec in BY_NAME.values()}


def _option_values(spec: LossSpec, options: dict[str, Any], vector: Tensor | None) -> tuple:
    """The loss's option values in table order; the per-class option is ``vector`` when given."""
    return tuple(vector if is_vector and vector is not None else options.get(name, default)
                 for name, default, is_vector in _SLOTS[spec.name])


# Below this many input elements PyTorch's own CPU kernel is the faster one, so the drop-ins of
# losses PyTorch has call it (same numbers by construction). Measured on the 2-core AVX-512 dev
# machine, 1 thread, forward+backward (benchmarks/overhead.py): any Python autograd node costs
# ~17 us of backward alone, about PyTorch's whole (8, 2) cross-entropy, and fastloss's fused kernel
# wins from ~50-100k elements (cross-entropy (1024, 100): 0.83x PyTorch's time; Huber 64k: 1.1x).
TORCH_FASTER_BELOW = 131072
# The same crossover against inductor's code, under torch.compile: there PyTorch's loss is fused
# (log_softmax + nll and the backward in one generated loop; a point-wise loss into its reduction)
# and fastloss's custom op pays its Python dispatch (at (64, 10): 400 us a step against inductor's
# 223 us), so the crossover is measured separately (benchmarks/overhead.py, "compiled/compiled", 1 thread, CPU
# time): cross-entropy 1.18x inductor's time at (1024, 100), 0.84x at (2048, 100); Huber 1.26x at
# 256 Ki elements, 1.01x at 512 Ki, 0.89x at 768 Ki, 0.89-0.94x at 1 Mi.
COMPILED_TORCH_FASTER_BELOW = 131072
COMPILED_POINTWISE_TORCH_FASTER_BELOW = 1 << 20


def torch_is_faster(input: Any, loss: str) -> bool:
    """True for small CPU inputs, where the drop-in should run PyTorch's own op (eager or compiled).

    ``loss``: the fastloss loss the drop-in computes; an element-wise one has a higher crossover
    under torch.compile (inductor fuses it into one loop). Under ``torch.compile`` the element count
    may be symbolic (dynamic shapes): comparing it makes Dynamo guard on which side of the threshold
    the graph was traced for, so a graph traced for small inputs holds PyTorch's op (which inductor
    fuses), one traced for large inputs fastloss's custom op, and a call that crosses the threshold
    recompiles once.
    """
    if type(input) is not Tensor or input.is_cuda:
        return False
    if torch.compiler.is_compiling():
        pointwise = BY_NAME[loss].kind == _spec.POINTWISE
        below = COMPILED_POINTWISE_TORCH_FASTER_BELOW if pointwise else COMPILED_TORCH_FASTER_BELOW
        # guard_or_false: a data-dependent (unbacked) size, which cannot be guarded on, takes
        # fastloss's custom op, as every size did before the switch; a backed size is guarded.
        return guard_or_false(input.numel() < below)
    return input.numel() < TORCH_FASTER_BELOW


def literal_default(value: Any, default: float) -> Any:
    """``default`` itself where ``value`` equals it, else ``value``.

    Under ``torch.compile(dynamic=True)`` Dynamo turns a float that comes from a function's defaults
    into a symbolic float, an input of the graph: handed on to PyTorch's op, inductor then generates
    code for any value (cross-entropy with a runtime label smoothing: 1.7x the time at (256, 100)).
    The comparison guards on the value, and the literal goes into the graph as a constant."""
    return default if value == default else value


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
