"""The CUDA path's Python side, on every CI machine (no GPU needed).

``fastloss._cuda`` is replaced by an emulator that executes each job on the host with the NumPy
reference, reading and writing memory through the job's raw pointers exactly as the kernels do
(scales, device-side "mean" denominators, NaN for bad targets, outputs in the math dtype), and
CPU torch tensors stand in for CUDA tensors. That checks what this side hands the kernels: the
layout, pointers, dtypes, scalar parameters, scales, reductions, out=/in-place handling and the
error policy. The kernels themselves are checked by tests/test_cuda.py (on a GPU, or on every
machine against the emulated module of the test build, FASTLOSS_CUDA_EMULATOR=ON).
"""

from __future__ import annotations

import ctypes
import math
from typing import ClassVar

import fastloss
import numpy as np
import pytest
import torch
from cuda_device import HostTorchLib, route_cpu_tensors_to_cuda
from fastloss import _arrays, _reference
from fastloss._backends import cuda as _cuda_api
from fastloss._registry import LOSSES
from problems import (
    GRAD_TOL,
    LOSS_TOL,
    PER_CLASS,
    assert_close,
    call,
    make_problem,
)

_STORAGE = {0: ("float32", np.float32), 1: ("float64", np.float64), 2: ("float16", np.float16),
            3: ("bfloat16", np.uint16)}


def _view(ptr: int, dtype, count: int) -> np.ndarray:
    """count elements of dtype at device (here: host) address ptr, writable, no copy."""
    dtype = np.dtype(dtype)
    buf = (ctypes.c_char * max(count * dtype.itemsize, 1)).from_address(ptr)
    return np.frombuffer(buf, dtype=dtype, count=count)


def options_from_kernel(spec, params, vector, element_vectors=None):
    """The loss options a kernel job stands for, read back through the spec's kernel slots
    (``element_vectors``: the per-element vectors by option name, None where the job has none)."""
    opts = {}
    element_vectors = element_vectors or {}
    for o in spec.options:
        if o.spec.type == "class_vector" and (vector is not None or not o.spec.vector_or_scalar):
            opts[o.name] = vector
            continue
        if o.spec.type == "broadcast_vector" and (element_vectors.get(o.name) is not None
                                                  or not o.spec.vector_or_scalar):
            opts[o.name] = element_vectors.get(o.name)
            continue
        v = params[o.name]
        if o.spec.type == "choice":
            v = o.spec.choices[v]
        elif o.spec.type == "bool":
            v = bool(v)
        elif o.default is None and v == o.spec.none_as:
            v = None
        opts[o.name] = v
    return opts


