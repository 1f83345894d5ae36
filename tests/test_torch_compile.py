"""torch.compile(fullgraph=True) traces every fastloss.torch loss without a graph break.

"aot_eager" runs the fake (meta) implementations and the autograd formulas through AOTAutograd,
which is what every compiler backend sees; one test also runs inductor end to end.
"""

from __future__ import annotations

import fastloss.torch as ft
import pytest
import torch
import torch.nn.functional as F
from fastloss.torch import _ops


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


# ---- below the size switch a compiled drop-in is PyTorch's own op (inductor fuses it) ------------


def _recording_backend(graphs, ran=None):
    """A torch.compile backend that keeps each FX graph Dynamo hands it (in ``graphs``) and runs it
    as it is, appending the graph to ``ran`` at each call."""

    def backend(gm, _example_inputs):
        graphs.append(gm)

        def run(*args):
            if ran is not None:
                ran.append(gm)
            return gm.forward(*args)

        return run

    return backend


def _fastloss_ops(gm):
    return [n.target for n in gm.graph.nodes if isinstance(n.target, torch._ops.OpOverload)
            and n.target.namespace == "fastloss"]


def _pointwise_target(x):
    return x.detach().flip(0)


# Every drop-in whose eager mode switches to PyTorch's op: (fastloss.torch fn, PyTorch fn, target, kwargs).
SWITCHED = [
    (ft.cross_entropy, F.cross_entropy, lambda x: torch.arange(x.shape[0]) % x.shape[1], {}),
    (ft.multi_margin_loss, F.multi_margin_loss, lambda x: torch.arange(x.shape[0]) % x.shape[1], {"p": 2}),
    (ft.huber_loss, F.huber_loss, _pointwise_target, {"delta": 0.5}),
    (ft.smooth_l1_loss, F.smooth_l1_loss, _pointwise_target, {"beta": 0.5}),
    (ft.mse_loss, F.mse_loss, _pointwise_target, {}),
    (ft.l1_loss, F.l1_loss, _pointwise_target, {}),
    (ft.binary_cross_entropy_with_logits, F.binary_cross_entropy_with_logits,
     lambda x: torch.sigmoid(x.detach().flip(0)), {}),
    (ft.kl_div, F.kl_div, lambda x: torch.softmax(x.detach().flip(0), 1), {"reduction": "batchmean"}),
]


@pytest.mark.torch_crossover
@pytest.mark.parametrize("fn, torch_fn, make_target, kwargs", SWITCHED, ids=[s[0].__name__ for s in SWITCHED])
def test_compiled_drop_in_is_pytorchs_op_below_the_switch_and_fastloss_above(monkeypatch, fn, torch_fn, make_target,
                                                                             kwargs):
    # Small thresholds keep the test fast; the real ones are exercised by the next test.
    monkeypatch.setattr(_ops, "COMPILED_TORCH_FASTER_BELOW", 60)
    monkeypatch.setattr(_ops, "COMPILED_POINTWISE_TORCH_FASTER_BELOW", 60)
    torch._dynamo.reset()
    graphs = []
    compiled = torch.compile(lambda x, t: fn(x, t, **kwargs), backend=_recording_backend(graphs), fullgraph=True)
    g = torch.Generator().manual_seed(0)
    for rows, has_fastloss_op in ((4, False), (40, True)):  # 4 x 5 = 20 elements, 40 x 5 = 200
        x = torch.randn(rows, 5, generator=g, dtype=torch.float64)
        target = make_target(x)
        ours = _loss_and_grad(compiled, x, target)
        theirs = _loss_and_grad(lambda x, t: torch_fn(x, t, **kwargs), x, target)
        assert bool(_fastloss_ops(graphs[-1])) == has_fastloss_op, graphs[-1].graph
        if has_fastloss_op:
            torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)
        else:  # PyTorch's own op: the same numbers, bit for bit
            assert torch.equal(ours[0], theirs[0]) and torch.equal(ours[1], theirs[1])


