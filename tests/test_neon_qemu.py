"""The aarch64 NEON tier, cross-compiled and run under qemu-aarch64, against the scalar tier and the
float64 NumPy reference: every loss, option case, form, reduction and dtype.

No aarch64 Python is needed. The public API is called on this machine with ``fastloss._C``'s two
kernel entry points wrapped: the first pass records every kernel call it makes (arguments and
inputs), ``tests/neon_driver.cpp`` (built with aarch64-linux-gnu-g++, run by qemu-aarch64) replays
those calls through the C ABI on the NEON and on the scalar tier, and the second pass answers each
kernel call with the NEON outputs. So the NEON results go through the real front end (reductions,
grad_output, out=) and are compared with the NumPy backend like any other backend's results.

Needs ``aarch64-linux-gnu-g++`` and ``qemu-aarch64`` (Debian: g++-aarch64-linux-gnu, qemu-user);
.ci/run installs them.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import fastloss
import ml_dtypes
import numpy as np
import pytest
from fastloss import _fast
from problems import (
    CASES,
    DTYPES,
    GRAD_TOL,
    LOSS_TOL,
    NAMES,
    SPECS,
    assert_close,
    call,
    loss_shape,
    make_problem,
)

ROOT = Path(__file__).resolve().parents[1]
CXX, QEMU = "aarch64-linux-gnu-g++", "qemu-aarch64"
# The positional arguments of fastloss._C.rowwise / pointwise (csrc/bindings/cpu_module.cpp).
KERNEL_ARGS = ("loss_id", "x", "dtype", "target", "weight", "params", "row_scale", "grad_scale", "loss_out",
               "grad_out", "need_loss")
FLAG_SOFT, FLAG_WEIGHT, FLAG_ROW_SCALE, FLAG_LOSS_OUT, FLAG_GRAD_OUT, FLAG_IN_PLACE, FLAG_NEED_LOSS = (
    1, 2, 4, 8, 16, 32, 64)
# NEON against scalar: the same formulas, summed in another order (and FMA-contracted differently).
ISA_TOL = {"float64": 1e-11, "float32": 2e-5, "float16": 1.5e-3, "bfloat16": 1e-2}
EPS16 = {"float16": 2.0**-10, "bfloat16": 2.0**-7}  # 16-bit gradients: at most 1 ulp apart, rarely

_C = pytest.importorskip("fastloss._C", reason="needs the native extension (fastloss._C) to record calls")


def require_tools() -> None:
    """Skip without the cross compiler or qemu; fail instead under FASTLOSS_REQUIRE_QEMU=1 (.ci/run)."""
    missing = [tool for tool in (CXX, QEMU) if shutil.which(tool) is None]
    if missing:
        why = f"needs {' and '.join(missing)} (apt-get install g++-aarch64-linux-gnu qemu-user)"
        if os.environ.get("FASTLOSS_REQUIRE_QEMU") == "1":
            pytest.fail(f"FASTLOSS_REQUIRE_QEMU=1 but this {why}")
        pytest.skip(why)


def driver_command(fields: list[str], out: Path) -> list[list[str]]:
    """The cross-compile of the kernel layer + driver: one compile per object, then the link.
    Static, so that qemu needs no aarch64 sysroot at run time."""
    cpu = ROOT / "csrc" / "cpu"
    common = [CXX, "-std=c++17", "-O2", "-Wall", "-Wextra", "-Werror=switch", "-fopenmp", "-fno-math-errno",
              f"-I{cpu}", f"-I{ROOT / 'csrc'}", f"-I{out / 'generated'}"]
    objs = {
        "neon.o": [str(cpu / "isa_kernels.cpp"), "-DFASTLOSS_ISA=neon", "-DFL_ISA_NEON=1"],
        "scalar.o": [str(cpu / "isa_kernels.cpp"), "-DFASTLOSS_ISA=scalar", "-DFL_ISA_SCALAR=1"],
        "dispatch.o": [str(cpu / "dispatch.cpp"), "-DFL_HAVE_NEON=1"],
        "driver.o": [str(ROOT / "tests" / "neon_driver.cpp"),
                     "-DFL_PARAM_FIELDS=" + " ".join(f"X({f})" for f in fields)],
    }
    compiles = [common + ["-c", *args, "-o", str(out / obj)] for obj, args in objs.items()]
    link = [CXX, "-static", "-fopenmp", *(str(out / o) for o in objs), "-o", str(out / "neon_driver")]
    return compiles + [link]


def generate_headers(out: Path) -> None:
    """The loss table's C++ side (LossParams, loss ids), as CMake generates it from _spec.py."""
    subprocess.run([sys.executable, str(ROOT / "tools" / "gen_losses.py"), str(out / "generated")], check=True)


