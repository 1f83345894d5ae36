"""NaN and infinities in the input propagate as PyTorch's do (DESIGN.md 1.3); -inf logits mask."""

from __future__ import annotations

import fastloss
import numpy as np
import pytest
from problems import CASES, HAS_IGNORE, SPECS, assert_close, call, make_problem
from torch_reference import loss_and_grad

# The losses PyTorch ships, so that its own kernels say what a non-finite input gives. (With
# beta = 0 PyTorch's l1 backward returns sign(nan) = 0 where fastloss keeps the nan.)
PYTORCH_OPS = [
    pytest.param(name, case, id=f"{name}-{i}")
    for name in ("cross_entropy", "huber_loss", "smooth_l1_loss", "multiclass_hinge_loss")
    for i, case in enumerate(CASES[name])
    if (name != "multiclass_hinge_loss" or case.get("variant") == "weston_watkins") and case.get("beta") != 0.0
]


def poison(name, x, t, opts, value):
    """x with ``value`` in row 1 (a non-target class) and row 3 (its target class); rows 1 and 3
    are made non-ignored so that the value has to show."""
    if SPECS[name].rowwise and t.dtype.kind == "i":
        ignore = opts.get("ignore_index", -100)
        t[1], t[3] = (3 if ignore != 3 else 4), (5 if ignore != 5 else 6)
    x = x.copy()
    x[1, 2] = value
    x[3, int(t[3]) if SPECS[name].rowwise and t.dtype.kind == "i" else 0] = value
    return x, t


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize(("name", "case"), PYTORCH_OPS)
def test_non_finite_inputs_match_pytorch(backend, rng, name, case, value):
    x, t, opts = make_problem(name, (6, 7), rng, case)
    x, t = poison(name, x, t, opts, value)
    expected_loss, expected_grad = loss_and_grad(name, x, t, reduction="none", **opts)
    loss, grad = call(name, "with_grad", x, t, reduction="none", **opts)
    assert_close(loss, expected_loss, 1e-10, what="loss")
    assert_close(grad, expected_grad, 1e-10, what="grad")


# Every loss built on log-probabilities or on the error: a nan input makes its row's (element's)
# loss nan and leaves every other row exactly as it was. (The hinge losses follow PyTorch's
# multi_margin_loss instead, which drops a nan term as not > 0.)
@pytest.mark.parametrize(("name", "case"), [
    pytest.param(name, case, id=f"{name}-{i}")
    for name in ("cross_entropy", "softmax_focal_loss", "sigmoid_focal_loss", "huber_loss", "smooth_l1_loss")
    for i, case in enumerate(CASES[name])
])
def test_nan_propagates_to_its_own_loss_only(backend, rng, name, case):
    x, t, opts = make_problem(name, (6, 7), rng, case)
    poisoned, t = poison(name, x, t, opts, np.nan)
    loss = call(name, "loss", poisoned, t, reduction="none", **opts)
    clean = call(name, "loss", x, t, reduction="none", **opts)
    bad = np.isnan(poisoned).any(axis=-1) if SPECS[name].rowwise else np.isnan(poisoned)
    assert np.all(np.isnan(loss[bad]))
    np.testing.assert_array_equal(loss[~bad], clean[~bad])
    assert np.isnan(call(name, "loss", poisoned, t, reduction="sum", **opts))


# DESIGN.md 1.2: an ignored row gives exactly 0 loss and 0 gradient whatever it holds (padding
# rows often hold garbage). PyTorch's cross_entropy would give nan gradients for such a row.
@pytest.mark.parametrize("name", HAS_IGNORE)
def test_ignored_rows_stay_zero_whatever_they_hold(backend, rng, name):
    x, t, _ = make_problem(name, (6, 7), rng, ignore_fraction=0.0)
    t[[1, 4]] = -100
    x[1, 3], x[4, :] = np.nan, np.inf
    loss, grad = call(name, "with_grad", x, t, reduction="none")
    assert np.all(loss[[1, 4]] == 0.0) and np.all(grad[[1, 4]] == 0.0)
    assert np.all(np.isfinite(loss)) and np.all(np.isfinite(grad))


@pytest.mark.parametrize("name", ["cross_entropy", "softmax_focal_loss"])
def test_minus_inf_logits_mask_classes(backend, rng, name):
    x, t, _ = make_problem(name, (8, 9), rng, ignore_fraction=0.0)
    masked = x.copy()
    masked[:, 5:] = -np.inf
    t = t % 5
    loss, grad = call(name, "with_grad", masked, t, reduction="none")
    small_loss, small_grad = call(name, "with_grad", x[:, :5], t, reduction="none")
    assert_close(loss, small_loss, 1e-12)
    assert_close(grad[:, :5], small_grad, 1e-12)
    assert np.all(grad[:, 5:] == 0.0)


# crammer_singer: a NaN score anywhere in a row propagates (DESIGN 1.3): the row's loss is NaN, on
# every backend and ISA alike, as in the NumPy reference. Rows of 7 and 40 classes take the small-row
# tiles and the row kernel; the NaN sits before, at and after the maximum. (The AVX2 tiles once kept
# the NaN where AVX-512 and scalar dropped it: tests/test_neon_qemu.py found it.)
@pytest.mark.parametrize("classes", [7, 40])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_crammer_singer_nan_score_propagates(backend, rng, classes, dtype):
    x, t, _ = make_problem("multiclass_hinge_loss", (16, classes), rng, ignore_fraction=0.0)
    x = x.astype(dtype)
    t[:] = 3
    for row, col in enumerate([0, 2, 3, 4, classes - 1]):
        x[row, col] = np.nan
    x[5, :] = x[5, 3] + 0.5  # every other class above the target: each row active
    x[5, 1] = np.nan
    loss, grad = call("multiclass_hinge_loss", "with_grad", x, t, reduction="none")
    with fastloss.use_backend("numpy"):
        ref_loss, ref_grad = call("multiclass_hinge_loss", "with_grad", x, t, reduction="none")
    assert np.all(np.isnan(loss[:6]))
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-5, atol=1e-6, equal_nan=True)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-5, atol=1e-6, equal_nan=True)
