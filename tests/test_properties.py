"""Properties every correct kernel has, whatever its arithmetic: invariances, exact zeros, signs."""

from __future__ import annotations

import contextvars
import math

import fastloss
import numpy as np
import pytest
import saturation_reference
from problems import (
    CASES,
    FORMS,
    HAS_IGNORE,
    NAMES,
    SPECS,
    all_cases,
    as_dtype,
    assert_close,
    call,
    make_problem,
)

SHIFT_INVARIANT = [
    (name, case)
    for name in ("cross_entropy", "softmax_focal_loss", "multiclass_hinge_loss", "softmax_kl_div", "wasserstein_loss")
    for case in CASES[name]
    if "softcap" not in case and "z_loss" not in case  # both depend on the logits' level, by design
]


# Dyadic logits k/64 make x + 100 exact in float32, so any difference is the kernel's own.
# 7 classes: below one SIMD vector; 1000: many vectors plus a tail.
@pytest.mark.parametrize("classes", [7, 1000])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(("name", "case"), [pytest.param(n, c, id=f"{n}-{i}") for i, (n, c) in
                                            enumerate(SHIFT_INVARIANT)])
def test_adding_100_to_every_logit_changes_nothing(backend, rng, name, case, dtype, classes):
    # min_gap=0: only the loss is compared, and it is continuous at every kink
    x, t, opts = make_problem(name, (5, classes), rng, case, dtype="float64", min_gap=0.0)
    x = as_dtype(np.round(x * 64) / 64, dtype)
    base = call(name, "with_grad", x, t, reduction="none", **opts)
    shifted = call(name, "with_grad", x + as_dtype(100.0, dtype), t, reduction="none", **opts)
    rtol = 1e-12 if dtype == "float64" else 2e-5
    assert_close(shifted[0], base[0], rtol, scale=100.0, what="loss")
    assert_close(shifted[1], base[1], rtol, what="grad")


