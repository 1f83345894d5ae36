"""The fused distillation head: softmax-KL between two linear heads' logits, never holding either.

``linear_softmax_kl_div(h_s, W_s, h_t, W_t)`` has the value of
``fastloss.torch.softmax_kl_div(h_s @ W_s.T, h_t @ W_t.T)``. Rows go through in chunks (the LM head's
loop, ``_head_chunks.run_head``): per chunk the teacher's logits ``h_t[c] @ W_t.T`` and the student's
``h_s[c] @ W_s.T`` are formed, fastloss's fused softmax-KL kernel overwrites the student's chunk with
its gradient ``(p - q)/T``, and that turns at once into the chunk's share of the gradients of ``h_s``
and ``W_s``. Extra memory: two (chunk, V) buffers instead of two (N, V) logits matrices and a
gradient. As the LM head, gradients are computed in the forward and the backward only scales them
(``reduction="none"`` recomputes the chunks in the backward instead).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

import fastloss

from . import _head_chunks as chunks

__all__ = ["linear_softmax_kl_div"]

_REDUCTIONS = ("none", "mean", "sum")


def _kl_chunk_loss(teacher_weight: Tensor, temperature: float) -> chunks.ChunkLoss:
    """Chunk loss for ``run_head``: its "target" rows are the teacher's hidden states."""
    buffer: list[Tensor] = []

    def run(z: Tensor, teacher_rows: Tensor, grad_output, per_row: bool) -> Tensor:
        if not buffer or buffer[0].shape[0] < z.shape[0]:
            buffer[:] = [teacher_rows.new_empty(z.shape[0], teacher_weight.shape[0])]
        zt = torch.mm(teacher_rows, teacher_weight.T, out=buffer[0][: z.shape[0]])
        reduction = "none" if per_row or isinstance(grad_output, Tensor) else "sum"
        if grad_output is None:
            return fastloss.softmax_kl_div(z, zt, temperature=temperature, reduction=reduction)
        loss, _ = fastloss.softmax_kl_div_with_grad(
            z, zt, temperature=temperature, reduction=reduction, grad_output=grad_output, out=z
        )
        return loss

    return run


def _loss_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


class _LinearSoftmaxKLDiv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, xs, ws, xt, wt, temperature, reduction, chunk):
        needs = chunks.Needs(ctx.needs_input_grad[0], ctx.needs_input_grad[1], False)
        n = xs.shape[0]
        per_row = reduction == "none"
        grad_output = None
        if not per_row and needs.any:
            grad_output = 1.0 / n if reduction == "mean" and n else 1.0
        loss, gx, gw, _ = chunks.run_head(
            xs, ws, xt, None, _kl_chunk_loss(wt, temperature),
            chunk=chunk, needs=needs, per_row=per_row, grad_output=grad_output,
        )
        if reduction == "mean":
            loss = loss / n if n else loss * math.nan
        ctx.reduction, ctx.temperature, ctx.chunk, ctx.needs = reduction, temperature, chunk, needs
        if per_row:
            ctx.save_for_backward(xs, ws, xt, wt)
        else:
            ctx.save_for_backward(gx, gw)
        return loss.to(_loss_dtype(xs.dtype))

    @staticmethod
    def backward(ctx, grad_loss):
        if ctx.reduction == "none":
            xs, ws, xt, wt = ctx.saved_tensors
            compute = torch.float64 if xs.dtype == torch.float64 else torch.float32
            _, gx, gw, _ = chunks.run_head(
                xs, ws, xt, None, _kl_chunk_loss(wt, ctx.temperature),
                chunk=ctx.chunk, needs=ctx.needs, per_row=True, grad_output=grad_loss.to(compute),
            )
        else:
            gx, gw = (g * grad_loss.to(g.dtype) if g.numel() else g for g in ctx.saved_tensors)
        return (gx if ctx.needs.input else None, gw if ctx.needs.weight else None) + (None,) * 5


