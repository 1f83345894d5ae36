"""Vocab-parallel cross-entropy and the sharded LM head over Gloo, 2 and 4 local processes.

Every rank builds the same full problem from one seed, keeps its Megatron shard of the vocabulary
(rank r holds classes [r*V/P, (r+1)*V/P)), and compares the full-vocabulary loss and its shard of the
gradient with the single-process PyTorch reference (float64, to round-off). The error cases check
that a bad argument on ONE rank raises on EVERY rank and that the group still works afterwards.
One spawn per world size runs all cases; a rank's failures come back as text.
"""

from __future__ import annotations

import datetime
import multiprocessing
import os
import socket
import time
import traceback

import fastloss.torch as flt
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from lm_head_reference import cross_entropy_reference, linear_cross_entropy_reference

V, H, N = 24, 6, 13  # V divisible by 2 and 4; N rows in chunks of 5 (not dividing N)
TIMEOUT_S = 60


def _problem():
    g = torch.Generator().manual_seed(7)
    logits = torch.randn(N, V, generator=g, dtype=torch.float64) * 3
    x = torch.randn(N, H, generator=g, dtype=torch.float64)
    w = torch.randn(V, H, generator=g, dtype=torch.float64)
    b = torch.randn(V, generator=g, dtype=torch.float64)
    cw = torch.rand(V, generator=g, dtype=torch.float64) + 0.5
    t = torch.randint(0, V, (N,), generator=g)
    t[2] = t[9] = -100
    return logits, x, w, b, cw, t


def _close(name, got, want, failures, rtol=1e-12, atol=1e-13):
    try:
        torch.testing.assert_close(got, want, rtol=rtol, atol=atol)
    except AssertionError as exc:
        failures.append(f"{name}: {exc}")


def _vocab_parallel_cases(rank, world, failures):
    logits, _, _, _, _, t = _problem()
    size = V // world
    mine = slice(rank * size, (rank + 1) * size)
    for opts in ({}, {"label_smoothing": 0.1, "z_loss": 1e-2}, {"ignore_index": 5, "label_smoothing": 0.2}):
        target = torch.where(t == -100, opts.get("ignore_index", -100), t)
        for reduction in ("mean", "sum", "none"):
            full = logits.clone().requires_grad_()
            want = cross_entropy_reference(full, target, reduction=reduction, **opts)
            shard = logits[:, mine].clone().requires_grad_()
            got = flt.vocab_parallel_cross_entropy(
                shard, target, reduction=reduction, process_group=None, **opts
            )
            _close(f"vocab_parallel loss {opts} {reduction}", got, want, failures)
            go = torch.linspace(-1, 2, N, dtype=torch.float64) if reduction == "none" else torch.tensor(1.5)
            (want_grad,) = torch.autograd.grad(want, full, go.to(want.dtype))
            (got_grad,) = torch.autograd.grad(got, shard, go.to(got.dtype))
            _close(f"vocab_parallel grad {opts} {reduction}", got_grad, want_grad[:, mine], failures)


def _linear_cases(rank, world, failures):
    _, x, w, b, cw, t = _problem()
    size = V // world
    mine = slice(rank * size, (rank + 1) * size)
    cases = (
        {"reduction": "mean"},
        {"reduction": "mean", "weight": cw, "label_smoothing": 0.1, "z_loss": 1e-2, "softcap": 3.0},
        {"reduction": "none", "label_smoothing": 0.1},
        {"reduction": "sum", "z_loss": 1e-3},
    )
    for opts in cases:
        xr, wr, br = (a.clone().requires_grad_() for a in (x, w, b))
        want = linear_cross_entropy_reference(xr, wr, t, linear_bias=br, **opts)
        xs, ws, bs = (
            x.clone().requires_grad_(),
            w[mine].clone().requires_grad_(),
            b[mine].clone().requires_grad_(),
        )
        got = flt.linear_cross_entropy(
            xs, ws, t, linear_bias=bs, chunk_size=5, process_group=dist.group.WORLD, **opts
        )
        name = {k: v for k, v in opts.items() if k != "weight"}
        _close(f"linear loss {name}", got, want, failures)
        go = (
            torch.linspace(-1, 2, N, dtype=torch.float64)
            if opts["reduction"] == "none"
            else torch.tensor(0.5, dtype=torch.float64)
        )
        gx, gw, gb = torch.autograd.grad(want, (xr, wr, br), go)
        got_grads = torch.autograd.grad(got, (xs, ws, bs), go)
        for label, g_got, g_want in zip(("input", "weight", "bias"), got_grads, (gx, gw[mine], gb[mine])):
            _close(f"linear grad {label} {name}", g_got, g_want, failures, rtol=1e-10, atol=1e-12)


