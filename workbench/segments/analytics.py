"""Segment analytics: each segment against the whole store.

All aggregation is ibis over the membership table (``segment``, ``customer_id``) joined to
the customer table, so it runs on DuckDB and Spark; only the small per-segment results reach
pandas. Definitions (money in the run currency, as of ``as_of``):

- ``customers``: members; ``share``: members / all customers;
- ``revenue``: members' lifetime net revenue; ``revenue_share``: of the store's revenue;
- ``orders``: their orders; ``aov`` = revenue / orders; ``order_frequency`` = orders per
  customer;
- ``avg_clv``: mean predicted CLV within the horizon; ``churn_risk``: mean P(no order within
  the horizon);
- ``*_vs_store``: the segment's value divided by the store's (1.0 = like the store).

The store is the row with an empty ``segment`` and ``scope = store`` (an empty name is never a
segment, so readers of ``summary.csv`` that list segments skip it).
"""

from __future__ import annotations

from datetime import datetime

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from workbench.segments.data import ts_literal

__all__ = [
    "CHURN_BANDS",
    "STORE",
    "VALUE_TIERS",
    "active_customers",
    "insights_matrix",
    "overlap",
    "segment_summary",
]

#: ``segment`` value of the store row.
STORE = ""
#: Value tiers by predicted CLV: store quantiles (low < q50 <= medium < q80 <= high).
VALUE_TIERS = {"low": 0.0, "medium": 0.5, "high": 0.8}
#: Churn-risk bands: store tertiles of churn risk.
CHURN_BANDS = {"low": 0.0, "medium": 1 / 3, "high": 2 / 3}
SUMMARY_COLUMNS = [
    "segment",
    "scope",
    "customers",
    "share",
    "revenue",
    "revenue_share",
    "orders",
    "aov",
    "order_frequency",
    "avg_clv",
    "churn_risk",
    "aov_vs_store",
    "order_frequency_vs_store",
    "avg_clv_vs_store",
    "churn_risk_vs_store",
]


def _scope(members: ir.Table, customers: ir.Table, columns: list[str]) -> ir.Table:
    """Members joined to the customer columns they need."""
    picked = customers.select("customer_id", *columns)
    joined = members.inner_join(picked, members.customer_id == picked.customer_id)
    return joined.select("segment", *columns)


def segment_summary(
    membership: ir.Table, customers: ir.Table, segments: list[str], clv_column: str
) -> pd.DataFrame:
    """Per segment and for the store: size, revenue, orders, AOV, frequency, CLV, churn risk.

    Parameters
    ----------
    membership : ibis.Table
        ``segment``, ``customer_id`` (one row per member).
    customers : ibis.Table
        The customer table (``revenue``, ``orders``, ``churn_risk`` and ``clv_column``).
    segments : list of str
        Every segment, in report order (empty ones get a row of zeros).
    clv_column : str
        The predicted-CLV column (``predicted_clv_<h>d``).

    Returns
    -------
    pandas.DataFrame
        :data:`SUMMARY_COLUMNS`; the store row first.
    """
    cols = ["revenue", "orders", "churn_risk", clv_column]
    everyone = customers.select(segment=ibis.literal(STORE), customer_id=customers.customer_id)
    both = _scope(membership, customers, cols).union(
        _scope(everyone, customers, cols), distinct=False
    )
    agg = both.group_by("segment").aggregate(
        customers=both.count(),
        revenue=both.revenue.sum().cast("float64"),
        orders=both.orders.cast("float64").sum(),
        avg_clv=both[clv_column].cast("float64").mean(),
        churn_risk=both.churn_risk.cast("float64").mean(),
    )
    frame = agg.to_pandas().set_index("segment")
    frame = frame.reindex([STORE, *segments])
    frame["customers"] = frame["customers"].fillna(0).astype("int64")
    frame[["revenue", "orders"]] = frame[["revenue", "orders"]].fillna(0.0)
    store = frame.loc[STORE]
    n = frame["customers"].astype("float64")
    frame["share"] = n / store["customers"] if store["customers"] else 0.0
    frame["revenue_share"] = frame["revenue"] / store["revenue"] if store["revenue"] else np.nan
    frame["aov"] = frame["revenue"] / frame["orders"].where(frame["orders"] > 0)
    frame["order_frequency"] = frame["orders"] / n.where(n > 0)
    for col in ("aov", "order_frequency", "avg_clv", "churn_risk"):
        base = frame.loc[STORE, col]
        frame[f"{col}_vs_store"] = frame[col] / base if base else np.nan
    frame["scope"] = ["store", *(["segment"] * len(segments))]
    frame = frame.reset_index().rename(columns={"index": "segment"})
    frame["orders"] = frame["orders"].astype("int64")
    return frame[SUMMARY_COLUMNS]


