"""Non-finite values give the same answer on every backend, and PyTorch's where PyTorch has the
loss (issue 15, item 6)."""

from __future__ import annotations

import fastloss
import numpy as np
import pytest


def test_crammer_singer_nan_score_propagates(backend):
    x = np.random.default_rng(0).standard_normal((4, 5))
    t = np.array([0, 1, 2, 3])
    x[0, 3] = np.nan  # another class
    x[1, 1] = np.nan  # the target
    loss, grad = fastloss.multiclass_hinge_loss_with_grad(x.astype(np.float32), t, reduction="none")
    assert np.isnan(loss[:2]).all() and np.isfinite(loss[2:]).all()
    assert np.isnan(grad[0, [0, 3]]).all() and (grad[0, [1, 2, 4]] == 0).all()
    assert np.isnan(grad[1]).sum() == 2
    assert np.isnan(fastloss.multiclass_hinge_loss(x.astype(np.float32), t))


@pytest.mark.parametrize("g", [np.inf, -np.inf, np.nan])
@pytest.mark.parametrize("name,opts", [("cross_entropy", {}), ("cross_entropy", {"label_smoothing": 0.2}),
                                       ("softmax_focal_loss", {}), ("multiclass_hinge_loss", {}),
                                       ("multiclass_hinge_loss", {"variant": "weston_watkins"})])
@pytest.mark.parametrize("axis", [-1, 0])
def test_non_finite_grad_output_is_ieee(backend, name, opts, g, axis):
    """grad_output * dl/dx elementwise: inf * (p_t - 1) is -inf, 0 * inf is nan."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 5))
    t = rng.integers(0, 5 if axis == -1 else 3, 5 if axis == 0 else 3)
    with fastloss.use_backend("numpy"):
        unit = getattr(fastloss, name + "_grad")(x, t, axis=axis, reduction="sum", **opts)
    with np.errstate(invalid="ignore"):
        want = unit * g
    for dtype in (np.float64, np.float32):
        got = getattr(fastloss, name + "_grad")(x.astype(dtype), t, axis=axis, reduction="sum", grad_output=g, **opts)
        np.testing.assert_array_equal(got.astype(np.float64), want.astype(dtype).astype(np.float64))


def test_sigmoid_focal_at_infinity_matches_torch(backend):
    torch = pytest.importorskip("torch")
    x = np.repeat([np.inf, -np.inf, 3.0, -3.0], 4)  # (PyTorch's log_sigmoid loses digits at -30)
    y = np.tile([0.0, 0.3, 0.5, 1.0], 4)
    for gamma in (0.0, 0.5, 2.0):
        for alpha in (0.25, -1.0):
            xt = torch.tensor(x, requires_grad=True)
            yt = torch.tensor(y)
            p = torch.sigmoid(xt)
            ce = torch.nn.functional.binary_cross_entropy_with_logits(xt, yt, reduction="none")
            p_t = p * yt + (1 - p) * (1 - yt)
            want = ce * (1 - p_t) ** gamma
            if alpha >= 0:
                want = want * (alpha * yt + (1 - alpha) * (1 - yt))
            (want_g,) = torch.autograd.grad(want.sum(), xt)
            loss, grad = fastloss.sigmoid_focal_loss_with_grad(x, y, alpha=alpha, gamma=gamma, reduction="none")
            np.testing.assert_allclose(loss, want.detach().numpy(), rtol=1e-12, atol=1e-300)
            np.testing.assert_allclose(grad, want_g.numpy(), rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("axis", [-1, 0])
def test_one_class_softcap_and_z_loss(backend, dtype, axis):
    """C = 1: p = 1 exactly, so the loss is exactly 0 (softcap) and the gradient exactly the z-loss
    term 2 z_loss lse = 2 z_loss z (no cancellation against the (1 - eps) w_t term)."""
    x = (np.random.default_rng(2).standard_normal((40, 1)) * 3).astype(dtype)
    xx = x if axis == -1 else np.ascontiguousarray(x.T)
    t = np.zeros(40, np.int64)
    assert (fastloss.cross_entropy(xx, t, softcap=2.0, reduction="none", axis=axis) == 0).all()
    g = fastloss.cross_entropy_grad(xx, t, z_loss=1e-5, reduction="none", axis=axis).reshape(-1)
    want = 2e-5 * x.astype(np.float64).reshape(-1)
    np.testing.assert_allclose(g, want, rtol=2e-6 if dtype == np.float32 else 1e-12)


def test_reference_softmax_at_float64_max():
    """Two logits tied at 3e38: probabilities 1/2 each, loss log 2 (not p = 1 each)."""
    x = np.array([[3e38, 3e38, 0.0], [1e308, 1e308, -1e308]])
    t = np.array([0, 1])
    with fastloss.use_backend("numpy"):
        loss, grad = fastloss.cross_entropy_with_grad(x, t, reduction="none")
        floss = fastloss.softmax_focal_loss(x, t, reduction="none", gamma=0.0)
    np.testing.assert_allclose(loss, np.log(2.0), rtol=1e-15)
    np.testing.assert_allclose(floss, np.log(2.0), rtol=1e-15)
    np.testing.assert_allclose(grad, [[-0.5, 0.5, 0.0], [0.5, -0.5, 0.0]], rtol=1e-15)
    with fastloss.use_backend("native") if "native" in fastloss._backends.available() else np.errstate():
        np.testing.assert_allclose(fastloss.cross_entropy_grad(x, t, reduction="none"), grad, rtol=1e-15)
