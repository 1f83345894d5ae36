"""Fused linear + cross-entropy for NumPy users: the LM head's loss without the (N, V) logits.

The same chunked scheme as ``fastloss.torch.linear_cross_entropy``: for each chunk of rows the
logits ``x_c @ W.T + b`` are written into one (chunk, V) buffer, fastloss's cross-entropy kernel
overwrites them with their gradient, and the chunk's shares of the input, weight and bias gradients
are accumulated. Extra memory: the (chunk, V) buffer and, when there is more than one chunk, one
(V, H) buffer for the weight-gradient product (NumPy has no in-place ``C += A @ B``). 16-bit inputs
are computed in float32 (a float32 copy of the weight) and the gradients rounded once at the end.
"""

from __future__ import annotations

import numbers

import numpy as np

from . import _arrays
from ._api import FUNCTIONS

_CHUNK_BYTES = 32 << 20  # the logits buffer's budget, as the torch head on CPU


def _floats(host: _arrays.HostArray, compute) -> np.ndarray:
    """``host``'s values in the compute dtype (no copy when they already are)."""
    if host.dtype == np.dtype(compute).name:
        return np.ascontiguousarray(host.data)
    return np.ascontiguousarray(_arrays.to_float64(host.data, host.dtype), dtype=compute)


def _rows_per_chunk(rows: int, classes: int, chunk_size) -> int:
    if chunk_size is None:
        return max(1, min(rows, _CHUNK_BYTES // (4 * classes)))
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, numbers.Integral) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer or None, got {chunk_size!r}")
    return int(chunk_size)


def _prepare(input, weight, target, bias, class_weight, ignore_index):
    x = _arrays.as_host(input, "input")
    w = _arrays.as_host(weight, "weight")
    if not x.is_float or not w.is_float:
        raise TypeError(f"input and weight must be floating-point arrays, got dtypes {x.dtype} and {w.dtype}")
    shape, classes = x.data.shape, w.data.shape[0] if w.data.ndim == 2 else -1
    if len(shape) < 1 or w.data.ndim != 2 or shape[-1] != w.data.shape[1]:
        raise ValueError(
            f"input must be (..., H) and weight (V, H) with the same H, got shapes {shape} and {w.data.shape}"
        )
    compute = np.float64 if x.dtype == "float64" else np.float32
    x2, w2 = _floats(x, compute).reshape(-1, shape[-1]), _floats(w, compute)
    b = None
    if bias is not None:
        bh = _arrays.as_host(bias, "bias")
        if bh.data.shape != (classes,):
            raise ValueError(f"bias must have shape {(classes,)}, got {bh.data.shape}")
        b = _floats(bh, compute)
    th = _arrays.as_host(target, "target")
    soft = th.is_float
    if soft:
        if th.data.shape != (*shape[:-1], classes):
            raise ValueError(
                f"probability target must have shape {(*shape[:-1], classes)}, got {th.data.shape}"
            )
        t = _floats(th, compute).reshape(-1, classes)
    else:
        if th.data.dtype.kind not in "iu":
            raise TypeError(
                f"target must hold integer class indices or float probabilities, got dtype {th.dtype}"
            )
        if th.data.shape != shape[:-1]:
            raise ValueError(f"target must have shape {shape[:-1]}, got {th.data.shape}")
        t = np.ascontiguousarray(th.data, dtype=np.int64).reshape(-1)
        bad = ((t < 0) | (t >= classes)) & (t != ignore_index)
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(
                f"target[{i}] = {t[i]} is out of range [0, {classes}) and is not ignore_index={ignore_index}"
            )
    cw = None
    if class_weight is not None:
        cw = _arrays.host_values(class_weight, "class_weight").astype(np.float64)
        if cw.shape != (classes,):
            raise ValueError(f"class_weight must have shape {(classes,)}, got {cw.shape}")
    return x, w, x2, w2, b, t, soft, cw, compute


def _mean_denominator(t: np.ndarray, soft: bool, cw, ignore_index: int) -> float:
    if soft:
        return float(t.shape[0])
    valid = t != ignore_index
    return float(cw[t[valid]].sum()) if cw is not None else float(np.count_nonzero(valid))


def _run(
    input,
    weight,
    target,
    *,
    bias,
    class_weight,
    ignore_index,
    label_smoothing,
    z_loss,
    softcap,
    reduction,
    grad_output,
    chunk_size,
    need_grad,
):
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"reduction must be one of ('none', 'mean', 'sum'), got {reduction!r}")
    x, w, x2, w2, b, t, soft, cw, compute = _prepare(input, weight, target, bias, class_weight, ignore_index)
    n, classes = x2.shape[0], w2.shape[0]
    opts = {
        "weight": cw,
        "ignore_index": ignore_index,
        "label_smoothing": label_smoothing,
        "z_loss": z_loss,
        "softcap": softcap,
    }
    denominator = _mean_denominator(t, soft, cw, ignore_index) if reduction == "mean" else 1.0
    per_row = reduction == "none"
    if need_grad and per_row:
        go = np.broadcast_to(np.asarray(grad_output, dtype=np.float64), x.data.shape[:-1]).reshape(-1)
    elif need_grad:
        go = float(grad_output) / denominator if denominator else 0.0
    chunk = _rows_per_chunk(n, classes, chunk_size)
    buffer = np.empty((min(chunk, n), classes), dtype=compute)
    gx = np.empty_like(x2) if need_grad else None
    gw = np.zeros_like(w2) if need_grad else None
    gb = np.zeros(classes, dtype=compute) if need_grad and b is not None else None
    product = np.empty_like(w2) if need_grad and n > chunk else None
    rows = np.empty(n, dtype=np.float64) if per_row else None
    total = 0.0
    ce_reduction = "none" if per_row else "sum"
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        xc, tc, z = x2[start:stop], t[start:stop], buffer[: stop - start]
        np.matmul(xc, w2.T, out=z)  # (chunk, V)
        if b is not None:
            z += b
        if need_grad:
            g = go[start:stop] if per_row else go
            loss, _ = FUNCTIONS["cross_entropy_with_grad"](
                z, tc, reduction=ce_reduction, grad_output=g, out=z, **opts
            )
            np.matmul(z, w2, out=gx[start:stop])
            if start == 0:
                np.matmul(z.T, xc, out=gw)
            else:
                np.matmul(z.T, xc, out=product)
                gw += product
            if gb is not None:
                gb += z.sum(axis=0)
        else:
            loss = FUNCTIONS["cross_entropy"](z, tc, reduction=ce_reduction, **opts)
        if per_row:
            rows[start:stop] = loss
        else:
            total += float(loss)
    loss_dtype = np.float64 if compute == np.float64 else np.float32
    if per_row:
        value = _arrays.wrap(rows.astype(loss_dtype).reshape(x.data.shape[:-1]), loss_dtype.__name__, x)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            value = np.float64(total) / denominator if reduction == "mean" else total
        value = _arrays.wrap_scalar(float(value), loss_dtype, x)
    if not need_grad:
        return value
    grads = (_restore(gx.reshape(x.data.shape), x), _restore(gw, w), None if gb is None else _restore(gb, w))
    return (value, *grads)


