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
from datetime import date

import ibis
import ibis.expr.types as ir

from workbench.notebook import end_of_day
from workbench.segments import conditions as c
from workbench.segments.data import ATTR, SegmentData, ts_literal, upload
from workbench.segments.spec import All, AnyOf, Node, Not, iter_conditions
from workbench.segments.window import start_of_day, window_predicate

__all__ = ["SET_CONDITIONS", "compile_where", "condition_customers", "product_predicate"]

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


def condition_customers(cond: c.Condition, data: SegmentData) -> ir.Table:
    """The customers a set condition selects (column ``customer_id``, distinct)."""
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
            window_predicate(lines.ordered_at, cond, data.as_of),
            price,
        )
        return _at_least(lines, lines.quantity.cast("float64"), cond.min_quantity)
    if isinstance(cond, c.ViewCondition):
        events = data.web_events(with_products=cond.has_product_filter())
        events = _filtered(
            events,
            events.event_type.isin(list(cond.event_types)),
            product_predicate(events, cond),
            window_predicate(events.occurred_at, cond, data.as_of),
        )
        return _at_least(events, None, cond.min_count)
    if isinstance(cond, c.SearchCondition):
        events = data.web_events()
        query = _lower_text(events.query)
        found = functools.reduce(operator.or_, [query.contains(q.lower()) for q in cond.query])
        events = _filtered(
            events,
            events.event_type == "search",
            found.fill_null(False),
            window_predicate(events.occurred_at, cond, data.as_of),
        )
        return _at_least(events, None, cond.min_count)
    if isinstance(cond, c.SiteActivityCondition):
        events = data.web_events()
        types = events.event_type.isin(list(cond.event_types)) if cond.event_types else None
        events = _filtered(events, types, window_predicate(events.occurred_at, cond, data.as_of))
        return _at_least(events, None, cond.min_count)
    if isinstance(cond, c.InterestCondition):
        key = ("interest", cond.level, cond.target, cond.min_score, cond.top_share)
        if key not in data._cache:
            frame = data.interest.members(cond.level, cond.target, cond.min_score, cond.top_share)
            data._cache[key] = upload(data.con, frame.astype({"customer_id": str}), "interest")
        return data._cache[key]
    raise TypeError(f"{type(cond).__name__} is not a set condition")


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


def _leaf(cond: c.Condition, t: ir.Table, data: SegmentData) -> ir.BooleanValue:
    if isinstance(cond, c.LabelCondition):
        return t[cond.column].isin(list(cond.values))
    if isinstance(cond, c.ValuesCondition):
        return _lower_text(t[cond.column]).isin([v.lower() for v in cond.values])
    if isinstance(cond, c.SubscribedCondition):
        return _subscribed(t["subscribed"], cond.value)
    if isinstance(cond, c.AttributeCondition):
        return _attribute(t[cond.column], cond)
    if isinstance(cond, c.MetricCondition):
        column = t[data.column(cond.column)].cast("float64")
        parts = []
        if cond.min is not None:
            parts.append(column >= cond.min)
        if cond.max is not None:
            parts.append(column <= cond.max)
        return functools.reduce(operator.and_, parts)
    if isinstance(cond, c.DateCondition):
        return window_predicate(t[cond.column], cond, data.as_of)
    raise TypeError(f"no compiler for {type(cond).__name__}")


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
    t = data.customers
    flags: dict[int, str] = {}
    for i, cond in enumerate(iter_conditions(node)):
        if isinstance(cond, SET_CONDITIONS) and id(cond) not in flags:
            ids = condition_customers(cond, data)
            key, flag = f"_seg_k{i}", f"_seg_f{i}"
            ids = ids.select(**{key: ids.customer_id, flag: ibis.literal(True)})
            t = t.left_join(ids, t.customer_id == ids[key]).drop(key)
            flags[id(cond)] = flag

    def walk(n: Node) -> ir.BooleanValue:
        if isinstance(n, All):
            return functools.reduce(operator.and_, [walk(x) for x in n.items])
        if isinstance(n, AnyOf):
            return functools.reduce(operator.or_, [walk(x) for x in n.items])
        if isinstance(n, Not):
            return ~walk(n.item)
        if id(n) in flags:
            hit = t[flags[id(n)]].notnull()
            return ~hit if isinstance(n, c.NotPurchasedCondition) else hit
        return _leaf(n, t, data).fill_null(False)

    return t.filter(walk(node)).drop(*flags.values())
