"""Benchmark machinery (the one place that times anything) and the quick ``python -m fastloss bench``.

The full suite in ``benchmarks/`` imports everything it measures with from here: ``measure``
(timing), ``measure_many`` (interleaved timing), ``bytes_moved`` (byte accounting),
``copy_fn``/``copy_yardstick``, ``peak_extra_memory``,
``make_case`` (registry-driven inputs) and the PyTorch / JAX / NumPy-reference competitors.
Methodology: benchmarks/README.md.

One job per module: ``accounting`` (bytes, forms, dtypes), ``timing``, ``yardstick`` (the copy),
``memory``, ``cases`` (inputs, the fastloss call), ``competitors`` with ``torch_competitor`` and
``jax_competitor`` (the one place per framework that maps a loss to its formula), ``machine``
(threads, description), ``progress``, ``table``, ``verdict`` (spreads, verdicts, crossovers),
``figures``, ``sizes`` (the bench's shapes), ``cli`` (arguments) with its modes ``quick`` (every
loss at the user's shapes) and ``overhead`` (the per-call sweep).
"""

from __future__ import annotations

from .accounting import DTYPES, FORMS, ITEMSIZE, bytes_moved
from .cases import Case, Skip, fastloss_fn, make_case
from .cli import add_arguments, main
from .competitors import numpy_reference_fn
from .jax_competitor import jax_fn
from .machine import machine_info, set_threads
from .memory import MEMORY_METHOD, peak_extra_memory
from .progress import ProgressBar
from .table import format_table
from .timing import Timing, measure, measure_calls, measure_many
from .torch_competitor import autograd_fn, to_torch, torch_compile_fn, torch_fn, torch_loss
from .yardstick import copy_fn, copy_yardstick

__all__ = [
    "DTYPES", "FORMS", "ITEMSIZE", "MEMORY_METHOD", "Case", "ProgressBar", "Skip", "Timing",
    "add_arguments", "autograd_fn", "bytes_moved", "copy_fn", "copy_yardstick", "fastloss_fn",
    "format_table", "jax_fn", "machine_info", "main", "make_case", "measure", "measure_calls", "measure_many",
    "numpy_reference_fn", "peak_extra_memory", "set_threads", "to_torch", "torch_compile_fn", "torch_fn",
    "torch_loss",
]
