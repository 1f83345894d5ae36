"""PyTorch's own test samples (OpInfo for the functionals, ModuleInfo for the modules) run through the
fastloss.torch drop-ins: every input form PyTorch accepts must be accepted, with PyTorch's values and
gradients. These samples are written by PyTorch's developers, not by us."""

from __future__ import annotations

import fastloss.torch as ft
import pytest
import torch

pytest.importorskip("expecttest")  # torch.testing._internal needs it
from torch.testing._internal.common_methods_invocations import op_db
from torch.testing._internal.common_modules import module_db

# The torch.nn.functional / torch.nn losses that have a fastloss.torch drop-in of the same name.
OPS = [o for o in op_db if o.name.startswith("nn.functional.") and hasattr(ft, o.name.rsplit(".", 1)[1])
       and not o.variant_test_name]
MODULES = [m for m in module_db if hasattr(ft, m.module_cls.__name__) and m.module_cls.__module__.startswith("torch")]


# Gradients fastloss.torch does not compute (it raises NotImplementedError if asked): class and
# per-element weights, and the targets of the fused LM head, BCE with logits and KL divergence.
# These tensors are passed without requires_grad.
NO_GRAD_KWARGS = {"weight", "pos_weight"}
NO_GRAD_ARGS = {"nn.functional.linear_cross_entropy": {1}, "nn.functional.binary_cross_entropy_with_logits": {0},
                "nn.functional.kl_div": {0}}
NO_GRAD_MODULE_ARGS = {"LinearCrossEntropyLoss": {1}, "BCEWithLogitsLoss": {1}, "KLDivLoss": {1}}


def _outside_our_domain(name: str, ctor_kwargs: dict, args: list) -> bool:
    """Inputs PyTorch takes and fastloss rejects on purpose (DESIGN 1.1b): negative probabilities
    as a KL-divergence target (PyTorch returns NaN for them; fastloss raises ValueError)."""
    return name == "KLDivLoss" and not ctor_kwargs.get("log_target") and bool((args[1] < 0).any())


def _clone(value, differentiable=True):
    if isinstance(value, torch.Tensor):
        return value.detach().clone().requires_grad_(value.requires_grad and differentiable)
    return value


def _call_args(op_name, sample):
    args = [_clone(v, i not in NO_GRAD_ARGS.get(op_name, ())) for i, v in enumerate(sample.args)]
    kwargs = {k: _clone(v, k not in NO_GRAD_KWARGS) for k, v in sample.kwargs.items()}
    return [_clone(sample.input), *args], kwargs


def _grads(result, tensors):
    wanted = [t for t in tensors if isinstance(t, torch.Tensor) and t.requires_grad]
    if not wanted:
        return []
    return torch.autograd.grad(result.sum(), wanted, allow_unused=True)


def test_the_drop_ins_are_covered():
    assert {o.name.rsplit(".", 1)[1] for o in OPS} >= {"cross_entropy", "huber_loss", "smooth_l1_loss",
                                                        "multi_margin_loss"}
    assert {m.module_cls.__name__ for m in MODULES} >= {"CrossEntropyLoss", "HuberLoss", "SmoothL1Loss",
                                                         "MultiMarginLoss"}


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("op", OPS, ids=lambda o: o.name.rsplit(".", 1)[1])
def test_opinfo_samples(op, dtype):
    ours = getattr(ft, op.name.rsplit(".", 1)[1])
    tol = {} if dtype == torch.float64 else {"rtol": 1e-5, "atol": 1e-6}
    for sample in op.sample_inputs("cpu", dtype, requires_grad=True):
        a, kwargs = _call_args(op.name, sample)
        b, kwargs_b = _call_args(op.name, sample)
        got, expected = ours(*a, **kwargs), op.op(*b, **kwargs_b)
        torch.testing.assert_close(got, expected, equal_nan=True, **tol, msg=lambda m, s=sample: f"{s}: {m}")
        for g, e in zip(_grads(got, a), _grads(expected, b)):
            torch.testing.assert_close(g, e, equal_nan=True, **tol, msg=lambda m, s=sample: f"{s} gradient: {m}")


@pytest.mark.parametrize("module_info", MODULES, ids=lambda m: m.module_cls.__name__)
def test_moduleinfo_samples(module_info):
    ours = getattr(ft, module_info.module_cls.__name__)
    samples = module_info.module_inputs_func(module_info, device="cpu", dtype=torch.float64, requires_grad=True,
                                             training=True)
    for sample in samples:
        if sample.forward_input is None:
            continue
        ctor = sample.constructor_input
        frozen = NO_GRAD_MODULE_ARGS.get(module_info.module_cls.__name__, ())
        a = [_clone(v, i not in frozen) for i, v in enumerate(sample.forward_input.args)]
        b = [_clone(v, i not in frozen) for i, v in enumerate(sample.forward_input.args)]
        reference = module_info.module_cls(*ctor.args, **ctor.kwargs)
        module = ours(*ctor.args, **ctor.kwargs)
        module.load_state_dict(reference.state_dict())  # the same (randomly initialised) parameters
        if _outside_our_domain(module_info.module_cls.__name__, ctor.kwargs, a):
            with pytest.raises(ValueError, match="target"):
                module(*a, **sample.forward_input.kwargs)
            continue
        got = module(*a, **sample.forward_input.kwargs)
        expected = reference(*b, **sample.forward_input.kwargs)
        torch.testing.assert_close(got, expected, equal_nan=True, msg=lambda m, c=ctor: f"{c.kwargs}: {m}")
        for g, e in zip(_grads(got, a), _grads(expected, b)):
            torch.testing.assert_close(g, e, equal_nan=True, msg=lambda m, c=ctor: f"{c.kwargs} gradient: {m}")
