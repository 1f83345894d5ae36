"""fastloss.torch.linear_softmax_kl_div against float64 torch autograd of the naive formula."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F
from fastloss.torch import linear_softmax_kl_div


def _naive(hs, ws, ht, wt, temperature=1.0, reduction="mean"):
    """softmax-KL of the two heads' logits, PyTorch ops only: sum q (log q - log p) per row."""
    s, t = hs @ ws.T / temperature, ht @ wt.T / temperature
    rows = F.kl_div(F.log_softmax(s, -1), F.log_softmax(t, -1), log_target=True, reduction="none").sum(-1)
    return {"none": rows, "sum": rows.sum(), "mean": rows.mean()}[reduction]


def _inputs(n=37, hs=12, ht=20, v=29, dtype=torch.float32, seed=0, lead=None):
    g = torch.Generator().manual_seed(seed)
    shape = lead if lead is not None else (n,)
    make = lambda *s: (torch.randn(*s, generator=g, dtype=torch.float64) * 0.7).to(dtype)
    return make(*shape, hs), make(v, hs), make(*shape, ht), make(v, ht)


def _f64_reference(hs, ws, ht, wt, **kw):
    ref = [t.detach().double().requires_grad_(i < 2) for i, t in enumerate((hs, ws, ht, wt))]
    loss = _naive(*ref, **kw)
    grads = torch.autograd.grad(loss.sum() if loss.dim() else loss, ref[:2])
    return loss, grads


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("temperature", [1.0, 2.5])
@pytest.mark.parametrize("chunk_size", [None, 8, 37, 64])  # 37 = N; 8 leaves a 5-row last chunk
def test_matches_float64_autograd_fp32(reduction, temperature, chunk_size):
    hs, ws, ht, wt = (t.requires_grad_(i < 2) for i, t in enumerate(_inputs()))
    loss = linear_softmax_kl_div(hs, ws, ht, wt, temperature=temperature, reduction=reduction, chunk_size=chunk_size)
    ref = [t.detach().double().requires_grad_(i < 2) for i, t in enumerate((hs, ws, ht, wt))]
    ref_loss = _naive(*ref, temperature=temperature, reduction=reduction)
    assert loss.dtype == torch.float32 and loss.shape == ref_loss.shape
    torch.testing.assert_close(loss.double(), ref_loss, rtol=1e-5, atol=1e-6)
    grad_output = torch.linspace(0.5, 2.0, loss.numel()).reshape(loss.shape)  # per-row weights for "none"
    ref_gh, ref_gw = torch.autograd.grad((ref_loss * grad_output.double()).sum(), ref[:2])
    (loss * grad_output).sum().backward()
    for got, want in ((hs.grad, ref_gh), (ws.grad, ref_gw)):  # fp32 sums of N rows: atol on the scale
        torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-6 * want.abs().max().item())


def test_teacher_gets_no_gradient_and_leading_dims_are_kept():
    hs, ws, ht, wt = _inputs(lead=(3, 5))
    for t in (hs, ws, ht, wt):
        t.requires_grad_(True)
    rows = linear_softmax_kl_div(hs, ws, ht, wt, reduction="none", chunk_size=4)
    assert rows.shape == (3, 5)
    rows.sum().backward()
    assert ht.grad is None and wt.grad is None
    assert hs.grad.shape == hs.shape and ws.grad.shape == ws.shape


def test_gradcheck_float64():
    hs, ws, ht, wt = _inputs(n=7, hs=4, ht=5, v=6, dtype=torch.float64, seed=2)
    hs.requires_grad_(True)
    ws.requires_grad_(True)
    for reduction in ("mean", "none"):
        def head(a, b, reduction=reduction):
            return linear_softmax_kl_div(a, b, ht, wt, temperature=1.7, reduction=reduction, chunk_size=3)

        assert torch.autograd.gradcheck(head, (hs, ws))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_16bit_inputs_fp32_loss_within_16bit_tolerance(dtype):
    hs, ws, ht, wt = _inputs(n=50, dtype=dtype)
    hs.requires_grad_(True)
    ws.requires_grad_(True)
    loss = linear_softmax_kl_div(hs, ws, ht, wt, temperature=2.0, chunk_size=16)
    ref_loss, (ref_gh, ref_gw) = _f64_reference(hs, ws, ht, wt, temperature=2.0)
    assert loss.dtype == torch.float32
    loss.backward()
    assert hs.grad.dtype == dtype and ws.grad.dtype == dtype
    # the logits are rounded to 16 bits once by the matmul: a few ulps of a bf16 logit
    tol = 3e-2 if dtype == torch.bfloat16 else 5e-3
    torch.testing.assert_close(loss.double(), ref_loss, rtol=tol, atol=tol * 0.1)
    torch.testing.assert_close(hs.grad.double(), ref_gh, rtol=tol, atol=tol * ref_gh.abs().max().item())
    torch.testing.assert_close(ws.grad.double(), ref_gw, rtol=tol, atol=tol * ref_gw.abs().max().item())


def test_no_grad_and_empty_batch():
    hs, ws, ht, wt = _inputs()
    with torch.no_grad():
        loss = linear_softmax_kl_div(hs, ws, ht, wt)
    torch.testing.assert_close(loss.double(), _naive(*(t.double() for t in (hs, ws, ht, wt))), rtol=1e-5, atol=0)
    empty = [t[:0] if i in (0, 2) else t for i, t in enumerate((hs, ws, ht, wt))]
    assert linear_softmax_kl_div(*empty, reduction="sum").item() == 0.0
    assert torch.isnan(linear_softmax_kl_div(*empty))


def test_bad_input_names_the_argument():
    hs, ws, ht, wt = _inputs()
    with pytest.raises(ValueError, match="reduction"):
        linear_softmax_kl_div(hs, ws, ht, wt, reduction="batchmean")
    with pytest.raises(ValueError, match="temperature"):
        linear_softmax_kl_div(hs, ws, ht, wt, temperature=0.0)
    with pytest.raises(ValueError, match="chunk_size"):
        linear_softmax_kl_div(hs, ws, ht, wt, chunk_size=0)
    with pytest.raises(ValueError, match="same vocabulary"):
        linear_softmax_kl_div(hs, ws, ht, wt[:-1])
    with pytest.raises(ValueError, match="teacher_hidden"):
        linear_softmax_kl_div(hs, ws, ht[:-1], wt)
    with pytest.raises(ValueError, match="student_hidden must be"):
        linear_softmax_kl_div(hs[:, :-1], ws, ht, wt)
    with pytest.raises(TypeError, match="teacher_weight dtype"):
        linear_softmax_kl_div(hs, ws, ht, wt.double())
    with pytest.raises(TypeError, match="student_hidden must be a floating"):
        linear_softmax_kl_div(hs.long(), ws, ht, wt)
