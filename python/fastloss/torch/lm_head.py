"""The language-model head: fused linear + cross-entropy that never holds the (N, V) logits.

``linear_cross_entropy(input, linear_weight, target)`` has the value of
``F.cross_entropy(F.linear(input, linear_weight, linear_bias), target, ...)`` and PyTorch 2.13's
``F.linear_cross_entropy`` signature, plus fastloss's ``z_loss``, ``softcap``, ``chunk_size`` and
``process_group``. Rows go through in chunks; each chunk's logits are overwritten by their gradient
(fastloss's fused kernel) and turned at once into the chunk's share of the gradients of ``input``,
``linear_weight`` and ``linear_bias``. As in Liger-Kernel, the gradients are computed during the
forward and the backward only scales them by ``grad_output``, so a training step runs the three
matmuls once each; with ``reduction="none"`` the backward recomputes the chunks instead (the
per-row ``grad_output`` is only known then).

With ``process_group``, ``linear_weight`` (and ``linear_bias``) hold this rank's contiguous shard of
the vocabulary (Megatron's convention), ``input`` and ``target`` are replicated, the loss is the
full-vocabulary loss on every rank, and ``input.grad`` is all-reduced in the backward. Only O(rows)
statistics cross the network per chunk (see ``_shard_math``).

All three functions are ``torch.library`` custom ops with fake implementations, so
``torch.compile(fullgraph=True)`` traces them without graph breaks. Double backward is not supported.
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from . import _errors, _shard_math
from . import _head_chunks as chunks

__all__ = ["LinearCrossEntropyLoss", "linear_cross_entropy", "vocab_parallel_cross_entropy"]

_REDUCTIONS = ("none", "mean", "sum")
# fp32_loss: a 16-bit head's loss is returned in fp32 (fastloss.transformers, as HF) instead of the
# input dtype (PyTorch's contract, kept by the public function).
_OPTIONS = "int ignore_index, float label_smoothing, float z_loss, float? softcap, int chunk_size, bool fp32_loss"
_HEAD_ARGS = "Tensor input, Tensor linear_weight, Tensor target, Tensor? linear_bias, Tensor? weight"


# ---- the work, on plain tensors (inside the custom ops) ---------------------------------------


def check_chunk_size(chunk_size) -> None:
    if chunk_size is not None and (
        isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1
    ):
        raise ValueError(f"chunk_size must be a positive integer or None, got {chunk_size!r}")


def _hard_target_check(target: Tensor, classes: int, ignore_index: int) -> None:
    bad = ((target < 0) | (target >= classes)) & (target != ignore_index)
    if bool(bad.any()):
        i = int(torch.nonzero(bad)[0, 0])
        raise ValueError(
            f"target[{i}] = {int(target[i])} is out of range [0, {classes}) and is not ignore_index={ignore_index}"
        )


def _mean_denominator(target: Tensor, class_weight: Tensor | None, ignore_index: int, soft: bool) -> float:
    """PyTorch's "mean" rule: sum of w_t over non-ignored rows (their count without weights);
    the number of rows for probability targets."""
    if soft:
        return float(target.shape[0])
    valid = target != ignore_index
    if class_weight is None:
        return float(valid.sum())
    return float(class_weight.to(torch.float64)[target[valid]].sum())


def _shard(
    group_name: str,
    shard_size: int,
    class_weight: Tensor | None,
    opts: chunks.CEOptions,
    compute: torch.dtype,
) -> _shard_math.Shard:
    group = _shard_math.resolve_group(group_name)
    world, rank = dist.get_world_size(group), dist.get_rank(group)
    first, classes = rank * shard_size, world * shard_size
    if class_weight is not None and tuple(class_weight.shape) != (classes,):
        raise ValueError(
            f"weight (class weights) must cover the full vocabulary ({classes},) with process_group, "
            f"got shape {tuple(class_weight.shape)}"
        )
    full = class_weight.to(compute) if class_weight is not None else None
    return _shard_math.Shard(
        group=group,
        first=first,
        size=shard_size,
        classes=classes,
        ignore_index=opts.ignore_index,
        label_smoothing=opts.label_smoothing,
        z_loss=opts.z_loss,
        softcap=opts.softcap,
        weight_full=full,
        weight_shard=full[first : first + shard_size] if full is not None else None,
        weight_sum=float(full.sum()) if full is not None else float(classes),
    )


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _loss_dtype(dtype: torch.dtype, fp32_loss: bool) -> torch.dtype:
    return _compute_dtype(dtype) if fp32_loss else dtype


def _head(
    input,
    linear_weight,
    target,
    linear_bias,
    weight,
    reduction,
    ignore_index,
    label_smoothing,
    z_loss,
    softcap,
    chunk_size,
    fp32_loss,
    needs,
    group,
    grad_loss=None,
):
    """Forward (grad_loss None: gradients for the mean/sum loss) or the "none" backward."""
    hidden = input.shape[-1]
    x = input.reshape(-1, hidden)
    soft = target.is_floating_point()
    t = target.reshape(x.shape[0], -1) if soft else target.reshape(-1).long()
    opts = chunks.CEOptions(ignore_index, label_smoothing, z_loss, softcap)
    shard_size = linear_weight.shape[0]
    if group:
        shard = _shard(group, shard_size, weight, opts, _compute_dtype(input.dtype))
        if grad_loss is None:
            _shard_math.check_agreement(
                shard.group,
                input.device,
                shard_size=shard_size,
                input_hidden=hidden,
                weight_hidden=linear_weight.shape[1],
                target=t,
                ignore_index=ignore_index,
                weight_name="linear_weight",
            )
        chunk_loss = chunks.shard_chunk_loss(shard, _compute_dtype(input.dtype))
    else:
        if not soft:
            _hard_target_check(t, shard_size, ignore_index)
        chunk_loss = chunks.core_chunk_loss(opts, weight)
    needs = chunks.Needs(*needs)
    chunk = chunk_size if chunk_size > 0 else chunks.auto_chunk_rows(x.shape[0], shard_size, input.device, x.dtype)

    def run(per_row, grad_output):
        return chunks.run_head(x, linear_weight, t, linear_bias, chunk_loss, chunk=chunk, needs=needs,
                               per_row=per_row, grad_output=grad_output)

    if grad_loss is not None:  # reduction="none", backward
        _, gx, gw, gb = run(True, grad_loss.reshape(-1).to(_compute_dtype(input.dtype)))
        return gx.reshape(input.shape), gw, gb
    per_row = reduction == "none"
    denominator = _mean_denominator(t, weight, ignore_index, soft) if reduction == "mean" else 1.0
    grad_output = None
    if not per_row and needs.any:
        grad_output = 1.0 / denominator if denominator else 0.0
    loss, gx, gw, gb = run(per_row, grad_output)
    if reduction == "mean":
        loss = loss / denominator if denominator else loss * math.nan
    loss = loss.to(_loss_dtype(input.dtype, fp32_loss)).reshape(input.shape[:-1] if per_row else ())
    return loss, gx.reshape(input.shape) if gx.numel() else gx, gw, gb


@torch.library.custom_op(
    "fastloss::linear_cross_entropy",
    mutates_args=(),
    schema=f"({_HEAD_ARGS}, str reduction, {_OPTIONS}, bool[] needs, str group) -> (Tensor, Tensor, Tensor, Tensor)",
)
def _head_op(*args):
    # the arguments are the schema's, in its order (_head's)
    return _head(*args)


@torch.library.custom_op(
    "fastloss::linear_cross_entropy_backward",
    mutates_args=(),
    schema=f"({_HEAD_ARGS}, Tensor grad_loss, {_OPTIONS}, bool[] needs, str group) -> (Tensor, Tensor, Tensor)",
)
def _head_backward_op(*args):
    # the schema's arguments: _head's, with grad_loss where _head takes the reduction
    input, linear_weight, target, linear_bias, weight, grad_loss, *options = args
    return _head(input, linear_weight, target, linear_bias, weight, "none", *options, grad_loss=grad_loss)


def _grad_shapes(input, linear_weight, linear_bias, needs, reduction):
    """The gradient outputs' shapes: empty for a gradient not needed (or computed later)."""
    if reduction == "none":
        needs = (False, False, False)
    gx = input.new_empty(input.shape if needs[0] else (0,))
    gw = linear_weight.new_empty(linear_weight.shape if needs[1] else (0,))
    gb = linear_weight.new_empty(linear_bias.shape if needs[2] and linear_bias is not None else (0,))
    return gx, gw, gb


