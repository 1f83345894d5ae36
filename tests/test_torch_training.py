"""Swap the loss of a small float32 training loop for fastloss's: the loss curve stays PyTorch's.

Two identical tiny MLPs take a few SGD steps, one with the PyTorch loss and one with the fastloss
module; the losses and the weights must agree at every step to float32 round-off.
"""

from __future__ import annotations

import copy

import fastloss.torch as ft
import pytest
import torch
from torch_reference import REFERENCES

STEPS = 6
N, D, C = 32, 12, 7


def _reference_module(name, **opts):
    """A PyTorch-op implementation for the losses PyTorch does not ship (tests/torch_reference.py)."""

    class Reference(torch.nn.Module):
        def forward(self, x, t):
            return REFERENCES[name](x, t, **opts)  # (N, C): the class axis is last, fastloss's default

    return Reference()


def _classes(g):
    return torch.randint(0, C, (N,), generator=g)


def _regression(g):
    return torch.randn(N, C, generator=g)


def _binary(g):
    return (torch.rand(N, C, generator=g) > 0.5).float()


# (fastloss module, its PyTorch counterpart, target maker)
PAIRS = {
    "CrossEntropyLoss": (ft.CrossEntropyLoss(), torch.nn.CrossEntropyLoss(), _classes),
    "CrossEntropyLoss-options": (
        ft.CrossEntropyLoss(weight=torch.linspace(0.5, 1.5, C), label_smoothing=0.1, ignore_index=0),
        torch.nn.CrossEntropyLoss(weight=torch.linspace(0.5, 1.5, C), label_smoothing=0.1, ignore_index=0),
        _classes,
    ),
    "CrossEntropyLoss-inplace": (
        ft.CrossEntropyLoss(inplace_backward=True),
        torch.nn.CrossEntropyLoss(),
        _classes,
    ),
    "HuberLoss": (ft.HuberLoss(delta=0.5), torch.nn.HuberLoss(delta=0.5), _regression),
    "SmoothL1Loss": (ft.SmoothL1Loss(beta=0.5), torch.nn.SmoothL1Loss(beta=0.5), _regression),
    "MultiMarginLoss": (ft.MultiMarginLoss(p=2), torch.nn.MultiMarginLoss(p=2), _classes),
    "SigmoidFocalLoss": (ft.SigmoidFocalLoss(), _reference_module("sigmoid_focal_loss"), _binary),
    "SoftmaxFocalLoss": (
        ft.SoftmaxFocalLoss(gamma=2.0),
        _reference_module("softmax_focal_loss", gamma=2.0),
        _classes,
    ),
    "HingeLoss": (ft.HingeLoss(), _reference_module("hinge_loss"), _binary),
    "MultiClassHingeLoss": (ft.MultiClassHingeLoss(), _reference_module("multiclass_hinge_loss"), _classes),
}


def _train(model, loss_fn, x, target):
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    losses = []
    for _ in range(STEPS):
        opt.zero_grad()
        loss = loss_fn(model(x), target)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses, [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("name", list(PAIRS))
def test_training_curve_matches_pytorch(name):
    ours_loss, torch_loss, make_target = PAIRS[name]
    g = torch.Generator().manual_seed(0)
    x, target = torch.randn(N, D, generator=g), make_target(g)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(D, 16), torch.nn.Tanh(), torch.nn.Linear(16, C))
    ours, ours_weights = _train(copy.deepcopy(model), ours_loss, x, target)
    theirs, their_weights = _train(copy.deepcopy(model), torch_loss, x, target)
    assert theirs[-1] < theirs[0]  # the loop trains, so the comparison covers a moving model
    torch.testing.assert_close(ours, theirs, rtol=2e-5, atol=1e-6)
    torch.testing.assert_close(ours_weights, their_weights, rtol=2e-5, atol=1e-6)
