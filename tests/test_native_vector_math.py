"""ULP error of the math vocabulary of loss headers (csrc/fastloss/math_ops.h) on every ISA.

The kernels' accuracy rests on these functions, so each ISA's version is held to the bound stated
in math_ops.h and csrc/cpu/simd/vmath_f32.h, against float64 NumPy as the reference (float32) or
the C library's float64 through NumPy (float64). Inputs: random float32 bit patterns covering each
function's domain plus its edge points (0, subnormals, overflow/underflow thresholds, +-inf, NaN).
The NEON tier runs the same checks under qemu (tests/neon_driver.cpp's vmath mode).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from fastloss import _backends, _spec

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


# ---- the whole vocabulary, float32 and float64, every tier ---------------------------------------

def _sigmoid(v):
    with np.errstate(over="ignore"):
        return np.where(v >= 0, 1 / (1 + np.exp(-v)), np.exp(v) / (1 + np.exp(v)))


def _sign(v):
    return np.sign(v)


def _unary(lo, hi):
    return lambda rng, n: (_inputs_n(lo, hi, rng, n),)


def _inputs_n(lo, hi, rng, n):
    """About n inputs in [lo, hi]: random bit patterns, the edge points, uniform values in [-10, 10]."""
    bits = rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32)
    x = np.concatenate([bits.view(np.float32), EDGES, rng.uniform(-10, 10, n // 10).astype(np.float32)])
    return x[(x >= lo) & (x <= hi)]


def _pow_operands(rng, n):
    a = np.exp(rng.uniform(-8, 8, n)).astype(np.float32)  # a in [3e-4, 3e3], b in [-10, 10]: finite results
    b = rng.uniform(-10, 10, n).astype(np.float32)
    b[: n // 10] = np.round(b[: n // 10])  # integral exponents too
    return a, b


def _div_operands(rng, n):
    # fl_div's domain: a finite normal b with a normal reciprocal, and a finite quotient
    b = (rng.choice([-1, 1], n) * np.exp2(rng.uniform(-60, 60, n))).astype(np.float32)
    return rng.standard_normal(n).astype(np.float32) * np.exp2(rng.uniform(-40, 40, n)).astype(np.float32), b


def _two(rng, n):
    a, b = (rng.standard_normal(n).astype(np.float32) for _ in range(2))
    a[:50], b[50:100] = np.nan, np.nan
    b[100:150] = a[100:150]
    return a, b


def _three(rng, n):
    return tuple(rng.standard_normal(n).astype(np.float32) * 10 for _ in range(3))


# name: (float64 reference of the operands, operand draw, max ulp of the SIMD float32 versions, of the
# scalar tier (the C library), of float64 against NumPy's float64). Bounds as stated in math_ops.h.
VOCABULARY = {
    "exp": (np.exp, _unary(-104.0, 89.0), 1.0, 1.0, 1.0),
    "exp_nonpos": (np.exp, _unary(-104.0, 0.0), 1.0, 1.0, 1.0),
    "expm1": (np.expm1, _unary(-104.0, 89.0), 1.5, 1.0, 1.0),
    "log": (np.log, _unary(0.0, np.inf), 1.0, 1.0, 1.0),
    "log1p": (np.log1p, _unary(-1.0, np.inf), 1.5, 1.0, 1.0),
    "log1p_unit": (np.log1p, _unary(0.0, 1.0), 2.0, 1.0, 1.0),
    "tanh": (np.tanh, _unary(-np.inf, np.inf), 1.5, 2.5, 2.0),
    "sqrt": (np.sqrt, _unary(0.0, np.inf), 0.5, 0.5, 0.5),
    "rsqrt": (lambda v: 1 / np.sqrt(v), _unary(0.0, np.inf), 1.5, 1.5, 1.5),
    "sigmoid": (_sigmoid, _unary(-np.inf, np.inf), 3.0, 3.0, 3.0),
    "softplus": (lambda v: np.logaddexp(0.0, v), _unary(-np.inf, np.inf), 3.0, 3.0, 3.0),
    "abs": (np.abs, _unary(-np.inf, np.inf), 0.0, 0.0, 0.0),
    "neg": (np.negative, _unary(-np.inf, np.inf), 0.0, 0.0, 0.0),
    "sign": (_sign, _unary(-np.inf, np.inf), 0.0, 0.0, 0.0),
    # fl_min / fl_max return b when either operand is NaN
    "min": (lambda a, b: np.where(np.isnan(a) | np.isnan(b), b, np.minimum(a, b)), _two, 0.0, 0.0, 0.0),
    "max": (lambda a, b: np.where(np.isnan(a) | np.isnan(b), b, np.maximum(a, b)), _two, 0.0, 0.0, 0.0),
    "div": (np.divide, _div_operands, 1.0, 0.5, 0.5),
    "pow": (np.power, _pow_operands, 1.0, 1.0, 1.0),
    "fma": (lambda a, b, c: a * b + c, _three, 0.5, 0.5, 0.5),  # float32 a*b is exact in float64
    "select": (lambda a, b, c: np.where(a > 0, b, c), _three, 0.0, 0.0, 0.0),
}
ISAS = _C.available_isas() if _C is not None else []


def _ulp_error_of(got, ref, dtype) -> float:
    """Worst error in units of the last place of ``dtype`` (NaN where the reference is NaN: 0)."""
    if dtype == np.float32:
        return float(np.max(_ulp_error(got, ref), initial=0.0))
    with np.errstate(invalid="ignore"):
        spacing = np.spacing(np.abs(ref))
        err = np.abs(got - ref) / spacing
    same = (got == ref) | (np.isnan(got) & np.isnan(ref))
    return float(np.max(np.where(same, 0.0, err), initial=0.0))


def _operands(name, rng, n, dtype):
    ops = VOCABULARY[name][1](rng, n)
    if dtype == np.float64:  # float32 values, widened, plus float64-only digits where the domain allows
        ops = tuple(o.astype(np.float64) for o in ops)
    return ops


def _max_ulp(name, isa, dtype) -> float:
    _, _, simd, scalar, f64 = VOCABULARY[name]
    return f64 if dtype == np.float64 else scalar if isa == "scalar" else simd


def _check(name, isa, dtype, run, rng, n=300_000):
    ref_fn = VOCABULARY[name][0]
    ops = _operands(name, rng, n, dtype)
    got = run(name, ops, dtype)
    with np.errstate(all="ignore"):
        ref = ref_fn(*(o.astype(np.float64) for o in ops))
    err = _ulp_error_of(got, ref, dtype)
    assert err <= _max_ulp(name, isa, dtype), f"{name} on {isa}, {np.dtype(dtype).name}: {err:.2f} ulp"


def _native(isa):
    def run(name, ops, dtype):
        previous = _C.isa()
        _C.set_isa(isa)
        try:
            return _C._vector_math(name, *ops)
        finally:
            _C.set_isa(previous)
    return run


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("name", list(VOCABULARY))
def test_vocabulary_accuracy(name, isa, dtype, rng):
    _check(name, isa, dtype, _native(isa), rng)


def test_the_hook_runs_exactly_the_documented_vocabulary():
    """Every name math_ops.h documents is in the hook's list (so in these tests), and back."""
    header = (Path(__file__).resolve().parent.parent / "csrc" / "fastloss" / "math_ops.h")
    if not header.is_file():
        pytest.skip("needs the source tree")
    documented = set(re.findall(r"(?:^//   |, )(?:fl_)?(\w+)\([am],?", header.read_text(), re.MULTILINE))
    assert documented == set(VOCABULARY) - {"neg"}, documented ^ (set(VOCABULARY) - {"neg"})


