"""The LM head: time and extra peak memory of forward+backward, fused vs unfused; vocab-parallel scaling.

    PYTHONPATH=python python benchmarks/lm_head.py                  # (4096, 512 -> 32000), fp32 and bf16, 1 and 2 threads
    PYTHONPATH=python python benchmarks/lm_head.py --big            # also (8192, 2048 -> 128256)
    PYTHONPATH=python python benchmarks/lm_head.py --parallel-only  # vocab-parallel part alone

Methods, each a full training step of the head (loss, then ``backward`` into input and weight):
``unfused`` = ``F.cross_entropy(F.linear(x, W), t)``; ``torch_chunked`` = PyTorch 2.13's
``F.linear_cross_entropy(..., options=LinearCrossEntropyOptions())``; ``fastloss`` =
``fastloss.torch.linear_cross_entropy``; ``matmuls`` = the three matmuls alone (``x @ W.T``,
``z @ W``, ``z.T @ x``, in the input dtype), the floor for any head that computes exact gradients;
"x matmuls (floor)" is each method's time over theirs.

Time: the methods run round-robin in ONE process (so a busy machine slows them alike), the median
of ``--repeats`` steps after one warm-up step each.

Memory: each (method, shape) runs in a fresh subprocess. It first runs the method once on a tiny
problem (so lazily imported modules and one-time allocations are not counted), builds the inputs,
reads VmRSS, resets the peak with ``echo 5 > /proc/self/clear_refs``, runs one step and reads VmHWM:
extra peak = VmHWM - VmRSS before the step, i.e. everything the step made resident, the gradients
included. "beyond grads" subtracts the gradient outputs (``x.grad`` and ``W.grad``), which every
method must return; its last column is that over ``torch_chunked``'s. RSS is what the OS gave the process, so it sees torch's allocations that
tracemalloc cannot; it is Linux-only.

Vocab-parallel: ``linear_cross_entropy(..., process_group=pg)`` over Gloo on 1, 2 and 4 local
processes (one thread each; this machine has 2 cores, so 4 ranks share them), each rank holding
V/P classes; the bytes each rank sends into collectives per step are counted by wrapping
``all_reduce``/``all_gather``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import fastloss.torch as flt
import torch
import torch.nn.functional as F

METHODS = ("unfused", "torch_chunked", "fastloss", "matmuls")
RESULTS = Path(__file__).resolve().parent / "results"


def _step(method: str, x, w, t, chunk_size=None):
    """One forward+backward of the head; leaves the gradients in x.grad / w.grad."""
    if method == "matmuls":
        with torch.no_grad():
            z = torch.mm(x, w.T)
            x.grad = torch.mm(z, w)
            w.grad = torch.mm(z.T, x)
        return
    if method == "unfused":
        loss = F.cross_entropy(F.linear(x, w), t)
    elif method == "torch_chunked":
        loss = F.linear_cross_entropy(x, w, t, options=torch.nn.LinearCrossEntropyOptions())
    else:
        loss = flt.linear_cross_entropy(x, w, t, chunk_size=chunk_size)
    loss.backward()


def _inputs(n, h, v, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, h, generator=g).to(dtype).requires_grad_()
    w = (torch.randn(v, h, generator=g) / h**0.5).to(dtype).requires_grad_()
    t = torch.randint(0, v, (n,), generator=g)
    return x, w, t


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _memory_case(method, n, h, v, threads, chunk_size, dtype="float32") -> dict:
    """Run in a fresh process: extra peak RSS of one step (see the module docstring)."""
    torch.set_num_threads(threads)
    dtype = getattr(torch, dtype)
    _step(method, *_inputs(64, 16, 100, dtype=dtype), chunk_size=None)
    x, w, t = _inputs(n, h, v, dtype=dtype)
    before = _status_kb("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    _step(method, x, w, t, chunk_size)
    extra_mb = (_status_kb("VmHWM") - before) / 1024
    grads_mb = (x.numel() + w.numel()) * x.element_size() / 2**20
    return {
        "method": method,
        "extra_mb": extra_mb,
        "grads_mb": grads_mb,
        "beyond_grads_mb": extra_mb - grads_mb,
    }


def measure_memory(method, n, h, v, threads, chunk_size=None, dtype="float32") -> dict:
    call = f"b._memory_case({method!r}, {n}, {h}, {v}, {threads}, {chunk_size!r}, {dtype!r})"
    code = f"import json, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import lm_head as b; print(json.dumps({call}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure_time(n, h, v, threads, repeats, methods=METHODS, chunk_size=None, dtype="float32") -> dict[str, float]:
    torch.set_num_threads(threads)
    x, w, t = _inputs(n, h, v, dtype=getattr(torch, dtype))
    times: dict[str, list[float]] = {m: [] for m in methods}
    for m in methods:  # warm-up
        x.grad = w.grad = None
        _step(m, x, w, t, chunk_size)
    for _ in range(repeats):
        for m in methods:
            x.grad = w.grad = None
            start = time.perf_counter()
            _step(m, x, w, t, chunk_size)
            times[m].append(time.perf_counter() - start)
    return {m: statistics.median(ts) for m, ts in times.items()}


# ---- vocab-parallel ----------------------------------------------------------------------------


def _parallel_rank(rank, world, port, n, h, v, repeats, out):
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo",
        init_method=f"tcp://127.0.0.1:{port}",
        rank=rank,
        world_size=world,
        timeout=datetime.timedelta(seconds=300),
    )
    sent = {"bytes": 0, "calls": 0}
    real_all_reduce, real_all_gather = dist.all_reduce, dist.all_gather

    def counting_all_reduce(tensor, *args, **kwargs):
        sent["bytes"] += tensor.numel() * tensor.element_size()
        sent["calls"] += 1
        return real_all_reduce(tensor, *args, **kwargs)

    def counting_all_gather(tensors, tensor, *args, **kwargs):
        sent["bytes"] += tensor.numel() * tensor.element_size()
        sent["calls"] += 1
        return real_all_gather(tensors, tensor, *args, **kwargs)

    dist.all_reduce, dist.all_gather = counting_all_reduce, counting_all_gather
    x, w_full, t = _inputs(n, h, v)
    size = v // world
    w = w_full[rank * size : (rank + 1) * size].detach().clone().requires_grad_()
    times = []
    for i in range(repeats + 1):
        x.grad = w.grad = None
        sent["bytes"] = sent["calls"] = 0
        dist.barrier()
        start = time.perf_counter()
        loss = flt.linear_cross_entropy(x, w, t, process_group=dist.group.WORLD)
        forward_bytes = sent["bytes"]
        loss.backward()
        dist.barrier()
        if i:
            times.append(time.perf_counter() - start)
    sent["forward_bytes"] = forward_bytes
    if rank == 0:
        Path(out).write_text(json.dumps({"world": world, "time_s": statistics.median(times), **sent}))
    dist.destroy_process_group()


def measure_parallel(world, n, h, v, repeats) -> dict:
    import tempfile

    import torch.multiprocessing as mp

    os.environ["GLOO_SOCKET_IFNAME"] = "lo"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "r.json")
        mp.spawn(_parallel_rank, args=(world, port, n, h, v, repeats, out), nprocs=world)
        return json.loads(Path(out).read_text())


# ---- report ------------------------------------------------------------------------------------


def run_shape(n, h, v, threads_list, repeats, lines, rows, dtype="float32"):
    lines.append(f"\n## ({n}, {h} -> {v}), {dtype}, forward+backward (input and weight gradients)\n")
    lines.append("threads | method | time s | x matmuls (floor) | extra peak MB | beyond grads MB | "
                 "beyond grads vs torch_chunked")
    lines.append("---|---|---|---|---|---|---")
    for threads in threads_list:
        times = measure_time(n, h, v, threads, repeats, dtype=dtype)
        mems = {m: measure_memory(m, n, h, v, threads, dtype=dtype) for m in METHODS}
        for m in METHODS:
            mem = mems[m]
            ratio = times[m] / times["matmuls"]
            vs_torch = mem["beyond_grads_mb"] / mems["torch_chunked"]["beyond_grads_mb"]
            lines.append(
                f"{threads} | {m} | {times[m]:.3f} | {ratio:.2f} | {mem['extra_mb']:.0f} | "
                f"{mem['beyond_grads_mb']:.0f} | {vs_torch:.2f}"
            )
            rows.append({"shape": [n, h, v], "dtype": dtype, "threads": threads, "time_s": times[m], **mem})
            print(lines[-1], flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument(
        "--big", action="store_true", help="also (8192, 2048 -> 128256), 2 threads (minutes, ~15 GB)"
    )
    p.add_argument("--parallel-only", action="store_true")
    p.add_argument("--no-parallel", action="store_true", help="skip the vocab-parallel part")
    p.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"], choices=["float32", "bfloat16"])
    p.add_argument("--out", default=str(RESULTS / "lm_head.txt"))
    args = p.parse_args()
    now = datetime.datetime.now(datetime.timezone.utc)
    lines = [
        f"# LM head benchmark ({now:%Y-%m-%d %H:%M} UTC, torch {torch.__version__}, {os.cpu_count()} CPUs)"
    ]
    rows: list[dict] = []
    if not args.parallel_only:
        for dtype in args.dtypes:
            run_shape(4096, 512, 32000, (1, 2), args.repeats, lines, rows, dtype)
        if args.big:
            run_shape(8192, 2048, 128256, (2,), 1, lines, rows)
    n, h, v = 4096, 512, 32000
    for world in () if args.no_parallel else (1, 2, 4):
        if world == 1:
            lines += _parallel_header(n, h, v)
        r = measure_parallel(world, n, h, v, args.repeats)
        backward = r["bytes"] - r["forward_bytes"]
        lines.append(f"{world} | {r['time_s']:.3f} | {r['calls']} | {r['forward_bytes']} | {backward}")
        rows.append({"parallel": r})
        print(lines[-1], flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    Path(args.out).with_suffix(".json").write_text(json.dumps(rows, indent=1))
    _plot(rows, Path(args.out).with_suffix(".png"))


def _parallel_header(n, h, v) -> list[str]:
    return [
        f"\n## vocab-parallel linear_cross_entropy over Gloo, ({n}, {h} -> {v}), 1 thread per rank\n",
        "ranks | time s | collectives per step | bytes into collectives per rank: forward (loss) | backward (input grad)",
        "---|---|---|---|---",
    ]


def _plot(rows, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    head = [r for r in rows if "method" in r and r["shape"] == [4096, 512, 32000] and r["dtype"] == "float32"]
    if not head:
        return
    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(10, 4))
    for threads, offset in ((1, -0.2), (2, 0.2)):
        sel = [r for r in head if r["threads"] == threads]
        xs = [METHODS.index(r["method"]) + offset for r in sel]
        ax_t.bar(xs, [r["time_s"] for r in sel], width=0.4, label=f"{threads} thread(s)")
        if threads == 2:
            ax_m.bar(range(len(sel)), [max(r["extra_mb"], 0) for r in sel], label="extra peak RSS")
            ax_m.bar(range(len(sel)), [r["grads_mb"] for r in sel], label="of which gradient outputs")
    for ax, title in ((ax_t, "forward+backward time (s)"), (ax_m, "extra peak memory (MB), 2 threads")):
        ax.set_xticks(range(len(METHODS)), METHODS)
        ax.set_title(title)
        ax.legend()
    fig.suptitle("LM head (4096, 512 -> 32000), fp32, CPU")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    main()
