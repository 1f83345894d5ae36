"""The per-call overhead sweep (``python -m fastloss bench --overhead``, ``benchmarks/overhead.py``).

Forward+backward from tiny to large inputs, 1 thread by default, for the ways a user gets a loss
and its gradient: fastloss's core call into a preallocated gradient (NumPy), ``fastloss.torch``
with ``.backward()``, PyTorch eager, ``torch.compile`` of PyTorch's loss and of ``fastloss.torch``'s
(both sides compiled the same way) and optionally JAX. At small sizes the time
is per-call overhead (argument checks, dispatch, autograd), at large sizes memory traffic; the
report says from which size on ``fastloss.torch`` beats what it replaces.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shlex
import sys
import warnings
from typing import Any, Callable

import fastloss

from .cases import Case, Skip, make_case
from .figures import plot_overhead
from .jax_competitor import jax_fn
from .machine import machine_info, set_threads
from .progress import ProgressBar
from .table import format_table
from .timing import Timing, measure_calls
from .torch_competitor import to_torch, torch_loss
from .verdict import crossover

# Row-wise losses sweep (N, C) from a tiny classifier to an ImageNet-sized batch; point-wise ones
# 1 Ki .. 16 Mi elements (4 KiB, L1, to 64 MiB fp32, twice this machine's L3).
SWEEPS: dict[str, dict[str, tuple]] = {
    "tiny": {"rowwise": ((8, 2), (64, 10)), "pointwise": (1 << 10, 1 << 12)},
    "quick": {"rowwise": ((8, 2), (64, 10), (256, 100), (1024, 1000), (16384, 1000)),
              "pointwise": (1 << 10, 1 << 14, 1 << 18, 1 << 22)},
    "full": {"rowwise": ((8, 2), (64, 10), (256, 100), (1024, 1000), (4096, 1000), (16384, 1000),
                         (65536, 1000)),
             "pointwise": tuple(1 << k for k in range(10, 25, 2))},
}
TIME_PER_FN = {"tiny": 0.02, "quick": 0.12, "full": 0.4}  # seconds of samples per implementation and size
DEFAULT_LOSSES = ("cross_entropy", "huber_loss")
CORE, FL_TORCH, EAGER = "fastloss core", "fastloss.torch", "torch eager"
COMPILE, FL_COMPILE, JAX = "torch.compile", "fl.torch compiled", "JAX jit"
_AGAINST = {"torch": EAGER, "compile": COMPILE, "jax": JAX}


def _torch_step(loss: Callable, case: Case) -> Callable[[], Any]:
    """``loss(x, t).backward()`` on a leaf that requires grad, then ``x.grad = None`` (what
    ``optimizer.zero_grad()`` does), so every call allocates its gradient as a training step does."""
    x = to_torch(case.x).detach().requires_grad_(True)
    t = to_torch(case.target)

    def step():
        loss(x, t).backward()
        x.grad = None

    step()  # an unsupported dtype or shape fails here (-> Skip), not in the timing loop
    return step


def _core(case: Case, compiled: dict) -> Callable[[], Any]:
    fn = getattr(fastloss, case.spec.name + "_with_grad")
    return lambda: fn(case.x, case.target, out=case.grad_out)


def _fastloss_torch(case: Case, compiled: dict) -> Callable[[], Any]:
    return _torch_step(_fastloss_loss(case), case)


def _eager(case: Case, compiled: dict) -> Callable[[], Any]:
    return _torch_step(torch_loss(case), case)


def _fastloss_loss(case: Case) -> Callable:
    try:
        import fastloss.torch as flt
    except ImportError as exc:
        raise Skip(f"fastloss.torch unavailable: {exc}") from None
    loss = getattr(flt, case.spec.name, None)
    if loss is None:
        raise Skip(f"fastloss.torch has no {case.spec.name}")
    return loss


def _compiled(case: Case, compiled: dict) -> Callable[[], Any]:
    return _compiled_step(case, compiled, COMPILE, torch_loss)


def _fastloss_compiled(case: Case, compiled: dict) -> Callable[[], Any]:
    return _compiled_step(case, compiled, FL_COMPILE, _fastloss_loss)


def _compiled_step(case: Case, compiled: dict, impl: str, loss_of: Callable[[Case], Callable]) -> Callable[[], Any]:
    """``torch.compile`` with its defaults, as users call it: compiled per loss in the first
    (untimed) call, recompiled once with dynamic shapes at the second size, then reused at every
    size as a training loop with varying batch sizes would (the fastloss drop-in recompiles once
    more where a size crosses its switch to PyTorch's op, also in an untimed first call).

    Not ``dynamic=True``: that also makes the competitor's options symbolic (they come from a dict
    here, not from literals as in user code), and inductor then compiles another cross-entropy
    (a runtime ignore_index: 300 against 530 us at (256, 100)) than ``F.cross_entropy(x, t)``'s."""
    import torch

    key = (impl, case.spec.name)
    if key not in compiled:
        compiled[key] = torch.compile(loss_of(case))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return _torch_step(compiled[key], case)
        except Skip:
            raise
        except Exception as exc:  # noqa: BLE001 - any compiler failure means "cannot compare here"
            raise Skip(f"torch.compile: {str(exc).splitlines()[0][:120]}") from None


