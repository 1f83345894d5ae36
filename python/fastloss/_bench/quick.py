"""``python -m fastloss bench``: every loss of ``fastloss.LOSSES`` at the user's shapes, threads and
dtypes, against a same-size copy and the competitors the user names; one verdict per row."""

from __future__ import annotations

import json
from typing import Any

import fastloss

from .accounting import FORMS
from .cases import Case, Skip, fastloss_fn, make_case
from .competitors import numpy_reference_fn
from .figures import plot_rows
from .jax_competitor import jax_fn
from .machine import machine_info, set_threads
from .progress import ProgressBar
from .quiet import third_parties_quiet
from .sizes import plan_sizes
from .table import format_table
from .timing import Timing, measure_many
from .torch_competitor import torch_compile_fn, torch_fn
from .verdict import fmt_timing, verdict
from .yardstick import copy_fn

# --against NAME -> (results key, label, build(case)). The formulas behind each live in one place
# per framework (torch_competitor.py, jax_competitor.py), keyed by loss name.
COMPETITORS = {
    "torch": ("torch", "torch eager", torch_fn),
    "compile": ("torch_compile", "torch.compile", torch_compile_fn),
    "jax": ("jax", "JAX jit", jax_fn),
    "numpy": ("numpy_ref", "NumPy ref", numpy_reference_fn),
}
TIMING = {"warmup": 1, "rounds": 3, "min_repeats": 5, "min_time": 0.2, "max_time": 1.0}
TINY_TIMING = {**TIMING, "min_time": 0.01, "max_time": 0.1}  # --tiny only checks that everything runs
WHAT = {"fused": "loss+gradient (forward+backward)", "backward": "gradient (forward+backward)",
        "forward": "loss only (forward)"}


def measure_row(case: Case, against: list[str], threads: int, timing: dict = TIMING) -> dict:
    fns = {"copy": copy_fn(case.nbytes, threads=threads), "fastloss": fastloss_fn(case)}
    row: dict[str, Any] = {"loss": case.spec.name, "form": case.form, "dtype": case.dtype,
                           "shape": list(case.shape), "bytes": case.nbytes}
    for name in against:
        key, _, build = COMPETITORS[name]
        try:
            fns[key] = build(case)
        except Skip as why:
            row[f"note_{key}"] = str(why)
    t = measure_many(fns, **timing)
    fl, copy = t["fastloss"], t["copy"]
    row.update({
        "time_s": fl.median, "time_min_s": fl.min, "time_max_s": fl.max, "time_q1_s": fl.q1,
        "time_q3_s": fl.q3, "repeats": fl.repeats, "gbps": fl.gbps(case.nbytes),
        "copy_gbps": copy.gbps(case.nbytes), "pct_of_copy": 100.0 * copy.median / fl.median,
    })
    others: dict[str, Timing] = {}  # label -> timing of a competitor that ran
    missing: dict[str, str] = {}  # label -> why one did not run
    for name in against:
        key, label, _ = COMPETITORS[name]
        if key in t:
            other = others[label] = t[key]
            row.update({f"{key}_time_s": other.median, f"{key}_q1_s": other.q1, f"{key}_q3_s": other.q3,
                        f"x_{key}": other.median / fl.median})
        else:
            row[f"x_{key}"] = None
            missing[label] = row[f"note_{key}"]
    row["verdict"] = verdict(fl, others, missing)
    row["_timings"] = {"fastloss": fl, **others}
    return row


def _losses(args) -> tuple[list, list[str]]:
    """The losses to time, and a note when they were chosen for the user: every loss by default,
    but one when the user gave a size without --loss (all 14 at a user's shape take minutes)."""
    if args.loss:
        return [s for s in fastloss.LOSSES if s.name in args.loss], []
    if not (args.shape or args.classes or args.elements):
        return list(fastloss.LOSSES), []
    name = "cross_entropy" if args.shape or args.classes else "huber_loss"
    return [s for s in fastloss.LOSSES if s.name == name], [
        (f"a size without --loss times {name} only; --loss NAME (repeatable) picks others, --loss all "
        "times every loss")]


