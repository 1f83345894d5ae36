"""Cases of the entry points besides the core loss forms, each with its own independent reference:

- ``linear_cross_entropy[_with_grad]`` (NumPy LM head): native against the NumPy backend;
- ``torch.<f>``: the fastloss.torch drop-in against ``torch.nn.functional.<f>`` itself (value and
  input gradient), with the small-input shortcut to PyTorch turned off so fastloss's path runs;
- ``torch.linear_cross_entropy``: against ``F.cross_entropy(F.linear(...))``;
- ``jax.<loss>``: the JAX wrapper's value and ``jax.grad`` against the NumPy backend's loss and
  ``*_with_grad``.

Inputs carry the special values of ``cases._special_values`` (inf, nan, the dtype's maximum and
minimum normal, subnormals), options come from their table examples and the ends of their ranges,
and a few calls hold a common mistake (float class targets, an out-of-range target, a shape
mismatch, a wrong reduction string): both sides must then raise the same exception type.
"""

from __future__ import annotations

import numpy as np

from . import targets
from .cases import EXTREME_POSITIVE, Case, _special_values

SAME, SAME_ERROR, FINDING = "same answer", "same error", "FINDING"
TOLERANCE = {"float64": 1e-9, "float32": 2e-4}


def build_adapter_case(seed: int, ep: targets.EntryPoint) -> Case:
    rng = targets.case_rng(seed, ep.name)
    dtype = "float64" if rng.random() < 0.4 else "float32"
    if ep.kind == "jax":
        dtype = "float32"  # JAX without x64 mode computes float64 arrays as float32
    case_seed = int(rng.integers(0, 2**63))
    case = Case(seed, ep.name, ep, dtype, None, 1, build=lambda: ((), {}), kind=ep.kind)
    builder = {"lm_head": _lm_head_call, "torch": _torch_call, "torch_lm_head": _lm_head_call,
               "jax": _jax_call}[ep.kind]

    def build():
        notes: list[str] = []
        call = builder(np.random.default_rng(case_seed), ep, np.dtype(dtype).type, notes)
        case.notes = notes
        return call

    case.build = build
    build()
    return case


# ---- drawing ---------------------------------------------------------------------------------


def _values(r, shape, dtype, notes, name) -> np.ndarray:
    x = r.standard_normal(shape) * float(r.choice([1.0, 3.0]))
    if r.random() < 0.35:
        _special_values(r, x, dtype, notes, name)
    return x.astype(dtype)


def _mistake(r, notes) -> str | None:
    m = None
    if r.random() < 0.08:
        m = str(r.choice(["float class target", "target out of range", "shape mismatch", "bad reduction"]))
        notes.append(m)
    return m


def _class_targets(r, n, C, mistake, notes, ignore=-100):
    t = r.integers(0, C, n)
    if n and r.random() < 0.15:
        t[0] = ignore
        notes.append("an ignored target")
    if mistake == "target out of range" and n:
        t[-1] = int(r.choice([C, -5, 2**40]))
    if mistake == "float class target":
        return t.astype(np.float32)
    return t


def _lm_head_call(r, ep, dtype, notes):
    N, H, V = int(r.choice([0, 1, 3, 8, 17])), int(r.choice([1, 4, 8])), int(r.choice([1, 2, 5, 37]))
    mistake = _mistake(r, notes)
    x = _values(r, (N, H), dtype, notes, "input")
    w = _values(r, (V, H), dtype, notes, "weight") / 2
    kw: dict = {}
    if r.random() < 0.5:
        kw["bias"] = _values(r, (V,), dtype, notes, "bias")
    if r.random() < 0.2:
        kw["class_weight"] = r.uniform(0.1, 2.0, V)
    if r.random() < 0.25:
        kw["label_smoothing"] = float(r.choice([0.1, 0.5, 1.0]))
    if r.random() < 0.2:
        kw["z_loss"] = float(r.choice([1e-3, 1.0, 1e30]))
    if r.random() < 0.2:
        kw["softcap"] = float(r.choice([0.5, 30.0, 1e-30, 3e38]))
    if r.random() < 0.3:
        kw["chunk_size"] = int(r.choice([1, 2, 7]))
    kw["reduction"] = "avg" if mistake == "bad reduction" else str(r.choice(["mean", "sum", "none"]))
    t = _class_targets(r, N if mistake != "shape mismatch" else N + 1, V, mistake, notes)
    if ep.form == "_with_grad" and r.random() < 0.3:
        kw["grad_output"] = float(r.choice([0.0, -2.0, 1e30, 1e-310]))
    notes.append(", ".join(f"{k}={v!r:.30}" for k, v in kw.items()))
    return (x, w, t), kw