def _restore(values: np.ndarray, like: _arrays.HostArray):
    """Gradient values rounded once into ``like``'s dtype, as ``like``'s array type."""
    if values.dtype.name != like.dtype:
        values = _arrays.from_float64(values.astype(np.float64), like.dtype)
    return _arrays.wrap(values, like.dtype, like)


def linear_cross_entropy(
    input,
    weight,
    target,
    *,
    bias=None,
    class_weight=None,
    ignore_index=-100,
    label_smoothing=0.0,
    z_loss=0.0,
    softcap=None,
    reduction="mean",
    chunk_size=None,
):
    """Cross-entropy of the logits ``input @ weight.T + bias`` without materialising them.

    ``input`` (..., H), ``weight`` (V, H), ``bias`` (V,) or None, ``target`` class indices (...) or
    probabilities (..., V). The options are ``fastloss.cross_entropy``'s, the class weights named
    ``class_weight`` (``weight`` is the linear layer's): ``l_i = (1-eps)*w_t*(lse - z_t) +
    (eps/V)*sum_c w_c*(lse - z_c) + z_loss*lse**2``; "mean" divides by the sum of ``w_t`` over the
    non-ignored rows. ``chunk_size``: rows per chunk (default: a 32 MiB logits buffer).
    """
    return _run(**locals(), grad_output=1.0, need_grad=False)  # every argument, by name


def linear_cross_entropy_with_grad(
    input,
    weight,
    target,
    *,
    bias=None,
    class_weight=None,
    ignore_index=-100,
    label_smoothing=0.0,
    z_loss=0.0,
    softcap=None,
    reduction="mean",
    grad_output=1.0,
    chunk_size=None,
):
    """``(loss, grad_input, grad_weight, grad_bias)`` of :func:`linear_cross_entropy` in one chunked pass.

    ``grad_output``: a scalar, or for ``reduction="none"`` an array of the loss's shape. The gradients
    have the dtypes of ``input``/``weight``; ``grad_bias`` is None without a bias.
    """
    return _run(**locals(), need_grad=True)  # every argument, by name
