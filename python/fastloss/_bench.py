"""Benchmark machinery (the one place that times anything) and the quick ``python -m fastloss bench``.

The full suite in ``benchmarks/`` imports everything it measures with from here: ``measure``
(timing), ``measure_many`` (interleaved timing), ``bytes_moved`` (byte accounting),
``copy_fn``/``copy_yardstick``, ``peak_extra_memory``,
``make_case`` (registry-driven inputs) and the PyTorch / JAX / NumPy-reference competitors.
Methodology: benchmarks/README.md.
"""

from __future__ import annotations

import contextlib
import datetime
import gc
import json
import math
import os
import platform
import statistics
import sys
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from . import _api, _backends
from ._registry import BY_NAME, LOSSES, LossSpec

# Public benchmark form name -> suffix of the public function (DESIGN 1).
FORMS = {"forward": "", "backward": "_grad", "fused": "_with_grad"}
DTYPES = ("float32", "bfloat16", "float16", "float64")
ITEMSIZE = {"float32": 4, "float64": 8, "float16": 2, "bfloat16": 2}
_TARGET_INDEX_BYTES = 8  # rowwise class indices reach the kernel as int64 (_api._class_target)


# ---- byte accounting ---------------------------------------------------------------------------


def bytes_moved(spec: LossSpec, form: str, shape: tuple[int, ...], dtype: str) -> int:
    """Least bytes one call must move between memory and the core (DESIGN.md 3).

    With s = bytes per input element, n = input elements, R = rows (n / C):

    - rowwise   forward:          n*s + 8*R        read logits + read int64 class indices
    - rowwise   backward, fused:  2*n*s + 8*R      ... + write the gradient
    - pointwise forward:          2*n*s            read input + read target (input's dtype)
    - pointwise backward, fused:  3*n*s            ... + write the gradient

    The loss itself (a scalar for reduction="mean") and option vectors of C values are O(R + C)
    and not counted. fp32 fused cross-entropy is thus 8 B/element (+8 B/row), pointwise 12 B/element.
    """
    n = math.prod(shape)
    s = ITEMSIZE[dtype]
    writes = 0 if form == "forward" else 1
    if spec.rowwise:
        rows = n // shape[-1] if shape[-1] else 0
        return n * s * (1 + writes) + _TARGET_INDEX_BYTES * rows
    return n * s * (2 + writes)


# ---- timing ------------------------------------------------------------------------------------


@dataclass
class Timing:
    """Seconds per call over ``repeats`` timed calls (after warm-up)."""

    median: float
    min: float
    max: float
    repeats: int

    def gbps(self, nbytes: int) -> float:
        return nbytes / self.median / 1e9


_REWARM_BELOW_S = 0.01  # faster calls can live in cache, so a round re-warms them before timing


