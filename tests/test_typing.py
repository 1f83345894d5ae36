"""Type checkers see the real signatures (python/fastloss/__init__.pyi and torch/__init__.pyi, written
from the spec by the build, never by hand or committed): a misspelled option or a wrong reduction is
caught by mypy, correct calls pass."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import fastloss
import pytest

PACKAGE = Path(fastloss.__file__).resolve().parent
ROOT = Path(__file__).resolve().parent.parent
GOOD = '''
import numpy as np
import fastloss as fl

x = np.zeros((4, 3), np.float32)
t = np.zeros(4, np.int64)
loss: float = float(fl.cross_entropy(x, t, label_smoothing=0.1, reduction="sum", weight=None))
loss2, grad = fl.cross_entropy_with_grad(x, t, out=x, grad_output=2.0, softcap=30.0)
fl.multiclass_hinge_loss(x, t, variant="weston_watkins", squared=True)
fl.huber_loss(x, x, delta=2)
fl.set_num_threads(2)
name: str = fl.backend()
'''


def test_the_package_is_typed_and_the_stub_is_installed_with_it():
    assert (PACKAGE / "py.typed").is_file()
    assert (PACKAGE / "__init__.pyi").is_file()


def _gen_stubs():
    spec = importlib.util.spec_from_file_location("gen_stubs", ROOT / "tools" / "gen_stubs.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    return gen


STALE = "is stale: rebuild (cmake --build build, or pip install .: the build runs tools/gen_stubs.py)"


@pytest.mark.skipif(not (ROOT / "tools" / "gen_stubs.py").is_file(), reason="needs the source tree")
def test_the_stub_matches_the_spec():
    assert (PACKAGE / "__init__.pyi").read_text() == _gen_stubs().stub_text(), f"{PACKAGE / '__init__.pyi'} {STALE}"


@pytest.mark.skipif(not (ROOT / "tools" / "gen_stubs.py").is_file(), reason="needs the source tree")
def test_the_torch_stub_matches_the_spec():
    pytest.importorskip("torch")
    stub = PACKAGE / "torch" / "__init__.pyi"
    assert stub.is_file() and stub.read_text() == _gen_stubs().torch_stub_text(), f"{stub} {STALE}"


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="needs the git checkout")
def test_no_stub_is_committed():
    tracked = subprocess.run(["git", "ls-files", "*.pyi"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert tracked.stdout.strip() == "", f"generated stubs must not be committed: {tracked.stdout}"


def _mypy(tmp_path: Path, source: str) -> subprocess.CompletedProcess:
    pytest.importorskip("mypy")
    usage = tmp_path / "usage.py"
    usage.write_text(source)
    env = dict(os.environ)
    if "site-packages" not in PACKAGE.parts:  # a source checkout: point mypy at it (an installed one it finds)
        env["MYPYPATH"] = str(PACKAGE.parent)
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", "--ignore-missing-imports", "--follow-imports=silent",
         "--cache-dir", str(tmp_path / "cache"), str(usage)],
        capture_output=True, text=True, env=env, cwd=tmp_path, check=False,
    )


def test_mypy_accepts_correct_calls_and_rejects_misspelled_options(tmp_path):
    good = _mypy(tmp_path, GOOD)
    assert good.returncode == 0, good.stdout + good.stderr
    bad = _mypy(tmp_path, GOOD + 'fl.cross_entropy(x, t, reductoin="sum")\nfl.huber_loss(x, x, reduction="avg")\n')
    assert bad.returncode != 0
    assert 'Unexpected keyword argument "reductoin"' in bad.stdout, bad.stdout
    assert "Literal['avg']" in bad.stdout, bad.stdout


TORCH_GOOD = """
import torch
import fastloss.torch as ft

x = torch.zeros(4, 3)
t = torch.zeros(4, dtype=torch.long)
loss: torch.Tensor = ft.softmax_focal_loss(x, t, gamma=1.0, reduction="sum")
ft.cross_entropy(x, t, label_smoothing=0.1)
module = ft.WassersteinLoss(p=2)
"""


def test_mypy_sees_the_torch_drop_ins_derived_from_the_spec(tmp_path):
    pytest.importorskip("torch")
    good = _mypy(tmp_path, TORCH_GOOD)
    assert good.returncode == 0, good.stdout + good.stderr
    bad = _mypy(tmp_path, TORCH_GOOD + 'ft.softmax_focal_loss(x, t, gama=1.0)\n')
    assert 'Unexpected keyword argument "gama"' in bad.stdout, bad.stdout
