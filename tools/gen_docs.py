"""Generate the documentation site's pages from the package itself (tools/build_docs.py runs this and
then Sphinx); nothing here lists a loss, a function or a module by hand:

- ``index.md``: the README, followed by the site's table of contents;
- ``losses/<name>.md`` for every loss of ``fastloss.LOSSES``: formula, target, options, the four
  forms with their signatures, the fastloss.torch / fastloss.jax drop-ins, the PyTorch and optax
  formulas the benchmarks compare with (read from ``fastloss/_bench``), the hand-written notes of
  ``docs/loss_notes/<name>.md`` when there are any, and plots of the loss, its gradient and its
  Hessian diagonal computed by fastloss at build time;
- ``api/``: one page per public module of the package (found with pkgutil), with every public
  function and class and its signature;
- ``benchmarks.md``: the tables and plots of ``benchmarks/results`` and the method;
- ``contributing.md`` (CONTRIBUTING.md) and the table of every loss at the end of ``choosing.md``.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
import shutil
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
BENCH = ROOT / "python" / "fastloss" / "_bench"
REPO = "https://github.com/fastloss/fastloss/blob/main/"
FORMS = ("", "_grad", "_with_grad", "_grad_hess")


def _fastloss():
    """The installed fastloss, or the source tree's when it is not installed."""
    try:
        import fastloss
    except ImportError:
        sys.path.insert(0, str(ROOT / "python"))
        import fastloss
    return fastloss


def _absolute_links(markdown: str, base: str, images: Path | None = None) -> str:
    """Relative links of a repository Markdown file made absolute (the site holds only its pages);
    its images copied into ``images`` (a folder at the top of the site), or linked."""
    def link(match: re.Match) -> str:
        text, target = match.group(1), match.group(2)
        if target.startswith(("#", "http", "mailto:")):
            return match.group(0)
        return f"[{text}]({REPO}{base}{target})"

    def image(match: re.Match) -> str:  # the site keeps its own copy of the repository's images
        text, target = match.group(1), match.group(2)
        path = ROOT / base / target
        if target.startswith("http") or not path.is_file():
            return match.group(0)
        if images is None:
            return f"[{text}]({REPO}{base}{target})"
        shutil.copy(path, images / path.name)
        return f"![{text}]({images.name}/{path.name})"

    markdown = re.sub(r"!\[([^\]]*)\]\(([^)\s]+)\)", image, markdown)
    return re.sub(r"(?<!!)\[([^\]]*)\]\(([^)\s]+)\)", link, markdown)


def _demote(markdown: str) -> str:
    """Every heading one level down (a file included under a page's own title)."""
    return re.sub(r"^(#+) ", r"#\1 ", markdown, flags=re.MULTILINE)


def _rst(directive: str) -> str:
    return f"```{{eval-rst}}\n{directive}\n```\n"


# ---- the loss pages ------------------------------------------------------------------------------


def _competitor_formulas(path: Path, builder: str) -> dict[str, str]:
    """loss name -> the source of its formula in the dict that ``builder`` returns (a benchmark
    competitor module: the one place per framework that maps a loss to the framework's own)."""
    source = path.read_text()
    tree = ast.parse(source)
    (func,) = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == builder]
    helpers = {n.name: n for n in func.body if isinstance(n, ast.FunctionDef)}
    returned = [n.value for n in func.body if isinstance(n, ast.Return) and isinstance(n.value, ast.Dict)]
    out: dict[str, str] = {}
    for key, value in zip(returned[0].keys, returned[0].values):
        if not isinstance(key, ast.Constant):
            continue
        node = helpers.get(value.id) if isinstance(value, ast.Name) else None
        text = ast.get_source_segment(source, node or value, padded=True) or ""
        out[key.value] = textwrap.dedent(text).strip()
    return out


