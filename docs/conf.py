"""Sphinx configuration of the documentation site (tools/build_docs.py builds it; no network).

Sphinx with the furo theme and MyST Markdown: Sphinx's autodoc gives every public function and
class its real signature from the code, and furo is an actively maintained theme; MyST lets the
README and the guides stay Markdown.
"""

import fastloss

project = "fastloss"
release = version = fastloss.__version__
copyright = "the fastloss developers"
extensions = ["myst_parser", "sphinx.ext.autodoc"]
source_suffix = {".md": "markdown"}
exclude_patterns = ["loss_notes/*", "conf.py"]
myst_heading_anchors = 3
html_theme = "furo"
html_title = f"fastloss {release}"
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_inherit_docstrings = False  # torch.nn.Module.forward's text is not about our losses
html_static_path = ["_static"]
html_css_files = ["docstrings.css"]


def _verbatim(app, what, name, obj, options, lines):
    """Docstrings are plain text with formulas (``|e|``, ``**``), not reStructuredText: show them
    as written, in a literal block, rather than let docutils misread them."""
    if lines:
        lines[:] = [".. code-block:: text", "   :class: docstring", ""] + ["   " + line for line in lines] + [""]


def setup(app):
    app.connect("autodoc-process-docstring", _verbatim)
