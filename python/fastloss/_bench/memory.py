"""Peak extra memory: what one call allocates beyond what the process already holds."""

from __future__ import annotations

import gc
import tracemalloc
from typing import Any, Callable

_CLEAR_REFS = "/proc/self/clear_refs"
MEMORY_METHOD = {
    "cpu": "max(RSS high-water-mark rise, tracemalloc peak): a lower bound",
    "cuda": "rise of torch.cuda.max_memory_allocated",
}


def _status_kib(field_name: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    raise KeyError(field_name)


def _can_reset_rss_peak() -> bool:
    try:
        with open(_CLEAR_REFS, "w") as f:
            f.write("5")  # Linux >= 4.0: resets VmHWM to the current RSS
        return True
    except OSError:
        return False


def peak_extra_memory(fn: Callable[[], Any], device: str = "cpu") -> int:
    """Bytes of memory one ``fn()`` call needs beyond what the process already holds.

    CPU: the larger of two lower bounds: the rise of the RSS high-water mark (VmHWM, reset through
    /proc/self/clear_refs; sees every allocator, but not heap memory that malloc reuses) and the
    tracemalloc peak (sees NumPy buffers exactly, but no foreign allocator). CUDA: the rise of
    ``torch.cuda.max_memory_allocated``. Call after warm-up.
    """
    gc.collect()
    if device != "cpu":
        import torch

        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        return max(0, torch.cuda.max_memory_allocated() - before)
    rss_delta = 0
    tracemalloc.start()
    try:
        if _can_reset_rss_peak():
            before = _status_kib("VmRSS")
            _can_reset_rss_peak()
            fn()
            rss_delta = max(0, _status_kib("VmHWM") - before) * 1024
        else:
            fn()
        traced = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return max(rss_delta, traced)