class EmulatedCuda:
    """fastloss._cuda's job contract (csrc/cuda/launch.h), executed on the host."""

    def __init__(self):
        self.jobs: list[dict] = []
        self.error = None

    def device_count(self):
        return 1

    def take_error(self):
        error, self.error = self.error, None
        return error

    def synchronize(self, device):
        pass

    def _scale(self, job, den):
        s = job["scale_host"]
        if job["scale_numerator"]:
            s *= _view(job["scale_numerator"], np.float64, 1)[0]
        return s / den if den is not None else s

    def _finish(self, job, loss, math_dtype, den):
        if job["reduction"] == 0:
            if job["loss"]:
                _view(job["loss"], math_dtype, loss.size)[:] = loss
            return
        if job["total"]:
            with np.errstate(divide="ignore", invalid="ignore"):
                total = np.sum(loss) / (den if den is not None else
                                        (job["host_denominator"] if job["reduction"] == 2 else 1.0))
            _view(job["total"], math_dtype, 1)[0] = total

    def rowwise(self, job):
        self.jobs.append(job)
        name, p = LOSSES[job["loss_id"]].name, job["params"]
        dname, storage = _STORAGE[job["dtype"]]
        math_dtype = np.float64 if dname == "float64" else np.float32
        outer, C, inner = job["outer"], job["classes"], job["inner"]
        M = outer * inner
        x = _arrays.to_float64(_view(job["x"], storage, M * C), dname).reshape(outer, C, inner)
        rows = np.moveaxis(x, 1, 2).reshape(M, C)
        w = _view(job["class_weight"], math_dtype, C).astype(np.float64) if job["class_weight"] else None
        if job["soft_target"]:
            y = _arrays.to_float64(_view(job["soft_target"], storage, M * C), dname).reshape(outer, C, inner)
            t, bad = np.moveaxis(y, 1, 2).reshape(M, C), np.zeros(M, bool)
        else:
            t = _view(job["target"], np.int64, M).copy()
            bad = ((t < 0) | (t >= C)) & (t != p.get("ignore_index", -100))
            t[bad] = int(p.get("ignore_index", -100))
        kw = options_from_kernel(LOSSES[job["loss_id"]], p, w)
        loss, grad = getattr(_reference, name)(rows, t, **kw)
        loss[bad], grad[bad] = np.nan, np.nan
        if bad.any():
            self.error = (job["loss_id"], int(np.argmax(bad)))
        den = None
        if job["reduction"] == 2 and job["device_denominator"]:
            valid = ~bad & (t != p.get("ignore_index", -100)) if not job["soft_target"] else np.ones(M, bool)
            tv = t[valid]
            den = float(np.sum(w[tv])) if job["device_denominator"] == 2 else float(tv.size)
        if job["grad"]:
            scale = self._scale(job, den)
            if job["row_scale"]:
                scale = scale * _view(job["row_scale"], math_dtype, M).astype(np.float64)[:, None]
            with np.errstate(invalid="ignore"):
                g = np.where(grad == 0, 0.0, grad * scale)  # ignored rows stay exactly 0
            g = np.moveaxis(g.reshape(outer, inner, C), 2, 1)
            _view(job["grad"], storage, M * C)[:] = _arrays.from_float64(g, dname).reshape(-1)
        self._finish(job, loss, math_dtype, den)

    def pointwise(self, job):
        self.jobs.append(job)
        name, p = LOSSES[job["loss_id"]].name, job["params"]
        dname, storage = _STORAGE[job["dtype"]]
        math_dtype = np.float64 if dname == "float64" else np.float32
        n = job["n"]
        x = _arrays.to_float64(_view(job["x"], storage, n), dname)
        y = _arrays.to_float64(_view(job["target"], storage, n), dname)
        spec = LOSSES[job["loss_id"]]
        # launch.h: vector k (math dtype) is read at i % vector_periods[k]; 0 means the scalar fill.
        vectors = {o: _view(ptr, math_dtype, period).astype(np.float64) if ptr else None
                   for o, ptr, period in zip(spec.broadcast_names, job["vectors"], job["vector_periods"])}
        kw = options_from_kernel(spec, p, None, vectors)
        loss, grad = getattr(_reference, name)(x, y, **kw)
        if job["check_target"]:
            bad = ((y < job["target_lo"]) | (y > job["target_hi"])
                   | (bool(job["target_integral"]) & (y != np.round(y)))) & ~np.isnan(y)
            loss[bad], grad[bad] = np.nan, np.nan
            if bad.any():
                self.error = (job["loss_id"], int(np.argmax(bad)))
        if job["grad"]:
            scale = self._scale(job, None)
            if job["row_scale"]:
                scale = scale * _view(job["row_scale"], math_dtype, n).astype(np.float64)
            _view(job["grad"], storage, n)[:] = _arrays.from_float64(grad * scale, dname)
        self._finish(job, loss, math_dtype, None)


@pytest.fixture
def emulated(monkeypatch):
    """Routes CPU torch tensors through the CUDA path onto EmulatedCuda; returns the emulator."""
    emulator = EmulatedCuda()
    route_cpu_tensors_to_cuda(monkeypatch)
    monkeypatch.setattr(_cuda_api, "_cuda", emulator)
    return emulator


