"""fastloss: machine-learning losses and their gradients at the speed of the memory system.

Every loss ``L`` comes in three forms: ``L(input, target, ...)`` (the loss), ``L_grad`` (the
gradient w.r.t. the input) and ``L_with_grad`` (both, from one fused pass). See ``LOSSES``.
"""

from ._api import FUNCTIONS as _FUNCTIONS
from ._backends import get_num_threads, set_num_threads, use_backend
from ._backends.cuda import check_errors as cuda_check_errors
from ._config import backend, show_config
from ._contrastive import (
    clip_loss,
    clip_loss_with_grad,
    info_nce,
    info_nce_with_grad,
    nt_xent,
    nt_xent_with_grad,
    siglip_loss,
    siglip_loss_with_grad,
)
from ._include import get_include
from ._linear_ce import linear_cross_entropy, linear_cross_entropy_with_grad
from ._registry import LOSSES
from ._version import __version__ as __version__

globals().update(_FUNCTIONS)

# The loss functions are generated from the registry, so the list is built, not written out.
__all__ = sorted(_FUNCTIONS) + [  # noqa: PLE0605
    "LOSSES",
    "backend",
    "clip_loss",
    "clip_loss_with_grad",
    "cuda_check_errors",
    "get_include",
    "get_num_threads",
    "info_nce",
    "info_nce_with_grad",
    "linear_cross_entropy",
    "linear_cross_entropy_with_grad",
    "nt_xent",
    "nt_xent_with_grad",
    "set_num_threads",
    "show_config",
    "siglip_loss",
    "siglip_loss_with_grad",
    "use_backend",
]


def __getattr__(name):  # fastloss.torch / fastloss.jax import their framework only when first used
    if name in ("torch", "jax"):
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'fastloss' has no attribute {name!r}")