def build_driver(fields: list[str]) -> Path:
    """The driver binary, cached under build-neon-qemu/ by a hash of the sources and commands."""
    sources = sorted((ROOT / "csrc").rglob("*")) + [
        ROOT / "tests" / "neon_driver.cpp", ROOT / "tools" / "gen_losses.py", ROOT / "python" / "fastloss" / "_spec.py"]
    h = hashlib.sha256(repr(driver_command(fields, Path("."))).encode())
    for p in sources:
        if p.is_file():
            h.update(p.name.encode() + p.read_bytes())
    out = ROOT / "build-neon-qemu" / h.hexdigest()[:16]
    exe = out / "neon_driver"
    if exe.exists():
        return exe
    out.mkdir(parents=True, exist_ok=True)
    generate_headers(out)
    *compiles, link = driver_command(fields, out)
    procs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for c in compiles]
    for cmd, p in zip(compiles, procs):
        log = p.communicate()[0]
        assert p.returncode == 0, f"{' '.join(cmd)}\n{log}"
        assert "warning" not in log, log  # -Wall -Wextra clean on aarch64 too
    subprocess.run(link, check=True, capture_output=True, text=True)
    return exe


# ---- the calls: every loss, option case, dtype and form through the public API -----------------

def scenarios():
    """(name, form, shape, axis, case, dtype, reduction, grad_output kind, in place, non-finite
    value or None) to call."""
    out = []
    for name in NAMES:
        rowwise = SPECS[name].rowwise
        # The driver passes no per-element vectors (BCE's weight/pos_weight arrays): those cases are
        # covered on x86 only; their scalar forms run here.
        cases = [c for c in CASES.get(name, [{}]) if not any(
            k in SPECS[name].broadcast_names and not isinstance(v, (int, float)) for k, v in c.items())]
        for value in (np.nan, np.inf, -np.inf):  # every case in float32, the first and last in all dtypes
            out += [(name, "with_grad", (6, 7), -1, case, dtype, "none", "scalar", False, value)
                    for i, case in enumerate(cases) for dtype in DTYPES
                    if dtype == "float32" or i in (0, len(cases) - 1)]
        for dtype in DTYPES:
            for case in cases:  # every option case: "none" with a grad_output array
                out.append((name, "with_grad", (9, 37) if rowwise else (7, 45), -1, case, dtype, "none", "array",
                            False, None))
            first = cases[-1]
            shapes = [(13, 10, -1), (5, 3, -1), (3, 7, 5, 1)] if rowwise else [(4099,), (3,)]
            for *shape, axis in shapes if rowwise else [(*s, -1) for s in shapes]:
                out.append((name, "with_grad", tuple(shape), axis, first, dtype, "mean", "scalar", False, None))
            shape = (9, 37) if rowwise else (7, 45)
            out.append((name, "loss", shape, -1, first, dtype, "none", "scalar", False, None))
            out.append((name, "loss", shape, -1, first, dtype, "sum", "scalar", False, None))
            out.append((name, "grad", shape, -1, first, dtype, "mean", "scalar", True, None))
            out.append((name, "grad", shape, -1, first, dtype, "sum", "scalar", False, None))
    return out


def poison(name, x, t, opts, value):
    """x with ``value`` at row 1 column 2 and at row 3's target class (rows 1 and 3 counted)."""
    x = x.copy()
    x[1, 2] = value
    if SPECS[name].rowwise and t.dtype.kind == "i":
        ignore = opts.get("ignore_index", -100)
        t[1], t[3] = (3 if ignore != 3 else 4), (5 if ignore != 5 else 6)
        x[3, t[3]] = value
    else:
        x[3, 0] = value
    return x


def run_all(seed: int = 0):
    """Every scenario through the public API; returns each result as float64 arrays."""
    rng = np.random.default_rng(seed)
    results = []
    for name, form, shape, axis, case, dtype, reduction, go, in_place, value in scenarios():
        x, t, opts = make_problem(name, shape, rng, case, dtype=dtype, axis=axis)
        if value is not None:
            x = poison(name, x, t, opts, value)
        kw = dict(opts, reduction=reduction)
        if SPECS[name].rowwise:
            kw["axis"] = axis
        if form != "loss":
            kw["grad_output"] = rng.uniform(0.5, 2, loss_shape(name, shape, axis)) if go == "array" else 0.75
            if in_place:
                kw["out"] = x
        finite = x.astype(np.float64)[np.isfinite(x.astype(np.float64))]
        scale = max(1.0, float(np.max(np.abs(finite))))  # before out=x overwrites it
        r = call(name, form, x, t, **kw)
        r = r if isinstance(r, tuple) else (r,)
        results.append(([np.asarray(v).astype(np.float64) for v in r], scale))
    return results


