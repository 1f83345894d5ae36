"""Random test problems for every loss: option grids, inputs away from kinks, dtype tolerances.

A *case* is a dict of loss options plus an optional ``"target"`` key naming the kind of target to
draw (default: class indices for rowwise losses, the loss's natural float target otherwise).
``PER_CLASS`` stands for a per-class vector, drawn once the number of classes is known.
"""

from __future__ import annotations

import fastloss
import ml_dtypes
import numpy as np

SPECS = {spec.name: spec for spec in fastloss.LOSSES}
NAMES = tuple(SPECS)
ROWWISE = tuple(name for name, spec in SPECS.items() if spec.rowwise)
POINTWISE = tuple(name for name, spec in SPECS.items() if not spec.rowwise)
HAS_IGNORE = tuple(name for name, spec in SPECS.items() if any(o.name == "ignore_index" for o in spec.options))
REDUCTIONS = ("none", "mean", "sum")
FORMS = ("loss", "grad", "with_grad")
DTYPES = ("float32", "float64", "float16", "bfloat16")
NUMPY_DTYPES = {"float32": np.float32, "float64": np.float64, "float16": np.float16,
                "bfloat16": ml_dtypes.bfloat16}

PER_CLASS = "per-class vector"
PER_ELEMENT = "per-element array"  # an array of the input's shape (broadcast_vector options)

# Every option of every loss at least once away from its default, alone and combined, and every
# target kind. Values are chosen to make each term matter (softcap below the logit range, gamma
# on both sides of 1, margins that put some rows on each side of the hinge).
CASES: dict[str, list[dict]] = {
    "cross_entropy": [
        {},
        {"weight": PER_CLASS},
        {"ignore_index": 1},
        {"label_smoothing": 0.1},
        {"label_smoothing": 1.0},
        {"z_loss": 0.1},
        {"softcap": 2.5},
        {"weight": PER_CLASS, "label_smoothing": 0.2, "z_loss": 0.05, "softcap": 4.0, "ignore_index": 3},
        {"target": "soft"},
        {"target": "soft", "weight": PER_CLASS, "label_smoothing": 0.3, "z_loss": 0.1, "softcap": 3.0},
    ],
    "softmax_focal_loss": [
        {},
        {"gamma": 0.0},
        {"gamma": 0.5},
        {"gamma": 5.0},
        {"alpha": 0.25},
        {"alpha": PER_CLASS, "gamma": 1.5},
        {"ignore_index": 2, "gamma": 0.7},
    ],
    "sigmoid_focal_loss": [
        {},
        {"alpha": -1.0},
        {"alpha": 0.75, "gamma": 0.0},
        {"gamma": 0.5},
        {"gamma": 5.0, "alpha": 0.1},
        {"target": "probability"},
        {"target": "probability", "gamma": 0.3, "alpha": -1.0},
        {"target": "int"},
        {"target": "bool"},
    ],
    "hinge_loss": [
        {},
        {"margin": 0.5},
        {"squared": True},
        {"squared": True, "margin": 2.0},
        {"margin": -0.5},
        {"target": "zero_one"},
        {"target": "bool", "squared": True},
    ],
    "multiclass_hinge_loss": [
        {},
        {"squared": True},
        {"margin": 0.3},
        {"weight": PER_CLASS},
        {"ignore_index": 0, "squared": True, "weight": PER_CLASS},
        {"variant": "weston_watkins"},
        {"variant": "weston_watkins", "squared": True},
        {"variant": "weston_watkins", "margin": 2.0, "weight": PER_CLASS},
        {"variant": "weston_watkins", "squared": True, "weight": PER_CLASS},  # w_t after squaring
        {"variant": "weston_watkins", "ignore_index": 1, "squared": True, "margin": 0.5},
    ],
    "huber_loss": [{}, {"delta": 0.5}, {"delta": 3.0}],
    "smooth_l1_loss": [{}, {"beta": 0.5}, {"beta": 0.0}, {"beta": 2.0}],
    "mse_loss": [{}],
    "l1_loss": [{}],
    "log_cosh_loss": [{}],
    "binary_cross_entropy_with_logits": [
        {},
        {"weight": PER_CLASS},
        {"weight": PER_ELEMENT},
        {"pos_weight": 3.0},
        {"pos_weight": PER_CLASS},
        {"weight": PER_ELEMENT, "pos_weight": PER_CLASS, "target": "probability"},
        {"target": "probability", "pos_weight": 0.5},
        {"target": "int"},
        {"target": "bool", "weight": PER_CLASS},
    ],
    "kl_div": [
        {},
        {"target": "with_zeros"},
        {"log_target": True},
    ],
    # the target is the teacher's logits (the spec's logit_targets): drawn as floats of x's shape
    "softmax_kl_div": [{}, {"temperature": 2.5}, {"temperature": 0.5}],
    "wasserstein_loss": [
        {},
        {"p": 2},
        {"ignore_index": 1},
        {"p": 2, "ignore_index": 0},
        {"target": "soft"},
        {"target": "soft", "p": 2},
    ],
    "pseudo_huber_loss": [{}, {"delta": 0.5}, {"delta": 3.0}],
}

