"""examples/cpp_extension builds against fastloss.get_include() and computes what fastloss does.

The extension is compiled at test time with the C++ compiler Python's build configuration names
(or c++/g++/clang++ on PATH). Its two halves: a scalar math header used directly, checked against
the NumPy reference, and the dispatched CPU kernel called through the ``fastloss._C._kernel_table``
capsule, which needs the compiled fastloss._C.
"""

from __future__ import annotations

import importlib.util
import shlex
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import fastloss
import numpy as np
import pybind11
import pytest
from fastloss import _backends, _reference

SOURCE = Path(__file__).resolve().parents[1] / "examples" / "cpp_extension" / "fastloss_example.cpp"


def _compiler() -> list[str] | None:
    configured = shlex.split(sysconfig.get_config_var("CXX") or "")
    if configured and shutil.which(configured[0]):
        return configured
    for name in ("c++", "g++", "clang++"):
        if shutil.which(name):
            return [name]
    return None


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    compiler = _compiler()
    if compiler is None:
        pytest.skip("no C++ compiler found")
    out = (
        tmp_path_factory.mktemp("cpp_extension") / f"fastloss_example{sysconfig.get_config_var('EXT_SUFFIX')}"
    )
    command = [
        *compiler,
        "-O2",
        "-shared",
        "-fPIC",
        "-std=c++17",
        "-Wall",
        "-Wextra",
        "-Werror",
        f"-I{pybind11.get_include()}",
        f"-I{sysconfig.get_paths()['include']}",
        f"-I{fastloss.get_include()}",
        str(SOURCE),
        "-o",
        str(out),
    ]
    if sys.platform == "darwin":
        command += ["-undefined", "dynamic_lookup"]
    subprocess.run(command, check=True, capture_output=True, text=True)
    spec = importlib.util.spec_from_file_location("fastloss_example", out)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_get_include_holds_the_c_abi_and_the_math_headers():
    include = Path(fastloss.get_include())
    for header in ["fastloss/kernels.h", "fastloss/params.h", "fastloss/math_ops.h",
                   "fastloss_generated/loss_table.h"] + [f"fastloss/losses/{s.name}.h" for s in fastloss.LOSSES]:
        assert (include / header).is_file(), header


def test_scalar_math_header_matches_the_numpy_reference(example):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=1000) * 3, rng.normal(size=1000)
    loss, grad = example.huber_loss(x, y, 0.7)
    ref_loss, ref_grad = _reference.huber_loss(x, y, delta=0.7)
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-14, atol=0)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-14, atol=0)


@pytest.mark.skipif(_backends._C is None, reason="the kernel table lives in the compiled fastloss._C")
def test_dispatched_kernel_through_the_capsule_matches_the_numpy_reference(example):
    rng = np.random.default_rng(1)
    x = (rng.normal(size=(257, 33)) * 4).astype(np.float32)
    t = rng.integers(0, 33, size=257)
    loss, grad = example.cross_entropy(x, t, 0.1)
    ref_loss, ref_grad = _reference.cross_entropy(
        x.astype(np.float64), t, weight=None, ignore_index=-100, label_smoothing=0.1, z_loss=0.0, softcap=None
    )
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grad, ref_grad / len(t), rtol=1e-5, atol=1e-7)
    assert example.isa() == _backends._C.isa()


@pytest.mark.skipif(_backends._C is None, reason="the kernel table lives in the compiled fastloss._C")
def test_kernel_errors_come_back_as_exceptions(example):
    with pytest.raises(ValueError):
        example.cross_entropy(np.zeros((2, 3), np.float32), np.array([0, 7]), 0.0)
