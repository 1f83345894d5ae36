"""Rows longer than one block of the native softmax kernel's one-read path (2048 classes): the row
max and the exponentials are taken block by block, the running sum rescaled when the max grows and
each block's gradient rescaled at the end. Every softmax-family option in every dtype against
PyTorch in float64, rows whose max grows in every block or sits in the first or the last one, a
target in a block whose shift is not the row max, -inf and huge negative blocks before the finite
ones, and the rows that leave the one-read path (+inf, NaN, all -inf) for the three-sweep one.
"""

from __future__ import annotations

import fastloss
import numpy as np
import pytest
from problems import CASES, DTYPES, GRAD_TOL, LOSS_TOL, as_dtype, assert_close, call, make_problem, to64
from torch_reference import loss_and_grad

BLOCK = 2048
CLASSES = (BLOCK + 1, 3 * BLOCK + 77)
MATRIX_CLASSES = (3 * BLOCK + 77,)
SOFTMAX = ("cross_entropy", "softmax_focal_loss")
SOFTMAX_CASES = [(name, case) for name in SOFTMAX for case in CASES[name]]


def _case_id(item):
    name, case = item
    return name + "-" + "-".join(f"{k}={v}" for k, v in sorted(case.items()) if k != "name") if case else name


@pytest.mark.parametrize("classes", MATRIX_CLASSES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("name", "case"), SOFTMAX_CASES, ids=[_case_id(c) for c in SOFTMAX_CASES])
def test_long_rows_match_torch_float64(backend, rng, name, case, dtype, classes):
    x, t, opts = make_problem(name, (6, classes), rng, case, dtype=dtype)
    g = rng.uniform(0.5, 2.0, 6)
    t64 = t.astype(np.float64) if t.dtype.kind in "fV" else t
    expected_loss, expected_grad = loss_and_grad(name, to64(x), t64, reduction="none", grad_output=g, **opts)
    loss, grad = call(name, "with_grad", x, t, reduction="none", grad_output=g, **opts)
    scale = max(1.0, float(np.max(np.abs(to64(x)))))
    assert_close(loss, expected_loss, LOSS_TOL[dtype], scale, "loss")
    assert_close(grad, expected_grad, GRAD_TOL[dtype], what="grad")


