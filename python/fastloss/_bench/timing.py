"""Timing: ``measure_many`` interleaves implementations in rounds, ``measure`` times one."""

from __future__ import annotations

import gc
import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable


@dataclass
class Timing:
    """Seconds per call over ``repeats`` timed calls (after warm-up)."""

    median: float
    min: float
    max: float
    repeats: int

    def gbps(self, nbytes: int) -> float:
        return nbytes / self.median / 1e9


_REWARM_BELOW_S = 0.01  # faster calls can live in cache, so a round re-warms them before timing


def measure_many(
    fns: dict[str, Callable[[], Any]],
    *,
    warmup: int = 2,
    rounds: int = 3,
    min_repeats: int = 5,
    max_repeats: int = 100,
    min_time: float = 0.3,
    max_time: float = 3.0,
    sync: Callable[[], Any] | None = None,
) -> dict[str, Timing]:
    """Time each ``fn()`` after ``warmup`` untimed calls (compilation, lazy set-up, first-touch
    page faults), in ``rounds`` alternating rounds so that every implementation sees the same
    machine state (other load, clock speed): a drift hits all of them, not just one.

    Over all rounds each fn gets at least ``min_repeats`` calls and ``min_time`` seconds, and at
    most ``max_repeats`` calls or ``max_time`` seconds (always one timed call per round); a warm-up
    call longer than max_time/rounds ends its warm-up. Within a round a fast fn is called once
    untimed first, because the other fns of the round evicted its data from the caches. ``sync``
    waits for asynchronous work (a CUDA stream) before each clock read. The garbage collector is
    paused so that no collection lands inside a sample.
    """
    sync = sync or (lambda: None)
    share = {"min_repeats": -(-min_repeats // rounds), "max_repeats": -(-max_repeats // rounds),
             "min_time": min_time / rounds, "max_time": max_time / rounds}
    for fn in fns.values():
        for _ in range(warmup):
            t0 = time.perf_counter()
            fn()
            sync()
            if time.perf_counter() - t0 > share["max_time"]:
                break
    samples: dict[str, list[float]] = {name: [] for name in fns}
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for r in range(rounds):
            for name, fn in fns.items():
                if r and statistics.median(samples[name]) < _REWARM_BELOW_S:
                    fn()
                    sync()
                _timed_calls(fn, sync, samples[name], **share)
    finally:
        if gc_was_enabled:
            gc.enable()
    return {name: Timing(statistics.median(v), min(v), max(v), len(v)) for name, v in samples.items()}


def _timed_calls(fn, sync, samples: list[float], *, min_repeats, max_repeats, min_time, max_time) -> None:
    start = time.perf_counter()
    for i in range(1, max_repeats + 1):
        t0 = time.perf_counter()
        fn()
        sync()
        now = time.perf_counter()
        samples.append(now - t0)
        if (i >= min_repeats and now - start >= min_time) or now - start >= max_time:
            return


def measure(fn: Callable[[], Any], **kw) -> Timing:
    """``measure_many`` of one function, in one round."""
    return measure_many({"fn": fn}, **{"rounds": 1, **kw})["fn"]
