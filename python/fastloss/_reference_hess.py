"""NumPy gradient and diagonal Hessian of every loss: the fallback of ``*_grad_hess`` and its oracle.

``<name>(x, target, **opts) -> (grad, hess)`` on the canonical arrays of ``_reference`` (rowwise
``x`` (M, C) with (M,) class indices or (M, C) probabilities, pointwise (n,)), float64, unreduced:
``grad`` is d l_i / d x and ``hess`` is d^2 l_i / d x^2 for every element of x (the diagonal of
each row's Hessian for row-wise losses). Ignored rows give exact zeros. A new loss may instead
define ``_reference.<name>_hess`` beside its reference (found here by name); a loss with neither
has no ``*_grad_hess`` form yet (the registry test lists them).

Where the second derivative does not exist (kinks of hinge, l1, huber) it is taken as 0, like the
linear pieces around it.
"""

from __future__ import annotations

import numpy as np

from . import _reference


def _softcap(x, softcap):
    """(z, dz/dx, d2z/dx2) of z = cap*tanh(x/cap), or of z = x."""
    if softcap is None:
        return x, 1.0, 0.0
    th = np.tanh(x / softcap)
    dz = 1.0 - th * th
    return softcap * th, dz, -2.0 * th * dz / softcap


def cross_entropy(x, target, *, weight, ignore_index, label_smoothing, z_loss, softcap):
    """dl/dz_c = A p_c - b_c with A = (1-eps) w_t + (eps/C) sum_w + 2 zl lse (soft: sum_c w_c q_c
    + 2 zl lse) and b_c constant in z, so d2l/dz_c^2 = A p_c (1-p_c) + 2 zl p_c^2 (dA/dz_c = 2 zl p_c).
    With softcap, d2l/dx^2 = d2l/dz^2 (dz/dx)^2 + dl/dz d2z/dx^2."""
    M, C = x.shape
    w = np.ones(C) if weight is None else weight
    eps = label_smoothing
    z, dz, d2z = _softcap(x, softcap)
    m, log_s, p = _reference._softmax_stats(z)
    lse = m + log_s
    rows = np.arange(M)
    if target.dtype.kind == "f":
        wq = w * ((1.0 - eps) * target + eps / C)
        A = np.sum(wq, axis=1, keepdims=True) + 2.0 * z_loss * lse
        gz = p * A - wq
        valid = None
    else:
        valid, t = target != ignore_index, np.where(target != ignore_index, target, 0)
        A = ((1.0 - eps) * w[t] + (eps / C) * np.sum(w) + 2.0 * z_loss * lse[:, 0])[:, None]
        gz = p * A - (eps / C) * w
        gz[rows, t] -= (1.0 - eps) * w[t]
    hz = A * p * (1.0 - p) + 2.0 * z_loss * p * p
    grad, hess = gz * dz, hz * dz * dz + gz * d2z
    if valid is not None:
        grad[~valid] = 0.0
        hess[~valid] = 0.0
    return grad, hess


def softmax_focal_loss(x, target, *, alpha, gamma, ignore_index):
    """l = f(u), u = log p_t, f(u) = -a (1-e^u)^gamma u. du/dz_c = [c=t] - p_c, so
    d2l/dz_c^2 = f''(u) ([c=t] - p_c)^2 - f'(u) p_c (1-p_c), with om = 1 - p_t:
      f'(u)  = a (gamma om^gamma p_t u / om - om^gamma)
      f''(u) = a gamma p_t om^(gamma-2) (u (1 - gamma p_t) + 2 om).
    f'' is unbounded as p_t -> 1 for gamma < 1, but ([c=t] - p_c)^2 <= om^2, so the product is
    taken as G r_c^2 with G = f'' om^2 = a gamma p_t om^gamma (u (1 - gamma p_t) + 2 om) and
    r_c = ([c=t] - p_c) / om (|r_c| <= 1): finite for every gamma >= 0, and 0 in the limit
    p_t = 1 (where r_c is 0/0 and is taken as 0)."""
    M = x.shape[0]
    m, log_s, p = _reference._softmax_stats(x)
    valid, t = target != ignore_index, np.where(target != ignore_index, target, 0)
    rows = np.arange(M)
    if alpha is None:
        a = np.ones(M)
    elif np.ndim(alpha) == 0:
        a = np.full(M, float(alpha))
    else:
        a = alpha[t]
    u = (x[rows, t] - m[:, 0]) - log_s[:, 0]  # log p_t; x_t - (m + log s) would round log s away
    p_t = np.exp(u)
    om = -np.expm1(u)
    mod = _reference._focal_modulator(u, om, gamma)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(om > 0, p_t * u / om, -1.0)
        d1 = a * (gamma * mod * ratio - mod)  # f'(u)
        G = a * gamma * p_t * mod * (u * (1.0 - gamma * p_t) + 2.0 * om)
        onehot = np.zeros_like(p)
        onehot[rows, t] = 1.0
        r = np.where(om[:, None] > 0, (onehot - p) / om[:, None], 0.0)
    grad = d1[:, None] * (onehot - p)
    hess = G[:, None] * r * r - d1[:, None] * p * (1.0 - p)
    grad[~valid] = 0.0
    hess[~valid] = 0.0
    return grad, hess


