"""The core suite on CUDA inputs: every loss and option against the NumPy float64 reference, every
dtype, form, layout and reduction, every kernel plan (warp per row, block per row, thread-block
cluster, split long rows, class axis not last, point-wise with and without 16-byte alignment),
``*_grad_hess``, ``out=`` and in-place gradients, ``grad_output``, device-side error reporting,
empty inputs and determinism.

It runs on the real ``fastloss._cuda`` with CUDA torch tensors where there is a GPU, and on every
machine against the test build's emulated module (``FASTLOSS_CUDA_EMULATOR=ON``: the same kernels
compiled for the host and executed under csrc/cuda/emu's model of the CUDA execution), with CPU
tensors standing in for CUDA tensors (tests/cuda_device.py). Skipped as a whole, with the reason,
where neither is available (FASTLOSS_REQUIRE_CUDA=1, as CI sets it, makes that an error). A few
tests need a real GPU (streams, CuPy) and say so.
"""

from __future__ import annotations

import os

import fastloss
import ml_dtypes
import numpy as np
import pytest
from cuda_device import emulated, route_cpu_tensors_to_cuda
from emd_reference import wasserstein_grad_and_bound
from fastloss._backends import cuda as _cuda_api
from problems import (
    CASES,
    DTYPES,
    GRAD_TOL,
    LOSS_TOL,
    PER_CLASS,
    SPECS,
    all_cases,
    assert_close,
    call,
    loss_shape,
    make_problem,
)

torch = pytest.importorskip("torch")

EMULATED = emulated()
DEVICE = "cpu" if EMULATED else "cuda"


def _skip_reason() -> str | None:
    if _cuda_api._cuda is None:
        return (f"fastloss._cuda is not built ({_cuda_api._CUDA_ERROR}); build it with FASTLOSS_CUDA=ON (GPU) or "
                "FASTLOSS_CUDA_EMULATOR=ON (any machine)")
    if EMULATED:
        return None
    if not torch.cuda.is_available() or _cuda_api._cuda.device_count() == 0:
        return "no CUDA device visible (torch.cuda.is_available() is False)"
    return None


if os.environ.get("FASTLOSS_REQUIRE_CUDA") == "1" and _skip_reason() is not None:  # CI: never a silent skip
    pytest.fail(f"FASTLOSS_REQUIRE_CUDA=1 but {_skip_reason()}", pytrace=False)
pytestmark = [pytest.mark.cuda, pytest.mark.skipif(_skip_reason() is not None, reason=str(_skip_reason()))]
gpu_only = pytest.mark.skipif(EMULATED, reason="needs a real GPU (the emulated module runs work when it is enqueued)")

TORCH_DTYPES = {"float32": "float32", "float64": "float64", "float16": "float16", "bfloat16": "bfloat16"}


@pytest.fixture(autouse=True)
def _device(monkeypatch):
    """Emulated module: CPU tensors stand in for CUDA tensors. Every test ends with no error left."""
    if EMULATED:
        route_cpu_tensors_to_cuda(monkeypatch)
    yield
    _cuda_api.check_errors()


def to_cuda(a: np.ndarray, device: str = DEVICE):
    """A NumPy array (ml_dtypes bfloat16 included) as a "CUDA" torch tensor with the same values (a copy)."""
    a = np.array(a, copy=True)
    if a.dtype.name == "bfloat16":
        return torch.from_numpy(a.view(np.uint16).astype(np.int16)).view(torch.bfloat16).to(device)
    return torch.from_numpy(np.ascontiguousarray(a)).to(device)


def on_device(t) -> bool:
    return t.device.type == DEVICE


def reference(name, form, x, target, **kwargs):
    """The same call on the host, on the NumPy float64 reference backend."""
    with fastloss.use_backend("numpy"):
        return call(name, form, x, target, **kwargs)


