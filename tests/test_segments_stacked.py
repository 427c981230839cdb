"""Members at many instants in one query equal compiling the segment at each instant.

Every condition of ``test_segments_conditions.CASES`` (and random purchase / event conditions
on a random shop) is evaluated two ways over a stack of customer tables, one per instant: by
:func:`workbench.segments.stacked.stacked_members`, and by :func:`compile_where` against each
instant's table with ``as_of`` set to that instant. The member sets must be identical.
"""

from __future__ import annotations

from datetime import date, timedelta

import ibis
import numpy as np
import pandas as pd
import pytest

from tests.test_segments_analytics import _random_shop
from tests.test_segments_conditions import CASES, _one_per_kind, _spec
from workbench.notebook import end_of_day
from workbench.segments.compile import compile_where
from workbench.segments.data import SegmentData, upload
from workbench.segments.stacked import stacked_members
from workbench.segments.testing import AS_OF, tiny_data

#: Days before as_of: close together (7- and 3-day windows), then months and years apart.
BACK = [600, 400, 200, 120, 60, 31, 20, 10, 7, 3, 1, 0]
POINTS = [end_of_day(AS_OF.date() - timedelta(days=d)) for d in BACK]


def _stack(customers: ibis.Table, n: int) -> ibis.Table:
    parts = [customers.mutate(_snap=ibis.literal(i, type="int64")) for i in range(n)]
    return ibis.union(*parts, distinct=False)


def _per_point(where, data: SegmentData, states: ibis.Table, points) -> dict[int, set[str]]:
    out = {}
    for i, when in enumerate(points):
        seen = data.with_as_of(when, states.filter(states._snap == i).drop("_snap"))
        ids = compile_where(where, seen).customer_id.to_pyarrow().to_pylist()
        out[i] = set(ids)
    return out


def _stacked(where, data: SegmentData, states: ibis.Table, points) -> dict[int, set[str]]:
    rows = stacked_members(where, data, states, points).select("customer_id", "_snap")
    frame = rows.to_pandas()
    assert not frame.duplicated().any()
    return {i: set(frame.loc[frame["_snap"] == i, "customer_id"]) for i in range(len(points))}


@pytest.fixture(scope="module")
def duck():
    data = tiny_data(ibis.duckdb.connect())
    return data, _stack(data.customers, len(POINTS)).cache()


@pytest.mark.parametrize("where", [w for w, _ in CASES], ids=[w[:60] for w, _ in CASES])
def test_stacked_equals_each_instant_on_the_tiny_shop(duck, where):
    data, states = duck
    spec = _spec(where)
    want = _per_point(spec.where, data, states, POINTS)
    assert _stacked(spec.where, data, states, POINTS) == want
    # the last point is as_of: the run's own members
    assert want[len(POINTS) - 1] == dict(CASES)[where]


def _random_conditions(rng: np.random.Generator, n: int) -> list[str]:
    out = []
    for _ in range(n):
        kind = rng.choice(["have_purchased", "have_not_purchased", "viewed", "active_on_site"])
        window = {}
        if rng.random() < 0.6:
            window["within_days"] = int(rng.choice([5, 30, 45, 90, 200]))
        if rng.random() < 0.4:
            window["older_than_days"] = int(rng.integers(0, window.get("within_days", 120)))
        if rng.random() < 0.2:
            window["since"] = "2023-06-01"
        if kind in ("have_purchased", "have_not_purchased"):
            if rng.random() < 0.5:
                window["min_quantity"] = float(rng.choice([1, 2, 3.5, 6]))
            if rng.random() < 0.3:
                window["category"] = f"Cat {rng.integers(0, 10)}"
            if rng.random() < 0.3:
                window["price"] = {"lt": 20}
        elif rng.random() < 0.5:
            window["min_count"] = int(rng.integers(1, 4))
        body = ", ".join(f"{k}: {v}" for k, v in window.items())
        out.append(f"{kind}: {{{body}}}")
    return out


@pytest.fixture(scope="module")
def random_shop():
    con = ibis.duckdb.connect()
    orders_df, events_df = _random_shop(n_customers=300, seed=11)
    customers = pd.DataFrame({"customer_id": sorted(orders_df["customer_id"].unique())})
    customers["orders"] = np.arange(len(customers)) % 5
    data = SegmentData(
        con=con,
        customers=upload(con, customers, "c"),
        as_of=end_of_day(date(2024, 7, 31)),
        orders=upload(con, orders_df, "o"),
        events=upload(con, events_df, "e"),
    )
    points = [end_of_day(date(2024, 7, 31) - timedelta(days=d)) for d in range(540, -1, -36)]
    return data, _stack(data.customers, len(points)).cache(), points


def test_stacked_equals_each_instant_for_random_windows(random_shop):
    data, states, points = random_shop
    rng = np.random.default_rng(5)
    conditions = _random_conditions(rng, 24)
    trees = [*conditions, f"all: [{{{conditions[0]}}}, {{orders: {{min: 2}}}}]"]
    trees.append(f"any: [{{{conditions[1]}}}, {{not: {{{conditions[2]}}}}}]")
    sizes = []
    for where in trees:
        spec = _spec(where)
        want = _per_point(spec.where, data, states, points)
        assert _stacked(spec.where, data, states, points) == want, where
        sizes.append(len(want[len(points) - 1]))
    assert max(sizes) > 50  # the conditions select someone


def test_points_must_ascend(duck):
    data, states = duck
    with pytest.raises(ValueError, match="ascending"):
        stacked_members(_spec("orders: {min: 1}").where, data, states, POINTS[::-1])


@pytest.mark.spark
def test_stacked_on_spark_equals_duckdb(spark, duck):
    data, states = duck
    on_spark = tiny_data(ibis.pyspark.connect(spark))
    spark_states = _stack(on_spark.customers, len(POINTS))
    for where, _ in _one_per_kind():
        spec = _spec(where)
        got = _stacked(spec.where, on_spark, spark_states, POINTS)
        assert got == _stacked(spec.where, data, states, POINTS), where