# Point-wise losses whose PyTorch-written reference lives here, beside their option grid (so a new
# point-wise loss's tests are one entry in CASES and one here): formula(T, x, y, **options) -> the
# unreduced loss, written with the array module T; tests/torch_reference.py calls it with T = torch
# (float64, gradients and Hessians by torch.autograd). It must not call fastloss.
TORCH_FORMULAS: dict = {
    "pseudo_huber_loss": lambda T, x, y, delta=1.0: delta**2 * (T.sqrt(1 + ((x - y) / delta) ** 2) - 1),
}


def case_id(case: dict) -> str:
    return ",".join(f"{k}={'w' if v is PER_CLASS else 'w_elem' if v is PER_ELEMENT else v}"
                    for k, v in case.items()) or "defaults"


def all_cases():
    """(loss name, case) for every loss and case, with readable ids for parametrize."""
    import pytest

    return [pytest.param(name, case, id=f"{name}[{case_id(case)}]") for name in NAMES
            for case in CASES.get(name, [{}])]  # a new loss still runs on defaults until it gets cases


def resolve(case: dict, classes: int, rng: np.random.Generator, shape: tuple | None = None) -> tuple[dict, str | None]:
    """(loss options, target kind): per-class vectors drawn for ``classes`` classes, per-element
    arrays for ``shape`` (a 0-d input has no class axis: its "per-class" vector is 0-d too)."""
    per_class = () if shape == () else classes
    opts = {k: (rng.uniform(0.3, 2.0, per_class) if v is PER_CLASS else
                rng.uniform(0.3, 2.0, shape) if v is PER_ELEMENT else v) for k, v in case.items()}
    return opts, opts.pop("target", None)


def as_dtype(x64: np.ndarray, dtype: str) -> np.ndarray:
    return np.asarray(x64).astype(NUMPY_DTYPES[dtype])


def loss_shape(name: str, shape: tuple, axis: int = -1) -> tuple:
    if not SPECS[name].rowwise:
        return tuple(shape)
    a = axis % len(shape)
    return tuple(shape[:a]) + tuple(shape[a + 1 :])


def _rows(x: np.ndarray, axis: int) -> np.ndarray:
    return np.moveaxis(x, axis, -1).reshape(-1, x.shape[axis])


def kink_gap(name: str, x: np.ndarray, target: np.ndarray, opts: dict, axis: int = -1) -> np.ndarray:
    """Per row (rowwise, flattened) or element: distance of the input from the nearest kink."""
    if name == "hinge_loss":
        y = np.where(target == 0, -1.0, target.astype(np.float64))
        return np.abs(opts.get("margin", 1.0) - y * x).reshape(-1)
    if name == "l1_loss":
        return np.abs(x - target.astype(np.float64)).reshape(-1)
    if name in ("huber_loss", "smooth_l1_loss"):
        e = np.abs(x - target.astype(np.float64)).reshape(-1)
        threshold = opts.get("delta", opts.get("beta", 1.0))
        return np.minimum(np.abs(e - threshold), e if threshold == 0 else np.inf)
    if name == "wasserstein_loss":
        return _wasserstein_gap(x, target, opts, axis)
    if name != "multiclass_hinge_loss":
        return np.full(target.size if SPECS[name].rowwise else x.size, np.inf)
    s = _rows(x, axis)
    M, C = s.shape
    if C == 1:
        return np.full(M, np.inf)
    t = np.clip(target.reshape(-1), 0, C - 1)
    s_t = s[np.arange(M), t]
    h = opts.get("margin", 1.0) + s - s_t[:, None]
    h[np.arange(M), t] = np.inf
    if opts.get("variant", "crammer_singer") == "weston_watkins":
        return np.min(np.abs(h), axis=1)
    top2 = -np.sort(-np.where(np.isinf(h), -np.inf, h), axis=1)[:, :2]
    return np.minimum(np.abs(top2[:, 0]), top2[:, 0] - top2[:, 1])  # hinge at 0, tie in the max


def _wasserstein_gap(x, target, opts, axis):
    """p=1 with probability targets: min over c < C-1 of |F_c - G_c| (|.| has its kink at 0; the
    last class has F = G = 1)."""
    M = x.size // x.shape[axis]
    if opts.get("p", 1) == 2 or target.dtype.kind in "iu":
        # One-hot G: d = F_c > 0 before the target and F_c - 1 < 0 from it on; a sign lost to
        # rounding (F within an ulp of 1) moves the gradient only by the mass beyond c, below an ulp.
        return np.full(M, np.inf)
    s = _rows(x, axis)
    p = np.exp(s - s.max(axis=1, keepdims=True))
    F = np.cumsum(p / p.sum(axis=1, keepdims=True), axis=1)
    G = np.cumsum(_rows(target.astype(np.float64), axis), axis=1)  # float, or ml_dtypes' bfloat16
    return np.min(np.abs(F - G)[:, :-1], axis=1, initial=np.inf)


