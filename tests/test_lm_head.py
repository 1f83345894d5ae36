"""fastloss.torch.linear_cross_entropy (and the NumPy forms) against the unfused PyTorch head.

Sizes: N = 23 rows so that chunk sizes 1, 7 and 30 cover a chunk of one row, chunks that do not
divide N, and one chunk larger than N; V = 37 (odd, not a SIMD multiple) and H = 8. A realistic
vocabulary is in the bf16 test (V = 32000 over few rows) and in benchmarks/lm_head.py.
"""

from __future__ import annotations

import inspect

import fastloss
import fastloss.torch as flt
import ml_dtypes
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from lm_head_reference import cross_entropy_reference, linear_cross_entropy_reference

N, H, V = 23, 8, 37

OPTIONS = {
    "plain": {},
    "weight": {"weight": "w"},
    "ignore": {"ignore_index": 3},
    "smoothing": {"label_smoothing": 0.1},
    "z_loss": {"z_loss": 1e-2},
    "softcap": {"softcap": 2.5},
    "all": {"weight": "w", "ignore_index": 3, "label_smoothing": 0.2, "z_loss": 1e-2, "softcap": 4.0},
}


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """These matrices are tiny: with 2 threads on a loaded 2-core machine OpenMP's spinning costs
    25x the work (measured); one thread keeps the module fast, and the result is thread-independent."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _problem(dtype=torch.float64, n=N, seed=0, bias=True):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, H, generator=g, dtype=torch.float64).to(dtype).requires_grad_()
    w = (torch.randn(V, H, generator=g, dtype=torch.float64) / 2).to(dtype).requires_grad_()
    b = torch.randn(V, generator=g, dtype=torch.float64).to(dtype).requires_grad_() if bias else None
    t = torch.randint(0, V, (n,), generator=g)
    t[::5] = 3  # some rows hit class 3, ignored where ignore_index=3
    t[1] = -100  # ignored under the default ignore_index
    cw = torch.rand(V, generator=g, dtype=torch.float64) + 0.5
    return x, w, b, t, cw


def _opts(name, cw, t):
    """The named options, and the target with its -100 rows moved to the option's ignore_index."""
    opts = {k: (cw if v == "w" else v) for k, v in OPTIONS[name].items()}
    return opts, torch.where(t == -100, opts.get("ignore_index", -100), t)


def _grads(loss, tensors, grad_output):
    return torch.autograd.grad(loss, [t for t in tensors if t is not None], grad_output)


@pytest.mark.parametrize("chunk_size", [None, 1, 7, 30])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("option", list(OPTIONS))
def test_matches_unfused_float64(option, reduction, bias, chunk_size):
    x, w, b, t, cw = _problem(bias=bias)
    opts, t = _opts(option, cw, t)
    got = flt.linear_cross_entropy(x, w, t, linear_bias=b, reduction=reduction, chunk_size=chunk_size, **opts)
    want = linear_cross_entropy_reference(x, w, t, linear_bias=b, reduction=reduction, **opts)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    # a grad_output other than 1 (per row for "none") checks the scaling of the saved gradients
    grad_output = (
        torch.linspace(-1, 2, N, dtype=torch.float64)
        if reduction == "none"
        else torch.tensor(2.5, dtype=torch.float64)
    )
    for g_got, g_want in zip(_grads(got, (x, w, b), grad_output), _grads(want, (x, w, b), grad_output)):
        torch.testing.assert_close(g_got, g_want, rtol=1e-10, atol=1e-12)


def test_pytorch_default_ignore_index_none_and_3d_input():
    x, w, b, t, _ = _problem()
    x3, t3 = x.detach().reshape(1, N, H).requires_grad_(), t.reshape(1, N)
    got = flt.linear_cross_entropy(x3, w, t3, linear_bias=b, ignore_index=None, chunk_size=5)
    want = F.cross_entropy(F.linear(x3, w, b).reshape(N, V), t)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=0)
    for a, c in zip(torch.autograd.grad(got, (x3, w, b)), torch.autograd.grad(want, (x3, w, b))):
        torch.testing.assert_close(a, c, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_probability_targets(reduction):
    x, w, b, _, _ = _problem()
    q = torch.softmax(torch.randn(N, V, dtype=torch.float64), dim=-1)
    got = flt.linear_cross_entropy(
        x, w, q, linear_bias=b, reduction=reduction, label_smoothing=0.1, chunk_size=6
    )
    want = F.cross_entropy(F.linear(x, w, b), q, reduction=reduction, label_smoothing=0.1)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-13)
    go = torch.ones_like(want)
    for a, c in zip(torch.autograd.grad(got, (x, w, b), go), torch.autograd.grad(want, (x, w, b), go)):
        torch.testing.assert_close(a, c, rtol=1e-10, atol=1e-12)


