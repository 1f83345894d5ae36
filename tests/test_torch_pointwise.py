"""fastloss.torch drop-ins of the seeds' other point-wise losses against torch.nn.functional in float64:
values, gradients (input and, for the difference losses, target), signatures, broadcasting."""

from __future__ import annotations

import inspect
import warnings

import fastloss.torch as ft
import pytest
import torch
import torch.nn.functional as F

REDUCTIONS = ("none", "mean", "sum")
PAIRS = [
    (ft.mse_loss, F.mse_loss), (ft.l1_loss, F.l1_loss),
    (ft.binary_cross_entropy_with_logits, F.binary_cross_entropy_with_logits),
    (ft.kl_div, F.kl_div), (ft.margin_ranking_loss, F.margin_ranking_loss),
    (ft.MSELoss, torch.nn.MSELoss), (ft.L1Loss, torch.nn.L1Loss), (ft.BCEWithLogitsLoss, torch.nn.BCEWithLogitsLoss),
    (ft.KLDivLoss, torch.nn.KLDivLoss), (ft.MarginRankingLoss, torch.nn.MarginRankingLoss),
]


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def grads(fn, *tensors, **kwargs):
    """(loss, grads of every tensor that requires grad) for a random grad_output."""
    leaves = [t.detach().clone().requires_grad_(t.requires_grad) for t in tensors]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # kl_div's "mean" warning, from both
        loss = fn(*leaves, **kwargs)
    g = torch.randn(loss.shape, dtype=loss.dtype, generator=_gen(3))
    wanted = [t for t in leaves if t.requires_grad]
    return [loss.detach(), *torch.autograd.grad(loss, wanted, g)]


def assert_same(ours, theirs, *tensors, **kwargs):
    for a, b in zip(grads(ours, *tensors, **kwargs), grads(theirs, *tensors, **kwargs)):
        assert a.shape == b.shape and a.dtype == b.dtype
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12, equal_nan=True)


@pytest.mark.parametrize("ours, theirs", PAIRS, ids=lambda f: f.__name__)
def test_signatures_and_defaults_are_pytorchs(ours, theirs):
    def positional(fn):
        return [(p.name, p.default) for p in inspect.signature(fn).parameters.values() if p.kind is not p.KEYWORD_ONLY]

    assert positional(ours) == positional(theirs)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", ["mse_loss", "l1_loss"])
@pytest.mark.parametrize("weighted", [False, True])
def test_difference_losses_match_pytorch_with_target_gradient(name, reduction, weighted):
    x = torch.randn(6, 5, dtype=torch.float64, generator=_gen(0), requires_grad=True)
    y = torch.randn(6, 5, dtype=torch.float64, generator=_gen(1), requires_grad=True)
    kwargs = {"reduction": reduction}
    if weighted:
        kwargs["weight"] = torch.rand(6, 5, dtype=torch.float64, generator=_gen(2))
    assert_same(getattr(ft, name), getattr(F, name), x, y, **kwargs)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_log_cosh_matches_its_formula_in_torch(reduction):
    x = torch.randn(7, 3, dtype=torch.float64, generator=_gen(0), requires_grad=True) * 4
    y = torch.randn(7, 3, dtype=torch.float64, generator=_gen(1), requires_grad=True)

    def theirs(a, b, reduction):
        loss = torch.log(torch.cosh(a - b))
        return {"none": loss, "mean": loss.mean(), "sum": loss.sum()}[reduction]

    assert_same(ft.log_cosh_loss, theirs, x, y, reduction=reduction)
    module = ft.LogCoshLoss(reduction=reduction)
    torch.testing.assert_close(module(x, y), theirs(x, y, reduction), rtol=1e-12, atol=1e-12)


SHAPES = [None, (6, 5), (5,), (6, 1), (1, 5), (1,)]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weight_shape", SHAPES, ids=str)
@pytest.mark.parametrize("pos_weight_shape", SHAPES, ids=str)
def test_bce_with_logits_broadcasts_weights_as_pytorch(reduction, weight_shape, pos_weight_shape):
    x = torch.randn(6, 5, dtype=torch.float64, generator=_gen(0), requires_grad=True) * 3
    t = torch.rand(6, 5, dtype=torch.float64, generator=_gen(1))
    w = None if weight_shape is None else torch.rand(weight_shape, dtype=torch.float64, generator=_gen(2))
    pw = None if pos_weight_shape is None else torch.rand(pos_weight_shape, dtype=torch.float64, generator=_gen(3)) + 0.5
    assert_same(ft.binary_cross_entropy_with_logits, F.binary_cross_entropy_with_logits, x, t,
                weight=w, reduction=reduction, pos_weight=pw)
    assert_same(ft.BCEWithLogitsLoss(w, reduction=reduction, pos_weight=pw),
                torch.nn.BCEWithLogitsLoss(w, reduction=reduction, pos_weight=pw), x, t)


