"""The benchmark suite: every registered loss x form x dtype x size x threads, against every competitor.

    PYTHONPATH=python python benchmarks/run_suite.py --preset reduced        # tens of minutes
    PYTHONPATH=python python benchmarks/run_suite.py                         # everything (hours)
    PYTHONPATH=python python benchmarks/run_suite.py --loss cross_entropy --dtype float32 --threads 1

Writes results.csv, results.json (rows + machine description + skip notes), summary.md, one
gbps_<loss>_<device>.png per loss and device and speedup_<device>.png into --out (bench_out/).
Methodology: benchmarks/README.md. Timing, byte accounting and inputs come from fastloss._bench.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from pathlib import Path

import competitors
import replot
import results_io
import sweep
from fastloss import _bench
from fastloss._bench import Case, Skip
from fastloss._registry import BY_NAME, LOSSES

ALL_FORMS = tuple(_bench.FORMS)
PRESETS = {
    "full": {},
    # issue 3's CPU targets and the README numbers: fused, the two dtypes that matter, realistic C
    # (32 MiB inputs: input + gradient still twice the L3; 4 Mi fp32 elements move 48 MiB)
    "reduced": {"forms": ("fused",), "dtypes": ("float32", "bfloat16"), "classes": (10, 1000, 32000, 128256),
                "elements": (1 << 20, 1 << 22), "budget_mb": 32},
    # checks that every path runs (tests): tiny sizes, no compiler in the loop
    "tiny": {"dtypes": ("float32", "bfloat16"), "classes": (2, 100), "elements": (4096,), "threads": (1,),
             "budget_mb": 0.25, "competitors": tuple(c for c in competitors.COMPETITORS if c != "torch_compile"),
             "min_time": 0.01, "max_time": 0.2},
}
DEFAULTS = {
    "forms": ALL_FORMS, "dtypes": _bench.DTYPES, "classes": sweep.DEFAULT_CLASSES,
    "elements": sweep.DEFAULT_ELEMENTS, "threads": (1, 2), "budget_mb": sweep.DEFAULT_BUDGET_BYTES / 2**20,
    "competitors": tuple(competitors.COMPETITORS), "rounds": 3, "min_time": 0.3, "max_time": 3.0,
    # torch.compile takes seconds to minutes per shape: only these sizes and dtypes by default
    "compile_sizes": (4096, 32000, 1 << 22), "compile_dtypes": ("float32",),
}


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(",") if v)


def _names(text: str) -> tuple[str, ...]:
    return tuple(v for v in text.split(",") if v)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", choices=tuple(PRESETS), default="full", help="defaults for the options below")
    p.add_argument("--loss", action="append", choices=[s.name for s in LOSSES], help="repeatable (default all)")
    p.add_argument("--form", dest="forms", type=_names, help=f"comma list of {ALL_FORMS}")
    p.add_argument("--dtype", dest="dtypes", type=_names, help=f"comma list of {_bench.DTYPES}")
    p.add_argument("--classes", type=_ints, help="comma list of C for rowwise losses")
    p.add_argument("--elements", type=_ints, help="comma list of element counts for pointwise losses")
    p.add_argument("--budget-mb", type=float, help="rowwise input size in MiB (N = budget / (C * itemsize))")
    p.add_argument("--threads", type=_ints, help="CPU thread counts, comma list (default 1,2)")
    p.add_argument("--competitors", type=_names,
                   help=f"comma list of {tuple(competitors.COMPETITORS)}, or 'none'")
    p.add_argument("--compile-sizes", type=_ints, help="C / element counts where torch.compile runs")
    p.add_argument("--compile-dtypes", type=_names, help="dtypes where torch.compile runs")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="auto: CPU, plus CUDA when a GPU and fastloss._cuda are there")
    p.add_argument("--rounds", type=int, help="alternating rounds over fastloss, copy and competitors")
    p.add_argument("--min-time", type=float, help="seconds of timed calls per measurement (at least)")
    p.add_argument("--max-time", type=float, help="seconds per measurement (at most)")
    p.add_argument("--allocate", action="store_true",
                   help="fastloss allocates its gradient each call (default: out= a preallocated buffer)")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory call")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--out", type=Path, default=Path("bench_out"), help="output directory (default bench_out/)")
    args = p.parse_args(argv)
    for key, value in {**DEFAULTS, **PRESETS[args.preset]}.items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    if args.competitors == ("none",):
        args.competitors = ()
    for key, allowed in (("competitors", competitors.COMPETITORS), ("forms", ALL_FORMS), ("dtypes", _bench.DTYPES)):
        unknown = set(getattr(args, key)) - set(allowed)
        if unknown:
            p.error(f"unknown {key} {sorted(unknown)}; choose from {tuple(allowed)}")
    return args


def cuda_status() -> str | None:
    """None when the CUDA part can run, else why not."""
    try:
        import torch
    except ImportError:
        return "torch is not installed"
    if not torch.cuda.is_available():
        return "no CUDA device"
    try:
        import fastloss._cuda  # noqa: F401
    except ImportError as exc:
        return f"fastloss._cuda is not built ({exc})"
    return None


def on_device(case: Case, device: str) -> Case:
    if device == "cpu":
        return case
    x = _bench.to_torch(case.x, device)
    return dataclasses.replace(
        case, x=x, target=_bench.to_torch(case.target, device),
        grad_out=None if case.grad_out is None else x.new_empty(x.shape),
    )


def _compile_allowed(case: Case, args) -> bool:
    return case.shape[-1] in args.compile_sizes and case.dtype in args.compile_dtypes


def _timing_fields(prefix: str, t: _bench.Timing, nbytes: int) -> dict:
    return {f"{prefix}median_s": t.median, f"{prefix}min_s": t.min, f"{prefix}max_s": t.max,
            f"{prefix}gbps": t.gbps(nbytes)}


def _loss_of(result, form: str) -> float | None:
    """The loss value of one call's result (forward: the loss; fused: (loss, grad)), else None."""
    if form == "backward":
        return None
    value = result if form == "forward" else result[0]
    return float(value.item() if hasattr(value, "item") else value)


