"""The tiled contrastive engine: a similarity matrix handled a strip of rows at a time, never whole.

Logits ``z = s * rows @ cols.T + b`` (n, M): ``rows`` this process's rows, ``cols`` every column
(gathered across ranks). Row i's positive is column ``target[i]``; ``exclude[i]`` (NT-Xent's
self-similarity) is masked to -inf. Two kinds:

- ``softmax``: ``row_i = lse_j(z_ij) - z_i,t(i)`` (fastloss's fused cross-entropy kernel, which
  overwrites the strip with its gradient), and optionally the column direction
  ``col_j = lse_i(z_ij) - z_pos(j),j`` over ALL rows of all ranks. Its gradient needs each column's
  log-sum-exp before any gradient, so it takes two passes: pass 1 computes strips of the transposed
  matrix (columns as rows) and takes their log-sum-exps with the same kernel (partial ones per rank,
  combined by a max and a sum all-reduction of O(M) numbers); pass 2 computes each strip again (the
  one extra matmul) and adds ``w_j * (exp(z_ij - lse_j) - [i = pos(j)])``, also from the kernel, to
  the row gradient.
- ``sigmoid`` (SigLIP): ``sum_ij softplus(-y_ij z_ij)`` with y = +1 at (i, target[i]), -1 elsewhere:
  fastloss's fused BCE-with-logits kernel on the strip with an all-negative target, in place, then the
  positives corrected (``softplus(-z) = softplus(z) - z``; gradient -1 there). One pass.

With the strip's gradient G (n_c, M): ``grad_rows[c] = s * G @ cols``, ``grad_cols += s * G.T @ rows_c``,
``grad_scale += sum_i rows_i . (G @ cols)_i``, ``grad_bias += sum G``. The extra memory is one strip
(two with the column direction's gradient, or SigLIP's dense zero target), its rows chosen from a byte
budget, plus the (M, D) column gradient.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor

import fastloss

# The strip budget. On CPU 32 MiB keeps the extra memory far below the (N, N) matrix while the strips
# stay tall enough (>= 64 rows) for the matmuls and the column-gradient accumulation (which reads and
# writes the whole (M, D) gradient once per strip) to run near their full speed. GPUs need taller strips.
_CPU_TILE_BYTES = 32 << 20
_CUDA_TILE_BYTES = 1 << 30
_MIN_ROWS = 64


def auto_strip_rows(rows: int, columns: int, buffers: int, element: int, device: torch.device) -> int:
    """Rows per strip so that ``buffers`` (rows, columns) strips fit the budget (at least 64 rows)."""
    budget = _CUDA_TILE_BYTES if device.type == "cuda" else _CPU_TILE_BYTES
    chunk = max(_MIN_ROWS, budget // (buffers * element * max(columns, 1)))
    if chunk >= 64:
        chunk -= chunk % 16  # whole SIMD/tensor-core tiles for the matmuls
    return int(max(1, min(rows, chunk)))


@dataclass(frozen=True)
class Tiles:
    """One problem for the engine (tensors already in the compute dtype)."""

    rows: Tensor  # (n, D) this rank's rows
    cols: Tensor  # (M, D) all columns
    target: Tensor  # (n,) int64 column of each row's positive
    exclude: Tensor | None  # (n,) int64 column masked to -inf in each row, or None
    scale: float
    bias: float
    kind: str  # "softmax" | "sigmoid"
    chunk: int
    group: object  # process group, or None


@dataclass
class Grads:
    rows: Tensor | None
    cols: Tensor | None
    scale: Tensor  # 0-dim float64
    bias: Tensor  # 0-dim float64


def _strip(t: Tiles, start: int, stop: int, buffer: Tensor) -> tuple[Tensor, Tensor]:
    """(z, s * rows_c): the strip's logits written into ``buffer``."""
    scaled = t.rows[start:stop] * t.scale  # (n_c, D): scaling the short side is the cheap one
    z = torch.mm(scaled, t.cols.T, out=buffer[: stop - start])  # (n_c, M)
    if t.bias:
        z.add_(t.bias)
    if t.exclude is not None:
        z[torch.arange(stop - start, device=z.device), t.exclude[start:stop]] = -torch.inf
    return z, scaled


def _finite_or_zero(x: Tensor) -> Tensor:
    return torch.where(torch.isfinite(x), x, torch.zeros_like(x))


