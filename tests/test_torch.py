"""fastloss.torch against torch.nn.functional in float64: values, gradients, conventions, errors.

Where PyTorch has the loss, F.<loss> is the oracle; the other losses use tests/torch_reference.py
(written with torch ops, differentiated by torch.autograd).
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys

import fastloss.torch as ft
import pytest
import torch
import torch.nn.functional as F
from fastloss.torch import _ops
from torch_reference import REFERENCES

REDUCTIONS = ("none", "mean", "sum")


def _loss_and_grad(fn, x, target, grad_output=None, **kwargs):
    x = x.detach().clone().requires_grad_()
    loss = fn(x, target, **kwargs)
    g = (
        torch.randn(loss.shape, dtype=loss.dtype, generator=torch.Generator().manual_seed(1))
        if grad_output is None
        else grad_output
    )
    (grad,) = torch.autograd.grad(loss, x, g)
    return loss.detach(), grad


def assert_same_as(ours, theirs, x, target, **kwargs):
    loss, grad = _loss_and_grad(ours, x, target, **kwargs)
    ref_loss, ref_grad = _loss_and_grad(theirs, x, target, **kwargs)
    assert loss.dtype == ref_loss.dtype and loss.shape == ref_loss.shape
    torch.testing.assert_close(loss, ref_loss, rtol=1e-12, atol=1e-12, equal_nan=True)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-12, atol=1e-12, equal_nan=True)


def _logits(*shape, dtype=torch.float64):
    return torch.randn(*shape, dtype=dtype, generator=torch.Generator().manual_seed(sum(shape))) * 3


def _classes(shape, C, seed=0):
    return torch.randint(0, C, shape, generator=torch.Generator().manual_seed(seed))


# (N, C), K-dim (N, C, d1, d2) and unbatched (C,): the three layouts PyTorch accepts.
CE_LAYOUTS = [((7, 5), (7,)), ((3, 4, 2, 5), (3, 2, 5)), ((6,), ())]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shapes", CE_LAYOUTS, ids=["NC", "NCd1d2", "C"])
@pytest.mark.parametrize(
    "opts",
    [
        {},
        {"label_smoothing": 0.2},
        {"ignore_index": 1},
        {"weight": "w"},
        {"weight": "w", "label_smoothing": 0.1, "ignore_index": 2},
    ],
    ids=["plain", "smoothing", "ignore", "weight", "all"],
)
def test_cross_entropy_matches_pytorch(reduction, shapes, opts):
    xshape, tshape = shapes
    C = xshape[0] if len(xshape) == 1 else xshape[1]
    x, t = _logits(*xshape), _classes(tshape, C)
    if opts.get("weight") == "w":
        opts = {**opts, "weight": torch.rand(C, dtype=torch.float64) + 0.5}
    assert_same_as(ft.cross_entropy, F.cross_entropy, x, t, reduction=reduction, **opts)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_soft_targets_match_pytorch(reduction):
    x = _logits(5, 4, 3)
    y = torch.softmax(_logits(5, 4, 3) / 2, dim=1)
    assert_same_as(ft.cross_entropy, F.cross_entropy, x, y, reduction=reduction, label_smoothing=0.1)


def test_cross_entropy_extras_match_reference():
    x, t = _logits(8, 6, 3), _classes((8, 3), 6)

    def reference(x, t, **kw):
        return REFERENCES["cross_entropy"](x, t, axis=1, **kw)

    assert_same_as(ft.cross_entropy, reference, x, t, z_loss=1e-2, softcap=2.0, label_smoothing=0.1)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(
    "name, param",
    [("huber_loss", {"delta": 0.7}), ("smooth_l1_loss", {"beta": 0.7}), ("smooth_l1_loss", {"beta": 0.0})],
)
def test_elementwise_losses_match_pytorch(reduction, name, param):
    x, y = _logits(4, 9), _logits(4, 9).flip(0)
    assert_same_as(getattr(ft, name), getattr(F, name), x, y, reduction=reduction, **param)


@pytest.mark.parametrize("name", ["huber_loss", "smooth_l1_loss"])
def test_elementwise_losses_differentiate_the_target(name):
    x, y = _logits(3, 5).requires_grad_(), _logits(3, 5).flip(1).requires_grad_()
    ours = torch.autograd.grad(getattr(ft, name)(x, y), (x, y))
    theirs = torch.autograd.grad(getattr(F, name)(x, y), (x, y))
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)


def test_huber_elementwise_weight_and_broadcast_match_pytorch():
    x, y, w = _logits(4, 6), _logits(4, 6).flip(0), torch.rand(4, 6, dtype=torch.float64)
    assert_same_as(ft.huber_loss, F.huber_loss, x, y, weight=w)
    with pytest.warns(UserWarning, match="different to the input size"):
        assert_same_as(ft.huber_loss, F.huber_loss, x, y[:1])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("weighted", [False, True])
def test_multi_margin_loss_matches_pytorch(reduction, p, weighted):
    x, t = _logits(9, 5) / 3, _classes((9,), 5)
    w = torch.rand(5, dtype=torch.float64) + 0.5 if weighted else None
    assert_same_as(
        ft.multi_margin_loss, F.multi_margin_loss, x, t, reduction=reduction, p=p, margin=0.8, weight=w
    )


def test_multi_margin_loss_unbatched_matches_pytorch():
    assert_same_as(ft.multi_margin_loss, F.multi_margin_loss, _logits(5), torch.tensor(3))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_sigmoid_focal_loss_matches_torchvision_formula(reduction):
    x = _logits(6, 4)
    y = (torch.rand(6, 4, generator=torch.Generator().manual_seed(3)) > 0.5).to(torch.float64)

    def torchvision_formula(x, y, **kw):
        return REFERENCES["sigmoid_focal_loss"](x, y, **kw)

    assert_same_as(
        ft.sigmoid_focal_loss, torchvision_formula, x, y, reduction=reduction, alpha=0.3, gamma=1.5
    )


@pytest.mark.parametrize(
    "name, opts",
    [
        ("softmax_focal_loss", {"gamma": 1.5, "alpha": "w", "ignore_index": 0}),
        ("softmax_focal_loss", {"gamma": 0.5, "alpha": 0.25}),
        ("multiclass_hinge_loss", {"margin": 0.5, "weight": "w", "ignore_index": 2}),
        ("multiclass_hinge_loss", {"squared": True}),
    ],
)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_class_dim_extras_match_reference(name, opts, reduction):
    x, t = _logits(5, 4, 3), _classes((5, 3), 4)
    vector = torch.rand(4, dtype=torch.float64) + 0.5
    ours_opts = {k: (vector if v == "w" else v) for k, v in opts.items()}
    ref_opts = {k: (vector.numpy() if v == "w" else v) for k, v in opts.items()}

    def reference(x, t, reduction):
        return REFERENCES[name](x, t, axis=1, reduction=reduction, **ref_opts)

    assert_same_as(
        lambda x, t, reduction: getattr(ft, name)(x, t, reduction=reduction, **ours_opts),
        reference,
        x,
        t,
        reduction=reduction,
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_hinge_matches_reference(reduction):
    s, y = _logits(10), torch.tensor([1, -1] * 5)
    assert_same_as(
        ft.hinge_loss, REFERENCES["hinge_loss"], s, y, reduction=reduction, margin=0.5, squared=True
    )


# ---- conventions ---------------------------------------------------------------------------------

FUNCTIONAL_PAIRS = [
    (ft.cross_entropy, F.cross_entropy),
    (ft.huber_loss, F.huber_loss),
    (ft.smooth_l1_loss, F.smooth_l1_loss),
    (ft.multi_margin_loss, F.multi_margin_loss),
]
MODULE_PAIRS = [
    (ft.CrossEntropyLoss, torch.nn.CrossEntropyLoss),
    (ft.HuberLoss, torch.nn.HuberLoss),
    (ft.SmoothL1Loss, torch.nn.SmoothL1Loss),
    (ft.MultiMarginLoss, torch.nn.MultiMarginLoss),
]


def _positional_or_keyword(fn):
    return [
        (p.name, p.default) for p in inspect.signature(fn).parameters.values() if p.kind is not p.KEYWORD_ONLY
    ]


@pytest.mark.parametrize("ours, theirs", FUNCTIONAL_PAIRS + MODULE_PAIRS, ids=lambda f: f.__name__)
def test_signatures_and_defaults_are_pytorchs(ours, theirs):
    assert _positional_or_keyword(ours) == _positional_or_keyword(theirs)


def test_torchvision_sigmoid_focal_signature():
    params = inspect.signature(ft.sigmoid_focal_loss).parameters
    assert [(p.name, p.default) for p in params.values()][2:] == [
        ("alpha", 0.25),
        ("gamma", 2),
        ("reduction", "none"),
    ]


def test_modules_hold_pytorch_attributes_and_buffers():
    w = torch.rand(3)
    ours, theirs = (
        ft.CrossEntropyLoss(w, label_smoothing=0.1),
        torch.nn.CrossEntropyLoss(w, label_smoothing=0.1),
    )
    assert isinstance(ours, torch.nn.modules.loss._WeightedLoss)
    assert ours.state_dict().keys() == theirs.state_dict().keys()
    assert (ours.reduction, ours.ignore_index, ours.label_smoothing) == ("mean", -100, 0.1)


def test_legacy_size_average_and_reduce():
    x, t = _logits(4, 3), _classes((4,), 3)
    with pytest.warns(UserWarning):
        ours = ft.cross_entropy(x, t, size_average=False)
    assert torch.allclose(ours, F.cross_entropy(x, t, reduction="sum"), rtol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_loss_dtype_follows_pytorch(dtype):
    x, t = _logits(4, 3, dtype=dtype), _classes((4,), 3)
    assert ft.cross_entropy(x, t).dtype == F.cross_entropy(x, t).dtype == dtype
    x.requires_grad_()
    ft.cross_entropy(x, t).backward()
    assert x.grad.dtype == dtype


def test_no_grad_computes_the_loss_only():
    x, t = _logits(4, 3), _classes((4,), 3)
    with torch.no_grad():
        loss = ft.cross_entropy(x.requires_grad_(), t)
    assert loss.grad_fn is None and torch.allclose(loss, F.cross_entropy(x.detach(), t), rtol=1e-12)


# ---- autograd contract -----------------------------------------------------------------------------

GRADCHECK_CASES = [
    (
        ft.cross_entropy,
        lambda: (_logits(4, 3, 2), _classes((4, 2), 3)),
        {"label_smoothing": 0.1, "z_loss": 0.01},
    ),
    (ft.cross_entropy, lambda: (_logits(4, 3), torch.softmax(_logits(4, 3), 1)), {}),
    (ft.huber_loss, lambda: (_logits(3, 4), _logits(3, 4).flip(0)), {"delta": 0.5}),
    (ft.smooth_l1_loss, lambda: (_logits(3, 4), _logits(3, 4).flip(0)), {"beta": 0.5}),
    (ft.multi_margin_loss, lambda: (_logits(5, 4) / 4, _classes((5,), 4)), {"p": 2}),
    (ft.sigmoid_focal_loss, lambda: (_logits(3, 4), torch.rand(3, 4, dtype=torch.float64)), {}),
    (ft.softmax_focal_loss, lambda: (_logits(5, 4), _classes((5,), 4)), {"gamma": 1.5}),
    (ft.hinge_loss, lambda: (_logits(8) / 4, torch.tensor([1, 0] * 4)), {"squared": True}),
    (ft.multiclass_hinge_loss, lambda: (_logits(5, 4) / 4, _classes((5,), 4)), {"squared": True}),
]


@pytest.mark.parametrize("fn, make, opts", GRADCHECK_CASES, ids=lambda v: getattr(v, "__name__", ""))
@pytest.mark.parametrize("reduction", ["none", "mean"])
def test_gradcheck_float64(fn, make, opts, reduction):
    x, t = make()
    x.requires_grad_()
    assert torch.autograd.gradcheck(lambda x: fn(x, t, reduction=reduction, **opts), (x,))


@pytest.mark.parametrize("through", ["leaf", "non-leaf"])
def test_backward_twice_with_retain_graph_accumulates(through):
    # loss.backward() hands out the saved gradient itself (grad_output = 1): it must stay intact.
    x, t = _logits(5, 4), _classes((5,), 4)
    leaf = x.clone().requires_grad_()
    loss = ft.cross_entropy(leaf if through == "leaf" else leaf * 2.0, t)
    loss.backward(retain_graph=True)
    loss.backward()
    x.requires_grad_()
    (ref,) = torch.autograd.grad(F.cross_entropy(x if through == "leaf" else x * 2.0, t), x)
    torch.testing.assert_close(leaf.grad, 2 * ref, rtol=1e-12, atol=1e-12)


def test_double_backward_raises_a_clear_error():
    x = _logits(4, 3).requires_grad_()
    loss = ft.cross_entropy(x, _classes((4,), 3))
    with pytest.raises(RuntimeError, match="double backward"):
        torch.autograd.grad(loss, x, create_graph=True)


def test_target_gradient_not_implemented_is_an_error():
    x, y = _logits(4, 3).requires_grad_(), (_logits(4, 3) > 0).double().requires_grad_()
    with pytest.raises(NotImplementedError, match="target"):
        ft.sigmoid_focal_loss(x, y)
    with pytest.raises(NotImplementedError, match="target"):  # in place, the logits are gone by the backward
        ft.cross_entropy(x * 1.0, torch.softmax(y, 1), inplace_backward=True)


def test_soft_cross_entropy_target_gradient_matches_torch():
    x, y = _logits(5, 4, 3), torch.softmax(_logits(5, 4, 3), 1)
    w = torch.rand(4, dtype=torch.float64)
    for reduction in REDUCTIONS:
        for kwargs in ({}, {"weight": w, "label_smoothing": 0.2}):
            a, b = y.clone().requires_grad_(), y.clone().requires_grad_()
            la = ft.cross_entropy(x, a, reduction=reduction, **kwargs)
            lb = F.cross_entropy(x, b, reduction=reduction, **kwargs)
            g = torch.rand(la.shape, dtype=la.dtype)
            (la * g).sum().backward()
            (lb * g).sum().backward()
            torch.testing.assert_close(a.grad, b.grad)


@pytest.mark.torch_crossover
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_small_inputs_run_pytorchs_own_op(reduction):
    """Below the crossover the drop-ins are PyTorch's ops: identical values and gradients (double
    backward included), and PyTorch's own errors."""
    x, t = _logits(8, 3), _classes((8,), 3)
    for fn, ref, target in ((ft.cross_entropy, F.cross_entropy, t), (ft.huber_loss, F.huber_loss, x.flip(0)),
                            (ft.smooth_l1_loss, F.smooth_l1_loss, x.flip(0))):
        a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
        la, lb = fn(a, target, reduction=reduction), ref(b, target, reduction=reduction)
        assert torch.equal(la, lb)
        (ga,) = torch.autograd.grad(la.sum(), a, create_graph=True)
        (gb,) = torch.autograd.grad(lb.sum(), b, create_graph=True)
        assert torch.equal(ga, gb) and ga.requires_grad
    with pytest.raises(IndexError):
        ft.cross_entropy(x, torch.tensor([0, 1, 2, 3, 0, 0, 0, 0]))
    big = _logits(_ops.TORCH_FASTER_BELOW // 3 + 1, 3).requires_grad_()
    with pytest.raises(RuntimeError, match="double backward"):  # from the crossover on: fastloss's kernel
        torch.autograd.grad(ft.cross_entropy(big, _classes(big.shape[:1], 3)), big, create_graph=True)
    # fastloss extras have no PyTorch op: they always take fastloss's kernels
    torch.testing.assert_close(ft.cross_entropy(x, t, z_loss=0.0, softcap=50.0),
                               F.cross_entropy(50.0 * torch.tanh(x / 50.0), t))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_inplace_backward_overwrites_logits_with_the_gradient(reduction):
    x, t = _logits(6, 5, 2), _classes((6, 2), 5)
    _, ref_grad = _loss_and_grad(F.cross_entropy, x, t, reduction=reduction)
    leaf = x.clone().requires_grad_()
    logits = leaf * 1.0  # a non-leaf, as the output of a model
    loss = ft.cross_entropy(logits, t, reduction=reduction, inplace_backward=True)
    torch.testing.assert_close(loss, F.cross_entropy(x, t, reduction=reduction), rtol=1e-12, atol=1e-12)
    assert not torch.equal(logits.detach(), x)  # clobbered, as documented
    g = torch.randn(loss.shape, dtype=loss.dtype, generator=torch.Generator().manual_seed(1))
    loss.backward(g)
    torch.testing.assert_close(leaf.grad, ref_grad, rtol=1e-12, atol=1e-12)


def test_inplace_backward_refuses_logits_another_node_saved():
    leaf = _logits(4, 3).requires_grad_()
    logits = torch.tanh(leaf)  # tanh saves its output for its backward
    loss = ft.cross_entropy(logits, _classes((4,), 3), inplace_backward=True)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


def test_inplace_backward_refuses_to_overwrite_a_leaf():
    leaf = _logits(4, 3).requires_grad_()
    with pytest.raises(ValueError, match="leaf"):
        ft.cross_entropy(leaf, _classes((4,), 3), inplace_backward=True)


def test_bad_input_is_reported_by_the_core():
    with pytest.raises(ValueError, match="out of range"):
        ft.cross_entropy(_logits(4, 3), torch.tensor([0, 1, 2, 3]))
    with pytest.raises(ValueError, match="out of range"):  # no ignore_index in multi_margin_loss
        ft.multi_margin_loss(_logits(2, 3), torch.tensor([0, -100]))
    with pytest.raises(ValueError, match="softcap must be finite"):
        ft.cross_entropy(_logits(4, 3), _classes((4,), 3), softcap=float("nan"))
    with pytest.raises(ValueError, match="reduction"):
        ft.cross_entropy(_logits(4, 3), _classes((4,), 3), reduction="avg")


def test_import_fastloss_loads_neither_torch_nor_jax_and_reaches_both_lazily():
    code = (
        "import sys, fastloss\n"
        "assert 'torch' not in sys.modules and 'jax' not in sys.modules, 'imported eagerly'\n"
        "assert fastloss.torch.CrossEntropyLoss and fastloss.jax.cross_entropy\n"
    )
    subprocess.run(
        [sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    )


# ---- softmax_kl_div / wasserstein_loss drop-ins (class dim 1) against PyTorch written out ----------


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("temperature", [1.0, 3.0])
@pytest.mark.parametrize("shape", [(6, 11), (3, 5, 4, 2), (9,)])
def test_softmax_kl_div_matches_kl_div_of_log_softmaxes(shape, temperature, reduction):
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(shape, dtype=torch.float64, generator=gen) * 3
    teacher = torch.randn(shape, dtype=torch.float64, generator=gen) * 3
    dim = 1 if len(shape) > 1 else 0

    def theirs(s, t, reduction):
        loss = F.kl_div(F.log_softmax(s / temperature, dim), F.log_softmax(t / temperature, dim), log_target=True,
                        reduction="none").sum(dim)
        return {"none": loss, "sum": loss.sum(), "mean": loss.mean()}[reduction]

    assert_same_as(lambda s, t, reduction: ft.softmax_kl_div(s, t, temperature=temperature, reduction=reduction),
                   theirs, x, teacher, reduction=reduction)
    module = ft.SoftmaxKLDivLoss(temperature=temperature, reduction=reduction)
    assert_same_as(lambda s, t, reduction: module(s, t), theirs, x, teacher, reduction=reduction)
    if len(shape) == 2 and reduction == "mean":  # F.kl_div's own "batchmean" for (N, C)
        batchmean = F.kl_div(F.log_softmax(x / temperature, 1), F.log_softmax(teacher / temperature, 1),
                             log_target=True, reduction="batchmean")
        torch.testing.assert_close(ft.softmax_kl_div(x, teacher, temperature=temperature), batchmean)


def test_softmax_kl_div_refuses_a_teacher_that_needs_a_gradient():
    x = torch.randn(4, 5, requires_grad=True)
    with pytest.raises(NotImplementedError, match="target.detach"):
        ft.softmax_kl_div(x, torch.randn(4, 5, requires_grad=True))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("soft", [False, True])
def test_wasserstein_loss_matches_cumsum_formula(soft, p, reduction):
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(5, 7, 3, dtype=torch.float64, generator=gen) * 2
    if soft:
        target = torch.softmax(torch.randn(5, 7, 3, dtype=torch.float64, generator=gen), 1)
    else:
        target = torch.randint(0, 7, (5, 3), generator=gen)
        target[0, 1] = -100

    def theirs(s, t, reduction):
        return REFERENCES["wasserstein_loss"](s, t, reduction=reduction, p=p, axis=1)

    assert_same_as(lambda s, t, reduction: ft.wasserstein_loss(s, t, p=p, reduction=reduction), theirs, x, target,
                   reduction=reduction)
    module = ft.WassersteinLoss(p=p, reduction=reduction)
    assert_same_as(lambda s, t, reduction: module(s, t), theirs, x, target, reduction=reduction)


def test_wasserstein_loss_rejects_p_3():
    with pytest.raises(ValueError, match="p must be 1 or 2, got 3"):
        ft.wasserstein_loss(torch.randn(4, 5), torch.tensor([0, 1, 2, 3]), p=3)
