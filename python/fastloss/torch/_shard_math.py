"""Cross-entropy over a vocabulary split across ranks (Megatron's convention), from O(rows) statistics.

Rank r holds the contiguous classes [r*V/P, (r+1)*V/P) of every row. The full-vocabulary loss
needs, per row, only the global max, the sum of exponentials, the target's logit and (for label
smoothing) the weighted sum of logits; these are all-reduced, never the logits. Every rank then
computes the same loss and the gradient of its own shard.

With ``z = softcap*tanh(x/softcap)`` (or ``x``), ``lse`` the full-vocabulary logsumexp, ``p = exp(z - lse)``
and ``W = sum_c w_c`` over all V classes:
``l = (1-eps)*w_t*(lse - z_t) + (eps/V)*(W*lse - sum_c w_c*z_c) + z_loss*lse**2`` and
``dl/dz_c = ((1-eps)*w_t + (eps/V)*W + 2*z_loss*lse)*p_c - (1-eps)*w_t*[c == t] - (eps/V)*w_c``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor


@dataclass(frozen=True)
class Shard:
    """This rank's place in the vocabulary and the loss options (class weights already sliced)."""

    group: object
    first: int  # first class this rank holds
    size: int  # classes per rank
    classes: int  # the full vocabulary V
    ignore_index: int
    label_smoothing: float
    z_loss: float
    softcap: float | None
    weight_full: Tensor | None  # (V,) compute dtype, for w_t
    weight_shard: Tensor | None  # (size,) compute dtype
    weight_sum: float


def resolve_group(name: str):
    """The process group a custom op was given by name (a schema cannot carry the object)."""
    from torch.distributed.distributed_c10d import _resolve_process_group

    return _resolve_process_group(name)


def check_agreement(
    group,
    device,
    *,
    shard_size: int,
    input_hidden: int,
    weight_hidden: int,
    target: Tensor,
    ignore_index: int,
    weight_name: str,
) -> None:
    """Raise the same ValueError on every rank when the ranks' shapes or targets disagree.

    One all-gather of 7 integers per rank, so a rank whose own arguments are fine still learns that
    another rank's are not, and raises instead of waiting in the next collective forever.
    """
    valid = target[target != ignore_index]
    low = int(valid.min()) if valid.numel() else 0
    high = int(valid.max()) if valid.numel() else -1
    mine = torch.tensor(
        [shard_size, input_hidden, weight_hidden, target.numel(), low, high, int(target.sum())],
        dtype=torch.int64,
        device=device,
    )
    everyone = [torch.empty_like(mine) for _ in range(dist.get_world_size(group))]
    dist.all_gather(everyone, mine, group=group)
    rows = [r.tolist() for r in everyone]
    sizes = [r[0] for r in rows]
    if len(set(sizes)) > 1:
        raise ValueError(
            f"{weight_name} shards differ across ranks: {sizes} classes per rank; the vocabulary must be "
            "split in equal contiguous shards (rank r holds classes [r*V/P, (r+1)*V/P))"
        )
    for rank, (_, h_in, h_w, *_rest) in enumerate(rows):
        if h_in != h_w:
            raise ValueError(f"input has hidden size {h_in} but linear_weight has {h_w} (on rank {rank})")
    if len({r[3] for r in rows}) > 1 or len({r[6] for r in rows}) > 1:
        raise ValueError(
            f"target differs across ranks ({[r[3] for r in rows]} rows); input and target must be "
            "replicated on every rank of the process group"
        )
    classes = sizes[0] * len(rows)
    for rank, r in enumerate(rows):
        if r[4] < 0 or r[5] >= classes:
            bad = r[4] if r[4] < 0 else r[5]
            raise ValueError(
                f"target value {bad} (on rank {rank}) is out of range [0, {classes}) of the full vocabulary "
                f"and is not ignore_index={ignore_index}"
            )


def capped(x: Tensor, softcap: float | None) -> Tensor:
    return softcap * torch.tanh(x / softcap) if softcap is not None else x


