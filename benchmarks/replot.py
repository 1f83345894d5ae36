"""Plots and summary.md of a run: written by run_suite.py, and redrawn from a finished run's
results.json without re-measuring:

    PYTHONPATH=python python benchmarks/replot.py bench_out/reduced
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import results_io


def render(out: Path, rows: list[dict], machine: dict, competitors: list[str], plots_wanted: bool = True) -> list[str]:
    """summary.md, then (matplotlib permitting) one GB/s figure per loss and device and the
    speed-up chart per device. Returns notes on what could not be drawn."""
    devices = list(dict.fromkeys(r["device"] for r in rows))
    summary = "\n".join(results_io.summary_markdown(machine, rows, competitors, d) for d in devices)
    (out / "summary.md").write_text(summary)
    if not plots_wanted or not rows:
        return []
    try:
        import plots
    except ImportError as exc:  # matplotlib is optional: the numbers are still written
        return [f"plots: skipped, {exc}"]
    for device in devices:
        for loss in dict.fromkeys(r["loss"] for r in rows if r["device"] == device):
            plots.plot_loss(rows, loss, device, machine, out / f"gbps_{loss}_{device}.png")
        plots.plot_summary(rows, competitors, device, machine, out / f"speedup_{device}.png")
    return []


def main(argv: list[str] | None = None) -> int:
    out = Path((sys.argv[1:] if argv is None else argv)[0])
    result = json.loads((out / "results.json").read_text())
    for note in render(out, result["rows"], result["machine"], result["settings"]["competitors"]):
        print(f"note: {note}")
    print(f"redrew {out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
