"""Per-call time of loss+gradient from tiny to large inputs (issue 10): where the front end and
autograd cost more than the kernel, and from which size on fastloss beats what it replaces.

    PYTHONPATH=python python benchmarks/overhead.py            # the full sweep (a few minutes)
    PYTHONPATH=python python benchmarks/overhead.py --quick    # fewer sizes (under a minute)

1 thread, float32, forward+backward: cross-entropy (8, 2) ... (65536, 1000) and Huber 1 Ki ... 16 Mi
elements; fastloss core (NumPy, gradient into out=), fastloss.torch, PyTorch eager and torch.compile.
Writes overhead_cpu.txt (the table) and overhead_cpu.png into --out (default benchmarks/results/).
The same sweep runs as ``python -m fastloss bench --overhead`` (printing only).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fastloss._bench import overhead
from fastloss._bench.cli import against_list
from fastloss._bench.sizes import count

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_const", dest="size", const="quick", default="full",
                   help="fewer sizes, shorter timing (under a minute)")
    p.add_argument("--tiny", action="store_const", dest="size", const="tiny",
                   help="two sizes per loss (tests)")
    p.add_argument("--loss", action="append", help="a loss of fastloss.LOSSES (repeatable; default: "
                                                   f"{', '.join(overhead.DEFAULT_LOSSES)})")
    p.add_argument("--dtype", default="float32")
    p.add_argument("--threads", type=count, default=1)
    p.add_argument("--against", type=against_list, default=["torch", "compile"],
                   help="comma list of torch, compile, jax (default torch,compile)")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="wall time (default) or process CPU time (a busy shared machine; 1 thread only)")
    p.add_argument("--out", type=Path, default=RESULTS, help="directory of overhead_cpu.txt/.png")
    p.add_argument("--json", metavar="PATH", help="also write every timing as JSON")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    args.dtype = [args.dtype]
    args.txt = str(args.out / "overhead_cpu.txt")
    args.plot = str(args.out / "overhead_cpu.png")
    return overhead.main(args)


if __name__ == "__main__":
    sys.exit(main())