def _jax(case: Case, compiled: dict) -> Callable[[], Any]:
    return jax_fn(case)


BUILDERS = {CORE: _core, FL_TORCH: _fastloss_torch, EAGER: _eager, COMPILE: _compiled, FL_COMPILE: _fastloss_compiled,
            JAX: _jax}


def _build(impl: str, case: Case, compiled: dict):
    try:
        return BUILDERS[impl](case, compiled)
    except Skip:
        raise
    except ImportError as exc:
        raise Skip(str(exc)) from None
    except (RuntimeError, TypeError, ValueError, NotImplementedError) as exc:
        raise Skip(f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}") from None


def run(losses: list[str], preset: str, against: list[str], threads: int, dtype: str = "float32",
        clock: str = "wall") -> dict:
    """Time every implementation at every size of the preset's sweep; Timing objects per point."""
    if clock == "cpu" and threads != 1:
        raise ValueError(f"clock='cpu' (process CPU time) measures 1-thread runs only, got threads={threads}")
    set_threads(threads)
    impls = [CORE, FL_TORCH] + [_AGAINST[a] for a in against if a in _AGAINST]
    if COMPILE in impls:  # compiled on both sides: fastloss.torch under torch.compile beside it
        impls.insert(impls.index(COMPILE) + 1, FL_COMPILE)
    specs = [s for s in fastloss.LOSSES if s.name in losses]
    bar = ProgressBar(sum(len(SWEEPS[preset]["rowwise" if s.rowwise else "pointwise"]) for s in specs))
    compiled: dict = {}
    sweeps = []
    for spec in specs:
        sweep: dict[str, Any] = {"loss": spec.name, "rowwise": spec.rowwise, "dtype": dtype, "impls": impls,
                                 "points": [], "notes": {}}
        for size in SWEEPS[preset]["rowwise" if spec.rowwise else "pointwise"]:
            shape = tuple(size) if spec.rowwise else (size,)
            case = make_case(spec, "fused", dtype, shape)
            fns = {}
            for impl in impls:
                try:
                    fns[impl] = _build(impl, case, compiled)
                except Skip as why:
                    sweep["notes"].setdefault(impl, str(why))
            timings = measure_calls(fns, time_per_fn=TIME_PER_FN[preset], clock=clock) if fns else {}
            sweep["points"].append({"shape": shape, "elements": math.prod(shape), "timings": timings})
            bar.step(f"{spec.name} {shape}")
        sweeps.append(sweep)
    libraries = ("numpy", "torch") + (("jax",) if "jax" in against else ())
    return {"threads": threads, "dtype": dtype, "preset": preset, "clock": clock,
            "machine": machine_info(libraries), "sweeps": sweeps}


def _us(t: Timing | None) -> str:
    if t is None:
        return "-"
    m, s = 1e6 * t.median, 1e6 * t.spread * t.median
    return f"{m:.1f} ±{s:.1f}" if m < 100 else f"{m:.0f} ±{s:.0f}"


def _size_label(point: dict, rowwise: bool) -> str:
    return f"({point['shape'][0]}, {point['shape'][1]})" if rowwise else f"{point['elements']:,}"


