"""Every code block of README.md and of the documentation's hand-written pages (docs/) runs as written.

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
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCK = re.compile(
    r"(<!-- requires: (?P<needs>\w+) -->\n)?```(?P<lang>python|bash)\n(?P<code>.*?)```", re.DOTALL
)


def _blocks():
    for doc in DOCS:
        if not doc.is_file():  # an installed package's tests without the source tree
            continue
        text = doc.read_text()
        for match in BLOCK.finditer(text):
            section = (re.findall(r"^#+ (.+)$", text[: match.start()], re.MULTILINE) or ["intro"])[-1]
            line = text.count("\n", 0, match.start()) + 1
            yield pytest.param(match["lang"], match["code"], match["needs"], doc,
                               id=f"{doc.relative_to(ROOT)}-{section}-line{line}")


def _has_gpu() -> bool:
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # noqa: BLE001 - no CuPy, no driver or no device all mean no GPU here
        return False


@pytest.mark.skipif(not (ROOT / "docs").is_dir(), reason="needs the source tree")
def test_the_docs_have_a_block_per_framework():
    files = {p.values[3].name for p in _blocks()}
    assert {"README.md", "pytorch.md", "jax.md", "core.md", "cpp.md", "boosting.md", "lm-head.md"} <= files


@pytest.mark.parametrize("lang, code, needs, doc", list(_blocks()))
def test_snippet_runs(lang, code, needs, doc, tmp_path):
    if needs == "cuda" and not _has_gpu():
        pytest.skip("needs a CUDA GPU")
    if lang == "python":
        exec(compile(code, str(doc), "exec"), {"__name__": "__doc_snippet__"})  # noqa: S102 - our own docs
        return
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    subprocess.run(["bash", "-euo", "pipefail", "-c", code], cwd=tmp_path, env=env, check=True)
