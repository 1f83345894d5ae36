"""Gradient-boosting objectives: fastloss ``*_grad_hess`` against the same objective in NumPy.

Three tables, every timing side by side in one run (``measure_many`` interleaves them):

1. Multi-class, (rows, classes) margins (default 1M x 10), float32 as XGBoost hands them: fastloss
   ``cross_entropy_grad_hess`` / ``softmax_focal_loss_grad_hess`` into preallocated buffers vs a
   NumPy softmax grad/hess written the way a user writes it (max, exp, sum, divide, one-hot), vs
   fastloss's own NumPy backend (``fl.use_backend("numpy")``, the same call) for cross-entropy, and
   vs fastloss's float64 NumPy reference for the focal loss.
2. Point-wise ``*_grad_hess`` (default 16M elements, float32) vs a copy of the bytes they must move
   (read margin + label, write grad + hess: 16 B/element) and vs NumPy.
3. One XGBoost boosting round at (rows, classes) with the fastloss objective vs the NumPy one, and
   the objective's share of the round.

Usage: ``PYTHONPATH=python python benchmarks/gbdt_objective.py [--rows N] [--classes C]
[--elements N] [--threads T] [--no-xgboost] | tee benchmarks/results/gbdt_objective.txt``. Threads
default to 1 (the targets are per core).
"""

from __future__ import annotations

import argparse
import time

import fastloss as fl
import numpy as np
from fastloss import _reference_hess
from fastloss._bench import copy_fn, measure_many


def numpy_softmax_grad_hess(z, y, w, g, h):
    """The NumPy objective users write for multi-class softmax (in z's dtype), into g and h."""
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    g[...] = p
    g[np.arange(len(y)), y] -= 1.0
    np.multiply(p, 1.0 - p, out=h)
    g *= w[:, None]
    h *= w[:, None]


def numpy_focal_reference(z, y, w, gamma):
    """Softmax focal in NumPy (float64, fastloss's reference: the careful version of a user's)."""
    g, h = _reference_hess.softmax_focal_loss(z.astype(np.float64), y, alpha=None, gamma=gamma, ignore_index=-100)
    return g * w[:, None], h * w[:, None]


def numpy_pointwise(name, x, y):
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    opts = {"huber_loss": {"delta": 1.0}, "smooth_l1_loss": {"beta": 1.0},
            "sigmoid_focal_loss": {"alpha": 0.25, "gamma": 2.0}}[name]
    g, h = getattr(_reference_hess, name)(x64, y64, **opts)
    return g.astype(x.dtype), h.astype(x.dtype)


def cpu_times(fns, rounds=5):
    """Least process CPU time per fn over interleaved rounds: on a shared machine the wall clock
    also counts the time this process waited for a core (1 thread: CPU time = its running time)."""
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(rounds):
        for name, fn in fns.items():
            t0 = time.process_time()
            fn()
            best[name] = min(best[name], time.process_time() - t0)
    return best


def row(name, t, ref=None, ref_name=""):
    extra = f"  {ref_name} {ref.median * 1e3:8.1f} ms  -> {ref.median / t.median:5.1f}x" if ref else ""
    print(f"  {name:44s} {t.median * 1e3:8.1f} ms{extra}")


def multiclass(rows, classes, rng):
    print(f"\n1. multi-class objective, ({rows}, {classes}) float32 margins, per boosting round")
    z = (rng.standard_normal((rows, classes)) * 2).astype(np.float32)
    y = rng.integers(0, classes, rows)
    w = rng.uniform(0.5, 2.0, rows).astype(np.float32)
    g, h = np.empty_like(z), np.empty_like(z)
    g2, h2 = np.empty_like(z), np.empty_like(z)
    g3, h3 = np.empty_like(z), np.empty_like(z)

    def fl_numpy_backend():
        with fl.use_backend("numpy"):
            fl.cross_entropy_grad_hess(z, y, sample_weight=w, out=(g3, h3))

    fns = {
        "fl_ce": lambda: fl.cross_entropy_grad_hess(z, y, sample_weight=w, out=(g, h)),
        "np_ce": lambda: numpy_softmax_grad_hess(z, y, w, g2, h2),
        "fl_numpy_ce": fl_numpy_backend,
        "fl_focal": lambda: fl.softmax_focal_loss_grad_hess(z, y, sample_weight=w, gamma=2.0, out=(g, h)),
        "np_focal": lambda: numpy_focal_reference(z, y, w, 2.0),
    }
    t = measure_many(fns, min_time=0.5, max_time=4.0, min_repeats=3, max_repeats=20)
    fl.cross_entropy_grad_hess(z, y, sample_weight=w, out=(g, h))
    numpy_softmax_grad_hess(z, y, w, g2, h2)
    fl_numpy_backend()
    assert np.allclose(h, h2, atol=1e-6) and np.allclose(g, g2, atol=1e-6)
    assert np.allclose(h, h3, atol=1e-6) and np.allclose(g, g3, atol=1e-6)
    row("cross_entropy_grad_hess (target >= 10x)", t["fl_ce"], t["np_ce"], "NumPy softmax grad/hess")
    row("cross_entropy_grad_hess", t["fl_ce"], t["fl_numpy_ce"], "fastloss NumPy backend ")
    row("softmax_focal_loss_grad_hess gamma=2", t["fl_focal"], t["np_focal"], "NumPy focal (float64)")
    c = cpu_times({k: fns[k] for k in ("fl_ce", "np_ce")})
    print(f"  CPU time (least of 5): cross_entropy_grad_hess {c['fl_ce'] * 1e3:.1f} ms, NumPy {c['np_ce'] * 1e3:.1f} ms "
          f"-> {c['np_ce'] / c['fl_ce']:.1f}x")
    copy = measure_many({"copy": copy_fn(4 * z.nbytes)}, min_time=0.5)["copy"]
    print(f"  bytes moved (x, grad, hess, weights/labels ~ 3 x input): copy of 4 x input {copy.median * 1e3:.1f} ms")
    return t