def _rel_diff(value: float | None, reference: float | None) -> float | None:
    """|value - reference| / |reference|: shows that a competitor computed the same loss."""
    if value is None or reference is None:
        return None
    return abs(value - reference) / max(abs(reference), 1e-30)


def _build_competitors(case: Case, device: str, threads: int, args, reference, row: dict) -> dict:
    """The competitors that can run, each called once here (a failure becomes a note, not a crash)
    and checked to compute the same loss; the others get their reason in ``row``."""
    fns = {}
    for name in args.competitors:
        if name == "torch_compile" and not _compile_allowed(case, args):
            row[f"{name}_note"] = "not run at this size/dtype (--compile-sizes, --compile-dtypes)"
            continue
        try:
            fn = competitors.COMPETITORS[name](case, device, threads)
            row[f"{name}_loss_rel_diff"] = _rel_diff(_loss_of(fn(), case.form), reference)
        except Skip as why:
            row[f"{name}_note"] = str(why)
            continue
        except Exception as exc:  # noqa: BLE001 - a broken competitor is reported, not fatal
            row[f"{name}_note"] = f"failed: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
            continue
        fns[name] = fn
    return fns


def measure_case(case: Case, device: str, threads: int, args) -> dict:
    """One result row: fastloss, the copy of the same bytes and each competitor on the same data,
    timed in alternating rounds."""
    sync = None
    if device != "cpu":
        import torch

        sync = torch.cuda.synchronize
    nbytes, n = case.nbytes, math.prod(case.shape)
    fn = _bench.fastloss_fn(case, allocate=args.allocate)
    row = {
        "device": device, "loss": case.spec.name, "kind": case.spec.kind, "form": case.form,
        "dtype": case.dtype, "threads": threads if device == "cpu" else None, "shape": list(case.shape),
        "rows": case.shape[0] if case.spec.rowwise else None,
        "classes": case.shape[-1] if case.spec.rowwise else None, "elements": n,
        "bytes": nbytes, "bytes_per_element": nbytes / n,
    }
    others = _build_competitors(case, device, threads, args, _loss_of(fn(), case.form), row)
    copy_fn = _bench.copy_fn(nbytes, device, threads=max(1, threads))
    t = _bench.measure_many({"copy": copy_fn, "fastloss": fn, **others}, sync=sync,
                            rounds=args.rounds, min_time=args.min_time, max_time=args.max_time)
    fl, copy = t["fastloss"], t["copy"]
    row.update({
        "time_median_s": fl.median, "time_min_s": fl.min, "time_max_s": fl.max, "repeats": fl.repeats,
        "gbps": fl.gbps(nbytes), "copy_median_s": copy.median, "copy_gbps": copy.gbps(nbytes),
        "pct_of_copy": 100.0 * copy.median / fl.median,
        "peak_extra_bytes": None if args.no_memory else _bench.peak_extra_memory(fn, device),
    })
    for name, other in others.items():
        row.update(_timing_fields(f"{name}_", t[name], nbytes))
        row[f"{name}_speedup"] = t[name].median / fl.median
        if not args.no_memory:
            row[f"{name}_peak_extra_bytes"] = _bench.peak_extra_memory(other, device)
    return row


