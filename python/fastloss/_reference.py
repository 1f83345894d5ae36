"""NumPy implementation of every loss: the fallback backend and the test oracle.

Every function works in float64 on canonical arrays and returns the *unreduced* loss and the
gradient of that unreduced loss (reduction scaling is applied once, generically, in ``_backends``):

- rowwise:   ``f(x (M, C), target, **opts) -> (loss (M,), grad (M, C))``; ``target`` is (M,) int64
  class indices or (M, C) float64 probabilities (soft targets).
- pointwise: ``f(x (n,), y (n,), **opts) -> (loss (n,), grad (n,))``.

Ignored rows give exactly 0 loss and an exactly 0 gradient row.
"""

from __future__ import annotations

import numpy as np


def _softmax_stats(z):
    """(m, log_s (M, 1), p (M, C)) of z (M, C): row max, log sum exp(z - m), softmax; lse = m + log_s.

    p is e / s, not exp(z - lse): near the float64 maximum m + log_s rounds back to m (3e38 + log 2),
    and two tied logits would each get probability 1. Rows of all -inf or with +inf give nan as in
    PyTorch."""
    m = np.max(z, axis=1, keepdims=True)
    m = np.where(m == -np.inf, 0.0, m)  # a +inf maximum stays: inf - inf = nan, as log_softmax gives
    e = np.exp(z - m)
    s = np.sum(e, axis=1, keepdims=True)
    return m, np.log(s), e / s


def _log_softmax_stats(z):
    """(lse (M, 1), p (M, C)) of z (M, C), as _softmax_stats."""
    m, log_s, p = _softmax_stats(z)
    return m + log_s, p


def _valid_rows(target, ignore_index):
    valid = target != ignore_index
    return valid, np.where(valid, target, 0)


def cross_entropy(x, target, *, weight, ignore_index, label_smoothing, z_loss, softcap):
    M, C = x.shape
    w = np.ones(C) if weight is None else weight
    eps = label_smoothing
    if softcap is not None:
        z = softcap * np.tanh(x / softcap)
        dz_dx = 1.0 - np.tanh(x / softcap) ** 2
    else:
        z, dz_dx = x, 1.0
    m, log_s, p = _softmax_stats(z)
    lse = m + log_s
    lse_z = log_s - (z - m)  # lse - z without rounding lse at the logits' magnitude
    rows = np.arange(M)
    if target.dtype.kind == "f":  # soft targets
        wq = w * ((1.0 - eps) * target + eps / C)
        loss = np.sum(wq * lse_z, axis=1) + z_loss * lse[:, 0] * lse[:, 0]  # 0, not 0 * inf, for z_loss=0
        grad = p * (np.sum(wq, axis=1, keepdims=True) + 2.0 * z_loss * lse) - wq
        return loss, grad * dz_dx
    valid, t = _valid_rows(target, ignore_index)
    wt = w[t]
    # without smoothing the sum over classes is skipped, not multiplied by 0: a -inf (masked)
    # logit makes it inf, and 0 * inf would turn a finite loss into nan
    smoothing = (eps / C) * np.sum(w * lse_z, axis=1) if eps else 0.0
    loss = (1.0 - eps) * wt * lse_z[rows, t] + smoothing + z_loss * lse[:, 0] * lse[:, 0]
    rest = (eps / C) * np.sum(w) + 2.0 * z_loss * lse[:, 0]
    grad = p * ((1.0 - eps) * wt + rest)[:, None] - (eps / C) * w
    # the target's (1 - eps) w_t (p_t - 1) apart: p_t coef - (1 - eps) w_t cancels as p_t -> 1 (C = 1:
    # the z-loss term alone would keep only the digits of 1 + 2 z_loss lse)
    p_t = p[rows, t]
    grad[rows, t] = p_t * rest - (eps / C) * w[t] + (1.0 - eps) * wt * (p_t - 1.0)
    grad = grad * dz_dx
    loss[~valid] = 0.0
    grad[~valid] = 0.0
    return loss, grad


def _focal_modulator(u, om, gamma):
    """(1 - p_t)**gamma from u = log p_t: exp(gamma log(1 - p_t)) with log1p(-p_t) for a small p_t,
    where 1 - p_t rounds to 1 (and 1**gamma = 1) though (1 - 1e-20)**1e30 is 0."""
    if gamma == 0:
        return np.ones_like(u)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_om = np.where(u < -np.log(2.0), np.log1p(-np.exp(np.minimum(u, 0.0))), np.log(om))
        return np.exp(gamma * log_om)


