"""Every loss x option x reduction x form against PyTorch in float64, and the kink conventions."""

from __future__ import annotations

import fastloss
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from problems import (
    CASES,
    FORMS,
    REDUCTIONS,
    SPECS,
    all_cases,
    assert_close,
    call,
    loss_shape,
    make_problem,
)
from torch_reference import REFERENCES, loss_and_grad

# 13 rows: odd and not a multiple of any SIMD width or thread chunk. 33 classes: two AVX-512 (four
# AVX2) float32 vectors plus a 1-wide tail. Pointwise (5, 37) = 185 elements, likewise unaligned.
ROW_SHAPE = (13, 33)
POINT_SHAPE = (5, 37)
RTOL = 1e-10


def check_forms(name, form, x, t, opts, reduction, grad_output, expected_loss, expected_grad):
    kwargs = dict(opts, reduction=reduction)
    scale = max(1.0, float(np.max(np.abs(x), initial=0.0)))  # the loss cancels terms of this size
    if form == "loss":
        assert_close(call(name, "loss", x, t, **kwargs), expected_loss, RTOL, scale, "loss")
        return
    kwargs["grad_output"] = grad_output
    if form == "grad":
        assert_close(call(name, "grad", x, t, **kwargs), expected_grad, RTOL, what="grad")
        return
    loss, grad = call(name, "with_grad", x, t, **kwargs)
    assert_close(loss, expected_loss, RTOL, scale, "fused loss")
    assert_close(grad, expected_grad, RTOL, what="fused grad")


def test_every_registered_loss_has_cases_and_a_torch_reference():
    for name in SPECS:
        assert name in CASES, f"{name}: add its option grid to CASES in tests/problems.py"
        assert name in REFERENCES, f"{name}: add a PyTorch-written reference to tests/torch_reference.py"
    assert set(CASES) == set(SPECS) == set(REFERENCES), "CASES / REFERENCES name a loss _spec.py does not have"
    for name, cases in CASES.items():
        options = {o.name for o in SPECS[name].options}
        covered = {key for case in cases for key in case} - {"target"}
        assert covered == options, f"{name}: no case in tests/problems.py CASES sets {options - covered}"


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize(("name", "case"), all_cases())
def test_matches_torch_float64(backend, rng, name, case, form, reduction):
    shape = ROW_SHAPE if SPECS[name].rowwise else POINT_SHAPE
    x, t, opts = make_problem(name, shape, rng, case)
    g = rng.uniform(0.5, 2.0, loss_shape(name, shape)) if reduction == "none" else 1.7
    expected = loss_and_grad(name, x, t, reduction=reduction, grad_output=g, **opts)
    check_forms(name, form, x, t, opts, reduction, g, *expected)


# PyTorch's multi_margin_loss takes the hinge as active only for z > 0 (strictly): a term exactly
# at the kink has zero gradient. fastloss follows it for both variants and for the binary hinge.
@pytest.mark.parametrize("squared", [False, True])
@pytest.mark.parametrize("variant", ["weston_watkins", "crammer_singer"])
def test_multiclass_hinge_kink_follows_multi_margin_loss(backend, variant, squared):
    # row 0: margin + s_j - s_t is exactly 0 for j = 1 and < 0 elsewhere; row 1: one active term.
    x = np.array([[1.0, 0.0, -2.0], [0.0, 0.5, -1.0]])
    t = np.array([0, 0])
    xt = torch.tensor(x, requires_grad=True)
    torch_loss = F.multi_margin_loss(xt, torch.tensor(t), p=2 if squared else 1, reduction="sum") * 3
    torch_loss.backward()
    loss, grad = fastloss.multiclass_hinge_loss_with_grad(x, t, variant=variant, squared=squared, reduction="sum")
    assert loss == pytest.approx(torch_loss.item(), rel=1e-12)
    np.testing.assert_allclose(grad, xt.grad.numpy(), rtol=1e-12)
    assert np.all(grad[0] == 0.0)


@pytest.mark.parametrize("squared", [False, True])
def test_binary_hinge_kink_has_zero_gradient(backend, squared):
    s = np.array([0.0, 1.0, -1.0, 0.5])
    y = np.array([1.0, 1.0, -1.0, -1.0])  # margin - y*s: 1, 0 (kink), 0 (kink), 1.5
    grad = fastloss.hinge_loss_grad(s, y, squared=squared, reduction="sum")
    np.testing.assert_array_equal(grad, [-2.0 if squared else -1.0, 0.0, 0.0, 3.0 if squared else 1.0])


@pytest.mark.parametrize(
    ("name", "threshold_name", "torch_fn"),
    [("huber_loss", "delta", F.huber_loss), ("smooth_l1_loss", "beta", F.smooth_l1_loss)],
)
@pytest.mark.parametrize("threshold", [0.5, 1.0, 0.0])
def test_elementwise_kinks_match_torch(backend, name, threshold_name, torch_fn, threshold):
    if name == "huber_loss" and threshold == 0.0:
        threshold = 2.0  # delta must be > 0; 0 is smooth_l1's L1 case
    x = np.array([threshold, -threshold, 0.0, 2 * threshold + 1, 0.25])
    y = np.zeros_like(x)
    xt = torch.tensor(x, requires_grad=True)
    expected = torch_fn(xt, torch.tensor(y), reduction="sum", **{threshold_name: threshold})
    expected.backward()
    loss, grad = getattr(fastloss, f"{name}_with_grad")(x, y, reduction="sum", **{threshold_name: threshold})
    assert loss == pytest.approx(expected.item(), rel=1e-12)
    np.testing.assert_array_equal(grad, xt.grad.numpy())
