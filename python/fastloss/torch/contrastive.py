"""Contrastive losses at any batch size: InfoNCE, CLIP, SigLIP and NT-Xent without the (N, N) matrix.

All four are one similarity matrix ``z = s * rows @ cols.T (+ b)`` turned into a loss, handled by the
tiled engine (``_contrastive_tiles``): strips of rows are computed, turned by fastloss's fused kernels
into their share of the loss and of every gradient (both embedding sets, the scale, the bias), and
dropped. Extra memory: one (or, for the two-direction CLIP loss, two) strip(s) of ``rows x N``, the
rows chosen so the strips fit 32 MiB on CPU (1 GiB on CUDA) but never fewer than 64 (so beyond
N = 65536 the strips grow as 512 * N bytes), plus the gradients themselves and, with a process group,
the gathered (N, D) embeddings; ``chunk_size`` sets the rows per strip instead. As in the fused LM head, the forward computes the gradients for
``grad_output = 1`` and the backward only scales them (``reduction="none"`` recomputes in the backward).

Distributed (``process_group``): each rank passes its local batch; the loss is the GLOBAL batch's (all
ranks' negatives), identical on every rank, and each rank's inputs get their slice of that loss's
gradient. Communication per call: one all-gather of the embeddings (O(N*D)), for CLIP two all-reductions
of per-column statistics (O(N)), one all-reduction of the column-side gradient (O(N*D)) and of a few
scalars; never a similarity tile. As with open_clip's ``ClipLoss`` (``gather_with_grad=False``), a
data-parallel wrapper that AVERAGES parameter gradients over P ranks then holds 1/P of the global
loss's gradient; multiply the loss by P (or sum the gradients) for the exact one.

Speed on CPU: the strips alternate torch's matmuls with fastloss's kernels; with OpenMP's default wait
policy torch's idle threads spin after every op and take the cores from the kernels, so set
``OMP_WAIT_POLICY=passive`` before starting Python (measured, N = 8192, D = 512, 2 threads: the CLIP
step at 2.8x the time of the bare matmuls by default, 1.35x passive; the tiling's own floor is 4/3).

The ops are ``torch.library`` custom ops with fake implementations (``torch.compile(fullgraph=True)``
traces them). Double backward is not supported.
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor

from . import _contrastive_tiles as tiles
from . import _shard_math
from .lm_head import _group_name, _scaled

__all__ = ["clip_loss", "info_nce", "nt_xent", "siglip_loss"]

_REDUCTIONS = ("none", "mean", "sum")
_ARGS = "Tensor rows, Tensor cols, Tensor? logit_scale, float scale, Tensor? logit_bias"
_OPTIONS = "str kind, str layout, bool symmetric, int chunk_size, bool[] needs, str group"


# ---- the work, on plain tensors (inside the custom ops) ---------------------------------------


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _check_agreement(group, rows: Tensor, cols: Tensor, needs) -> None:
    """The same ValueError on every rank when the ranks' shapes differ (one all-gather of 5 ints)."""
    mine = torch.tensor([*rows.shape, *cols.shape, sum(int(b) << i for i, b in enumerate(needs))])
    mine = mine.to(rows.device)
    everyone = [torch.empty_like(mine) for _ in range(dist.get_world_size(group))]
    dist.all_gather(everyone, mine, group=group)
    shapes = [tuple(r.tolist()) for r in everyone]
    if len(set(shapes)) > 1:
        raise ValueError(
            "the ranks' local batches differ: (rows, D, columns, D, gradient flags) per rank "
            f"{shapes}; every rank must pass the same number of samples of the same size"
        )


def _gather(x: Tensor, group) -> Tensor:
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size(group))]
    dist.all_gather(parts, x.contiguous(), group=group)
    return torch.cat(parts)


def _targets(layout: str, n: int, m: int, rank: int, device) -> tuple[Tensor, Tensor | None]:
    """Each row's positive column among all ranks' columns (rank r's block starts at r*m), and for
    "views" (NT-Xent: rows = [z1; z2]) the row's own column, excluded."""
    local = torch.arange(n, device=device)
    if layout == "pairs":
        return rank * m + local, None
    half = n // 2
    partner = torch.where(local < half, local + half, local - half)
    return rank * m + partner, rank * m + local


