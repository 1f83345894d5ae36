"""Introspection and control (DESIGN.md 1.4) and the command line, partly in fresh interpreters."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import fastloss
import numpy as np
import pytest
from fastloss import _backends, _check

PACKAGE_PARENT = str(Path(fastloss.__file__).resolve().parent.parent)


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    """``python -c code`` on this fastloss, in a fresh interpreter with extra environment."""
    environ = {**os.environ, "PYTHONPATH": os.pathsep.join([PACKAGE_PARENT, os.environ.get("PYTHONPATH", "")]),
               **env}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environ, timeout=300, check=False)


def test_show_config_prints_every_fact(capsys):
    fastloss.show_config()
    out = capsys.readouterr().out
    for key in ("version", "backend", "cpu_isa", "cpu_isas_available", "threads", "cuda"):
        assert f"{key}:" in out
    assert fastloss.__version__ in out and fastloss.backend() in out


def test_backend_is_the_best_available():
    assert fastloss.backend() == ("native" if "native" in _backends.available() else "numpy")


def test_use_backend_switches_and_restores():
    before = fastloss.backend()
    with fastloss.use_backend("numpy"):
        assert fastloss.backend() == "numpy"
    assert fastloss.backend() == before
    with pytest.raises(ValueError, match="backend must be 'numpy' or 'native', got 'gpu'"), \
            fastloss.use_backend("gpu"):
        pass


def test_requesting_a_missing_native_backend_raises():
    if "native" in _backends.available():
        with fastloss.use_backend("native"):
            assert fastloss.backend() == "native"
    else:
        with pytest.raises(RuntimeError, match="backend 'native' was requested but fastloss._C failed"), \
                fastloss.use_backend("native"):
            pass


def test_fastloss_backend_numpy_forces_the_fallback():
    result = run_python("import fastloss, numpy as np; print(fastloss.backend());"
                        "print(fastloss.cross_entropy(np.zeros((2, 4)), np.array([0, 3])))",
                        FASTLOSS_BACKEND="numpy")
    assert result.returncode == 0, result.stderr
    backend, loss = result.stdout.split()
    assert backend == "numpy" and float(loss) == pytest.approx(np.log(4), rel=1e-12)


def test_bad_fastloss_backend_is_an_error():
    result = run_python("import fastloss; fastloss.backend()", FASTLOSS_BACKEND="gpu")
    assert result.returncode != 0 and "FASTLOSS_BACKEND must be 'numpy' or 'native', got 'gpu'" in result.stderr


def test_import_works_without_the_extension():
    # A None entry in sys.modules makes `from . import _C` raise ImportError, as a missing .so does.
    result = run_python("import sys; sys.modules['fastloss._C'] = None\n"
                        "import fastloss, numpy as np\n"
                        "print(fastloss.backend(), fastloss.huber_loss(np.ones(3), np.zeros(3)))\n"
                        "fastloss.show_config()")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[:2] == ["numpy", "0.5"]
    assert "native_import_error" in result.stdout


def test_thread_setters():
    before = fastloss.get_num_threads()
    try:
        for n in (1, 2, 3):
            fastloss.set_num_threads(n)
            assert fastloss.get_num_threads() == n
        fastloss.set_num_threads(np.int64(1))
        assert fastloss.get_num_threads() == 1
    finally:
        fastloss.set_num_threads(before)
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match=f"num_threads must be a positive integer, got {bad!r}"):
            fastloss.set_num_threads(bad)


def test_default_threads_follow_omp_num_threads():
    result = run_python("import fastloss; print(fastloss.get_num_threads())", OMP_NUM_THREADS="3")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "3"


def test_cli_info():
    result = subprocess.run([sys.executable, "-m", "fastloss", "info"], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": PACKAGE_PARENT}, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert "backend:" in result.stdout and fastloss.__version__ in result.stdout


def test_cli_check_passes_and_covers_every_loss_and_implementation():
    result = subprocess.run([sys.executable, "-m", "fastloss", "check"], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": PACKAGE_PARENT}, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    table = [line.split() for line in result.stdout.splitlines()[2:-1]]
    expected = [(f"{b}-{isa}" if isa else b, spec.name) for b, isa in _check.implementations()
                for spec in fastloss.LOSSES]
    assert [tuple(row[:2]) for row in table] == expected
    assert "FAIL" not in result.stdout
    # aligned: the header and every row end their columns at the same place, the longest loss name too
    widths = {len(line) for line in result.stdout.splitlines()[1:-1]}
    assert len(widths) == 1, widths


def test_check_fails_on_a_wrong_backend(monkeypatch, capsys):
    def off_by_a_little(prob):
        loss, grad = correct(prob)
        return loss, (grad if grad is None else grad * 1.001)

    numpy_backend = _backends._BACKENDS["numpy"]
    correct = numpy_backend.run
    monkeypatch.setattr(_check, "implementations", lambda: [("wrong", None)])
    monkeypatch.setattr(_check, "running_on", lambda backend, isa: _patched(numpy_backend, backend,
                                                                             off_by_a_little, correct))
    assert _check.main() == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "FAILED" in out


def _patched(numpy_backend, backend, wrong, correct):
    """running_on() whose 'wrong' backend is the NumPy one with a perturbed gradient."""
    import contextlib

    @contextlib.contextmanager
    def context():
        numpy_backend.run = wrong if backend == "wrong" else correct
        try:
            with fastloss.use_backend("numpy"):
                yield
        finally:
            numpy_backend.run = correct

    return context()


def test_fastloss_cpu_isa_forces_the_isa():
    script = "import fastloss, numpy as np; print(fastloss.cross_entropy(np.zeros((2, 3)), np.array([0, 2])));" \
             "print(fastloss._backends._C.isa() if fastloss._backends._C else 'none')"
    isas = _backends._C.available_isas() if _backends._C is not None else []
    for isa in isas:
        result = run_python(script, FASTLOSS_CPU_ISA=isa)
        assert result.returncode == 0, result.stderr
        loss, used = result.stdout.split()
        assert used == isa and float(loss) == pytest.approx(np.log(3), rel=1e-12)
    if not isas:  # without the extension there is no ISA to force, and the fallback still works
        result = run_python(script, FASTLOSS_CPU_ISA="avx2")
        assert result.returncode == 0 and result.stdout.split()[1] == "none", result.stderr


def test_unavailable_fastloss_cpu_isa_is_an_error_naming_it():
    if _backends._C is None:
        return  # the variable only steers the native backend; covered above
    result = run_python("import fastloss, numpy as np; fastloss.cross_entropy(np.zeros((2, 3)), np.array([0, 2]))",
                        FASTLOSS_CPU_ISA="sse9")
    assert result.returncode != 0 and "FASTLOSS_CPU_ISA=sse9" in result.stderr


def test_an_unknown_cpu_isa_fails_at_import_naming_the_valid_values():
    result = run_python("import fastloss", FASTLOSS_CPU_ISA="avx9")
    assert result.returncode != 0
    assert "FASTLOSS_CPU_ISA=avx9 is not an instruction set fastloss knows; valid values: avx512_bf16, avx512, avx2, neon, " \
           "scalar" in result.stderr


def test_a_known_isa_this_cpu_lacks_fails_at_import_saying_so():
    if _backends._C is None:
        return  # the variable only steers the native backend
    missing = [isa for isa in ("avx512", "avx2", "neon") if isa not in _backends._C.available_isas()]
    result = run_python("import fastloss", FASTLOSS_CPU_ISA=missing[0])
    assert result.returncode != 0
    assert f"FASTLOSS_CPU_ISA={missing[0]} is not available on this CPU; it can run" in result.stderr


def test_import_fastloss_torch_without_torch_says_to_install_it():
    # a meta-path finder that hides torch, as on a machine without it
    code = ("import sys, importlib.abc\n"
            "class NoTorch(importlib.abc.MetaPathFinder):\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name == 'torch' or name.startswith('torch.'):\n"
            "            raise ModuleNotFoundError(\"No module named 'torch'\", name='torch')\n"
            "sys.meta_path.insert(0, NoTorch())\n"
            "import fastloss\n"
            "try:\n"
            "    import fastloss.torch\n"
            "except ImportError as exc:\n"
            "    print(exc)\n")
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert "fastloss.torch needs PyTorch, which is not installed: pip install torch" in result.stdout


def test_info_says_how_to_build_cuda_when_it_is_not_built(capsys):
    from fastloss import _config

    fastloss.show_config()
    out = capsys.readouterr().out
    if _config.config()["cuda"].startswith("not built"):
        assert "this build is CPU only; for NVIDIA GPUs reinstall from source with the CUDA toolkit on PATH: " \
               "FASTLOSS_CUDA=ON pip install ." in out
    else:
        assert "FASTLOSS_CUDA=ON" not in out


ROOT = Path(__file__).resolve().parents[1]


def _requirements() -> dict[str, str]:
    """name -> lower bound of every requirement in pyproject.toml (dependencies and extras)."""
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    bounds: dict[str, str] = {}
    for line in lines:
        name, _, low = line.partition(">=")
        assert low and "," not in low, f"{line!r}: every requirement is a plain lower bound"
        assert bounds.setdefault(name, low) == low, f"{name} has two lower bounds"
    return bounds


@pytest.mark.skipif(not (ROOT / ".ci" / "oldest.txt").is_file(), reason="needs the source tree")
def test_the_oldest_versions_job_pins_exactly_the_claimed_lower_bounds():
    pins = dict(line.split("==") for line in (ROOT / ".ci" / "oldest.txt").read_text().splitlines()
                if line and not line.startswith("#"))
    assert pins == _requirements()


@pytest.mark.skipif(not (ROOT / "README.md").is_file(), reason="needs the source tree")
def test_readme_and_classifiers_claim_the_same_python_versions():
    tomllib = pytest.importorskip("tomllib")
    classifiers = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["classifiers"]
    claimed = {c.rsplit(" :: ", 1)[1] for c in classifiers if c.startswith("Programming Language :: Python :: 3.")}
    import re

    tested = re.search(r"Tested on CPython ([\d., and]+)", (ROOT / "README.md").read_text())
    assert tested, "README.md says which Python versions are tested"
    assert set(re.findall(r"3\.\d+", tested.group(1))) == claimed
