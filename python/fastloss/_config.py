"""Introspection (DESIGN 1.4): which backend, ISA, threads and CUDA devices are in use."""

from __future__ import annotations

import os
import platform

from . import _backends


def backend() -> str:
    """The active CPU backend: 'native' (compiled SIMD kernels) or 'numpy' (the fallback)."""
    return _backends.current().name


def config() -> dict:
    """Everything show_config prints, as a dict."""
    from . import __version__

    native = _backends._C
    info = {
        "version": __version__,
        "backend": backend(),
        "backends_available": list(_backends.available()),
        "native_import_error": None if native else str(_backends._NATIVE_ERROR),
        "cpu_isa": _isa(native),
        "cpu_isas_available": list(native.available_isas()) if native else [],
        "threads": _backends.get_num_threads(),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "FASTLOSS_BACKEND": os.environ.get("FASTLOSS_BACKEND"),
        "FASTLOSS_CPU_ISA": os.environ.get("FASTLOSS_CPU_ISA"),
    }
    try:
        from ._backends import cuda as _cuda_api

        info["cuda"] = _cuda_api.describe()
    except ImportError as exc:
        info["cuda"] = f"not built ({exc})"
    return info


def _isa(native) -> str | None:
    if native is None:
        return None
    try:
        return native.isa()
    except ValueError as exc:  # FASTLOSS_CPU_ISA names an ISA this CPU lacks
        return f"error: {exc}"


def show_config() -> None:
    """Print version, backend, CPU ISA in use and available, threads, CUDA build and devices."""
    for key, value in config().items():
        print(f"{key:>20}: {value}")
