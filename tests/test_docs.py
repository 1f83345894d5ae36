"""The documentation site builds offline from the README, the loss table and the benchmark results
(tools/gen_docs.py + mkdocs --strict), with a reference section for every loss and form."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import fastloss
import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(not (ROOT / "tools" / "gen_docs.py").is_file(), reason="needs the source tree")
def test_the_site_builds_with_every_loss(tmp_path):
    pytest.importorskip("mkdocs")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": str(Path(fastloss.__file__).parent.parent)}
    subprocess.run([sys.executable, str(ROOT / "tools" / "gen_docs.py"), str(tmp_path)], check=True, env=env)
    subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-f", str(tmp_path / "mkdocs.yml"),
                    "-d", str(tmp_path / "site")], check=True, env=env, cwd=tmp_path)
    reference = (tmp_path / "site" / "losses" / "index.html").read_text()
    for spec in fastloss.LOSSES:
        for name in (spec.name, f"{spec.name}_grad", f"{spec.name}_with_grad"):
            assert f"fastloss.{name}" in reference, name
    assert (tmp_path / "site" / "index.html").is_file() and (tmp_path / "site" / "benchmarks" / "index.html").is_file()


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
