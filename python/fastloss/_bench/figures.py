"""Figures of the quick bench and of the overhead sweep (matplotlib optional: without it, a note)."""

from __future__ import annotations

from .timing import Timing


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _error_bars(timings: list[Timing]) -> list[list[float]]:
    return [[t.median - t.middle[0] for t in timings], [t.middle[1] - t.median for t in timings]]


def plot_rows(rows: list[dict], path: str, title: str) -> str:
    """Horizontal bars: per row, the median time of fastloss and of each competitor (log scale),
    with the interquartile range as error bars."""
    plt = _pyplot()
    if plt is None:
        return "plot: skipped, matplotlib is not installed (pip install matplotlib)"
    labels = list(dict.fromkeys(name for r in rows for name in r["_timings"]))
    fig, ax = plt.subplots(figsize=(9, 1.0 + 0.25 * len(rows) * len(labels)))
    height = 0.8 / max(1, len(labels))
    for j, name in enumerate(labels):
        ys = [i + j * height for i, r in enumerate(rows) if name in r["_timings"]]
        ts = [r["_timings"][name] for r in rows if name in r["_timings"]]
        ax.barh(ys, [t.median for t in ts], height, xerr=_error_bars(ts), label=name, capsize=2)
    ax.set_yticks([i + 0.4 - height / 2 for i in range(len(rows))])
    names = [f"{r['loss']} {'x'.join(map(str, r['shape']))} {r['dtype']}" for r in rows]
    ax.set_yticklabels(names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("seconds per call (median; bars: interquartile range)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return f"plot: wrote {path}"


def _size_ticks(ax, sweep: dict) -> None:
    points = sweep["points"]
    ax.set_xscale("log")
    ax.minorticks_off()
    ax.set_xticks([p["elements"] for p in points])
    labels = [f"{p['shape'][0]}x{p['shape'][1]}" if sweep["rowwise"] else _short(p["elements"])
              for p in points]
    ax.set_xticklabels(labels, rotation=30, fontsize=8)
    ax.set_xlabel("input shape (N x C)" if sweep["rowwise"] else "input elements")
    ax.grid(True, alpha=0.3)


def _log_values(ax) -> None:
    """Log y axis labelled 1, 2, 5, 10, 20, ... in plain numbers (a reader compares values)."""
    from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def _short(n: int) -> str:
    for unit, scale in (("Mi", 1 << 20), ("Ki", 1 << 10)):
        if n >= scale and n % scale == 0:
            return f"{n // scale} {unit}"
    return str(n)


def plot_overhead(result: dict, path: str, baseline: str = "torch eager") -> str:
    """One column per loss: on top microseconds per call against the input size (log-log, the
    interquartile range shaded), below each implementation's time relative to ``baseline``."""
    plt = _pyplot()
    if plt is None:
        return "plot: skipped, matplotlib is not installed (pip install matplotlib)"
    sweeps = result["sweeps"]
    fig, axes = plt.subplots(2, len(sweeps), figsize=(6.5 * len(sweeps), 8), squeeze=False,
                             gridspec_kw={"height_ratios": [3, 2]})
    for col, sweep in enumerate(sweeps):
        top, bottom = axes[0][col], axes[1][col]
        for impl in sweep["impls"]:
            pts = [(p["elements"], p["timings"][impl], p["timings"].get(baseline)) for p in sweep["points"]
                   if impl in p["timings"]]
            if not pts:
                continue
            xs = [n for n, _, _ in pts]
            line, = top.plot(xs, [1e6 * t.median for _, t, _ in pts], marker="o", label=impl)
            lows, highs = [1e6 * t.middle[0] for _, t, _ in pts], [1e6 * t.middle[1] for _, t, _ in pts]
            top.fill_between(xs, lows, highs, alpha=0.15, color=line.get_color())
            rel = [(n, t.median / b.median) for n, t, b in pts if b is not None]
            if rel and impl != baseline:
                bottom.plot([n for n, _ in rel], [r for _, r in rel], marker="o", color=line.get_color(),
                            label=impl)
        top.set_yscale("log")
        top.set_ylabel("microseconds per call (median)")
        top.set_title(f"{sweep['loss']} {sweep['dtype']}, forward+backward, {result['threads']} thread(s)",
                      fontsize=10)
        top.legend(fontsize=8)
        bottom.axhline(1.0, color="black", linewidth=1)
        bottom.set_yscale("log")
        bottom.set_ylabel(f"time / {baseline} (< 1: faster)")
        for ax in (top, bottom):
            _size_ticks(ax, sweep)
            _log_values(ax)
    fig.suptitle("per-call time of loss+gradient (lower is better)", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return f"plot: wrote {path}"
