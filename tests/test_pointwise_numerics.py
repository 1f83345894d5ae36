"""The seeds' other point-wise losses (DESIGN 1.1b): numerical care and the cases the generic grid
does not reach (kl_div's "batchmean", per-element vectors shorter than a SIMD vector, in place),
each against PyTorch in float64."""

from __future__ import annotations

import fastloss
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from problems import assert_close

FORMS = ("loss", "grad", "with_grad")


def torch_loss_and_grad(fn, x, *args, **kwargs):
    xt = torch.tensor(np.asarray(x, dtype=np.float64), requires_grad=True)
    loss = fn(xt, *[torch.as_tensor(np.asarray(a, dtype=np.float64)) for a in args], **kwargs)
    loss.sum().backward()
    return loss.detach().numpy(), xt.grad.numpy()


def run(name, form, *args, **kwargs):
    function = getattr(fastloss, name if form == "loss" else f"{name}_{form}")
    result = function(*args, **kwargs)
    if form == "loss":
        return result, None
    return (None, result) if form == "grad" else result


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("log_target", [False, True])
@pytest.mark.parametrize("shape", [(6, 11), (3, 4, 5), (7,), ()])
def test_kl_div_batchmean_matches_torch(backend, rng, form, log_target, shape):
    x = np.log(rng.dirichlet(np.ones(5), size=shape).reshape(*shape, 5)[..., 0] + 0.01)
    t = rng.random(shape) * np.where(rng.random(shape) < 0.3, 0.0, 1.0)  # some zero probabilities
    t = np.log(t + 0.05) if log_target else t
    expected_loss, expected_grad = torch_loss_and_grad(F.kl_div, x, t, reduction="batchmean", log_target=log_target)
    loss, grad = run("kl_div", form, x, t, reduction="batchmean", log_target=log_target)
    if loss is not None:
        assert_close(loss, expected_loss, 1e-10, what="loss")
    if grad is not None:
        assert_close(grad, expected_grad, 1e-10, what="grad")


def test_kl_div_zero_target_is_zero_loss(backend):
    # 0*log 0 = 0: a zero target contributes nothing, even at a very negative log-probability.
    x = np.array([-1e30, -50.0, 0.0, -3.0], dtype=np.float32)
    t = np.array([0.0, 0.0, 0.0, 0.5], dtype=np.float32)
    loss, grad = fastloss.kl_div_with_grad(x, t, reduction="none")
    expected_loss, expected_grad = torch_loss_and_grad(F.kl_div, x.astype(np.float64), t, reduction="none")
    assert np.array_equal(loss[:3], [0.0, 0.0, 0.0]) and np.array_equal(grad[:3], [0.0, 0.0, 0.0])
    assert_close(loss, expected_loss, 2e-6, what="loss")
    assert_close(grad, expected_grad, 2e-6, what="grad")


EXTREME = [3e38, -3e38, 1e30, -1e30, 88.0, -88.0, 1e-30, 0.0, -1e-7, 20.0]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("target", [0.0, 1.0, 0.3])
def test_bce_with_logits_is_finite_for_any_finite_logit(backend, dtype, target):
    x = np.array(EXTREME, dtype=dtype)
    t = np.full_like(x, target)
    pos_weight = 0.5  # loss <= |x|: above 1, 3e38 * pw overflows float32 honestly
    loss, grad = fastloss.binary_cross_entropy_with_logits_with_grad(x, t, pos_weight=pos_weight, reduction="none")
    assert np.all(np.isfinite(loss)) and np.all(np.isfinite(grad))
    expected_loss, expected_grad = torch_loss_and_grad(
        F.binary_cross_entropy_with_logits, x.astype(np.float64), t, reduction="none",
        pos_weight=torch.tensor(pos_weight, dtype=torch.float64))
    rtol = 1e-12 if dtype == "float64" else 2e-6
    np.testing.assert_allclose(loss, expected_loss, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(grad, expected_grad, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_log_cosh_is_finite_for_any_finite_residual(backend, dtype):
    x = np.array(EXTREME, dtype=dtype)
    y = np.zeros_like(x)
    loss, grad = fastloss.log_cosh_loss_with_grad(x, y, reduction="none")
    assert np.all(np.isfinite(loss)) and np.all(np.isfinite(grad))
    # PyTorch float64, in the overflow-free form (log(cosh(3e38)) overflows cosh in any precision).
    e = torch.tensor(x.astype(np.float64), requires_grad=True)
    expected = e.abs() + torch.log1p(torch.exp(-2 * e.abs())) - np.log(2.0)
    expected.sum().backward()
    rtol = 1e-12 if dtype == "float64" else 2e-6
    np.testing.assert_allclose(loss, expected.detach().numpy(), rtol=rtol, atol=rtol)
    np.testing.assert_allclose(grad, np.tanh(x.astype(np.float64)), rtol=rtol, atol=rtol)
    np.testing.assert_allclose(grad, e.grad.numpy(), rtol=rtol, atol=rtol)
    assert grad[7] == 0.0 and loss[7] == 0.0  # e = 0


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("classes", [1, 3, 17, 40])
@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16"])
def test_bce_per_class_vectors_wrap_across_simd_vectors(backend, rng, form, classes, dtype):
    # (C,) weights shorter than or not a multiple of a SIMD vector: element i reads w[i % C].
    from problems import NUMPY_DTYPES, to64

    x = rng.standard_normal((37, classes)).astype(NUMPY_DTYPES[dtype])
    t = rng.random((37, classes)).astype(NUMPY_DTYPES[dtype])
    w, pw = rng.uniform(0.2, 2.0, classes), rng.uniform(0.2, 3.0, classes)
    expected_loss, expected_grad = torch_loss_and_grad(
        lambda a, b, **k: F.binary_cross_entropy_with_logits(a, b, reduction="sum", **k), to64(x), to64(t),
        weight=torch.tensor(w), pos_weight=torch.tensor(pw))
    loss, grad = run("binary_cross_entropy_with_logits", form, x, t, weight=w, pos_weight=pw, reduction="sum")
    tol = 1e-10 if dtype == "float64" else 2e-5 if dtype == "float32" else 1e-2
    if loss is not None:
        assert_close(loss, expected_loss, tol, what="loss")
    if grad is not None:
        assert_close(grad, expected_grad, tol, what="grad")


@pytest.mark.parametrize("name", ["mse_loss", "l1_loss", "log_cosh_loss", "binary_cross_entropy_with_logits", "kl_div"])
def test_in_place_gradient_with_per_element_options(backend, rng, name):
    x = rng.standard_normal((50, 7))
    t = rng.random((50, 7))
    opts = {"weight": rng.random((50, 7)), "pos_weight": rng.random(7) + 0.5} if "binary" in name else {}
    expected = getattr(fastloss, f"{name}_grad")(x, t, **opts)
    out = x.copy()
    result = getattr(fastloss, f"{name}_grad")(out, t, out=out, **opts)
    assert result is out
    np.testing.assert_array_equal(out, expected)


def test_l1_gradient_is_zero_at_zero_residual(backend):
    x = np.array([0.5, -0.25, 1.0, 0.0])
    y = np.array([0.5, -0.25, 0.0, 1.0])
    xt = torch.tensor(x, requires_grad=True)
    F.l1_loss(xt, torch.tensor(y), reduction="sum").backward()
    np.testing.assert_array_equal(fastloss.l1_loss_grad(x, y, reduction="sum"), xt.grad.numpy())
    np.testing.assert_array_equal(xt.grad.numpy(), [0.0, 0.0, 1.0, -1.0])