def month_bounds(as_of: datetime, months: int) -> list[datetime]:
    """``as_of`` minus 0 .. ``months`` calendar months (index k = k months back)."""
    stamp = pd.Timestamp(as_of)
    return [(stamp - pd.DateOffset(months=k)).to_pydatetime() for k in range(months + 1)]


def active_customers(
    membership: ir.Table,
    customers: ir.Table,
    orders: ir.Table,
    as_of: datetime,
    segments: list[str],
    months: int = 12,
) -> pd.DataFrame:
    """Active customers over the last 1..``months`` months, and growth against the period before.

    A member is *active over N months* when they ordered in ``(as_of - N months, as_of]``;
    the previous period is ``(as_of - 2N months, as_of - N months]``; ``growth`` =
    active / previous - 1 (NaN when nobody was active before, or when the data start inside
    the previous period, which would make any growth look large). Members are today's members.

    Returns
    -------
    pandas.DataFrame
        segment (``""`` = store), months, members, active, active_share (active / members),
        previous, growth.
    """
    bounds = month_bounds(as_of, 2 * months)
    first = orders.filter(~orders.is_return).ordered_at.min().to_pyarrow().as_py()
    if first is not None and first.tzinfo is None:
        first = first.replace(tzinfo=as_of.tzinfo)
    lines = orders.filter(
        ~orders.is_return
        & (orders.ordered_at <= ts_literal(as_of))
        & (orders.ordered_at > ts_literal(bounds[-1]))
    )
    flags = {}
    for n in range(1, months + 1):
        now = (lines.ordered_at > ts_literal(bounds[n])).cast("int64")
        before = (
            (lines.ordered_at > ts_literal(bounds[2 * n]))
            & (lines.ordered_at <= ts_literal(bounds[n]))
        ).cast("int64")
        flags[f"a{n}"] = now.max()
        flags[f"p{n}"] = before.max()
    per = lines.group_by("customer_id").aggregate(**flags)
    everyone = customers.select(segment=ibis.literal(STORE), customer_id=customers.customer_id)
    scoped = membership.select("segment", "customer_id").union(everyone, distinct=False)
    joined = scoped.left_join(per, scoped.customer_id == per.customer_id)
    sums = {k: joined[k].fill_null(0).sum() for k in flags}
    frame = joined.group_by("segment").aggregate(members=joined.count(), **sums).to_pandas()
    frame = frame.set_index("segment").reindex([STORE, *segments]).fillna(0)
    rows = []
    for seg, row in frame.iterrows():
        members = int(row["members"])
        for n in range(1, months + 1):
            active, previous = int(row[f"a{n}"]), int(row[f"p{n}"])
            covered = first is not None and first <= bounds[2 * n]
            growth = active / previous - 1 if previous and covered else np.nan
            share = active / members if members else np.nan
            rows.append((seg, n, members, active, share, previous, growth))
    columns = ["segment", "months", "members", "active", "active_share", "previous", "growth"]
    return pd.DataFrame(rows, columns=columns)


def _cuts(column: ir.Value, customers: ir.Table, levels: dict[str, float]) -> list[float]:
    qs = [q for q in levels.values() if q > 0]
    row = customers.aggregate(**{f"q{i}": column.quantile(q) for i, q in enumerate(qs)})
    values = row.to_pyarrow().to_pylist()[0]
    return [float(values[f"q{i}"] or 0.0) for i in range(len(qs))]


