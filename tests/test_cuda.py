"""The core suite on CUDA inputs: every loss and option against the NumPy float64 reference, every
dtype, form, layout and reduction, every kernel plan (warp per row, block per row, thread-block
cluster, split long rows, class axis not last, point-wise with and without 16-byte alignment),
``*_grad_hess``, ``out=`` and in-place gradients, ``grad_output``, device-side error reporting,
empty inputs and determinism.

It runs on the real ``fastloss._cuda`` with CUDA torch tensors where there is a GPU, and on every
machine against the test build's emulated module (``FASTLOSS_CUDA_EMULATOR=ON``: the same kernels
compiled for the host and executed under csrc/cuda/emu's model of the CUDA execution), with CPU
tensors standing in for CUDA tensors (tests/cuda_device.py). Skipped as a whole, with the reason,
where neither is available. A few tests need a real GPU (streams, CuPy) and say so.
"""

from __future__ import annotations

import fastloss
import numpy as np
import pytest
from cuda_device import emulated, route_cpu_tensors_to_cuda
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


# Short rows (11 classes: a thread per row); point-wise arrays of whole 16-byte-vector segments
# (4096 float32 / 8192 16-bit / 2048 float64 elements per block) plus a ragged tail.
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize(("name", "case"), all_cases())
def test_every_loss_and_option_matches_the_reference(name, case, dtype, reduction, rng):
    shape = (37, 11) if SPECS[name].rowwise else (5, 4001)
    x, target, opts = make_problem(name, shape, rng, case, dtype=dtype)
    check_against_reference(name, x, target, opts, dtype=dtype, reduction=reduction)


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
