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
    optional : dict
        Optional canonical columns and their kind.
    extra_attributes : bool
        Whether unmapped source columns are carried along as attributes.
    """

    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    kinds: dict[str, str] = field(default_factory=dict)
    extra_attributes: bool = False

    @property
    def columns(self) -> tuple[str, ...]:
        """All canonical columns, required first."""
        return self.required + self.optional

    def kind(self, column: str) -> str:
        """Parsing kind of a column: id, text, timestamp, number, money, int, bool."""
        return self.kinds.get(column, "text")


ORDERS = TableSpec(
    name="orders",
    required=("order_id", "customer_id", "ordered_at", "product_id", "quantity", "unit_price"),
    optional=(
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
        "discount": "money",
        "line_no": "int",
    },
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