def measure_many(
    fns: dict[str, Callable[[], Any]],
    *,
    warmup: int = 2,
    rounds: int = 3,
    min_repeats: int = 5,
    max_repeats: int = 100,
    min_time: float = 0.3,
    max_time: float = 3.0,
    sync: Callable[[], Any] | None = None,
) -> dict[str, Timing]:
    """Time each ``fn()`` after ``warmup`` untimed calls (compilation, lazy set-up, first-touch
    page faults), in ``rounds`` alternating rounds so that every implementation sees the same
    machine state (other load, clock speed): a drift hits all of them, not just one.

    Over all rounds each fn gets at least ``min_repeats`` calls and ``min_time`` seconds, and at
    most ``max_repeats`` calls or ``max_time`` seconds (always one timed call per round); a warm-up
    call longer than max_time/rounds ends its warm-up. Within a round a fast fn is called once
    untimed first, because the other fns of the round evicted its data from the caches. ``sync``
    waits for asynchronous work (a CUDA stream) before each clock read. The garbage collector is
    paused so that no collection lands inside a sample.
    """
    sync = sync or (lambda: None)
    share = {"min_repeats": -(-min_repeats // rounds), "max_repeats": -(-max_repeats // rounds),
             "min_time": min_time / rounds, "max_time": max_time / rounds}
    for fn in fns.values():
        for _ in range(warmup):
            t0 = time.perf_counter()
            fn()
            sync()
            if time.perf_counter() - t0 > share["max_time"]:
                break
    samples: dict[str, list[float]] = {name: [] for name in fns}
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for r in range(rounds):
            for name, fn in fns.items():
                if r and statistics.median(samples[name]) < _REWARM_BELOW_S:
                    fn()
                    sync()
                _timed_calls(fn, sync, samples[name], **share)
    finally:
        if gc_was_enabled:
            gc.enable()
    return {name: Timing(statistics.median(v), min(v), max(v), len(v)) for name, v in samples.items()}


def _timed_calls(fn, sync, samples: list[float], *, min_repeats, max_repeats, min_time, max_time) -> None:
    start = time.perf_counter()
    for i in range(1, max_repeats + 1):
        t0 = time.perf_counter()
        fn()
        sync()
        now = time.perf_counter()
        samples.append(now - t0)
        if (i >= min_repeats and now - start >= min_time) or now - start >= max_time:
            return


def measure(fn: Callable[[], Any], **kw) -> Timing:
    """``measure_many`` of one function, in one round."""
    return measure_many({"fn": fn}, **{"rounds": 1, **kw})["fn"]


_COPY_POOLS: dict[int, ThreadPoolExecutor] = {}


def copy_fn(nbytes: int, device: str = "cpu", threads: int = 1) -> Callable[[], Any]:
    """The yardstick: a plain copy that moves ``nbytes`` in all (reads nbytes/2, writes nbytes/2).

    CPU: ``np.copyto`` into a preallocated buffer (memcpy), split over ``threads`` threads so that
    an n-thread loss is held against an n-thread copy (one core alone may not saturate DRAM; NumPy
    releases the GIL while it copies). CUDA: ``torch.clone`` (the GPU's copy kernel plus the
    caching allocator, as a loss call that returns a gradient would use)."""
    half = max(1, nbytes // 2)
    if device != "cpu":
        import torch

        return torch.ones(half, dtype=torch.uint8, device=device).clone
    src = np.ones(half, dtype=np.uint8)
    dst = np.zeros_like(src)
    if threads <= 1:
        return lambda: np.copyto(dst, src)
    cuts = [half * i // threads for i in range(threads + 1)]
    parts = [(dst[a:b], src[a:b]) for a, b in zip(cuts[:-1], cuts[1:])]
    pool = _COPY_POOLS.setdefault(threads, ThreadPoolExecutor(threads, thread_name_prefix="fastloss-copy"))

    def parallel_copy():
        for done in [pool.submit(np.copyto, d, s) for d, s in parts]:
            done.result()

    return parallel_copy


def copy_yardstick(nbytes: int, device: str = "cpu", threads: int = 1, **measure_kw) -> Timing:
    """``measure`` of ``copy_fn`` alone (measure_many interleaves it with the loss instead)."""
    sync = None
    if device != "cpu":
        import torch

        sync = torch.cuda.synchronize
    return measure(copy_fn(nbytes, device, threads), sync=sync, **measure_kw)


# ---- peak extra memory -------------------------------------------------------------------------

_CLEAR_REFS = "/proc/self/clear_refs"
MEMORY_METHOD = {
    "cpu": "max(RSS high-water-mark rise, tracemalloc peak): a lower bound",
    "cuda": "rise of torch.cuda.max_memory_allocated",
}


def _status_kib(field_name: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    raise KeyError(field_name)


def _can_reset_rss_peak() -> bool:
    try:
        with open(_CLEAR_REFS, "w") as f:
            f.write("5")  # Linux >= 4.0: resets VmHWM to the current RSS
        return True
    except OSError:
        return False


def peak_extra_memory(fn: Callable[[], Any], device: str = "cpu") -> int:
    """Bytes of memory one ``fn()`` call needs beyond what the process already holds.

    CPU: the larger of two lower bounds: the rise of the RSS high-water mark (VmHWM, reset through
    /proc/self/clear_refs; sees every allocator, but not heap memory that malloc reuses) and the
    tracemalloc peak (sees NumPy buffers exactly, but no foreign allocator). CUDA: the rise of
    ``torch.cuda.max_memory_allocated``. Call after warm-up.
    """
    gc.collect()
    if device != "cpu":
        import torch

        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        return max(0, torch.cuda.max_memory_allocated() - before)
    rss_delta = 0
    tracemalloc.start()
    try:
        if _can_reset_rss_peak():
            before = _status_kib("VmRSS")
            _can_reset_rss_peak()
            fn()
            rss_delta = max(0, _status_kib("VmHWM") - before) * 1024
        else:
            fn()
        traced = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return max(rss_delta, traced)


# ---- inputs ------------------------------------------------------------------------------------


class Skip(Exception):
    """A competitor or case that cannot run here; the message says why (it lands in the results)."""


@dataclass
class Case:
    """One loss, form, dtype and shape, with its data. ``x`` is NumPy (bfloat16 via ml_dtypes)."""

    spec: LossSpec
    form: str
    dtype: str
    shape: tuple[int, ...]
    x: np.ndarray
    target: np.ndarray  # rowwise: int64 (N,); pointwise: the input's dtype, x's shape
    grad_out: np.ndarray | None  # preallocated gradient destination (out=), None for forward
    opts: dict[str, Any] = field(default_factory=dict)  # the registry's defaults

    @property
    def nbytes(self) -> int:
        return bytes_moved(self.spec, self.form, self.shape, self.dtype)

    @property
    def label(self) -> str:
        return f"{self.spec.name} {self.form} {self.dtype} {'x'.join(map(str, self.shape))}"


def numpy_dtype(dtype: str):
    if dtype == "bfloat16":
        try:
            import ml_dtypes
        except ImportError:
            raise Skip("bfloat16 NumPy arrays need ml_dtypes (pip install ml_dtypes)") from None
        return ml_dtypes.bfloat16
    return np.dtype(dtype)


def make_case(spec: LossSpec, form: str, dtype: str, shape: tuple[int, ...], seed: int = 0) -> Case:
    """Inputs for ``spec`` from the registry alone: logits ~ N(0, 2^2); rowwise targets uniform
    class indices; pointwise targets the extremes of ``target_values`` (so {-1, +1} for hinge,
    {0, 1} for focal), else N(0, 1) regression targets; all in the input's dtype."""
    rng = np.random.default_rng(seed)
    nd = numpy_dtype(dtype)
    x = (2.0 * rng.standard_normal(shape, dtype=np.float32)).astype(nd)
    if spec.rowwise:
        target = rng.integers(0, shape[-1], size=shape[:-1], dtype=np.int64)
    elif spec.target_values is not None:
        lo, hi = min(spec.target_values), max(spec.target_values)
        target = np.where(rng.random(shape) < 0.5, lo, hi).astype(nd)
    else:
        target = rng.standard_normal(shape, dtype=np.float32).astype(nd)
    grad_out = None if form == "forward" else np.empty_like(x)
    opts = {k: v for k, v in spec.defaults().items() if k not in ("axis", "reduction")}
    return Case(spec, form, dtype, tuple(shape), x, target, grad_out, opts)


def fastloss_fn(case: Case, allocate: bool = False) -> Callable[[], Any]:
    """The timed fastloss call; the gradient goes into a preallocated ``out=`` unless ``allocate``."""
    fn = _api.FUNCTIONS[case.spec.name + FORMS[case.form]]
    if case.form == "forward" or allocate:
        return lambda: fn(case.x, case.target)
    return lambda: fn(case.x, case.target, out=case.grad_out)


# ---- competitors shared with benchmarks/ -------------------------------------------------------
# Each maps a registry loss (with the registry's default options) to the framework's own loss, or
# raises Skip. "backward" and "fused" of an autograd framework both mean forward + backward:
# that is what a user of the framework runs to get the gradient.


def numpy_reference_fn(case: Case) -> Callable[[], Any]:
    run = fastloss_fn(case)

    def call():
        with _backends.use_backend("numpy"):
            return run()

    return call


def _torch_losses(opts: dict[str, Any]) -> dict[str, Callable]:
    import torch
    import torch.nn.functional as F

    def softmax_focal(x, t):
        if opts["alpha"] is not None:
            raise Skip("alpha is not None")
        valid = t != opts["ignore_index"]
        logp = F.log_softmax(x, dim=-1).gather(-1, t.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        loss = -((1 - logp.exp()) ** opts["gamma"]) * logp
        return (loss * valid).sum() / valid.sum()

    def sigmoid_focal(x, y):  # torchvision.ops.sigmoid_focal_loss's formula
        p = torch.sigmoid(x)
        ce = F.binary_cross_entropy_with_logits(x, y, reduction="none")
        p_t = p * y + (1 - p) * (1 - y)
        loss = ce * (1 - p_t) ** opts["gamma"]
        if opts["alpha"] >= 0:
            loss = loss * (opts["alpha"] * y + (1 - opts["alpha"]) * (1 - y))
        return loss.mean()

    def hinge(s, y):
        h = torch.clamp(opts["margin"] - y * s, min=0)
        return (h * h if opts["squared"] else h).mean()

    def multiclass_hinge(s, t):
        if opts["weight"] is not None or opts["squared"]:
            raise Skip("weight/squared not mapped")
        if opts["variant"] == "weston_watkins":  # PyTorch's is weston_watkins divided by C
            return F.multi_margin_loss(s, t, margin=opts["margin"]) * s.shape[-1]
        s_t = s.gather(-1, t.unsqueeze(-1))
        rival = s.scatter(-1, t.unsqueeze(-1), float("-inf")).amax(-1, keepdim=True)
        return torch.clamp(opts["margin"] + rival - s_t, min=0).mean()

    return {
        "cross_entropy": lambda x, t: F.cross_entropy(
            x, t, ignore_index=opts["ignore_index"], label_smoothing=opts["label_smoothing"]
        ),
        "softmax_focal_loss": softmax_focal,
        "sigmoid_focal_loss": sigmoid_focal,
        "hinge_loss": hinge,
        "multiclass_hinge_loss": multiclass_hinge,
        "huber_loss": lambda x, y: F.huber_loss(x, y, delta=opts["delta"]),
        "smooth_l1_loss": lambda x, y: F.smooth_l1_loss(x, y, beta=opts["beta"]),
    }


def torch_loss(case: Case) -> Callable:
    """PyTorch's loss for ``case`` as ``f(x, target) -> scalar`` (raises Skip when unmapped)."""
    try:
        import torch  # noqa: F401
    except ImportError:
        raise Skip("torch is not installed") from None
    if case.opts.get("z_loss") or case.opts.get("softcap") or case.opts.get("weight") is not None:
        raise Skip("option not mapped to PyTorch")
    losses = _torch_losses(case.opts)
    if case.spec.name not in losses:
        raise Skip(f"no PyTorch mapping for {case.spec.name}")
    return losses[case.spec.name]


def to_torch(arr: np.ndarray, device: str = "cpu"):
    """A torch tensor sharing ``arr``'s memory on CPU (bfloat16 bits reinterpreted)."""
    import torch

    if isinstance(arr, torch.Tensor):
        return arr.to(device)

    if arr.dtype.name == "bfloat16":
        return torch.from_numpy(arr.view(np.int16)).view(torch.bfloat16).to(device)
    return torch.from_numpy(arr).to(device)


def autograd_fn(loss: Callable, case: Case, device: str = "cpu") -> Callable[[], Any]:
    """The timed call of a torch ``loss``: forward under no_grad, or forward + backward."""
    import torch

    x, t = to_torch(case.x, device), to_torch(case.target, device)
    if case.form == "forward":

        def forward():
            with torch.no_grad():
                return loss(x, t)

        forward()  # fails here (-> Skip) rather than in the timing loop when the dtype is unsupported
        return forward
    xg = x.detach().requires_grad_(True)

    def forward_backward():
        value = loss(xg, t)
        (grad,) = torch.autograd.grad(value, xg)
        return value, grad

    forward_backward()
    return forward_backward


def torch_fn(case: Case, device: str = "cpu") -> Callable[[], Any]:
    try:
        return autograd_fn(torch_loss(case), case, device)
    except (RuntimeError, TypeError, NotImplementedError) as exc:
        raise Skip(f"torch: {str(exc).splitlines()[0][:120]}") from None


def _optax_losses(opts: dict[str, Any]) -> dict[str, Callable]:
    import optax

    L = optax.losses

    def not_default(reason):
        def fail(*_):
            raise Skip(reason)

        return fail

    margin_one = opts.get("margin") == 1.0 and not opts.get("squared")
    return {
        "cross_entropy": (
            (lambda x, t: L.softmax_cross_entropy_with_integer_labels(x, t).mean())
            if not opts.get("label_smoothing") else not_default("label_smoothing not mapped")
        ),
        "sigmoid_focal_loss": lambda x, y: L.sigmoid_focal_loss(
            x, y, alpha=opts["alpha"] if opts.get("alpha", -1) >= 0 else None, gamma=opts["gamma"]
        ).mean(),
        "hinge_loss": (
            (lambda s, y: L.hinge_loss(s, y).mean()) if margin_one else not_default("optax: margin 1 only")
        ),
        "multiclass_hinge_loss": (
            (lambda s, t: L.multiclass_hinge_loss(s, t).mean())
            if margin_one and opts.get("variant") == "crammer_singer"
            else not_default("optax: crammer_singer, margin 1 only")
        ),
        "huber_loss": lambda x, y: L.huber_loss(x, y, delta=opts["delta"]).mean(),
        # smooth_l1(beta) == huber(delta=beta) / beta, exactly
        "smooth_l1_loss": lambda x, y: L.huber_loss(x, y, delta=opts["beta"]).mean() / opts["beta"],
    }


def jax_fn(case: Case) -> Callable[[], Any]:
    """``jax.jit`` of optax's loss: forward, ``grad`` (backward) or ``value_and_grad`` (fused)."""
    try:
        import jax
        import jax.numpy as jnp
        import optax  # noqa: F401
    except ImportError:
        raise Skip("jax/optax is not installed") from None
    if case.opts.get("z_loss") or case.opts.get("softcap") or case.opts.get("weight") is not None:
        raise Skip("option not mapped to optax")
    if case.dtype == "float64" and not jax.config.jax_enable_x64:
        raise Skip("float64 needs JAX_ENABLE_X64=1 (JAX would silently compute in float32)")
    losses = _optax_losses(case.opts)
    if case.spec.name not in losses:
        raise Skip(f"optax has no {case.spec.name}")
    loss = losses[case.spec.name]
    wrap = {"forward": lambda f: f, "backward": jax.grad, "fused": jax.value_and_grad}[case.form]
    compiled = jax.jit(wrap(loss))
    x, t = jnp.asarray(case.x), jnp.asarray(case.target)

    def call():
        return jax.block_until_ready(compiled(x, t))

    try:
        call()
    except Skip:
        raise
    except Exception as exc:  # noqa: BLE001 - any XLA failure means "cannot compare here"
        raise Skip(f"jax: {str(exc).splitlines()[0][:120]}") from None
    return call


QUICK_COMPETITORS: dict[str, Callable[[Case], Callable[[], Any]]] = {
    "numpy_ref": numpy_reference_fn,
    "torch": torch_fn,
    "jax": jax_fn,
}


def set_threads(n: int) -> None:
    """Pin fastloss and PyTorch to ``n`` threads (JAX/XLA cannot change its pool after start-up)."""
    _backends.set_num_threads(n)
    with contextlib.suppress(ImportError):
        import torch

        torch.set_num_threads(n)


# ---- machine description -----------------------------------------------------------------------


def _cpu_model() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith(("model name", "Model")):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _version(module: str) -> str | None:
    try:
        mod = __import__(module)
    except ImportError:
        return None
    return getattr(mod, "__version__", "?")


def machine_info(libraries: tuple[str, ...] = ("numpy", "torch", "jax", "optax", "sklearn", "matplotlib")) -> dict:
    """What produced the numbers: CPU model, ISA in use, cores, library versions, date (UTC)."""
    from . import __version__

    native = _backends._C
    return {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
        "cpu_model": _cpu_model(),
        "machine": platform.machine(),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "fastloss": __version__,
        "backend": _backends.current().name,
        "cpu_isa": native.isa() if native is not None and hasattr(native, "isa") else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {name: _version(name) for name in libraries},
    }


# ---- the quick CLI -----------------------------------------------------------------------------


class ProgressBar:
    """A one-line bar on a terminal; one line per step otherwise (logs stay readable)."""

    def __init__(self, total: int, stream=None, width: int = 30):
        self.total, self.done, self.width = total, 0, width
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()

    def step(self, label: str) -> None:
        self.done += 1
        filled = self.width * self.done // max(1, self.total)
        text = f"[{'#' * filled}{'.' * (self.width - filled)}] {self.done}/{self.total} {label}"
        if self.tty:
            self.stream.write("\r" + text[: 118].ljust(118))
            if self.done == self.total:
                self.stream.write("\n")
        else:
            self.stream.write(text + "\n")
        self.stream.flush()


def format_table(rows: list[dict], columns: list[tuple[str, str]]) -> str:
    """Rows of already-formatted strings as an aligned text table; ``columns`` = (key, header)."""
    cells = [[h for _, h in columns]] + [[str(r.get(k, "")) for k, _ in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt_time(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds * 1e9:.3g} ns"


# (rows, classes) for rowwise and elements for pointwise, per size preset. The default's fp32
# traffic (64 MiB rowwise, 48 MiB pointwise) exceeds this machine's 32 MiB L3, so GB/s means DRAM.
_QUICK_SIZES = {
    "tiny": ((64, 100), 4096),
    "quick": ((512, 1000), 1 << 19),
    "default": ((2048, 4096), 1 << 22),
}
_QUICK_TIMING = {"warmup": 1, "rounds": 3, "min_repeats": 5, "min_time": 0.2, "max_time": 1.0}
_QUICK_LABELS = {"numpy_ref": "x NumPy", "torch": "x PyTorch", "jax": "x JAX"}


def add_arguments(parser) -> None:
    parser.add_argument("--quick", action="store_const", dest="size", const="quick", default="default",
                        help="smaller inputs (cache-resident; a few seconds)")
    parser.add_argument("--tiny", action="store_const", dest="size", const="tiny",
                        help="tiny inputs: checks that everything runs (used by the tests)")
    parser.add_argument("--loss", action="append", choices=[s.name for s in LOSSES],
                        help="only this loss (repeatable; default: every loss)")
    parser.add_argument("--dtype", action="append", choices=DTYPES,
                        help="only this dtype (repeatable; default: float32 and bfloat16)")
    parser.add_argument("--form", choices=tuple(FORMS), default="fused",
                        help="forward = L, backward = L_grad, fused = L_with_grad (default)")
    parser.add_argument("--threads", type=int, default=1, help="threads for fastloss and PyTorch (default 1)")
    parser.add_argument("--no-compare", action="store_true", help="time fastloss and the copy only")
    parser.add_argument("--json", metavar="PATH", help="also write the rows and machine description as JSON")


def _quick_row(case: Case, compare: bool, threads: int) -> dict:
    fns = {"copy": copy_fn(case.nbytes, threads=threads), "fastloss": fastloss_fn(case)}
    notes = {}
    for name, build in QUICK_COMPETITORS.items() if compare else ():
        try:
            fns[name] = build(case)
        except Skip as why:
            notes[f"note_{name}"] = str(why)
    t = measure_many(fns, **_QUICK_TIMING)
    fl, copy = t["fastloss"], t["copy"]
    row = {
        "loss": case.spec.name, "form": case.form, "dtype": case.dtype, "shape": list(case.shape),
        "bytes": case.nbytes, "time_s": fl.median, "time_min_s": fl.min, "time_max_s": fl.max,
        "gbps": fl.gbps(case.nbytes), "copy_gbps": copy.gbps(case.nbytes),
        "pct_of_copy": 100.0 * copy.median / fl.median, **notes,
    }
    for name in QUICK_COMPETITORS if compare else ():
        row[f"x_{name}"] = t[name].median / fl.median if name in t else None
    return row


def main(args) -> int:
    """Time every loss (one shape, fused form by default) against a same-size copy and competitors."""
    set_threads(args.threads)
    rowwise_shape, elements = _QUICK_SIZES[args.size]
    specs = [BY_NAME[n] for n in args.loss] if args.loss else list(LOSSES)
    dtypes = args.dtype or ["float32", "bfloat16"]
    plan = [(spec, dtype) for spec in specs for dtype in dtypes]
    info = machine_info(("numpy", "torch", "jax"))
    print(f"fastloss {info['fastloss']} bench: backend={info['backend']} isa={info['cpu_isa']} "
          f"threads={args.threads} cpu={info['cpu_model']} ({info['cores']} cores)")
    bar = ProgressBar(len(plan))
    rows, notes = [], set()
    for spec, dtype in plan:
        shape = rowwise_shape if spec.rowwise else (elements,)
        try:
            case = make_case(spec, args.form, dtype, shape)
        except Skip as why:
            notes.add(f"{dtype}: {why}")
            bar.step(f"{spec.name} {dtype} skipped")
            continue
        row = _quick_row(case, not args.no_compare, args.threads)
        rows.append(row)
        notes.update(f"{k[5:]} vs {spec.name} {dtype}: {v}" for k, v in row.items() if k.startswith("note_"))
        bar.step(case.label)
    print(format_table([_display(r) for r in rows], _quick_columns(rows)))
    print("GB/s counts the least bytes a call must move (see fastloss._bench.bytes_moved); "
          "'% copy' compares with np.copyto of the same bytes, same run; 'x NAME' = NAME's time / fastloss's.")
    for note in sorted(notes):
        print(f"note: {note}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "threads": args.threads, "rows": rows}, f, indent=1)
    return 0


def _quick_columns(rows: list[dict]) -> list[tuple[str, str]]:
    columns = [("loss", "loss"), ("shape", "shape"), ("dtype", "dtype"), ("time", "fastloss"),
               ("gbps", "GB/s"), ("pct", "% copy")]
    present = {k for r in rows for k, v in r.items() if k.startswith("x_") and v is not None}
    for name in QUICK_COMPETITORS:
        if f"x_{name}" in present:
            columns.append((f"x_{name}", _QUICK_LABELS[name]))
    return columns


def _display(row: dict) -> dict:
    out = {
        "loss": row["loss"], "shape": "x".join(map(str, row["shape"])), "dtype": row["dtype"],
        "time": _fmt_time(row["time_s"]), "gbps": f"{row['gbps']:.2f}", "pct": f"{row['pct_of_copy']:.0f}%",
    }
    for key, value in row.items():
        if key.startswith("x_"):
            out[key] = "-" if value is None else f"{value:.2f}x"
    return out

