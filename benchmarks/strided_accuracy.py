"""Accuracy and speed of cross_entropy_grad with the class axis not last (issue 15, item 4).

Median relative error of the float32 gradient against float64 (same float32 inputs, computed in
float64 by the NumPy reference), for fastloss and PyTorch, and the best-of-N time of the float32 call.

    PYTHONPATH=python python benchmarks/strided_accuracy.py
"""

from __future__ import annotations

import time

import fastloss as fl
import numpy as np


def median_rel(a: np.ndarray, ref: np.ndarray) -> float:
    return float(np.median(np.abs(a.astype(np.float64) - ref) / np.abs(ref)))


def best_time(fn, repeats: int = 5) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    try:
        import torch
    except ImportError:
        torch = None
    rng = np.random.default_rng(0)
    for C, inner in ((1 << 20, 3), (1 << 16, 8), (1 << 10, 1 << 10)):
        x = rng.standard_normal((C, inner)).astype(np.float32)
        t = rng.integers(0, C, size=inner)
        with fl.use_backend("numpy"):
            ref = fl.cross_entropy_grad(x.astype(np.float64), t, axis=0)
        g = fl.cross_entropy_grad(x, t, axis=0)
        line = f"({C}, {inner}) axis=0: fastloss {median_rel(g, ref):.2e}"
        sec = best_time(lambda x=x, t=t: fl.cross_entropy_grad(x, t, axis=0))
        if torch is not None:
            xt = torch.from_numpy(x[None]).requires_grad_()  # (1, C, inner): PyTorch's class axis 1
            loss = torch.nn.functional.cross_entropy(xt, torch.from_numpy(t[None]))
            (gt,) = torch.autograd.grad(loss, xt)
            line += f"  torch {median_rel(gt.numpy()[0], ref):.2e}"
        print(f"{line}  time {sec * 1e3:.2f} ms (float32, {fl.get_num_threads()} threads)")


if __name__ == "__main__":
    main()
