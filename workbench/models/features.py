"""Customer features as ibis expressions: one code path for DuckDB and Spark.

Everything here is computed *as of* a timestamp: only order lines with ``ordered_at <= as_of``
are used, and every duration is counted in whole UTC calendar days up to the ``as_of`` day (the
BG/NBD literature's convention: several orders on one day are one purchase occasion).

Definitions (days are UTC calendar days; ``A`` is the ``as_of`` day):

- an **order day** is a day on which the customer has at least one non-return line;
- ``orders``: distinct order ids among non-return lines; returns reduce revenue, they are not
  orders;
- ``revenue``: net revenue of all lines (returns are negative), run currency;
- ``frequency``: repeat purchase occasions = order days - 1;
- ``recency_days``: days since the last order (``A - last order day``);
- ``tenure_days``: days since the first order (``A - first order day``; BG/NBD ``T``);
- ``repeat_span_days``: days between the first and the last order (BG/NBD ``t_x``);
- ``mean_interval_days`` / ``sd_interval_days``: mean and sample SD of the days between a
  customer's consecutive order days (null when undefined: one order day, or one interval for SD);
- ``monetary``: mean sales per repeat order day, scaled by the customer's share of sales not
  returned (the Gamma-Gamma spend input; 0 for one-time buyers);
- ``price_index``: what the customer paid divided by what the same quantities cost at the
  average price of the same products (or categories) in the store, 1.0 = average;
- ``last_active_at``: the latest web event or order, whichever is later.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Literal

import ibis

from workbench import engine

DAY_SECONDS = 86_400
PriceReference = Literal["product", "category"]


def end_of_day(day: date) -> datetime:
    """The last microsecond of a UTC calendar day (the instant an ``as_of`` date means)."""
    return datetime.combine(day, time.max, tzinfo=UTC)


def to_instant(value: date | datetime) -> datetime:
    """A timezone-aware UTC instant: dates mean the end of that day, naive datetimes are UTC."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return end_of_day(value)


def epoch_day(value: date | datetime) -> int:
    """Days since 1970-01-01 of the UTC calendar day holding ``value``."""
    day = to_instant(value).date() if isinstance(value, datetime) else value
    return (day - date(1970, 1, 1)).days


