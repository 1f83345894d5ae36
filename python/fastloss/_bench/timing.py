"""Timing: ``measure_many`` interleaves implementations in rounds, ``measure`` times one,
``measure_calls`` times microsecond calls in batches."""

from __future__ import annotations

import gc
import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable


@dataclass
class Timing:
    """Seconds per call over ``repeats`` timed samples (after warm-up); ``q1``/``q3`` are the
    quartiles of the samples (the interquartile range is the spread the tables show)."""

    median: float
    min: float
    max: float
    repeats: int
    q1: float | None = None
    q3: float | None = None
    calls_per_sample: int = 1

    @classmethod
    def of(cls, samples: list[float], calls_per_sample: int = 1) -> Timing:
        q1, q3 = _quartiles(samples)
        return cls(statistics.median(samples), min(samples), max(samples), len(samples), q1, q3,
                   calls_per_sample)

    def gbps(self, nbytes: int) -> float:
        return nbytes / self.median / 1e9

    @property
    def middle(self) -> tuple[float, float]:
        """(q1, q3): where the middle half of the samples lies ((min, max) without quartiles)."""
        return (self.q1 if self.q1 is not None else self.min, self.q3 if self.q3 is not None else self.max)

    @property
    def spread(self) -> float:
        """Half the interquartile range relative to the median (0.03 = the middle half of the
        samples lies within about +-3%)."""
        lo, hi = self.middle
        return (hi - lo) / 2 / self.median


def _quartiles(samples: list[float]) -> tuple[float, float]:
    if len(samples) < 2:
        return samples[0], samples[0]
    q1, _, q3 = statistics.quantiles(samples, n=4, method="inclusive")
    return q1, q3


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
    return {name: Timing.of(v) for name, v in samples.items()}


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


def measure_calls(
    fns: dict[str, Callable[[], Any]],
    *,
    rounds: int = 5,
    time_per_fn: float = 0.5,
    sample_time: float = 2e-3,
    min_samples: int = 5,
    warmup: int = 3,
    clock: str = "wall",
) -> dict[str, Timing]:
    """Per-call seconds of fast calls (microseconds): each sample times a batch of k back-to-back
    calls with ``time.perf_counter`` and divides by k, k chosen after warm-up so that a sample
    lasts about ``sample_time`` (the clock read and the loop then cost well under 1%). The fns
    take turns in ``rounds`` rounds (a drift of machine state hits all of them), each round
    starting with one untimed call (the other fns evicted its data); about ``time_per_fn``
    seconds of samples per fn, at least ``min_samples``. The garbage collector is paused.

    ``clock="cpu"`` reads ``time.process_time`` instead: the CPU time of the whole process, user
    and kernel, which a busy machine's preemptions do not inflate. It equals the wall time of a
    single-threaded call that never waits, so use it for 1-thread runs on a shared machine only."""
    now = {"wall": time.perf_counter, "cpu": time.process_time}[clock]
    batch = {}
    for name, fn in fns.items():
        for _ in range(warmup):
            fn()
        t0 = time.perf_counter()
        fn()
        one = max(time.perf_counter() - t0, 1e-8)
        k = max(1, min(100_000, round(sample_time / one)))
        n = max(min_samples, round(time_per_fn / (k * one)))
        batch[name] = (k, -(-n // rounds))
    samples: dict[str, list[float]] = {name: [] for name in fns}
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(rounds):
            for name, fn in fns.items():
                k, per_round = batch[name]
                fn()
                for _ in range(per_round):
                    t0 = now()
                    for _ in range(k):
                        fn()
                    samples[name].append((now() - t0) / k)
    finally:
        if gc_was_enabled:
            gc.enable()
    return {name: Timing.of(v, batch[name][0]) for name, v in samples.items()}