def pointwise(n, rng):
    print(f"\n2. point-wise grad_hess, {n} float32 elements (16 B/element: read x, y; write grad, hess)")
    x = (rng.standard_normal(n) * 1.5).astype(np.float32)
    targets = {"huber_loss": (rng.standard_normal(n) * 1.5).astype(np.float32),
               "smooth_l1_loss": (rng.standard_normal(n) * 1.5).astype(np.float32),
               "sigmoid_focal_loss": rng.integers(0, 2, n).astype(np.float32)}
    g, h = np.empty_like(x), np.empty_like(x)
    nbytes = 4 * x.nbytes
    for name, y in targets.items():
        fn = getattr(fl, f"{name}_grad_hess")
        fns = {"fl": lambda fn=fn, y=y: fn(x, y, out=(g, h)), "copy": copy_fn(nbytes),
               "np": lambda name=name, y=y: numpy_pointwise(name, x, y)}
        t = measure_many(fns, min_time=0.5, max_time=4.0, min_repeats=3, max_repeats=30)
        gbps = nbytes / t["fl"].median / 1e9
        print(f"  {name + '_grad_hess':34s} {t['fl'].median * 1e3:7.1f} ms  {gbps:5.1f} GB/s  "
              f"{100 * t['copy'].median / t['fl'].median:5.0f}% of copy ({t['copy'].median * 1e3:.1f} ms)  "
              f"NumPy {t['np'].median * 1e3:7.1f} ms -> {t['np'].median / t['fl'].median:5.1f}x")


def xgboost_round(rows, classes, threads, rng):
    import fastloss.xgboost
    import xgboost as xgb

    print(f"\n3. one XGBoost round (hist, depth 6, {classes} trees), ({rows}, {classes}), nthread={threads}")
    X = rng.standard_normal((rows, 10)).astype(np.float32)
    y = np.argmax(X[:, :classes] if classes <= 10 else rng.standard_normal((rows, classes)), axis=1)
    dtrain = xgb.DMatrix(X, y, nthread=threads)
    ours = fastloss.xgboost.objective("cross_entropy")
    timed = {"fastloss": 0.0, "numpy": 0.0}  # process CPU time (nthread=1: the round's one core)

    def numpy_obj(predt, d):
        t0 = time.process_time()
        labels = d.get_label().astype(np.int64)
        g, h = np.empty_like(predt), np.empty_like(predt)
        numpy_softmax_grad_hess(predt, labels, np.ones(len(labels), predt.dtype), g, h)
        timed["numpy"] += time.process_time() - t0
        return g, h

    def fl_obj(predt, d):
        t0 = time.process_time()
        out = ours(predt, d)
        timed["fastloss"] += time.process_time() - t0
        return out

    params = {"num_class": classes, "tree_method": "hist", "max_depth": 6, "nthread": threads}
    rounds = 2
    for name, obj in (("fastloss", fl_obj), ("numpy", numpy_obj)):
        xgb.train(params, dtrain, 1, obj=obj)  # warm-up: the quantile sketch, first-touch pages
        timed[name] = 0.0
        t0 = time.process_time()
        xgb.train(params, dtrain, rounds, obj=obj)
        total = (time.process_time() - t0) / rounds
        share = timed[name] / rounds
        print(f"  {name:9s} objective {share * 1e3:7.1f} ms of a {total * 1e3:7.1f} ms round ({100 * share / total:4.1f}%), "
              "CPU time")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--elements", type=int, default=16 << 20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-xgboost", action="store_true")
    args = ap.parse_args()
    fl.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    print(f"fastloss {fl.__version__}, backend {fl.backend()}, threads {fl.get_num_threads()}")
    multiclass(args.rows, args.classes, rng)
    pointwise(args.elements, rng)
    if not args.no_xgboost:
        xgboost_round(args.rows, args.classes, args.threads, rng)


if __name__ == "__main__":
    main()
