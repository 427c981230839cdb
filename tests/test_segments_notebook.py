"""03_segments under papermill via the runner, on params/smoke.yaml (600 synthetic customers)."""

from __future__ import annotations

import json

import nbformat
import pandas as pd
import pyarrow.parquet as pq
import pytest

from workbench import config, runner
from workbench.params import load_params

pytestmark = pytest.mark.notebook
STEPS = ("01_ingest", "02_features", "02_interest", "03_segments")


def test_segments_step_writes_the_run_contract(tmp_path):
    notebooks = [config.NOTEBOOKS_DIR / f"{s}.ipynb" for s in STEPS]
    notebooks = [nb for nb in notebooks if nb.exists()]
    overrides = [
        "exports=[{name: gads, type: google_customer_match_file}, "
        "{name: fb, type: meta_audience_file}, {name: crm, type: csv}]"
    ]
    if not (config.NOTEBOOKS_DIR / "02_interest.ipynb").exists():
        overrides.append("segments=params/segments/")  # synth/ needs Interested-In scores
    params = load_params(config.PARAMS_DIR / "smoke.yaml", overrides)
    result = runner.run(params, out_root=tmp_path / "outputs", notebooks=notebooks)
    run = result.run_dir
    assert result.status == "succeeded"

    membership = pq.read_table(run / "segments" / "membership.parquet").to_pandas()
    assert list(membership.columns) == ["segment", "customer_id"]
    sizes = membership.groupby("segment").size()
    summary = pd.read_csv(run / "segments" / "summary.csv", keep_default_na=False)
    assert summary.iloc[0]["scope"] == "store" and summary.iloc[0]["segment"] == ""
    assert summary.iloc[0]["customers"] == pq.read_metadata(run / "customers.parquet").num_rows
    names = list(summary["segment"][1:])
    assert names and set(sizes.index) <= set(names)
    for name in names:
        members = pd.read_csv(run / "segments" / f"{name}.csv", dtype=str)
        assert len(members) == sizes.get(name, 0)
        assert members.columns[0] == "customer_id"
        assert summary.set_index("segment").loc[name, "customers"] == sizes.get(name, 0)
        for export in ("gads", "fb", "crm"):
            assert (run / "exports" / export / f"{name}.csv").exists()
        assert (run / "segments" / "diff" / f"{name}.added.csv").exists()

    metrics = json.loads((run / "metrics.json").read_text())["segments"]
    assert {n: v["customers"] for n, v in metrics["segments"].items()} == {
        n: int(sizes.get(n, 0)) for n in names
    }
    assert metrics["growth"]["models"] == "metrics.json" and len(metrics["growth"]["points"]) == 12

    growth = pd.read_parquet(run / "segments" / "analytics" / "growth.parquet")
    last = growth[growth["date"] == growth["date"].max()].set_index("segment")["members"]
    for name in names:  # re-evaluated as of as_of = today's members (thresholds are rounded)
        assert abs(int(last[name]) - int(sizes.get(name, 0))) <= 1
    for table in ("active", "matrix", "overlap", "diff"):
        assert (run / "segments" / "analytics" / f"{table}.parquet").exists()
    for figure in ("summary", "active", "growth", "matrix", "overlap"):
        assert (run / "figures" / f"segments_{figure}.png").exists()

    executed = nbformat.read(run / "notebooks" / "03_segments.ipynb", as_version=4)
    builder = [c for c in executed.cells if "interactive" in c.metadata.get("tags", [])]
    assert len(builder) == 1 and not builder[0].outputs  # the builder never runs headless