@_head_op.register_fake
def _head_fake(input, linear_weight, target, linear_bias, weight, reduction, *rest):
    fp32_loss, needs = rest[-3], rest[-2]
    loss = input.new_empty(input.shape[:-1] if reduction == "none" else (),
                           dtype=_loss_dtype(input.dtype, fp32_loss))
    return (loss, *_grad_shapes(input, linear_weight, linear_bias, needs, reduction))


@_head_backward_op.register_fake
def _head_backward_fake(input, linear_weight, target, linear_bias, weight, grad_loss, *rest):
    return _grad_shapes(input, linear_weight, linear_bias, rest[-2], "mean")


@torch.library.custom_op(
    "fastloss::all_reduce_sum", mutates_args=(), schema="(Tensor x, str group) -> Tensor"
)
def _all_reduce_op(x, group):
    total = x.clone()
    dist.all_reduce(total, group=_shard_math.resolve_group(group))
    return total


@_all_reduce_op.register_fake
def _all_reduce_fake(x, group):
    return torch.empty_like(x)


def _refuse_double_backward() -> None:
    if torch.is_grad_enabled():  # the engine runs a backward with grad mode on exactly for create_graph
        raise RuntimeError(
            "fastloss.torch: double backward (create_graph=True) is not supported by the fused LM head"
        )


