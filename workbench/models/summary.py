"""The ``(frequency, recency, T, monetary)`` summary the BG/NBD and Gamma-Gamma models take.

Built from :func:`workbench.models.features.order_days` (ibis, any engine): durations are whole
UTC calendar days divided by the time unit, so ``weeks`` gives the fractional weeks of the
literature (Fader, Hardie & Lee 2005: T = 38.86 weeks for a 1997-01-01 buyer observed through
1997-09-30). The fitting inputs are *sufficient statistics*: identical ``(frequency, recency,
T)`` rows collapse to one row with a weight, so the fit does not grow with the customer count.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

import ibis
import numpy as np
import pandas as pd

from workbench.models.features import (
    end_of_day,
    epoch_day,
    lines_until,
    net_revenue,
    order_day_stats,
    repeat_monetary,
    to_instant,
)

TimeUnit = Literal["days", "weeks", "months"]

#: Days per time unit (a month is 1/12 of a 365.25-day year).
UNIT_DAYS: dict[str, float] = {"days": 1.0, "weeks": 7.0, "months": 365.25 / 12}


def unit_days(time_unit: TimeUnit | float) -> float:
    """Days per unit for a unit name, or the number itself (days per unit)."""
    if isinstance(time_unit, int | float):
        if time_unit <= 0:
            raise ValueError(f"time unit must be a positive number of days, got {time_unit}")
        return float(time_unit)
    try:
        return UNIT_DAYS[time_unit]
    except KeyError:
        raise ValueError(
            f"unknown time unit {time_unit!r}; use one of {', '.join(UNIT_DAYS)} or days per unit"
        ) from None


def rfm_summary(
    orders: ibis.Table, as_of: datetime, time_unit: TimeUnit | float = "days"
) -> ibis.Table:
    """Per-customer BG/NBD / Gamma-Gamma inputs as of ``as_of``.

    Parameters
    ----------
    orders : ibis.Table
        Canonical order lines.
    as_of : datetime
        Timezone-aware instant; lines after it are ignored.
    time_unit : {"days", "weeks", "months"} or float
        Unit of ``recency`` and ``T`` (a float is days per unit).

    Returns
    -------
    ibis.Table
        customer_id, frequency (repeat order days), recency (first to last order day, in the
        unit), T (first order day to the ``as_of`` day, in the unit), monetary (mean net sales
        per repeat order day, currency; 0 without repeats), and the integer day columns
        repeat_span_days and tenure_days the grouping uses.
    """
    per_unit = unit_days(time_unit)
    a_day = epoch_day(as_of)
    days = order_day_stats(orders, as_of)
    t = days.inner_join(net_revenue(orders, as_of), "customer_id")
    span = (t.last_day - t.first_day).cast("int64")
    tenure = (a_day - t.first_day).cast("int64")
    return t.select(
        "customer_id",
        frequency=(t.order_days - 1).cast("int64"),
        recency=span.cast("float64") / per_unit,
        T=tenure.cast("float64") / per_unit,
        monetary=repeat_monetary(t),
        repeat_span_days=span,
        tenure_days=tenure,
    )


def sufficient_statistics(
    summary: ibis.Table | pd.DataFrame, time_unit: TimeUnit | float = "days"
) -> pd.DataFrame:
    """Collapse identical ``(frequency, recency, T)`` rows into weighted rows.

    Parameters
    ----------
    summary : ibis.Table or pandas.DataFrame
        Output of :func:`rfm_summary` (needs frequency, repeat_span_days, tenure_days), or any
        frame with frequency, recency and T in the target unit.
    time_unit : {"days", "weeks", "months"} or float
        Unit of the returned ``recency`` and ``T``.

    Returns
    -------
    pandas.DataFrame
        frequency (int), recency, T (in the unit), weight (customers with that row), plus
        repeat_span_days and tenure_days when the input has them. Sorted by the keys.
    """
    per_unit = unit_days(time_unit)
    if isinstance(summary, ibis.Table):
        grouped = (
            summary.group_by(["frequency", "repeat_span_days", "tenure_days"])
            .aggregate(weight=summary.count())
            .to_pandas()
        )
    elif {"repeat_span_days", "tenure_days"} <= set(summary.columns):
        grouped = (
            summary.groupby(["frequency", "repeat_span_days", "tenure_days"], sort=False)
            .size()
            .rename("weight")
            .reset_index()
        )
    else:
        return (
            summary.groupby(["frequency", "recency", "T"], sort=True)
            .size()
            .rename("weight")
            .reset_index()
            .astype({"frequency": "int64", "weight": "float64"})
        )
    grouped = grouped.astype(
        {"frequency": "int64", "repeat_span_days": "int64", "tenure_days": "int64"}
    )
    grouped["recency"] = grouped["repeat_span_days"] / per_unit
    grouped["T"] = grouped["tenure_days"] / per_unit
    grouped["weight"] = grouped["weight"].astype("float64")
    cols = ["frequency", "recency", "T", "weight", "repeat_span_days", "tenure_days"]
    return grouped[cols].sort_values(cols[:3], ignore_index=True)


#: Default bound on the weighted BG/NBD rows (about 10 s for a lifetimes fit on 2 cores).
MAX_FIT_ROWS = 250_000
#: Grid steps (days) tried, in order, when the exact statistics have too many rows.
BIN_DAYS = (2, 3, 4, 5, 7, 10, 14, 21, 28, 35, 42, 56, 70, 91)


def coarsen_statistics(
    stats: pd.DataFrame, max_rows: int, time_unit: TimeUnit | float = "days"
) -> tuple[pd.DataFrame, str]:
    """Bound the number of weighted BG/NBD rows by rounding the day counts to a grid.

    With whole days over years of history the distinct ``(frequency, recency, T)`` rows keep
    growing with the customer count. When there are more than ``max_rows`` of them, the day
    counts ``repeat_span_days`` and ``tenure_days`` are rounded to the nearest multiple of the
    smallest step in :data:`BIN_DAYS` that brings the rows under ``max_rows`` (rounding keeps
    ``recency <= T``; each value moves by at most half a step). The fitting cost is then bounded
    whatever the number of customers; the step is reported. The price is a small bias: on
    20,000 simulated customers over three years, rounding to 14 days moved the parameters by
    up to 2% (tests/test_clv_recovery.py).

    Parameters
    ----------
    stats : pandas.DataFrame
        Output of :func:`sufficient_statistics` (with the day columns).
    max_rows : int
        Largest number of rows to fit on.
    time_unit : {"days", "weeks", "months"} or float
        Unit of the returned ``recency`` and ``T``.

    Returns
    -------
    (pandas.DataFrame, str)
        The (possibly) coarsened statistics and how they were grouped ("exact (whole days)" or
        "rounded to k days").
    """
    if len(stats) <= max_rows:
        return stats, "exact (whole days)"
    per_unit = unit_days(time_unit)
    for step in BIN_DAYS:
        binned = stats.assign(
            repeat_span_days=(np.round(stats["repeat_span_days"] / step) * step).astype("int64"),
            tenure_days=(np.round(stats["tenure_days"] / step) * step).astype("int64"),
        )
        grouped = (
            binned.groupby(["frequency", "repeat_span_days", "tenure_days"], sort=True)["weight"]
            .sum()
            .reset_index()
        )
        if len(grouped) <= max_rows or step == BIN_DAYS[-1]:
            break
    grouped["recency"] = grouped["repeat_span_days"] / per_unit
    grouped["T"] = grouped["tenure_days"] / per_unit
    cols = ["frequency", "recency", "T", "weight", "repeat_span_days", "tenure_days"]
    return grouped[cols], f"rounded to {step} days"


def spend_statistics(
    summary: ibis.Table | pd.DataFrame, decimals: int = 2, max_rows: int = 200_000
) -> tuple[pd.DataFrame, str]:
    """Weighted ``(frequency, monetary)`` rows of repeat buyers for the Gamma-Gamma fit.

    The Gamma-Gamma likelihood has no sufficient statistics smaller than the data, so rows
    collapse only when they are identical after rounding ``monetary`` to ``decimals`` (cents:
    exact for money; half-cents round up, identically on every engine). When more than
    ``max_rows`` distinct rows remain, ``monetary`` is binned on a log grid of relative width
    0.1% (each bin is represented by its weighted mean).

    Parameters
    ----------
    summary : ibis.Table or pandas.DataFrame
        Output of :func:`rfm_summary` (frequency, monetary).
    decimals : int
        Rounding of ``monetary`` (currency units) before grouping.
    max_rows : int
        Largest number of rows fitted without log binning.

    Returns
    -------
    (pandas.DataFrame, str)
        frequency, monetary (currency), weight; and how the rows were grouped
        ("exact to 10^-decimals" or "log bins of 0.1%").
    """
    # rounded as floor(x * 10^d * (1 + 1e-9) + 0.5) / 10^d on every engine: SQL ROUND differs
    # between engines exactly at half-cents (DuckDB rounds the binary value, Spark its decimal
    # text), and half-cents are common (the mean of two prices); the nudge also keeps the
    # last-bit differences of sums taken in another order from changing a row's cent
    scale = 10.0**decimals
    nudged = scale * (1.0 + 1e-9)
    if isinstance(summary, ibis.Table):
        rep = summary.filter((summary.frequency > 0) & (summary.monetary > 0))
        rep = rep.mutate(monetary=(rep.monetary * nudged + 0.5).floor().cast("float64") / scale)
        grouped = rep.group_by(["frequency", "monetary"]).aggregate(weight=rep.count()).to_pandas()
    else:
        rep = summary.loc[(summary["frequency"] > 0) & (summary["monetary"] > 0)]
        cents = np.floor(rep["monetary"].to_numpy("float64") * nudged + 0.5)
        grouped = (
            rep.assign(monetary=cents / scale)
            .groupby(["frequency", "monetary"])
            .size()
            .rename("weight")
            .reset_index()
        )
    grouped = grouped.astype({"frequency": "int64", "monetary": "float64", "weight": "float64"})
    grouped = grouped.loc[grouped["monetary"] > 0]
    how = f"exact to 10^-{decimals}"
    if len(grouped) > max_rows:
        bins = np.round(np.log(grouped["monetary"]) / np.log1p(1e-3)).astype("int64")
        grouped = (
            grouped.assign(_bin=bins, _wm=grouped["monetary"] * grouped["weight"])
            .groupby(["frequency", "_bin"], as_index=False)
            .agg(_wm=("_wm", "sum"), weight=("weight", "sum"))
        )
        grouped["monetary"] = grouped["_wm"] / grouped["weight"]
        grouped = grouped[["frequency", "monetary", "weight"]]
        how = "log bins of 0.1%"
    return grouped.sort_values(["frequency", "monetary"], ignore_index=True), how


def holdout_activity(orders: ibis.Table, cutoff: datetime, horizon_days: int) -> ibis.Table:
    """What customers did in the ``horizon_days`` whole days after the ``cutoff`` day.

    Parameters
    ----------
    orders : ibis.Table
        Canonical order lines (all of them; the window is selected here).
    cutoff : datetime
        Timezone-aware instant; the holdout covers the days ``(C, C + horizon_days]`` where
        ``C`` is the UTC day of ``cutoff``.
    horizon_days : int
        Length of the holdout in days.

    Returns
    -------
    ibis.Table
        customer_id, holdout_order_days (purchase occasions = repeat transactions),
        holdout_orders (distinct orders), holdout_revenue (net, currency). Only customers with
        at least one line in the window.
    """
    c_day = epoch_day(cutoff)
    end = end_of_day(to_instant(cutoff).date() + timedelta(days=horizon_days))
    lines = lines_until(orders, end)
    lines = lines.filter((lines.day > c_day) & (lines.day <= c_day + horizon_days))
    is_sale = ~lines.is_return
    return lines.group_by("customer_id").aggregate(
        holdout_order_days=lines.day.nunique(where=is_sale).cast("int64"),
        holdout_orders=lines.order_id.nunique(where=is_sale).cast("int64"),
        holdout_revenue=lines.revenue.sum().cast("float64"),
    )