def _rows(classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows chosen against the block scheme, with their targets."""
    c = np.arange(classes, dtype=np.float64)
    rows, targets = [], []
    rows.append(40.0 * c / classes)  # the max grows in every block: every block is rescaled
    targets.append(5)  # in the first block, whose shift is furthest from the row max
    rows.append(-40.0 * c / classes)  # the max in the first block only
    targets.append(classes - 1)
    late = np.zeros(classes)
    late[-1] = 30.0  # a dominant last class: p_t -> 1 for it, and the early blocks' e shrink by e^-30
    rows.append(late)
    targets.append(classes - 1)
    rows.append(late.copy())
    targets.append(3)
    neg = np.full(classes, -np.inf)
    neg[BLOCK:] = np.linspace(-3, 3, classes - BLOCK)  # a whole block of only -inf before the finite ones
    rows.append(neg)
    targets.append(BLOCK)
    huge = np.full(classes, -1e30)
    huge[BLOCK:] = np.linspace(-2, 2, classes - BLOCK)  # exp(m_old - m_new) underflows to 0
    rows.append(huge)
    targets.append(classes - 1)
    return np.array(rows), np.array(targets)


@pytest.mark.parametrize("z_loss", [0.0, 1e-3])
@pytest.mark.parametrize("classes", CLASSES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_block_shifts_against_float64(backend, dtype, classes, z_loss):
    x64, t = _rows(classes)
    x = x64.astype(dtype)
    w = np.linspace(0.5, 2.0, classes)
    expected_loss, expected_grad = loss_and_grad("cross_entropy", x.astype(np.float64), t, reduction="none",
                                                 grad_output=1.0, weight=w, z_loss=z_loss)
    loss, grad = fastloss.cross_entropy_with_grad(x, t, reduction="none", weight=w, z_loss=z_loss)
    rtol = 1e-12 if dtype == "float64" else 2e-6
    # Entry by entry, the small probabilities of the early blocks included, not only up to the row max.
    np.testing.assert_allclose(grad, expected_grad, rtol=50 * rtol, atol=rtol * np.abs(expected_grad).max())
    np.testing.assert_allclose(loss, expected_loss, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("in_place", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("bad", [np.inf, np.nan, "all -inf"])
@pytest.mark.parametrize("block", [0, 2])
def test_rows_leaving_the_one_read_path(backend, bad, block, dtype, in_place):
    classes = 3 * BLOCK + 77
    x64 = np.random.default_rng(3).standard_normal((2, classes))
    if bad == "all -inf":
        x64[0] = -np.inf
    else:
        x64[0, block * BLOCK + 17] = bad
    x = as_dtype(x64, dtype)
    t = np.array([1, 2])
    expected_loss, expected_grad = loss_and_grad("cross_entropy", to64(x), t, reduction="none", grad_output=1.0)
    loss, grad = fastloss.cross_entropy_with_grad(x, t, reduction="none", out=x if in_place else None)
    assert_close(loss, expected_loss, LOSS_TOL[dtype], 1.0, "loss")
    assert_close(grad, expected_grad, GRAD_TOL[dtype], what="grad")
    assert np.isnan(loss[0]) and np.isnan(to64(grad[0])).all()


def test_long_rows_in_place(backend):
    x, t, opts = make_problem("cross_entropy", (5, 2 * BLOCK + 3), np.random.default_rng(5), dtype="float32")
    expected_loss, expected_grad = fastloss.cross_entropy_with_grad(x, t, reduction="sum", **opts)
    loss, grad = fastloss.cross_entropy_with_grad(x, t, out=x, reduction="sum", **opts)
    assert grad is x
    np.testing.assert_array_equal(x, expected_grad)
    assert loss == expected_loss


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("offset", [0, 1, 2, 3])
def test_aligned_and_unaligned_gradient_rows(backend, dtype, offset):
    """A 16-byte aligned gradient row is written once with non-temporal stores (e in scratch, the
    target's value patched into its vector), any other row by plain stores: the same values either
    way, with the target in the first, a middle, the last whole and the scalar tail vector."""
    classes = 2 * BLOCK + 21  # rows of 4105 classes: successive rows start at every 4-byte offset mod 16
    x64 = np.random.default_rng(11).standard_normal((8, classes)) * 3.0
    t = np.array([0, 15, 16, BLOCK - 1, BLOCK, classes - 22, classes - 5, classes - 1])
    x = as_dtype(x64, dtype)
    expected_loss, expected_grad = loss_and_grad("cross_entropy", to64(x), t, reduction="none", grad_output=1.0)
    storage = np.empty(x.size + 8, dtype=x.dtype)
    out = storage[offset : offset + x.size].reshape(x.shape)
    loss, grad = fastloss.cross_entropy_with_grad(x, t, reduction="none", out=out)
    assert grad is out
    assert_close(loss, expected_loss, LOSS_TOL[dtype], 1.0, "loss")
    assert_close(grad, expected_grad, GRAD_TOL[dtype], what="grad")
    _, aligned = fastloss.cross_entropy_with_grad(x, t, reduction="none")
    np.testing.assert_array_equal(to64(grad), to64(aligned))


@pytest.mark.parametrize("in_place", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("classes", [BLOCK + 3, 2 * BLOCK + 16])
def test_gradient_written_inside_the_next_row(backend, classes, dtype, in_place):
    """A streamed row's gradient is written while the next row of its chunk (up to 8 rows of 200 here)
    computes its exps, the chunk's last at the chunk's end. Rows that start at every offset mod 16
    (2051 classes: streamed and not, alternating), ignored rows, and rows that leave the one-read
    path (+inf, NaN) with a gradient pending: every row equal to the same row computed alone, on 1
    and 2 threads, and close to PyTorch in float64."""
    rows = 200
    rng = np.random.default_rng(classes)
    x64 = rng.standard_normal((rows, classes)) * 3.0
    x64[17, 5] = np.inf
    x64[18, classes - 1] = np.nan
    x64[40] -= 1e4  # a row far below the others: its own shifts
    t = rng.integers(0, classes, rows)
    t[[3, 9, 10, 63, 64, 199]] = -100
    x = as_dtype(x64, dtype)
    alone = [fastloss.cross_entropy_with_grad(x[r : r + 1], t[r : r + 1], reduction="none") for r in range(rows)]
    alone_loss = np.concatenate([a[0] for a in alone])
    alone_grad = np.concatenate([a[1] for a in alone])
    expected_loss, expected_grad = loss_and_grad("cross_entropy", to64(x), t, reduction="none", grad_output=1.0)
    finite = np.isfinite(expected_loss)
    threads = fastloss.get_num_threads()
    try:
        for n in (1, 2):
            fastloss.set_num_threads(n)
            xi = x.copy()
            loss, grad = fastloss.cross_entropy_with_grad(xi, t, reduction="none", out=xi if in_place else None)
            np.testing.assert_array_equal(loss, alone_loss)
            np.testing.assert_array_equal(to64(grad), to64(alone_grad))
    finally:
        fastloss.set_num_threads(threads)
    assert_close(loss[finite], expected_loss[finite], LOSS_TOL[dtype], 1.0, "loss")
    assert_close(grad[finite], expected_grad[finite], GRAD_TOL[dtype], what="grad")
    assert np.isnan(loss[[17, 18]]).all() and np.isnan(to64(grad[[17, 18]])).all()
    assert not to64(grad[[3, 9, 10, 63, 64, 199]]).any()
