"""The chunked LM-head loop: logits of a few rows at a time, turned into their gradient in place.

For each chunk of rows: ``z = x_c @ W.T (+ b)`` (chunk, V); the loss kernel overwrites ``z`` with
``d loss / d z``; then ``grad_x[c] = z @ W``, ``grad_W += z.T @ x_c``, ``grad_b += z.sum(0)``. Nothing
of size (N, V) is ever allocated: the extra memory is one (chunk, V) logits buffer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

import fastloss

from . import _shard_math

# The automatic chunk's logits budget. On CPU, 32 MiB (256 rows of a 32000 vocabulary) keeps the
# extra memory small; below ~128 rows the weight-gradient accumulation (which reads and writes the
# whole (V, H) gradient once per chunk) and the matmuls' short dimension cost time (measured: 1.24x
# the three matmuls' time at 128 rows, 1.11x at 256, 1.01x at 512 on 2 busy cores), hence the floor.
# GPUs need taller chunks to fill their SMs.
_CPU_CHUNK_BYTES = 32 << 20
_CUDA_CHUNK_BYTES = 1 << 30
_MIN_ROWS = 128


def _free_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as f:  # Linux; elsewhere the fixed budget alone applies
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return _CPU_CHUNK_BYTES * 16


def auto_chunk_rows(rows: int, classes: int, device: torch.device) -> int:
    """Rows per chunk so that the fp32 (chunk, classes) logits fit the budget and free memory."""
    budget = _CUDA_CHUNK_BYTES if device.type == "cuda" else _CPU_CHUNK_BYTES
    per_row = 4 * classes
    chunk = max(_MIN_ROWS, budget // per_row)
    chunk = min(chunk, _free_bytes(device) // 8 // per_row)  # never more than an eighth of free memory
    if chunk >= 64:
        chunk -= chunk % 16  # whole SIMD/tensor-core tiles for the matmuls
    return int(max(1, min(rows, chunk)))


@dataclass(frozen=True)
class CEOptions:
    ignore_index: int
    label_smoothing: float
    z_loss: float
    softcap: float | None


# (logits chunk, target chunk, grad_output: None | float | (rows,) tensor, per_row) -> loss;
# when grad_output is given, the logits chunk holds the gradient afterwards.
ChunkLoss = Callable[[Tensor, Tensor, object, bool], Tensor]


def core_chunk_loss(opts: CEOptions, class_weight: Tensor | None) -> ChunkLoss:
    """The single-process chunk loss: fastloss's fused cross-entropy kernel, in place."""
    kwargs = {
        "weight": class_weight,
        "ignore_index": opts.ignore_index,
        "label_smoothing": opts.label_smoothing,
        "z_loss": opts.z_loss,
        "softcap": opts.softcap,
    }

    def run(z: Tensor, target: Tensor, grad_output, per_row: bool) -> Tensor:
        reduction = "none" if per_row or isinstance(grad_output, Tensor) else "sum"
        if grad_output is None:
            return fastloss.cross_entropy(z, target, reduction=reduction, **kwargs)
        loss, _ = fastloss.cross_entropy_with_grad(
            z, target, reduction=reduction, grad_output=grad_output, out=z, **kwargs
        )
        return loss

    return run


def shard_chunk_loss(shard: _shard_math.Shard, compute: torch.dtype) -> ChunkLoss:
    """The vocab-parallel chunk loss: O(rows) all-reductions, this rank's gradient columns."""

    def run(z: Tensor, target: Tensor, grad_output, per_row: bool) -> Tensor:
        scale = None
        if grad_output is not None:
            scale = (
                grad_output
                if isinstance(grad_output, Tensor)
                else torch.full(target.shape, float(grad_output), dtype=compute, device=z.device)
            )
        loss, grad = _shard_math.shard_chunk(z, target, scale, shard, compute, in_place=True)
        if grad is not None and grad.data_ptr() != z.data_ptr():
            z.copy_(grad)
        return loss if per_row else loss.sum()

    return run


@dataclass(frozen=True)
class Needs:
    input: bool
    weight: bool
    bias: bool

    @property
    def any(self) -> bool:
        return self.input or self.weight or self.bias


def run_head(
    x: Tensor,
    w: Tensor,
    target: Tensor,
    b: Tensor | None,
    chunk_loss: ChunkLoss,
    *,
    chunk: int,
    needs: Needs,
    per_row: bool,
    grad_output,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(loss, grad_x, grad_w, grad_b) of ``x`` (N, H), ``w`` (V, H), ``target`` (N,) or soft (N, V).

    ``grad_output``: None (loss only), a float (d total / d l_i for every row) or a (N,) tensor.
    ``per_row``: the loss is returned per row (N,) instead of summed (float64 accumulation).
    Unneeded gradients come back as empty tensors.
    """
    n, v = x.shape[0], w.shape[0]
    grads = grad_output is not None and needs.any
    sixteen = w.dtype in (torch.float16, torch.bfloat16)
    acc = torch.float32 if sixteen else w.dtype  # 16-bit weights: fp32 accumulation across chunks
    gx = torch.empty_like(x) if grads and needs.input else x.new_empty(0)
    gw = torch.zeros(w.shape, dtype=acc, device=w.device) if grads and needs.weight else w.new_empty(0)
    gb = (
        torch.zeros(v, dtype=acc, device=w.device)
        if grads and needs.bias and b is not None
        else w.new_empty(0)
    )
    total = torch.zeros((), dtype=torch.float64, device=x.device)
    rows = (
        torch.empty(n, dtype=torch.float64 if x.dtype == torch.float64 else torch.float32, device=x.device)
        if per_row
        else None
    )
    buffer = torch.empty(min(chunk, n), v, dtype=x.dtype, device=x.device)  # one, reused: never two alive
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        xc, z = x[start:stop], buffer[: stop - start]
        if b is not None:
            torch.addmm(b, xc, w.T, out=z)  # (chunk, V)
        else:
            torch.mm(xc, w.T, out=z)
        g = grad_output[start:stop] if isinstance(grad_output, Tensor) else grad_output
        loss = chunk_loss(z, target[start:stop], g if grads else None, per_row)
        if per_row:
            rows[start:stop] = loss
        else:
            total += loss.to(torch.float64)
        if not grads:
            continue
        if needs.input:
            torch.mm(z, w, out=gx[start:stop])
        if needs.weight:
            gw.addmm_(z.T.to(acc), xc.to(acc))
        if gb.numel():
            gb += z.sum(dim=0, dtype=acc)
    loss = rows if per_row else total
    return loss, gx, gw.to(w.dtype) if sixteen else gw, gb.to(w.dtype) if sixteen else gb