def as_tensor(a: np.ndarray) -> torch.Tensor:
    a = np.asarray(a)
    if a.dtype.name == "bfloat16":
        return torch.from_numpy(a.view(np.uint16).astype(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(np.ascontiguousarray(a))


def reference(name, form, x, target, **kwargs):
    with fastloss.use_backend("numpy"):
        return call(name, form, x, target, **kwargs)


# Every loss, option, dtype, layout and reduction through the real kernels: tests/test_cuda.py (on
# the emulated module of the test build where there is no GPU). This file keeps what only a
# stand-in can show: the jobs the front end builds.


def test_in_place_passes_the_input_as_the_gradient(emulated, rng):
    x, target, _ = make_problem("cross_entropy", (6, 10), rng, {}, dtype="float32")
    xt = as_tensor(x.copy())
    got = fastloss.cross_entropy_grad(xt, as_tensor(target), out=xt)
    assert got is xt and emulated.jobs[-1]["grad"] == emulated.jobs[-1]["x"] == xt.data_ptr()
    assert_close(xt, reference("cross_entropy", "grad", x, target), GRAD_TOL["float32"])


def test_non_contiguous_input_and_out(emulated, rng):
    x, target, _ = make_problem("cross_entropy", (8, 5), rng, {}, dtype="float32")
    xt = as_tensor(np.ascontiguousarray(x.T)).T
    out = torch.empty((5, 8)).T
    assert fastloss.cross_entropy_grad(xt, as_tensor(target), out=out) is out
    assert_close(out, reference("cross_entropy", "grad", x, target), GRAD_TOL["float32"])
    assert fastloss.cross_entropy_grad(xt, as_tensor(target), out=xt) is xt
    assert_close(xt, reference("cross_entropy", "grad", x, target), GRAD_TOL["float32"])


def test_data_dependent_mean_stays_on_the_device(emulated, rng):
    x, target, opts = make_problem("cross_entropy", (6, 4), rng, {"weight": PER_CLASS, "ignore_index": 1})
    fastloss.cross_entropy(as_tensor(x), as_tensor(target), weight=as_tensor(opts["weight"]), ignore_index=1)
    job = emulated.jobs[-1]
    assert job["device_denominator"] == 2 and math.isnan(job["host_denominator"])
    fastloss.huber_loss(as_tensor(x), as_tensor(x))
    assert emulated.jobs[-1]["device_denominator"] == 0 and emulated.jobs[-1]["host_denominator"] == x.size


def test_bad_targets_raise_at_the_next_call_or_check(emulated, monkeypatch):
    x = torch.randn(4, 5)
    loss = fastloss.cross_entropy(x, torch.tensor([0, 7, 1, 2]), reduction="none")
    assert torch.isnan(loss[1]) and not torch.isnan(loss[0])
    with pytest.raises(ValueError, match=r"huber_loss: an earlier CUDA call of cross_entropy .*flat index 1 of its rows"):
        fastloss.huber_loss(x, x)
    fastloss.huber_loss(x, x)  # reported once
    fastloss.hinge_loss(x, torch.full_like(x, 3.0))
    with pytest.raises(ValueError, match="hinge_loss found a target outside its domain"):
        _cuda_api.check_errors()
    monkeypatch.setenv("FASTLOSS_CUDA_SYNC_CHECKS", "1")
    with pytest.raises(ValueError, match=r"target\[1\] = 7 is out of range \[0, 5\) and is not ignore_index=-100"):
        fastloss.cross_entropy(x, torch.tensor([0, 7, 1, 2]))
    with pytest.raises(ValueError, match=r"target\[0, 0\] = 3.0 is not in"):
        fastloss.hinge_loss(x, torch.full_like(x, 3.0))


def test_arguments_from_elsewhere_are_refused(emulated):
    x, t = torch.randn(4, 5), torch.tensor([0, 1, 2, 3])
    with pytest.raises(ValueError, match="grad_output is a host array"):
        fastloss.cross_entropy_grad(x, t, reduction="none", grad_output=np.ones(4))
    with pytest.raises(ValueError, match="out must be on the input's device"):
        fastloss.cross_entropy_grad(x, t, out=np.empty((4, 5), np.float32))
    base = torch.randn(21)
    with pytest.raises(ValueError, match="out overlaps the input"):
        fastloss.cross_entropy_grad(base[:20].view(4, 5), t, out=base[1:].view(4, 5))
    with pytest.raises(ValueError, match="weight must have shape"):
        fastloss.cross_entropy(x, t, weight=torch.ones(4))


def test_validation_is_the_front_ends(emulated):
    x = torch.randn(4, 5)
    with pytest.raises(TypeError, match="floating-point"):
        fastloss.cross_entropy(torch.ones(4, 5, dtype=torch.int32), torch.tensor([0, 1, 2, 3]))
    with pytest.raises(ValueError, match=r"target must have shape \(4,\)"):
        fastloss.cross_entropy(x, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="reduction must be one of"):
        fastloss.cross_entropy(x, torch.tensor([0, 1, 2, 3]), reduction="avg")
    with pytest.raises(ValueError, match="ignore_index=3 cannot be used with soft"):
        fastloss.cross_entropy(x, torch.rand(4, 5), ignore_index=3)
    with pytest.raises(TypeError, match="floating-point array for huber_loss"):
        fastloss.huber_loss(x, torch.ones(4, 5, dtype=torch.int64))


# ---- without the emulator ------------------------------------------------------------------------


class FakeCudaArray:
    """An object of no supported library that says it lives on a CUDA device."""

    __cuda_array_interface__: ClassVar[dict] = {"shape": (2, 3), "typestr": "<f4", "data": (0, False), "version": 3}


def test_cuda_data_without_the_module_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(_cuda_api, "_cuda", None)
    with pytest.raises(RuntimeError, match="no CUDA support"):
        fastloss.cross_entropy(FakeCudaArray(), FakeCudaArray())
    assert _cuda_api.describe().startswith("not built")


def test_unsupported_cuda_objects_are_named(emulated):
    with pytest.raises(TypeError, match="only CuPy arrays and CUDA torch tensors"):
        fastloss.huber_loss(FakeCudaArray(), FakeCudaArray())


def test_show_config_reports_cuda():
    text = _cuda_api.describe()
    assert text.startswith(("not built", "emulated on the host CPU")) or "device(s)" in text
    assert fastloss._config.config()["cuda"] == text


def test_device_array_geometry():
    lib = HostTorchLib()
    base = torch.zeros(4, 6)
    a = lib.describe(base, "a")
    assert a.contiguous and a.size == 24 and a.byte_range() == (base.data_ptr(), base.data_ptr() + 96)
    t = lib.describe(base.T, "t")
    assert not t.contiguous and t.byte_range() == a.byte_range() and t.overlaps(a) and not t.same_array(a)
    right = lib.describe(base[:, 3:], "right")
    left = lib.describe(base[:, :3], "left")
    assert left.overlaps(right)  # interleaved rows share a byte range: refusing is the safe answer
    assert not lib.describe(base[:2], "top").overlaps(lib.describe(base[2:], "bottom"))
    lo, hi = lib.describe(torch.zeros(0, 3), "empty").byte_range()
    assert lo == hi
    column = torch.zeros(3, 1)
    assert lib.describe(column.expand(3, 5), "broadcast").byte_range() == (column.data_ptr(), column.data_ptr() + 12)


@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div_batchmean_job(emulated, rng, log_target):
    x, t = np.log(rng.random((5, 4)) + 0.1), rng.random((5, 4))
    t = np.log(t + 0.1) if log_target else t
    want = reference("kl_div", "with_grad", x, t, reduction="batchmean", log_target=log_target, grad_output=0.5)
    got = call("kl_div", "with_grad", as_tensor(x), as_tensor(t), reduction="batchmean", log_target=log_target,
               grad_output=0.5)
    assert emulated.jobs[-1]["reduction"] == 2 and emulated.jobs[-1]["host_denominator"] == 5.0
    assert_close(got[0], want[0], LOSS_TOL["float64"])
    assert_close(got[1], want[1], GRAD_TOL["float64"])
    assert emulated.jobs[-1]["check_target"] == int(not log_target)  # log_target lifts the domain


def test_host_per_element_weights_travel_in_c_order(emulated, rng):
    x, t = rng.standard_normal((4, 6)), rng.random((4, 6))
    w = np.asfortranarray(rng.random((4, 6)))  # the input's shape, not C-contiguous
    want = reference("binary_cross_entropy_with_logits", "with_grad", x, t, weight=w, pos_weight=2.0)
    got = call("binary_cross_entropy_with_logits", "with_grad", as_tensor(x), as_tensor(t), weight=w, pos_weight=2.0)
    assert emulated.jobs[-1]["vector_periods"] == [24, 0]
    assert_close(got[0], want[0], LOSS_TOL["float64"])
    assert_close(got[1], want[1], GRAD_TOL["float64"])
