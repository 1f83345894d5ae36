"""torch.compile(fullgraph=True) traces every fastloss.torch loss without a graph break.

"aot_eager" runs the fake (meta) implementations and the autograd formulas through AOTAutograd,
which is what every compiler backend sees; one test also runs inductor end to end.
"""

from __future__ import annotations

import fastloss.torch as ft
import pytest
import torch
import torch.nn.functional as F


def _data(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(6, 5, 3, generator=g, dtype=torch.float64) * 2, torch.randint(
        0, 5, (6, 3), generator=g
    )


def _binary_target(x):
    return (x > 0.3).to(x.dtype)


# (module, how to make its target from (x, class indices)); each module's target convention.
MODULES = [
    (ft.CrossEntropyLoss(label_smoothing=0.1, z_loss=1e-3), lambda x, t: t),
    (ft.CrossEntropyLoss(reduction="none", softcap=3.0), lambda x, t: t),
    (ft.CrossEntropyLoss(inplace_backward=True), lambda x, t: t),
    (ft.HuberLoss(delta=0.5), lambda x, t: x.detach().flip(0)),
    (ft.SmoothL1Loss(reduction="sum"), lambda x, t: x.detach().flip(0)),
    (ft.SigmoidFocalLoss(), lambda x, t: _binary_target(x.detach())),
    (ft.SoftmaxFocalLoss(gamma=1.5), lambda x, t: t),
    (ft.HingeLoss(), lambda x, t: _binary_target(x.detach())),
    (ft.MultiClassHingeLoss(reduction="none"), lambda x, t: t),
    (ft.MSELoss(), lambda x, t: x.detach().flip(0)),
    (ft.L1Loss(reduction="sum"), lambda x, t: x.detach().flip(0)),
    (ft.LogCoshLoss(reduction="none"), lambda x, t: x.detach().flip(0)),
    (ft.BCEWithLogitsLoss(), lambda x, t: torch.sigmoid(x.detach().flip(0))),
    (ft.BCEWithLogitsLoss(pos_weight=torch.rand(3, dtype=torch.float64) + 0.5), lambda x, t: _binary_target(x.detach())),
    (ft.KLDivLoss(reduction="batchmean"), lambda x, t: torch.softmax(x.detach().flip(0), 1)),
]
IDS = [
    "ce",
    "ce-none-softcap",
    "ce-inplace",
    "huber",
    "smooth_l1",
    "sigmoid_focal",
    "softmax_focal",
    "hinge",
    "mc_hinge",
    "mse",
    "l1",
    "log_cosh",
    "bce",
    "bce-pos_weight",
    "kl-batchmean",
]


def _loss_and_grad(fn, x, target):
    leaf = x.clone().requires_grad_()
    loss = fn(leaf * 1.0, target)  # a non-leaf input, as a model's output (inplace_backward needs one)
    loss.backward(torch.ones_like(loss))
    return loss.detach(), leaf.grad


@pytest.mark.parametrize("module, make_target", MODULES, ids=IDS)
def test_fullgraph_aot_eager_matches_eager(module, make_target):
    torch._dynamo.reset()
    x, t = _data()
    target = make_target(x, t)
    eager = _loss_and_grad(module, x, target)
    compiled = _loss_and_grad(torch.compile(module, fullgraph=True, backend="aot_eager"), x, target)
    torch.testing.assert_close(compiled, eager, rtol=1e-12, atol=1e-12)


def test_multi_margin_fullgraph_matches_pytorch():
    torch._dynamo.reset()
    x, t = _data()
    x2, t2 = x[:, :, 0].contiguous(), t[:, 0].contiguous()
    module = torch.compile(ft.MultiMarginLoss(p=2), fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(
        _loss_and_grad(module, x2, t2),
        _loss_and_grad(torch.nn.MultiMarginLoss(p=2), x2, t2),
        rtol=1e-12,
        atol=1e-12,
    )


def test_inductor_fullgraph_model_and_loss_matches_pytorch():
    """A linear layer + fastloss cross-entropy compiled by inductor in one graph, forward and backward."""
    torch._dynamo.reset()
    torch.manual_seed(0)
    layer = torch.nn.Linear(8, 5).double()
    x, t = torch.randn(16, 8, dtype=torch.float64), torch.randint(0, 5, (16,))

    def step(loss_fn):
        layer.zero_grad()
        loss = loss_fn(layer(x), t)
        loss.backward()
        return loss.detach(), layer.weight.grad.clone()

    compiled = torch.compile(lambda x, t: ft.cross_entropy(x, t, label_smoothing=0.1), fullgraph=True)
    ours = step(compiled)
    theirs = step(lambda x, t: F.cross_entropy(x, t, label_smoothing=0.1))
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)


def test_dynamo_sees_no_graph_break():
    torch._dynamo.reset()
    x, t = _data()
    explanation = torch._dynamo.explain(lambda x, t: ft.cross_entropy(x, t))(x.requires_grad_(), t)
    assert explanation.graph_break_count == 0 and explanation.graph_count == 1
    ops = [
        str(node.target) for g in explanation.graphs for node in g.graph.nodes if node.op == "call_function"
    ]
    assert "fastloss.loss_with_grad.default" in ops