def _plot_setup(spec):
    """(x-axis label, [(curve label, input(v), target(v), column)]) for the loss's plots over v."""
    import numpy as np

    if spec.rowwise:
        def row(v):
            x = np.zeros((v.size, 3))
            x[:, 0] = v
            return x

        target = ((lambda v: np.tile([2.0, 0.0, 0.0], (v.size, 1))) if spec.logit_targets
                  else (lambda v: np.zeros(v.size, dtype=np.int64)))
        what = "teacher logits (2, 0, 0)" if spec.logit_targets else "target class 0"
        return f"logit z_0 (3 classes, the others 0; {what})", [("", row, target, 0)]
    if spec.difference:
        return "error e = input - target", [("", lambda v: v, np.zeros_like, None)]
    if spec.target_values is not None and -1 in spec.target_values:
        return "score s (target +1): the margin y*s", [("", lambda v: v, np.ones_like, None)]
    if spec.target_range == (0.0, 1.0):
        return "logit x", [(" (target 1)", lambda v: v, np.ones_like, None),
                           (" (target 0)", lambda v: v, np.zeros_like, None)]
    lo, hi = spec.target_range or (0.0, 1.0)
    middle = (lo + min(hi, lo + 1.0)) / 2
    return f"input (target {middle:g})", [("", lambda v: v, lambda v: np.full_like(v, middle), None)]


def _plot(spec, path: Path) -> None:
    """Loss, gradient and Hessian diagonal over the error or margin, computed by fastloss itself."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fl = _fastloss()
    v = np.linspace(-4.0, 4.0, 801)
    xlabel, curves = _plot_setup(spec)
    variants = [({}, "defaults")]
    shown = next((o for o in _raw_options(spec) if o.type in ("f64", "bool", "choice") and o.example is not None), None)
    if shown is not None:
        variants.append(({shown.name: shown.example}, f"{shown.name}={shown.example}"))
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2), layout="constrained")
    for (opts, name), style in zip(variants, ("-", "--")):
        for suffix, make_input, make_target, column in curves:
            x, t = make_input(v), make_target(v)
            loss = fl.__dict__[spec.name](x, t, reduction="none", **opts)
            grad, hess = fl.__dict__[spec.name + "_grad_hess"](x, t, **opts)
            if column is not None:
                grad, hess = grad[:, column], hess[:, column]
            label = name + suffix
            for ax, y in zip(axes, (loss, grad, hess)):
                ax.plot(v, y, style, label=label)
    for ax, title in zip(axes, ("loss", "gradient d loss / d input", "Hessian diagonal")):
        ax.set_title(title)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"fastloss.{spec.name} (reduction='none'), computed by fastloss", fontsize=10)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _raw_options(spec):
    """The loss's options as the loss table writes them (kernel type, example, doc)."""
    from fastloss import _spec

    return next(raw for raw in _spec.LOSSES if raw.name == spec.name).options


def _option_table(spec) -> str:
    if not _raw_options(spec):
        return "No options besides `reduction`.\n"
    rows = ["| option | default | meaning |", "|---|---|---|"]
    for o in _raw_options(spec):
        choices = f" (one of {', '.join(repr(c) for c in o.choices)})" if o.choices else ""
        rows.append(f"| `{o.name}` | `{o.default!r}` | {o.doc}{choices} |".replace("\\", "\\\\"))
    return "\n".join(rows) + "\n"


