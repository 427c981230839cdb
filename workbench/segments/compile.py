"""Compile a segment's ``where`` tree into an ibis filter over the customer table.

Conditions on the customer table (labels, metrics, dates, attributes) become column
predicates. Conditions on other tables (purchases, web events, interest scores) become a table
of the matching ``customer_id`` values, left-joined onto the customer table as a flag column;
the tree then combines predicates and flags with AND / OR / NOT. Every leaf is made two-valued
(a missing value does not match), so ``not`` is the exact complement within the universe.

The same expression runs on DuckDB and PySpark.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

import ibis
import ibis.expr.types as ir

from workbench.notebook import end_of_day
from workbench.segments import conditions as c
from workbench.segments.data import ATTR, SegmentData, ts_literal, upload
from workbench.segments.spec import All, AnyOf, Node, Not, iter_conditions
from workbench.segments.window import (
    Instants,
    relative_window_predicate,
    start_of_day,
    static_window_predicate,
    window_predicate,
)

__all__ = [
    "SET_CONDITIONS",
    "ConditionRows",
    "FlagJoin",
    "attach_flag",
    "compile_tree",
    "compile_where",
    "condition_customers",
    "condition_rows",
    "interest_customers",
    "leaf_columns",
    "product_predicate",
]

#: Conditions evaluated as a set of customer ids (not a customer-table column).
SET_CONDITIONS = (
    c.PurchaseCondition,
    c.SiteActivityCondition,
    c.ViewCondition,
    c.SearchCondition,
    c.InterestCondition,
)
_META = re.compile(r"([.^$*+?()\[\]{}|\\])")
_TRUE = ("true", "1", "yes", "y", "t")


def _regex_escape(text: str) -> str:
    """Escape regex metacharacters the same way for RE2 (DuckDB) and Java (Spark)."""
    return _META.sub(r"\\\1", text)


def _lower_text(value: ir.Value) -> ir.StringValue:
    return value.cast("string").lower()


def _category_predicate(column: ir.Value, wanted: tuple[str, ...]) -> ir.BooleanValue:
    """Any level of a category path (``Kitchen`` matches ``Home > Kitchen > Mugs``)."""
    path = " > " + _lower_text(column).re_replace(r"\s*>\s*", " > ") + " > "
    parts = []
    for text in wanted:
        norm = " > ".join(p.strip() for p in text.lower().split(">") if p.strip())
        parts.append(path.contains(f" > {norm} > "))
    return functools.reduce(operator.or_, parts)


def _keyword_predicate(column: ir.Value, words: tuple[str, ...]) -> ir.BooleanValue:
    """A word of the product name starting with the keyword (``mug`` matches ``Mugs``)."""
    text = _lower_text(column)
    parts = [text.re_search(r"(^|[^a-z0-9])" + _regex_escape(w.lower().strip())) for w in words]
    return functools.reduce(operator.or_, parts)


def _values_predicate(column: ir.Value, values: list) -> ir.BooleanValue:
    """Equality with one of ``values``: case-insensitive for text, numeric for numbers."""
    dtype = column.type()
    if dtype.is_numeric():
        return column.cast("float64").isin([float(v) for v in values])
    if dtype.is_boolean():
        return column.isin([v if isinstance(v, bool) else str(v).lower() in _TRUE for v in values])
    return _lower_text(column).isin([str(v).lower() for v in values])


def product_predicate(table: ir.Table, spec: c.ProductFilter) -> ir.BooleanValue | None:
    """Lines or events (with ``attr__*`` columns) about the products ``spec`` selects."""
    parts = []
    if spec.product:
        parts.append(table.product_id.cast("string").isin(list(spec.product)))
    if spec.category:
        parts.append(_category_predicate(table[f"{ATTR}category"], spec.category))
    if spec.brand:
        parts.append(_lower_text(table[f"{ATTR}brand"]).isin([b.lower() for b in spec.brand]))
    if spec.keyword:
        parts.append(_keyword_predicate(table[f"{ATTR}name"], spec.keyword))
    for name, value in (spec.attributes or {}).items():
        values = value if isinstance(value, list) else [value]
        parts.append(_values_predicate(table[f"{ATTR}{name}"], values))
    parts = [p.fill_null(False) for p in parts]
    return functools.reduce(operator.and_, parts) if parts else None


def _filtered(table: ir.Table, *preds: ir.BooleanValue | None) -> ir.Table:
    kept = [p for p in preds if p is not None]
    return table.filter(*kept) if kept else table


def _at_least(table: ir.Table, amount: ir.NumericValue | None, minimum: float) -> ir.Table:
    """Customers whose summed ``amount`` (None: row count) reaches ``minimum``."""
    total = table.count() if amount is None else amount.sum()
    per = table.group_by("customer_id").aggregate(_n=total)
    return per.filter(per._n >= minimum).select("customer_id")


@dataclass(frozen=True)
class ConditionRows:
    """The order lines or events a set condition counts, before its relative window.

    Attributes
    ----------
    table : ibis.Table
        Rows up to ``as_of`` matching everything but ``within_days`` / ``older_than_days``
        (products, prices, event types, queries, fixed dates).
    ts : str
        The timestamp column the window applies to.
    amount : str or None
        Column summed against ``minimum`` (None: rows are counted).
    minimum : float
        The total a customer must reach.
    """

    table: ir.Table
    ts: str
    amount: str | None
    minimum: float

    def total(self, table: ir.Table) -> ir.NumericValue:
        """The summed amount (or the row count) of ``table``, per group."""
        return table.count() if self.amount is None else table[self.amount].sum()


def condition_rows(cond: c.Condition, data: SegmentData) -> ConditionRows:
    """The rows a purchase, view, search or site-activity condition counts."""
    if isinstance(cond, c.PurchaseCondition):
        lines = data.purchase_lines()
        price = None
        if cond.price is not None:
            paid = lines.unit_price.cast("float64")
            bounds = [
                (cond.price.gt, operator.gt),
                (cond.price.ge, operator.ge),
                (cond.price.lt, operator.lt),
                (cond.price.le, operator.le),
            ]
            price = functools.reduce(
                operator.and_, [op(paid, v) for v, op in bounds if v is not None]
            )
        lines = _filtered(
            lines,
            product_predicate(lines, cond),
            static_window_predicate(lines.ordered_at, cond),
            price,
        )
        lines = lines.mutate(_amount=lines.quantity.cast("float64"))
        return ConditionRows(lines, "ordered_at", "_amount", cond.min_quantity)
    if isinstance(cond, c.ViewCondition):
        events = data.web_events(with_products=cond.has_product_filter())
        events = _filtered(
            events,
            events.event_type.isin(list(cond.event_types)),
            product_predicate(events, cond),
            static_window_predicate(events.occurred_at, cond),
        )
        return ConditionRows(events, "occurred_at", None, cond.min_count)
    if isinstance(cond, c.SearchCondition):
        events = data.web_events()
        query = _lower_text(events.query)
        found = functools.reduce(operator.or_, [query.contains(q.lower()) for q in cond.query])
        events = _filtered(
            events,
            events.event_type == "search",
            found.fill_null(False),
            static_window_predicate(events.occurred_at, cond),
        )
        return ConditionRows(events, "occurred_at", None, cond.min_count)
    if isinstance(cond, c.SiteActivityCondition):
        events = data.web_events()
        types = events.event_type.isin(list(cond.event_types)) if cond.event_types else None
        events = _filtered(events, types, static_window_predicate(events.occurred_at, cond))
        return ConditionRows(events, "occurred_at", None, cond.min_count)
    raise TypeError(f"{type(cond).__name__} does not count order lines or events")


def interest_customers(cond: c.InterestCondition, data: SegmentData) -> ir.Table:
    """The customers an Interested-In condition selects (uploaded once per data, cached)."""
    key = ("interest", cond.level, cond.target, cond.min_score, cond.top_share)
    if key not in data._cache:
        frame = data.interest.members(cond.level, cond.target, cond.min_score, cond.top_share)
        data._cache[key] = upload(data.con, frame.astype({"customer_id": str}), "interest")
    return data._cache[key]


def condition_customers(cond: c.Condition, data: SegmentData) -> ir.Table:
    """The customers a set condition selects (column ``customer_id``, distinct)."""
    if isinstance(cond, c.InterestCondition):
        return interest_customers(cond, data)
    if not isinstance(cond, SET_CONDITIONS):
        raise TypeError(f"{type(cond).__name__} is not a set condition")
    rows = condition_rows(cond, data)
    table = _filtered(rows.table, relative_window_predicate(rows.table[rows.ts], cond, data.as_of))
    amount = None if rows.amount is None else table[rows.amount]
    return _at_least(table, amount, rows.minimum)


def _attribute(column: ir.Value, cond: c.AttributeCondition) -> ir.BooleanValue:
    op, value = cond.op, cond.value
    if op == "is_null":
        return column.isnull() if value in (None, True) else column.notnull()
    if op in ("in", "not_in"):
        found = _values_predicate(column, list(value))
        return found if op == "in" else ~found
    if op == "contains":
        return _lower_text(column).contains(str(value).lower())
    dtype = column.type()
    if op in ("eq", "ne") and not (dtype.is_temporal() and isinstance(value, date)):
        found = _values_predicate(column, [value])
        return found if op == "eq" else ~found
    if dtype.is_timestamp() and isinstance(value, date):
        start, end = ts_literal(start_of_day(value)), ts_literal(end_of_day(value))
        return {
            "eq": (column >= start) & (column <= end),
            "ne": (column < start) | (column > end),
            "gt": column > end,
            "ge": column >= start,
            "lt": column < start,
            "le": column <= end,
        }[op]
    if dtype.is_numeric():
        column, value = column.cast("float64"), float(value)
    elif dtype.is_string():
        column, value = column.lower(), str(value).lower()
    ops = {"gt": operator.gt, "ge": operator.ge, "lt": operator.lt, "le": operator.le}
    ops.update({"eq": operator.eq, "ne": operator.ne})
    return ops[op](column, value)


def _subscribed(column: ir.Value, wanted: bool) -> ir.BooleanValue:
    flag = column if column.type().is_boolean() else _lower_text(column).isin(list(_TRUE))
    return flag if wanted else ~flag


def _leaf_column(cond: c.Condition, data: SegmentData) -> str:
    """The customer-table column a column condition reads ("" for one that reads none)."""
    if isinstance(cond, c.SubscribedCondition):
        return "subscribed"
    if isinstance(cond, c.MetricCondition):
        return data.column(cond.column)
    return getattr(cond, "column", "")


def _leaf(
    cond: c.Condition, t: ir.Table, data: SegmentData, as_of: datetime | Instants
) -> ir.BooleanValue:
    name = _leaf_column(cond, data)
    if isinstance(cond, c.LabelCondition):
        return t[name].isin(list(cond.values))
    if isinstance(cond, c.ValuesCondition):
        return _lower_text(t[name]).isin([v.lower() for v in cond.values])
    if isinstance(cond, c.SubscribedCondition):
        return _subscribed(t[name], cond.value)
    if isinstance(cond, c.AttributeCondition):
        return _attribute(t[name], cond)
    if isinstance(cond, c.MetricCondition):
        column = t[name].cast("float64")
        parts = []
        if cond.min is not None:
            parts.append(column >= cond.min)
        if cond.max is not None:
            parts.append(column <= cond.max)
        return functools.reduce(operator.and_, parts)
    if isinstance(cond, c.DateCondition):
        when = as_of.on(t) if isinstance(as_of, Instants) else as_of
        return window_predicate(t[name], cond, when)
    raise TypeError(f"no compiler for {type(cond).__name__}")


def leaf_columns(node: Node, data: SegmentData) -> set[str]:
    """The customer-table columns a tree's column conditions read (those :func:`_leaf` reads).

    Set conditions (purchases, views, interest, ...) read other tables and add nothing.
    """
    names = {
        _leaf_column(cond, data)
        for cond in iter_conditions(node)
        if not isinstance(cond, SET_CONDITIONS)
    }
    return names - {""}


#: Joins a set condition's members onto the table as columns and returns the table, the
#: predicate "is a member" over it and the added columns (dropped at the end):
#: ``join(table, condition, i) -> (table, hit, columns)``.
FlagJoin = Callable[
    [ir.Table, c.Condition, int], tuple[ir.Table, Callable[[ir.Table], ir.BooleanValue], list[str]]
]


def attach_flag(
    t: ir.Table,
    ids: ir.Table,
    i: int,
    keys: tuple[str, ...] = ("customer_id",),
    value: str | None = None,
) -> tuple[ir.Table, str]:
    """Left-join a set condition's members (distinct on ``keys``) onto ``t`` as one column.

    The column (named in the result) holds ``ids[value]`` (default ``True``) for members and
    null for everyone else.
    """
    flag = f"_seg_f{i}"
    renamed = {f"_seg_k{i}_{j}": ids[k] for j, k in enumerate(keys)}
    ids = ids.select(**renamed, **{flag: ids[value] if value else ibis.literal(True)})
    on = [t[k] == ids[n] for k, n in zip(keys, renamed, strict=True)]
    return t.left_join(ids, on).drop(*renamed), flag


def _flag_join(data: SegmentData) -> FlagJoin:
    """Members of set conditions as a flag column, joined on ``customer_id``."""

    def join(
        t: ir.Table, cond: c.Condition, i: int
    ) -> tuple[ir.Table, Callable[[ir.Table], ir.BooleanValue], list[str]]:
        t, flag = attach_flag(t, condition_customers(cond, data), i)
        return t, lambda x: x[flag].notnull(), [flag]

    return join


def compile_tree(
    node: Node,
    data: SegmentData,
    table: ir.Table,
    as_of: datetime | Instants,
    join: FlagJoin,
) -> ir.Table:
    """The rows of ``table`` for which ``node`` holds (the shared core of the compilers).

    Parameters
    ----------
    node : Node
        A validated ``where`` tree.
    data : SegmentData
        The tables conditions read (and the horizon of metric names).
    table : ibis.Table
        The customer rows the tree filters (one customer table, or several stacked).
    as_of : datetime or Instants
        The instant date conditions are relative to (or one per row).
    join : FlagJoin
        How a set condition's members are joined onto ``table``.
    """
    t = table
    hits: dict[int, Callable[[ir.Table], ir.BooleanValue]] = {}
    added: list[str] = []
    for i, cond in enumerate(iter_conditions(node)):
        if isinstance(cond, SET_CONDITIONS) and id(cond) not in hits:
            t, hit, cols = join(t, cond, i)
            hits[id(cond)] = hit
            added += cols

    def walk(n: Node) -> ir.BooleanValue:
        if isinstance(n, All):
            return functools.reduce(operator.and_, [walk(x) for x in n.items])
        if isinstance(n, AnyOf):
            return functools.reduce(operator.or_, [walk(x) for x in n.items])
        if isinstance(n, Not):
            return ~walk(n.item)
        if id(n) in hits:
            hit = hits[id(n)](t).fill_null(False)
            return ~hit if isinstance(n, c.NotPurchasedCondition) else hit
        return _leaf(n, t, data, as_of).fill_null(False)

    return t.filter(walk(node)).drop(*added)


def compile_where(node: Node, data: SegmentData) -> ir.Table:
    """The customers (all customer-table columns) for which ``node`` holds.

    Parameters
    ----------
    node : Node
        A validated ``where`` tree (check it against the data first:
        :func:`workbench.segments.check.check_segment`).
    data : SegmentData
        The tables and the ``as_of`` instant.

    Returns
    -------
    ibis.Table
        A filter of ``data.customers``.
    """
    return compile_tree(node, data, data.customers, data.as_of, _flag_join(data))