def _contrastive(rows, cols, logit_scale, scale, logit_bias, kind, layout, symmetric, reduction,
                 chunk_size, needs, group, grad_loss=None):
    """Forward (``grad_loss`` None: loss, and gradients for mean/sum) or the "none" backward."""
    compute = _compute_dtype(rows.dtype)
    r, c = rows.to(compute), cols.to(compute)
    pg = _shard_math.resolve_group(group) if group else None
    world, rank = (dist.get_world_size(pg), dist.get_rank(pg)) if pg is not None else (1, 0)
    if pg is not None:
        if grad_loss is None:
            _check_agreement(pg, rows, cols, needs)
        c = _gather(c, pg)
    n, m_local = r.shape[0], cols.shape[0]
    target, exclude = _targets(layout, n, m_local, rank, r.device)
    samples = n * world  # the global batch's rows: "mean" divides by it
    s = float(logit_scale) if logit_scale is not None else scale
    b = float(logit_bias) if logit_bias is not None else 0.0
    need_rows, need_cols, need_scale, need_bias = needs
    if grad_loss is None:
        base = (1.0 / samples if samples else 0.0) if reduction == "mean" else 1.0
        grads = reduction != "none" and any(needs)
        row_w = base / 2 if symmetric else base
        col_w = row_w if symmetric else None
    else:
        grads = True
        g = grad_loss.reshape(-1).to(compute)
        row_w = g / 2 if symmetric else g
        col_w = (_gather(row_w, pg) if pg is not None else row_w) if symmetric else None
    buffers = 2 if (symmetric and grads) or kind == "sigmoid" else 1  # the strip and a second one
    chunk = chunk_size or tiles.auto_strip_rows(n, c.shape[0], buffers, c.element_size(), r.device)
    problem = tiles.Tiles(r, c, target, exclude, s, b, kind, chunk, pg)
    total, row_loss, col_loss, out = tiles.run(
        problem,
        row_weight=row_w,
        col_weight=col_w,
        need_rows=need_rows,
        need_cols=need_cols or (pg is not None and any(needs)),
        need_scale=need_scale,
        need_bias=need_bias,
        grads=grads,
    )
    grad_rows, grad_cols = out.rows, out.cols
    scalars = torch.stack([out.scale, out.bias, total + (col_loss.sum(dtype=torch.float64) if symmetric else 0)])
    if pg is not None:
        if grads:
            dist.all_reduce(grad_cols, group=pg)
            grad_cols = grad_cols[rank * m_local : (rank + 1) * m_local]
        dist.all_reduce(scalars, group=pg)
    loss_dtype = torch.float64 if rows.dtype == torch.float64 else torch.float32
    if grad_loss is not None or reduction == "none":
        loss = (row_loss + col_loss) / 2 if symmetric else row_loss
    else:
        loss = scalars[2] * (base / 2 if symmetric else base)
        if reduction == "mean" and not samples:
            loss = loss * math.nan
    results = (
        loss.to(loss_dtype),
        _grad(grad_rows, rows, grads and need_rows),
        _grad(grad_cols, cols, grads and need_cols),
        _scalar_grad(scalars[0], logit_scale, grads and need_scale),
        _scalar_grad(scalars[1], logit_bias, grads and need_bias),
    )
    return results[1:] if grad_loss is not None else results


def _grad(g: Tensor | None, like: Tensor, need: bool) -> Tensor:
    return g.to(like.dtype) if need else like.new_empty(0)


def _scalar_grad(g: Tensor, like: Tensor | None, need: bool) -> Tensor:
    if not need or like is None:
        return g.new_empty(0)
    return g.to(like.dtype).reshape(like.shape).clone()  # a view of one stacked tensor otherwise


@torch.library.custom_op(
    "fastloss::contrastive",
    mutates_args=(),
    schema=f"({_ARGS}, str reduction, {_OPTIONS}) -> (Tensor, Tensor, Tensor, Tensor, Tensor)",
)
def _contrastive_op(rows, cols, logit_scale, scale, logit_bias, reduction, kind, layout, symmetric,
                    chunk_size, needs, group):
    return _contrastive(rows, cols, logit_scale, scale, logit_bias, kind, layout, symmetric, reduction,
                        chunk_size, needs, group)


@torch.library.custom_op(
    "fastloss::contrastive_backward",
    mutates_args=(),
    schema=f"({_ARGS}, Tensor grad_loss, {_OPTIONS}) -> (Tensor, Tensor, Tensor, Tensor)",
)
def _contrastive_backward_op(rows, cols, logit_scale, scale, logit_bias, grad_loss, kind, layout, symmetric,
                             chunk_size, needs, group):
    return _contrastive(rows, cols, logit_scale, scale, logit_bias, kind, layout, symmetric, "none",
                        chunk_size, needs, group, grad_loss=grad_loss)


def _grad_shapes(rows, cols, logit_scale, logit_bias, needs):
    """The gradient outputs' shapes: empty for a gradient not needed (or computed later)."""
    shapes = (rows, cols, logit_scale, logit_bias)
    return tuple(
        like.new_empty(like.shape) if need and like is not None else rows.new_empty(0)
        for like, need in zip(shapes, needs)
    )