def sigmoid_focal_loss(x, y, *, alpha, gamma):
    """l = a ce M, M = om^gamma, om = 1 - p_t = y + p (1-2y):
      l'' = a (p q M + 2 (p-y) M' + ce M''),  M' = gamma M D,  M'' = gamma M D ((gamma-1) D + 1 - 2p)
    with D = om'/om = p q (1-2y) / om (bounded; taken as 0 where om = 0, where M = 0 for gamma > 0
    and the gamma factor removes it for gamma = 0)."""
    e = np.exp(-np.abs(x))
    p = np.where(x >= 0, 1.0, e) / (1.0 + e)
    q = np.where(x >= 0, e, 1.0) / (1.0 + e)
    ce = np.maximum(x, 0.0) - x * y + np.log1p(e)
    om = p * (1.0 - y) + q * y
    mod = om**gamma
    with np.errstate(divide="ignore", invalid="ignore"):
        D = np.where(om > 0, p * q * (1.0 - 2.0 * y) / om, 0.0)
    d_mod = gamma * mod * D
    dd_mod = gamma * mod * D * ((gamma - 1.0) * D + (1.0 - 2.0 * p))
    grad = (p - y) * mod + ce * d_mod
    hess = p * q * mod + 2.0 * (p - y) * d_mod + ce * dd_mod
    if alpha >= 0:
        a = alpha * y + (1.0 - alpha) * (1.0 - y)
        grad, hess = grad * a, hess * a
    return grad, hess


def hinge_loss(s, y, *, margin, squared):
    _, grad = _reference.hinge_loss(s, y, margin=margin, squared=squared)
    yy = np.where(y == 0, -1.0, y)
    active = margin - yy * s > 0
    hess = np.where(active, 2.0 * yy * yy, 0.0) if squared else np.zeros_like(s)
    return grad, np.where(np.isnan(grad), grad, hess)


def multiclass_hinge_loss(x, target, *, margin, squared, variant, weight, ignore_index):
    """Squared hinges: 2 w_t on each active term's two scores (crammer_singer: s_j* and s_t;
    weston_watkins: each active s_j, and s_t once per active term); otherwise 0."""
    _, grad = _reference.multiclass_hinge_loss(x, target, margin=margin, squared=squared, variant=variant,
                                               weight=weight, ignore_index=ignore_index)
    hess = np.zeros_like(x)
    if not squared:
        return grad, hess
    M, C = x.shape
    valid, t = target != ignore_index, np.where(target != ignore_index, target, 0)
    rows = np.arange(M)
    wt = np.ones(M) if weight is None else weight[t]
    s_t = x[rows, t]
    if variant == "crammer_singer":
        if C > 1:
            others = x.copy()
            others[rows, t] = -np.inf
            j = np.argmax(others, axis=1)
            active = margin + (others[rows, j] - s_t) > 0  # as the loss: exactly margin for a tie
            hess[rows, j] += np.where(active, 2.0 * wt, 0.0)
            hess[rows, t] += np.where(active, 2.0 * wt, 0.0)
    else:
        active = margin + (x - s_t[:, None]) > 0
        active[rows, t] = False
        hess = np.where(active, 2.0 * wt[:, None], 0.0)
        hess[rows, t] = 2.0 * wt * np.sum(active, axis=1)
    hess[~valid] = 0.0
    return grad, hess


def huber_loss(x, y, *, delta):
    _, grad = _reference.huber_loss(x, y, delta=delta)
    e = x - y
    return grad, np.where(np.isnan(e), e, np.where(np.abs(e) < delta, 1.0, 0.0))


