"""Customer features and the RFM summary, checked against hand-computed values and lifetimes."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from workbench import engine
from workbench.models.features import (
    customer_features,
    end_of_day,
    epoch_day,
    period_order_counts,
    resolve_as_of,
    to_instant,
)
from workbench.models.summary import (
    holdout_activity,
    rfm_summary,
    spend_statistics,
    sufficient_statistics,
)

AS_OF = end_of_day(date(2024, 2, 10))

#: (order_id, customer_id, ordered_at, product_id, quantity, unit_price, is_return)
ROWS = [
    ("o1", "A", "2024-01-01 09:00", "P1", 2, 10.0, False),
    ("o1", "A", "2024-01-01 09:00", "P2", 1, 30.0, False),
    ("o2", "A", "2024-01-01 17:00", "P1", 1, 10.0, False),  # second order, same day
    ("o3", "A", "2024-01-11 10:00", "P1", 1, 12.0, False),
    ("o4", "A", "2024-01-31 10:00", "P2", 2, 30.0, False),
    ("r1", "A", "2024-02-05 10:00", "P2", -1, 30.0, True),  # a return: revenue, not an order
    ("o5", "A", "2024-03-01 10:00", "P1", 5, 10.0, False),  # after as_of
    ("o6", "B", "2024-01-20 12:00", "P1", 1, 20.0, False),
    ("r2", "C", "2024-01-25 12:00", "P1", -1, 10.0, True),  # only a return: not a customer
]

ORDER_SCHEMA = pa.schema(
    [
        ("order_id", pa.string()),
        ("line_no", pa.int64()),
        ("customer_id", pa.string()),
        ("ordered_at", pa.timestamp("us", tz="UTC")),
        ("product_id", pa.string()),
        ("quantity", pa.float64()),
        ("unit_price", pa.decimal128(18, 4)),
        ("revenue", pa.decimal128(18, 4)),
        ("is_return", pa.bool_()),
        ("product_category", pa.string()),
    ]
)


def orders_table(rows: list[tuple], categories: dict[str, str] | None = None) -> pa.Table:
    """Canonical order lines (as ingest writes them) from compact tuples."""
    from decimal import Decimal

    cols: dict[str, list] = {name: [] for name in ORDER_SCHEMA.names}
    for i, (oid, cid, ts, pid, qty, price, is_return) in enumerate(rows):
        cols["order_id"].append(oid)
        cols["line_no"].append(i)
        cols["customer_id"].append(cid)
        cols["ordered_at"].append(pd.Timestamp(ts, tz="UTC").to_pydatetime())
        cols["product_id"].append(pid)
        cols["quantity"].append(float(qty))
        cols["unit_price"].append(Decimal(str(price)).quantize(Decimal("0.0001")))
        cols["revenue"].append(Decimal(str(qty * price)).quantize(Decimal("0.0001")))
        cols["is_return"].append(bool(is_return))
        cols["product_category"].append((categories or {}).get(pid))
    return pa.table(cols, schema=ORDER_SCHEMA)


def write_orders(path: Path, rows: list[tuple], **kw) -> Path:
    """Write canonical order lines to Parquet and return the path."""
    pq.write_table(orders_table(rows, **kw), path)
    return path


@pytest.fixture
def con():
    return engine.connect("duckdb", threads=1)


@pytest.fixture
def orders(con, tmp_path):
    return engine.read_parquet(con, write_orders(tmp_path / "orders.parquet", ROWS))


def test_features_by_hand(orders):
    f = customer_features(orders, AS_OF).to_pandas().set_index("customer_id")
    assert sorted(f.index) == ["A", "B"]  # C only returned something
    a, b = f.loc["A"], f.loc["B"]
    assert a["orders"] == 4 and a["order_days"] == 3 and a["frequency"] == 2
    assert a["revenue"] == pytest.approx(102.0) and a["gross_sales"] == pytest.approx(132.0)
    assert a["aov"] == pytest.approx(25.5)
    assert a["first_order_at"] == pd.Timestamp("2024-01-01 09:00", tz="UTC")
    assert a["last_order_at"] == pd.Timestamp("2024-01-31 10:00", tz="UTC")
    assert (a["recency_days"], a["tenure_days"], a["repeat_span_days"]) == (10, 40, 30)
    assert a["mean_interval_days"] == pytest.approx(15.0)
    assert a["sd_interval_days"] == pytest.approx(np.std([10, 20], ddof=1))
    assert a["interval_cv"] == pytest.approx(np.std([10, 20], ddof=1) / 15)
    # repeat days Jan 11 (12) and Jan 31 (60), scaled by the share not returned (102 / 132)
    assert a["monetary"] == pytest.approx(36.0 * 102 / 132)
    # P1 average price 62 / 5 = 12.4, P2 30: A paid 132 for what costs 4 x 12.4 + 3 x 30
    assert a["price_index"] == pytest.approx(132 / (4 * 12.4 + 3 * 30))
    assert b["price_index"] == pytest.approx(20 / 12.4)
    assert (b["orders"], b["frequency"], b["recency_days"], b["tenure_days"]) == (1, 0, 21, 21)
    assert pd.isna(b["mean_interval_days"]) and pd.isna(b["sd_interval_days"])
    assert b["monetary"] == 0.0
    assert a["last_active_at"] == a["last_order_at"]


def test_as_of_resolution(orders):
    assert resolve_as_of(orders, None) == datetime(2024, 3, 1, 10, tzinfo=UTC)
    assert resolve_as_of(orders, date(2024, 2, 10)) == AS_OF
    assert to_instant(datetime(2024, 2, 10, 12)) == datetime(2024, 2, 10, 12, tzinfo=UTC)
    assert epoch_day(AS_OF) == (date(2024, 2, 10) - date(1970, 1, 1)).days


def test_as_of_moves_the_window(orders):
    early = customer_features(orders, end_of_day(date(2024, 1, 15))).to_pandas()
    early = early.set_index("customer_id")
    assert list(early.index) == ["A"]
    assert early.loc["A", "orders"] == 3 and early.loc["A", "recency_days"] == 4
    late = customer_features(orders, end_of_day(date(2024, 3, 1))).to_pandas()
    assert late.set_index("customer_id").loc["A", "orders"] == 5


def test_last_active_at_takes_web_events(con, orders, tmp_path):
    events = pa.table(
        {
            "customer_id": ["A", "A", "B"],
            "occurred_at": pa.array(
                [datetime(2024, 2, 8, 12), datetime(2024, 2, 20, 12), datetime(2024, 1, 2)],
                pa.timestamp("us", tz="UTC"),
            ),
            "event_type": ["view", "cart", "view"],
        }
    )
    pq.write_table(events, tmp_path / "events.parquet")
    ev = engine.read_parquet(con, tmp_path / "events.parquet")
    f = customer_features(orders, AS_OF, events=ev).to_pandas().set_index("customer_id")
    assert f.loc["A", "last_active_at"] == pd.Timestamp("2024-02-08 12:00", tz="UTC")
    assert f.loc["B", "last_active_at"] == pd.Timestamp("2024-01-20 12:00", tz="UTC")


def test_price_index_by_category(orders, con, tmp_path):
    path = write_orders(tmp_path / "cat.parquet", ROWS, categories={"P1": "X", "P2": "X"})
    cat = engine.read_parquet(con, path)
    f = customer_features(cat, AS_OF, price_reference="category").to_pandas()
    f = f.set_index("customer_id")
    ref = (62 + 90) / (5 + 3)  # one category holding both products
    assert f.loc["A", "price_index"] == pytest.approx(132 / (7 * ref))


def test_period_order_counts(orders):
    c = period_order_counts(orders, AS_OF, 20).to_pandas().set_index("customer_id")
    # A: o4 (Jan 31) in (Jan 21, Feb 10], o3 (Jan 11) in (Jan 1, Jan 21]; Jan 1 is before both
    assert c.loc["A"].to_dict() == {
        "orders_p0": 1,
        "orders_p1": 1,
        "exposure_p0": 20,
        "exposure_p1": 20,
    }
    # B's first order (Jan 20) is two days before the end of the earlier period
    assert c.loc["B"].to_dict() == {
        "orders_p0": 0,
        "orders_p1": 1,
        "exposure_p0": 20,
        "exposure_p1": 2,
    }


def test_holdout_activity(orders):
    h = holdout_activity(orders, AS_OF, 30).to_pandas().set_index("customer_id")
    assert h.loc["A"].to_dict() == {
        "holdout_order_days": 1,
        "holdout_orders": 1,
        "holdout_revenue": pytest.approx(50.0),
    }
    assert "B" not in h.index
    assert holdout_activity(orders, AS_OF, 10).count().to_pyarrow().as_py() == 0


def test_summary_units(orders):
    days = rfm_summary(orders, AS_OF, "days").to_pandas().set_index("customer_id")
    weeks = rfm_summary(orders, AS_OF, "weeks").to_pandas().set_index("customer_id")
    assert (days.loc["A", "recency"], days.loc["A", "T"]) == (30.0, 40.0)
    assert weeks.loc["A", "T"] == pytest.approx(40 / 7)
    assert rfm_summary(orders, AS_OF, 30.0).to_pandas().set_index("customer_id").loc[
        "A", "T"
    ] == pytest.approx(40 / 30)
    with pytest.raises(ValueError, match="unknown time unit"):
        rfm_summary(orders, AS_OF, "fortnights")


def _random_transactions(seed: int, n_customers: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(n_customers):
        start = pd.Timestamp("2023-01-01", tz="UTC") + pd.Timedelta(days=int(rng.integers(0, 300)))
        n = 1 + rng.poisson(3)
        offsets = np.sort(rng.integers(0, 400, n))
        offsets[0] = 0
        for k, off in enumerate(offsets):
            rows.append(
                (
                    f"o{c}_{k}",
                    f"c{c:03d}",
                    start + pd.Timedelta(days=int(off), hours=int(rng.integers(0, 23))),
                    "P",
                    1.0,
                    round(float(rng.gamma(2, 20)), 2),
                    False,
                )
            )
    return pd.DataFrame(
        rows,
        columns=[
            "order_id",
            "customer_id",
            "ordered_at",
            "product_id",
            "quantity",
            "unit_price",
            "is_return",
        ],
    )


@pytest.mark.parametrize("unit,multiplier", [("days", 1), ("weeks", 7)])
def test_summary_equals_lifetimes(con, tmp_path, unit, multiplier):
    from lifetimes.utils import summary_data_from_transaction_data

    tx = _random_transactions(3)
    rows = [tuple(r) for r in tx.itertuples(index=False)]
    rows = [(o, c, str(t), p, q, u, r) for o, c, t, p, q, u, r in rows]
    ours_table = engine.read_parquet(con, write_orders(tmp_path / "tx.parquet", rows))
    as_of = end_of_day(date(2024, 3, 31))
    ours = rfm_summary(ours_table, as_of, unit).to_pandas().set_index("customer_id").sort_index()
    kept = tx[tx["ordered_at"] <= as_of].assign(
        ordered_at=lambda d: d["ordered_at"].dt.tz_localize(None), value=lambda d: d["unit_price"]
    )
    ref = summary_data_from_transaction_data(
        kept,
        "customer_id",
        "ordered_at",
        monetary_value_col="value",
        observation_period_end="2024-03-31",
        freq="D",
        freq_multiplier=multiplier,
    ).sort_index()
    assert list(ours.index) == list(ref.index)
    np.testing.assert_array_equal(ours["frequency"], ref["frequency"])
    np.testing.assert_allclose(ours["recency"], ref["recency"])
    np.testing.assert_allclose(ours["T"], ref["T"])
    np.testing.assert_allclose(ours["monetary"], ref["monetary_value"], rtol=1e-9)


def test_sufficient_statistics_collapse_identical_rows(orders):
    stats = sufficient_statistics(rfm_summary(orders, AS_OF, "weeks"), "weeks")
    assert stats["weight"].sum() == 2
    frame = pd.DataFrame({"frequency": [1, 1, 2], "recency": [3.0, 3.0, 4.0], "T": [5.0] * 3})
    grouped = sufficient_statistics(frame)
    assert grouped.to_dict("list") == {
        "frequency": [1, 2],
        "recency": [3.0, 4.0],
        "T": [5.0, 5.0],
        "weight": [2.0, 1.0],
    }


def test_spend_statistics_bins_when_too_many_rows():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"frequency": rng.integers(1, 4, 5000), "monetary": rng.gamma(2, 50, 5000)}
    )
    exact, how = spend_statistics(frame)
    assert how == "exact to 10^-2" and exact["weight"].sum() == 5000
    binned, how = spend_statistics(frame, max_rows=500)
    assert how == "log bins of 0.1%" and binned["weight"].sum() == 5000
    assert len(binned) < len(exact)
    # the weighted mean spend is preserved exactly
    assert np.average(binned["monetary"], weights=binned["weight"]) == pytest.approx(
        np.average(exact["monetary"], weights=exact["weight"])
    )


def test_spend_statistics_round_half_cents_alike_on_every_engine():
    """Half-cents (the mean of two prices) round up on DuckDB, in pandas and on Spark alike, and
    a last-bit difference in a mean (a sum taken in another order) does not move it to another
    cent: SQL ROUND disagreed between DuckDB and Spark there (parity at 100k customers)."""
    import ibis

    half = [(12.34 + 12.35) / 2, 2.675, 0.125, 1.005, 99.995]
    values = half + [np.nextafter(v, 0.0) for v in half] + [np.nextafter(v, 99.0) for v in half]
    frame = pd.DataFrame({"frequency": 1, "monetary": values})
    mine, _ = spend_statistics(frame)
    want = [0.13, 1.01, 2.68, 12.35, 100.0]  # every half-cent up, its last-bit neighbours too
    assert mine["monetary"].tolist() == want and mine["weight"].tolist() == [3.0] * 5
    con = ibis.duckdb.connect()
    table = con.create_table("spend", frame)
    on_duckdb, _ = spend_statistics(table)
    pd.testing.assert_frame_equal(on_duckdb, mine)
