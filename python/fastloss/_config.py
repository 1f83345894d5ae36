"""Introspection (DESIGN 1.4): which backend, ISA, threads and CUDA devices are in use."""

from __future__ import annotations

import os
import platform

from . import _backends

# The CPU instruction sets the native backend has kernels for (csrc/cpu/dispatch.cpp), best first.
CPU_ISAS = ("avx512_bf16", "avx512", "avx2", "neon", "scalar")
CUDA_HINT = ("this build is CPU only; for NVIDIA GPUs reinstall from source with the CUDA toolkit on "
             "PATH: FASTLOSS_CUDA=ON pip install .")


def check_cpu_isa_request() -> None:
    """Refuse a FASTLOSS_CPU_ISA this CPU cannot run, when fastloss is imported rather than at the
    first call: an unknown name lists the valid ones, a known one says what this CPU can run."""
    requested = os.environ.get("FASTLOSS_CPU_ISA") or None
    if requested is None:
        return
    if requested not in CPU_ISAS:
        raise ValueError(f"FASTLOSS_CPU_ISA={requested} is not an instruction set fastloss knows; "
                         f"valid values: {', '.join(CPU_ISAS)} (or unset it to pick the best)")
    native = _backends._C
    if native is not None and requested not in native.available_isas():
        raise ValueError(f"FASTLOSS_CPU_ISA={requested} is not available on this CPU; it can run "
                         f"{', '.join(native.available_isas())} (or unset it to pick the best)")


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
    info = config()
    for key, value in info.items():
        print(f"{key:>20}: {value}")
    if str(info["cuda"]).startswith("not built"):
        print(f"{'':>20}  {CUDA_HINT}")


check_cpu_isa_request()