def test_bce_module_holds_pytorchs_buffers_and_rejects_bad_shapes():
    w, pw = torch.rand(5), torch.rand(5)
    ours, theirs = ft.BCEWithLogitsLoss(w, pos_weight=pw), torch.nn.BCEWithLogitsLoss(w, pos_weight=pw)
    assert ours.state_dict().keys() == theirs.state_dict().keys()
    with pytest.raises(ValueError, match=r"weight of shape \(3, 6, 5\) does not broadcast to the input's shape"):
        ft.binary_cross_entropy_with_logits(torch.zeros(6, 5), torch.zeros(6, 5), torch.ones(3, 6, 5))
    with pytest.raises(ValueError, match=r"target\[0, 0\] = 2.0 is not in \[0.0, 1.0\]"):
        ft.binary_cross_entropy_with_logits(torch.zeros(6, 5), torch.full((6, 5), 2.0))


@pytest.mark.parametrize("reduction", ["batchmean", *REDUCTIONS])
@pytest.mark.parametrize("log_target", [False, True])
@pytest.mark.parametrize("shape", [(6, 5), (2, 3, 4), (5,)], ids=str)
def test_kl_div_matches_pytorch(reduction, log_target, shape):
    x = torch.log_softmax(torch.randn(shape, dtype=torch.float64, generator=_gen(0)), -1).requires_grad_()
    q = torch.softmax(torch.randn(shape, dtype=torch.float64, generator=_gen(1)), -1)
    q = torch.where(torch.rand(shape, generator=_gen(2), dtype=torch.float64) < 0.2, 0.0, q)  # 0 log 0 = 0
    t = q.log() if log_target else q
    assert_same(ft.kl_div, F.kl_div, x, t, reduction=reduction, log_target=log_target)
    assert_same(ft.KLDivLoss(reduction=reduction, log_target=log_target),
                torch.nn.KLDivLoss(reduction=reduction, log_target=log_target), x, t)


def test_kl_div_mean_warns_as_pytorch():
    with pytest.warns(UserWarning, match="batchmean"):
        ft.kl_div(torch.zeros(2, 3), torch.full((2, 3), 0.5))
    with pytest.raises(ValueError, match=r"kl_div: target\[0, 1\] = -0.5 is not in \[0.0, inf\]"):
        ft.kl_div(torch.zeros(2, 3), torch.tensor([[0.5, -0.5, 0.0], [1.0, 0.0, 0.0]]), reduction="sum")


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [0.0, 0.5])
def test_margin_ranking_loss_matches_pytorch_including_ties(reduction, margin):
    a = torch.randn(9, dtype=torch.float64, generator=_gen(0), requires_grad=True)
    b = torch.randn(9, dtype=torch.float64, generator=_gen(1), requires_grad=True)
    with torch.no_grad():
        b[0] = a[0]  # a tie: with margin 0, PyTorch's clamp_min passes the gradient there
        b[1] = a[1] - margin  # y = -1 at h = 0 exactly as well
    y = torch.tensor([1.0, -1, 1, 1, -1, 1, -1, 1, -1], dtype=torch.float64)
    assert_same(ft.margin_ranking_loss, F.margin_ranking_loss, a, b, y, margin=margin, reduction=reduction)
    assert_same(ft.MarginRankingLoss(margin, reduction=reduction),
                torch.nn.MarginRankingLoss(margin, reduction=reduction), a, b, y)
    # Targets other than +-1 (PyTorch takes any value) and broadcasting inputs.
    assert_same(ft.margin_ranking_loss, F.margin_ranking_loss, a, b, y * 0.5, margin=margin, reduction=reduction)
    a2 = torch.randn(4, 1, dtype=torch.float64, generator=_gen(4), requires_grad=True)
    b2 = torch.randn(1, 3, dtype=torch.float64, generator=_gen(5), requires_grad=True)
    y2 = torch.ones(4, 3, dtype=torch.float64)
    assert_same(ft.margin_ranking_loss, F.margin_ranking_loss, a2, b2, y2, margin=margin, reduction=reduction)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_loss_dtype_follows_pytorch(dtype):
    x = torch.randn(4, 3, generator=_gen(0)).to(dtype)
    t = torch.rand(4, 3, generator=_gen(1)).to(dtype)
    for ours, theirs in ((ft.mse_loss, F.mse_loss), (ft.binary_cross_entropy_with_logits,
                                                       F.binary_cross_entropy_with_logits)):
        assert ours(x, t).dtype == theirs(x, t).dtype == dtype


def test_gradcheck_float64():
    x = torch.randn(3, 4, dtype=torch.float64, generator=_gen(0), requires_grad=True)
    t = torch.rand(3, 4, dtype=torch.float64, generator=_gen(1))
    pw = torch.rand(4, dtype=torch.float64, generator=_gen(2)) + 0.5
    assert torch.autograd.gradcheck(lambda a: ft.binary_cross_entropy_with_logits(a, t, pos_weight=pw), (x,))
    assert torch.autograd.gradcheck(lambda a: ft.log_cosh_loss(a, t, reduction="sum"), (x,))
    assert torch.autograd.gradcheck(lambda a: ft.kl_div(a, t, reduction="batchmean"), (x,))
