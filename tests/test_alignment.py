"""Arrays not aligned to their element size (np.frombuffer at an odd offset) reach the kernels
through memcpy'd element accesses: every loss, form and dtype gives the reference's answer with a
misaligned input, target, grad_output array and out= (issue 15, item 3; the sanitizer job runs
this file under UBSan, which flags any misaligned typed access)."""

from __future__ import annotations

import fastloss
import ml_dtypes
import numpy as np
import pytest

DTYPES = {"float32": np.float32, "float64": np.float64, "float16": np.float16, "bfloat16": ml_dtypes.bfloat16}
TOL = {"float32": 1e-5, "float64": 1e-12, "float16": 2e-3, "bfloat16": 1.6e-2}


def misaligned(a: np.ndarray, offset: int = 1) -> np.ndarray:
    buf = bytearray(a.nbytes + offset)
    out = np.frombuffer(buf, dtype=a.dtype, offset=offset, count=a.size).reshape(a.shape)
    out[...] = a
    assert out.ctypes.data % max(a.itemsize, 1) != 0 or a.itemsize == 1
    return out


def problem(spec, dtype, shape, rng):
    x = (rng.standard_normal(shape) * 2).astype(DTYPES[dtype])
    if spec.logit_targets:
        t = rng.standard_normal(shape).astype(DTYPES[dtype])
    elif spec.rowwise:
        t = rng.integers(0, shape[-1], shape[:-1])
    elif getattr(spec, "target_values", None) is not None:
        t = rng.choice(np.array(spec.target_values, dtype=np.float64), shape).astype(DTYPES[dtype])
    elif getattr(spec, "target_range", None) is not None:
        lo, hi = spec.target_range
        t = rng.uniform(lo, min(hi, lo + 1.0), shape).astype(DTYPES[dtype])
    else:
        t = rng.standard_normal(shape).astype(DTYPES[dtype])
    return x, t


def close(got, want, dtype):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=TOL[dtype], atol=TOL[dtype] * max(1.0, float(np.abs(want).max())))


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("spec", fastloss.LOSSES, ids=lambda s: s.name)
@pytest.mark.parametrize("shape", [(15,), (9, 3), (5, 40)], ids=str)
def test_misaligned_arrays_give_the_reference_answer(spec, dtype, shape):
    if spec.rowwise and len(shape) == 1:
        shape = (1,) + shape
    rng = np.random.default_rng(abs(hash((spec.name, dtype, shape))) % 2**32)
    x, t = problem(spec, dtype, shape, rng)
    loss_shape = shape[:-1] if spec.rowwise else shape
    g = rng.uniform(0.5, 2.0, loss_shape).astype(np.float64 if dtype == "float64" else np.float32)
    with_grad = getattr(fastloss, spec.name + "_with_grad")
    with fastloss.use_backend("numpy"):
        want_loss, want_grad = with_grad(x, t, reduction="none", grad_output=g)
        want_mean = getattr(fastloss, spec.name)(x, t)
    xm, tm, gm = misaligned(x), misaligned(t), misaligned(g, 3)
    out = misaligned(np.zeros_like(x))
    with fastloss.use_backend("native"):
        loss, grad = with_grad(xm, tm, reduction="none", grad_output=gm, out=out)
        mean = getattr(fastloss, spec.name)(xm, tm)
        inplace = misaligned(x)
        grad2 = getattr(fastloss, spec.name + "_grad")(inplace, tm, reduction="none", grad_output=gm, out=inplace)
    assert grad is out and grad2 is inplace
    close(loss, want_loss, dtype)
    close(grad.astype(np.float64), want_grad.astype(np.float64), dtype)
    close(grad2.astype(np.float64), want_grad.astype(np.float64), dtype)
    close(mean, want_mean, dtype)


def test_issue_reproducer():
    b = np.frombuffer(bytearray(62), np.float32, offset=2, count=15)
    with fastloss.use_backend("native"):
        assert fastloss.huber_loss(b, b) == 0.0
