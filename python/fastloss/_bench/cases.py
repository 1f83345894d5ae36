"""Benchmark inputs built from the registry alone, and the timed fastloss call on them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .. import _api
from .._registry import LossSpec
from .accounting import FORMS, bytes_moved


class Skip(Exception):
    """A competitor or case that cannot run here; the message says why (it lands in the results)."""


@dataclass
class Case:
    """One loss, form, dtype and shape, with its data. ``x`` is NumPy (bfloat16 via ml_dtypes)."""

    spec: LossSpec
    form: str
    dtype: str
    shape: tuple[int, ...]
    x: np.ndarray
    target: np.ndarray  # rowwise: int64 (N,); pointwise: the input's dtype, x's shape
    grad_out: np.ndarray | None  # preallocated gradient destination (out=), None for forward
    opts: dict[str, Any] = field(default_factory=dict)  # the registry's defaults

    @property
    def nbytes(self) -> int:
        return bytes_moved(self.spec, self.form, self.shape, self.dtype)

    @property
    def label(self) -> str:
        return f"{self.spec.name} {self.form} {self.dtype} {'x'.join(map(str, self.shape))}"


def numpy_dtype(dtype: str):
    if dtype == "bfloat16":
        try:
            import ml_dtypes
        except ImportError:
            raise Skip("bfloat16 NumPy arrays need ml_dtypes (pip install ml_dtypes)") from None
        return ml_dtypes.bfloat16
    return np.dtype(dtype)


def make_case(spec: LossSpec, form: str, dtype: str, shape: tuple[int, ...], seed: int = 0) -> Case:
    """Inputs for ``spec`` from the registry alone: logits ~ N(0, 2^2); rowwise targets uniform
    class indices; pointwise targets the extremes of ``target_values`` (so {-1, +1} for hinge,
    {0, 1} for focal), else N(0, 1) regression targets; all in the input's dtype."""
    rng = np.random.default_rng(seed)
    nd = numpy_dtype(dtype)
    x = (2.0 * rng.standard_normal(shape, dtype=np.float32)).astype(nd)
    if spec.logit_targets:  # a teacher's logits, like the input's
        target = (2.0 * rng.standard_normal(shape, dtype=np.float32)).astype(nd)
    elif spec.rowwise:
        target = rng.integers(0, shape[-1], size=shape[:-1], dtype=np.int64)
    elif spec.target_values is not None:
        lo, hi = min(spec.target_values), max(spec.target_values)
        target = np.where(rng.random(shape) < 0.5, lo, hi).astype(nd)
    else:
        target = rng.standard_normal(shape, dtype=np.float32).astype(nd)
    grad_out = None if form == "forward" else np.empty_like(x)
    opts = {k: v for k, v in spec.defaults().items() if k not in ("axis", "reduction")}
    return Case(spec, form, dtype, tuple(shape), x, target, grad_out, opts)


def fastloss_fn(case: Case, allocate: bool = False) -> Callable[[], Any]:
    """The timed fastloss call; the gradient goes into a preallocated ``out=`` unless ``allocate``."""
    fn = _api.FUNCTIONS[case.spec.name + FORMS[case.form]]
    if case.form == "forward" or allocate:
        return lambda: fn(case.x, case.target)
    return lambda: fn(case.x, case.target, out=case.grad_out)