class Recorder:
    """Wraps fastloss._C.rowwise / pointwise: keeps a copy of every call's inputs."""

    def __init__(self):
        self.calls = []

    def wrap(self, kind, original):
        def kernel(*args):
            a = dict(zip(KERNEL_ARGS, args))
            in_place = a["grad_out"] is not None and np.shares_memory(a["grad_out"], a["x"])
            copy = {k: (np.array(v, copy=True) if isinstance(v, np.ndarray) else v) for k, v in a.items()}
            copy["dtype_code"], copy["dtype"] = a["dtype"], fastloss._arrays.FLOAT_DTYPES[a["dtype"]]
            self.calls.append((kind, copy, in_place))
            return original(*args)

        return kernel


class Replayer:
    """Answers each kernel call with the driver's outputs for the recorded call of the same index."""

    def __init__(self, calls, outputs):
        self.calls, self.outputs, self.next = calls, outputs, 0

    def wrap(self, kind):
        def kernel(*args):
            a = dict(zip(KERNEL_ARGS, args))
            rec_kind, rec, _ = self.calls[self.next]
            rc, total, error, loss, grad = self.outputs[self.next]
            self.next += 1
            assert kind == rec_kind and rec["loss_id"] == a["loss_id"] and rec["dtype_code"] == a["dtype"]
            assert rec["x"].tobytes() == a["x"].tobytes(), "the replay diverged from the recording"
            if rc == 1:
                raise _C.TargetOutOfDomain(error)
            if rc != 0:
                raise ValueError(error)
            if a["loss_out"] is not None:
                a["loss_out"].reshape(-1).view(np.uint8)[:] = np.frombuffer(loss, np.uint8)
            if a["grad_out"] is not None:
                a["grad_out"].reshape(-1).view(np.uint8)[:] = np.frombuffer(grad, np.uint8)
            # _C.rowwise answers (total, rows not ignored); the full path, recorded here, reads total
            return (total, -1) if kind == "rowwise" else total

        return kernel


# ---- the files the driver reads and writes ----------------------------------------------------

def write_cases(path: Path, calls) -> None:
    with open(path, "wb") as f:
        f.write(struct.pack("<q", len(calls)))
        for kind, a, in_place in calls:
            x = a["x"]
            outer, classes, inner = x.shape if kind == "rowwise" else (x.shape[0], 1, 1)
            soft = kind == "rowwise" and a["target"].dtype != np.int64  # probabilities, like x
            flags = ((FLAG_SOFT if soft else 0) | (FLAG_WEIGHT if a["weight"] is not None else 0)
                     | (FLAG_ROW_SCALE if a["row_scale"] is not None else 0)
                     | (FLAG_LOSS_OUT if a["loss_out"] is not None else 0)
                     | (FLAG_GRAD_OUT if a["grad_out"] is not None else 0)
                     | (FLAG_IN_PLACE if in_place else 0) | (FLAG_NEED_LOSS if a["need_loss"] else 0))
            f.write(struct.pack("<7qd", 0 if kind == "rowwise" else 1, a["loss_id"], a["dtype_code"],
                                outer, classes, inner, flags, a["grad_scale"]))
            f.write(struct.pack("<q", len(a["params"])))
            f.writelines(struct.pack("<q", len(key)) + key.encode() + struct.pack("<d", float(value))
                         for key, value in a["params"].items())
            blobs = [a["x"], a["target"]] + [a[k] for k in ("weight", "row_scale") if a[k] is not None]
            for b in blobs:
                raw = np.ascontiguousarray(b).tobytes()
                f.write(struct.pack("<q", len(raw)) + raw)


def read_outputs(path: Path, count: int):
    data, pos, out = path.read_bytes(), 0, []

    def blob():
        nonlocal pos
        (n,) = struct.unpack_from("<q", data, pos)
        pos += 8 + n
        return data[pos - n : pos]

    for _ in range(count):
        rc, total = struct.unpack_from("<qd", data, pos)
        pos += 16
        out.append((rc, total, blob().decode(), blob(), blob()))
    assert pos == len(data)
    return out


def as64(raw: bytes, dtype: str, math: bool) -> np.ndarray:
    if math:
        return np.frombuffer(raw, np.float64 if dtype == "float64" else np.float32).astype(np.float64)
    storage = {"float32": np.float32, "float64": np.float64, "float16": np.float16, "bfloat16": ml_dtypes.bfloat16}
    return np.frombuffer(raw, storage[dtype]).astype(np.float64)


