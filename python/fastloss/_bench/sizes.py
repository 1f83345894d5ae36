"""The shapes ``python -m fastloss bench`` times: presets, or the user's ``--shape``, ``--classes``
and ``--elements``."""

from __future__ import annotations

import argparse
import re

# Per preset: (rowwise (N, C), pointwise elements). The default's fp32 traffic (64 MiB rowwise,
# 48 MiB pointwise) exceeds this machine's 32 MiB L3, so GB/s means DRAM.
PRESETS = {
    "tiny": ((64, 100), 4096),
    "quick": ((512, 1000), 1 << 19),
    "default": ((2048, 4096), 1 << 22),
}

_SUFFIX = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "ki": 1 << 10, "mi": 1 << 20, "gi": 1 << 30}


def count(text: str) -> int:
    """A positive count: ``50000``, ``1e6``, ``4M`` (10^6), ``4Mi`` (2^20)."""
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?(?:e[0-9]+)?)\s*([kmg]i?)?\s*", text.lower())
    if not m:
        raise argparse.ArgumentTypeError(
            f"expected a positive count like 50000, 1e6, 4M or 4Mi, got {text!r}")
    value = float(m.group(1)) * _SUFFIX[m.group(2) or ""]
    if value != int(value) or value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole count, got {text!r}")
    return int(value)


def counts(text: str) -> list[int]:
    """A comma-separated list of counts (``--classes 10,1000``)."""
    return [count(part) for part in text.split(",") if part.strip()]


def shape(text: str) -> tuple[int, ...]:
    """``512x50000`` (rows x classes; class axis last), ``8x128x1000`` or ``1000000``."""
    parts = re.split(r"[x,*]", text.lower().strip("() "))
    try:
        dims = tuple(count(p) for p in parts)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected a shape like 512x50000 (rows x classes), got {text!r}") from None
    return dims


def rows_for(classes: int, elements: int) -> tuple[int, int]:
    """(N, C) holding about ``elements`` values (at least one row)."""
    return max(1, elements // classes), classes


def plan_sizes(preset: str, shapes: list, classes: list, elements: list) -> tuple[list, list, list[str]]:
    """(rowwise shapes, pointwise shapes, notes). Without any size flag, the preset's sizes;
    otherwise exactly what was asked: ``--shape`` for both kinds (rowwise needs a class axis,
    so at least 2 dims), ``--classes`` for rowwise losses (N from the preset's element count),
    ``--elements`` for point-wise ones. A kind left without sizes is not run (a note says so)."""
    preset_rowwise, preset_elements = PRESETS[preset]
    if not (shapes or classes or elements):
        return [preset_rowwise], [(preset_elements,)], []
    rowwise = [s for s in shapes if len(s) >= 2]
    rowwise += [rows_for(c, preset_rowwise[0] * preset_rowwise[1]) for c in classes]
    pointwise = list(shapes) + [(n,) for n in elements]
    notes = [f"--shape {'x'.join(map(str, s))}: row-wise losses need rows x classes, skipped for them"
             for s in shapes if len(s) < 2]
    if not rowwise:
        notes.append("row-wise losses not run: no --shape RxC or --classes given")
    if not pointwise:
        notes.append("point-wise losses not run: no --shape or --elements given")
    return _unique(rowwise), _unique(pointwise), notes


def _unique(items: list) -> list:
    return list(dict.fromkeys(tuple(i) for i in items))
