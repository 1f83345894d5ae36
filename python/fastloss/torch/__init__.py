"""PyTorch drop-ins: ``torch.nn.functional`` / ``torch.nn`` losses with PyTorch's exact conventions.

Switching is a one-line change::

    criterion = fastloss.torch.CrossEntropyLoss()   # was torch.nn.CrossEntropyLoss()

Signatures, defaults, layouts (class dim 1, K-dim inputs (N, C, d1, ..., dK), unbatched (C,)) and
legacy ``size_average``/``reduce`` match PyTorch (and torchvision for ``sigmoid_focal_loss``).
fastloss extras are keyword-only: ``z_loss``, ``softcap`` and ``inplace_backward``.

How autograd works: the forward runs ONE fused pass (``fastloss.<loss>_with_grad``) that returns the
loss and the gradient for ``grad_output = 1``; the gradient is saved and the backward only scales it
by ``grad_output`` (per loss element for ``reduction="none"``, broadcast along the class dim). The
ops are ``torch.library`` custom ops (``torch.ops.fastloss.*``) with fake (meta) implementations, so
``torch.compile(fullgraph=True)`` traces them without graph breaks. When no gradient is needed
(``torch.no_grad()``, or an input that does not require grad) only the loss is computed.

``inplace_backward=True`` writes the gradient over the input (the logits) during the forward, so no
second logits-sized buffer is alive between forward and backward (as Liger-Kernel does). Caveat: the
input's values are destroyed by the forward; do not use them afterwards, and call ``backward`` once
(the backward scales the saved gradient in place). Any autograd node that saved the logits notices
the overwrite and raises PyTorch's "modified by an inplace operation" error instead of computing a
wrong gradient.

Double backward (``create_graph=True``) is not supported: the gradient comes from a fused kernel,
not from differentiable torch ops, so the backward raises instead of returning a graph that would
silently give a zero second derivative.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import Tensor, nn

from .. import _api
from .._registry import BY_NAME

__all__ = [
    "CrossEntropyLoss",
    "HingeLoss",
    "HuberLoss",
    "MultiClassHingeLoss",
    "MultiMarginLoss",
    "SigmoidFocalLoss",
    "SmoothL1Loss",
    "SoftmaxFocalLoss",
    "cross_entropy",
    "hinge_loss",
    "huber_loss",
    "multi_margin_loss",
    "multiclass_hinge_loss",
    "sigmoid_focal_loss",
    "smooth_l1_loss",
    "softmax_focal_loss",
]

# Pointwise losses of e = input - target: d/dtarget = -d/dinput, so the target gets a gradient too.
_DIFFERENCE_LOSSES = ("huber_loss", "smooth_l1_loss")


# ---- the custom ops ----------------------------------------------------------------------------
# One op family serves every loss. Its arguments are the union of the losses' options (a custom
# op needs a typed schema for torch.compile); each call forwards only the options its loss has.
# `vector` carries the per-class option (cross_entropy / multiclass hinge `weight`, softmax focal
# `alpha`); `scale` multiplies the loss and the gradient (multi_margin_loss's 1/C).


def _core_call(form, input, target, vector, loss, reduction, scale, axis, packed, variant, out=None):
    """Run ``fastloss.<loss>[_with_grad]`` with the options ``loss`` has, taken from the union."""
    spec = BY_NAME[loss]
    given = {**_unpack(packed), "variant": variant}
    given["alpha" if loss == "softmax_focal_loss" and vector is not None else "weight"] = vector
    options = {o.name: given[o.name] for o in spec.options}
    if spec.rowwise:
        options["axis"] = axis
    fn = _api.FUNCTIONS[loss if form == "loss" else f"{loss}_{form}"]
    if form == "loss":
        return _loss_tensor(fn(input, target, reduction=reduction, **options), input, scale)
    value, grad = fn(input, target, grad_output=scale, out=out, reduction=reduction, **options)
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


# The union of the losses' numeric options (name, default), carried in ONE float[] argument with
# NaN standing for None: PyTorch's Python dispatch of a custom op costs time quadratic in the number
# of schema arguments, so a few arguments keep a small loss call cheap.
_NUMERIC_OPTIONS = (
    ("ignore_index", -100),
    ("label_smoothing", 0.0),
    ("z_loss", 0.0),
    ("softcap", None),
    ("alpha", None),
    ("gamma", 2.0),
    ("margin", 1.0),
    ("squared", False),
    ("delta", 1.0),
    ("beta", 1.0),
)
_SCHEMA_ARGS = "Tensor target, Tensor? vector, str loss, str reduction, float scale, int axis, float[] options, str variant"
_NO_GRADS = (None,) * _SCHEMA_ARGS.count(",")  # one per argument after `target`: none differentiable


def _pack(options: dict) -> list[float]:
    packed = []
    for name, _default in _NUMERIC_OPTIONS:
        value = options[name]
        if isinstance(value, float) and math.isnan(value):
            raise ValueError(f"{name} must be finite, got nan")
        packed.append(math.nan if value is None else float(value))
    return packed


def _unpack(packed) -> dict:
    options = {name: None if math.isnan(v) else v for (name, _default), v in zip(_NUMERIC_OPTIONS, packed)}
    options["ignore_index"], options["squared"] = int(options["ignore_index"]), bool(options["squared"])
    return options


@torch.library.custom_op(
    "fastloss::loss", mutates_args=(), schema=f"(Tensor input, {_SCHEMA_ARGS}) -> Tensor"
)
def _loss_op(input, target, vector, loss, reduction, scale, axis, *options):
    return _core_call("loss", input, target, vector, loss, reduction, scale, axis, *options)


@torch.library.custom_op(
    "fastloss::loss_with_grad", mutates_args=(), schema=f"(Tensor input, {_SCHEMA_ARGS}) -> (Tensor, Tensor)"
)
def _loss_with_grad_op(input, target, vector, loss, reduction, scale, axis, *options):
    return _core_call("with_grad", input, target, vector, loss, reduction, scale, axis, *options)


@torch.library.custom_op(
    "fastloss::loss_with_grad_inplace",
    mutates_args=("input",),
    schema=f"(Tensor(a!) input, {_SCHEMA_ARGS}) -> Tensor",
)
def _loss_with_grad_inplace_op(input, target, vector, loss, reduction, scale, axis, *options):
    value, _ = _core_call(
        "with_grad", input, target, vector, loss, reduction, scale, axis, *options, out=input
    )
    return value


@_loss_op.register_fake
def _loss_fake(input, target, vector, loss, reduction, scale, axis, *options):
    return input.new_empty(_loss_shape(input, reduction, BY_NAME[loss].rowwise, axis))


@_loss_with_grad_op.register_fake
def _loss_with_grad_fake(input, target, vector, loss, reduction, scale, axis, *options):
    return _loss_fake(input, target, vector, loss, reduction, scale, axis), input.new_empty(input.shape)


@_loss_with_grad_inplace_op.register_fake
def _loss_with_grad_inplace_fake(input, target, vector, loss, reduction, scale, axis, *options):
    return _loss_fake(input, target, vector, loss, reduction, scale, axis)


def _refuse_double_backward() -> None:
    # The engine runs a backward with grad mode on exactly when create_graph=True.
    if torch.is_grad_enabled():
        raise RuntimeError(
            "fastloss.torch: double backward (create_graph=True) is not supported: the gradient "
            "comes from a fused kernel and has no graph of its own; use the torch.nn.functional "
            "loss where second derivatives are needed"
        )


def _scaled(grad: Tensor, grad_loss: Tensor, ctx, in_place: bool) -> Tensor:
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
    scale = grad_loss.unsqueeze(ctx.axis) if ctx.reduction == "none" and ctx.rowwise else grad_loss
    scale = scale.to(grad.dtype)
    return grad.mul_(scale) if in_place else grad * scale


def _setup_context(ctx, inputs, output):
    loss, reduction, _scale, axis = inputs[3:7]
    ctx.save_for_backward(output[1])
    ctx.reduction, ctx.rowwise, ctx.axis = reduction, BY_NAME[loss].rowwise, axis


def _backward(ctx, grad_loss, _grad_of_grad):
    _refuse_double_backward()
    (grad,) = ctx.saved_tensors
    grad_input = _scaled(grad, grad_loss, ctx, in_place=False)
    grad_target = -grad_input if ctx.needs_input_grad[1] else None
    return (grad_input, grad_target) + _NO_GRADS


_loss_with_grad_op.register_autograd(_backward, setup_context=_setup_context)


class _InplaceLoss(torch.autograd.Function):
    """The mutating op cannot carry an autograd formula itself, so a Function wraps it."""

    @staticmethod
    def forward(ctx, input, target, *args):
        value = _loss_with_grad_inplace_op(input, target, *args)
        ctx.save_for_backward(input)  # holds the gradient now
        loss, reduction, _scale, axis = args[1:5]
        ctx.reduction, ctx.rowwise, ctx.axis = reduction, BY_NAME[loss].rowwise, axis
        return value

    @staticmethod
    def backward(ctx, grad_loss):
        _refuse_double_backward()
        (grad,) = ctx.saved_tensors
        grad = _scaled(grad, grad_loss, ctx, in_place=True)
        grad_target = -grad if ctx.needs_input_grad[1] else None
        return (grad, grad_target) + _NO_GRADS


def _apply(
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
    """Call the right op: loss only without autograd, else fused (in place if asked)."""
    numeric = {name: options.pop(name, default) for name, default in _NUMERIC_OPTIONS}
    args = (
        vector,
        loss,
        reduction,
        float(scale),
        axis,
        _pack(numeric),
        options.pop("variant", "crammer_singer"),
    )
    if not (torch.is_grad_enabled() and (input.requires_grad or target.requires_grad)):
        return _loss_op(input, target, *args)
    if target.requires_grad and loss not in _DIFFERENCE_LOSSES:
        raise NotImplementedError(
            f"fastloss.torch.{loss}: the gradient w.r.t. the target is not implemented; pass target.detach()"
        )
    if vector is not None and vector.requires_grad:
        raise NotImplementedError(
            f"fastloss.torch.{loss}: the gradient w.r.t. the class weights is not implemented"
        )
    if inplace_backward:
        if input.is_leaf:
            raise ValueError(
                f"fastloss.torch.{loss}: inplace_backward=True would overwrite a leaf tensor (a parameter or "
                "a user-created tensor) with the gradient; pass logits computed from it instead"
            )
        return _InplaceLoss.apply(input, target, *args)
    return _loss_with_grad_op(input, target, *args)[0]


def _reduction(size_average: bool | None, reduce: bool | None, reduction: str) -> str:
    if size_average is not None or reduce is not None:
        return torch.nn._reduction.legacy_get_string(size_average, reduce)
    return reduction


def _same_shape_target(input: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
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


def _class_dim(input: Tensor) -> int:
    """PyTorch's class dim: 1 for (N, C, d1, ..., dK), 0 for an unbatched (C,) input."""
    return 0 if input.dim() == 1 else 1


