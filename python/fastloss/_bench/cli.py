"""The quick ``python -m fastloss bench``: every loss against a same-size copy and the competitors."""

from __future__ import annotations

import json

from .._registry import BY_NAME, LOSSES
from .accounting import DTYPES, FORMS
from .cases import Case, Skip, fastloss_fn, make_case
from .competitors import QUICK_COMPETITORS
from .machine import machine_info, set_threads
from .progress import ProgressBar
from .table import format_table
from .timing import measure_many
from .yardstick import copy_fn


def _fmt_time(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds * 1e9:.3g} ns"


# (rows, classes) for rowwise and elements for pointwise, per size preset. The default's fp32
# traffic (64 MiB rowwise, 48 MiB pointwise) exceeds this machine's 32 MiB L3, so GB/s means DRAM.
_QUICK_SIZES = {
    "tiny": ((64, 100), 4096),
    "quick": ((512, 1000), 1 << 19),
    "default": ((2048, 4096), 1 << 22),
}
_QUICK_TIMING = {"warmup": 1, "rounds": 3, "min_repeats": 5, "min_time": 0.2, "max_time": 1.0}
_QUICK_LABELS = {"numpy_ref": "x NumPy", "torch": "x PyTorch", "jax": "x JAX"}


def add_arguments(parser) -> None:
    parser.add_argument("--quick", action="store_const", dest="size", const="quick", default="default",
                        help="smaller inputs (cache-resident; a few seconds)")
    parser.add_argument("--tiny", action="store_const", dest="size", const="tiny",
                        help="tiny inputs: checks that everything runs (used by the tests)")
    parser.add_argument("--loss", action="append", choices=[s.name for s in LOSSES],
                        help="only this loss (repeatable; default: every loss)")
    parser.add_argument("--dtype", action="append", choices=DTYPES,
                        help="only this dtype (repeatable; default: float32 and bfloat16)")
    parser.add_argument("--form", choices=tuple(FORMS), default="fused",
                        help="forward = L, backward = L_grad, fused = L_with_grad (default)")
    parser.add_argument("--threads", type=int, default=1, help="threads for fastloss and PyTorch (default 1)")
    parser.add_argument("--no-compare", action="store_true", help="time fastloss and the copy only")
    parser.add_argument("--json", metavar="PATH", help="also write the rows and machine description as JSON")


def _quick_row(case: Case, compare: bool, threads: int) -> dict:
    fns = {"copy": copy_fn(case.nbytes, threads=threads), "fastloss": fastloss_fn(case)}
    notes = {}
    for name, build in QUICK_COMPETITORS.items() if compare else ():
        try:
            fns[name] = build(case)
        except Skip as why:
            notes[f"note_{name}"] = str(why)
    t = measure_many(fns, **_QUICK_TIMING)
    fl, copy = t["fastloss"], t["copy"]
    row = {
        "loss": case.spec.name, "form": case.form, "dtype": case.dtype, "shape": list(case.shape),
        "bytes": case.nbytes, "time_s": fl.median, "time_min_s": fl.min, "time_max_s": fl.max,
        "gbps": fl.gbps(case.nbytes), "copy_gbps": copy.gbps(case.nbytes),
        "pct_of_copy": 100.0 * copy.median / fl.median, **notes,
    }
    for name in QUICK_COMPETITORS if compare else ():
        row[f"x_{name}"] = t[name].median / fl.median if name in t else None
    return row


def main(args) -> int:
    """Time every loss (one shape, fused form by default) against a same-size copy and competitors."""
    set_threads(args.threads)
    rowwise_shape, elements = _QUICK_SIZES[args.size]
    specs = [BY_NAME[n] for n in args.loss] if args.loss else list(LOSSES)
    dtypes = args.dtype or ["float32", "bfloat16"]
    plan = [(spec, dtype) for spec in specs for dtype in dtypes]
    info = machine_info(("numpy", "torch", "jax"))
    print(f"fastloss {info['fastloss']} bench: backend={info['backend']} isa={info['cpu_isa']} "
          f"threads={args.threads} cpu={info['cpu_model']} ({info['cores']} cores)")
    bar = ProgressBar(len(plan))
    rows, notes = [], set()
    for spec, dtype in plan:
        shape = rowwise_shape if spec.rowwise else (elements,)
        try:
            case = make_case(spec, args.form, dtype, shape)
        except Skip as why:
            notes.add(f"{dtype}: {why}")
            bar.step(f"{spec.name} {dtype} skipped")
            continue
        row = _quick_row(case, not args.no_compare, args.threads)
        rows.append(row)
        notes.update(f"{k[5:]} vs {spec.name} {dtype}: {v}" for k, v in row.items() if k.startswith("note_"))
        bar.step(case.label)
    print(format_table([_display(r) for r in rows], _quick_columns(rows)))
    print("GB/s counts the least bytes a call must move (see fastloss._bench.bytes_moved); "
          "'% copy' compares with np.copyto of the same bytes, same run; 'x NAME' = NAME's time / fastloss's.")
    for note in sorted(notes):
        print(f"note: {note}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "threads": args.threads, "rows": rows}, f, indent=1)
    return 0


def _quick_columns(rows: list[dict]) -> list[tuple[str, str]]:
    columns = [("loss", "loss"), ("shape", "shape"), ("dtype", "dtype"), ("time", "fastloss"),
               ("gbps", "GB/s"), ("pct", "% copy")]
    present = {k for r in rows for k, v in r.items() if k.startswith("x_") and v is not None}
    for name in QUICK_COMPETITORS:
        if f"x_{name}" in present:
            columns.append((f"x_{name}", _QUICK_LABELS[name]))
    return columns


def _display(row: dict) -> dict:
    out = {
        "loss": row["loss"], "shape": "x".join(map(str, row["shape"])), "dtype": row["dtype"],
        "time": _fmt_time(row["time_s"]), "gbps": f"{row['gbps']:.2f}", "pct": f"{row['pct_of_copy']:.0f}%",
    }
    for key, value in row.items():
        if key.startswith("x_"):
            out[key] = "-" if value is None else f"{value:.2f}x"
    return out