def softmax_focal_loss(x, target, *, alpha, gamma, ignore_index):
    M = x.shape[0]
    m, log_s, p = _softmax_stats(x)
    valid, t = _valid_rows(target, ignore_index)
    rows = np.arange(M)
    if alpha is None:
        a = np.ones(M)
    elif np.ndim(alpha) == 0:
        a = np.full(M, float(alpha))
    else:
        a = alpha[t]
    logp_t = (x[rows, t] - m[:, 0]) - log_s[:, 0]
    p_t = np.exp(logp_t)
    one_minus = -np.expm1(logp_t)  # 1 - p_t without cancellation as p_t -> 1
    mod = _focal_modulator(logp_t, one_minus, gamma)
    loss = -a * mod * logp_t
    # d loss / d logp_t = a*(gamma*(1-p)**gamma * p*log p/(1-p) - (1-p)**gamma); the ratio
    # p*log p/(1-p) tends to -1 as p -> 1, which keeps gamma < 1 finite.
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(one_minus > 0, p_t * logp_t / one_minus, -1.0)
    k = a * (gamma * mod * ratio - mod)
    grad = -k[:, None] * p
    grad[rows, t] += k
    loss[~valid] = 0.0
    grad[~valid] = 0.0
    return loss, grad


def multiclass_hinge_loss(x, target, *, margin, squared, variant, weight, ignore_index):
    M, C = x.shape
    valid, t = _valid_rows(target, ignore_index)
    rows = np.arange(M)
    wt = np.ones(M) if weight is None else weight[t]
    s_t = x[rows, t]
    grad = np.zeros_like(x)
    if variant == "crammer_singer":
        others = x.copy()
        others[rows, t] = -np.inf
        j = np.argmax(others, axis=1)  # first maximum (or first NaN), as torch.max(dim) picks
        if C > 1:  # every other score -inf: argmax gave t (= 0), the first j != t is 1
            j = np.where(j == t, 1, j)
        h = margin + (others[rows, j] - s_t)  # exactly margin for a tie, at any magnitude
        active = h > 0  # PyTorch's multi_margin_loss: a zero hinge has zero gradient
        nan = np.isnan(h)  # a NaN score propagates to the loss and both gradient entries
        loss = np.where(nan, np.nan, np.where(active, h**2 if squared else h, 0.0) * wt)
        d = np.where(nan, np.nan, np.where(active, 2.0 * h if squared else 1.0, 0.0) * wt)
        if C > 1:
            grad[rows, j] += d
        grad[rows, t] -= d
    else:
        h = margin + (x - s_t[:, None])
        h[rows, t] = 0.0
        active = h > 0
        loss = np.sum(np.where(active, h**2 if squared else h, 0.0), axis=1) * wt
        grad = np.where(active, 2.0 * h if squared else 1.0, 0.0) * wt[:, None]
        grad[rows, t] = -np.sum(grad, axis=1)
    loss[~valid] = 0.0
    grad[~valid] = 0.0
    return loss, grad


def sigmoid_focal_loss(x, y, *, alpha, gamma):
    e = np.exp(-np.abs(x))
    p = np.where(x >= 0, 1.0, e) / (1.0 + e)
    q = np.where(x >= 0, e, 1.0) / (1.0 + e)  # 1 - p, exact for large |x|
    # PyTorch's BCE-with-logits form (1 - y) x - log_sigmoid(x): inf, not nan, at x = +inf for y < 1
    ce = (1.0 - y) * x - np.minimum(x, 0.0) + np.log1p(e)
    one_minus_pt = p * (1.0 - y) + q * y
    mod = one_minus_pt**gamma
    # d(1-p_t)/dx = p*q*(1-2y); divided by (1-p_t) it stays finite where 1-p_t -> 0.
    with np.errstate(divide="ignore", invalid="ignore"):
        dlog = np.where(one_minus_pt > 0, p * q * (1.0 - 2.0 * y) / one_minus_pt, 0.0)
    loss = ce * mod
    # gamma = 0 has no focus term at all (not 0 times an infinite ce, as PyTorch's autograd)
    grad = (p - y) * mod + (ce * (gamma * mod * dlog) if gamma != 0 else 0.0)  # ce at the float max: no overflow
    if alpha >= 0:
        a = alpha * y + (1.0 - alpha) * (1.0 - y)
        loss, grad = loss * a, grad * a
    return loss, grad


def hinge_loss(s, y, *, margin, squared):
    y = np.where(y == 0, -1.0, y)
    h = margin - y * s
    active = h > 0
    off = np.where(np.isnan(h), h, 0.0)  # a NaN score or target propagates
    loss = np.where(active, h**2 if squared else h, off)
    grad = np.where(active, -y * (2.0 * h if squared else 1.0), off)
    return loss, grad


def huber_loss(x, y, *, delta):
    e = x - y
    small = np.abs(e) < delta
    loss = np.where(small, 0.5 * e * e, delta * (np.abs(e) - 0.5 * delta))
    grad = np.clip(e, -delta, delta)
    return loss, np.where(np.isnan(e), e, grad)


