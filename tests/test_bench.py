"""The benchmark tools run end to end and write complete, finite results (no timing assertions:
timings on a shared CI machine prove nothing). Also the byte accounting against DESIGN.md 3."""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import fastloss
import pytest
from fastloss import _bench
from fastloss._registry import BY_NAME, LOSSES

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
# fastloss importable in the child exactly as here (installed, or the source tree)
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(
    [str(Path(fastloss.__file__).resolve().parent.parent), os.environ.get("PYTHONPATH", "")])}


def run(*args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, *args], check=False, capture_output=True, text=True, env=ENV, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def finite_positive(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def test_bytes_moved_matches_the_design_model():
    N, C = 64, 1000
    ce, huber = BY_NAME["cross_entropy"], BY_NAME["huber_loss"]
    # fused rowwise fp32: 4 B read + 4 B gradient per element, plus the int64 target per row
    assert _bench.bytes_moved(ce, "fused", (N, C), "float32") == 8 * N * C + 8 * N
    assert _bench.bytes_moved(ce, "backward", (N, C), "bfloat16") == 4 * N * C + 8 * N
    assert _bench.bytes_moved(ce, "forward", (N, C), "float64") == 8 * N * C + 8 * N
    assert _bench.bytes_moved(huber, "fused", (N * C,), "float32") == 12 * N * C
    assert _bench.bytes_moved(huber, "forward", (N * C,), "float16") == 4 * N * C


def test_measure_reports_consistent_statistics():
    calls = []
    t = _bench.measure(lambda: calls.append(1), warmup=2, min_repeats=7, min_time=0.0, max_time=10.0)
    assert t.repeats == 7 and len(calls) == 9
    assert 0 < t.min <= t.median <= t.max


def test_measure_many_alternates_rounds_and_rewarms_fast_calls():
    calls = []
    t = _bench.measure_many({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
                            warmup=2, rounds=3, min_repeats=3, min_time=0.0, max_time=10.0)
    assert "".join(calls) == "aabb" + "ab" + "aabb" + "aabb"  # warm-up, round 1, rounds 2-3 re-warmed
    assert t["a"].repeats == t["b"].repeats == 3


@pytest.mark.parametrize("spec", LOSSES, ids=lambda s: s.name)
def test_make_case_gives_valid_inputs_for_every_loss(spec):
    shape = (8, 5) if spec.rowwise else (40,)
    case = _bench.make_case(spec, "fused", "float32", shape)
    loss, grad = _bench.fastloss_fn(case)()  # the front end validates the targets
    assert math.isfinite(float(loss)) and grad is case.grad_out


def test_quick_bench_tiny(tmp_path):
    out = tmp_path / "quick.json"
    proc = run("-m", "fastloss", "bench", "--tiny", "--json", str(out))
    assert "GB/s" in proc.stdout and "% copy" in proc.stdout
    result = json.loads(out.read_text())
    rows = result["rows"]
    dtypes = ["float32", "bfloat16"] if importlib.util.find_spec("ml_dtypes") else ["float32"]
    assert [(r["loss"], r["dtype"]) for r in rows] == [(s.name, d) for s in LOSSES for d in dtypes]
    for r in rows:
        for key in ("time_s", "time_min_s", "time_max_s", "gbps", "copy_gbps", "pct_of_copy", "bytes"):
            assert finite_positive(r[key]), (r["loss"], key, r[key])
        assert finite_positive(r["x_numpy_ref"])
        assert r["loss"] in proc.stdout
    assert result["machine"]["cpu_model"] and result["machine"]["backend"] == fastloss.backend()


def test_suite_tiny_sweep(tmp_path):
    losses = ["cross_entropy", "huber_loss"]  # one rowwise, one pointwise: every code path
    run(str(BENCHMARKS / "run_suite.py"), "--preset", "tiny", "--out", str(tmp_path),
        *[a for name in losses for a in ("--loss", name)])
    result = json.loads((tmp_path / "results.json").read_text())
    rows, machine = result["rows"], result["machine"]
    expected = {(loss, form, dtype) for loss in losses for form in _bench.FORMS for dtype in ("float32", "bfloat16")}
    assert {(r["loss"], r["form"], r["dtype"]) for r in rows} == expected
    assert len(rows) == 3 * 2 * (2 + 1)  # forms x dtypes x (two C + one element count)
    for r in rows:
        for key in ("time_median_s", "gbps", "copy_gbps", "pct_of_copy", "bytes"):
            assert finite_positive(r[key]), (r["loss"], key, r[key])
        assert r["time_min_s"] <= r["time_median_s"] <= r["time_max_s"]
        assert r["peak_extra_bytes"] >= 0
        assert finite_positive(r["numpy_ref_speedup"])
        assert r["liger_note"] == "GPU only"  # skipped with its reason, never silently
        for name in ("torch", "jax", "sklearn"):
            assert finite_positive(r.get(f"{name}_speedup")) or r.get(f"{name}_note"), (name, r)
            if r.get(f"{name}_loss_rel_diff") is not None:  # the competitor computed the same loss
                assert r[f"{name}_loss_rel_diff"] < 2e-2, (name, r)
    assert machine["cpu_model"] and machine["cores"] and machine["date_utc"] and "numpy" in machine["versions"]

    with open(tmp_path / "results.csv") as f:
        table = list(csv.DictReader(f))
    assert len(table) == len(rows)
    for column in ("median", "min", "max", "gbps", "pct_of_copy", "speedup", "peak_extra_bytes"):
        assert any(column in name for name in table[0]), column
    assert "| loss |" in (tmp_path / "summary.md").read_text()
    if importlib.util.find_spec("matplotlib"):
        for name in [f"gbps_{loss}_cpu.png" for loss in losses] + ["speedup_cpu.png"]:
            assert (tmp_path / name).stat().st_size > 1000, name
    else:
        assert any(note.startswith("plots: skipped") for note in result["notes"])


def test_cpu_kernels_script_tiny(tmp_path):
    proc = run(str(BENCHMARKS / "cpu_kernels.py"), "--loss", "cross_entropy", "--dtype", "float32",
               "--classes", "10", "--threads", "1", "--budget-mb", "0.25", "--min-time", "0.01",
               "--max-time", "0.1", "--out", str(tmp_path))
    assert "% memcpy" in proc.stdout and "cross_entropy" in proc.stdout
    rows = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert len(rows) == 1 and finite_positive(rows[0]["gbps"])
