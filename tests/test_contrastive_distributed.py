"""The contrastive losses with process_group over Gloo, 2 and 4 local processes.

Every rank builds the same global batch from one seed and passes its contiguous slice of it; the loss
must be the single-process loss of the GLOBAL batch (float64 autograd of the naive formula) on every
rank, and each rank's gradients the slices of that loss's gradients (float64, relative error < 1e-9).
One spawn per world size runs all cases; a rank's failures come back as text.
"""

from __future__ import annotations

import fastloss.torch as flt
import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F
from gloo_ranks import assert_all_ok, needs_gloo, run_on_ranks

PER_RANK, D, EXTRA = 3, 5, 2  # 3 pairs per rank (chunk 2 does not divide it), 2 extra negatives per rank


def _global(world, seed=3):
    g = torch.Generator().manual_seed(seed)
    n = PER_RANK * world
    a, b = (torch.randn(n, D, generator=g, dtype=torch.float64) for _ in range(2))
    negatives = torch.randn(EXTRA * world, D, generator=g, dtype=torch.float64)
    return a, b, negatives


def _close(name, got, want, failures):
    try:
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12)
    except AssertionError as exc:
        failures.append(f"{name}: {exc}")


def _check(name, fn_local, fn_global, local_inputs, global_inputs, slices, failures, grad_output=None):
    loc = [x.clone().requires_grad_() for x in local_inputs]
    glo = [x.clone().requires_grad_() for x in global_inputs]
    got, want = fn_local(*loc), fn_global(*glo)
    go_local, go_global = grad_output if grad_output is not None else (torch.tensor(1.5), torch.tensor(1.5))
    if grad_output is None:
        _close(f"{name} loss", got, want, failures)
    else:
        _close(f"{name} loss", got, want[slices[0]], failures)
    got_grads = torch.autograd.grad(got, loc, go_local.to(got.dtype))
    want_grads = torch.autograd.grad(want, glo, go_global.to(want.dtype))
    for i, (g_got, g_want, sl) in enumerate(zip(got_grads, want_grads, slices)):
        _close(f"{name} grad {i}", g_got, g_want[sl], failures)


def _key_layout(b, negatives, world):
    """The global key matrix as the ranks' key blocks (each [positives; extra negatives]) concatenated,
    and each global query row's positive in it."""
    blocks, targets = [], []
    for r in range(world):
        blocks.append(torch.cat([b[r * PER_RANK : (r + 1) * PER_RANK], negatives[r * EXTRA : (r + 1) * EXTRA]]))
        targets.append(torch.arange(PER_RANK) + r * (PER_RANK + EXTRA))
    return torch.cat(blocks), torch.cat(targets)


def _cases(rank, world, failures):
    a, b, negatives = _global(world)
    pg = dist.group.WORLD
    mine = slice(rank * PER_RANK, (rank + 1) * PER_RANK)
    la, lb = a[mine], b[mine]
    t = torch.arange(PER_RANK * world)
    every = ...  # a scalar gradient is the same on every rank

    for reduction in ("mean", "sum", "none"):
        go = None
        if reduction == "none":
            full_go = torch.linspace(-1, 2, PER_RANK * world, dtype=torch.float64)
            go = (full_go[mine], full_go)
        for symmetric in (False, True):

            def naive(q, k, symmetric=symmetric, reduction=reduction):
                z = q @ k.T / 0.2
                row = F.cross_entropy(z, t, reduction=reduction)
                return (row + F.cross_entropy(z.T, t, reduction=reduction)) / 2 if symmetric else row

            def ours(q, k, symmetric=symmetric, reduction=reduction):
                return flt.info_nce(q, k, temperature=0.2, symmetric=symmetric, reduction=reduction,
                                    chunk_size=2, process_group=pg)

            _check(f"info_nce symmetric={symmetric} {reduction}", ours, naive, (la, lb), (a, b), (mine, mine),
                   failures, go)

    keys, targets = _key_layout(b, negatives, world)
    local_keys = keys[rank * (PER_RANK + EXTRA) : (rank + 1) * (PER_RANK + EXTRA)]
    key_slice = slice(rank * (PER_RANK + EXTRA), (rank + 1) * (PER_RANK + EXTRA))
    _check(
        "info_nce extra negatives",
        lambda q, k: flt.info_nce(q, k, temperature=0.5, process_group=pg),
        lambda q, k: F.cross_entropy(q @ k.T / 0.5, targets),
        (la, local_keys), (a, keys), (mine, key_slice), failures,
    )

    scale = torch.tensor(7.0, dtype=torch.float64)
    bias = torch.tensor(-3.0, dtype=torch.float64)

    def clip_global(x, y, s):
        z = s * x @ y.T
        return (F.cross_entropy(z, t) + F.cross_entropy(z.T, t)) / 2

    _check("clip_loss", lambda x, y, s: flt.clip_loss(x, y, s, process_group=pg), clip_global,
           (la, lb, scale), (a, b, scale), (mine, mine, every), failures)

    def siglip_global(x, y, s, c):
        labels = 2 * torch.eye(x.shape[0], dtype=x.dtype) - 1
        return -F.logsigmoid(labels * (s * x @ y.T + c)).sum() / x.shape[0]

    _check("siglip_loss", lambda x, y, s, c: flt.siglip_loss(x, y, s, c, process_group=pg), siglip_global,
           (la, lb, scale, bias), (a, b, scale, bias), (mine, mine, every, every), failures)

    def nt_xent_global(z1, z2):
        v = F.normalize(torch.cat([z1, z2]), dim=1)
        n = z1.shape[0]
        z = (v @ v.T / 0.3).masked_fill(torch.eye(2 * n, dtype=torch.bool), -torch.inf)
        return F.cross_entropy(z, torch.cat([torch.arange(n, 2 * n), torch.arange(n)]))

    _check("nt_xent", lambda z1, z2: flt.nt_xent(z1, z2, temperature=0.3, process_group=pg), nt_xent_global,
           (la, lb), (a, b), (mine, mine), failures)


def _error_cases(rank, world, failures):
    a, b, _ = _global(world)
    rows = PER_RANK + 1 if rank == world - 1 else PER_RANK  # only the last rank is wrong
    try:
        flt.info_nce(a[:rows], b[:rows], process_group=dist.group.WORLD)
        failures.append("uneven batches: no ValueError")
    except ValueError as exc:
        if "local batches differ" not in str(exc):
            failures.append(f"uneven batches: wrong message {exc}")
    # the group still works afterwards (no rank left waiting in a collective)
    flt.info_nce(a[:PER_RANK], b[:PER_RANK], process_group=dist.group.WORLD)


def _all_cases(rank, world, failures):
    _cases(rank, world, failures)
    _error_cases(rank, world, failures)


@needs_gloo
@pytest.mark.parametrize("world", [2, 4])
def test_contrastive_global_batch_over_ranks(world, tmp_path, monkeypatch):
    assert_all_ok(run_on_ranks(_all_cases, world, tmp_path, monkeypatch))
