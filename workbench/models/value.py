"""CustomerValueModel: per-customer P(alive), churn risk, expected orders and CLV in a horizon.

Combines :class:`~workbench.models.clv.BGNBDModel` (repeat orders) and
:class:`~workbench.models.clv.GammaGammaModel` (spend per order day): fitted on weighted
sufficient statistics, scored on the distinct ``(frequency, recency, T)`` rows in chunks, so
neither step grows with the number of customers. CLV within the horizon is
``expected orders x expected spend``, undiscounted, in the run currency.
"""

from __future__ import annotations

import logging
from typing import Any

import ibis
import numpy as np
import pandas as pd

from workbench.models.backends import ModelBackend, get_backend
from workbench.models.clv import BGNBDModel, GammaGammaModel
from workbench.models.summary import (
    MAX_FIT_ROWS,
    TimeUnit,
    coarsen_statistics,
    spend_statistics,
    sufficient_statistics,
    unit_days,
)

log = logging.getLogger(__name__)


class CustomerValueModel:
    """P(alive), churn risk, expected orders and CLV within a horizon, per customer.

    Parameters
    ----------
    horizon_days : int
        Horizon of expected orders, churn risk and CLV (days).
    time_unit : {"days", "weeks", "months"} or float
        Unit the models are fitted in (results do not depend on it beyond rounding).
    penalizer : float
        L2 penalty of both fits.
    backend : str or ModelBackend
        Model library (``lifetimes`` default, ``scipy`` our own).
    min_customers, min_repeat_customers : int
        Smallest data the BG/NBD is fitted on (see :class:`BGNBDModel`).
    max_fit_rows : int
        Most weighted rows the BG/NBD is fitted on; beyond, day counts are rounded to a grid
        (:func:`workbench.models.summary.coarsen_statistics`), so fitting time is bounded.
    chunk_size : int
        Rows scored at a time.

    Attributes
    ----------
    bgnbd_ : BGNBDModel
    gamma_gamma_ : GammaGammaModel
    bgnbd_grouping_ : str
        How BG/NBD rows were grouped ("exact (whole days)" or "rounded to k days").
    exact_rows_ : int
        Distinct (frequency, recency, T) rows before any rounding.
    spend_grouping_ : str
        How Gamma-Gamma rows were grouped.
    frequency_monetary_corr_ : float
        Correlation of frequency and mean spend among repeat buyers (the Gamma-Gamma model
        assumes independence; report it).
    """

    def __init__(
        self,
        horizon_days: int = 90,
        time_unit: TimeUnit | float = "weeks",
        penalizer: float = 0.0,
        backend: str | ModelBackend = "lifetimes",
        min_customers: int = 20,
        min_repeat_customers: int = 5,
        max_fit_rows: int = MAX_FIT_ROWS,
        chunk_size: int = 250_000,
    ) -> None:
        self.horizon_days = horizon_days
        self.time_unit = time_unit
        self.penalizer = penalizer
        self.backend = backend
        self.min_customers = min_customers
        self.min_repeat_customers = min_repeat_customers
        self.max_fit_rows = max_fit_rows
        self.chunk_size = chunk_size

    @property
    def horizon_units(self) -> float:
        """The horizon in the model's time unit."""
        return self.horizon_days / unit_days(self.time_unit)

    def fit(self, summary: ibis.Table | pd.DataFrame) -> CustomerValueModel:
        """Fit both models on a customer summary.

        Parameters
        ----------
        summary : ibis.Table or pandas.DataFrame
            Per-customer rows with frequency, repeat_span_days, tenure_days (days), monetary,
            revenue and order_days (e.g. :func:`workbench.models.features.customer_features`).
        """
        stats = sufficient_statistics(summary, self.time_unit)
        self.exact_rows_ = len(stats)
        stats, self.bgnbd_grouping_ = coarsen_statistics(stats, self.max_fit_rows, self.time_unit)
        self.bgnbd_ = BGNBDModel(
            self.penalizer,
            self.backend,
            min_customers=self.min_customers,
            min_repeat_customers=self.min_repeat_customers,
        ).fit(stats)
        spend, self.spend_grouping_ = spend_statistics(summary)
        totals = _store_totals(summary)
        store_mean = totals["revenue"] / totals["order_days"] if totals["order_days"] else 0.0
        self.gamma_gamma_ = GammaGammaModel(self.penalizer, self.backend).fit(spend, store_mean)
        self.frequency_monetary_corr_ = _weighted_corr(spend)
        return self

    def predict(self, summary: pd.DataFrame) -> pd.DataFrame:
        """Scores per customer, in the order of ``summary``.

        Parameters
        ----------
        summary : pandas.DataFrame
            frequency, repeat_span_days, tenure_days (days), monetary (currency).

        Returns
        -------
        pandas.DataFrame
            p_alive, churn_risk (= P(no order within the horizon)), expected_orders (repeat
            order days within the horizon), expected_spend (per order day, currency),
            predicted_clv (expected_orders x expected_spend, undiscounted, currency).
        """
        per_unit = unit_days(self.time_unit)
        codes, distinct = _distinct_rows(summary)
        parts = []
        for start in range(0, len(distinct), self.chunk_size):
            part = distinct.iloc[start : start + self.chunk_size]
            parts.append(
                self.bgnbd_.predict(
                    self.horizon_units,
                    part["frequency"].to_numpy(),
                    part["repeat_span_days"].to_numpy() / per_unit,
                    part["tenure_days"].to_numpy() / per_unit,
                )
            )
        scored = pd.concat(parts, ignore_index=True).iloc[codes].reset_index(drop=True)
        spend = np.empty(len(summary))
        x = summary["frequency"].to_numpy("float64")
        m = summary["monetary"].to_numpy("float64")
        for start in range(0, len(summary), self.chunk_size):
            stop = start + self.chunk_size
            spend[start:stop] = self.gamma_gamma_.predict(x[start:stop], m[start:stop])
        expected = np.clip(scored["expected_orders"].to_numpy(), 0.0, None)
        out = pd.DataFrame(
            {
                "p_alive": scored["p_alive"].to_numpy(),
                "churn_risk": scored["p_no_order"].to_numpy(),
                "expected_orders": expected,
                "expected_spend": spend,
                "predicted_clv": expected * spend,
            },
            index=summary.index,
        )
        return out.fillna(0.0)

    def p_alive_matrix(
        self, max_frequency: int, tenure_days: int, step_days: int = 7
    ) -> pd.DataFrame:
        """P(alive) of a customer of age ``tenure_days`` by repeat orders and last-order time.

        Parameters
        ----------
        max_frequency : int
            Largest number of repeat order days shown.
        tenure_days : int
            Customer age ``T`` (days since the first order).
        step_days : int
            Spacing of the recency axis (days).

        Returns
        -------
        pandas.DataFrame
            Index: days since the last order (0 .. tenure_days); columns: frequency
            (0 .. max_frequency); values: P(alive).
        """
        per_unit = unit_days(self.time_unit)
        since_last = np.arange(0, tenure_days + 1, step_days)
        freq = np.arange(0, max_frequency + 1)
        grid_x, grid_d = np.meshgrid(freq, since_last)
        recency = (tenure_days - grid_d) / per_unit
        scored = self.bgnbd_.predict(
            self.horizon_units,
            grid_x.ravel(),
            recency.ravel(),
            np.full(grid_x.size, tenure_days / per_unit),
        )
        values = scored["p_alive"].to_numpy().reshape(grid_x.shape)
        # a customer with x repeat orders needs x distinct days before the last one
        values = np.where(tenure_days - grid_d >= grid_x, values, np.nan)
        return pd.DataFrame(
            values,
            index=pd.Index(since_last, name="days_since_last_order"),
            columns=pd.Index(freq, name="frequency"),
        )

    def metrics(self) -> dict[str, Any]:
        """Fit diagnostics for metrics.json."""
        bg, gg = self.bgnbd_, self.gamma_gamma_
        return {
            "time_unit": self.time_unit,
            "horizon_days": self.horizon_days,
            "backend": get_backend(self.backend).name,
            "bgnbd": {
                "kind": bg.kind_,
                "method": bg.method_,
                "params": bg.params_,
                "log_likelihood": bg.log_likelihood_,
                "at_boundary": bg.at_boundary_,
                "customers": bg.n_customers_,
                "repeat_customers": bg.n_repeat_customers_,
                "weighted_rows": bg.n_rows_,
                "distinct_rows": self.exact_rows_,
                "grouping": self.bgnbd_grouping_,
                "fit_seconds": round(bg.fit_seconds_, 3),
            },
            "gamma_gamma": {
                "kind": gg.kind_,
                "method": gg.method_,
                "params": gg.params_,
                "log_likelihood": gg.log_likelihood_,
                "customers": gg.n_customers_,
                "weighted_rows": gg.n_rows_,
                "grouping": self.spend_grouping_,
                "store_mean_spend": gg.store_mean_spend_,
                "frequency_monetary_corr": self.frequency_monetary_corr_,
            },
            "warnings": bg.warnings_ + gg.warnings_,
        }


