"""Row-level normalisation and validation, as ibis expressions (DuckDB and Spark alike).

Each ``normalise_*`` function takes an opened source and returns a :class:`Staged` table holding
the parsed canonical columns, the raw values (strings, for the quarantine), and ``_reason``: the
first reason the row cannot be used, or NULL for a good row. Nothing is dropped here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import ibis

from workbench import engine
from workbench.ingest.tables import EVENT_TYPES, MONEY, TIMESTAMP, TableSpec

if TYPE_CHECKING:
    from workbench.ingest.sources import OpenedSource
    from workbench.params import EventsSource, OrdersSource, Source

REASON = "_reason"
RAW_PREFIX = "_raw_"
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)

#: Reasons that mean "this column could not be read"; too many of them fail the run.
PARSE_REASONS = {
    "missing_order_id": "order_id",
    "missing_customer_id": "customer_id",
    "missing_product_id": "product_id",
    "missing_timestamp": "ordered_at",
    "bad_timestamp": "ordered_at",
    "timestamp_out_of_range": "ordered_at",
    "bad_quantity": "quantity",
    "bad_price": "unit_price",
    "unknown_event_type": "event_type",
}

#: What each quarantine reason means, for the run summary and the report.
REASON_TEXT = {
    "missing_order_id": "no order id",
    "missing_customer_id": "no customer id (guest or anonymous line)",
    "missing_product_id": "no product id",
    "missing_timestamp": "no timestamp",
    "bad_timestamp": "timestamp could not be parsed",
    "timestamp_out_of_range": "timestamp before 1900 or in the future",
    "bad_quantity": "quantity is not a number",
    "bad_price": "price is not a number",
    "zero_quantity": "quantity is zero",
    "non_product_line": "fee, postage or adjustment line (data.orders.exclude_products)",
    "negative_price": "negative unit price (adjustment, not a sale)",
    "zero_price": "zero unit price (free item or adjustment)",
    "quantity_outlier": "|quantity| above data.orders.max_quantity",
    "unknown_currency": "currency without a rate in data.orders.fx_rates",
    "duplicate_line": "repeat of an identical order line",
    "duplicate_product": "repeated product id (one row kept: the smallest raw values)",
    "duplicate_customer": "repeated customer id (one row kept: the smallest raw values)",
    "unknown_event_type": "event type not one of view, click, search, cart",
}


@dataclass
class Staged:
    """A normalised table before it is split into clean rows and quarantine.

    The expression is built in two steps so that every value is parsed by one expression:
    ``parsed`` holds the parsed canonical columns and the raw strings, and ``finish`` adds the
    derived columns and ``_reason``, the first reason the row cannot be used (NULL for a good
    row). :attr:`table` chains them; the engine evaluates that in a single pass (measured
    faster on DuckDB than materialising ``parsed`` first). Nothing is dropped here.

    Attributes
    ----------
    parsed : ibis.Table
        Parsed canonical columns, extra attributes and ``_raw_*`` columns (source values, in
        the source's type).
    finish : callable
        ``finish(parsed_table) -> staged_table`` (clean columns, ``_raw_*``, ``_reason``).
    parsed_optional : dict
        Optional column -> raw column, for counting values that failed to parse (set NULL).
    """

    parsed: ibis.Table
    finish: Callable[[ibis.Table], ibis.Table]
    parsed_optional: dict[str, str] = field(default_factory=dict)

    @property
    def table(self) -> ibis.Table:
        """Both passes as one expression (for samples; materialise ``parsed`` at scale)."""
        return self.finish(self.parsed)

    @property
    def clean_columns(self) -> list[str]:
        """Columns written to the clean table."""
        return [c for c in self.table.columns if not c.startswith(RAW_PREFIX) and c != REASON]


def _backend_of(col: ibis.Value) -> str:
    try:
        return col._find_backend().name
    except Exception:  # noqa: BLE001 - unbound expressions (literals) use the portable form
        return "portable"


def text(col: ibis.Value) -> ibis.StringValue:
    """Trimmed string; empty strings become NULL."""
    return engine.trim(col.cast("string"), _backend_of(col)).nullif("")


def parse_id(col: ibis.Value) -> ibis.StringValue:
    """Identifier as a trimmed string; ``"17850.0"`` (an id exported as a float) -> ``"17850"``."""
    s = text(col)
    # the cheap suffix test first: the regex runs only on the few values ending in "0"
    float_like = s.endswith("0") & s.re_search(r"^-?[0-9]+\.0+$")
    return ibis.ifelse(float_like, s.left(s.find(".")), s)


def _numeric_text(col: ibis.Value) -> ibis.StringValue:
    s = text(col).re_replace(r"[^0-9,.eE+\-]", "")
    both = s.contains(",") & s.contains(".")
    return ibis.ifelse(both, s.replace(",", ""), s.replace(",", ".")).nullif("")


def _parse_numeric(col: ibis.Value, dtype: str) -> ibis.Value:
    if col.type().is_numeric():
        return col.cast(dtype)
    # plain numbers cast directly; only the values that fail go through the text clean-up
    direct = text(col).try_cast(dtype)
    return ibis.ifelse(direct.notnull(), direct, _numeric_text(col).try_cast(dtype))


def parse_number(col: ibis.Value) -> ibis.FloatingValue:
    """A float from a number or from text such as ``"1,5"``, ``"1,234.50"``, ``" 3 "``."""
    return _parse_numeric(col, "float64")


def parse_money(col: ibis.Value) -> ibis.DecimalValue:
    """A decimal amount from a number or text; currency symbols and spaces are ignored."""
    return _parse_numeric(col, MONEY)


def parse_timestamp(
    backend: str, col: ibis.Value, fmt: str | None, zone: str
) -> ibis.TimestampValue:
    """A UTC instant from a timestamp, a date, or text.

    Text with an offset (``+01:00``, ``Z``) is converted to UTC; text without one is read as
    wall-clock time in ``zone``. ``fmt`` is a strptime format; None means ISO 8601.
    """
    typ = col.type()
    if typ.is_timestamp():
        if typ.timezone is None:
            return engine.localize(backend, col, zone) if zone != "UTC" else col.cast(TIMESTAMP)
        return col.cast(TIMESTAMP)
    if typ.is_date():
        col = col.cast("timestamp")
        return engine.localize(backend, col, zone) if zone != "UTC" else col.cast(TIMESTAMP)
    s = text(col)
    if fmt:
        parsed = engine.try_strptime(backend, s, fmt)
        if "%z" in fmt or zone == "UTC":
            return parsed.cast(TIMESTAMP)
        return engine.localize(backend, parsed, zone)
    aware = s.try_cast(TIMESTAMP)
    if zone == "UTC":
        return aware
    has_offset = s.re_search(
        r"[0-9]{2}:[0-9]{2}(:[0-9]{2}([.][0-9]+)?)?\s*(Z|z|[+-][0-9]{2}(:?[0-9]{2})?)$"
    )
    naive = s.try_cast("timestamp")
    return ibis.ifelse(has_offset, aware, engine.localize(backend, naive, zone))


def parse_bool(col: ibis.Value) -> ibis.BooleanValue:
    """True/False from booleans, 1/0, or text such as yes/no, true/false, subscribed."""
    if col.type().is_boolean():
        return col
    s = text(col).lower()
    yes = ("true", "t", "yes", "y", "1", "1.0", "subscribed", "opt-in", "optin")
    no = ("false", "f", "no", "n", "0", "0.0", "unsubscribed", "opt-out", "optout")
    return ibis.cases((s.isin(yes), True), (s.isin(no), False), else_=ibis.null("boolean"))


def _parse(backend: str, kind: str, col: ibis.Value, spec: Source) -> ibis.Value:
    if kind == "id":
        return parse_id(col)
    if kind == "timestamp":
        return parse_timestamp(backend, col, spec.timestamp_format, spec.timezone)
    if kind == "number":
        return parse_number(col)
    if kind == "money":
        return parse_money(col)
    if kind == "int":
        return parse_number(col).cast("int64")
    if kind == "bool":
        return parse_bool(col)
    return text(col)


def _reason(rules: list[tuple[str, ibis.BooleanValue]]) -> ibis.StringValue:
    return ibis.cases(
        *[(cond.fill_null(False), name) for name, cond in rules], else_=ibis.null("string")
    )


def _parse_pass(
    opened: OpenedSource, spec: Source, tspec: TableSpec
) -> tuple[ibis.Table, list[str]]:
    """First pass: parse every mapped (or defaulted) column once, keep the raw strings."""
    t = opened.table
    backend = engine.engine_name(t._find_backend())
    columns = {c: t[src] for c, src in opened.mapping.items()}
    for c, value in spec.defaults.items():
        if c not in columns and c in tspec.columns:
            columns[c] = ibis.literal(str(value))
    parsed = {c: _parse(backend, tspec.kind(c), col, spec) for c, col in columns.items()}
    # raw values stay in the source's type: only quarantined rows are ever shown, and they are
    # cast to text when the quarantine is written (formatting 50M timestamps as text costs more
    # than parsing them)
    raw = {f"{RAW_PREFIX}{c}": col for c, col in columns.items()}
    attributes = {
        name: text(t[src]) if t[src].type().is_string() else t[src]
        for name, src in opened.attributes.items()
    }
    return t.select(**parsed, **attributes, **raw), list(parsed)


def _split(t: ibis.Table, names: list[str]) -> tuple[dict[str, ibis.Value], dict[str, ibis.Value]]:
    """Column references of a parsed table: parsed canonical columns and raw columns."""
    return {c: t[c] for c in names}, {c: t[c] for c in t.columns if c.startswith(RAW_PREFIX)}


def _attribute_refs(t: ibis.Table, opened: OpenedSource) -> dict[str, ibis.Value]:
    return {name: t[name] for name in opened.attributes}


def _first_of_key(
    table: ibis.Table, keys: list[str], reason: str, order_by: list[str] | None = None
) -> ibis.Table:
    """Mark every good row after the first one with the same key values as ``reason``.

    Without ``order_by`` the rows of a group are interchangeable (equal on every key), so any
    one may stay; that saves a sort per group.
    """
    good = table[REASON].isnull()
    window = ibis.window(
        group_by=[*(table[k] for k in keys), good],
        order_by=[table[k] for k in order_by] if order_by else None,
    )
    rn = ibis.row_number().over(window)
    return table.mutate(
        **{REASON: ibis.ifelse(good & (rn > 0), ibis.literal(reason), table[REASON])}
    )


def _timestamp_rules(
    parsed: ibis.TimestampValue, raw: ibis.Value
) -> list[tuple[str, ibis.BooleanValue]]:
    latest = datetime.now(UTC) + timedelta(days=2)
    missing = text(raw).isnull() if raw.type().is_string() else raw.isnull()
    return [
        ("missing_timestamp", missing),
        ("bad_timestamp", parsed.isnull()),
        (
            "timestamp_out_of_range",
            (parsed < ibis.literal(EARLIEST, type=TIMESTAMP))
            | (parsed > ibis.literal(latest, type=TIMESTAMP)),
        ),
    ]


def normalise_orders(opened: OpenedSource, spec: OrdersSource, currency: str) -> Staged:
    """Parse and validate order lines; returns are kept as negative lines.

    A line is a return when its order id starts with ``cancel_prefix``, its status is one of
    ``return_statuses``, or its quantity is negative; its quantity and revenue are negative.
    ``unit_price`` and ``revenue`` are converted into the run currency with ``fx_rates``.
    """
    from workbench.ingest.tables import ORDERS

    parsed, names = _parse_pass(opened, spec, ORDERS)
    optional = {c: f"{RAW_PREFIX}{c}" for c in ("line_no", "discount") if c in names}
    return Staged(parsed, lambda t: _finish_orders(t, names, spec, currency), optional)


def _finish_orders(
    t: ibis.Table, names: list[str], spec: OrdersSource, currency: str
) -> ibis.Table:
    p, raw = _split(t, names)
    q = p["quantity"]
    if "unit_price" in p:
        price = p["unit_price"]
    else:  # only a line total: unit price = amount / |quantity|
        price = (p["amount"].cast("float64") / q.abs().nullif(0)).cast(MONEY)
        price = ibis.ifelse(p["amount"] < 0, -price, price)
    if "order_id" not in p:  # one order per customer and timestamp
        epoch = p["ordered_at"].epoch_seconds().cast("int64").cast("string")
        p["order_id"] = p["customer_id"].concat("@", epoch)
    status = p["status"].lower() if "status" in p else ibis.null("string")
    is_return = q < 0
    if "status" in p:
        statuses = [s.lower() for s in spec.return_statuses]
        is_return = is_return | status.isin(statuses).fill_null(False)
    if spec.cancel_prefix:
        is_return = is_return | p["order_id"].startswith(spec.cancel_prefix)
    is_return = is_return.fill_null(False)

    cur = p["currency"].upper() if "currency" in p else ibis.literal(currency)
    rates = {currency: 1.0, **{k.upper(): v for k, v in spec.fx_rates.items()}}
    rate = ibis.cases(
        *[(cur == k, ibis.literal(v, type="float64")) for k, v in rates.items()],
        else_=ibis.null("float64"),
    )
    unit_price = (price.cast("float64") * rate).cast(MONEY) if spec.fx_rates else price
    signed_q = ibis.ifelse(is_return, -q.abs(), q)
    gross = q.abs() * unit_price.cast("float64")
    if "discount" in p:
        gross = gross - (p["discount"].cast("float64") * rate).fill_null(0)
    revenue = (ibis.ifelse(is_return, -gross, gross)).cast(MONEY)

    rules = [
        ("missing_order_id", p["order_id"].isnull()),
        ("missing_customer_id", p["customer_id"].isnull()),
        ("missing_product_id", p["product_id"].isnull()),
        *_timestamp_rules(p["ordered_at"], raw[f"{RAW_PREFIX}ordered_at"]),
        ("bad_quantity", q.isnull()),
        ("bad_price", price.isnull()),
        ("zero_quantity", q == 0),
    ]
    if spec.exclude_products:
        rules.append(("non_product_line", p["product_id"].isin(spec.exclude_products)))
    rules.append(("negative_price", price < 0))
    if not spec.keep_zero_price:
        rules.append(("zero_price", price == 0))
    if spec.max_quantity:
        rules.append(("quantity_outlier", q.abs() > spec.max_quantity))
    rules.append(("unknown_currency", rate.isnull()))

    cols = {
        "order_id": p["order_id"],
        "line_no": p.get("line_no", ibis.null("int64")),
        "customer_id": p["customer_id"],
        "ordered_at": p["ordered_at"],
        "product_id": p["product_id"],
        "quantity": signed_q,
        "unit_price": unit_price,
        "revenue": revenue,
        "is_return": is_return,
        "currency": cur,
        "status": status,
        "discount": p.get("discount", ibis.null(MONEY)),
        "channel": p.get("channel", ibis.null("string")),
        "product_name": p.get("product_name", ibis.null("string")),
        "product_category": p.get("product_category", ibis.null("string")),
        "product_brand": p.get("product_brand", ibis.null("string")),
        "customer_country": p.get("customer_country", ibis.null("string")),
    }
    table = t.select(**cols, **raw, **{REASON: _reason(rules)})
    keys = order_line_keys(spec, "line_no" in p)
    if keys and "line_no" in p:  # same order, product and line number: keep the earliest
        table = _first_of_key(
            table,
            keys,
            "duplicate_line",
            order_by=["ordered_at", "quantity", "unit_price", "customer_id"],
        )
    elif keys:  # identical lines
        table = _first_of_key(table, keys, "duplicate_line")
    return table


def order_line_keys(spec: OrdersSource, has_line_no: bool) -> list[str]:
    """Columns that make two order lines the same line (``duplicate_line``); [] = no dedupe."""
    if not spec.dedupe:
        return []
    if has_line_no:
        return ["order_id", "product_id", "line_no"]
    return ["order_id", "customer_id", "ordered_at", "product_id", "quantity", "unit_price"]


def mark_repeats(staged: ibis.Table, seen: ibis.Table, keys: list[str]) -> ibis.Table:
    """Mark good rows of ``staged`` whose ``keys`` occur in ``seen`` as ``duplicate_line``."""
    known = seen.select(*keys).distinct().mutate(_wb_seen=ibis.literal(True))
    joined = staged.left_join(known, keys).drop(*(f"{k}_right" for k in keys))
    good = joined[REASON].isnull() & joined["_wb_seen"].notnull()
    return joined.mutate(
        **{REASON: ibis.ifelse(good, ibis.literal("duplicate_line"), joined[REASON])}
    ).drop("_wb_seen")


def normalise_products(opened: OpenedSource, spec: Source) -> Staged:
    """Parse products; of rows repeating a product id one is kept, the others quarantined."""
    from workbench.ingest.tables import PRODUCTS

    parsed, names = _parse_pass(opened, spec, PRODUCTS)
    optional = {"price": f"{RAW_PREFIX}price"} if "price" in names else {}
    return Staged(parsed, lambda t: _finish_products(t, names, opened), optional)


def _finish_products(t: ibis.Table, names: list[str], opened: OpenedSource) -> ibis.Table:
    p, raw = _split(t, names)
    cols = {
        "product_id": p["product_id"],
        "name": p.get("name", ibis.null("string")),
        "category": p.get("category", ibis.null("string")),
        "brand": p.get("brand", ibis.null("string")),
        "price": p.get("price", ibis.null(MONEY)),
        **_attribute_refs(t, opened),
    }
    rules = [("missing_product_id", p["product_id"].isnull())]
    table = t.select(**cols, **raw, **{REASON: _reason(rules)})
    return _first_of_key(table, ["product_id"], "duplicate_product", order_by=sorted(raw))


def normalise_customers(opened: OpenedSource, spec: Source) -> Staged:
    """Parse customers (e-mails trimmed, lower-cased); of repeated ids one row is kept."""
    from workbench.ingest.tables import CUSTOMERS

    parsed, names = _parse_pass(opened, spec, CUSTOMERS)
    optional = {c: f"{RAW_PREFIX}{c}" for c in ("subscribed", "created_at") if c in names}
    return Staged(parsed, lambda t: _finish_customers(t, names, opened), optional)


def _finish_customers(t: ibis.Table, names: list[str], opened: OpenedSource) -> ibis.Table:
    p, raw = _split(t, names)
    cols = {
        "customer_id": p["customer_id"],
        "email": p["email"].lower() if "email" in p else ibis.null("string"),
        **{
            c: p.get(c, ibis.null("string"))
            for c in ("phone", "first_name", "last_name", "country", "zip", "language")
        },
        "subscribed": p.get("subscribed", ibis.null("boolean")),
        "created_at": p.get("created_at", ibis.null(TIMESTAMP)),
        **_attribute_refs(t, opened),
    }
    rules = [("missing_customer_id", p["customer_id"].isnull())]
    table = t.select(**cols, **raw, **{REASON: _reason(rules)})
    return _first_of_key(table, ["customer_id"], "duplicate_customer", order_by=sorted(raw))


def normalise_events(opened: OpenedSource, spec: EventsSource) -> Staged:
    """Parse web events; event types are mapped onto view, click, search, cart."""
    from workbench.ingest.tables import EVENTS

    parsed, names = _parse_pass(opened, spec, EVENTS)
    return Staged(parsed, lambda t: _finish_events(t, names, spec))


def _finish_events(t: ibis.Table, names: list[str], spec: EventsSource) -> ibis.Table:
    p, raw = _split(t, names)
    source_type = p["event_type"].lower()
    mapping = {k.lower(): v for k, v in spec.event_types.items()}
    mapping.update({t: t for t in EVENT_TYPES if t not in mapping})
    event_type = ibis.cases(
        *[(source_type == k, ibis.literal(v)) for k, v in mapping.items()],
        else_=ibis.null("string"),
    )
    cols = {
        "customer_id": p["customer_id"],
        "occurred_at": p["occurred_at"],
        "event_type": event_type,
        "product_id": p.get("product_id", ibis.null("string")),
        "query": p.get("query", ibis.null("string")),
    }
    rules = [
        ("missing_customer_id", p["customer_id"].isnull()),
        *_timestamp_rules(p["occurred_at"], raw[f"{RAW_PREFIX}occurred_at"]),
        ("unknown_event_type", event_type.isnull()),
    ]
    return t.select(**cols, **raw, **{REASON: _reason(rules)})


def normalise(name: str, opened: OpenedSource, spec: Source, currency: str) -> Staged:
    """Normalise one canonical table (dispatch on its name)."""
    if name == "orders":
        return normalise_orders(opened, spec, currency)  # type: ignore[arg-type]
    if name == "events":
        return normalise_events(opened, spec)  # type: ignore[arg-type]
    return {"products": normalise_products, "customers": normalise_customers}[name](opened, spec)
