"""Every fastloss loss written with PyTorch in float64: the independent oracle of the test suite.

Where PyTorch has the loss we call it (F.cross_entropy, F.huber_loss, F.smooth_l1_loss,
F.multi_margin_loss); the rest is written out from DESIGN.md 1.2 (torchvision's sigmoid focal loss,
softmax focal, Crammer-Singer and binary hinge). Gradients come from torch.autograd.

A point-wise loss may instead write its formula in tests/problems.py's ``TORCH_FORMULAS``, beside
its option grid (one file for a new loss's tests); it is evaluated here with torch.

``REFERENCES[name](x, target, reduction=..., **opts)`` takes torch tensors with fastloss's layout
(class axis ``axis``, default -1) and returns the reduced loss tensor. ``loss_and_grad`` wraps it for
NumPy callers: float64 loss and d(loss)/dx * grad_output.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
import torch.nn.functional as F
from problems import TORCH_FORMULAS


def _classes_at_dim1(x, target, axis, soft):
    """(x (N, C, ...), target, restore): PyTorch's layout, class axis at dim 1."""
    if x.ndim == 1:  # a single row (C,) with a 0-d target
        return x[None], target[None], lambda loss: loss[0]
    x = x.movedim(axis, 1)
    return x, (target.movedim(axis, 1) if soft else target), lambda loss: loss


def _as_rows(x, target, axis):
    """(x (M, C), target (M,)) for losses that PyTorch only has in 2-D."""
    C = x.shape[axis]
    return x.movedim(axis, -1).reshape(-1, C), target.reshape(-1)


def _reduce(loss, reduction, denominator):
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" else loss.sum() / denominator


def _valid_targets(target, ignore_index):
    valid = target != ignore_index
    return valid, torch.where(valid, target, torch.zeros_like(target))


def _vector(values):
    return None if values is None else torch.as_tensor(np.asarray(values, dtype=np.float64))


def cross_entropy(x, target, *, reduction="mean", weight=None, ignore_index=-100, label_smoothing=0.0,
                  z_loss=0.0, softcap=None, axis=-1):
    soft = target.dtype.is_floating_point
    x, target, restore = _classes_at_dim1(x, target, axis, soft)
    z = softcap * torch.tanh(x / softcap) if softcap is not None else x
    w = _vector(weight)
    loss = F.cross_entropy(z, target, weight=w, ignore_index=ignore_index, label_smoothing=label_smoothing,
                           reduction=reduction)
    if z_loss:
        zl = z_loss * torch.logsumexp(z, dim=1) ** 2
        if soft:
            denominator = zl.numel()
        else:
            valid, t = _valid_targets(target, ignore_index)
            zl = torch.where(valid, zl, torch.zeros_like(zl))
            denominator = (w[t] * valid).sum() if w is not None else valid.sum()
        loss = loss + _reduce(zl, reduction, denominator)
    return restore(loss) if reduction == "none" else loss


def softmax_focal_loss(x, target, *, reduction="mean", alpha=None, gamma=2.0, ignore_index=-100, axis=-1):
    x, target, restore = _classes_at_dim1(x, target, axis, False)
    valid, t = _valid_targets(target, ignore_index)
    logp_t = F.log_softmax(x, dim=1).gather(1, t.unsqueeze(1)).squeeze(1)
    a = 1.0 if alpha is None else (alpha if np.ndim(alpha) == 0 else _vector(alpha)[t])
    one_minus = -torch.expm1(logp_t)
    # (1-p_t)**gamma has an infinite derivative at p_t = 1 (C = 1) for gamma < 1, and autograd
    # multiplies it by the exact 0 of d log p_t; the limit of the product is 0.
    safe = torch.where(one_minus > 0, one_minus, torch.ones_like(one_minus))
    modulation = torch.where(one_minus > 0, safe**gamma, torch.full_like(one_minus, float(gamma == 0)))
    loss = -a * modulation * logp_t
    loss = torch.where(valid, loss, torch.zeros_like(loss))
    loss = _reduce(loss, reduction, valid.sum())
    return restore(loss) if reduction == "none" else loss


