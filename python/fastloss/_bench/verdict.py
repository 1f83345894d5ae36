"""What a reader takes away from a row: formatted times with their spread, and the verdict."""

from __future__ import annotations

from .timing import Timing


def fmt_time(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds * 1e9:.3g} ns"


def fmt_timing(t: Timing) -> str:
    """``12.3 ms +-2%``: the median and half the interquartile range."""
    return f"{fmt_time(t.median)} ±{100 * t.spread:.0f}%"


def _overlap(a: Timing, b: Timing) -> bool:
    (a_lo, a_hi), (b_lo, b_hi) = a.middle, b.middle
    return a_lo <= b_hi and b_lo <= a_hi


# Above this spread (half the interquartile range over the median) a timing is too unsteady for a
# ratio to mean anything: the middle half of its samples spans more than +-25%.
UNRELIABLE_SPREAD = 0.25
# Overlapping timings whose medians are this close are called "as fast"; further apart, no verdict.
SAME_SPEED = 1.1


def compare(ours: Timing, theirs: Timing, label: str) -> str:
    """``4.1x faster than torch eager`` / ``1.3x slower than ...`` / ``as fast as ...``, or no
    verdict when a ratio cannot be trusted: either timing varies by more than UNRELIABLE_SPREAD, or
    the middle halves of the two sets of samples overlap while their medians differ by more than
    SAME_SPEED."""
    ratio = theirs.median / ours.median
    spread = max(ours.spread, theirs.spread)
    if spread > UNRELIABLE_SPREAD:
        return (f"no verdict against {label} (median ratio {ratio:.2f}x, but the timings vary by "
                f"±{100 * spread:.0f}%; rerun on a quieter machine)")
    if _overlap(ours, theirs):
        if 1 / SAME_SPEED <= ratio <= SAME_SPEED:
            return f"as fast as {label} ({ratio:.2f}x, within noise)"
        return (f"no verdict against {label} (median ratio {ratio:.2f}x, but the middle halves of the "
                f"timings overlap; rerun on a quieter machine)")
    if ratio >= 1:
        return f"{ratio:.1f}x faster than {label}"
    return f"{1 / ratio:.1f}x slower than {label}"


def verdict(ours: Timing, others: dict[str, Timing], missing: dict[str, str] | None = None,
            subject: str = "fastloss") -> str:
    """One line: ``fastloss 4.1x faster than torch eager, 1.2x slower than JAX jit; no
    torch.compile (reason)``. ``missing`` maps a competitor that did not run to the reason."""
    parts = [", ".join(compare(ours, t, label) for label, t in others.items())] if others else []
    parts += [f"no {label} ({why})" for label, why in (missing or {}).items()]
    if not parts:
        return f"{subject}: no competitor asked for"
    return f"{subject} " + "; ".join(parts) if others else f"{subject}: " + "; ".join(parts)


def crossover(sizes: list[str], ours: list[float | None], theirs: list[float | None], subject: str,
              label: str) -> str:
    """Where ``subject`` (median seconds ``ours`` per size, ascending sizes) becomes faster than
    ``label`` for good: the smallest size from which it is faster at every larger size of the sweep."""
    pairs = [(s, a, b) for s, a, b in zip(sizes, ours, theirs) if a is not None and b is not None]
    if not pairs:
        return f"{subject} vs {label}: not measured"
    slower = [s for s, a, b in pairs if a >= b]
    if not slower:
        return f"{subject} is faster than {label} at every size of the sweep"
    if len(slower) == len(pairs):
        return f"{subject} is slower than {label} at every size of the sweep"
    last = max(i for i, (_, a, b) in enumerate(pairs) if a >= b)
    if last == len(pairs) - 1:
        return f"{subject} is not faster than {label} at the largest size; slower at {', '.join(slower)}"
    return (f"crossover: {subject} is faster than {label} from {pairs[last + 1][0]} on "
            f"(slower at {', '.join(slower)})")
