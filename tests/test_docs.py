"""The documentation: the site builds offline from the code with no warning (tools/build_docs.py:
Sphinx, warnings as errors) and has a page per loss with its plot and the API of every public
module; the README is for users (short, absolute links for PyPI, every loss in its chooser); every
generated docstring example runs. The README's and docs/'s code blocks run in test_frameworks_docs.py.
"""

from __future__ import annotations

import importlib.util
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import fastloss
import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCE_TREE = pytest.mark.skipif(not (ROOT / "tools" / "build_docs.py").is_file(), reason="needs the source tree")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    for module in ("sphinx", "furo", "myst_parser", "matplotlib"):
        pytest.importorskip(module)
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "PYTHONPATH": str(Path(fastloss.__file__).parent.parent)}
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "build_docs.py"), str(out)], env=env,
                          capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr  # a Sphinx warning fails the build
    assert "WARNING" not in proc.stderr, proc.stderr
    return out


@SOURCE_TREE
def test_every_loss_has_a_page_with_its_plot_and_its_four_forms(site):
    for spec in fastloss.LOSSES:
        page = (site / "losses" / f"{spec.name}.html").read_text()
        for name in (spec.name, f"{spec.name}_grad", f"{spec.name}_with_grad", f"{spec.name}_grad_hess"):
            assert f'id="fastloss.{name}"' in page, name  # its signature is documented here
        (image,) = re.findall(r'<img alt="loss, gradient and Hessian diagonal" src="([^"]+)"', page)
        assert (site / "losses" / image).stat().st_size > 10_000, image
    chooser = (site / "choosing.html").read_text()
    assert all(f"{spec.name}.html" in chooser for spec in fastloss.LOSSES)


@SOURCE_TREE
def test_the_api_reference_covers_every_public_module_and_function(site):
    modules = [m.name for m in pkgutil.iter_modules(fastloss.__path__) if not m.name.startswith("_")]
    assert {"torch", "jax", "xgboost", "lightgbm"} <= set(modules)
    core = (site / "api" / "fastloss.html").read_text()
    for name in ("set_num_threads", "show_config", "use_backend", "linear_cross_entropy", "get_include"):
        assert f'id="fastloss.{name}"' in core, name
    for name in modules:
        page = (site / "api" / f"{name}.html").read_text()
        module = importlib.import_module(f"fastloss.{name}")
        for public in getattr(module, "__all__", []):
            assert f'id="fastloss.{name}.{public}"' in page, (name, public)
    torch_page = (site / "api" / "torch.html").read_text()
    assert "linear_cross_entropy" in torch_page and "process_group" in torch_page  # with signatures
    assert (site / "benchmarks.html").is_file() and (site / "guide" / "pytorch.html").is_file()
    assert "end-of-life" not in (site / "index.html").read_text().lower()


@SOURCE_TREE
def test_the_readme_is_for_users():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    assert "pip install fastloss" in readme
    links = re.findall(r"\]\(([^)]+)\)", readme)
    assert all(link.startswith("https://") for link in links), links  # PyPI shows no relative link
    for word in ("TORCH_FASTER_BELOW", "_ops.", "issue", "rewrite", "load average", "DESIGN"):
        assert word not in readme, word
    for spec in fastloss.LOSSES:  # the chooser names every loss
        assert f"fl.{spec.name}" in readme, spec.name


def test_every_docstring_example_runs():
    from fastloss import _docstrings
    from fastloss._api import FUNCTIONS

    for name, function in FUNCTIONS.items():
        doc = function.__doc__
        for section in ("Parameters", "Returns", "Raises", "Example"):
            assert f"\n{section}\n" in doc, (name, section)
        code = "\n".join(line[4:] for line in doc.splitlines() if line.startswith(">>> "))
        namespace: dict = {}
        exec(code, namespace)  # noqa: S102 - our own generated example
        spec = next(s for s in fastloss.LOSSES if name == s.name or name.startswith(s.name + "_"))
        assert code == _docstrings.example(spec, name, name[len(spec.name) + 1:] or "loss")