def _expect_error(name, pattern, call, failures):
    try:
        call()
    except ValueError as exc:
        if pattern not in str(exc):
            failures.append(f"{name}: wrong message {exc}")
        return
    failures.append(f"{name}: no ValueError")


def _error_cases(rank, world, failures):
    logits, x, w, _, _, t = _problem()
    size = V // world
    wide = size + 1 if rank == 0 else size  # only rank 0 is wrong
    _expect_error(
        "uneven shards",
        "differ across ranks",
        lambda: flt.vocab_parallel_cross_entropy(logits[:, :wide], t, process_group=None),
        failures,
    )
    hidden = H - 1 if rank == world - 1 else H  # only the last rank is wrong
    _expect_error(
        "hidden size",
        f"hidden size {H} but linear_weight has {H - 1} (on rank {world - 1})",
        lambda: flt.linear_cross_entropy(x, w[:size, :hidden], t, process_group=dist.group.WORLD),
        failures,
    )
    bad = t.clone()
    bad[4] = V  # in range for no shard: out of the full vocabulary
    _expect_error(
        "target out of vocab",
        f"target value {V} (on rank 0) is out of range [0, {V})",
        lambda: flt.vocab_parallel_cross_entropy(logits[:, :size], bad, process_group=None),
        failures,
    )
    # the group is still usable after the errors (no rank left waiting in a collective)
    flt.vocab_parallel_cross_entropy(logits[:, :size], t, process_group=None)


def _worker(rank, world, port, out_dir):
    torch.set_num_threads(1)
    failures = []
    try:
        dist.init_process_group(
            "gloo",
            init_method=f"tcp://127.0.0.1:{port}",
            rank=rank,
            world_size=world,
            timeout=datetime.timedelta(seconds=TIMEOUT_S),
        )
        _vocab_parallel_cases(rank, world, failures)
        _linear_cases(rank, world, failures)
        _error_cases(rank, world, failures)
        dist.destroy_process_group()
    except Exception:  # noqa: BLE001 - reported to the parent, which fails the test with it
        failures.append(traceback.format_exc())
    with open(os.path.join(out_dir, f"rank{rank}.txt"), "w") as f:
        f.write("\n".join(failures) or "ok")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(
    not dist.is_available() or not dist.is_gloo_available(), reason="needs torch.distributed with Gloo"
)
@pytest.mark.parametrize("world", [2, 4])
def test_vocab_parallel_equals_single_process(world, tmp_path, monkeypatch):
    monkeypatch.setenv("GLOO_SOCKET_IFNAME", "lo")  # loopback only
    # forkserver: the ranks fork from one server that imported torch, its compiler stack (the first
    # custom-op call imports torch._dynamo) and fastloss once, but never ran a torch op, so no
    # OpenMP state is inherited; plain spawn pays ~6 s of imports per rank on this 2-core machine.
    multiprocessing.set_forkserver_preload(["torch", "torch._dynamo", "fastloss.torch", __name__])
    context = mp.start_processes(
        _worker,
        args=(world, _free_port(), str(tmp_path)),
        nprocs=world,
        join=False,
        start_method="forkserver",
    )
    deadline = time.monotonic() + 2 * TIMEOUT_S
    while not context.join(timeout=max(0.0, deadline - time.monotonic())):  # True once all have exited
        if time.monotonic() >= deadline:
            for p in context.processes:
                p.kill()
            pytest.fail(f"ranks did not finish within {2 * TIMEOUT_S} s")
    reports = {rank: (tmp_path / f"rank{rank}.txt").read_text() for rank in range(world)}
    assert all(r == "ok" for r in reports.values()), "\n".join(f"rank {k}: {v}" for k, v in reports.items())
