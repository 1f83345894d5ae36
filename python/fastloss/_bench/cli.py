"""The arguments of ``python -m fastloss bench`` and its two modes: every loss at the user's shapes
(``quick``), or the per-call overhead sweep (``--overhead``, ``overhead``)."""

from __future__ import annotations

import argparse

import fastloss

from .accounting import DTYPES, FORMS
from .sizes import count, counts, shape

_AGAINST = ("torch", "compile", "jax", "numpy")


def against_list(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if names == ["none"]:
        return []
    bad = [n for n in names if n not in _AGAINST]
    if bad:
        raise argparse.ArgumentTypeError(f"--against takes a comma list of {', '.join(_AGAINST)} (or none), "
                                         f"got {', '.join(map(repr, bad))}")
    return list(dict.fromkeys(names))


def _dtypes(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in DTYPES]
    if bad:
        raise argparse.ArgumentTypeError(
            f"--dtype takes {', '.join(DTYPES)}, got {', '.join(map(repr, bad))}")
    return names


def _flat(values):
    return [v for group in values for v in group] if values else None


def add_arguments(parser) -> None:
    parser.description = (
        "Time the loss+gradient (forward+backward) of fastloss against PyTorch, torch.compile and JAX on "
        "your shapes, dtypes and threads. Without options: every loss at one DRAM-sized shape in float32 "
        "and bfloat16 (minutes; progress and the time left on stderr). With a size but no --loss: "
        "cross_entropy only (huber_loss for --elements alone). "
        "Example: python -m fastloss bench --shape 512x50000 --against torch,compile")
    size = parser.add_argument_group("sizes (default: one DRAM-sized shape per loss)")
    size.add_argument("--shape", action="append", type=shape, metavar="RxC",
                      help="an input shape, e.g. 512x50000 (rows x classes, class axis last); point-wise "
                           "losses take it as their input's shape (repeatable)")
    size.add_argument("--classes", action="append", type=counts, metavar="C[,C...]",
                      help="row-wise losses at C classes, with as many rows as give the default shape's "
                           "8 Mi values (--quick: 512 Ki; repeatable)")
    size.add_argument("--elements", action="append", type=counts, metavar="N[,N...]",
                      help="point-wise losses at N elements, e.g. 1e6 or 4Mi (repeatable)")
    size.add_argument("--quick", action="store_const", dest="size", const="quick", default="default",
                      help="smaller default inputs (cache-resident)")
    size.add_argument("--tiny", action="store_const", dest="size", const="tiny",
                      help="tiny inputs: checks that everything runs (used by the tests)")
    parser.add_argument("--loss", action="append", choices=[s.name for s in fastloss.LOSSES] + ["all"],
                        metavar="NAME", help="a loss of fastloss.LOSSES, or all (repeatable; default: every "
                                             "loss, but cross_entropy only when a size is given)")
    parser.add_argument("--dtype", action="append", type=_dtypes, metavar="D[,D...]",
                        help=f"{', '.join(DTYPES)} (repeatable; default: float32 and bfloat16)")
    parser.add_argument("--form", choices=tuple(FORMS), default="fused",
                        help="fused = loss+gradient (default), backward = gradient, forward = loss only")
    parser.add_argument("--threads", type=count, default=None,
                        help="threads for fastloss and PyTorch (default: what `python -m fastloss info` "
                             f"reports, now {fastloss.get_num_threads()}; 1 with --overhead)")
    parser.add_argument("--against", type=against_list, default=None, metavar="NAMES",
                        help="comma list of torch (eager), compile (torch.compile), jax (jit), numpy "
                             "(fastloss's NumPy reference), or none (default: torch,jax; with --overhead "
                             "torch,compile)")
    parser.add_argument("--no-compare", action="store_true", help="same as --against none")
    parser.add_argument("--overhead", action="store_true",
                        help="per-call overhead sweep instead: forward+backward from (8, 2) to (65536, 1000) "
                             "and 1 Ki to 16 Mi elements (--quick/--tiny: fewer sizes; --loss: default "
                             "cross_entropy and huber_loss), fastloss core and fastloss.torch vs PyTorch")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="--overhead only: wall time (default) or process CPU time, which other "
                             "processes on a busy machine do not inflate (1 thread only)")
    parser.add_argument("--plot", metavar="PATH", help="also draw the results into PATH (needs matplotlib)")
    parser.add_argument("--json", metavar="PATH", help="also write the rows and machine description as JSON")


def main(args) -> int:
    if args.loss and "all" in args.loss:
        args.loss = [s.name for s in fastloss.LOSSES]
    args.dtype = _flat(args.dtype)
    args.classes = _flat(args.classes)
    args.elements = _flat(args.elements)
    if args.no_compare:
        args.against = []
    elif args.against is None:
        args.against = ["torch", "compile"] if args.overhead else ["torch", "jax"]
    if args.overhead:
        from . import overhead

        args.threads = args.threads or 1
        return overhead.main(args)
    from . import quick

    args.threads = args.threads or fastloss.get_num_threads()
    return quick.main(args)