def smooth_l1_loss(x, y, *, beta):
    e = x - y
    if beta == 0.0:
        return np.abs(e), np.sign(e)
    small = np.abs(e) < beta
    loss = np.where(small, 0.5 * e * e / beta, np.abs(e) - 0.5 * beta)
    grad = np.where(small, e / beta, np.sign(e))
    return loss, grad


def mse_loss(x, y):
    """l = e**2; the gradient 2 e comes back as e, its factor in ``mse_loss.grad_factor``: the backend
    folds the factor into the gradient's scale, as the native kernel does (2 e overflows for
    |e| > max / 2 where 2 e / n, the "mean" gradient, does not)."""
    e = x - y
    return e * e, e


mse_loss.grad_factor = 2.0  # type: ignore[attr-defined]


def l1_loss(x, y):
    e = x - y
    return np.abs(e), np.sign(e)  # sign(0) = 0, as PyTorch's backward


def log_cosh_loss(x, y):
    e = x - y
    a = np.abs(e)
    t = np.exp(-2.0 * a)  # <= 1: log(cosh(e)) without overflowing cosh
    return a + np.log1p(t) - np.log(2.0), np.tanh(e)


def _per_element(value, n):
    """A broadcast_vector option as one float64 per element of the flattened input: None -> 1,
    a scalar, an array of the input's shape, or (C,) repeated along the last axis."""
    if value is None:
        return 1.0
    if np.ndim(value) == 0:
        return float(value)
    v = np.asarray(value, dtype=np.float64).reshape(-1)
    if n == 0:
        return np.zeros(0)
    return np.broadcast_to(v, (n // v.size, v.size)).reshape(-1)


def binary_cross_entropy_with_logits(x, y, *, weight, pos_weight):
    w, pw = _per_element(weight, x.size), _per_element(pos_weight, x.size)
    e = np.exp(-np.abs(x))
    sp = np.maximum(x, 0.0) + np.log1p(e)  # softplus(x); softplus(-x) = sp - x
    p = np.where(x >= 0, 1.0, e) / (1.0 + e)  # sigmoid(x) without cancellation
    q = np.where(x >= 0, e, 1.0) / (1.0 + e)  # sigmoid(-x)
    loss = w * ((1.0 - y) * sp + pw * y * (sp - x))
    grad = w * ((1.0 - y) * p - pw * y * q)  # p (pw y + 1 - y) - pw y cancels to noise as p -> 1
    return loss, grad


def kl_div(x, y, *, log_target):
    if log_target:
        p = np.exp(y)
        d = y - x
        return np.where(d == 0, d, p * d), -p  # 0 at t = x even where exp(t) overflows
    ylogy = np.where(y == 0, 0.0, y * np.log(np.where(y == 0, 1.0, y)))  # 0 log 0 = 0; NaN stays NaN
    return ylogy - y * x, -y


def _divided_by_temperature(z, T):
    """z / T shifted by its row maximum m (softmax is shift-invariant), as (z/2 - m/2) (2/T): z / T
    overflows for a large finite logit and T < 1, z - m for logits of both signs near the maximum;
    the maximum's own value is exactly 0, even where 2/T overflows (T < 1.2e-308)."""
    m = np.max(z, axis=1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)  # a row with inf or nan keeps PyTorch's nan/inf semantics
    d = z * 0.5 - m * 0.5
    return np.where(d == 0, 0.0, d * (2.0 / T))


def _two_diff(a, b):
    """a - b and its rounding error (TwoSum), elementwise."""
    d = a - b
    bb = a - d
    return d, (a - (d + bb)) + (bb - b)


_PHI_SERIES = tuple(1.0 / np.prod(np.arange(1.0, k + 3)) for k in range(14))  # 1 / (k + 2)!


def _centred_softmax_kl(x, target, T, p, q, log_ratio_of_sums):
    """sum_c q_c (log q_c - log p_c) as log1p(sum_c q_c phi(e_c)), phi(e) = exp(-e) - 1 + e >= 0, with
    d = log q - log p up to a constant, taken from the logits' differences (both rounding errors kept),
    and e = d - D, D = sum q d: a sum of non-negative terms, where the plain form subtracts terms of
    order log C and keeps only ~1e-16 of them absolute (1e-8 relative on the losses of 1e-8 at T = 1000).
    A class whose q underflowed to 0 adds its q exp(-e) = p exp(D) Ss/St (log_ratio_of_sums: log Ss/St).
    nan or inf where a term overflows (the caller keeps the plain form there)."""
    mx, my = np.max(x, axis=1, keepdims=True), np.max(target, axis=1, keepdims=True)
    a, ea = _two_diff(target * 0.5, x * 0.5)
    b, eb = _two_diff(my * 0.5, mx * 0.5)
    dd = (a - b) + (ea - eb)
    d = np.where(dd == 0, 0.0, dd * (2.0 / T))
    D = np.sum(np.where(q == 0, 0.0, q * d), axis=1, keepdims=True)
    e = d - D
    series = np.full_like(e, _PHI_SERIES[-1])
    for c in _PHI_SERIES[-2::-1]:
        series = series * -e + c
    phi = np.where(np.abs(e) < 0.5, e * e * series, np.expm1(-e) + e)
    Phi = np.sum(np.where(q == 0, p * np.exp(D + log_ratio_of_sums), q * phi), axis=1)
    # sum q e is 0 up to the rounding delta of sum q d: l = log(1 + Phi + delta) - delta exactly
    w = -np.sum(np.where(q == 0, 0.0, q * e), axis=1) / (1.0 + Phi)
    return np.log1p(Phi) + (np.log1p(w) - w) - w * Phi


def softmax_kl_div(x, target, *, temperature):
    """Distillation KL: target holds the teacher's logits (M, C); no T**2 factor."""
    T = temperature
    zs, zt = _divided_by_temperature(x, T), _divided_by_temperature(target, T)
    ms, log_ss, p = _softmax_stats(zs)
    mt, log_st, q = _softmax_stats(zt)
    # log q - log p in log space, each as (z - m) - log s: m + log s would round back to m near the
    # float64 maximum. A class with q = 0 adds 0 (0 log 0 = 0).
    log_ratio = ((zt - mt) - log_st) - ((zs - ms) - log_ss)
    # The student's probability exactly 0 (a -inf logit) where the teacher's is positive (a finite
    # logit): q_c > 0 in exact arithmetic makes the divergence inf, even where q_c underflows (a
    # student row of nothing but -inf stays nan, as log_softmax gives).
    student_zero = (x == -np.inf) & (zt - mt > -np.inf) & np.isfinite(log_ss)
    loss = np.sum(np.where(student_zero, np.inf, np.where(q == 0, 0.0, q * log_ratio)), axis=1)
    with np.errstate(all="ignore"):
        centred = _centred_softmax_kl(x, target, T, p, q, log_ss - log_st)
    loss = np.where(np.isfinite(loss) & np.isfinite(centred), centred, loss)
    return loss, (p - q) / T


def wasserstein_loss(x, target, *, p, ignore_index):
    """1-D EMD over ordered classes: l = sum_c |F_c - G_c|**p, F = cumsum(softmax(x))."""
    M, C = x.shape
    _, prob = _log_softmax_stats(x)
    if target.dtype.kind == "f":
        valid = np.ones(M, dtype=bool)
        G = np.cumsum(target, axis=1)
    else:
        valid, t = _valid_rows(target, ignore_index)
        G = (np.arange(C)[None, :] >= t[:, None]).astype(np.float64)
    d = np.cumsum(prob, axis=1) - G
    loss = np.sum(np.abs(d) ** p, axis=1)
    h = np.sign(d) if p == 1 else 2.0 * d  # dl/dF_c; sign(0) = 0 as torch's abs backward
    H = np.cumsum(h[:, ::-1], axis=1)[:, ::-1]  # dl/dp_k = sum_{c >= k} h_c
    grad = prob * (H - np.sum(prob * H, axis=1, keepdims=True))
    loss[~valid] = 0.0
    grad[~valid] = 0.0
    return loss, grad


def _pseudo_huber_r(x, y, delta):
    """(e, r = sqrt(1 + (e/delta)**2)) without overflow (hypot)."""
    e = x - y
    return e, np.hypot(1.0, e / delta)


def pseudo_huber_loss(x, y, *, delta):
    e, r = _pseudo_huber_r(x, y, delta)
    u = e / delta
    with np.errstate(invalid="ignore"):
        # delta**2 (r - 1) as e**2 / (r + 1) where r - 1 would cancel (|u| <= 1), and as
        # delta (delta (r - 1)) elsewhere: delta**2 alone overflows (a Python float raises) for delta > 1e154
        loss = np.where(np.abs(u) > 1, delta * (delta * (r - 1.0)), e * e / (r + 1.0))
        # |u| > 1: delta sign(u) / sqrt(1 + 1/u**2), as the kernel: e / r is max / inf = 0 where e / delta
        # overflows (a logit near the maximum, a tiny delta) though the gradient is +-delta there
        big = np.abs(u) > 1
        grad = np.where(big, delta * np.sign(u) / np.sqrt(1.0 + 1.0 / np.where(big, u * u, 1.0)), e / r)
    return loss, grad


def pseudo_huber_loss_hess(x, y, *, delta):
    _, grad = pseudo_huber_loss(x, y, delta=delta)
    _, r = _pseudo_huber_r(x, y, delta)
    return grad, 1.0 / r**3
