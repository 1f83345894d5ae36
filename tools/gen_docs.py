"""Build the documentation site's sources from what the project already holds, with no network:
the README (home page), the loss table (python/fastloss/_spec.py, through the generated docstrings:
one reference section per loss and form), and the benchmark results and plots.

    python tools/gen_docs.py OUT          # writes OUT/mkdocs.yml and OUT/docs/
    mkdocs build --strict -f OUT/mkdocs.yml

tests/test_docs.py does both (mkdocs-material is in the test extra).
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"

MKDOCS = """site_name: fastloss
site_description: Machine-learning losses and their gradients at the speed of the memory system
docs_dir: docs
theme:
  name: material
  features: [navigation.sections, content.code.copy]
markdown_extensions: [tables, admonition, toc, pymdownx.superfences]
nav:
  - Home: index.md
  - Loss reference: losses.md
  - Benchmarks: benchmarks.md
"""


def _home(readme: str, docs: Path) -> str:
    """The README with its repository links pointed at what the site holds."""
    def link(match: re.Match) -> str:
        text, target = match.group(1), match.group(2)
        path = ROOT / target
        if target.startswith(("#", "http")) or not path.is_file():
            return match.group(0)
        if path.suffix == ".png":
            shutil.copy(path, docs / "img" / path.name)
            return f"[{text}](img/{path.name})"
        return f"[{text}](https://github.com/fastloss/fastloss/blob/main/{target})"

    return re.sub(r"\[([^\]]*)\]\(([^)]+)\)", link, readme)


def _losses() -> str:
    sys.path.insert(0, str(ROOT / "python"))
    import fastloss
    from fastloss._api import FUNCTIONS

    out = [("# Loss reference\n\nEvery loss comes in the forms below; each section is the function's own "
            "docstring, generated from the loss table (`python/fastloss/_spec.py`).\n")]
    for spec in fastloss.LOSSES:
        out.append(f"\n## `{spec.name}`\n\n`{spec.formula}`\n")
        for name, function in FUNCTIONS.items():
            if name == spec.name or name.startswith(spec.name + "_") and name[len(spec.name) + 1:] in (
                    "grad", "with_grad", "grad_hess"):
                out.append(f"\n### `fastloss.{name}`\n\n```text\n{function.__doc__.strip()}\n```\n")
    return "".join(out)


def _benchmarks(docs: Path) -> str:
    out = [("# Benchmarks\n\nMeasured on the project's development machine; see `benchmarks/README.md` for the "
            "method and the commands.\n")]
    for png in sorted(RESULTS.glob("*.png")):
        shutil.copy(png, docs / "img" / png.name)
        out.append(f"\n## {png.stem.replace('_', ' ')}\n\n![{png.stem}](img/{png.name})\n")
    for txt in sorted(RESULTS.glob("*.txt")):
        out.append(f"\n## {txt.name}\n\n```text\n{txt.read_text().rstrip()}\n```\n")
    return "".join(out)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(argv[1])
    docs = out / "docs"
    shutil.rmtree(docs, ignore_errors=True)
    (docs / "img").mkdir(parents=True)
    (out / "mkdocs.yml").write_text(MKDOCS)
    (docs / "index.md").write_text(_home((ROOT / "README.md").read_text(), docs))
    (docs / "losses.md").write_text(_losses())
    (docs / "benchmarks.md").write_text(_benchmarks(docs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
