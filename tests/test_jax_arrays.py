"""The core API with JAX CPU arrays and bare DLPack producers (the path CuPy arrays take).

Results must come back in the caller's own type and agree with the PyTorch float64 reference.
"""

from __future__ import annotations

import fastloss
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from problems import NAMES, make_problem
from torch_reference import loss_and_grad

_DLPACK_CUDA = 2


class DLPackProducer:
    """Nothing but the DLPack protocol, around a NumPy array (as a CuPy array is around GPU memory)."""

    def __init__(self, array, device=None):
        self.array, self.device = array, device

    def __dlpack__(self, **kwargs):
        return self.array.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self.device or self.array.__dlpack_device__()


def _problem(name):
    x, t, opts = make_problem(name, (9, 6), np.random.default_rng(len(name)), dtype="float32")
    return x, (t.astype(np.int64) if t.dtype == np.bool_ else t), opts


@pytest.mark.parametrize("name", NAMES)
def test_jax_cpu_arrays_in_jax_arrays_out(name):
    x, t, opts = _problem(name)
    loss, grad = getattr(fastloss, f"{name}_with_grad")(
        jnp.asarray(x), jnp.asarray(t), reduction="sum", **opts
    )
    assert isinstance(loss, jax.Array) and isinstance(grad, jax.Array) and grad.dtype == jnp.float32
    ref_loss, ref_grad = loss_and_grad(name, x, t, reduction="sum", **opts)
    np.testing.assert_allclose(np.asarray(loss), ref_loss, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(grad), ref_grad, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_dlpack_producer_in_dlpack_array_out(name):
    x, t, opts = _problem(name)
    x.flags.writeable = False  # a producer may hand out read-only memory
    loss, grad = getattr(fastloss, f"{name}_with_grad")(
        DLPackProducer(x), DLPackProducer(t), reduction="none", **opts
    )
    ref_loss, ref_grad = loss_and_grad(name, x, t, reduction="none", **opts)
    np.testing.assert_allclose(np.from_dlpack(loss), ref_loss, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.from_dlpack(grad), ref_grad, rtol=1e-5, atol=1e-6)


def test_dlpack_producer_as_out_receives_the_gradient():
    x, t, opts = _problem("cross_entropy")
    out = np.empty_like(x)
    result = fastloss.cross_entropy_grad(DLPackProducer(x), t, out=out, **opts)
    np.testing.assert_allclose(out, loss_and_grad("cross_entropy", x, t, **opts)[1], rtol=1e-5, atol=1e-7)
    assert result is out


def test_a_cuda_producer_is_never_copied_to_the_host():
    x, t, _ = _problem("cross_entropy")
    on_gpu = DLPackProducer(x, device=(_DLPACK_CUDA, 0))
    try:
        from fastloss._backends import cuda  # noqa: F401
    except ImportError:
        with pytest.raises(RuntimeError, match="no CUDA support"):
            fastloss.cross_entropy(on_gpu, DLPackProducer(t, device=(_DLPACK_CUDA, 0)))
    with pytest.raises(ValueError, match="different devices"):
        fastloss.cross_entropy(on_gpu, t)