def smooth_l1_loss(x, y, *, beta):
    _, grad = _reference.smooth_l1_loss(x, y, beta=beta)
    e = x - y
    small = np.abs(e) < beta
    return grad, np.where(np.isnan(e), e, np.where(small, 1.0 / beta if beta else 0.0, 0.0))


def mse_loss(x, y):
    e = x - y
    return 2.0 * e, np.where(np.isnan(e), e, 2.0)


def l1_loss(x, y):
    _, grad = _reference.l1_loss(x, y)
    e = x - y
    return grad, np.where(np.isnan(e), e, 0.0)  # piecewise linear, the kink at 0 included


def log_cosh_loss(x, y):
    """d2l/dx2 = sech(e)**2 = 4 t / (1 + t)**2, t = exp(-2|e|): 1 - tanh(e)**2 cancels to 0 from |e| ~ 19."""
    e = x - y
    t = np.exp(-2.0 * np.abs(e))
    return np.tanh(e), 4.0 * t / (1.0 + t) ** 2


def binary_cross_entropy_with_logits(x, y, *, weight, pos_weight):
    _, grad = _reference.binary_cross_entropy_with_logits(x, y, weight=weight, pos_weight=pos_weight)
    w = _reference._per_element(weight, x.size)
    pw = _reference._per_element(pos_weight, x.size)
    e = np.exp(-np.abs(x))
    return grad, w * (pw * y + 1.0 - y) * e / (1.0 + e) ** 2  # p(1-p) without cancellation


def kl_div(x, y, *, log_target):
    _, grad = _reference.kl_div(x, y, log_target=log_target)
    return grad, (y - y) * 0.0  # linear in the input: 0 for a finite target, nan for inf or nan


def softmax_kl_div(x, target, *, temperature):
    """l = sum_c q_c (log q_c - log p_c), p = softmax(x/T): dl/dx = (p - q)/T, d2l/dx_c2 = p_c(1-p_c)/T**2
    (divided by T twice: T**2 overflows a Python float for T > 1e154, where the Hessian is just tiny)."""
    _, grad = _reference.softmax_kl_div(x, target, temperature=temperature)
    _, _, p = _reference._softmax_stats(x / temperature)
    return grad, p * (1.0 - p) / temperature / temperature


def wasserstein_loss(x, target, *, p, ignore_index):
    """l = sum_c |F_c - G_c|**p, F = cumsum(softmax(x)) (d = F - G). With u = dl/dprob (suffix sums of
    sign(d), or of 2d for p = 2) and S = sum_k u_k p_k, the diagonal is
        d2l/dx_m2 = p_m (1 - 2 p_m) (u_m - S)                          (p = 1: |.| is linear a.e.)
                  + 2 p_m**2 (sum_{c >= m} (1 - F_c)**2 + sum_{c < m} F_c**2)   (p = 2: the Gauss-Newton part)
    """
    _, grad = _reference.wasserstein_loss(x, target, p=p, ignore_index=ignore_index)
    M, C = x.shape
    _, _, prob = _reference._softmax_stats(x)
    F = np.cumsum(prob, axis=1)
    if target.dtype.kind == "f":
        valid = np.ones(M, dtype=bool)
        G = np.cumsum(target, axis=1)
    else:
        valid = target != ignore_index
        t = np.where(valid, target, 0)
        G = (np.arange(C)[None, :] >= t[:, None]).astype(np.float64)
    d = F - G
    h = np.sign(d) if p == 1 else 2.0 * d
    u = np.cumsum(h[:, ::-1], axis=1)[:, ::-1]
    S = np.sum(u * prob, axis=1, keepdims=True)
    hess = prob * (1.0 - 2.0 * prob) * (u - S)
    if p == 2:
        above = np.cumsum(((1.0 - F) ** 2)[:, ::-1], axis=1)[:, ::-1]  # sum_{c >= m} (1 - F_c)**2
        below = np.cumsum(F**2, axis=1) - F**2  # sum_{c < m} F_c**2
        hess = hess + 2.0 * prob**2 * (above + below)
    hess[~valid] = 0.0
    return grad, hess


def __getattr__(name: str):
    """``_reference.<name>_hess``: a loss's Hessian reference written beside its reference."""
    fn = getattr(_reference, f"{name}_hess", None)
    if fn is None or name.startswith("_"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r} (nor _reference.{name}_hess)")
    return fn