def test_a_function_outside_the_vocabulary_is_refused():
    with pytest.raises(ValueError, match="cbrt"):
        _C._vector_math("cbrt", np.float32([1.0]))
    with pytest.raises(ValueError, match="pow takes 2"):
        _C._vector_math("pow", np.float32([1.0]))


# ---- NEON, under qemu ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def neon_driver():
    from test_neon_qemu import build_driver, require_tools

    require_tools()
    return build_driver(sorted(name for name, _ in _spec.kernel_params()))


def _neon(exe, tmp_path):
    def run(name, ops, dtype):
        code = 1 if dtype == np.float64 else 0  # FL_FLOAT64 / FL_FLOAT32
        header = np.array([HOOK_ORDER.index(name), code, ops[0].size, len(ops)], dtype=np.int64)
        (tmp_path / "in").write_bytes(header.tobytes() + b"".join(np.ascontiguousarray(o, dtype).tobytes() for o in ops))
        subprocess.run([QEMU, str(exe), "vmath", "neon", str(tmp_path / "in"), str(tmp_path / "out")], check=True,
                       capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        return np.frombuffer((tmp_path / "out").read_bytes(), dtype=dtype)

    return run


QEMU = "qemu-aarch64"
HOOK_ORDER = ("exp", "log", "log1p", "tanh", "log1p_unit", "exp_nonpos", "expm1", "sqrt", "rsqrt", "sigmoid",
              "softplus", "abs", "sign", "neg", "min", "max", "div", "pow", "fma", "select")


def test_hook_order_matches_the_header():
    hook = Path(__file__).resolve().parent.parent / "csrc" / "cpu" / "vector_math_hook.h"
    if not hook.is_file():
        pytest.skip("needs the source tree")
    assert tuple(re.findall(r"^  X\((\w+),", hook.read_text(), re.MULTILINE)) == HOOK_ORDER


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_neon_vocabulary_accuracy(neon_driver, dtype, rng, tmp_path):
    run = _neon(neon_driver, tmp_path)
    for name in VOCABULARY:
        _check(name, "neon", dtype, run, rng, n=100_000)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("isa", ISAS)
def test_nan_propagates_through_the_vocabulary(isa, dtype):
    run = _native(isa)
    for name, (_, draw, *_) in VOCABULARY.items():
        arity = len(draw(np.random.default_rng(0), 16))
        got = run(name, (np.full(11, np.nan, dtype),) * arity, dtype)  # 11: a whole vector and a tail
        assert np.isnan(got).all(), f"{name} on {isa}: {got}"
