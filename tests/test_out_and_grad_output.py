"""``out=`` (including in place over the input) and every accepted and rejected ``grad_output``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from problems import CASES, NAMES, SPECS, assert_close, call, loss_shape, make_problem
from torch_reference import loss_and_grad

GRAD_FORMS = ("grad", "with_grad")


def problem(name, rng, dtype="float64", shape=None):
    shape = shape or (7, 17)
    return make_problem(name, shape, rng, CASES[name][-1], dtype=dtype)


def grad_of(result):
    return result[1] if isinstance(result, tuple) else result


@pytest.mark.parametrize("form", GRAD_FORMS)
@pytest.mark.parametrize("name", NAMES)
def test_out_receives_the_gradient_and_is_returned(backend, rng, name, form):
    x, t, opts = problem(name, rng)
    expected = call(name, form, x, t, **opts)
    out = np.full_like(x, np.nan)
    result = call(name, form, x, t, out=out, **opts)
    assert grad_of(result) is out
    np.testing.assert_array_equal(out, grad_of(expected))
    if form == "with_grad":
        assert result[0] == expected[0]


@pytest.mark.parametrize("layout", ["contiguous", "strided"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("form", GRAD_FORMS)
@pytest.mark.parametrize("name", NAMES)
def test_out_is_input_computes_in_place(backend, rng, name, form, dtype, layout):
    x, t, opts = problem(name, rng, dtype)
    expected = call(name, form, x, t, reduction="sum", **opts)
    if layout == "strided":
        buffer = np.zeros((x.shape[0], 2 * x.shape[1]), dtype=x.dtype)
        buffer[:, 1::2] = x
        x = buffer[:, 1::2]
    result = call(name, form, x, t, out=x, reduction="sum", **opts)
    assert grad_of(result) is x
    np.testing.assert_array_equal(x, grad_of(expected))
    if form == "with_grad":  # the loss is of the input as it was before the gradient overwrote it
        assert result[0] == expected[0]
    if layout == "strided":
        assert np.all(buffer[:, ::2] == 0)


@pytest.mark.parametrize("name", NAMES)
def test_non_contiguous_out(backend, rng, name):
    x, t, opts = problem(name, rng)
    buffer = np.full((x.shape[1], x.shape[0]), 7.0)
    out = buffer.T  # Fortran order: not C-contiguous
    result = call(name, "grad", x, t, out=out, **opts)
    assert result is out
    np.testing.assert_array_equal(out, call(name, "grad", x, t, **opts))


def test_out_with_torch_tensors_in_place(backend, rng):
    x, t, _ = make_problem("cross_entropy", (5, 9), rng)
    xt = torch.tensor(x)
    expected = loss_and_grad("cross_entropy", x, t)[1]
    result = call("cross_entropy", "grad", xt, torch.tensor(t), out=xt)
    assert result is xt
    assert_close(xt, expected, 1e-10)


@pytest.mark.parametrize(
    ("make_out", "message"),
    [
        (lambda x: np.empty(x.shape[:-1] + (x.shape[-1] + 1,), x.dtype), "out must have the input's shape"),
        (lambda x: np.empty(x.size, x.dtype), "out must have the input's shape"),
        (lambda x: np.empty(x.shape, np.float32), "dtype float32"),
        (lambda x: np.empty(x.shape, np.int64), "dtype int64"),
        (lambda x: np.broadcast_to(np.zeros(x.shape[-1]), x.shape), "out is not writable"),
        (lambda x: x[::-1], "out overlaps the input"),
        (lambda x: np.asfortranarray(np.empty_like(x)), None),  # accepted: any writable layout
    ],
)
@pytest.mark.parametrize("name", NAMES)
def test_bad_out_is_rejected(backend, rng, name, make_out, message):
    x, t, opts = problem(name, rng)
    out = make_out(x)
    if message is None:
        call(name, "grad", x, t, out=out, **opts)
        return
    with pytest.raises(ValueError, match=message):
        call(name, "grad", x, t, out=out, **opts)


def test_read_only_out(backend, rng):
    x, t, _opts = problem("huber_loss", rng)
    out = np.empty_like(x)
    out.setflags(write=False)
    with pytest.raises(ValueError, match="out is not writable"):
        call("huber_loss", "with_grad", x, t, out=out)


@pytest.mark.parametrize("name", NAMES)
def test_out_overlapping_part_of_the_input_is_rejected(backend, rng, name):
    shape = (8, 9)
    buffer = np.zeros((shape[0] + 1, shape[1]))
    x = buffer[1:]
    x[...], t, opts = problem(name, rng, shape=shape)
    with pytest.raises(ValueError, match="out overlaps the input"):
        call(name, "grad", x, t, out=buffer[:-1], **opts)


@pytest.mark.parametrize("name", [n for n in NAMES if not SPECS[n].rowwise])
def test_out_aliasing_the_target_is_rejected(backend, rng, name):
    x, t, opts = problem(name, rng)
    t = t.astype(np.float64)
    with pytest.raises(ValueError, match="out overlaps target"):
        call(name, "grad", x, t, out=t, **opts)


@pytest.mark.parametrize("name", NAMES)
def test_grad_output_forms(backend, rng, name):
    x, t, opts = problem(name, rng)
    shape = loss_shape(name, x.shape)
    g = rng.uniform(-2, 2, shape)
    for reduction, grad_output in [("mean", 2.5), ("sum", np.float32(-0.5)), ("sum", np.array(3.0)),
                                   ("mean", torch.tensor(1.5, dtype=torch.float64)), ("none", 0.75),
                                   ("none", np.array(0.75)), ("none", g), ("none", torch.tensor(g)),
                                   ("none", g.astype(np.float32))]:
        expected = loss_and_grad(name, x, t, reduction=reduction, grad_output=np.asarray(grad_output), **opts)[1]
        got = call(name, "grad", x, t, reduction=reduction, grad_output=grad_output, **opts)
        rtol = 1e-10 if np.asarray(grad_output).dtype == np.float64 else 1e-6
        assert_close(got, expected, rtol, what=f"{reduction} {type(grad_output).__name__}")


@pytest.mark.parametrize("name", NAMES)
def test_bad_grad_output_shapes(backend, rng, name):
    x, t, opts = problem(name, rng)
    shape = loss_shape(name, x.shape)
    with pytest.raises(ValueError, match="grad_output must have the loss's shape"):
        call(name, "grad", x, t, reduction="none", grad_output=np.ones(shape[:-1] + (shape[-1] + 1,)), **opts)
    with pytest.raises(ValueError, match=r"grad_output must be a scalar for this reduction, got shape \(3,\)"):
        call(name, "with_grad", x, t, reduction="mean", grad_output=np.ones(3), **opts)
    with pytest.raises(ValueError, match="grad_output must be a scalar"):
        call(name, "grad", x, t, reduction="sum", grad_output=np.ones(shape), **opts)
