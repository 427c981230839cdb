"""Project paths: the one place that knows where things live."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent
NOTEBOOKS_DIR = PROJECT_DIR / "notebooks"
PARAMS_DIR = PROJECT_DIR / "params"
#: Run folders; ``WORKBENCH_OUTPUTS`` moves them (tests, shared servers).
OUTPUTS_DIR = Path(os.environ.get("WORKBENCH_OUTPUTS") or PROJECT_DIR / "outputs")
DATA_DIR = PROJECT_DIR / "data"
DEMO_PARAMS = PARAMS_DIR / "demo.yaml"

#: Sub-folder of a run folder holding the canonical (ingested) tables.
RUN_DATA = "data"
#: Run-folder file names fixed by the run contract (docs/design.md, section 3).
MANIFEST = "manifest.json"
QUARANTINE = "quarantine.parquet"
INGEST_SUMMARY = "ingest_summary.json"
RESOLVED_PARAMS = "params.yaml"