def _plan(args) -> tuple[list[tuple], list[str]]:
    rowwise, pointwise, notes = plan_sizes(args.size, args.shape or [], args.classes or [],
                                           args.elements or [])
    specs, chosen = _losses(args)
    notes = notes + chosen
    dtypes = args.dtype or ["float32", "bfloat16"]
    plan = [(spec, dtype, shape) for spec in specs for shape in (rowwise if spec.rowwise else pointwise)
            for dtype in dtypes]
    return plan, notes


def main(args) -> int:
    with third_parties_quiet():
        return _run(args)


def _run(args) -> int:
    set_threads(args.threads)
    plan, plan_notes = _plan(args)
    notes = set(plan_notes)
    info = machine_info(("numpy", "torch") + (("jax",) if "jax" in args.against else ()))
    print(f"fastloss {info['fastloss']} bench, {WHAT[args.form]} per call: backend={info['backend']} "
          f"isa={info['cpu_isa']} threads={args.threads} cpu={info['cpu_model']} ({info['cores']} cores)")
    if "jax" in args.against and args.threads != info["cores"]:
        notes.add(f"JAX jit: XLA uses its own thread pool (all {info['cores']} cores), not --threads")
    print(f"timing {len(plan)} case(s) against {', '.join(args.against) or 'nothing'}; progress and the "
          "time left on stderr", flush=True)
    bar = ProgressBar(len(plan))
    rows = []
    for spec, dtype, shape in plan:
        label = f"{spec.name} {dtype} {'x'.join(map(str, shape))}"
        try:
            case = make_case(spec, args.form, dtype, shape)
        except Skip as why:
            notes.add(f"{label}: {why}")
            bar.step(f"{label} skipped")
            continue
        row = measure_row(case, args.against, args.threads, TINY_TIMING if args.size == "tiny" else TIMING)
        rows.append(row)
        notes.update(f"{k[5:]} vs {label}: {v}" for k, v in row.items() if k.startswith("note_"))
        bar.step(label)
    print(format_table([_display(r, args.against) for r in rows], _columns(rows, args.against)))
    for r in rows:
        print(f"{r['loss']} {'x'.join(map(str, r['shape']))} {r['dtype']}: {r['verdict']}")
    call = f"fastloss.<loss>{FORMS[args.form]}(x, t{'' if args.form == 'forward' else ', out=grad'})"
    print(f"Times: median {WHAT[args.form]} per call ±half the interquartile range; fastloss = {call} on "
          "NumPy arrays, torch = autograd (forward, then backward for a gradient).")
    print("GB/s: the least bytes a call must read and write, per second (fastloss._bench.bytes_moved).")
    print("% copy: np.copyto's time for the same number of bytes (same run) / fastloss's time; 100% = as fast "
          "as copying the data, and above 100% is possible since a call writes less than it reads.")
    print("No verdict: a timing's middle half spans more than ±25%, or two timings overlap while their "
          "medians differ by over 10%.")
    for note in sorted(notes):
        print(f"note: {note}")
    if args.plot:
        title = f"{WHAT[args.form]} per call, {args.threads} thread(s); lower is better"
        print(plot_rows(rows, args.plot, title))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "threads": args.threads, "what": WHAT[args.form],
                       "rows": [{k: v for k, v in r.items() if k != "_timings"} for r in rows]}, f, indent=1)
    return 0


def _columns(rows: list[dict], against: list[str]) -> list[tuple[str, str]]:
    columns = [("loss", "loss"), ("shape", "shape"), ("dtype", "dtype"), ("time", "fastloss"),
               ("gbps", "GB/s"), ("pct", "% copy")]
    for name in against:
        key, label, _ = COMPETITORS[name]
        columns.append((key, label))
    return columns


def _display(row: dict, against: list[str]) -> dict:
    timings: dict[str, Timing] = row["_timings"]
    out = {
        "loss": row["loss"], "shape": "x".join(map(str, row["shape"])), "dtype": row["dtype"],
        "time": fmt_timing(timings["fastloss"]), "gbps": f"{row['gbps']:.2f}",
        "pct": f"{row['pct_of_copy']:.0f}%",
    }
    for name in against:
        key, label, _ = COMPETITORS[name]
        out[key] = fmt_timing(timings[label]) if label in timings else "n/a"
    return out