def _scaled(grad: Tensor, grad_loss: Tensor) -> Tensor:
    """grad * grad_output; the common ``loss.backward()`` (grad_output 1, eager, CPU) costs nothing."""
    if grad_loss.device.type == "cpu" and not torch.compiler.is_compiling() and grad_loss.item() == 1.0:
        return grad
    return grad * grad_loss.to(grad.dtype)


def _head_setup(ctx, inputs, output):
    input, linear_weight, target, linear_bias, weight, reduction, *options = inputs
    # The gradient outputs are never differentiated; without these, autograd would hand the
    # backward zero-filled tensors of their shapes (a (V, H) one: as much memory as grad_W).
    ctx.mark_non_differentiable(*output[1:])
    ctx.set_materialize_grads(False)
    ctx.reduction, ctx.options = reduction, options
    ctx.needs, ctx.group = options[-2], options[-1]
    if reduction == "none":
        ctx.save_for_backward(input, linear_weight, target, linear_bias, weight)
    else:
        ctx.save_for_backward(*output[1:])


def _head_backward(ctx, grad_loss, *_grads_of_grads):
    _refuse_double_backward()
    if grad_loss is None:  # no gradient flows into the loss (grads are not materialised)
        return (None,) * 14
    if ctx.reduction == "none":
        gx, gw, gb = _head_backward_op(*ctx.saved_tensors, grad_loss, *ctx.options)
    else:
        gx, gw, gb = (_scaled(g, grad_loss) if g.numel() else g for g in ctx.saved_tensors)
    if ctx.group and ctx.needs[0]:
        gx = _all_reduce_op(gx, ctx.group)
    grads = [g if need else None for g, need in zip((gx, gw, gb), ctx.needs)]
    return grads[0], grads[1], None, grads[2], *(None,) * 10  # one per schema argument


_head_op.register_autograd(_head_backward, setup_context=_head_setup)


@torch.library.custom_op(
    "fastloss::vocab_parallel_cross_entropy",
    mutates_args=(),
    schema="(Tensor logits, Tensor target, str reduction, int ignore_index, float label_smoothing, "
    "float z_loss, bool need_grad, str group) -> (Tensor, Tensor)",
)
def _vocab_parallel_op(logits, target, reduction, ignore_index, label_smoothing, z_loss, need_grad, group):
    shard_size = logits.shape[-1]
    z_all = logits.reshape(-1, shard_size)
    t = target.reshape(-1).long()
    compute = _compute_dtype(logits.dtype)
    opts = chunks.CEOptions(ignore_index, label_smoothing, z_loss, None)
    shard = _shard(group, shard_size, None, opts, compute)
    _shard_math.check_agreement(
        shard.group,
        logits.device,
        shard_size=shard_size,
        input_hidden=0,
        weight_hidden=0,
        target=t,
        ignore_index=ignore_index,
        weight_name="logits",
    )
    denominator = _mean_denominator(t, None, ignore_index, False) if reduction == "mean" else 1.0
    scale = (1.0 / denominator if denominator else 0.0) if reduction != "none" else 1.0
    grad = torch.empty_like(z_all) if need_grad else z_all.new_empty(0)
    rows = torch.empty(t.shape[0], dtype=compute, device=logits.device)
    chunk = chunks.auto_chunk_rows(t.shape[0], shard_size, logits.device)
    for start in range(0, t.shape[0], chunk):
        stop = min(t.shape[0], start + chunk)
        tc = t[start:stop]
        row_scale = torch.full(tc.shape, scale, dtype=compute, device=logits.device) if need_grad else None
        rows[start:stop], g = _shard_math.shard_chunk(
            z_all[start:stop], tc, row_scale, shard, compute, in_place=False
        )
        if g is not None:
            grad[start:stop] = g
    if reduction == "none":
        loss = rows.reshape(target.shape)
    else:
        loss = rows.sum(dtype=torch.float64)
        if reduction == "mean":
            loss = loss / denominator if denominator else loss * math.nan
    return loss.to(logits.dtype), grad.reshape(logits.shape) if need_grad else grad


