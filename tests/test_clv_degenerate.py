"""Degenerate data and failed fits: a clear warning, a documented fallback, never NaN."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from workbench import engine
from workbench.models.backends import FitFailedError, ScipyBackend
from workbench.models.clv import BGNBDModel, ModelWarning
from workbench.models.customers import build_customers, output_columns
from workbench.models.features import end_of_day
from workbench.models.simulate import simulate_bgnbd
from workbench.models.summary import sufficient_statistics

from .test_features import write_orders

AS_OF = end_of_day(date(2024, 12, 31))
MODEL_COLUMNS = ["p_alive", "churn_risk", "expected_orders_90d", "predicted_clv_90d"]


def _build(tmp_path, rows):
    con = engine.connect("duckdb", threads=1)
    orders = engine.read_parquet(con, write_orders(tmp_path / "orders.parquet", rows))
    models = build_customers(orders, AS_OF, horizon_days=90)
    return models, models.table.to_pandas()


def _assert_clean(table: pd.DataFrame) -> None:
    assert list(table.columns) == output_columns(90)
    for col in MODEL_COLUMNS:
        assert table[col].notna().all() and np.isfinite(table[col]).all(), col
    assert (
        table[["life_cycle", "importance", "price_sensitivity", "behaviour_trend"]]
        .notna()
        .all()
        .all()
    )
    assert ((table["churn_risk"] >= 0) & (table["churn_risk"] <= 1)).all()
    assert ((table["p_alive"] >= 0) & (table["p_alive"] <= 1)).all()


def test_all_one_time_buyers(tmp_path):
    rows = [
        (f"o{i}", f"c{i}", f"{date(2024, 1, 1) + timedelta(days=3 * i)} 10:00", "P", 1, 20.0, False)
        for i in range(60)
    ]
    with pytest.warns(ModelWarning) as record:
        models, table = _build(tmp_path, rows)
    messages = " ".join(str(w.message) for w in record)
    assert "0 repeat buyers" in messages and "NBD fallback" in messages
    assert "spend fallback" in messages
    _assert_clean(table)
    assert models.value.bgnbd_.kind_ == "nbd_fallback"
    assert models.value.gamma_gamma_.kind_ == "spend_fallback"
    # nobody ever came back: no expected orders, certain churn, no value
    assert (table["expected_orders_90d"] == 0).all() and (table["churn_risk"] == 1).all()
    assert (table["predicted_clv_90d"] == 0).all() and (table["importance"] == "one_time").all()
    assert models.metrics["clv"]["warnings"] and models.metrics["life_cycle"]["warnings"]


def test_three_customers(tmp_path):
    rows = [
        ("a1", "a", "2024-01-05 10:00", "P", 1, 20.0, False),
        ("a2", "a", "2024-03-05 10:00", "P", 2, 20.0, False),
        ("a3", "a", "2024-06-05 10:00", "P", 1, 25.0, False),
        ("b1", "b", "2024-02-05 10:00", "P", 1, 80.0, False),
        ("b2", "b", "2024-11-05 10:00", "P", 1, 60.0, False),
        ("c1", "c", "2024-12-20 10:00", "P", 1, 10.0, False),
    ]
    with pytest.warns(ModelWarning, match="BG/NBD not fitted: 3 customers"):
        models, table = _build(tmp_path, rows)
    _assert_clean(table)
    bg = models.value.bgnbd_
    assert bg.kind_ == "nbd_fallback" and bg.params_["r"] > 0
    # more repeat purchases over the same time -> more expected orders
    t = table.set_index("customer_id")
    assert t.loc["a", "expected_orders_90d"] > t.loc["c", "expected_orders_90d"] > 0
    assert (t["predicted_clv_90d"] > 0).all()


def test_zero_spend(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for c in range(80):
        for k in range(1 + int(rng.poisson(2))):
            day = date(2024, 1, 1) + timedelta(days=int(rng.integers(0, 360)))
            rows.append((f"o{c}_{k}", f"c{c}", f"{day} 10:00", "P", 1, 0.0, False))
    with pytest.warns(ModelWarning, match="spend fallback"):
        models, table = _build(tmp_path, rows)
    _assert_clean(table)
    assert models.value.gamma_gamma_.kind_ == "spend_fallback"
    assert (table["predicted_clv_90d"] == 0).all() and (table["revenue"] == 0).all()
    assert models.importance.value_basis_ == "revenue"


class _FailingBackend(ScipyBackend):
    name = "failing"

    def fit_bgnbd(self, *args, **kwargs):
        raise FitFailedError("failing backend did not converge")


def test_non_convergence_falls_back_to_the_bounded_optimiser():
    d = simulate_bgnbd(3_000, 0.5, 5.0, 0.8, 2.5, T=40.0, random_state=1)
    stats = sufficient_statistics(d[["frequency", "recency", "T"]])
    with pytest.warns(ModelWarning, match="failing backend did not converge; fitted the same"):
        model = BGNBDModel(backend=_FailingBackend()).fit(stats)
    assert model.kind_ == "bgnbd"
    assert model.method_ == "bounded L-BFGS-B on the BG/NBD likelihood (failing did not converge)"
    reference = BGNBDModel(backend="lifetimes").fit(stats)
    for name in ("r", "alpha", "a", "b"):
        assert model.params_[name] == pytest.approx(reference.params_[name], rel=1e-3)


def test_no_dropout_data_is_reported_at_the_boundary():
    """Customers who never drop out (the Online Retail situation): the optimum is a -> 0.

    lifetimes does not converge on these data; the bounded optimiser reaches the limit.
    """
    d = simulate_bgnbd(4_000, 0.7, 10.0, 1e-6, 1.0, T=40.0, random_state=3)
    stats = sufficient_statistics(d[["frequency", "recency", "T"]])
    with pytest.warns(ModelWarning) as record:
        model = BGNBDModel().fit(stats)
    messages = [str(w.message) for w in record]
    assert messages[0].startswith("lifetimes BetaGeoFitter did not converge")
    assert "boundary for a" in messages[1] and "never drop out" in messages[1]
    assert model.kind_ == "bgnbd" and "a" in model.at_boundary_
    assert model.method_.startswith("bounded L-BFGS-B")
    assert model.params_["a"] / (model.params_["a"] + model.params_["b"]) < 1e-3
    pred = model.predict(13.0, stats["frequency"], stats["recency"], stats["T"])
    assert pred.notna().all().all() and (pred["p_alive"] > 0.99).all()
    # with no dropout the chance of an order is the NBD one
    r, alpha = model.params_["r"], model.params_["alpha"]
    nbd = ((alpha + stats["T"]) / (alpha + stats["T"] + 13.0)) ** (r + stats["frequency"])
    np.testing.assert_allclose(pred["p_no_order"], nbd, atol=1e-3)
