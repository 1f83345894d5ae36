"""The backends behind the front end, and the choice between them.

A backend receives one canonical ``_problem.Problem`` (already validated, contiguous, reduction
folded into gradient scales) and returns ``(loss, grad)``:

- ``loss``: for ``reduction="none"`` the per-row / per-element loss array (float64 for float64
  inputs, float32 otherwise); for "mean"/"sum" the *unnormalised* sum of those losses as a Python
  float, summed in a fixed order so it does not depend on the thread count.
- ``grad``: the gradient, written into ``problem.grad_out`` (which may be ``problem.x`` itself).

CPU data: ``numpy`` (always there) runs ``_reference``; ``native`` (``cpu.py``) runs the compiled
``fastloss._C``. CUDA data: ``cuda.py`` runs ``fastloss._cuda`` on the caller's stream.
"""

from __future__ import annotations

import contextlib
import contextvars
import os

import numpy as np

from .cpu import _C, _NATIVE_ERROR, NativeBackend
from .numpy import NumpyBackend

# ---- selection and control ---------------------------------------------------------------------

_BACKENDS = {"numpy": NumpyBackend()}
if _C is not None:
    _BACKENDS["native"] = NativeBackend()

_override: contextvars.ContextVar[str | None] = contextvars.ContextVar("fastloss_backend", default=None)


def available() -> tuple[str, ...]:
    return tuple(_BACKENDS)


def _requested() -> str | None:
    name = _override.get() or os.environ.get("FASTLOSS_BACKEND") or None
    if name is not None and name not in ("numpy", "native"):
        raise ValueError(f"FASTLOSS_BACKEND must be 'numpy' or 'native', got {name!r}")
    return name


def current() -> NumpyBackend | NativeBackend:
    """The requested backend (an explicit request that cannot be met raises), else the best."""
    name = _requested()
    if name == "native" and _C is None:
        raise RuntimeError(f"backend 'native' was requested but fastloss._C failed to import: {_NATIVE_ERROR}")
    return _BACKENDS[name or ("native" if _C is not None else "numpy")]


@contextlib.contextmanager
def use_backend(name: str):
    """Run the calls inside the ``with`` block on backend ``name`` ('numpy' or 'native')."""
    if name not in ("numpy", "native"):
        raise ValueError(f"backend must be 'numpy' or 'native', got {name!r}")
    token = _override.set(name)
    try:
        current()
        yield
    finally:
        _override.reset(token)


def _default_threads() -> int:
    env = os.environ.get("OMP_NUM_THREADS", "")
    return int(env) if env.isdigit() and int(env) > 0 else (os.cpu_count() or 1)


_threads = _default_threads()


def set_num_threads(n: int) -> None:
    """Threads used by the CPU kernels (default: OMP_NUM_THREADS, else all cores)."""
    global _threads
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"num_threads must be a positive integer, got {n!r}")
    _threads = int(n)
    if _C is not None:
        _C.set_num_threads(_threads)


def get_num_threads() -> int:
    return _C.get_num_threads() if _C is not None else _threads


if _C is not None:
    _C.set_num_threads(_threads)