# C = 1 (a single class), below / at / above SIMD widths, a vocabulary of 32000.
@pytest.mark.parametrize("classes", [1, 2, 7, 16, 33, 32000])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("value", [0.0, -7.5])
def test_equal_logits_give_log_C(backend, classes, dtype, value):
    x = np.full((3, classes), value, dtype=dtype)
    t = np.array([0, classes - 1, classes // 2])
    for opts in ({}, {"label_smoothing": 0.3}):
        loss, grad = fastloss.cross_entropy_with_grad(x, t, reduction="none", **opts)
        np.testing.assert_allclose(loss, math.log(classes), rtol=1e-6 if dtype == "float32" else 1e-14,
                                   atol=1e-7)
        eps = opts.get("label_smoothing", 0.0)
        expected = np.full((3, classes), 1.0 / classes) - eps / classes
        expected[np.arange(3), t] -= 1.0 - eps
        np.testing.assert_allclose(grad, expected, atol=1e-7 if dtype == "float32" else 1e-15)


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
def test_focal_at_equal_logits(backend, gamma):
    C = 5
    loss = fastloss.softmax_focal_loss(np.zeros((2, C)), np.array([1, 4]), gamma=gamma, reduction="none")
    np.testing.assert_allclose(loss, (1 - 1 / C) ** gamma * math.log(C), rtol=1e-14)


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("name", HAS_IGNORE)
def test_all_ignored_rows_give_exact_zeros(backend, rng, name, reduction):
    x, _, _ = make_problem(name, (6, 9), rng)
    for ignore_index in (-100, 4):
        t = np.full(6, ignore_index)
        grad_output = rng.uniform(1, 2, 6) if reduction == "none" else 3.0
        loss, grad = call(name, "with_grad", x, t, ignore_index=ignore_index, reduction=reduction,
                          grad_output=grad_output)
        assert np.all(grad == 0.0) and grad.shape == x.shape
        assert np.array_equal(call(name, "grad", x, t, ignore_index=ignore_index, reduction=reduction), grad)
        if reduction == "mean":  # 0 / 0, as torch.nn.functional.cross_entropy gives
            assert np.isnan(loss)
        else:
            assert np.all(loss == 0.0)


@pytest.mark.parametrize("name", HAS_IGNORE)
def test_ignored_rows_are_exactly_zero_among_others(backend, rng, name):
    x, t, _ = make_problem(name, (40, 9), rng, ignore_fraction=0.5)
    ignored = t == -100
    loss, grad = call(name, "with_grad", x, t, reduction="none")
    assert ignored.any() and np.all(loss[ignored] == 0.0) and np.all(grad[ignored] == 0.0)
    if name != "multiclass_hinge_loss":  # an inactive hinge is a legitimate 0
        assert np.all(loss[~ignored] != 0.0)


# Logits up to +-1e4 (float32) overflow any exp that is not taken relative to the row maximum.
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(("name", "case"), all_cases())
def test_loss_is_finite_and_nonnegative(backend, rng, name, case, dtype):
    shape = (16, 7) if SPECS[name].rowwise else (4, 29)
    x, t, opts = make_problem(name, shape, rng, case, dtype=dtype)
    for scale in (1.0, 1e4):
        xs = (x * as_dtype(scale, dtype)).astype(dtype)
        loss, grad = call(name, "with_grad", xs, t, reduction="none", **opts)
        assert np.all(np.isfinite(loss)) and np.all(np.isfinite(grad))
        if name != "kl_div":  # t*(log t - x) is >= 0 only summed over a normalised input
            assert np.all(loss >= 0)


# p_t -> 1 with gamma < 1: the gradient of (1-p_t)**gamma is 0 * inf unless taken in log space.
# Float64 PyTorch gives nan here itself, so the oracle is 50-digit arithmetic. A cancelling
# 1 - exp(log p_t) is off by ~1e-16/(1 - p_t) relative, far above ATOL once raised to gamma < 1.
SATURATED_ATOL = 1e-14  # a few float64 ulps of the O(1) gradient entries of the same row


@pytest.mark.parametrize("gamma", [0.0, 0.25, 0.5, 1.0, 2.0, 5.0])
@pytest.mark.parametrize("gap", [5.0, 20.0, 30.0, 60.0])
def test_softmax_focal_confident_rows_stay_exact(backend, gamma, gap):
    x = np.zeros((2, 4))
    x[0, 1] = gap
    x[1, 3] = -gap
    t = np.array([1, 2])
    loss, grad = fastloss.softmax_focal_loss_with_grad(x, t, gamma=gamma, reduction="sum")
    expected_loss, expected_grad = saturation_reference.softmax_focal_sum(x, t, gamma)
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-9, atol=0)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-9, atol=SATURATED_ATOL)


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
@pytest.mark.parametrize("x", [15.0, 40.0, -40.0, 700.0])
def test_sigmoid_focal_confident_elements_stay_exact(backend, gamma, x):
    xs = np.array([x, -x, x])
    y = np.array([1.0 if x > 0 else 0.0, 0.0 if x > 0 else 1.0, 0.5])
    loss, grad = fastloss.sigmoid_focal_loss_with_grad(xs, y, gamma=gamma, reduction="none")
    expected_loss, expected_grad = saturation_reference.sigmoid_focal_none(xs, y, gamma)
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-9, atol=SATURATED_ATOL)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-9, atol=SATURATED_ATOL)


@pytest.mark.parametrize("reduction", ["none", "mean"])
def test_focal_with_gamma_0_is_cross_entropy(backend, rng, reduction):
    x, t, _ = make_problem("softmax_focal_loss", (20, 11), rng)
    focal = fastloss.softmax_focal_loss_with_grad(x, t, gamma=0.0, reduction=reduction)
    ce = fastloss.cross_entropy_with_grad(x, t, reduction=reduction)
    assert_close(focal[0], ce[0], 1e-12)
    assert_close(focal[1], ce[1], 1e-12)


# Large enough that a threaded kernel splits the work (rows and elements), with an unaligned tail.
@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("reduction", ["none", "mean"])
@pytest.mark.parametrize("name", NAMES)
def test_bit_identical_for_1_and_2_threads(backend, rng, name, reduction, form):
    shape = (4099, 37) if SPECS[name].rowwise else (301, 1001)
    case = CASES[name][-1]
    x, t, opts = make_problem(name, shape, rng, case, dtype="float32", min_gap=0.0)
    before = fastloss.get_num_threads()
    try:
        results = []
        for threads in (1, 2):
            fastloss.set_num_threads(threads)
            out = call(name, form, x, t, reduction=reduction, **opts)
            results.append(out if isinstance(out, tuple) else (out,))
    finally:
        fastloss.set_num_threads(before)
    for one, two in zip(*results):
        np.testing.assert_array_equal(np.asarray(one), np.asarray(two))