def test_all_rows_ignored_as_pytorch():
    x, w, b, t, _ = _problem()
    t = torch.full_like(t, -100)
    got = flt.linear_cross_entropy(x, w, t, linear_bias=b, chunk_size=7)
    want = F.cross_entropy(F.linear(x, w, b), t)
    assert torch.isnan(got) and torch.isnan(want)
    for a, c in zip(torch.autograd.grad(got, (x, w, b)), torch.autograd.grad(want, (x, w, b))):
        torch.testing.assert_close(a, c, equal_nan=True)


@pytest.mark.parametrize(
    "dtype, rtol", [(torch.float32, 2e-5), (torch.bfloat16, 3e-2), (torch.float16, 5e-3)]
)
def test_low_precision_against_float64(dtype, rtol):
    """Realistic vocabulary: 32000 classes over 40 rows in chunks of 16 (the last one partial)."""
    g = torch.Generator().manual_seed(1)
    n, h, v = 40, 64, 32000
    x64, w64 = (
        torch.randn(n, h, generator=g, dtype=torch.float64),
        torch.randn(v, h, generator=g, dtype=torch.float64) / 8,
    )
    t = torch.randint(0, v, (n,), generator=g)
    x, w = x64.to(dtype).requires_grad_(), w64.to(dtype).requires_grad_()
    loss = flt.linear_cross_entropy(x, w, t, chunk_size=16, z_loss=1e-4, label_smoothing=0.1)
    loss.backward()
    # the reference sees the same rounded inputs, so only the head's own arithmetic differs
    xr, wr = x.detach().double().requires_grad_(), w.detach().double().requires_grad_()
    want = linear_cross_entropy_reference(xr, wr, t, z_loss=1e-4, label_smoothing=0.1)
    want.backward()
    assert loss.dtype == dtype and x.grad.dtype == dtype and w.grad.dtype == dtype
    torch.testing.assert_close(loss.double(), want, rtol=rtol, atol=0)
    for got, ref in ((x.grad, xr.grad), (w.grad, wr.grad)):
        err = (got.double() - ref).norm() / ref.norm()
        assert err < rtol, err


@pytest.mark.parametrize("dtype, bound", [(torch.bfloat16, 5e-3), (torch.float16, 8e-4)])
def test_16bit_weight_gradient_is_summed_across_chunks_in_fp32(dtype, bound):
    """128 chunks: each chunk's 16-bit product is rounded once, their sum is fp32. A 16-bit running sum
    across the chunks measured 1.9e-2 (bf16) and 1.7e-3 (fp16) here; the fp32 sum 2.2e-3 and 3.2e-4,
    about one final rounding to the dtype."""
    g = torch.Generator().manual_seed(2)
    n, h, v = 2048, 32, 3000
    x64 = torch.randn(n, h, generator=g, dtype=torch.float64)
    w64 = torch.randn(v, h, generator=g, dtype=torch.float64) / 4
    t = torch.randint(0, v, (n,), generator=g)
    x, w = x64.to(dtype).requires_grad_(), w64.to(dtype).requires_grad_()
    flt.linear_cross_entropy(x, w, t, chunk_size=16, reduction="sum").backward()
    wr = w.detach().double().requires_grad_()
    linear_cross_entropy_reference(x.detach().double(), wr, t, reduction="sum").backward()
    assert w.grad.dtype == dtype and w.grad.is_contiguous()
    assert float((w.grad.double() - wr.grad).norm() / wr.grad.norm()) < bound