def _draw_x(name: str, shape: tuple, rng: np.random.Generator) -> np.ndarray:
    scale = 3.0 if name in ("cross_entropy", "softmax_focal_loss") else 1.5
    return rng.standard_normal(shape) * scale


def _draw_target(name, kind, shape, axis, opts, rng, ignore_fraction):
    spec = SPECS[name]
    if spec.logit_targets:
        return rng.standard_normal(shape) * 3
    if spec.rowwise and kind != "soft":
        C = shape[axis % len(shape)]
        t = rng.integers(0, C, size=loss_shape(name, shape, axis))
        if "ignore_index" in [o.name for o in spec.options] and ignore_fraction:
            ignore = opts.get("ignore_index", -100)
            t = np.where(rng.random(t.shape) < ignore_fraction, ignore, t)
            if t.size and C > 1:  # keep one row counted, or "mean" would be 0/0
                t.reshape(-1)[0] = (ignore + 1) % C
        return t.astype(np.int64)
    if kind == "soft":
        logits = rng.standard_normal(shape) * 2
        p = np.exp(logits - logits.max(axis=axis, keepdims=True))
        return p / p.sum(axis=axis, keepdims=True)
    if name == "kl_div":  # log-probabilities as input; target probabilities (some 0) or log-probabilities
        p = rng.random(shape) + 0.05
        if kind == "with_zeros":
            p = np.where(rng.random(shape) < 0.3, 0.0, p)
        return np.log(p) if opts.get("log_target") else p
    if name in ("sigmoid_focal_loss", "binary_cross_entropy_with_logits"):
        if kind == "probability":
            return rng.random(shape)
        bits = rng.integers(0, 2, size=shape)
        return {"int": bits, "bool": bits.astype(bool)}.get(kind, bits.astype(np.float64))
    if name == "hinge_loss":
        bits = rng.integers(0, 2, size=shape)
        return {"zero_one": bits, "bool": bits.astype(bool)}.get(kind, 2.0 * bits - 1.0)
    return rng.standard_normal(shape) * 1.5


def make_problem(name, shape, rng, case=None, *, dtype="float64", axis=-1, ignore_fraction=0.2,
                 min_gap=1e-3):
    """(x in ``dtype``, target, loss options): inputs at least ``min_gap`` away from every kink.

    Float targets come in ``dtype`` too, so that the float64 reference sees the same values the
    loss does (fastloss reads float targets in the input's dtype)."""
    opts, kind = resolve(case or {}, shape[axis % len(shape)] if shape else 1, rng, tuple(shape))
    target = _draw_target(name, kind, shape, axis, opts, rng, ignore_fraction)
    if target.dtype.kind == "f":
        target = as_dtype(target, dtype)
    x = as_dtype(_draw_x(name, shape, rng), dtype)
    for _ in range(200):
        bad = kink_gap(name, x.astype(np.float64), target, opts, axis) < min_gap
        if not bad.any():
            return x, target, opts
        fresh = as_dtype(_draw_x(name, shape, rng), dtype)
        if SPECS[name].rowwise:
            x_rows, fresh_rows = np.moveaxis(x, axis, -1).copy(), np.moveaxis(fresh, axis, -1)
            flat = x_rows.reshape(-1, x_rows.shape[-1])
            flat[bad] = fresh_rows.reshape(flat.shape)[bad]
            x = np.moveaxis(flat.reshape(x_rows.shape), -1, axis)
        else:
            x = np.where(bad.reshape(x.shape), fresh, x)
    raise AssertionError(f"could not draw {name} inputs away from kinks")


# (rtol, atol relative to the largest magnitude involved) per input dtype. The loss of a 16-bit
# input is computed in float32 from the 16-bit values, so it gets float32's tolerance; the
# gradient is rounded once to the input dtype, hence half an ulp of that dtype on top.
LOSS_TOL = {"float64": 1e-10, "float32": 2e-5, "float16": 2e-5, "bfloat16": 2e-5}
GRAD_TOL = {"float64": 1e-10, "float32": 2e-5, "float16": 1.5e-3, "bfloat16": 1e-2}


def to64(a) -> np.ndarray:
    if hasattr(a, "detach"):
        import torch

        a = a.detach()
        a = a.float() if a.dtype == torch.bfloat16 else a
        return a.numpy().astype(np.float64)
    return np.asarray(a).astype(np.float64)


def assert_close(actual, expected, rtol: float, scale: float = 1.0, what: str = "") -> None:
    """|actual - expected| <= rtol*(|expected| + max(scale, max|expected|)); NaNs must match."""
    actual, expected = to64(actual), to64(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    finite = expected[np.isfinite(expected)]
    size = max(scale, float(np.max(np.abs(finite))) if finite.size else 0.0)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * size, equal_nan=True, err_msg=what)


def call(name: str, form: str, x, target, **kwargs):
    """fastloss.<name>[_grad|_with_grad](x, target, **kwargs)."""
    return getattr(fastloss, name if form == "loss" else f"{name}_{form}")(x, target, **kwargs)
