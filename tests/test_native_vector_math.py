"""ULP error of the native vectorised float32 math (exp, log, log1p, tanh, log1p_unit) on every ISA.

The kernels' accuracy rests on these functions, so each ISA's version is held to the bound stated
in csrc/cpu/simd/vmath_f32.h, against float64 NumPy as the reference. Inputs: random float32 bit
patterns covering each function's domain plus its edge points (0, subnormals, overflow/underflow
thresholds, +-inf, NaN).
"""

from __future__ import annotations

import numpy as np
import pytest
from fastloss import _backends

_C = _backends._C
pytestmark = pytest.mark.skipif(_C is None, reason="fastloss._C is not built")

# (reference, domain low, domain high, max ulp of the SIMD versions) as documented in vmath_f32.h
FUNCTIONS = {
    "exp": (np.exp, -104.0, 89.0, 1.0),
    "log": (np.log, 0.0, np.inf, 1.0),
    "log1p": (np.log1p, -1.0, np.inf, 1.5),
    "tanh": (np.tanh, -np.inf, np.inf, 1.5),
    "log1p_unit": (np.log1p, 0.0, 1.0, 2.0),
}
SCALAR_MAX_ULP = 2.5  # the scalar ISA is the C library's float math (glibc tanhf: 2.17 ulp)
EDGES = np.array([0.0, -0.0, 1e-45, 1e-40, 1.1754942e-38, 1.0, -1.0, 0.5, 0.625, -0.625, 88.72, 88.73,
                  -87.3, -103.9, 1e-8, -1e-8, 3.4e38, np.inf, -np.inf], dtype=np.float32)


def _inputs(lo: float, hi: float, rng) -> np.ndarray:
    bits = rng.integers(0, 2**32, 2_000_000, dtype=np.uint64).astype(np.uint32)
    x = np.concatenate([bits.view(np.float32), EDGES, rng.uniform(-10, 10, 200_000).astype(np.float32)])
    x = x[np.isfinite(x) | np.isinf(x)]
    return x[(x >= lo) & (x <= hi)]


def _ulp_error(got: np.ndarray, ref: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        ref32 = ref.astype(np.float32)
    spacing = np.spacing(np.abs(ref32)).astype(np.float64)
    with np.errstate(invalid="ignore"):
        err = np.abs(got.astype(np.float64) - ref) / spacing
    same = (got.astype(np.float64) == ref32.astype(np.float64)) | (np.isnan(got) & np.isnan(ref))
    return np.where(same, 0.0, err)


@pytest.mark.parametrize("isa", _C.available_isas() if _C is not None else [])
@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_vector_math_ulp(isa, name, rng):
    ref_fn, lo, hi, max_ulp = FUNCTIONS[name]
    max_ulp = SCALAR_MAX_ULP if isa == "scalar" else max_ulp
    x = _inputs(lo, hi, rng)
    previous = _C.isa()
    _C.set_isa(isa)
    try:
        got = _C._vector_math(name, x)
    finally:
        _C.set_isa(previous)
    with np.errstate(all="ignore"):
        ref = ref_fn(x.astype(np.float64))
    err = _ulp_error(got, ref)
    worst = int(np.argmax(err))
    assert err[worst] <= max_ulp, f"{name}({x[worst]!r}) = {got[worst]!r}, float64 gives {ref[worst]!r}"


@pytest.mark.parametrize("isa", _C.available_isas() if _C is not None else [])
def test_vector_math_special_values(isa):
    previous = _C.isa()
    _C.set_isa(isa)
    try:
        f = _C._vector_math
        nan = np.float32(np.nan)
        assert np.array_equal(f("exp", np.float32([-np.inf, np.inf, -200])), np.float32([0, np.inf, 0]))
        assert np.isnan(f("exp", np.float32([nan]))[0])
        assert np.array_equal(f("log", np.float32([0, np.inf, 1])), np.float32([-np.inf, np.inf, 0]))
        assert np.isnan(f("log", np.float32([-1, nan]))).all()
        assert np.array_equal(f("log1p", np.float32([-1, np.inf, 0])), np.float32([-np.inf, np.inf, 0]))
        assert np.array_equal(f("tanh", np.float32([-np.inf, np.inf, 0, 30])), np.float32([-1, 1, 0, 1]))
        assert np.isnan(f("tanh", np.float32([nan]))[0])
    finally:
        _C.set_isa(previous)