@_contrastive_op.register_fake
def _contrastive_fake(rows, cols, logit_scale, scale, logit_bias, reduction, *options):
    needs = options[-2] if reduction != "none" else (False,) * 4
    loss_dtype = torch.float64 if rows.dtype == torch.float64 else torch.float32
    loss = rows.new_empty(rows.shape[:1] if reduction == "none" else (), dtype=loss_dtype)
    return (loss, *_grad_shapes(rows, cols, logit_scale, logit_bias, needs))


@_contrastive_backward_op.register_fake
def _contrastive_backward_fake(rows, cols, logit_scale, scale, logit_bias, grad_loss, *options):
    return _grad_shapes(rows, cols, logit_scale, logit_bias, options[-2])


def _setup(ctx, inputs, output):
    rows, cols, logit_scale, scale, logit_bias, reduction, *options = inputs
    ctx.mark_non_differentiable(*output[1:])  # never differentiated; see lm_head._head_setup
    ctx.set_materialize_grads(False)
    ctx.reduction, ctx.scale, ctx.options, ctx.needs = reduction, scale, options, options[-2]
    if reduction == "none":
        ctx.save_for_backward(rows, cols, logit_scale, logit_bias)
    else:
        ctx.save_for_backward(*output[1:])


def _backward(ctx, grad_loss, *_grads_of_grads):
    if torch.is_grad_enabled():  # the engine runs a backward with grad mode on exactly for create_graph
        raise RuntimeError("fastloss.torch contrastive losses: double backward (create_graph=True) is not supported")
    if grad_loss is None:
        return (None,) * 12
    if ctx.reduction == "none":
        rows, cols, logit_scale, logit_bias = ctx.saved_tensors
        grads = _contrastive_backward_op(rows, cols, logit_scale, ctx.scale, logit_bias, grad_loss, *ctx.options)
    else:
        grads = tuple(_scaled(g, grad_loss) if g.numel() else g for g in ctx.saved_tensors)
    gr, gc, gs, gb = (g if need else None for g, need in zip(grads, ctx.needs))
    return gr, gc, gs, None, gb, None, None, None, None, None, None, None


_contrastive_op.register_autograd(_backward, setup_context=_setup)


# ---- the public functions ----------------------------------------------------------------------


def _check_pair(a: Tensor, b: Tensor, names: tuple[str, str], same_rows: bool) -> None:
    for x, name in zip((a, b), names):
        if not isinstance(x, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        if not x.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
        if x.dim() != 2:
            raise ValueError(f"{name} must be 2-D (batch, dim), got shape {tuple(x.shape)}")
    if a.dtype != b.dtype:
        raise TypeError(f"{names[0]} and {names[1]} must have the same dtype, got {a.dtype} and {b.dtype}")
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same feature size, got shapes "
            f"{tuple(a.shape)} and {tuple(b.shape)}"
        )
    if same_rows and a.shape[0] != b.shape[0]:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same batch size, got shapes {tuple(a.shape)} and {tuple(b.shape)}"
        )
    if not same_rows and b.shape[0] < a.shape[0]:
        raise ValueError(
            f"{names[1]} needs at least as many rows as {names[0]} (row i's positive is {names[1]}[i]), "
            f"got shapes {tuple(a.shape)} and {tuple(b.shape)}"
        )


def _check_chunk(chunk_size) -> int:
    if chunk_size is None:
        return 0
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer or None, got {chunk_size!r}")
    return chunk_size


def _check_scalar(x, name: str) -> Tensor:
    if not isinstance(x, Tensor):
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            raise TypeError(f"{name} must be a tensor or a number, got {type(x).__name__}")
        return torch.tensor(float(x))
    if x.numel() != 1 or not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor of one element, got {x.dtype} shape {tuple(x.shape)}")
    return x


def _needs(*tensors) -> list[bool]:
    grad_mode = torch.is_grad_enabled()
    return [grad_mode and t is not None and t.requires_grad for t in tensors]


