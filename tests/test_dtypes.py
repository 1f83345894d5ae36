"""Input dtypes (float32/64, float16, bfloat16 in NumPy and torch) and target dtypes of every width."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
import torch
from problems import (
    CASES,
    DTYPES,
    GRAD_TOL,
    LOSS_TOL,
    NAMES,
    SPECS,
    all_cases,
    assert_close,
    call,
    loss_shape,
    make_problem,
    to64,
)
from torch_reference import loss_and_grad

TORCH_DTYPES = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16,
                "bfloat16": torch.bfloat16}
INT_DTYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]


def to_torch(a: np.ndarray, dtype: str | None = None) -> torch.Tensor:
    if a.dtype == ml_dtypes.bfloat16:
        return torch.from_numpy(a.astype(np.float32)).to(torch.bfloat16)
    return torch.from_numpy(np.ascontiguousarray(a))


def expected_dtypes(dtype: str, lib: str):
    loss = "float64" if dtype == "float64" else "float32"
    if lib == "torch":
        return TORCH_DTYPES[loss], TORCH_DTYPES[dtype]
    return np.dtype(loss), np.dtype(ml_dtypes.bfloat16 if dtype == "bfloat16" else dtype)


def check_dtype(name, case, dtype, reduction, lib, rng):
    shape = (9, 37) if SPECS[name].rowwise else (7, 45)
    x, t, opts = make_problem(name, shape, rng, case, dtype=dtype)
    g = rng.uniform(0.5, 2, loss_shape(name, shape)) if reduction == "none" else 1.0
    t64 = t.astype(np.float64) if t.dtype.kind == "f" or t.dtype == ml_dtypes.bfloat16 else t
    expected_loss, expected_grad = loss_and_grad(name, x.astype(np.float64), t64, reduction=reduction,
                                                 grad_output=g, **opts)
    xa, ta = (to_torch(x), to_torch(t)) if lib == "torch" else (x, t)
    ga = torch.from_numpy(np.asarray(g)) if lib == "torch" and reduction == "none" else g
    loss, grad = call(name, "with_grad", xa, ta, reduction=reduction, grad_output=ga, **opts)
    loss_dtype, grad_dtype = expected_dtypes(dtype, lib)
    assert loss.dtype == loss_dtype and grad.dtype == grad_dtype
    if lib == "torch":
        assert isinstance(loss, torch.Tensor) and isinstance(grad, torch.Tensor)
    scale = max(1.0, float(np.max(np.abs(to64(x)))))
    assert_close(loss, expected_loss, LOSS_TOL[dtype], scale, "loss")
    assert_close(grad, expected_grad, GRAD_TOL[dtype], what="grad")
    alone = call(name, "loss", xa, ta, reduction=reduction, **opts)
    assert_close(alone, loss, 0.0 if dtype == "float64" else LOSS_TOL[dtype], scale, "loss alone")


# Every option set in every dtype, "none" with a per-loss grad_output (the reductions only rescale,
# and test_against_torch covers them). (9, 37) / (7, 45): unaligned rows of a few SIMD vectors.
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("name", "case"), all_cases())
def test_every_option_in_every_dtype(backend, rng, name, case, dtype):
    check_dtype(name, case, dtype, "none", "numpy", rng)


@pytest.mark.parametrize("reduction", ["none", "mean"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_torch_tensors_of_every_dtype(backend, rng, name, dtype, reduction):
    check_dtype(name, CASES[name][-1], dtype, reduction, "torch", rng)


@pytest.mark.parametrize("int_dtype", INT_DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", [n for n in NAMES if SPECS[n].rowwise and not SPECS[n].logit_targets])
def test_class_targets_of_every_integer_width(backend, rng, name, int_dtype):
    x, t, _opts = make_problem(name, (6, 5, 11), rng, axis=1, ignore_fraction=0.0)
    expected = call(name, "with_grad", x, t, axis=1, reduction="none")
    loss, grad = call(name, "with_grad", x, t.astype(int_dtype), axis=1, reduction="none")
    np.testing.assert_array_equal(loss, expected[0])
    np.testing.assert_array_equal(grad, expected[1])
    torch_dtype = getattr(torch, np.dtype(int_dtype).name)
    loss_t, _grad_t = call(name, "with_grad", torch.tensor(x), torch.from_numpy(t).to(torch_dtype), axis=1,
                          reduction="none")
    np.testing.assert_array_equal(loss_t.numpy(), expected[0])


@pytest.mark.parametrize("int_dtype", [np.int8, np.int16, np.int32], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", [n for n in NAMES if SPECS[n].rowwise and "ignore_index" in
                                  [o.name for o in SPECS[n].options]])
def test_narrow_signed_targets_with_ignore_index(backend, rng, name, int_dtype):
    x, t, _ = make_problem(name, (40, 7), rng, ignore_fraction=0.3)
    t = np.where(t < 0, -1, t)
    expected = call(name, "with_grad", x, t, ignore_index=-1)
    got = call(name, "with_grad", x, t.astype(int_dtype), ignore_index=-1)
    assert got[0] == expected[0]
    np.testing.assert_array_equal(got[1], expected[1])


# Pointwise targets: 0/1 (sigmoid focal), -1/+1 or 0/1 (hinge) in every integer width and as bool.
@pytest.mark.parametrize("target_dtype", INT_DTYPES + [np.bool_, np.float32], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", ["sigmoid_focal_loss", "hinge_loss"])
def test_binary_targets_of_every_dtype(backend, rng, name, target_dtype):
    x = rng.standard_normal((5, 23))
    bits = rng.integers(0, 2, size=x.shape)
    signed = name == "hinge_loss" and np.dtype(target_dtype).kind in "if"
    y = 2 * bits - 1 if signed else bits
    expected = loss_and_grad(name, x, bits.astype(np.float64), reduction="sum")  # hinge reads 0 as -1
    loss, grad = call(name, "with_grad", x, y.astype(target_dtype), reduction="sum")
    assert_close(loss, expected[0], 1e-10, 10.0)
    assert_close(grad, expected[1], 1e-10)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_16_bit_gradient_is_rounded_once(backend, rng, dtype):
    """The gradient of a 16-bit input is the float32 result rounded to nearest once, so it is
    within half an ulp of the exact value (plus float32 error), not a twice-rounded value."""
    x, t, _ = make_problem("huber_loss", (4001,), rng, dtype=dtype)
    grad = call("huber_loss", "grad", x, t, reduction="sum")
    exact = np.clip(x.astype(np.float64) - t.astype(np.float64), -1, 1)
    assert np.array_equal(exact.astype(np.float32), exact)  # so float32 -> 16-bit is the one rounding
    nearest = exact.astype(np.float32).astype(ml_dtypes.bfloat16 if dtype == "bfloat16" else np.float16)
    np.testing.assert_array_equal(grad.astype(np.float64), nearest.astype(np.float64))


def test_bfloat16_conversion_rounds_half_to_even_once():
    from fastloss import _arrays

    ulp = 2.0**-7  # of bfloat16 at 1
    values = np.array([1 + ulp / 2, 1 + 3 * ulp / 2, 1 + ulp / 2 + 2.0**-30, -(1 + ulp / 2 + 2.0**-40),
                       1 + ulp / 4, 3e38, 3.4e38, 2.0**-130 * 1.5, 2.0**-133 / 2, np.inf, -np.inf])
    expected = np.array([1, 1 + 2 * ulp, 1 + ulp, -(1 + ulp), 1, 226 * 2.0**120, np.inf, 2.0**-130 * 1.5, 0.0,
                         np.inf, -np.inf])
    got = _arrays.from_float64(values, "bfloat16").view(ml_dtypes.bfloat16).astype(np.float64)
    np.testing.assert_array_equal(got, expected)
    # on float32-exact values a single rounding is ml_dtypes' float32 -> bfloat16 rounding
    x = np.random.default_rng(0).standard_normal(100000).astype(np.float32).astype(np.float64)
    got = _arrays.from_float64(x, "bfloat16").view(ml_dtypes.bfloat16)
    np.testing.assert_array_equal(got.astype(np.float64), x.astype(np.float32).astype(ml_dtypes.bfloat16).astype(np.float64))
