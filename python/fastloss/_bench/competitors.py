"""The competitors of the quick bench, shared with benchmarks/.

Each maps a registry loss (with the registry's default options) to the framework's own loss, or
raises Skip. "backward" and "fused" of an autograd framework both mean forward + backward:
that is what a user of the framework runs to get the gradient.
"""

from __future__ import annotations

from typing import Any, Callable

import fastloss

from .cases import Case, fastloss_fn
from .jax_competitor import jax_fn
from .torch_competitor import torch_fn


def numpy_reference_fn(case: Case) -> Callable[[], Any]:
    run = fastloss_fn(case)

    def call():
        with fastloss.use_backend("numpy"):
            return run()

    return call


QUICK_COMPETITORS: dict[str, Callable[[Case], Callable[[], Any]]] = {
    "numpy_ref": numpy_reference_fn,
    "torch": torch_fn,
    "jax": jax_fn,
}
