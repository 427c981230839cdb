"""Customer Base Growth: members of each segment as of each month end, by re-evaluating it.

For every month end ``t`` the customer table is rebuilt as it was at ``t``: the features
(orders, revenue, recency, cadence, price index, last activity, Behaviour period counts) are
recomputed from the order lines and events up to ``t``, all month ends in one ibis query from
one reduction of the lines and events (:mod:`workbench.segments.snapshots`, materialised once);
CLV scores and labels apply the run's fitted models (see :mod:`workbench.segments.fitted`).
Each segment is then evaluated against each month's table with windows relative to ``t``
("bought in the last 30 days" means the 30 days before that month end), all month ends in one
query (:mod:`workbench.segments.stacked`). Two inputs are not
historical: customer attributes (subscription, language, ...) are today's values, and
Interested-In scores are today's (the model is fitted once per run).
"""

from __future__ import annotations

import calendar
import logging
from collections.abc import Collection
from datetime import UTC, date, datetime
from functools import partial

import ibis.expr.types as ir
import pandas as pd
from tqdm.auto import tqdm

from workbench import engine
from workbench.models.customers import SCORE_SCHEMA, output_columns, score_batch
from workbench.models.value import CustomerValueModel
from workbench.notebook import end_of_day
from workbench.segments.compile import leaf_columns
from workbench.segments.data import SegmentData
from workbench.segments.fitted import FittedModels
from workbench.segments.snapshots import snapshot_features
from workbench.segments.spec import SegmentSpec
from workbench.segments.stacked import stacked_members

__all__ = ["month_ends", "segment_growth", "snapshot_customers"]

log = logging.getLogger(__name__)

SCORE_INPUTS = ["frequency", "repeat_span_days", "tenure_days", "monetary"]


def month_ends(as_of: datetime, months: int = 12, start: date | None = None) -> list[datetime]:
    """Month ends (end of day, UTC) up to ``as_of``; the last point is ``as_of`` itself.

    Parameters
    ----------
    as_of : datetime
        The run's instant.
    months : int
        Number of points when ``start`` is not given.
    start : date, optional
        First month of the range (its month end is the first point).
    """
    points = [as_of]
    year, month = as_of.year, as_of.month
    while True:
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
        day = date(year, month, calendar.monthrange(year, month)[1])
        if start is not None and day < date(start.year, start.month, 1):
            break
        if start is None and len(points) >= months:
            break
        points.append(end_of_day(day))
    return sorted(points)


def _score_snapshot_batch(value: CustomerValueModel, batch: pd.DataFrame) -> pd.DataFrame:
    """CLV and churn scores of one batch of customer x instant rows (runs on Spark too)."""
    scores = score_batch(value, batch)
    scores.insert(0, "_snap", batch["_snap"].astype("int64").to_numpy())
    return scores


def snapshot_customers(
    data: SegmentData,
    points: list[datetime],
    fitted: FittedModels,
    attributes: Collection[str] | None = None,
) -> ir.Table:
    """The customer table as of each point, stacked (column ``_snap`` = index into points).

    Parameters
    ----------
    data : SegmentData
        Today's data.
    points : list of datetime
        Increasing instants.
    fitted : FittedModels
        The run's fitted models.
    attributes : collection of str, optional
        The customer attributes to join (today's values); default all of them. Growth joins
        only those its segments read: on a large shop each is a join of a string column onto
        every customer x instant row.

    Returns
    -------
    ibis.Table
        ``_snap`` and the customers.parquet columns (model columns as of each point, customer
        attributes as of today), materialised by the engine (:func:`workbench.engine.checkpoint`).
    """
    feats = engine.checkpoint(
        snapshot_features(
            data.orders,
            points,
            events=data.events,
            price_reference=fitted.price_reference,
            period_days=fitted.behaviour_period_days,
        ),
        "snapfeats",
    )
    # scored where the engine runs (Spark executors, DuckDB batches): nothing collected
    table = engine.map_batches(
        feats.select("_snap", "customer_id", *SCORE_INPUTS),
        partial(_score_snapshot_batch, fitted.value),
        {"_snap": "int64", **SCORE_SCHEMA},
        label="snapscores",
    )
    scored = feats.inner_join(table, ["_snap", "customer_id"])
    labelled = scored.mutate(
        life_cycle=fitted.life_cycle.label(scored),
        behaviour_trend=fitted.behaviour.label(scored),
        price_sensitivity=fitted.price_sensitivity.label(scored),
    )
    labelled = labelled.mutate(importance=fitted.importance.label(labelled))
    h = data.horizon_days
    named = labelled.mutate(
        **{
            f"expected_orders_{h}d": labelled.expected_orders,
            f"predicted_clv_{h}d": labelled.predicted_clv,
        }
    )
    model_cols = output_columns(h)
    out = named.select("_snap", *model_cols)
    attrs = [
        c
        for c in data.customers.columns
        if c not in model_cols and (attributes is None or c in attributes)
    ]
    if attrs:
        current = data.customers.select(
            _cid=data.customers.customer_id, **{c: data.customers[c] for c in attrs}
        )
        out = out.left_join(current, out.customer_id == current._cid).drop("_cid")
    return engine.checkpoint(out, "snapshots")


def segment_growth(
    specs: list[SegmentSpec],
    data: SegmentData,
    fitted: FittedModels,
    points: list[datetime] | None = None,
    *,
    months: int = 12,
    progress: bool = False,
) -> pd.DataFrame:
    """Members of each segment (and all customers) as of each month end.

    Parameters
    ----------
    specs : list of SegmentSpec
        Segments, already checked against ``data``.
    data : SegmentData
        Today's data (``as_of`` = the run's).
    fitted : FittedModels
        The run's fitted models.
    points : list of datetime, optional
        Instants to evaluate at (default :func:`month_ends` of the last ``months`` months).
    months : int
        Number of month ends when ``points`` is not given.
    progress : bool
        Show a progress bar.

    Returns
    -------
    pandas.DataFrame
        segment (``""`` = all customers), date (UTC day of the point), members, customers
        (all customers with an order by then), share.
    """
    points = sorted(points or month_ends(data.as_of, months))
    read = set().union(*(leaf_columns(spec.where, data) for spec in specs))
    states = snapshot_customers(data, points, fitted, attributes=read)
    store = states.group_by("_snap").aggregate(members=states.count()).to_pandas()
    rows = [("", int(i), int(n)) for i, n in zip(store["_snap"], store["members"], strict=True)]
    for spec in tqdm(specs, desc="growth", disable=not progress):
        members = stacked_members(spec.where, data, states, points)
        counts = members.group_by("_snap").aggregate(members=members.count()).to_pandas()
        found = dict(zip(counts["_snap"].astype(int), counts["members"].astype(int), strict=True))
        rows += [(spec.name, i, found.get(i, 0)) for i in range(len(points))]
    frame = pd.DataFrame(rows, columns=["segment", "_snap", "members"])
    days = {i: when.astimezone(UTC).date() for i, when in enumerate(points)}
    frame["date"] = frame["_snap"].map(days)
    totals = frame[frame.segment == ""].set_index("_snap")["members"]
    frame["customers"] = frame["_snap"].map(totals).fillna(0).astype("int64")
    frame["share"] = frame["members"] / frame["customers"].where(frame["customers"] > 0)
    order = ["", *[s.name for s in specs]]
    frame["segment"] = pd.Categorical(frame["segment"], categories=order, ordered=True)
    frame = frame.sort_values(["segment", "date"]).reset_index(drop=True)
    frame["segment"] = frame["segment"].astype(str)
    return frame[["segment", "date", "members", "customers", "share"]]
