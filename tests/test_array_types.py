"""Array types in and out: NumPy -> NumPy, torch -> torch, JAX -> JAX, any DLPack producer."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
import torch
from problems import CASES, NAMES, call, make_problem


def first_problem(name, rng, dtype="float32"):
    return make_problem(name, (6, 11), rng, CASES[name][0], dtype=dtype)


@pytest.mark.parametrize("name", NAMES)
def test_numpy_in_numpy_out(backend, rng, name):
    x, t, opts = first_problem(name, rng)
    loss, grad = call(name, "with_grad", x, t, **opts)
    assert isinstance(loss, np.float32)
    assert type(grad) is np.ndarray and grad.dtype == np.float32
    per_row = call(name, "loss", x, t, reduction="none", **opts)
    assert type(per_row) is np.ndarray and per_row.dtype == np.float32


@pytest.mark.parametrize("name", NAMES)
def test_torch_tensors_that_require_grad_point_to_fastloss_torch(rng, name):
    x, t, opts = first_problem(name, rng)
    with pytest.raises(TypeError, match="requires grad.*fastloss.torch"):
        call(name, "with_grad", torch.tensor(x, requires_grad=True), torch.from_numpy(t), **opts)


@pytest.mark.parametrize("name", NAMES)
def test_torch_in_torch_out(backend, rng, name):
    x, t, opts = first_problem(name, rng)
    xt = torch.tensor(x)
    loss, grad = call(name, "with_grad", xt, torch.from_numpy(t), **opts)
    assert isinstance(loss, torch.Tensor) and loss.shape == () and loss.dtype == torch.float32
    assert isinstance(grad, torch.Tensor) and grad.dtype == torch.float32 and grad.device.type == "cpu"
    expected = call(name, "with_grad", x, t, **opts)
    assert loss.item() == expected[0]
    np.testing.assert_array_equal(grad.numpy(), expected[1])
    per_row = call(name, "loss", xt, torch.from_numpy(t), reduction="none", **opts)
    assert isinstance(per_row, torch.Tensor) and not per_row.requires_grad


def test_torch_non_contiguous_and_conjugate_views(backend, rng):
    x, t, _ = make_problem("cross_entropy", (7, 12), rng)
    xt = torch.tensor(np.ascontiguousarray(x.T)).T  # non-contiguous view
    neg = torch._neg_view(torch.tensor(-x))  # a lazily negated view: must be resolved, not read raw
    assert neg.is_neg()
    expected = call("cross_entropy", "with_grad", x, t)
    for view in (xt, neg, torch.tensor(x)[:, :]):
        loss, grad = call("cross_entropy", "with_grad", view, torch.from_numpy(t))
        assert loss.item() == expected[0]
        np.testing.assert_array_equal(grad.numpy(), expected[1])


# float64 is left out: it needs jax_enable_x64, a process-wide switch other test modules rely on.
@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
def test_jax_in_jax_out(backend, rng, dtype):
    x, t, opts = first_problem("cross_entropy", rng, dtype)
    t = t.astype(np.int32)  # JAX's default integer width
    expected = call("cross_entropy", "with_grad", x, t, reduction="none", **opts)
    loss, grad = call("cross_entropy", "with_grad", jnp.asarray(x), jnp.asarray(t), reduction="none", **opts)
    assert isinstance(loss, jax.Array) and isinstance(grad, jax.Array)
    assert grad.dtype == x.dtype
    np.testing.assert_array_equal(np.asarray(loss), expected[0])
    np.testing.assert_array_equal(np.asarray(grad).astype(np.float64), expected[1].astype(np.float64))
    scalar = call("cross_entropy", "loss", jnp.asarray(x), jnp.asarray(t))
    assert isinstance(scalar, jax.Array) and scalar.shape == ()


class DLPackOnly:
    """A producer that offers nothing but the DLPack protocol."""

    def __init__(self, array):
        self._array = array

    def __dlpack__(self, **kwargs):
        return self._array.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._array.__dlpack_device__()


@pytest.mark.parametrize("name", NAMES)
def test_generic_dlpack_producer(backend, rng, name):
    x, t, opts = first_problem(name, rng, "float64")
    if t.dtype == np.bool_:
        t = t.astype(np.int64)
    expected = call(name, "with_grad", x, t, reduction="none", **opts)
    loss, grad = call(name, "with_grad", DLPackOnly(x), DLPackOnly(t), reduction="none", **opts)
    np.testing.assert_array_equal(np.from_dlpack(loss), expected[0])
    np.testing.assert_array_equal(np.from_dlpack(grad), expected[1])


def test_bfloat16_numpy_uses_ml_dtypes(backend, rng):
    x, t, _ = first_problem("cross_entropy", rng, "bfloat16")
    grad = call("cross_entropy", "grad", x, t)
    assert grad.dtype == ml_dtypes.bfloat16 and type(grad) is np.ndarray


def test_python_lists_are_accepted(backend):
    loss = call("cross_entropy", "loss", [[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]], [2, 0], reduction="sum")
    expected = call("cross_entropy", "loss", np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]), np.array([2, 0]),
                    reduction="sum")
    assert loss == expected
