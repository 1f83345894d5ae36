"""Keep other libraries' warnings and log lines out of the benchmark's output: it is a report, and
a framework's notice (PyTorch's "No CUDA runtime is found" when torch.compile loads its C++
toolchain, JAX's platform messages) is not about the timings."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import logging
import warnings

_LOGGERS = ("torch", "jax", "absl", "xla")


@contextlib.contextmanager
def third_parties_quiet():
    """Inside the block: warnings raised outside fastloss are ignored, and the frameworks' loggers
    print errors only. The frameworks are imported first, so their own logging set-up (which may
    set levels at import) cannot undo this."""
    for name in ("torch", "jax"):
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name)
    loggers = [logging.getLogger(name) for name in _LOGGERS]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"(?!fastloss)")
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels):
                logger.setLevel(level)
