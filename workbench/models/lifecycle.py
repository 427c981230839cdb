"""Life Cycle: just_ordered / active / slipping_away / lost, on each customer's own cadence.

Rules (docs/design.md, section 4; days to the ``as_of`` day, ``d`` = days since the last order):

1. ``just_ordered`` when ``d <= just_ordered_days`` (30);
2. otherwise, with ``m`` the customer's mean interval and ``s`` its SD: ``active`` when
   ``d <= m + 1 s``, ``slipping_away`` when ``d <= m + 2 s``, ``lost`` beyond.

Where ``m`` and ``s`` come from (all data-driven, written to metrics.json):

- customers with one order day have no interval: ``m`` and ``s`` are the mean and SD of **all
  intervals in the store** (pooled over customers);
- repeat buyers use their own mean ``m``; their SD is shrunk toward the store's typical
  regularity, because one or two intervals say little about spread and a perfectly regular
  buyer (SD 0) would otherwise jump from active to lost on one day::

      s^2 = ((n - 1) s_own^2 + k0 (cv0 m)^2) / (n - 1 + k0)

  with ``n`` own intervals, ``k0 = prior_intervals`` (1: the store's regularity counts as one
  observed interval) and ``cv0`` the median coefficient of variation of the intervals of
  customers with at least ``min_intervals_for_cv`` (3) intervals.

A quarterly buyer with a steady cadence is therefore slipping after about four months, and a
yearly buyer is still active nine months after the last order.
"""

from __future__ import annotations

import logging
from typing import Any

import ibis
import numpy as np

log = logging.getLogger(__name__)

LABELS = ("just_ordered", "active", "slipping_away", "lost")


