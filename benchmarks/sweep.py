"""The shapes a suite run visits, derived from the loss registry and a few size knobs.

Rowwise losses sweep the class count C with N rows chosen so that the input always holds about the
same number of bytes (the byte budget): every point then moves the same traffic, and a change of
GB/s along C is the kernel's, not the cache's. Pointwise losses sweep the element count.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastloss._bench import ITEMSIZE
from fastloss._registry import LossSpec

# 2 (binary), 10 (CIFAR), 128, 1000 (ImageNet), 4096, 32000 (Llama-2 vocab), 128256 (Llama-3 vocab),
# 262144 (Gemma-3 vocab): small C stresses per-row work, large C the streaming inner loop.
DEFAULT_CLASSES = (2, 10, 128, 1000, 4096, 32000, 128256, 262144)
# 4 Ki (L1) .. 16 Mi elements (64 MiB fp32 input: twice this machine's L3, so DRAM-bound).
DEFAULT_ELEMENTS = (1 << 12, 1 << 16, 1 << 20, 1 << 22, 1 << 24)
DEFAULT_BUDGET_BYTES = 64 << 20


@dataclass(frozen=True)
class Point:
    spec: LossSpec
    form: str
    dtype: str
    shape: tuple[int, ...]


def rowwise_shape(classes: int, dtype: str, budget_bytes: int) -> tuple[int, int]:
    """(N, C) with N*C*itemsize about ``budget_bytes`` (at least one row)."""
    return max(1, budget_bytes // (classes * ITEMSIZE[dtype])), classes


def points(
    specs: list[LossSpec],
    forms: list[str],
    dtypes: list[str],
    classes: tuple[int, ...] = DEFAULT_CLASSES,
    elements: tuple[int, ...] = DEFAULT_ELEMENTS,
    budget_bytes: int = DEFAULT_BUDGET_BYTES,
) -> list[Point]:
    """Every loss x form x dtype x size, in that nesting order (the plots group by loss)."""
    out = []
    for spec in specs:
        for form in forms:
            for dtype in dtypes:
                sizes = (
                    [rowwise_shape(c, dtype, budget_bytes) for c in classes]
                    if spec.rowwise
                    else [(n,) for n in elements]
                )
                out.extend(Point(spec, form, dtype, shape) for shape in sizes)
    return out
