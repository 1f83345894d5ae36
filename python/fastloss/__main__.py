"""``python -m fastloss info | check | bench``."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fastloss")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="print version, backend, ISA, threads and CUDA devices")
    sub.add_parser("check", help="check every loss of every backend against the NumPy reference")
    bench = sub.add_parser("bench", help="time loss+gradient against PyTorch and JAX (every loss: minutes; "
                                         "--loss NAME for one)")
    from . import _bench

    _bench.add_arguments(bench)
    args = parser.parse_args(argv)
    if args.command == "info":
        from . import show_config

        show_config()
        return 0
    if args.command == "check":
        from . import _check

        return _check.main()
    return _bench.main(args)


if __name__ == "__main__":
    sys.exit(main())
