"""The avx512_bf16 ISA: avx512 with vcvtneps2bf16 rounding float32 to bfloat16. Its results must be
avx512's bit for bit, subnormal float32 values included (the instruction flushes those to zero; the
kernels give a vector holding one the bit trick), and it is the default wherever the CPU has it."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from fastloss import _backends
from problems import NAMES, SPECS, call, make_problem

_C = _backends._C
NATIVE_BF16 = "avx512_bf16"
# tiny ones make many float32 gradients subnormal (below 2^-126 ~ 1.18e-38, and many of them at or
# above bfloat16's smallest subnormal, 2^-133 ~ 9.2e-41)
GRAD_OUTPUTS = (1.0, -0.37, 3e-39, -7.5e-39, 2.2e-38, 1e-37)


def cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def test_offered_and_chosen_exactly_where_the_cpu_has_the_instruction():
    if _C is None:
        return  # no native backend: nothing to choose
    flags = cpu_flags()
    if not flags:
        return  # not Linux: no independent view of the CPU's features here
    has = {"avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512_bf16"} <= flags
    assert (NATIVE_BF16 in _C.available_isas()) == has
    if has:
        assert _C.available_isas()[0] == NATIVE_BF16


def _outputs(name, form, x, t, grad_output, opts):
    out = call(name, form, x, t, reduction="sum", grad_output=grad_output, **opts)
    return out if isinstance(out, tuple) else (out,)


def _bits(a) -> np.ndarray:
    a = np.atleast_1d(np.asarray(a))
    return a.view(np.uint16) if a.dtype == ml_dtypes.bfloat16 else a.view(np.uint8)


def _problems(name, rng):
    rowwise = SPECS[name].rowwise
    for shape in ([(5, 37), (2, 3000)] if rowwise else [(1001,), (4, 37)]):
        x, t, opts = make_problem(name, shape, rng, dtype="bfloat16")
        if rowwise and not SPECS[name].logit_targets:
            x = x.copy()
            x[0] = (x[0].astype(np.float32) * 40).astype(ml_dtypes.bfloat16)  # exps down to e^-90
        yield x, t, opts


@pytest.mark.parametrize("name", NAMES)
def test_bfloat16_results_are_avx512s_bit_for_bit(name, rng):
    if _C is None or NATIVE_BF16 not in _C.available_isas():
        return  # checked above: this CPU has no vcvtneps2bf16
    previous = _C.isa()
    subnormal_grads = 0
    try:
        for x, t, opts in _problems(name, rng):
            for form in ("grad", "with_grad"):
                for grad_output in GRAD_OUTPUTS:
                    got = {}
                    for isa in (NATIVE_BF16, "avx512"):
                        _C.set_isa(isa)
                        got[isa] = _outputs(name, form, x, t, grad_output, opts)
                    for a, b in zip(got[NATIVE_BF16], got["avx512"]):
                        assert np.asarray(a).dtype == np.asarray(b).dtype
                        np.testing.assert_array_equal(_bits(a), _bits(b), err_msg=f"{form} {grad_output}")
                    g = np.asarray(got["avx512"][-1]).astype(np.float32)
                    subnormal_grads += int(np.count_nonzero((g != 0) & (np.abs(g) < np.finfo(np.float32).tiny)))
    finally:
        _C.set_isa(previous)
    assert subnormal_grads > 0  # the flushed case was exercised