def _torch_call(r, ep, dtype, notes):
    f = ep.loss
    mistake = _mistake(r, notes)
    kw: dict = {}
    red = "avg" if mistake == "bad reduction" else str(r.choice(["mean", "sum", "none"]))
    if f in ("cross_entropy", "multi_margin_loss"):
        N, C = int(r.choice([1, 3, 8])), int(r.choice([1, 2, 5, 17]))
        shape = (N, C) if f == "multi_margin_loss" or r.random() < 0.7 else (N, C, 3)
        x = _values(r, shape, dtype, notes, "input")
        n_t = (N,) + shape[2:]
        if mistake == "shape mismatch":
            n_t = (N + 1,) + shape[2:]
        t = _class_targets(r, int(np.prod(n_t)), C, mistake, notes, -100 if f == "cross_entropy" else 0)
        t = t.reshape(n_t)
        if f == "cross_entropy" and mistake is None and r.random() < 0.2:
            p = r.random(shape)
            t = (p / p.sum(axis=1, keepdims=True)).astype(dtype)
            notes.append("probability target")
        if r.random() < 0.3:
            kw["weight"] = r.uniform(0.1, 2.0, C).astype(dtype)
        if f == "cross_entropy" and r.random() < 0.3:
            kw["label_smoothing"] = float(r.choice([0.1, 0.7]))
        if f == "multi_margin_loss":
            kw["p"] = int(r.choice([1, 2]))
            kw["margin"] = float(r.choice([1.0, 0.3, -2.0, 1e30]))
        args = (x, t)
    elif f == "margin_ranking_loss":
        n = int(r.choice([1, 4, 9]))
        a, b = _values(r, (n,), dtype, notes, "input1"), _values(r, (n,), dtype, notes, "input2")
        y = r.choice([-1.0, 1.0], n).astype(dtype)
        if mistake == "shape mismatch":
            y = y[:-1] if n > 1 else np.ones(3, dtype)
        kw["margin"] = float(r.choice([0.0, 0.5, -1.0, 1e30]))
        args = (a, b, y)
    else:
        shape = tuple(int(v) for v in r.choice([1, 4, 7], size=int(r.choice([1, 2]))))
        x = _values(r, shape, dtype, notes, "input")
        if f in ("binary_cross_entropy_with_logits",):
            t = r.choice([0.0, 1.0, 0.3], shape).astype(dtype)
            if r.random() < 0.3:
                kw["pos_weight"] = r.uniform(0.1, 3.0, shape[-1:]).astype(dtype)
            if r.random() < 0.3:
                kw["weight"] = r.uniform(0.1, 3.0, shape).astype(dtype)
        elif f == "kl_div":
            kw["log_target"] = bool(r.random() < 0.4)
            t = (r.standard_normal(shape) if kw["log_target"] else r.random(shape)).astype(dtype)
            x = -np.abs(x)  # log-probabilities
            if r.random() < 0.4:
                red = "batchmean"
        else:
            t = _values(r, shape, dtype, notes, "target")
        if f == "huber_loss" and r.random() < 0.6:
            kw["delta"] = float(r.choice((0.5, 2.0) + EXTREME_POSITIVE[4:9]))
        if f == "smooth_l1_loss" and r.random() < 0.6:
            kw["beta"] = float(r.choice((0.0, 0.5, 2.0) + EXTREME_POSITIVE[4:9]))
        if mistake == "shape mismatch":
            t = np.ones(shape + (2,), dtype)
        args = (x, t)
    kw["reduction"] = red
    notes.append(", ".join(f"{k}={v!r:.30}" for k, v in kw.items() if not isinstance(v, np.ndarray)))
    return args, kw


