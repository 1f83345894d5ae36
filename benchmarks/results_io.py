"""Result rows -> CSV, JSON (with the machine description) and the Markdown summary table."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

BASE_COLUMNS = (
    "device", "loss", "kind", "form", "dtype", "threads", "shape", "rows", "classes", "elements",
    "bytes", "bytes_per_element", "time_median_s", "time_min_s", "time_max_s", "repeats", "gbps",
    "copy_median_s", "copy_gbps", "pct_of_copy", "peak_extra_bytes",
)
COMPETITOR_FIELDS = ("median_s", "min_s", "max_s", "gbps", "speedup", "peak_extra_bytes", "loss_rel_diff", "note")
LABELS = {
    "torch": "PyTorch eager", "torch_compile": "torch.compile", "jax": "JAX jit (optax)",
    "sklearn": "sklearn._loss", "numpy_ref": "NumPy reference", "liger": "Liger-Kernel",
}


def columns(competitors: list[str]) -> list[str]:
    return list(BASE_COLUMNS) + [f"{c}_{f}" for c in competitors for f in COMPETITOR_FIELDS]


def write_csv(path: Path, rows: list[dict], competitors: list[str]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns(competitors), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("x".join(map(str, v)) if k == "shape" else v) for k, v in row.items()})


def write_json(path: Path, machine: dict, settings: dict, notes: list[str], rows: list[dict]) -> None:
    with open(path, "w") as f:
        json.dump({"machine": machine, "settings": settings, "notes": notes, "rows": rows}, f, indent=1)


def geomean(values) -> float | None:
    values = [v for v in values if v is not None and v > 0 and math.isfinite(v)]
    return math.exp(sum(map(math.log, values)) / len(values)) if values else None


def speedups(rows: list[dict], competitor: str, device: str, form: str) -> dict[str, float]:
    """Geometric mean over every shape, dtype and thread count of ``competitor``'s time / fastloss's,
    per loss."""
    out: dict[str, float] = {}
    for loss in dict.fromkeys(r["loss"] for r in rows):
        mean = geomean(
            r.get(f"{competitor}_speedup") for r in rows
            if r["loss"] == loss and r["device"] == device and r["form"] == form
        )
        if mean is not None:
            out[loss] = mean
    return out


def main_form(rows: list[dict], device: str) -> str:
    """The form the summaries report: fused when the run has it (the form users time), else any."""
    forms = [r["form"] for r in rows if r["device"] == device]
    return "fused" if "fused" in forms else (forms[0] if forms else "fused")


def headline_rows(rows: list[dict], device: str, form: str) -> list[dict]:
    """Per loss, dtype and thread count: the row at C = 32000 (rowwise; else the largest C) or at
    the largest element count (pointwise) - the realistic, DRAM-bound case."""
    best: dict[tuple, dict] = {}
    for r in rows:
        if r["device"] != device or r["form"] != form:
            continue
        key = (r["loss"], r["dtype"], r["threads"])
        size = (r["classes"] == 32000, r["classes"]) if r["kind"] == "rowwise" else (True, r["elements"])
        if key not in best or size > best[key]["_size"]:
            best[key] = {**r, "_size": size}
    return list(best.values())


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def summary_markdown(machine: dict, rows: list[dict], competitors: list[str], device: str) -> str:
    form = main_form(rows, device)
    present = [c for c in competitors if any(r.get(f"{c}_speedup") for r in rows if r["device"] == device)]
    head = "| loss | dtype | shape | threads | fastloss | GB/s | % of copy | " + " | ".join(
        f"x {LABELS.get(c, c)}" for c in present) + " |"
    where = machine.get("gpu") if device != "cpu" else machine["cpu_model"]
    title = (
        f"fastloss {machine['fastloss']} on {device}: {where} ({machine['cores']} cores, ISA {machine['cpu_isa']},"
        f" backend {machine['backend']}), {machine['date_utc']} UTC. Form {form!r}, reduction='mean';"
        " 'x NAME' = NAME's time / fastloss's."
    )
    lines = [
        title,
        "",
        head,
        "|" + "---|" * (7 + len(present)),
    ]
    for r in headline_rows(rows, device, form):
        cells = [
            r["loss"], r["dtype"], "x".join(map(str, r["shape"])), str(r["threads"] or "-"),
            f"{r['time_median_s'] * 1e3:.3g} ms", _fmt(r["gbps"], ".1f"), _fmt(r["pct_of_copy"], ".0f"),
        ] + [_fmt(r.get(f"{c}_speedup"), ".2f") for c in present]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"Geometric mean of the speed-up over every shape, dtype and thread count ({form}):", "",
              "| loss | " + " | ".join(LABELS.get(c, c) for c in present) + " |",
              "|---|" + "---|" * len(present)]
    means = {c: speedups(rows, c, device, form) for c in present}
    for loss in dict.fromkeys(r["loss"] for r in rows if r["device"] == device):
        lines.append(f"| {loss} | " + " | ".join(_fmt(means[c].get(loss), ".2f") for c in present) + " |")
    return "\n".join(lines) + "\n"
