"""The NumPy core forms of the contrastive losses against float64 PyTorch autograd of the naive formula.

Sizes as test_contrastive.py: N = 13, D = 6, strips of 1, 5 and 64 rows; M = 17 keys with extra negatives.
"""

from __future__ import annotations

import fastloss
import ml_dtypes
import numpy as np
import pytest
import torch
import torch.nn.functional as F

N, D, M = 13, 6, 17


def _arrays(*shapes, seed=0, spread=1.0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s) * spread for s in shapes]


def _torch_grads(fn, *arrays, grad_output=1.0):
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    loss = fn(*ts)
    loss.backward(torch.as_tensor(grad_output, dtype=loss.dtype).expand_as(loss))
    return loss.detach().numpy(), [t.grad.numpy() for t in ts]


def _close(got, want, rtol=1e-10, atol=1e-12):
    np.testing.assert_allclose(np.asarray(got, dtype=np.float64), want, rtol=rtol, atol=atol)


@pytest.mark.parametrize("chunk", [None, 1, 5, 64])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("symmetric", [False, True])
def test_info_nce(symmetric, reduction, chunk):
    q, k = _arrays((N, D), (N if symmetric else M, D))
    go = np.linspace(-1, 2, N) if reduction == "none" else 0.7

    def naive(q, k):
        z, t = q @ k.T / 0.3, torch.arange(N)
        row = F.cross_entropy(z, t, reduction=reduction)
        return (row + F.cross_entropy(z.T, t, reduction=reduction)) / 2 if symmetric else row

    want, (gq, gk) = _torch_grads(naive, q, k, grad_output=go)
    opts = {"temperature": 0.3, "symmetric": symmetric, "reduction": reduction, "chunk_size": chunk}
    _close(fastloss.info_nce(q, k, **opts), want)
    loss, got_q, got_k = fastloss.info_nce_with_grad(q, k, grad_output=go, **opts)
    _close(loss, want)
    _close(got_q, gq)
    _close(got_k, gk)


def test_clip_and_siglip():
    img, txt = _arrays((N, D), (N, D), seed=1)

    def clip(x, y, s):
        z, t = s * x @ y.T, torch.arange(N)
        return (F.cross_entropy(z, t) + F.cross_entropy(z.T, t)) / 2

    want, grads = _torch_grads(clip, img, txt, np.array(6.0))
    got = fastloss.clip_loss_with_grad(img, txt, 6.0, grad_output=1.0)
    _close(fastloss.clip_loss(img, txt, 6.0), want)
    for g, w in zip(got, [want, *grads]):
        _close(g, w)

    def siglip(x, y, s, b):
        labels = 2 * torch.eye(N, dtype=x.dtype) - 1
        return -F.logsigmoid(labels * (s * x @ y.T + b)).sum() / N

    want, grads = _torch_grads(siglip, img, txt, np.array(4.0), np.array(-2.0))
    got = fastloss.siglip_loss_with_grad(img, txt, 4.0, -2.0)
    _close(fastloss.siglip_loss(img, txt, 4.0, -2.0), want)
    for g, w in zip(got, [want, *grads]):
        _close(g, w)


def test_nt_xent():
    z1, z2 = _arrays((N, D), (N, D), seed=2, spread=3.0)

    def naive(a, b):
        v = F.normalize(torch.cat([a, b]), dim=1)
        z = (v @ v.T / 0.5).masked_fill(torch.eye(2 * N, dtype=torch.bool), -torch.inf)
        return F.cross_entropy(z, torch.cat([torch.arange(N, 2 * N), torch.arange(N)]))

    want, (g1, g2) = _torch_grads(naive, z1, z2)
    _close(fastloss.nt_xent(z1, z2), want)
    loss, got1, got2 = fastloss.nt_xent_with_grad(z1, z2)
    _close(loss, want)
    _close(got1, g1)
    _close(got2, g2)


def test_bfloat16_and_float32():
    q, k = _arrays((N, D), (N, D), seed=3)
    want, (gq, gk) = _torch_grads(lambda a, b: F.cross_entropy(a @ b.T / 0.5, torch.arange(N)), q, k)
    for dtype, tol in ((np.float32, 1e-5), (ml_dtypes.bfloat16, 2e-2)):
        loss, got_q, got_k = fastloss.info_nce_with_grad(q.astype(dtype), k.astype(dtype), temperature=0.5)
        assert np.asarray(loss).dtype == np.float32 and got_q.dtype == dtype and got_k.dtype == dtype
        _close(loss, want, rtol=tol, atol=tol)
        _close(got_q.astype(np.float64), gq, rtol=tol, atol=tol)
        _close(got_k.astype(np.float64), gk, rtol=tol, atol=tol)


@pytest.mark.parametrize(
    ("call", "error", "pattern"),
    [
        (lambda q, k: fastloss.info_nce(q, k[:3]), ValueError, "at least as many rows"),
        (lambda q, k: fastloss.info_nce(q, k, symmetric=True), ValueError, "the same batch size"),
        (lambda q, k: fastloss.info_nce(q, k, reduction="avg"), ValueError, "reduction must be one of"),
        (lambda q, k: fastloss.info_nce(q, k, chunk_size=-1), ValueError, "chunk_size must be"),
        (lambda q, k: fastloss.info_nce(q.astype(np.int64), k), TypeError, "query must be a floating-point"),
        (lambda q, k: fastloss.clip_loss(q, k[:N], np.ones(2)), ValueError, "logit_scale must be a single"),
        (lambda q, k: fastloss.siglip_loss(q, k[:N], 1.0, "x"), TypeError, "logit_bias must be a number"),
        (lambda q, k: fastloss.nt_xent(q, k[:N], temperature=0), ValueError, "temperature must be"),
    ],
)
def test_bad_input(call, error, pattern):
    q, k = _arrays((N, D), (M, D), seed=4)
    with pytest.raises(error, match=pattern):
        call(q, k)


def test_empty_batch():
    e = np.zeros((0, D))
    assert fastloss.info_nce(e, e, reduction="sum", symmetric=True) == 0.0
    for loss in (fastloss.info_nce(e, e), fastloss.clip_loss(e, e, 1.0), fastloss.siglip_loss(e, e, 1.0, 0.0),
                 fastloss.nt_xent(e, e)):
        assert np.isnan(loss)