def _distinct_rows(summary: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
    """Codes of each row into the distinct (frequency, repeat_span_days, tenure_days) rows."""
    cols = ["frequency", "repeat_span_days", "tenure_days"]
    keys = summary[cols].to_numpy("int64")
    if len(keys) and (keys.min() < 0 or keys.max() >= 1 << 21):
        raise ValueError("frequency and day counts must lie in [0, 2**21) to be scored")
    packed = (keys[:, 0] << 42) | (keys[:, 1] << 21) | keys[:, 2]
    codes, uniques = pd.factorize(packed)
    mask = (1 << 21) - 1
    distinct = pd.DataFrame(
        {
            "frequency": uniques >> 42,
            "repeat_span_days": (uniques >> 21) & mask,
            "tenure_days": uniques & mask,
        }
    )
    return codes, distinct


def _store_totals(summary: ibis.Table | pd.DataFrame) -> dict[str, float]:
    if isinstance(summary, ibis.Table):
        row = (
            summary.aggregate(
                revenue=summary.revenue.clip(lower=0).sum(), order_days=summary.order_days.sum()
            )
            .to_pyarrow()
            .to_pylist()[0]
        )
        return {k: float(v or 0) for k, v in row.items()}
    return {
        "revenue": float(summary["revenue"].clip(lower=0).sum()),
        "order_days": float(summary["order_days"].sum()),
    }


def _weighted_corr(spend: pd.DataFrame) -> float | None:
    if len(spend) < 3:
        return None
    x, m, w = (spend[c].to_numpy("float64") for c in ("frequency", "monetary", "weight"))
    mx, mm = np.average(x, weights=w), np.average(m, weights=w)
    cov = np.average((x - mx) * (m - mm), weights=w)
    sx, sm = (
        np.sqrt(np.average((x - mx) ** 2, weights=w)),
        np.sqrt(np.average((m - mm) ** 2, weights=w)),
    )
    return float(cov / (sx * sm)) if sx > 0 and sm > 0 else None
