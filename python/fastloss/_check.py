"""``python -m fastloss check``: every loss of every backend (every ISA of the native one) against
the float64 NumPy reference, on small random problems. Exit code 1 on any mismatch.

Each cell of the table is the worst error divided by its tolerance (< 1 passes), where the error
of a result r against the reference e is ``max|r - e| / max(1, max|e|)`` over loss and gradient.
"""

from __future__ import annotations

import contextlib

import numpy as np

from . import _backends
from ._api import FUNCTIONS
from ._registry import LOSSES, LossSpec

DTYPES = ("float64", "float32", "float16")
TOLERANCE = {"float64": 1e-10, "float32": 1e-4, "float16": 2e-3}
# Unaligned on purpose: 7 rows, 33 classes (two AVX-512 float32 vectors plus a tail), 185 elements.
ROWWISE_SHAPE, POINTWISE_SHAPE = (7, 33), (5, 37)
# Every option away from its default at once (the spec's examples); ignore_index keeps its default
# so that the ignored row below exercises it with soft targets too.
NON_DEFAULT = {
    spec.name: {o.name: o.spec.example for o in spec.options if o.name != "ignore_index"} for spec in LOSSES
}


def implementations() -> list[tuple[str, str | None]]:
    """(backend, ISA or None): numpy, then native once per ISA this CPU can run."""
    out: list[tuple[str, str | None]] = []
    for name in _backends.available():
        isas = _backends._C.available_isas() if name == "native" else [None]
        out += [(name, isa) for isa in isas]
    return out


@contextlib.contextmanager
def running_on(backend: str, isa: str | None):
    """Calls inside run on ``backend`` with the native ``isa`` selected (restored on exit)."""
    native = _backends._C
    previous = native.isa() if isa is not None else None
    if isa is not None:
        native.set_isa(isa)
    try:
        with _backends.use_backend(backend):
            yield
    finally:
        if previous is not None:
            native.set_isa(previous)


def problems(spec: LossSpec, rng: np.random.Generator):
    """(x float64, target, options) for the defaults, every option changed, and soft targets."""
    shape = ROWWISE_SHAPE if spec.rowwise else POINTWISE_SHAPE
    classes = shape[-1]
    x = rng.standard_normal(shape) * 2
    if spec.logit_targets:  # the teacher's logits (softmax_kl_div)
        target = rng.standard_normal(shape) * 2
    elif spec.rowwise:
        target = rng.integers(0, classes, shape[0])
        if any(o.name == "ignore_index" for o in spec.options):
            target[1] = -100
    elif spec.target_values is not None:
        target = rng.choice(np.array(spec.target_values, dtype=np.float64), shape)
    elif spec.target_range is not None:  # kl_div's probabilities: [0, 1) lies in every range
        target = rng.random(shape)
    else:
        target = rng.standard_normal(shape)
    options = {k: rng.uniform(0.5, 2.0, classes) if v == "per-class" else v
               for k, v in NON_DEFAULT[spec.name].items()}
    yield x, target, {}
    yield x, target, options
    if spec.soft_targets:
        soft = rng.random(shape)
        yield x, soft / soft.sum(axis=-1, keepdims=True), options


def _error(result, expected) -> float:
    result, expected = np.asarray(result, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    if result.shape != expected.shape:
        return np.inf
    same_nan = np.isnan(result) == np.isnan(expected)
    if not same_nan.all():
        return np.inf
    diff = np.abs(np.where(np.isnan(expected), 0.0, result - expected))
    return float(np.max(diff, initial=0.0) / max(1.0, float(np.max(np.abs(np.nan_to_num(expected)), initial=0))))


def worst_error(spec: LossSpec, dtype: str, backend: str, isa: str | None, seed: int) -> float:
    """max over the problems and reductions of error / tolerance (inf on an exception)."""
    with_grad = FUNCTIONS[f"{spec.name}_with_grad"]
    worst = 0.0
    for x, target, options in problems(spec, np.random.default_rng(seed)):
        x = x.astype(dtype)
        if target.dtype.kind == "f":
            target = target.astype(dtype)
        for reduction in ("none", "mean"):
            with running_on("numpy", None):
                expected = with_grad(x.astype(np.float64), target.astype(np.float64) if target.dtype.kind == "f"
                                     else target, reduction=reduction, **options)
            try:
                with running_on(backend, isa):
                    got = with_grad(x, target, reduction=reduction, **options)
            except Exception:  # noqa: BLE001 - a crash is a failed check, reported in the table
                return np.inf
            worst = max(worst, _error(got[0], expected[0]), _error(got[1], expected[1]))
    return worst / TOLERANCE[dtype]


def main() -> int:
    rows = [(f"{b}-{isa}" if isa else b, b, isa) for b, isa in implementations()]
    print("fastloss check: each loss against the float64 NumPy reference (error / tolerance; < 1 passes)")
    width = max(len(spec.name) for spec in LOSSES) + 2
    label_width = max(len(label) for label, _, _ in rows) + 2
    print(f"{'backend':<{label_width}}{'loss':<{width}}" + "".join(f"{d:>10}" for d in DTYPES))
    failures = 0
    for label, backend, isa in rows:
        for seed, spec in enumerate(LOSSES):
            ratios = [worst_error(spec, dtype, backend, isa, seed) for dtype in DTYPES]
            failures += sum(not r < 1 for r in ratios)
            cells = "".join(f"{r:>10.3f}" if r < 1 else f"{'FAIL ' + format(r, '.3g'):>10}" for r in ratios)
            print(f"{label:<{label_width}}{spec.name:<{width}}{cells}")
    checks = len(rows) * len(LOSSES) * len(DTYPES)
    print(f"{checks - failures} of {checks} checks passed" + ("" if not failures else f", {failures} FAILED"))
    return 1 if failures else 0
