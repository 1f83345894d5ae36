"""fastloss.torch raises PyTorch's exception type for the same mistake at every input size (issue 22):
below ``_ops.TORCH_FASTER_BELOW`` elements the drop-ins run PyTorch's own op, above it fastloss's
checks, and code catching PyTorch's exception must catch both. The reference is what PyTorch itself
raises for the very call."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
import fastloss.torch as ft
import torch.nn.functional as F
from fastloss.torch import _ops

N_SMALL, N_LARGE, C = 4, _ops.TORCH_FASTER_BELOW // 16 + 8, 16  # N_LARGE * C is above the threshold


def _ce(n):
    return torch.randn(n, C, requires_grad=True)


MISTAKES = {
    "cross_entropy float class target": ("cross_entropy", lambda n: (_ce(n), torch.zeros(n)), {}),
    "cross_entropy target out of range": ("cross_entropy", lambda n: (_ce(n), torch.full((n,), C)), {}),
    "cross_entropy negative target": ("cross_entropy", lambda n: (_ce(n), torch.full((n,), -5)), {}),
    "cross_entropy batch mismatch": ("cross_entropy", lambda n: (_ce(n), torch.zeros(n + 1, dtype=torch.long)), {}),
    "cross_entropy bad reduction": ("cross_entropy", lambda n: (_ce(n), torch.zeros(n, dtype=torch.long)),
                                    {"reduction": "avg"}),
    "cross_entropy integer input": ("cross_entropy", lambda n: (torch.zeros(n, C, dtype=torch.long),
                                                                torch.zeros(n, dtype=torch.long)), {}),
    "cross_entropy wrong weight length": ("cross_entropy", lambda n: (_ce(n), torch.zeros(n, dtype=torch.long)),
                                          {"weight": torch.ones(C + 1)}),
    "mse_loss shape mismatch": ("mse_loss", lambda n: (_ce(n), torch.randn(n, C + 1)), {}),
    "l1_loss bad reduction": ("l1_loss", lambda n: (_ce(n), torch.randn(n, C)), {"reduction": "avg"}),
    "huber_loss shape mismatch": ("huber_loss", lambda n: (_ce(n), torch.randn(n + 1, C)), {}),
    "smooth_l1_loss negative beta": ("smooth_l1_loss", lambda n: (_ce(n), torch.randn(n, C)), {"beta": -1.0}),
    "bce_with_logits target shape": ("binary_cross_entropy_with_logits", lambda n: (_ce(n), torch.rand(n, C + 1)),
                                     {}),
    "kl_div bad reduction": ("kl_div", lambda n: (_ce(n), torch.rand(n, C)), {"reduction": "avg"}),
    "multi_margin_loss p=3": ("multi_margin_loss", lambda n: (_ce(n), torch.zeros(n, dtype=torch.long)), {"p": 3}),
    "multi_margin_loss target out of range": ("multi_margin_loss",
                                              lambda n: (_ce(n), torch.full((n,), C)), {}),
    "margin_ranking_loss shape mismatch": ("margin_ranking_loss",
                                           lambda n: (torch.randn(n * C), torch.randn(n * C), torch.ones(n * C + 1)),
                                           {}),
}


def _raised(fn, args, kwargs):
    try:
        fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - the type is the result
        return exc
    return None


@pytest.mark.parametrize("n", [N_SMALL, N_LARGE], ids=["below", "above"])
@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_same_exception_type_as_pytorch(mistake, n):
    name, make, kwargs = MISTAKES[mistake]
    torch.manual_seed(0)
    args = make(n)
    theirs = _raised(getattr(F, name), args, kwargs)
    assert theirs is not None, f"PyTorch accepts {mistake}: not a mistake"
    ours = _raised(getattr(ft, name), args, kwargs)
    assert ours is not None, f"fastloss.torch.{name} accepted {mistake} (PyTorch raised {theirs!r})"
    assert isinstance(ours, type(theirs)), f"{mistake}: fastloss raised {ours!r}, PyTorch {theirs!r}"
