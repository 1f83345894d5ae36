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


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, *args], check=False, capture_output=True, text=True,
                          env=env or ENV, timeout=600)
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
    assert "GB/s" in proc.stdout and "% copy" in proc.stdout and "loss+gradient" in proc.stdout
    result = json.loads(out.read_text())
    rows = result["rows"]
    dtypes = ["float32", "bfloat16"] if importlib.util.find_spec("ml_dtypes") else ["float32"]
    assert [(r["loss"], r["dtype"]) for r in rows] == [(s.name, d) for s in LOSSES for d in dtypes]
    for r in rows:
        for key in ("time_s", "time_min_s", "time_max_s", "gbps", "copy_gbps", "pct_of_copy", "bytes"):
            assert finite_positive(r[key]), (r["loss"], key, r[key])
        assert r["time_min_s"] <= r["time_q1_s"] <= r["time_s"] <= r["time_q3_s"] <= r["time_max_s"]
        for name in ("torch", "jax"):  # the default competitors: measured, or the reason in the row
            assert finite_positive(r[f"x_{name}"]) or r[f"note_{name}"], (name, r)
        line = f"{r['loss']} {'x'.join(map(str, r['shape']))} {r['dtype']}: {r['verdict']}"
        assert line in proc.stdout and r["verdict"].startswith("fastloss")
    assert result["machine"]["cpu_model"] and result["machine"]["backend"] == fastloss.backend()


@pytest.fixture
def bench_main(capsys):
    """``python -m fastloss bench ARGS`` in this process (no interpreter start-up: the tests stay
    fast); restores the thread counts it sets. Returns the printed text."""
    from fastloss.__main__ import main

    torch = pytest.importorskip("torch")
    threads = fastloss.get_num_threads(), torch.get_num_threads()

    def bench(*argv: str) -> str:
        assert main(["bench", *argv]) == 0
        return capsys.readouterr().out

    yield bench
    fastloss.set_num_threads(threads[0])
    torch.set_num_threads(threads[1])


