"""Focal losses in 50-digit arithmetic (mpmath), for the saturated regime p_t -> 1.

There float64 PyTorch itself rounds 1 - p_t to 0 and returns nan gradients for gamma < 1, so the
oracle for "stays exact" has to carry more digits than the kernels do.
"""

from __future__ import annotations

import mpmath
import numpy as np

mpmath.mp.dps = 50


def _softmax_focal_row(row, t, gamma):
    lse = mpmath.log(sum(mpmath.exp(v) for v in row))
    logp_t = row[t] - lse
    return -((-mpmath.expm1(logp_t)) ** gamma) * logp_t


def _sigmoid_focal(x, y, gamma, alpha):
    log_p = -mpmath.log1p(mpmath.exp(-x))
    log_q = -x + log_p  # log(1 - p) without forming 1 - p, which rounds to 0 for x ~ 700
    ce = -(y * log_p + (1 - y) * log_q)
    one_minus_pt = mpmath.exp(log_p) * (1 - y) + mpmath.exp(log_q) * y
    loss = ce * one_minus_pt**gamma
    return loss * (alpha * y + (1 - alpha) * (1 - y)) if alpha >= 0 else loss


def _gradient(f, values):
    """d f / d values[i] for every i, by 50-digit numerical differentiation."""
    out = []
    for i in range(len(values)):
        def partial(v, i=i):
            return f([v if j == i else values[j] for j in range(len(values))])
        out.append(float(mpmath.diff(partial, values[i])))
    return out


def softmax_focal_sum(x: np.ndarray, t: np.ndarray, gamma: float) -> tuple[float, np.ndarray]:
    """(sum over rows of the loss, its gradient) for x (M, C)."""
    loss, grad = mpmath.mpf(0), np.empty_like(x, dtype=np.float64)
    g = mpmath.mpf(gamma)
    for i, (row, ti) in enumerate(zip(x, t)):
        values = [mpmath.mpf(float(v)) for v in row]
        loss += _softmax_focal_row(values, int(ti), g)
        grad[i] = _gradient(lambda v, ti=ti: _softmax_focal_row(v, int(ti), g), values)
    return float(loss), grad


def sigmoid_focal_none(x: np.ndarray, y: np.ndarray, gamma: float, alpha: float = 0.25):
    """(per-element loss, its derivative) for 1-D x, y."""
    g, a = mpmath.mpf(gamma), mpmath.mpf(alpha)
    loss, grad = [], []
    for xi, yi in zip(x, y):
        yv = mpmath.mpf(float(yi))
        loss.append(float(_sigmoid_focal(mpmath.mpf(float(xi)), yv, g, a)))
        grad.append(float(mpmath.diff(lambda v, yv=yv: _sigmoid_focal(v, yv, g, a), mpmath.mpf(float(xi)))))
    return np.array(loss), np.array(grad)