def _measure_or_note(case: Case, device: str, threads: int, args, notes: list[str], label: str) -> list[dict]:
    if device == "cpu":
        _bench.set_threads(threads)
    try:
        return [measure_case(case, device, threads, args)]
    except Exception as exc:  # noqa: BLE001 - one failing point must not lose the whole run
        notes.append(f"{label} t{threads}: fastloss failed: {type(exc).__name__}: {str(exc)[:200]}")
        return []


def _append_partial(out: Path, rows: list[dict]) -> None:
    """Each row as soon as it exists (results.partial.jsonl), so a long run cut short keeps its rows."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "results.partial.jsonl", "a") as f:
        f.writelines(json.dumps(row) + "\n" for row in rows)


def run(args) -> tuple[list[dict], list[str], list[str]]:
    """(rows, notes, devices run)."""
    devices, notes = ["cpu"], []
    if args.device != "cpu":
        why_not = cuda_status()
        if why_not is None:
            devices = ["cuda"] if args.device == "cuda" else ["cpu", "cuda"]
        else:
            notes.append(f"cuda: skipped, {why_not}")
            if args.device == "cuda":
                devices = []
    specs = [BY_NAME[n] for n in args.loss] if args.loss else list(LOSSES)
    (args.out / "results.partial.jsonl").unlink(missing_ok=True)
    plan = sweep.points(specs, list(args.forms), list(args.dtypes), tuple(args.classes), tuple(args.elements),
                        int(args.budget_mb * 2**20))
    thread_counts = {d: (tuple(args.threads) if d == "cpu" else (0,)) for d in devices}
    bar = _bench.ProgressBar(sum(len(plan) * len(thread_counts[d]) for d in devices))
    rows = []
    for device in devices:
        for point in plan:
            label = f"{device} {point.spec.name} {point.form} {point.dtype} {'x'.join(map(str, point.shape))}"
            try:
                case = on_device(_bench.make_case(point.spec, point.form, point.dtype, point.shape), device)
            except Skip as why:
                notes.append(f"{label}: skipped, {why}")
                case = None
            for threads in thread_counts[device]:
                if case is not None:
                    new = _measure_or_note(case, device, threads, args, notes, label)
                    rows.extend(new)
                    _append_partial(args.out, new)
                bar.step(f"{label} t{threads}" if threads else label)
    if "jax" in args.competitors:
        notes.append("jax: XLA's CPU thread pool cannot be resized at run time; JAX used every core in every row")
    return rows, notes, devices


def write_outputs(args, rows: list[dict], notes: list[str], devices: list[str]) -> dict:
    """Files into args.out; results.json last, so that it carries every note (plots included)."""
    machine = _bench.machine_info()
    if "cuda" in devices:
        import torch

        machine["gpu"] = torch.cuda.get_device_name()
    machine["memory_method"] = {d: _bench.MEMORY_METHOD[d] for d in devices}
    settings = {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(args).items() if k != "out"}
    comps = list(args.competitors)
    args.out.mkdir(parents=True, exist_ok=True)
    results_io.write_csv(args.out / "results.csv", rows, comps)
    notes.extend(replot.render(args.out, rows, machine, comps, plots_wanted=not args.no_plots))
    results_io.write_json(args.out / "results.json", machine, settings, notes, rows)
    return machine


def main(argv=None) -> int:
    args = parse_args(argv)
    rows, notes, devices = run(args)
    machine = write_outputs(args, rows, notes, devices)
    for device in devices:
        if rows:
            print(results_io.summary_markdown(machine, rows, list(args.competitors), device))
    for note in dict.fromkeys(notes):
        print(f"note: {note}")
    print(f"wrote {len(rows)} rows to {args.out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
