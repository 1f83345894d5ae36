"""The LM-head loss written with plain PyTorch ops (float64 oracle for the fused head's tests).

``F.cross_entropy`` has no ``z_loss`` or ``softcap``, so they are added here from DESIGN 1.2:
``z = softcap*tanh(x/softcap)``, ``l_i = CE_i(z) + z_loss*lse(z_i)**2`` on non-ignored rows, and
"mean" divides by PyTorch's denominator (sum of ``w_t`` over non-ignored rows).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def cross_entropy_reference(
    logits,
    target,
    *,
    weight=None,
    ignore_index=-100,
    label_smoothing=0.0,
    z_loss=0.0,
    softcap=None,
    reduction="mean",
):
    """logits (N, V) (autograd flows through), target (N,) class indices or (N, V) probabilities."""
    z = softcap * torch.tanh(logits / softcap) if softcap is not None else logits
    rows = F.cross_entropy(
        z, target, weight=weight, ignore_index=ignore_index, reduction="none", label_smoothing=label_smoothing
    )
    soft = target.is_floating_point()
    valid = torch.ones_like(rows, dtype=torch.bool) if soft else target != ignore_index
    if z_loss:
        rows = rows + torch.where(valid, z_loss * torch.logsumexp(z, dim=-1) ** 2, torch.zeros_like(rows))
    if reduction == "none":
        return rows
    if reduction == "sum":
        return rows.sum()
    if soft:
        return rows.sum() / rows.shape[0]
    if weight is None:
        return rows.sum() / valid.sum()
    return rows.sum() / weight[target[valid]].sum()


def linear_cross_entropy_reference(
    input, linear_weight, target, *, linear_bias=None, reduction="mean", **opts
):
    """The unfused head: F.linear, then the reference loss; input (..., H), target (...)."""
    logits = F.linear(input, linear_weight, linear_bias)
    soft = target.is_floating_point()
    flat_target = target.reshape(-1, logits.shape[-1]) if soft else target.reshape(-1)
    loss = cross_entropy_reference(
        logits.reshape(-1, logits.shape[-1]), flat_target, reduction=reduction, **opts
    )
    return loss.reshape(input.shape[:-1]) if reduction == "none" else loss
