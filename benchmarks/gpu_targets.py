"""The GPU targets of issue 4, measured side by side in one run on one GPU.

    PYTHONPATH=python python benchmarks/gpu_targets.py [--quick] [--json out.json] [--no-compile]

Rows: cross_entropy_with_grad in float32 and bfloat16 at (32768, 1024), (8192, 32000),
(4096, 128256), and every point-wise loss at 16 Mi elements, all with the registry's default
options and reduction="mean". Columns: fastloss's fused call writing into a preallocated ``out=``;
``clone`` of the same number of bytes (the roofline, ``_bench.copy_yardstick``); PyTorch eager
forward + backward; ``torch.compile`` of the same; Liger-Kernel's cross-entropy where installed.
Targets: fastloss >= 85 % of the clone's bandwidth and >= 3x PyTorch eager.

Bytes per call follow ``_bench.bytes_moved`` (read input + write gradient + int64 class indices;
point-wise also reads the target). Every time is the median over repeated samples of
``--calls-per-sample`` back-to-back calls followed by one ``torch.cuda.synchronize()``, divided by
that count: the device throughput a training loop sees, where the host's per-call Python work
overlaps the GPU's (``--calls-per-sample 1`` times single synchronised calls instead).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

import competitors
import fastloss
from fastloss import LOSSES, _bench

ROW_SHAPES = ((32768, 1024), (8192, 32000), (4096, 128256))
POINT_ELEMENTS = 16 * 2**20
TARGET_PCT_OF_CLONE = 85.0
TARGET_SPEEDUP_EAGER = 3.0


def fastloss_call(case: _bench.Case):
    import torch

    x, t = _bench.to_torch(case.x, "cuda"), _bench.to_torch(case.target, "cuda")
    out = torch.empty_like(x)
    fn = getattr(fastloss, f"{case.spec.name}_with_grad")
    return lambda: fn(x, t, out=out)


def timed(build, case: _bench.Case, timing: dict, calls: int) -> tuple[float | None, str]:
    """(median seconds per call, note) of build(case)(), or (None, why it was skipped)."""
    import torch

    try:
        fn = build(case)
    except _bench.Skip as why:
        return None, str(why)

    def sample():
        for _ in range(calls):
            fn()

    return _bench.measure(sample, sync=torch.cuda.synchronize, **timing).median / calls, ""


def clone_time(nbytes: int, timing: dict, calls: int) -> float:
    """``_bench.copy_yardstick``'s clone of the same bytes, timed like the losses."""
    import torch

    src = torch.ones(max(1, nbytes // 2), dtype=torch.uint8, device="cuda")
    return timed(lambda case: src.clone, None, timing, calls)[0]


def cases(quick: bool):
    shapes = ROW_SHAPES[:1] if quick else ROW_SHAPES
    for dtype in ("float32", "bfloat16"):
        for shape in shapes:
            yield _bench.make_case(fastloss.LOSSES[0], "fused", dtype, shape)
    for spec in LOSSES:
        if not spec.rowwise:
            for dtype in ("float32", "bfloat16"):
                yield _bench.make_case(spec, "fused", dtype, (POINT_ELEMENTS // (16 if quick else 1),))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one shape per loss, short timing")
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile (compiles take minutes)")
    parser.add_argument("--json", help="also write the rows here")
    parser.add_argument("--calls-per-sample", type=int, default=20, help="calls between synchronisations")
    args = parser.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("torch is needed to drive the GPU benchmark", file=sys.stderr)
        return 2
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to measure", file=sys.stderr)
        return 2
    timing = {"warmup": 3, "min_repeats": 10, "min_time": 0.2 if args.quick else 1.0, "max_time": 5.0}
    others = {"torch": competitors.torch_eager, "liger": competitors.liger}
    if not args.no_compile:
        others["torch_compile"] = competitors.torch_compile
    rows = []
    header = f"{'loss':<22}{'dtype':<10}{'shape':<16}{'GB/s':>8}{'% clone':>9}" + "".join(
        f"{'x ' + name:>16}" for name in others) + "  targets"
    print(f"{torch.cuda.get_device_name()}  fastloss {fastloss.__version__}  torch {torch.__version__}")
    print(header)
    for case in cases(args.quick):
        nbytes = case.nbytes
        calls = args.calls_per_sample
        fl_s, _ = timed(fastloss_call, case, timing, calls)
        clone_s = clone_time(nbytes, timing, calls)
        on_gpu = dataclasses.replace(case, x=_bench.to_torch(case.x, "cuda"), target=_bench.to_torch(case.target, "cuda"))
        row = {"device": torch.cuda.get_device_name(), "loss": case.spec.name, "dtype": case.dtype,
               "shape": list(case.shape), "bytes": nbytes, "fastloss_s": fl_s, "clone_s": clone_s,
               "gbps": nbytes / fl_s / 1e9, "pct_of_clone": 100.0 * clone_s / fl_s}
        for name, build in others.items():
            seconds, note = timed(lambda c, b=build: b(c, "cuda", 1), on_gpu, timing, calls)
            row[f"{name}_s"], row[f"{name}_note"] = seconds, note
            row[f"{name}_speedup"] = seconds / fl_s if seconds else None
        speedup = row.get("torch_speedup")
        met = row["pct_of_clone"] >= TARGET_PCT_OF_CLONE and (speedup is None or speedup >= TARGET_SPEEDUP_EAGER
                                                              or not case.spec.rowwise)
        rows.append(row)
        print(f"{case.spec.name:<22}{case.dtype:<10}{'x'.join(map(str, case.shape)):<16}{row['gbps']:>8.0f}"
              f"{row['pct_of_clone']:>8.1f}%" + "".join(
                  f"{(format(row[f'{n}_speedup'], '.2f') if row[f'{n}_speedup'] else 'skip'):>16}" for n in others)
              + f"  {'met' if met else 'MISSED'}")
    notes = {f"{r['loss']} {r['dtype']} {n}": r[f"{n}_note"] for r in rows for n in others if r[f"{n}_note"]}
    for what, why in notes.items():
        print(f"  skipped {what}: {why}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "notes": notes}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
