"""Shapes, class-axis layouts, strides and read-only inputs, against PyTorch in float64."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from problems import (
    CASES,
    FORMS,
    GRAD_TOL,
    LOSS_TOL,
    NAMES,
    REDUCTIONS,
    SPECS,
    assert_close,
    call,
    loss_shape,
    make_problem,
)
from torch_reference import loss_and_grad

# 0 (empty), 1, 2, below / above one SIMD vector (7, 17, 33) and 1000 (many vectors plus a tail).
SIZES = [0, 1, 2, 7, 17, 33]
CLASSES = [1, 2, 7, 17, 33, 1000]


def check_against_torch(name, x, t, opts, reduction, form, axis=-1, grad_output=None, rng=None, rtol=None):
    """fastloss vs the float64 PyTorch reference; ``rtol`` raises the dtype's tolerance."""
    if grad_output is None:
        grad_output = 1.3 if reduction != "none" else rng.uniform(0.5, 2, loss_shape(name, x.shape, axis))
    axis_kw = {"axis": axis} if SPECS[name].rowwise else {}
    t64 = t.astype(np.float64) if t.dtype.kind not in "iub" else t  # 16-bit float targets too
    expected_loss, expected_grad = loss_and_grad(name, x.astype(np.float64), t64, reduction=reduction,
                                                 grad_output=grad_output, **axis_kw, **opts)
    kwargs = dict(opts, reduction=reduction, **({"axis": axis} if SPECS[name].rowwise else {}))
    dtype = np.dtype(x.dtype).name
    scale = max(1.0, float(np.max(np.abs(x.astype(np.float64)), initial=0.0)))
    if form != "loss":
        kwargs["grad_output"] = grad_output
    result = call(name, form, x, t, **kwargs)
    loss, grad = (result, None) if form == "loss" else (None, result) if form == "grad" else result
    if loss is not None:
        assert_close(loss, expected_loss, max(rtol or 0.0, LOSS_TOL[dtype]), scale, "loss")
        assert np.shape(loss) == (() if reduction != "none" else loss_shape(name, x.shape, axis))
    if grad is not None:
        assert_close(grad, expected_grad, max(rtol or 0.0, GRAD_TOL[dtype]), what="grad")
        assert grad.shape == x.shape and grad.dtype == x.dtype


@st.composite
def problems(draw):
    name = draw(st.sampled_from(NAMES))
    case = draw(st.sampled_from(CASES[name]))
    rowwise = SPECS[name].rowwise
    ndim = draw(st.integers(1 if rowwise else 0, 3))
    shape = [draw(st.sampled_from(SIZES)) for _ in range(ndim)]
    axis = draw(st.integers(-ndim, ndim - 1)) if rowwise else -1
    if rowwise:
        shape[axis] = draw(st.sampled_from(CLASSES))
        while np.prod(shape) > 20000:  # keep each example fast: shrink the batch, not the classes
            shape[(axis + 1) % ndim if ndim > 1 else 0] //= 2
    return {"name": name, "case": case, "shape": tuple(shape), "axis": axis,
                "dtype": draw(st.sampled_from(["float64", "float32", "float16", "bfloat16"])),
                "strided": draw(st.booleans()),
                "reduction": draw(st.sampled_from(REDUCTIONS)), "form": draw(st.sampled_from(FORMS)),
                "seed": draw(st.integers(0, 2**32 - 1))}


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(p=problems())
def test_random_shapes_options_and_axes(backend, p):
    rng = np.random.default_rng(p["seed"])
    x, t, opts = make_problem(p["name"], p["shape"], rng, p["case"], dtype=p["dtype"], axis=p["axis"])
    if p["strided"] and x.ndim:
        x = strided(x, "step")
    check_against_torch(p["name"], x, t, opts, p["reduction"], p["form"], p["axis"], rng=rng)


