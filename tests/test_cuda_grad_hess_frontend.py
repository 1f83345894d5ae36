"""The CUDA path of ``*_grad_hess``, Python side, without a GPU: tests/test_cuda_frontend.py's
emulator, taught the job's ``hess`` pointer, runs each job on the host with ``_reference_hess``
(CPU torch tensors stand in for CUDA tensors). The kernels (csrc/cuda/grad_hess.cu) are checked by
tests/test_cuda.py::test_grad_hess_matches_the_reference (on a GPU or on the emulated module)."""

from __future__ import annotations

import fastloss
import numpy as np
import pytest
import torch
from cuda_device import route_cpu_tensors_to_cuda
from fastloss import _arrays, _reference_hess
from fastloss._backends import cuda as _cuda_api
from fastloss._registry import LOSSES
from problems import make_problem
from test_cuda_frontend import _STORAGE, EmulatedCuda, _view, as_tensor, options_from_kernel


class EmulatedGradHess(EmulatedCuda):
    def pointwise(self, job):
        if not job.get("hess"):
            return super().pointwise(job)
        self.jobs.append(job)
        spec, p = LOSSES[job["loss_id"]], job["params"]
        dname, storage = _STORAGE[job["dtype"]]
        math = np.float64 if dname == "float64" else np.float32
        n = job["n"]
        x = _arrays.to_float64(_view(job["x"], storage, n), dname)
        y = _arrays.to_float64(_view(job["target"], storage, n), dname)
        # launch.h: vector k (math dtype) is read at i % vector_periods[k]; 0 means the scalar fill.
        vectors = {o: _view(ptr, math, period).astype(np.float64) if ptr else None
                   for o, ptr, period in zip(spec.broadcast_names, job["vectors"], job["vector_periods"])}
        g, h = getattr(_reference_hess, spec.name)(x, y, **options_from_kernel(spec, p, None, vectors))
        if job["row_scale"]:
            s = _view(job["row_scale"], math, n).astype(np.float64)
            g, h = g * s, h * s
        _view(job["grad"], storage, n)[:] = _arrays.from_float64(g, dname)
        _view(job["hess"], storage, n)[:] = _arrays.from_float64(h, dname)


@pytest.fixture
def emulated(monkeypatch):
    emulator = EmulatedGradHess()
    route_cpu_tensors_to_cuda(monkeypatch)
    monkeypatch.setattr(_cuda_api, "_cuda", emulator)
    return emulator


# Every loss and option through the real kernels (and the refusal where there is none):
# tests/test_cuda.py::test_grad_hess_matches_the_reference, on the emulated module without a GPU.


def test_out_pair_and_errors(emulated, rng):
    x, target, _ = make_problem("huber_loss", (4, 5), rng)
    xt, tt = as_tensor(x), as_tensor(target)
    out = (torch.empty_like(xt), torch.empty_like(xt).t().contiguous().t())  # the second not contiguous
    res = fastloss.huber_loss_grad_hess(xt, tt, out=out)
    assert res[0] is out[0] and res[1] is out[1]
    _, h0 = fastloss.huber_loss_grad_hess(x, target)
    np.testing.assert_array_equal(out[1].numpy(), h0)
    with pytest.raises(ValueError, match="sample_weight must be on the input's device"):
        fastloss.huber_loss_grad_hess(xt, tt, sample_weight=np.ones((4, 5)))
    with pytest.raises(ValueError, match="overlaps the input"):
        fastloss.huber_loss_grad_hess(xt, tt, out=(xt, torch.empty_like(xt)))
    with pytest.raises(ValueError, match="out must be a pair"):
        fastloss.huber_loss_grad_hess(xt, tt, out=torch.empty_like(xt))
