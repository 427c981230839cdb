"""Headline figures of a run: customers, active customers and growth, revenue, AOV, frequency."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import ibis


def _period(orders: ibis.Table, start: datetime, end: datetime) -> dict[str, float]:
    """Sales figures for orders in ``(start, end]``."""
    rows = orders.filter((orders.ordered_at > start) & (orders.ordered_at <= end))
    sale = ~rows.is_return
    agg = rows.aggregate(
        active_customers=rows.customer_id.nunique(where=sale),
        orders=rows.order_id.nunique(where=sale),
        sales=rows.revenue.sum(where=sale).cast("float64"),
        net_revenue=rows.revenue.sum().cast("float64"),
    )
    row = agg.to_pyarrow().to_pylist()[0]
    orders_n = int(row["orders"] or 0)
    active = int(row["active_customers"] or 0)
    sales = float(row["sales"] or 0.0)
    return {
        "active_customers": active,
        "orders": orders_n,
        "net_revenue": round(float(row["net_revenue"] or 0.0), 2),
        "aov": round(sales / orders_n, 2) if orders_n else None,
        "orders_per_active_customer": round(orders_n / active, 3) if active else None,
    }


def _growth(current: float | None, previous: float | None) -> float | None:
    if current is None or not previous:
        return None
    return round((current - previous) / previous, 4)


def headline(orders: ibis.Table, as_of: datetime, window_days: int) -> dict[str, Any]:
    """Store figures for the last ``window_days`` to ``as_of`` and the window before it.

    Parameters
    ----------
    orders : ibis.Table
        Canonical order lines (``is_return`` lines reduce revenue and are not orders).
    as_of : datetime
        End of the current window (timezone-aware, UTC).
    window_days : int
        Window length in days (the run uses ``models.horizon_days``).

    Returns
    -------
    dict
        ``window_days``, ``current`` and ``previous`` period figures (active customers,
        orders, net revenue, AOV, orders per active customer), ``growth`` (relative change;
        None when the previous window is not fully covered by the data), ``all_time``
        (customers, orders, net revenue up to ``as_of``) and ``first_order_at``.
    """
    upto = orders.filter(orders.ordered_at <= as_of)
    sale = ~upto.is_return
    total = (
        upto.aggregate(
            customers=upto.customer_id.nunique(where=sale),
            orders=upto.order_id.nunique(where=sale),
            net_revenue=upto.revenue.sum().cast("float64"),
            first=upto.ordered_at.min(),
        )
        .to_pyarrow()
        .to_pylist()[0]
    )
    start = as_of - timedelta(days=window_days)
    previous_start = start - timedelta(days=window_days)
    current = _period(orders, start, as_of)
    previous = _period(orders, previous_start, start)
    first = total["first"]
    if first is not None and first.tzinfo is None:
        first = first.replace(tzinfo=as_of.tzinfo)
    covered = first is not None and first <= previous_start
    growth = {
        key: (_growth(current[key], previous[key]) if covered else None)
        for key in ("active_customers", "orders", "net_revenue", "aov")
    }
    return {
        "as_of": as_of.isoformat(),
        "window_days": window_days,
        "current": current,
        "previous": previous,
        "previous_window_covered": covered,
        "growth": growth,
        "all_time": {
            "customers": int(total["customers"] or 0),
            "orders": int(total["orders"] or 0),
            "net_revenue": round(float(total["net_revenue"] or 0.0), 2),
        },
        "first_order_at": first.isoformat() if first is not None else None,
    }
