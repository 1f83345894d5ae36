"""``torch.nn.functional``-style drop-ins: PyTorch's signatures, defaults, layouts (class dim 1,
K-dim inputs (N, C, d1, ..., dK), unbatched (C,)) and legacy ``size_average``/``reduce``; fastloss
extras are keyword-only. Each is one call of ``_ops.apply``. The losses PyTorch does not have are
derived from the spec (``_derived.py``: ``fastloss.torch.<name>`` with the spec's options)."""

from __future__ import annotations

import functools
import warnings

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import _spec
from . import _derived, _errors, _ops


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
    if not z_loss and softcap is None and not inplace_backward and _ops.torch_is_faster(input, "cross_entropy"):
        return F.cross_entropy(input, target, weight, size_average, ignore_index, reduce, reduction,
                               _ops.literal_default(label_smoothing, 0.0))
    return _ops.apply(
        "cross_entropy",
        input,
        target,
        _ops.reduction_of(size_average, reduce, reduction),
        vector=weight,
        axis=_ops.class_dim(input),
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
    if _ops.torch_is_faster(input, "huber_loss"):
        return F.huber_loss(input, target, reduction, _ops.literal_default(delta, 1.0), weight)
    input, target = _ops.same_shape_target(input, target)
    if weight is None:
        return _ops.apply("huber_loss", input, target, reduction, delta=delta)
    if weight.size() != input.size():
        raise ValueError("Weights and input must have the same size.")
    weighted = _ops.apply("huber_loss", input, target, "none", delta=delta) * weight
    return _ops.reduce(weighted, reduction)


def smooth_l1_loss(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    beta: float = 1.0,
) -> Tensor:
    """``torch.nn.functional.smooth_l1_loss``: ``l = 0.5*e**2/beta if |e| < beta else |e| - 0.5*beta``."""
    if _ops.torch_is_faster(input, "smooth_l1_loss"):
        return F.smooth_l1_loss(input, target, size_average, reduce, reduction, _ops.literal_default(beta, 1.0))
    input, target = _ops.same_shape_target(input, target)
    return _ops.apply("smooth_l1_loss", input, target, _ops.reduction_of(size_average, reduce, reduction), beta=beta)


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
    if input.dim() > 2:
        raise ValueError(f"multi_margin_loss expects a 0-D, 1-D or 2-D input, got shape {tuple(input.shape)}")
    if _ops.torch_is_faster(input, "multiclass_hinge_loss"):
        return F.multi_margin_loss(input, target, p, _ops.literal_default(margin, 1.0), weight, size_average, reduce,
                                   reduction)
    reduction = _ops.reduction_of(size_average, reduce, reduction)
    unbatched = input.dim() < 2  # PyTorch: a 0-d or (C,) input is one sample, its target 0-d or (1,)
    if unbatched and target.numel() != 1:
        raise ValueError(
            f"multi_margin_loss: an unbatched input of shape {tuple(input.shape)} takes a target of one "
            f"element, got shape {tuple(target.shape)}"
        )
    loss = _ops.apply(
        "multiclass_hinge_loss",
        input.reshape(1, -1) if unbatched else input,
        target.reshape(1) if unbatched else target,
        reduction,
        vector=weight,
        scale=1.0 / max(1, input.shape[-1] if input.dim() else 1),
        axis=1,
        # PyTorch has no ignore_index here: an impossible one keeps every row and rejects -100.
        ignore_index=-(2**63),
        margin=margin,
        squared=p == 2,
        variant="weston_watkins",
    )
    return loss.reshape(target.shape) if unbatched and reduction == "none" else loss


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
    return _ops.apply("sigmoid_focal_loss", inputs, targets, reduction, alpha=float(alpha), gamma=float(gamma))


# ---- the seeds' other losses (DESIGN 1.1b) ------------------------------------------------------


def _weighted_mean_or_reduce(loss: Tensor, weight: Tensor, reduction: str) -> Tensor:
    """PyTorch 2.13's weighted mse/l1: "mean" divides by sum(weight), not by the element count."""
    if reduction == "mean":
        return loss.sum() / weight.sum()
    return _ops.reduce(loss, reduction)


def _difference_loss(name: str, input: Tensor, target: Tensor, size_average, reduce, reduction: str,
                     weight: Tensor | None) -> Tensor:
    input, target = _ops.same_shape_target(input, target)
    reduction = _ops.reduction_of(size_average, reduce, reduction)
    if weight is None:
        return _ops.apply(name, input, target, reduction)
    if weight.size() != input.size():
        raise ValueError("Weights and input must have the same size.")
    return _weighted_mean_or_reduce(_ops.apply(name, input, target, "none") * weight, weight, reduction)


def mse_loss(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    weight: Tensor | None = None,
) -> Tensor:
    """``torch.nn.functional.mse_loss``: ``l = (input - target)**2``; the target gets a gradient too.

    An elementwise ``weight`` multiplies each loss; "mean" then divides by ``weight.sum()`` (PyTorch's rule).
    """
    if _ops.torch_is_faster(input, "mse_loss"):
        return F.mse_loss(input, target, size_average, reduce, reduction, weight)
    return _difference_loss("mse_loss", input, target, size_average, reduce, reduction, weight)


def l1_loss(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    weight: Tensor | None = None,
) -> Tensor:
    """``torch.nn.functional.l1_loss``: ``l = |input - target|`` (gradient 0 at 0, as PyTorch)."""
    if _ops.torch_is_faster(input, "l1_loss"):
        return F.l1_loss(input, target, size_average, reduce, reduction, weight)
    return _difference_loss("l1_loss", input, target, size_average, reduce, reduction, weight)


def _kernel_vector(value: Tensor | None, input: Tensor, name: str) -> Tensor | float | None:
    """BCE's weight or pos_weight as the kernel takes it, under PyTorch's broadcasting: the input's
    shape or (C,) go as they are, a single pos_weight as a scalar, other shapes that broadcast to the
    input's are expanded to it (one input-sized copy)."""
    if value is None or value.shape == input.shape or (value.dim() == 1 and input.dim() and
                                                       value.shape[0] == input.shape[-1]):
        return value
    if value.numel() == 1 and name == "pos_weight" and not value.requires_grad:
        return float(value.reshape(()))
    try:
        shape = torch.broadcast_shapes(value.shape, input.shape)
    except RuntimeError:
        shape = None
    if shape != input.shape:  # PyTorch refuses a weight that would change the loss's shape too
        raise ValueError(f"fastloss.torch.binary_cross_entropy_with_logits: {name} of shape {tuple(value.shape)} "
                         "does not broadcast to the input's shape "
                         f"{tuple(input.shape)}")
    return value.expand(input.shape).contiguous()


def binary_cross_entropy_with_logits(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    pos_weight: Tensor | None = None,
) -> Tensor:
    """``torch.nn.functional.binary_cross_entropy_with_logits`` in one fused pass, log-space (finite
    for any finite logit): ``l = -w*(pw*y*log sigmoid(x) + (1-y)*log(1-sigmoid(x)))``.

    ``weight`` and ``pos_weight`` broadcast as in PyTorch: the input's shape or (C,) along the last
    axis go to the kernel as they are, other shapes that broadcast to the input's are expanded to it.
    Under ``torch.compile``, tensor weights run PyTorch's own function (the custom ops carry no
    per-element vectors).
    """
    if _ops.torch_is_faster(input, "binary_cross_entropy_with_logits"):
        return F.binary_cross_entropy_with_logits(input, target, weight, size_average, reduce, reduction, pos_weight)
    reduction = _ops.reduction_of(size_average, reduce, reduction)
    if target.size() != input.size():
        raise ValueError(f"Target size ({target.size()}) must be the same as input size ({input.size()})")
    if torch.compiler.is_compiling() and (weight is not None or pos_weight is not None):
        return F.binary_cross_entropy_with_logits(input, target, weight, reduction=reduction, pos_weight=pos_weight)
    return _ops.apply("binary_cross_entropy_with_logits", input, target, reduction,
                      weight=_kernel_vector(weight, input, "weight"),
                      pos_weight=_kernel_vector(pos_weight, input, "pos_weight"))


_KL_MEAN_WARNING = (
    "reduction: 'mean' divides the total loss by both the batch size and the support size."
    "'batchmean' divides only by the batch size, and aligns with the KL div math definition."
    "'mean' will be changed to behave the same as 'batchmean' in the next major release."
)


def kl_div(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    log_target: bool = False,
) -> Tensor:
    """``torch.nn.functional.kl_div`` (``input`` holds log-probabilities): ``l = target*(log target - input)``,
    0 where target = 0; ``log_target``: ``l = exp(target)*(target - input)``. ``reduction="batchmean"``
    divides the sum by ``input.shape[0]``; "mean" (with PyTorch's warning) by the element count."""
    if _ops.torch_is_faster(input, "kl_div"):
        return F.kl_div(input, target, size_average, reduce, reduction, log_target)
    reduction = _ops.reduction_of(size_average, reduce, reduction)
    if reduction == "mean":
        warnings.warn(_KL_MEAN_WARNING, stacklevel=2)
    if input.shape != target.shape:
        input, target = torch.broadcast_tensors(input, target)
    return _ops.apply("kl_div", input, target, reduction, log_target=bool(log_target))


def margin_ranking_loss(
    input1: Tensor,
    input2: Tensor,
    target: Tensor,
    margin: float = 0,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """``torch.nn.functional.margin_ranking_loss``: ``l = max(0, -y*(x1 - x2) + margin)``: fastloss's
    binary hinge on the score differences ``x1 - x2`` (pairwise ranking). Targets other than +-1
    (PyTorch takes any value), and calls under ``torch.compile``, are computed with PyTorch ops."""
    if _ops.torch_is_faster(input1, "hinge_loss"):
        return F.margin_ranking_loss(input1, input2, target, margin, size_average, reduce, reduction)
    reduction = _ops.reduction_of(size_average, reduce, reduction)
    if input1.dim() != input2.dim() or input1.dim() != target.dim():
        raise RuntimeError(
            f"margin_ranking_loss : All input tensors should have same dimension but got sizes: "
            f"input1: {input1.size()}, input2: {input2.size()}, target: {target.size()} "
        )
    diff = input1 - input2
    diff, target = torch.broadcast_tensors(diff, target)
    # Checking the targets needs their values: under torch.compile that is a graph break, so there
    # the loss is PyTorch's own formula.
    if target.requires_grad or torch.compiler.is_compiling() or not bool(torch.all(target.abs() == 1)):
        return _ops.reduce((margin - target * diff).clamp_min(0), reduction)
    loss = _ops.apply("hinge_loss", diff, target, reduction, margin=float(margin), squared=False)
    # At h = 0 exactly (a tie with margin=0) the drop-in gives what the installed PyTorch's
    # clamp_min backward gives: 1 up to torch 2.13, 0 from 2.14. The hinge kernel gives 0; where
    # PyTorch passes the gradient, the term below is exactly 0 in value and carries -y there.
    if _clamp_min_passes_gradient_at_zero():
        h = margin - target * diff
        tie = h.detach() == 0
        if bool(tie.any()):
            loss = loss + _ops.reduce(h * tie, reduction)
    return loss


@functools.cache
def _clamp_min_passes_gradient_at_zero() -> bool:
    """Whether this PyTorch's ``clamp_min(0)`` backward passes the gradient at exactly 0 (it did
    before torch 2.14), asked of PyTorch itself so the drop-in follows whichever version is installed."""
    x = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(x.clamp_min(0).sum(), x)
    return bool(grad.item() == 1.0)


# ---- every other loss: derived from its spec entry (_derived.py) ---------------------------------

# The losses PyTorch (torchvision: sigmoid_focal_loss) has: their adapters above follow PyTorch's
# signature. Every other loss of the spec gets its drop-in from the spec alone.
PYTORCH_COUNTERPARTS = frozenset({
    "cross_entropy", "huber_loss", "smooth_l1_loss", "mse_loss", "l1_loss", "binary_cross_entropy_with_logits",
    "kl_div", "sigmoid_focal_loss",
})
DERIVED = tuple(loss for loss in _spec.LOSSES if loss.name not in PYTORCH_COUNTERPARTS)
globals().update({loss.name: _derived.functional(loss) for loss in DERIVED})

# A mistake raises PyTorch's exception type too, at every input size (_errors.py).
for _name in _errors.COUNTERPARTS:
    globals()[_name] = _errors.like_torch(globals()[_name], _name)
