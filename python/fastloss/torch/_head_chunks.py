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

# The memory budget of the automatic chunk: the extra memory of a training step beyond its gradient
# outputs is the (chunk, V) logits buffer, plus for 16-bit weights the fp32 (V, H) weight-gradient
# accumulator (accuracy: chunks are summed in fp32), plus O(chunk * H) and 8 MiB temporaries.
# - fp32 on CPU: a 32 MiB logits buffer (256 rows of a 32000 vocabulary). Below ~128 rows the
#   weight-gradient accumulation (which reads and writes the whole (V, H) gradient once per chunk) and
#   the matmuls' short dimension cost time (measured: 1.24x the three matmuls' time at 128 rows, 1.11x
#   at 256, 1.01x at 512 on 2 busy cores), hence a floor of 256 rows (a larger vocabulary gets
#   fewer rows from the budget): at (2048, 1024 -> 128256), 2 threads, 128 rows took 1.28x the
#   matmuls, 256 rows 1.16x, 512 rows 1.05x; in the Hugging Face training step at that shape
#   (benchmarks/hf_training.py) 256 rows took 14.8 CPU-s against 17.2 at 128 (cut-cross-entropy
#   15.3, 512 rows 14.7); the step's peak did not follow the chunk (64 to 512 rows: 1346-1457 MiB,
#   as a step with no head at all: the parameter gradients and activations set it).
# - 16-bit on CPU: a 64 MiB buffer (1024 rows of 32000 in bf16). Each chunk adds a 16-bit product into
#   the fp32 accumulator, a pass over 4*V*H bytes that is as long as a third of the chunk's matmuls at
#   256 rows; measured at (4096, 512 -> 32000) bf16, 1 thread: 1.55x the three bf16 matmuls at 256
#   rows, 1.22x at 512, 0.98x at 1024. Extra memory there: 64 MiB + 62.5 MiB accumulator + an 8 MiB
#   product block (_BLOCK_BYTES), about half of PyTorch 2.14's chunked F.linear_cross_entropy (270 MiB).
#   The accumulation's share of the time depends on the rows alone (a pass over V*H per chunk against
#   6*rows*V*H matmul flops), hence a floor of 1024 rows: at (2048, 1024 -> 128256) bf16, 1 thread,
#   256 rows (the 64 MiB budget) took 1.40x the three matmuls, 512 rows 0.98x, 1024 rows 0.97x; on 2
#   threads 512 rows 1.19x, 1024 rows 1.01x, 2048 rows 1.11x (the weight-gradient accumulation of
#   the step, matmuls and adds: 642 ms in 512-row chunks, 452 ms in 1024-row ones). That is a 256 MiB
#   buffer at this vocabulary; in a Hugging Face training step (benchmarks/hf_training.py) the step's
#   peak stays 0.36x HF's own.
# GPUs need taller chunks to fill their SMs.
_CPU_CHUNK_BYTES = 32 << 20
_CPU_CHUNK_BYTES_16BIT = 64 << 20
_CUDA_CHUNK_BYTES = 1 << 30
_MIN_ROWS = 256
_MIN_ROWS_16BIT = 1024


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


def auto_chunk_rows(rows: int, classes: int, device: torch.device, dtype: torch.dtype = torch.float32) -> int:
    """Rows per chunk so that the (chunk, classes) logits of ``dtype`` fit the budget and free memory.

    ``dtype``: the logits buffer's (the input's); on CUDA the budget is counted in fp32 elements."""
    sixteen = dtype in (torch.float16, torch.bfloat16)
    if device.type == "cuda":
        budget, per_row = _CUDA_CHUNK_BYTES, 4 * classes
    else:
        budget = _CPU_CHUNK_BYTES_16BIT if sixteen else _CPU_CHUNK_BYTES
        per_row = (2 if sixteen else 4) * classes
    chunk = max(_MIN_ROWS_16BIT if sixteen and device.type != "cuda" else _MIN_ROWS, budget // per_row)
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


# Bytes of one 16-bit (H, block) product in _accumulate_16bit (4096 columns at H=1024, 8192 at H=512):
# a transient of this size, and few enough matmul+add pairs per chunk. On 2 busy cores each parallel
# region waits for a descheduled thread; measured at (4096, 512 -> 32000) bf16, 2 threads, medians of 3
# interleaved steps: 2.02x the three matmuls with 2 MiB blocks, 1.09-1.24x with 8 MiB, 1.19-1.23x with
# 16-64 MiB; 1 thread: 0.92-1.02x for all.
_BLOCK_BYTES = 8 << 20


def _accumulate_16bit(gw_t: Tensor, z: Tensor, xc: Tensor, *, first: bool) -> None:
    """``gw_t += xc.T @ z`` (``=`` for the ``first`` chunk): the weight gradient, transposed, for 16-bit
    ``z``, ``xc`` into fp32 ``gw_t``.

    One 16-bit matmul per chunk and vocabulary block (fp32 accumulation inside it, at AMX/AVX512-BF16
    speed), rounded once to 16 bits and summed across chunks in fp32. Measured at (1024 rows, 512 ->
    32000) bf16, 1 thread: 0.28-0.50 s per 4096 rows, against 0.77-0.92 s for ``gw += z.T @ xc`` (the
    (V, H) layout; PyTorch's transposed-A bf16 matmul is slower) and ~3.7 s for one fp32 ``addmm_`` on
    upcast copies.
    """
    xc_t = xc.T.contiguous()
    block = max(256, _BLOCK_BYTES // (xc.element_size() * xc_t.shape[0]))
    for start in range(0, gw_t.shape[1], block):
        stop = min(gw_t.shape[1], start + block)
        part, dest = torch.mm(xc_t, z[:, start:stop]), gw_t[:, start:stop]
        if first:
            dest.copy_(part)
        else:
            dest.add_(part)


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
    if grads and needs.weight:  # 16-bit: the fp32 accumulator is (H, V), see _accumulate_16bit
        # the first chunk writes it (no zero-filling pass over V*H); no rows: zeros
        new = torch.empty if n else torch.zeros
        gw = new(w.shape[::-1] if sixteen else w.shape, dtype=acc, device=w.device)
    else:
        gw = w.new_empty(0)
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
            if sixteen:
                _accumulate_16bit(gw, z, xc, first=start == 0)
            elif start == 0:
                torch.mm(z.T, xc, out=gw)
            else:
                gw.addmm_(z.T, xc)
        if gb.numel():
            gb += z.sum(dim=0, dtype=acc)
    loss = rows if per_row else total
    if sixteen and gw.numel():
        gw = torch.empty_like(w).copy_(gw.T)  # (V, H) in w's dtype, one transposing pass
    return loss, gx, gw, gb.to(w.dtype) if sixteen else gb
