"""Worker process: reads seeds (one per line) from the file named by argv[1], writes one JSON
result per seed to stdout."""

from __future__ import annotations

import json
import sys

from .cases import build_case
from .compare import FINDING, outcome


def main() -> None:
    with open(sys.argv[1]) as f:
        seeds = [int(line) for line in f if line.strip()]
    for seed in seeds:
        try:
            case = build_case(seed)
            status, detail = outcome(case)
            desc = case.describe()
        except Exception as exc:  # noqa: BLE001 - a harness error is reported, not hidden
            status, detail, desc = FINDING, f"harness error {type(exc).__name__}: {exc}", f"seed={seed}"
        print(json.dumps({"seed": seed, "status": status, "case": desc, "detail": detail[:1500]}), flush=True)


if __name__ == "__main__":
    main()