def day_of(ts: ibis.TimestampValue) -> ibis.IntegerValue:
    """Days since 1970-01-01 of the UTC calendar day of a timestamp column."""
    return (engine.whole_epoch_seconds(ts) // DAY_SECONDS).cast("int64")


def resolve_as_of(orders: ibis.Table, as_of: date | datetime | None) -> datetime:
    """The instant features are computed at.

    Parameters
    ----------
    orders : ibis.Table
        Canonical order lines.
    as_of : date, datetime or None
        A date means the end of that UTC day; None means the last ``ordered_at`` in the data.
    """
    if as_of is not None:
        return to_instant(as_of)
    last = orders.ordered_at.max().to_pyarrow().as_py()
    if last is None:
        raise ValueError("the orders table is empty: there is no as_of to default to")
    return to_instant(last)


def _ts(value: datetime) -> ibis.TimestampScalar:
    return ibis.literal(value, type="timestamp('UTC')")


def lines_until(orders: ibis.Table, as_of: datetime) -> ibis.Table:
    """Order lines with ``ordered_at <= as_of`` and their UTC day number (column ``day``)."""
    kept = orders.filter(orders.ordered_at <= _ts(as_of))
    return kept.mutate(day=day_of(kept.ordered_at))


def order_days(orders: ibis.Table, as_of: datetime) -> ibis.Table:
    """One row per customer and order day, with the gap to the previous order day.

    Returns
    -------
    ibis.Table
        customer_id, day (days since epoch), sales (currency, non-return lines), orders
        (distinct order ids), interval (days since the previous order day; null for the first).
    """
    lines = lines_until(orders, as_of)
    sales = lines.filter(~lines.is_return)
    per_day = sales.group_by(["customer_id", "day"]).aggregate(
        sales=sales.revenue.sum(),  # exact (decimal): the same on every engine, in any order
        orders=sales.order_id.nunique(),
    )
    window = ibis.window(group_by=per_day.customer_id, order_by=per_day.day)
    return per_day.mutate(interval=(per_day.day - per_day.day.lag().over(window)).cast("float64"))


def _price_index(lines: ibis.Table, reference: PriceReference) -> ibis.Table:
    """Customer price index: paid / (quantity x store average price of the same item)."""
    sales = lines.filter(~lines.is_return & (lines.quantity > 0))
    key = sales.product_id
    if reference == "category":
        key = sales.product_category.fill_null(sales.product_id)
    sales = sales.mutate(_ref_key=key, _paid=sales.revenue.cast("float64"))
    ref = sales.group_by("_ref_key").aggregate(_ref_price=sales._paid.sum() / sales.quantity.sum())
    joined = sales.inner_join(ref, "_ref_key")
    per_customer = joined.group_by("customer_id").aggregate(
        _paid=joined._paid.sum(), _at_ref=(joined.quantity * joined._ref_price).sum()
    )
    return per_customer.select(
        "customer_id",
        price_index=ibis.ifelse(
            per_customer._at_ref > 0,
            per_customer._paid / per_customer._at_ref,
            ibis.null("float64"),
        ),
    )


def order_day_stats(orders: ibis.Table, as_of: datetime) -> ibis.Table:
    """Per customer, from the order days: count, first/last day, first-day sales, interval SD."""
    days = order_days(orders, as_of)
    return days.group_by("customer_id").aggregate(
        order_days=days.count(),
        first_day=days.day.min(),
        last_day=days.day.max(),
        gross_sales=days.sales.sum().cast("float64"),
        first_day_sales=days.sales.argmin(days.day).cast("float64"),
        sd_interval_days=days.interval.std(how="sample"),
    )


def repeat_monetary(t: ibis.Table) -> ibis.FloatingValue:
    """Mean sales per repeat order day, scaled by the share of sales not returned (>= 0)."""
    frequency = (t.order_days - 1).cast("float64")
    net_share = ibis.ifelse(t.gross_sales > 0, (t.revenue / t.gross_sales).clip(0.0, 1.0), 0.0)
    repeat_sales = (t.gross_sales - t.first_day_sales) / frequency
    return ibis.ifelse(frequency > 0, (repeat_sales * net_share).clip(lower=0.0), 0.0)


def net_revenue(orders: ibis.Table, as_of: datetime) -> ibis.Table:
    """Net revenue (returns included, currency) per customer up to ``as_of``."""
    lines = lines_until(orders, as_of)
    return lines.group_by("customer_id").aggregate(revenue=lines.revenue.sum().cast("float64"))


def purchase_features(orders: ibis.Table, as_of: datetime) -> ibis.Table:
    """The order-based features of :func:`customer_features` (no price index, no events)."""
    a_day = epoch_day(as_of)
    lines = lines_until(orders, as_of)
    is_sale = ~lines.is_return
    totals = lines.group_by("customer_id").aggregate(
        revenue=lines.revenue.sum().cast("float64"),
        orders=lines.order_id.nunique(where=is_sale),
        first_order_at=lines.ordered_at.min(where=is_sale),
        last_order_at=lines.ordered_at.max(where=is_sale),
    )
    feats = order_day_stats(orders, as_of).inner_join(totals, "customer_id")
    frequency = feats.order_days - 1
    span = feats.last_day - feats.first_day
    mean_interval = ibis.ifelse(
        frequency > 0, span.cast("float64") / frequency.cast("float64"), ibis.null("float64")
    )
    return feats.select(
        "customer_id",
        "first_order_at",
        "last_order_at",
        orders=feats.orders.cast("int64"),
        order_days=feats.order_days.cast("int64"),
        frequency=frequency.cast("int64"),
        revenue=feats.revenue,
        gross_sales=feats.gross_sales,
        aov=ibis.ifelse(feats.orders > 0, feats.revenue / feats.orders, 0.0),
        recency_days=(a_day - feats.last_day).cast("int64"),
        tenure_days=(a_day - feats.first_day).cast("int64"),
        repeat_span_days=span.cast("int64"),
        mean_interval_days=mean_interval,
        sd_interval_days=feats.sd_interval_days,
        interval_cv=ibis.ifelse(
            mean_interval > 0, feats.sd_interval_days / mean_interval, ibis.null("float64")
        ),
        monetary=repeat_monetary(feats),
    )


def customer_features(
    orders: ibis.Table,
    as_of: datetime,
    *,
    events: ibis.Table | None = None,
    price_reference: PriceReference = "product",
) -> ibis.Table:
    """Per-customer features as of ``as_of`` (see the module docstring for definitions).

    Parameters
    ----------
    orders : ibis.Table
        Canonical order lines (docs/conventions.md).
    as_of : datetime
        Timezone-aware instant; lines after it are ignored.
    events : ibis.Table, optional
        Canonical web events; gives ``last_active_at``.
    price_reference : {"product", "category"}
        Items whose average price the customer's prices are compared with; ``category`` uses
        ``product_category`` and falls back to the product where the category is missing.

    Returns
    -------
    ibis.Table
        One row per customer with at least one non-return order line by ``as_of``: columns
        customer_id, first_order_at, last_order_at, orders, order_days, frequency, revenue,
        gross_sales, aov, recency_days, tenure_days, repeat_span_days, mean_interval_days,
        sd_interval_days, interval_cv, monetary, price_index, last_active_at. Money in the
        run currency (float64), durations in days.
    """
    feats = purchase_features(orders, as_of)
    prices = _price_index(lines_until(orders, as_of), price_reference)
    feats = feats.left_join(prices, "customer_id").drop("customer_id_right")
    if events is None:
        return feats.mutate(last_active_at=feats.last_order_at)
    ev = events.filter(events.occurred_at <= _ts(as_of))
    ev = ev.group_by("customer_id").aggregate(_last_event_at=ev.occurred_at.max())
    feats = feats.left_join(ev, "customer_id").drop("customer_id_right")
    last_active = ibis.greatest(
        feats.last_order_at, feats._last_event_at.fill_null(feats.last_order_at)
    )
    return feats.mutate(last_active_at=last_active).drop("_last_event_at")


def period_order_counts(
    orders: ibis.Table, as_of: datetime, period_days: int, periods: int = 2
) -> ibis.Table:
    """Orders per customer in consecutive periods ending on the ``as_of`` day.

    Period ``k`` (``k = 0`` the latest) covers the days ``(A - (k+1) P, A - k P]``. Also gives
    each period's exposure: the days of it on or after the customer's first order day.

    Parameters
    ----------
    orders : ibis.Table
        Canonical order lines.
    as_of : datetime
        Timezone-aware instant.
    period_days : int
        Period length ``P`` in days.
    periods : int
        Number of periods.

    Returns
    -------
    ibis.Table
        customer_id, ``orders_p0 .. orders_p{periods-1}`` (distinct orders),
        ``exposure_p0 ..`` (days).
    """
    a_day = epoch_day(as_of)
    days = order_days(orders, as_of)
    aggs: dict[str, ibis.Value] = {"_first_day": days.day.min()}
    for k in range(periods):
        hi, lo = a_day - k * period_days, a_day - (k + 1) * period_days
        inside = (days.day > lo) & (days.day <= hi)
        aggs[f"orders_p{k}"] = ibis.ifelse(inside, days.orders, 0).sum().cast("int64")
    counts = days.group_by("customer_id").aggregate(**aggs)
    exposures = {}
    for k in range(periods):
        hi = a_day - k * period_days
        exposure = (hi - counts._first_day + 1).clip(0, period_days)
        exposures[f"exposure_p{k}"] = exposure.cast("int64")
    return counts.mutate(**exposures).drop("_first_day")
