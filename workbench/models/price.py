"""Price Sensitivity: cheap / average / expensive (docs/design.md, section 4).

Each customer's ``price_index`` (:mod:`workbench.models.features`) is what they paid divided by
what the same quantities cost at the store's average price of the same products (or
categories): 1.0 is average, 0.8 means 20% below. Indices are ratios, so the thresholds are
taken on their logarithm: with ``mu`` and ``sigma`` the mean and SD of ``log(price_index)``
over customers, ``cheap`` is below ``mu - width_sd sigma``, ``expensive`` above
``mu + width_sd sigma``, else ``average`` (also when the index is unknown). The thresholds are
reported back as index values (``exp``).
"""

from __future__ import annotations

from typing import Any

import ibis
import numpy as np

LABELS = ("cheap", "average", "expensive")


class PriceSensitivityModel:
    """Data-driven Price Sensitivity thresholds and labels.

    Parameters
    ----------
    width_sd : float
        SDs (of the log index) either side of the mean that make ``average``.

    Attributes
    ----------
    log_mean_, log_sd_ : float
        Mean and SD of ``log(price_index)`` over customers.
    cheap_below_, expensive_above_ : float
        The thresholds as price-index values.
    n_customers_ : int
        Customers with a price index.
    """

    def __init__(self, width_sd: float = 1.0) -> None:
        self.width_sd = width_sd

    def fit(self, features: ibis.Table) -> PriceSensitivityModel:
        """Learn the thresholds from the customers' price indices."""
        idx = features.filter(features.price_index > 0).select("price_index").to_pandas()
        logs = np.log(idx["price_index"].to_numpy("float64"))
        self.n_customers_ = len(logs)
        self.log_mean_ = float(np.mean(logs)) if len(logs) else 0.0
        self.log_sd_ = float(np.std(logs, ddof=1)) if len(logs) > 1 else 0.0
        self.cheap_below_ = float(np.exp(self.log_mean_ - self.width_sd * self.log_sd_))
        self.expensive_above_ = float(np.exp(self.log_mean_ + self.width_sd * self.log_sd_))
        return self

    def label(self, features: ibis.Table) -> ibis.StringValue:
        """The Price Sensitivity label of each row (needs price_index)."""
        idx = features.price_index
        if self.log_sd_ == 0:  # everyone pays the same relative price
            return ibis.literal("average")
        return ibis.cases(
            (idx < self.cheap_below_, "cheap"),
            (idx > self.expensive_above_, "expensive"),
            else_="average",
        )

    def thresholds(self) -> dict[str, Any]:
        """The thresholds in force, for metrics.json and the report."""
        return {
            "rule": (
                "price_index = paid / (quantity x store average price of the same item); cheap: "
                "index < cheap_below, expensive: > expensive_above (mean -/+ width_sd SD of "
                "log index), else average"
            ),
            "width_sd": self.width_sd,
            "log_mean": self.log_mean_,
            "log_sd": self.log_sd_,
            "cheap_below": self.cheap_below_,
            "expensive_above": self.expensive_above_,
            "customers_with_index": self.n_customers_,
        }