@pytest.mark.torch_crossover
def test_compiled_switch_guards_a_dynamic_size_and_recompiles_once_per_side():
    """dynamic=True: the element count is symbolic; the graph for one side serves every size on
    that side, at the real thresholds (cross-entropy's row-wise one, Huber's point-wise one)."""
    for fn, make_target, below in ((ft.cross_entropy, lambda x: torch.arange(x.shape[0]) % x.shape[1],
                                    _ops.COMPILED_TORCH_FASTER_BELOW),
                                   (ft.huber_loss, _pointwise_target, _ops.COMPILED_POINTWISE_TORCH_FASTER_BELOW)):
        torch._dynamo.reset()
        graphs, ran = [], []
        compiled = torch.compile(fn, backend=_recording_backend(graphs, ran), dynamic=True)
        sides = []
        for rows in (16, 24, below // 4 - 1, below // 4, below // 2, 20):  # (rows, 4): below x 3, above x 2, below
            x = torch.randn(rows, 4)
            compiled(x.requires_grad_(), make_target(x)).backward()
            sides.append(bool(_fastloss_ops(ran[-1])))
        assert sides == [False, False, False, True, True, False], (fn.__name__, sides)
        assert len(graphs) == 2, (fn.__name__, len(graphs))  # one graph per side, reused across sizes


def test_dynamic_shapes_trace_in_one_graph_for_every_size():
    """dynamic=True makes the float options symbolic: packing them must not break the graph."""
    torch._dynamo.reset()
    graphs = []
    compiled = torch.compile(lambda x, t: ft.cross_entropy(x, t, label_smoothing=0.1),
                             backend=_recording_backend(graphs), fullgraph=True, dynamic=True)
    for rows in (6, 9, 13):
        x, t = torch.randn(rows, 5, dtype=torch.float64), torch.arange(rows) % 5
        torch.testing.assert_close(_loss_and_grad(compiled, x, t),
                                   _loss_and_grad(lambda x, t: F.cross_entropy(x, t, label_smoothing=0.1), x, t),
                                   rtol=1e-12, atol=1e-12)
    assert len(graphs) == 1 and _fastloss_ops(graphs[0])


@pytest.mark.torch_crossover
@pytest.mark.parametrize("fn, torch_fn, make_target, kwargs", SWITCHED[:4], ids=[s[0].__name__ for s in SWITCHED[:4]])
def test_compiled_small_graph_takes_default_options_as_constants(fn, torch_fn, make_target, kwargs):
    """dynamic=True turns a float default (label_smoothing, delta, beta, margin) into a graph input,
    so inductor would compile PyTorch's loss for any value: the drop-in's graph takes the same
    inputs as PyTorch's own (the input and the target)."""
    torch._dynamo.reset()
    graphs = []
    compiled = torch.compile(fn, backend=_recording_backend(graphs), dynamic=True)
    x = torch.randn(8, 5, dtype=torch.float64)
    compiled(x, make_target(x))
    inputs = [n.meta["example_value"] for n in graphs[0].graph.nodes if n.op == "placeholder"]
    assert len([v for v in inputs if isinstance(v, torch.Tensor)]) == 2, graphs[0].graph
    assert not _fastloss_ops(graphs[0])


@pytest.mark.torch_crossover
def test_a_data_dependent_size_takes_the_custom_op(monkeypatch):
    """A size Dynamo cannot guard on (boolean-mask indexing with captured dynamic output shapes)
    does not break the graph: the switch cannot be decided, so fastloss's custom op runs."""
    monkeypatch.setattr(_ops, "COMPILED_TORCH_FASTER_BELOW", 60)
    torch._dynamo.reset()
    graphs = []
    g = torch.Generator().manual_seed(0)
    x, t = torch.randn(64, 5, generator=g, dtype=torch.float64), torch.arange(64) % 5
    mask = torch.rand(64, generator=g) > 0.5
    with torch._dynamo.config.patch(capture_dynamic_output_shape_ops=True):
        compiled = torch.compile(lambda x, t: ft.cross_entropy(x[mask], t[mask]),
                                 backend=_recording_backend(graphs), fullgraph=True)
        ours = _loss_and_grad(compiled, x, t)
    theirs = _loss_and_grad(lambda x, t: F.cross_entropy(x[mask], t[mask]), x, t)
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)
    assert _fastloss_ops(graphs[-1])
