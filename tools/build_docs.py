"""Build the documentation site as static HTML into OUT, offline, from the code:

    pip install ".[docs]" && python tools/build_docs.py OUT      # then open OUT/index.html

The hand-written pages (docs/: guides, the loss chooser, Sphinx's conf.py) are copied next to the
pages tools/gen_docs.py generates from the package itself (the API reference, one page per loss with
its plots, the benchmark results), and Sphinx builds them with warnings as errors. ``--source DIR``
keeps the generated Markdown sources in DIR (default: a temporary directory).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))


def build(out: Path, source: Path) -> None:
    import gen_docs
    from sphinx.cmd.build import build_main

    shutil.rmtree(source, ignore_errors=True)
    shutil.copytree(ROOT / "docs", source)
    gen_docs.generate(source)
    # -W: a warning fails the build; -E: no stale environment; -q: only warnings are printed.
    code = build_main(["-W", "--keep-going", "-E", "-q", "-b", "html", str(source), str(out)])
    if code:
        raise SystemExit(f"build_docs: Sphinx failed (exit {code}); the warnings are above")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="directory for the HTML site")
    parser.add_argument("--source", type=Path, help="keep the generated sources here")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    if args.source:
        build(args.out.resolve(), args.source.resolve())
    else:
        with tempfile.TemporaryDirectory() as tmp:
            build(args.out.resolve(), Path(tmp) / "source")
    print(f"build_docs: {args.out / 'index.html'} in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
