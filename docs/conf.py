"""Sphinx configuration of vitcnn's documentation site.

Sphinx with MyST: pages are Markdown (readable on GitHub as they are), the API reference comes from the
docstrings through autodoc, and `-W` turns every broken cross-reference, missing page or anchor into a failed
build. Build: `sphinx-build -W --keep-going -b html docs docs/_build/html`.
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent))  # vitcnn from this checkout, installed or not
sys.path.insert(0, str(DOCS))

project = "vitcnn"
author = "the vitcnn developers"
copyright = "2026, the vitcnn developers"

extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.viewcode"]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]
myst_heading_anchors = 3  # [text](page.md#a-heading) links are checked like any other reference
myst_enable_extensions = ["colon_fence"]
default_role = "literal"  # `name` in a docstring is code, as in the Markdown pages
autodoc_member_order = "bysource"
autodoc_typehints = "description"
html_theme = "furo"
html_title = "vitcnn"


def _check_generated_pages(app) -> None:
    """Fail the build (a warning under -W) when a page generated from the code is out of date."""
    from sphinx.util import logging

    import generate

    for name in generate.stale_pages():
        logging.getLogger(__name__).warning(
            "docs/reference/%s is out of date with the code: run python docs/generate.py", name)


def setup(app) -> None:
    app.connect("builder-inited", _check_generated_pages)
