"""Canonical input tables: their columns, which are required, and their types after ingest."""

from __future__ import annotations

from dataclasses import dataclass, field

#: Canonical types after ingest (ibis type strings).
TIMESTAMP = "timestamp('UTC')"
MONEY = "decimal(18, 4)"


@dataclass(frozen=True)
class TableSpec:
    """The contract of one canonical table.

    Attributes
    ----------
    name : str
        Table name (``orders``, ``products``, ``customers``, ``events``).
    required : tuple of str
        Columns that must be mapped and present.
    optional : tuple of str
        Optional canonical columns.
    kinds : dict
        Parsing kind per column (default ``text``).
    extra_attributes : bool
        Whether unmapped source columns are carried along as attributes.
    one_of : tuple of tuples
        Groups of optional columns of which at least one must be present.
    derivable : tuple of str
        Optional columns derived from others when the source lacks them.
    """

    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    kinds: dict[str, str] = field(default_factory=dict)
    extra_attributes: bool = False
    one_of: tuple[tuple[str, ...], ...] = ()
    derivable: tuple[str, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        """All canonical columns, required first."""
        return self.required + self.optional

    def kind(self, column: str) -> str:
        """Parsing kind of a column: id, text, timestamp, number, money, int, bool."""
        return self.kinds.get(column, "text")


ORDERS = TableSpec(
    name="orders",
    required=("customer_id", "ordered_at", "product_id", "quantity"),
    optional=(
        "order_id",
        "unit_price",
        "amount",
        "line_no",
        "currency",
        "status",
        "discount",
        "channel",
        "product_name",
        "product_category",
        "product_brand",
        "customer_country",
    ),
    kinds={
        "order_id": "id",
        "customer_id": "id",
        "product_id": "id",
        "ordered_at": "timestamp",
        "quantity": "number",
        "unit_price": "money",
        "amount": "money",
        "discount": "money",
        "line_no": "int",
    },
    one_of=(("unit_price", "amount"),),
    derivable=("order_id",),
)

PRODUCTS = TableSpec(
    name="products",
    required=("product_id",),
    optional=("name", "category", "brand", "price"),
    kinds={"product_id": "id", "price": "money"},
    extra_attributes=True,
)

CUSTOMERS = TableSpec(
    name="customers",
    required=("customer_id",),
    optional=(
        "email",
        "phone",
        "first_name",
        "last_name",
        "country",
        "zip",
        "language",
        "subscribed",
        "created_at",
    ),
    kinds={"customer_id": "id", "subscribed": "bool", "created_at": "timestamp"},
    extra_attributes=True,
)

EVENTS = TableSpec(
    name="events",
    required=("customer_id", "occurred_at", "event_type"),
    optional=("product_id", "query"),
    kinds={"customer_id": "id", "product_id": "id", "occurred_at": "timestamp"},
)

TABLES: dict[str, TableSpec] = {t.name: t for t in (ORDERS, PRODUCTS, CUSTOMERS, EVENTS)}

#: Event types after ingest, in decreasing strength of intent.
EVENT_TYPES = ("cart", "click", "search", "view")