@_vocab_parallel_op.register_fake
def _vocab_parallel_fake(logits, target, reduction, ignore_index, label_smoothing, z_loss, need_grad, group):
    loss = logits.new_empty(logits.shape[:-1] if reduction == "none" else ())
    return loss, logits.new_empty(logits.shape if need_grad else (0,))


def _vocab_parallel_setup(ctx, inputs, output):
    ctx.mark_non_differentiable(output[1])  # see _head_setup
    ctx.set_materialize_grads(False)
    ctx.reduction = inputs[2]
    ctx.save_for_backward(output[1])


def _vocab_parallel_backward(ctx, grad_loss, _grad_of_grad):
    _refuse_double_backward()
    if grad_loss is None:
        return (None,) * 8
    (grad,) = ctx.saved_tensors
    if ctx.reduction == "none":
        grad = grad * grad_loss.unsqueeze(-1).to(grad.dtype)
    else:
        grad = _scaled(grad, grad_loss)
    return (grad,) + (None,) * 7


_vocab_parallel_op.register_autograd(_vocab_parallel_backward, setup_context=_vocab_parallel_setup)


# ---- the public functions ----------------------------------------------------------------------


def _check_common(reduction, label_smoothing, z_loss, softcap, ignore_index) -> int:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing!r}")
    if not z_loss >= 0.0:
        raise ValueError(f"z_loss must be >= 0, got {z_loss!r}")
    if softcap is not None and not softcap > 0.0:
        raise ValueError(f"softcap must be > 0 or None, got {softcap!r}")
    if ignore_index is None:  # PyTorch's F.linear_cross_entropy default, mapped as it does
        return -100
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
        raise TypeError(f"ignore_index must be an integer, got {ignore_index!r}")
    return ignore_index


def _group_name(process_group) -> str:
    if process_group is None:
        return ""
    if not dist.is_initialized():
        raise ValueError("process_group was given but torch.distributed is not initialized")
    return process_group.group_name


def linear_cross_entropy(
    input: Tensor,
    linear_weight: Tensor,
    target: Tensor,
    *,
    linear_bias: Tensor | None = None,
    weight: Tensor | None = None,
    reduction: str = "mean",
    ignore_index: int | None = -100,
    label_smoothing: float = 0.0,
    options=None,
    z_loss: float = 0.0,
    softcap: float | None = None,
    chunk_size: int | None = None,
    process_group=None,
) -> Tensor:
    """``F.cross_entropy(F.linear(input, linear_weight, linear_bias), target, ...)`` without the logits.

    Shapes: ``input`` (..., H); ``linear_weight`` (V, H) (this rank's (V/P, H) shard with
    ``process_group``); ``linear_bias`` (V,) or None; ``target`` class indices (...) or
    probabilities (..., V) (single process only); ``weight``: class weights (V,) of the full vocabulary.
    ``l_i = (1-eps)*w_t*(lse - z_t) + (eps/V)*sum_c w_c*(lse - z_c) + z_loss*lse**2`` with
    ``z = softcap*tanh(x/softcap)`` if ``softcap`` else the logits ``x``; "mean" divides by the sum of
    ``w_t`` over the non-ignored rows (PyTorch's rule). ``chunk_size``: rows per chunk (default: from a
    memory budget, the vocabulary size and free memory, see ``_head_chunks``; the extra memory is about
    ``chunk_size * V`` logits of the input dtype, plus an fp32 (V, H) weight-gradient accumulator for
    16-bit inputs).
    ``options``: PyTorch's ``LinearCrossEntropyOptions``, accepted for compatibility; its
    ``batch_chunk_size`` is used as ``chunk_size``. 16-bit inputs: matmuls in the input dtype with fp32
    accumulation, the loss kernel in fp32, and the weight/bias gradients accumulated across chunks in fp32.

    A ``linear_weight`` of more than two dims, (V, d1, ..., H) as PyTorch also takes, gives logits
    (..., V, d1, ...) with the classes along dim 1: that case runs unfused (``F.linear`` and
    ``fastloss.torch.cross_entropy``), single process only.
    """
    # every argument, by name; fp32_loss=False: the loss in the input dtype, PyTorch's contract
    return _linear_cross_entropy(**locals())