# ---- functional ----------------------------------------------------------------------------------


def cross_entropy(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    *,
    z_loss: float = 0.0,
    softcap: float | None = None,
    inplace_backward: bool = False,
) -> Tensor:
    """``torch.nn.functional.cross_entropy`` as one fused pass; class dim 1 (0 for unbatched (C,)).

    ``target``: class indices (input's shape without the class dim) or probabilities (input's shape).
    ``l_i = (1-eps)*w_t*(lse - z_t) + (eps/C)*sum_c w_c*(lse - z_c) + z_loss*lse**2`` with
    ``z = softcap*tanh(x/softcap)`` if ``softcap`` else ``x``; "mean" divides by ``sum_i w_{t_i}``.
    Extras: ``z_loss`` (PaLM's auxiliary ``lse**2`` term), ``softcap`` (Gemma-2 logit capping),
    ``inplace_backward`` (see the module docstring).
    """
    return _apply(
        "cross_entropy",
        input,
        target,
        _reduction(size_average, reduce, reduction),
        vector=weight,
        axis=_class_dim(input),
        inplace_backward=inplace_backward,
        ignore_index=ignore_index,
        label_smoothing=label_smoothing,
        z_loss=z_loss,
        softcap=softcap,
    )


def huber_loss(
    input: Tensor,
    target: Tensor,
    reduction: str = "mean",
    delta: float = 1.0,
    weight: Tensor | None = None,
) -> Tensor:
    """``torch.nn.functional.huber_loss``: ``l = 0.5*e**2 if |e| < delta else delta*(|e| - 0.5*delta)``.

    ``e = input - target``; an elementwise ``weight`` multiplies each loss before the reduction.
    """
    input, target = _same_shape_target(input, target)
    if weight is None:
        return _apply("huber_loss", input, target, reduction, delta=delta)
    if weight.size() != input.size():
        raise ValueError("Weights and input must have the same size.")
    weighted = _apply("huber_loss", input, target, "none", delta=delta) * weight
    return _reduce(weighted, reduction)


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.mean()
    raise ValueError(f"reduction must be one of ('none', 'mean', 'sum'), got {reduction!r}")


