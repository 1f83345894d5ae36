"""Shared fixtures: every numerical test runs on every backend, and on every ISA of the native one.

Request the ``backend`` fixture and the test body runs inside ``fastloss.use_backend(...)`` with
the ISA selected, so one suite holds the NumPy fallback and every compiled kernel to one standard.
"""

from __future__ import annotations

import os
import sys
import zlib

import numpy as np
import pytest
from fastloss import _backends
from fastloss._check import implementations, running_on
from hypothesis import settings

# The 2-core CI machine runs the whole suite in a few minutes; set HYPOTHESIS_PROFILE=thorough
# for a longer local search.
settings.register_profile("ci", max_examples=100, deadline=None, derandomize=True, print_blob=True)
settings.register_profile("thorough", max_examples=500, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_configure(config):
    """FASTLOSS_REQUIRE_NATIVE=1 (set by .ci/run): a build whose extension does not import must
    fail the run, not quietly test the NumPy fallback alone."""
    if os.environ.get("FASTLOSS_REQUIRE_NATIVE") == "1" and "native" not in _backends.available():
        raise pytest.UsageError(f"FASTLOSS_REQUIRE_NATIVE=1 but fastloss._C did not import: {_backends._NATIVE_ERROR}")


@pytest.fixture(autouse=True)
def _fastloss_torch_kernels_at_every_size(request, monkeypatch):
    """fastloss.torch runs PyTorch's own op below a size crossover (where PyTorch is faster); the
    suite holds fastloss's kernels to PyTorch at every size, so the crossover is off except in tests
    marked ``torch_crossover``, which test it."""
    ops = sys.modules.get("fastloss.torch._ops")
    if ops is not None and "torch_crossover" not in request.keywords:
        for threshold in ("TORCH_FASTER_BELOW", "COMPILED_TORCH_FASTER_BELOW", "COMPILED_POINTWISE_TORCH_FASTER_BELOW"):
            monkeypatch.setattr(ops, threshold, 0)


@pytest.fixture(params=implementations(), ids=lambda p: p[0] if p[1] is None else f"{p[0]}-{p[1]}")
def backend(request):
    """The active (backend, isa) for the test, the ISA restored afterwards."""
    with running_on(*request.param):
        yield request.param


@pytest.fixture
def rng(request):
    """A generator seeded by the test id without its backend part: each test draws its own
    reproducible data, the same on every backend (so PyTorch references are computed once)."""
    key = request.node.nodeid
    callspec = getattr(request.node, "callspec", None)
    if callspec is not None and "backend" in callspec.params:
        name, isa = callspec.params["backend"]
        key = key.replace(name if isa is None else f"{name}-{isa}", "", 1)
    return np.random.default_rng(zlib.crc32(key.encode()))