def test_gradcheck_float64():
    x, w, b, t, cw = _problem(n=6)
    opts = {"weight": cw, "label_smoothing": 0.1, "z_loss": 0.05, "softcap": 3.0, "chunk_size": 4}
    for reduction in ("mean", "none"):
        assert torch.autograd.gradcheck(
            lambda x, w, b, r=reduction: flt.linear_cross_entropy(
                x, w, t, linear_bias=b, reduction=r, **opts
            ),
            (x, w, b),
        )


def test_torch_compile_fullgraph_without_graph_breaks():
    x, w, b, t, cw = _problem()
    opts = {"weight": cw, "label_smoothing": 0.1, "z_loss": 1e-3, "softcap": 5.0}

    def step(x, w, b):
        return flt.linear_cross_entropy(x, w, t, linear_bias=b, chunk_size=7, **opts) * 3.0

    compiled = torch.compile(step, fullgraph=True, backend="aot_eager")
    got = compiled(x, w, b)
    want = linear_cross_entropy_reference(x, w, t, linear_bias=b, **opts) * 3.0
    torch.testing.assert_close(got, want, rtol=1e-12, atol=0)
    for a, c in zip(torch.autograd.grad(got, (x, w, b)), torch.autograd.grad(want, (x, w, b))):
        torch.testing.assert_close(a, c, rtol=1e-10, atol=1e-12)


def test_module_matches_pytorchs_linear_cross_entropy_loss():
    torch.manual_seed(0)
    ours = flt.LinearCrossEntropyLoss(H, V, bias=True, dtype=torch.float64, label_smoothing=0.1, chunk_size=5)
    theirs = torch.nn.LinearCrossEntropyLoss(H, V, bias=True, dtype=torch.float64, label_smoothing=0.1)
    theirs.load_state_dict(ours.state_dict())
    x, _, _, t, _ = _problem()
    torch.testing.assert_close(ours(x, t), theirs(x, t), rtol=1e-12, atol=0)
    ours(x, t).backward()
    theirs(x, t).backward()
    torch.testing.assert_close(ours.linear.weight.grad, theirs.linear.weight.grad, rtol=1e-10, atol=1e-12)


def test_signature_extends_pytorchs():
    theirs = inspect.signature(F.linear_cross_entropy).parameters
    ours = inspect.signature(flt.linear_cross_entropy).parameters
    assert list(ours)[: len(theirs)] == list(theirs)
    assert {"z_loss", "softcap", "chunk_size", "process_group"} <= set(ours)


def test_only_the_needed_gradients():
    x, w, _b, t, _ = _problem()
    frozen = w.detach()
    loss = flt.linear_cross_entropy(x, frozen, t)
    loss.backward()
    want = torch.autograd.grad(F.cross_entropy(F.linear(x, frozen), t), x)[0]
    torch.testing.assert_close(x.grad, want, rtol=1e-10, atol=1e-12)
    with torch.no_grad():
        assert not flt.linear_cross_entropy(x, w, t).requires_grad


def test_bad_input_is_named():
    x, w, b, t, _ = _problem()
    with pytest.raises(ValueError, match="hidden size 8 but linear_weight has 7"):
        flt.linear_cross_entropy(x, w[:, :7], t)
    bad = t.clone()
    bad[4] = V
    with pytest.raises(ValueError, match=r"target\[4\] = 37 is out of range \[0, 37\)"):
        flt.linear_cross_entropy(x, w, bad, chunk_size=2)
    with pytest.raises(ValueError, match="reduction"):
        flt.linear_cross_entropy(x, w, t, reduction="avg")
    with pytest.raises(ValueError, match="chunk_size"):
        flt.linear_cross_entropy(x, w, t, chunk_size=0)
    with pytest.raises(ValueError, match="target must have shape"):
        flt.linear_cross_entropy(x, w, t[:-1])
    with pytest.raises(TypeError, match="dtype"):
        flt.linear_cross_entropy(x, w.float(), t)
    with pytest.raises(ValueError, match="linear_bias"):
        flt.linear_cross_entropy(x, w, t, linear_bias=b[:-1])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_tensors_match_cpu():
    x, w, b, t, cw = _problem(dtype=torch.float32)
    opts = {"weight": cw.float(), "label_smoothing": 0.1, "z_loss": 1e-3, "chunk_size": 7}
    want = linear_cross_entropy_reference(x, w, t, linear_bias=b, **opts)
    want_grads = torch.autograd.grad(want, (x, w, b))
    xc, wc, bc = (a.detach().cuda().requires_grad_() for a in (x, w, b))
    opts["weight"] = opts["weight"].cuda()
    got = flt.linear_cross_entropy(xc, wc, t.cuda(), linear_bias=bc, **opts)
    torch.testing.assert_close(got.cpu(), want, rtol=1e-5, atol=1e-6)
    for a, c in zip(torch.autograd.grad(got, (xc, wc, bc)), want_grads):
        torch.testing.assert_close(a.cpu(), c, rtol=1e-4, atol=1e-6)


