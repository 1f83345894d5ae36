"""Contrastive losses for NumPy users: InfoNCE, CLIP, SigLIP and NT-Xent without the (N, N) matrix.

The tiled scheme of ``fastloss.torch.contrastive`` (see ``torch/_contrastive_tiles.py``) in NumPy, single
process: strips of the similarity matrix ``z = s * rows @ cols.T (+ b)`` are written into one buffer,
fastloss's fused kernels turn them into their loss and, in place, their gradient, and the strip's
shares of the gradients are accumulated. The column direction of the CLIP loss takes a first pass of
transposed strips for each column's log-sum-exp. Extra memory: one or two (rows, N) strips from a
32 MiB budget, one (N, D) product buffer and the gradients. 16-bit inputs are computed in float32.
"""

from __future__ import annotations

import numbers

import numpy as np

from . import _arrays
from ._api import FUNCTIONS
from ._linear_ce import _floats, _restore

_TILE_BYTES = 32 << 20
_REDUCTIONS = ("none", "mean", "sum")


def _strip_rows(rows: int, columns: int, buffers: int, chunk_size) -> int:
    if chunk_size is None:
        return max(1, min(rows, max(64, _TILE_BYTES // (4 * buffers * max(columns, 1)))))
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, numbers.Integral) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer or None, got {chunk_size!r}")
    return int(chunk_size)


def _pair(a, b, names, same_rows):
    ha, hb = _arrays.as_host(a, names[0]), _arrays.as_host(b, names[1])
    for h, name in ((ha, names[0]), (hb, names[1])):
        if not h.is_float:
            raise TypeError(f"{name} must be a floating-point array, got dtype {h.dtype}")
        if h.data.ndim != 2:
            raise ValueError(f"{name} must be 2-D (batch, dim), got shape {h.data.shape}")
    if ha.dtype != hb.dtype:
        raise TypeError(f"{names[0]} and {names[1]} must have the same dtype, got {ha.dtype} and {hb.dtype}")
    sa, sb = ha.data.shape, hb.data.shape
    if sa[1] != sb[1]:
        raise ValueError(f"{names[0]} and {names[1]} must have the same feature size, got shapes {sa} and {sb}")
    if (same_rows and sa[0] != sb[0]) or sb[0] < sa[0]:
        need = "the same batch size" if same_rows else f"at least as many rows in {names[1]}"
        raise ValueError(f"{names[0]} and {names[1]} need {need}, got shapes {sa} and {sb}")
    compute = np.float64 if ha.dtype == "float64" else np.float32
    return ha, hb, _floats(ha, compute), _floats(hb, compute)


def _number(x, name: str) -> float:
    if isinstance(x, bool) or not isinstance(x, (numbers.Real, np.ndarray, np.generic)):
        raise TypeError(f"{name} must be a number, got {type(x).__name__}")
    value = np.asarray(x, dtype=np.float64)
    if value.size != 1:
        raise ValueError(f"{name} must be a single number, got shape {value.shape}")
    return float(value.reshape(()))


def _column_lse(rows, cols, scale, buffer, chunk):
    """Per column: log-sum-exp over all rows and the column loss (its positive is row j)."""
    n, m = rows.shape[0], cols.shape[0]
    lse, loss = np.empty(m, rows.dtype), np.empty(m, rows.dtype)
    for start in range(0, m, chunk):
        stop = min(m, start + chunk)
        zt = buffer.reshape(-1)[: (stop - start) * n].reshape(stop - start, n)
        np.matmul(cols[start:stop] * scale, rows.T, out=zt)
        target = np.arange(start, stop)
        loss[start:stop] = FUNCTIONS["cross_entropy"](zt, target, reduction="none")
        lse[start:stop] = loss[start:stop] + zt[np.arange(stop - start), target]
    return lse, loss


def _column_grad(z, col_lse, target, weight, out):
    """``weight * (exp(z - lse_col) - onehot)`` of a strip (see ``torch/_contrastive_tiles._column_grad``)."""
    x = np.subtract(z, col_lse, out=out)
    local = np.arange(z.shape[0])
    if np.ndim(weight):
        np.exp(x, out=x)
        x *= weight
        x[local, target] -= weight[target]
        return x
    d = np.exp(FUNCTIONS["cross_entropy"](x, target, reduction="none") + x[local, target])
    FUNCTIONS["cross_entropy_with_grad"](x, target, reduction="none", grad_output=(d * weight).astype(x.dtype), out=x)
    x[local, target] += (d - 1) * weight
    return x


def _run(rows, cols, target, exclude, scale, bias, kind, row_w, col_w, chunk_size, need_grad):
    """(sum of row losses, row losses or None, column losses or None, grad_rows, grad_cols, d/ds, d/db).

    Same contract as ``torch/_contrastive_tiles.run`` (single process)."""
    n, m = rows.shape[0], cols.shape[0]
    columns = col_w is not None
    chunk = _strip_rows(n, m, 2 if (columns and need_grad) or kind == "sigmoid" else 1, chunk_size)
    side = max(n, m)
    storage = np.empty(min(chunk, side) * side, dtype=rows.dtype)
    col_lse, col_loss = _column_lse(rows, cols, scale, storage, chunk) if columns else (None, None)
    buffer = storage[: min(chunk, n) * m].reshape(min(chunk, n), m)
    extra = np.empty_like(buffer) if columns and need_grad else None
    row_loss = np.empty(n, rows.dtype) if kind == "softmax" else None
    zeros = np.zeros_like(buffer) if kind == "sigmoid" else None  # a dense target: the kernel copies a broadcast one
    gr = np.empty_like(rows) if need_grad else None
    gc = np.zeros_like(cols) if need_grad else None
    product = np.empty_like(cols) if need_grad else None
    total, gs, gb = 0.0, 0.0, 0.0
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        local, tc = np.arange(stop - start), target[start:stop]
        scaled = rows[start:stop] * scale
        z = np.matmul(scaled, cols.T, out=buffer[: stop - start])
        z += bias
        if exclude is not None:
            z[local, exclude[start:stop]] = -np.inf
        e = _column_grad(z, col_lse, tc, col_w, extra[: stop - start]) if extra is not None else None
        rw = row_w[start:stop] if np.ndim(row_w) else row_w
        if kind == "softmax":
            if need_grad:
                go = np.broadcast_to(np.asarray(rw, dtype=z.dtype), (stop - start,))
                row_loss[start:stop], _ = FUNCTIONS["cross_entropy_with_grad"](
                    z, tc, reduction="none", grad_output=go, out=z)
            else:
                row_loss[start:stop] = FUNCTIONS["cross_entropy"](z, tc, reduction="none")
            total += float(row_loss[start:stop].sum(dtype=np.float64))
        else:
            positive = float(z[local, tc].sum(dtype=np.float64))
            negatives = zeros[: stop - start]  # every pair a negative, the positives corrected below
            if need_grad:
                loss, _ = FUNCTIONS["binary_cross_entropy_with_logits_with_grad"](
                    z, negatives, reduction="sum", grad_output=rw, out=z)
                z[local, tc] -= rw
            else:
                loss = FUNCTIONS["binary_cross_entropy_with_logits"](z, negatives, reduction="sum")
            total += float(loss) - positive
        if not need_grad:
            continue
        if e is not None:
            z += e
        g_rows = np.matmul(z, cols, out=gr[start:stop])
        gs += float(np.einsum("ij,ij->", g_rows, rows[start:stop], dtype=np.float64))
        gb += float(z.sum(dtype=np.float64))
        g_rows *= scale
        gc += np.matmul(z.T, scaled, out=product)
    return total, row_loss, None if col_loss is None else col_loss[target], gr, gc, gs, gb


def _reduce(total, row_loss, col_loss, reduction, symmetric, samples):
    if reduction == "none":
        return (row_loss + col_loss) / 2 if symmetric else row_loss
    value = total + (float(col_loss.sum(dtype=np.float64)) if symmetric else 0.0)
    value = value / 2 if symmetric else value
    if reduction == "mean":
        with np.errstate(divide="ignore", invalid="ignore"):
            value = np.float64(value) / samples
    return value


def _loss_out(value, like):
    dtype = np.float64 if like.dtype == "float64" else np.float32
    if np.ndim(value):
        return _arrays.wrap(np.asarray(value, dtype=dtype), dtype.__name__, like)
    return _arrays.wrap_scalar(float(value), dtype, like)


def _info_nce(query, key, temperature, symmetric, reduction, chunk_size, grad_output, need_grad):
    hq, hk, q, k = _pair(query, key, ("query", "key"), same_rows=symmetric)
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real) or not temperature > 0:
        raise ValueError(f"temperature must be a positive number, got {temperature!r}")
    n = q.shape[0]
    if reduction == "none":
        go = np.broadcast_to(np.asarray(grad_output, dtype=np.float64), (n,)).astype(q.dtype)
    else:
        go = float(grad_output) * ((1.0 / n if n else 0.0) if reduction == "mean" else 1.0)
    row_w = go / 2 if symmetric else go
    total, rows, cols, gq, gk, _, _ = _run(q, k, np.arange(n), None, 1.0 / temperature, 0.0, "softmax", row_w,
                                           row_w if symmetric else None, chunk_size, need_grad)
    loss = _loss_out(_reduce(total, rows, cols, reduction, symmetric, n), hq)
    return (loss, _restore(gq, hq), _restore(gk, hk)) if need_grad else loss


def info_nce(query, key, *, temperature=0.07, symmetric=False, reduction="mean", chunk_size=None):
    """InfoNCE with in-batch negatives: cross-entropy of ``query @ key.T / temperature`` with row i's
    positive ``key[i]`` (``key`` (M, D), M >= N: extra rows are extra negatives). ``l_i = logsumexp_j(z_ij)
    - z_ii``; ``symmetric=True`` (M = N) gives ``(l_i + col_i) / 2`` with the key-side direction
    ``col_i = logsumexp_j(z_ji) - z_ii`` (the CLIP loss). As ``fastloss.torch.info_nce``."""
    return _info_nce(query, key, temperature, symmetric, reduction, chunk_size, 1.0, False)


def info_nce_with_grad(query, key, *, temperature=0.07, symmetric=False, reduction="mean", chunk_size=None,
                       grad_output=1.0):
    """``(loss, grad_query, grad_key)`` of :func:`info_nce`; ``grad_output`` a scalar, or (N,) for "none"."""
    return _info_nce(query, key, temperature, symmetric, reduction, chunk_size, grad_output, True)


def _clip(image_features, text_features, logit_scale, grad_output, need_grad):
    hi, ht, img, txt = _pair(image_features, text_features, ("image_features", "text_features"), True)
    s, n = _number(logit_scale, "logit_scale"), img.shape[0]
    w = float(grad_output) / (2 * n) if n else 0.0
    total, rows, cols, gi, gt, gs, _ = _run(img, txt, np.arange(n), None, s, 0.0, "softmax", w, w, None, need_grad)
    loss = _loss_out(_reduce(total, rows, cols, "mean", True, n), hi)
    return (loss, _restore(gi, hi), _restore(gt, ht), gs) if need_grad else loss


def clip_loss(image_features, text_features, logit_scale):
    """open_clip's ``ClipLoss``: ``(CE(z, arange N) + CE(z.T, arange N)) / 2`` with
    ``z = logit_scale * image_features @ text_features.T``."""
    return _clip(image_features, text_features, logit_scale, 1.0, False)


def clip_loss_with_grad(image_features, text_features, logit_scale, *, grad_output=1.0):
    """``(loss, grad_image, grad_text, grad_logit_scale)`` of :func:`clip_loss` (the last a float)."""
    return _clip(image_features, text_features, logit_scale, grad_output, True)


def _siglip(image_features, text_features, logit_scale, logit_bias, grad_output, need_grad):
    hi, ht, img, txt = _pair(image_features, text_features, ("image_features", "text_features"), True)
    s, b, n = _number(logit_scale, "logit_scale"), _number(logit_bias, "logit_bias"), img.shape[0]
    w = float(grad_output) / n if n else 0.0
    total, _, _, gi, gt, gs, gb = _run(img, txt, np.arange(n), None, s, b, "sigmoid", w, None, None, need_grad)
    loss = _loss_out(total / n if n else np.nan, hi)
    return (loss, _restore(gi, hi), _restore(gt, ht), gs, gb) if need_grad else loss


def siglip_loss(image_features, text_features, logit_scale, logit_bias):
    """open_clip's ``SigLipLoss``: ``-sum_ij logsigmoid(y_ij * (logit_scale * img_i . txt_j + logit_bias)) / N``,
    y = +1 on the diagonal, -1 elsewhere."""
    return _siglip(image_features, text_features, logit_scale, logit_bias, 1.0, False)


def siglip_loss_with_grad(image_features, text_features, logit_scale, logit_bias, *, grad_output=1.0):
    """``(loss, grad_image, grad_text, grad_logit_scale, grad_logit_bias)`` of :func:`siglip_loss`."""
    return _siglip(image_features, text_features, logit_scale, logit_bias, grad_output, True)


def _nt_xent(z1, z2, temperature, grad_output, need_grad):
    h1, h2, a, b = _pair(z1, z2, ("z1", "z2"), True)
    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real) or abs(temperature) < 1e-8:
        raise ValueError(f"temperature must be a number with |temperature| >= 1e-8, got {temperature!r}")
    x = np.concatenate([a, b])
    norm = np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)  # F.normalize's eps
    v, n2 = x / norm, x.shape[0]
    half = n2 // 2
    target = np.concatenate([np.arange(half, n2), np.arange(half)])
    w = float(grad_output) / n2 if n2 else 0.0
    total, _, _, gr, gc, _, _ = _run(v, v, target, np.arange(n2), 1.0 / temperature, 0.0, "softmax", w, None,
                                     None, need_grad)
    loss = _loss_out(total / n2 if n2 else np.nan, h1)
    if not need_grad:
        return loss
    gv = gr + gc  # the views are both the rows and the columns
    gx = (gv - v * np.sum(v * gv, axis=1, keepdims=True)) / norm  # through x / |x|
    gx = np.where(norm > 1e-12, gx, gv / 1e-12)  # below eps F.normalize divides by the constant eps
    return loss, _restore(gx[:half].astype(a.dtype), h1), _restore(gx[half:].astype(a.dtype), h2)


def nt_xent(z1, z2, *, temperature=0.5):
    """SimCLR's NT-Xent over the 2N normalised views (lightly's ``NTXentLoss``): view i's positive is
    its partner, its own similarity excluded, ``l_i = logsumexp_{j != i}(v_i . v_j / T) - v_i . v_p(i) / T``,
    averaged over the 2N views."""
    return _nt_xent(z1, z2, temperature, 1.0, False)


def nt_xent_with_grad(z1, z2, *, temperature=0.5, grad_output=1.0):
    """``(loss, grad_z1, grad_z2)`` of :func:`nt_xent`."""
    return _nt_xent(z1, z2, temperature, grad_output, True)
