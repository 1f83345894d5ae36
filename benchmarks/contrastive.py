"""Contrastive losses: time and extra peak memory of forward+backward, tiled (fastloss) vs the N x N matrix.

    PYTHONPATH=python python benchmarks/contrastive.py                       # CLIP loss, N = 1024 .. 16384
    PYTHONPATH=python python benchmarks/contrastive.py --big 32768 65536     # fastloss alone at larger N
    PYTHONPATH=python python benchmarks/contrastive.py --families 8192       # SigLIP, NT-Xent, InfoNCE

D = 512, fp32, 2 threads. Each method is one training step of the loss: forward, then ``backward`` into
both embedding sets (and ``logit_scale``/``logit_bias`` where the loss has them).

CLIP loss methods: ``naive`` = ``(F.cross_entropy(z, t) + F.cross_entropy(z.T, t)) / 2`` with
``z = s * a @ b.T``; ``open_clip`` = ``open_clip.loss.ClipLoss`` (two logits matrices, as it computes
``logits_per_text`` by its own matmul); ``fastloss`` = ``fastloss.torch.clip_loss``; ``matmuls`` = the
three matmuls any exact method needs (``a @ b.T``, ``G @ b``, ``G.T @ a``), alone: the floor. The tiled
CLIP loss runs four (it recomputes the similarity strips once, for the column statistics), so its
own floor is 4/3 of ``matmuls``.

Families (one size): SigLIP (``open_clip.loss.SigLipLoss`` vs ``fastloss.torch.siglip_loss``), NT-Xent
(``lightly.loss.NTXentLoss`` vs ``fastloss.torch.nt_xent``, 2N views), one-direction InfoNCE on cosine
similarity (sentence-transformers' ``MultipleNegativesRankingLoss`` math via
``compute_loss_from_embeddings`` vs ``fastloss.torch.info_nce`` on normalised inputs).

Environment: ``OMP_NUM_THREADS=2`` and ``OMP_WAIT_POLICY=passive`` unless set (see below).

Time: the methods of one size run round-robin in ONE process (a busy machine slows them alike), the
median of ``--repeats`` steps after a warm-up step each. On a shared machine the absolute times are
noisy and so, less, are the ratios; the memory numbers are not.

Memory: each (method, N) runs in a fresh subprocess, as benchmarks/lm_head.py: a warm-up step on a tiny
problem, the inputs built, VmRSS read, the peak reset (``echo 5 > /proc/self/clear_refs``), one step,
VmHWM read: extra peak = everything the step made resident, gradients included ("beyond grads"
subtracts the (N, D) embedding gradients every method returns). Linux only.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")
# torch's OpenMP threads otherwise spin after every op and take the cores from fastloss's kernels (and
# from the small torch ops between them): measured at N = 8192, 2 threads, the tiled CLIP step took 2.8x
# the matmuls' time with the default policy and 1.35x with passive. Set for every method alike.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

import fastloss
import fastloss.torch as flt
import torch
import torch.nn.functional as F
from lm_head import _status_kb  # benchmarks/ is on sys.path (run as a script)

D = 512
THREADS = 2
RESULTS = Path(__file__).resolve().parent / "results"
CLIP_METHODS = ("naive", "open_clip", "fastloss", "matmuls")
FAMILIES = {
    "siglip": ("open_clip", "fastloss"),
    "nt_xent": ("lightly", "fastloss"),
    "info_nce": ("sentence_transformers", "fastloss"),
}


def _inputs(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    a = F.normalize(torch.randn(n, D, generator=g), dim=1).requires_grad_()
    b = F.normalize(torch.randn(n, D, generator=g), dim=1).requires_grad_()
    s = torch.tensor(14.0, requires_grad=True)
    bias = torch.tensor(-10.0, requires_grad=True)
    return a, b, s, bias


def _loss(family: str, method: str, a, b, s, bias):
    """The loss tensor of one method (None for the matmul floor, which sets the gradients itself)."""
    n = a.shape[0]
    if family == "clip":
        if method == "matmuls":
            with torch.no_grad():
                z = torch.mm(a, b.T)
                a.grad, b.grad = torch.mm(z, b), torch.mm(z.T, a)
            return None
        if method == "naive":
            z, t = s * a @ b.T, torch.arange(n)
            return (F.cross_entropy(z, t) + F.cross_entropy(z.T, t)) / 2
        if method == "open_clip":
            from open_clip.loss import ClipLoss

            return ClipLoss()(a, b, s)
        return flt.clip_loss(a, b, s)
    if family == "siglip":
        if method == "open_clip":
            from open_clip.loss import SigLipLoss

            return SigLipLoss()(a, b, s, bias)
        return flt.siglip_loss(a, b, s, bias)
    if family == "nt_xent":
        if method == "lightly":
            from lightly.loss import NTXentLoss

            return NTXentLoss(temperature=0.5)(a, b)
        return flt.nt_xent(a, b, temperature=0.5)
    if method == "sentence_transformers":
        from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

        return MultipleNegativesRankingLoss(None, scale=20.0).compute_loss_from_embeddings([a, b], None)
    return flt.info_nce(F.normalize(a, dim=1), F.normalize(b, dim=1), temperature=1 / 20)


def step(family, method, a, b, s, bias):
    loss = _loss(family, method, a, b, s, bias)
    if loss is not None:
        loss.backward()


def _set_threads():
    torch.set_num_threads(THREADS)
    fastloss.set_num_threads(THREADS)


def _memory_case(family, method, n) -> dict:
    """Run in a fresh process: extra peak RSS of one step (see the module docstring)."""
    _set_threads()
    step(family, method, *_inputs(64))
    inputs = _inputs(n)
    before = _status_kb("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    start = time.perf_counter()
    step(family, method, *inputs)
    seconds = time.perf_counter() - start
    extra_mb = (_status_kb("VmHWM") - before) / 1024
    grads_mb = 2 * n * D * 4 / 2**20
    return {"family": family, "method": method, "n": n, "extra_mb": extra_mb,
            "beyond_grads_mb": extra_mb - grads_mb, "single_step_s": seconds}


def measure_memory(family, method, n) -> dict:
    call = f"b._memory_case({family!r}, {method!r}, {n})"
    code = (f"import json, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import contrastive as b; "
            f"print(json.dumps({call}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure_time(family, methods, n, repeats) -> dict[str, float]:
    _set_threads()
    inputs = _inputs(n)
    times: dict[str, list[float]] = {m: [] for m in methods}
    for r in range(repeats + 1):  # round 0 is the warm-up
        for m in methods:
            for x in inputs:
                x.grad = None
            start = time.perf_counter()
            step(family, m, *inputs)
            if r:
                times[m].append(time.perf_counter() - start)
    return {m: statistics.median(ts) for m, ts in times.items()}


def _save(rows, out: Path):
    out.parent.mkdir(parents=True, exist_ok=True)
    old = json.loads(out.read_text()) if out.exists() else []
    keys = {(r["family"], r["method"], r["n"]) for r in rows}
    kept = [r for r in old if (r["family"], r["method"], r["n"]) not in keys]
    out.write_text(json.dumps(kept + rows, indent=1))
    return kept + rows


def run_clip(sizes, repeats, out):
    for n in sizes:
        times = measure_time("clip", CLIP_METHODS, n, repeats if n <= 8192 else 1)
        rows = []
        for m in CLIP_METHODS:
            rows.append({**measure_memory("clip", m, n), "time_s": times[m], "matmuls_s": times["matmuls"]})
            print(json.dumps(rows[-1]), flush=True)
        _save(rows, out)


def run_big(sizes, out):
    for n in sizes:
        row = measure_memory("clip", "fastloss", n)
        row["time_s"] = row["single_step_s"]
        print(json.dumps(row), flush=True)
        _save([row], out)


def run_families(n, repeats, out, names):
    rows = []
    for family in names:
        methods = FAMILIES[family]
        times = measure_time(family, methods, n, repeats)
        for m in methods:
            rows.append({**measure_memory(family, m, n), "time_s": times[m]})
            print(json.dumps(rows[-1]), flush=True)
    _save(rows, out)


def _mark(row) -> str:
    return " \\*" if row.get("policy") == "default" else ""


def report(rows, path: Path) -> None:
    now = datetime.datetime.now(datetime.timezone.utc)
    title = (f"# Contrastive losses ({now:%Y-%m-%d %H:%M} UTC, torch {torch.__version__}, D = {D}, fp32, "
             f"{THREADS} threads, forward+backward)")
    lines = [title, "",
             "## CLIP loss", "",
             "N | method | time s | x naive | x matmuls | extra peak MB | beyond grads MB | x naive (memory)",
             "---|---|---|---|---|---|---|---"]
    clip = sorted((r for r in rows if r["family"] == "clip"), key=lambda r: (r["n"], CLIP_METHODS.index(r["method"])))
    naive = {r["n"]: r for r in clip if r["method"] == "naive"}
    for r in clip:
        ref = naive.get(r["n"])
        t_ratio = f"{r['time_s'] / ref['time_s']:.2f}" if ref else "-"
        m_ratio = f"{r['extra_mb'] / ref['extra_mb']:.3f}" if ref else "-"
        mm = f"{r['time_s'] / r['matmuls_s']:.2f}" if r.get("matmuls_s") else "-"
        lines.append(f"{r['n']} | {r['method']}{_mark(r)} | {r['time_s']:.3f} | {t_ratio} | {mm} | {r['extra_mb']:.0f} | "
                     f"{r['beyond_grads_mb']:.0f} | {m_ratio}")
    fam = [r for r in rows if r["family"] != "clip"]
    if fam:
        lines += ["", "## Other losses", "", "loss | N | method | time s | extra peak MB | beyond grads MB",
                  "---|---|---|---|---|---"]
        for r in fam:
            lines.append(f"{r['family']} | {r['n']} | {r['method']}{_mark(r)} | {r['time_s']:.3f} | {r['extra_mb']:.0f} | "
                         f"{r['beyond_grads_mb']:.0f}")
    if any(r.get("policy") == "default" for r in rows):
        lines += ["", ("\\* time measured with OpenMP's default (spinning) wait policy, on a more loaded machine; "
                  "memory is unaffected")]
    path.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def plot(rows, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for method in ("naive", "open_clip", "fastloss"):
        sel = sorted((r for r in rows if r["family"] == "clip" and r["method"] == method), key=lambda r: r["n"])
        if sel:
            ax.plot([r["n"] for r in sel], [max(r["extra_mb"], 1) for r in sel], "o-", label=method)
    ns = sorted({r["n"] for r in rows if r["family"] == "clip"})
    if not ns:
        plt.close(fig)
        return
    ax.plot(ns, [2 * n * D * 4 / 2**20 for n in ns], "k:", label="the two (N, 512) gradients")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("batch size N")
    ax.set_ylabel("extra peak memory of forward+backward (MB)")
    ax.set_title(f"CLIP loss, D = {D}, fp32, CPU")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="*", default=[1024, 2048, 4096, 8192, 16384])
    p.add_argument("--big", type=int, nargs="*", default=[], help="fastloss alone at these N (memory, one step)")
    p.add_argument("--families", type=int, default=0, help="also SigLIP, NT-Xent, InfoNCE at this N")
    p.add_argument("--family-names", nargs="*", default=list(FAMILIES), choices=list(FAMILIES))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default=str(RESULTS / "contrastive.json"))
    args = p.parse_args()
    out = Path(args.out)
    rows = []
    if args.sizes:
        run_clip(args.sizes, args.repeats, out)
    if args.big:
        run_big(args.big, out)
    if args.families:
        run_families(args.families, args.repeats, out, args.family_names)
    rows = json.loads(out.read_text()) if out.exists() else rows
    report(rows, out.with_suffix(".txt"))
    plot(rows, out.with_name("contrastive_memory.png"))


if __name__ == "__main__":
    main()
