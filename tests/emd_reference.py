"""The wasserstein_loss gradient in float64 and its documented per-entry bound, for the regression
tests of issue 22 (CPU and CUDA): g_j = p_j (H_j - B), H_j = sum_{c>=j} h_c, B = sum_k p_k H_k."""

from __future__ import annotations

import numpy as np


def wasserstein_grad_and_bound(x: np.ndarray, t: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray]:
    """(gradient of the summed loss, 2 eps32 p_j (|H_j - B| + |B|)) for float32 logits x (M, C) and class
    indices t: the bound stated in wasserstein_loss's docstring for float32 math."""
    C = x.shape[1]
    xx = x.astype(np.float64)
    prob = np.exp(xx - xx.max(1, keepdims=True))
    prob /= prob.sum(1, keepdims=True)
    d = np.cumsum(prob, 1) - (np.arange(C)[None] >= t[:, None])
    H = np.cumsum((np.sign(d) if p == 1 else 2 * d)[:, ::-1], 1)[:, ::-1]
    B = np.sum(prob * H, 1, keepdims=True)
    return prob * (H - B), 2 * 2.0**-23 * prob * (np.abs(H - B) + np.abs(B))