def _loss_page(spec, formulas: dict[str, dict[str, str]], notes: Path) -> str:
    from fastloss import _docstrings

    fl = _fastloss()
    reductions = ", ".join(repr(r) for r in ("mean", "sum", "none", *spec.extra_reductions))
    kind = "row-wise (one loss per row along the class axis `axis`, default -1)" if spec.rowwise \
        else "point-wise (one loss per element)"
    out = [f"# {spec.name}\n", f"```{{code-block}} text\n:class: docstring\n\n{spec.formula}\n```\n",
           (f"- **Kind:** {kind}.\n- **Target:** {_docstrings._target(spec).replace('``', '`')}.\n"
           f"- **Reductions:** {reductions}; `\"mean\"` is taken over {spec.mean_over.replace('_', ' ')}.\n"),
           "![loss, gradient and Hessian diagonal](img/" + spec.name + ".png)\n",
           "The curves are computed at build time by the functions below (`reduction=\"none\"`; the "
           "gradient and Hessian by `" + spec.name + "_grad_hess`).\n",
           "## Options\n", _option_table(spec)]
    note = notes / f"{spec.name}.md"
    if note.is_file():
        out += ["## Notes and differences from other libraries\n", note.read_text().strip() + "\n"]
    drop_ins = []
    for module in ("torch", "jax"):
        try:
            adapter = importlib.import_module(f"fastloss.{module}")
        except ImportError:
            continue
        if spec.name in getattr(adapter, "__all__", dir(adapter)):
            drop_ins.append(f"{{py:func}}`fastloss.{module}.{spec.name}`")
    if drop_ins:
        out.append("Framework forms: " + ", ".join(drop_ins) + " (see the API reference).\n")
    for framework, table in formulas.items():
        if spec.name in table:
            out += [f"## The same loss in {framework}\n",
                    ("The formula the benchmarks time against fastloss (`fastloss/_bench`), with the default "
                    "options:\n"),
                    f"```python\n{table[spec.name]}\n```\n"]
    out.append("## Functions\n")
    for suffix in FORMS:
        if hasattr(fl, spec.name + suffix):
            out.append(_rst(f".. autofunction:: fastloss.{spec.name}{suffix}"))
    return "\n".join(out)


def _losses(src: Path) -> None:
    fl = _fastloss()
    (src / "losses" / "img").mkdir(parents=True, exist_ok=True)
    formulas = {"PyTorch": _competitor_formulas(BENCH / "torch_competitor.py", "_torch_losses"),
                "JAX (optax)": _competitor_formulas(BENCH / "jax_competitor.py", "_optax_losses")}
    index = ["# Losses\n", ("Every loss has four forms: `fl.L` (the loss), `fl.L_grad` (its gradient), "
             "`fl.L_with_grad` (both from one pass) and `fl.L_grad_hess` (gradient and Hessian diagonal "
             "of the unreduced loss, for gradient boosting).\n"), _every_loss_table(fl.LOSSES, "")]
    index.append("```{toctree}\n:hidden:\n\n" + "\n".join(s.name for s in fl.LOSSES) + "\n```\n")
    (src / "losses" / "index.md").write_text("\n".join(index))
    for spec in fl.LOSSES:
        _plot(spec, src / "losses" / "img" / f"{spec.name}.png")
        (src / "losses" / f"{spec.name}.md").write_text(_loss_page(spec, formulas, src / "loss_notes"))


def _every_loss_table(losses, prefix: str) -> str:
    rows = ["| loss | kind | formula |", "|---|---|---|"]
    for spec in losses:
        formula = spec.formula.replace("|", "\\|")
        rows.append(f"| [{spec.name}]({prefix}{spec.name}.md) | {'row-wise' if spec.rowwise else 'point-wise'} "
                    f"| `{formula}` |")
    return "\n".join(rows) + "\n"


# ---- the API reference ---------------------------------------------------------------------------


def _public_modules(fl) -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(fl.__path__) if not m.name.startswith("_"))


def _module_page(name: str) -> str:
    title = f"# fastloss.{name}\n"
    try:
        importlib.import_module(f"fastloss.{name}")
    except ImportError as exc:  # the docs were built without this adapter's framework
        print(f"gen_docs: fastloss.{name} not documented: {exc}", file=sys.stderr)
        return title + f"\nThis page was built without the module's dependency ({exc}).\n"
    return title + "\n" + _rst(f".. automodule:: fastloss.{name}\n   :members:")


