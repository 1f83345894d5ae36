"""Mistakes raise PyTorch's exception type too: the drop-ins of PyTorch's losses run fastloss's
own checks above ``_ops.TORCH_FASTER_BELOW`` elements and PyTorch's op below it, and code that
catches PyTorch's exception (``RuntimeError`` for float class targets, ``IndexError`` for a target
out of range) must not break on large batches.

On the error path only, PyTorch's function is asked what it raises for the same arguments; where
that is another type than fastloss's, the error is re-raised as a class deriving from both
(``except TypeError`` and ``except RuntimeError`` both catch it) with fastloss's message, which
names the argument and the value.
"""

from __future__ import annotations

import functools
import inspect
import warnings
from typing import Any, Callable

import torch
import torch.nn.functional as F

# fastloss.torch functions whose torch.nn.functional namesake defines the exception types
COUNTERPARTS = ("cross_entropy", "huber_loss", "smooth_l1_loss", "mse_loss", "l1_loss",
                "binary_cross_entropy_with_logits", "kl_div", "multi_margin_loss", "margin_ranking_loss")


@functools.cache
def _both(ours: type, theirs: type) -> type:
    try:
        return type(theirs.__name__, (ours, theirs), {"__module__": "fastloss.torch"})
    except TypeError:  # theirs derives from ours' bases: only the other order is consistent
        return type(theirs.__name__, (theirs, ours), {"__module__": "fastloss.torch"})


def _raised_by(torch_fn: Callable, args: tuple, kwargs: dict[str, Any]) -> type | None:
    """The exception type torch_fn raises for these arguments (fastloss-only options left out)."""
    accepted = inspect.signature(torch_fn).parameters
    kwargs = {k: v for k, v in kwargs.items() if k in accepted}
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch_fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - only its type is wanted
        return type(exc)
    return None


def like_torch(fn: Callable, counterpart: str | Callable) -> Callable:
    """fn, raising an exception that is also PyTorch's type where its counterpart (F.<name>, or a
    function of the same signature built from PyTorch ops) raises another one."""
    torch_fn = getattr(F, counterpart) if isinstance(counterpart, str) else counterpart

    def call(args, kwargs):
        if torch.compiler.is_compiling():
            return fn(*args, **kwargs)
        try:
            return fn(*args, **kwargs)
        except (TypeError, ValueError) as exc:
            theirs = _raised_by(torch_fn, args, kwargs)
            if theirs is None or isinstance(exc, theirs):
                raise
            raise _both(type(exc), theirs)(str(exc)) from None

    if next(iter(inspect.signature(fn).parameters)) == "input":
        # A named first parameter: torch.compile(fastloss.torch.cross_entropy) itself (this frame on
        # top) with the input inside *args got inductor code for PyTorch's op that saved an N x C
        # mask for the backward: 1.7x the time of compiled F.cross_entropy at (256, 100).
        def drop_in(input, *args, **kwargs):
            return call((input, *args), kwargs)
    else:
        def drop_in(*args, **kwargs):
            return call(args, kwargs)

    return functools.wraps(fn)(drop_in)


def linear_cross_entropy_reference(input, linear_weight, target, *, linear_bias=None, weight=None,
                                   reduction="mean", ignore_index=-100, label_smoothing=0.0, **_):
    """fastloss.torch.linear_cross_entropy's PyTorch counterpart (for its exception types)."""
    return F.cross_entropy(F.linear(input, linear_weight, linear_bias), target, weight=weight, reduction=reduction,
                           ignore_index=-100 if ignore_index is None else ignore_index,
                           label_smoothing=label_smoothing)