def report(result: dict, command: str) -> str:
    """The tables (microseconds per call), ratios against PyTorch eager, and the crossovers."""
    m = result["machine"]
    lines = [
        (f"fastloss per-call time of loss+gradient (forward+backward), {result['dtype']}, "
         f"{result['threads']} thread(s): median microseconds per call ±half the interquartile range"),
        (f"machine: {m['cpu_model']} ({m['cores']} cores), isa={m['cpu_isa']}, fastloss {m['fastloss']}, "
         f"torch {m['versions'].get('torch')}, {m['date_utc']} UTC"),
        f"command: {command}",
        ("clock: " + {"wall": "wall time (time.perf_counter)",
                      "cpu": "process CPU time (time.process_time): immune to preemption by other processes"}
         [result.get("clock", "wall")]),
        ("columns: core = fl.<loss>_with_grad(x, t, out=buf) on NumPy arrays; fastloss.torch, torch eager, "
         "torch.compile (its defaults: dynamic shapes from the second size on) = loss(x, t).backward() on a "
         "leaf tensor that requires grad, then x.grad = None; fl.torch compiled = fastloss.torch's loss "
         "under torch.compile, "
         "compiled/compiled its time over torch.compile's"),
    ]
    for sweep in result["sweeps"]:
        rowwise = sweep["rowwise"]
        present = [i for i in sweep["impls"] if any(i in p["timings"] for p in sweep["points"])]
        columns = [("size", "shape (N, C)" if rowwise else "elements")] + [(i, i) for i in present]
        ratios = [(FL_TORCH, EAGER, "fl.torch/eager"), (CORE, EAGER, "core/eager"),
                  (FL_TORCH, COMPILE, "fl.torch/compile"), (FL_COMPILE, COMPILE, "compiled/compiled")]
        ratios = [r for r in ratios if r[0] in present and r[1] in present]
        columns += [(label, label) for _, _, label in ratios]
        rows = []
        for p in sweep["points"]:
            t = p["timings"]
            row = {"size": _size_label(p, rowwise), **{i: _us(t.get(i)) for i in present}}
            for a, b, label in ratios:
                row[label] = f"{t[a].median / t[b].median:.2f}" if a in t and b in t else "-"
            rows.append(row)
        title = f"{sweep['loss']} ({'row-wise' if rowwise else 'point-wise'})"
        lines += ["", title, format_table(rows, columns)]
        sizes = [_size_label(p, rowwise) for p in sweep["points"]]

        def medians(impl, points=sweep["points"]):
            return [p["timings"][impl].median if impl in p["timings"] else None for p in points]

        for a, b, _ in ratios:
            lines.append(crossover(sizes, medians(a), medians(b), a, b))
        lines += [f"note: {impl} not run: {why}" for impl, why in sweep["notes"].items()]
    lines.append("ratios < 1: the fastloss variant takes less time than the PyTorch one.")
    return "\n".join(lines)


def to_json(result: dict) -> dict:
    def point(p):
        return {**p, "timings": {i: dataclasses.asdict(t) for i, t in p["timings"].items()}}

    out = {k: v for k, v in result.items() if k != "sweeps"}
    out["sweeps"] = [{**s, "points": [point(p) for p in s["points"]]} for s in result["sweeps"]]
    return out


def main(args) -> int:
    """The overhead sweep with the CLI's arguments (``--quick``/``--tiny`` choose the sweep)."""
    clock = getattr(args, "clock", "wall")
    if clock == "cpu" and args.threads != 1:
        print(f"error: --clock cpu measures 1-thread runs only, got --threads {args.threads}",
              file=sys.stderr)
        return 2
    preset = {"default": "full"}.get(args.size, args.size)
    losses = args.loss or list(DEFAULT_LOSSES)
    dtype = (args.dtype or ["float32"])[0]
    result = run(losses, preset, args.against, args.threads, dtype, clock)
    program = "-m fastloss" if sys.argv[0].endswith("__main__.py") else os.path.relpath(sys.argv[0])
    text = report(result, " ".join(["python", program] + [shlex.quote(a) for a in sys.argv[1:]]))
    print(text)
    if getattr(args, "txt", None):
        with open(args.txt, "w") as f:
            f.write(text + "\n")
    if args.plot:
        print(plot_overhead(result, args.plot))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(to_json(result), f, indent=1)
    return 0
