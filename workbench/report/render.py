"""Render the executed report notebook to a self-contained ``report.html`` without code."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

#: Cell tag for cells kept out of the HTML (e.g. set-up cells with no reader value).
HIDE_TAG = "remove-cell"


def render_html(notebook: Path, out: Path, title: str = "Audience Workbench report") -> Path:
    """Convert an executed notebook to HTML: outputs and markdown only, images embedded.

    No external script is referenced (MathJax and require.js are left out), so the page renders
    offline and in a locked-down browser without network errors.
    """
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor

    nb = nbformat.read(notebook, as_version=4)
    nb.metadata["title"] = title
    exporter = HTMLExporter(
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        embed_images=True,
        mathjax_url="",
        require_js_url="",
    )
    exporter.register_preprocessor(
        TagRemovePreprocessor(remove_cell_tags={HIDE_TAG}, enabled=True), enabled=True
    )
    body, _ = exporter.from_notebook_node(nb)
    body = re.sub(r'<script[^>]*\bsrc=""[^>]*>\s*</script>', "", body)
    body = re.sub(r"<title>.*?</title>", f"<title>{title}</title>", body, count=1, flags=re.S)
    out.write_text(body, encoding="utf-8")
    return out