def column_lse(t: Tiles, storage: Tensor) -> tuple[Tensor, Tensor]:
    """Pass 1: (log-sum-exp of every column over all rows of all ranks (M,), the column losses of
    this rank's rows' positives (n,)).

    Strips of the TRANSPOSED matrix (columns as rows, this rank's rows as classes) through the fused
    cross-entropy kernel (loss only), each column's "target" being its positive row where that row is
    here (class 0 elsewhere): ``lse_j = loss_j + zT[j, target_j]``. Across ranks the partial
    log-sum-exps are combined by a max and a sum all-reduction.
    """
    m, n = t.cols.shape[0], t.rows.shape[0]
    device = storage.device
    positive_row = torch.zeros(m, dtype=torch.int64, device=device)
    positive_row[t.target] = torch.arange(n, device=device)
    lse = torch.empty(m, dtype=storage.dtype, device=device)
    loss = torch.empty(m, dtype=storage.dtype, device=device)
    for start in range(0, m, t.chunk):
        stop = min(m, start + t.chunk)
        zt = torch.mm(t.cols[start:stop] * t.scale, t.rows.T, out=storage[: (stop - start) * n].view(stop - start, n))
        if t.bias:
            zt.add_(t.bias)
        rows = positive_row[start:stop]
        loss[start:stop] = fastloss.cross_entropy(zt, rows, reduction="none")
        lse[start:stop] = loss[start:stop] + zt[torch.arange(stop - start, device=device), rows]
    if t.group is None:
        return lse, loss[t.target]  # the kernel's own value: exactly 0 for a lone candidate
    top = lse.clone()
    dist.all_reduce(top, op=dist.ReduceOp.MAX, group=t.group)
    shift = _finite_or_zero(top)
    total = torch.exp(lse - shift)
    dist.all_reduce(total, group=t.group)
    full = shift + torch.log(total)
    positive_logit = (lse - loss)[t.target]
    return full, full[t.target] - positive_logit


def run(
    t: Tiles,
    *,
    row_weight,
    col_weight,
    need_rows: bool,
    need_cols: bool,
    need_scale: bool,
    need_bias: bool,
    grads: bool,
) -> tuple[Tensor, Tensor | None, Tensor | None, Grads]:
    """(sum of row losses (float64), row losses (n,) or None, column losses of this rank's rows'
    positives (n,) or None, gradients).

    ``row_weight``: d total / d row_i, a float or (softmax only) a (n,) tensor; ``col_weight``:
    d total / d col_j, a float or (M,) tensor, or None for no column direction (the column direction
    needs ``target`` to be one-to-one: column target[i]'s positive is row i). ``grads`` False: the
    loss alone. Row losses come per row for softmax, as a sum for sigmoid.
    """
    n, m = t.rows.shape[0], t.cols.shape[0]
    dtype, device = t.rows.dtype, t.rows.device
    columns = col_weight is not None
    # one allocation serves the (chunk, M) strips and pass 1's (chunk, n) transposed strips
    storage = torch.empty(min(t.chunk, max(n, m)) * max(n, m), dtype=dtype, device=device)
    buffer = storage[: min(t.chunk, n) * m].view(min(t.chunk, n), m)
    col_lse, col_loss = column_lse(t, storage) if columns else (None, None)
    extra = torch.empty_like(buffer) if columns and grads else None
    row_loss = torch.empty(n, dtype=dtype, device=device) if t.kind == "softmax" else None
    # SigLIP's all-negative target: the kernel wants a dense one (a stride-0 view is copied per call)
    negatives = torch.zeros_like(buffer) if t.kind == "sigmoid" else None
    total = torch.zeros((), dtype=torch.float64, device=device)
    grads_out = Grads(
        torch.empty_like(t.rows) if grads and need_rows else None,
        torch.zeros_like(t.cols) if grads and need_cols else None,
        torch.zeros((), dtype=torch.float64, device=device),
        torch.zeros((), dtype=torch.float64, device=device),
    )
    for start in range(0, n, t.chunk):
        stop = min(n, start + t.chunk)
        z, scaled = _strip(t, start, stop, buffer)
        tc = t.target[start:stop]
        local = torch.arange(stop - start, device=device)
        rw = row_weight[start:stop] if isinstance(row_weight, Tensor) else row_weight
        e = None
        if extra is not None:
            e = _column_grad(z, col_lse, tc, local, col_weight, extra[: stop - start])
        if t.kind == "softmax":
            row_loss[start:stop] = _softmax_rows(z, tc, rw if grads else None)
            total += row_loss[start:stop].sum(dtype=torch.float64)
        else:
            total += _sigmoid_rows(z, negatives[: stop - start], tc, local, rw if grads else None)
        if not grads:
            continue
        if e is not None:
            z.add_(e)
        _accumulate(z, scaled, t, start, stop, grads_out, need_scale, need_bias)
    return total, row_loss, col_loss, grads_out