def smooth_l1_loss(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    beta: float = 1.0,
) -> Tensor:
    """``torch.nn.functional.smooth_l1_loss``: ``l = 0.5*e**2/beta if |e| < beta else |e| - 0.5*beta``."""
    input, target = _same_shape_target(input, target)
    return _apply("smooth_l1_loss", input, target, _reduction(size_average, reduce, reduction), beta=beta)


def multi_margin_loss(
    input: Tensor,
    target: Tensor,
    p: int = 1,
    margin: float = 1.0,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """``torch.nn.functional.multi_margin_loss``: ``l_i = sum_{j!=t} w_t*max(0, margin - x_t + x_j)**p / C``.

    fastloss's Weston-Watkins multiclass hinge divided by C; ``p`` is 1 or 2.
    """
    if p not in (1, 2):
        raise ValueError(f"only p == 1 and p == 2 supported, got p={p!r}")
    if input.dim() not in (1, 2):
        raise ValueError(f"multi_margin_loss expects a 1-D or 2-D input, got shape {tuple(input.shape)}")
    # PyTorch has no ignore_index here: an impossible one keeps every row and rejects -100.
    return _apply(
        "multiclass_hinge_loss",
        input,
        target,
        _reduction(size_average, reduce, reduction),
        vector=weight,
        scale=1.0 / input.shape[-1],
        axis=input.dim() - 1,
        ignore_index=-(2**63),
        margin=margin,
        squared=p == 2,
        variant="weston_watkins",
    )


def sigmoid_focal_loss(
    inputs: Tensor,
    targets: Tensor,
    alpha: float = 0.25,
    gamma: float = 2,
    reduction: str = "none",
) -> Tensor:
    """``torchvision.ops.sigmoid_focal_loss`` (note: ``reduction="none"`` by default, as torchvision).

    ``p = sigmoid(x)``, ``p_t = p*y + (1-p)*(1-y)``, ``l = BCEWithLogits(x, y)*(1-p_t)**gamma``, times
    ``alpha*y + (1-alpha)*(1-y)`` when ``alpha >= 0``.
    """
    return _apply("sigmoid_focal_loss", inputs, targets, reduction, alpha=float(alpha), gamma=float(gamma))


def softmax_focal_loss(
    input: Tensor,
    target: Tensor,
    alpha=None,
    gamma: float = 2.0,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> Tensor:
    """Multi-class focal loss, class dim 1: ``l_i = -alpha_t*(1-p_t)**gamma*log p_t``.

    ``alpha``: None, a float, or a per-class tensor (C,); "mean" divides by the non-ignored rows.
    """
    vector = alpha if isinstance(alpha, Tensor) else None
    scalar = None if vector is not None or alpha is None else float(alpha)
    return _apply(
        "softmax_focal_loss",
        input,
        target,
        reduction,
        vector=vector,
        axis=_class_dim(input),
        ignore_index=ignore_index,
        alpha=scalar,
        gamma=float(gamma),
    )


def hinge_loss(
    input: Tensor, target: Tensor, margin: float = 1.0, squared: bool = False, reduction: str = "mean"
) -> Tensor:
    """Binary hinge: ``l = max(0, margin - y*s)`` (squared if ``squared``); ``y`` in {-1, +1} or {0, 1}."""
    return _apply("hinge_loss", input, target, reduction, margin=margin, squared=squared)


def multiclass_hinge_loss(
    input: Tensor,
    target: Tensor,
    margin: float = 1.0,
    squared: bool = False,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> Tensor:
    """Crammer-Singer multiclass hinge, class dim 1: ``l_i = w_t*max(0, margin + max_{j!=t} s_j - s_t)``."""
    return _apply(
        "multiclass_hinge_loss",
        input,
        target,
        reduction,
        vector=weight,
        axis=_class_dim(input),
        ignore_index=ignore_index,
        margin=margin,
        squared=squared,
        variant="crammer_singer",
    )


# ---- modules -------------------------------------------------------------------------------------


class CrossEntropyLoss(nn.modules.loss._WeightedLoss):
    """Drop-in for ``torch.nn.CrossEntropyLoss``; see :func:`cross_entropy`."""

    def __init__(
        self,
        weight: Tensor | None = None,
        size_average=None,
        ignore_index: int = -100,
        reduce=None,
        reduction: str = "mean",
        label_smoothing: float = 0.0,
        *,
        z_loss: float = 0.0,
        softcap: float | None = None,
        inplace_backward: bool = False,
    ) -> None:
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index, self.label_smoothing = ignore_index, label_smoothing
        self.z_loss, self.softcap, self.inplace_backward = z_loss, softcap, inplace_backward

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return cross_entropy(
            input,
            target,
            weight=self.weight,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
            label_smoothing=self.label_smoothing,
            z_loss=self.z_loss,
            softcap=self.softcap,
            inplace_backward=self.inplace_backward,
        )


class HuberLoss(nn.modules.loss._Loss):
    """Drop-in for ``torch.nn.HuberLoss``; see :func:`huber_loss`."""

    def __init__(self, reduction: str = "mean", delta: float = 1.0) -> None:
        super().__init__(reduction=reduction)
        self.delta = delta

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return huber_loss(input, target, reduction=self.reduction, delta=self.delta)


class SmoothL1Loss(nn.modules.loss._Loss):
    """Drop-in for ``torch.nn.SmoothL1Loss``; see :func:`smooth_l1_loss`."""

    def __init__(self, size_average=None, reduce=None, reduction: str = "mean", beta: float = 1.0) -> None:
        super().__init__(size_average, reduce, reduction)
        self.beta = beta

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)


class MultiMarginLoss(nn.modules.loss._WeightedLoss):
    """Drop-in for ``torch.nn.MultiMarginLoss``; see :func:`multi_margin_loss`."""

    def __init__(
        self,
        p: int = 1,
        margin: float = 1.0,
        weight: Tensor | None = None,
        size_average=None,
        reduce=None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(weight, size_average, reduce, reduction)
        if p not in (1, 2):
            raise ValueError("only p == 1 and p == 2 supported")
        self.p, self.margin = p, margin

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return multi_margin_loss(
            input, target, p=self.p, margin=self.margin, weight=self.weight, reduction=self.reduction
        )


class SigmoidFocalLoss(nn.modules.loss._Loss):
    """Module form of :func:`sigmoid_focal_loss` (torchvision's formula; default reduction "mean")."""

    def __init__(self, alpha: float = 0.25, gamma: float = 2.0, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.alpha, self.gamma = alpha, gamma

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return sigmoid_focal_loss(input, target, alpha=self.alpha, gamma=self.gamma, reduction=self.reduction)


class SoftmaxFocalLoss(nn.modules.loss._Loss):
    """Module form of :func:`softmax_focal_loss`; a per-class ``alpha`` tensor is a buffer."""

    def __init__(
        self, alpha=None, gamma: float = 2.0, ignore_index: int = -100, reduction: str = "mean"
    ) -> None:
        super().__init__(reduction=reduction)
        self.register_buffer("alpha", alpha if isinstance(alpha, Tensor) else None)
        self.alpha_scalar = None if isinstance(alpha, Tensor) else alpha
        self.gamma, self.ignore_index = gamma, ignore_index

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        alpha = self.alpha if self.alpha is not None else self.alpha_scalar
        return softmax_focal_loss(
            input,
            target,
            alpha=alpha,
            gamma=self.gamma,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
        )


class HingeLoss(nn.modules.loss._Loss):
    """Module form of :func:`hinge_loss` (binary)."""

    def __init__(self, margin: float = 1.0, squared: bool = False, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.margin, self.squared = margin, squared

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return hinge_loss(input, target, margin=self.margin, squared=self.squared, reduction=self.reduction)


class MultiClassHingeLoss(nn.modules.loss._WeightedLoss):
    """Module form of :func:`multiclass_hinge_loss` (Crammer-Singer)."""

    def __init__(
        self,
        margin: float = 1.0,
        squared: bool = False,
        weight: Tensor | None = None,
        ignore_index: int = -100,
        reduction: str = "mean",
    ) -> None:
        super().__init__(weight, reduction=reduction)
        self.margin, self.squared, self.ignore_index = margin, squared, ignore_index

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return multiclass_hinge_loss(
            input,
            target,
            margin=self.margin,
            squared=self.squared,
            weight=self.weight,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
        )


from .lm_head import LinearCrossEntropyLoss, linear_cross_entropy, vocab_parallel_cross_entropy

__all__ += ["LinearCrossEntropyLoss", "linear_cross_entropy", "vocab_parallel_cross_entropy"]