def check_against_reference(name, x, target, opts, *, dtype, reduction, axis=None, device_weights=True,
                            grad_output=0.75):
    kwargs = dict(opts, reduction=reduction)
    if axis is not None:
        kwargs["axis"] = axis
    shape = loss_shape(name, x.shape, -1 if axis is None else axis)
    # Multiples of 1/4: exact in every dtype, so host and device see the same grad_output.
    go = ((np.arange(int(np.prod(shape))) % 7 - 3) * 0.25).reshape(shape) if reduction == "none" else grad_output
    want_loss, want_grad = reference(name, "with_grad", x, target, grad_output=go, **kwargs)
    dev_kwargs = {k: (to_cuda(v) if isinstance(v, np.ndarray) and device_weights else v) for k, v in kwargs.items()}
    dev_go = to_cuda(go) if reduction == "none" else go
    loss, grad = call(name, "with_grad", to_cuda(x), to_cuda(target), grad_output=dev_go, **dev_kwargs)
    assert on_device(loss) and on_device(grad)
    assert str(grad.dtype) == f"torch.{TORCH_DTYPES[dtype]}" and tuple(grad.shape) == x.shape
    assert loss.dtype == (torch.float64 if dtype == "float64" else torch.float32)
    assert_close(loss.cpu(), want_loss, LOSS_TOL[dtype], what=f"{name} loss")
    assert_close(grad.cpu(), want_grad, GRAD_TOL[dtype], what=f"{name} grad")


# Short rows (11 classes: a thread per row; classes on axis 1 of (5, 11, 7) for "none"); point-wise arrays of whole 16-byte-vector segments
# (4096 float32 / 8192 16-bit / 2048 float64 elements per block) plus a ragged tail.
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize(("name", "case"), all_cases())
def test_every_loss_and_option_matches_the_reference(name, case, dtype, reduction, rng):
    rowwise = SPECS[name].rowwise
    axis = 1 if rowwise and reduction == "none" else None  # the (outer, C, inner) layout too
    shape = ((5, 11, 7) if axis else (37, 11)) if rowwise else (5, 4001)
    x, target, opts = make_problem(name, shape, rng, case, dtype=dtype, axis=axis or -1)
    check_against_reference(name, x, target, opts, dtype=dtype, reduction=reduction, axis=axis)


# Every row plan: a warp per short row (unaligned at 17 classes, aligned at 128), block per row,
# the realistic vocabularies, rows over 64 KiB (a cluster per row on Hopper), rows longer than
# shared memory (70000 float32 / 150000 bfloat16 > 227 KiB: cluster on Hopper, else split into
# chunks), each with the cluster plan off too.
ROW_PLAN_CASES = [
    ("cross_entropy", {}),
    ("cross_entropy", {"weight": PER_CLASS, "label_smoothing": 0.1, "z_loss": 1e-3, "softcap": 30.0,
                       "ignore_index": 3}),
    ("cross_entropy", {"target": "soft", "label_smoothing": 0.2}),
    ("softmax_focal_loss", {"alpha": PER_CLASS, "gamma": 0.5}),
    ("multiclass_hinge_loss", {"weight": PER_CLASS}),
    ("multiclass_hinge_loss", {"variant": "weston_watkins", "squared": True}),
]


@pytest.mark.parametrize("cluster", ["1", "0"], ids=["cluster-if-hopper", "no-cluster"])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("shape", [(50, 17), (64, 128), (6, 1000), (3, 32000), (2, 70000), (2, 150000)], ids=str)
@pytest.mark.parametrize(("name", "case"), ROW_PLAN_CASES, ids=lambda v: v if isinstance(v, str) else str(v))
def test_every_row_plan(name, case, shape, dtype, cluster, rng, monkeypatch):
    monkeypatch.setenv("FASTLOSS_CUDA_CLUSTER", cluster)
    x, target, opts = make_problem(name, shape, rng, case, dtype=dtype, min_gap=0)
    check_against_reference(name, x, target, opts, dtype=dtype, reduction="mean")


@pytest.mark.parametrize("dtype", ["float32", "float16"])
@pytest.mark.parametrize(("name", "case"), ROW_PLAN_CASES, ids=lambda v: v if isinstance(v, str) else str(v))
def test_class_axis_not_last(name, case, dtype, rng):
    x, target, opts = make_problem(name, (2, 5, 3, 7), rng, case, dtype=dtype, axis=1)
    for reduction in ("none", "sum"):
        check_against_reference(name, x, target, opts, dtype=dtype, reduction=reduction, axis=1)


@pytest.mark.parametrize(("name", "case"), [("cross_entropy", {"weight": PER_CLASS}),
                                           ("multiclass_hinge_loss", {"weight": PER_CLASS}),
                                           ("softmax_focal_loss", {"alpha": PER_CLASS})])
