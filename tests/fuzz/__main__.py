"""python -m tests.fuzz [--cases N] [--start S] [--budget SECONDS] | --seed N"""

from __future__ import annotations

import argparse
import sys

from .cases import build_case
from .compare import FINDING, outcome
from .runner import run_campaign


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__)
    ap.add_argument("--seed", type=int, help="replay one case in this process and print it")
    ap.add_argument("--cases", type=int, default=2000)
    ap.add_argument("--start", type=int, default=0, help="first seed of the campaign")
    ap.add_argument("--budget", type=float, default=None, help="stop after this many seconds")
    a = ap.parse_args(argv)
    if a.seed is not None:
        case = build_case(a.seed)
        args, kwargs = case.build()
        print(case.describe())
        print("args:", *(repr(x)[:400] for x in args), sep="\n  ")
        print("kwargs:", *(f"{k}={v!r:.400}" for k, v in kwargs.items()), sep="\n  ")
        status, detail = outcome(case)
        print(status, detail)
        return 1 if status == FINDING else 0
    res = run_campaign(list(range(a.start, a.start + a.cases)), a.budget, log=lambda s: print(s, flush=True))
    print(res["counts"])
    return 1 if res["findings"] else 0


if __name__ == "__main__":
    sys.exit(main())
