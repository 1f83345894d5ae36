"""Rows of few classes (class axis last), which the native kernels run in transposed blocks of one
SIMD width of rows: every rowwise option in every dtype against PyTorch in float64, and in place.

150 rows: more than one work chunk (64 rows of this few classes), several whole blocks of 4, 8 or
16 rows each, and a last chunk of 22 rows that ends in a block padded with copies of its last row.
"""

from __future__ import annotations

import fastloss
import numpy as np
import pytest
from problems import (
    CASES,
    DTYPES,
    GRAD_TOL,
    LOSS_TOL,
    ROWWISE,
    all_cases,
    assert_close,
    call,
    make_problem,
    to64,
)
from torch_reference import loss_and_grad

ROWS = 150
CLASSES = (2, 10, 31)
ROWWISE_CASES = [p for p in all_cases() if p.values[0] in ROWWISE]


@pytest.mark.parametrize("classes", CLASSES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("name", "case"), ROWWISE_CASES)
def test_few_classes_match_torch_float64(backend, rng, name, case, dtype, classes):
    x, t, opts = make_problem(name, (ROWS, classes), rng, case, dtype=dtype)
    g = rng.uniform(0.5, 2.0, ROWS)
    t64 = t.astype(np.float64) if t.dtype.kind == "f" or t.dtype.kind == "V" else t
    expected_loss, expected_grad = loss_and_grad(name, to64(x), t64, reduction="none", grad_output=g, **opts)
    loss, grad = call(name, "with_grad", x, t, reduction="none", grad_output=g, **opts)
    scale = max(1.0, float(np.max(np.abs(to64(x)))))
    assert_close(loss, expected_loss, LOSS_TOL[dtype], scale, "loss")
    assert_close(grad, expected_grad, GRAD_TOL[dtype], what="grad")


@pytest.mark.parametrize("classes", CLASSES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ROWWISE)
def test_few_classes_in_place(backend, rng, name, dtype, classes):
    x, t, opts = make_problem(name, (ROWS, classes), rng, CASES[name][-1], dtype=dtype)
    expected_loss, expected_grad = call(name, "with_grad", x, t, reduction="sum", **opts)
    loss, grad = call(name, "with_grad", x, t, out=x, reduction="sum", **opts)
    assert grad is x
    np.testing.assert_array_equal(to64(x), to64(expected_grad))
    assert loss == expected_loss


@pytest.mark.parametrize("classes", CLASSES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(("name", "case"), ROWWISE_CASES)
def test_a_rows_values_do_not_depend_on_its_place_in_the_batch(backend, rng, name, case, dtype, classes):
    """The same rows, moved by 5 (across block and chunk edges), give bit-identical losses and
    gradients: XGBoost's sample-weight equivalence (a row repeated k times = weight k) needs it, and
    the rows after a chunk's last whole block once took another summation order."""
    x, t, opts = make_problem(name, (ROWS, classes), rng, case, dtype=dtype)
    g = rng.uniform(0.5, 2.0, ROWS)
    loss, grad = call(name, "with_grad", x, t, reduction="none", grad_output=g, **opts)
    roll = lambda a: np.roll(a, 5, axis=0)
    moved_loss, moved_grad = call(name, "with_grad", roll(x), roll(t), reduction="none", grad_output=roll(g), **opts)
    np.testing.assert_array_equal(moved_loss, roll(loss))
    np.testing.assert_array_equal(moved_grad, roll(grad))
    if name == "cross_entropy":
        gh = fastloss.cross_entropy_grad_hess(x, t, **opts)
        moved = fastloss.cross_entropy_grad_hess(roll(x), roll(t), **opts)
        for a, b in zip(moved, gh):
            np.testing.assert_array_equal(a, roll(b))
