"""The conditions a segment can combine: one pydantic model per kind, keyed by its YAML name.

A condition is written in a segment file as a one-key mapping ``{<key>: <body>}``. Most bodies
are mappings of fields; a few take a shorthand (``life_cycle: [lost]``, ``subscribed: true``),
which fills the condition's :attr:`Condition.shorthand` field. Time windows are relative to the
run's ``as_of`` (the end of that UTC day): ``within_days: 7`` means the ``as_of`` day and the
six days before it. See ``docs/segments.md`` for the full list with examples.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from workbench.models import behaviour, importance, lifecycle, price

__all__ = [
    "CONDITIONS",
    "AttributeCondition",
    "Condition",
    "DateCondition",
    "InterestCondition",
    "LabelCondition",
    "MetricCondition",
    "ProductFilter",
    "PurchaseCondition",
    "SearchCondition",
    "SiteActivityCondition",
    "ValuesCondition",
    "ViewCondition",
    "Window",
]

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _iso_date(value: Any) -> Any:
    """Accept a date or a ``YYYY-MM-DD`` string; anything else is a clear error."""
    if isinstance(value, datetime):
        raise ValueError(f"{value.isoformat()!r} is not a date in the format YYYY-MM-DD")
    if isinstance(value, date):
        return value
    if isinstance(value, str) and _ISO_DATE.match(value.strip()):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError(f"{value!r} is not a date in the format YYYY-MM-DD")


IsoDate = Annotated[date, BeforeValidator(_iso_date)]


def _as_list(value: Any) -> Any:
    """A scalar where a list is allowed becomes a one-item list."""
    if isinstance(value, str | int | float | bool):
        return [value]
    return value


StrList = Annotated[tuple[str, ...], BeforeValidator(_as_list)]


class Spec(BaseModel):
    """Base of every spec model: frozen, unknown fields are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Condition(Spec):
    """A leaf of the ``where`` tree.

    Class attributes
    ----------------
    key : str
        The YAML name (``life_cycle``, ``have_purchased``, ...).
    shorthand : str or None
        Field a non-mapping body fills (``life_cycle: [lost]`` -> ``values``).
    help : str
        One line for the builder and the docs.
    """

    key: ClassVar[str] = ""
    shorthand: ClassVar[str | None] = None
    help: ClassVar[str] = ""

    def body(self) -> Any:
        """The YAML body: the shorthand value when the condition has one, else its fields."""
        data = _plain(self.model_dump(exclude_defaults=True, exclude_none=True))
        if self.shorthand is not None and set(data) <= {self.shorthand}:
            return data.get(self.shorthand)
        return data


