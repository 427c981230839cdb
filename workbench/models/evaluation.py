"""Holdout evaluation: fit as of a cutoff, compare with what customers did afterwards.

Used by ``notebooks/02_features.ipynb`` (cutoff = as_of - horizon, the calibration vs holdout
check written to metrics.json) and by :func:`workbench.models.backtest.run_backtest` (any
cutoff). Repeat orders are purchase days, as in the models: several orders on one day count once.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from typing import Any

import ibis
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from workbench.models.customers import CustomerModels, build_customers
from workbench.models.features import day_of, epoch_day
from workbench.models.lifecycle import LABELS as LIFE_CYCLE
from workbench.models.summary import holdout_activity

log = logging.getLogger(__name__)

#: Calibration-period repeat purchases are grouped 0, 1, ..., TOP_BUCKET - 1, "TOP_BUCKET+".
TOP_BUCKET = 7


@dataclass
class HoldoutEvaluation:
    """Result of :func:`evaluate_holdout`.

    Attributes
    ----------
    metrics : dict
        JSON-ready comparison (see :func:`holdout_metrics`).
    frame : pandas.DataFrame
        One row per customer known at the cutoff: predictions and what happened.
    models : CustomerModels
        The models fitted as of the cutoff.
    """

    metrics: dict[str, Any]
    frame: pd.DataFrame
    models: CustomerModels


def frequency_bucket(frequency: pd.Series, top: int = TOP_BUCKET) -> pd.Series:
    """Bucket labels ``"0" .. "top-1"`` and ``"top+"`` for repeat-purchase counts."""
    labels = [str(i) for i in range(top)] + [f"{top}+"]
    return pd.Series(
        pd.Categorical(
            [labels[min(int(f), top)] for f in frequency], categories=labels, ordered=True
        ),
        index=frequency.index,
    )


def evaluate_holdout(
    orders: ibis.Table,
    cutoff: datetime,
    horizon_days: int,
    *,
    customers: ibis.Table | None = None,
    events: ibis.Table | None = None,
    **build_options: Any,
) -> HoldoutEvaluation:
    """Fit every customer model as of ``cutoff`` and score it on the next ``horizon_days``.

    Parameters
    ----------
    orders : ibis.Table
        Canonical order lines (all of them; the models only see lines up to ``cutoff``).
    cutoff : datetime
        Timezone-aware instant (normally the end of a day).
    horizon_days : int
        Holdout length (days) = the models' horizon.
    customers, events : ibis.Table, optional
        Passed to :func:`~workbench.models.customers.build_customers`.
    **build_options
        Further options of :func:`~workbench.models.customers.build_customers`.
    """
    models = build_customers(
        orders,
        cutoff,
        horizon_days=horizon_days,
        customers=customers,
        events=events,
        **build_options,
    )
    feats = models.features
    actual = holdout_activity(orders, cutoff, horizon_days)
    joined = feats.select(
        "customer_id",
        "frequency",
        "revenue",
        "life_cycle",
        "importance",
        "behaviour_trend",
        "p_alive",
        "churn_risk",
        "expected_orders",
        "predicted_clv",
    ).left_join(actual, "customer_id")
    frame = joined.drop("customer_id_right").to_pandas()
    for col in ("holdout_order_days", "holdout_orders"):
        frame[col] = frame[col].fillna(0).astype("int64")
    frame["holdout_revenue"] = frame["holdout_revenue"].fillna(0.0).astype("float64")
    last_day = orders.aggregate(d=day_of(orders.ordered_at).max()).to_pyarrow().column(0)[0]
    observed = int(min(horizon_days, max(0, last_day.as_py() - epoch_day(cutoff))))
    metrics = holdout_metrics(frame)
    metrics = {
        "cutoff": cutoff.isoformat(),
        "horizon_days": horizon_days,
        "holdout_days_observed": observed,
        "holdout_complete": observed >= horizon_days,
        **metrics,
    }
    if observed < horizon_days:
        log.warning(
            "the data end %d days after the cutoff, before the %d-day horizon: actual orders "
            "are undercounted against the predictions",
            observed,
            horizon_days,
        )
    return HoldoutEvaluation(metrics=metrics, frame=frame, models=models)


def has_history(orders: ibis.Table, cutoff: datetime) -> bool:
    """Whether any non-return order line lies at or before ``cutoff``."""
    before = orders.filter(orders.ordered_at <= ibis.literal(cutoff, type="timestamp('UTC')"))
    before = before.filter(~before.is_return)
    return bool(before.count().to_pyarrow().as_py())


def _auc(y: np.ndarray, score: np.ndarray) -> float | None:
    if len(np.unique(y)) < 2:
        return None
    return round(float(roc_auc_score(y, score)), 5)


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 5) if b else None


def _per_group(frame: pd.DataFrame, column: str, order: list[str] | None = None) -> dict[str, Any]:
    out = {}
    groups = order if order is not None else sorted(frame[column].astype(str).unique())
    for value in groups:
        sel = frame[frame[column].astype(str) == value]
        if not len(sel):
            out[value] = {"customers": 0}
            continue
        out[value] = {
            "customers": len(sel),
            "share_ordered": round(float((sel["holdout_order_days"] > 0).mean()), 5),
            "mean_p_order": round(float((1 - sel["churn_risk"]).mean()), 5),
            "predicted_orders": round(float(sel["expected_orders"].sum()), 3),
            "actual_orders": int(sel["holdout_order_days"].sum()),
            "predicted_revenue": round(float(sel["predicted_clv"].sum()), 2),
            "actual_revenue": round(float(sel["holdout_revenue"].sum()), 2),
        }
    return out


def holdout_metrics(frame: pd.DataFrame) -> dict[str, Any]:
    """Compare predictions with the holdout, overall, per label and per frequency bucket.

    Parameters
    ----------
    frame : pandas.DataFrame
        Per customer: frequency, life_cycle, importance, p_alive, churn_risk, expected_orders,
        predicted_clv and holdout_order_days, holdout_revenue.

    Returns
    -------
    dict
        ``life_cycle`` (per label: share that ordered, ...), ``life_cycle_monotonic`` (the
        share falls from just_ordered to lost), ``auc`` (p_alive, 1 - churn_risk and expected
        orders for "orders again"), ``brier_p_order``, ``totals`` (predicted vs actual repeat
        orders and revenue), ``per_frequency`` (the same per calibration frequency bucket),
        ``top_decile_clv_revenue_share``.
    """
    y = (frame["holdout_order_days"] > 0).to_numpy(int)
    p_order = 1 - frame["churn_risk"].to_numpy("float64")
    repeat = frame["frequency"].to_numpy() > 0
    life = _per_group(frame, "life_cycle", list(LIFE_CYCLE))
    shares = [life[k]["share_ordered"] for k in LIFE_CYCLE if life[k]["customers"]]
    buckets = frame.assign(bucket=frequency_bucket(frame["frequency"]))
    per_freq = []
    for bucket, sel in buckets.groupby("bucket", observed=True, sort=True):
        per_freq.append(
            {
                "frequency": str(bucket),
                "customers": len(sel),
                "predicted_orders_mean": round(float(sel["expected_orders"].mean()), 5),
                "actual_orders_mean": round(float(sel["holdout_order_days"].mean()), 5),
                "predicted_revenue": round(float(sel["predicted_clv"].sum()), 2),
                "actual_revenue": round(float(sel["holdout_revenue"].sum()), 2),
            }
        )
    pred_orders = float(frame["expected_orders"].sum())
    act_orders = float(frame["holdout_order_days"].sum())
    pred_rev = float(frame["predicted_clv"].sum())
    act_rev = float(frame["holdout_revenue"].sum())
    n_top = max(1, math.ceil(len(frame) * 0.1))
    top = frame.nlargest(n_top, "predicted_clv")["holdout_revenue"].clip(lower=0).sum()
    positive = frame["holdout_revenue"].clip(lower=0).sum()
    return {
        "customers": len(frame),
        "share_ordered": round(float(y.mean()), 5) if len(y) else None,
        "life_cycle": life,
        "life_cycle_monotonic": bool(all(a >= b for a, b in pairwise(shares))),
        "importance": _per_group(frame, "importance"),
        "auc": {
            "p_alive": _auc(y, frame["p_alive"].to_numpy("float64")),
            "p_order": _auc(y, p_order),
            "expected_orders": _auc(y, frame["expected_orders"].to_numpy("float64")),
        },
        # BG/NBD gives P(alive) = 1 to every customer without a repeat purchase, so its ranking
        # is only informative among repeat buyers
        "auc_repeat_buyers": {
            "p_alive": _auc(y[repeat], frame["p_alive"].to_numpy("float64")[repeat]),
            "p_order": _auc(y[repeat], p_order[repeat]),
        },
        "p_alive_range": [
            round(float(frame["p_alive"].min()), 6) if len(frame) else None,
            round(float(frame["p_alive"].max()), 6) if len(frame) else None,
        ],
        "brier_p_order": round(float(np.mean((p_order - y) ** 2)), 5) if len(y) else None,
        "totals": {
            "predicted_repeat_orders": round(pred_orders, 2),
            "actual_repeat_orders": int(act_orders),
            "orders_ratio": _ratio(pred_orders, act_orders),
            "predicted_revenue": round(pred_rev, 2),
            "actual_revenue": round(act_rev, 2),
            "revenue_ratio": _ratio(pred_rev, act_rev),
        },
        "per_frequency": per_freq,
        "top_decile_clv_revenue_share": _ratio(float(top), float(positive)),
    }
