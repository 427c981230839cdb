"""Segment analytics and growth on the tiny hand-made shop (values computed by hand)."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from workbench.segments import analytics
from workbench.segments.data import upload
from workbench.segments.evaluate import evaluate_segments
from workbench.segments.fitted import FittedModels
from workbench.segments.growth import month_ends, segment_growth, snapshot_customers
from workbench.segments.spec import parse_segment
from workbench.segments.testing import AS_OF, tiny_data

SPECS = [
    parse_segment({"name": "vip", "where": {"importance": "vip"}}),
    parse_segment({"name": "subscribed", "where": {"subscribed": True}}),
    parse_segment({"name": "nobody", "where": {"orders": {"min": 100}}}),
]
NAMES = [s.name for s in SPECS]


@pytest.fixture(scope="module")
def duck():
    return tiny_data(ibis.duckdb.connect())


def _membership(data):
    table = evaluate_segments(SPECS, data)
    return upload(data.con, table.to_pandas(), "members")


def test_summary_against_hand_computed_values(duck):
    frame = analytics.segment_summary(_membership(duck), duck.customers, NAMES, "predicted_clv_90d")
    store, vip, _, nobody = (frame.iloc[i] for i in range(4))
    assert store["segment"] == "" and store["scope"] == "store"
    assert store["customers"] == 6 and store["revenue"] == pytest.approx(855.0)
    assert store["orders"] == 16
    assert vip["customers"] == 2 and vip["share"] == pytest.approx(2 / 6)
    assert vip["revenue"] == pytest.approx(700.0)
    assert vip["revenue_share"] == pytest.approx(700 / 855)
    assert vip["orders"] == 9 and vip["aov"] == pytest.approx(700 / 9)
    assert vip["order_frequency"] == pytest.approx(4.5)
    assert vip["avg_clv"] == pytest.approx(105.0) and vip["churn_risk"] == pytest.approx(0.5)
    assert vip["aov_vs_store"] == pytest.approx((700 / 9) / (855 / 16))
    assert nobody["customers"] == 0 and nobody["revenue"] == 0 and math.isnan(nobody["aov"])
    assert list(frame.columns) == analytics.SUMMARY_COLUMNS


def test_active_customers_and_growth(duck):
    frame = analytics.active_customers(
        _membership(duck), duck.customers, duck.orders, AS_OF, NAMES, months=3
    )
    store = frame[frame.segment == ""].set_index("months")
    # 1 month: A (06-28), D (06-30) vs B (05-15) the month before
    assert (store.loc[1, "active"], store.loc[1, "previous"]) == (2, 1)
    assert store.loc[1, "growth"] == pytest.approx(1.0)
    # 3 months: A, B, D, F (04-01); nobody ordered in the 3 months before
    assert store.loc[3, "active"] == 4 and store.loc[3, "previous"] == 0
    assert math.isnan(store.loc[3, "growth"])
    assert store.loc[3, "active_share"] == pytest.approx(4 / 6)
    vip = frame[frame.segment == "vip"].set_index("months")
    assert vip.loc[1, "active"] == 1 and vip.loc[3, "active"] == 2  # A; A and F
    assert (frame[frame.segment == "nobody"]["active"] == 0).all()


def test_growth_is_unknown_where_the_data_start_inside_the_previous_period(duck):
    frame = analytics.active_customers(
        _membership(duck), duck.customers, duck.orders, AS_OF, NAMES, months=12
    )
    store = frame[frame.segment == ""].set_index("months")
    # the first order is 2022-12-01: 2 x 9 months back (2022-12-30) is covered, 2 x 10 is not
    assert store.loc[9, "previous"] > 0 and not math.isnan(store.loc[9, "growth"])
    assert store.loc[10, "previous"] > 0 and math.isnan(store.loc[10, "growth"])


def test_insights_matrix_cells_add_up(duck):
    frame, cuts = analytics.insights_matrix(
        _membership(duck), duck.customers, NAMES, "predicted_clv_90d"
    )
    assert len(frame) == 4 * 9
    totals = frame.groupby("segment")["customers"].sum()
    assert totals[""] == 6 and totals["vip"] == 2 and totals["nobody"] == 0
    clv = np.array([120.0, 15.0, 1.0, 14.0, 0.1, 90.0])
    assert cuts["clv_q50"] == pytest.approx(np.quantile(clv, 0.5))
    assert cuts["clv_q80"] == pytest.approx(np.quantile(clv, 0.8))
    high = frame[(frame.segment == "") & (frame.value_tier == "high")]["customers"].sum()
    assert high == 2  # A (120) and F (90) are above the 80th percentile (76.0)
    vip = frame[frame.segment == "vip"]
    assert vip.loc[vip.value_tier == "high", "revenue"].sum() == pytest.approx(700.0)


def test_overlap(duck):
    frame = analytics.overlap(_membership(duck), NAMES).set_index(["segment", "other"])
    assert frame.loc[("vip", "subscribed"), "shared"] == 2
    assert frame.loc[("vip", "subscribed"), "share_of_segment"] == pytest.approx(1.0)
    assert frame.loc[("subscribed", "vip"), "share_of_segment"] == pytest.approx(0.4)
    assert frame.loc[("subscribed", "subscribed"), "shared"] == 5
    assert math.isnan(frame.loc[("nobody", "vip"), "share_of_segment"])


def test_month_ends():
    points = month_ends(AS_OF, 3)
    assert [p.date() for p in points] == [date(2024, 4, 30), date(2024, 5, 31), date(2024, 6, 30)]
    mid = datetime(2024, 3, 15, 23, 59, 59, tzinfo=UTC)
    assert [p.date() for p in month_ends(mid, start=date(2023, 12, 5))] == [
        date(2023, 12, 31),
        date(2024, 1, 31),
        date(2024, 2, 29),
        date(2024, 3, 15),
    ]


@pytest.fixture(scope="module")
def fitted(duck):
    with pytest.warns(Warning):  # six customers: the CLV models fall back, and say so
        return FittedModels.fit(duck.orders, AS_OF, 90, events=duck.events)


def test_growth_re_evaluates_each_month_end(duck, fitted):
    specs = [
        parse_segment({"name": "two", "where": {"orders": {"min": 2}}}),
        parse_segment({"name": "recent", "where": {"have_purchased": {"within_days": 31}}}),
    ]
    frame = segment_growth(specs, duck, fitted, month_ends(AS_OF, 3))
    got = {(r.segment, r.date.isoformat()): r.members for r in frame.itertuples()}
    # customers with an order by then: A, C, E, F; + B (05-15); + D (06-30)
    assert [got[("", d)] for d in ("2024-04-30", "2024-05-31", "2024-06-30")] == [4, 5, 6]
    # A's second order is on 06-28
    assert [got[("two", d)] for d in ("2024-04-30", "2024-05-31", "2024-06-30")] == [0, 0, 1]
    # "in the last 31 days" moves with the month end: F (04-01), B (05-15), A and D (June)
    assert [got[("recent", d)] for d in ("2024-04-30", "2024-05-31", "2024-06-30")] == [1, 1, 2]


def test_snapshot_at_as_of_reproduces_the_customer_table(duck, fitted):
    from workbench.models.customers import build_customers

    with pytest.warns(Warning):
        built = build_customers(duck.orders, AS_OF, horizon_days=90, events=duck.events)
    rebuilt = FittedModels.from_metrics({"customer_models": built.metrics}, 90)
    assert rebuilt is not None and rebuilt.source == "metrics.json"
    expected = built.table.to_pandas().sort_values("customer_id").reset_index(drop=True)
    for models in (fitted, rebuilt):
        got = snapshot_customers(duck, [AS_OF], models).to_pandas()
        got = got.sort_values("customer_id").reset_index(drop=True)[expected.columns]
        pd.testing.assert_frame_equal(got, expected, check_dtype=False, atol=1e-6)


def test_growth_joins_only_the_attributes_its_segments_read(duck, fitted):
    from workbench.segments.compile import leaf_columns

    where = {
        "all": [
            {"subscribed": True},
            {"any": [{"country": ["GB", "FR"]}, {"not": {"predicted_clv": {"min": 50}}}]},
            {"attribute": {"column": "email", "op": "contains", "value": "example"}},
            {"have_purchased": {"within_days": 400}},
        ]
    }
    spec = parse_segment({"name": "mixed", "where": where})
    assert leaf_columns(spec.where, duck) == {"subscribed", "country", "predicted_clv_90d", "email"}
    points = month_ends(AS_OF, 3)
    slim = snapshot_customers(duck, points, fitted, attributes={"country"})
    full = snapshot_customers(duck, points, fitted)
    assert "country" in slim.columns and "email" not in slim.columns
    assert {"email", "phone", "language", "zip"} <= set(full.columns)
    key = ["_snap", "customer_id"]
    pd.testing.assert_frame_equal(
        slim.to_pandas().sort_values(key).reset_index(drop=True),
        full.to_pandas()[list(slim.columns)].sort_values(key).reset_index(drop=True),
    )
    # the growth of a segment reading attributes equals its members at each month end
    frame = segment_growth([spec], duck, fitted, points)
    got = frame[frame.segment == "mixed"]["members"].tolist()
    for i, when in enumerate(points):
        today = full.filter(full._snap == i).drop("_snap")
        members = evaluate_segments([spec], duck.with_as_of(when, today)).to_pandas()
        assert got[i] == len(members)
    assert sum(got) > 0


def test_from_metrics_needs_every_section():
    assert FittedModels.from_metrics({}, 90) is None
    assert FittedModels.from_metrics({"clv": {"bgnbd": {}}, "labels": {}}, 90) is None


@pytest.mark.spark
def test_analytics_and_growth_on_spark_match_duckdb(spark, duck, fitted):
    on_spark = tiny_data(ibis.pyspark.connect(spark))
    recent = parse_segment({"name": "recent", "where": {"have_purchased": {"within_days": 31}}})
    growth_specs = [*SPECS[:2], recent]
    points = month_ends(AS_OF, 3)
    pd.testing.assert_frame_equal(
        segment_growth(growth_specs, on_spark, fitted, points),
        segment_growth(growth_specs, duck, fitted, points),
        check_dtype=False,
    )
    members = pa.Table.from_pandas(evaluate_segments(SPECS, duck).to_pandas())
    frames = []
    for data in (duck, on_spark):
        m = upload(data.con, members.to_pandas(), "members")
        frames.append(
            (
                analytics.segment_summary(m, data.customers, NAMES, "predicted_clv_90d"),
                analytics.active_customers(m, data.customers, data.orders, AS_OF, NAMES, 3),
                analytics.overlap(m, NAMES),
            )
        )
    for a, b in zip(*frames, strict=True):
        pd.testing.assert_frame_equal(a, b, check_dtype=False)


@pytest.mark.spark
def test_snapshots_on_spark_are_scored_in_the_engine(spark, duck, fitted, monkeypatch):
    """No customer x instant row is collected to the driver, and the rows equal DuckDB's."""
    import ibis.expr.types as ir

    on_spark = tiny_data(ibis.pyspark.connect(spark))
    points = month_ends(AS_OF, 3)
    expected = snapshot_customers(duck, points, fitted).to_pandas()

    def refuse(*args, **kwargs):
        raise AssertionError("snapshot rows collected to the driver")

    with monkeypatch.context() as patch:
        for name in ("to_pandas", "to_pyarrow", "to_pyarrow_batches", "execute"):
            patch.setattr(ir.Table, name, refuse)
        table = snapshot_customers(on_spark, points, fitted)
    got = table.to_pandas()[list(expected.columns)]
    key = ["_snap", "customer_id"]
    for frame in (got, expected):
        for col in frame.columns:
            if str(frame[col].dtype).startswith("datetime"):
                frame[col] = pd.to_datetime(frame[col], utc=True).astype("datetime64[us, UTC]")
    pd.testing.assert_frame_equal(
        got.sort_values(key).reset_index(drop=True),
        expected.sort_values(key).reset_index(drop=True),
        check_dtype=False,
        atol=1e-9,
    )


