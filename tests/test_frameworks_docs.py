"""Every code block of README.md runs as written (its framework section above all).

Python blocks run in a fresh namespace each; bash blocks run in a scratch directory that sees the
repository's examples/ and the test's Python first on PATH. A block preceded by
``<!-- requires: cuda -->`` needs a GPU and runs only where CuPy sees one.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "README.md"
BLOCK = re.compile(
    r"(<!-- requires: (?P<needs>\w+) -->\n)?```(?P<lang>python|bash)\n(?P<code>.*?)```", re.DOTALL
)


def _blocks():
    text = DOC.read_text()
    for match in BLOCK.finditer(text):
        section = (re.findall(r"^### (.+)$", text[: match.start()], re.MULTILINE) or ["intro"])[-1]
        line = text.count("\n", 0, match.start()) + 1
        yield pytest.param(match["lang"], match["code"], match["needs"], id=f"{section}-line{line}")


def _has_gpu() -> bool:
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # noqa: BLE001 - no CuPy, no driver or no device all mean no GPU here
        return False


def test_the_doc_has_a_block_per_framework():
    sections = {p.id.split("-line")[0] for p in _blocks()}
    assert {"PyTorch", "JAX", "NumPy, CuPy and any DLPack producer", "C++ extensions"} <= sections


@pytest.mark.parametrize("lang, code, needs", list(_blocks()))
def test_snippet_runs(lang, code, needs, tmp_path):
    if needs == "cuda" and not _has_gpu():
        pytest.skip("needs a CUDA GPU")
    if lang == "python":
        exec(compile(code, str(DOC), "exec"), {"__name__": "__doc_snippet__"})  # noqa: S102 - our own docs
        return
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    subprocess.run(["bash", "-euo", "pipefail", "-c", code], cwd=tmp_path, env=env, check=True)