def test_host_class_weights_are_accepted(name, case, rng):
    x, target, opts = make_problem(name, (9, 7), rng, case, dtype="float32")
    check_against_reference(name, x, target, opts, dtype="float32", reduction="mean", device_weights=False)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_in_place_gradient_overwrites_the_input(name, rng):
    shape = (33, 1000) if SPECS[name].rowwise else (4, 5000)
    x, target, opts = make_problem(name, shape, rng, {}, dtype="float32")
    out_of_place = call(name, "grad", to_cuda(x), to_cuda(target), **opts)
    xd = to_cuda(x)
    got = call(name, "grad", xd, to_cuda(target), out=xd, **opts)
    assert got is xd
    assert_close(xd.cpu(), reference(name, "grad", x, target, **opts), GRAD_TOL["float32"])
    assert torch.equal(xd, out_of_place)  # aliasing changes nothing


def test_non_contiguous_input_and_out(rng):
    x, target, _ = make_problem("cross_entropy", (40, 24), rng, {}, dtype="float32")
    xd = to_cuda(np.ascontiguousarray(x.T)).T  # a transposed view
    out = torch.empty((24, 40), device=DEVICE).T
    want = reference("cross_entropy", "grad", x, target)
    got = fastloss.cross_entropy_grad(xd, to_cuda(target), out=out)
    assert got is out
    assert_close(out.cpu(), want, GRAD_TOL["float32"])
    inplace = fastloss.cross_entropy_grad(xd, to_cuda(target), out=xd)
    assert inplace is xd
    assert_close(xd.cpu(), want, GRAD_TOL["float32"])


@pytest.mark.parametrize("name", ["cross_entropy", "multiclass_hinge_loss", "huber_loss", "sigmoid_focal_loss"])
def test_inputs_off_16_byte_alignment(name, rng):
    # Views one element into their buffers: every 16-byte vector path must fall back to scalar code.
    shape = (12, 1000) if SPECS[name].rowwise else (4099,)
    x, target, opts = make_problem(name, shape, rng, {}, dtype="float32")
    xd = torch.empty(x.size + 1, device=DEVICE)[1:].view(shape)
    xd.copy_(to_cuda(x))
    td = to_cuda(target)
    if not SPECS[name].rowwise:
        td = torch.empty(x.size + 1, device=DEVICE)[1:].view(shape).copy_(td)
    out = torch.empty(x.size + 1, device=DEVICE)[1:].view(shape)
    want_loss, want_grad = reference(name, "with_grad", x, target, **opts)
    loss, grad = call(name, "with_grad", xd, td, out=out, **opts)
    assert grad is out
    assert_close(loss.cpu(), want_loss, LOSS_TOL["float32"])
    assert_close(grad.cpu(), want_grad, GRAD_TOL["float32"])


@pytest.mark.parametrize("name", ["cross_entropy", "softmax_focal_loss"])
def test_many_rows_take_the_two_level_ordered_sum(name, rng):
    # Over 65536 rows the "mean" denominator and the loss are summed by two kernels, not one.
    case = {"weight": PER_CLASS, "ignore_index": 1} if name == "cross_entropy" else {"ignore_index": 1}
    x, target, opts = make_problem(name, (100_003, 5), rng, case, dtype="float32")
    check_against_reference(name, x, target, opts, dtype="float32", reduction="mean")


def test_device_scalar_grad_output_equals_a_python_float(rng):
    x, target, _ = make_problem("cross_entropy", (16, 50), rng, {"ignore_index": 2}, dtype="float32")
    a = fastloss.cross_entropy_grad(to_cuda(x), to_cuda(target), grad_output=0.5, ignore_index=2)
    b = fastloss.cross_entropy_grad(to_cuda(x), to_cuda(target), grad_output=torch.tensor(0.5, device=DEVICE),
                                    ignore_index=2)
    assert torch.equal(a, b)


@gpu_only
def test_runs_on_the_callers_current_stream(rng):
    # A side stream first sleeps, then fills x; a kernel on any other stream would read x too early.
    x, target, _ = make_problem("cross_entropy", (256, 4000), rng, {}, dtype="float32")
    want_loss, want_grad = reference("cross_entropy", "with_grad", x, target)
    src, t = to_cuda(x), to_cuda(target)
    xd = torch.zeros_like(src)
    stream = torch.cuda.Stream()
    torch.cuda.synchronize()
    with torch.cuda.stream(stream):
        torch.cuda._sleep(200_000_000)
        xd.copy_(src)
        loss, grad = fastloss.cross_entropy_with_grad(xd, t)
    stream.synchronize()
    assert_close(loss.cpu(), want_loss, LOSS_TOL["float32"])
    assert_close(grad.cpu(), want_grad, GRAD_TOL["float32"])


