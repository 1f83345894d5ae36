"""Matplotlib figures: GB/s against size per loss with the copy roofline, and the speed-up summary."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt
from results_io import LABELS, main_form, speedups

DTYPE_COLORS = {"float32": "tab:blue", "bfloat16": "tab:orange", "float16": "tab:green", "float64": "tab:red"}


def plot_loss(rows: list[dict], loss: str, device: str, machine: dict, path: Path) -> None:
    """One panel per (threads, form): fastloss GB/s (solid) and the same-run copy of the same
    bytes (dashed, the roofline) for each dtype, against C (rowwise) or the element count."""
    mine = [r for r in rows if r["loss"] == loss and r["device"] == device]
    forms = list(dict.fromkeys(r["form"] for r in mine))
    threads = list(dict.fromkeys(r["threads"] for r in mine))
    rowwise = mine[0]["kind"] == "rowwise"
    fig, axes = plt.subplots(len(threads), len(forms), figsize=(max(6.0, 4.2 * len(forms)), 3.4 * len(threads)),
                             squeeze=False, sharey=True)
    for i, n in enumerate(threads):
        for j, form in enumerate(forms):
            ax = axes[i][j]
            for dtype in dict.fromkeys(r["dtype"] for r in mine):
                sel = sorted((r for r in mine if r["threads"] == n and r["form"] == form and r["dtype"] == dtype),
                             key=lambda r: r["classes"] if rowwise else r["elements"])
                xs = [r["classes"] if rowwise else r["elements"] for r in sel]
                color = DTYPE_COLORS.get(dtype)
                ax.plot(xs, [r["gbps"] for r in sel], "o-", color=color, label=f"fastloss {dtype}")
                ax.plot(xs, [r["copy_gbps"] for r in sel], "--", color=color, alpha=0.6, label=f"copy {dtype}")
            ax.set_xscale("log", base=2)
            ax.set_title(f"{form}, {n} thread{'s' if n != 1 else ''}" if n else form, fontsize=9)
            ax.set_xlabel("classes C (N scaled to a fixed byte budget)" if rowwise else "elements")
            ax.grid(True, alpha=0.3)
        axes[i][0].set_ylabel("GB/s")
    axes[0][-1].legend(fontsize=7)
    where = machine.get("gpu") if device != "cpu" else machine["cpu_model"]
    fig.suptitle(f"{loss} on {device} ({where}, ISA {machine['cpu_isa']}), {machine['date_utc'][:10]}\n"
                 "solid: fastloss; dashed: a copy of the same bytes in the same run (the roofline)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_summary(rows: list[dict], competitors: list[str], device: str, machine: dict, path: Path) -> bool:
    """Grouped bars: geometric-mean speed-up of fastloss (fused form when run) over each competitor."""
    form = main_form(rows, device)
    means = {c: speedups(rows, c, device, form) for c in competitors}
    means = {c: m for c, m in means.items() if m}
    if not means:
        return False
    losses = list(dict.fromkeys(r["loss"] for r in rows if r["device"] == device))
    width = 0.8 / len(means)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(losses)), 4.2))
    for k, (comp, m) in enumerate(means.items()):
        xs = [i + (k - (len(means) - 1) / 2) * width for i in range(len(losses))]
        bars = ax.bar(xs, [m.get(loss, 0.0) for loss in losses], width, label=LABELS.get(comp, comp))
        ax.bar_label(bars, fmt="%.2g", fontsize=6)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}x"))
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xticks(range(len(losses)))
    ax.set_xticklabels(losses, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("speed-up of fastloss (x, geometric mean)")
    where = machine.get("gpu") if device != "cpu" else machine["cpu_model"]
    ax.set_title(f"fastloss {form} vs others, {device} ({where}), {machine['date_utc'][:10]}", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