# (N, C, H, W) with the class axis at 1 (PyTorch's layout, no transposing copy) and the same
# through a negative axis; C first; class axis last in 3-D; a single row (C,) with a 0-d target.
LAYOUTS = [((3, 5, 4, 2), 1), ((3, 5, 4, 2), -3), ((6, 3, 2), 0), ((2, 3, 9), -1), ((2, 3, 9), 2), ((11,), 0),
           ((11,), -1)]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(("shape", "axis"), LAYOUTS)
@pytest.mark.parametrize("name", [n for n in NAMES if SPECS[n].rowwise])
def test_class_axis_layouts(backend, rng, name, shape, axis, reduction):
    for case in (CASES[name][0], CASES[name][-1]):  # defaults, and every option at once
        x, t, opts = make_problem(name, shape, rng, case, axis=axis)
        check_against_torch(name, x, t, opts, reduction, "with_grad", axis, rng=rng)


def strided(a: np.ndarray, kind: str) -> np.ndarray:
    """The same values as ``a`` in a non-contiguous or read-only array."""
    if kind == "transposed":
        return np.ascontiguousarray(a.T).T
    if kind == "step":
        big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), dtype=a.dtype)
        big[..., ::2] = a
        return big[..., ::2]
    if kind == "negative":
        return np.ascontiguousarray(a[..., ::-1])[..., ::-1]
    assert kind == "readonly"
    a = a.copy()
    a.setflags(write=False)
    return a


@pytest.mark.parametrize("kind", ["transposed", "step", "negative", "readonly"])
@pytest.mark.parametrize("name", NAMES)
def test_non_contiguous_and_read_only_inputs(backend, rng, name, kind):
    for case in CASES[name]:
        x, t, opts = make_problem(name, (9, 13), rng, case)
        xs = strided(x, kind)
        ts = strided(t, kind) if t.ndim == 2 else (strided(t[:, None], kind)[:, 0] if kind != "readonly"
                                                    else strided(t, kind))
        assert not (xs.flags.c_contiguous and xs.flags.writeable)
        loss, grad = call(name, "with_grad", xs, ts, reduction="none", **opts)
        expected_loss, expected_grad = call(name, "with_grad", x, t, reduction="none", **opts)
        np.testing.assert_array_equal(loss, expected_loss)
        np.testing.assert_array_equal(grad, expected_grad)
        assert grad.flags.writeable


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", NAMES)
def test_empty_batch(backend, name, reduction):
    shape = (0, 5) if SPECS[name].rowwise else (0,)
    x = np.zeros(shape)
    if SPECS[name].logit_targets:
        t = np.zeros(shape)
    else:
        t = np.zeros(loss_shape(name, shape), dtype=np.int64 if SPECS[name].rowwise else np.float64)
    loss, grad = call(name, "with_grad", x, t, reduction=reduction,
                      grad_output=np.zeros(loss_shape(name, shape)) if reduction == "none" else 1.0)
    assert grad.shape == shape
    if reduction == "none":
        assert loss.shape == loss_shape(name, shape)
    else:  # as PyTorch: the sum of nothing is 0, the mean of nothing is nan
        assert (np.isnan(loss) if reduction == "mean" else loss == 0.0)


# Realistic vocabularies: 32000 (Llama 2) and 128256 (Llama 3), and 4097 (one past a power of two),
# with the row maximum at the very end / very start so a blocked or online softmax must rescale.
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("classes", [4097, 32000, 128256])
@pytest.mark.parametrize("name", [n for n in NAMES if SPECS[n].rowwise])
def test_large_vocabularies(backend, rng, name, classes, dtype):
    # bfloat16 scores make every hinge exact in float32, so only float32 needs a gap from the kinks
    # (1e-5, as 1e-3 cannot be had across 1e5 classes).
    x, t, opts = make_problem(name, (3, classes), rng, CASES[name][-1], dtype=dtype, ignore_fraction=0.0,
                              min_gap=1e-5 if dtype == "float32" else 0.0)
    x[0, -1] = x[1, 0] = 25.0
    # float32 sums of 1e5 terms: a few times the usual float32 tolerance
    check_against_torch(name, x, t, opts, "none", "with_grad", rng=rng, rtol=1e-4)