@pytest.mark.parametrize("shape", [(3000, 5000), (2, 150000)], ids=str)
def test_results_are_bitwise_deterministic(shape, rng):
    # The emulator runs each repetition with another seed, so threads and blocks run in other orders.
    if EMULATED:
        shape = (300, 5000) if shape[0] == 3000 else shape
    x, target, opts = make_problem("cross_entropy", shape, rng, {"weight": PER_CLASS, "ignore_index": 1},
                                   dtype="bfloat16", min_gap=0)
    args = (to_cuda(x), to_cuda(target))
    first = fastloss.cross_entropy_with_grad(*args, weight=to_cuda(opts["weight"]), ignore_index=1)
    try:
        for seed in range(3):
            if EMULATED:
                _cuda_api._cuda.set_emulator_seed(1000 + seed)
            again = fastloss.cross_entropy_with_grad(*args, weight=to_cuda(opts["weight"]), ignore_index=1)
            assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    finally:
        if EMULATED:
            _cuda_api._cuda.set_emulator_seed(0x5EED)


def test_properties_equal_logits_shift_and_all_ignored():
    C = 1000
    x = torch.zeros(8, C, device=DEVICE)
    t = torch.arange(8, device=DEVICE)
    assert abs(fastloss.cross_entropy(x, t).item() - np.log(C)) < 1e-5
    shifted = torch.randn(8, C, device=DEVICE)
    a = fastloss.cross_entropy_with_grad(shifted, t)
    b = fastloss.cross_entropy_with_grad(shifted + 100.0, t)
    assert abs(a[0].item() - b[0].item()) < 1e-4 and torch.allclose(a[1], b[1], atol=1e-6)
    ignored = torch.full((8,), -100, device=DEVICE)
    loss, grad = fastloss.cross_entropy_with_grad(shifted, ignored, reduction="sum")
    assert loss.item() == 0.0 and not grad.any()
    assert torch.isnan(fastloss.cross_entropy(shifted, ignored))  # mean over no rows, as PyTorch


def test_empty_batch():
    x, t = torch.empty(0, 5, device=DEVICE), torch.empty(0, dtype=torch.int64, device=DEVICE)
    assert fastloss.cross_entropy(x, t, reduction="sum").item() == 0.0
    assert torch.isnan(fastloss.cross_entropy(x, t))
    assert fastloss.huber_loss(torch.empty(0, device=DEVICE), torch.empty(0, device=DEVICE), reduction="sum") == 0


