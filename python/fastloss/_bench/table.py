"""Aligned text tables of benchmark rows."""

from __future__ import annotations


def format_table(rows: list[dict], columns: list[tuple[str, str]]) -> str:
    """Rows of already-formatted strings as an aligned text table; ``columns`` = (key, header)."""
    cells = [[h for _, h in columns]] + [[str(r.get(k, "")) for k, _ in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
