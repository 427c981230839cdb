"""The whole monthly pipeline on PySpark (local mode) gives the DuckDB run's outputs.

Same params (``params/smoke.yaml``), ``engine: pyspark``: every notebook runs on Spark; labels,
ids and segment members must be identical, probabilities within 1e-9 and money within a relative
1e-9 of the DuckDB run (``smoke_run`` in conftest).
"""

from __future__ import annotations

import json

import pytest

from workbench import config, runner
from workbench.params import load_params
from workbench.parity import compare_runs

pytestmark = [pytest.mark.spark, pytest.mark.notebook, pytest.mark.slow]


@pytest.fixture(scope="module")
def spark_run(tmp_path_factory):
    pytest.importorskip("pyspark")
    out = tmp_path_factory.mktemp("spark_outputs")
    params = load_params(config.PARAMS_DIR / "smoke.yaml", ["engine=pyspark"])
    return runner.run(params, out_root=out, params_source="params/smoke.yaml")


def test_spark_run_succeeds_on_spark(spark_run):
    manifest = json.loads((spark_run.run_dir / "manifest.json").read_text())
    assert manifest["status"] == "succeeded" and manifest["engine"] == "pyspark"
    assert all(s["status"] == "succeeded" for s in manifest["steps"])
    assert json.loads((spark_run.run_dir / "ingest_summary.json").read_text())["engine"] == (
        "pyspark"
    )
    assert (spark_run.run_dir / "report.html").exists()


def test_spark_and_duckdb_runs_agree(spark_run, smoke_run):
    report = compare_runs(smoke_run.run_dir, spark_run.run_dir)
    assert report.same, report.mismatches
    assert set(report.checked) == {
        "customers.parquet",
        "interest.parquet",
        "segments/membership.parquet",
    }
    assert report.checked["customers.parquet"] == 600


def test_compare_runs_sees_a_changed_label(smoke_run, tmp_path):
    import shutil

    import pandas as pd

    copy = tmp_path / "copy"
    shutil.copytree(smoke_run.run_dir, copy)
    customers = pd.read_parquet(copy / "customers.parquet")
    customers.loc[0, "life_cycle"] = (
        "lost" if customers.loc[0, "life_cycle"] != "lost" else "active"
    )
    customers.loc[1, "p_alive"] += 1e-6
    customers.to_parquet(copy / "customers.parquet", index=False)
    report = compare_runs(smoke_run.run_dir, copy)
    assert not report.same
    assert any("life_cycle: 1 values differ" in m for m in report.mismatches)
    assert any(m.startswith("customers.parquet:p_alive") for m in report.mismatches)
