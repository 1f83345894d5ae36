"""The copy yardstick: a plain copy of the same bytes as a loss call, the roofline it is held against."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import numpy as np

from .timing import Timing, measure

_COPY_POOLS: dict[int, ThreadPoolExecutor] = {}


def copy_fn(nbytes: int, device: str = "cpu", threads: int = 1) -> Callable[[], Any]:
    """The yardstick: a plain copy that moves ``nbytes`` in all (reads nbytes/2, writes nbytes/2).

    CPU: ``np.copyto`` into a preallocated buffer (memcpy), split over ``threads`` threads so that
    an n-thread loss is held against an n-thread copy (one core alone may not saturate DRAM; NumPy
    releases the GIL while it copies). CUDA: ``torch.clone`` (the GPU's copy kernel plus the
    caching allocator, as a loss call that returns a gradient would use)."""
    half = max(1, nbytes // 2)
    if device != "cpu":
        import torch

        return torch.ones(half, dtype=torch.uint8, device=device).clone
    src = np.ones(half, dtype=np.uint8)
    dst = np.zeros_like(src)
    if threads <= 1:
        return lambda: np.copyto(dst, src)
    cuts = [half * i // threads for i in range(threads + 1)]
    parts = [(dst[a:b], src[a:b]) for a, b in zip(cuts[:-1], cuts[1:])]
    pool = _COPY_POOLS.setdefault(threads, ThreadPoolExecutor(threads, thread_name_prefix="fastloss-copy"))

    def parallel_copy():
        for done in [pool.submit(np.copyto, d, s) for d, s in parts]:
            done.result()

    return parallel_copy


def copy_yardstick(nbytes: int, device: str = "cpu", threads: int = 1, **measure_kw) -> Timing:
    """``measure`` of ``copy_fn`` alone (measure_many interleaves it with the loss instead)."""
    sync = None
    if device != "cpu":
        import torch

        sync = torch.cuda.synchronize
    return measure(copy_fn(nbytes, device, threads), sync=sync, **measure_kw)
