"""The CPU kernel benchmark of issue 3: fastloss vs PyTorch forward+backward vs a memcpy of the same
bytes, per loss and dtype, on 1 and 2 threads, C from 10 to 128256 - one run, one table.

    PYTHONPATH=python python benchmarks/cpu_kernels.py                 # every loss and dtype
    PYTHONPATH=python python benchmarks/cpu_kernels.py --loss cross_entropy --dtype float32

Any run_suite.py option can be added; results also land in --out (default bench_out/cpu_kernels/).
"""

from __future__ import annotations

import sys

import run_suite
from fastloss._bench import format_table

PRESET = [
    "--device", "cpu", "--form", "fused", "--competitors", "torch", "--threads", "1,2",
    "--classes", "10,1000,32000,128256", "--elements", f"{1 << 20},{1 << 24}", "--no-plots",
    "--out", "bench_out/cpu_kernels",
]


def table(rows: list[dict]) -> str:
    cells = [
        {
            "loss": r["loss"], "dtype": r["dtype"], "shape": "x".join(map(str, r["shape"])), "threads": r["threads"],
            "ms": f"{r['time_median_s'] * 1e3:.3g}", "gbps": f"{r['gbps']:.1f}", "copy": f"{r['copy_gbps']:.1f}",
            "pct": f"{r['pct_of_copy']:.0f}%",
            "torch": "-" if r.get("torch_speedup") is None else f"{r['torch_speedup']:.2f}x",
        }
        for r in rows
    ]
    return format_table(cells, [
        ("loss", "loss"), ("dtype", "dtype"), ("shape", "shape"), ("threads", "threads"), ("ms", "fastloss ms"),
        ("gbps", "GB/s"), ("copy", "memcpy GB/s"), ("pct", "% memcpy"), ("torch", "x PyTorch fwd+bwd"),
    ])


def main(argv: list[str] | None = None) -> int:
    args = run_suite.parse_args(PRESET + list(sys.argv[1:] if argv is None else argv))
    rows, notes, devices = run_suite.run(args)
    run_suite.write_outputs(args, rows, notes, devices)
    print(table(rows))
    print("bytes: fused rowwise = read input + write gradient (+8 B/row of int64 targets); pointwise adds "
          "the target read. memcpy = np.copyto of the same total bytes, measured in the same run.")
    for note in dict.fromkeys(notes):
        print(f"note: {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