def _plain(value: Any) -> Any:
    """Tuples to lists (YAML-safe), recursively."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return int(value)
    return value


# --- labels and fixed-value attributes ---------------------------------------------------------


class LabelCondition(Condition):
    """Customers whose label is one of ``values``."""

    shorthand: ClassVar[str | None] = "values"
    column: ClassVar[str] = ""
    values: tuple[str, ...] = Field(min_length=1)


class LifeCycleCondition(LabelCondition):
    """Life Cycle label (docs/design.md, section 4)."""

    key: ClassVar[str] = "life_cycle"
    column: ClassVar[str] = "life_cycle"
    help: ClassVar[str] = "Life Cycle: just ordered, active, slipping away or lost"
    values: Annotated[tuple[Literal[lifecycle.LABELS], ...], BeforeValidator(_as_list)] = Field(
        min_length=1
    )


class ImportanceCondition(LabelCondition):
    """Importance label."""

    key: ClassVar[str] = "importance"
    column: ClassVar[str] = "importance"
    help: ClassVar[str] = "Importance: one-time, VIP, loyal or frequent"
    values: Annotated[tuple[Literal[importance.LABELS], ...], BeforeValidator(_as_list)] = Field(
        min_length=1
    )


class PriceSensitivityCondition(LabelCondition):
    """Price Sensitivity label."""

    key: ClassVar[str] = "price_sensitivity"
    column: ClassVar[str] = "price_sensitivity"
    help: ClassVar[str] = "Price Sensitivity: cheap, average or expensive"
    values: Annotated[tuple[Literal[price.LABELS], ...], BeforeValidator(_as_list)] = Field(
        min_length=1
    )


class BehaviourCondition(LabelCondition):
    """Behaviour (order-frequency trend) label."""

    key: ClassVar[str] = "behaviour_trend"
    column: ClassVar[str] = "behaviour_trend"
    help: ClassVar[str] = "Behaviour: order frequency rising, stable or falling"
    values: Annotated[tuple[Literal[behaviour.LABELS], ...], BeforeValidator(_as_list)] = Field(
        min_length=1
    )


class ValuesCondition(Condition):
    """A customer attribute equal to one of ``values`` (case-insensitive)."""

    shorthand: ClassVar[str | None] = "values"
    column: ClassVar[str] = ""
    values: StrList = Field(min_length=1)


class LanguageCondition(ValuesCondition):
    """Customer language."""

    key: ClassVar[str] = "language"
    column: ClassVar[str] = "language"
    help: ClassVar[str] = "Customer language (e.g. en, de)"


class CountryCondition(ValuesCondition):
    """Customer country."""

    key: ClassVar[str] = "country"
    column: ClassVar[str] = "country"
    help: ClassVar[str] = "Customer country (as in the data, e.g. GB or United Kingdom)"


class SubscribedCondition(Condition):
    """Newsletter subscription flag."""

    key: ClassVar[str] = "subscribed"
    shorthand: ClassVar[str | None] = "value"
    help: ClassVar[str] = "Subscribed to the newsletter (true) or not (false)"
    value: bool = True

    def body(self) -> Any:
        """Always the shorthand (``subscribed: true``)."""
        return self.value


Operator = Literal["eq", "ne", "in", "not_in", "gt", "ge", "lt", "le", "contains", "is_null"]
Scalar = str | int | float | bool | IsoDate


class AttributeCondition(Condition):
    """Any column of the customer table compared with a value.

    ``in`` / ``not_in`` take a list, ``contains`` a text (case-insensitive), ``is_null`` true
    (missing) or false (present); the others a number, text or date.
    """

    key: ClassVar[str] = "attribute"
    help: ClassVar[str] = "Any customer column compared with a value"
    column: str = Field(min_length=1)
    op: Operator = "eq"
    value: Scalar | list[Scalar] | None = None

    @model_validator(mode="after")
    def _value_fits_op(self) -> AttributeCondition:
        if self.op in ("in", "not_in"):
            if not isinstance(self.value, list) or not self.value:
                raise ValueError(f"op {self.op!r} needs a non-empty list as value")
        elif self.op == "is_null":
            if self.value is not None and not isinstance(self.value, bool):
                raise ValueError("op 'is_null' takes value true (missing) or false (present)")
        elif self.value is None or isinstance(self.value, list):
            raise ValueError(f"op {self.op!r} needs one value (a number, text or date)")
        elif self.op == "contains" and not isinstance(self.value, str):
            raise ValueError("op 'contains' needs a text value")
        return self


# --- metric bounds and dates -------------------------------------------------------------------


class MetricCondition(Condition):
    """A per-customer number between ``min`` and ``max`` (both inclusive, either optional)."""

    column: ClassVar[str] = ""
    unit_interval: ClassVar[bool] = False
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _bounds(self) -> MetricCondition:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"impossible bounds: min {self.min:g} > max {self.max:g}")
        if self.unit_interval:
            for name in ("min", "max"):
                value = getattr(self, name)
                if value is not None and not 0.0 <= value <= 1.0:
                    raise ValueError(f"{name} must be between 0 and 1 (a probability)")
        return self


class OrdersCondition(MetricCondition):
    """Number of orders."""

    key: ClassVar[str] = "orders"
    column: ClassVar[str] = "orders"
    help: ClassVar[str] = "Number of orders"


class RevenueCondition(MetricCondition):
    """Total net revenue (run currency)."""

    key: ClassVar[str] = "revenue"
    column: ClassVar[str] = "revenue"
    help: ClassVar[str] = "Total net revenue (run currency)"


class AovCondition(MetricCondition):
    """Average order value (run currency)."""

    key: ClassVar[str] = "aov"
    column: ClassVar[str] = "aov"
    help: ClassVar[str] = "Average order value (run currency)"


class PAliveCondition(MetricCondition):
    """P(alive) from the BG/NBD model."""

    key: ClassVar[str] = "p_alive"
    column: ClassVar[str] = "p_alive"
    help: ClassVar[str] = "P(alive) from the BG/NBD model"
    unit_interval: ClassVar[bool] = True


class ChurnRiskCondition(MetricCondition):
    """Churn risk: P(no order within the horizon)."""

    key: ClassVar[str] = "churn_risk"
    column: ClassVar[str] = "churn_risk"
    help: ClassVar[str] = "Churn risk: P(no order within the horizon)"
    unit_interval: ClassVar[bool] = True


class ClvCondition(MetricCondition):
    """Predicted CLV within the horizon (run currency)."""

    key: ClassVar[str] = "predicted_clv"
    column: ClassVar[str] = "predicted_clv"
    help: ClassVar[str] = "Predicted CLV within the horizon (run currency)"


class ExpectedOrdersCondition(MetricCondition):
    """Expected orders within the horizon."""

    key: ClassVar[str] = "expected_orders"
    column: ClassVar[str] = "expected_orders"
    help: ClassVar[str] = "Expected orders within the horizon"


class Window(Spec):
    """When something happened, relative to ``as_of`` or between dates (all optional, ANDed).

    ``within_days`` N: in the N days ending on the ``as_of`` day; ``older_than_days`` N: N or
    more days before ``as_of``; ``since`` / ``until``: on or after / on or before a date;
    ``before``: strictly before a date.
    """

    within_days: int | None = Field(None, ge=1)
    older_than_days: int | None = Field(None, ge=0)
    since: IsoDate | None = None
    until: IsoDate | None = None
    before: IsoDate | None = None

    @model_validator(mode="after")
    def _window(self) -> Window:
        if self.until is not None and self.before is not None:
            raise ValueError("give 'until' (inclusive) or 'before' (exclusive), not both")
        end = self.until or self.before
        if self.since is not None and end is not None and self.since > end:
            raise ValueError(f"impossible window: since {self.since} is after {end}")
        if self.since is not None and self.before is not None and self.since == self.before:
            raise ValueError(f"impossible window: since {self.since} and before the same day")
        if (
            self.within_days is not None
            and self.older_than_days is not None
            and self.older_than_days >= self.within_days
        ):
            raise ValueError("impossible window: older_than_days >= within_days")
        return self

    def has_window(self) -> bool:
        """Whether any time bound is set."""
        return any(getattr(self, f) is not None for f in Window.model_fields)


class DateCondition(Window, Condition):
    """A customer date column inside a window (at least one bound)."""

    column: ClassVar[str] = ""

    @model_validator(mode="after")
    def _some_bound(self) -> DateCondition:
        if not self.has_window():
            raise ValueError("give within_days, older_than_days, since, until or before")
        return self


class FirstOrderCondition(DateCondition):
    """Date of the first order."""

    key: ClassVar[str] = "first_order"
    column: ClassVar[str] = "first_order_at"
    help: ClassVar[str] = "First order within N days, or before / between dates"


class LastOrderCondition(DateCondition):
    """Date of the last order."""

    key: ClassVar[str] = "last_order"
    column: ClassVar[str] = "last_order_at"
    help: ClassVar[str] = "Last order within N days, or before / between dates"


class LastActiveCondition(DateCondition):
    """Latest order or web event."""

    key: ClassVar[str] = "last_active"
    column: ClassVar[str] = "last_active_at"
    help: ClassVar[str] = "Last order or site visit within N days, or before / between dates"


# --- purchases and web activity ----------------------------------------------------------------


class ProductFilter(Spec):
    """Which products count (all given filters must hold; none = any product).

    ``category`` matches any level of the category path, case-insensitively: ``Kitchen``
    matches ``Home > Kitchen > Mugs``, and so does ``Home > Kitchen``. ``keyword`` matches a
    word in the product name. ``attributes`` maps product columns to a value or a list.
    """

    product: StrList | None = None
    category: StrList | None = None
    brand: StrList | None = None
    keyword: StrList | None = None
    attributes: dict[str, Scalar | list[Scalar]] | None = None

    def has_product_filter(self) -> bool:
        """Whether any product filter is set."""
        return any(getattr(self, f) is not None for f in ProductFilter.model_fields)


class Bounds(Spec):
    """Numeric bounds with comparison operators (e.g. ``{lt: 30}`` = under 30)."""

    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Bounds:
        lows = [v for v in (self.gt, self.ge) if v is not None]
        highs = [v for v in (self.lt, self.le) if v is not None]
        if not lows and not highs:
            raise ValueError("give at least one of gt, ge, lt, le")
        if lows and highs and max(lows) > min(highs):
            raise ValueError("impossible bounds: the lower bound is above the upper bound")
        return self


class PurchaseCondition(Window, ProductFilter, Condition):
    """Bought matching items (in a window, at a unit price, at least a quantity)."""

    key: ClassVar[str] = "have_purchased"
    help: ClassVar[str] = "Bought a product / category / brand / keyword, when, at what price"
    price: Bounds | None = None
    min_quantity: float = Field(1.0, gt=0)


class NotPurchasedCondition(PurchaseCondition):
    """The complement of :class:`PurchaseCondition` (same fields)."""

    key: ClassVar[str] = "have_not_purchased"
    help: ClassVar[str] = "Did not buy a product / category / brand / keyword in a window"


EventType = Literal["view", "click", "search", "cart"]


class SiteActivityCondition(Window, Condition):
    """At least ``min_count`` web events (of ``event_types``, default any) in the window."""

    key: ClassVar[str] = "active_on_site"
    help: ClassVar[str] = "Visited the site (any web event) within N days / between dates"
    event_types: tuple[EventType, ...] | None = None
    min_count: int = Field(1, ge=1)


class ViewCondition(Window, ProductFilter, Condition):
    """Viewed (or clicked / carted) matching products at least ``min_count`` times."""

    key: ClassVar[str] = "viewed"
    help: ClassVar[str] = "Viewed a product / category / brand / keyword on the site"
    event_types: Annotated[tuple[EventType, ...], BeforeValidator(_as_list)] = ("view",)
    min_count: int = Field(1, ge=1)


class SearchCondition(Window, Condition):
    """Searched for a text (case-insensitive substring of the query) at least ``min_count``."""

    key: ClassVar[str] = "searched"
    shorthand: ClassVar[str | None] = "query"
    help: ClassVar[str] = "Searched the site for a text"
    query: StrList = Field(min_length=1)
    min_count: int = Field(1, ge=1)


InterestLevel = Literal["product", "category", "brand", "keyword"]


class InterestCondition(Condition):
    """Interested In a target: a calibrated score at least ``min_score``, or in the top share.

    ``top_share: 0.05`` keeps the 5% of customers most likely to buy the target.
    """

    key: ClassVar[str] = "interested_in"
    help: ClassVar[str] = "Likely to buy a product / category / brand / keyword (Interested In)"
    level: InterestLevel
    target: str = Field(min_length=1)
    min_score: float | None = Field(None, ge=0.0, le=1.0)
    top_share: float | None = Field(None, gt=0.0, le=1.0)

    @model_validator(mode="after")
    def _one_threshold(self) -> InterestCondition:
        if (self.min_score is None) == (self.top_share is None):
            raise ValueError("give exactly one of min_score (0..1) or top_share (0..1]")
        return self


#: Every condition class by its YAML key, in the order the builder lists them.
CONDITIONS: dict[str, type[Condition]] = {
    cls.key: cls
    for cls in (
        InterestCondition,
        PurchaseCondition,
        NotPurchasedCondition,
        LifeCycleCondition,
        ImportanceCondition,
        PriceSensitivityCondition,
        BehaviourCondition,
        OrdersCondition,
        RevenueCondition,
        AovCondition,
        FirstOrderCondition,
        LastOrderCondition,
        PAliveCondition,
        ChurnRiskCondition,
        ClvCondition,
        ExpectedOrdersCondition,
        SiteActivityCondition,
        LastActiveCondition,
        ViewCondition,
        SearchCondition,
        SubscribedCondition,
        LanguageCondition,
        CountryCondition,
        AttributeCondition,
    )
}
