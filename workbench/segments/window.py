"""Time windows of conditions as ibis predicates, relative to an ``as_of`` instant.

``as_of`` is the end of the run's ``as_of`` day (UTC). ``within_days: N`` keeps timestamps in
the N calendar days ending on that day (``as_of - N days < ts <= as_of``); ``older_than_days:
N`` keeps ``ts <= as_of - N days`` (N or more days before); ``since`` / ``until`` are
inclusive UTC days; ``before`` is exclusive.
"""

from __future__ import annotations

import functools
import operator
from datetime import UTC, date, datetime, time, timedelta

import ibis.expr.types as ir

from workbench.notebook import end_of_day
from workbench.segments.conditions import Window
from workbench.segments.data import ts_literal

__all__ = ["start_of_day", "window_predicate"]


def start_of_day(day: date) -> datetime:
    """The first instant of a UTC calendar day."""
    return datetime.combine(day, time.min, tzinfo=UTC)


def window_predicate(
    ts: ir.TimestampValue, window: Window, as_of: datetime
) -> ir.BooleanValue | None:
    """Rows whose timestamp ``ts`` lies in ``window`` (None when the window sets no bound).

    Parameters
    ----------
    ts : ibis timestamp column
        A UTC timestamp column.
    window : Window
        The condition's window fields.
    as_of : datetime
        Timezone-aware instant relative windows end at.
    """
    parts = []
    if window.within_days is not None:
        parts.append(ts > ts_literal(as_of - timedelta(days=window.within_days)))
        parts.append(ts <= ts_literal(as_of))
    if window.older_than_days is not None:
        parts.append(ts <= ts_literal(as_of - timedelta(days=window.older_than_days)))
    if window.since is not None:
        parts.append(ts >= ts_literal(start_of_day(window.since)))
    if window.until is not None:
        parts.append(ts <= ts_literal(end_of_day(window.until)))
    if window.before is not None:
        parts.append(ts < ts_literal(start_of_day(window.before)))
    return functools.reduce(operator.and_, parts) if parts else None