def info_nce(
    query: Tensor,
    key: Tensor,
    *,
    temperature: float = 0.07,
    symmetric: bool = False,
    reduction: str = "mean",
    chunk_size: int | None = None,
    process_group=None,
) -> Tensor:
    """InfoNCE with in-batch negatives: ``F.cross_entropy(query @ key.T / temperature, arange(N))``.

    ``query`` (N, D), ``key`` (M, D) with M >= N: row i's positive is ``key[i]``, every other key a
    negative (rows N..M-1 of ``key``: extra negatives, as sentence-transformers' hard negatives).
    ``l_i = logsumexp_j(q_i . k_j / T) - q_i . k_i / T``. ``symmetric=True`` (M = N) adds the key-side
    direction, ``l_i = (row_i + col_i) / 2`` with ``col_i = logsumexp_j(q_j . k_i / T) - q_i . k_i / T``:
    the CLIP loss. Inputs are used as given (normalise them first for cosine similarity).
    ``reduction``: "mean" (over the N rows), "sum" or "none" (per row, (N,)). ``chunk_size``: rows per
    strip of the similarity matrix (default: from a 32 MiB budget on CPU). ``process_group``: each rank
    passes its local batch (the same size on every rank), the loss is the global batch's; with
    "none" each rank gets its own rows' losses.
    """
    _check_pair(query, key, ("query", "key"), same_rows=symmetric)
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature > 0:
        raise ValueError(f"temperature must be a positive number, got {temperature!r}")
    needs = _needs(query, key) + [False, False]
    loss, *_ = _contrastive_op(query, key, None, 1.0 / temperature, None, reduction, "softmax", "pairs",
                               bool(symmetric), _check_chunk(chunk_size), needs, _group_name(process_group))
    return loss


def clip_loss(image_features: Tensor, text_features: Tensor, logit_scale, *, process_group=None) -> Tensor:
    """open_clip's ``ClipLoss``: ``logits = logit_scale * image_features @ text_features.T`` (N, N),
    ``(F.cross_entropy(logits, arange(N)) + F.cross_entropy(logits.T, arange(N))) / 2``.

    ``logit_scale``: the multiplier itself (open_clip passes ``model.logit_scale.exp()``), a one-element
    tensor (it gets its gradient) or a number. Features are used as given (open_clip's models
    normalise them). ``process_group``: see :func:`info_nce`; the loss is the global batch's.
    """
    _check_pair(image_features, text_features, ("image_features", "text_features"), same_rows=True)
    scale = _check_scalar(logit_scale, "logit_scale")
    needs = _needs(image_features, text_features, scale) + [False]
    loss, *_ = _contrastive_op(image_features, text_features, scale, 1.0, None, "mean", "softmax", "pairs",
                               True, 0, needs, _group_name(process_group))
    return loss


def siglip_loss(
    image_features: Tensor, text_features: Tensor, logit_scale, logit_bias, *, process_group=None
) -> Tensor:
    """open_clip's ``SigLipLoss``: ``-sum_ij logsigmoid(y_ij * (logit_scale * img_i . txt_j + logit_bias)) / N``
    with ``y_ij = +1`` for i = j and -1 otherwise.

    ``logit_scale`` and ``logit_bias``: one-element tensors (each gets its gradient) or numbers.
    ``process_group``: the global batch's loss (N = all ranks' samples) on every rank; open_clip's
    distributed ``SigLipLoss`` instead returns each rank's rows of it divided by the local batch size.
    """
    _check_pair(image_features, text_features, ("image_features", "text_features"), same_rows=True)
    scale = _check_scalar(logit_scale, "logit_scale")
    bias = _check_scalar(logit_bias, "logit_bias")
    needs = _needs(image_features, text_features, scale, bias)
    loss, *_ = _contrastive_op(image_features, text_features, scale, 1.0, bias, "mean", "sigmoid", "pairs",
                               False, 0, needs, _group_name(process_group))
    return loss


def nt_xent(z1: Tensor, z2: Tensor, *, temperature: float = 0.5, process_group=None) -> Tensor:
    """SimCLR's NT-Xent over the 2N views, as lightly's ``NTXentLoss`` (no memory bank).

    The views ``v = F.normalize(cat([z1, z2]))`` (2N, D); view i's positive is its partner (i +- N),
    its negatives the other 2N - 2 views, its own similarity excluded:
    ``l_i = logsumexp_{j != i}(v_i . v_j / T) - v_i . v_partner(i) / T``, averaged over the 2N views.
    ``process_group``: each rank passes its local pairs; the loss is the global batch's (lightly's
    ``gather_distributed=True`` averages the same per-view losses rank by rank).
    """
    _check_pair(z1, z2, ("z1", "z2"), same_rows=True)
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or abs(temperature) < 1e-8:
        raise ValueError(f"temperature must be a number with |temperature| >= 1e-8, got {temperature!r}")
    views = F.normalize(torch.cat([z1, z2]), dim=1)
    needs = _needs(views, views) + [False, False]
    loss, *_ = _contrastive_op(views, views, None, 1.0 / temperature, None, "mean", "softmax", "views", False,
                               0, needs, _group_name(process_group))
    return loss
