"""Worker process: reads seeds (one per line) on stdin, writes one JSON result per seed."""

from __future__ import annotations

import json
import sys

from .cases import build_case
from .compare import FINDING, outcome


def main() -> None:
    for line in sys.stdin:
        seed = int(line)
        try:
            case = build_case(seed)
            status, detail = outcome(case)
            desc = case.describe()
        except Exception as exc:  # noqa: BLE001 - a harness error is reported, not hidden
            status, detail, desc = FINDING, f"harness error {type(exc).__name__}: {exc}", f"seed={seed}"
        print(json.dumps({"seed": seed, "status": status, "case": desc, "detail": detail[:1500]}), flush=True)


if __name__ == "__main__":
    main()
