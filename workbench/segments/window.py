"""Time windows of conditions as ibis predicates, relative to an ``as_of`` instant.

``as_of`` is the end of the run's ``as_of`` day (UTC). ``within_days: N`` keeps timestamps in
the N calendar days ending on that day (``as_of - N days < ts <= as_of``); ``older_than_days:
N`` keeps ``ts <= as_of - N days`` (N or more days before); ``since`` / ``until`` are
inclusive UTC days; ``before`` is exclusive.

``as_of`` is one instant, or :class:`Instants`: one instant per row of a table that stacks
several points in time (Customer Base Growth evaluates every month end in one query).
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta

import ibis
import ibis.expr.types as ir

from workbench.notebook import end_of_day
from workbench.segments.conditions import Window
from workbench.segments.data import ts_literal

__all__ = [
    "Instants",
    "first_instant",
    "last_instant_within",
    "relative_window_predicate",
    "start_of_day",
    "static_window_predicate",
    "window_predicate",
]


def start_of_day(day: date) -> datetime:
    """The first instant of a UTC calendar day."""
    return datetime.combine(day, time.min, tzinfo=UTC)


@dataclass(frozen=True)
class Instants:
    """One ``as_of`` per row: ``points[i]`` where the row's ``column`` holds ``i``.

    Attributes
    ----------
    points : sequence of datetime
        Timezone-aware instants, ascending.
    column : str
        The integer column of the stacked table holding the row's position in ``points``.
    index : ibis integer column, optional
        That column of one table (set by :meth:`on`; tables change as flags are joined on).
    """

    points: Sequence[datetime]
    column: str = "_snap"
    index: ir.IntegerValue | None = None

    def on(self, table: ir.Table) -> Instants:
        """The same instants, read from ``table``'s column."""
        return replace(self, index=table[self.column])

    def minus(self, days: int) -> ir.TimestampValue:
        """The row's instant ``days`` days earlier (a CASE over the points)."""
        if self.index is None:
            raise ValueError("Instants.minus needs a table: call Instants.on(table) first")
        shifted = [ts_literal(p - timedelta(days=days)) for p in self.points]
        return ibis.cases(*[(self.index == i, p) for i, p in enumerate(shifted)])


def first_instant(
    ts: ir.TimestampValue, points: Sequence[datetime], days_before: int = 0
) -> ir.IntegerValue:
    """The first ``i`` with ``ts <= points[i] - days_before`` (ascending points; null: none)."""
    cases = [(ts <= ts_literal(p - timedelta(days=days_before)), i) for i, p in enumerate(points)]
    return ibis.cases(*cases).cast("int64")


def last_instant_within(
    ts: ir.TimestampValue, points: Sequence[datetime], days: int
) -> ir.IntegerValue:
    """The last ``i`` with ``ts > points[i] - days`` (ascending points; null: none)."""
    cases = [
        (ts > ts_literal(p - timedelta(days=days)), i) for i, p in reversed(list(enumerate(points)))
    ]
    return ibis.cases(*cases).cast("int64")


def _before(as_of: datetime | Instants, days: int) -> ir.TimestampValue:
    if isinstance(as_of, Instants):
        return as_of.minus(days)
    return ts_literal(as_of - timedelta(days=days))


def static_window_predicate(ts: ir.TimestampValue, window: Window) -> ir.BooleanValue | None:
    """The window's fixed dates (``since``, ``until``, ``before``); None when it has none."""
    parts = []
    if window.since is not None:
        parts.append(ts >= ts_literal(start_of_day(window.since)))
    if window.until is not None:
        parts.append(ts <= ts_literal(end_of_day(window.until)))
    if window.before is not None:
        parts.append(ts < ts_literal(start_of_day(window.before)))
    return functools.reduce(operator.and_, parts) if parts else None


def relative_window_predicate(
    ts: ir.TimestampValue, window: Window, as_of: datetime | Instants
) -> ir.BooleanValue | None:
    """The window's bounds relative to ``as_of`` (``within_days``, ``older_than_days``)."""
    parts = []
    if window.within_days is not None:
        parts.append(ts > _before(as_of, window.within_days))
        parts.append(ts <= _before(as_of, 0))
    if window.older_than_days is not None:
        parts.append(ts <= _before(as_of, window.older_than_days))
    return functools.reduce(operator.and_, parts) if parts else None


def window_predicate(
    ts: ir.TimestampValue, window: Window, as_of: datetime | Instants
) -> ir.BooleanValue | None:
    """Rows whose timestamp ``ts`` lies in ``window`` (None when the window sets no bound).

    Parameters
    ----------
    ts : ibis timestamp column
        A UTC timestamp column.
    window : Window
        The condition's window fields.
    as_of : datetime or Instants
        Timezone-aware instant relative windows end at (or one per row).
    """
    parts = [
        p
        for p in (relative_window_predicate(ts, window, as_of), static_window_predicate(ts, window))
        if p is not None
    ]
    return functools.reduce(operator.and_, parts) if parts else None
