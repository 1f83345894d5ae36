"""Every implementation the suite races fastloss against, each optional.

A competitor is ``build(case, device, threads) -> fn`` returning the timed zero-argument call, or
raising ``Skip`` with the reason (not installed, loss or dtype not supported, no GPU); the reason is
written into the results. PyTorch, JAX and the NumPy reference come from ``fastloss._bench`` (the
quick bench uses them too); this file adds the ones only the full suite runs.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np
from fastloss import _bench
from fastloss._bench import Case, Skip


def _cpu_only(build: Callable[[Case], Callable[[], Any]]):
    def on_device(case: Case, device: str, threads: int):
        if device != "cpu":
            raise Skip("CPU only")
        return build(case)

    return on_device


def torch_eager(case: Case, device: str, threads: int):
    return _bench.torch_fn(case, device)


def torch_compile(case: Case, device: str, threads: int):
    """``torch.compile`` of the same loss (built per thread count: Inductor bakes it in)."""
    return _bench.torch_compile_fn(case, device)


def _sklearn_loss(case: Case):
    """(loss object, y_true, raw_prediction) for sklearn's Cython loss module, or Skip."""
    try:
        from sklearn._loss import loss as sk
    except ImportError:
        raise Skip("scikit-learn is not installed") from None
    if case.dtype not in ("float32", "float64"):
        raise Skip("sklearn._loss: float32/float64 only")
    name, o = case.spec.name, case.opts
    # HuberLoss's quantile only matters when sklearn fits delta itself; its loops use delta as given
    if name == "cross_entropy" and not (o["label_smoothing"] or o["z_loss"] or o["softcap"]):
        return sk.HalfMultinomialLoss(n_classes=case.shape[-1]), case.target.astype(case.dtype), case.x
    if name == "huber_loss":
        return sk.HuberLoss(delta=o["delta"]), case.target, case.x
    if name == "smooth_l1_loss" and o["beta"] > 0:  # smooth_l1(beta) == huber(delta=beta) / beta
        return sk.HuberLoss(delta=o["beta"]), case.target, case.x
    raise Skip(f"sklearn._loss has no {name}")


def sklearn_loss(case: Case, device: str, threads: int):
    """sklearn's per-sample loss/gradient loops into preallocated buffers, then the mean."""
    if device != "cpu":
        raise Skip("CPU only")
    loss, y, raw = _sklearn_loss(case)
    loss_out = np.empty(raw.shape[0], dtype=raw.dtype)
    grad_out = np.empty_like(raw)
    if case.form == "forward":
        return lambda: loss.loss(y, raw, loss_out=loss_out, n_threads=threads).mean()
    if case.form == "backward":
        return lambda: loss.gradient(y, raw, gradient_out=grad_out, n_threads=threads)

    def fused():
        value, grad = loss.loss_gradient(y, raw, loss_out=loss_out, gradient_out=grad_out, n_threads=threads)
        return value.mean(), grad

    return fused


def liger(case: Case, device: str, threads: int):
    """Liger-Kernel's Triton cross-entropy (GPU only). It writes the gradient over its input."""
    if device == "cpu":
        raise Skip("GPU only")
    try:
        from liger_kernel.transformers import LigerCrossEntropyLoss
    except ImportError:
        raise Skip("liger-kernel is not installed") from None
    o = case.opts
    if case.spec.name != "cross_entropy" or o["z_loss"] or o["softcap"] or o["weight"] is not None:
        raise Skip(f"Liger has no {case.spec.name} with these options")
    module = LigerCrossEntropyLoss(ignore_index=o["ignore_index"], label_smoothing=o["label_smoothing"])
    return _bench.autograd_fn(module, dataclasses.replace(case, x=case.x.clone()), device)


# name -> build; the order is the column order of the results.
COMPETITORS: dict[str, Callable[[Case, str, int], Callable[[], Any]]] = {
    "torch": torch_eager,
    "torch_compile": torch_compile,
    "jax": _cpu_only(_bench.jax_fn),
    "sklearn": sklearn_loss,
    "numpy_ref": _cpu_only(_bench.numpy_reference_fn),
    "liger": liger,
}