def _jax_call(r, ep, dtype, notes):
    import fastloss

    spec = next(s for s in fastloss.LOSSES if s.name == ep.loss)
    rowwise = spec.rowwise
    shape = (int(r.choice([1, 3, 8])), int(r.choice([2, 5, 9])))
    x = _values(r, shape, dtype, notes, "input")
    if spec.logit_targets:
        t = _values(r, shape, dtype, notes, "target")
    elif rowwise:
        t = r.integers(0, shape[1], shape[0])
    elif spec.target_values is not None:
        t = r.choice(np.array(spec.target_values, dtype), shape)
    elif spec.target_range is not None:
        t = r.uniform(0.0, 1.0, shape).astype(dtype)
    else:
        t = _values(r, shape, dtype, notes, "target")
    kw: dict = {}
    for o in spec.options:
        ex = o.spec.example
        if ex is not None and ex != "per-class" and r.random() < 0.4:
            kw[o.name] = ex
    kw["reduction"] = str(r.choice(["mean", "sum", "none"]))
    notes.append(", ".join(f"{k}={v!r:.30}" for k, v in kw.items()))
    return (x, t), kw


# ---- comparing -------------------------------------------------------------------------------


def _agree(got, want, dtype: str, what: str, scale: float = 1.0) -> str | None:
    """Within the dtype's tolerance of max(scale, max |want|): scale is the size of the terms a
    value sums (an LM head's input gradient sums (p - y) W over the classes: its rounding is
    relative to max |W|, not to the gradient, which may cancel to 0)."""
    g = np.asarray(got, np.float64)
    w = np.asarray(want, np.float64)
    if g.shape != w.shape:
        return f"{what}: shape {g.shape} vs reference {w.shape}"
    if not np.array_equal(np.isnan(g), np.isnan(w)):
        return f"{what}: nan pattern differs: {g.reshape(-1)[:6]} vs reference {w.reshape(-1)[:6]}"
    inf = np.isinf(g) | np.isinf(w)
    if not np.array_equal(g[inf], w[inf]):
        return f"{what}: inf differs: {g[inf][:6]} vs reference {w[inf][:6]}"
    fin = np.isfinite(w) & np.isfinite(g)
    if fin.any():
        scale = max(1.0, scale, float(np.max(np.abs(w[fin]))))
        err = float(np.max(np.abs(g[fin] - w[fin]))) / scale
        if err > TOLERANCE[dtype]:
            return f"{what}: error {err:.3g} > {TOLERANCE[dtype]}"
    return None


def _errors(gexc, wexc, names=("input", "target", "reduction", "weight", "class_weight", "bias")):
    if gexc is None and wexc is None:
        return None
    if gexc is None or wexc is None:
        side, exc = ("reference", wexc) if gexc is None else ("fastloss", gexc)
        return FINDING, f"only the {side} raised {type(exc).__name__}: {exc}"
    if not isinstance(gexc, type(wexc)):  # torch drop-ins: an instance of PyTorch's type (torch/_errors.py)
        return FINDING, f"different errors: fastloss {type(gexc).__name__}: {gexc} / reference {type(wexc).__name__}: {wexc}"
    return SAME_ERROR, f"{type(gexc).__name__}: {gexc}"


def _call(fn, *args, **kw):
    try:
        with np.errstate(all="ignore"):
            return fn(*args, **kw), None
    except Exception as exc:  # noqa: BLE001 - compared, not handled
        return None, exc


def adapter_outcome(case: Case) -> tuple[str, str]:
    return {"lm_head": _lm_head_outcome, "torch": _torch_outcome, "torch_lm_head": _torch_lm_head_outcome,
            "jax": _jax_outcome}[case.kind](case)


def _noise_free(kw) -> bool:
    """Options that float32 math cannot hold make inf/nan patterns differ by design (compare.py)."""
    return not any(isinstance(v, float) and v != 0 and (abs(v) > 3.4e38 or abs(v) < 1.2e-38) for v in kw.values())


def _largest(args, kw) -> float:
    vals = [np.abs(np.asarray(a, np.float64)) for a in list(args) + list(kw.values())
            if isinstance(a, np.ndarray) and a.dtype.kind == "f"]
    vals += [np.abs(np.float64(v)) for v in kw.values() if isinstance(v, float)]
    fin = [v[np.isfinite(v)] for v in vals]
    return max([float(v.max()) for v in fin if v.size] + [0.0])