def test_mse_gradient_near_the_float32_maximum():
    """Issue 22's W5 on CUDA: 2 e overflowed before the 1/n of 'mean' (the factor 2 now goes into the
    gradient scale, as on the CPU), and grad_output = 0 gave 0 * inf = nan."""
    x, y = to_cuda(np.full(4, 3e38, np.float32)), to_cuda(np.zeros(4, np.float32))
    np.testing.assert_allclose(fastloss.mse_loss_grad(x, y).cpu().numpy(), np.full(4, 2 * 3e38 / 4), rtol=1e-6)
    assert not fastloss.mse_loss_grad(x, y, grad_output=0.0).cpu().numpy().any()
    loss, grad = fastloss.mse_loss_with_grad(x, y, reduction="sum", grad_output=0.5)
    assert loss.item() == np.inf and np.allclose(grad.cpu().numpy(), np.full(4, 3e38), rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("classes", [20, 37], ids=["thread-per-row", "block-per-row"])
def test_softmax_kl_div_small_losses_at_large_temperatures(dtype, classes, rng):
    """Issue 22's W9 on CUDA: losses down to ~1e-12 of their terms (student = teacher + small noise,
    T up to 1000) within the documented 64 rounding steps of the math type, relative, of the float64
    reference (itself checked against mpmath in test_extreme_value_regressions.py)."""
    nd = np.dtype(dtype) if dtype != "bfloat16" else np.dtype(ml_dtypes.bfloat16)
    eps = 2.0**-52 if dtype == "float64" else 2.0**-23
    for T in (1.0, 100.0, 1000.0):
        x = (3.0 * rng.standard_normal((4, classes))).astype(nd)
        noise = np.array([1.0, 0.1, 1e-2, 1e-3])[:, None] * rng.standard_normal((4, classes))
        t = (x.astype(np.float64) + noise).astype(nd)
        want = reference("softmax_kl_div", "loss", x, t, temperature=T, reduction="none")
        for got in (fastloss.softmax_kl_div(to_cuda(x), to_cuda(t), temperature=T, reduction="none"),
                    fastloss.softmax_kl_div_with_grad(to_cuda(x), to_cuda(t), temperature=T, reduction="none")[0]):
            err = np.abs(got.cpu().numpy().astype(np.float64) - want)
            assert np.all(err <= 64 * eps * want), (T, err / want / eps)


@pytest.mark.parametrize("p", [1, 2])
def test_wasserstein_gradient_small_entries_with_many_classes(p, rng):
    """Issue 22's W9 on CUDA: each entry p_j (H_j - B) within 2 eps p_j (|H_j - B| + |B|), the bound in
    wasserstein_loss's docstring (B = sum_k p_k H_k is of order C; each p_k carries its exp's rounding)."""
    C = 4099
    x = (2.0 * rng.standard_normal((2, C))).astype(np.float32)
    t = np.array([5, C - 7])
    got = fastloss.wasserstein_loss_grad(to_cuda(x), to_cuda(t), reduction="sum", p=p).cpu().numpy().astype(np.float64)
    want, bound = wasserstein_grad_and_bound(x, t, p)
    assert np.all(np.abs(got - want) <= bound)


def test_bad_targets_are_reported_without_a_per_call_sync(monkeypatch):
    x = torch.randn(4, 5, device=DEVICE)
    bad = torch.tensor([0, 7, 1, 2], device=DEVICE)
    loss = fastloss.cross_entropy(x, bad, reduction="none")  # no exception here: no synchronisation
    assert torch.isnan(loss[1]) and not torch.isnan(loss[0])
    with pytest.raises(ValueError, match="cross_entropy"):
        _cuda_api.check_errors()
    _cuda_api.check_errors()  # reported once
    fastloss.sigmoid_focal_loss(x, torch.full_like(x, 2.0))
    if not EMULATED:
        torch.cuda.synchronize()
    with pytest.raises(ValueError, match="sigmoid_focal_loss"):
        fastloss.huber_loss(x, x)  # the next call reports it
    monkeypatch.setenv("FASTLOSS_CUDA_SYNC_CHECKS", "1")
    with pytest.raises(ValueError, match=r"target\[1\] = 7 is out of range \[0, 5\)"):
        fastloss.cross_entropy(x, bad)
    with pytest.raises(ValueError, match="is not in"):
        fastloss.hinge_loss(x, torch.full_like(x, 3.0))


def test_mixing_devices_is_a_clear_error():
    x = torch.randn(4, 5, device=DEVICE)
    with pytest.raises(ValueError, match="different devices"):
        fastloss.cross_entropy(x, np.array([0, 1, 2, 3]))
    with pytest.raises(ValueError, match="host array"):
        fastloss.cross_entropy_grad(x, torch.tensor([0, 1, 2, 3], device=DEVICE), out=np.empty((4, 5), np.float32))
    if not EMULATED and torch.cuda.device_count() > 1:
        with pytest.raises(ValueError, match="cuda:1"):
            fastloss.cross_entropy(x, torch.tensor([0, 1, 2, 3], device="cuda:1"))


@gpu_only
def test_cupy_arrays():
    cupy = pytest.importorskip("cupy")
    try:
        cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # noqa: BLE001 - CuPy without a usable driver
        pytest.skip(f"CuPy cannot use the GPU: {exc}")
    rng = np.random.default_rng(0)
    x, target, _ = make_problem("cross_entropy", (20, 300), rng, {}, dtype="float32")
    want_loss, want_grad = reference("cross_entropy", "with_grad", x, target)
    loss, grad = fastloss.cross_entropy_with_grad(cupy.asarray(x), cupy.asarray(target))
    assert isinstance(grad, cupy.ndarray) and isinstance(loss, cupy.ndarray)
    assert_close(loss.get(), want_loss, LOSS_TOL["float32"])
    assert_close(grad.get(), want_grad, GRAD_TOL["float32"])
    y = rng.standard_normal(1000).astype(np.float32)
    e = rng.standard_normal(1000).astype(np.float32)
    assert_close(fastloss.huber_loss(cupy.asarray(y), cupy.asarray(e)).get(),
                 reference("huber_loss", "loss", y, e), LOSS_TOL["float32"])


# ---- every form, *_grad_hess, option examples, empty and non-finite inputs ------------------------


def _tensors(opts: dict) -> dict:
    return {k: (to_cuda(v) if isinstance(v, np.ndarray) else v) for k, v in opts.items()}


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("form", ["loss", "grad"])
@pytest.mark.parametrize("name", sorted(SPECS))
def test_loss_only_and_grad_only_forms(name, form, reduction, rng):
    rowwise = SPECS[name].rowwise
    x, target, opts = make_problem(name, (9, 6, 5) if rowwise else (7, 33), rng, {}, dtype="float32",
                                   axis=1 if rowwise else -1)
    kwargs = dict(opts, reduction=reduction, **({"axis": 1} if rowwise else {}))
    want = reference(name, form, x, target, **kwargs)
    out = torch.full(x.shape, float("nan"), device=DEVICE) if form == "grad" else None
    got = call(name, form, to_cuda(x), to_cuda(target), **kwargs, **({"out": out} if form == "grad" else {}))
    if form == "grad":
        assert got is out
    assert on_device(got)
    assert_close(got.cpu(), want, (GRAD_TOL if form == "grad" else LOSS_TOL)["float32"], what=f"{name} {form}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", [n for n in sorted(SPECS) if SPECS[n].native_grad_hess])
def test_grad_hess_matches_the_reference(name, dtype, rng):
    rowwise = SPECS[name].rowwise
    shape, axis = ((3, 5, 4), 1) if rowwise else ((6, 70), -1)
    tol = {"float64": 1e-9, "float32": 1e-5, "float16": 2e-3, "bfloat16": 1.5e-2}[dtype]
    for case in CASES[name]:
        x, target, opts = make_problem(name, shape, rng, case, dtype=dtype, axis=axis)
        if rowwise:
            opts["axis"] = axis
        w = rng.uniform(0.5, 2.0, loss_shape(name, shape, axis))
        with fastloss.use_backend("numpy"):
            g0, h0 = getattr(fastloss, f"{name}_grad_hess")(x, target, sample_weight=w, **opts)
        g, h = getattr(fastloss, f"{name}_grad_hess")(to_cuda(x), to_cuda(target), sample_weight=to_cuda(w),
                                                       **_tensors(opts))
        assert on_device(g) and on_device(h) and g.shape == x.shape and h.shape == x.shape
        assert_close(g.cpu(), g0, tol, what=f"{name} {case} grad")
        assert_close(h.cpu(), h0, tol, what=f"{name} {case} hess")


@pytest.mark.parametrize("name", [n for n in sorted(SPECS) if not SPECS[n].native_grad_hess])
def test_grad_hess_without_a_kernel_is_refused_on_cuda(name, rng):
    x, target, _ = make_problem(name, (4, 6), rng, {}, dtype="float32")
    with pytest.raises(NotImplementedError, match="no CUDA kernel"):
        getattr(fastloss, f"{name}_grad_hess")(to_cuda(x), to_cuda(target))


def _example(spec, option, classes: int, shape: tuple, rng):
    example = option.spec.example
    if example == "per-class":
        return rng.uniform(0.3, 3.0, classes)
    return example


@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_option_changes_the_kernels_result(name, rng):
    """Issue 19 item 3 on the CUDA kernels: each option set from its default to its spec example
    changes the result (an option a kernel never reads fails here, by name)."""
    spec = SPECS[name]
    rowwise = spec.rowwise
    shape = (16, 7) if rowwise else (6, 7)
    x, target, _ = make_problem(name, shape, rng, {}, dtype="float64", ignore_fraction=0)
    if rowwise and target.dtype.kind in "iu":
        target = target.copy()
        target.reshape(-1)[:3] = 1  # the example ignore_index=1 must have rows to ignore
    base_loss, base_grad = call(name, "with_grad", to_cuda(x), to_cuda(target), reduction="none")
    checked = []
    for o in spec.options:
        if o.spec.example is None:
            continue
        value = _example(spec, o, shape[-1], shape, rng)
        dev_value = to_cuda(value) if isinstance(value, np.ndarray) else value
        loss, grad = call(name, "with_grad", to_cuda(x), to_cuda(target), reduction="none", **{o.name: dev_value})
        same = torch.equal(loss, base_loss) and torch.equal(grad, base_grad)
        assert not same, f"{name}: option {o.name}={value!r} (default {o.default!r}) does not change the CUDA result"
        want_loss, want_grad = reference(name, "with_grad", x, target, reduction="none", **{o.name: value})
        assert_close(loss.cpu(), want_loss, LOSS_TOL["float64"], what=f"{name} {o.name}")
        assert_close(grad.cpu(), want_grad, GRAD_TOL["float64"], what=f"{name} {o.name}")
        checked.append(o.name)
    assert len(checked) == sum(o.spec.example is not None for o in spec.options)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_empty_inputs_every_loss(name):
    rowwise = SPECS[name].rowwise
    shape = (0, 5) if rowwise else (0,)
    x = np.zeros(shape, np.float32)
    if rowwise and not SPECS[name].logit_targets:
        target = np.zeros((0,), np.int64)
    else:
        target = np.zeros(shape, np.float32)
    for reduction in ("none", "mean", "sum"):
        want_loss, _ = reference(name, "with_grad", x, target, reduction=reduction)
        loss, grad = call(name, "with_grad", to_cuda(x), to_cuda(target), reduction=reduction)
        assert tuple(grad.shape) == shape and tuple(loss.shape) == np.shape(want_loss)
        np.testing.assert_array_equal(loss.cpu().numpy(), np.asarray(want_loss, np.float32))
    if SPECS[name].native_grad_hess:
        g, h = getattr(fastloss, f"{name}_grad_hess")(to_cuda(x), to_cuda(target))
        assert tuple(g.shape) == shape and tuple(h.shape) == shape


NON_FINITE = {"nan": np.nan, "+inf": np.inf, "-inf": -np.inf, "max": float(np.finfo(np.float32).max),
              "-max": -float(np.finfo(np.float32).max)}


@pytest.mark.parametrize("value", list(NON_FINITE) + ["all tied at max"])
@pytest.mark.parametrize(("name", "case"), all_cases(), ids=lambda v: v if isinstance(v, str) else str(v))
def test_non_finite_inputs_agree_with_the_cpu_kernels(name, case, value, rng):
    """The fuzzer's adversarial values (tests/fuzz/cases.py) in the input: the CUDA kernels give
    what the CPU kernels give (NaN where they give NaN, the same infinities, close finite values).
    Where the CPU kernel's class of value (NaN, +-inf, finite) differs from the float64 NumPy
    reference's, the CUDA result must have one of the two classes (such elements are CPU findings)."""
    rowwise = SPECS[name].rowwise
    shape = (12, 9) if rowwise else (5, 40)
    x, target, opts = make_problem(name, shape, rng, case, dtype="float32", min_gap=0)
    flat = x.reshape(-1)
    if value == "all tied at max":
        flat[:] = NON_FINITE["max"]
    else:
        flat[rng.choice(flat.size, max(2, flat.size // 7), replace=False)] = NON_FINITE[value]
    for reduction in ("none", "sum"):
        with fastloss.use_backend("native"):
            cpu = call(name, "with_grad", x, target, reduction=reduction, **opts)
        ref = reference(name, "with_grad", x, target, reduction=reduction, **opts)
        got = call(name, "with_grad", to_cuda(x), to_cuda(target), reduction=reduction, **_tensors(opts))
        for g, c, r, what in zip(got, cpu, ref, ("loss", "grad")):
            g, c = g.cpu().numpy().astype(np.float64).reshape(-1), np.asarray(c, np.float64).reshape(-1)
            r = np.asarray(r, np.float64).reshape(-1)
            kind = lambda a: np.where(np.isnan(a), 2, np.where(np.isinf(a), np.sign(a) * 3, 0))
            agree = kind(c) == kind(r)
            where = f"{name} {case} {what} ({reduction}, x has {value})"
            np.testing.assert_array_equal(kind(g)[agree], kind(c)[agree], err_msg=f"{where}: NaN/inf positions")
            assert np.all((kind(g) == kind(c)) | (kind(g) == kind(r))), where
            finite = agree & np.isfinite(c)
            np.testing.assert_allclose(g[finite], c[finite], rtol=1e-4,
                                       atol=1e-5 * (1 + np.abs(c[finite]).max(initial=0)), err_msg=where)
