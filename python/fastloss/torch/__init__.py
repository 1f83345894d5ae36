"""PyTorch drop-ins: ``torch.nn.functional`` / ``torch.nn`` losses with PyTorch's exact conventions.

Switching is a one-line change::

    criterion = fastloss.torch.CrossEntropyLoss()   # was torch.nn.CrossEntropyLoss()

Signatures, defaults, layouts (class dim 1, K-dim inputs (N, C, d1, ..., dK), unbatched (C,)) and
legacy ``size_average``/``reduce`` match PyTorch (and torchvision for ``sigmoid_focal_loss``).
fastloss extras are keyword-only: ``z_loss``, ``softcap`` and ``inplace_backward``.

How autograd works: the forward runs ONE fused pass (``fastloss.<loss>_with_grad``) that returns the
loss and the gradient for ``grad_output = 1``; the gradient is saved and the backward only scales it
by ``grad_output`` (per loss element for ``reduction="none"``, broadcast along the class dim). In eager
mode this is a plain ``torch.autograd.Function`` (cheap per call); under ``torch.compile`` the same
work runs through ``torch.library`` custom ops (``torch.ops.fastloss.*``) with fake (meta)
implementations, so ``torch.compile(fullgraph=True)`` traces them without graph breaks. Small CPU inputs
of the losses PyTorch has run PyTorch's own op instead, in eager mode and compiled graphs alike (where
inductor fuses it); Dynamo guards on the input's size, so a graph serves every size on its side of
the switch and one recompile covers the other. When no gradient is needed
(``torch.no_grad()``, or an input that does not require grad) only the loss is computed.

``inplace_backward=True`` writes the gradient over the input (the logits) during the forward, so no
second logits-sized buffer is alive between forward and backward (as Liger-Kernel does). Caveat: the
input's values are destroyed by the forward; do not use them afterwards, and call ``backward`` once
(the backward scales the saved gradient in place). Any autograd node that saved the logits notices
the overwrite and raises PyTorch's "modified by an inplace operation" error instead of computing a
wrong gradient. A forward interrupted by Ctrl-C (KeyboardInterrupt) leaves the input partly
overwritten: some rows hold the gradient, the rest the logits; recompute the logits before using them.

Double backward (``create_graph=True``) is not supported: the gradient comes from a fused kernel,
not from differentiable torch ops, so the backward raises instead of returning a graph that would
silently give a zero second derivative.
"""

try:
    import torch as _torch  # noqa: F401 - only to say what is missing
except ImportError as _missing:
    raise ImportError(
        "fastloss.torch needs PyTorch, which is not installed: pip install torch (or pip install "
        "'fastloss[bench]'); the NumPy API, import fastloss, works without it") from _missing

from . import functional as _functional
from . import modules as _modules
from .contrastive import clip_loss, info_nce, nt_xent, siglip_loss
from .functional import (
    binary_cross_entropy_with_logits,
    cross_entropy,
    huber_loss,
    kl_div,
    l1_loss,
    margin_ranking_loss,
    mse_loss,
    multi_margin_loss,
    sigmoid_focal_loss,
    smooth_l1_loss,
)
from .linear_kl_head import linear_softmax_kl_div
from .lm_head import LinearCrossEntropyLoss, linear_cross_entropy, vocab_parallel_cross_entropy
from .modules import (
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    HuberLoss,
    KLDivLoss,
    L1Loss,
    MarginRankingLoss,
    MSELoss,
    MultiMarginLoss,
    SigmoidFocalLoss,
    SmoothL1Loss,
)

# Every loss PyTorch does not have: its functional and its module, derived from the spec.
globals().update({loss.name: getattr(_functional, loss.name) for loss in _functional.DERIVED})
globals().update(_modules.DERIVED)

__all__ = [
    "BCEWithLogitsLoss",
    "CrossEntropyLoss",
    "HuberLoss",
    "KLDivLoss",
    "L1Loss",
    "LinearCrossEntropyLoss",
    "MSELoss",
    "MarginRankingLoss",
    "MultiMarginLoss",
    "SigmoidFocalLoss",
    "SmoothL1Loss",
    "binary_cross_entropy_with_logits",
    "clip_loss",
    "cross_entropy",
    "huber_loss",
    "info_nce",
    "kl_div",
    "l1_loss",
    "linear_cross_entropy",
    "linear_softmax_kl_div",
    "margin_ranking_loss",
    "mse_loss",
    "multi_margin_loss",
    "nt_xent",
    "siglip_loss",
    "sigmoid_focal_loss",
    "smooth_l1_loss",
    "vocab_parallel_cross_entropy",
]
__all__.extend(loss.name for loss in _functional.DERIVED)
__all__.extend(_modules.DERIVED)