def _lm_head_outcome(case: Case) -> tuple[str, str]:
    import fastloss

    fn = getattr(fastloss, case.func)
    results = []
    for backend in ("native", "numpy"):
        args, kw = case.build()
        with fastloss.use_backend(backend):
            results.append(_call(fn, *args, **kw))
    (got, gexc), (want, wexc) = results
    err = _errors(gexc, wexc)
    if err:
        return err
    got = got if isinstance(got, tuple) else (got,)
    want = want if isinstance(want, tuple) else (want,)
    args, kw = case.build()
    # logits beyond float32's reach (an input, weight or bias above 1e30) or an option float32 cannot
    # hold: where either side is inf or nan the two float32 computations may differ (compare.py)
    dtype = case.dtype if _noise_free(kw) and _largest(args, kw) <= 1e30 else "float64"
    problems = []
    # the gradients' unit is |grad_output| (the tolerance floor of 1 scales with it)
    unit = abs(float(kw.get("grad_output", 1.0))) or 1.0
    scales = [sc * (unit if i else 1.0) for i, sc in enumerate(_term_scales(case, args))]
    for what, g, w, scale in zip(("loss", "grad_input", "grad_weight", "grad_bias"), got, want, scales):
        if (g is None) != (w is None):
            problems.append(f"{what}: None on one side")
        elif g is not None:
            g, w = np.asarray(g, np.float64), np.asarray(w, np.float64)
            if dtype == "float64" and case.dtype != "float64":  # inf/nan either side, as compare.py
                either = ~np.isfinite(g) | ~np.isfinite(w)
                g, w = np.where(either, 0, g), np.where(either, 0, w)
            p = _agree(g, w, case.dtype, what, scale)
            if p:
                problems.append(p)
    return (FINDING, "; ".join(problems)) if problems else (SAME, "")


def _torch_tensors(args, kw, grad: bool):
    import torch

    def conv(v, requires_grad=False):
        if isinstance(v, np.ndarray):
            t = torch.from_numpy(v.copy())
            return t.requires_grad_() if requires_grad and t.is_floating_point() else t
        return v

    targs = tuple(conv(a, grad and i == 0 or (grad and i == 1 and len(args) == 3)) for i, a in enumerate(args))
    return targs, {k: conv(v) for k, v in kw.items()}


def _torch_run(fn, args, kw, g_seed: int):
    """(value, input gradients) of fn, or the exception it raised."""
    targs, tkw = _torch_tensors(args, kw, grad=True)
    return _forward_backward(fn, targs, tkw, g_seed)


def _forward_backward(fn, targs, tkw, g_seed: int):
    """fn's value and the gradients of its differentiated tensor arguments for a random cotangent."""
    import torch

    try:
        out = fn(*targs, **tkw)
        g = torch.from_numpy(np.random.default_rng(g_seed).standard_normal(tuple(out.shape))).to(out.dtype)
        out.backward(g)
    except Exception as exc:  # noqa: BLE001 - compared, not handled
        return None, exc
    grads = tuple(a.grad.numpy().copy() for a in targs if isinstance(a, torch.Tensor) and a.requires_grad)
    return (out.detach().numpy().copy(), grads), None


def _torch_outcome(case: Case) -> tuple[str, str]:
    import fastloss.torch as ft
    import torch
    import torch.nn.functional as F
    from fastloss.torch import _ops

    args, kw = case.build()
    below = _ops.TORCH_FASTER_BELOW
    _ops.TORCH_FASTER_BELOW = 0  # every size runs fastloss's own path
    try:
        got, gexc = _torch_run(getattr(ft, case.spec.loss), args, kw, case.seed)
    finally:
        _ops.TORCH_FASTER_BELOW = below
    with torch.no_grad():
        pass
    want, wexc = _torch_run(getattr(F, case.spec.loss), args, kw, case.seed)
    err = _errors(gexc, wexc)
    if err:
        return err
    return _compare_torch(case, got, want)


def _term_scales(case, args) -> list[float]:
    """Per output (loss, then gradients): the magnitude of the terms it sums (see _agree)."""
    if case.kind not in ("lm_head", "torch_lm_head"):
        return [1.0] * 4

    def big(a):
        a = np.abs(np.asarray(a, np.float64))
        a = a[np.isfinite(a)]
        return float(a.max()) if a.size else 1.0

    x, w = args[0], args[1]
    return [1.0, big(w), big(x), 1.0]


