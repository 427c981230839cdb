"""Interested In, integration tier: DuckDB and PySpark compute the same aggregates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import ibis
import numpy as np
import pandas as pd
import pytest

from workbench import engine
from workbench.models import interest_data as idata
from workbench.models.interest import prepare_level
from workbench.models.interest_catalog import read_products
from workbench.models.interest_features import PURCHASE_HALF_LIVES, build_snapshot

pytestmark = pytest.mark.spark

START = datetime(2024, 1, 1, tzinfo=UTC)
AS_OF = datetime(2024, 6, 30, 23, 59, 59, tzinfo=UTC)


def _tiny_shop(path) -> None:
    """Canonical tables of a tiny shop (whole-second timestamps), written as Parquet."""
    rng = np.random.default_rng(5)
    cats = ["Home > Kitchen > Mugs", "Home > Kitchen > Plates", "Home > Decor", "Garden > Tools"]
    products = pd.DataFrame(
        {
            "product_id": [f"P{i}" for i in range(12)],
            "name": [
                f"{['Blue', 'Red', 'Oak'][i % 3]} {['Mugs', 'Plates', 'Vase', 'Rake'][i % 4]}"
                for i in range(12)
            ],
            "category": [cats[i % 4] for i in range(12)],
            "brand": [["Acme", "Bolt", None][i % 3] for i in range(12)],
        }
    )
    n = 400
    secs = rng.integers(0, 240 * 86400, n)
    orders = pd.DataFrame(
        {
            "order_id": [f"O{i // 2}" for i in range(n)],
            "customer_id": [f"C{c}" for c in rng.integers(0, 40, n)],
            "ordered_at": [START + timedelta(seconds=int(s)) for s in secs],
            "product_id": [f"P{p}" for p in rng.integers(0, 12, n)],
            "quantity": rng.integers(1, 4, n).astype(float),
            "is_return": rng.random(n) < 0.05,
        }
    )
    m = 600
    types = rng.choice(["view", "click", "cart", "search"], m)
    events = pd.DataFrame(
        {
            "customer_id": [f"C{c}" for c in rng.integers(0, 50, m)],
            "occurred_at": [
                START + timedelta(seconds=int(s)) for s in rng.integers(0, 240 * 86400, m)
            ],
            "event_type": types,
            "product_id": [
                None if t == "search" else f"P{p}"
                for t, p in zip(types, rng.integers(0, 12, m), strict=True)
            ],
            "query": [
                rng.choice(["blue mugs", "Oak  VASE", "rake"]) if t == "search" else None
                for t in types
            ],
        }
    )
    customers = pd.DataFrame(
        {
            "customer_id": [f"C{i}" for i in range(55)],
            "created_at": [START + timedelta(days=2 * i) if i < 50 else None for i in range(55)],
        }
    )
    path.mkdir(parents=True, exist_ok=True)
    for name, frame in {
        "orders": orders,
        "products": products,
        "events": events,
        "customers": customers,
    }.items():
        frame.to_parquet(path / f"{name}.parquet", index=False)


def _frame(table: ibis.Table) -> pd.DataFrame:
    df = table.to_pandas()
    return df.sort_values(list(df.columns)[:2], ignore_index=True)


def test_duckdb_and_spark_interest_aggregates_agree(tmp_path, spark):
    _tiny_shop(tmp_path / "data")
    cons = {"duckdb": engine.connect("duckdb"), "pyspark": ibis.pyspark.connect(spark)}
    out: dict[str, dict] = {}
    for name, con in cons.items():
        source = idata.InterestSource.from_run_dir(con, tmp_path)
        products = read_products(source.products, source.sales)
        catalog, query_map = prepare_level(source, products, "category", AS_OF)
        customers = idata.customer_ids(source, AS_OF)
        known = np.ones(len(customers), bool)
        res = {
            "customers": customers.to_pylist(),
            "dated": idata.customer_ids(source, AS_OF, include_undated=False).to_pylist(),
            "targets": catalog.targets.tolist(),
            "buyers": catalog.buyers.tolist(),
            "queries": sorted(idata.search_queries(source.events, AS_OF)),
            "query_map": query_map.sort_values(["query", "target_idx"], ignore_index=True),
            "purchases": _frame(
                idata.purchase_pairs(source.sales, catalog.product_map, AS_OF, PURCHASE_HALF_LIVES)
            ),
            "events": _frame(
                idata.event_pairs(source.events, catalog.product_map, query_map, AS_OF, {"b": 30.0})
            ),
            "labels": _frame(
                idata.label_pairs(
                    source.sales, catalog.product_map, AS_OF, AS_OF + timedelta(days=90)
                )
            ),
            "activity": _frame(idata.customer_activity(source, AS_OF, 60.0)["orders"]),
        }
        snap = build_snapshot(source, catalog, customers, known, AS_OF, query_map=query_map)
        res["profile"] = (snap.profile.indptr, snap.profile.indices, snap.profile.values)
        res["customer_vectors"] = snap.customer
        out[name] = res
    duck, spark_res = out["duckdb"], out["pyspark"]
    for key in ("customers", "dated", "targets", "buyers", "queries"):
        assert duck[key] == spark_res[key], key
    assert len(duck["dated"]) < len(duck["customers"])  # undated sign-ups only at as_of
    pd.testing.assert_frame_equal(duck["query_map"], spark_res["query_map"])
    for key in ("purchases", "events", "labels", "activity"):
        a, b = duck[key], spark_res[key]
        assert len(a) > 0, key
        pd.testing.assert_frame_equal(a, b, check_dtype=False, rtol=1e-6, obj=key)
    (ip1, ix1, v1), (ip2, ix2, v2) = duck["profile"], spark_res["profile"]
    assert np.array_equal(ip1, ip2) and np.array_equal(ix1, ix2)
    for col in v1:
        assert np.allclose(v1[col], v2[col], rtol=1e-5), col
    for col, vec in duck["customer_vectors"].items():
        assert np.allclose(vec, spark_res["customer_vectors"][col], rtol=1e-5), col
