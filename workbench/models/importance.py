"""Importance: one_time / frequent / loyal / vip (docs/design.md, section 4).

Rules, first match wins:

1. ``one_time``: a single purchase day (``frequency == 0``; several orders on the same day count
   once, as everywhere in the customer models);
2. ``vip``: predicted value (``predicted_clv_<h>d``) at or above the store's
   ``1 - vip_share`` quantile over all customers (top ~10%), and above zero;
3. ``loyal``: at least ``min_order_days_for_cadence`` (3) purchase days and an interval
   coefficient of variation at or below the store's median CV among such customers (a regular
   cadence);
4. ``frequent``: the other repeat buyers.

When every predicted value is zero (no repeat purchases to learn from), historical net revenue
ranks the VIPs instead; ``value_basis_`` says which was used.
"""

from __future__ import annotations

import logging
from typing import Any

import ibis
import numpy as np

log = logging.getLogger(__name__)

LABELS = ("one_time", "frequent", "loyal", "vip")


class ImportanceModel:
    """Data-driven Importance thresholds and labels.

    Parameters
    ----------
    value_column : str
        Column holding the predicted value (currency).
    vip_share : float
        Share of customers at the top of the value ranking that are VIP.
    loyal_cv_quantile : float
        Quantile of the interval CV (among customers with a measurable cadence) below which a
        repeat buyer is loyal.
    min_order_days_for_cadence : int
        Purchase days needed to measure a cadence (two intervals).

    Attributes
    ----------
    vip_threshold_ : float
        Value at or above which a repeat buyer is VIP (currency).
    value_basis_ : str
        ``value_column`` or ``revenue``.
    loyal_cv_threshold_ : float
        Largest interval CV of a loyal customer.
    """

    def __init__(
        self,
        value_column: str = "predicted_clv",
        vip_share: float = 0.10,
        loyal_cv_quantile: float = 0.5,
        min_order_days_for_cadence: int = 3,
    ) -> None:
        self.value_column = value_column
        self.vip_share = vip_share
        self.loyal_cv_quantile = loyal_cv_quantile
        self.min_order_days_for_cadence = min_order_days_for_cadence

    def fit(self, features: ibis.Table) -> ImportanceModel:
        """Learn the VIP value threshold and the loyal CV threshold."""
        df = features.select(
            value=features[self.value_column],
            revenue=features.revenue,
            order_days=features.order_days,
            interval_cv=features.interval_cv,
        ).to_pandas()
        self.value_basis_ = self.value_column
        values = df["value"].fillna(0.0).to_numpy("float64")
        if not np.any(values > 0):
            self.value_basis_ = "revenue"
            values = df["revenue"].fillna(0.0).to_numpy("float64")
            log.warning("all predicted values are zero: VIPs are ranked by historical revenue")
        q = 1.0 - self.vip_share
        self.vip_threshold_ = float(np.quantile(values, q, method="higher")) if len(values) else 0.0
        cvs = df.loc[df["order_days"] >= self.min_order_days_for_cadence, "interval_cv"].dropna()
        self.loyal_cv_threshold_ = (
            float(np.quantile(cvs, self.loyal_cv_quantile)) if len(cvs) else 0.0
        )
        self.n_cadence_customers_ = len(cvs)
        return self

    def label(self, features: ibis.Table) -> ibis.StringValue:
        """The Importance label of each row.

        Needs frequency, order_days, interval_cv and the value column.
        """
        value = features[self.value_basis_].fill_null(0.0)
        regular = (features.order_days >= self.min_order_days_for_cadence) & (
            features.interval_cv.fill_null(np.inf) <= self.loyal_cv_threshold_
        )
        return ibis.cases(
            (features.frequency == 0, "one_time"),
            ((value >= self.vip_threshold_) & (value > 0), "vip"),
            (regular, "loyal"),
            else_="frequent",
        )

    def thresholds(self) -> dict[str, Any]:
        """The thresholds in force, for metrics.json and the report."""
        return {
            "rule": (
                "one_time: one purchase day; vip: value >= vip_threshold (top vip_share of all "
                "customers) and > 0; loyal: >= min_order_days_for_cadence purchase days and "
                "interval CV <= loyal_cv_threshold; frequent: other repeat buyers"
            ),
            "value_basis": self.value_basis_,
            "vip_share": self.vip_share,
            "vip_threshold": self.vip_threshold_,
            "loyal_cv_quantile": self.loyal_cv_quantile,
            "loyal_cv_threshold": self.loyal_cv_threshold_,
            "min_order_days_for_cadence": self.min_order_days_for_cadence,
            "cadence_customers": self.n_cadence_customers_,
        }