def sigmoid_focal_loss(x, target, *, reduction="mean", alpha=0.25, gamma=2.0):
    """torchvision.ops.sigmoid_focal_loss's formula."""
    y = target.to(x.dtype)
    p = torch.sigmoid(x)
    ce = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    p_t = p * y + (1 - p) * (1 - y)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * y + (1 - alpha) * (1 - y)) * loss
    return _reduce(loss, reduction, loss.numel())


def hinge_loss(s, target, *, reduction="mean", margin=1.0, squared=False):
    y = target.to(s.dtype)
    y = torch.where(y == 0, -torch.ones_like(y), y)
    h = F.relu(margin - y * s)  # relu: zero gradient at the kink, as multi_margin_loss has
    return _reduce(h**2 if squared else h, reduction, h.numel())


def multiclass_hinge_loss(s, target, *, reduction="mean", margin=1.0, squared=False,
                          variant="crammer_singer", weight=None, ignore_index=-100, axis=-1):
    loss_shape = target.shape
    rows, t_rows = _as_rows(s, target, axis)
    valid, t = _valid_targets(t_rows, ignore_index)
    w = _vector(weight)
    C = rows.shape[1]
    if variant == "weston_watkins":  # PyTorch's multi_margin_loss is weston_watkins / C
        loss = C * F.multi_margin_loss(rows, t, p=2 if squared else 1, margin=margin, weight=w,
                                       reduction="none")
    else:
        is_target = F.one_hot(t, C).bool()
        s_t = rows.gather(1, t.unsqueeze(1)).squeeze(1)
        best_other = rows.masked_fill(is_target, -torch.inf).max(dim=1).values
        h = F.relu(margin + best_other - s_t)
        loss = (h**2 if squared else h) * (w[t] if w is not None else 1.0)
    loss = torch.where(valid, loss, torch.zeros_like(loss))
    loss = _reduce(loss, reduction, valid.sum())
    return loss.reshape(loss_shape) if reduction == "none" else loss


def huber_loss(x, target, *, reduction="mean", delta=1.0):
    return F.huber_loss(x, target.to(x.dtype), reduction=reduction, delta=delta)


def smooth_l1_loss(x, target, *, reduction="mean", beta=1.0):
    return F.smooth_l1_loss(x, target.to(x.dtype), reduction=reduction, beta=beta)


def mse_loss(x, target, *, reduction="mean"):
    return F.mse_loss(x, target.to(x.dtype), reduction=reduction)


def l1_loss(x, target, *, reduction="mean"):
    return F.l1_loss(x, target.to(x.dtype), reduction=reduction)


def log_cosh_loss(x, target, *, reduction="mean"):
    """log(cosh(e)) written directly: fine in float64 for the test's residuals (|e| << 700)."""
    return _reduce(torch.log(torch.cosh(x - target.to(x.dtype))), reduction, x.numel())


def _tensor_or_none(value):
    return None if value is None else torch.as_tensor(np.asarray(value, dtype=np.float64))


def binary_cross_entropy_with_logits(x, target, *, reduction="mean", weight=None, pos_weight=None):
    return F.binary_cross_entropy_with_logits(x, target.to(x.dtype), weight=_tensor_or_none(weight),
                                              pos_weight=_tensor_or_none(pos_weight), reduction=reduction)


def kl_div(x, target, *, reduction="mean", log_target=False):
    with warnings.catch_warnings():  # PyTorch warns that "mean" is not KL's batchmean: we test both
        warnings.simplefilter("ignore", UserWarning)
        return F.kl_div(x, target.to(x.dtype), reduction=reduction, log_target=log_target)
def softmax_kl_div(x, target, *, reduction="mean", temperature=1.0, axis=-1):
    """F.kl_div of the tempered log-softmaxes, log_target=True, per row ("batchmean" of each row)."""
    log_p = F.log_softmax(x / temperature, dim=axis)
    log_q = F.log_softmax(target.to(x.dtype) / temperature, dim=axis)
    loss = F.kl_div(log_p, log_q, log_target=True, reduction="none").sum(dim=axis)
    return _reduce(loss, reduction, loss.numel())