def _random_shop(n_customers: int = 150, seed: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Orders (multi-line orders, returns, several orders a day) and events, at random."""
    rng = np.random.default_rng(seed)
    rows, events = [], []
    start = pd.Timestamp("2023-01-01", tz="UTC")
    for c in range(n_customers):
        for o in range(rng.integers(1, 8)):
            when = start + pd.Timedelta(minutes=int(rng.integers(0, 560 * 24 * 60)))
            for line in range(rng.integers(1, 4)):
                qty = float(rng.integers(1, 4))
                ret = bool(rng.random() < 0.08)
                price = float(rng.choice([2.5, 9.99, 25.0, 40.0]) * rng.uniform(0.8, 1.2))
                rows.append((f"o{c}_{o}", f"C{c:03d}", when, f"P{rng.integers(0, 12)}",
                             -qty if ret else qty, price, ret, line))  # fmt: skip
        for _ in range(rng.integers(0, 5)):
            when = start + pd.Timedelta(minutes=int(rng.integers(0, 580 * 24 * 60)))
            events.append((f"C{c:03d}", when, "view", "P1", None))
    orders = pd.DataFrame(
        rows,
        columns=["order_id", "customer_id", "ordered_at", "product_id", "quantity",
                 "unit_price", "is_return", "line_no"],
    )  # fmt: skip
    orders["revenue"] = orders["quantity"] * orders["unit_price"]
    orders["product_category"] = "Cat " + orders["product_id"].str[-1]
    ev = pd.DataFrame(events, columns=["customer_id", "occurred_at", "event_type", "product_id",
                                       "query"])  # fmt: skip
    ev["query"] = ev["query"].astype("string")
    return orders, ev


@pytest.mark.parametrize("reference", ["product", "category"])
def test_snapshot_features_equal_the_models_features_at_each_point(reference):
    from workbench.models.features import customer_features, period_order_counts
    from workbench.segments.snapshots import snapshot_features

    con = ibis.duckdb.connect()
    orders_df, events_df = _random_shop()
    orders, events = upload(con, orders_df, "o"), upload(con, events_df, "e")
    points = month_ends(datetime(2024, 7, 10, 23, 59, 59, 999999, tzinfo=UTC), 4)
    period = 45
    got = snapshot_features(
        orders, points, events=events, price_reference=reference, period_days=period
    ).to_pandas()
    for i, when in enumerate(points):
        feats = customer_features(orders, when, events=events, price_reference=reference)
        counts = period_order_counts(orders, when, period)
        want = feats.left_join(counts, "customer_id").drop("customer_id_right").to_pandas()
        want = want.sort_values("customer_id").reset_index(drop=True)
        mine = got[got["_snap"] == i].sort_values("customer_id").reset_index(drop=True)
        columns = [c for c in want.columns if c != "price_index" or i == len(points) - 1]
        assert len(mine) == len(want) > 50
        pd.testing.assert_frame_equal(
            mine[columns], want[columns], check_dtype=False, atol=1e-9, rtol=1e-9
        )


def test_snapshot_sd_of_equal_intervals_is_exactly_zero():
    from workbench.segments.snapshots import snapshot_features

    con = ibis.duckdb.connect()
    days = pd.to_datetime(["2024-01-01", "2024-01-11", "2024-01-21", "2024-01-31"], utc=True)
    orders = pd.DataFrame(
        {
            "order_id": [f"o{i}" for i in range(4)],
            "customer_id": "A",
            "ordered_at": days + pd.Timedelta(hours=12),
            "product_id": "P1",
            "quantity": 1.0,
            "unit_price": 10.0,
            "is_return": False,
            "line_no": 0,
            "revenue": 10.0,
        }
    )
    points = month_ends(datetime(2024, 3, 10, 23, 59, 59, 999999, tzinfo=UTC), 3)
    got = snapshot_features(upload(con, orders, "o"), points, period_days=30).to_pandas()
    got = got.sort_values("_snap")
    assert got["sd_interval_days"].tolist() == [0.0, 0.0, 0.0]
    assert got["mean_interval_days"].tolist() == [10.0, 10.0, 10.0]
    # periods (a - 30, a] and (a - 60, a - 30] at 01-31, 02-29, 03-10
    assert got["orders_p0"].tolist() == [3, 1, 0]
    assert got["orders_p1"].tolist() == [1, 3, 3]