# ---- the test ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def neon_run(tmp_path_factory):
    """(recorded calls, NEON outputs, scalar outputs, reference results, NEON results)."""
    require_tools()
    with fastloss.use_backend("numpy"):
        reference = run_all()
    rec = Recorder()
    mp = pytest.MonkeyPatch()
    with fastloss.use_backend("native"):
        mp.setattr(_fast, "ENABLED", False)  # every call through the patched module functions
        mp.setattr(_C, "rowwise", rec.wrap("rowwise", _C.rowwise))
        mp.setattr(_C, "pointwise", rec.wrap("pointwise", _C.pointwise))
        try:
            run_all()
        finally:
            mp.undo()
    fields = sorted({k for _, a, _ in rec.calls for k in a["params"]})
    exe = build_driver(fields)
    tmp = tmp_path_factory.mktemp("neon")
    write_cases(tmp / "cases.bin", rec.calls)
    runs = {isa: subprocess.Popen([QEMU, str(exe), isa, threads, str(tmp / "cases.bin"), str(tmp / f"{isa}.bin")],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for isa, threads in (("neon", "2"), ("scalar", "1"))}
    outputs = {}
    for isa, p in runs.items():
        log = p.communicate(timeout=600)[0]
        assert p.returncode == 0, log
        assert f"isa {isa}" in log, log
        outputs[isa] = read_outputs(tmp / f"{isa}.bin", len(rec.calls))
    rep = Replayer(rec.calls, outputs["neon"])
    with fastloss.use_backend("native"):
        mp.setattr(_fast, "ENABLED", False)
        mp.setattr(_C, "rowwise", rep.wrap("rowwise"))
        mp.setattr(_C, "pointwise", rep.wrap("pointwise"))
        try:
            neon = run_all()
        finally:
            mp.undo()
    assert rep.next == len(rec.calls)
    return rec.calls, outputs["neon"], outputs["scalar"], reference, neon


def test_every_scenario_made_kernel_calls(neon_run):
    calls = neon_run[0]
    assert len({a["loss_id"] for _, a, _ in calls}) == len(NAMES)
    assert {a["dtype"] for _, a, _ in calls} == set(DTYPES)
    assert any(in_place for *_, in_place in calls) and any(not a["need_loss"] for _, a, _ in calls)


def test_neon_matches_scalar_tier(neon_run):
    calls, neon, scalar, _, _ = neon_run
    for i, ((kind, a, _), n, s) in enumerate(zip(calls, neon, scalar)):
        what = f"call {i}: {kind} loss_id={a['loss_id']} {a['dtype']} x{a['x'].shape}"
        assert (n[0], n[2]) == (s[0], s[2]), f"{what}: return code / error differ"
        tol = ISA_TOL[a["dtype"]]
        assert_close(n[1], s[1], tol, max(1.0, abs(s[1])), f"{what}: total")
        assert_close(as64(n[3], a["dtype"], True), as64(s[3], a["dtype"], True), tol, what=f"{what}: loss_out")
        grad_n, grad_s = as64(n[4], a["dtype"], False), as64(s[4], a["dtype"], False)
        assert_close(grad_n, grad_s, tol, what=f"{what}: grad_out")
        if a["dtype"] in EPS16 and grad_s.size:  # one rounding of nearly equal float32 values: rarely 1 ulp apart
            fin = np.isfinite(grad_s)
            assert np.all(np.abs(grad_n - grad_s)[fin] <= EPS16[a["dtype"]] * np.abs(grad_s[fin]) + 1e-30), what
            differ = np.mean(grad_n[fin] != grad_s[fin])
            assert differ <= 0.02, f"{what}: {differ:.1%} differ"


def test_neon_matches_float64_reference(neon_run):
    _, _, _, reference, neon = neon_run
    for i, (scenario, (ref, scale), (got, _)) in enumerate(zip(scenarios(), reference, neon)):
        name, form, shape, axis, case, dtype, reduction, *_ = scenario
        what = f"scenario {i}: {name}_{form} {case} {dtype} {shape} axis={axis} reduction={reduction}"
        assert len(ref) == len(got), what
        tols = {"loss": [LOSS_TOL], "grad": [GRAD_TOL], "with_grad": [LOSS_TOL, GRAD_TOL]}[form]
        for k, (r, g, tol) in enumerate(zip(ref, got, tols)):
            assert_close(g, r, tol[dtype], scale if tol is LOSS_TOL else 1.0, f"{what} output {k}")