def _band(column: ir.Value, cuts: list[float], names: list[str]) -> ir.StringValue:
    cases = [(column >= cut, name) for cut, name in zip(cuts[::-1], names[:0:-1], strict=True)]
    return ibis.cases(*cases, else_=names[0])


def insights_matrix(
    membership: ir.Table, customers: ir.Table, segments: list[str], clv_column: str
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Audience Insights: customers and revenue per value tier x churn-risk band.

    Value tiers cut predicted CLV at the store's 50th and 80th percentiles; churn-risk bands
    at the store's tertiles of churn risk (thresholds returned), so "high value, high risk"
    means the same customers whichever segment they are in.

    Returns
    -------
    (pandas.DataFrame, dict)
        Rows segment (``""`` = store), value_tier, churn_risk_band, customers, revenue,
        share (of the segment's customers); and the thresholds.
    """
    clv = customers[clv_column].cast("float64").fill_null(0.0)
    risk = customers.churn_risk.cast("float64").fill_null(1.0)
    value_cuts = _cuts(clv, customers, VALUE_TIERS)
    risk_cuts = _cuts(risk, customers, CHURN_BANDS)
    tiered = customers.select(
        "customer_id",
        revenue=customers.revenue.cast("float64"),
        value_tier=_band(clv, value_cuts, list(VALUE_TIERS)),
        churn_risk_band=_band(risk, risk_cuts, list(CHURN_BANDS)),
    )
    everyone = tiered.select(segment=ibis.literal(STORE), customer_id=tiered.customer_id)
    scoped = membership.select("segment", "customer_id").union(everyone, distinct=False)
    joined = scoped.inner_join(tiered, scoped.customer_id == tiered.customer_id)
    agg = joined.group_by(["segment", "value_tier", "churn_risk_band"]).aggregate(
        customers=joined.count(), revenue=joined.revenue.sum()
    )
    frame = agg.to_pandas()
    grid = pd.MultiIndex.from_product(
        [[STORE, *segments], list(VALUE_TIERS), list(CHURN_BANDS)],
        names=["segment", "value_tier", "churn_risk_band"],
    )
    frame = frame.set_index(["segment", "value_tier", "churn_risk_band"]).reindex(grid)
    frame = frame.fillna(0.0).reset_index()
    frame["customers"] = frame["customers"].astype("int64")
    totals = frame.groupby("segment")["customers"].transform("sum")
    frame["share"] = frame["customers"] / totals.where(totals > 0)
    thresholds = {
        "clv_q50": value_cuts[0],
        "clv_q80": value_cuts[1],
        "churn_risk_q33": risk_cuts[0],
        "churn_risk_q67": risk_cuts[1],
    }
    return frame, thresholds


def overlap(membership: ir.Table, segments: list[str]) -> pd.DataFrame:
    """Members shared by every pair of segments.

    Returns
    -------
    pandas.DataFrame
        segment, other, shared (customers in both), share_of_segment (shared / segment size).
    """
    a = membership.select(seg_a=membership.segment, cid_a=membership.customer_id)
    b = membership.select(seg_b=membership.segment, cid_b=membership.customer_id)
    pairs = a.inner_join(b, a.cid_a == b.cid_b)
    counts = pairs.group_by(["seg_a", "seg_b"]).aggregate(shared=pairs.count()).to_pandas()
    grid = pd.MultiIndex.from_product([segments, segments], names=["seg_a", "seg_b"])
    frame = counts.set_index(["seg_a", "seg_b"]).reindex(grid).fillna(0).reset_index()
    frame["shared"] = frame["shared"].astype("int64")
    sizes = {
        s: int(frame.loc[(frame.seg_a == s) & (frame.seg_b == s), "shared"].sum()) for s in segments
    }
    frame["share_of_segment"] = [
        row.shared / sizes[row.seg_a] if sizes[row.seg_a] else np.nan for row in frame.itertuples()
    ]
    return frame.rename(columns={"seg_a": "segment", "seg_b": "other"})
