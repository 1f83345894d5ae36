"""``torch.nn.functional``-style drop-ins: PyTorch's signatures, defaults, layouts (class dim 1,
K-dim inputs (N, C, d1, ..., dK), unbatched (C,)) and legacy ``size_average``/``reduce``; fastloss
extras are keyword-only. Each is one call of ``_ops.apply``."""

from __future__ import annotations

from torch import Tensor

from . import _ops


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
    if input.dim() not in (1, 2):
        raise ValueError(f"multi_margin_loss expects a 1-D or 2-D input, got shape {tuple(input.shape)}")
    # PyTorch has no ignore_index here: an impossible one keeps every row and rejects -100.
    return _ops.apply(
        "multiclass_hinge_loss",
        input,
        target,
        _ops.reduction_of(size_average, reduce, reduction),
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
    return _ops.apply("sigmoid_focal_loss", inputs, targets, reduction, alpha=float(alpha), gamma=float(gamma))


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
    return _ops.apply(
        "softmax_focal_loss",
        input,
        target,
        reduction,
        vector=vector,
        axis=_ops.class_dim(input),
        ignore_index=ignore_index,
        alpha=scalar,
        gamma=float(gamma),
    )


def hinge_loss(
    input: Tensor, target: Tensor, margin: float = 1.0, squared: bool = False, reduction: str = "mean"
) -> Tensor:
    """Binary hinge: ``l = max(0, margin - y*s)`` (squared if ``squared``); ``y`` in {-1, +1} or {0, 1}."""
    return _ops.apply("hinge_loss", input, target, reduction, margin=margin, squared=squared)


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
    return _ops.apply(
        "multiclass_hinge_loss",
        input,
        target,
        reduction,
        vector=weight,
        axis=_ops.class_dim(input),
        ignore_index=ignore_index,
        margin=margin,
        squared=squared,
        variant="crammer_singer",
    )


def softmax_kl_div(input: Tensor, target: Tensor, temperature: float = 1.0, reduction: str = "mean") -> Tensor:
    """Knowledge distillation in one fused pass, class dim 1 (0 for unbatched (C,)).

    ``target``: the teacher's logits, of ``input``'s shape. ``p = softmax(input/T)``,
    ``q = softmax(target/T)``, ``l_i = sum_c q_c*(log q_c - log p_c)``; the gradient w.r.t. ``input``
    is ``(p - q)/T`` (none w.r.t. the teacher: pass ``target.detach()``). "mean" divides by the number
    of rows, i.e. ``F.kl_div(F.log_softmax(input/T, 1), F.log_softmax(target/T, 1), log_target=True,
    reduction="batchmean")`` for 2-D inputs. No ``T**2`` factor: multiply by it for Hinton et al.'s scaling.
    """
    return _ops.apply("softmax_kl_div", input, target, reduction, axis=_ops.class_dim(input),
                      temperature=float(temperature))


def wasserstein_loss(
    input: Tensor, target: Tensor, p: int = 1, ignore_index: int = -100, reduction: str = "mean"
) -> Tensor:
    """1-D earth mover's distance over ordered classes, class dim 1: ``l_i = sum_c |F_c - G_c|**p``.

    ``F = cumsum(softmax(input))``, ``G`` the cumulative target distribution: class indices (one-hot,
    ``ignore_index`` rows give 0) or probabilities of ``input``'s shape; ``p`` is 1 or 2 (squared
    EMD). "mean" divides by the number of non-ignored rows.
    """
    return _ops.apply("wasserstein_loss", input, target, reduction, axis=_ops.class_dim(input),
                      p=p, ignore_index=ignore_index)