def _core_page(fl) -> str:
    from fastloss._api import FUNCTIONS

    out = ["# fastloss\n", _rst(".. automodule:: fastloss"),
           "## Losses\n", "Each loss's four forms are on its page:\n"]
    rows = ["| loss | forms |", "|---|---|"]
    for spec in fl.LOSSES:
        forms = ", ".join(f"{{py:func}}`{spec.name}{s} <fastloss.{spec.name}{s}>`" for s in FORMS
                          if spec.name + s in FUNCTIONS)
        rows.append(f"| [{spec.name}](../losses/{spec.name}.md) | {forms} |")
    out.append("\n".join(rows) + "\n")
    out.append("## Everything else\n")
    for name in sorted(set(fl.__all__) - set(FUNCTIONS)):
        obj = getattr(fl, name)
        if inspect.isclass(obj):
            out.append(_rst(f".. autoclass:: fastloss.{name}\n   :members:"))
        elif callable(obj):
            out.append(_rst(f".. autofunction:: fastloss.{name}"))
        else:
            out.append(_rst(f".. autodata:: fastloss.{name}\n   :no-value:"))
    return "\n".join(out)


def _api(src: Path) -> None:
    fl = _fastloss()
    api = src / "api"
    api.mkdir(exist_ok=True)
    modules = _public_modules(fl)
    (api / "fastloss.md").write_text(_core_page(fl))
    for name in modules:
        (api / f"{name}.md").write_text(_module_page(name))
    (api / "index.md").write_text(
        "# API reference\n\nEvery public module of the package, with the signature and docstring of every "
        "public function and class (docstrings are shown as written).\n\n```{toctree}\n\nfastloss\n"
        + "\n".join(modules) + "\n```\n")


# ---- benchmarks, contributing, the chooser, the home page ----------------------------------------


def _benchmarks(src: Path) -> None:
    img = src / "bench_img"
    img.mkdir(exist_ok=True)
    summary = (RESULTS / "summary.md").read_text()
    out = ["# Benchmarks\n",
           ("Measured with `PYTHONPATH=python python benchmarks/run_suite.py --preset reduced` on the project's "
           "development machine; the first line of the table says which machine and when. Every competitor "
           "ran in the same process on the same data; 'x NAME' is NAME's time divided by fastloss's.\n"),
           _demote(summary)]
    for png in sorted(RESULTS.glob("*.png")):
        shutil.copy(png, img / png.name)
        out.append(f"\n## {png.stem.replace('_', ' ')}\n\n![{png.stem}](bench_img/{png.name})\n")
    for txt in sorted(RESULTS.glob("*.txt")):
        out.append(f"\n## {txt.name}\n\n```text\n{txt.read_text().rstrip()}\n```\n")
    out.append("\n## Method\n")
    method = (ROOT / "benchmarks" / "README.md").read_text().split("\n", 1)[1]  # without its title
    out.append(_absolute_links(_demote(method), "benchmarks/", img))
    (src / "benchmarks.md").write_text("\n".join(out))


def generate(src: Path) -> None:
    """Write the generated pages into ``src``, which already holds the hand-written ones (docs/)."""
    fl = _fastloss()
    readme = _absolute_links((ROOT / "README.md").read_text(), "")
    toc = ["choosing", "losses/index", "guide/index", "api/index", "benchmarks", "contributing"]
    (src / "index.md").write_text(readme + "\n```{toctree}\n:hidden:\n\n" + "\n".join(toc) + "\n```\n")
    (src / "contributing.md").write_text(_absolute_links((ROOT / "CONTRIBUTING.md").read_text(), ""))
    with open(src / "choosing.md", "a") as f:
        f.write("\n## Every loss\n\n" + _every_loss_table(fl.LOSSES, "losses/"))
    _losses(src)
    _api(src)
    _benchmarks(src)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python tools/gen_docs.py SOURCE_DIR   (tools/build_docs.py runs it)")
    generate(Path(sys.argv[1]))