def _linear_cross_entropy(input, linear_weight, target, *, linear_bias=None, weight=None, reduction="mean",
                          ignore_index=-100, label_smoothing=0.0, options=None, z_loss=0.0, softcap=None,
                          chunk_size=None, process_group=None, fp32_loss: bool = False) -> Tensor:
    """:func:`linear_cross_entropy`; ``fp32_loss``: a 16-bit input's loss comes back in fp32, computed
    from the same logits (the on-ramp's HF loss dtype); the gradients are the same."""
    if linear_weight.dim() > 2 and process_group is None:
        from .functional import cross_entropy

        flat = F.linear(input, linear_weight.flatten(0, -2),
                        None if linear_bias is None else linear_bias.flatten())  # (..., V*d1*...)
        logits = flat.unflatten(-1, linear_weight.shape[:-1])  # (N, V, d1, ...): class dim 1 as PyTorch
        return cross_entropy(logits.float() if fp32_loss else logits, target, weight=weight, reduction=reduction,
                             ignore_index=-100 if ignore_index is None else ignore_index,
                             label_smoothing=label_smoothing, z_loss=z_loss, softcap=softcap)
    ignore_index = _check_common(reduction, label_smoothing, z_loss, softcap, ignore_index)
    if not input.is_floating_point():
        raise TypeError(f"input must be a floating-point tensor, got dtype {input.dtype}")
    if input.dim() < 1 or linear_weight.dim() != 2:
        raise ValueError(
            f"input must be (..., H) and linear_weight (V, H), got shapes {tuple(input.shape)} and "
            f"{tuple(linear_weight.shape)}"
        )
    if process_group is None and input.shape[-1] != linear_weight.shape[1]:
        raise ValueError(
            f"input has hidden size {input.shape[-1]} but linear_weight has {linear_weight.shape[1]} "
            f"(shapes {tuple(input.shape)} and {tuple(linear_weight.shape)})"
        )
    if linear_weight.dtype != input.dtype:
        raise TypeError(f"linear_weight dtype {linear_weight.dtype} differs from input dtype {input.dtype}")
    classes = linear_weight.shape[0]
    if linear_bias is not None and tuple(linear_bias.shape) != (classes,):
        raise ValueError(f"linear_bias must have shape {(classes,)}, got {tuple(linear_bias.shape)}")
    soft = target.is_floating_point()
    if soft:
        if process_group is not None:
            raise ValueError("probability (float) targets are not supported with process_group")
        if tuple(target.shape) != (*input.shape[:-1], classes):
            raise ValueError(
                f"probability target must have shape {(*input.shape[:-1], classes)}, got {tuple(target.shape)}"
            )
    elif target.dtype == torch.bool or target.is_complex():
        raise TypeError(f"target must hold integer class indices or float probabilities, got {target.dtype}")
    elif tuple(target.shape) != tuple(input.shape[:-1]):
        raise ValueError(f"target must have shape {tuple(input.shape[:-1])}, got {tuple(target.shape)}")
    if weight is not None and (weight.dim() != 1 or (process_group is None and weight.shape[0] != classes)):
        raise ValueError(
            f"weight (class weights) must have shape (V,) of the full vocabulary, got {tuple(weight.shape)}"
        )
    if chunk_size is None and options is not None:
        chunk_size = getattr(options, "batch_chunk_size", None)
    check_chunk_size(chunk_size)
    grad_mode = torch.is_grad_enabled()
    needs = [grad_mode and t is not None and t.requires_grad for t in (input, linear_weight, linear_bias)]
    if grad_mode and (target.requires_grad or (weight is not None and weight.requires_grad)):
        raise NotImplementedError("fastloss.torch.linear_cross_entropy: no gradient w.r.t. target or weight")
    loss, *_ = _head_op(
        input,
        linear_weight,
        target,
        linear_bias,
        weight,
        reduction,
        ignore_index,
        float(label_smoothing),
        float(z_loss),
        None if softcap is None else float(softcap),
        chunk_size or 0,
        fp32_loss,
        needs,
        _group_name(process_group),
    )
    return loss


