"""Customer features as of many instants in one pass (for Customer Base Growth).

:func:`workbench.models.features.customer_features` scans every order line once per
``as_of``; twelve month ends would cost twelve scans of the order lines plus twelve Behaviour
period counts. Here the lines are reduced once to one row per customer and day (sales, orders,
net revenue, paid and reference value, gap to the previous purchase day), the web events to one
row per customer and period between two instants (latest event). The days are reduced again to
one row per customer and period between two instants (sums, extremes, interval moments); the
event periods are stacked under those, one window pass per customer gives running totals, and
each running row is joined to the instants it stands for (from its period up to the customer's
next one). The Behaviour period counts join only the days of the last two periods before each
instant.

The definitions are those of :mod:`workbench.models.features` (the tests compare both at
several instants), with one deliberate difference: the price index compares what a customer
paid with the store's average price per item *over the whole run up to its as_of* (the run's
reference prices, part of the fitted Price Sensitivity model), not the average up to each
instant. Two facts make the reduction exact: the gap between consecutive purchase days does
not change when later days are cut off, and a customer's first purchase day is the same at
every instant after it.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import ibis
import ibis.expr.types as ir
import pandas as pd

from workbench.models.features import PriceReference, day_of, epoch_day
from workbench.segments.data import ts_literal, upload
from workbench.segments.window import first_instant

if TYPE_CHECKING:
    from ibis.backends import BaseBackend

__all__ = ["snapshot_features"]


def _reference_prices(sales: ir.Table, reference: PriceReference) -> ir.Table:
    """Average price paid per item (product, or category falling back to product)."""
    key = sales.product_id
    if reference == "category":
        key = sales.product_category.fill_null(sales.product_id)
    keyed = sales.mutate(_ref_key=key)
    return keyed.group_by("_ref_key").aggregate(_ref_price=keyed._paid.sum() / keyed.quantity.sum())


def _daily(orders: ir.Table, until: datetime, reference: PriceReference) -> ir.Table:
    """One row per customer and day with activity: sales, orders, revenue, paid, at_ref, gap."""
    lines = orders.filter(orders.ordered_at <= ts_literal(until))
    lines = lines.mutate(
        day=day_of(lines.ordered_at), _money=lines.revenue.cast("float64"), _sale=~lines.is_return
    )
    priced = lines.filter(lines._sale & (lines.quantity > 0)).mutate(_paid=lines._money)
    ref = _reference_prices(priced, reference)
    key = priced.product_id
    if reference == "category":
        key = priced.product_category.fill_null(priced.product_id)
    priced = priced.mutate(_ref_key=key)
    priced = priced.inner_join(ref, "_ref_key")
    value = priced.group_by(["customer_id", "day"]).aggregate(
        paid=priced._paid.sum(), at_ref=(priced.quantity * priced._ref_price).sum()
    )
    per_day = lines.group_by(["customer_id", "day"]).aggregate(
        revenue=lines._money.sum(),
        sales=ibis.ifelse(lines._sale, lines._money, 0.0).sum(),
        orders=lines.order_id.nunique(where=lines._sale),
        sale_lines=lines._sale.cast("int64").sum(),
        first_sale_at=lines.ordered_at.min(where=lines._sale),
        last_sale_at=lines.ordered_at.max(where=lines._sale),
    )
    sale_days = per_day.filter(per_day.sale_lines > 0)
    window = ibis.window(group_by=sale_days.customer_id, order_by=sale_days.day)
    gaps = sale_days.select(
        "customer_id", "day", interval=(sale_days.day - sale_days.day.lag().over(window))
    )
    first = sale_days.group_by("customer_id").aggregate(
        first_day=sale_days.day.min(), first_day_sales=sale_days.sales.argmin(sale_days.day)
    )
    out = per_day.left_join(gaps, ["customer_id", "day"]).drop("customer_id_right", "day_right")
    out = out.left_join(value, ["customer_id", "day"]).drop("customer_id_right", "day_right")
    out = out.left_join(first, "customer_id").drop("customer_id_right")
    return out.mutate(
        interval=out.interval.cast("float64"),
        paid=out.paid.fill_null(0.0),
        at_ref=out.at_ref.fill_null(0.0),
    )


def _points(con: BaseBackend, points: list[datetime]) -> ir.Table:
    frame = pd.DataFrame(
        {
            "_snap": list(range(len(points))),
            "_a_day": [epoch_day(p) for p in points],
            "_as_of": pd.to_datetime([p.isoformat() for p in points], utc=True),
        }
    )
    return upload(con, frame, "points")


def _event_periods(events: ir.Table, points: list[datetime]) -> ir.Table:
    """Latest web event per customer and period between two instants (``_b``)."""
    ev = events.filter(events.occurred_at <= ts_literal(points[-1]))
    bucket = first_instant(ev.occurred_at, points)  # never null: ev ends at the last point
    return ev.group_by(["customer_id", bucket.name("_b")]).aggregate(
        _last_event_at=ev.occurred_at.max()
    )


def _first_point(day: ir.IntegerValue, points: list[datetime]) -> ir.IntegerValue:
    """The first instant whose day is on or after ``day`` (null: after the last)."""
    return ibis.cases(*[(day <= epoch_day(p), i) for i, p in enumerate(points)]).cast("int64")


def _cumulative(
    daily: ir.Table, points: list[datetime], grid: ir.Table, events: ir.Table | None = None
) -> ir.Table:
    """Per instant and customer, the totals over the days up to it (and the latest event).

    The days are first reduced to one row per customer and *period between two instants*
    (sums, extremes, and count / sum / sum of squares of the purchase intervals); those rows,
    far fewer than the days, get running totals per customer (one window pass), and each
    running row stands for the instants from its period up to the customer's next period
    (a join on the small instant grid; no second aggregation over customer x instant). The
    interval's sample standard deviation comes from integer sums, so equal intervals give
    exactly 0. The web events' periods (latest event each) are stacked under the order periods
    before the window pass, so the latest event by each instant is one more running maximum;
    at a period with both, the event row sorts first and the order row carries the totals.
    """
    sale = daily.sale_lines > 0
    interval = daily.interval.cast("int64")
    daily = daily.mutate(_b=_first_point(daily.day, points), _sale=sale, _iv=interval)
    daily = daily.filter(daily._b.notnull())
    per_b = daily.group_by(["customer_id", "_b"]).aggregate(
        revenue=daily.revenue.sum(),
        sales=daily.sales.sum(),
        orders=daily.orders.sum(),
        order_days=daily._sale.cast("int64").sum(),
        first_sale_at=daily.first_sale_at.min(),
        last_sale_at=daily.last_sale_at.max(),
        last_day=daily.day.max(where=daily._sale),
        first_day=daily.first_day.max(),
        first_day_sales=daily.first_day_sales.max(),
        iv_n=daily._iv.count(),
        iv_s=daily._iv.sum(),
        iv_ss=(daily._iv * daily._iv).sum(),
        paid=daily.paid.sum(),
        at_ref=daily.at_ref.sum(),
    )
    if events is not None:
        ev = _event_periods(events, points)
        stamp = ev._last_event_at.type()
        per_b = per_b.mutate(_last_event_at=ibis.null(stamp), _src=ibis.literal(1, "int8"))
        ev = ev.select(
            *[
                ev[c] if c in ev.columns else ibis.null(per_b[c].type()).name(c)
                for c in per_b.columns
                if c != "_src"
            ],
            _src=ibis.literal(0, "int8"),
        )
        per_b = per_b.union(ev)
    else:
        per_b = per_b.mutate(_src=ibis.literal(1, "int8"))
    # running totals per customer over its periods, then each running row is the customer's
    # state at every instant from its period up to (not including) its next period's; the
    # (period, source) order is unique per customer, so both windows see the same order
    order = [per_b._b, per_b._src]
    running = ibis.cumulative_window(group_by=per_b.customer_id, order_by=order)
    following = ibis.window(group_by=per_b.customer_id, order_by=order)
    extra = {}
    if events is not None:
        extra["_last_event_at"] = per_b._last_event_at.max().over(running)
    cum = per_b.select(
        "customer_id",
        "_b",
        _next=per_b._b.lead().over(following).fill_null(len(points)),
        revenue=per_b.revenue.sum().over(running),
        gross_sales=per_b.sales.sum().over(running),
        orders=per_b.orders.sum().over(running),
        order_days=per_b.order_days.sum().over(running),
        first_order_at=per_b.first_sale_at.min().over(running),
        last_order_at=per_b.last_sale_at.max().over(running),
        _last_day=per_b.last_day.max().over(running),
        _first_day=per_b.first_day.max().over(running),
        _first_day_sales=per_b.first_day_sales.max().over(running),
        _n=per_b.iv_n.sum().over(running),
        _s=per_b.iv_s.fill_null(0).sum().over(running),
        _ss=per_b.iv_ss.fill_null(0).sum().over(running),
        _paid=per_b.paid.sum().over(running),
        _at_ref=per_b.at_ref.sum().over(running),
        **extra,
    )
    per = cum.inner_join(grid, [cum._b <= grid._snap, grid._snap < cum._next])
    per = per.drop("_b", "_next")
    n, total, squares = per._n.cast("int64"), per._s.cast("int64"), per._ss.cast("int64")
    spread = n * squares - total * total
    variance = spread.cast("float64") / (n * (n - 1)).cast("float64")
    sd = ibis.ifelse(n >= 2, variance.clip(lower=0.0).sqrt(), ibis.null("float64"))
    return per.mutate(sd_interval_days=sd).drop("_n", "_s", "_ss")


def _period_orders(
    daily: ir.Table, points: list[datetime], grid: ir.Table, period_days: int
) -> ir.Table:
    """Per instant and customer, orders in the last period and the one before (Behaviour)."""
    recent = daily.filter(daily.day > epoch_day(points[0]) - 2 * period_days)
    joined = recent.inner_join(
        grid, [recent.day <= grid._a_day, recent.day > grid._a_day - 2 * period_days]
    )
    sums = {}
    for k in range(2):
        hi = joined._a_day - k * period_days
        inside = (joined.day > hi - period_days) & (joined.day <= hi)
        sums[f"orders_p{k}"] = ibis.ifelse(inside, joined.orders, 0).sum().cast("int64")
    return joined.group_by(["_snap", "customer_id"]).aggregate(**sums)


def snapshot_features(
    orders: ir.Table,
    points: list[datetime],
    *,
    events: ir.Table | None = None,
    price_reference: PriceReference = "product",
    period_days: int | None = None,
) -> ir.Table:
    """Per instant and customer: the features of :func:`customer_features` (and period counts).

    Parameters
    ----------
    orders : ibis.Table
        Canonical order lines.
    points : list of datetime
        Increasing timezone-aware instants; the last one is the run's ``as_of`` (reference
        prices are computed up to it).
    events : ibis.Table, optional
        Canonical web events (``last_active_at``).
    price_reference : {"product", "category"}
        Items the price index compares with (as the run's Price Sensitivity model).
    period_days : int, optional
        Behaviour period ``P``: adds ``orders_p0``, ``orders_p1``, ``exposure_p0``,
        ``exposure_p1`` (as :func:`workbench.models.features.period_order_counts`).

    Returns
    -------
    ibis.Table
        ``_snap`` (index into ``points``) and the feature columns, one row per instant and
        customer with a purchase by then.
    """
    con = orders._find_backend()
    grid = _points(con, points)
    daily = _daily(orders, points[-1], price_reference)
    per = _cumulative(daily, points, grid, events)
    if period_days is not None:
        per = per.left_join(
            _period_orders(daily, points, grid, period_days), ["_snap", "customer_id"]
        )
        per = per.drop("_snap_right", "customer_id_right")
        per = per.mutate(**{f"orders_p{k}": per[f"orders_p{k}"].fill_null(0) for k in range(2)})
    per = per.filter(per.order_days > 0)
    frequency = per.order_days - 1
    span = per._last_day - per._first_day
    net_share = ibis.ifelse(
        per.gross_sales > 0, (per.revenue / per.gross_sales).clip(0.0, 1.0), 0.0
    )
    repeat_sales = (per.gross_sales - per._first_day_sales) / frequency.cast("float64")
    mean_interval = ibis.ifelse(
        frequency > 0, span.cast("float64") / frequency.cast("float64"), ibis.null("float64")
    )
    cols: dict[str, ir.Value] = {
        "orders": per.orders.cast("int64"),
        "order_days": per.order_days.cast("int64"),
        "frequency": frequency.cast("int64"),
        "revenue": per.revenue,
        "gross_sales": per.gross_sales,
        "aov": ibis.ifelse(per.orders > 0, per.revenue / per.orders, 0.0),
        "recency_days": (per._a_day - per._last_day).cast("int64"),
        "tenure_days": (per._a_day - per._first_day).cast("int64"),
        "repeat_span_days": span.cast("int64"),
        "mean_interval_days": mean_interval,
        "sd_interval_days": per.sd_interval_days,
        "interval_cv": ibis.ifelse(
            mean_interval > 0, per.sd_interval_days / mean_interval, ibis.null("float64")
        ),
        "monetary": ibis.ifelse(frequency > 0, (repeat_sales * net_share).clip(lower=0.0), 0.0),
        "price_index": ibis.ifelse(per._at_ref > 0, per._paid / per._at_ref, ibis.null("float64")),
    }
    if period_days is not None:
        for k in range(2):
            hi = per._a_day - k * period_days
            cols[f"orders_p{k}"] = per[f"orders_p{k}"]
            cols[f"exposure_p{k}"] = (hi - per._first_day + 1).clip(0, period_days).cast("int64")
    if events is None:
        cols["last_active_at"] = per.last_order_at
    else:
        cols["last_active_at"] = ibis.greatest(
            per.last_order_at, per._last_event_at.fill_null(per.last_order_at)
        )
    return per.select("_snap", "customer_id", "first_order_at", "last_order_at", **cols)
