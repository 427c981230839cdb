"""Keep the notebooks' ``parameters`` cells in step with the params model.

Every notebook declares the same parameters: each top-level key of
:class:`workbench.params.Params` plus ``run_dir``, with the demo params as defaults.
``python -m workbench.nbtools`` rewrites that cell in every notebook and strips outputs.
"""

from __future__ import annotations

import sys
from pathlib import Path
from pprint import pformat

import nbformat
import yaml

from workbench import config
from workbench.params import RUNTIME_PARAMETERS, Params


def parameters_source(params_file: Path = config.DEMO_PARAMS) -> str:
    """Source of the ``parameters`` cell: one literal per params key (defaults from the demo)."""
    raw = yaml.safe_load(params_file.read_text(encoding="utf-8"))
    full = Params.model_validate(raw).model_dump(mode="json")
    defaults = {k: raw.get(k, full[k]) for k in Params.model_fields}
    lines = [
        "# Parameters: papermill overrides these in headless runs (`workbench run PARAMS`).",
        "# Defaults are the demo's (params/demo.yaml); run_dir None = outputs/lab/<run_name>.",
    ]
    for key in Params.model_fields:
        lines.append(f"{key} = {pformat(defaults[key], width=96, sort_dicts=False)}")
    for key in RUNTIME_PARAMETERS:
        lines.append(f"{key} = None")
    return "\n".join(lines)


def strip_outputs(nb: nbformat.NotebookNode) -> None:
    """Remove outputs and execution counts from every code cell."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.metadata.pop("execution", None)
        cell.metadata.pop("papermill", None)
    nb.metadata.pop("papermill", None)


def sync_parameters(paths: list[Path]) -> list[Path]:
    """Rewrite the ``parameters`` cell of each notebook; returns the notebooks changed."""
    source = parameters_source()
    changed = []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        before = nbformat.writes(nb)
        for cell in nb.cells:
            if "parameters" in cell.metadata.get("tags", []):
                cell.source = source
        strip_outputs(nb)
        if nbformat.writes(nb) != before:
            nbformat.write(nb, path)
            changed.append(path)
    return changed


if __name__ == "__main__":  # pragma: no cover
    targets = [Path(p) for p in sys.argv[1:]] or sorted(config.NOTEBOOKS_DIR.glob("*.ipynb"))
    for nb_path in sync_parameters(targets):
        sys.stdout.write(f"updated {nb_path}\n")
