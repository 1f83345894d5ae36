"""Run one case on both backends and classify the outcome."""

from __future__ import annotations

import contextlib
import copy

import fastloss
import ml_dtypes
import numpy as np
from fastloss import _backends

from .cases import Case

# max |native - reference| / max(1, max |reference|) per input dtype (both results are rounded once
# to the dtype from float32 / float64 math).
TOLERANCE = {"float64": 1e-9, "float32": 2e-4, "float16": 4e-3, "bfloat16": 3e-2}
SAME = "same answer"
SAME_ERROR = "same error"
FINDING = "FINDING"


@contextlib.contextmanager
def _native_setup(isa: str | None, threads: int):
    native = _backends._C
    prev_isa = native.isa() if native is not None and isa else None
    prev_threads = fastloss.get_num_threads()
    if prev_isa:
        native.set_isa(isa)
    fastloss.set_num_threads(threads)
    try:
        yield
    finally:
        if prev_isa:
            native.set_isa(prev_isa)
        fastloss.set_num_threads(prev_threads)


def _run(case: Case, backend: str):
    args, kwargs = case.build()
    inputs_before = [copy.deepcopy(a) for a in args]
    out = kwargs.get("out")
    try:
        with fastloss.use_backend(backend), np.errstate(all="ignore"):
            result = getattr(fastloss, case.func)(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - exceptions are compared, not handled
        return None, exc, args, inputs_before, out
    return result, None, args, inputs_before, out


def _arg_names(case: Case, kwargs_names) -> tuple[str, ...]:
    spec = case.spec
    names = {getattr(spec, "input_name", "input"), "input", "target", "reduction", "axis", "grad_output", "out",
             "logits", "scores", "num_threads", "class"}
    names |= {o.name for o in spec.options} | set(kwargs_names)
    return tuple(names)


def _as_f64(a) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype == ml_dtypes.bfloat16 or a.dtype.kind == "f":
        return a.astype(np.float64)
    return a


# Inputs or options beyond this magnitude may overflow an intermediate of the float32 math that 16-
# and 32-bit inputs get (DESIGN 1.3), where the float64 reference stays finite.
FLOAT32_RANGE = 1e30


def _magnitude(args, kwargs) -> float:
    """The largest finite magnitude among the call's numeric inputs and options, counting a tiny
    scalar option (a temperature or threshold of 1e-300) by its reciprocal, which the math divides by."""
    big = 0.0
    for v in list(args) + list(kwargs.values()):
        try:
            a = np.asarray(v, dtype=np.float64)
        except (TypeError, ValueError, OverflowError):
            continue
        a = a[np.isfinite(a)]
        if a.size:
            big = max(big, float(np.max(np.abs(a))))
    for v in kwargs.values():
        if isinstance(v, float) and v != 0 and np.isfinite(v):
            big = max(big, 1.0 / abs(v))
    return big


SCALES = ("grad_output", "sample_weight")  # the arguments that multiply a computed gradient


def _scale_noise(case: Case, kwargs) -> dict[str, np.ndarray]:
    """Where a non-finite scale meets a gradient (or Hessian) that is 0 within rounding.

    grad_output = inf times a gradient that is exactly 0 is NaN, times one that is 1e-50 is inf:
    whether a value that lies near 0 (a probability that underflows in float32 but not in float64,
    1 - tanh(x)**2 at a large x, a cancelling sum, a Hessian that is 0 by structure) comes out as
    exactly 0 decides between NaN and +-inf, and that is not a property of the loss. So where the
    reference's value for a unit scale is below ``NOISE`` rounding steps of the math type (relative
    to the call's largest, at least 1), native may give NaN or +-inf there. Returns a mask per
    output name; empty when every scale is finite."""
    scales = {k: kwargs[k] for k in SCALES if kwargs.get(k) is not None}
    try:
        finite = all(np.all(np.isfinite(np.asarray(v, dtype=np.float64))) for v in scales.values())
    except (TypeError, ValueError, OverflowError):
        return {}
    if finite:
        return {}
    args, kw = case.build()
    for k, v in scales.items():
        kw[k] = np.ones(np.shape(v)) if np.ndim(v) else 1.0
    kw.pop("out", None)
    try:
        with fastloss.use_backend("numpy"), np.errstate(all="ignore"):
            unit = getattr(fastloss, case.func)(*args, **kw)
    except Exception:  # noqa: BLE001 - then the call itself raises, and nothing is compared
        return {}
    names = ("grad", "hess") if case.func.endswith("_grad_hess") else ("loss", "grad")
    results = dict(zip(names, unit)) if isinstance(unit, tuple) else {"grad": unit}
    eps = 2.0**-52 if case.dtype == "float64" else 2.0**-23
    masks = {}
    for what, value in results.items():
        value = _as_f64(value)
        fin = np.abs(value[np.isfinite(value)])
        masks[what] = np.abs(value) <= NOISE * eps * max(1.0, float(fin.max()) if fin.size else 1.0)
    return masks


def _beyond_float32(kwargs) -> bool:
    """An option, scale or weight that float32 math cannot hold: finite beyond its maximum, or
    nonzero below its smallest normal (it becomes +-inf or 0 there, and inf - inf, 0 * inf follow)."""
    for v in kwargs.values():
        try:
            a = np.abs(np.asarray(v, dtype=np.float64))
        except (TypeError, ValueError, OverflowError):
            continue
        a = a[np.isfinite(a) & (a != 0)]
        if a.size and (a.max() > 3.4028234663852886e38 or a.min() < 1.1754943508222875e-38):
            return True
    return False


NOISE = 1e3  # rounding steps: a gradient summed over thousands of classes (wasserstein's suffix sums)


def _compare_values(got, want, dtype: str, what: str, float32_range: bool | str = False,
                    loose: np.ndarray | None = None) -> str | None:
    if type(got) is not type(want) and not (isinstance(got, float) and isinstance(want, float)):
        return f"{what}: type {type(got).__name__} vs reference {type(want).__name__}"
    g, w = np.asarray(got), np.asarray(want)
    if g.shape != w.shape or g.dtype != w.dtype:
        return f"{what}: shape/dtype {g.shape} {g.dtype} vs reference {w.shape} {w.dtype}"
    g, w = _as_f64(g), _as_f64(w)
    if float32_range == "options":  # an option float32 cannot hold: inf/nan on either side
        spilt = ~np.isfinite(g) | ~np.isfinite(w)
        g, w = np.where(spilt, 0.0, g), np.where(spilt, 0.0, w)
    elif float32_range:  # a non-finite native value where the reference is finite: float32 overflow
        # (or nan where the reference is +-inf: two overflowed float32 terms of opposite signs)
        spilt = ~np.isfinite(g) & (np.isfinite(w) | (np.isnan(g) & np.isinf(w)))
        g, w = np.where(spilt, 0.0, g), np.where(spilt, 0.0, w)
    if loose is not None and loose.shape == g.shape:  # a non-finite scale times a value ~ 0 (_scale_noise)
        either = loose & (~np.isfinite(g) | ~np.isfinite(w))
        g, w = np.where(either, 0.0, g), np.where(either, 0.0, w)
    if not np.array_equal(np.isnan(g), np.isnan(w)):
        i = np.argmax(np.isnan(g) != np.isnan(w))
        return f"{what}: nan at flat index {i}: native {g.reshape(-1)[i]!r} vs reference {w.reshape(-1)[i]!r}"
    inf = np.isinf(w) | np.isinf(g)
    if not np.array_equal(g[inf], w[inf]):
        i = np.argmax(inf.reshape(-1) & (g.reshape(-1) != w.reshape(-1)))
        return f"{what}: inf at flat index {i}: native {g.reshape(-1)[i]!r} vs reference {w.reshape(-1)[i]!r}"
    fin = np.isfinite(w)
    if not fin.any():
        return None
    scale = max(1.0, float(np.max(np.abs(w[fin]))))
    err = float(np.max(np.abs(g[fin] - w[fin]))) / scale
    if err > TOLERANCE[dtype]:
        i = int(np.argmax(np.abs(np.where(fin, g - w, 0)).reshape(-1)))
        return (f"{what}: error {err:.3g} > {TOLERANCE[dtype]} (flat index {i}: native {g.reshape(-1)[i]!r}, "
                f"reference {w.reshape(-1)[i]!r})")
    return None


def _inputs_unchanged(args, before, out) -> str | None:
    outs = out if isinstance(out, (tuple, list)) else (out,)
    for a, b, name in zip(args, before, ("input", "target")):
        if isinstance(a, np.ndarray) and not any(a is o for o in outs):
            same = a.tobytes() == b.tobytes() if a.dtype.kind != "O" else np.array_equal(a, b)
            if not same:
                return f"{name} was modified by the call"
    return None


def outcome(case: Case) -> tuple[str, str]:
    """(SAME | SAME_ERROR | FINDING, detail)."""
    if "native" not in _backends.available():
        return SAME, "no native backend"
    if case.kind != "core":
        from .adapter_cases import adapter_outcome

        return adapter_outcome(case)
    with _native_setup(case.isa, case.threads):
        got, gexc, gargs, gbefore, gout = _run(case, "native")
    want, wexc, wargs, wbefore, wout = _run(case, "numpy")
    if gexc is not None or wexc is not None:
        if gexc is None or wexc is None:
            raiser, exc = ("numpy", wexc) if gexc is None else ("native", gexc)
            return FINDING, f"only the {raiser} backend raised {type(exc).__name__}: {exc}"
        if type(gexc) is not type(wexc):
            return FINDING, (f"different errors: native {type(gexc).__name__}: {gexc} / "
                             f"numpy {type(wexc).__name__}: {wexc}")
        if not isinstance(gexc, (TypeError, ValueError)):
            return FINDING, f"unclear error type {type(gexc).__name__}: {gexc}"
        _, kwargs = case.build()
        msg = str(gexc)
        if not any(n in msg for n in _arg_names(case, kwargs)):
            return FINDING, f"error names no argument: {type(gexc).__name__}: {msg}"
        return SAME_ERROR, f"{type(gexc).__name__}: {msg}"
    problems = []
    grad_hess = case.func.endswith("_grad_hess")
    if isinstance(want, tuple):
        if not isinstance(got, tuple) or len(got) != len(want):
            return FINDING, f"result structure {type(got).__name__} vs {type(want).__name__}"
        pairs = list(zip(("grad", "hess") if grad_hess else ("loss", "grad"), got, want))
    else:
        pairs = [("grad" if case.func.endswith("_grad") else "loss", got, want)]
    args, kwargs = case.build()
    f32: bool | str = case.dtype != "float64" and _magnitude(args, kwargs) > FLOAT32_RANGE
    if case.dtype != "float64" and _beyond_float32(kwargs):
        f32 = "options"
    noise = _scale_noise(case, kwargs)
    outs = gout if isinstance(gout, tuple) else (None, gout)
    for what, g, w in pairs:
        p = _compare_values(g, w, case.dtype if case.dtype in TOLERANCE else "float64", what, f32, noise.get(what))
        if p:
            problems.append(p)
        o = outs[0] if grad_hess and what == "grad" else outs[1] if grad_hess else gout
        if what in ("grad", "hess") and isinstance(o, np.ndarray) and g is not o:
            problems.append(f"{what} is not the out= array")
    for a, b, o in ((gargs, gbefore, gout), (wargs, wbefore, wout)):
        p = _inputs_unchanged(a, b, o)
        if p:
            problems.append(p)
    return (FINDING, "; ".join(problems)) if problems else (SAME, "")
