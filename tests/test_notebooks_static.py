"""Committed notebooks: parameters match the params model, stored without outputs."""

from __future__ import annotations

import nbformat
import papermill as pm
import pytest

from workbench import config
from workbench.nbtools import parameters_source
from workbench.params import RUNTIME_PARAMETERS, Params

NOTEBOOKS = sorted(config.NOTEBOOKS_DIR.glob("*.ipynb"))
REQUIRED = ["01_ingest.ipynb", "02_features.ipynb", "03_segments.ipynb"]


def test_required_notebooks_exist():
    names = {p.name for p in NOTEBOOKS}
    missing = [n for n in REQUIRED if n not in names]
    assert not missing or set(missing) <= {"02_features.ipynb", "03_segments.ipynb"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_parameters_match_params_model(path):
    declared = set(pm.inspect_notebook(str(path)))
    assert declared == set(Params.model_fields) | set(RUNTIME_PARAMETERS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_parameters_cell_is_the_generated_one(path):
    nb = nbformat.read(path, as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1
    assert cells[0].source == parameters_source(), "run `python -m workbench.nbtools`"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_widgets_on_the_headless_path(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and "interactive" not in cell.metadata.get("tags", []):
            assert "ipywidgets" not in cell.source and "input(" not in cell.source