def test_bench_user_shapes(bench_main, tmp_path):
    out, plot = tmp_path / "rows.json", tmp_path / "rows.png"
    text = bench_main("--tiny", "--shape", "16x50", "--classes", "7", "--loss", "cross_entropy", "--loss",
                      "huber_loss", "--dtype", "float32", "--threads", "1", "--against", "numpy", "--plot",
                      str(plot), "--json", str(out))
    result = json.loads(out.read_text())
    assert result["threads"] == 1 and result["what"] == "loss+gradient (forward+backward)"
    # --classes picks rows for the preset's element count; --shape is taken as given, by both kinds
    assert [(r["loss"], r["shape"]) for r in result["rows"]] == [
        ("cross_entropy", [16, 50]), ("cross_entropy", [64 * 100 // 7, 7]), ("huber_loss", [16, 50])]
    for r in result["rows"]:
        assert finite_positive(r["x_numpy_ref"]) and "NumPy ref" in r["verdict"]
        assert "x_torch" not in r and "x_jax" not in r  # only the competitors asked for
    assert "loss+gradient" in text
    if importlib.util.find_spec("matplotlib"):
        assert plot.stat().st_size > 1000


def test_a_size_without_loss_times_cross_entropy_only(bench_main, tmp_path):
    out = tmp_path / "rows.json"
    text = bench_main("--tiny", "--shape", "16x50", "--dtype", "float32", "--against", "none", "--json", str(out))
    assert [r["loss"] for r in json.loads(out.read_text())["rows"]] == ["cross_entropy"]
    assert "--loss all times every loss" in text
    bench_main("--tiny", "--shape", "16x50", "--dtype", "float32", "--against", "none", "--loss", "all",
               "--json", str(out))
    assert [r["loss"] for r in json.loads(out.read_text())["rows"]] == [s.name for s in LOSSES]


def test_bench_output_explains_its_columns_without_third_party_noise():
    pytest.importorskip("torch")
    proc = run("-m", "fastloss", "bench", "--tiny", "--loss", "huber_loss", "--dtype", "float32",
               "--against", "torch,compile")
    assert "% copy: np.copyto's time for the same number of bytes" in proc.stdout
    assert "time left" in proc.stdout and "s left: huber_loss" in proc.stderr  # the progress line
    noise = [line for line in (proc.stdout + proc.stderr).splitlines()
             if "warn" in line.lower() or "No CUDA runtime" in line]
    assert not noise, noise


def test_bench_against_torch_compile(bench_main, tmp_path):
    out = tmp_path / "rows.json"
    bench_main("--shape", "256", "--loss", "huber_loss", "--dtype", "float32", "--threads", "1",
               "--against", "compile", "--json", str(out))
    (row,) = json.loads(out.read_text())["rows"]
    assert finite_positive(row["x_torch_compile"]) or row["note_torch_compile"], row
    assert "torch.compile" in row["verdict"]


def test_bench_threads_default_to_what_info_reports(bench_main, tmp_path):
    out = tmp_path / "rows.json"
    fastloss.set_num_threads(3)  # what `python -m fastloss info` then reports
    text = bench_main("--tiny", "--elements", "1000", "--loss", "huber_loss", "--dtype", "float32",
                      "--against", "none", "--json", str(out))
    result = json.loads(out.read_text())
    assert result["threads"] == 3 and "threads=3" in text
    assert [r["shape"] for r in result["rows"]] == [[1000]]  # only the asked size; no row-wise loss
    assert "row-wise losses not run" in text


@pytest.mark.parametrize("argv, message", [
    (["--against", "torch,pandas"], "'pandas'"),
    (["--shape", "512xabc"], "512xabc"),
    (["--elements", "-5"], "-5"),
    (["--dtype", "int8"], "'int8'"),
])
def test_bench_rejects_bad_flags_naming_the_value(argv, message, capsys):
    from fastloss.__main__ import main

    with pytest.raises(SystemExit):
        main(["bench", *argv])
    assert message in capsys.readouterr().err


def test_size_flags_plan():
    from fastloss._bench.sizes import count, plan_sizes, shape

    assert shape("512x50000") == (512, 50000) and shape("(8, 128, 1000)") == (8, 128, 1000)
    assert count("4Mi") == 1 << 22 and count("1e6") == 10**6 and count("2k") == 2000
    assert plan_sizes("quick", [], [], []) == ([(512, 1000)], [(1 << 19,)], [])
    rowwise, pointwise, notes = plan_sizes("default", [(512, 50000), (1000,)], [32000], [])
    assert rowwise == [(512, 50000), ((2048 * 4096) // 32000, 32000)]
    assert pointwise == [(512, 50000), (1000,)]
    assert notes and "1000" in notes[0]


def test_verdict_and_crossover_wording():
    from fastloss._bench.timing import Timing
    from fastloss._bench.verdict import crossover, verdict

    fast = Timing.of([1.0, 1.0, 1.1, 1.0, 0.9])
    slow = Timing.of([4.1, 4.0, 4.2, 4.1, 4.1])
    close = Timing.of([1.05, 0.95, 1.1, 1.0, 1.0])
    assert verdict(fast, {"torch eager": slow}) == "fastloss 4.1x faster than torch eager"
    assert verdict(slow, {"JAX jit": fast}) == "fastloss 4.1x slower than JAX jit"
    assert "as fast as torch.compile" in verdict(fast, {"torch.compile": close})
    assert verdict(fast, {}, {"JAX jit": "optax has no x"}) == "fastloss: no JAX jit (optax has no x)"
    # a ratio is no verdict when a timing is unsteady, or when overlapping timings differ a lot
    noisy = Timing.of([0.2, 1.0, 6.0, 1.5, 0.3])
    assert verdict(noisy, {"torch eager": slow}).startswith("fastloss no verdict against torch eager")
    wide = Timing.of([1.0, 1.2, 1.5, 1.9, 2.2])
    overlapping = Timing.of([1.4, 1.6, 1.9, 2.3, 2.4])
    text = verdict(wide, {"JAX jit": overlapping})
    assert "no verdict against JAX jit" in text and "overlap" in text and "faster" not in text
    sizes = ["a", "b", "c", "d"]
    assert crossover(sizes, [5, 1, 3, 1], [2, 2, 2, 2], "fl", "pt") == \
        "crossover: fl is faster than pt from d on (slower at a, c)"
    assert "every size" in crossover(sizes, [1, 1, 1, 1], [2, 2, 2, 2], "fl", "pt")
    assert "slower than pt at every size" in crossover(sizes, [3, 3, 3, 3], [2, 2, 2, 2], "fl", "pt")


def test_measure_calls_batches_fast_calls():
    calls = []
    t = _bench.measure_calls({"a": lambda: calls.append(1)}, rounds=2, time_per_fn=0.01, sample_time=1e-4)
    assert t["a"].calls_per_sample > 1 and t["a"].repeats >= 5
    assert 0 < t["a"].q1 <= t["a"].median <= t["a"].q3 < 1e-4


@pytest.mark.parametrize("spec", LOSSES, ids=lambda s: s.name)
def test_torch_competitor_computes_the_same_loss(spec):
    """The PyTorch formula a benchmark row races against computes fastloss's loss (float64), or
    the row says there is none."""
    torch = pytest.importorskip("torch")
    case = _bench.make_case(spec, "forward", "float64", (6, 5) if spec.rowwise else (30,))
    try:
        loss = _bench.torch_loss(case)
    except _bench.Skip as why:
        assert spec.name in str(why) or "not mapped" in str(why)
        return
    expected = float(loss(torch.from_numpy(case.x), torch.from_numpy(case.target)))
    assert float(getattr(fastloss, spec.name)(case.x, case.target)) == pytest.approx(expected, rel=1e-9)


def test_loss_without_a_torch_formula_is_a_skip_with_the_reason():
    import dataclasses
    import types

    case = _bench.make_case(LOSSES[0], "fused", "float32", (4, 3))
    made_up = dataclasses.replace(case, spec=types.SimpleNamespace(name="made_up_loss", rowwise=True))
    with pytest.raises(_bench.Skip, match="no PyTorch formula for made_up_loss"):
        _bench.torch_loss(made_up)


def test_overhead_script_tiny(tmp_path):
    out = tmp_path / "overhead.json"
    proc = run(str(BENCHMARKS / "overhead.py"), "--tiny", "--against", "torch", "--out", str(tmp_path),
               "--json", str(out))
    text = (tmp_path / "overhead_cpu.txt").read_text()
    assert text.strip() in proc.stdout and "loss+gradient" in text
    for column in ("fastloss core", "fastloss.torch", "torch eager", "fl.torch/eager", "core/eager"):
        assert column in text, column
    assert "(8, 2)" in text and "1,024" in text and "fastloss.torch" in text
    result = json.loads(out.read_text())
    assert [s["loss"] for s in result["sweeps"]] == ["cross_entropy", "huber_loss"]
    for sweep in result["sweeps"]:
        for point in sweep["points"]:
            for impl in ("fastloss core", "fastloss.torch", "torch eager"):
                t = point["timings"][impl]
                assert 0 < t["min"] <= t["median"] <= t["max"] < 1, (impl, t)
    if importlib.util.find_spec("matplotlib"):
        assert (tmp_path / "overhead_cpu.png").stat().st_size > 1000


def test_bench_overhead_mode_tiny(bench_main):
    text = bench_main("--overhead", "--tiny", "--loss", "huber_loss", "--against", "none", "--clock", "cpu")
    assert "huber_loss (point-wise)" in text and "fastloss core" in text and "fastloss.torch" in text
    assert "cross_entropy" not in text and "process CPU time" in text


def test_cpu_clock_refuses_several_threads(capsys):
    from fastloss.__main__ import main

    assert main(["bench", "--overhead", "--tiny", "--clock", "cpu", "--threads", "2"]) == 2
    assert "--threads 2" in capsys.readouterr().err


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
