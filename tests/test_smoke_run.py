"""Papermill run of every notebook on params/smoke.yaml (``smoke_run`` in conftest), then
assertions on the run folder."""

from __future__ import annotations

import json

import nbformat
import pandas as pd
import pytest

from workbench import runner

from .browser import page_errors, render

pytestmark = pytest.mark.notebook

CUSTOMER_COLUMNS = [
    "customer_id",
    "first_order_at",
    "last_order_at",
    "orders",
    "revenue",
    "aov",
    "recency_days",
    "frequency",
    "tenure_days",
    "mean_interval_days",
    "p_alive",
    "churn_risk",
    "expected_orders_90d",
    "predicted_clv_90d",
    "life_cycle",
    "importance",
    "price_sensitivity",
    "behaviour_trend",
    "last_active_at",
]


def test_every_step_succeeded(smoke_run):
    manifest = json.loads((smoke_run.run_dir / "manifest.json").read_text())
    assert manifest["status"] == "succeeded"
    assert [s["name"] for s in manifest["steps"]] == [p.stem for p in runner.steps_available()]
    assert all(s["status"] == "succeeded" for s in manifest["steps"])


def test_customers_contract(smoke_run):
    customers = pd.read_parquet(smoke_run.run_dir / "customers.parquet")
    assert list(customers.columns[: len(CUSTOMER_COLUMNS)]) == CUSTOMER_COLUMNS
    assert {"email", "country", "subscribed"} <= set(customers.columns)
    assert customers.customer_id.is_unique and len(customers) == 600
    model_cols = ["p_alive", "churn_risk", "expected_orders_90d", "predicted_clv_90d"]
    assert not customers[model_cols].isna().any().any()
    assert customers.churn_risk.between(0, 1).all()
    assert set(customers.life_cycle) <= {"just_ordered", "active", "slipping_away", "lost"}


def test_metrics_sections(smoke_run):
    metrics = json.loads((smoke_run.run_dir / "metrics.json").read_text())
    assert {"ingest", "clv", "labels", "holdout", "report"} <= set(metrics)
    head = metrics["report"]["headline"]
    assert head["all_time"]["customers"] == 600


def test_executed_notebooks_have_no_errors(smoke_run):
    for path in (smoke_run.run_dir / "notebooks").glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
        assert not errors, path.name


def test_report_renders_in_a_real_browser(smoke_run, tmp_path):
    page = smoke_run.run_dir / "report.html"
    html = page.read_text()
    assert "<script src=" not in html.replace('<script src="data:', "")
    assert "import pandas" not in html and "ctx = start" not in html  # no code cells
    dom, log = render(page, tmp_path, screenshot=tmp_path / "report.png")
    assert not page_errors(log), page_errors(log)
    for heading in (
        "Segment report: smoke",
        "Headline figures",
        "Life Cycle and Importance",
        "Since the previous run",
        "Active customers and customer-base growth",
        "Value and churn risk",
        "Membership since the previous run",
        "Interested In",
        "beats every baseline",
        "Data quality",
        "Model diagnostics",
        "Backtest inside the data",
        "Files of this run",
    ):
        assert heading in dom, heading
    summary = pd.read_csv(page.parent / "segments" / "summary.csv", keep_default_na=False)
    for name in summary["segment"][1:]:  # every segment has its row in the report
        assert f">{name}<" in dom, name
    # labels, segment summary, active, growth, matrix, interest evaluation: data URIs
    assert dom.count("<img") >= 6
    assert (tmp_path / "report.png").stat().st_size > 50_000