class LifeCycleModel:
    """Data-driven Life Cycle thresholds and labels.

    Parameters
    ----------
    just_ordered_days : int
        Days since the last order up to which a customer ``just_ordered``.
    active_sd, slipping_sd : float
        SDs above the mean interval that end ``active`` and ``slipping_away``.
    prior_intervals : float
        Weight ``k0`` of the store regularity in each customer's SD, in intervals.
    min_intervals_for_cv : int
        Customers with at least this many intervals define the store's typical CV.
    default_interval_days : float
        Interval assumed when the store has no repeat purchase at all (a warning is logged).

    Attributes
    ----------
    store_mean_interval_days_, store_sd_interval_days_ : float
        Mean and SD of all intervals in the store (days).
    cv_prior_ : float
        The store's typical coefficient of variation of intervals (``cv0``).
    cv_prior_source_ : str
    n_intervals_ : int
        Intervals the store statistics are based on.
    warnings_ : list of str
    """

    def __init__(
        self,
        just_ordered_days: int = 30,
        active_sd: float = 1.0,
        slipping_sd: float = 2.0,
        prior_intervals: float = 1.0,
        min_intervals_for_cv: int = 3,
        default_interval_days: float = 90.0,
    ) -> None:
        self.just_ordered_days = just_ordered_days
        self.active_sd = active_sd
        self.slipping_sd = slipping_sd
        self.prior_intervals = prior_intervals
        self.min_intervals_for_cv = min_intervals_for_cv
        self.default_interval_days = default_interval_days

    def fit(self, features: ibis.Table) -> LifeCycleModel:
        """Learn the store's interval distribution from customer features."""
        rep = features.filter(features.frequency > 0)
        df = rep.select("frequency", "mean_interval_days", "sd_interval_days", "interval_cv")
        df = df.to_pandas()
        self.warnings_: list[str] = []
        n = df["frequency"].to_numpy("float64")
        m = df["mean_interval_days"].to_numpy("float64")
        s = df["sd_interval_days"].fillna(0.0).to_numpy("float64")
        self.n_intervals_ = int(n.sum())
        if self.n_intervals_ == 0:
            msg = (
                "no customer has a repeat purchase: Life Cycle uses the default interval of "
                f"{self.default_interval_days:g} days (SD the same) for everyone"
            )
            self.warnings_.append(msg)
            log.warning(msg)
            self.store_mean_interval_days_ = float(self.default_interval_days)
            self.store_sd_interval_days_ = float(self.default_interval_days)
        else:
            mean = float(np.sum(n * m) / n.sum())
            within = float(np.sum((n - 1) * s**2))
            between = float(np.sum(n * (m - mean) ** 2))
            sd = np.sqrt((within + between) / (n.sum() - 1)) if n.sum() > 1 else mean
            self.store_mean_interval_days_ = mean
            self.store_sd_interval_days_ = float(sd)
        cvs = df.loc[df["frequency"] >= self.min_intervals_for_cv, "interval_cv"].dropna()
        if len(cvs):
            self.cv_prior_ = float(np.median(cvs))
            self.cv_prior_source_ = (
                f"median interval CV of {len(cvs)} customers with >= "
                f"{self.min_intervals_for_cv} intervals"
            )
        else:
            self.cv_prior_ = self.store_sd_interval_days_ / self.store_mean_interval_days_
            self.cv_prior_source_ = "store-wide interval SD / mean (too few regular customers)"
        return self

    def expected_interval(
        self, features: ibis.Table
    ) -> tuple[ibis.FloatingValue, ibis.FloatingValue]:
        """Per customer: the mean interval and the (shrunk) SD the label uses, in days."""
        n = features.frequency.cast("float64")
        own_mean = features.mean_interval_days
        own_sd = features.sd_interval_days.fill_null(0.0)
        k0 = float(self.prior_intervals)
        prior_sd = own_mean * self.cv_prior_
        shrunk = (((n - 1) * own_sd * own_sd + k0 * prior_sd * prior_sd) / (n - 1 + k0)).sqrt()
        one_order = features.frequency == 0
        mean = ibis.ifelse(one_order, self.store_mean_interval_days_, own_mean)
        sd = ibis.ifelse(one_order, self.store_sd_interval_days_, shrunk)
        return mean, sd

    def label(self, features: ibis.Table) -> ibis.StringValue:
        """The Life Cycle label of each row.

        Needs recency_days, frequency, mean_interval_days and sd_interval_days.
        """
        mean, sd = self.expected_interval(features)
        d = features.recency_days.cast("float64")
        return ibis.cases(
            (features.recency_days <= self.just_ordered_days, "just_ordered"),
            (d <= mean + self.active_sd * sd, "active"),
            (d <= mean + self.slipping_sd * sd, "slipping_away"),
            else_="lost",
        )

    def thresholds(self) -> dict[str, Any]:
        """The thresholds in force, for metrics.json and the report."""
        return {
            "rule": (
                f"just_ordered: days since last order <= {self.just_ordered_days}; active: <= "
                f"mean interval + {self.active_sd:g} SD; slipping_away: <= mean + "
                f"{self.slipping_sd:g} SD; lost: beyond. One-order customers use the store's "
                "interval mean and SD; repeat buyers their own mean and an SD shrunk toward "
                "cv_prior x own mean with prior_intervals pseudo-intervals"
            ),
            "just_ordered_days": self.just_ordered_days,
            "store_mean_interval_days": self.store_mean_interval_days_,
            "store_sd_interval_days": self.store_sd_interval_days_,
            "one_order_active_until_days": round(
                self.store_mean_interval_days_ + self.active_sd * self.store_sd_interval_days_, 3
            ),
            "one_order_slipping_until_days": round(
                self.store_mean_interval_days_ + self.slipping_sd * self.store_sd_interval_days_,
                3,
            ),
            "cv_prior": self.cv_prior_,
            "cv_prior_source": self.cv_prior_source_,
            "prior_intervals": self.prior_intervals,
            "intervals_in_store": self.n_intervals_,
            "warnings": self.warnings_,
        }