def _check(name: str, t: Tensor) -> None:
    if not isinstance(t, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if not t.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {t.dtype}")


def linear_softmax_kl_div(
    student_hidden: Tensor,
    student_weight: Tensor,
    teacher_hidden: Tensor,
    teacher_weight: Tensor,
    *,
    temperature: float = 1.0,
    reduction: str = "mean",
    chunk_size: int | None = None,
) -> Tensor:
    """Distillation loss ``softmax_kl_div(student_hidden @ W_s.T, teacher_hidden @ W_t.T)``, fused.

    ``s = student_hidden @ student_weight.T``, ``t = teacher_hidden @ teacher_weight.T`` (never built
    whole); ``p = softmax(s/T)``, ``q = softmax(t/T)``, ``l_i = sum_c q_c*(log q_c - log p_c)``;
    ``reduction``: "mean" over rows, "sum", or "none" (one loss per row). No T**2 factor (multiply
    by ``temperature**2`` yourself for Hinton's scaling). Gradients: ``(p - q)/T`` w.r.t. the
    student's logits, carried to ``student_hidden`` and ``student_weight``; the teacher gets none
    (its tensors are treated as constants even if they require grad).

    Shapes: ``student_hidden`` (..., H_s), ``student_weight`` (V, H_s), ``teacher_hidden`` (..., H_t)
    with the same leading shape, ``teacher_weight`` (V, H_t). Each head's hidden states and weight
    share a dtype; 16-bit inputs run the matmuls in that dtype, the kernel in fp32, and return an
    fp32 loss. ``chunk_size``: rows per chunk (default: chosen from V and free memory, 512 rows at
    V = 32000 on CPU; extra memory about two (chunk_size, V) logits buffers).
    """
    for name, t in (("student_hidden", student_hidden), ("student_weight", student_weight),
                    ("teacher_hidden", teacher_hidden), ("teacher_weight", teacher_weight)):
        _check(name, t)
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not (
        0.0 < temperature < math.inf
    ):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1):
        raise ValueError(f"chunk_size must be a positive integer or None, got {chunk_size!r}")
    for role, h, w in (("student", student_hidden, student_weight), ("teacher", teacher_hidden, teacher_weight)):
        if h.dim() < 1 or w.dim() != 2 or h.shape[-1] != w.shape[1]:
            raise ValueError(
                f"{role}_hidden must be (..., H) and {role}_weight (V, H), got shapes {tuple(h.shape)} "
                f"and {tuple(w.shape)}"
            )
        if h.dtype != w.dtype:
            raise TypeError(f"{role}_weight dtype {w.dtype} differs from {role}_hidden dtype {h.dtype}")
    if student_weight.shape[0] != teacher_weight.shape[0]:
        raise ValueError(
            f"student_weight and teacher_weight must have the same vocabulary, got {student_weight.shape[0]} "
            f"and {teacher_weight.shape[0]} rows"
        )
    if student_hidden.shape[:-1] != teacher_hidden.shape[:-1]:
        raise ValueError(
            f"student_hidden and teacher_hidden must have the same leading shape, got "
            f"{tuple(student_hidden.shape[:-1])} and {tuple(teacher_hidden.shape[:-1])}"
        )
    xs = student_hidden.reshape(-1, student_hidden.shape[-1])
    xt = teacher_hidden.detach().reshape(-1, teacher_hidden.shape[-1])
    vocab = student_weight.shape[0]
    # two logits buffers, each on the LM head's budget for half the vocabulary: taller chunks keep the
    # five matmuls efficient (512 rows at V=32000, 128 MiB in all, vs 1.5 GiB for the unfused logits)
    chunk = chunk_size or chunks.auto_chunk_rows(xs.shape[0], max(1, vocab // 2), xs.device)
    loss = _LinearSoftmaxKLDiv.apply(
        xs, student_weight, xt, teacher_weight.detach(), float(temperature), reduction, chunk
    )
    return loss.reshape(student_hidden.shape[:-1]) if reduction == "none" else loss