# ---- the NumPy forms ---------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_numpy_forms_match_torch_float64(reduction):
    x, w, b, t, cw = _problem()
    opts = {"ignore_index": 3, "label_smoothing": 0.1, "z_loss": 1e-2, "softcap": 4.0}
    t = torch.where(t == -100, 3, t)
    go = np.linspace(-1, 2, N) if reduction == "none" else 1.5
    loss, gx, gw, gb = fastloss.linear_cross_entropy_with_grad(
        x.detach().numpy(),
        w.detach().numpy(),
        t.numpy(),
        bias=b.detach().numpy(),
        class_weight=cw.numpy(),
        reduction=reduction,
        grad_output=go,
        chunk_size=7,
        **opts,
    )
    want = linear_cross_entropy_reference(x, w, t, linear_bias=b, weight=cw, reduction=reduction, **opts)
    np.testing.assert_allclose(loss, want.detach().numpy(), rtol=1e-12, atol=1e-13)
    for got, ref in zip(
        (gx, gw, gb), torch.autograd.grad(want, (x, w, b), torch.as_tensor(go, dtype=torch.float64))
    ):
        np.testing.assert_allclose(got, ref.numpy(), rtol=1e-10, atol=1e-12)
    only_loss = fastloss.linear_cross_entropy(
        x.detach().numpy(),
        w.detach().numpy(),
        t.numpy(),
        bias=b.detach().numpy(),
        class_weight=cw.numpy(),
        reduction=reduction,
        **opts,
    )
    np.testing.assert_allclose(only_loss, loss, rtol=1e-13, atol=0)


def test_numpy_forms_bfloat16_and_errors():
    x, w, _, t, _ = _problem()
    xb, wb = x.detach().numpy().astype(ml_dtypes.bfloat16), w.detach().numpy().astype(ml_dtypes.bfloat16)
    loss, gx, gw, gb = fastloss.linear_cross_entropy_with_grad(xb, wb, t.numpy())
    assert gx.dtype == ml_dtypes.bfloat16 and gw.dtype == ml_dtypes.bfloat16 and gb is None
    xr = torch.tensor(xb.astype(np.float64), requires_grad=True)
    wr = torch.tensor(wb.astype(np.float64), requires_grad=True)
    want = F.cross_entropy(F.linear(xr, wr), t)
    want.backward()
    assert abs(float(loss) - want.item()) < 1e-5 * want.item()
    np.testing.assert_allclose(gw.astype(np.float64), wr.grad.numpy(), rtol=2e-2, atol=1e-4)
    with pytest.raises(ValueError, match="same H"):
        fastloss.linear_cross_entropy(x.detach().numpy(), w.detach().numpy()[:, :3], t.numpy())
    with pytest.raises(ValueError, match=r"target\[1\] = -100 is out of range"):
        fastloss.linear_cross_entropy(x.detach().numpy(), w.detach().numpy(), t.numpy(), ignore_index=0)


def test_reference_agrees_with_pytorch_where_pytorch_has_the_options():
    x, w, b, t, cw = _problem()
    logits = F.linear(x, w, b)
    for reduction in ("mean", "sum", "none"):
        torch.testing.assert_close(
            cross_entropy_reference(logits, t, weight=cw, label_smoothing=0.2, reduction=reduction),
            F.cross_entropy(logits, t, weight=cw, label_smoothing=0.2, reduction=reduction),
            rtol=1e-13,
            atol=1e-14,
        )
