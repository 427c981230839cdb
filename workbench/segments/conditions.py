"""The conditions a segment can combine: one pydantic model per kind, keyed by its YAML name.

A condition is written in a segment file as a one-key mapping ``{<key>: <body>}``. Most bodies
are mappings of fields; a few take a shorthand (``life_cycle: [lost]``, ``subscribed: true``),
which fills the condition's :attr:`Condition.shorthand` field. This module holds the conditions
on the customer table (labels, attributes, order details, model scores, dates) and the
registry :data:`CONDITIONS` of every kind; activity conditions are in
:mod:`workbench.segments.activity`. See ``docs/segments.md`` for the list with examples.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field, model_validator

from workbench.models import behaviour, importance, lifecycle, price
from workbench.segments.activity import (
    InterestCondition,
    NotPurchasedCondition,
    PurchaseCondition,
    SearchCondition,
    SiteActivityCondition,
    ViewCondition,
)
from workbench.segments.base import (
    Bounds,
    Condition,
    IsoDate,
    Operator,
    ProductFilter,
    Scalar,
    Spec,
    StrList,
    Window,
    _as_list,
    _plain,
)

__all__ = [
    "CONDITIONS",
    "AttributeCondition",
    "Bounds",
    "Condition",
    "DateCondition",
    "InterestCondition",
    "IsoDate",
    "LabelCondition",
    "MetricCondition",
    "NotPurchasedCondition",
    "Operator",
    "ProductFilter",
    "PurchaseCondition",
    "Scalar",
    "SearchCondition",
    "SiteActivityCondition",
    "Spec",
    "StrList",
    "ValuesCondition",
    "ViewCondition",
    "Window",
    "_plain",
]

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
