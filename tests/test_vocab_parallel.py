"""Vocab-parallel cross-entropy and the sharded LM head over Gloo, 2 and 4 local processes.

Every rank builds the same full problem from one seed, keeps its Megatron shard of the vocabulary
(rank r holds classes [r*V/P, (r+1)*V/P)), and compares the full-vocabulary loss and its shard of the
gradient with the single-process PyTorch reference (float64, to round-off). The error cases check
that a bad argument on ONE rank raises on EVERY rank and that the group still works afterwards.
One spawn per world size runs all cases; a rank's failures come back as text.
"""

from __future__ import annotations

import fastloss.torch as flt
import pytest
import torch
import torch.distributed as dist
from gloo_ranks import assert_all_ok, needs_gloo, run_on_ranks
from lm_head_reference import cross_entropy_reference, linear_cross_entropy_reference

V, H, N = 24, 6, 13  # V divisible by 2 and 4; N rows in chunks of 5 (not dividing N)


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


def _all_cases(rank, world, failures):
    _vocab_parallel_cases(rank, world, failures)
    _linear_cases(rank, world, failures)
    _error_cases(rank, world, failures)


@needs_gloo
@pytest.mark.parametrize("world", [2, 4])
def test_vocab_parallel_equals_single_process(world, tmp_path, monkeypatch):
    assert_all_ok(run_on_ranks(_all_cases, world, tmp_path, monkeypatch))
