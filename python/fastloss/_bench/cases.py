"""Benchmark inputs built from the loss table (``fastloss.LOSSES``) alone, and the timed fastloss
call on them (through the public functions)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

import fastloss

from .accounting import FORMS, bytes_moved

if TYPE_CHECKING:
    from .._registry import LossSpec


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
    target: np.ndarray  # rowwise: int64 (N,) or probabilities; pointwise: the input's dtype, x's shape
    grad_out: np.ndarray | None  # preallocated gradient destination (out=), None for forward
    opts: dict[str, Any] = field(default_factory=dict)  # the loss's default options

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


# Target recipes, tried in order until the loss's own validation accepts one (so a loss added to
# LOSSES is benchmarked without a line here): rowwise class indices, else probabilities of the
# input's shape (soft targets, target logits); pointwise the extremes of ``target_values``, else
# N(0, 1) regression targets, else uniform [0, 1] (probabilities, soft labels).
def _class_indices(spec, shape, nd, rng):
    return rng.integers(0, shape[-1], size=shape[:-1], dtype=np.int64)


def _probabilities(spec, shape, nd, rng):
    z = np.exp(rng.standard_normal(shape, dtype=np.float32))
    return (z / z.sum(axis=-1, keepdims=True)).astype(nd)


def _extreme_values(spec, shape, nd, rng):
    values = getattr(spec, "target_values", None)
    if values is None:
        return None
    return np.where(rng.random(shape) < 0.5, min(values), max(values)).astype(nd)


def _normal(spec, shape, nd, rng):
    return rng.standard_normal(shape, dtype=np.float32).astype(nd)


def _unit_interval(spec, shape, nd, rng):
    return rng.random(shape, dtype=np.float32).astype(nd)


_ROWWISE_TARGETS = (_class_indices, _probabilities)
_POINTWISE_TARGETS = (_extreme_values, _normal, _unit_interval)


def default_options(spec) -> dict[str, Any]:
    """The loss's options at their defaults (no ``axis``/``reduction``: the calls use theirs)."""
    return {o.name: o.default for o in spec.options}


def _target_recipe(spec, nd) -> Callable:
    """The first target recipe the loss accepts, tried on a two-row input."""
    probe_shape = (2, 3) if spec.rowwise else (6,)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(probe_shape, dtype=np.float32).astype(nd)
    loss = getattr(fastloss, spec.name)
    errors = []
    for recipe in _ROWWISE_TARGETS if spec.rowwise else _POINTWISE_TARGETS:
        target = recipe(spec, probe_shape, nd, rng)
        if target is None:
            continue
        try:
            loss(x, target)
        except (TypeError, ValueError) as exc:
            errors.append(f"{recipe.__name__[1:]}: {exc}")
            continue
        return recipe
    raise Skip(f"no benchmark target accepted by {spec.name} ({'; '.join(errors)[:200]})")


def make_case(spec: LossSpec, form: str, dtype: str, shape: tuple[int, ...], seed: int = 0) -> Case:
    """Inputs for ``spec`` from the loss table alone: logits ~ N(0, 2^2); rowwise targets uniform
    class indices (or row-wise probabilities when the loss takes no indices); pointwise targets
    the extremes of ``target_values`` (so {-1, +1} for hinge, {0, 1} for focal), else N(0, 1)
    regression targets (or uniform [0, 1] when the loss wants probabilities); float targets in
    the input's dtype."""
    rng = np.random.default_rng(seed)
    nd = numpy_dtype(dtype)
    recipe = _target_recipe(spec, nd)
    x = (2.0 * rng.standard_normal(shape, dtype=np.float32)).astype(nd)
    target = recipe(spec, tuple(shape), nd, rng)
    grad_out = None if form == "forward" else np.empty_like(x)
    return Case(spec, form, dtype, tuple(shape), x, target, grad_out, default_options(spec))


def fastloss_fn(case: Case, allocate: bool = False) -> Callable[[], Any]:
    """The timed fastloss call; the gradient goes into a preallocated ``out=`` unless ``allocate``."""
    fn = getattr(fastloss, case.spec.name + FORMS[case.form])
    if case.form == "forward" or allocate:
        return lambda: fn(case.x, case.target)
    return lambda: fn(case.x, case.target, out=case.grad_out)
