"""``fastloss.torch`` follows the spec: every loss has a public functional and an ``nn.Module``;
those PyTorch has keep PyTorch's API (hand-written adapters), every other one is derived from its
spec entry (``fastloss/torch/_derived.py``) with the spec's options, defaults and formula, and
computes what the NumPy core computes, gradient included."""

from __future__ import annotations

import inspect

import fastloss
import fastloss.torch as ft
import numpy as np
import pytest
import torch
from fastloss import _spec
from fastloss.torch import _derived, functional, modules
from problems import CASES, PER_CLASS, PER_ELEMENT, make_problem

DERIVED = [pytest.param(loss, id=loss.name) for loss in functional.DERIVED]


def test_every_loss_has_a_drop_in_and_a_module():
    for loss in _spec.LOSSES:
        if loss.name in functional.PYTORCH_COUNTERPARTS:
            continue
        assert loss.name in ft.__all__ and _derived.class_name(loss) in ft.__all__, loss.name
    assert {loss.name for loss in functional.DERIVED} | functional.PYTORCH_COUNTERPARTS == {
        loss.name for loss in _spec.LOSSES}


def test_pytorch_counterparts_are_pytorch_losses():
    for name in functional.PYTORCH_COUNTERPARTS - {"sigmoid_focal_loss"}:  # torchvision's
        assert hasattr(torch.nn.functional, name), name
        assert getattr(ft, name).__module__ == "fastloss.torch.functional"


@pytest.mark.parametrize("loss", DERIVED)
def test_derived_signature_is_the_spec(loss):
    fn, cls = getattr(ft, loss.name), getattr(ft, _derived.class_name(loss))
    params = list(inspect.signature(fn).parameters.values())
    assert [p.name for p in params] == ["input", "target", *(o.name for o in loss.options), "reduction"]
    assert [p.default for p in params[2:]] == [*(o.default for o in loss.options), "mean"]
    assert loss.formula in fn.__doc__
    init = list(inspect.signature(cls.__init__).parameters)
    assert init == ["self", *(o.name for o in loss.options), "reduction"]
    assert issubclass(cls, torch.nn.Module)


def _torch_options(loss, case: dict, x: np.ndarray, rng) -> dict:
    opts, _ = {}, None
    for k, v in case.items():
        if k == "target":
            continue
        if v is PER_CLASS:
            opts[k] = torch.from_numpy(rng.uniform(0.5, 2.0, x.shape[-1 if loss.kind == _spec.POINTWISE else 1]))
        elif v is PER_ELEMENT:
            opts[k] = torch.from_numpy(rng.uniform(0.5, 2.0, x.shape))
        else:
            opts[k] = v
    return opts


@pytest.mark.parametrize("loss", DERIVED)
@pytest.mark.parametrize("reduction", ["none", "mean"])
def test_derived_drop_in_matches_the_core_with_its_gradient(loss, reduction):
    rng = np.random.default_rng(0)
    for case in CASES.get(loss.name, [{}]):
        x, t, opts = make_problem(loss.name, (6, 5), rng, case, dtype="float64")
        # the core takes the class axis last; the drop-in class dim 1, as PyTorch (same for 2-D inputs)
        expected, expected_grad = getattr(fastloss, f"{loss.name}_with_grad")(x, t, reduction=reduction, **opts)
        tx = torch.tensor(x, requires_grad=True)
        tt = torch.from_numpy(np.asarray(t))
        topts = {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in opts.items()}
        out = getattr(ft, loss.name)(tx, tt, **topts, reduction=reduction)
        np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-12, atol=1e-12, err_msg=str(case))
        (grad,) = torch.autograd.grad(out.sum(), tx)
        go = np.ones_like(expected) if reduction == "none" else 1.0
        _, core_grad = getattr(fastloss, f"{loss.name}_with_grad")(x, t, reduction=reduction, grad_output=go, **opts)
        np.testing.assert_allclose(grad.numpy(), core_grad, rtol=1e-12, atol=1e-12, err_msg=str(case))
        module = getattr(ft, _derived.class_name(loss))(**topts, reduction=reduction)
        np.testing.assert_allclose(module(tx, tt).detach().numpy(), expected, rtol=1e-12, atol=1e-12)
        del expected_grad


def test_a_tensor_option_of_a_module_is_a_buffer():
    alpha = torch.linspace(0.5, 1.5, 4)
    module = ft.SoftmaxFocalLoss(alpha=alpha, gamma=1.0)
    assert "alpha" in dict(module.named_buffers())
    assert module.gamma == 1.0


def test_derived_modules_live_where_the_hand_written_ones_do():
    for name in modules.DERIVED:
        assert getattr(ft, name).__module__ == "fastloss.torch.modules"
