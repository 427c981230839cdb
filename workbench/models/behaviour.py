"""Behaviour trend: rising / stable / falling order frequency (docs/design.md, section 4).

Orders are counted in two consecutive periods of ``P`` days ending on the ``as_of`` day
(:func:`workbench.models.features.period_order_counts`): the last period ``n0`` and the one
before ``n1``. ``P`` is data-driven: the median of the repeat buyers' mean intervals, clamped to
``[min_period_days, max_period_days]`` (a typical customer orders about once per period).

Whether ``n0`` differs from ``n1`` more than chance is judged against the store, not against
zero, so a seasonal peak does not make everybody "rising": ``s`` is the store's share of orders
falling in the last period (customers active before both periods). Under "same rate as the
store", ``n0 | n0 + n1 ~ Binomial(n0 + n1, s_i)`` where ``s_i`` also accounts for the part of
the periods before the customer's first order (exposure ``e0``, ``e1`` days):
``s_i = e0 s / (e0 s + e1 (1 - s))``. The label uses the standardised difference
``z = (n0 - N s_i) / sqrt(N s_i (1 - s_i))``: ``rising`` above ``z_threshold`` (1 SD),
``falling`` below ``-z_threshold``, else ``stable``. Also ``stable``: fewer than ``min_orders``
(2) orders in the two periods together (one order cannot show a change), or no exposure before
the last period (too new to tell).
"""

from __future__ import annotations

from typing import Any

import ibis
import numpy as np

LABELS = ("rising", "stable", "falling")


def trend_period_days(
    features: ibis.Table, min_days: int = 30, max_days: int = 365, default: int = 90
) -> int:
    """Period length ``P`` for the trend: median mean interval of repeat buyers, clamped."""
    rep = features.filter(features.frequency > 0)
    values = rep.select("mean_interval_days").to_pandas()["mean_interval_days"].dropna()
    if not len(values):
        return default
    return int(np.clip(round(float(np.median(values))), min_days, max_days))


class BehaviourModel:
    """Data-driven trend labels from per-period order counts.

    Parameters
    ----------
    z_threshold : float
        Standardised difference beyond which the trend is rising / falling.
    min_orders : int
        Fewest orders in the two periods together for a rising / falling label.

    Attributes
    ----------
    store_share_last_ : float
        Share of the store's orders in the last of the two periods (``s``).
    n_customers_ : int
        Customers the store share is computed from (fully exposed to both periods).
    """

    def __init__(self, z_threshold: float = 1.0, min_orders: int = 2) -> None:
        self.z_threshold = z_threshold
        self.min_orders = min_orders

    def fit(self, counts: ibis.Table, period_days: int) -> BehaviourModel:
        """Learn the store's trend from per-customer counts (orders_p0/p1, exposure_p0/p1)."""
        full = counts.filter(
            (counts.exposure_p0 == period_days) & (counts.exposure_p1 == period_days)
        )
        row = (
            full.aggregate(n0=full.orders_p0.sum(), n1=full.orders_p1.sum(), n=full.count())
            .to_pyarrow()
            .to_pylist()[0]
        )
        n0, n1 = float(row["n0"] or 0), float(row["n1"] or 0)
        self.period_days_ = int(period_days)
        self.n_customers_ = int(row["n"] or 0)
        self.store_share_last_ = n0 / (n0 + n1) if n0 + n1 > 0 else 0.5
        return self

    def z_score(self, counts: ibis.Table) -> ibis.FloatingValue:
        """Standardised difference of the last period's orders from the store trend."""
        s = min(max(self.store_share_last_, 1e-6), 1 - 1e-6)
        e0 = counts.exposure_p0.cast("float64")
        e1 = counts.exposure_p1.cast("float64")
        n0 = counts.orders_p0.cast("float64")
        n = n0 + counts.orders_p1.cast("float64")
        share = (e0 * s) / (e0 * s + e1 * (1 - s))
        var = n * share * (1 - share)
        usable = (e1 > 0) & (n >= self.min_orders) & (var > 0)
        return ibis.ifelse(usable, (n0 - n * share) / var.sqrt(), 0.0)

    def label(self, counts: ibis.Table) -> ibis.StringValue:
        """The Behaviour label of each row (needs orders_p0/p1 and exposure_p0/p1)."""
        z = self.z_score(counts)
        return ibis.cases(
            (z > self.z_threshold, "rising"),
            (z < -self.z_threshold, "falling"),
            else_="stable",
        )

    def thresholds(self) -> dict[str, Any]:
        """The thresholds in force, for metrics.json and the report."""
        return {
            "rule": (
                "orders in the last period vs the one before, against the store's trend: "
                "z = (n0 - N s_i) / sqrt(N s_i (1 - s_i)); rising: z > z_threshold, falling: "
                "z < -z_threshold, else stable (also with fewer than min_orders orders in both "
                "periods together)"
            ),
            "period_days": self.period_days_,
            "store_share_last_period": self.store_share_last_,
            "store_customers": self.n_customers_,
            "z_threshold": self.z_threshold,
            "min_orders": self.min_orders,
        }
