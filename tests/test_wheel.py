"""The wheel a user installs: tools/build_wheel.sh builds and auditwheel-repairs it, a fresh venv
installs it with no compiler and no source (--no-index --only-binary), and its compiled kernels
pass ``python -m fastloss check`` and a multi-threaded problem against the NumPy reference.

Minutes of build: runs only with FASTLOSS_TEST_WHEEL=1, which .ci/run sets for its own step.
FASTLOSS_WHEELHOUSE=DIR keeps the wheel there (.ci/run's oldest-versions job installs it).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [
    pytest.mark.wheel,
    pytest.mark.skipif(os.environ.get("FASTLOSS_TEST_WHEEL") != "1",
                       reason="builds a wheel (minutes): set FASTLOSS_TEST_WHEEL=1 (.ci/run runs it as its own step)"),
]

THREADED = """
import numpy as np, fastloss
assert fastloss.backend() == "native", fastloss.backend()
rng = np.random.default_rng(0)
x = rng.standard_normal((2048, 1000)).astype(np.float32)
t = rng.integers(0, 1000, 2048)
with fastloss.use_backend("numpy"):
    ref_loss, ref_grad = fastloss.cross_entropy_with_grad(x, t)
fastloss.set_num_threads(2)
loss, grad = fastloss.cross_entropy_with_grad(x, t)
assert abs(loss - ref_loss) <= 1e-5 * abs(ref_loss), (loss, ref_loss)
assert np.max(np.abs(grad - ref_grad)) <= 1e-6, np.max(np.abs(grad - ref_grad))
print("threaded ok", fastloss.get_num_threads())
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    keep = os.environ.get("FASTLOSS_WHEELHOUSE")
    dest = Path(keep) if keep else tmp_path_factory.mktemp("wheelhouse")
    env = dict(os.environ, PYTHON=sys.executable)
    r = subprocess.run(["bash", str(ROOT / "tools" / "build_wheel.sh"), str(dest)], env=env, cwd=ROOT,
                       capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    wheel = Path(r.stdout.strip().splitlines()[-1])
    assert wheel.exists(), r.stdout
    return dest, wheel


def test_wheel_is_manylinux2014(built):
    # glibc 2.17: csrc/cpu/glibc_compat.cpp pins every newer glibc symbol to an old version and
    # replaces __cxa_thread_atexit, whose libstdc++ version needs glibc 2.18
    _, wheel = built
    tags = re.findall(r"manylinux_2_(\d+)", wheel.name)
    assert tags and min(int(t) for t in tags) <= 17, wheel.name


def test_sdist_holds_the_sources_and_no_build_output(built):
    dest, _ = built
    (sdist,) = dest.glob("fastloss-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    assert {"LICENSE", "pyproject.toml", "CMakeLists.txt", "python/fastloss/_version.py",
            "csrc/fastloss/kernels.h"} <= names
    top = {n.split("/")[0] for n in names}
    assert not top & {"wheelhouse", "dist", "build", "build-wheel", "build-neon-qemu", "venv", ".venv"}, top
    assert not any(n.endswith(".so") for n in names)


def test_wheel_installs_without_a_compiler_and_passes_check(built, tmp_path):
    dest, _ = built
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = str(venv / "bin" / "python")
    # numpy from wherever pip finds it (cache or index); fastloss only from the wheel, never built.
    subprocess.run([py, "-m", "pip", "install", "-q", "--only-binary=:all:", "numpy"], check=True)
    env = dict(os.environ, CC="false", CXX="false", PATH=f"{venv / 'bin'}:/usr/bin:/bin")
    env.pop("PYTHONPATH", None)
    subprocess.run([py, "-m", "pip", "install", "-q", "--no-index", "--only-binary=:all:", "--find-links",
                    str(dest), "fastloss"], check=True, env=env)
    check = subprocess.run([py, "-m", "fastloss", "check"], cwd=tmp_path, env=env, capture_output=True, text=True,
                           check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "native-" in check.stdout, check.stdout  # the compiled kernels ran, not only NumPy
    threaded = subprocess.run([py, "-c", THREADED], cwd=tmp_path, env=env, capture_output=True, text=True,
                              check=False)
    assert threaded.returncode == 0 and "threaded ok 2" in threaded.stdout, threaded.stdout + threaded.stderr
