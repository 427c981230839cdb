"""The customer table of a run: features, CLV and churn risk, and the four labels.

:func:`build_customers` is what ``notebooks/02_features.ipynb`` and the backtest call. It
returns the ``customers.parquet`` table (columns fixed by docs/design.md, section 3) as an ibis
expression on the run's engine, the fitted models, and the metrics.json sections.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

import ibis
import pandas as pd

from workbench import engine
from workbench.models import behaviour, importance, lifecycle, price
from workbench.models.behaviour import BehaviourModel, trend_period_days
from workbench.models.features import PriceReference, customer_features, period_order_counts
from workbench.models.importance import ImportanceModel
from workbench.models.lifecycle import LifeCycleModel
from workbench.models.price import PriceSensitivityModel
from workbench.models.summary import TimeUnit
from workbench.models.value import CustomerValueModel

log = logging.getLogger(__name__)

#: Label columns and their values, in display order.
LABEL_VALUES: dict[str, tuple[str, ...]] = {
    "life_cycle": lifecycle.LABELS,
    "importance": importance.LABELS,
    "price_sensitivity": price.LABELS,
    "behaviour_trend": behaviour.LABELS,
}


def output_columns(horizon_days: int) -> list[str]:
    """The model columns of customers.parquet, in contract order (attributes follow)."""
    return [
        "customer_id",
        "first_order_at",
        "last_order_at",
        "orders",
        "revenue",
        "aov",
        "recency_days",
        "frequency",
        "tenure_days",
        "mean_interval_days",
        "p_alive",
        "churn_risk",
        f"expected_orders_{horizon_days}d",
        f"predicted_clv_{horizon_days}d",
        "life_cycle",
        "importance",
        "price_sensitivity",
        "behaviour_trend",
        "last_active_at",
    ]


@dataclass
class CustomerModels:
    """Everything :func:`build_customers` produced.

    Attributes
    ----------
    table : ibis.Table
        customers.parquet content (contract columns, then customer attributes), sorted by
        customer_id.
    features : ibis.Table
        All features, scores and labels (a superset of ``table``'s model columns).
    as_of : datetime
    horizon_days : int
    value : CustomerValueModel
    life_cycle, importance, price_sensitivity, behaviour
        The fitted label models.
    metrics : dict
        metrics.json sections: ``customer_models`` (fits, thresholds, warnings).
    """

    table: ibis.Table
    features: ibis.Table
    as_of: datetime
    horizon_days: int
    value: CustomerValueModel
    life_cycle: LifeCycleModel
    importance: ImportanceModel
    price_sensitivity: PriceSensitivityModel
    behaviour: BehaviourModel
    metrics: dict[str, Any] = field(default_factory=dict)


def _attributes(customers: ibis.Table | None, taken: list[str]) -> ibis.Table | None:
    if customers is None:
        return None
    renames = {
        (f"{c}_attr" if c in taken else c): c for c in customers.columns if c != "customer_id"
    }
    if not renames:
        return None
    return customers.select("customer_id", **{new: customers[old] for new, old in renames.items()})


#: Columns :meth:`CustomerValueModel.predict` adds per customer.
SCORE_SCHEMA = {
    "customer_id": "string",
    "p_alive": "float64",
    "churn_risk": "float64",
    "expected_orders": "float64",
    "expected_spend": "float64",
    "predicted_clv": "float64",
}


def score_batch(value: CustomerValueModel, batch: pd.DataFrame) -> pd.DataFrame:
    """CLV and churn scores of one batch of customers (runs on Spark executors too)."""
    scores = value.predict(batch.reset_index(drop=True))
    scores.insert(0, "customer_id", batch["customer_id"].astype(str).to_numpy())
    return scores


def build_customers(
    orders: ibis.Table,
    as_of: datetime,
    *,
    horizon_days: int = 90,
    customers: ibis.Table | None = None,
    events: ibis.Table | None = None,
    time_unit: TimeUnit | float = "weeks",
    backend: str = "lifetimes",
    price_reference: PriceReference = "product",
    cache: bool = True,
) -> CustomerModels:
    """Fit every customer model as of ``as_of`` and assemble the customer table.

    Parameters
    ----------
    orders : ibis.Table
        Canonical order lines.
    as_of : datetime
        Timezone-aware instant the models look from (lines after it are ignored).
    horizon_days : int
        Horizon of expected orders, churn risk and CLV (days).
    customers : ibis.Table, optional
        Canonical customers table; its attributes are appended (a clashing name gets ``_attr``).
    events : ibis.Table, optional
        Canonical web events (``last_active_at``).
    time_unit : {"days", "weeks", "months"} or float
        Unit the BG/NBD and Gamma-Gamma models are fitted in.
    backend : str
        Model library behind the CLV adapter (``lifetimes`` or ``scipy``).
    price_reference : {"product", "category"}
        Items prices are compared with for Price Sensitivity.
    cache : bool
        Materialise the features in the engine once (recommended: they are read several times).

    Returns
    -------
    CustomerModels
    """
    feats = customer_features(orders, as_of, events=events, price_reference=price_reference)
    if cache:
        feats = feats.cache()

    value = CustomerValueModel(horizon_days=horizon_days, time_unit=time_unit, backend=backend)
    value.fit(feats)  # on aggregates: distinct (frequency, recency, T) rows and spend groups
    scores = engine.map_batches(
        feats.select("customer_id", "frequency", "repeat_span_days", "tenure_days", "monetary"),
        partial(score_batch, value),
        SCORE_SCHEMA,
        label="scores",
    )
    scored = feats.inner_join(scores, "customer_id")

    period = trend_period_days(feats)
    counts = period_order_counts(orders, as_of, period)
    scored = scored.left_join(counts, "customer_id").drop("customer_id_right")
    scored = scored.mutate(
        orders_p0=scored.orders_p0.fill_null(0),
        orders_p1=scored.orders_p1.fill_null(0),
        exposure_p0=scored.exposure_p0.fill_null(0),
        exposure_p1=scored.exposure_p1.fill_null(0),
    )
    if cache:
        scored = scored.cache()

    life = LifeCycleModel().fit(scored)
    trend = BehaviourModel().fit(scored, period)
    prices = PriceSensitivityModel().fit(scored)
    labelled = scored.mutate(
        life_cycle=life.label(scored),
        behaviour_trend=trend.label(scored),
        price_sensitivity=prices.label(scored),
    )
    imp = ImportanceModel(value_column="predicted_clv").fit(labelled)
    labelled = labelled.mutate(importance=imp.label(labelled))

    h = horizon_days
    named = labelled.mutate(
        **{
            f"expected_orders_{h}d": labelled.expected_orders,
            f"predicted_clv_{h}d": labelled.predicted_clv,
        }
    )
    columns = output_columns(h)
    table = named.select(*columns)
    attrs = _attributes(customers, columns)
    if attrs is not None:
        table = table.left_join(attrs, "customer_id").drop("customer_id_right")
    table = table.order_by("customer_id")  # deterministic files, comparable between runs

    metrics = {
        "as_of": as_of.isoformat(),
        "horizon_days": h,
        "customers": int(feats.count().to_pyarrow().as_py()),
        "clv": value.metrics(),
        "life_cycle": life.thresholds(),
        "importance": imp.thresholds(),
        "price_sensitivity": {**prices.thresholds(), "reference": price_reference},
        "behaviour": trend.thresholds(),
    }
    return CustomerModels(
        table=table,
        features=named,
        as_of=as_of,
        horizon_days=h,
        value=value,
        life_cycle=life,
        importance=imp,
        price_sensitivity=prices,
        behaviour=trend,
        metrics=metrics,
    )


def label_summary(table: pd.DataFrame, revenue: str = "revenue") -> dict[str, Any]:
    """Per label column: customers, share of customers and share of revenue per value.

    Parameters
    ----------
    table : pandas.DataFrame
        customers.parquet content (label columns and ``revenue``).
    revenue : str
        Column whose share is reported (net revenue, currency).
    """
    out: dict[str, Any] = {}
    n = len(table)
    total = float(table[revenue].clip(lower=0).sum())
    for column, values in LABEL_VALUES.items():
        rows = {}
        for value in values:
            sel = table[column] == value
            rev = float(table.loc[sel, revenue].clip(lower=0).sum())
            rows[value] = {
                "customers": int(sel.sum()),
                "share_customers": round(float(sel.sum()) / n, 5) if n else 0.0,
                "share_revenue": round(rev / total, 5) if total > 0 else 0.0,
            }
        out[column] = rows
    return out