def _compare_torch(case, got, want) -> tuple[str, str]:
    problems = []
    args, _ = case.build()
    scales = _term_scales(case, args)
    for what, g, w in [("loss", got[0], want[0])] + [(f"grad[{i}]", a, b) for i, (a, b) in
                                                     enumerate(zip(got[1], want[1]))]:
        if what.startswith("grad") and case.spec.loss in ("l1_loss", "margin_ranking_loss"):
            # a NaN element: fastloss's gradient is NaN (NaN propagates; sign(nan) = nan as NumPy's),
            # PyTorch's is 0 (its sign(nan) = 0, clamp_min's backward masks nan); the loss is NaN on both
            nan_e = np.isnan(np.asarray(args[0], np.float64) - np.asarray(args[1], np.float64))
            if len(args) == 3:
                nan_e = nan_e | np.isnan(np.asarray(args[2], np.float64))
            if nan_e.shape == np.shape(g):
                g, w = np.where(nan_e, 0.0, g), np.where(nan_e, 0.0, w)
        p = _agree(g, w, case.dtype, what, scales[0 if what == "loss" else 1 + int(what[5:-1])])
        if p:
            problems.append(p)
    return (FINDING, "; ".join(problems)) if problems else (SAME, "")


def _torch_lm_head_outcome(case: Case) -> tuple[str, str]:
    import fastloss.torch as ft
    import torch.nn.functional as F

    args, kw = case.build()
    x, w, t = args
    opts = {"ignore_index": -100, "label_smoothing": kw.get("label_smoothing", 0.0), "reduction": kw["reduction"]}
    if "class_weight" in kw:
        opts["weight"] = kw["class_weight"].astype(w.dtype)
    if kw.get("softcap") is not None or kw.get("z_loss"):  # PyTorch has neither: fastloss's own options
        return SAME, "options without a PyTorch counterpart"

    def ours(x_, w_, t_, b_=None, **o):
        return ft.linear_cross_entropy(x_, w_, t_, linear_bias=b_, **o)

    def theirs(x_, w_, t_, b_=None, **o):
        return F.cross_entropy(F.linear(x_, w_, b_), t_, **o)

    call_args = (x, w, t) + ((kw["bias"],) if "bias" in kw else ())
    got, gexc = _torch_run_all(ours, call_args, opts, case.seed)
    want, wexc = _torch_run_all(theirs, call_args, opts, case.seed)
    err = _errors(gexc, wexc)
    if err:
        return err
    return _compare_torch(case, got, want)


def _torch_run_all(fn, args, kw, g_seed):
    """As _torch_run, with every floating argument (input, weight, bias) differentiated."""
    import torch

    targs = tuple(torch.from_numpy(a.copy()).requires_grad_() if a.dtype.kind == "f" else torch.from_numpy(a.copy())
                  for a in args)
    tkw = {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
    return _forward_backward(fn, targs, tkw, g_seed)


def _jax_outcome(case: Case) -> tuple[str, str]:
    import fastloss
    import fastloss.jax as fj
    import jax
    import jax.numpy as jnp

    (x, t), kw = case.build()
    name = case.spec.loss
    with fastloss.use_backend("numpy"):
        want, wexc = _call(getattr(fastloss, name + "_with_grad"), x, t, **kw)

    def total(a):
        v = getattr(fj, name)(a, jnp.asarray(t), **kw)
        return jnp.sum(v), v

    try:
        (_, value), grad = jax.value_and_grad(total, has_aux=True)(jnp.asarray(x))
        got, gexc = (np.asarray(value), np.asarray(grad)), None
    except Exception as exc:  # noqa: BLE001 - compared, not handled
        got, gexc = None, exc
    err = _errors(gexc, wexc)
    if err:
        return err
    loss, grad = want
    if kw["reduction"] == "none":  # jax.grad of the sum: the gradient for grad_output = ones
        with fastloss.use_backend("numpy"):
            grad = getattr(fastloss, name + "_grad")(x, t, grad_output=np.ones(np.shape(loss)), **kw)
    problems = [p for p in (_agree(got[0], loss, case.dtype, "loss"), _agree(got[1], grad, case.dtype, "grad"))
                if p]
    return (FINDING, "; ".join(problems)) if problems else (SAME, "")
