"""The machine: thread counts for every implementation, and a description of what produced the numbers."""

from __future__ import annotations

import contextlib
import datetime
import os
import platform

import fastloss

from .. import _config


def set_threads(n: int) -> None:
    """Pin fastloss and PyTorch to ``n`` threads (JAX/XLA cannot change its pool after start-up)."""
    fastloss.set_num_threads(n)
    with contextlib.suppress(ImportError):
        import torch

        torch.set_num_threads(n)


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


_LIBRARIES = ("numpy", "torch", "jax", "optax", "sklearn", "matplotlib")


def machine_info(libraries: tuple[str, ...] = _LIBRARIES) -> dict:
    """What produced the numbers: CPU model, ISA in use, cores, library versions, date (UTC)."""
    from .. import __version__

    config = _config.config()
    return {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
        "cpu_model": _cpu_model(),
        "machine": platform.machine(),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "fastloss": __version__,
        "backend": config["backend"],
        "cpu_isa": config["cpu_isa"],
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {name: _version(name) for name in libraries},
    }