def wasserstein_loss(x, target, *, reduction="mean", p=1, ignore_index=-100, axis=-1):
    """sum_c |cumsum(softmax(x)) - cumsum(target distribution)|**p, through torch.cumsum."""
    C = x.shape[axis]
    soft = target.dtype.is_floating_point
    F_ = torch.cumsum(torch.softmax(x, dim=axis), dim=axis)
    if soft:
        G = torch.cumsum(target.to(x.dtype), dim=axis)
        valid = torch.ones(F_.sum(dim=axis).shape, dtype=torch.bool)
    else:
        valid, t = _valid_targets(target, ignore_index)
        G = torch.cumsum(F.one_hot(t, C).to(x.dtype).movedim(-1, axis % x.ndim), dim=axis)
    loss = (torch.abs(F_ - G) ** p).sum(dim=axis)
    loss = torch.where(valid, loss, torch.zeros_like(loss))
    return _reduce(loss, reduction, valid.sum())


REFERENCES = {
    "cross_entropy": cross_entropy,
    "softmax_focal_loss": softmax_focal_loss,
    "sigmoid_focal_loss": sigmoid_focal_loss,
    "hinge_loss": hinge_loss,
    "multiclass_hinge_loss": multiclass_hinge_loss,
    "huber_loss": huber_loss,
    "smooth_l1_loss": smooth_l1_loss,
    "mse_loss": mse_loss,
    "l1_loss": l1_loss,
    "log_cosh_loss": log_cosh_loss,
    "binary_cross_entropy_with_logits": binary_cross_entropy_with_logits,
    "kl_div": kl_div,
    "softmax_kl_div": softmax_kl_div,
    "wasserstein_loss": wasserstein_loss,
}


def _pointwise(formula):
    """The reference of a point-wise loss whose formula is written in tests/problems.py's
    TORCH_FORMULAS (beside its option grid): called here with torch, "mean" over the elements."""
    def reference(x, target, *, reduction="mean", **opts):
        loss = formula(torch, x, target.to(x.dtype), **opts)
        return _reduce(loss, reduction, loss.numel())

    return reference


REFERENCES.update({name: _pointwise(formula) for name, formula in TORCH_FORMULAS.items()})


def torch_target(target: np.ndarray) -> torch.Tensor:
    """Class indices as int64, everything else (probabilities, 0/1, bools) as float64."""
    target = np.asarray(target)
    if target.dtype.kind in "iu":
        return torch.from_numpy(target.astype(np.int64))
    return torch.from_numpy(target.astype(np.float64))


_CACHE: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}


def _key(value):
    if isinstance(value, np.ndarray) or np.ndim(value):
        value = np.asarray(value)
        return (value.dtype.str, value.shape, value.tobytes())
    return (type(value).__name__, value)


def loss_and_grad(name, x, target, *, reduction="mean", grad_output=1.0, **opts):
    """(loss, d(loss)/dx * grad_output) in float64 NumPy, from the PyTorch reference.

    ``x``: float values (taken as float64); ``target``: class indices (any integer dtype) or floats.
    Results are cached by value, so a test repeated on every backend asks PyTorch once."""
    x = np.asarray(x, dtype=np.float64)
    key = (name, reduction, _key(x), _key(np.asarray(target)), _key(grad_output),
           tuple(sorted((k, _key(v)) for k, v in opts.items())))
    if key not in _CACHE:
        _CACHE[key] = _loss_and_grad(name, x, target, reduction, grad_output, opts)
    loss, grad = _CACHE[key]
    return loss.copy(), grad.copy()


def _loss_and_grad(name, x, target, reduction, grad_output, opts):
    xt = torch.tensor(x, requires_grad=True)
    t = torch_target(target)
    loss = REFERENCES[name](xt, t, reduction=reduction, **opts)
    g = torch.as_tensor(np.asarray(grad_output, dtype=np.float64)).expand_as(loss)
    (grad,) = torch.autograd.grad(loss, xt, g, allow_unused=True)
    grad = torch.zeros_like(xt) if grad is None else grad
    return loss.detach().numpy(), grad.numpy()