def test_float32_agrees_with_float64(backend, rng):
    for name in NAMES:
        for case in CASES[name]:
            shape = (9, 21) if SPECS[name].rowwise else (189,)
            x, t, opts = make_problem(name, shape, rng, case, dtype="float32")
            if t.dtype == np.float32:
                t = t.astype(np.float64)
            single = call(name, "with_grad", x, t, reduction="sum", **opts)
            double = call(name, "with_grad", x.astype(np.float64), t, reduction="sum", **opts)
            assert single[0].dtype == np.float32 and single[1].dtype == np.float32
            assert_close(single[0], double[0], 2e-5, scale=10.0, what=f"{name} {case} loss")
            assert_close(single[1], double[1], 2e-5, what=f"{name} {case} grad")


# A caller's np.seterr(all="raise") must not turn fastloss's own well-defined inf/nan/underflow
# handling (mean over zero rows, exp of -1e4) into FloatingPointError.
@pytest.mark.parametrize(("name", "case"), all_cases())
def test_callers_numpy_error_state_does_not_leak_in(backend, rng, name, case):
    shape = (6, 5) if SPECS[name].rowwise else (30,)
    x, t, opts = make_problem(name, shape, rng, case)
    if SPECS[name].rowwise and t.dtype.kind == "i":
        t = np.full_like(t, opts.get("ignore_index", -100)) if name in HAS_IGNORE else t
    with np.errstate(all="raise"):
        for reduction in ("mean", "none"):
            _loss, grad = call(name, "with_grad", x * 1e4, t, reduction=reduction, **opts)
            assert np.all(np.isfinite(grad))


def test_concurrent_calls_from_python_threads(backend, rng):
    """Calls are thread-safe (DESIGN 1.3): many threads at once give the sequential answers."""
    from concurrent.futures import ThreadPoolExecutor

    jobs = []
    for name in NAMES:
        shape = (513, 37) if SPECS[name].rowwise else (97, 211)
        jobs.append((name, *make_problem(name, shape, rng, CASES[name][-1], dtype="float32", min_gap=0.0)))
    expected = [call(name, "with_grad", x, t, reduction="none", **opts) for name, x, t, opts in jobs]
    # use_backend() is a context variable: each worker runs in a copy of this thread's context.
    contexts = [contextvars.copy_context() for _ in jobs * 4]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda ctx, job: ctx.run(call, job[0], "with_grad", *job[1:3], reduction="none",
                                                          **job[3]), contexts, jobs * 4))
    for got, want in zip(results, expected * 4):
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])


# ---- softmax_kl_div and wasserstein_loss (DESIGN 1.1b) -------------------------------------------


@pytest.mark.parametrize("temperature", [1.0, 0.3, 4.0])
@pytest.mark.parametrize("dtype", ["float64", "float32", "bfloat16"])
@pytest.mark.parametrize(("shape", "axis"), [((7, 13), -1), ((5, 1000), -1), ((3, 9, 17), 1)])
def test_softmax_kl_div_of_identical_logits_is_zero(backend, rng, temperature, dtype, shape, axis):
    x = as_dtype(rng.standard_normal(shape) * 4, dtype)
    loss, grad = fastloss.softmax_kl_div_with_grad(x, x.copy(), temperature=temperature, axis=axis,
                                                   reduction="none")
    assert np.all(np.asarray(loss, dtype=np.float64) == 0.0)
    assert np.all(np.asarray(grad, dtype=np.float64) == 0.0)