def row_stats(z: Tensor, target: Tensor, shard: Shard, in_place: bool) -> tuple[Tensor, ...]:
    """(lse, z_target, sum_c w_c*z_c, e, sum_e) of each row over the FULL vocabulary.

    ``z``: (rows, size) capped logits; ``e = exp(z - global row max)`` (rows, size), written over
    ``z`` when ``in_place`` (the softmax of this shard is ``e / sum_e``, so the gradient needs no
    second exp).
    """
    row_max = z.amax(dim=1)  # (rows,)
    dist.all_reduce(row_max, op=dist.ReduceOp.MAX, group=shard.group)
    # A row of -inf everywhere has no finite max; shifting by 0 keeps exp() at 0 instead of nan.
    shift = torch.where(torch.isfinite(row_max), row_max, torch.zeros_like(row_max))
    sums = z.new_zeros(3, z.shape[0])
    local = (target >= shard.first) & (target < shard.first + shard.size)
    column = (target - shard.first).clamp(0, shard.size - 1)
    sums[1] = torch.where(local, z.gather(1, column[:, None]).squeeze(1), sums[1])
    if shard.label_smoothing:
        sums[2] = z @ shard.weight_shard if shard.weight_shard is not None else z.sum(dim=1)
    e = torch.sub(z, shift[:, None], out=z if in_place else None).exp_()
    sums[0] = e.sum(dim=1)
    dist.all_reduce(sums, group=shard.group)
    return shift + torch.log(sums[0]), sums[1], sums[2], e, sums[0]


def target_weight(target: Tensor, shard: Shard, dtype: torch.dtype) -> Tensor:
    """w_t per row (1 without class weights; ignored rows read class 0 and are masked later)."""
    if shard.weight_full is None:
        return torch.ones(target.shape, dtype=dtype, device=target.device)
    safe = torch.where(target == shard.ignore_index, torch.zeros_like(target), target)
    return shard.weight_full[safe]


def row_loss(
    lse: Tensor, z_target: Tensor, z_weighted: Tensor, w_t: Tensor, valid: Tensor, shard: Shard
) -> Tensor:
    eps, classes = shard.label_smoothing, shard.classes
    loss = (1 - eps) * w_t * (lse - z_target) + shard.z_loss * lse * lse
    if eps:
        loss = loss + (eps / classes) * (shard.weight_sum * lse - z_weighted)
    return torch.where(valid, loss, torch.zeros_like(loss))


def shard_grad(
    e: Tensor, sum_e: Tensor, lse: Tensor, target: Tensor, w_t: Tensor, row_scale: Tensor, shard: Shard
) -> Tensor:
    """d(sum_i row_scale_i * l_i)/dz for this shard's columns, written over ``e`` (see row_stats)."""
    eps, classes = shard.label_smoothing, shard.classes
    a = (1 - eps) * w_t + (eps / classes) * shard.weight_sum + 2 * shard.z_loss * lse
    grad = e.mul_((a * row_scale / sum_e)[:, None])  # a * p * row_scale
    if eps:
        smooth = shard.weight_shard if shard.weight_shard is not None else grad.new_ones(shard.size)
        grad.sub_(torch.outer(row_scale, smooth), alpha=eps / classes)
    local = (target >= shard.first) & (target < shard.first + shard.size)
    rows = torch.nonzero(local).squeeze(1)
    grad[rows, target[rows] - shard.first] -= ((1 - eps) * w_t * row_scale)[rows]
    return grad


def shard_chunk(
    x: Tensor, target: Tensor, row_scale: Tensor | None, shard: Shard, compute: torch.dtype, in_place: bool
) -> tuple[Tensor, Tensor | None]:
    """(row losses, gradient or None) of one chunk of this shard's logits ``x`` (rows, size).

    ``row_scale``: d(total)/d(l_i) per row (0 on ignored rows is applied here), or None for the
    loss alone. ``in_place``: ``x`` may be overwritten (it then holds the gradient, if any).
    Collectives: two all-reductions of O(rows).
    """
    z = capped(x.to(compute), shard.softcap)
    own = z is not x or in_place
    lse, z_target, z_weighted, e, sum_e = row_stats(z, target, shard, in_place=own and shard.softcap is None)
    valid = target != shard.ignore_index
    w_t = target_weight(target, shard, compute)
    loss = row_loss(lse, z_target, z_weighted, w_t, valid, shard)
    if row_scale is None:
        return loss, None
    scale = torch.where(valid, row_scale.to(compute), torch.zeros_like(lse))
    grad = shard_grad(e, sum_e, lse, target, w_t, scale, shard)
    if shard.softcap is not None:
        grad.mul_(1 - (z / shard.softcap) ** 2)  # through z = softcap*tanh(x/softcap)
    return loss, grad
