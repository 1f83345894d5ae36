"""Threads x set_num_threads changes: concurrent calls from several Python threads while another
keeps changing the kernel thread count give bit-identical results (the work plan, and so the
summation order, never depends on the thread count) and never crash."""

from __future__ import annotations

import threading

import fastloss
import numpy as np
import pytest
from fastloss import _backends

pytestmark = pytest.mark.skipif("native" not in _backends.available(), reason="native kernels")


def _calls():
    rng = np.random.default_rng(0)
    x_rows = rng.standard_normal((3000, 37)).astype(np.float32)
    t_rows = rng.integers(0, 37, 3000)
    x_tile = rng.standard_normal((4, 37, 700)).astype(np.float32)
    t_tile = rng.integers(0, 37, (4, 700))
    x_pt = rng.standard_normal(200_000).astype(np.float32)
    y_pt = rng.random(200_000).astype(np.float32)
    return [
        lambda: fastloss.cross_entropy_with_grad(x_rows, t_rows, label_smoothing=0.1),
        lambda: fastloss.cross_entropy_with_grad(x_tile, t_tile, axis=1, reduction="none"),
        lambda: fastloss.multiclass_hinge_loss_with_grad(x_rows, t_rows),
        lambda: fastloss.sigmoid_focal_loss_with_grad(x_pt, y_pt, reduction="sum"),
        lambda: fastloss.huber_loss_with_grad(x_pt, y_pt),
    ]


def _bits(result):
    loss, grad = result
    return np.asarray(loss).tobytes(), grad.tobytes()


def test_concurrent_calls_with_changing_thread_counts():
    calls = _calls()
    previous = fastloss.get_num_threads()
    try:
        fastloss.set_num_threads(1)
        with fastloss.use_backend("native"):
            expected = [_bits(c()) for c in calls]
        stop = threading.Event()
        errors: list[str] = []

        def changer():
            n = 0
            while not stop.is_set():
                fastloss.set_num_threads(1 + n % 8)
                n += 1

        def worker(k):
            try:
                with fastloss.use_backend("native"):
                    for i in range(12):
                        j = (k + i) % len(calls)
                        if _bits(calls[j]()) != expected[j]:
                            errors.append(f"call {j} differs (thread {k}, round {i})")
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(repr(exc))

        ch = threading.Thread(target=changer)
        ch.start()
        workers = [threading.Thread(target=worker, args=(k,)) for k in range(6)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        stop.set()
        ch.join()
        assert not errors, errors
    finally:
        fastloss.set_num_threads(previous)
