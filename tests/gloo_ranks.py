"""Run test cases on P local processes joined in a Gloo group on loopback; each rank's failures come back as text.

``cases(rank, world, failures)`` is a module-level function of the calling test module (the ranks
import that module); it appends a line to ``failures`` for every mismatch. An exception in a rank is
reported with its traceback. The ranks fork from a forkserver that imported torch, its compiler
stack (the first custom-op call imports torch._dynamo), fastloss and the test module once but never
ran a torch op, so no OpenMP state is inherited; plain spawn pays ~6 s of imports per rank on a
2-core machine.
"""

from __future__ import annotations

import datetime
import multiprocessing
import os
import socket
import time
import traceback

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

TIMEOUT_S = 60

needs_gloo = pytest.mark.skipif(
    not dist.is_available() or not dist.is_gloo_available(), reason="needs torch.distributed with Gloo"
)


def _worker(rank, world, port, out_dir, cases):
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
        cases(rank, world, failures)
        dist.destroy_process_group()
    except Exception:  # noqa: BLE001 - reported to the parent, which fails the test with it
        failures.append(traceback.format_exc())
    with open(os.path.join(out_dir, f"rank{rank}.txt"), "w") as f:
        f.write("\n".join(failures) or "ok")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_on_ranks(cases, world: int, tmp_path, monkeypatch) -> dict[int, str]:
    """Each rank's report ("ok" or its failures), after running ``cases`` on ``world`` ranks."""
    monkeypatch.setenv("GLOO_SOCKET_IFNAME", "lo")  # loopback only
    multiprocessing.set_forkserver_preload(["torch", "torch._dynamo", "fastloss.torch", cases.__module__])
    context = mp.start_processes(
        _worker,
        args=(world, _free_port(), str(tmp_path), cases),
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
    return {rank: (tmp_path / f"rank{rank}.txt").read_text() for rank in range(world)}


def assert_all_ok(reports: dict[int, str]) -> None:
    assert all(r == "ok" for r in reports.values()), "\n".join(f"rank {k}: {v}" for k, v in reports.items())