@pytest.mark.parametrize("temperature", [0.5, 2.0, 8.0])
def test_softmax_kl_div_large_vocabulary_and_temperature(backend, rng, temperature):
    """32000 classes, logits up to +-60 (exp(60/0.5) overflows float32): finite and PyTorch's values."""
    import torch
    import torch.nn.functional as F

    x = (rng.standard_normal((3, 32000)) * 20).clip(-60, 60)
    t = (rng.standard_normal((3, 32000)) * 20).clip(-60, 60)
    x[0, 5] = t[1, -1] = 60.0
    for dtype, rtol in (("float64", 1e-10), ("float32", 2e-5)):
        xd, td = as_dtype(x, dtype), as_dtype(t, dtype)
        loss, grad = fastloss.softmax_kl_div_with_grad(xd, td, temperature=temperature, reduction="none")
        assert np.all(np.isfinite(loss)) and np.all(np.isfinite(grad))
        xt = torch.tensor(xd.astype(np.float64), requires_grad=True)
        tt = torch.tensor(td.astype(np.float64))
        expected = F.kl_div(F.log_softmax(xt / temperature, -1), F.log_softmax(tt / temperature, -1),
                            log_target=True, reduction="none").sum(-1)
        (expected_grad,) = torch.autograd.grad(expected.sum(), xt)
        assert_close(loss, expected.detach().numpy(), rtol, scale=10.0, what=f"{dtype} loss")
        assert_close(grad, expected_grad.numpy(), rtol, what=f"{dtype} grad")


def test_softmax_kl_div_zero_teacher_probability_adds_zero(backend):
    """A class the teacher masks with -inf (q = 0) adds 0 to the loss (0 log 0 = 0), not nan."""
    x = np.array([[1.0, 2.0, -np.inf, 0.5], [0.0, 1.0, 2.0, 3.0]])
    t = np.array([[0.5, 1.5, -np.inf, -np.inf], [3.0, -np.inf, 1.0, 0.0]])
    loss, grad = fastloss.softmax_kl_div_with_grad(x, t, reduction="none")
    p = np.exp(x - x.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    q = np.exp(t - t.max(1, keepdims=True))
    q /= q.sum(1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = np.sum(np.where(q > 0, q * (np.log(q) - np.log(p)), 0.0), axis=1)
    np.testing.assert_allclose(loss, expected, rtol=1e-12)
    np.testing.assert_allclose(grad, p - q, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_wasserstein_of_the_predicted_distribution_is_zero(backend, rng, dtype):
    """Target = softmax(x): F = G up to rounding, so the loss is ~0 for p=1 and 2, and so is p=2's gradient."""
    x = rng.standard_normal((6, 50)).astype(dtype)
    e = np.exp(x.astype(np.float64) - x.max(1, keepdims=True))
    target = (e / e.sum(1, keepdims=True)).astype(dtype)
    eps = 1e-13 if dtype == "float64" else 1e-5
    for p in (1, 2):
        loss, grad = fastloss.wasserstein_loss_with_grad(x, target, p=p, reduction="none")
        assert np.all(np.abs(loss) < 50 * eps)
    assert np.all(np.abs(grad) < eps)


@pytest.mark.parametrize("p", [1, 2])
def test_wasserstein_one_hot_is_cumulative_distance(backend, rng, p):
    """Class index t equals the one-hot probability target; l = sum_c |F_c - [c >= t]|**p."""
    x = rng.standard_normal((50, 23)) * 2
    t = rng.integers(0, 23, 50)
    hard = fastloss.wasserstein_loss_with_grad(x, t, p=p, reduction="none")
    soft = fastloss.wasserstein_loss_with_grad(x, np.eye(23)[t], p=p, reduction="none")
    np.testing.assert_allclose(hard[0], soft[0], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(hard[1], soft[1], rtol=1e-12, atol=1e-14)
    e = np.exp(x - x.max(1, keepdims=True))
    F = np.cumsum(e / e.sum(1, keepdims=True), axis=1)
    G = np.arange(23)[None, :] >= t[:, None]
    np.testing.assert_allclose(hard[0], np.sum(np.abs(F - G) ** p, axis=1), rtol=1e-12)


def test_wasserstein_mean_divides_by_non_ignored_rows(backend, rng):
    x = rng.standard_normal((10, 6))
    t = rng.integers(0, 6, 10)
    t[[2, 5, 7]] = -100
    rows = fastloss.wasserstein_loss(x, t, reduction="none")
    assert rows[2] == rows[5] == rows[7] == 0.0
    np.testing.assert_allclose(fastloss.wasserstein_loss(x, t), rows.sum() / 7, rtol=1e-12)