def vocab_parallel_cross_entropy(
    logits: Tensor,
    target: Tensor,
    *,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
    reduction: str = "mean",
    process_group,
) -> Tensor:
    """Full-vocabulary cross-entropy from this rank's shard of the logits (Megatron's convention).

    ``logits`` (..., V/P): rank r holds classes [r*V/P, (r+1)*V/P) of the last axis; ``target`` (...)
    full-vocabulary class indices, replicated. Returns the same loss on every rank (formula of
    :func:`linear_cross_entropy` with V the full vocabulary); the backward gives this rank's shard of
    the gradient. Communication per call: one all-gather of 7 integers per rank (the agreement check),
    then two all-reductions of O(rows) per chunk. ``process_group=None`` means the default group.
    """
    ignore_index = _check_common(reduction, label_smoothing, z_loss, None, ignore_index)
    if not logits.is_floating_point():
        raise TypeError(f"logits must be a floating-point tensor, got dtype {logits.dtype}")
    if target.is_floating_point() or target.dtype == torch.bool:
        raise TypeError(f"target must hold integer class indices, got {target.dtype}")
    if logits.dim() < 1 or tuple(target.shape) != tuple(logits.shape[:-1]):
        raise ValueError(
            f"target must have logits' shape without the last axis {tuple(logits.shape[:-1])}, "
            f"got {tuple(target.shape)}"
        )
    if not dist.is_initialized():
        raise ValueError("vocab_parallel_cross_entropy needs torch.distributed to be initialized")
    group = process_group if process_group is not None else dist.group.WORLD
    need_grad = torch.is_grad_enabled() and logits.requires_grad
    loss, _ = _vocab_parallel_op(
        logits,
        target,
        reduction,
        ignore_index,
        float(label_smoothing),
        float(z_loss),
        need_grad,
        group.group_name,
    )
    return loss


class LinearCrossEntropyLoss(nn.modules.loss._WeightedLoss):
    """``torch.nn.LinearCrossEntropyLoss`` (holds the head's ``nn.Linear``) on :func:`linear_cross_entropy`.

    With ``process_group`` of P ranks, ``num_classes`` is the full vocabulary and ``self.linear``
    holds this rank's ``num_classes // P`` classes.
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        *,
        out_features: tuple[int, ...] = (),
        bias: bool = False,
        device=None,
        dtype=None,
        reduction: str = "mean",
        weight: Tensor | None = None,
        ignore_index: int | None = -100,
        label_smoothing: float = 0.0,
        options=None,
        z_loss: float = 0.0,
        softcap: float | None = None,
        chunk_size: int | None = None,
        process_group=None,
    ) -> None:
        if tuple(out_features) != () and process_group is not None:
            raise ValueError(f"out_features (K-dimensional heads) needs a single process, got {out_features!r}")
        if weight is not None and tuple(weight.shape) != (num_classes,):
            raise ValueError(f"weight must have shape {(num_classes,)}, got {tuple(weight.shape)}")
        super().__init__(weight, None, None, reduction)
        ranks = dist.get_world_size(process_group) if process_group is not None else 1
        if num_classes % ranks:
            raise ValueError(
                f"num_classes={num_classes} is not divisible by the {ranks} ranks of process_group"
            )
        self.num_classes, self.ignore_index, self.label_smoothing = num_classes, ignore_index, label_smoothing
        self.options, self.z_loss, self.softcap = options, z_loss, softcap
        self.chunk_size, self.process_group = chunk_size, process_group
        self.out_features = tuple(out_features)
        # As PyTorch's module: a 2-D Linear, viewed as (num_classes, *out_features, in_features) in forward.
        self.linear = nn.Linear(in_features, math.prod(self.out_features, start=num_classes // ranks), bias=bias,
                                device=device, dtype=dtype)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        shape = (self.linear.out_features // math.prod(self.out_features), *self.out_features)
        return linear_cross_entropy(
            input,
            self.linear.weight.reshape(*shape, self.linear.in_features),
            target,
            linear_bias=None if self.linear.bias is None else self.linear.bias.reshape(shape),
            weight=self.weight,
            reduction=self.reduction,
            ignore_index=self.ignore_index,
            label_smoothing=self.label_smoothing,
            options=self.options,
            z_loss=self.z_loss,
            softcap=self.softcap,
            chunk_size=self.chunk_size,
            process_group=self.process_group,
        )


# A mistake raises PyTorch's exception type too, at every input size (_errors.py).
linear_cross_entropy = _errors.like_torch(linear_cross_entropy, _errors.linear_cross_entropy_reference)
