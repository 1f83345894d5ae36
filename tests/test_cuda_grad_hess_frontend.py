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
from problems import CASES, SPECS, assert_close, loss_shape, make_problem
from test_cuda_frontend import _STORAGE, EmulatedCuda, _view, as_tensor, options_from_kernel


class EmulatedGradHess(EmulatedCuda):
    def rowwise(self, job):
        if not job.get("hess"):
            return super().rowwise(job)
        self.jobs.append(job)
        spec, p = LOSSES[job["loss_id"]], job["params"]
        dname, storage = _STORAGE[job["dtype"]]
        math = np.float64 if dname == "float64" else np.float32
        outer, C, inner = job["outer"], job["classes"], job["inner"]
        M = outer * inner
        x = _arrays.to_float64(_view(job["x"], storage, M * C), dname).reshape(outer, C, inner)
        rows = np.moveaxis(x, 1, 2).reshape(M, C)
        w = _view(job["class_weight"], math, C).astype(np.float64) if job["class_weight"] else None
        if job["soft_target"]:
            y = _arrays.to_float64(_view(job["soft_target"], storage, M * C), dname).reshape(outer, C, inner)
            t = np.moveaxis(y, 1, 2).reshape(M, C)
        else:
            t = _view(job["target"], np.int64, M).copy()
        g, h = getattr(_reference_hess, spec.name)(rows, t, **options_from_kernel(spec, p, w))
        if job["row_scale"]:
            s = _view(job["row_scale"], math, M).astype(np.float64)[:, None]
            g, h = g * s, h * s
        for key, v in (("grad", g), ("hess", h)):
            v = np.moveaxis(v.reshape(outer, inner, C), 2, 1)
            _view(job[key], storage, M * C)[:] = _arrays.from_float64(v, dname).reshape(-1)

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


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(CASES))
def test_jobs_reproduce_the_reference(emulated, name, dtype, rng):
    for case in CASES[name]:
        shape, axis = ((3, 5, 4), 1) if SPECS[name].rowwise else ((6, 7), -1)
        x, target, opts = make_problem(name, shape, rng, case, dtype=dtype, axis=axis)
        if SPECS[name].rowwise:
            opts["axis"] = axis
        w = rng.uniform(0.5, 2.0, loss_shape(name, shape, axis))
        with fastloss.use_backend("numpy"):
            g0, h0 = getattr(fastloss, f"{name}_grad_hess")(x, target, sample_weight=w, **opts)
        dev_opts = {k: (torch.from_numpy(v) if isinstance(v, np.ndarray) else v) for k, v in opts.items()}
        if not SPECS[name].native_grad_hess:  # its grad_hess is the NumPy reference: CPU data only
            with pytest.raises(NotImplementedError, match="no CUDA kernel"):
                getattr(fastloss, f"{name}_grad_hess")(as_tensor(x), as_tensor(target), **dev_opts)
            continue
        g, h = getattr(fastloss, f"{name}_grad_hess")(as_tensor(x), as_tensor(target),
                                                       sample_weight=torch.from_numpy(w), **dev_opts)
        assert emulated.jobs[-1]["hess"] and emulated.jobs[-1]["reduction"] == 0
        assert_close(g, g0, 1e-6, what=f"{name} {case} grad")
        assert_close(h, h0, 1e-6, what=f"{name} {case} hess")


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
