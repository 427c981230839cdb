"""A segment's members at many instants in one query (Customer Base Growth).

The customer table is stacked: one copy per instant, column ``_snap`` = index into the
ascending ``points`` (see :func:`workbench.segments.growth.snapshot_customers`). Column
conditions read each copy's own values, with date windows relative to its instant. Set
conditions are not evaluated once per instant; each is reduced to a small table joined onto the
stack:

- purchases, views, searches and site activity **without** ``within_days`` count every row
  up to ``t - older_than_days``, so a customer, once in, stays in at every later instant
  (quantities of non-return lines are positive, ``min_quantity`` > 0, ``min_count`` >= 1).
  Each row gets the first instant that counts it; a running total per customer over those
  instants gives the first instant the customer reaches the minimum (``_first``): a member
  wherever ``_snap >= _first``.
- with ``within_days`` W the rows counted at ``t`` are those with
  ``t - W < ts <= t - older_than_days``: a contiguous range of instants per row. Rows are
  grouped by customer and range, spread over the instants of their range, and totalled per
  customer and instant.
- Interested-In scores are today's: a member at every instant.

The result equals compiling the segment against each instant's table separately (tests check
this for every kind of condition, on DuckDB and Spark).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import ibis
import ibis.expr.types as ir
import pandas as pd

from workbench.segments import conditions as c
from workbench.segments.compile import (
    FlagJoin,
    attach_flag,
    compile_tree,
    condition_rows,
    interest_customers,
)
from workbench.segments.data import SegmentData, ts_literal, upload
from workbench.segments.spec import Node
from workbench.segments.window import Instants, first_instant, last_instant_within

__all__ = ["first_instants", "stacked_members", "windowed_instants"]


def first_instants(cond: c.Condition, data: SegmentData, points: Sequence[datetime]) -> ir.Table:
    """Per customer, the first instant at which a condition without ``within_days`` holds.

    Returns
    -------
    ibis.Table
        ``customer_id`` and ``_first`` (index into ``points``), for customers it ever holds for.
    """
    rows = condition_rows(cond, data)
    t = rows.table
    t = t.mutate(_b=first_instant(t[rows.ts], points, cond.older_than_days or 0))
    t = t.filter(t._b.notnull())
    per = t.group_by(["customer_id", "_b"]).aggregate(_n=rows.total(t))
    running = ibis.cumulative_window(group_by=per.customer_id, order_by=per._b)
    per = per.mutate(_cum=per._n.sum().over(running))
    reached = per.filter(per._cum >= rows.minimum)
    return reached.group_by("customer_id").aggregate(_first=reached._b.min())


def _instants_table(data: SegmentData, n: int) -> ir.Table:
    key = ("instants", n)
    if key not in data._cache:
        data._cache[key] = upload(
            data.con, pd.DataFrame({"_snap": range(n)}, dtype="int64"), "snaps"
        )
    return data._cache[key]


def windowed_instants(
    cond: c.Condition, data: SegmentData, points: Sequence[datetime], snaps: ir.Table
) -> ir.Table:
    """The (customer, instant) pairs at which a condition with ``within_days`` holds.

    ``snaps`` is the table of instant indexes (column ``_snap``, ``0 .. len(points) - 1``).

    Returns
    -------
    ibis.Table
        ``customer_id`` and ``_snap`` (index into ``points``).
    """
    rows = condition_rows(cond, data)
    older, within = cond.older_than_days or 0, cond.within_days
    t = rows.table
    ts = t[rows.ts]
    t = t.filter(
        ts > ts_literal(points[0] - timedelta(days=within)),
        ts <= ts_literal(points[-1] - timedelta(days=older)),
    )
    ts = t[rows.ts]
    t = t.mutate(_a=first_instant(ts, points, older), _z=last_instant_within(ts, points, within))
    t = t.filter(t._a <= t._z)
    per = t.group_by(["customer_id", "_a", "_z"]).aggregate(_n=rows.total(t))
    spread = per.inner_join(snaps, [per._a <= snaps._snap, per._z >= snaps._snap])
    totals = spread.group_by(["customer_id", "_snap"]).aggregate(_n=spread._n.sum())
    return totals.filter(totals._n >= rows.minimum).select("customer_id", "_snap")


def _stacked_join(data: SegmentData, seen: SegmentData, points: Sequence[datetime]) -> FlagJoin:
    """Members of set conditions as flag columns of the stacked customer table.

    Rows are read from ``seen`` (the data as of the last point); uploads (interest members,
    the instants) are cached on ``data``, so the segments of one growth run share them.
    """

    def join(
        t: ir.Table, cond: c.Condition, i: int
    ) -> tuple[ir.Table, Callable[[ir.Table], ir.BooleanValue], list[str]]:
        if isinstance(cond, c.InterestCondition):
            t, flag = attach_flag(t, interest_customers(cond, data), i)
            return t, lambda x: x[flag].notnull(), [flag]
        if cond.within_days is None:
            t, flag = attach_flag(t, first_instants(cond, seen, points), i, value="_first")
            return t, lambda x: x[flag].notnull() & (x["_snap"] >= x[flag]), [flag]
        snaps = _instants_table(data, len(points))
        pairs = windowed_instants(cond, seen, points, snaps)
        t, flag = attach_flag(t, pairs, i, keys=("customer_id", "_snap"))
        return t, lambda x: x[flag].notnull(), [flag]

    return join


def stacked_members(
    node: Node, data: SegmentData, states: ir.Table, points: Sequence[datetime]
) -> ir.Table:
    """The rows of the stacked customer table (one copy per instant) for which ``node`` holds.

    Parameters
    ----------
    node : Node
        A validated ``where`` tree.
    data : SegmentData
        The order lines, events and interest scores (its ``customers`` is not read).
    states : ibis.Table
        The customer table as of each point, stacked, with column ``_snap``.
    points : sequence of datetime
        The ascending instants ``_snap`` indexes.
    """
    points = list(points)
    if points != sorted(points):
        raise ValueError("stacked_members needs the points in ascending order")
    seen = data.with_as_of(points[-1], states)
    return compile_tree(node, seen, states, Instants(points), _stacked_join(data, seen, points))