def _column_grad(z: Tensor, col_lse: Tensor, target: Tensor, local: Tensor, weight, out: Tensor) -> Tensor:
    """``w_j * (exp(z_ij - lse_j) - [j = target_i])`` of a strip, written into ``out``.

    ``x = z - lse`` (broadcast over rows) holds the column softmax in log space; the fused kernel's
    row softmax of ``x`` is that column softmax divided by the row's sum ``d_i``, so the kernel run with
    ``grad_output = w * d_i`` (``log d_i`` from a loss-only run) gives ``w * (exp(x) - d_i * onehot)``,
    and the one-hot entry is then corrected. No exp outside the kernels. A per-column weight (the
    ``reduction="none"`` backward) cannot be folded into a row scale: that case uses torch's exp.
    """
    x = torch.sub(z, col_lse, out=out)
    if isinstance(weight, Tensor):
        x.exp_().mul_(weight)
        x[local, target] -= weight[target]
        return x
    log_d = fastloss.cross_entropy(x, target, reduction="none") + x[local, target]
    d = torch.exp(log_d)
    fastloss.cross_entropy_with_grad(x, target, reduction="none", grad_output=d * weight, out=x)
    x[local, target] += (d - 1) * weight
    return x


def _softmax_rows(z: Tensor, target: Tensor, weight) -> Tensor:
    if weight is None:
        return fastloss.cross_entropy(z, target, reduction="none")
    loss, _ = fastloss.cross_entropy_with_grad(
        z, target, reduction="none", grad_output=_per_row(weight, z), out=z
    )
    return loss


def _sigmoid_rows(z: Tensor, negatives: Tensor, target: Tensor, local: Tensor, weight) -> Tensor:
    """The strip's summed SigLIP loss (float64); with ``weight`` (a float), its gradient over ``z``.

    Every pair is scored as a negative (``negatives``: zeros of the strip's shape), the positives
    corrected after: ``softplus(-z) = softplus(z) - z`` and their gradient is 1 lower."""
    positive = z[local, target].to(torch.float64).sum()  # before the kernel overwrites them
    if weight is None:
        loss = fastloss.binary_cross_entropy_with_logits(z, negatives, reduction="sum")
    else:
        loss, _ = fastloss.binary_cross_entropy_with_logits_with_grad(
            z, negatives, reduction="sum", grad_output=float(weight), out=z
        )
        z[local, target] -= float(weight)
    return loss.to(torch.float64) - positive


def _per_row(weight, z: Tensor) -> Tensor:
    if isinstance(weight, Tensor):
        return weight.to(z.dtype)
    return torch.full((z.shape[0],), float(weight), dtype=z.dtype, device=z.device)


def _sum64(x: Tensor) -> Tensor:
    """The sum of a strip in float64 from per-row sums (``sum(dtype=float64)`` copies the whole strip)."""
    return x.sum(dim=-1).sum(dtype=torch.float64)


def _accumulate(g: Tensor, scaled: Tensor, t: Tiles, start: int, stop: int, out: Grads,
                need_scale: bool, need_bias: bool):
    """The strip's share of every gradient; ``g`` (n_c, M) is d total / d z of the strip."""
    if out.rows is not None or need_scale:
        gc = torch.mm(g, t.cols)  # (n_c, D)
        if need_scale:
            out.scale += _sum64(gc * t.rows[start:stop])
        if need_bias:
            out.bias += _sum64(g)
        if out.rows is not None:
            torch.mul(gc, t.scale, out=out.rows[start:stop])
    if out.cols is not None:
        out.cols.addmm_(g.T, scaled)
