"""notebooks/02_features.ipynb through the runner (papermill), on a small synthetic shop."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from workbench import config, runner
from workbench.models.customers import LABEL_VALUES, output_columns
from workbench.params import load_params

pytestmark = pytest.mark.notebook
NOTEBOOKS = [config.NOTEBOOKS_DIR / "01_ingest.ipynb", config.NOTEBOOKS_DIR / "02_features.ipynb"]


def test_features_notebook_writes_customers_and_metrics(tmp_path):
    from workbench.synth import generate

    generate(1_500, 2, tmp_path / "shop", days=500, progress=False)
    params = load_params(tmp_path / "shop" / "params.yaml")
    result = runner.run(params, out_root=tmp_path / "outputs", notebooks=NOTEBOOKS)
    assert result.status == "succeeded"
    run_dir = result.run_dir

    table = pd.read_parquet(run_dir / "customers.parquet")
    attributes = pd.read_parquet(run_dir / "data" / "customers.parquet").columns
    expected = output_columns(90) + [c for c in attributes if c != "customer_id"]
    assert list(table.columns) == expected
    assert table["customer_id"].is_unique and len(table) > 1_000
    for col in ("p_alive", "churn_risk", "expected_orders_90d", "predicted_clv_90d"):
        assert np.isfinite(table[col]).all(), col
    for col, values in LABEL_VALUES.items():
        assert set(table[col]) <= set(values), col
    assert (table["last_active_at"] >= table["last_order_at"]).all()

    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert {"ingest", "clv", "labels", "holdout"} <= set(metrics)
    assert metrics["clv"]["bgnbd"]["kind"] == "bgnbd"
    assert metrics["clv"]["customers"] == len(table)
    thresholds = metrics["labels"]["thresholds"]
    assert thresholds["life_cycle"]["just_ordered_days"] == 30
    assert thresholds["importance"]["vip_threshold"] > 0
    distribution = metrics["labels"]["distribution"]["life_cycle"]
    assert sum(v["customers"] for v in distribution.values()) == len(table)
    assert metrics["holdout"]["life_cycle_monotonic"]
    assert metrics["holdout"]["auc"]["p_order"] > 0.7
    for name in ("labels", "calibration", "p_alive_matrix", "clv_distribution"):
        assert (run_dir / "figures" / f"{name}.png").exists(), name
    assert (run_dir / "notebooks" / "02_features.ipynb").exists()
